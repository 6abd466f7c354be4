/*
 * Reading an HTTP response (the client's side): llhttp's callbacks into the
 * response's own storage, the head and body limits, gzip and deflate.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "client_internal.h"

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
    if (r->body_len >= (64 << 10))
        weft__mem_released(r->body_len);  /* a burst of large answers goes back */
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
    /* its status line counts even without a reason phrase: endless bare
     * "HTTP/1.1 100 \r\n\r\n" answers reach the limit too */
    return head_err(s, weft__head_count(s->hd, sizeof "HTTP/1.1 100 \r\n\r\n" - 1));
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

/* ---- decoding gzip and deflate as the body comes ---------------------------------- */

enum { Z_NONE, Z_ON, Z_DONE };

/* zlib counts bytes in uInt (32 bits): output goes through it in slices
 * of at most this much (a variable so that tests can make it small) */
size_t weft__zlib_slice = UINT_MAX;

static uInt zslice(size_t n) { return (uInt)(n < weft__zlib_slice ? n : weft__zlib_slice); }

/* zlib's state and window come from weft's allocator like all of weft's
 * memory: counted, and failed in turn by the tests */
static voidpf zalloc(voidpf opaque, uInt items, uInt size)
{
    (void)opaque;
    return weft__malloc((size_t)items * size);
}

static void zfree(voidpf opaque, voidpf p)
{
    (void)opaque;
    weft__free(p);
}

static void decoder_start(struct parse *s)
{
    const char *enc = weft__head_get(s->hd, "Content-Encoding");
    int wbits;
    if (!s->decompress || !enc)
        return;
    if (strcasecmp(enc, "gzip") == 0)
        wbits = 16 + MAX_WBITS;
    else if (strcasecmp(enc, "deflate") == 0)
        wbits = MAX_WBITS;                /* zlib-wrapped, as RFC 9110 says */
    else
        return;                           /* left as sent */
    s->z = (z_stream){ .zalloc = zalloc, .zfree = zfree };
    s->enc = strcasecmp(enc, "gzip") == 0 ? "gzip" : "deflate";
    if (inflateInit2(&s->z, wbits) == Z_OK)
        s->zstate = Z_ON;
    else
        s->err = -ENOMEM;                 /* said at the first body byte */
}

void weft__parse_end(struct parse *s)
{
    if (s->zstate != Z_NONE)
        inflateEnd(&s->z);
    s->zstate = Z_NONE;
}

/* len more raw bytes through zlib into the body, at most max_body of it */
static int inflate_more(struct parse *s, const char *at, size_t len)
{
    weft_http_response *r = s->r;
    /* one byte past max_body tells a body over it from one that fills it */
    size_t limit = s->max_body < SIZE_MAX - 1 ? s->max_body + 1 : SIZE_MAX - 1;
    while (len && s->zstate == Z_ON) {
        if (r->body_len == s->body_cap) {
            if (s->body_cap >= limit)
                return stop(s, -EMSGSIZE, "decoded body over the limit");
            size_t cap = s->body_cap ? s->body_cap * 2 : 16384;
            cap = cap < limit ? cap : limit;
            char *n = weft__realloc(r->body, cap + 1);
            if (!n)
                return stop(s, -ENOMEM, "out of memory");
            r->body = n;
            s->body_cap = cap;
        }
        s->z.next_in = (Bytef *)at;
        s->z.avail_in = zslice(len);
        s->z.next_out = (Bytef *)r->body + r->body_len;
        s->z.avail_out = zslice(s->body_cap - r->body_len);
        uInt fed = s->z.avail_in, room = s->z.avail_out;
        int zr = inflate(&s->z, Z_NO_FLUSH);
        at += fed - s->z.avail_in;
        len -= fed - s->z.avail_in;
        r->body_len += room - s->z.avail_out;
        if (r->body_len > s->max_body)
            return stop(s, -EMSGSIZE, "decoded body over the limit");
        if (zr == Z_STREAM_END)
            s->zstate = Z_DONE;           /* what follows is ignored */
        else if (zr == Z_MEM_ERROR)
            return stop(s, -ENOMEM, "out of memory");   /* the window, at the first output */
        else if (zr != Z_OK && zr != Z_BUF_ERROR) {
            snprintf(s->why_buf, sizeof s->why_buf, "bad %s body: %s", s->enc,
                     s->z.msg ? s->z.msg : "?");
            return stop(s, -EPROTO, s->why_buf);
        }
    }
    return 0;
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
    if (p->status_code >= 200)
        decoder_start(s);
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
    if (s->raw_len + len > s->max_body)
        return stop(s, -EMSGSIZE, "response body over the limit");
    s->raw_len += len;
    if (s->err)
        return stop(s, s->err, "out of memory");
    if (s->zstate == Z_ON)
        return inflate_more(s, at, len);
    if (s->zstate == Z_DONE)
        return 0;                         /* after the end of the stream: ignored */
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

int weft__publish_headers(struct parse *s)
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

int weft__pump(struct parse *s, weft_conn *c, size_t max_feed)
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
    if (e == HPE_USER || s->err) {        /* (a notification callback's is HPE_CB_*) */
        snprintf(r->error, sizeof r->error, "%s", s->why);
        return s->err;
    }
    snprintf(r->error, sizeof r->error, "malformed response: %s (%s)", llhttp_errno_name(e),
             llhttp_get_error_reason(&s->p));
    return -EPROTO;
}

/* the response's own storage; the header index needs no zeroing */
struct weft__http_resp *weft__resp_store(void)
{
    struct weft__http_resp *h = weft__malloc(sizeof *h);
    if (h) {
        memset(&h->hd, 0, sizeof h->hd);
        h->hd.idx = h->idx;
        h->hd.max = MAX_HEADERS;
    }
    return h;
}

void weft__parse_init(struct parse *s, weft_http_client *cl, weft_http_response *r,
                       bool head_request)
{
    memset(s, 0, sizeof *s);
    s->r = r;
    s->hd = &r->priv_->hd;
    weft__head_reset(s->hd);
    s->hd->max_bytes = cl->o.max_header_bytes;
    s->head_request = head_request;
    s->max_body = cl->o.max_body;
    s->decompress = !cl->o.no_decompress;
    llhttp_init(&s->p, HTTP_RESPONSE, &settings);
}

int weft__read_response(weft_http_client *cl, weft_conn *c, bool head_request,
                         weft_http_response *r, bool *keep, bool *any)
{
    struct parse s;
    weft__parse_init(&s, cl, r, head_request);
    int rc;
    while ((rc = weft__pump(&s, c, SIZE_MAX)) == 0)
        ;
    *any = s.any;
    bool cut = s.zstate == Z_ON && s.raw_len;   /* the stream did not end */
    weft__parse_end(&s);
    if (rc < 0)
        return rc;
    if (cut) {
        snprintf(r->error, sizeof r->error, "truncated %s body", s.enc);
        return -EPROTO;
    }
    *keep = llhttp_should_keep_alive(&s.p) && !s.p.upgrade;
    if (r->body)
        r->body[r->body_len] = 0;
    return weft__publish_headers(&s);
}


/* The response path on its own, for the fuzzer (fuzz/fuzz_http_response.c). */
int weft__http_read_response(weft_http_client *cl, weft_conn *c, bool head_request,
                             weft_http_response *r, bool *keep)
{
    memset(r, 0, sizeof *r);
    if (!(r->priv_ = weft__resp_store()))
        return -ENOMEM;
    bool any;
    return weft__read_response(cl, c, head_request, r, keep, &any);
}
