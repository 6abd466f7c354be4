/* The task dump is complete however many tasks there are: by API, in the
 * deadlock report and on SIGQUIT, every task's name, spawn site, state
 * and wait reason. */
#include "test.h"

/* A sink that keeps every message, however long the log gets (test.h's
 * capture stops at 64 KiB). */
static char *log_buf;
static size_t log_len, log_cap;
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;

static void growing_sink(int level, const char *msg, void *ctx)
{
    (void)level;
    (void)ctx;
    size_t n = strlen(msg);
    pthread_mutex_lock(&log_mu);
    if (log_len + n + 2 > log_cap) {
        log_cap = (log_len + n + 2) * 2;
        log_buf = realloc(log_buf, log_cap);
        if (!log_buf)
            abort();
    }
    memcpy(log_buf + log_len, msg, n);
    log_len += n;
    log_buf[log_len++] = '\n';
    log_buf[log_len] = 0;
    pthread_mutex_unlock(&log_mu);
}

static void log_start(void)
{
    pthread_mutex_lock(&log_mu);
    log_len = 0;
    if (log_buf)
        log_buf[0] = 0;
    pthread_mutex_unlock(&log_mu);
    weft_log_set(growing_sink, NULL, WEFT_LOG_DEBUG);
}

static bool log_has(const char *s)
{
    pthread_mutex_lock(&log_mu);
    bool found = log_buf && strstr(log_buf, s);
    pthread_mutex_unlock(&log_mu);
    return found;
}

/* Counts the distinct tasks "w<i>" (i < n) that have a complete line in
 * text: "task 'w<i>' waiting on event wait, spawned at spawn_waiters+0x..". */
static int count_waiters(const char *text, int n)
{
    char *seen = calloc((size_t)n, 1);
    int distinct = 0;
    for (const char *p = text; p && (p = strstr(p, "task 'w")); p++) {
        int i, end = 0;
        if (sscanf(p, "task 'w%d' waiting on event wait, spawned at spawn_waiters+0x%*x%n",
                   &i, &end) == 1 && end > 0 && i >= 0 && i < n && !seen[i]) {
            seen[i] = 1;
            distinct++;
        }
    }
    free(seen);
    return distinct;
}

static weft_event never;

static int waiter(void *unused)
{
    (void)unused;
    return weft_event_wait(&never);
}

/* Spawns n tasks named w0..w<n-1> that wait on `never`, and lets them
 * all reach their wait. */
weft_group *spawn_waiters(int n);
weft_group *spawn_waiters(int n)
{
    weft_event_init(&never);
    weft_group *g = weft_group_new();
    for (int i = 0; i < n; i++) {
        char name[16];
        snprintf(name, sizeof name, "w%d", i);
        if (weft_spawn(g, waiter, NULL, name) != 0)
            EXPECT(!"spawn failed");
    }
    weft_yield();                              /* each ran once and now waits */
    return g;
}

static int api_root(void *arg)
{
    int n = *(int *)arg;
    weft_group *g = spawn_waiters(n);
    size_t need = weft_task_dump(NULL, 0);
    char *buf = malloc(need + 1);
    EXPECT(buf != NULL);
    EXPECT_EQ(weft_task_dump(buf, need + 1), need);
    EXPECT_EQ(strlen(buf), need);
    EXPECT_EQ(count_waiters(buf, n), n);
    EXPECT(strstr(buf, "task 'main' running") != NULL);
    /* a short buffer gets a NUL-terminated prefix and the full length */
    char small[64];
    EXPECT_EQ(weft_task_dump(small, sizeof small), need);
    EXPECT_EQ(strlen(small), sizeof small - 1);
    free(buf);
    weft_event_set(&never);
    return weft_group_wait(g);
}

static void test_api_dump_complete(void **s)
{
    (void)s;
    int n = test_scale(10000);               /* TSan allows ~8000 fibers */
    RUN(api_root, &n);
}

static int deadlock_root(void *arg)
{
    weft_group *g = spawn_waiters(*(int *)arg);
    return weft_group_wait(g);                 /* nothing will ever set `never` */
}

static void check_deadlock_dump(int n)
{
    log_start();
    test_failures = 0;
    assert_int_equal(weft_main(deadlock_root, &n), -EDEADLK);
    assert_int_equal(test_failures, 0);
    weft_log_set(NULL, NULL, WEFT_LOG_INFO);
    assert_true(log_has("deadlock: all"));
    assert_int_equal(count_waiters(log_buf, n), n);
    assert_non_null(strstr(log_buf, "task 'main' waiting on group wait"));
}

static void test_deadlock_dump_complete(void **s)
{
    (void)s;
    check_deadlock_dump(200);
    check_deadlock_dump(test_scale(10000));
}

static int sigquit_root(void *arg)
{
    int n = *(int *)arg;
    weft_group *g = spawn_waiters(n);
    EXPECT_EQ(kill(getpid(), SIGQUIT), 0);
    /* a helper thread asks the loop for its dump, which the loop logs
     * whole at its next turn: wait for it with a bound */
    for (int i = 0; i < 10000 && !log_has("task dump of loop 0"); i++)
        weft_sleep(WEFT_MS);
    EXPECT(log_has("task dump of loop 0"));
    pthread_mutex_lock(&log_mu);
    EXPECT_EQ(count_waiters(log_buf, n), n);
    pthread_mutex_unlock(&log_mu);
    weft_event_set(&never);
    return weft_group_wait(g);
}

static void test_sigquit_dump_complete(void **s)
{
    (void)s;
    int n = 200;
    log_start();
    RUN(sigquit_root, &n);
    n = test_scale(10000);
    log_start();
    RUN(sigquit_root, &n);
    weft_log_set(NULL, NULL, WEFT_LOG_INFO);
}

int main(void)
{
    unsetenv("WEFT_NO_SIGQUIT");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_api_dump_complete),
        cmocka_unit_test(test_deadlock_dump_complete),
        cmocka_unit_test(test_sigquit_dump_complete),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    free(log_buf);
    return rc;
}
