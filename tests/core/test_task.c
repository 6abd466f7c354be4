/* Tasks, the loop, sleeping, yielding, misuse outside a task. */
#include "test.h"

static int trace[64], ntrace;

static int yielder(void *arg)
{
    for (int i = 0; i < 3; i++) {
        trace[ntrace++] = (int)(intptr_t)arg;
        EXPECT_EQ(weft_yield(), 0);
    }
    return 0;
}

static int fifo_order(void *unused)
{
    (void)unused;
    ntrace = 0;
    weft_group *g = weft_group_new();
    for (intptr_t i = 1; i <= 3; i++)
        EXPECT_EQ(weft_spawn(g, yielder, (void *)i, "y"), 0);
    EXPECT_EQ(weft_group_wait(g), 0);
    int want[] = { 1, 2, 3, 1, 2, 3, 1, 2, 3 };
    EXPECT_EQ(ntrace, 9);
    EXPECT(memcmp(trace, want, sizeof want) == 0);
    return 0;
}
static void test_fifo_order(void **s) { (void)s; RUN(fifo_order, NULL); }

static int sleeps(void *unused)
{
    (void)unused;
    weft_time t0 = weft_now();
    EXPECT_EQ(weft_sleep(20 * WEFT_MS), 0);
    weft_time dt = weft_now() - t0;
    EXPECT(dt >= 20 * WEFT_MS);
    EXPECT(dt < WEFT_SEC);                /* generous: CI machines are loaded */
    /* sub-millisecond sleeps are not rounded down to zero */
    for (int i = 0; i < 20; i++) {
        t0 = weft_now();
        EXPECT_EQ(weft_sleep(300 * WEFT_US), 0);
        EXPECT(weft_now() - t0 >= 300 * WEFT_US);
    }
    EXPECT_EQ(weft_sleep(0), 0);
    EXPECT_EQ(weft_sleep(-5), 0);
    return 0;
}
static void test_sleep(void **s) { (void)s; RUN(sleeps, NULL); }

static int wake_order[8], nwake;
static int sleep_for(void *arg)
{
    weft_sleep((weft_time)(intptr_t)arg * WEFT_MS);
    wake_order[nwake++] = (int)(intptr_t)arg;
    return 0;
}

static int timer_order(void *unused)
{
    (void)unused;
    nwake = 0;
    weft_group *g = weft_group_new();
    int ms[] = { 30, 10, 50, 20, 40 };
    for (int i = 0; i < 5; i++)
        weft_spawn(g, sleep_for, (void *)(intptr_t)ms[i], "s");
    EXPECT_EQ(weft_group_wait(g), 0);
    int want[] = { 10, 20, 30, 40, 50 };
    EXPECT(memcmp(wake_order, want, sizeof want) == 0);
    return 0;
}
static void test_timer_order(void **s) { (void)s; RUN(timer_order, NULL); }

static int named(void *arg)
{
    const char *want = arg;
    EXPECT(strcmp(weft_task_name(weft_self()), want) == 0);
    return 0;
}

static int names(void *unused)
{
    (void)unused;
    EXPECT(strcmp(weft_task_name(weft_self()), "main") == 0);
    weft_group *g = weft_group_new();
    weft_spawn(g, named, "worker", "worker");
    weft_spawn(g, named, "task", NULL);
    weft_spawn(g, named, "0123456789012345678901234567890",
               "0123456789012345678901234567890123456789");   /* truncated to 31 */
    EXPECT_EQ(weft_group_wait(g), 0);
    return 0;
}
static void test_names(void **s) { (void)s; RUN(names, NULL); }

static void test_outside_task(void **s)
{
    (void)s;
    assert_int_equal(weft_yield(), -EPERM);
    assert_int_equal(weft_sleep(WEFT_MS), -EPERM);
    assert_int_equal(weft_fd_wait(0, WEFT_READ), -EPERM);
    assert_int_equal(weft_run_blocking(NULL, NULL), -EPERM);
    assert_null(weft_self());
    assert_true(weft_deadline() == WEFT_FOREVER);
    errno = 0;
    assert_null(weft_group_new());
    assert_int_equal(errno, EPERM);
    assert_int_equal(weft_spawn(NULL, NULL, NULL, NULL), -EPERM);
    weft_sem sem;
    weft_sem_init(&sem, 1);
    assert_int_equal(weft_sem_acquire(&sem), -EPERM);
    assert_int_equal(weft_loop_index(), -EPERM);
    assert_int_equal(weft_main(NULL, NULL), -EINVAL);
    sigset_t set;
    sigemptyset(&set);
    assert_int_equal(weft_signal_wait(&set), -EPERM);
}

static int nested_main(void *unused)
{
    (void)unused;
    EXPECT_EQ(weft_main(nested_main, NULL), -EBUSY);
    EXPECT_EQ(weft_loop_index(), 0);
    EXPECT_EQ(weft_loop_count(), 1);
    return 0;
}
static void test_nested_main(void **s) { (void)s; RUN(nested_main, NULL); }

static int bad_args(void *unused)
{
    (void)unused;
    weft_group *g = weft_group_new();
    EXPECT_EQ(weft_spawn(NULL, named, NULL, "x"), -EINVAL);
    EXPECT_EQ(weft_spawn(g, NULL, NULL, "x"), -EINVAL);
    EXPECT_EQ(weft_task_cancel(NULL), -EINVAL);
    EXPECT_EQ(weft_fd_wait(-1, WEFT_READ), -EINVAL);
    EXPECT_EQ(weft_fd_wait(0, 0), -EINVAL);
    EXPECT_EQ(weft_fd_wait(0, 8), -EINVAL);
    EXPECT_EQ(weft_signal_wait(NULL), -EINVAL);
    EXPECT_EQ(weft_run_blocking(NULL, NULL), -EINVAL);
    EXPECT_EQ(weft_sem_acquire(NULL), -EINVAL);
    EXPECT_EQ(weft_group_wait(NULL), -EINVAL);
    EXPECT_EQ(weft_group_wait(g), 0);
    return 0;
}
static void test_bad_args(void **s) { (void)s; RUN(bad_args, NULL); }

static int result_code(void *arg) { return (int)(intptr_t)arg; }
static void test_main_returns_result(void **s)
{
    (void)s;
    assert_int_equal(weft_main(result_code, (void *)(intptr_t)-EIO), -EIO);
    assert_int_equal(weft_main(result_code, (void *)0), 0);
}

static int self_cancel(void *unused)
{
    (void)unused;
    EXPECT(!weft_cancelled());
    EXPECT_EQ(weft_task_cancel(weft_self()), 0);
    EXPECT(weft_cancelled());
    EXPECT_EQ(weft_yield(), -ECANCELED);
    EXPECT_EQ(weft_sleep(WEFT_MS), -ECANCELED);
    EXPECT_EQ(weft_sleep(0), -ECANCELED);
    return 0;
}
static void test_self_cancel(void **s) { (void)s; RUN(self_cancel, NULL); }

static int cancel_sleeper(void *unused)
{
    (void)unused;
    weft_time t0 = weft_now();
    EXPECT_EQ(weft_sleep(10 * WEFT_SEC), -ECANCELED);
    EXPECT(weft_now() - t0 < WEFT_SEC);
    EXPECT_EQ(weft_yield(), -ECANCELED);   /* and every later call */
    return -ECANCELED;
}

static int cancel_waiting(void *unused)
{
    (void)unused;
    weft_group *g = weft_group_new();
    weft_spawn(g, cancel_sleeper, NULL, "sleeper");
    weft_sleep(5 * WEFT_MS);
    weft_group_cancel(g);
    EXPECT_EQ(weft_group_wait(g), 0);
    return 0;
}
static void test_cancel_sleep(void **s) { (void)s; RUN(cancel_waiting, NULL); }

static int count_up(void *arg)
{
    (*(int *)arg)++;
    return 0;
}

static int many(void *unused)
{
    (void)unused;
    int n = 0, total = test_scale(100000);
    weft_group *g = weft_group_new();
    for (int i = 0; i < total; i++)
        EXPECT_EQ(weft_spawn(g, count_up, &n, "n"), 0);
    EXPECT_EQ(weft_group_size(g), total);
    EXPECT_EQ(weft_group_wait(g), 0);
    EXPECT_EQ(n, total);
    return 0;
}
static void test_many_tasks(void **s) { (void)s; RUN(many, NULL); }

int dumper(void *unused);
int dumper(void *unused)
{
    (void)unused;
    weft_group *g = weft_group_new();
    weft_spawn(g, cancel_sleeper, NULL, "dump-sleeper");
    weft_yield();
    char buf[4096];
    size_t n = weft_task_dump(buf, sizeof buf);
    EXPECT(n == strlen(buf));
    EXPECT(strstr(buf, "task 'main' running") != NULL);
    EXPECT(strstr(buf, "task 'dump-sleeper' waiting on sleep") != NULL);
    EXPECT(strstr(buf, "spawned at dumper+0x") != NULL);
    char small[8];
    EXPECT_EQ(weft_task_dump(small, sizeof small), n);
    EXPECT_EQ(strlen(small), 7);
    weft_group_cancel(g);
    weft_group_wait(g);
    return 0;
}
static void test_task_dump(void **s) { (void)s; RUN(dumper, NULL); }

/* weft_run: the first failing loop cancels the others; its error is returned */
static int loop_body(void *unused)
{
    (void)unused;
    if (weft_loop_index() == 1) {
        weft_sleep(10 * WEFT_MS);
        return -EIO;
    }
    int rc = weft_sleep(10 * WEFT_SEC);
    return rc == -ECANCELED ? rc : -EBADMSG;
}

static void test_run_first_error_cancels_others(void **s)
{
    (void)s;
    weft_time t0 = weft_now();
    assert_int_equal(weft_run(3, loop_body, NULL), -EIO);
    assert_true(weft_now() - t0 < 5 * WEFT_SEC);
    assert_int_equal(weft_run(-1, loop_body, NULL), -EINVAL);
    assert_int_equal(weft_run(2, NULL, NULL), -EINVAL);
}

static int counted;
static int count_loop(void *unused)
{
    (void)unused;
    __atomic_add_fetch(&counted, 1, __ATOMIC_RELAXED);
    return weft_loop_count() == 2 ? 0 : -EBADMSG;
}

static void test_run_every_loop(void **s)
{
    (void)s;
    counted = 0;
    assert_int_equal(weft_run(2, count_loop, NULL), 0);
    assert_int_equal(counted, 2);
    counted = 0;
    assert_int_equal(weft_run(0, count_loop, NULL) == 0 || sysconf(_SC_NPROCESSORS_ONLN) != 2, 1);
}

/* deadlock: every task waits on something only another waiting task
 * could provide; weft names them and unwinds instead of hanging */
static int wait_sem(void *arg)
{
    return weft_sem_acquire(arg);
}

int deadlock_root(void *unused);
int deadlock_root(void *unused)
{
    (void)unused;
    weft_sem a, b;
    weft_sem_init(&a, 0);
    weft_sem_init(&b, 0);
    weft_group *g = weft_group_new();
    weft_spawn(g, wait_sem, &a, "waits-for-a");
    weft_spawn(g, wait_sem, &b, "waits-for-b");
    return weft_group_wait(g);
}

static int lonely(void *unused)
{
    (void)unused;
    weft_event ev;
    weft_event_init(&ev);
    return weft_event_wait(&ev);
}

static void test_deadlock_detected(void **s)
{
    (void)s;
    test_log_capture();
    assert_int_equal(weft_main(deadlock_root, NULL), -EDEADLK);
    assert_non_null(strstr(test_log, "deadlock: all 3 tasks of loop 0 are waiting"));
    assert_non_null(strstr(test_log, "task 'waits-for-a' waiting on sem acquire"));
    assert_non_null(strstr(test_log, "task 'main' waiting on group wait"));
    assert_int_equal(weft_main(lonely, NULL), -EDEADLK);
    weft_log_set(NULL, NULL, WEFT_LOG_INFO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo_order),   cmocka_unit_test(test_sleep),
        cmocka_unit_test(test_timer_order),  cmocka_unit_test(test_names),
        cmocka_unit_test(test_outside_task), cmocka_unit_test(test_nested_main),
        cmocka_unit_test(test_bad_args),     cmocka_unit_test(test_main_returns_result),
        cmocka_unit_test(test_self_cancel),  cmocka_unit_test(test_cancel_sleep),
        cmocka_unit_test(test_many_tasks),   cmocka_unit_test(test_task_dump),
        cmocka_unit_test(test_run_first_error_cancels_others),
        cmocka_unit_test(test_run_every_loop),
        cmocka_unit_test(test_deadlock_detected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
