/* libFuzzer target: the HTTP client's decoded-body path, differentially.
 * The input describes a response: eight control bytes choose the framing
 * (Content-Length, chunked, until close; maybe cut short), the
 * Content-Encoding and how the payload is encoded with zlib (level,
 * strategy, the coding actually used, a corruption), max_body and
 * no_decompress, how often the payload repeats (a small input becomes a
 * gzip bomb) and how the bytes are split into chunks and writes; the rest
 * is the payload. The harness encodes and frames it, and a task sends it
 * from the other end of a socketpair while weft__http_read_response reads
 * it.
 *
 * The reference is what include/weft/http.h promises, with the body
 * decoded here by zlib in one shot, independently of weft's slicing:
 *   - more than max_body body bytes as sent: -EMSGSIZE (or -EPROTO when
 *     the stream is corrupt within the first max_body bytes: weft decodes
 *     as the body comes and may see that first);
 *   - a response cut short: -EPROTO;
 *   - Content-Encoding gzip (windowBits 31) or deflate (zlib-wrapped,
 *     RFC 9110 8.4.1.2; windowBits 15), any case, whitespace around it
 *     not being part of the value, on a non-empty body:
 *     more than max_body decoded bytes is -EMSGSIZE, a corrupt or
 *     truncated stream -EPROTO, else the decoded bytes (what follows the
 *     end of the stream is ignored, as zlib stops there);
 *   - any other coding, or no_decompress: the body as sent.
 * weft must give the same code, status 200, the same bytes, keep-alive for
 * the framings that allow it, a reason in r.error on failure, and must
 * not hold more than the body as sent (in a buffer that doubles: twice
 * that) and max_body decoded bytes, plus a fixed overhead, while reading
 * and decoding: a gzip bomb costs no more than the limit. Any
 * disagreement aborts. */
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include "../src/net/internal.h"
#include "weft/http.h"

int weft__http_read_response(weft_http_client *cl, weft_conn *c, bool head_request,
                             weft_http_response *r, bool *keep);
extern size_t weft__zlib_slice;

#define DEFAULT_MAX_BODY ((size_t)16 << 20)  /* http.h's default */
#define MAX_DECODED ((size_t)1 << 20)        /* payload x repeats, at most */
#define MAX_WIRE (2 * MAX_DECODED + 65536)   /* the framed response, at most */
#define OVERHEAD ((size_t)64 << 10)          /* head storage, zlib (40 KiB): not the body's */

/* ---- counting what weft holds ------------------------------------------------ */

static _Atomic size_t live, peak;

static void count(size_t add, size_t sub)
{
    size_t now = atomic_fetch_add(&live, add) + add - sub;
    atomic_fetch_sub(&live, sub);
    size_t p = atomic_load(&peak);
    while (now > p && !atomic_compare_exchange_weak(&peak, &p, now))
        ;
}

/* each block carries its size in front (16 bytes keep malloc's alignment) */
static void *count_malloc(size_t n)
{
    size_t *b = malloc(n + 16);
    if (!b)
        return NULL;
    b[0] = n;
    count(n, 0);
    return (char *)b + 16;
}

static void *count_realloc(void *p, size_t n)
{
    if (!p)
        return count_malloc(n);
    size_t *b = (size_t *)((char *)p - 16), old = b[0];
    b = realloc(b, n + 16);
    if (!b)
        return NULL;
    b[0] = n;
    count(n, old);
    return (char *)b + 16;
}

static void count_free(void *p)
{
    if (!p)
        return;
    size_t *b = (size_t *)((char *)p - 16);
    count(0, b[0]);
    free(b);
}

static const weft_allocator counting = { count_malloc, count_realloc, count_free };

/* ---- the response ------------------------------------------------------------ */

enum framing { LENGTH, CHUNKED, CLOSE };

/* Content-Encoding sent, the coding actually applied (zlib windowBits, 0:
 * none) */
static const struct coding { const char *name; int wbits; } codings[] = {
    { NULL, 0 },        { "identity", 0 }, { "gzip", 31 },   { "GZip", 31 },
    { "deflate", 15 },  { "DEFLATE", 15 }, { "deflate", -15 }, /* raw: not RFC 9110's */
    { "gzip", 0 },      { "deflate", 0 },  /* the payload is the stream */
    { "deflate", 31 },  { "gzip", 15 },    { "x-gzip", 31 },
    { "br", 0 },        { " gzip \t", 31 }, { "\tdeflate ", 15 },   /* OWS is not the value's */
};

static const int strategies[] = { Z_DEFAULT_STRATEGY, Z_FILTERED, Z_HUFFMAN_ONLY, Z_RLE, Z_FIXED };

struct run {
    /* the description */
    enum framing framing;
    bool cut;                             /* asked: end the response early */
    bool truncated;                       /* done: it ends inside its body */
    const struct coding *coding;
    size_t max_body;                      /* as given to the client (0: default) */
    bool no_decompress;                   /* as given to the client */
    unsigned seed;                        /* chunk sizes and write pieces */
    /* the bytes */
    uint8_t *plain;                       /* payload x repeats */
    size_t plain_len;
    uint8_t *body;                        /* encoded, maybe corrupted */
    size_t body_len;
    uint8_t *wire;                        /* head + framed body */
    size_t wire_len;
    size_t delivered;                     /* body bytes within wire_len */
    weft_conn *w;                         /* the server's end */
};

static unsigned next(unsigned *seed)
{
    *seed = *seed * 1103515245 + 12345;
    return *seed >> 8;
}

/* the payload compressed as c says, or as is */
static size_t encode(const struct coding *c, int level, int strategy, const uint8_t *in,
                     size_t n, uint8_t *out, size_t cap)
{
    if (!c->wbits) {
        memcpy(out, in, n);
        return n;
    }
    z_stream z = { 0 };
    if (deflateInit2(&z, level, Z_DEFLATED, c->wbits, 8, strategy) != Z_OK)
        abort();
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END)
        abort();
    deflateEnd(&z);
    return z.total_out;
}

/* Spoils the encoded body as ctl says (mostly not at all). */
static void corrupt(struct run *u, uint8_t ctl, uint8_t where, int level, int strategy)
{
    size_t n = u->body_len, at = n * where / 256;
    switch (ctl & 7) {
    case 3:                               /* a flipped byte */
        if (n)
            u->body[at] ^= (uint8_t)(ctl >> 3 | 1);
        break;
    case 4:                               /* truncated */
        u->body_len = at;
        break;
    case 5:                               /* trailing garbage */
        for (size_t i = 0; i < 1u + (ctl >> 3) % 16; i++)
            u->body[u->body_len++] = (uint8_t)(where + i * 37);
        break;
    case 6:                               /* a second member / stream */
        u->body_len += encode(u->coding, level, strategy, u->plain, u->plain_len,
                              u->body + n, MAX_WIRE - n);
        break;
    case 7:                               /* the trailer (checksum, size) cut */
        u->body_len = n > (ctl >> 3) % 9 ? n - (ctl >> 3) % 9 : 0;
        break;
    }
}

static size_t put(struct run *u, const char *s) {
    size_t n = strlen(s);
    memcpy(u->wire + u->wire_len, s, n);
    u->wire_len += n;
    return n;
}

/* The head and the framed body into u->wire; a cut response ends at a
 * point inside its body (close-delimited bodies cannot be cut: they would
 * just be shorter). */
static void frame(struct run *u, uint8_t where, bool upper)
{
    char line[64];
    u->wire_len = 0;
    put(u, "HTTP/1.1 200 OK\r\n");
    if (u->coding->name) {
        snprintf(line, sizeof line, "Content-Encoding: %s\r\n", u->coding->name);
        put(u, line);
    }
    if (u->framing == LENGTH) {
        snprintf(line, sizeof line, "Content-Length: %zu\r\n", u->body_len);
        put(u, line);
    } else if (u->framing == CHUNKED) {
        put(u, "Transfer-Encoding: chunked\r\n");
    }
    put(u, "\r\n");
    size_t start = u->wire_len;
    u->delivered = u->body_len;
    if (u->framing != CHUNKED) {
        memcpy(u->wire + u->wire_len, u->body, u->body_len);
        u->wire_len += u->body_len;
        if (u->cut && u->framing == LENGTH && u->body_len) {
            u->delivered = u->body_len * where / 256;
            u->wire_len = start + u->delivered;
            u->truncated = true;
        }
        return;
    }
    /* chunks of 1..16 or 1..4096 bytes; cut, the body ends inside one of
     * them or inside a chunk line: count the data bytes before that point */
    size_t off = 0;
    unsigned seed = u->seed;
    while (off < u->body_len) {
        unsigned r = next(&seed);
        size_t k = 1 + (r & 1 ? (r >> 1) % 16 : (r >> 1) % 4096);
        if (k > u->body_len - off)
            k = u->body_len - off;
        snprintf(line, sizeof line, upper ? "%zX\r\n" : "%zx\r\n", k);
        put(u, line);
        memcpy(u->wire + u->wire_len, u->body + off, k);
        u->wire_len += k;
        off += k;
        put(u, "\r\n");
    }
    put(u, "0\r\n\r\n");
    if (!u->cut)
        return;
    size_t end = start + (u->wire_len - start) * where / 256;
    /* walk the chunks again up to end */
    u->delivered = 0;
    for (size_t p = start; p < end;) {
        size_t k = strtoul((const char *)u->wire + p, NULL, 16);
        p = (size_t)((uint8_t *)memchr(u->wire + p, '\n', u->wire_len - p) - u->wire) + 1;
        u->delivered += p < end ? (end - p < k ? end - p : k) : 0;
        p += k + 2;
        if (!k)
            break;
    }
    u->wire_len = end;
    u->truncated = true;
}

/* ---- the reference --------------------------------------------------------- */

struct want { int rc; const uint8_t *body; size_t len; int alt; };

static uint8_t refout[DEFAULT_MAX_BODY + 1];

static int ref_inflate(const uint8_t *in, size_t n, int wbits, size_t max, size_t *len)
{
    z_stream z = { 0 };
    if (inflateInit2(&z, wbits) != Z_OK)
        abort();
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)n;
    z.next_out = refout;
    z.avail_out = (uInt)(max + 1);        /* one byte more shows a body over max */
    int zr = inflate(&z, Z_FINISH);
    *len = z.total_out;
    inflateEnd(&z);
    if (zr == Z_STREAM_END)
        return *len > max ? -EMSGSIZE : 0;
    if (zr == Z_BUF_ERROR && *len == max + 1)
        return -EMSGSIZE;                 /* no room left */
    return -EPROTO;                       /* bad data, or wants input there is none of */
}

/* whether zlib finds bad data within the first n bytes of the stream
 * (decoding as they come finds it there, before more bytes arrive) */
static bool ref_corrupt_within(const uint8_t *in, size_t n, int wbits, size_t max)
{
    z_stream z = { 0 };
    if (inflateInit2(&z, wbits) != Z_OK)
        abort();
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)n;
    z.next_out = refout;
    z.avail_out = (uInt)(max + 1);
    int zr = inflate(&z, Z_NO_FLUSH);
    inflateEnd(&z);
    return zr == Z_DATA_ERROR || zr == Z_NEED_DICT || zr == Z_STREAM_ERROR;
}

/* the windowBits a Content-Encoding value asks for, 0: none we decode */
static int coding_bits(const char *v)
{
    if (!v)
        return 0;
    v += strspn(v, " \t");               /* a field value has no OWS around it */
    size_t n = strcspn(v, " \t");
    if (v[n + strspn(v + n, " \t")])
        return 0;                         /* more than one token */
    return n == 4 && !strncasecmp(v, "gzip", 4)      ? 31
         : n == 7 && !strncasecmp(v, "deflate", 7) ? 15 : 0;
}

static struct want reference(const struct run *u)
{
    size_t max = u->max_body ? u->max_body : DEFAULT_MAX_BODY;
    int wbits = coding_bits(u->coding->name);
    if (u->delivered > max) {
        /* the body is decoded as it comes: bad data before the limit may
         * be seen first, depending on where the reads split the body */
        bool bad = wbits && !u->no_decompress && u->body_len &&
                   ref_corrupt_within(u->body, u->body_len < max ? u->body_len : max, wbits, max);
        return (struct want){ .rc = -EMSGSIZE, .alt = bad ? -EPROTO : 0 };
    }
    if (u->truncated) {
        /* decoding as it comes may hit the decoded limit before the cut */
        size_t len, n = u->delivered < u->body_len ? u->delivered : u->body_len;
        bool over = wbits && !u->no_decompress && n &&
                    ref_inflate(u->body, n, wbits, max, &len) == -EMSGSIZE;
        return (struct want){ .rc = -EPROTO, .alt = over ? -EMSGSIZE : 0 };
    }
    if (!wbits || !u->body_len || u->no_decompress)
        return (struct want){ 0, u->body, u->body_len, 0 };
    size_t len;
    int rc = ref_inflate(u->body, u->body_len, wbits, max, &len);
    return (struct want){ rc, refout, rc ? 0 : len, 0 };
}

/* ---- weft -------------------------------------------------------------------- */

/* the server: the response in pieces of 1..16 or 1..65536 bytes (or all
 * at once), letting the reader run between them */
static int server(void *arg)
{
    struct run *u = arg;
    unsigned seed = u->seed * 7 + 1;
    bool whole = (u->seed & 3) == 0;
    for (size_t off = 0; off < u->wire_len;) {
        unsigned r = next(&seed);
        size_t k = whole ? u->wire_len : 1 + (r & 1 ? (r >> 1) % 16 : (r >> 1) % 65536);
        if (k > u->wire_len - off)
            k = u->wire_len - off;
        if (weft_conn_write_all(u->w, u->wire + off, k))
            return 0;                     /* the client stopped reading */
        off += k;
        weft_yield();
    }
    weft_conn_shutdown(u->w);
    return 0;
}

static void check(const struct run *u, const struct want *want, int rc,
                  const weft_http_response *r, bool keep, size_t held)
{
    size_t max = u->max_body ? u->max_body : DEFAULT_MAX_BODY;
    const char *bad = NULL;
    if (rc != want->rc && !(want->alt && rc == want->alt))
        bad = "code";
    else if (rc && !r->error[0])
        bad = "no reason";
    else if (!rc && r->status != 200)
        bad = "status";
    else if (!rc && (r->body_len != want->len || memcmp(r->body ? r->body : "", want->body,
                                                        want->len)))
        bad = "body";
    else if (!rc && r->body && r->body[r->body_len])
        bad = "no NUL";
    else if (!rc && keep != (u->framing != CLOSE))
        bad = "keep-alive";
    else if (held > 2 * u->delivered + max + OVERHEAD)
        bad = "memory";
    if (!bad)
        return;
    fprintf(stderr,
            "decoded: %s: framing %d%s, coding %s/%d, max_body %zu, body %zu (delivered %zu), "
            "plain %zu\n  weft: %d (%s) \"%s\", status %d, %zu bytes, keep %d, held %zu\n"
            "  want: %d, %zu bytes\n",
            bad, u->framing, u->truncated ? " cut" : "", u->coding->name ? u->coding->name : "-",
            u->coding->wbits, u->max_body, u->body_len, u->delivered, u->plain_len, rc,
            weft_strerror(rc), r->error, r->status, r->body_len, keep, held, want->rc,
            want->len);
    abort();
}

static int one(void *arg)
{
    struct run *u = arg;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
        abort();
    weft_net_opts o = { .read_timeout = WEFT_SEC, .write_timeout = WEFT_SEC };
    weft_conn *c;
    if (weft__fd_own(sv[0]) || weft__conn_new(&c, sv[0], &o) || weft__fd_own(sv[1]) ||
        weft__conn_new(&u->w, sv[1], &o))
        abort();
    static weft_tls_ctx *tls;             /* made once: OpenSSL contexts are slow to make */
    if (!tls)
        tls = weft_tls_client_new();
    weft_http_client_opts co = { .max_body = u->max_body, .no_decompress = u->no_decompress,
                                 .tls = tls };
    weft_http_client *cl = weft_http_client_new(&co);
    weft_group *g = weft_group_new();
    if (!cl || !g || weft_spawn(g, server, u, "server"))
        abort();
    struct want want = reference(u);
    size_t before = atomic_load(&live);
    atomic_store(&peak, before);
    weft_http_response r;
    bool keep = false;
    int rc = weft__http_read_response(cl, c, false, &r, &keep);
    check(u, &want, rc, &r, keep, atomic_load(&peak) - before);
    weft_http_response_free(&r);
    weft_conn_close(c);                   /* a server still writing gets -EPIPE */
    weft_group_wait(g);
    weft_conn_close(u->w);
    weft_http_client_free(cl, 0);
    return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    setenv("WEFT_STALL_MS", "0", 0);
    weft_set_allocator(&counting);        /* before any loop runs */
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 8 || size > 8 + 4096)
        return 0;
    static uint8_t plain[MAX_DECODED], body[MAX_WIRE], wire[3 * MAX_WIRE];
    static struct run u;
    const uint8_t *p = data + 8;
    size_t n = size - 8;
    u = (struct run){ .framing = data[0] % 3, .cut = (data[0] & 0x1c) == 0x1c,
                      .coding = &codings[data[1] % (sizeof codings / sizeof *codings)],
                      .no_decompress = (data[5] & 0x30) == 0x30, .seed = data[6],
                      .plain = plain, .body = body, .wire = wire };
    int level = (data[1] >> 4) % 10, strategy = strategies[(data[0] >> 5) % 5];
    /* max_body: 0 (the default), 1..63, 64..4096 by 64, 256..33022 by 2,
     * 256..262392 by 16 */
    uint8_t m = data[3];
    size_t hi = (size_t)(m & 0x3f) << 8 | data[4];
    u.max_body = m < 0x40 ? m : m < 0x80 ? (size_t)(m - 0x40) * 64 + 64
               : m < 0xc0 ? hi * 2 + 256 : hi * 16 + 256;
    /* the payload 1, 2, 4 ... 2^15 times, up to MAX_DECODED */
    size_t reps = (size_t)1 << (data[5] & 15);
    if (n && reps > MAX_DECODED / n)
        reps = MAX_DECODED / n;
    for (size_t i = 0; i < reps; i++)
        memcpy(plain + i * n, p, n);
    u.plain_len = n * reps;
    u.body_len = encode(u.coding, level, strategy, plain, u.plain_len, body, MAX_WIRE / 2);
    corrupt(&u, data[2], data[7], level, strategy);
    frame(&u, data[7], data[4] & 1);
    /* zlib's input and output in slices of at most this many bytes */
    static const size_t slices[] = { UINT_MAX, UINT_MAX, 4093, 61 };
    weft__zlib_slice = slices[data[5] >> 6];
    if (weft_main(one, &u) != 0)
        abort();
    weft__zlib_slice = UINT_MAX;
    return 0;
}
