/* libFuzzer target: hostile RESP through weft's reply reader. The first
 * two bytes pick the limits (max_reply, max_elements) and a seed for the
 * splits; the rest is what a server sent. Fed whole, then in random
 * pieces: the replies (compared byte for byte) and the error that ends
 * the stream must be the same; every reply keeps within the limits, its
 * strings are NUL-terminated, and nothing leaks (LeakSanitizer). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis/internal.h"

struct out { char *p; size_t len, cap; };

static void put(struct out *o, const void *s, size_t n)
{
    if (o->len + n > o->cap) {
        o->cap = (o->len + n) * 2;
        o->p = realloc(o->p, o->cap);
        if (!o->p)
            abort();
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

/* serializes r; adds its string bytes and elements to the counts */
static void dump(struct out *o, const weft_redis_reply *r, size_t *bytes, size_t *elements)
{
    put(o, &r->type, sizeof r->type);
    switch (r->type) {
    case WEFT_REDIS_STRING:
    case WEFT_REDIS_STATUS:
    case WEFT_REDIS_ERROR:
        if (!r->str || r->str[r->len] != 0)
            abort();
        put(o, &r->len, sizeof r->len);
        put(o, r->str, r->len);
        *bytes += r->len;
        break;
    case WEFT_REDIS_INTEGER:
        put(o, &r->integer, sizeof r->integer);
        break;
    case WEFT_REDIS_NIL:
        break;
    case WEFT_REDIS_ARRAY:
        put(o, &r->elements, sizeof r->elements);
        *elements += r->elements;
        if (r->elements && !r->element)
            abort();
        for (size_t i = 0; i < r->elements; i++)
            dump(o, &r->element[i], bytes, elements);
        break;
    default:
        abort();
    }
}

static uint32_t rnd(uint32_t *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 8;
}

/* Reads in[0..n) in pieces (all of it when seed is 0); the replies go to
 * o. The error that ended it, or 0. */
static int run(const uint8_t *in, size_t n, size_t max_reply, size_t max_el, uint32_t seed,
               struct out *o)
{
    struct weft__redis_reader *rd = weft__redis_reader_new(max_reply, max_el);
    if (!rd)
        abort();
    int rc = 0;
    for (size_t at = 0; at < n && rc == 0;) {
        size_t k = seed ? 1 + rnd(&seed) % 16 : n;
        if (k > n - at)
            k = n - at;
        rc = weft__redis_reader_feed(rd, (const char *)in + at, k);
        at += k;
        weft_redis_reply *r = NULL;
        while (rc == 0 && (rc = weft__redis_reader_get(rd, &r)) == 1) {
            size_t bytes = 0, elements = 0;
            dump(o, r, &bytes, &elements);
            if (bytes > max_reply || elements > max_el)
                abort();
            weft_redis_reply_free(r);
            rc = 0;
        }
        if (r)
            abort();                  /* NULL after 0 and after every error */
    }
    if (rc && !weft__redis_reader_error(rd)[0])
        abort();                      /* an error says what */
    weft__redis_reader_free(rd);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    static const size_t reply_limits[] = { 0, 3, 16, 100, 1 << 20 };
    static const size_t element_limits[] = { 0, 2, 5, 1000 };
    size_t max_reply = reply_limits[data[0] % 5];
    size_t max_el = element_limits[(data[0] / 5) % 4];
    uint32_t seed = data[1] | 1u;
    struct out whole = { 0 }, split = { 0 };
    int a = run(data + 2, size - 2, max_reply, max_el, 0, &whole);
    int b = run(data + 2, size - 2, max_reply, max_el, seed, &split);
    if (a != b || whole.len != split.len || (whole.len && memcmp(whole.p, split.p, whole.len))) {
        fprintf(stderr, "whole: %d, %zu bytes of replies; split: %d, %zu bytes\n", a, whole.len,
                b, split.len);
        abort();
    }
    if (a != 0 && a != -EPROTO && a != -EMSGSIZE)
        abort();
    free(whole.p);
    free(split.p);
    return 0;
}
