/* weft_run_blocking and the thread pool: values, concurrency, cancellation. */
#include <pthread.h>
#include <stdatomic.h>

#include "test.h"

static int square(void *arg)
{
    int v = *(int *)arg;
    return v * v;
}

/* Bounded polls: a job or task that waits for something to happen gives
 * up after 10 s (and the test fails on what it then sees) instead of
 * hanging, and never sleeps a guessed time instead of waiting. */
#define BOUND (10 * WEFT_SEC)

static _Atomic int ticks;
static int ticker(void *unused)
{
    (void)unused;
    while (weft_sleep(WEFT_MS) == 0)
        atomic_fetch_add(&ticks, 1);
    return 0;
}

/* Runs until the loop has ticked 10 times: only if the loop serves other
 * tasks while the job runs. */
static int until_ticks(void *unused)
{
    (void)unused;
    weft_time bound = weft_now() + BOUND;
    while (atomic_load(&ticks) < 10 && weft_now() < bound)
        usleep(1000);
    return 7;
}

static int values(void *unused)
{
    (void)unused;
    int v = 9;
    EXPECT_EQ(weft_run_blocking(square, &v), 81);
    v = -5;
    EXPECT_EQ(weft_run_blocking(square, &v), 25);
    /* the loop keeps serving other tasks meanwhile */
    atomic_store(&ticks, 0);
    weft_group *g = weft_group_new();
    weft_spawn(g, ticker, NULL, "ticker");
    EXPECT_EQ(weft_run_blocking(until_ticks, NULL), 7);
    EXPECT(atomic_load(&ticks) >= 10);
    weft_group_cancel(g);
    weft_group_wait(g);
    return 0;
}
static void test_values_and_concurrency(void **s) { (void)s; RUN(values, NULL); }

/* A job that waits for its gate (bounded) and records whether the task
 * that submitted it had already returned from weft_run_blocking when it
 * finished: that task must wait for a running job, even when cancelled. */
typedef struct {
    _Atomic bool gate, caller_back, caller_back_at_end;
} gated;

static _Atomic int running, finished;
static int gated_job(void *arg)
{
    gated *j = arg;
    atomic_fetch_add(&running, 1);
    weft_time bound = weft_now() + BOUND;
    while (!atomic_load(&j->gate) && weft_now() < bound)
        usleep(1000);
    atomic_store(&j->caller_back_at_end, atomic_load(&j->caller_back));
    atomic_fetch_add(&finished, 1);
    return 1;
}

static int rb_result[2];
static gated jobs[2];
static int run_gated(void *arg)
{
    intptr_t i = (intptr_t)arg;
    int rc = weft_run_blocking(gated_job, &jobs[i]);
    atomic_store(&jobs[i].caller_back, true);
    rb_result[i] = rc;
    return rc == 1 || rc == -ECANCELED ? 0 : rc;
}

static int open_gate(void *arg)
{
    atomic_store(&((gated *)arg)->gate, true);
    return 0;
}

static int noop(void *unused)
{
    (void)unused;
    return 0;
}

static int cancellation(void *unused)
{
    (void)unused;
    weft_blocking_set_threads(1);             /* one thread so far: it stays one */
    atomic_store(&running, 0);
    atomic_store(&finished, 0);
    memset(jobs, 0, sizeof jobs);
    weft_group *g = weft_group_new();
    weft_spawn(g, run_gated, (void *)0, "first");    /* takes the one thread */
    weft_spawn(g, run_gated, (void *)1, "queued");   /* waits in the queue */
    for (int i = 0; i < 10000 && atomic_load(&running) < 1; i++)
        weft_sleep(WEFT_MS);
    EXPECT_EQ(atomic_load(&running), 1);
    weft_group_cancel(g);
    /* the gate opens only after the cancelled tasks have had their turn:
     * a "first" that did not wait for its job would be back by then */
    weft_group *opener = weft_group_new();
    weft_spawn(opener, open_gate, &jobs[0], "opener");
    EXPECT_EQ(weft_group_wait(g), 0);
    EXPECT_EQ(weft_group_wait(opener), 0);
    EXPECT_EQ(rb_result[0], -ECANCELED);       /* running: waited for, then cancelled */
    EXPECT_EQ(rb_result[1], -ECANCELED);       /* queued: dropped */
    EXPECT_EQ(atomic_load(&finished), 1);      /* the running job completed */
    EXPECT(!atomic_load(&jobs[0].caller_back_at_end));   /* ... before its caller returned */
    /* the queue is FIFO on one thread: once a later job has run, the
     * dropped one would have run before it */
    EXPECT_EQ(weft_run_blocking(noop, NULL), 0);
    EXPECT_EQ(atomic_load(&running), 1);       /* the dropped job never ran */
    weft_blocking_set_threads(16);
    return 0;
}
static void test_cancel_queued_and_running(void **s) { (void)s; RUN(cancellation, NULL); }

/* Sleeps until the scope's deadline has passed on the loop (the timer of
 * a later deadline has fired), then lets the job end. */
typedef struct {
    weft_time deadline;
    gated job;
} timed;

static int past_deadline(void *arg)
{
    timed *t = arg;
    weft_sleep(t->deadline + 1 - weft_now());
    atomic_store(&t->job.gate, true);
    return 0;
}

static int timeouts(void *unused)
{
    (void)unused;
    weft_scope sc;
    timed t;
    memset(&t, 0, sizeof t);
    weft_scope_enter(&sc, 5 * WEFT_MS);
    t.deadline = weft_deadline();
    weft_group *g = weft_group_new();
    weft_spawn(g, past_deadline, &t, "past deadline");
    EXPECT_EQ(weft_run_blocking(gated_job, &t.job), -ETIMEDOUT);
    EXPECT(atomic_load(&t.job.gate));          /* waited for the running fn */
    EXPECT(weft_scope_exit(&sc));
    EXPECT_EQ(weft_group_wait(g), 0);
    return 0;
}
static void test_timeout(void **s) { (void)s; RUN(timeouts, NULL); }

/* 8 jobs on 8 threads run at once: each waits (bounded) until all 8 have
 * started, which only happens if they run in parallel. */
static _Atomic int started;
static int barrier_job(void *unused)
{
    (void)unused;
    atomic_fetch_add(&started, 1);
    weft_time bound = weft_now() + BOUND;
    while (atomic_load(&started) < 8 && weft_now() < bound)
        usleep(1000);
    return atomic_load(&started) >= 8 ? 0 : -ETIMEDOUT;
}

static int run_barrier(void *unused)
{
    return weft_run_blocking(barrier_job, unused);
}

static int parallel(void *unused)
{
    (void)unused;
    weft_blocking_set_threads(8);
    atomic_store(&started, 0);
    weft_group *g = weft_group_new();
    for (int i = 0; i < 8; i++)
        weft_spawn(g, run_barrier, NULL, "p");
    EXPECT_EQ(weft_group_wait(g), 0);
    weft_blocking_set_threads(16);
    return 0;
}
static void test_parallel(void **s) { (void)s; RUN(parallel, NULL); }

static _Atomic int dtor_calls;
static void count_dtor(void *arg)
{
    free(arg);
    atomic_fetch_add(&dtor_calls, 1);
}
static int failing_job(void *arg)
{
    (void)arg;
    return -EIO;
}

static void test_detached(void **s)
{
    (void)s;
    test_log_capture();
    atomic_store(&dtor_calls, 0);
    assert_int_equal(weft_run_blocking_detached(failing_job, malloc(8), count_dtor), 0);
    assert_int_equal(weft_run_blocking_detached(NULL, malloc(8), count_dtor), -EINVAL);
    for (int i = 0; i < 2000 && atomic_load(&dtor_calls) < 2; i++)
        usleep(5000);                          /* bounded poll */
    assert_int_equal(atomic_load(&dtor_calls), 2);   /* ran, and the failed call freed too */
    for (int i = 0; i < 2000 && !test_log_has("detached blocking job failed"); i++)
        usleep(5000);
    assert_true(test_log_has("detached blocking job failed"));
    weft_log_set(NULL, NULL, WEFT_LOG_INFO);
    assert_int_equal(weft_blocking_set_threads(0), -EINVAL);
}

static int short_job(void *unused)
{
    (void)unused;
    atomic_fetch_add(&running, 1);
    usleep(1000);
    atomic_fetch_add(&finished, 1);
    return 1;
}

static int run_short(void *unused)
{
    int rc = weft_run_blocking(short_job, unused);
    return rc == 1 || rc == -ECANCELED ? 0 : rc;
}

static int many_jobs(void *unused)
{
    (void)unused;
    int n = test_scale(2000);
    weft_group *g = weft_group_new();
    for (int i = 0; i < n; i++)
        weft_spawn(g, run_short, NULL, "j");
    /* cancel part way through, once some have run: every job is either
     * dropped or awaited */
    for (int i = 0; i < 10000 && atomic_load(&finished) < 1; i++)
        weft_sleep(WEFT_MS);
    weft_group_cancel(g);
    EXPECT_EQ(weft_group_wait(g), 0);
    /* nothing in flight once every caller is back (a late one would count
     * in running only) */
    EXPECT_EQ(atomic_load(&running), atomic_load(&finished));
    return 0;
}
static void test_cancel_storm(void **s)
{
    (void)s;
    atomic_store(&running, 0);
    atomic_store(&finished, 0);
    RUN(many_jobs, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values_and_concurrency),
        cmocka_unit_test(test_cancel_queued_and_running),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_parallel),
        cmocka_unit_test(test_detached),
        cmocka_unit_test(test_cancel_storm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
