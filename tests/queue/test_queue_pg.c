/* What only the PostgreSQL backend of the queue has (the shared suite runs
 * on it too, as queue_api_pg): its schema applied by its own migrations
 * (never the application's schema_migrations), hosts opening it together,
 * the group commit of enqueues across tasks (a cancelled call is either
 * committed or not there at all, never half), and a server restart under
 * a producer and a worker. */
#include "pgtest.h"

static int reset_main(void *arg)
{
    (void)arg;
    weft_pg *db = weft_pg_new(pgt_url(), NULL);
    EXPECT(db != NULL);
    weft_pg_conn *c;
    EXPECT_EQ(weft_pg_acquire(db, &c), 0);
    static const char *const sql[] = { "SET client_min_messages = warning",
                                       "DROP SCHEMA IF EXISTS weft_queue CASCADE",
                                       "DROP TABLE IF EXISTS schema_migrations" };
    for (int i = 0; i < 3; i++) {
        weft_pg_result r;
        EXPECT_EQ(weft_pg_conn_query(c, &r, sql[i], 0, NULL), 0);
        weft_pg_result_free(&r);
    }
    weft_pg_release(db, c);
    return weft_pg_close(db, WEFT_SEC);
}

static int setup(void **state)
{
    (void)state;
    test_failures = 0;
    weft_main(reset_main, NULL);
    return test_failures ? -1 : 0;
}

/* ---- the schema: its own migrations, once, however many open at once ---- */

static int opener(void *arg)
{
    weft_queue *q;
    int rc = weft_queue_open(&q, pgt_url(), NULL);
    EXPECT_EQ(rc, 0);
    if (rc == 0)
        EXPECT_EQ(weft_queue_close(q), 0);
    (void)arg;
    return 0;
}

static int schema_main(void *arg)
{
    (void)arg;
    weft_group *g = weft_group_new();
    for (int i = 0; i < 6; i++)
        EXPECT_EQ(weft_spawn(g, opener, NULL, "opener"), 0);
    EXPECT_EQ(weft_group_wait(g), 0);
    EXPECT_EQ(pgt_int(NULL, "SELECT count(*) FROM weft_queue.migrations"), 1);
    EXPECT_EQ(pgt_int(NULL, "SELECT max(version) FROM weft_queue.migrations"), 1);
    /* the application's own migrations table is not touched */
    EXPECT_EQ(pgt_int(NULL, "SELECT count(*) FROM pg_tables WHERE tablename = 'schema_migrations'"), 0);
    /* opening again applies nothing */
    opener(NULL);
    EXPECT_EQ(pgt_int(NULL, "SELECT count(*) FROM weft_queue.migrations"), 1);
    return 0;
}

static void test_schema(void **state)
{
    (void)state;
    RUN(schema_main, NULL);
}

/* ---- group commit ---------------------------------------------------------- */

struct enq_arg {
    weft_queue *q;
    int i, rc;
    weft_job_id id;
    weft_task *task;
};

static int enqueuer(void *arg)
{
    struct enq_arg *a = arg;
    a->task = weft_self();
    char payload[64];
    snprintf(payload, sizeof payload, "{\"n\":%d}", a->i);
    a->rc = weft_queue_enqueue(a->q, "g", "noop", payload, NULL, &a->id);
    return 0;
}

static int group_main(void *arg)
{
    (void)arg;
    weft_queue *q;
    EXPECT_EQ(weft_queue_open(&q, pgt_url(), NULL), 0);
    enum { N = 300 };
    static struct enq_arg a[N];
    weft_group *g = weft_group_new();
    for (int i = 0; i < N; i++) {
        a[i] = (struct enq_arg){ .q = q, .i = i, .rc = 1 };
        EXPECT_EQ(weft_spawn(g, enqueuer, &a[i], "enqueuer"), 0);
    }
    /* every third one cancelled: the first is in flight (and finishes),
     * the others wait for it to be sent next */
    weft_yield();
    for (int i = 0; i < N; i += 3)
        if (a[i].rc == 1)
            weft_task_cancel(a[i].task);
    EXPECT_EQ(weft_group_wait(g), 0);
    int ok = 0, cancelled = 0;
    for (int i = 0; i < N; i++) {
        weft_job_info info;
        char want[64];
        snprintf(want, sizeof want, "{\"n\":%d}", i);
        if (a[i].rc == 0) {
            ok++;
            EXPECT_EQ(weft_queue_get(q, a[i].id, &info), 0);
            EXPECT(info.payload && strcmp(info.payload, want) == 0);
            weft_job_info_free(&info);
            for (int j = 0; j < i; j++)
                EXPECT(a[j].rc != 0 || a[j].id != a[i].id);
        } else {
            EXPECT_EQ(a[i].rc, -ECANCELED);
            EXPECT_EQ(i % 3, 0);
            cancelled++;
        }
    }
    /* a cancelled call left nothing: the rows are exactly the calls that
     * returned 0 */
    weft_queue_stats s = { 0 };
    EXPECT_EQ(weft_queue_stats_get(q, "g", &s), 0);
    EXPECT_EQ(s.queued, (uint64_t)ok);
    EXPECT(cancelled > 0);
    EXPECT(ok > N / 2);
    EXPECT_EQ(weft_queue_close(q), 0);
    return 0;
}

static void test_group_commit(void **state)
{
    (void)state;
    RUN(group_main, NULL);
}

/* ---- a restart of the server under a producer and a worker ------------------- */

struct rs {
    weft_queue *q;
    int enqueued, failed, done;
    bool stop;
};

static int count_job(const weft_job *job, void *ctx)
{
    (void)job;
    ((struct rs *)ctx)->done++;
    return 0;
}

static int rs_worker(void *arg)
{
    struct rs *r = arg;
    weft_job_handler h = { "count", count_job, r };
    return weft_queue_work(r->q, "r", &h, 1, 16);
}

static int rs_producer(void *arg)
{
    struct rs *r = arg;
    while (!r->stop) {
        weft_scope s;
        weft_scope_enter(&s, 2 * WEFT_SEC);   /* nobody waits past a deadline */
        int rc = weft_queue_enqueue(r->q, "r", "count", "{}", NULL, NULL);
        weft_scope_exit(&s);
        if (rc == 0)
            r->enqueued++;
        else
            r->failed++;
        weft_sleep(2 * WEFT_MS);
    }
    return 0;
}

static int restart_main(void *arg)
{
    (void)arg;
    struct rs r = { 0 };
    weft_queue_opts o = { .lease = 2 * WEFT_SEC };
    EXPECT_EQ(weft_queue_open(&r.q, pgt_url(), &o), 0);
    weft_group *g = weft_group_new();
    EXPECT_EQ(weft_spawn(g, rs_worker, &r, "worker"), 0);
    EXPECT_EQ(weft_spawn(g, rs_producer, &r, "producer"), 0);
    WAIT_UNTIL(r.done > 50);
    int rc = weft_test_service_restart("pg");
    if (rc == -ENOTSUP) {
        r.stop = true;
        weft_queue_stop(r.q);
        weft_group_wait(g);
        weft_queue_close(r.q);
        return 0;
    }
    EXPECT_EQ(rc, 0);
    int before = r.enqueued;
    /* the producer and the worker come back on their own */
    for (int i = 0; i < 30000 && r.enqueued < before + 50; i++)
        weft_sleep(WEFT_MS);
    EXPECT(r.enqueued >= before + 50);
    r.stop = true;
    for (int i = 0; i < 30000 && r.done < r.enqueued; i++)
        weft_sleep(WEFT_MS);
    weft_queue_stop(r.q);
    EXPECT_EQ(weft_group_wait(g), 0);
    /* at least once: every job enqueued was run (some twice: the restart
     * cut acks short) */
    EXPECT(r.done >= r.enqueued);
    weft_queue_stats s = { 0 };
    EXPECT_EQ(weft_queue_stats_get(r.q, "r", &s), 0);
    EXPECT(s.done >= (uint64_t)r.enqueued);   /* a call cut off may have committed */
    EXPECT_EQ(weft_queue_close(r.q), 0);
    return 0;
}

static void test_restart(void **state)
{
    (void)state;
    RUN(restart_main, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_schema, setup),
        cmocka_unit_test_setup(test_group_commit, setup),
        cmocka_unit_test_setup(test_restart, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
