/*
 * The graceful stop: weft_run_with's stop_on_signals (a SIGTERM wakes
 * weft_stop_wait in every loop, the roots finish and the run returns 0;
 * past the grace or at a second signal the roots are cancelled), weft_stop
 * from code, and a plain weft_run that a SIGTERM still kills.
 */
#include <signal.h>
#include <sys/wait.h>

#include "test.h"

static _Atomic int woke, finished;

/* a root that drains on the stop: waits for it, then finishes its work */
static int draining(void *arg)
{
    (void)arg;
    if (weft_loop_index() == 0)
        kill(getpid(), SIGTERM);          /* as an operator would */
    EXPECT_EQ(weft_stop_wait(), 0);
    EXPECT(weft_stopping());
    woke++;
    EXPECT_EQ(weft_sleep(20 * WEFT_MS), 0); /* the work in flight, not cancelled */
    finished++;
    return 0;
}

static void test_signal_stops_gracefully(void **state)
{
    (void)state;
    woke = finished = 0;
    test_failures = 0;
    weft_run_opts o = { .threads = 2, .stop_on_signals = true, .grace = 10 * WEFT_SEC };
    assert_int_equal(weft_run_with(&o, draining, NULL), 0);
    assert_int_equal(test_failures, 0);
    assert_int_equal(woke, 2);
    assert_int_equal(finished, 2);
    /* the caller's mask is back: SIGTERM is not blocked after the run */
    sigset_t now;
    pthread_sigmask(SIG_SETMASK, NULL, &now);
    assert_false(sigismember(&now, SIGTERM));
}

/* a root that ignores the stop */
static int stubborn(void *arg)
{
    int *signals = arg;
    if (weft_loop_index() == 0)
        for (int i = 0; i < *signals; i++) {
            kill(getpid(), SIGINT);
            weft_sleep(20 * WEFT_MS);
        }
    int rc = weft_sleep(60 * WEFT_SEC);
    EXPECT_EQ(rc, -ECANCELED);
    return rc;
}

static void test_grace_over_cancels(void **state)
{
    (void)state;
    int signals = 1;
    test_failures = 0;
    weft_run_opts o = { .threads = 2, .stop_on_signals = true, .grace = 100 * WEFT_MS };
    assert_int_equal(weft_run_with(&o, stubborn, &signals), -ECANCELED);
    assert_int_equal(test_failures, 0);
}

static void test_second_signal_cancels(void **state)
{
    (void)state;
    int signals = 2;
    test_failures = 0;
    weft_time t0 = weft_now();
    weft_run_opts o = { .threads = 1, .stop_on_signals = true, .grace = 60 * WEFT_SEC };
    assert_int_equal(weft_run_with(&o, stubborn, &signals), -ECANCELED);
    assert_int_equal(test_failures, 0);
    assert_true(weft_now() - t0 < 30 * WEFT_SEC);   /* not the grace: the second signal */
}

/* weft_stop from code, from another thread, under a plain weft_run */
static void *stopper(void *arg)
{
    (void)arg;
    usleep(10 * 1000);
    weft_stop();
    return NULL;
}

static int waits_for_stop(void *arg)
{
    (void)arg;
    pthread_t t;
    EXPECT_EQ(pthread_create(&t, NULL, stopper, NULL), 0);
    EXPECT_EQ(weft_stop_wait(), 0);
    EXPECT_EQ(weft_stop_wait(), 0);       /* stays started */
    pthread_join(t, NULL);
    return 0;
}

static void test_stop_from_code(void **state)
{
    (void)state;
    RUN(waits_for_stop, NULL);
    /* a new run starts without a stop */
    weft_run_opts o = { .threads = 1, .stop_on_signals = true, .grace = WEFT_SEC };
    woke = finished = 0;
    test_failures = 0;
    assert_int_equal(weft_run_with(&o, draining, NULL), 0);
    assert_int_equal(finished, 1);
}

/* without the opt-in a SIGTERM is the default action: the process dies */
static int plain(void *arg)
{
    (void)arg;
    kill(getpid(), SIGTERM);
    weft_sleep(5 * WEFT_SEC);
    return 0;
}

static void child_plain(void *arg)
{
    (void)arg;
    weft_run(1, plain, NULL);
    _exit(0);
}

static void test_plain_run_is_killed(void **state)
{
    (void)state;
    if (getenv("WEFT_UNDER_SANITIZER"))
        skip();                           /* TSan's runtime in a forked child is no place for it */
    char out[256];
    int status = run_in_child(child_plain, NULL, out, sizeof out);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
}

static void test_bad_opts(void **state)
{
    (void)state;
    assert_int_equal(weft_run_with(NULL, plain, NULL), -EINVAL);
    weft_run_opts o = { .threads = 1, .grace = -1 };
    assert_int_equal(weft_run_with(&o, plain, NULL), -EINVAL);
    assert_int_equal(weft_stop_wait(), -EPERM);
}


/* a stop belongs to its run: the next run starts without one */
static int stops(void *arg)
{
    (void)arg;
    weft_stop();
    return 0;
}

static int not_stopping(void *arg)
{
    (void)arg;
    EXPECT(!weft_stopping());
    return 0;
}

static void test_stop_per_run(void **state)
{
    (void)state;
    assert_int_equal(weft_run(1, stops, NULL), 0);
    test_failures = 0;
    assert_int_equal(weft_run(1, not_stopping, NULL), 0);
    assert_int_equal(test_failures, 0);
    assert_int_equal(weft_main(stops, NULL), 0);
    RUN(not_stopping, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signal_stops_gracefully), cmocka_unit_test(test_grace_over_cancels),
        cmocka_unit_test(test_second_signal_cancels), cmocka_unit_test(test_stop_from_code),
        cmocka_unit_test(test_plain_run_is_killed), cmocka_unit_test(test_bad_opts),
        cmocka_unit_test(test_stop_per_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
