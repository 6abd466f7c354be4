/* The net layer with each allocation failing in turn: listening, connecting
 * (TCP and Unix), accepting, buffered reads and writes. Every failure is an
 * error for its caller, with nothing crashed, hung or leaked. */
#include "alloc.h"

/* the peer of a failed call sees the connection go: these are clean too */
static bool peer_error(int rc)
{
    return rc == -ENOMEM || rc == -WEFT_EEOF || rc == -ECONNRESET || rc == -EPIPE;
}

static int echo_one(void *arg)
{
    weft_listener *l = arg;
    weft_conn *c;
    int rc = weft_accept(l, &c, NULL);
    if (rc)
        return rc;
    const char *line;
    rc = weft_conn_read_until(c, "\n", 1, 100, &line);
    if (rc > 0) {
        rc = weft_conn_write(c, "pong\n", 5);   /* queued: the write buffer */
        if (!rc)
            rc = weft_conn_flush(c);
    }
    weft_conn_close(c);
    return rc < 0 ? rc : 0;
}

static int ping(weft_conn *c)
{
    char buf[5];
    int rc = weft_conn_write_all(c, "ping\n", 5);
    if (!rc)
        rc = weft_conn_read_exact(c, buf, 5);
    return rc ? rc : memcmp(buf, "pong\n", 5) ? -EBADMSG : 0;
}

/* one exchange over l, connected with connect(); the first error wins */
static int exchange(weft_listener *l, int (*connect)(weft_conn **, void *), void *to)
{
    weft_group *g = weft_group_new();
    if (!g)
        return -errno;
    int rc = weft_spawn(g, echo_one, l, "echo");
    weft_conn *c = NULL;
    if (!rc)
        rc = connect(&c, to);
    if (!rc)
        rc = ping(c);
    weft_conn_close(c);
    if (rc)
        weft_group_cancel(g);         /* the accept may wait for nobody */
    int grc = weft_group_wait(g);
    if (rc && grc && grc != -ECANCELED && !peer_error(grc))
        return grc;                   /* the server's failure is the odd one */
    return rc ? rc : grc;
}

static int tcp_to(weft_conn **c, void *port)
{
    return weft_tcp_connect(c, "127.0.0.1", *(int *)port, NULL);
}

static int unix_to(weft_conn **c, void *path) { return weft_unix_connect(c, path, NULL); }

static int workload(void *unused)
{
    (void)unused;
    weft_listener *l;
    int rc = weft_tcp_listen(&l, "127.0.0.1", 0, 0, 0);
    if (rc)
        return rc;
    int port = weft_listener_port(l);
    rc = exchange(l, tcp_to, &port);
    weft_listener_close(l);
    if (rc)
        return rc;
    char path[64];
    snprintf(path, sizeof path, "/tmp/weft-alloc-%d.sock", (int)getpid());
    if ((rc = weft_unix_listen(&l, path, 0)))
        return rc;
    rc = exchange(l, unix_to, path);
    weft_listener_close(l);
    unlink(path);
    return rc;
}

static bool clean(int rc) { return rc == 0 || peer_error(rc); }

static void test_net_alloc_failures(void **s)
{
    (void)s;
    long n = alloc_sweep(workload, NULL, clean);
    fprintf(stderr, "%ld allocations swept\n", n);
    assert_true(n > 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_net_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
