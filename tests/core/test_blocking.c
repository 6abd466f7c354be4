/* weft_run_blocking and the thread pool: values, concurrency, cancellation. */
#include <pthread.h>
#include <stdatomic.h>

#include "test.h"

static int square(void *arg)
{
    int v = *(int *)arg;
    return v * v;
}

static int slow(void *arg)
{
    usleep(*(int *)arg * 1000);
    return 7;
}

static int ticks;
static int ticker(void *unused)
{
    (void)unused;
    while (weft_sleep(WEFT_MS) == 0)
        ticks++;
    return 0;
}

static int values(void *unused)
{
    (void)unused;
    int v = 9;
    EXPECT_EQ(weft_run_blocking(square, &v), 81);
    v = -5;
    EXPECT_EQ(weft_run_blocking(square, &v), 25);
    /* the loop keeps serving other tasks meanwhile */
    ticks = 0;
    weft_group *g = weft_group_new();
    weft_spawn(g, ticker, NULL, "ticker");
    int ms = 50;
    EXPECT_EQ(weft_run_blocking(slow, &ms), 7);
    EXPECT(ticks >= 10);
    weft_group_cancel(g);
    weft_group_wait(g);
    return 0;
}
static void test_values_and_concurrency(void **s) { (void)s; RUN(values, NULL); }

static _Atomic int running, finished;
static int tracked(void *arg)
{
    atomic_fetch_add(&running, 1);
    usleep(*(int *)arg * 1000);
    atomic_fetch_add(&finished, 1);
    return 1;
}

static int rb_result[4];
static int run_tracked(void *arg)
{
    static int durations[] = { 80, 80, 100, 1 };
    int ms = durations[(intptr_t)arg];
    int rc = weft_run_blocking(tracked, &ms);
    rb_result[(intptr_t)arg] = rc;
    return rc == 1 || rc == -ECANCELED ? 0 : rc;
}

static int cancellation(void *unused)
{
    (void)unused;
    weft_blocking_set_threads(1);
    atomic_store(&running, 0);
    atomic_store(&finished, 0);
    weft_group *g = weft_group_new();
    weft_spawn(g, run_tracked, (void *)0, "first");   /* takes the one thread */
    weft_spawn(g, run_tracked, (void *)1, "queued");  /* waits in the queue */
    weft_sleep(20 * WEFT_MS);
    EXPECT_EQ(atomic_load(&running), 1);
    weft_time t0 = weft_now();
    weft_group_cancel(g);
    EXPECT_EQ(weft_group_wait(g), 0);
    weft_time dt = weft_now() - t0;
    EXPECT_EQ(rb_result[0], -ECANCELED);       /* running: waited for, then cancelled */
    EXPECT_EQ(rb_result[1], -ECANCELED);       /* queued: dropped */
    EXPECT_EQ(atomic_load(&finished), 1);      /* the running job completed */
    EXPECT(dt >= 40 * WEFT_MS);                /* the wait covered the running job */
    usleep(100000);
    EXPECT_EQ(atomic_load(&running), 1);       /* the dropped job never ran */
    weft_blocking_set_threads(16);
    return 0;
}
static void test_cancel_queued_and_running(void **s) { (void)s; RUN(cancellation, NULL); }

static int timeouts(void *unused)
{
    (void)unused;
    weft_scope sc;
    int ms = 30;
    weft_scope_enter(&sc, 5 * WEFT_MS);
    weft_time t0 = weft_now();
    EXPECT_EQ(weft_run_blocking(slow, &ms), -ETIMEDOUT);
    EXPECT(weft_now() - t0 >= 25 * WEFT_MS);   /* waited for the running fn */
    EXPECT(weft_scope_exit(&sc));
    return 0;
}
static void test_timeout(void **s) { (void)s; RUN(timeouts, NULL); }

static int parallel(void *unused)
{
    (void)unused;
    /* 8 jobs of 100 ms on 8 threads finish in about 100 ms, not 800 */
    weft_blocking_set_threads(8);
    weft_group *g = weft_group_new();
    weft_time t0 = weft_now();
    for (int i = 0; i < 8; i++)
        weft_spawn(g, run_tracked, (void *)2, "p");
    EXPECT_EQ(weft_group_wait(g), 0);
    EXPECT(weft_now() - t0 < 600 * WEFT_MS);
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
    for (int i = 0; i < 200 && atomic_load(&dtor_calls) < 2; i++)
        usleep(5000);
    assert_int_equal(atomic_load(&dtor_calls), 2);   /* ran, and the failed call freed too */
    for (int i = 0; i < 200 && !test_log_has("detached blocking job failed"); i++)
        usleep(5000);
    assert_true(test_log_has("detached blocking job failed"));
    weft_log_set(NULL, NULL, WEFT_LOG_INFO);
    assert_int_equal(weft_blocking_set_threads(0), -EINVAL);
}

static int many_jobs(void *unused)
{
    (void)unused;
    int n = test_scale(2000);
    weft_group *g = weft_group_new();
    for (int i = 0; i < n; i++)
        weft_spawn(g, run_tracked, (void *)3, "j");
    /* cancel half way through: every job is either dropped or awaited */
    weft_sleep(2 * WEFT_MS);
    weft_group_cancel(g);
    EXPECT_EQ(weft_group_wait(g), 0);
    return 0;
}
static void test_cancel_storm(void **s)
{
    (void)s;
    atomic_store(&running, 0);
    atomic_store(&finished, 0);
    RUN(many_jobs, NULL);
    usleep(50000);
    assert_int_equal(atomic_load(&running), atomic_load(&finished));   /* nothing in flight */
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
