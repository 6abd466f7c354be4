/*
 * weft pg: the races and leaks a cold review found, each a test that
 * failed before its fix (against the fixture's PostgreSQL).
 */
#include <unistd.h>
#include "pgtest.h"

struct q { weft_pg *db; const char *sql; weft_time scope; int rc; int64_t v; weft_time took; int n; const weft_pg_val *p; };

static int runq(void *arg)
{
    struct q *q = arg;
    weft_pg_result r;
    weft_scope sc;
    weft_time t0 = weft_now();
    if (q->scope)
        weft_scope_enter(&sc, q->scope);
    q->rc = weft_pg_query(q->db, &r, q->sql, q->n, q->p);
    if (q->scope)
        weft_scope_exit(&sc);
    q->took = weft_now() - t0;
    q->v = -1;
    if (q->rc == 0 && r.nrows > 0)
        weft_pg_get_int(&r, 0, 0, &q->v);
    weft_pg_result_free(&r);
    return 0;
}

static int64_t one(weft_pg *db, const char *sql)
{
    struct q q = { db, sql, 0, 0, 0, 0, 0, NULL };
    runq(&q);
    return q.v;
}

static void exec(weft_pg *db, const char *sql)
{
    struct q q = { db, sql, 0, 0, 0, 0, 0, NULL };
    runq(&q);
}

/* 1. pick(): share_new fails after suspending, the stale least-loaded
 * connection is used anyway: ring overflow onto the head segment */
static int pick_overflow(void *u)
{
    (void)u;
    weft_pg *db = weft_pg_new(pgt_url(), &(weft_pg_opts){ .pipeline = 2, .max_size = 2, .min_size = 1,
                                                      .query_timeout = 3 * WEFT_SEC });
    weft_pg_stats s;
    WAIT_UNTIL((weft_pg_stats_get(db, &s), s.idle == 1));
    struct q a = { db, "SELECT 11 FROM pg_sleep(0.5)", 0, 0, 0, 0, 0, NULL };
    struct q t = { db, "SELECT 22", 300 * WEFT_US, 0, 0, 0, 0, NULL };
    struct q b = { db, "SELECT 33", 0, 0, 0, 0, 0, NULL };
    weft_group *g = weft_group_new();
    weft_spawn(g, runq, &a, "A");
    weft_spawn(g, runq, &t, "T");
    weft_spawn(g, runq, &b, "B");
    weft_group_wait(g);
    EXPECT_EQ(a.rc, 0);
    EXPECT_EQ(a.v, 11);
    EXPECT_EQ(b.rc, 0);
    EXPECT_EQ(b.v, 33);
    weft_pg_close(db, WEFT_SEC);
    return 0;
}
static void test_pick_overflow(void **s) { (void)s; RUN(pick_overflow, NULL); }

/* 2. a task's PQflush (send would block) reads the input the parked
 * reader waits for: the reader is never woken */
static int flush_steals(void *u)
{
    (void)u;
    weft_pg *db = weft_pg_new(pgt_url(), &(weft_pg_opts){ .max_size = 1, .min_size = 1,
                                                      .query_timeout = 3 * WEFT_SEC,
                                                      .cancel_grace = WEFT_SEC });
    weft_pg_stats s;
    WAIT_UNTIL((weft_pg_stats_get(db, &s), s.idle == 1));
    struct q a = { db, "SELECT 7", 0, 0, 0, 0, 0, NULL };
    weft_group *g = weft_group_new();
    weft_spawn(g, runq, &a, "A");
    for (int i = 0; i < 3; i++)
        weft_yield();
    usleep(50000);                    /* A's answer arrives; the loop does not poll */
    size_t n = 8 << 20;
    char *big = calloc(1, n);
    weft_pg_val p[] = { WEFT_PG_BYTES(big, n) };
    struct q b = { db, "SELECT length($1::bytea)", 0, 0, 0, 0, 1, p };
    runq(&b);
    weft_group_wait(g);
    EXPECT_EQ(a.rc, 0);
    EXPECT_EQ(b.rc, 0);
    EXPECT_EQ(b.v, (int64_t)n);
    EXPECT(b.took < WEFT_SEC);
    free(big);
    weft_pg_close(db, WEFT_SEC);
    return 0;
}
static void test_flush_steals(void **s) { (void)s; RUN(flush_steals, NULL); }

/* 3. a short-deadline statement queued behind a slow one: the reader
 * gives up the connection and its healthy neighbours fail */
static int head_of_line(void *u)
{
    (void)u;
    weft_pg *db = weft_pg_new(pgt_url(), &(weft_pg_opts){ .max_size = 1, .min_size = 1,
                                                      .cancel_grace = 500 * WEFT_MS });
    weft_pg_stats s;
    WAIT_UNTIL((weft_pg_stats_get(db, &s), s.idle == 1));
    struct q a = { db, "SELECT 1 FROM pg_sleep(1.5)", 0, 0, 0, 0, 0, NULL };
    struct q t = { db, "SELECT 2 FROM pg_sleep(0.05)", 100 * WEFT_MS, 0, 0, 0, 0, NULL };
    struct q c = { db, "SELECT 3", 0, 0, 0, 0, 0, NULL };
    weft_group *g = weft_group_new();
    weft_spawn(g, runq, &a, "A");
    weft_spawn(g, runq, &t, "T");
    weft_spawn(g, runq, &c, "C");
    weft_group_wait(g);
    EXPECT_EQ(a.rc, 0);
    EXPECT_EQ(t.rc, -ETIMEDOUT);
    EXPECT_EQ(c.rc, 0);
    EXPECT_EQ(c.v, 3);
    weft_pg_close(db, WEFT_SEC);
    return 0;
}
static void test_head_of_line(void **s) { (void)s; RUN(head_of_line, NULL); }

/* 4. BEGIN through weft_pg_query on a shared connection swallowed a
 * neighbour's INSERT, which was reported done: now refused */
static int begin_shared(void *u)
{
    (void)u;
    weft_pg *db = weft_pg_new(pgt_url(), &(weft_pg_opts){ .max_size = 1, .min_size = 1 });
    exec(db, "DROP TABLE IF EXISTS weft_rv_t");
    exec(db, "CREATE TABLE weft_rv_t (id int)");
    struct q x = { db, "BEGIN", 0, 0, 0, 0, 0, NULL };
    struct q y = { db, "INSERT INTO weft_rv_t VALUES (1)", 0, 0, 0, 0, 0, NULL };
    struct q z = { db, "  /* c */ set search_path = x", 0, 0, 0, 0, 0, NULL };
    weft_group *g = weft_group_new();
    weft_spawn(g, runq, &x, "X");
    weft_spawn(g, runq, &y, "Y");
    weft_spawn(g, runq, &z, "Z");
    weft_group_wait(g);
    EXPECT_EQ(x.rc, -EINVAL);
    EXPECT_EQ(z.rc, -EINVAL);
    EXPECT_EQ(y.rc, 0);
    EXPECT_EQ(one(db, "SELECT count(*) FROM weft_rv_t"), 1);
    exec(db, "DROP TABLE weft_rv_t");
    weft_pg_close(db, WEFT_SEC);
    return 0;
}
static void test_begin_shared(void **s) { (void)s; RUN(begin_shared, NULL); }

/* 5. COMMIT runs under the statement_timeout of the last statement's budget */
static int commit_stale(void *u)
{
    (void)u;
    weft_pg *db = weft_pg_new(pgt_url(), NULL);
    exec(db, "DROP TABLE IF EXISTS weft_rv_c");
    exec(db, "CREATE TABLE weft_rv_c (id int)");
    exec(db, "CREATE OR REPLACE FUNCTION weft_rv_slow() RETURNS trigger AS $$ BEGIN PERFORM pg_sleep(0.3); RETURN NULL; END $$ LANGUAGE plpgsql");
    exec(db, "CREATE CONSTRAINT TRIGGER weft_rv_trg AFTER INSERT ON weft_rv_c DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION weft_rv_slow()");
    weft_pg_conn *c;
    EXPECT_EQ(weft_pg_acquire(db, &c), 0);
    EXPECT_EQ(weft_pg_begin(c, NULL), 0);
    weft_pg_result r;
    weft_scope sc;
    weft_scope_enter(&sc, 100 * WEFT_MS);
    EXPECT_EQ(weft_pg_conn_query(c, &r, "INSERT INTO weft_rv_c VALUES (1)", 0, NULL), 0);
    weft_scope_exit(&sc);
    weft_pg_result_free(&r);
    int rc = weft_pg_commit(c, &r);           /* no scope: 30 s budget */
    fprintf(stderr, "  commit -> %s %s\n", rc ? weft_errname(rc) : "0", r.error);
    EXPECT_EQ(rc, 0);
    weft_pg_result_free(&r);
    weft_pg_release(db, c);
    exec(db, "DROP TABLE weft_rv_c");
    weft_pg_close(db, WEFT_SEC);
    return 0;
}
static void test_commit_stale(void **s) { (void)s; RUN(commit_stale, NULL); }

/* 6. weft_pg_close while a task was handed a connection but has not run:
 * it spawns its reader into the freed supervisor */
static int close_race(void *u)
{
    (void)u;
    weft_pg *db = weft_pg_new(pgt_url(), &(weft_pg_opts){ .max_size = 1 });
    struct q t = { db, "SELECT 1", 0, 0, 0, 0, 0, NULL };
    weft_group *g = weft_group_new();
    weft_spawn(g, runq, &t, "T");
    weft_time end = weft_now() + 5 * WEFT_SEC;
    bool hit = false;
    while (weft_now() < end) {
        weft_pg_stats s;
        weft_pg_stats_get(db, &s);
        if (s.in_use == 1 && s.shared == 0) {
            hit = true;
            break;
        }
        weft_yield();
    }
    fprintf(stderr, "  window hit: %d\n", hit);
    int rc = weft_pg_close(db, WEFT_SEC);
    weft_group_wait(g);
    fprintf(stderr, "  close %d, T %s\n", rc, weft_errname(t.rc));
    EXPECT(t.rc == 0 || t.rc == -WEFT_ECLOSED);
    return 0;
}
static void test_close_race(void **s) { (void)s; RUN(close_race, NULL); }

/* 7. SET statement_timeout made weft's cached value stale: the deadline
 * no longer reached the server; and session settings outlived the
 * connection's holder */
static int set_leak(void *u)
{
    (void)u;
    weft_pg *db = weft_pg_new(pgt_url(), &(weft_pg_opts){ .max_size = 1, .min_size = 1,
                                                      .query_timeout = WEFT_SEC,
                                                      .cancel_grace = 300 * WEFT_MS });
    weft_pg *db2 = weft_pg_new(pgt_url(), &(weft_pg_opts){ .max_size = 1, .min_size = 1 });
    weft_pg_conn *c;
    weft_pg_result r;
    EXPECT_EQ(weft_pg_acquire(db, &c), 0);
    EXPECT_EQ(weft_pg_conn_query(c, &r, "SET statement_timeout = 0", 0, NULL), 0);
    weft_pg_result_free(&r);
    EXPECT_EQ(weft_pg_conn_query(c, &r, "SET TimeZone = 'Europe/Paris'", 0, NULL), 0);
    weft_pg_result_free(&r);
    EXPECT_EQ(weft_pg_conn_query(c, &r, "SELECT 1 FROM pg_sleep(3)", 0, NULL), -WEFT_EQUERY_TIMEOUT);
    weft_pg_result_free(&r);
    weft_pg_release(db, c);
    weft_sleep(600 * WEFT_MS);
    EXPECT_EQ(one(db2, "SELECT count(*) FROM pg_stat_activity WHERE state = 'active'"
                       " AND query LIKE '%pg_sleep(3)%' AND pid <> pg_backend_pid()"), 0);
    /* the next holder gets the connection as it was made */
    EXPECT_EQ(weft_pg_acquire(db, &c), 0);
    EXPECT_EQ(weft_pg_conn_query(c, &r, "SHOW TimeZone", 0, NULL), 0);
    const char *tz = "";
    weft_pg_get_text(&r, 0, 0, &tz, NULL);
    EXPECT(strcmp(tz, "UTC") == 0);
    weft_pg_result_free(&r);
    weft_pg_release(db, c);
    weft_pg_close(db, WEFT_SEC);
    weft_pg_close(db2, WEFT_SEC);
    return 0;
}
static void test_set_leak(void **s) { (void)s; RUN(set_leak, NULL); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pick_overflow),
        cmocka_unit_test(test_flush_steals),
        cmocka_unit_test(test_head_of_line),
        cmocka_unit_test(test_begin_shared),
        cmocka_unit_test(test_commit_stale),
        cmocka_unit_test(test_close_race),
        cmocka_unit_test(test_set_leak),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
