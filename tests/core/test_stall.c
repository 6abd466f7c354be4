/* The stall detector: names the task holding the loop, while it holds it,
 * without changing what the program sees (no EINTR). */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "test.h"

/* Spins without yielding for ms, or, with until_reported, until the
 * watchdog has reported the stall (bounded: a stall that is never reported
 * fails the test instead of hanging it). */
__attribute__((noinline)) int spin_for(int ms, bool until_reported);
__attribute__((noinline)) int spin_for(int ms, bool until_reported)
{
    volatile unsigned long x = 0;
    weft_time until = weft_now() + ms * WEFT_MS;
    while (weft_now() < until && !(until_reported && test_log_has("has held loop")))
        x++;
    return (int)(x & 0);
}

static int spinner(void *arg)
{
    bool until_reported = arg != NULL;
    return spin_for(until_reported ? 10000 : 300, until_reported);
}

int stall_root(void *until_reported);
int stall_root(void *until_reported)
{
    weft_group *g = weft_group_new();
    weft_spawn(g, spinner, until_reported, "spinner");
    return weft_group_wait(g);
}

static void test_busy_task_reported(void **s)
{
    (void)s;
    test_log_capture();
    assert_int_equal(weft_main(stall_root, (void *)1), 0);
    weft_log_set(NULL, NULL, WEFT_LOG_INFO);
    char *first = strstr(test_log, "stall: task 'spinner' (spawned at stall_root");
    assert_non_null(first);
    assert_non_null(strstr(first, "has held loop 0 for"));
    assert_non_null(strstr(first, "without yielding; stack:"));
    assert_non_null(strstr(first, "spin_for"));              /* the current stack */
    char *second = strstr(test_log, "stall: task 'spinner' held loop 0 for");
    assert_non_null(second);
    assert_true(second > first);                             /* reported before it yielded */
    assert_non_null(strstr(second, "in total before yielding"));
    double total = atof(strstr(second, "for ") + 4);
    /* from when the watchdog first saw the loop stuck (it may itself be
     * late on a loaded machine) to the yield: at least the threshold */
    assert_true(total >= 50);
}

static int nap_rc, read_rc;
static weft_time nap_ns;
static int napper(void *unused)
{
    (void)unused;
    weft_time t0 = weft_now();
    /* blocks the loop in a syscall: 300 ms, then on until the watchdog
     * has reported it (bounded), so a slow watchdog does not fail it */
    nap_rc = usleep(300 * 1000);
    for (int i = 0; i < 100 && !nap_rc && !test_log_has("stall: task 'napper'"); i++)
        nap_rc = usleep(100 * 1000);
    nap_ns = weft_now() - t0;
    return 0;
}

static int pipefd[2];
static void *late_writer(void *unused)
{
    (void)unused;
    /* the reader blocks the loop in read() until the stall is reported */
    for (int i = 0; i < 10000 && !test_log_has("stall: task 'reader'"); i++)
        usleep(1000);                            /* bounded poll */
    if (write(pipefd[1], "ok", 2) != 2)
        abort();
    return NULL;
}

static int reader(void *unused)
{
    (void)unused;
    char buf[8];
    read_rc = (int)read(pipefd[0], buf, sizeof buf);   /* blocking read */
    return 0;
}

static int syscall_root(void *fn)
{
    weft_group *g = weft_group_new();
    weft_spawn(g, fn, NULL, fn == (void *)napper ? "napper" : "reader");
    return weft_group_wait(g);
}

static void test_blocking_syscall_reported_without_eintr(void **s)
{
    (void)s;
    test_log_capture();
    assert_int_equal(weft_main(syscall_root, (void *)napper), 0);
    assert_int_equal(nap_rc, 0);                 /* not interrupted */
    assert_true(nap_ns >= 300 * WEFT_MS);
    assert_non_null(strstr(test_log, "stall: task 'napper'"));
    assert_non_null(strstr(test_log, "blocked in syscall"));
    assert_non_null(strstr(test_log, "nanosleep"));
    assert_non_null(strstr(test_log, "stall: task 'napper' held loop 0 for"));

    test_log_capture();
    assert_int_equal(pipe(pipefd), 0);
    pthread_t th;
    pthread_create(&th, NULL, late_writer, NULL);
    assert_int_equal(weft_main(syscall_root, (void *)reader), 0);
    pthread_join(th, NULL);
    weft_log_set(NULL, NULL, WEFT_LOG_INFO);
    assert_int_equal(read_rc, 2);                /* no EINTR */
    assert_non_null(strstr(test_log, "stall: task 'reader'"));
    assert_non_null(strstr(test_log, "blocked in syscall read"));
    close(pipefd[0]);
    close(pipefd[1]);
}

static int yielding(void *unused)
{
    (void)unused;
    weft_time until = weft_now() + 300 * WEFT_MS;
    while (weft_now() < until)
        weft_yield();                            /* busy, but yields */
    return 0;
}

static void test_yielding_task_not_reported(void **s)
{
    (void)s;
    test_log_capture();
    assert_int_equal(weft_main(syscall_root, (void *)yielding), 0);
    weft_log_set(NULL, NULL, WEFT_LOG_INFO);
    assert_null(strstr(test_log, "stall:"));
}

/* The watchdog reports a stall while it happens; the "in total" line that
 * follows names the task that stalled even when the stall ends while the
 * watchdog is still busy reporting it (here: its log sink holds the
 * watchdog until another task runs). */
static _Atomic int first_reported, second_ran;

static void holding_sink(int level, const char *msg, void *ctx)
{
    test_log_sink(level, msg, ctx);
    if (strstr(msg, "stall: task 'first'") && strstr(msg, "without yielding")) {
        atomic_store(&first_reported, 1);
        for (int i = 0; i < 10000 && !atomic_load(&second_ran); i++)
            usleep(1000);                        /* bounded poll */
    }
}

static int first_staller(void *unused)
{
    (void)unused;
    weft_time bound = weft_now() + 10 * WEFT_SEC;
    while (!atomic_load(&first_reported) && weft_now() < bound)
        ;                                        /* holds the loop until reported */
    return 0;
}

static int second_yielder(void *unused)
{
    (void)unused;
    atomic_store(&second_ran, 1);
    weft_time bound = weft_now() + 10 * WEFT_SEC;
    while (!test_log_has("in total before yielding") && weft_now() < bound)
        weft_yield();
    return 0;
}

static int two_tasks_root(void *unused)
{
    (void)unused;
    weft_group *g = weft_group_new();
    weft_spawn(g, first_staller, NULL, "first");
    weft_spawn(g, second_yielder, NULL, "second");
    return weft_group_wait(g);
}

static void test_total_names_the_stalled_task(void **s)
{
    (void)s;
    test_log_capture();
    weft_log_set(holding_sink, NULL, WEFT_LOG_DEBUG);
    assert_int_equal(weft_main(two_tasks_root, NULL), 0);
    weft_log_set(NULL, NULL, WEFT_LOG_INFO);
    assert_true(atomic_load(&first_reported));
    assert_true(atomic_load(&second_ran));
    assert_non_null(strstr(test_log, "stall: task 'first' held loop 0 for"));
    assert_null(strstr(test_log, "stall: task 'second'"));
}

static void test_disabled_with_zero(void **s)
{
    (void)s;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "WEFT_STALL_MS=0 /proc/%d/exe disabled", (int)getpid());
    assert_int_equal(system(cmd), 0);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "disabled") == 0) {
        test_log_capture();
        weft_main(stall_root, NULL);             /* a 300 ms stall, unreported */
        return strstr(test_log, "stall:") ? 1 : 0;
    }
    setenv("WEFT_STALL_MS", "50", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_busy_task_reported),
        cmocka_unit_test(test_blocking_syscall_reported_without_eintr),
        cmocka_unit_test(test_yielding_task_not_reported),
        cmocka_unit_test(test_total_names_the_stalled_task),
        cmocka_unit_test(test_disabled_with_zero),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
