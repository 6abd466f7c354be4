/*
 * The backend the queue tests run on: $WEFT_TEST_QUEUE_BACKEND = sqlite
 * (the default: a file in the test's temp directory), redis or pg (the
 * test servers of tests/services.h, whose queue state each test wipes
 * first so tests stay independent: FLUSHDB on Redis, where every key of
 * the queue is "weft:..."; DROP SCHEMA weft_queue CASCADE on PostgreSQL,
 * where every object of the queue is).
 *
 * CTest runs each suite once per backend (tests/queue/CMakeLists.txt); by
 * hand: `scripts/services start redis build/services/redis`, then
 * `WEFT_TEST_QUEUE_BACKEND=redis build/tests/queue/queue_api`.
 */
#ifndef WEFT_TEST_QBACKEND_H
#define WEFT_TEST_QBACKEND_H

#include "services.h"
#include "test.h"

enum qbackend { QB_SQLITE, QB_REDIS, QB_PG };

/* the backend of this run; a bad name ends the run (a typo must not test
 * SQLite again under another backend's name) */
static inline enum qbackend qbackend(void)
{
    const char *b = getenv("WEFT_TEST_QUEUE_BACKEND");
    if (!b || !*b || !strcmp(b, "sqlite"))
        return QB_SQLITE;
    if (!strcmp(b, "redis"))
        return QB_REDIS;
    if (!strcmp(b, "pg"))
        return QB_PG;
    fprintf(stderr, "WEFT_TEST_QUEUE_BACKEND=%s: sqlite, redis or pg\n", b);
    exit(2);
}

static inline const char *qbackend_name(void)
{
    static const char *const names[] = { "sqlite", "redis", "pg" };
    return names[qbackend()];
}

/* Skips the running cmocka test (from the main stack, not a task) on a
 * backend other than SQLite, saying why. */
#define SQLITE_ONLY(why)                                                           \
    do {                                                                           \
        if (qbackend() != QB_SQLITE) {                                             \
            print_message("skipped on %s: %s\n", qbackend_name(), why);            \
            skip();                                                                \
        }                                                                          \
    } while (0)

/* ---- wiping a server's queue state ------------------------------------------ */

static inline int qbackend_wipe_task(void *url)
{
    int rc = -ENOTSUP;
    switch (qbackend()) {
    case QB_SQLITE:
        rc = 0;
        break;
    case QB_REDIS: {
#if WEFT_HAVE_REDIS
        weft_redis *r = weft_redis_new(url, NULL);
        weft_redis_reply *rep = NULL;
        if (!r)
            return -errno;
        rc = weft_redis_commandf(r, &rep, "FLUSHDB");
        if (rc)
            fprintf(stderr, "FLUSHDB on %s: %s %s\n", (char *)url, weft_strerror(rc),
                    rep && rep->str ? rep->str : "");
        weft_redis_reply_free(rep);
        weft_redis_close(r, WEFT_SEC);
#endif
        break;
    }
    case QB_PG: {
#if WEFT_HAVE_PG
        weft_pg *db = weft_pg_new(url, &(weft_pg_opts){ .min_size = 1, .max_size = 1 });
        weft_pg_result res;
        if (!db)
            return -errno;
        /* quietly: the server's NOTICEs (what the drop cascades to) are logged */
        rc = weft_pg_query(db, &res,
                           "DO $$BEGIN SET LOCAL client_min_messages = warning; "
                           "DROP SCHEMA IF EXISTS weft_queue CASCADE; END$$",
                           0, NULL);
        if (rc)
            fprintf(stderr, "DROP SCHEMA weft_queue on %s: %s %s\n", (char *)url,
                    weft_strerror(rc), res.error);
        weft_pg_result_free(&res);
        weft_pg_close(db, WEFT_SEC);
#endif
        break;
    }
    }
    return rc;
}

/* The queue URL of a test whose temp directory is dir, in url: sqlite:
 * DIR/q.db, or the server's URL once the queue's state there is wiped.
 * 0, or -1 after saying why (the server is not running, not built in).
 * From the main stack: it runs a loop of its own for the wipe. */
static inline int qbackend_url(const char *dir, char *url, size_t size)
{
    if (qbackend() == QB_SQLITE) {
        snprintf(url, size, "sqlite:%s/q.db", dir);
        return 0;
    }
    const char *s = weft_test_service_url(qbackend() == QB_REDIS ? "redis" : "pg");
    if (!s)
        return -1;
    snprintf(url, size, "%s", s);
    int rc = weft_main(qbackend_wipe_task, url);
    if (rc) {
        fprintf(stderr, "cannot wipe the queue on %s: %s\n", url, weft_strerror(rc));
        return -1;
    }
    return 0;
}

#endif
