/* Soak: 64 clients for a while doing what clients do to a server --
 * keep-alive runs, pipelined bursts, bodies (sized and chunked), streamed
 * answers read to the end or abandoned, slow heads, garbage, requests
 * abandoned halfway, resets, hang-ups before the answer -- against one
 * weft_http_serve. Every request that should be
 * answered is, the server keeps answering, and once the clients are gone
 * every connection is let go (descriptors back where they started). */
#include <sys/socket.h>

#include "procstat.h"
#include "test.h"

static int hello(weft_http_req *q, weft_http_res *r, void *ctx)
{
    (void)q;
    (void)ctx;
    return weft_http_res_body(r, "Hello, World!", 13);
}

static int echo(weft_http_req *q, weft_http_res *r, void *ctx)
{
    (void)ctx;
    size_t len;
    weft_http_req_body(q, &len);
    char b[32];
    int n = snprintf(b, sizeof b, "got %zu;", len);
    return weft_http_res_body(r, b, (size_t)n);
}

static int stream(weft_http_req *q, weft_http_res *r, void *ctx)
{
    (void)q;
    (void)ctx;
    int rc = 0;
    for (int i = 0; i < 5 && !rc; i++) {
        rc = weft_http_res_write(r, "chunk;", 6);
        if (!rc)
            rc = weft_yield();                    /* let hang-ups land mid-body */
    }
    return rc;
}

#define KINDS 11
struct soak { int port; weft_time until; long answered[KINDS], failed[KINDS]; };

static const char get[] = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";

static int expect(weft_conn *c, const char *s)
{
    const char *line;
    return weft_conn_read_until(c, s, strlen(s), 8192, &line) > 0 ? 0 : -EPROTO;
}

/* one client visit; 0 when everything that should be answered was */
static int visit(struct soak *k, int kind, unsigned *seed)
{
    weft_conn *c;
    int rc = weft_tcp_connect(&c, "127.0.0.1", k->port, NULL);
    if (rc)
        return rc;
    char buf[40000];
    switch (kind) {
    case 0:                               /* a keep-alive run */
        for (int i = 0, n = 1 + rand_r(seed) % 5; i < n && !rc; i++)
            if (!(rc = weft_conn_write_all(c, get, sizeof get - 1)))
                rc = expect(c, "Hello, World!");
        break;
    case 1: {                             /* a pipelined burst */
        int n = 2 + rand_r(seed) % 15;
        size_t len = 0;
        for (int i = 0; i < n; i++, len += sizeof get - 1)
            memcpy(buf + len, get, sizeof get - 1);
        rc = weft_conn_write_all(c, buf, len);
        for (int i = 0; i < n && !rc; i++)
            rc = expect(c, "Hello, World!");
        break;
    }
    case 2: {                             /* a sized body */
        size_t n = 1 + (size_t)rand_r(seed) % 32768;
        int h = snprintf(buf, sizeof buf, "POST /echo HTTP/1.1\r\nHost: x\r\n"
                                          "Content-Length: %zu\r\n\r\n", n);
        memset(buf + h, 'b', n);
        char want[32];
        snprintf(want, sizeof want, "got %zu;", n);
        if (!(rc = weft_conn_write_all(c, buf, (size_t)h + n)))
            rc = expect(c, want);
        break;
    }
    case 3: {                             /* a chunked body in two chunks */
        int h = snprintf(buf, sizeof buf, "POST /echo HTTP/1.1\r\nHost: x\r\n"
                         "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n5\r\ndefgh\r\n0\r\n\r\n");
        if (!(rc = weft_conn_write_all(c, buf, (size_t)h)))
            rc = expect(c, "got 8;");
        break;
    }
    case 4:                               /* a slow head, within header_timeout */
        for (int i = 0; i < 3 && !rc; i++) {
            rc = weft_conn_write_all(c, get + i * 10, i < 2 ? 10 : sizeof get - 1 - 20);
            weft_sleep(20 * WEFT_MS);
        }
        if (!rc)
            rc = expect(c, "Hello, World!");
        break;
    case 5:                               /* garbage: 400, then the close */
        if (!(rc = weft_conn_write_all(c, "BLAH\r\n\r\n", 8)))
            rc = expect(c, "HTTP/1.1 400 ");
        break;
    case 6:                               /* abandoned halfway */
        weft_conn_write_all(c, get, 12);
        break;
    case 8: {                             /* a streamed answer, read to its end */
        const char *s = "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n";
        if (!(rc = weft_conn_write_all(c, s, strlen(s))))
            rc = expect(c, "chunk;\r\n0\r\n\r\n");
        break;
    }
    case 9: {                             /* a hang-up in the middle of one */
        const char *s = "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n";
        if (!(rc = weft_conn_write_all(c, s, strlen(s))))
            rc = expect(c, "chunk;");
        break;
    }
    case 7: {                             /* a reset mid-request */
        weft_conn_write_all(c, get, 12);
        struct linger lg = { 1, 0 };
        setsockopt(weft_conn_fd(c), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        break;
    }
    default:                              /* hang up before the answer */
        weft_conn_write_all(c, get, sizeof get - 1);
        break;
    }
    weft_conn_close(c);
    return rc;
}

static int client(void *arg)
{
    struct soak *k = arg;
    unsigned seed = (unsigned)(uintptr_t)weft_self();
    while (weft_now() < k->until) {
        int kind = rand_r(&seed) % KINDS;
        weft_scope sc;
        weft_scope_enter(&sc, 5 * WEFT_SEC);      /* a hung server fails the visit */
        int rc = visit(k, kind, &seed);
        weft_scope_exit(&sc);
        if (rc) {
            k->failed[kind]++;
            fprintf(stderr, "soak: visit kind %d failed: %s\n", kind, weft_strerror(rc));
        } else {
            k->answered[kind]++;
        }
    }
    return 0;
}

static weft_http_server *srv;
static int serve_task(void *arg) { return weft_http_serve(srv, arg); }

static int soak(void *unused)
{
    (void)unused;
    weft_http_server_opts o = { .header_timeout = WEFT_SEC, .body_timeout = WEFT_SEC,
                                .keepalive_timeout = WEFT_SEC, .max_body = 64 << 10 };
    srv = weft_http_server_new(&o);
    weft_http_server_route(srv, "GET", "/hello", hello, NULL);
    weft_http_server_route(srv, "POST", "/echo", echo, NULL);
    weft_http_server_route(srv, "GET", "/stream", stream, NULL);
    weft_listener *l;
    EXPECT_EQ(weft_tcp_listen(&l, "127.0.0.1", 0, 1024, 0), 0);
    struct soak k = { .port = weft_listener_port(l) };
    weft_group *sg = weft_group_new();
    weft_spawn(sg, serve_task, l, "serve");
    int fd0 = open_fds();
    k.until = weft_now() + test_scale(10) * WEFT_SEC;
    weft_group *g = weft_group_new();
    for (int i = 0; i < 64; i++)
        weft_spawn(g, client, &k, "client");
    EXPECT_EQ(weft_group_wait(g), 0);
    long total = 0;
    for (int i = 0; i < KINDS; i++) {
        EXPECT_EQ(k.failed[i], 0);
        total += k.answered[i];
    }
    fprintf(stderr, "soak: %ld visits\n", total);
    EXPECT(total > 1000);
    for (int i = 0; i < 300 && open_fds() > fd0; i++)
        weft_sleep(10 * WEFT_MS);
    EXPECT(open_fds() <= fd0);                    /* every connection let go */
    weft_conn *c;                                 /* and it still answers */
    EXPECT_EQ(weft_tcp_connect(&c, "127.0.0.1", k.port, NULL), 0);
    EXPECT_EQ(weft_conn_write_all(c, get, sizeof get - 1), 0);
    EXPECT_EQ(expect(c, "Hello, World!"), 0);
    weft_conn_close(c);
    weft_http_server_shutdown(srv);
    EXPECT_EQ(weft_group_wait(sg), 0);
    weft_http_server_free(srv);
    return 0;
}

static void test_soak(void **s) { (void)s; RUN(soak, NULL); }

int main(void)
{
    const struct CMUnitTest tests[] = { cmocka_unit_test(test_soak) };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
