/*
 * The HTTP/1.1 client (weft/http.h).
 *
 * Connections live in one weft_pool per origin; a client-wide semaphore
 * holds one permit per open connection, so the total stays under
 * max_connections. A request takes a connection, writes the request head
 * and body with one writev, and feeds what arrives to llhttp straight from
 * the connection's read buffer (no copy of the head; the body is copied
 * once into the response). The parser pauses at the end of the response so
 * bytes after it stay for the next request on a kept-alive connection.
 * Anything that interrupts a request breaks the connection (weft_conn) and
 * it is released as broken, never reused.
 */
#include <ctype.h>
#include <errno.h>
#include <llhttp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <zlib.h>

#include "../core/internal.h"
#include "internal.h"
#include "weft/http.h"
#include "weft/pool.h"
#include "weft/url.h"

#define MAX_HEADERS 128

struct origin {
    struct origin *next;
    weft_http_client *cl;
    char key[300], host[256];
    int port;
    bool tls;
    weft_pool *pool;
};

struct weft_http_client {
    weft_http_client_opts o;
    weft_tls_ctx *tls;
    bool own_tls;
    struct origin *origins;
    weft_group *bg;                       /* the pools' background tasks */
    weft_sem total;
    weft_http_client_stats stats;
};

struct hconn {
    weft_conn *c;
    struct origin *o;
    bool used;                            /* has carried a request before */
};

struct weft__http_resp {
    struct weft__head hd;                 /* header names and values */
    struct weft__hdr idx[MAX_HEADERS];
};

/* ---- connections ---------------------------------------------------------- */

static int conn_create(void *ctx, void **res)
{
    struct origin *o = ctx;
    weft_http_client *cl = o->cl;
    weft_scope sc;
    weft_scope_enter(&sc, cl->o.pool_timeout);
    int rc = weft_sem_acquire(&cl->total);      /* the total bound */
    bool ours = weft_scope_exit(&sc);
    if (rc)
        return rc == -ETIMEDOUT && ours ? -WEFT_EPOOL_TIMEOUT : rc;
    struct hconn *h = weft__calloc(1, sizeof *h);
    weft_net_opts no = { .connect_timeout = cl->o.connect_timeout,
                         .read_timeout = cl->o.read_timeout,
                         .write_timeout = cl->o.write_timeout };
    rc = h ? weft_tcp_connect(&h->c, o->host, o->port, &no) : -ENOMEM;
    if (rc == 0 && o->tls) {
        /* the handshake belongs to connecting: its timeout is the connect one */
        weft_scope hs;
        weft_scope_enter(&hs, cl->o.connect_timeout);
        rc = weft_tls_connect(h->c, cl->tls, o->host);
        if (weft_scope_exit(&hs) && rc == -ETIMEDOUT)
            rc = -WEFT_ECONNECT_TIMEOUT;
    }
    if (rc) {
        if (h)
            weft_conn_close(h->c);
        weft__free(h);
        weft_sem_release(&cl->total);
        return rc;
    }
    h->o = o;
    cl->stats.connections++;
    cl->stats.open++;
    *res = h;
    return 0;
}

static void conn_destroy(void *ctx, void *res)
{
    struct origin *o = ctx;
    struct hconn *h = res;
    weft_conn_close(h->c);
    weft__free(h);
    o->cl->stats.open--;
    weft_sem_release(&o->cl->total);
}

/* An idle connection the server closed (or wrote junk on) is not reused. */
static int conn_check(void *ctx, void *res)
{
    (void)ctx;
    struct hconn *h = res;
    const char *d;
    if (weft_conn_peek(h->c, &d) > 0)
        return -EPROTO;                   /* bytes nobody asked for */
    char b;
    ssize_t n = recv(weft_conn_fd(h->c), &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && errno == EAGAIN ? 0 : -EPIPE;
}

static struct origin *origin_get(weft_http_client *cl, const weft_url *u)
{
    char key[300];
    snprintf(key, sizeof key, "%s://%s:%d", u->scheme, u->host, u->port);
    for (struct origin *o = cl->origins; o; o = o->next)
        if (strcmp(o->key, key) == 0)
            return o;
    if (u->tls && !cl->tls) {             /* OpenSSL contexts cost milliseconds */
        if (!(cl->tls = weft_tls_client_new()))
            return NULL;
        cl->own_tls = true;
    }
    struct origin *o = weft__calloc(1, sizeof *o);
    if (!o)
        return NULL;
    memcpy(o->key, key, sizeof key);
    snprintf(o->host, sizeof o->host, "%s", u->host);
    o->port = u->port;
    o->tls = u->tls;
    o->cl = cl;
    static const weft_pool_ops ops = { conn_create, conn_destroy, conn_check, NULL };
    weft_pool_config pc = { .name = "http", .max_size = cl->o.max_per_origin,
                            .max_idle = cl->o.max_idle_per_origin,
                            .acquire_timeout = cl->o.pool_timeout,
                            .idle_timeout = cl->o.idle_timeout, .check_idle = WEFT_MS,
                            .supervisor = cl->bg };
    if (!(o->pool = weft_pool_new(&pc, &ops, o))) {
        weft__free(o);
        return NULL;
    }
    o->next = cl->origins;
    cl->origins = o;
    return o;
}

/* ---- the client ----------------------------------------------------------- */

static void bg_error(const char *task, int err, void *ctx)
{
    (void)ctx;
    weft_log(WEFT_LOG_ERROR, "http client: background task '%s' failed: %s", task,
             weft_strerror(err));
}

weft_http_client *weft_http_client_new(const weft_http_client_opts *opts)
{
    if (!weft__self()) {
        errno = EPERM;
        return NULL;
    }
    weft_http_client *cl = weft__calloc(1, sizeof *cl);
    if (!cl)
        return NULL;
    if (opts)
        cl->o = *opts;
    weft_http_client_opts *o = &cl->o;
    if (!o->max_connections)
        o->max_connections = 100;
    if (!o->max_per_origin || o->max_per_origin > o->max_connections)
        o->max_per_origin = o->max_connections;
    if (!o->max_idle_per_origin)
        o->max_idle_per_origin = o->max_per_origin < 20 ? o->max_per_origin : 20;
    if (!o->idle_timeout)
        o->idle_timeout = 5 * WEFT_SEC;
    if (!o->connect_timeout)
        o->connect_timeout = 10 * WEFT_SEC;
    if (!o->read_timeout)
        o->read_timeout = 30 * WEFT_SEC;
    if (!o->write_timeout)
        o->write_timeout = 30 * WEFT_SEC;
    if (!o->pool_timeout)
        o->pool_timeout = 30 * WEFT_SEC;
    if (!o->max_body)
        o->max_body = 16 << 20;
    if (!o->max_header_bytes)
        o->max_header_bytes = 64 << 10;
    if (!o->user_agent)
        o->user_agent = "weft/0.1";
    cl->tls = o->tls;                     /* else made for the first https origin */
    weft_sem_init(&cl->total, o->max_connections);
    if (!(cl->bg = weft_supervisor_new(bg_error, cl))) {
        weft__free(cl);
        return NULL;
    }
    return cl;
}

void weft_http_client_free(weft_http_client *cl, weft_time grace)
{
    if (!cl)
        return;
    struct origin *o;
    while ((o = cl->origins)) {
        cl->origins = o->next;
        weft_pool_close(o->pool, grace);
        weft__free(o);
    }
    weft_supervisor_close(cl->bg, 0);
    if (cl->own_tls)
        weft_tls_ctx_free(cl->tls);
    weft__free(cl);
}

void weft_http_client_stats_get(const weft_http_client *cl, weft_http_client_stats *s)
{
    if (cl && s)
        *s = cl->stats;
}

/* ---- responses ------------------------------------------------------------ */

void weft_http_response_free(weft_http_response *r)
{
    if (!r)
        return;
    if (r->priv_) {
        weft__free(r->priv_->hd.buf);
        weft__free(r->priv_);
    }
    weft__free(r->headers);
    weft__free(r->body);
    char err[sizeof r->error];
    memcpy(err, r->error, sizeof err);    /* a failure's reason outlives the free */
    memset(r, 0, sizeof *r);
    memcpy(r->error, err, sizeof err);
}

const char *weft_http_header_get(const weft_http_response *r, const char *name)
{
    for (int i = 0; r && name && i < r->nheaders; i++)
        if (strcasecmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    return NULL;
}

/* ---- parsing with llhttp --------------------------------------------------- */

struct parse {
    llhttp_t p;
    weft_http_response *r;
    struct weft__head *hd;                /* in r's own storage */
    bool head_request, complete, any;
    bool streaming, head_done;            /* streaming: pause after the head */
    char *sbuf;                           /* streaming: body bytes not yet read */
    size_t scap, slen, spos;
    size_t max_body, body_cap;
    int err;
    const char *why;
};

static struct parse *P(llhttp_t *p) { return (struct parse *)p; }

static int stop(struct parse *s, int err, const char *why)
{
    s->err = err;
    s->why = why;
    return HPE_USER;
}

static int append(struct parse *s, char **buf, size_t *used, size_t *cap, const char *at,
                  size_t len)
{
    return weft__buf_append(buf, used, cap, at, len) ? stop(s, -ENOMEM, "out of memory") : 0;
}

/* a head error as the reason the response failed */
static int head_err(struct parse *s, int rc)
{
    if (rc == -EMSGSIZE)
        return stop(s, rc, "response headers too large");
    if (rc == -E2BIG)
        return stop(s, -EMSGSIZE, "too many response headers");
    if (rc == -EPROTO)
        return stop(s, rc, "header without a value");
    return rc ? stop(s, rc, "out of memory") : 0;
}

static int on_message_begin(llhttp_t *p)
{
    struct parse *s = P(p);
    s->any = true;
    size_t seen = s->hd->bytes;           /* a new response (after a 1xx), but */
    weft__head_reset(s->hd);
    s->hd->bytes = seen;                  /* the limit spans them all */
    return 0;
}

static int on_status(llhttp_t *p, const char *at, size_t len)
{
    (void)at;
    return head_err(P(p), weft__head_count(P(p)->hd, len));
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    return head_err(P(p), weft__head_field(P(p)->hd, at, len));
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    return head_err(P(p), weft__head_value(P(p)->hd, at, len));
}

static int on_headers_complete(llhttp_t *p)
{
    struct parse *s = P(p);
    int rc = head_err(s, weft__head_done(s->hd));
    if (rc)
        return rc;
    if (p->status_code < 100 || p->status_code > 999)
        return stop(s, -EPROTO, "malformed response: bad status code");
    s->r->status = p->status_code;
    /* a response to HEAD, and 204 and 304 ones, have no body whatever
     * their headers say (RFC 9112 6.3) */
    if (s->head_request || p->status_code == 204 || p->status_code == 304)
        return 1;
    if (s->streaming && p->status_code >= 200) {
        s->head_done = true;
        return HPE_PAUSED;                /* the caller reads the body */
    }
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    struct parse *s = P(p);
    weft_http_response *r = s->r;
    if (s->streaming) {                   /* pump fed no more than fits */
        memcpy(s->sbuf + s->slen, at, len);
        s->slen += len;
        return 0;
    }
    if (r->body_len + len > s->max_body)
        return stop(s, -EMSGSIZE, "response body over the limit");
    return append(s, &r->body, &r->body_len, &s->body_cap, at, len);
}

static int on_message_complete(llhttp_t *p)
{
    struct parse *s = P(p);
    if (p->status_code < 100 || p->status_code > 999)
        return stop(s, -EPROTO, "malformed response: bad status code");
    if (p->status_code >= 100 && p->status_code < 200 && p->status_code != 101)
        return 0;                         /* interim: the real response follows */
    s->complete = true;
    return HPE_PAUSED;                    /* leave what follows for the next request */
}

static const llhttp_settings_t settings = {
    .on_message_begin = on_message_begin,
    .on_status = on_status,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static int publish_headers(struct parse *s)
{
    weft_http_response *r = s->r;
    struct weft__head *hd = s->hd;
    r->nheaders = hd->n;
    r->headers = hd->n ? weft__calloc((size_t)hd->n, sizeof *r->headers) : NULL;
    if (hd->n && !r->headers)
        return -ENOMEM;
    for (int i = 0; i < hd->n; i++) {
        r->headers[i].name = hd->buf + hd->idx[i].name;
        r->headers[i].value = hd->buf + hd->idx[i].value;
    }
    return 0;
}

/* One step of reading a response: feeds at most max_feed buffered bytes to
 * llhttp (reading more from c when nothing is buffered). Returns 0 to go
 * on, 1 when paused after the head (streaming), 2 when the response is
 * complete, or an error with r->error set. */
static int pump(struct parse *s, weft_conn *c, size_t max_feed)
{
    weft_http_response *r = s->r;
    const char *data;
    int n = weft_conn_peek(c, &data);
    if (n == 0) {
        n = weft_conn_fill(c);
        if (n < 0)
            return n;
        if (n > 0)
            return 0;
        /* end of stream: ends a body that runs until close, or truncates */
        llhttp_errno_t e = llhttp_finish(&s->p);
        if ((e == HPE_OK || e == HPE_PAUSED) && !s->complete && s->any &&
            !s->p.content_length && !(s->p.flags & F_CHUNKED))
            s->complete = true;
        if (s->complete)
            return 2;
        snprintf(r->error, sizeof r->error, "%s",
                 s->any ? "truncated response" : "connection closed before a response");
        return s->any ? -EPROTO : -WEFT_EEOF;
    }
    size_t feed = (size_t)n < max_feed ? (size_t)n : max_feed;
    llhttp_errno_t e = llhttp_execute(&s->p, data, feed);
    if (e == HPE_OK) {
        weft_conn_consume(c, feed);
        return 0;
    }
    if (e == HPE_PAUSED) {
        weft_conn_consume(c, (size_t)(llhttp_get_error_pos(&s->p) - data));
        if (s->complete)
            return 2;
        llhttp_resume(&s->p);             /* paused after the head */
        return 1;
    }
    if (e == HPE_USER) {
        snprintf(r->error, sizeof r->error, "%s", s->why);
        return s->err;
    }
    snprintf(r->error, sizeof r->error, "malformed response: %s (%s)", llhttp_errno_name(e),
             llhttp_get_error_reason(&s->p));
    return -EPROTO;
}

/* the response's own storage; the header index needs no zeroing */
static struct weft__http_resp *resp_store(void)
{
    struct weft__http_resp *h = weft__malloc(sizeof *h);
    if (h) {
        memset(&h->hd, 0, sizeof h->hd);
        h->hd.idx = h->idx;
        h->hd.max = MAX_HEADERS;
    }
    return h;
}

static void parse_init(struct parse *s, weft_http_client *cl, weft_http_response *r,
                       bool head_request)
{
    memset(s, 0, sizeof *s);
    s->r = r;
    s->hd = &r->priv_->hd;
    weft__head_reset(s->hd);
    s->hd->max_bytes = cl->o.max_header_bytes;
    s->head_request = head_request;
    s->max_body = cl->o.max_body;
    llhttp_init(&s->p, HTTP_RESPONSE, &settings);
}

/* Reads one response from c into r. *keep says whether c may be reused. */
static int read_response(weft_http_client *cl, weft_conn *c, bool head_request,
                         weft_http_response *r, bool *keep, bool *any)
{
    struct parse s;
    parse_init(&s, cl, r, head_request);
    int rc;
    while ((rc = pump(&s, c, SIZE_MAX)) == 0)
        ;
    *any = s.any;
    if (rc < 0)
        return rc;
    *keep = llhttp_should_keep_alive(&s.p) && !s.p.upgrade;
    if (r->body)
        r->body[r->body_len] = 0;
    return publish_headers(&s);
}


/* gzip and deflate bodies are decoded in place of the raw ones */
static int decode_body(weft_http_client *cl, weft_http_response *r)
{
    const char *enc = weft_http_header_get(r, "Content-Encoding");
    if (!enc || !r->body_len || cl->o.no_decompress)
        return 0;
    int wbits;
    if (strcasecmp(enc, "gzip") == 0)
        wbits = 16 + MAX_WBITS;
    else if (strcasecmp(enc, "deflate") == 0)
        wbits = MAX_WBITS;                /* zlib-wrapped, as RFC 9110 says */
    else
        return 0;                         /* left as sent */
    z_stream z = { 0 };
    if (inflateInit2(&z, wbits) != Z_OK)
        return -ENOMEM;
    size_t cap = r->body_len * 4 + 1024, len = 0;
    char *out = weft__malloc(cap + 1);
    int rc = out ? 0 : -ENOMEM;
    z.next_in = (Bytef *)r->body;
    z.avail_in = (uInt)r->body_len;
    while (!rc) {
        if (len == cap) {
            if (cap >= cl->o.max_body) {
                rc = -EMSGSIZE;
                snprintf(r->error, sizeof r->error, "decoded body over the limit");
                break;
            }
            cap = cap * 2 > cl->o.max_body ? cl->o.max_body : cap * 2;
            char *n = weft__realloc(out, cap + 1);
            if (!n) {
                rc = -ENOMEM;
                break;
            }
            out = n;
        }
        z.next_out = (Bytef *)out + len;
        z.avail_out = (uInt)(cap - len);
        int zr = inflate(&z, Z_NO_FLUSH);
        len = cap - z.avail_out;
        if (zr == Z_STREAM_END)
            break;
        if (zr != Z_OK && zr != Z_BUF_ERROR) {
            rc = -EPROTO;
            snprintf(r->error, sizeof r->error, "bad %s body: %s", enc, z.msg ? z.msg : "?");
        } else if (zr == Z_BUF_ERROR && z.avail_in == 0) {
            rc = -EPROTO;
            snprintf(r->error, sizeof r->error, "truncated %s body", enc);
        }
    }
    inflateEnd(&z);
    if (rc) {
        weft__free(out);
        return rc;
    }
    out[len] = 0;
    weft__free(r->body);
    r->body = out;
    r->body_len = len;
    return 0;
}

/* The response path on its own, for the fuzzer (fuzz/fuzz_http_response.c). */
int weft__http_read_response(weft_http_client *cl, weft_conn *c, bool head_request,
                             weft_http_response *r, bool *keep)
{
    memset(r, 0, sizeof *r);
    if (!(r->priv_ = resp_store()))
        return -ENOMEM;
    bool any;
    int rc = read_response(cl, c, head_request, r, keep, &any);
    return rc ? rc : decode_body(cl, r);
}

/* ---- requests ------------------------------------------------------------- */

static bool token(const char *s)
{
    if (!s || !*s)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("!#$%&'*+-.^_`|~", *s))
            return false;
    return true;
}

static bool field_value(const char *s)
{
    for (; s && *s; s++)
        if ((unsigned char)*s < 0x20 && *s != '\t')
            return false;                 /* no CR/LF: no header injection */
    return s != NULL;
}

static bool idempotent(const char *m)
{
    static const char *const ok[] = { "GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE" };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
        if (strcmp(m, ok[i]) == 0)
            return true;
    return false;
}

/* Builds the request head into a heap buffer. */
static int build_head(weft_http_client *cl, const weft_url *u, const weft_http_request *req,
                      const char *method, weft_http_response *r, char **out, size_t *len)
{
    if (!token(method)) {
        snprintf(r->error, sizeof r->error, "bad method");
        return -EINVAL;
    }
    char auth[300];
    weft_url_authority(u, auth, sizeof auth);
    size_t need = 200 + strlen(method) + strlen(u->path) + strlen(u->query) + strlen(auth) +
                  strlen(cl->o.user_agent);       /* 200: the fixed text and a length */
    for (int i = 0; i < req->nheaders; i++) {
        if (!token(req->headers[i].name) || !field_value(req->headers[i].value)) {
            snprintf(r->error, sizeof r->error, "bad request header '%.60s'",
                     req->headers[i].name ? req->headers[i].name : "(null)");
            return -EINVAL;
        }
        need += strlen(req->headers[i].name) + strlen(req->headers[i].value) + 4;
    }
    char *b = weft__malloc(need);
    if (!b)
        return -ENOMEM;
    char *p = weft__put_str(b, method);      /* no printf: it showed per request */
    *p++ = ' ';
    p = weft__put_str(p, u->path);
    if (*u->query) {
        *p++ = '?';
        p = weft__put_str(p, u->query);
    }
    p = weft__put_str(p, " HTTP/1.1\r\nHost: ");
    p = weft__put_str(p, auth);
    p = weft__put_str(p, "\r\nUser-Agent: ");
    p = weft__put_str(p, cl->o.user_agent);
    p = weft__put_str(p, "\r\n");
    if (!cl->o.no_decompress)
        p = weft__put_str(p, "Accept-Encoding: gzip, deflate\r\n");
    if (req->body_read) {
        p = weft__put_str(p, "Transfer-Encoding: chunked\r\n");
    } else if (req->body_len || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0) {
        p = weft__put_str(p, "Content-Length: ");
        p = weft__put_uint(p, req->body_len);
        p = weft__put_str(p, "\r\n");
    }
    for (int i = 0; i < req->nheaders; i++) {
        p = weft__put_str(p, req->headers[i].name);
        p = weft__put_str(p, ": ");
        p = weft__put_str(p, req->headers[i].value);
        p = weft__put_str(p, "\r\n");
    }
    p = weft__put_str(p, "\r\n");
    size_t n = (size_t)(p - b);
    *out = b;
    *len = n;
    return 0;
}

/* Sends the head and the body, buffered or streamed as chunks. */
static int send_request(weft_conn *c, char *head, size_t hlen, const weft_http_request *req,
                        weft_http_response *r)
{
    struct iovec iov[3] = { { head, hlen }, { (void *)req->body, req->body_len } };
    if (!req->body_read)
        return weft_conn_writev(c, iov, req->body_len ? 2 : 1);
    int rc = weft_conn_write(c, head, hlen);
    char *chunk = rc ? NULL : weft__malloc(16384);
    if (!rc && !chunk)
        rc = -ENOMEM;
    while (!rc) {
        int n = req->body_read(req->body_ctx, chunk, 16384);
        if (n < 0 || n > 16384) {
            rc = n < 0 ? n : -EINVAL;
            snprintf(r->error, sizeof r->error, "request body: %s", weft_strerror(rc));
            break;
        }
        char size[24];
        int sl = snprintf(size, sizeof size, "%x\r\n", n);
        iov[0] = (struct iovec){ size, (size_t)sl };
        iov[1] = (struct iovec){ chunk, (size_t)n };
        iov[2] = (struct iovec){ "\r\n", 2 };    /* n == 0 ends with "0\r\n\r\n" */
        rc = weft_conn_writev(c, iov, 3);
        if (n == 0)
            break;
    }
    weft__free(chunk);
    return rc;
}

/* Acquires a connection to u's origin and sends the request on it. *ph
 * is set once a connection was acquired (even if sending failed): the
 * caller releases it, broken unless the exchange ends cleanly. */
static int send_pooled(weft_http_client *cl, const weft_url *u, const weft_http_request *req,
                       const char *method, weft_http_response *r, struct origin **o,
                       weft_pooled **ph)
{
    *ph = NULL;
    if (!(*o = origin_get(cl, u)))
        return -ENOMEM;
    char *head = NULL;
    size_t hlen;
    int rc = build_head(cl, u, req, method, r, &head, &hlen);
    if (!rc && (rc = weft_pool_acquire((*o)->pool, ph)) == -WEFT_EPOOL_TIMEOUT)
        snprintf(r->error, sizeof r->error, "%s", weft_pool_last_error((*o)->pool));
    if (!rc) {
        cl->stats.requests++;
        rc = send_request(((struct hconn *)weft_pooled_get(*ph))->c, head, hlen, req, r);
    }
    weft__free(head);
    return rc;
}

/* One exchange on one pooled connection. *retry: it failed in a way that
 * says the reused connection had been closed by the server. */
static int exchange(weft_http_client *cl, const weft_url *u, const weft_http_request *req,
                    const char *method, weft_http_response *r, bool *retry)
{
    struct origin *o;
    weft_pooled *ph;
    int rc = send_pooled(cl, u, req, method, r, &o, &ph);
    if (!ph)
        return rc;
    struct hconn *h = weft_pooled_get(ph);
    bool reused = h->used, keep = false, any = false;
    h->used = true;
    if (rc == 0)
        rc = read_response(cl, h->c, strcmp(method, "HEAD") == 0, r, &keep, &any);
    if (rc == 0 && keep) {
        weft_pool_release(o->pool, ph);
    } else {
        weft_pool_release_broken(o->pool, ph);
        *retry = rc && reused && !any && !req->body_read &&
                 (rc == -EPIPE || rc == -ECONNRESET || rc == -WEFT_EEOF);
    }
    return rc;
}

static int resolve_location(weft_url *next, const weft_url *cur, const char *loc)
{
    if (strstr(loc, "://"))
        return weft_url_parse(next, loc);
    if (loc[0] != '/')
        return -EINVAL;                   /* relative paths: not followed */
    char abs[WEFT_URL_MAX + 400], auth[300];
    weft_url_authority(cur, auth, sizeof auth);
    snprintf(abs, sizeof abs, "%s://%s%s", cur->scheme, auth, loc);
    return weft_url_parse(next, abs);
}

int weft_http_do(weft_http_client *cl, const weft_http_request *req, weft_http_response *r)
{
    if (!r)
        return -EINVAL;
    memset(r, 0, sizeof *r);
    if (!cl || !req || !req->url) {
        snprintf(r->error, sizeof r->error, "no client, request or URL");
        return -EINVAL;
    }
    if (!weft__self())
        return -EPERM;
    weft_url *u = weft__malloc(sizeof *u);
    if (!u)
        return -ENOMEM;
    int rc = weft_url_parse(u, req->url);
    if (rc) {
        snprintf(r->error, sizeof r->error, "bad URL: %s", u->error);
        weft__free(u);
        return rc;
    }
    weft_scope sc;
    weft_time total = req->timeout ? req->timeout : cl->o.timeout;
    weft_scope_enter(&sc, total ? total : WEFT_FOREVER);
    weft_http_request cur = *req;
    const char *method = req->method ? req->method : "GET";
    bool retried = false;
    for (;;) {
        if (!(r->priv_ = resp_store())) {
            rc = -ENOMEM;
            break;
        }
        bool retry = false;
        rc = exchange(cl, u, &cur, method, r, &retry);
        if (rc && retry && !retried && idempotent(method)) {
            retried = true;               /* once, on a fresh connection */
            cl->stats.retries++;
            int redirects = r->redirects;
            weft_http_response_free(r);
            r->error[0] = 0;
            r->redirects = redirects;
            continue;
        }
        if (rc == 0)
            rc = decode_body(cl, r);
        const char *loc = rc == 0 ? weft_http_header_get(r, "Location") : NULL;
        bool redirect = loc && (r->status == 301 || r->status == 302 || r->status == 303 ||
                                r->status == 307 || r->status == 308);
        if (!redirect || r->redirects >= cl->o.max_redirects)
            break;
        weft_url *next = weft__malloc(sizeof *next);
        if (!next || resolve_location(next, u, loc)) {
            weft__free(next);
            break;                        /* not followable: returned as is */
        }
        if (r->status == 303 || ((r->status == 301 || r->status == 302) &&
                                 strcmp(method, "POST") == 0)) {
            method = "GET";
            cur.body = NULL;
            cur.body_len = 0;
        }
        int redirects = r->redirects + 1;
        weft_http_response_free(r);
        r->redirects = redirects;
        weft__free(u);
        u = next;
        cur.url = NULL;
    }
    weft_scope_exit(&sc);
    weft__free(u);
    if (rc && !r->error[0])
        snprintf(r->error, sizeof r->error, "%s", weft_strerror(rc));
    return rc;
}

int weft_http_get(weft_http_client *cl, const char *url, weft_http_response *r)
{
    weft_http_request req = { .method = "GET", .url = url };
    return weft_http_do(cl, &req, r);
}

/* ---- streaming responses ---------------------------------------------------- */

struct weft_http_stream {
    weft_http_client *cl;
    struct origin *o;
    weft_pooled *ph;
    struct hconn *h;
    struct parse ps;
    int err;
    char buf[16384];
};

int weft_http_open(weft_http_client *cl, const weft_http_request *req, weft_http_response *r,
                   weft_http_stream **out)
{
    if (!r)
        return -EINVAL;
    memset(r, 0, sizeof *r);
    if (!cl || !req || !req->url || !out) {
        snprintf(r->error, sizeof r->error, "no client, request, URL or stream");
        return -EINVAL;
    }
    if (!weft__self())
        return -EPERM;
    weft_url *u = weft__malloc(sizeof *u);
    weft_http_stream *st = weft__calloc(1, sizeof *st);
    r->priv_ = resp_store();
    int rc = u && st && r->priv_ ? weft_url_parse(u, req->url) : -ENOMEM;
    if (rc == -EINVAL)
        snprintf(r->error, sizeof r->error, "bad URL: %s", u->error);
    const char *method = req->method ? req->method : "GET";
    weft_scope sc;
    weft_time total = req->timeout ? req->timeout : cl->o.timeout;
    weft_scope_enter(&sc, total ? total : WEFT_FOREVER);
    if (!rc)
        rc = send_pooled(cl, u, req, method, r, &st->o, &st->ph);
    weft__free(u);
    if (st && st->ph) {
        st->cl = cl;
        st->h = weft_pooled_get(st->ph);
        st->h->used = true;
    }
    if (!rc) {
        parse_init(&st->ps, cl, r, strcmp(method, "HEAD") == 0);
        st->ps.streaming = true;
        st->ps.sbuf = st->buf;
        st->ps.scap = sizeof st->buf;
        while ((rc = pump(&st->ps, st->h->c, sizeof st->buf)) == 0)
            ;
        if (rc > 0)                       /* paused after the head, or complete */
            rc = publish_headers(&st->ps);
    }
    weft_scope_exit(&sc);
    if (rc) {
        if (!r->error[0])
            snprintf(r->error, sizeof r->error, "%s", weft_strerror(rc));
        st->err = rc;
        weft_http_stream_close(st);
        return rc;
    }
    *out = st;
    return 0;
}

int weft_http_stream_read(weft_http_stream *st, void *buf, size_t len)
{
    if (!st || (!buf && len))
        return -EINVAL;
    struct parse *s = &st->ps;
    for (;;) {
        if (st->err)
            return st->err;
        if (s->spos < s->slen) {
            size_t n = s->slen - s->spos < len ? s->slen - s->spos : len;
            memcpy(buf, s->sbuf + s->spos, n);
            s->spos += n;
            return (int)n;
        }
        if (s->complete)
            return 0;
        s->slen = s->spos = 0;            /* pump feeds at most what fits */
        int rc = pump(s, st->h->c, s->scap);
        if (rc < 0)
            st->err = rc;
    }
}

void weft_http_stream_close(weft_http_stream *st)
{
    if (!st)
        return;
    if (st->ph) {
        bool keep = !st->err && st->ps.complete && llhttp_should_keep_alive(&st->ps.p);
        if (keep)
            weft_pool_release(st->o->pool, st->ph);
        else
            weft_pool_release_broken(st->o->pool, st->ph);
    }
    weft__free(st);
}
