/*
 * TLS with OpenSSL 3 (weft/tls.h).
 *
 * The SSL object works on the socket directly (through a BIO that never
 * raises SIGPIPE) and is installed as the conn's transport (net/internal.h):
 * the stream layer calls it for each attempt and, when OpenSSL wants to
 * read or write first, waits on the fd like for any plain read or write,
 * with the same timeouts; a write that must wait for a read (a key update)
 * still counts as a write. OpenSSL keeps a per-thread error queue that every task of the
 * loop shares, so each SSL call starts from a cleared queue and its error
 * is read into the connection before the task can suspend: one task never
 * sees another's error.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "internal.h"
#include "weft/tls.h"

struct weft_tls_ctx {
    SSL_CTX *ssl;
    bool server, verify;
    unsigned char alpn[256];              /* wire format */
    unsigned alpn_len;
};

struct weft__tls {
    SSL *ssl;
    int io_err;                           /* the last socket call's error (see note_io) */
    char err[160];
    char alpn[32];
};

/* ---- a socket BIO that never raises SIGPIPE -------------------------------- */

/* OpenSSL's socket BIO writes with write(2): a peer that closed would kill
 * the process with SIGPIPE. This one sends with MSG_NOSIGNAL, and keeps
 * what the socket said (note_io). */

/* Keeps what a socket call said, for outcome(): errno read at once (errno
 * is per thread, and the rest of OpenSSL or another task of the loop may
 * change it before anyone looks), -WEFT_EEOF for the end of the stream,
 * 0 after a success or a retry. */
static void note_io(BIO *b, ssize_t n, int err)
{
    struct weft__tls *s = BIO_get_app_data(b);
    s->io_err = n > 0 || BIO_should_retry(b) ? 0 : n == 0 ? -WEFT_EEOF : -err;
}

static int bio_write(BIO *b, const char *buf, int len)
{
    ssize_t n = send(BIO_get_fd(b, NULL), buf, (size_t)len, MSG_NOSIGNAL);
    int err = errno;
    BIO_clear_retry_flags(b);
    if (n < 0 && (err == EAGAIN || err == EINTR))
        BIO_set_retry_write(b);
    note_io(b, n, err);
    return (int)n;
}

static int bio_read(BIO *b, char *buf, int len)
{
    ssize_t n = recv(BIO_get_fd(b, NULL), buf, (size_t)len, 0);
    int err = errno;
    BIO_clear_retry_flags(b);
    if (n < 0 && (err == EAGAIN || err == EINTR))
        BIO_set_retry_read(b);
    note_io(b, n, err);
    return (int)n;
}

static BIO_METHOD *bio_method;
static pthread_once_t bio_once = PTHREAD_ONCE_INIT;

static void bio_init(void)
{
    const BIO_METHOD *sock = BIO_s_socket();
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR,
                                 "weft socket");
    if (!m)
        return;
    BIO_meth_set_write(m, bio_write);
    BIO_meth_set_read(m, bio_read);
    BIO_meth_set_puts(m, BIO_meth_get_puts(sock));
    BIO_meth_set_ctrl(m, BIO_meth_get_ctrl(sock));
    BIO_meth_set_create(m, BIO_meth_get_create(sock));
    BIO_meth_set_destroy(m, BIO_meth_get_destroy(sock));
    bio_method = m;
}

static int attach_fd(struct weft__tls *s, int fd)
{
    pthread_once(&bio_once, bio_init);
    BIO *b = bio_method ? BIO_new(bio_method) : NULL;
    if (!b)
        return -ENOMEM;
    BIO_set_fd(b, fd, BIO_NOCLOSE);
    if (!BIO_set_app_data(b, s)) {
        BIO_free(b);
        return -ENOMEM;
    }
    SSL_set_bio(s->ssl, b, b);
    return 0;
}

/* ---- contexts ------------------------------------------------------------- */

static weft_tls_ctx *ctx_new(bool server)
{
    weft_tls_ctx *t = weft__calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->ssl = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (!t->ssl) {
        weft__free(t);
        errno = ENOMEM;
        return NULL;
    }
    SSL_CTX_set_min_proto_version(t->ssl, TLS1_2_VERSION);
    SSL_CTX_set_mode(t->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                             SSL_MODE_RELEASE_BUFFERS);
    t->server = server;
    return t;
}

weft_tls_ctx *weft_tls_client_new(void)
{
    weft_tls_ctx *t = ctx_new(false);
    if (!t)
        return NULL;
    SSL_CTX_set_default_verify_paths(t->ssl);
    SSL_CTX_set_verify(t->ssl, SSL_VERIFY_PEER, NULL);
    t->verify = true;
    return t;
}

weft_tls_ctx *weft_tls_server_new(const char *cert_file, const char *key_file)
{
    if (!cert_file || !key_file) {
        errno = EINVAL;
        return NULL;
    }
    FILE *f1 = fopen(cert_file, "r"), *f2 = fopen(key_file, "r");
    if (f1)
        fclose(f1);
    if (f2)
        fclose(f2);
    if (!f1 || !f2) {
        errno = ENOENT;
        return NULL;
    }
    weft_tls_ctx *t = ctx_new(true);
    if (!t)
        return NULL;
    ERR_clear_error();
    if (SSL_CTX_use_certificate_chain_file(t->ssl, cert_file) != 1 ||
        SSL_CTX_use_PrivateKey_file(t->ssl, key_file, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(t->ssl) != 1) {
        char reason[160];
        ERR_error_string_n(ERR_get_error(), reason, sizeof reason);
        weft_log(WEFT_LOG_ERROR, "tls: %s / %s: %s", cert_file, key_file, reason);
        ERR_clear_error();
        weft_tls_ctx_free(t);
        errno = EINVAL;
        return NULL;
    }
    return t;
}

int weft_tls_ctx_load_ca(weft_tls_ctx *t, const char *ca_file)
{
    if (!t || !ca_file)
        return -EINVAL;
    FILE *f = fopen(ca_file, "r");
    if (!f)
        return -ENOENT;
    fclose(f);
    ERR_clear_error();
    int ok = SSL_CTX_load_verify_locations(t->ssl, ca_file, NULL);
    ERR_clear_error();
    return ok == 1 ? 0 : -EINVAL;
}

int weft_tls_ctx_set_verify(weft_tls_ctx *t, bool verify)
{
    if (!t)
        return -EINVAL;
    t->verify = verify;
    SSL_CTX_set_verify(t->ssl, verify && !t->server ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    return 0;
}

static int select_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned inlen, void *arg)
{
    (void)ssl;
    weft_tls_ctx *t = arg;
    return SSL_select_next_proto((unsigned char **)out, outlen, t->alpn, t->alpn_len, in,
                                 inlen) == OPENSSL_NPN_NEGOTIATED
               ? SSL_TLSEXT_ERR_OK
               : SSL_TLSEXT_ERR_NOACK;
}

int weft_tls_ctx_set_alpn(weft_tls_ctx *t, const char *const *protos, int n)
{
    if (!t || !protos || n < 1)
        return -EINVAL;
    unsigned len = 0;
    for (int i = 0; i < n; i++) {
        size_t l = protos[i] ? strlen(protos[i]) : 0;
        if (!l || l > 255 || len + 1 + l > sizeof t->alpn)
            return -EINVAL;
        t->alpn[len++] = (unsigned char)l;
        memcpy(t->alpn + len, protos[i], l);
        len += (unsigned)l;
    }
    t->alpn_len = len;
    if (t->server)
        SSL_CTX_set_alpn_select_cb(t->ssl, select_alpn, t);
    else if (SSL_CTX_set_alpn_protos(t->ssl, t->alpn, len) != 0)
        return -ENOMEM;
    return 0;
}

void weft_tls_ctx_free(weft_tls_ctx *t)
{
    if (!t)
        return;
    SSL_CTX_free(t->ssl);
    weft__free(t);
}

/* ---- the SSL calls ---------------------------------------------------------- */

/* Turns the result of one SSL call into 0/count, a wait, or an error, and
 * empties this thread's error queue into c before anything can suspend. */
static int outcome(weft_conn *c, int ret, int *want)
{
    struct weft__tls *s = c->tp;
    int e = SSL_get_error(s->ssl, ret);
    *want = 0;
    switch (e) {
    case SSL_ERROR_WANT_READ: *want = WEFT_READ; ERR_clear_error(); return -EAGAIN;
    case SSL_ERROR_WANT_WRITE: *want = WEFT_WRITE; ERR_clear_error(); return -EAGAIN;
    case SSL_ERROR_ZERO_RETURN: ERR_clear_error(); return 0;
    }
    unsigned long code = ERR_get_error();
    int rc;
    if (code) {
        ERR_error_string_n(code, s->err, sizeof s->err);
        rc = ERR_GET_REASON(code) == SSL_R_CERTIFICATE_VERIFY_FAILED ? -WEFT_ETLS_VERIFY
                                                                      : -WEFT_ETLS;
        long v = SSL_get_verify_result(s->ssl);
        if (rc == -WEFT_ETLS_VERIFY && v != X509_V_OK)
            snprintf(s->err, sizeof s->err, "certificate verify failed: %s",
                     X509_verify_cert_error_string(v));
    } else if (e == SSL_ERROR_SYSCALL) {
        rc = s->io_err ? s->io_err : -WEFT_EEOF;   /* the socket's error, never errno's */
        snprintf(s->err, sizeof s->err, "%s", weft_strerror(rc));
    } else {
        rc = -WEFT_ETLS;
        snprintf(s->err, sizeof s->err, "SSL error %d", e);
    }
    ERR_clear_error();
    return rc;
}

static SSL *ssl_of(weft_conn *c) { return ((struct weft__tls *)c->tp)->ssl; }

static ssize_t tls_read(weft_conn *c, void *buf, size_t len, int *want)
{
    ERR_clear_error();
    int n = SSL_read(ssl_of(c), buf, len > INT32_MAX ? INT32_MAX : (int)len);
    return n > 0 ? n : outcome(c, n, want);
}

/* SSL_write takes one buffer: the first non-empty one goes now, the stream
 * layer comes back for the rest. */
static ssize_t tls_writev(weft_conn *c, const struct iovec *iov, int cnt, int *want)
{
    while (cnt > 1 && !iov->iov_len) {
        iov++;
        cnt--;
    }
    size_t len = iov->iov_len;
    ERR_clear_error();
    int n = SSL_write(ssl_of(c), iov->iov_base, len > INT32_MAX ? INT32_MAX : (int)len);
    if (n > 0)
        return n;
    int rc = outcome(c, n, want);
    return rc ? rc : -EPIPE;              /* close_notify while writing */
}

static int tls_shutdown(weft_conn *c, int *want)
{
    ERR_clear_error();
    int r = SSL_shutdown(ssl_of(c));
    if (r >= 0) {
        *want = 0;
        return 0;                         /* our close_notify is out */
    }
    return outcome(c, r, want);
}

static void tls_free(weft_conn *c)
{
    struct weft__tls *s = c->tp;
    SSL_free(s->ssl);
    weft__free(s);
    c->tp = NULL;
}

/* decrypted bytes, or raw ones not yet decrypted (read-ahead) */
static bool tls_buffered(weft_conn *c) { return SSL_has_pending(ssl_of(c)); }

static const struct weft__transport tls = { tls_read, tls_writev, tls_shutdown, tls_free,
                                            tls_buffered };

static int handshake_step(weft_conn *c, int *want)
{
    ERR_clear_error();
    int r = SSL_do_handshake(ssl_of(c));
    if (r == 1)
        return 0;
    int rc = outcome(c, r, want);
    return rc ? rc : -WEFT_EEOF;
}

static int handshake(weft_conn *c, weft_tls_ctx *t, const char *name)
{
    int rc = weft__conn_usable(c);
    if (rc)
        return rc;
    if (!t || c->tr == &tls || t->server != !name)
        return -EINVAL;
    if (c->rlen || c->wlen)
        return -EPROTO;                   /* plaintext must not pass as TLS (CVE-2021-23222) */
    struct weft__tls *s = weft__calloc(1, sizeof *s);
    if (!s || !(s->ssl = SSL_new(t->ssl))) {
        weft__free(s);
        return -ENOMEM;
    }
    c->tr->free(c);
    c->tr = &tls;
    c->tp = s;
    if (attach_fd(s, c->fd) < 0)
        return c->broken = -ENOMEM;
    if (name) {
        struct in6_addr ip;
        bool literal = inet_pton(AF_INET, name, &ip) == 1 || inet_pton(AF_INET6, name, &ip) == 1;
        if (!literal)
            SSL_set_tlsext_host_name(s->ssl, name);     /* SNI is for names only */
        if (t->verify) {
            X509_VERIFY_PARAM *vp = SSL_get0_param(s->ssl);
            X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
            if (literal ? X509_VERIFY_PARAM_set1_ip_asc(vp, name) != 1
                        : SSL_set1_host(s->ssl, name) != 1) {
                snprintf(s->err, sizeof s->err, "bad server name '%s'", name);
                return c->broken = -EINVAL;
            }
        }
        SSL_set_connect_state(s->ssl);
    } else {
        SSL_set_accept_state(s->ssl);
    }
    rc = weft__conn_drive(c, false, handshake_step);
    if (rc == -EBADF)
        return rc;                        /* closed meanwhile: c is gone */
    if (rc)
        return c->broken = rc;
    const unsigned char *p;
    unsigned plen;
    SSL_get0_alpn_selected(s->ssl, &p, &plen);
    if (plen && plen < sizeof s->alpn) {
        memcpy(s->alpn, p, plen);
        s->alpn[plen] = 0;
    }
    return 0;
}

int weft_tls_connect(weft_conn *c, weft_tls_ctx *t, const char *server_name)
{
    if (!server_name || !*server_name)
        return -EINVAL;
    return handshake(c, t, server_name);
}

int weft_tls_accept(weft_conn *c, weft_tls_ctx *t) { return handshake(c, t, NULL); }

static const struct weft__tls *tls_of(const weft_conn *c)
{
    return c && c->tr == &tls ? c->tp : NULL;
}

const char *weft_tls_alpn(const weft_conn *c) { return tls_of(c) ? tls_of(c)->alpn : ""; }
const char *weft_tls_error(const weft_conn *c) { return tls_of(c) ? tls_of(c)->err : ""; }
