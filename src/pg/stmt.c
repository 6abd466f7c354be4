/*
 * The prepared statement cache of one connection: SQL (with the kinds of
 * its parameters, which fix the types it was prepared with) to the name
 * it was prepared under. Open addressing with linear probing over a
 * power-of-2 table at most half full; the least recently used statement
 * goes when max are cached (a linear scan, only on a miss when full).
 */
#include <errno.h>
#include <string.h>

#include "internal.h"

static uint32_t hash(const char *k, size_t n)
{
    uint32_t h = 2166136261u;                 /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)k[i]) * 16777619u;
    return h;
}

int weft__stmt_init(struct stmt_cache *sc, unsigned max)
{
    memset(sc, 0, sizeof *sc);
    sc->max = max ? max : 1;
    sc->cap = 16;
    while (sc->cap < 2 * sc->max)
        sc->cap *= 2;
    sc->slots = weft__calloc(sc->cap, sizeof *sc->slots);
    return sc->slots ? 0 : -ENOMEM;
}

void weft__stmt_free(struct stmt_cache *sc)
{
    for (unsigned i = 0; sc->slots && i < sc->cap; i++)
        weft__free(sc->slots[i].key);
    weft__free(sc->slots);
    sc->slots = NULL;
    sc->n = 0;
}

static struct stmt *probe(struct stmt_cache *sc, const char *key, size_t klen, uint32_t h)
{
    for (unsigned i = h & (sc->cap - 1);; i = (i + 1) & (sc->cap - 1)) {
        struct stmt *s = &sc->slots[i];
        if (!s->key || (s->hash == h && s->klen == klen && memcmp(s->key, key, klen) == 0))
            return s;
    }
}

struct stmt *weft__stmt_find(struct stmt_cache *sc, const char *key, size_t klen)
{
    struct stmt *s = probe(sc, key, klen, hash(key, klen));
    if (!s->key)
        return NULL;
    s->used = ++sc->tick;
    return s;
}

/* removes s and re-inserts the run after it, so probes stay unbroken */
void weft__stmt_forget(struct stmt_cache *sc, struct stmt *s)
{
    unsigned i = (unsigned)(s - sc->slots);
    weft__free(s->key);
    s->key = NULL;
    sc->n--;
    for (i = (i + 1) & (sc->cap - 1); sc->slots[i].key; i = (i + 1) & (sc->cap - 1)) {
        struct stmt t = sc->slots[i];
        sc->slots[i].key = NULL;
        *probe(sc, t.key, t.klen, t.hash) = t;
    }
}

struct stmt *weft__stmt_add(struct stmt_cache *sc, const char *key, size_t klen, unsigned *evicted)
{
    *evicted = 0;
    if (sc->n >= sc->max) {
        struct stmt *old = NULL;
        for (unsigned i = 0; i < sc->cap; i++)
            if (sc->slots[i].key && (!old || sc->slots[i].used < old->used))
                old = &sc->slots[i];
        *evicted = old->id;
        weft__stmt_forget(sc, old);
    }
    char *k = weft__malloc(klen);
    if (!k)
        return NULL;
    memcpy(k, key, klen);
    uint32_t h = hash(key, klen);
    struct stmt *s = probe(sc, key, klen, h);
    *s = (struct stmt){ .key = k, .klen = klen, .hash = h, .id = ++sc->next_id,
                        .used = ++sc->tick };
    sc->n++;
    return s;
}
