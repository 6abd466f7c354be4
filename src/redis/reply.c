/*
 * RESP2 replies through hiredis 0.14's reader, with what it lacks.
 *
 * hiredis parses; weft builds. The reader is given weft's own object
 * functions (redisReplyObjectFunctions), so every node of a reply is
 * weft's memory from the start: a reply that is not an array is built
 * directly as its final block (the struct, then its string); an array is
 * built as a tree (each array's elements one calloc'd run of structs, each
 * string its own allocation) and packed on completion into one block,
 * structs first, strings after them, so weft_redis_reply_free is one free.
 *
 * hiredis 0.14.1 checks the protocol itself: type bytes, numbers
 * (string2ll: integers, bulk lengths and array sizes are canonical
 * decimals in range; nil only as -1), nesting past 7 levels (rstack has 9
 * entries): its errors are -EPROTO with its message. What it lacks, the
 * callbacks add from the reader's public fields (read.h: buf, pos, len,
 * rstack):
 *  - limits: max_reply bounds the string bytes (bulk, status and error) of
 *    one reply, counted as each is created; max_elements the elements of
 *    all its arrays together, counted in createArray before the element
 *    run is allocated. Over either: -EMSGSIZE.
 *  - a bulk's declared length before its bytes arrive: hiredis waits until
 *    the whole bulk is in its buffer, so when a reply is left incomplete
 *    with a bulk header complete in the buffer, that length is checked
 *    against what is left of max_reply at once (check_pending); an
 *    incomplete status or error line is bounded the same way, and an
 *    incomplete number line at 20 characters (the longest long long), as
 *    hiredis has no bound on a line. So hiredis's buffer holds at most one
 *    incomplete reply item of max_reply bytes, plus what the caller fed
 *    and has not asked for yet.
 *  - a bulk must end in CRLF (hiredis skips the two bytes unread).
 * Each check gives the same result whether the bytes come at once or in
 * pieces: a check on an incomplete item only refuses what the complete
 * item would be refused for.
 *
 * A callback that refuses returns NULL with rd->err set; hiredis then
 * reports "out of memory" and frees the partial tree through freeObject,
 * and weft__redis_reader_get returns rd->err instead.
 *
 * hiredis's buffer (an sds, libc's malloc) is hiredis's: with the checks
 * above it is at most about max_reply + 1 KiB (hiredis trims consumed
 * bytes past 1 KiB) + the bytes fed since the last get, and sds
 * preallocates up to twice that below 1 MiB and 1 MiB more above; hiredis
 * frees it when it is empty and has more than 16 KiB spare
 * (REDIS_READER_MAX_BUF).
 */
#include <hiredis/read.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

struct weft__redis_reader {
    redisReader *hr;
    size_t max_reply, max_elements;
    size_t bytes, elements;           /* of the reply being read */
    int err;                          /* sticky */
    char errmsg[128];
};

static void *refuse(struct weft__redis_reader *rd, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void *refuse(struct weft__redis_reader *rd, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rd->errmsg, sizeof rd->errmsg, fmt, ap);
    va_end(ap);
    rd->err = err;
    return NULL;
}

/* RESP's number as Redis writes it and hiredis's string2ll reads it:
 * -?[0-9]{1,19}, no leading zero, no "-0", in a long long. 0 or -1. */
static int strict_ll(const char *s, size_t n, long long *v)
{
    bool neg = n && *s == '-';
    s += neg;
    n -= neg;
    if (n == 0 || n > 19 || (s[0] == '0' && (n > 1 || neg)))
        return -1;
    unsigned long long x = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        x = x * 10 + (unsigned)(s[i] - '0');
    }
    if (x > (unsigned long long)LLONG_MAX + neg)
        return -1;
    *v = neg ? (long long)(0 - x) : (long long)x;
    return 0;
}

/* The first CRLF in s[0..n), as hiredis's seekNewline finds it. */
static const char *crlf(const char *s, size_t n)
{
    for (const char *p = s, *end = s + n; (p = memchr(p, '\r', (size_t)(end - p))); p++)
        if (p + 1 < end && p[1] == '\n')
            return p;
    return NULL;
}

/* The node the reply tree gets for task t: the root (its own allocation,
 * with room for `str` bytes and a NUL after it), or its slot in the
 * parent's element run. */
static weft_redis_reply *node(struct weft__redis_reader *rd, const redisReadTask *t, size_t str)
{
    weft_redis_reply *n;
    if (!t->parent) {
        n = weft__malloc(sizeof *n + str);
        if (!n)
            return refuse(rd, -ENOMEM, "out of memory");
        memset(n, 0, sizeof *n);
    } else {
        n = &((weft_redis_reply *)t->parent->obj)->element[t->idx];
    }
    n->type = t->type;
    return n;
}

static void free_contents(weft_redis_reply *n)
{
    if (n->type == WEFT_REDIS_ARRAY) {
        for (size_t i = 0; i < n->elements && n->element; i++)
            free_contents(&n->element[i]);
        weft__free(n->element);
    } else {
        weft__free((char *)n->str);
    }
}

/* Only ever called on a root (hiredis frees nothing else). A root that is
 * not an array holds its string itself. */
static void free_object(void *obj)
{
    weft_redis_reply *n = obj;
    if (n->type == WEFT_REDIS_ARRAY)
        free_contents(n);
    weft__free(n);
}

static void *count_bytes(struct weft__redis_reader *rd, size_t len)
{
    if (len > rd->max_reply - rd->bytes)
        return refuse(rd, -EMSGSIZE, "reply over max_reply (%zu bytes)", rd->max_reply);
    rd->bytes += len;
    return rd;
}

static void *create_string(const redisReadTask *t, char *str, size_t len)
{
    struct weft__redis_reader *rd = t->privdata;
    if (!count_bytes(rd, len))
        return NULL;
    /* hiredis has the whole bulk and its CRLF in its buffer by now */
    if (t->type == REDIS_REPLY_STRING && (str[len] != '\r' || str[len + 1] != '\n'))
        return refuse(rd, -EPROTO, "Protocol error: bulk not ended by CRLF");
    weft_redis_reply *n = node(rd, t, t->parent ? 0 : len + 1);
    if (!n)
        return NULL;
    char *s = t->parent ? weft__malloc(len + 1) : (char *)(n + 1);
    if (!s)
        return refuse(rd, -ENOMEM, "out of memory");
    memcpy(s, str, len);
    s[len] = 0;
    n->str = s;
    n->len = len;
    return n;
}

static void *create_array(const redisReadTask *t, int elements)
{
    struct weft__redis_reader *rd = t->privdata;
    size_t v = (size_t)elements;      /* 0..INT_MAX: hiredis checked */
    if (v > rd->max_elements - rd->elements)
        return refuse(rd, -EMSGSIZE, "reply over %zu array elements", rd->max_elements);
    /* the elements' own memory counts against max_reply too: a 12-byte
     * header must not make us hold more than the limit */
    size_t cost = v * sizeof(weft_redis_reply);
    if (cost > rd->max_reply - rd->bytes)
        return refuse(rd, -EMSGSIZE, "reply over max_reply (%zu bytes)", rd->max_reply);
    rd->bytes += cost;
    rd->elements += v;
    weft_redis_reply *el = NULL;
    if (v > 0 && !(el = weft__calloc(v, sizeof *el)))
        return refuse(rd, -ENOMEM, "out of memory");
    weft_redis_reply *n = node(rd, t, 0);
    if (!n) {
        weft__free(el);
        return NULL;
    }
    n->elements = v;
    n->element = el;
    return n;
}

static void *create_integer(const redisReadTask *t, long long value)
{
    weft_redis_reply *n = node(t->privdata, t, 0);
    if (n)
        n->integer = value;
    return n;
}

static void *create_nil(const redisReadTask *t)
{
    weft_redis_reply *n = node(t->privdata, t, 0);
    if (n)
        n->type = WEFT_REDIS_NIL;
    return n;
}

static redisReplyObjectFunctions functions = {
    create_string, create_array, create_integer, create_nil, free_object,
};

struct weft__redis_reader *weft__redis_reader_new(size_t max_reply, size_t max_elements)
{
    struct weft__redis_reader *rd = weft__calloc(1, sizeof *rd);
    if (!rd)
        return NULL;
    rd->hr = redisReaderCreateWithFunctions(&functions);
    if (!rd->hr) {
        weft__free(rd);
        errno = ENOMEM;
        return NULL;
    }
    rd->hr->privdata = rd;            /* redisReaderSetPrivdata casts it to int */
    rd->max_reply = max_reply;
    rd->max_elements = max_elements;
    return rd;
}

void weft__redis_reader_free(struct weft__redis_reader *rd)
{
    if (!rd)
        return;
    redisReaderFree(rd->hr);
    weft__free(rd);
}

int weft__redis_reader_feed(struct weft__redis_reader *rd, const char *buf, size_t len)
{
    if (rd->err)
        return rd->err;
    if (redisReaderFeed(rd->hr, buf, len) != REDIS_OK) {
        snprintf(rd->errmsg, sizeof rd->errmsg, "%s", rd->hr->errstr);
        return rd->err = -ENOMEM;
    }
    return 0;
}

/* Counts the nodes below n (and n) and its string bytes with their NULs. */
static void measure(const weft_redis_reply *n, size_t *nodes, size_t *bytes)
{
    ++*nodes;
    if (n->type == WEFT_REDIS_ARRAY)
        for (size_t i = 0; i < n->elements; i++)
            measure(&n->element[i], nodes, bytes);
    else if (n->str)
        *bytes += n->len + 1;
}

/* Copies src into dst, taking element runs from *slots and string room
 * from *strs. */
static void pack(const weft_redis_reply *src, weft_redis_reply *dst, weft_redis_reply **slots,
                 char **strs)
{
    *dst = *src;
    if (src->type == WEFT_REDIS_ARRAY) {
        dst->element = src->elements ? *slots : NULL;
        *slots += src->elements;
        for (size_t i = 0; i < src->elements; i++)
            pack(&src->element[i], &dst->element[i], slots, strs);
    } else if (src->str) {
        memcpy(*strs, src->str, src->len + 1);
        dst->str = *strs;
        *strs += src->len + 1;
    }
}

/* An array tree into one block: -ENOMEM or 0 and *out. */
static int packed(struct weft__redis_reader *rd, weft_redis_reply *root, weft_redis_reply **out)
{
    size_t nodes = 0, bytes = 0;
    measure(root, &nodes, &bytes);
    /* nodes and bytes are bounded by max_elements and max_reply, which the
     * caller may have set to SIZE_MAX: the sum is checked */
    size_t total;
    if (__builtin_mul_overflow(nodes, sizeof *root, &total) ||
        __builtin_add_overflow(total, bytes, &total))
        total = SIZE_MAX;
    weft_redis_reply *blk = total == SIZE_MAX ? NULL : weft__malloc(total);
    if (!blk) {
        free_object(root);
        refuse(rd, -ENOMEM, "out of memory");
        return -ENOMEM;
    }
    weft_redis_reply *slots = blk + 1;
    char *strs = (char *)(blk + nodes);
    pack(root, blk, &slots, &strs);
    free_object(root);
    *out = blk;
    return 0;
}

/* The item the reader stopped in, when it cannot complete within the
 * limits: its bulk length once its header is in, or the length so far of
 * a line. 0 or the error (rd->err). */
static int check_pending(struct weft__redis_reader *rd)
{
    const redisReader *r = rd->hr;
    if (r->ridx < 0 || r->rstack[r->ridx].type < 0)
        return 0;                     /* between items: nothing buffered */
    const char *s = r->buf + r->pos;
    size_t avail = r->len - r->pos;
    const char *cr = crlf(s, avail);
    bool line = cr != NULL;
    size_t left = rd->max_reply - rd->bytes;
    long long declared;
    switch (r->rstack[r->ridx].type) {
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
        /* at least avail - 1 bytes of text (the last may be the CR) */
        if (avail > 1 && avail - 1 > left)
            refuse(rd, -EMSGSIZE, "reply over max_reply (%zu bytes)", rd->max_reply);
        break;
    case REDIS_REPLY_STRING:
        if (!line) {
            if (avail > 21)
                refuse(rd, -EPROTO, "Protocol error: bad bulk length");
        } else if (strict_ll(s, (size_t)(cr - s), &declared) || declared < 0) {
            refuse(rd, -EPROTO, "Protocol error: bad bulk length");
        } else if ((unsigned long long)declared > left) {
            refuse(rd, -EMSGSIZE, "reply over max_reply (%zu bytes)", rd->max_reply);
        }
        break;
    default:                          /* an integer or an array header */
        if (avail > 21)
            refuse(rd, -EPROTO, "Protocol error: bad %s",
                   r->rstack[r->ridx].type == REDIS_REPLY_INTEGER ? "integer" : "array length");
        break;
    }
    return rd->err;
}

int weft__redis_reader_get(struct weft__redis_reader *rd, weft_redis_reply **out)
{
    *out = NULL;
    if (rd->err)
        return rd->err;
    void *obj;
    if (redisReaderGetReply(rd->hr, &obj) != REDIS_OK) {
        if (!rd->err) {               /* hiredis's own error */
            snprintf(rd->errmsg, sizeof rd->errmsg, "%s", rd->hr->errstr);
            rd->err = rd->hr->err == REDIS_ERR_OOM ? -ENOMEM : -EPROTO;
        }
        return rd->err;
    }
    if (!obj)
        return check_pending(rd);
    rd->bytes = rd->elements = 0;
    weft_redis_reply *root = obj;
    if (root->type != WEFT_REDIS_ARRAY) {
        *out = root;                  /* built as its final block */
        return 1;
    }
    int rc = packed(rd, root, out);
    return rc ? rc : 1;
}

const char *weft__redis_reader_error(const struct weft__redis_reader *rd)
{
    return rd->errmsg;
}

void weft_redis_reply_free(weft_redis_reply *reply)
{
    weft__free(reply);
}
