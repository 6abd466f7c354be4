/*
 * The HTTP server's requests: llhttp's callbacks into the per-connection
 * request state, the limits checked as bytes arrive, and what handlers
 * read of a request (weft/http.h).
 *
 * One parser per connection runs across requests: it pauses at the end of
 * each request, the request is routed and answered, and the parser resumes
 * on the bytes that follow (pipelining costs nothing extra). The request's
 * URL and headers are copied into a per-connection buffer that is reused,
 * so a connection allocates only when a request is bigger than any before.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server_internal.h"

/* ---- parsing ---------------------------------------------------------------- */

/* Where the raw-byte scan of the head is (weft_http_req.scan). */
enum { SCAN_LEAD, SCAN_REQUEST_LINE, SCAN_LINE, SCAN_NAME, SCAN_VALUE, SCAN_END };

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
    int rc = weft__head_put(&q->hd, "", 1);   /* NUL-terminate the URL */
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

/* RFC 9110 7.2: uri-host [":" port], or empty (a target without one) */
static bool host_ok(const char *h)
{
    if (*h == '[') {                      /* IP-literal: an IPv6address (RFC 4291 2.2) */
        const char *end = strchr(h, ']');
        char lit[INET6_ADDRSTRLEN];
        struct in6_addr a;
        size_t n = end ? (size_t)(end - h - 1) : sizeof lit;
        if (n >= sizeof lit)
            return false;
        memcpy(lit, h + 1, n);
        lit[n] = 0;
        if (inet_pton(AF_INET6, lit, &a) != 1)
            return false;
        h = end + 1;
    } else {                              /* IPv4address or reg-name */
        h += strspn(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                       "-._~%!$&'()*+,;=");
    }
    if (*h == ':')
        h += 1 + strspn(h + 1, "0123456789");
    return *h == 0;
}

/* what is wrong with the request target, or NULL: a fragment is never sent
 * (RFC 9112 3.2), and a %00 in the path would end a path parameter early
 * for a handler ("/users/1%00" read as "1") */
static const char *bad_target(const char *url)
{
    if (strchr(url, '#'))
        return "fragment in the request target";
    if (strstr(url, "%00"))               /* a decoded NUL would cut a C string short */
        return "%00 in the request target";
    return NULL;
}

static int on_headers(llhttp_t *p)
{
    struct weft_http_req *q = R(p);
    int rc = end_url(q);
    if (rc || (rc = head_err(q, weft__head_done(&q->hd))))
        return rc;
    if (p->http_major != 1)
        return limit(q, 505, "HTTP version not supported");
    const char *bad = bad_target(q->hd.buf + q->url);
    if (bad)
        return limit(q, 400, bad);
    if (p->method == HTTP_CONNECT)
        return limit(q, 501, "CONNECT is not supported");
    p->upgrade = 0;                       /* no protocol switch: what follows is HTTP */
    int hosts = 0, expects = 0;
    bool host_bad = false;
    const char *te = NULL;                /* also when empty: llhttp flags no empty value */
    for (int i = 0; i < q->hd.n; i++) {
        const char *name = q->hd.buf + q->hd.idx[i].name;
        if (strcasecmp(name, "Host") == 0) {
            hosts++;
            host_bad |= !host_ok(q->hd.buf + q->hd.idx[i].value);
        }
        expects += strcasecmp(name, "Expect") == 0;
        if (!te && strcasecmp(name, "Transfer-Encoding") == 0)
            te = q->hd.buf + q->hd.idx[i].value;
    }
    /* RFC 9112 6.1: a 1.0 message with Transfer-Encoding is faulty framing */
    if (te && p->http_minor == 0)
        return limit(q, 400, "Transfer-Encoding in an HTTP/1.0 request");
    if (te && (p->flags & F_CONTENT_LENGTH))
        return limit(q, 400, "Content-Length with Transfer-Encoding");
    if (te && strcasecmp(te, "chunked") != 0)
        return limit(q, 501, "unsupported Transfer-Encoding");
    if ((p->flags & F_CONTENT_LENGTH) && p->content_length > q->s->o.max_body)
        return limit(q, 413, "request body too large");
    if (hosts > 1 || (hosts == 0 && p->http_minor >= 1))       /* major is 1 here */
        return limit(q, 400, hosts ? "more than one Host header" : "no Host header");
    if (host_bad)
        return limit(q, 400, "invalid Host");
    const char *expect = weft__head_get(&q->hd, "Expect");
    if (expects > 1 || (expect && strcasecmp(expect, "100-continue") != 0))
        return limit(q, 417, "unsupported expectation");   /* a second is another one */
    q->announced = p->flags & F_CONTENT_LENGTH ? (size_t)p->content_length : 0;
    /* a body that can never be held is over the limit, not a passing
     * condition; one that cannot be held now is refused before a 100
     * asks the client to send it */
    if (q->announced > q->s->o.max_body_memory)
        return limit(q, 413, "request body larger than the server holds");
    q->expect_continue = expect && p->http_minor >= 1 &&
                         ((p->flags & F_CHUNKED) || p->content_length > 0);
    if (q->expect_continue && q->announced > WEFT__HTTP_RETAIN &&
        q->announced + atomic_load(&q->s->body_mem) > q->s->o.max_body_memory)
        return limit(q, 503, "request bodies held by the server at their limit");
    q->method = llhttp_method_name(p->method);
    q->headers_done = true;
    q->started = weft_now();
    if (p->flags & F_CHUNKED) {
        /* llhttp 8 reads chunks leniently (chunked.c): it is told there is
         * no body, and weft__read_request reads the chunks itself */
        weft__chunked_init(&q->ck, q->s->o.max_body, q->s->o.max_header_bytes);
        q->chunked = true;
        return 1;
    }
    return 0;
}

/* ---- body memory: bounded server-wide, returned after bursts ------------------ */

/* A body buffer past the small one a connection keeps counts against
 * max_body_memory, for all loops, and its memory goes back to the OS
 * after a burst (weft__mem_released). */
static void body_uncharge(struct weft_http_req *q)
{
    if (q->charged) {
        atomic_fetch_sub(&q->s->body_mem, q->charged);
        weft_metric_add(q->s->body_bytes, -(int64_t)q->charged);
        weft__mem_released(q->charged);
        q->charged = 0;
    }
}

/* room for n more body bytes (and a NUL): 0, or HPE_USER with the status set */
static int body_grow(struct weft_http_req *q, size_t n)
{
    weft_http_server *s = q->s;
    size_t need = q->blen + n + 1;
    if (need <= q->bcap)
        return 0;
    /* doubling, but never past what Content-Length announced: a 1 MiB body
     * takes 1 MiB, not 2, and memory is taken as bytes come, not on a
     * promise a slow client never keeps */
    size_t cap = q->bcap > 1024 ? q->bcap : 1024;
    while (cap < need)
        cap *= 2;
    if (cap > q->announced + 1 && need <= q->announced + 1)
        cap = q->announced + 1;
    if (cap > s->o.max_body + 1)          /* a chunked body: never past the limit */
        cap = s->o.max_body + 1;
    if (cap > WEFT__HTTP_RETAIN) {
        /* compare-and-swap: a refusal never shows another loop a total
         * over the bound that was not really held */
        size_t more = cap - q->charged, held = atomic_load(&s->body_mem);
        do {
            if (held + more > s->o.max_body_memory)
                return limit(q, 503, "request bodies held by the server at their limit");
        } while (!atomic_compare_exchange_weak(&s->body_mem, &held, held + more));
        weft_metric_add(s->body_bytes, (int64_t)more);
        q->charged = cap;
    }
    char *b = weft__realloc(q->body, cap);
    if (!b)
        return limit(q, 503, "out of memory");
    q->body = b;
    q->bcap = cap;
    return 0;
}

/* 0, or HPE_USER with the status set */
static int body_add(struct weft_http_req *q, const char *at, size_t n)
{
    if (q->blen + n > q->s->o.max_body)
        return limit(q, 413, "request body too large");
    int rc = body_grow(q, n);
    if (rc)
        return rc;
    memcpy(q->body + q->blen, at, n);
    q->blen += n;
    q->body[q->blen] = 0;
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t n) { return body_add(R(p), at, n); }

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
};

void weft__req_reset(struct weft_http_req *q)
{
    if (q->bcap > WEFT__HTTP_RETAIN) {    /* an idle connection keeps a small buffer, */
        weft__free(q->body);              /* not its largest request's */
        q->body = NULL;
        q->bcap = 0;
        body_uncharge(q);
    }
    weft__head_reset(&q->hd);
    q->m.pattern = NULL;                  /* until a route matches */
    q->url = q->blen = q->pused = q->announced = 0;
    q->in_url = q->complete = q->any = q->headers_done = q->expect_continue = false;
    q->chunked = false;
    q->scan = SCAN_LEAD;
    q->cr = false;
    q->raw = 0;
    q->status = 0;
    q->why = NULL;
}

void weft__req_shed(struct weft_http_req *q)
{
    weft__mem_released(q->hd.cap + q->pcap + q->bcap);
    weft__free(q->hd.buf);
    weft__free(q->pbuf);
    weft__free(q->body);
    q->hd.buf = q->pbuf = q->body = NULL;
    q->hd.cap = q->pcap = q->bcap = 0;
}

/* RFC 9110 5.6.2 */
static bool tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* llhttp 8 is lenient where front ends differ, which smuggles requests:
 * it accepts obsolete line folding (a line starting with a space or tab
 * continues the previous one), a tab or another control character in the
 * request target, a bare LF as a line end, a bare CR inside
 * a line (CVE-2023-30589: "X: \rxTransfer-Encoding: chunked" is chunked
 * to it), an empty header name and one with a space in it. One pass over
 * the head's raw bytes, before they are parsed, rejects all of them: what
 * is wrong, or NULL. The state carries over from the bytes before, and
 * empty lines before the request line (RFC 9112 2.2) are skipped. */
static const char *bad_head_bytes(struct weft_http_req *q, const char *d, size_t n)
{
    /* every byte of the head counts, the whitespace and the empty lines
     * before the request line too, which the header limit does not see:
     * twice that limit in all (CVE-2024-22019 class) */
    size_t max_raw = 2 * q->s->o.max_header_bytes;
    for (size_t i = 0; i < n && q->scan != SCAN_END; i++) {
        unsigned char ch = (unsigned char)d[i];
        if (++q->raw > max_raw) {
            q->status = 431;
            return "request head too large (whitespace included)";
        }
        if (q->cr != (ch == '\n'))
            return q->cr ? "bare CR in the head" : "bare LF in the head";
        q->cr = ch == '\r';
        if (ch == '\r')
            continue;
        switch (q->scan) {
        case SCAN_LEAD:
            q->scan = ch == '\n' ? SCAN_LEAD : SCAN_REQUEST_LINE;
            break;
        case SCAN_REQUEST_LINE:
            if (ch != '\n' && (ch < 0x20 || ch == 0x7f))
                return "control character in the request line";   /* a tab in the target */
            /* fall through */
        case SCAN_VALUE:
            q->scan = ch == '\n' ? SCAN_LINE : q->scan;
            break;
        case SCAN_LINE:
            if (ch == '\n') {
                q->scan = SCAN_END;       /* the empty line */
                break;
            }
            if (ch == ' ' || ch == '\t')
                return "obsolete line folding";
            if (ch == ':')
                return "empty header name";
            q->scan = SCAN_NAME;  /* and this is the name's first byte */
            /* fall through */
        case SCAN_NAME:
            if (ch == ':')
                q->scan = SCAN_VALUE;
            else if (!tchar(ch))
                return "invalid header name";
            break;
        }
    }
    return NULL;
}

/* Reads a chunked body's bytes from data[0..n): the bytes used, or -EPROTO
 * with q->status set. */
static long read_chunks(struct weft_http_req *q, const char *data, size_t n)
{
    size_t used = 0;
    while (used < n && !weft__chunked_done(&q->ck)) {
        const char *d;
        size_t len;
        long r = weft__chunked_feed(&q->ck, data + used, n - used, &d, &len);
        if (r < 0) {
            limit(q, r == -EMSGSIZE ? 413 : r == -E2BIG ? 431 : 400, q->ck.why);
            return -EPROTO;
        }
        if (len && body_add(q, d, len))
            return -EPROTO;
        used += (size_t)r;
    }
    return (long)used;
}

int weft__read_request(struct weft_http_req *q, weft_conn *c)
{
    weft_http_server *s = q->s;
    weft_scope head;
    bool timing = false;                  /* a request has begun */
    bool in_head = false;                 /* the head's scope is entered */
    int rc = 0;
    /* llhttp is complete after the head of a chunked request */
    while (!q->complete || (q->chunked && !weft__chunked_done(&q->ck))) {
        const char *data;
        int n = weft_conn_peek(c, &data);
        if (n == 0) {
            /* idle between requests; then the head's own deadline (the
             * scope below); then a deadline for each wait for body bytes */
            weft_scope wait;
            weft_scope_enter(&wait, !timing ? s->o.keepalive_timeout - q->idle_waited
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
            timing = in_head = true;
        }
        if (q->complete) {                /* the chunks of a chunked body */
            long used = read_chunks(q, data, (size_t)n);
            if (used < 0) {
                rc = -EPROTO;
                break;
            }
            weft_conn_consume(c, (size_t)used);
            continue;
        }
        const char *bad = bad_head_bytes(q, data, (size_t)n);
        if (bad) {
            q->status = q->status ? q->status : 400;
            q->why = bad;
            rc = -EPROTO;
            break;
        }
        llhttp_errno_t e = llhttp_execute(&q->p, data, (size_t)n);
        if (in_head && q->headers_done) {
            /* the head is complete and its deadline ends with it: from
             * here body_timeout bounds each wait for body bytes */
            weft_scope_exit(&head);
            in_head = false;
        }
        if (e == HPE_OK) {
            weft_conn_consume(c, (size_t)n);
            continue;
        }
        if (e == HPE_PAUSED) {            /* at the end of a message (or of a chunked head) */
            weft_conn_consume(c, (size_t)(llhttp_get_error_pos(&q->p) - data));
            llhttp_resume(&q->p);
            continue;
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
    if (in_head && weft_scope_exit(&head) && rc < 0)
        q->status = 408, q->why = "request timeout";
    return rc;
}


struct weft_http_req *weft__req_new(weft_http_server *s)
{
    struct weft_http_req *q =
        weft__calloc(1, sizeof *q + (size_t)s->o.max_headers * sizeof q->h[0]);
    if (q) {
        q->s = s;
        q->hd.idx = q->h;
        q->hd.max = s->o.max_headers;
        q->hd.max_bytes = s->o.max_header_bytes;
        llhttp_init(&q->p, HTTP_REQUEST, &settings);
    }
    return q;
}

void weft__req_free(struct weft_http_req *q)
{
    if (q) {
        weft__free(q->hd.buf);
        weft__free(q->pbuf);
        /* a connection's buffers: when thousands close at once, a burst
         * (a charged body says so in body_uncharge) */
        weft__mem_released(q->hd.cap + q->pcap + (q->charged ? 0 : q->bcap));
        weft__free(q->body);
        body_uncharge(q);
        weft__free(q);
    }
}

/* splits the URL into path and query, in place */
void weft__split_url(struct weft_http_req *q)
{
    char *u = q->hd.buf + q->url;
    bool absolute = strncasecmp(u, "http://", 7) == 0 || strncasecmp(u, "https://", 8) == 0;
    if (absolute) {                       /* route by its path: the authority ends */
        u = strstr(u, "//") + 2;          /* at the path or the query (RFC 3986 3.2) */
        u += strcspn(u, "/?");
    }
    char *qm = strchr(u, '?');
    if (qm)
        *qm = 0;
    q->path = absolute && !*u ? "/" : u;
    q->query = qm ? qm + 1 : "";
}

/* ---- the request, for handlers ------------------------------------------------ */

const char *weft_http_req_method(const weft_http_req *q) { return q ? q->method : NULL; }
const char *weft_http_req_path(const weft_http_req *q) { return q ? q->path : NULL; }
const char *weft_http_req_query(const weft_http_req *q) { return q ? q->query : NULL; }
const char *weft_http_req_route(const weft_http_req *q) { return q ? q->m.pattern : NULL; }
weft_time weft_http_req_started(const weft_http_req *q) { return q ? q->started : 0; }
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
