/* Core services: error codes, the log hook, metrics, the allocator hook,
 * the SIGQUIT task dump. */
#include <stdatomic.h>

#include "test.h"

static void test_errors(void **s)
{
    (void)s;
    assert_string_equal(weft_strerror(-ETIMEDOUT), "deadline exceeded");
    assert_string_equal(weft_strerror(-ECANCELED), "cancelled");
    assert_string_equal(weft_strerror(-WEFT_ECONNECT_TIMEOUT), "connect timeout");
    assert_string_equal(weft_strerror(WEFT_EREAD_TIMEOUT), "read timeout");
    assert_string_equal(weft_strerror(-WEFT_EWRITE_TIMEOUT), "write timeout");
    assert_string_equal(weft_strerror(-WEFT_EPOOL_TIMEOUT), "pool timeout");
    assert_string_equal(weft_strerror(-ECONNREFUSED), "Connection refused");
    assert_string_equal(weft_strerror(0), "success");
    assert_string_equal(weft_strerror(-WEFT_ERR_END - 5), "unknown weft error");
    assert_string_equal(weft_errname(-EPIPE), "EPIPE");
    assert_string_equal(weft_errname(-WEFT_EPOOL_TIMEOUT), "WEFT_EPOOL_TIMEOUT");
    assert_true(weft_is_timeout(-ETIMEDOUT));
    assert_true(weft_is_timeout(-WEFT_ECONNECT_TIMEOUT));
    assert_true(weft_is_timeout(-WEFT_EREAD_TIMEOUT));
    assert_true(weft_is_timeout(-WEFT_EWRITE_TIMEOUT));
    assert_true(weft_is_timeout(-WEFT_EPOOL_TIMEOUT));
    assert_true(weft_is_timeout(WEFT_EPOOL_TIMEOUT));
    assert_false(weft_is_timeout(-ECANCELED));
    assert_false(weft_is_timeout(-EPIPE));
    assert_false(weft_is_timeout(0));
    assert_false(weft_is_timeout(-WEFT_EBROKEN));
    assert_true(WEFT_ECONNECT_TIMEOUT > 4095);  /* above the errno range */
}

static void test_log_hook(void **s)
{
    (void)s;
    test_log_capture();
    weft_log(WEFT_LOG_WARN, "hello %d", 42);
    weft_log(WEFT_LOG_DEBUG, "debug line");
    assert_non_null(strstr(test_log, "warn: hello 42\n"));
    assert_non_null(strstr(test_log, "debug: debug line\n"));
    weft_log_set(test_log_sink, NULL, WEFT_LOG_ERROR);
    test_log_len = 0;
    test_log[0] = 0;
    weft_log(WEFT_LOG_WARN, "dropped");
    assert_int_equal(test_log_len, 0);
    weft_log_set(NULL, NULL, WEFT_LOG_INFO);
    assert_string_equal(weft_log_level_name(WEFT_LOG_ERROR), "error");
}

static void test_metrics(void **s)
{
    (void)s;
    weft_metric *c = weft_counter("test_requests_total{route=\"/a\"}", "Requests served");
    weft_metric *c2 = weft_counter("test_requests_total{route=\"/b\"}", NULL);
    weft_metric *g = weft_gauge("test_in_flight", "In flight");
    double b[] = { 0.001, 0.01, 0.1 };
    weft_metric *h = weft_histogram("test_latency_seconds", "Latency", b, 3);
    assert_non_null(c);
    assert_non_null(c2);
    assert_non_null(g);
    assert_non_null(h);
    assert_ptr_equal(weft_counter("test_requests_total{route=\"/a\"}", NULL), c);
    errno = 0;
    assert_null(weft_gauge("test_requests_total{route=\"/a\"}", NULL));   /* type clash */
    assert_int_equal(errno, EINVAL);
    assert_null(weft_counter("9bad", NULL));
    assert_null(weft_counter("bad{unclosed", NULL));
    double bad[] = { 1, 1 };
    assert_null(weft_histogram("test_h2", NULL, bad, 2));
    weft_metric_add(c, 3);
    weft_metric_add(c2, 1);
    weft_metric_set(g, 7);
    weft_metric_add(g, -2);
    weft_metric_observe(h, 0.005);
    weft_metric_observe(h, 0.5);
    weft_metric_observe(h, 0.0001);
    assert_int_equal(weft_metric_value(c), 3);
    assert_int_equal(weft_metric_value(g), 5);
    assert_int_equal(weft_metric_value(h), 3);
    char buf[8192];
    size_t n = weft_metrics_render(buf, sizeof buf);
    assert_int_equal(n, strlen(buf));
    assert_non_null(strstr(buf, "# HELP test_requests_total Requests served\n"
                                "# TYPE test_requests_total counter\n"
                                "test_requests_total{route=\"/a\"} 3\n"
                                "test_requests_total{route=\"/b\"} 1\n"));
    assert_non_null(strstr(buf, "# TYPE test_in_flight gauge\ntest_in_flight 5\n"));
    assert_non_null(strstr(buf, "test_latency_seconds_bucket{le=\"0.001\"} 1\n"));
    assert_non_null(strstr(buf, "test_latency_seconds_bucket{le=\"0.01\"} 2\n"));
    assert_non_null(strstr(buf, "test_latency_seconds_bucket{le=\"0.1\"} 2\n"));
    assert_non_null(strstr(buf, "test_latency_seconds_bucket{le=\"+Inf\"} 3\n"));
    assert_non_null(strstr(buf, "test_latency_seconds_count 3\n"));
    assert_non_null(strstr(buf, "test_latency_seconds_sum 0.5051"));
    char tiny[10];
    assert_int_equal(weft_metrics_render(tiny, sizeof tiny), n);
    assert_int_equal(strlen(tiny), 9);
}

/* ---- fault injection: fail each allocation in turn ---------------------- */

static int alloc_countdown = -1, alloc_count;
static void *fail_malloc(size_t n)
{
    alloc_count++;
    if (alloc_countdown == 0)
        return NULL;
    if (alloc_countdown > 0)
        alloc_countdown--;
    return malloc(n);
}
static void *fail_realloc(void *p, size_t n)
{
    alloc_count++;
    if (alloc_countdown == 0)
        return NULL;
    if (alloc_countdown > 0)
        alloc_countdown--;
    return realloc(p, n);
}
static const weft_allocator failing = { fail_malloc, fail_realloc, free };

static int child_ok(void *arg)
{
    weft_chan *c = arg;
    int v = 1;
    return weft_chan_send(c, &v);
}

/* a workload touching every allocating path; every failure must be clean */
static int workload(void *unused)
{
    (void)unused;
    weft_chan *c = weft_chan_new(sizeof(int), 300);
    if (!c)
        return -errno;
    weft_group *g = weft_group_new();
    if (!g) {
        weft_chan_free(c);
        return -errno;
    }
    int rc = 0, spawned = 0;
    for (int i = 0; i < 300 && rc == 0; i++)
        if ((rc = weft_spawn(g, child_ok, c, "child")) == 0)
            spawned++;
    int err = weft_group_wait(g);
    int v, got = 0;
    while (weft_chan_try_recv(c, &v) == 0)
        got++;
    weft_chan_free(c);
    if (got != spawned && !err)
        return -EBADMSG;                   /* lost or invented a message */
    weft_scope sc;
    weft_scope_enter(&sc, WEFT_MS);
    int sr = weft_sleep(WEFT_SEC);         /* arms a timer */
    weft_scope_exit(&sc);
    if (sr != -ETIMEDOUT && sr != -ENOMEM)
        return -EBADMSG;
    return rc ? rc : err ? err : sr == -ENOMEM ? sr : 0;
}

static void test_alloc_failures(void **s)
{
    (void)s;
    /* count the allocations of a clean run */
    weft_set_allocator(&failing);
    alloc_countdown = -1;
    alloc_count = 0;
    assert_int_equal(weft_main(workload, NULL), 0);
    int total = alloc_count;
    assert_true(total > 3);
    for (int k = 0; k < total; k++) {
        alloc_countdown = k;
        int rc = weft_main(workload, NULL);
        if (rc != 0 && rc != -ENOMEM) {
            weft_set_allocator(NULL);
            fail_msg("allocation %d failing gave %d (%s)", k, rc, weft_strerror(rc));
        }
    }
    weft_set_allocator(NULL);
    /* leaks are checked by the ASan build (LeakSanitizer) of this test */
}

static int dump_target(void *unused)
{
    (void)unused;
    return weft_sleep(10 * WEFT_SEC);
}

static int sigquit_root(void *unused)
{
    (void)unused;
    weft_group *g = weft_group_new();
    weft_spawn(g, dump_target, NULL, "quit-sleeper");
    weft_sleep(5 * WEFT_MS);
    kill(getpid(), SIGQUIT);
    for (int i = 0; i < 100 && !test_log_has("quit-sleeper"); i++)
        weft_sleep(5 * WEFT_MS);
    weft_group_cancel(g);
    return weft_group_wait(g);
}

static void test_sigquit_dump(void **s)
{
    (void)s;
    test_log_capture();
    assert_int_equal(weft_main(sigquit_root, NULL), 0);   /* and the process lives on */
    assert_non_null(strstr(test_log, "task dump of loop 0"));
    assert_non_null(strstr(test_log, "task 'quit-sleeper' waiting on sleep"));
    assert_non_null(strstr(test_log, "task 'main' waiting on sleep"));
    weft_log_set(NULL, NULL, WEFT_LOG_INFO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_log_hook),
        cmocka_unit_test(test_metrics),
        cmocka_unit_test(test_alloc_failures),
        cmocka_unit_test(test_sigquit_dump),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
