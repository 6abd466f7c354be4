/* weft_conn's lifetime and settings: closing under blocked tasks (the one
 * close rule), timeouts changed after creation, flush before read, pending bytes. */
#include "test.h"

/* a connected pair on 127.0.0.1: *a from connect, *b from accept */
static void pair(weft_conn **a, weft_conn **b, const weft_net_opts *ao)
{
    weft_listener *l;
    EXPECT_EQ(weft_tcp_listen(&l, "127.0.0.1", 0, 0, 0), 0);
    EXPECT_EQ(weft_tcp_connect(a, "127.0.0.1", weft_listener_port(l), ao), 0);
    EXPECT_EQ(weft_accept(l, b, NULL), 0);
    weft_listener_close(l);
}

struct blocked { weft_conn *c; int rc; bool started; };

static int reader(void *arg)
{
    struct blocked *b = arg;
    char buf[64];
    b->started = true;
    b->rc = weft_conn_read_some(b->c, buf, sizeof buf);
    return 0;
}

static int writer(void *arg)
{
    struct blocked *b = arg;
    static char big[1 << 20];
    b->started = true;
    int rc = 0;
    for (int i = 0; i < 64 && rc == 0; i++)
        rc = weft_conn_write_all(b->c, big, sizeof big);   /* the peer never reads */
    b->rc = rc;
    return 0;
}

/* Issue 10.1: closing a conn under a blocked reader and writer: both get
 * -EBADF, and neither touches the freed conn (ASan caught the woken reader
 * writing into it). */
static int close_under_blocked(void *unused)
{
    (void)unused;
    weft_conn *a, *b;
    pair(&a, &b, NULL);
    struct blocked r = { a, 1, false }, w = { a, 1, false };
    weft_group *g = weft_group_new();
    weft_spawn(g, reader, &r, "reader");
    weft_spawn(g, writer, &w, "writer");
    WAIT_UNTIL(r.started && w.started);   /* each ran until it blocked */
    EXPECT_EQ(r.rc, 1);                   /* both still blocked */
    EXPECT_EQ(w.rc, 1);
    weft_conn_close(a);
    EXPECT_EQ(weft_group_wait(g), 0);
    EXPECT_EQ(r.rc, -EBADF);
    EXPECT_EQ(w.rc, -EBADF);
    weft_conn_close(b);
    return 0;
}
static void test_close_under_blocked_tasks(void **s) { (void)s; RUN(close_under_blocked, NULL); }

/* the same with only a reader, closed by a task of its own */
static int closer(void *arg)
{
    weft_conn_close(arg);
    return 0;
}

static int close_from_another_task(void *unused)
{
    (void)unused;
    weft_conn *a, *b;
    pair(&a, &b, NULL);
    struct blocked r = { a, 1, false };
    weft_group *g = weft_group_new();
    weft_spawn(g, reader, &r, "reader");
    weft_spawn(g, closer, a, "closer");   /* runs right after the reader blocks */
    EXPECT_EQ(weft_group_wait(g), 0);
    EXPECT_EQ(r.rc, -EBADF);
    weft_conn_close(b);
    return 0;
}
static void test_close_from_another_task(void **s) { (void)s; RUN(close_from_another_task, NULL); }

/* weft_conn_set_timeouts: a read waits as long as the new timeout says */
static int set_timeouts(void *unused)
{
    (void)unused;
    weft_conn *a, *b;
    pair(&a, &b, NULL);
    EXPECT_EQ(weft_conn_set_timeouts(a, 20 * WEFT_MS, 0), 0);
    char buf[8];
    weft_time t0 = weft_now();
    EXPECT_EQ(weft_conn_read_some(a, buf, sizeof buf), -WEFT_EREAD_TIMEOUT);
    EXPECT(weft_now() - t0 >= 20 * WEFT_MS);
    EXPECT(weft_now() - t0 < 5 * WEFT_SEC);
    EXPECT_EQ(weft_conn_set_timeouts(b, -1, 0), -EINVAL);
    EXPECT_EQ(weft_conn_set_timeouts(NULL, 0, 0), -EINVAL);
    EXPECT_EQ(weft_conn_set_timeouts(b, WEFT_FOREVER, WEFT_SEC), 0);
    weft_conn_close(a);
    weft_conn_close(b);
    return 0;
}
static void test_set_timeouts(void **s) { (void)s; RUN(set_timeouts, NULL); }

static int echo_line(void *arg)
{
    weft_conn *c = arg;
    const char *line;
    int n = weft_conn_read_until(c, "\n", 1, 64, &line);
    if (n > 0)
        weft_conn_write_all(c, line, (size_t)n);
    return 0;
}

/* flush_before_read: a request queued with weft_conn_write goes out when
 * the task waits for its answer; without it, the request sits queued */
static int flush_before_read(void *unused)
{
    (void)unused;
    for (int flag = 0; flag < 2; flag++) {
        weft_net_opts o = { .read_timeout = 50 * WEFT_MS, .flush_before_read = flag };
        weft_conn *a, *b;
        pair(&a, &b, &o);
        weft_group *g = weft_group_new();
        weft_spawn(g, echo_line, b, "echo");
        EXPECT_EQ(weft_conn_write(a, "ping\n", 5), 0);   /* queued, not sent */
        const char *line;
        int n = weft_conn_read_until(a, "\n", 1, 64, &line);
        EXPECT_EQ(n, flag ? 5 : -WEFT_EREAD_TIMEOUT);
        weft_conn_close(a);
        weft_group_cancel(g);
        EXPECT_EQ(weft_group_wait(g), 0);
        weft_conn_close(b);
    }
    return 0;
}
static void test_flush_before_read(void **s) { (void)s; RUN(flush_before_read, NULL); }

/* Found by review: a second reader gets -EBUSY and the conn stays usable
 * (it broke the conn for good) */
static int second_reader(void *unused)
{
    (void)unused;
    weft_conn *a, *b;
    pair(&a, &b, NULL);
    struct blocked r = { a, 1, false };
    weft_group *g = weft_group_new();
    weft_spawn(g, reader, &r, "reader");
    WAIT_UNTIL(r.started);
    char buf[8];
    EXPECT_EQ(weft_conn_read_some(a, buf, sizeof buf), -EBUSY);
    EXPECT(!weft_conn_broken(a));
    EXPECT_EQ(weft_conn_write_all(b, "hi", 2), 0);
    EXPECT_EQ(weft_group_wait(g), 0);
    EXPECT_EQ(r.rc, 2);                       /* the first reader got the bytes */
    EXPECT_EQ(weft_conn_write_all(b, "x", 1), 0);
    EXPECT_EQ(weft_conn_read_some(a, buf, sizeof buf), 1);
    weft_conn_close(a);
    weft_conn_close(b);
    return 0;
}
static void test_second_reader_busy(void **s) { (void)s; RUN(second_reader, NULL); }

/* weft_conn_pending, what the HTTP client asks before reusing a
 * connection (issue 18 item 11): bytes buffered or arriving after the
 * last read, and the end of the stream, are pending; a drained socket is
 * not. weft_sleep(1) lets the loop poll once, so it has seen the bytes. */
static int pending(void *unused)
{
    (void)unused;
    weft_conn *a, *b;
    pair(&a, &b, NULL);
    EXPECT_EQ(weft_conn_pending(a), 0);
    char buf[8];
    EXPECT_EQ(weft_conn_write_all(b, "ab", 2), 0);
    EXPECT_EQ(weft_conn_read_some(a, buf, 1), 1);
    EXPECT_EQ(weft_conn_pending(a), 1);       /* "b", buffered */
    EXPECT_EQ(weft_conn_read_some(a, buf, 1), 1);
    EXPECT_EQ(weft_conn_pending(a), 0);       /* all read */
    EXPECT_EQ(weft_conn_write_all(b, "late", 4), 0);
    weft_sleep(1);
    EXPECT_EQ(weft_conn_pending(a), 1);       /* came after the last read */
    EXPECT_EQ(weft_conn_read_some(a, buf, sizeof buf), 4);
    EXPECT_EQ(weft_conn_pending(a), 0);
    weft_conn_close(b);
    weft_sleep(1);
    EXPECT_EQ(weft_conn_pending(a), 1);       /* the end of the stream */
    weft_conn_close(a);
    return 0;
}
static void test_pending(void **s) { (void)s; RUN(pending, NULL); }

/* Found by review: bytes already buffered when a TLS handshake starts
 * (what a man in the middle appends to a STARTTLS-style reply) must not
 * pass as protected: -EPROTO, nothing sent */
static int tls_after_plaintext(void *unused)
{
    (void)unused;
    weft_conn *a, *b;
    pair(&a, &b, NULL);
    weft_tls_ctx *t = weft_tls_client_new();
    EXPECT(t != NULL);
    EXPECT_EQ(weft_conn_write_all(b, "Sinjected", 9), 0);
    char s1;
    EXPECT_EQ(weft_conn_read_some(a, &s1, 1), 1);   /* 'S', and the rest buffered */
    EXPECT_EQ(weft_tls_connect(a, t, "localhost"), -EPROTO);
    EXPECT(!weft_conn_broken(a));
    EXPECT_EQ(weft_conn_write(a, "q", 1), 0);       /* queued writes likewise */
    weft_conn *c, *d;
    pair(&c, &d, NULL);
    EXPECT_EQ(weft_conn_write(c, "q", 1), 0);
    EXPECT_EQ(weft_tls_connect(c, t, "localhost"), -EPROTO);
    weft_tls_ctx_free(t);
    weft_conn_close(a);
    weft_conn_close(b);
    weft_conn_close(c);
    weft_conn_close(d);
    return 0;
}
static void test_tls_refuses_buffered_plaintext(void **s) { (void)s; RUN(tls_after_plaintext, NULL); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_close_under_blocked_tasks),
        cmocka_unit_test(test_close_from_another_task),
        cmocka_unit_test(test_set_timeouts),
        cmocka_unit_test(test_flush_before_read),
        cmocka_unit_test(test_second_reader_busy),
        cmocka_unit_test(test_pending),
        cmocka_unit_test(test_tls_refuses_buffered_plaintext),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
