/*
 * The queue trusts nothing it reads back from its file: another program
 * (or an older weft, or a corrupted page) may have written any row. The
 * input becomes one row of weft_jobs, every column of any SQLite type;
 * then get, list, stats and a worker's claim and run go over it. Nothing
 * may crash, leak or overflow; the worker dead-letters what it cannot run.
 */
#include <errno.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "weft.h"

static char path[64];
static weft_queue *q;
static const uint8_t *in;
static size_t left;

static uint8_t byte(void)
{
    if (!left)
        return 0;
    left--;
    return *in++;
}

static int64_t i64(void)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | byte();
    return (int64_t)v;
}

/* one column: NULL, an integer (small or any), a real, a text or a blob */
static void bind_any(sqlite3_stmt *st, int i)
{
    uint8_t kind = byte() % 6, n = byte() % 24;
    const void *p = in;
    if (n > left)
        n = (uint8_t)left;
    switch (kind) {
    case 0: sqlite3_bind_null(st, i); return;
    case 1: sqlite3_bind_int64(st, i, (int8_t)byte()); return;
    case 2: sqlite3_bind_int64(st, i, i64()); return;
    case 3: { int64_t v = i64(); double d; memcpy(&d, &v, sizeof d); sqlite3_bind_double(st, i, d); return; }
    case 4: sqlite3_bind_text(st, i, p, n, SQLITE_TRANSIENT); break;
    default: sqlite3_bind_blob(st, i, p, n, SQLITE_TRANSIENT); break;
    }
    in += n;
    left -= n;
}

static int handler(const weft_job *job, void *ctx)
{
    (void)ctx;
    weft_job_set_result(job, job->payload);
    weft_queue_stop(q);
    return job->attempt & 1 ? 0 : -EIO;
}

static int stopper(void *arg)
{
    (void)arg;
    weft_sleep(5 * WEFT_MS);
    weft_queue_stop(q);
    return 0;
}

static int exercise(void *arg)
{
    (void)arg;
    weft_queue_opts o = { .shutdown_grace = 10 * WEFT_MS, .backoff = WEFT_MS };
    if (weft_queue_open(&q, path, &o))
        abort();
    weft_job_info info, list[4];
    if (weft_queue_get(q, 1, &info) == 0)
        weft_job_info_free(&info);
    int n = weft_queue_list(q, NULL, -1, 0, list, 4);
    for (int i = 0; i < n; i++)
        weft_job_info_free(&list[i]);
    weft_queue_stats s;
    weft_queue_stats_get(q, NULL, &s);
    weft_queue_stats_get(q, "q", &s);
    weft_group *g = weft_group_new();
    weft_spawn(g, stopper, NULL, "stopper");
    weft_job_handler h[] = { { "t", handler, NULL } };
    weft_queue_work(q, "q", h, 1, 2);
    weft_group_wait(g);
    weft_queue_retry(q, 1);
    weft_queue_purge(q, NULL, -1);
    return weft_queue_close(q);
}

static void cleanup(void)
{
    static const char *const ext[] = { "", "-wal", "-shm" };
    for (int i = 0; i < 3; i++) {
        char p[96];
        snprintf(p, sizeof p, "%s%s", path + 7, ext[i]);
        unlink(p);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static sqlite3 *db;
    if (!db) {
        snprintf(path, sizeof path, "sqlite:/dev/shm/weft-fuzz-queue-%d.db", getpid());
        cleanup();                        /* a file an earlier process of this pid left */
        weft_log_set(NULL, NULL, WEFT_LOG_ERROR + 1);
        int rc = weft_main(exercise, NULL);
        if (rc || sqlite3_open(path + 7, &db)) {
            fprintf(stderr, "fuzz_queue_record: set-up failed: %s\n", weft_strerror(rc));
            abort();                      /* the schema comes from weft */
        }
        atexit(cleanup);
    }
    in = data;
    left = size;
    sqlite3_exec(db, "DELETE FROM weft_jobs", NULL, NULL, NULL);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "INSERT INTO weft_jobs(id,queue,type,payload,state,priority,"
                           "run_at,attempts,max_attempts,lease_until,token,created,finished,"
                           "ikey,result,last_error) VALUES(1,'q',?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                           -1, &st, NULL))
        abort();
    for (int i = 1; i <= 14; i++)
        bind_any(st, i);
    sqlite3_step(st);                     /* NOT NULL columns refuse some rows: fine */
    sqlite3_finalize(st);
    weft_main(exercise, NULL);
    return 0;
}
