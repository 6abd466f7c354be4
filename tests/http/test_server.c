/* The HTTP server's connection loop through real sockets: routing with
 * weft's client, keep-alive and pipelining, every limit with its status,
 * handler failure and timeout. */
#include "test.h"

static int hello(weft_http_req *q, weft_http_res *r, void *ctx)
{
    (void)q;
    (void)ctx;
    weft_http_res_header(r, "Content-Type", "text/plain");
    return weft_http_res_body(r, "Hello, World!", 13);
}

static int user(weft_http_req *q, weft_http_res *r, void *ctx)
{
    (void)ctx;
    char body[128];
    int n = snprintf(body, sizeof body, "user %s q=%s", weft_http_req_param(q, "id"),
                     weft_http_req_query(q));
    return weft_http_res_body(r, body, (size_t)n);
}

static int echo(weft_http_req *q, weft_http_res *r, void *ctx)
{
    (void)ctx;
    size_t len;
    const void *b = weft_http_req_body(q, &len);
    weft_http_res_status(r, 201);
    return weft_http_res_body(r, b, len);
}

static int fails(weft_http_req *q, weft_http_res *r, void *ctx)
{
    (void)q;
    (void)r;
    (void)ctx;
    return -EIO;
}

static int slow(weft_http_req *q, weft_http_res *r, void *ctx)
{
    (void)q;
    (void)ctx;
    int rc = weft_sleep(5 * WEFT_SEC);
    weft_http_res_body(r, "late", 4);
    return rc;
}

struct srv { weft_listener *l; weft_http_server *s; int port; };

static int conn_task(void *arg)
{
    void **a = arg;
    weft_http_server *s = a[0];
    weft_conn *c = a[1];
    free(a);
    weft_http_serve_conn(s, c);
    return 0;
}

static int accept_loop(void *arg)
{
    struct srv *v = arg;
    weft_group *g = weft_group_new();
    weft_conn *c;
    while (weft_accept(v->l, &c, NULL) == 0) {
        void **a = malloc(2 * sizeof *a);
        a[0] = v->s;
        a[1] = c;
        weft_spawn(g, conn_task, a, "http-conn");
    }
    weft_group_cancel(g);
    return weft_group_wait(g);
}

static weft_group *start(struct srv *v)
{
    weft_http_server_opts o = { .max_body = 1000, .header_timeout = 200 * WEFT_MS,
                                .handler_timeout = 100 * WEFT_MS };
    v->s = weft_http_server_new(&o);
    weft_http_server_route(v->s, "GET", "/hello", hello, NULL);
    weft_http_server_route(v->s, "GET", "/users/{id}", user, NULL);
    weft_http_server_route(v->s, "POST", "/echo", echo, NULL);
    weft_http_server_route(v->s, "GET", "/fail", fails, NULL);
    weft_http_server_route(v->s, "GET", "/slow", slow, NULL);
    weft_tcp_listen(&v->l, "127.0.0.1", 0, 0, 0);
    v->port = weft_listener_port(v->l);
    weft_group *g = weft_group_new();
    weft_spawn(g, accept_loop, v, "accept");
    return g;
}

static void stop(struct srv *v, weft_group *g)
{
    weft_listener_close(v->l);
    weft_group_wait(g);
    weft_http_server_free(v->s);
}

/* sends raw bytes, returns everything the server answers until it closes
 * (or 1 s passes) */
static char *raw(int port, const char *req, size_t len, int pause_ms)
{
    static char out[65536];
    weft_conn *c;
    out[0] = 0;
    if (weft_tcp_connect(&c, "127.0.0.1", port, NULL))
        return out;
    weft_conn_write_all(c, req, len);
    if (pause_ms)
        weft_sleep(pause_ms * WEFT_MS);
    weft_scope sc;
    weft_scope_enter(&sc, WEFT_SEC);
    size_t got = 0;
    int n;
    while (got < sizeof out - 1 && (n = weft_conn_read_some(c, out + got, sizeof out - 1 - got)) > 0)
        got += (size_t)n;
    weft_scope_exit(&sc);
    out[got] = 0;
    weft_conn_close(c);
    return out;
}

static char *rawz(int port, const char *req) { return raw(port, req, strlen(req), 0); }

static int routing(void *unused)
{
    (void)unused;
    struct srv v;
    weft_group *g = start(&v);
    weft_http_client *cl = weft_http_client_new(NULL);
    weft_http_response r;
    char url[128];
#define URL(p) (snprintf(url, sizeof url, "http://127.0.0.1:%d%s", v.port, p), url)
    EXPECT_EQ(weft_http_get(cl, URL("/hello"), &r), 0);
    EXPECT_EQ(r.status, 200);
    EXPECT(r.body && !strcmp(r.body, "Hello, World!"));
    EXPECT(weft_http_header_get(&r, "Date") != NULL);
    EXPECT(weft_http_header_get(&r, "Content-Type") &&
           !strcmp(weft_http_header_get(&r, "Content-Type"), "text/plain"));
    weft_http_response_free(&r);
    EXPECT_EQ(weft_http_get(cl, URL("/users/42?x=1"), &r), 0);
    EXPECT(r.body && !strcmp(r.body, "user 42 q=x=1"));
    weft_http_response_free(&r);
    weft_http_request post = { .method = "POST", .url = URL("/echo"), .body = "payload",
                               .body_len = 7 };
    EXPECT_EQ(weft_http_do(cl, &post, &r), 0);
    EXPECT_EQ(r.status, 201);
    EXPECT(r.body && !strcmp(r.body, "payload"));
    weft_http_response_free(&r);
    EXPECT_EQ(weft_http_get(cl, URL("/nope"), &r), 0);
    EXPECT_EQ(r.status, 404);
    weft_http_response_free(&r);
    weft_http_request del = { .method = "DELETE", .url = URL("/hello") };
    EXPECT_EQ(weft_http_do(cl, &del, &r), 0);
    EXPECT_EQ(r.status, 405);
    EXPECT(weft_http_header_get(&r, "Allow") && !strcmp(weft_http_header_get(&r, "Allow"), "GET, HEAD"));
    weft_http_response_free(&r);
    weft_http_request head = { .method = "HEAD", .url = URL("/hello") };
    EXPECT_EQ(weft_http_do(cl, &head, &r), 0);
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body_len, 0);
    EXPECT(weft_http_header_get(&r, "Content-Length") &&
           !strcmp(weft_http_header_get(&r, "Content-Length"), "13"));
    weft_http_response_free(&r);
    weft_http_client_stats st;
    weft_http_client_stats_get(cl, &st);
    EXPECT_EQ(st.connections, 1);                 /* all on one kept-alive connection */
    /* a failing handler is a 500, a slow one a 503; the server lives on */
    EXPECT_EQ(weft_http_get(cl, URL("/fail"), &r), 0);
    EXPECT_EQ(r.status, 500);
    weft_http_response_free(&r);
    EXPECT_EQ(weft_http_get(cl, URL("/slow"), &r), 0);
    EXPECT_EQ(r.status, 503);
    weft_http_response_free(&r);
    EXPECT_EQ(weft_http_get(cl, URL("/hello"), &r), 0);
    EXPECT_EQ(r.status, 200);
    weft_http_response_free(&r);
    weft_http_client_free(cl, WEFT_SEC);
    stop(&v, g);
    return 0;
}
static void test_routing_keepalive_failures(void **s) { (void)s; RUN(routing, NULL); }

static int pipelining(void *unused)
{
    (void)unused;
    struct srv v;
    weft_group *g = start(&v);
    char *out = rawz(v.port, "GET /users/1 HTTP/1.1\r\nHost: x\r\n\r\n"
                             "GET /users/2 HTTP/1.1\r\nHost: x\r\n\r\n"
                             "GET /users/3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    char *a = strstr(out, "user 1"), *b = strstr(out, "user 2"), *c = strstr(out, "user 3");
    EXPECT(a && b && c && a < b && b < c);        /* three answers, in order */
    stop(&v, g);
    return 0;
}
static void test_pipelining(void **s) { (void)s; RUN(pipelining, NULL); }

struct limit_case { const char *name, *req; const char *status; };

static int limits(void *unused)
{
    (void)unused;
    struct srv v;
    weft_group *g = start(&v);
    static char big[12000], many[8000];
    snprintf(big, sizeof big, "GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: %09000d\r\n\r\n", 0);
    size_t n = (size_t)snprintf(many, sizeof many, "GET /hello HTTP/1.1\r\nHost: x\r\n");
    for (int i = 0; i < 120; i++)
        n += (size_t)snprintf(many + n, sizeof many - n, "X-%d: v\r\n", i);
    snprintf(many + n, sizeof many - n, "\r\n");
    const struct limit_case cases[] = {
        { "headers over 8 KiB", big, "HTTP/1.1 431 " },
        { "too many headers", many, "HTTP/1.1 431 " },
        { "body over the limit", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n",
          "HTTP/1.1 413 " },
        { "chunked body over the limit",
          "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n7d0\r\n", "HTTP/1.1 413 " },
        { "Content-Length with Transfer-Encoding",
          "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
          "HTTP/1.1 400 " },
        { "conflicting Content-Length",
          "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
          "HTTP/1.1 400 " },
        { "invalid chunk size",
          "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n",
          "HTTP/1.1 400 " },
        { "obsolete line folding", "GET /hello HTTP/1.1\r\nHost: x\r\nX-A: a\r\n  folded\r\n\r\n",
          "HTTP/1.1 400 " },
        { "bare LF", "GET /hello HTTP/1.1\nHost: x\n\n", "HTTP/1.1 400 " },
        { "malformed request line", "GET\r\n\r\n", "HTTP/1.1 400 " },
        { "unsupported Transfer-Encoding",
          "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", "HTTP/1.1 501 " },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *out = rawz(v.port, cases[i].req);
        if (strncmp(out, cases[i].status, strlen(cases[i].status)) != 0) {
            test_failures++;
            fprintf(stderr, "%s: got '%.40s', want '%s'\n", cases[i].name, out, cases[i].status);
        }
        if (!strstr(out, "Connection: close")) {
            test_failures++;
            fprintf(stderr, "%s: not closed\n", cases[i].name);
        }
    }
    /* a slow client: the head is not complete within header_timeout */
    weft_time t0 = weft_now();
    char *out = raw(v.port, "GET /hello HTTP/1.1\r\nHost:", 26, 0);
    EXPECT(strncmp(out, "HTTP/1.1 408 ", 13) == 0);
    if (strncmp(out, "HTTP/1.1 408 ", 13))
        fprintf(stderr, "408 case got '%.60s'\n", out);
    EXPECT(weft_now() - t0 < WEFT_SEC);
    stop(&v, g);
    return 0;
}
static void test_limits(void **s) { (void)s; RUN(limits, NULL); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routing_keepalive_failures),
        cmocka_unit_test(test_pipelining),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
