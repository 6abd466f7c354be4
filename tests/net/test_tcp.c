/* TCP and Unix sockets, buffered streams, timeouts and cancellation, on
 * real sockets over 127.0.0.1. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "netutil.h"
#include "test.h"

/* ---- an echo server in weft ------------------------------------------- */

struct server { weft_listener *l; int conns; };

static int echo_conn(void *arg)
{
    weft_conn *c = arg;
    char buf[4096];
    int n;
    while ((n = weft_conn_read_some(c, buf, sizeof buf)) > 0)
        if (weft_conn_write_all(c, buf, (size_t)n))
            break;
    weft_conn_close(c);
    return 0;
}

static int echo_server(void *arg)
{
    struct server *s = arg;
    weft_group *g = weft_group_new();
    for (;;) {
        weft_conn *c;
        int rc = weft_accept(s->l, &c, NULL);
        if (rc)
            break;
        s->conns++;
        if (weft_spawn(g, echo_conn, c, "echo") != 0)
            weft_conn_close(c);
    }
    weft_group_cancel(g);
    return weft_group_wait(g);
}

static int echo(void *unused)
{
    (void)unused;
    struct server s = { 0 };
    EXPECT_EQ(weft_tcp_listen(&s.l, "127.0.0.1", 0, 0, 0), 0);
    int port = weft_listener_port(s.l);
    EXPECT(port > 0);
    weft_group *g = weft_group_new();
    weft_spawn(g, echo_server, &s, "server");
    weft_conn *c;
    EXPECT_EQ(weft_tcp_connect(&c, "127.0.0.1", port, NULL), 0);
    /* lines, through the write buffer and read_until */
    for (int i = 0; i < 100; i++) {
        char line[64];
        int n = snprintf(line, sizeof line, "line %d\n", i);
        EXPECT_EQ(weft_conn_write(c, line, (size_t)n), 0);
    }
    EXPECT_EQ(weft_conn_flush(c), 0);
    for (int i = 0; i < 100; i++) {
        const char *got;
        char want[64];
        int n = snprintf(want, sizeof want, "line %d\n", i);
        EXPECT_EQ(weft_conn_read_until(c, "\n", 1, 1024, &got), n);
        EXPECT(memcmp(got, want, (size_t)n) == 0);
    }
    /* a megabyte with writev + read_exact */
    size_t big = 1 << 20;
    char *out = malloc(big), *in = malloc(big);
    for (size_t i = 0; i < big; i++)
        out[i] = (char)(i * 7);
    struct iovec iov[2] = { { out, 1000 }, { out + 1000, big - 1000 } };
    EXPECT_EQ(weft_conn_writev(c, iov, 2), 0);
    EXPECT_EQ(weft_conn_read_exact(c, in, big), 0);
    EXPECT(memcmp(in, out, big) == 0);
    free(out);
    free(in);
    /* end of stream: shutdown, the server closes, reads see it */
    EXPECT_EQ(weft_conn_shutdown(c), 0);
    char b;
    EXPECT_EQ(weft_conn_read_some(c, &b, 1), 0);
    EXPECT_EQ(weft_conn_read_exact(c, &b, 1), -WEFT_EEOF);
    weft_conn_close(c);
    /* a name that resolves */
    EXPECT_EQ(weft_tcp_connect(&c, "localhost", port, NULL), 0);
    EXPECT_EQ(weft_conn_write_all(c, "hi", 2), 0);
    char two[2];
    EXPECT_EQ(weft_conn_read_exact(c, two, 2), 0);
    weft_conn_close(c);
    weft_listener_close(s.l);               /* the accept wakes */
    EXPECT_EQ(weft_group_wait(g), 0);
    EXPECT_EQ(s.conns, 2);
    return 0;
}
static void test_echo(void **s) { (void)s; RUN(echo, NULL); }

static int echo_ipv6(void *unused)
{
    (void)unused;
    struct server s = { 0 };
    int rc = weft_tcp_listen(&s.l, NULL, 0, 0, 0);    /* dual stack */
    EXPECT_EQ(rc, 0);
    weft_group *g = weft_group_new();
    weft_spawn(g, echo_server, &s, "server");
    weft_conn *c;
    const char *hosts[] = { "127.0.0.1", "::1", "[::1]" };
    for (int i = 0; i < 3; i++) {
        rc = weft_tcp_connect(&c, hosts[i], weft_listener_port(s.l), NULL);
        if (rc == -EADDRNOTAVAIL || rc == -ENETUNREACH)
            continue;                              /* no IPv6 loopback here */
        EXPECT_EQ(rc, 0);
        char b[3];
        EXPECT_EQ(weft_conn_write_all(c, "abc", 3), 0);
        EXPECT_EQ(weft_conn_read_exact(c, b, 3), 0);
        weft_conn_close(c);
    }
    weft_listener_close(s.l);
    return weft_group_wait(g);
}
static void test_dual_stack(void **s) { (void)s; RUN(echo_ipv6, NULL); }

static int unix_echo(void *unused)
{
    (void)unused;
    char path[64];
    snprintf(path, sizeof path, "/tmp/weft-test-%d.sock", (int)getpid());
    struct server s = { 0 };
    EXPECT_EQ(weft_unix_listen(&s.l, path, 16), 0);
    weft_group *g = weft_group_new();
    weft_spawn(g, echo_server, &s, "server");
    weft_conn *c;
    EXPECT_EQ(weft_unix_connect(&c, path, NULL), 0);
    const char *line;
    EXPECT_EQ(weft_conn_write_all(c, "over unix\n", 10), 0);
    EXPECT_EQ(weft_conn_read_until(c, "\n", 1, 100, &line), 10);
    EXPECT(memcmp(line, "over unix\n", 10) == 0);
    weft_conn_close(c);
    weft_listener_close(s.l);
    EXPECT_EQ(weft_group_wait(g), 0);
    unlink(path);
    char longpath[200];
    memset(longpath, 'x', sizeof longpath - 1);
    longpath[sizeof longpath - 1] = 0;
    EXPECT_EQ(weft_unix_connect(&c, longpath, NULL), -EINVAL);
    EXPECT_EQ(weft_unix_connect(&c, path, NULL), -ENOENT);
    return 0;
}
static void test_unix(void **s) { (void)s; RUN(unix_echo, NULL); }

/* ---- a raw peer that misbehaves on cue --------------------------------- */

enum { SILENT, RESET, NO_NEWLINE, NEVER_READS };
struct peer { weft_listener *l; int mode; };

static int bad_peer(void *arg)
{
    struct peer *p = arg;
    weft_conn *c;
    int rc = weft_accept(p->l, &c, NULL);
    if (rc)
        return rc;
    switch (p->mode) {
    case RESET: {
        struct linger lg = { 1, 0 };
        setsockopt(weft_conn_fd(c), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        break;
    }
    case NO_NEWLINE: {
        char junk[300];
        memset(junk, 'a', sizeof junk);
        weft_conn_write_all(c, junk, sizeof junk);
        weft_conn_write_all(c, "\n", 1);
        weft_sleep(200 * WEFT_MS);
        break;
    }
    default:
        weft_sleep(2 * WEFT_SEC);          /* silent, never reads */
    }
    weft_conn_close(c);
    return 0;
}

static int misbehaving(void *unused)
{
    (void)unused;
    struct peer p;
    weft_conn *c;
    char buf[16];
    const char *line;
    weft_group *g;
    weft_net_opts quick = { .read_timeout = 50 * WEFT_MS, .write_timeout = 100 * WEFT_MS };

    int port;
#define FRESH_LISTENER()                                                   \
    do {                                                                   \
        EXPECT_EQ(weft_tcp_listen(&p.l, "127.0.0.1", 0, 0, 0), 0);         \
        port = weft_listener_port(p.l);                                    \
    } while (0)

    /* read timeout on a silent peer, then the connection is broken */
    FRESH_LISTENER();
    p.mode = SILENT;
    g = weft_group_new();
    weft_spawn(g, bad_peer, &p, "peer");
    EXPECT_EQ(weft_tcp_connect(&c, "127.0.0.1", port, &quick), 0);
    weft_time t0 = weft_now();
    EXPECT_EQ(weft_conn_read_some(c, buf, sizeof buf), -WEFT_EREAD_TIMEOUT);
    EXPECT(weft_now() - t0 >= 50 * WEFT_MS && weft_now() - t0 < WEFT_SEC);
    EXPECT(weft_conn_broken(c));
    EXPECT_EQ(weft_conn_read_some(c, buf, sizeof buf), -WEFT_EBROKEN);
    EXPECT_EQ(weft_conn_write_all(c, "x", 1), 0);     /* writing still works (a 408) */
    weft_conn_close(c);
    /* a scope deadline gives -ETIMEDOUT instead */
    EXPECT_EQ(weft_tcp_connect(&c, "127.0.0.1", port, NULL), 0);
    weft_scope sc;
    weft_scope_enter(&sc, 20 * WEFT_MS);
    EXPECT_EQ(weft_conn_read_some(c, buf, sizeof buf), -ETIMEDOUT);
    EXPECT(weft_scope_exit(&sc));
    weft_conn_close(c);
    weft_group_cancel(g);
    weft_group_wait(g);

    /* write timeout: the peer never reads */
    weft_listener_close(p.l);
    FRESH_LISTENER();
    p.mode = NEVER_READS;
    g = weft_group_new();
    weft_spawn(g, bad_peer, &p, "peer");
    EXPECT_EQ(weft_tcp_connect(&c, "127.0.0.1", port, &quick), 0);
    char *lots = calloc(1, 64 << 20);
    EXPECT_EQ(weft_conn_write_all(c, lots, 64 << 20), -WEFT_EWRITE_TIMEOUT);
    free(lots);
    EXPECT(weft_conn_broken(c));
    EXPECT_EQ(weft_conn_write_all(c, "x", 1), -WEFT_EBROKEN);   /* nothing works now */
    EXPECT_EQ(weft_conn_read_some(c, buf, sizeof buf), -WEFT_EBROKEN);
    weft_conn_close(c);
    weft_group_cancel(g);
    weft_group_wait(g);

    /* the peer resets */
    weft_listener_close(p.l);
    FRESH_LISTENER();
    p.mode = RESET;
    EXPECT_EQ(weft_tcp_connect(&c, "127.0.0.1", port, NULL), 0);   /* in the backlog */
    g = weft_group_new();
    weft_spawn(g, bad_peer, &p, "peer");
    EXPECT_EQ(weft_group_wait(g), 0);
    EXPECT_EQ(weft_conn_read_some(c, buf, sizeof buf), -ECONNRESET);
    weft_conn_close(c);

    /* read_until: the limit is an error, not a bigger buffer */
    weft_listener_close(p.l);
    FRESH_LISTENER();
    p.mode = NO_NEWLINE;
    g = weft_group_new();
    weft_spawn(g, bad_peer, &p, "peer");
    EXPECT_EQ(weft_tcp_connect(&c, "127.0.0.1", port, NULL), 0);
    EXPECT_EQ(weft_conn_read_until(c, "\n", 1, 100, &line), -EMSGSIZE);
    EXPECT_EQ(weft_conn_read_until(c, "\n", 1, 1000, &line), 301);   /* still there */
    EXPECT_EQ(weft_conn_read_until(c, "\n", 1, 1000, &line), -WEFT_EEOF);
    weft_conn_close(c);
    EXPECT_EQ(weft_group_wait(g), 0);
    weft_listener_close(p.l);
    return 0;
}
static void test_timeouts_resets_limits(void **s) { (void)s; RUN(misbehaving, NULL); }

static int refused(void *unused)
{
    (void)unused;
    /* a port nobody listens on */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof sa;
    bind(fd, (struct sockaddr *)&sa, sizeof sa);
    getsockname(fd, (struct sockaddr *)&sa, &len);
    close(fd);
    weft_conn *c;
    EXPECT_EQ(weft_tcp_connect(&c, "127.0.0.1", ntohs(sa.sin_port), NULL), -ECONNREFUSED);
    EXPECT_EQ(weft_tcp_connect(&c, "127.0.0.1", 0, NULL), -EINVAL);
    EXPECT_EQ(weft_tcp_connect(&c, "127.0.0.1", 70000, NULL), -EINVAL);
    EXPECT_EQ(weft_tcp_connect(&c, "", 80, NULL), -EINVAL);
    /* names that do not resolve: tests/net/test_dns.c, against its own server */
    return 0;
}
static void test_refused_and_bad_input(void **s) { (void)s; RUN(refused, NULL); }

/* A listener whose backlog is full and never accepts: SYNs are dropped,
 * so the connect can only time out. */
static int full_backlog(void *unused)
{
    (void)unused;
    struct full_backlog fb;
    full_backlog_open(&fb);
    weft_conn *c;
    weft_net_opts o = { .connect_timeout = 150 * WEFT_MS };
    weft_time t0 = weft_now();
    EXPECT_EQ(weft_tcp_connect(&c, "127.0.0.1", fb.port, &o), -WEFT_ECONNECT_TIMEOUT);
    weft_time dt = weft_now() - t0;
    EXPECT(dt >= 150 * WEFT_MS && dt < 2 * WEFT_SEC);
    weft_scope sc;
    weft_scope_enter(&sc, 50 * WEFT_MS);
    EXPECT_EQ(weft_tcp_connect(&c, "127.0.0.1", fb.port, NULL), -ETIMEDOUT);
    EXPECT(weft_scope_exit(&sc));
    full_backlog_close(&fb);
    return 0;
}
static void test_connect_timeout(void **s) { (void)s; RUN(full_backlog, NULL); }

/* cancellation in connect, read and write leaves nothing behind (ASan) */
struct victim { int port, op, rc; };
static int victim_task(void *arg)
{
    struct victim *v = arg;
    weft_conn *c = NULL;
    char buf[64];
    if (v->op == 0) {                      /* connect to the full backlog */
        v->rc = weft_tcp_connect(&c, "127.0.0.1", v->port, NULL);
        return 0;
    }
    if ((v->rc = weft_tcp_connect(&c, "127.0.0.1", v->port, NULL)))
        return 0;
    if (v->op == 1) {
        v->rc = weft_conn_read_some(c, buf, sizeof buf);
    } else {
        char *lots = calloc(1, 64 << 20);
        v->rc = weft_conn_write_all(c, lots, 64 << 20);
        free(lots);
    }
    EXPECT(weft_conn_broken(c));
    weft_conn_close(c);
    return 0;
}

static int cancels(void *unused)
{
    (void)unused;
    struct peer p = { .mode = SILENT };
    EXPECT_EQ(weft_tcp_listen(&p.l, "127.0.0.1", 0, 0, 0), 0);
    struct full_backlog fb;
    full_backlog_open(&fb);
    for (int op = 0; op < 3; op++) {
        struct victim v = { op ? weft_listener_port(p.l) : fb.port, op, 1 };
        weft_group *peers = weft_group_new();
        if (op)
            weft_spawn(peers, bad_peer, &p, "peer");
        weft_group *g = weft_group_new();
        weft_spawn(g, victim_task, &v, "victim");
        weft_sleep(30 * WEFT_MS);
        weft_group_cancel(g);
        EXPECT_EQ(weft_group_wait(g), 0);
        EXPECT_EQ(v.rc, -ECANCELED);
        weft_group_cancel(peers);
        weft_group_wait(peers);
    }
    full_backlog_close(&fb);
    weft_listener_close(p.l);
    return 0;
}
static void test_cancellation(void **s) { (void)s; RUN(cancels, NULL); }

/* objects of one loop handed to another: -EXDEV (handed over through
 * shared channels, which is how loops talk) */
static weft_chan *to_other, *back;
static int owner_loop(void *unused)
{
    (void)unused;
    struct { weft_conn *c; weft_listener *l; } h;
    if (weft_loop_index() == 0) {
        weft_conn *s;
        EXPECT_EQ(weft_tcp_listen(&h.l, "127.0.0.1", 0, 0, 0), 0);
        EXPECT_EQ(weft_tcp_connect(&h.c, "127.0.0.1", weft_listener_port(h.l), NULL), 0);
        EXPECT_EQ(weft_accept(h.l, &s, NULL), 0);
        EXPECT_EQ(weft_chan_send(to_other, &h), 0);
        char done;
        EXPECT_EQ(weft_chan_recv(back, &done), 0);
        weft_conn_close(s);
        weft_conn_close(h.c);
        weft_listener_close(h.l);
        return 0;
    }
    EXPECT_EQ(weft_chan_recv(to_other, &h), 0);
    char b = 0;
    EXPECT_EQ(weft_conn_read_some(h.c, &b, 1), -EXDEV);
    EXPECT_EQ(weft_conn_write_all(h.c, &b, 1), -EXDEV);
    weft_conn *c;
    EXPECT_EQ(weft_accept(h.l, &c, NULL), -EXDEV);
    return weft_chan_send(back, &b);
}

static void test_loop_local(void **s)
{
    (void)s;
    test_failures = 0;
    to_other = weft_chan_new_shared(2 * sizeof(void *), 1);
    back = weft_chan_new_shared(1, 1);
    assert_int_equal(weft_run(2, owner_loop, NULL), 0);
    assert_int_equal(test_failures, 0);
    weft_chan_free(to_other);
    weft_chan_free(back);
    weft_conn *c;
    weft_listener *l;
    assert_int_equal(weft_tcp_connect(&c, "127.0.0.1", 80, NULL), -EPERM);
    assert_int_equal(weft_tcp_listen(&l, "127.0.0.1", 0, 0, 0), -EPERM);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_echo),
        cmocka_unit_test(test_dual_stack),
        cmocka_unit_test(test_unix),
        cmocka_unit_test(test_timeouts_resets_limits),
        cmocka_unit_test(test_refused_and_bad_input),
        cmocka_unit_test(test_connect_timeout),
        cmocka_unit_test(test_cancellation),
        cmocka_unit_test(test_loop_local),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
