/* libFuzzer target: the server's request head, differentially. The
 * input's first byte picks how the request is split into writes, the rest
 * is what a client sends. A small strict reader of an RFC 9112 request
 * head (request line, field lines, Host, Content-Length and
 * Transfer-Encoding framing, Expect) with the limits of weft/http.h's
 * server table, written here from the RFC and that table and independent
 * of weft's code, says what the server must answer: the statuses that are
 * right (a head wrong in several ways may get any of their statuses: the
 * RFC does not order them, and weft finds them in the order bytes arrive),
 * or that the request is fine, with the method, path, query, header
 * fields (name and value without the surrounding whitespace) and body the
 * handler must see. The server (weft_http_serve_conn over a socketpair)
 * gets the bytes in the chosen pieces; every request that reaches the
 * router is answered 299 by a middleware with what the handler saw in an
 * X-Echo header (hex), so fields are compared, not just the status. Only
 * the first final response is compared: bytes after the first request are
 * the next one. Any disagreement aborts.
 *
 * Where weft is knowingly more lenient than the grammar, and that is
 * safe (no front end can read a different request boundary or target out
 * of it), the reference allows both answers: see "tolerated" below. */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http/server_internal.h"
#include "net/internal.h"
#include "weft.h"

#define MAX_HEADER_BYTES 256
#define MAX_HEADERS 8
#define MAX_BODY 100
#define MAX_FIELDS 64

/* the statuses, as bits of a set */
enum { E400 = 1, E413 = 2, E417 = 4, E431 = 8, E501 = 16, E505 = 32 };
static const int codes[] = { 400, 413, 417, 431, 501, 505 };

struct span { const uint8_t *p; size_t n; };

struct want {
    unsigned err;                         /* right statuses; 0: the request is fine */
    unsigned may;                         /* right too, where weft knowingly differs */
    bool status_only;                     /* a success is not compared field by field */
    bool skip;                            /* outside the domain: not run */
    struct span method, target, path, query, body;
    struct span name[MAX_FIELDS], value[MAX_FIELDS];
    int nfields;
};

/* ---- character classes (RFC 9110 5.6.2, 5.5; RFC 3986) ------------------------ */

static bool tchar(int c)
{
    return c > 0 && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
                     (c >= 'A' && c <= 'Z') || strchr("!#$%&'*+-.^_`|~", c));
}
static bool digit(int c) { return c >= '0' && c <= '9'; }
static bool hexdig(int c) { return digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
static bool ows(int c) { return c == ' ' || c == '\t'; }
static bool vchar(int c) { return (c > 0x20 && c < 0x7f) || c >= 0x80; }   /* with obs-text */
static bool unreserved(int c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("-._~", c));
}
static bool sub_delim(int c) { return c && strchr("!$&'()*+,;=", c); }

static bool eq(struct span s, const char *lit)
{
    return s.n == strlen(lit) && strncasecmp((const char *)s.p, lit, s.n) == 0;
}

/* ---- the request target (RFC 9112 3.2, RFC 3986 3) ---------------------------- */

/* Checks path or query bytes p[0..n) (query: also "/" and "?", which pchar
 * lacks; a path allows "/" too). Returns the statuses it earns. */
static unsigned uri_chars(const uint8_t *p, size_t n, struct want *w)
{
    unsigned err = 0;
    for (size_t i = 0; i < n; i++) {
        int c = p[i];
        if (c == '%') {
            if (i + 2 < n && hexdig(p[i + 1]) && hexdig(p[i + 2])) {
                if (p[i + 1] == '0' && p[i + 2] == '0')
                    err |= E400;          /* http.h: %00 in the target */
                i += 2;
            } else {
                w->may |= E400;           /* tolerated: a stray % is kept as sent */
            }
        } else if (c == '#') {
            err |= E400;                  /* a fragment is never sent */
        } else if (!unreserved(c) && !sub_delim(c) && !strchr(":@/?", c)) {
            w->may |= E400;               /* tolerated: printable bytes past the grammar */
                                          /* ("<", "{", obs-text ...), kept as sent */
        }
    }
    return err;
}

/* the path and query that a handler sees; the statuses the target earns */
static unsigned target(struct span method, struct span t, struct want *w)
{
    const uint8_t *p = t.p, *end = t.p + t.n;
    if (t.n == 1 && p[0] == '*') {        /* asterisk-form: OPTIONS only */
        w->path = t;
        w->query = (struct span){ (const uint8_t *)"", 0 };
        if (!eq(method, "OPTIONS"))
            w->may |= E400;               /* tolerated: answered 404 */
        return 0;
    }
    if (eq(method, "CONNECT")) {          /* authority-form; 501 in any case, */
        w->may |= E400;                   /* or 400 for a target weft finds bad */
        return 0;
    }
    const uint8_t *path = p;
    if (t.n >= 7 && (strncasecmp((const char *)p, "http://", 7) == 0 ||
                     (t.n >= 8 && strncasecmp((const char *)p, "https://", 8) == 0))) {
        /* absolute-form: the authority ends at the path, the query or a fragment */
        const uint8_t *a = (const uint8_t *)memchr(p, '/', t.n) + 2;
        path = a;
        while (path < end && *path != '/' && *path != '?' && *path != '#')
            path++;
        for (const uint8_t *c = a; c < path; c++)
            if ((!unreserved(*c) && !sub_delim(*c) && !strchr(":@%[]", *c)) ||
                (*c == '%' && path - c > 2 && c[1] == '0' && c[2] == '0'))
                return E400;              /* http.h: %00 anywhere in the target */
    } else if (t.n == 0 || p[0] != '/') {
        w->status_only = true;            /* tolerated: another scheme's absolute-form */
        w->may |= E400;                   /* (routed by all of it: 404) */
        return 0;
    }
    const uint8_t *q = memchr(path, '?', (size_t)(end - path));
    const uint8_t *pend = q ? q : end;
    static const uint8_t slash[] = "/";
    w->path = path == pend ? (struct span){ slash, 1 } : (struct span){ path, (size_t)(pend - path) };
    w->query = q ? (struct span){ q + 1, (size_t)(end - q - 1) } : (struct span){ slash, 0 };
    return uri_chars(path, (size_t)(end - path), w);
}

/* ---- Host (RFC 9110 7.2, RFC 3986 3.2.2) ------------------------------------- */

static unsigned host(struct span v, struct want *w)
{
    const uint8_t *p = v.p, *end = v.p + v.n;
    if (p < end && *p == '[') {
        const uint8_t *close = memchr(p, ']', v.n);
        if (!close)
            return E400;
        size_t len = (size_t)(close - p - 1);
        char lit[64];
        struct in6_addr a;
        if (len > 0 && (p[1] == 'v' || p[1] == 'V')) {
            w->may |= E400;               /* tolerated: IPvFuture, refused */
        } else if (len >= sizeof lit) {
            return E400;
        } else {
            memcpy(lit, p + 1, len);
            lit[len] = 0;
            if (strchr(lit, '%') || inet_pton(AF_INET6, lit, &a) != 1)
                return E400;
        }
        p = close + 1;
    } else {                              /* reg-name (IPv4address is one) */
        for (; p < end && *p != ':'; p++) {
            if (*p == '%' && end - p > 2 && hexdig(p[1]) && hexdig(p[2]))
                p += 2;
            else if (*p == '%')
                w->may |= E400;           /* tolerated: a stray % */
            else if (!unreserved(*p) && !sub_delim(*p))
                return E400;
        }
    }
    if (p < end && *p == ':')
        for (p++; p < end; p++)
            if (!digit(*p))
                return E400;
    return p == end ? 0 : E400;
}

/* ---- lists (RFC 9110 5.6.1) ---------------------------------------------------- */

/* the elements of every field named name, in order, into out; their count */
static int list(const struct want *w, const char *name, struct span *out, int max)
{
    int k = 0;
    for (int i = 0; i < w->nfields; i++) {
        if (!eq(w->name[i], name))
            continue;
        const uint8_t *p = w->value[i].p, *end = p + w->value[i].n;
        while (p <= end) {
            const uint8_t *c = memchr(p, ',', (size_t)(end - p));
            const uint8_t *e = c ? c : end;
            const uint8_t *a = p, *b = e;
            while (a < b && ows(*a))
                a++;
            while (b > a && ows(b[-1]))
                b--;
            if (b > a && k < max)
                out[k++] = (struct span){ a, (size_t)(b - a) };
            p = e + 1;
        }
    }
    return k;
}

static int count(const struct want *w, const char *name)
{
    int k = 0;
    for (int i = 0; i < w->nfields; i++)
        k += eq(w->name[i], name);
    return k;
}

static struct span field(const struct want *w, const char *name)
{
    for (int i = 0; i < w->nfields; i++)
        if (eq(w->name[i], name))
            return w->value[i];
    return (struct span){ NULL, 0 };
}

/* ---- the request line and field lines (RFC 9112 2.2, 3, 5) --------------------- */

static const char *const methods[] = {   /* llhttp's: any other is not implemented */
    "DELETE", "GET", "HEAD", "POST", "PUT", "OPTIONS", "TRACE", "COPY", "LOCK", "MKCOL",
    "MOVE", "PROPFIND", "PROPPATCH", "SEARCH", "UNLOCK", "BIND", "REBIND", "UNBIND", "ACL",
    "REPORT", "MKACTIVITY", "CHECKOUT", "MERGE", "M-SEARCH", "NOTIFY", "SUBSCRIBE",
    "UNSUBSCRIBE", "PATCH", "PURGE", "MKCALENDAR", "LINK", "UNLINK", "SOURCE", "CONNECT",
};

/* method SP request-target SP HTTP-version; the statuses; *minor the version */
static unsigned request_line(const uint8_t *p, size_t n, struct want *w, int *minor)
{
    size_t i = 0;
    while (i < n && tchar(p[i]))
        i++;
    w->method = (struct span){ p, i };
    if (!i || i == n || p[i] != ' ')
        return E400;
    unsigned err = 0;
    if (++i < n && p[i] == ' ') {         /* tolerated (RFC 9112 3 lets a recipient */
        w->may |= E400;                   /* split on runs of spaces) */
        while (i < n && p[i] == ' ')
            i++;
    }
    size_t t = i;
    while (i < n && p[i] > 0x20 && p[i] != 0x7f)
        i++;
    w->target = (struct span){ p + t, i - t };
    if (i == t || i == n || p[i] != ' ') {
        w->may |= E505;
        return E400;
    }
    if (++i < n && p[i] == ' ') {
        w->may |= E400;
        while (i < n && p[i] == ' ')
            i++;
    }
    if (n - i != 8 || memcmp(p + i, "HTTP/", 5) || !digit(p[i + 5]) || p[i + 6] != '.' ||
        !digit(p[i + 7])) {
        w->may |= E505;                   /* tolerated: a malformed or missing version */
        return E400;                      /* as unsupported (llhttp says "invalid version") */
    }
    if (p[i + 5] != '1' || (p[i + 7] != '0' && p[i + 7] != '1'))
        err |= E505;
    *minor = p[i + 7] - '0';
    bool known = false;
    for (size_t k = 0; k < sizeof methods / sizeof *methods; k++)
        known |= eq(w->method, methods[k]) && memcmp(w->method.p, methods[k], w->method.n) == 0;
    if (!known)                           /* RFC 9110 9.1 says 501; weft's parser 400 */
        err |= E400 | E501;
    if (eq(w->method, "CONNECT"))
        err |= E501;
    if (memcmp(w->method.p, "PRI", 3) == 0 && w->method.n == 3)
        w->may |= E505;                   /* tolerated: HTTP/2's preface method */
    return err | target(w->method, w->target, w);
}

/* field-name ":" OWS field-value OWS; the statuses */
static unsigned field_line(const uint8_t *p, size_t n, struct want *w, size_t *bytes)
{
    if (ows(p[0]))
        return E400;                      /* obs-fold */
    size_t i = 0;
    while (i < n && tchar(p[i]))
        i++;
    if (!i || i == n || p[i] != ':')
        return E400;
    size_t a = i + 1, b = n;
    while (a < b && ows(p[a]))
        a++;
    while (b > a && ows(p[b - 1]))
        b--;
    for (size_t k = a; k < b; k++)
        if (!vchar(p[k]) && !ows(p[k]))
            return E400;
    if (w->nfields < MAX_FIELDS) {
        w->name[w->nfields] = (struct span){ p, i };
        w->value[w->nfields++] = (struct span){ p + a, b - a };
    }
    *bytes += i + (b - a);
    return 0;
}

/* ---- framing and the body (RFC 9112 6) ------------------------------------------ */

/* The chunked body from p[0..n): only size CRLF data CRLF ... 0 CRLF CRLF
 * (extensions, trailers and long size lines are fuzz_http_chunked's);
 * false when the body is outside that. */
static bool chunks(const uint8_t *p, size_t n, struct want *w, unsigned *err)
{
    static uint8_t out[MAX_BODY];
    size_t i = 0, total = 0;
    for (;;) {
        size_t size = 0, d = 0;
        while (i + d < n && hexdig(p[i + d]) && d < 8)
            size = size * 16 + (size_t)(digit(p[i + d]) ? p[i + d] - '0' : (p[i + d] | 0x20) - 'a' + 10),
            d++;
        if (i + d == n) {
            *err |= E400 | (size > MAX_BODY - total ? E413 : 0);    /* incomplete */
            return true;
        }
        if (!d || p[i + d] != '\r')
            return false;
        if (size > MAX_BODY - total) {    /* over, maybe said after a broken line */
            *err |= E413 | (n - i - d < 2 || p[i + d + 1] != '\n' ? E400 : 0);
            return true;
        }
        i += d;
        if (n - i < 2 || p[i + 1] != '\n') {
            if (n - i < 2) {
                *err |= E400;
                return true;
            }
            return false;
        }
        i += 2;
        if (!size) {
            if (n - i < 2) {
                *err |= E400;
                return true;
            }
            if (p[i] != '\r' || p[i + 1] != '\n')
                return false;
            w->body = (struct span){ out, total };
            return true;
        }
        if (n - i < size + 2) {
            *err |= E400;
            return true;
        }
        if (p[i + size] != '\r' || p[i + size + 1] != '\n')
            return false;
        memcpy(out + total, p + i, size);
        total += size;
        i += size + 2;
    }
}

/* Content-Length, Transfer-Encoding, Host, Expect: the statuses; the body */
static unsigned framing(struct want *w, int minor, const uint8_t *p, size_t n, size_t head)
{
    unsigned err = 0;
    struct span te[32], cl = field(w, "Content-Length"), ex[32];
    int nte = list(w, "Transfer-Encoding", te, 32), ncl = count(w, "Content-Length");
    bool chunked = false;
    unsigned long long len = 0;
    if (count(w, "Transfer-Encoding")) {
        if (minor == 0)
            err |= E400;                  /* RFC 9112 6.1: faulty framing */
        if (ncl)
            err |= E400;                  /* 6.3: smuggling */
        int k = 0;
        for (int i = 0; i < nte; i++)
            k += eq(te[i], "chunked");
        if (nte == 1 && k == 1) {
            chunked = true;
            if (count(w, "Transfer-Encoding") > 1 || !eq(field(w, "Transfer-Encoding"), "chunked"))
                w->may |= E400 | E501;    /* tolerated: empty list elements refused */
        }
        else if (nte && eq(te[nte - 1], "chunked") && k == 1)
            err |= E501;                  /* a coding weft lacks */
        else if (k)
            err |= E400;                  /* 6.3: chunked not final (or twice) */
        else
            err |= E400 | E501;           /* unknown codings, or none */
    } else if (ncl) {
        bool valid = cl.n > 0, over = false;
        for (size_t i = 0; i < cl.n; i++) {
            valid &= digit(cl.p[i]);
            if (valid && len > (ULLONG_MAX - 9) / 10)
                over = true;
            else if (valid)
                len = len * 10 + (unsigned)(cl.p[i] - '0');
        }
        if (!valid)
            err |= E400;
        else if (over)
            err |= E400 | E413;
        else if (len > MAX_BODY)
            err |= E413;
        for (int i = 0; i < w->nfields; i++)
            if (eq(w->name[i], "Content-Length") &&
                (w->value[i].n != cl.n || memcmp(w->value[i].p, cl.p, cl.n)))
                err |= E400;              /* 6.3: differing values */
        if (ncl > 1)
            err |= E400;                  /* http.h: even the same value repeated */
    }
    int hosts = count(w, "Host");
    if (hosts > 1 || (hosts == 0 && minor == 1))
        err |= E400;
    else if (hosts)
        err |= host(field(w, "Host"), w);
    int nex = list(w, "Expect", ex, 32);
    if (count(w, "Expect")) {
        unsigned e = nex == 1 && eq(ex[0], "100-continue") ? 0 : E417;
        if (e && minor == 0)              /* RFC 9110 10.1.1: 1.0 may ignore it */
            w->may |= e;
        else
            err |= e;
        if (!e && (count(w, "Expect") > 1 || !eq(field(w, "Expect"), "100-continue")))
            w->may |= E417;               /* tolerated: empty list elements refused */
    }
    if (chunked) {
        if (!chunks(p + head, n - head, w, &err))
            w->skip = true;
    } else if (len <= MAX_BODY) {
        if (n - head < len)
            err |= E400;                  /* incomplete */
        else
            w->body = (struct span){ p + head, (size_t)len };
    }
    return err;
}

/* ---- the head ------------------------------------------------------------------ */

static void reference(const uint8_t *p, size_t n, struct want *w)
{
    unsigned err = 0;
    size_t i = 0, bytes = 0, lines = 0, head = 0, start = 0;
    int minor = 1;
    bool seen_request = false, complete = false;
    while (i < n) {
        const uint8_t *lf = memchr(p + i, '\n', n - i);
        if (!lf) {                        /* incomplete */
            if (!seen_request)
                start = i;                /* a partial request line */
            else if (lines == MAX_HEADERS && p[i] != '\r')
                w->may |= E431;           /* a partial field, one too many */
            break;
        }
        size_t len = (size_t)(lf - (p + i));
        if (len && p[i + len - 1] == '\r')
            len--;
        else
            err |= E400;                  /* a bare LF */
        if (memchr(p + i, '\r', len))
            err |= E400;                  /* a bare CR */
        size_t at = i;
        i = (size_t)(lf - p) + 1;
        if (!len && !seen_request)
            continue;                     /* RFC 9112 2.2: empty lines before */
        if (!len) {
            complete = true;
            head = i;
            break;
        }
        if (!seen_request) {
            seen_request = true;
            start = at;
            err |= request_line(p + at, len, w, &minor);
            bytes += w->method.n + w->target.n;
        } else {
            lines++;
            err |= field_line(p + at, len, w, &bytes);
        }
    }
    size_t raw = complete ? head : n;
    if (!complete)
        err |= E400;                      /* the client closed mid-head */
    if (!seen_request)
        w->may |= E505;                   /* a partial request line's version, as above */
    if (raw > 2 * MAX_HEADER_BYTES || bytes > MAX_HEADER_BYTES || lines > MAX_HEADERS)
        err |= E431;
    else if (raw - start > MAX_HEADER_BYTES)
        w->may |= E431;                   /* between what weft must count and all */
    if (complete && seen_request)
        err |= framing(w, minor, p, n, head);
    w->err = err;
}

/* ---- the server ---------------------------------------------------------------- */

static void hex(char **o, const void *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        *o += sprintf(*o, "%02x", ((const uint8_t *)p)[i]);
    *(*o)++ = '.';
    **o = 0;
}

/* what the handler saw: method, path, query, the fields, the body */
static void echo(weft_http_req *q, weft_http_res *r, void *ctx)
{
    (void)ctx;
    static char buf[16384];
    char *o = buf;
    const char *m = weft_http_req_method(q), *path = weft_http_req_path(q),
               *query = weft_http_req_query(q);
    hex(&o, m, strlen(m));
    hex(&o, path, strlen(path));
    hex(&o, query, strlen(query));
    for (int i = 0; i < q->hd.n && o < buf + sizeof buf - 2048; i++) {
        hex(&o, q->hd.buf + q->hd.idx[i].name, q->hd.idx[i].nlen);
        hex(&o, q->hd.buf + q->hd.idx[i].value, q->hd.idx[i].vlen);
    }
    size_t len;
    const void *b = weft_http_req_body(q, &len);
    hex(&o, b, len);
    weft_http_res_status(r, 299);
    if (weft_http_res_header(r, "X-Echo", buf))
        abort();
}

static void expected(const struct want *w, char *o)
{
    *o = 0;
    hex(&o, w->method.p, w->method.n);
    hex(&o, w->path.p, w->path.n);
    hex(&o, w->query.p, w->query.n);
    for (int i = 0; i < w->nfields; i++) {
        hex(&o, w->name[i].p, w->name[i].n);
        hex(&o, w->value[i].p, w->value[i].n);
    }
    hex(&o, w->body.p, w->body.n);
}

struct run { const uint8_t *p; size_t n; unsigned seed; int fd; char resp[32768]; size_t rlen; };

static int client(void *arg)
{
    struct run *u = arg;
    size_t off = 0;
    unsigned seed = u->seed;
    while (off < u->n) {                  /* pieces of 1..8 bytes, or all at once */
        size_t k = seed ? 1 + (seed >> 1) % 8 : u->n;
        if (k > u->n - off)
            k = u->n - off;
        seed = seed * 1103515245 + 12345;
        ssize_t r = send(u->fd, u->p + off, k, MSG_NOSIGNAL);
        if (r > 0) {
            off += (size_t)r;
            if (u->seed)
                weft_yield();             /* let the server read this piece alone */
        } else if (r < 0 && errno == EAGAIN) {
            weft_fd_wait(u->fd, WEFT_WRITE);
        } else {
            break;                        /* the server answered and closed */
        }
    }
    shutdown(u->fd, SHUT_WR);
    for (;;) {
        ssize_t r = read(u->fd, u->resp + u->rlen, sizeof u->resp - 1 - u->rlen);
        if (r > 0)
            u->rlen += (size_t)r;
        else if (r == 0 || errno != EAGAIN || u->rlen == sizeof u->resp - 1 ||
                 weft_fd_wait(u->fd, WEFT_READ))
            break;
    }
    u->resp[u->rlen] = 0;
    weft_fd_forget(u->fd);
    return 0;
}

static int one(void *arg)
{
    struct run *u = arg;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
        abort();
    u->fd = sv[1];
    weft_http_server_opts o = { .max_header_bytes = MAX_HEADER_BYTES, .max_headers = MAX_HEADERS,
                                .max_body = MAX_BODY, .header_timeout = 5 * WEFT_SEC,
                                .body_timeout = 5 * WEFT_SEC };
    weft_http_server *s = weft_http_server_new(&o);
    weft_http_server_use(s, NULL, echo, NULL);
    weft_group *g = weft_group_new();
    weft_spawn(g, client, u, "client");
    weft_conn *c;
    weft_net_opts no = { .read_timeout = 5 * WEFT_SEC, .write_timeout = 5 * WEFT_SEC };
    if (weft__fd_own(sv[0]) || weft__conn_new(&c, sv[0], &no))
        abort();
    weft_http_serve_conn(s, c);
    weft_group_wait(g);
    close(sv[1]);
    weft_http_server_free(s);
    return 0;
}

static void fail(const struct want *w, const char *resp, const char *why)
{
    fprintf(stderr, "head: %s; want", why);
    for (int i = 0; i < 6; i++)
        if ((w->err | w->may) & (1u << i))
            fprintf(stderr, " %d%s", codes[i], w->err & (1u << i) ? "" : "?");
    fprintf(stderr, "%s; got:\n%.600s\n", w->err ? "" : " 299", resp);
    abort();
}

static void check(const struct want *w, const char *resp)
{
    const char *r = resp;
    while (strncmp(r, "HTTP/1.1 1", 10) == 0 && strstr(r, "\r\n\r\n"))
        r = strstr(r, "\r\n\r\n") + 4;    /* 100 Continue */
    if (strncmp(r, "HTTP/1.1 ", 9) || !strstr(r, "\r\n\r\n"))
        fail(w, resp, "no response");
    int status = atoi(r + 9);
    if (status == 299) {
        if (w->err)
            fail(w, resp, "accepted");
        if (w->status_only)
            return;
        static char want[16384];
        expected(w, want);
        const char *e = strstr(r, "\r\nX-Echo: ");
        size_t len = strlen(want);
        if (!e || strncmp(e + 10, want, len) || e[10 + len] != '\r')
            fail(w, resp, "saw another request");
        return;
    }
    for (int i = 0; i < 6; i++)
        if (codes[i] == status && ((w->err | w->may) & (1u << i)))
            return;
    fail(w, resp, "status");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || size > 4096)
        return 0;
    setenv("WEFT_STALL_MS", "0", 0);
    static struct want w;
    w = (struct want){ 0 };
    reference(data + 1, size - 1, &w);
    if (w.skip)
        return 0;
    static struct run u;
    u.p = data + 1;
    u.n = size - 1;
    u.seed = data[0];
    u.rlen = 0;
    if (weft_main(one, &u) != 0)
        abort();
    check(&w, u.resp);
    return 0;
}
