/* Private helpers shared by the files of src/http. */
#ifndef WEFT_HTTP_INTERNAL_H
#define WEFT_HTTP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Appends n bytes to a growable buffer (doubling from 1 KiB), keeping one
 * spare byte for a terminating NUL. 0 or -ENOMEM (the buffer is kept). */
int weft__buf_append(char **buf, size_t *len, size_t *cap, const void *data, size_t n);

/* Appenders for request and response heads, where printf's cost shows:
 * each copies and returns the end; the caller sized the buffer. */
static inline char *weft__put_mem(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

static inline char *weft__put_str(char *p, const char *s) { return weft__put_mem(p, s, strlen(s)); }

static inline char *weft__put_uint(char *p, size_t v)
{
    char tmp[24], *t = tmp + sizeof tmp;
    do
        *--t = (char)('0' + v % 10);
    while (v /= 10);
    return weft__put_mem(p, t, (size_t)(tmp + sizeof tmp - t));
}

/* ---- header fields from llhttp's callbacks (head.c) ---------------------- */

struct weft__hdr { uint32_t name, nlen, value, vlen; };   /* offsets into buf */

struct weft__head {
    char *buf;                    /* NUL-terminated names and values */
    size_t len, cap;
    size_t bytes, max_bytes;      /* bytes seen, stored or not, and their limit */
    struct weft__hdr *idx;        /* the caller's array of max entries */
    int n, max;
    bool in_name, in_value;
};

/* Each returns 0, -EMSGSIZE (over max_bytes), -ENOMEM, and for fields
 * -E2BIG (more than max); done gives -EPROTO for a name without a value. */
int weft__head_count(struct weft__head *hd, size_t n);   /* counted, not stored */
int weft__head_put(struct weft__head *hd, const char *at, size_t n);
int weft__head_field(struct weft__head *hd, const char *at, size_t n);
int weft__head_value(struct weft__head *hd, const char *at, size_t n);
int weft__head_done(struct weft__head *hd);
const char *weft__head_get(const struct weft__head *hd, const char *name);
void weft__head_reset(struct weft__head *hd);   /* keeps buf and its capacity */

/* ---- a chunked body, read strictly (chunked.c) ------------------------------ */

struct weft__chunked {
    uint64_t size;                /* the chunk's size, then its bytes still to come */
    uint64_t total, max_body;     /* data bytes announced so far, and their limit */
    size_t line, max_line;        /* bytes of the chunk line or trailer section */
    uint64_t framing;             /* bytes of all chunk lines: max_body + max_line */
    int state;
    const char *why;              /* what was wrong, after an error */
};

/* A reader for one body: at most max_body bytes of data, chunk lines
 * (size and extensions) and the trailer section each at most max_line,
 * all chunk lines together at most max_body + max_line (-EMSGSIZE). */
void weft__chunked_init(struct weft__chunked *k, uint64_t max_body, size_t max_line);

/* Reads framing from in[0..n) up to the first chunk data, the end of the
 * data it has, or the end of the body. Returns the bytes used (the rest
 * belongs to what follows, or waits for more input), with any body data
 * among them as the span *data, *dlen of in; or -EPROTO (malformed,
 * k->why says how), -EMSGSIZE (over max_body), -E2BIG (trailer section
 * over max_line). Call again with what was not used plus what came next. */
long weft__chunked_feed(struct weft__chunked *k, const char *in, size_t n, const char **data,
                        size_t *dlen);

/* True once the final CRLF was read. */
bool weft__chunked_done(const struct weft__chunked *k);

#endif
