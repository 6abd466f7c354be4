/* libFuzzer target: chunked request bodies, differentially. The input's
 * first byte picks how the body is split into reads, the rest is the
 * body. A small strict reader of RFC 9112 7.1, written here from the
 * grammar and independent of weft's, says what the body is: a decoded
 * body and where it ends, malformed, over a limit, or incomplete. Then
 *   1. weft's reader (src/http/chunked.c), fed the body in pieces as a
 *      connection would deliver it, must say the same, and
 *   2. the server (weft_http_serve_conn behind llhttp's head parsing),
 *      sent the body after a chunked POST head, must answer the same:
 *      201 echoing exactly that body, or 400, 413, 431.
 * Any disagreement aborts. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/internal.h"
#include "weft.h"

#define MAX_BODY 1024
#define MAX_LINE 256                      /* the server's max_header_bytes */

enum verdict { OK, BAD, BODY_LIMIT, TRAILER_LIMIT, MORE, GO };

/* ---- the reference reader ----------------------------------------------------- */

struct ref {
    const uint8_t *p;
    size_t n, i;
    size_t line;                          /* bytes of this chunk line / trailer section */
    uint64_t total;
    uint8_t out[MAX_BODY];
    size_t olen;
};

static bool tchar(int c)
{
    return c > 0 && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
                     (c >= 'A' && c <= 'Z') || strchr("!#$%&'*+-.^_`|~", c));
}
static int hex(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}
static bool ws(int c) { return c == ' ' || c == '\t'; }
static bool text(int c) { return c == '\t' || (c >= 0x20 && c != 0x7f && c <= 0xff); }

static int peek(struct ref *r) { return r->i < r->n ? r->p[r->i] : -1; }

/* takes a byte of a chunk line (a CR is not counted) */
static enum verdict eat_line(struct ref *r)
{
    if (r->p[r->i++] != '\r' && ++r->line > MAX_LINE)
        return BAD;
    return GO;
}

/* takes a byte of the trailer section (all are counted) */
static enum verdict eat_trailer(struct ref *r)
{
    r->i++;
    return ++r->line > MAX_LINE ? TRAILER_LIMIT : GO;
}

#define TRY(x) do { enum verdict v_ = (x); if (v_ != GO) return v_; } while (0)
#define NEED(r) do { if (peek(r) < 0) return MORE; } while (0)

static enum verdict bws(struct ref *r, bool *seen)
{
    for (;;) {
        NEED(r);
        if (!ws(peek(r)))
            return GO;
        *seen = true;
        TRY(eat_line(r));
    }
}

static enum verdict token(struct ref *r)
{
    NEED(r);
    if (!tchar(peek(r)))
        return BAD;
    do {
        TRY(eat_line(r));
        NEED(r);
    } while (tchar(peek(r)));
    return GO;
}

static enum verdict quoted(struct ref *r)
{
    TRY(eat_line(r));                     /* the opening quote */
    for (;;) {
        NEED(r);
        int c = peek(r);
        if (c == '"')
            return eat_line(r);
        if (c == '\\') {                  /* a quoted-pair */
            TRY(eat_line(r));
            NEED(r);
            c = peek(r);
        }
        if (!text(c))
            return BAD;
        TRY(eat_line(r));
    }
}

/* chunk-size [ chunk-ext ] CRLF */
static enum verdict chunk_line(struct ref *r, uint64_t *size)
{
    r->line = 0;
    NEED(r);
    if (hex(peek(r)) < 0)
        return BAD;
    *size = 0;
    do {
        TRY(eat_line(r));
        if (*size > UINT64_MAX / 16)
            return BAD;
        *size = *size * 16 + (uint64_t)hex(r->p[r->i - 1]);
        NEED(r);
    } while (hex(peek(r)) >= 0);
    /* *( BWS ";" BWS name [ BWS "=" BWS value ] ) */
    for (;;) {
        bool seen = false;
        TRY(bws(r, &seen));
        if (peek(r) == '\r' && !seen)
            break;
        if (peek(r) != ';')
            return BAD;
        TRY(eat_line(r));
        TRY(bws(r, &seen));
        TRY(token(r));
        seen = false;
        TRY(bws(r, &seen));
        if (peek(r) == '=') {
            TRY(eat_line(r));
            TRY(bws(r, &seen));
            TRY(peek(r) == '"' ? quoted(r) : token(r));
        } else if (seen && peek(r) != ';') {
            return BAD;                   /* BWS only before '=' or ';' */
        }
    }
    TRY(eat_line(r));                     /* CR */
    NEED(r);
    if (peek(r) != '\n')
        return BAD;
    r->i++;
    return GO;
}

/* *( field-line CRLF ) CRLF */
static enum verdict trailers(struct ref *r)
{
    r->line = 0;
    for (;;) {
        NEED(r);
        if (peek(r) == '\r') {
            TRY(eat_trailer(r));
            NEED(r);
            if (peek(r) != '\n')
                return BAD;
            TRY(eat_trailer(r));
            return OK;
        }
        if (!tchar(peek(r)))
            return BAD;
        do {
            TRY(eat_trailer(r));
            NEED(r);
        } while (tchar(peek(r)));
        if (peek(r) != ':')
            return BAD;
        TRY(eat_trailer(r));
        for (;;) {
            NEED(r);
            if (peek(r) == '\r')
                break;
            if (!text(peek(r)))
                return BAD;
            TRY(eat_trailer(r));
        }
        TRY(eat_trailer(r));
        NEED(r);
        if (peek(r) != '\n')
            return BAD;
        TRY(eat_trailer(r));
    }
}

static enum verdict reference(struct ref *r)
{
    for (;;) {
        uint64_t size;
        TRY(chunk_line(r, &size));
        if (size > MAX_BODY - r->total)
            return BODY_LIMIT;
        r->total += size;
        if (!size)
            return trailers(r);
        size_t have = r->n - r->i < size ? r->n - r->i : (size_t)size;
        memcpy(r->out + r->olen, r->p + r->i, have);
        r->olen += have;
        r->i += have;
        if (have < size)
            return MORE;
        for (const char *crlf = "\r\n"; *crlf; crlf++) {
            NEED(r);
            if (peek(r) != *crlf)
                return BAD;
            r->i++;
        }
    }
}

/* ---- 1. weft's reader, fed in pieces ------------------------------------------- */

static void check_reader(const struct ref *want, enum verdict v, uint8_t split, const uint8_t *p,
                         size_t n)
{
    struct weft__chunked k;
    weft__chunked_init(&k, MAX_BODY, MAX_LINE);
    static uint8_t out[MAX_BODY];
    size_t olen = 0, used = 0, avail = 0;
    unsigned seed = split;
    enum verdict got = MORE;
    while (avail < n || used < avail) {
        if (used == avail || (seed & 1))  /* a read: a piece of 1..8 bytes, or all */
            avail = split ? avail + 1 + (seed >> 1) % 8 : n;
        if (avail > n)
            avail = n;
        seed = seed * 1103515245 + 12345;
        const char *d;
        size_t dlen;
        long r = weft__chunked_feed(&k, (const char *)p + used, avail - used, &d, &dlen);
        if (r < 0) {
            got = r == -EPROTO ? BAD : r == -EMSGSIZE ? BODY_LIMIT : r == -E2BIG ? TRAILER_LIMIT
                                                                              : GO;
            break;
        }
        if (dlen) {
            if (olen + dlen > MAX_BODY)
                abort();                  /* past the limit it promised */
            memcpy(out + olen, d, dlen);
            olen += dlen;
        }
        used += (size_t)r;
        if (weft__chunked_done(&k)) {
            got = OK;
            break;
        }
        if (r == 0 && used < avail)
            abort();                      /* stuck */
    }
    if (got != v) {
        fprintf(stderr, "reader: got %d, want %d\n", got, v);
        abort();
    }
    if (v == OK && (used != want->i || olen != want->olen || memcmp(out, want->out, olen)))
        abort();
}

/* ---- 2. the server ----------------------------------------------------------- */

struct run { const uint8_t *p; size_t n; weft_listener *l; char resp[8192]; size_t rlen; };

static int echo(weft_http_req *q, weft_http_res *r, void *ctx)
{
    (void)ctx;
    size_t len;
    const void *b = weft_http_req_body(q, &len);
    weft_http_res_status(r, 201);
    return weft_http_res_body(r, b, len);
}

static int server(void *arg)
{
    struct run *u = arg;
    weft_http_server_opts o = { .max_body = MAX_BODY, .max_header_bytes = MAX_LINE,
                                .header_timeout = WEFT_SEC, .body_timeout = WEFT_SEC };
    weft_http_server *s = weft_http_server_new(&o);
    weft_http_server_route(s, "POST", "/echo", echo, NULL);
    weft_conn *c;
    if (weft_accept(u->l, &c, NULL) == 0)
        weft_http_serve_conn(s, c);
    weft_http_server_free(s);
    return 0;
}

static int client(void *arg)
{
    struct run *u = arg;
    if (weft_tcp_listen(&u->l, "127.0.0.1", 0, 1, 0))
        abort();
    weft_group *g = weft_group_new();
    weft_spawn(g, server, u, "server");
    weft_conn *c;
    if (weft_tcp_connect(&c, "127.0.0.1", weft_listener_port(u->l), NULL))
        abort();
    static const char head[] = "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                               "Transfer-Encoding: chunked\r\n\r\n";
    weft_conn_write_all(c, head, sizeof head - 1);
    weft_conn_write_all(c, u->p, u->n);   /* fails once the server answered an error */
    weft_conn_shutdown(c);
    int r;
    while (u->rlen < sizeof u->resp - 1 &&
           (r = weft_conn_read_some(c, u->resp + u->rlen, sizeof u->resp - 1 - u->rlen)) > 0)
        u->rlen += (size_t)r;
    u->resp[u->rlen] = 0;
    weft_conn_close(c);
    weft_group_wait(g);
    weft_listener_close(u->l);
    return 0;
}

static void check_server(const struct ref *want, enum verdict v, const uint8_t *p, size_t n)
{
    static struct run u;
    /* what follows a complete body is not read: a close with it unread
     * would reset the connection under the answer */
    u = (struct run){ .p = p, .n = v == OK ? want->i : n };
    if (weft_main(client, &u) != 0)
        abort();
    static const int status[] = { [OK] = 201, [BAD] = 400, [BODY_LIMIT] = 413,
                                  [TRAILER_LIMIT] = 431, [MORE] = 400 };
    int got = u.rlen > 12 ? atoi(u.resp + 9) : 0;
    const char *body = strstr(u.resp, "\r\n\r\n");
    bool ok = got == status[v] && body;
    if (ok && v == OK)
        ok = u.rlen - (size_t)(body + 4 - u.resp) == want->olen &&
             memcmp(body + 4, want->out, want->olen) == 0;
    if (ok && (v == BAD || v == MORE))    /* both 400: which one */
        ok = (strstr(body, "incomplete request") != NULL) == (v == MORE);
    if (!ok) {
        fprintf(stderr, "server: want %d, got:\n%s\n", status[v], u.resp);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 4096)
        return 0;
    setenv("WEFT_STALL_MS", "0", 0);
    static struct ref r;
    r = (struct ref){ .p = data + 1, .n = size - 1 };
    enum verdict v = reference(&r);
    check_reader(&r, v, data[0], data + 1, size - 1);
    check_server(&r, v, data + 1, size - 1);
    return 0;
}
