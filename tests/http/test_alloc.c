/* HTTP with each allocation failing in turn, the client and weft's own
 * server in one loop: the server and its routes, requests with buffered,
 * gzip and streamed bodies, a POST, a redirect to another origin, a
 * streamed response read through weft_http_open, the client's origins and
 * pools. Every failure is an error for the call that met it (or a 500, or
 * a dropped connection for the other side), with nothing crashed, hung or
 * leaked. */
#include <zlib.h>

#include "alloc.h"

static char gz[128];
static int gz_len;
static const char text[] = "compressed text, compressed text";

static int h_hello(weft_http_req *q, weft_http_res *r, void *ctx)
{
    (void)q;
    (void)ctx;
    return weft_http_res_body(r, "Hello, World!", 13);
}

static int h_to(weft_http_req *q, weft_http_res *r, void *ctx)
{
    (void)ctx;
    const char *to = weft_http_req_query_param(q, "url");
    if (!to)
        return -ENOMEM;                   /* it is always sent: decoding failed */
    int rc = weft_http_res_status(r, 302);
    return rc ? rc : weft_http_res_header(r, "Location", to);
}

static int h_echo(weft_http_req *q, weft_http_res *r, void *ctx)
{
    (void)ctx;
    size_t len;
    const void *b = weft_http_req_body(q, &len);
    return weft_http_res_body(r, b, len);
}

static int h_gzip(weft_http_req *q, weft_http_res *r, void *ctx)
{
    (void)q;
    (void)ctx;
    int rc = weft_http_res_header(r, "Content-Encoding", "gzip");
    return rc ? rc : weft_http_res_body(r, gz, (size_t)gz_len);
}

static int h_stream(weft_http_req *q, weft_http_res *r, void *ctx)
{
    (void)q;
    (void)ctx;
    int rc = 0;
    for (int i = 0; i < 3 && !rc; i++)
        rc = weft_http_res_write(r, "piece|", 6);
    return rc;
}

/* A failure the client met, or one the server's caused: a dropped
 * connection, a 500 or a 503. */
static bool honest(int rc, int status)
{
    if (rc)
        return rc == -ENOMEM || rc == -WEFT_EEOF || rc == -ECONNRESET || rc == -EPIPE;
    return status == 500 || status == 503;
}

/* 0 when the answer is right or an honest failure, else the odd result */
static int judge(int rc, const weft_http_response *r, const char *want)
{
    if (honest(rc, r->status))
        return 0;
    if (rc)
        return rc;
    return r->status == 200 && r->body && strcmp(r->body, want) == 0 ? 0 : -EBADMSG;
}

static int streamed(weft_http_client *cl, const char *url)
{
    weft_http_request req = { .url = url };
    weft_http_response r;
    weft_http_stream *st = NULL;
    int rc = weft_http_open(cl, &req, &r, &st);
    char buf[64];
    size_t got = 0;
    int n = 0;
    while (!rc && (n = weft_http_stream_read(st, buf + got, sizeof buf - 1 - got)) > 0)
        got += (size_t)n;
    buf[got] = 0;
    if (!rc && n < 0)
        rc = n;
    weft_http_stream_close(st);
    r.body = buf;                         /* to judge it (not to free) */
    rc = judge(rc, &r, "piece|piece|piece|");
    r.body = NULL;
    weft_http_response_free(&r);
    return rc;
}

static int requests(weft_http_client *cl, int port)
{
    char url[64];
    weft_http_response r;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hello", port);
    int rc = judge(weft_http_get(cl, url, &r), &r, "Hello, World!");
    weft_http_response_free(&r);
    if (rc)
        return rc;
    /* a redirect to another origin (the same server by name), which drops
     * the credentials */
    char to[128];
    snprintf(to, sizeof to, "http://127.0.0.1:%d/to?url=http://localhost:%d/hello", port, port);
    weft_http_header auth[] = { { "Authorization", "Bearer x" }, { "X-One", "1" } };
    weft_http_request redir = { .url = to, .headers = auth, .nheaders = 2 };
    rc = judge(weft_http_do(cl, &redir, &r), &r, "Hello, World!");
    weft_http_response_free(&r);
    if (rc)
        return rc;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/echo", port);
    weft_http_header h[] = { { "X-One", "1" } };
    weft_http_request post = { .method = "POST", .url = url, .headers = h, .nheaders = 1,
                               .body = "posted", .body_len = 6 };
    rc = judge(weft_http_do(cl, &post, &r), &r, "posted");
    weft_http_response_free(&r);
    if (rc)
        return rc;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/gzip", port);
    rc = judge(weft_http_get(cl, url, &r), &r, text);
    weft_http_response_free(&r);
    if (rc)
        return rc;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/stream", port);
    return streamed(cl, url);
}

/* The server and the client run as siblings: a server that fails cancels
 * the client (and a client done stops the server). */
struct served { weft_http_server *s; weft_listener *l; int port; weft_task *server; };

static int serve(void *arg)
{
    struct served *v = arg;
    v->server = weft_self();
    return weft_http_serve(v->s, v->l);
}

static int client(void *arg)
{
    struct served *v = arg;
    /* short timeouts: a failure that hangs shows as a timeout */
    weft_http_client_opts o = { .read_timeout = 5 * WEFT_SEC, .pool_timeout = 5 * WEFT_SEC,
                                .max_redirects = 2 };
    weft_http_client *cl = weft_http_client_new(&o);
    int rc = cl ? requests(cl, v->port) : -errno;
    weft_http_client_free(cl, WEFT_SEC);
    weft_task_cancel(v->server);          /* serve stops gracefully, at once */
    return rc;
}

static int routes(weft_http_server *s)
{
    int rc = weft_http_server_route(s, "GET", "/hello", h_hello, NULL);
    if (!rc)
        rc = weft_http_server_route(s, "GET", "/to", h_to, NULL);
    if (!rc)
        rc = weft_http_server_route(s, "POST", "/echo", h_echo, NULL);
    if (!rc)
        rc = weft_http_server_route(s, "GET", "/gzip", h_gzip, NULL);
    if (!rc)
        rc = weft_http_server_route(s, "GET", "/stream", h_stream, NULL);
    return rc;
}

static int workload(void *unused)
{
    (void)unused;
    struct served v = { weft_http_server_new(NULL), NULL, 0, NULL };
    if (!v.s)
        return -errno;
    int rc = routes(v.s);
    if (!rc && !(rc = weft_tcp_listen(&v.l, "127.0.0.1", 0, 0, 0)))
        v.port = weft_listener_port(v.l);  /* (v.l is serve's to close) */
    weft_group *g = rc ? NULL : weft_group_new();
    if (!rc && !g)
        rc = -errno;
    if (!rc)
        rc = weft_spawn(g, serve, &v, "server");
    if (rc)
        weft_listener_close(v.l);         /* else weft_http_serve closes it */
    if (!rc && (rc = weft_spawn(g, client, &v, "client")))
        weft_group_cancel(g);
    int grc = g ? weft_group_wait(g) : 0;
    weft_http_server_free(v.s);
    return rc ? rc : grc;
}

static bool clean(int rc) { return rc == 0 || rc == -ENOMEM; }

static void test_http_alloc_failures(void **s)
{
    (void)s;
    z_stream z = { 0 };
    deflateInit2(&z, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY);
    z.next_in = (Bytef *)text;
    z.avail_in = (uInt)strlen(text);
    z.next_out = (Bytef *)gz;
    z.avail_out = sizeof gz;
    deflate(&z, Z_FINISH);
    gz_len = (int)z.total_out;
    deflateEnd(&z);
    long n = alloc_sweep(workload, NULL, clean);
    fprintf(stderr, "%ld allocations swept\n", n);
    assert_true(n > 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
