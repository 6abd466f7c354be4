/* https through the TLS layer: verification on by default. */
#include "test.h"
#include "netutil.h"
#include "certs.h"

struct srv { weft_listener *l; weft_tls_ctx *ctx; };

static int serve(void *arg)
{
    struct srv *s = arg;
    weft_conn *c;
    while (weft_accept(s->l, &c, NULL) == 0) {
        const char *head;
        if (weft_tls_accept(c, s->ctx) == 0 &&
            weft_conn_read_until(c, "\r\n\r\n", 4, 8192, &head) > 0) {
            const char *resp = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecret";
            weft_conn_write_all(c, resp, strlen(resp));
        }
        weft_conn_close(c);
    }
    return 0;
}

static int https(void *unused)
{
    (void)unused;
    struct srv s = { .ctx = weft_tls_server_new(cert_file, key_file) };
    EXPECT_EQ(weft_tcp_listen(&s.l, "127.0.0.1", 0, 0, 0), 0);
    weft_group *g = weft_group_new();
    weft_spawn(g, serve, &s, "https");
    char url[96];
    snprintf(url, sizeof url, "https://localhost:%d/x", weft_listener_port(s.l));
    weft_http_response r;

    /* the default client verifies against the system CAs: refused */
    weft_http_client *strict = weft_http_client_new(NULL);
    EXPECT_EQ(weft_http_get(strict, url, &r), -WEFT_ETLS_VERIFY);
    weft_http_response_free(&r);
    weft_http_client_free(strict, WEFT_SEC);

    /* trusting our CA: works, by name and by IP */
    weft_tls_ctx *tls = weft_tls_client_new();
    EXPECT_EQ(weft_tls_ctx_load_ca(tls, cert_file), 0);
    weft_http_client_opts o = { .tls = tls };
    weft_http_client *cl = weft_http_client_new(&o);
    EXPECT_EQ(weft_http_get(cl, url, &r), 0);
    EXPECT_EQ(r.status, 200);
    EXPECT(r.body && strcmp(r.body, "secret") == 0);
    weft_http_response_free(&r);
    snprintf(url, sizeof url, "https://127.0.0.1:%d/x", weft_listener_port(s.l));
    EXPECT_EQ(weft_http_get(cl, url, &r), 0);
    weft_http_response_free(&r);
    weft_http_client_free(cl, WEFT_SEC);
    weft_tls_ctx_free(tls);

    weft_listener_close(s.l);
    weft_group_wait(g);
    weft_tls_ctx_free(s.ctx);
    return 0;
}
static void test_https(void **s) { (void)s; RUN(https, NULL); }

/* against `openssl s_server -www` (HTTP/1.0, closes after the answer) */
static int against_openssl(void *arg)
{
    int port = *(int *)arg;
    weft_tls_ctx *tls = weft_tls_client_new();
    EXPECT_EQ(weft_tls_ctx_load_ca(tls, cert_file), 0);
    weft_http_client_opts o = { .tls = tls };
    weft_http_client *cl = weft_http_client_new(&o);
    char url[64];
    snprintf(url, sizeof url, "https://localhost:%d/", port);
    weft_http_response r;
    int rc = -1;
    for (int i = 0; i < 100 && rc; i++) {        /* until s_server listens */
        rc = weft_http_get(cl, url, &r);
        if (rc) {
            weft_http_response_free(&r);
            weft_sleep(20 * WEFT_MS);
        }
    }
    EXPECT_EQ(rc, 0);
    EXPECT_EQ(r.status, 200);
    EXPECT(r.body && strstr(r.body, "s_server") != NULL);
    weft_http_response_free(&r);
    weft_http_client_free(cl, WEFT_SEC);
    weft_tls_ctx_free(tls);
    return 0;
}

static void test_openssl_s_server(void **s)
{
    (void)s;
    int port = free_port();
    pid_t pid = s_server_start(port);
    RUN(against_openssl, &port);
    s_server_stop(pid);
}

int main(void)
{
    make_certs();
    const struct CMUnitTest tests[] = { cmocka_unit_test(test_https),
                                        cmocka_unit_test(test_openssl_s_server) };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    remove_certs();
    return rc;
}
