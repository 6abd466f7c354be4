/* Regression tests for what the first review of the queue found: a close
 * that freed the store under a call in flight, a graceful stop that
 * released a job whose handler still ran (and dropped its ack), durations
 * that overflowed (shutdown_grace, backoff). Each failed before its fix.
 * On every backend (qbackend.h). */
#include <dirent.h>
#include <limits.h>
#include <time.h>

#include "qbackend.h"

static char dir[64], url[600];

static void cleanup(void)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char p[PATH_MAX];
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

static int setup(void **state)
{
    (void)state;
    strcpy(dir, "/tmp/weft-qreview-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    if (qbackend_url(dir, url, sizeof url) == 0)
        return 0;
    cleanup();                          /* cmocka runs no teardown after a failed setup */
    return -1;
}

static int teardown(void **state)
{
    (void)state;
    cleanup();
    return 0;
}

/* ---- close while another task's call is in flight ------------------------ */

struct closing {
    weft_queue *q;
    int stats_rc;
    bool in_call, done;
};

static int stats_task(void *arg)
{
    struct closing *c = arg;
    weft_queue_stats s;
    c->in_call = true;
    c->stats_rc = weft_queue_stats_get(c->q, NULL, &s);
    c->done = true;
    return 0;
}

static int close_in_flight(void *arg)
{
    (void)arg;
    struct closing c = { 0 };
    EXPECT_EQ(weft_queue_open(&c.q, url, NULL), 0);
    weft_group *g = weft_group_new();
    EXPECT_EQ(weft_spawn(g, stats_task, &c, "stats"), 0);
    weft_yield();                       /* the child runs until its read is on a pool thread */
    EXPECT(c.in_call && !c.done);
    EXPECT_EQ(weft_queue_close(c.q), -EBUSY);
    EXPECT_EQ(weft_group_wait(g), 0);
    EXPECT_EQ(c.stats_rc, 0);
    EXPECT_EQ(weft_queue_close(c.q), 0);
    return 0;
}

static void test_close_waits_for_calls(void **state)
{
    (void)state;
    RUN(close_in_flight, NULL);
}

/* ---- graceful stop of a handler in blocking work ------------------------- */

static int nap(void *arg)
{
    (void)arg;
    usleep(400 * 1000);
    return 0;
}

struct blocking {
    weft_queue *q;
    int runs;
    bool started;
};

static int blocking_fn(const weft_job *job, void *ctx)
{
    (void)job;
    struct blocking *b = ctx;
    b->runs++;
    b->started = true;
    weft_run_blocking(nap, NULL);       /* not interruptible: -ECANCELED after it ran */
    return 0;
}

static int work_task(void *arg)
{
    struct blocking *b = arg;
    weft_job_handler h[] = { { "nap", blocking_fn, b } };
    return weft_queue_work(b->q, "q", h, 1, 2);
}

static int stop_blocked(void *arg)
{
    (void)arg;
    weft_queue_opts o = { .shutdown_grace = 50 * WEFT_MS };
    struct blocking b = { 0 };
    EXPECT_EQ(weft_queue_open(&b.q, url, &o), 0);
    weft_job_id id;
    EXPECT_EQ(weft_queue_enqueue(b.q, "q", "nap", NULL, NULL, &id), 0);
    weft_group *g = weft_group_new();
    EXPECT_EQ(weft_spawn(g, work_task, &b, "worker"), 0);
    WAIT_UNTIL(b.started);
    weft_queue_stop(b.q);
    EXPECT_EQ(weft_group_wait(g), 0);
    /* the handler returned 0 after the grace: acknowledged, never released
     * while it ran (another worker would have run it beside it) */
    weft_job_info i;
    EXPECT_EQ(weft_queue_get(b.q, id, &i), 0);
    EXPECT_EQ(i.state, WEFT_JOB_DONE);
    EXPECT_EQ(i.attempts, 1);
    weft_job_info_free(&i);
    EXPECT_EQ(b.runs, 1);
    EXPECT_EQ(weft_queue_close(b.q), 0);
    return 0;
}

static void test_stop_releases_after_the_handler_ended(void **state)
{
    (void)state;
    RUN(stop_blocked, NULL);
}

/* ---- durations at their limits ------------------------------------------- */

struct sleepers {
    weft_queue *q;
    int started, finished;
};

static int sleep_fn(const weft_job *job, void *ctx)
{
    (void)job;
    struct sleepers *s = ctx;
    s->started++;
    int rc = weft_sleep(100 * WEFT_MS);
    s->finished += rc == 0;
    return rc;
}

static int sleepers_work(void *arg)
{
    struct sleepers *s = arg;
    weft_job_handler h[] = { { "sleep", sleep_fn, s } };
    return weft_queue_work(s->q, "q", h, 1, 4);
}

static int forever_grace(void *arg)
{
    (void)arg;
    weft_queue_opts o = { .shutdown_grace = WEFT_FOREVER };
    struct sleepers s = { 0 };
    EXPECT_EQ(weft_queue_open(&s.q, url, &o), 0);
    for (int i = 0; i < 4; i++)
        EXPECT_EQ(weft_queue_enqueue(s.q, "q", "sleep", NULL, NULL, NULL), 0);
    weft_group *g = weft_group_new();
    EXPECT_EQ(weft_spawn(g, sleepers_work, &s, "worker"), 0);
    WAIT_UNTIL(s.started == 4);
    weft_queue_stop(s.q);
    EXPECT_EQ(weft_group_wait(g), 0);
    EXPECT_EQ(s.finished, 4);           /* an unbounded grace lets them all finish */
    weft_queue_stats st;
    EXPECT_EQ(weft_queue_stats_get(s.q, "q", &st), 0);
    EXPECT_EQ(st.done, 4);
    EXPECT_EQ(st.running, 0);
    EXPECT_EQ(weft_queue_close(s.q), 0);
    return 0;
}

static void test_grace_forever(void **state)
{
    (void)state;
    RUN(forever_grace, NULL);
}

struct failing {
    weft_queue *q;
    int runs;
};

static int fail_fn(const weft_job *job, void *ctx)
{
    (void)job;
    struct failing *f = ctx;
    if (++f->runs == 1)
        weft_queue_stop(f->q);
    return -EIO;
}

static int huge_backoff(void *arg)
{
    (void)arg;
    weft_queue_opts o = { .backoff = WEFT_FOREVER, .backoff_max = WEFT_FOREVER };
    struct failing f = { 0 };
    EXPECT_EQ(weft_queue_open(&f.q, url, &o), 0);
    weft_job_id id;
    EXPECT_EQ(weft_queue_enqueue(f.q, "q", "fail", NULL, NULL, &id), 0);
    weft_job_handler h[] = { { "fail", fail_fn, &f } };
    int64_t before = time(NULL) * 1000LL;
    EXPECT_EQ(weft_queue_work(f.q, "q", h, 1, 1), 0);
    weft_job_info i;
    EXPECT_EQ(weft_queue_get(f.q, id, &i), 0);
    EXPECT_EQ(i.state, WEFT_JOB_SCHEDULED); /* far ahead, not due at once */
    EXPECT(i.run_at_ms > before + 3600 * 1000LL);
    EXPECT_EQ(f.runs, 1);
    weft_job_info_free(&i);
    EXPECT_EQ(weft_queue_close(f.q), 0);
    return 0;
}

static void test_huge_backoff(void **state)
{
    (void)state;
    RUN(huge_backoff, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_close_waits_for_calls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_releases_after_the_handler_ended, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_grace_forever, setup, teardown),
        cmocka_unit_test_setup_teardown(test_huge_backoff, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
