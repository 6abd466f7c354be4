/*
 * The HTTP/1.1 server's connection loop (weft/http.h, server part).
 *
 * One parser per connection runs across requests: it pauses at the end of
 * each request, the request is routed and answered, and the parser resumes
 * on the bytes that follow (pipelining costs nothing extra). The request's
 * URL and headers are copied into a per-connection buffer that is reused,
 * so a connection allocates only when a request is bigger than any before.
 * Limits are checked as bytes arrive; a request that breaks one gets its
 * status, "Connection: close", and a lingering close.
 */
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <llhttp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "../core/internal.h"
#include "internal.h"
#include "weft/http.h"
#include "weft/router.h"

#define MAX_HDRS 256                     /* bound on max_headers */

struct middleware {
    weft_http_before before;
    weft_http_after after;
    void *ctx;
};

struct weft_http_server {
    weft_router *router;
    weft_http_server_opts o;
    _Atomic bool stopping;
    struct middleware *mw;
    int nmw;
    weft_metric *in_flight;               /* process-wide gauge */
};

/* one weft_http_serve: its connections, in this loop */
struct serving {
    weft_http_server *s;
    weft_sem conns;                       /* max_connections */
    unsigned in_flight;
    bool draining;
    struct conn_slot *slots;              /* live connections */
};

struct conn_slot {
    struct conn_slot *next, *prev;
    struct serving *sv;
    weft_conn *c;
    weft_task *task;
    bool idle;                            /* between requests */
};

struct weft_http_req {
    llhttp_t p;                           /* first: callbacks cast back */
    weft_http_server *s;
    struct weft__head hd;                 /* URL and header fields */
    size_t url, url_len;
    bool in_url, complete, any, headers_done;
    bool expect_continue;                 /* send 100 before waiting for the body */
    bool line_start, head_end;            /* obs-fold scan */
    int lines;
    int status;                           /* a limit's status, when broken */
    const char *why;
    char *body;
    size_t blen, bcap;
    const char *method;                   /* llhttp's static name */
    const char *path, *query;
    weft_route_match m;
    char *pbuf;                           /* decoded params and query values, */
    size_t pused, pcap;                   /* made at the first lookup */
    struct weft__hdr h[];                 /* max_headers of them */
};

struct weft_http_res {
    weft_conn *c;
    bool head, streaming;                 /* head: a response to HEAD */
    bool http10;                          /* no chunks; keep-alive said aloud */
    int stream_err;
    int status;
    char *hbuf;                           /* extra header lines */
    size_t hlen, hcap;
    char *body;
    size_t blen, bcap;
};

/* ---- server and routes ----------------------------------------------------- */

weft_http_server *weft_http_server_new(const weft_http_server_opts *o)
{
    weft_http_server *s = weft__calloc(1, sizeof *s);
    if (!s)
        return NULL;
    if (!(s->router = weft_router_new())) {
        weft__free(s);
        return NULL;
    }
    if (o)
        s->o = *o;
    if (!s->o.max_header_bytes)
        s->o.max_header_bytes = 8 << 10;
    if (s->o.max_header_bytes > 1u << 30)
        s->o.max_header_bytes = 1u << 30;     /* header offsets are 32-bit */
    if (!s->o.max_headers)
        s->o.max_headers = 100;
    if (s->o.max_headers > MAX_HDRS)
        s->o.max_headers = MAX_HDRS;
    if (!s->o.max_body)
        s->o.max_body = 1 << 20;
    if (!s->o.header_timeout)
        s->o.header_timeout = 10 * WEFT_SEC;
    if (!s->o.body_timeout)
        s->o.body_timeout = 10 * WEFT_SEC;
    if (!s->o.keepalive_timeout)
        s->o.keepalive_timeout = 5 * WEFT_SEC;
    if (!s->o.handler_timeout)
        s->o.handler_timeout = 30 * WEFT_SEC;
    if (!s->o.max_connections)
        s->o.max_connections = 10000;
    if (!s->o.max_in_flight)
        s->o.max_in_flight = 1000;
    if (!s->o.shutdown_grace)
        s->o.shutdown_grace = 10 * WEFT_SEC;
    s->in_flight = weft_gauge("weft_http_in_flight", "HTTP requests being handled");
    return s;
}

int weft_http_server_use(weft_http_server *s, weft_http_before before, weft_http_after after,
                         void *ctx)
{
    if (!s || (!before && !after))
        return -EINVAL;
    struct middleware *m = weft__realloc(s->mw, (size_t)(s->nmw + 1) * sizeof *m);
    if (!m)
        return -ENOMEM;
    s->mw = m;
    s->mw[s->nmw++] = (struct middleware){ before, after, ctx };
    return 0;
}

void weft_http_server_free(weft_http_server *s)
{
    if (!s)
        return;
    weft__free(s->mw);
    weft_router_free(s->router);
    weft__free(s);
}

int weft_http_server_route(weft_http_server *s, const char *method, const char *pattern,
                           weft_http_handler h, void *ctx)
{
    if (!s || !h)
        return -EINVAL;
    return weft_router_add(s->router, method, pattern, (void *)h, ctx);
}

/* ---- parsing ---------------------------------------------------------------- */

static struct weft_http_req *R(llhttp_t *p) { return (struct weft_http_req *)p; }

static int limit(struct weft_http_req *q, int status, const char *why)
{
    q->status = status;
    q->why = why;
    return HPE_USER;
}

/* a head error as the status it answers with */
static int head_err(struct weft_http_req *q, int rc)
{
    if (rc == -EMSGSIZE)
        return limit(q, 431, "request header fields too large");
    if (rc == -E2BIG)
        return limit(q, 431, "too many request header fields");
    if (rc == -EPROTO)
        return limit(q, 400, "header without a value");
    return rc ? limit(q, 503, "out of memory") : 0;
}

static int end_url(struct weft_http_req *q)
{
    if (!q->in_url)
        return 0;
    int rc = weft__head_put(&q->hd, "", 1);
    q->url_len = q->hd.len - 1 - q->url;
    q->in_url = false;
    return head_err(q, rc);
}

static int on_begin(llhttp_t *p)
{
    R(p)->any = true;
    return 0;
}

static int on_method(llhttp_t *p, const char *at, size_t n)
{
    (void)at;
    return head_err(R(p), weft__head_count(&R(p)->hd, n));
}

static int on_url(llhttp_t *p, const char *at, size_t n)
{
    struct weft_http_req *q = R(p);
    if (!q->in_url) {
        q->in_url = true;
        q->url = q->hd.len;
    }
    return head_err(q, weft__head_put(&q->hd, at, n));
}

static int on_field(llhttp_t *p, const char *at, size_t n)
{
    struct weft_http_req *q = R(p);
    int rc = end_url(q);
    return rc ? rc : head_err(q, weft__head_field(&q->hd, at, n));
}

static int on_value(llhttp_t *p, const char *at, size_t n)
{
    return head_err(R(p), weft__head_value(&R(p)->hd, at, n));
}

static int on_headers(llhttp_t *p)
{
    struct weft_http_req *q = R(p);
    int rc = end_url(q);
    if (rc || (rc = head_err(q, weft__head_done(&q->hd))))
        return rc;
    if (p->http_major != 1)
        return limit(q, 505, "HTTP version not supported");
    if (p->method == HTTP_CONNECT)
        return limit(q, 501, "CONNECT is not supported");
    p->upgrade = 0;                       /* no protocol switch: what follows is HTTP */
    const char *te = p->flags & F_TRANSFER_ENCODING ? weft__head_get(&q->hd, "Transfer-Encoding")
                                                    : NULL;
    if (te && strcasecmp(te, "chunked") != 0)
        return limit(q, 501, "unsupported Transfer-Encoding");
    if ((p->flags & F_CONTENT_LENGTH) && p->content_length > q->s->o.max_body)
        return limit(q, 413, "request body too large");
    int hosts = 0;
    for (int i = 0; i < q->hd.n; i++)
        hosts += strcasecmp(q->hd.buf + q->hd.idx[i].name, "Host") == 0;
    if (hosts > 1 || (hosts == 0 && p->http_major == 1 && p->http_minor >= 1))
        return limit(q, 400, hosts ? "more than one Host header" : "no Host header");
    const char *expect = weft__head_get(&q->hd, "Expect");
    if (expect && strcasecmp(expect, "100-continue") != 0)
        return limit(q, 417, "unsupported expectation");
    q->expect_continue = expect && p->http_minor >= 1 &&
                         ((p->flags & F_CHUNKED) || p->content_length > 0);
    q->method = llhttp_method_name(p->method);
    q->headers_done = true;
    return 0;
}

static int on_chunk_header(llhttp_t *p)
{
    struct weft_http_req *q = R(p);
    if (p->content_length > q->s->o.max_body - q->blen)
        return limit(q, 413, "request body too large");
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t n)
{
    struct weft_http_req *q = R(p);
    if (q->blen + n > q->s->o.max_body)
        return limit(q, 413, "request body too large");
    if (weft__buf_append(&q->body, &q->blen, &q->bcap, at, n))
        return limit(q, 503, "out of memory");
    return 0;
}

static int on_complete(llhttp_t *p)
{
    R(p)->complete = true;
    return HPE_PAUSED;                    /* answer before parsing the next one */
}

static const llhttp_settings_t settings = {
    .on_message_begin = on_begin,
    .on_method = on_method,
    .on_url = on_url,
    .on_header_field = on_field,
    .on_header_value = on_value,
    .on_headers_complete = on_headers,
    .on_body = on_body,
    .on_message_complete = on_complete,
    .on_chunk_header = on_chunk_header,
};

static void req_reset(struct weft_http_req *q)
{
    weft__head_reset(&q->hd);
    q->m.pattern = NULL;                  /* until a route matches */
    q->url = q->url_len = q->blen = q->pused = 0;
    q->in_url = q->complete = q->any = q->headers_done = q->expect_continue = false;
    q->line_start = q->head_end = false;
    q->lines = 0;
    q->status = 0;
    q->why = NULL;
}

/* llhttp 8 accepts obsolete line folding (a header line that starts with
 * a space or tab continues the previous one), a request-smuggling vector:
 * look for it in the head's raw bytes before they are parsed. */
static bool folded(struct weft_http_req *q, const char *d, size_t n)
{
    for (size_t i = 0; i < n && !q->head_end; i++) {
        char ch = d[i];
        if (q->line_start && q->lines > 0 && (ch == ' ' || ch == '\t'))
            return true;
        if (ch == '\n') {
            if (q->line_start && q->lines > 0)
                q->head_end = true;       /* the empty line */
            q->line_start = true;
            q->lines++;
        } else if (ch != '\r') {
            q->line_start = false;
        }
    }
    return false;
}

/* Reads the next request. 0 with q complete; 1 when the client is done
 * (closed, or idle past keep-alive); < 0 with q->status set for an answer
 * (0 status: just close). */
static int read_request(struct weft_http_req *q, weft_conn *c)
{
    weft_http_server *s = q->s;
    weft_scope head;
    bool timing = false;
    int rc = 0;
    while (!q->complete) {
        const char *data;
        int n = weft_conn_peek(c, &data);
        if (n == 0) {
            /* idle between requests; then the head's own deadline (the
             * scope below); then a deadline for each wait for body bytes */
            weft_scope wait;
            weft_scope_enter(&wait, !timing ? s->o.keepalive_timeout
                                    : q->headers_done ? s->o.body_timeout : WEFT_FOREVER);
            if (q->expect_continue) {     /* the client waits for our go-ahead */
                q->expect_continue = false;
                n = weft_conn_write(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
            } else {
                n = 0;
            }
            if (n == 0)
                n = weft_conn_flush(c);   /* and queued pipelined responses */
            if (n == 0)
                n = weft_conn_fill(c);
            weft_scope_exit(&wait);
            if (n == 0 || (n < 0 && !timing)) {
                rc = timing ? -EPROTO : 1;     /* closed mid-request, or done */
                if (timing && n == 0)
                    q->status = 400, q->why = "incomplete request";
                break;
            }
            if (n < 0) {
                rc = n;
                if (weft_is_timeout(n))
                    q->status = 408, q->why = "request timeout";
                break;
            }
            continue;
        }
        if (!timing) {                    /* the first byte starts the head's clock */
            weft_scope_enter(&head, s->o.header_timeout);
            timing = true;
        }
        if (folded(q, data, (size_t)n)) {
            q->status = 400;
            q->why = "obsolete line folding";
            rc = -EPROTO;
            break;
        }
        llhttp_errno_t e = llhttp_execute(&q->p, data, (size_t)n);
        if (e == HPE_OK) {
            weft_conn_consume(c, (size_t)n);
            continue;
        }
        if (e == HPE_PAUSED) {
            weft_conn_consume(c, (size_t)(llhttp_get_error_pos(&q->p) - data));
            llhttp_resume(&q->p);
            break;
        }
        if (!q->status && (e == HPE_INVALID_VERSION || e == HPE_PAUSED_H2_UPGRADE)) {
            q->status = 505;              /* HTTP/1.2, HTTP/2's preface */
            q->why = "HTTP version not supported";
        } else if (!q->status) {          /* else a limit said which */
            q->status = 400;
            q->why = llhttp_get_error_reason(&q->p);
        }
        rc = -EPROTO;
        break;
    }
    if (timing && weft_scope_exit(&head) && rc < 0)
        q->status = 408, q->why = "request timeout";
    return rc;
}

/* ---- responses --------------------------------------------------------------- */

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    }
    return "Status";
}

/* "Date:" value, formatted once per second per thread */
static const char *http_date(void)
{
    static __thread char buf[40];
    static __thread time_t at;
    time_t now = time(NULL);
    if (now != at) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        at = now;
    }
    return buf;
}

/* The status line and the headers every response has, without printf
 * (formatting was a tenth of the server's user time per request). */
static size_t status_head(char *line, int status)
{
    char *p = weft__put_str(line, "HTTP/1.1 ");
    p = weft__put_uint(p, (size_t)status);
    *p++ = ' ';
    p = weft__put_str(p, reason(status));
    p = weft__put_str(p, "\r\nDate: ");
    p = weft__put_str(p, http_date());
    p = weft__put_str(p, "\r\n");
    return (size_t)(p - line);
}

static int send_response(weft_conn *c, struct weft_http_res *r, bool head, bool close)
{
    char line[256];
    bool nobody = r->status == 204 || r->status == 304 || r->status < 200;
    char *p = line + status_head(line, r->status);
    if (!nobody) {
        p = weft__put_str(p, "Content-Length: ");
        p = weft__put_uint(p, r->blen);
        p = weft__put_str(p, "\r\n");
    }
    if (close)
        p = weft__put_str(p, "Connection: close\r\n");
    else if (r->http10)                   /* 1.0 clients close unless told */
        p = weft__put_str(p, "Connection: keep-alive\r\n");
    size_t n = (size_t)(p - line);
    struct iovec iov[4] = { { line, n }, { r->hbuf, r->hlen }, { "\r\n", 2 },
                            { r->body, head || nobody ? 0 : r->blen } };
    const char *next;
    if (close || weft_conn_peek(c, &next) <= 0)
        return weft_conn_writev(c, iov, 4);
    /* a pipelined request is waiting: queue this response, so a burst of
     * requests is answered with one send (read_request flushes before it
     * waits for more) */
    int rc = 0;
    for (int i = 0; i < 4 && !rc; i++)
        rc = weft_conn_write(c, iov[i].iov_base, iov[i].iov_len);
    return rc;
}

static void res_reset(struct weft_http_res *r)
{
    r->status = 200;
    r->hlen = r->blen = 0;
    r->streaming = false;
    r->stream_err = 0;
}

int weft_http_res_get_status(const weft_http_res *r) { return r ? r->status : 0; }

int weft_http_res_status(weft_http_res *r, int status)
{
    if (!r || status < 100 || status > 999)
        return -EINVAL;
    r->status = status;
    return 0;
}

int weft_http_res_header(weft_http_res *r, const char *name, const char *value)
{
    if (!r || !name || !*name || !value)
        return -EINVAL;
    for (const char *p = name; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("!#$%&'*+-.^_`|~", *p))
            return -EINVAL;
    for (const char *p = value; *p; p++)
        if ((unsigned char)*p < 0x20 && *p != '\t')
            return -EINVAL;               /* no response splitting */
    int rc = weft__buf_append(&r->hbuf, &r->hlen, &r->hcap, name, strlen(name));
    if (!rc)
        rc = weft__buf_append(&r->hbuf, &r->hlen, &r->hcap, ": ", 2);
    if (!rc)
        rc = weft__buf_append(&r->hbuf, &r->hlen, &r->hcap, value, strlen(value));
    if (!rc)
        rc = weft__buf_append(&r->hbuf, &r->hlen, &r->hcap, "\r\n", 2);
    return rc;
}

int weft_http_res_body(weft_http_res *r, const void *data, size_t len)
{
    if (!r || (!data && len) || r->streaming)
        return -EINVAL;
    r->blen = 0;
    return weft__buf_append(&r->body, &r->blen, &r->bcap, data, len);
}

static int json_append(const char *data, size_t len, void *arg)
{
    weft_http_res *r = arg;
    return weft__buf_append(&r->body, &r->blen, &r->bcap, data, len) ? -1 : 0;
}

int weft_http_res_json(weft_http_res *r, const struct json_t *json)
{
    if (!r || !json || r->streaming)
        return -EINVAL;
    int rc = weft_http_res_header(r, "Content-Type", "application/json");
    if (rc)
        return rc;
    r->blen = 0;                          /* serialized into the body, no copy */
    if (json_dump_callback((const json_t *)json, json_append, r, JSON_COMPACT)) {
        r->blen = 0;
        return -ENOMEM;
    }
    return 0;
}

int weft_http_res_write(weft_http_res *r, const void *data, size_t len)
{
    if (!r || (!data && len))
        return -EINVAL;
    if (r->stream_err)
        return r->stream_err;
    int rc = 0;
    if (!r->streaming) {                  /* HTTP/1.0 has no chunks: the close ends it */
        char line[256];
        size_t n = status_head(line, r->status);
        n = (size_t)(weft__put_str(line + n, r->http10 ? "Connection: close\r\n"
                                                        : "Transfer-Encoding: chunked\r\n") - line);
        struct iovec iov[3] = { { line, n }, { r->hbuf, r->hlen }, { "\r\n", 2 } };
        rc = weft_conn_writev(r->c, iov, 3);
        r->streaming = true;
    }
    if (!rc && len && !r->head && r->http10) {
        rc = weft_conn_write_all(r->c, data, len);
    } else if (!rc && len && !r->head) {
        char size[24];
        int n = snprintf(size, sizeof size, "%zx\r\n", len);
        struct iovec iov[3] = { { size, (size_t)n }, { (void *)data, len }, { "\r\n", 2 } };
        rc = weft_conn_writev(r->c, iov, 3);
    }
    return r->stream_err = rc;
}

/* ---- the request, for handlers ------------------------------------------------ */

const char *weft_http_req_method(const weft_http_req *q) { return q ? q->method : NULL; }
const char *weft_http_req_path(const weft_http_req *q) { return q ? q->path : NULL; }
const char *weft_http_req_query(const weft_http_req *q) { return q ? q->query : NULL; }
const char *weft_http_req_route(const weft_http_req *q) { return q ? q->m.pattern : NULL; }
const char *weft_http_req_header(const weft_http_req *q, const char *n)
{
    return q && n ? weft__head_get(&q->hd, n) : NULL;
}

const void *weft_http_req_body(const weft_http_req *q, size_t *len)
{
    if (len)
        *len = q ? q->blen : 0;
    return q && q->blen ? q->body : NULL;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* a copy of raw[0..n) with %XX (and for a query, '+') decoded, kept until
 * the next request; NULL when the scratch space is spent */
static const char *decoded(weft_http_req *q, const char *raw, size_t n, bool query)
{
    if (!q->pbuf) {
        q->pcap = 2 * q->s->o.max_header_bytes;  /* twice any URL: room for every */
        if (!(q->pbuf = weft__malloc(q->pcap)))  /* value, once each, and then some */
            return NULL;
    }
    if (q->pused + n + 1 > q->pcap)
        return NULL;
    char *v = q->pbuf + q->pused, *o = v;
    for (size_t i = 0; i < n; i++) {
        if (raw[i] == '%' && i + 2 < n && hexval(raw[i + 1]) >= 0 && hexval(raw[i + 2]) >= 0) {
            *o++ = (char)(hexval(raw[i + 1]) * 16 + hexval(raw[i + 2]));
            i += 2;
        } else {
            *o++ = query && raw[i] == '+' ? ' ' : raw[i];
        }
    }
    *o++ = 0;
    q->pused += (size_t)(o - v);
    return v;
}

const char *weft_http_req_param(weft_http_req *q, const char *name)
{
    for (int i = 0; q && name && i < q->m.nparams; i++)
        if (strcmp(q->m.params[i].name, name) == 0)
            return decoded(q, q->m.params[i].value, q->m.params[i].len, false);
    return NULL;
}

const char *weft_http_req_query_param(weft_http_req *q, const char *name)
{
    if (!q || !name || !q->query)
        return NULL;
    size_t nlen = strlen(name);
    for (const char *p = q->query; *p;) {
        size_t len = strcspn(p, "&");
        const char *eq = memchr(p, '=', len);
        size_t klen = eq ? (size_t)(eq - p) : len;
        if (klen == nlen && memcmp(p, name, nlen) == 0)
            return eq ? decoded(q, eq + 1, len - klen - 1, true) : "";
        p += len + (p[len] == '&');
    }
    return NULL;
}

/* ---- the connection ------------------------------------------------------------ */

/* Shut down writing, drain what the client still sends for a moment, so
 * the error response is not lost to a reset. */
static void lingering_close(weft_conn *c)
{
    if (weft_conn_shutdown(c) == 0) {
        weft_scope sc;
        weft_scope_enter(&sc, 500 * WEFT_MS);
        char junk[4096];
        size_t drained = 0;
        int n;
        while (drained < (256 << 10) && (n = weft_conn_read_some(c, junk, sizeof junk)) > 0)
            drained += (size_t)n;
        weft_scope_exit(&sc);
    }
}

static void error_response(weft_conn *c, struct weft_http_res *r, int status, const char *why)
{
    res_reset(r);
    r->status = status;
    weft_http_res_header(r, "Content-Type", "text/plain");
    char msg[160];
    int n = snprintf(msg, sizeof msg, "%d %s: %s\n", status, reason(status), why ? why : "");
    weft_http_res_body(r, msg, (size_t)n);
    send_response(c, r, false, true);
}

/* splits the URL into path and query, in place */
static void split_url(struct weft_http_req *q)
{
    char *u = q->hd.buf + q->url;
    if (strncasecmp(u, "http://", 7) == 0 || strncasecmp(u, "https://", 8) == 0) {
        char *slash = strchr(strstr(u, "//") + 2, '/');   /* absolute-form: route */
        u = slash ? slash : (char *)"/";                  /* by its path */
    }
    char *qm = strchr(u, '?');
    if (qm)
        *qm = 0;
    q->path = u;
    q->query = qm ? qm + 1 : "";
}

static int dispatch(weft_http_server *s, struct weft_http_req *q, struct weft_http_res *r)
{
    char allow[128];
    int rc = weft_router_match(s->router, q->method, q->path, strlen(q->path), &q->m, allow,
                               sizeof allow);
    if (rc == -ENOENT || rc == -EINVAL) {
        r->status = 404;
        weft_http_res_body(r, "not found\n", 10);
        goto after;
    }
    if (rc == -EPERM) {
        r->status = 405;
        weft_http_res_header(r, "Allow", allow);
        weft_http_res_body(r, "method not allowed\n", 19);
        goto after;
    }
    weft_http_handler h = (weft_http_handler)q->m.handler;
    weft_scope sc;
    weft_scope_enter(&sc, s->o.handler_timeout);
    rc = 0;
    for (int i = 0; i < s->nmw && rc == 0; i++)
        if (s->mw[i].before)
            rc = s->mw[i].before(q, r, s->mw[i].ctx);
    if (rc == 0)
        rc = h(q, r, q->m.ctx);
    else if (rc > 0)
        rc = 0;                           /* a middleware answered */
    bool expired = weft_scope_exit(&sc);
    if (r->streaming) {
        if (expired || rc < 0)
            r->stream_err = rc ? rc : -ETIMEDOUT;   /* mid-body: only closing can say it */
    } else if (expired) {
        res_reset(r);
        r->status = 503;
        weft_http_res_body(r, "handler timed out\n", 18);
        weft_log(WEFT_LOG_WARN, "http: %s %s: handler timed out", q->method, q->path);
    } else if (rc < 0) {
        res_reset(r);
        r->status = 500;
        weft_http_res_body(r, "internal server error\n", 22);
        weft_log(WEFT_LOG_ERROR, "http: %s %s: handler failed: %s", q->method, q->path,
                 weft_strerror(rc));
    }
after:
    for (int i = 0; i < s->nmw; i++)
        if (s->mw[i].after)
            s->mw[i].after(q, r, s->mw[i].ctx);
    return 0;
}

static int serve(weft_http_server *s, weft_conn *c, struct conn_slot *slot);

int weft_http_serve_conn(weft_http_server *s, weft_conn *c)
{
    if (!s || !c)
        return -EINVAL;
    return serve(s, c, NULL);
}

static int serve(weft_http_server *s, weft_conn *c, struct conn_slot *slot)
{
    struct weft_http_req *q =
        weft__calloc(1, sizeof *q + (size_t)s->o.max_headers * sizeof q->h[0]);
    struct weft_http_res *r = weft__calloc(1, sizeof *r);
    int rc = q && r ? 0 : -ENOMEM;
    if (!rc) {
        q->s = s;
        q->hd.idx = q->h;
        q->hd.max = s->o.max_headers;
        q->hd.max_bytes = s->o.max_header_bytes;
        llhttp_init(&q->p, HTTP_REQUEST, &settings);
    }
    while (!rc) {
        req_reset(q);
        res_reset(r);
        if (slot)
            slot->idle = true;            /* a drain may close us here */
        rc = read_request(q, c);
        if (slot)
            slot->idle = false;
        if (rc == 1 || (rc == -ECANCELED && !q->any)) {
            rc = 0;
            break;                        /* the client is done, or we drain */
        }
        if (rc < 0) {
            if (q->status)
                error_response(c, r, q->status, q->why);
            if (q->status && !weft_conn_broken(c))
                lingering_close(c);
            break;
        }
        split_url(q);
        r->c = c;
        r->head = q->p.method == HTTP_HEAD;
        r->http10 = q->p.http_major == 1 && q->p.http_minor == 0;
        if (slot && slot->sv->in_flight >= s->o.max_in_flight) {
            r->status = 503;              /* shed load now, not after a queue */
            weft_http_res_header(r, "Retry-After", "1");
            weft_http_res_body(r, "overloaded\n", 11);
        } else {
            if (slot)
                slot->sv->in_flight++;
            weft_metric_add(s->in_flight, 1);
            dispatch(s, q, r);
            weft_metric_add(s->in_flight, -1);
            if (slot)
                slot->sv->in_flight--;
        }
        bool head = r->head;
        bool keep = llhttp_should_keep_alive(&q->p) &&
                    !(slot && (slot->sv->draining || atomic_load(&s->stopping)));
        if (r->streaming) {               /* end the chunked body */
            if (r->stream_err || r->http10 ||
                (!head && (rc = weft_conn_write_all(c, "0\r\n\r\n", 5))))
                break;
        } else if ((rc = send_response(c, r, head, !keep))) {
            break;
        }
        if (!keep)
            break;
        rc = weft__check(WEFT_FOREVER, 0);   /* cancelled: stop between requests */
    }
    if (q) {
        weft__free(q->hd.buf);
        weft__free(q->pbuf);
        weft__free(q->body);
    }
    if (r) {
        weft__free(r->hbuf);
        weft__free(r->body);
    }
    weft__free(q);
    weft__free(r);
    weft_conn_flush(c);                   /* answers queued before a cancel */
    weft_conn_close(c);
    return rc;
}

/* ---- accepting and draining ------------------------------------------------------ */

static int conn_task(void *arg)
{
    struct conn_slot *slot = arg;
    struct serving *sv = slot->sv;
    slot->task = weft_self();
    int rc = serve(sv->s, slot->c, slot);
    if (slot->prev)
        slot->prev->next = slot->next;
    else
        sv->slots = slot->next;
    if (slot->next)
        slot->next->prev = slot->prev;
    weft__free(slot);
    weft_sem_release(&sv->conns);
    (void)rc;                             /* one connection's end is not the server's */
    return 0;
}

/* close the connections that wait for a next request */
static void close_idle(struct serving *sv)
{
    for (struct conn_slot *c = sv->slots; c; c = c->next)
        if (c->idle && c->task)
            weft_task_cancel(c->task);
}

int weft_http_serve(weft_http_server *s, weft_listener *l)
{
    if (!s || !l)
        return -EINVAL;
    if (!weft__self())
        return -EPERM;
    struct serving sv = { .s = s };
    weft_sem_init(&sv.conns, s->o.max_connections);
    weft_group *g = weft_group_new();
    if (!g)
        return -ENOMEM;
    int rc = 0;
    while (!atomic_load(&s->stopping)) {
        /* 100 ms slices: a shutdown asked from any thread is seen quickly */
        weft_scope sc;
        weft_scope_enter(&sc, 100 * WEFT_MS);
        rc = weft_sem_acquire(&sv.conns);           /* backpressure */
        weft_conn *c = NULL;
        if (rc == 0 && (rc = weft_accept(l, &c, NULL)) != 0)
            weft_sem_release(&sv.conns);
        bool slice = weft_scope_exit(&sc);
        if (rc == -ETIMEDOUT && slice)
            continue;
        if (rc == -EMFILE || rc == -ENFILE || rc == -ENOBUFS || rc == -ENOMEM) {
            weft_log(WEFT_LOG_WARN, "http: accept: %s; pausing 100 ms", weft_strerror(rc));
            if (weft_sleep(100 * WEFT_MS) == -ECANCELED)
                break;
            continue;
        }
        if (rc)
            break;                        /* cancelled, or the listener is gone */
        struct conn_slot *slot = weft__calloc(1, sizeof *slot);
        if (!slot || weft_spawn(g, conn_task, slot, "http-conn") != 0) {
            weft__free(slot);
            weft_conn_close(c);
            weft_sem_release(&sv.conns);
            continue;
        }
        slot->sv = &sv;
        slot->c = c;
        slot->next = sv.slots;
        if (sv.slots)
            sv.slots->prev = slot;
        sv.slots = slot;
    }
    if (atomic_load(&s->stopping))
        rc = 0;                           /* asked to stop: not an error */
    /* drain: no new connections, idle ones closed, busy ones finish their
     * request (and then close), the rest cancelled after the grace */
    sv.draining = true;
    weft_listener_close(l);
    close_idle(&sv);
    weft_scope grace;
    weft_scope_enter_shielded(&grace, s->o.shutdown_grace);
    while (weft_group_size(g) > 0 && weft_sleep(10 * WEFT_MS) == 0)
        close_idle(&sv);                  /* busy ones turn idle, then close */
    weft_scope_exit(&grace);
    weft_group_cancel(g);
    weft_group_wait(g);
    return rc == -ECANCELED || rc == -EBADF || rc == 0 ? 0 : rc;
}

void weft_http_server_shutdown(weft_http_server *s)
{
    if (s)
        atomic_store(&s->stopping, true);
}
