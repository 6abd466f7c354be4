/* TLS: weft's client against weft's server and `openssl s_server`, with a
 * certificate made at test time; verification failures; timeouts and
 * cancellation in the handshake; streams cut in a handshake or a record. */
#include <signal.h>
#include <sys/stat.h>

#include "test.h"
#include "netutil.h"

#include "certs.h"
#define cert cert_file
#define key key_file
#define other_key other_key_file

struct tls_server { weft_listener *l; weft_tls_ctx *ctx; int handshakes, failures; };

static int tls_echo(void *arg)
{
    void **a = arg;
    struct tls_server *s = a[0];
    weft_conn *c = a[1];
    free(a);
    if (weft_tls_accept(c, s->ctx) == 0) {
        s->handshakes++;
        char buf[1024];
        int n;
        while ((n = weft_conn_read_some(c, buf, sizeof buf)) > 0)
            if (weft_conn_write_all(c, buf, (size_t)n))
                break;
    } else {
        s->failures++;
    }
    weft_conn_close(c);
    return 0;
}

static int tls_server(void *arg)
{
    struct tls_server *s = arg;
    weft_group *g = weft_group_new();
    weft_conn *c;
    while (weft_accept(s->l, &c, NULL) == 0) {
        void **a = malloc(2 * sizeof *a);
        a[0] = s;
        a[1] = c;
        weft_spawn(g, tls_echo, a, "tls-echo");
    }
    return weft_group_wait(g);              /* every client has closed by now */
}

static int against_weft(void *unused)
{
    (void)unused;
    struct tls_server s = { 0 };
    s.ctx = weft_tls_server_new(cert, key);
    EXPECT(s.ctx != NULL);
    const char *alpn_server[] = { "h2", "http/1.1" }, *alpn_client[] = { "http/1.1" };
    EXPECT_EQ(weft_tls_ctx_set_alpn(s.ctx, alpn_server, 2), 0);
    EXPECT_EQ(weft_tcp_listen(&s.l, "127.0.0.1", 0, 0, 0), 0);
    int port = weft_listener_port(s.l);
    weft_group *g = weft_group_new();
    weft_spawn(g, tls_server, &s, "tls-server");

    weft_tls_ctx *cli = weft_tls_client_new();
    EXPECT_EQ(weft_tls_ctx_load_ca(cli, cert), 0);
    EXPECT_EQ(weft_tls_ctx_set_alpn(cli, alpn_client, 1), 0);
    weft_conn *c;
    const char *names[] = { "localhost", "127.0.0.1" };
    for (int i = 0; i < 2; i++) {
        EXPECT_EQ(weft_tcp_connect(&c, "127.0.0.1", port, NULL), 0);
        EXPECT_EQ(weft_tls_connect(c, cli, names[i]), 0);
        EXPECT(strcmp(weft_tls_alpn(c), "http/1.1") == 0);
        const char *line;
        EXPECT_EQ(weft_conn_write_all(c, "secret line\n", 12), 0);
        EXPECT_EQ(weft_conn_read_until(c, "\n", 1, 100, &line), 12);
        EXPECT(memcmp(line, "secret line\n", 12) == 0);
        /* a big one, through partial TLS records */
        size_t big = 300000;
        char *out = malloc(big), *in = malloc(big);
        for (size_t k = 0; k < big; k++)
            out[k] = (char)(k * 31);
        EXPECT_EQ(weft_conn_write_all(c, out, big), 0);
        EXPECT_EQ(weft_conn_read_exact(c, in, big), 0);
        EXPECT(memcmp(in, out, big) == 0);
        free(out);
        free(in);
        EXPECT_EQ(weft_conn_shutdown(c), 0);
        weft_conn_close(c);
    }

    /* the certificate is not for this name */
    EXPECT_EQ(weft_tcp_connect(&c, "127.0.0.1", port, NULL), 0);
    EXPECT_EQ(weft_tls_connect(c, cli, "wrong.example"), -WEFT_ETLS_VERIFY);
    EXPECT(strstr(weft_tls_error(c), "hostname mismatch") != NULL);
    EXPECT_EQ(weft_conn_write_all(c, "x", 1), -WEFT_EBROKEN);
    weft_conn_close(c);
    /* not trusted without the CA */
    weft_tls_ctx *strict = weft_tls_client_new();
    EXPECT_EQ(weft_tcp_connect(&c, "127.0.0.1", port, NULL), 0);
    EXPECT_EQ(weft_tls_connect(c, strict, "localhost"), -WEFT_ETLS_VERIFY);
    EXPECT(strstr(weft_tls_error(c), "self-signed") != NULL ||
           strstr(weft_tls_error(c), "self signed") != NULL);
    weft_conn_close(c);
    /* the explicit opt-out */
    EXPECT_EQ(weft_tls_ctx_set_verify(strict, false), 0);
    EXPECT_EQ(weft_tcp_connect(&c, "127.0.0.1", port, NULL), 0);
    EXPECT_EQ(weft_tls_connect(c, strict, "wrong.example"), 0);
    weft_conn_close(c);
    weft_tls_ctx_free(strict);
    weft_tls_ctx_free(cli);

    weft_listener_close(s.l);
    EXPECT_EQ(weft_group_wait(g), 0);
    EXPECT_EQ(s.handshakes, 3);
    EXPECT_EQ(s.failures, 2);
    weft_tls_ctx_free(s.ctx);
    return 0;
}
static void test_weft_server_and_client(void **s) { (void)s; RUN(against_weft, NULL); }

/* `openssl s_server -www` answers GET / with a status page */
static int against_openssl(void *arg)
{
    int port = *(int *)arg;
    weft_tls_ctx *cli = weft_tls_client_new();
    EXPECT_EQ(weft_tls_ctx_load_ca(cli, cert), 0);
    weft_conn *c = NULL;
    int rc = -1;
    for (int i = 0; i < 100 && rc; i++) {     /* until s_server listens */
        rc = weft_tcp_connect(&c, "127.0.0.1", port, NULL);
        if (rc)
            weft_sleep(20 * WEFT_MS);
    }
    EXPECT_EQ(rc, 0);
    if (rc)
        return 0;
    EXPECT_EQ(weft_tls_connect(c, cli, "localhost"), 0);
    EXPECT_EQ(weft_conn_write_all(c, "GET / HTTP/1.0\r\n\r\n", 18), 0);
    const char *line;
    int n = weft_conn_read_until(c, "\r\n", 2, 200, &line);
    EXPECT(n > 0 && strncmp(line, "HTTP/1.0 200 ok", 15) == 0);
    weft_conn_close(c);
    weft_tls_ctx_free(cli);
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

/* a peer that accepts TCP but never speaks TLS */
static int silent(void *arg)
{
    weft_listener *l = arg;
    weft_conn *c;
    if (weft_accept(l, &c, NULL) == 0) {
        weft_sleep(2 * WEFT_SEC);
        weft_conn_close(c);
    }
    return 0;
}

static int hs_rc;
static int handshaker(void *arg)
{
    weft_tls_ctx *cli = weft_tls_client_new();
    weft_conn *c;
    if (weft_tcp_connect(&c, "127.0.0.1", *(int *)arg, NULL) == 0) {
        hs_rc = weft_tls_connect(c, cli, "localhost");
        weft_conn_close(c);
    }
    weft_tls_ctx_free(cli);
    return 0;
}

static int handshake_stalls(void *unused)
{
    (void)unused;
    weft_listener *l;
    EXPECT_EQ(weft_tcp_listen(&l, "127.0.0.1", 0, 0, 0), 0);
    int port = weft_listener_port(l);
    weft_group *peer = weft_group_new();
    weft_spawn(peer, silent, l, "silent");
    weft_tls_ctx *cli = weft_tls_client_new();
    weft_conn *c;
    weft_net_opts quick = { .read_timeout = 100 * WEFT_MS };
    EXPECT_EQ(weft_tcp_connect(&c, "127.0.0.1", port, &quick), 0);
    weft_time t0 = weft_now();
    EXPECT_EQ(weft_tls_connect(c, cli, "localhost"), -WEFT_EREAD_TIMEOUT);
    EXPECT(weft_now() - t0 < WEFT_SEC);
    weft_conn_close(c);
    weft_group_cancel(peer);
    weft_group_wait(peer);
    /* cancelled in the middle of the handshake */
    peer = weft_group_new();
    weft_spawn(peer, silent, l, "silent");
    weft_group *g = weft_group_new();
    weft_spawn(g, handshaker, &port, "handshaker");
    weft_sleep(30 * WEFT_MS);
    weft_group_cancel(g);
    EXPECT_EQ(weft_group_wait(g), 0);
    EXPECT_EQ(hs_rc, -ECANCELED);
    weft_group_cancel(peer);
    weft_group_wait(peer);
    weft_tls_ctx_free(cli);
    weft_listener_close(l);
    return 0;
}
static void test_handshake_timeout_and_cancel(void **s) { (void)s; RUN(handshake_stalls, NULL); }

/* a peer that closes right after the handshake: writes fail with an
 * error, never SIGPIPE (OpenSSL's own socket BIO would raise it) */
static int hangs_up(void *arg)
{
    struct tls_server *s = arg;
    weft_conn *c;
    if (weft_accept(s->l, &c, NULL) == 0) {
        weft_tls_accept(c, s->ctx);
        weft_conn_close(c);
    }
    return 0;
}

static int no_sigpipe(void *unused)
{
    (void)unused;
    struct tls_server s = { 0 };
    s.ctx = weft_tls_server_new(cert, key);
    EXPECT_EQ(weft_tcp_listen(&s.l, "127.0.0.1", 0, 0, 0), 0);
    weft_group *g = weft_group_new();
    weft_spawn(g, hangs_up, &s, "hangs-up");
    weft_tls_ctx *cli = weft_tls_client_new();
    weft_tls_ctx_load_ca(cli, cert);
    weft_conn *c;
    EXPECT_EQ(weft_tcp_connect(&c, "127.0.0.1", weft_listener_port(s.l), NULL), 0);
    EXPECT_EQ(weft_tls_connect(c, cli, "localhost"), 0);
    EXPECT_EQ(weft_group_wait(g), 0);
    char chunk[16384] = { 0 };
    int rc = 0;
    for (int i = 0; i < 200 && rc == 0; i++)
        rc = weft_conn_write_all(c, chunk, sizeof chunk);
    EXPECT(rc == -EPIPE || rc == -ECONNRESET);
    weft_conn_close(c);
    weft_listener_close(s.l);
    weft_tls_ctx_free(cli);
    weft_tls_ctx_free(s.ctx);
    return 0;
}
static void test_no_sigpipe(void **s) { (void)s; RUN(no_sigpipe, NULL); }

/* ---- a peer that cuts the stream ----------------------------------------- */

/* It sends part of a TLS record (a header announcing 64 bytes of a
 * handshake message, or of application data after the handshake, then 2
 * of them), then ends the stream (FIN) or resets it (RST). With
 * after_handshake it first completes a real handshake, so the cut comes
 * in the middle of a record read after it. */
struct cutter {
    weft_listener *l;
    weft_tls_ctx *ctx;
    bool reset, after_handshake;
    weft_event go;                        /* the client is ready for the cut */
    weft_event cut;                       /* the bytes and the FIN/RST are out */
};

static int cutter(void *arg)
{
    struct cutter *p = arg;
    weft_conn *c;
    if (weft_accept(p->l, &c, NULL) != 0)
        return 0;
    if (p->after_handshake)
        EXPECT_EQ(weft_tls_accept(c, p->ctx), 0);
    EXPECT_EQ(weft_event_wait(&p->go), 0);
    unsigned char part[] = { 0x16, 0x03, 0x03, 0x00, 0x40, 0x02, 0x00 };
    if (p->after_handshake)
        part[0] = 0x17;
    int fd = weft_conn_fd(c);
    EXPECT_EQ(write(fd, part, sizeof part), (ssize_t)sizeof part);
    if (p->reset) {
        struct linger lg = { 1, 0 };
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        weft_conn_close(c);
        weft_event_set(&p->cut);
        return 0;
    }
    shutdown(fd, SHUT_WR);
    weft_event_set(&p->cut);
    char rest[4096];                      /* take what the client sends, or close resets */
    while (weft_conn_read_some(c, rest, sizeof rest) > 0)
        ;
    weft_conn_close(c);
    return 0;
}

/* The error of a cut stream is its own (-WEFT_EEOF or -ECONNRESET), never
 * whatever errno held before: errno is per thread, and every task of the
 * loop leaves its own there. */
static int cut_case(bool reset, bool after_handshake)
{
    struct cutter p = { .reset = reset, .after_handshake = after_handshake };
    weft_event_init(&p.go);
    weft_event_init(&p.cut);
    p.ctx = weft_tls_server_new(cert, key);
    EXPECT_EQ(weft_tcp_listen(&p.l, "127.0.0.1", 0, 0, 0), 0);
    weft_group *g = weft_group_new();
    weft_spawn(g, cutter, &p, "cutter");
    weft_tls_ctx *cli = weft_tls_client_new();
    weft_tls_ctx_load_ca(cli, cert);
    weft_conn *c = NULL;
    int rc = 1;
    EXPECT_EQ(weft_tcp_connect(&c, "127.0.0.1", weft_listener_port(p.l), NULL), 0);
    if (after_handshake)
        EXPECT_EQ(weft_tls_connect(c, cli, "localhost"), 0);
    weft_event_set(&p.go);
    EXPECT_EQ(weft_event_wait(&p.cut), 0);
    if (after_handshake) {
        char buf[64];
        errno = EXDEV;                    /* left by some earlier call */
        rc = weft_conn_read_some(c, buf, sizeof buf);
    } else {
        errno = EXDEV;
        rc = weft_tls_connect(c, cli, "localhost");
    }
    EXPECT(weft_conn_broken(c));
    weft_conn_close(c);
    EXPECT_EQ(weft_group_wait(g), 0);
    weft_listener_close(p.l);
    weft_tls_ctx_free(cli);
    weft_tls_ctx_free(p.ctx);
    return rc;
}

static int cut_streams(void *unused)
{
    (void)unused;
    EXPECT_EQ(cut_case(false, false), -WEFT_EEOF);   /* FIN in the handshake */
    EXPECT_EQ(cut_case(true, false), -ECONNRESET);   /* RST in the handshake */
    EXPECT_EQ(cut_case(false, true), -WEFT_EEOF);    /* FIN in a record */
    EXPECT_EQ(cut_case(true, true), -ECONNRESET);    /* RST in a record */
    return 0;
}
static void test_cut_stream_errors(void **s) { (void)s; RUN(cut_streams, NULL); }

static void test_bad_files(void **s)
{
    (void)s;
    errno = 0;
    assert_null(weft_tls_server_new("/nonexistent.pem", key));
    assert_int_equal(errno, ENOENT);
    test_log_capture();
    assert_null(weft_tls_server_new(cert, other_key));     /* key does not match */
    assert_int_equal(errno, EINVAL);
    weft_log_set(NULL, NULL, WEFT_LOG_INFO);
    assert_non_null(strstr(test_log, "tls:"));
    weft_tls_ctx *c = weft_tls_client_new();
    assert_int_equal(weft_tls_ctx_load_ca(c, "/nonexistent.pem"), -ENOENT);
    const char *empty[] = { "" };
    assert_int_equal(weft_tls_ctx_set_alpn(c, empty, 1), -EINVAL);
    weft_tls_ctx_free(c);
}

static int teardown(void **s)
{
    (void)s;
    remove_certs();
    return 0;
}

int main(void)
{
    make_certs();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_weft_server_and_client),
        cmocka_unit_test(test_openssl_s_server),
        cmocka_unit_test(test_handshake_timeout_and_cancel),
        cmocka_unit_test(test_no_sigpipe),
        cmocka_unit_test(test_cut_stream_errors),
        cmocka_unit_test(test_bad_files),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
