/*
 * Timers: a 4-ary min-heap of (deadline, timer) pairs.
 *
 * Almost every timer is a deadline that is cancelled before it fires, so
 * arm and cancel are O(log4 n) with no allocation (the array only grows,
 * to the high-water mark of live timers), and each timer remembers its
 * slot for O(1) lookup on cancel. Keys sit in the array beside the pointer
 * so sifting touches one cache line per level. A million live timers is
 * ten levels.
 */
#include <errno.h>

#include "internal.h"

static inline void place(weft__heap *h, uint32_t i, struct weft__hent e)
{
    h->v[i] = e;
    e.t->idx = i;
}

static void sift_up(weft__heap *h, uint32_t i, struct weft__hent e)
{
    while (i > 0) {
        uint32_t p = (i - 1) / 4;
        if (h->v[p].when <= e.when)
            break;
        place(h, i, h->v[p]);
        i = p;
    }
    place(h, i, e);
}

static void sift_down(weft__heap *h, uint32_t i, struct weft__hent e)
{
    for (;;) {
        uint32_t c = 4 * i + 1, end = c + 4, best = i;
        weft_time bw = e.when;
        if (end > h->n)
            end = h->n;
        for (; c < end; c++)
            if (h->v[c].when < bw) {
                bw = h->v[c].when;
                best = c;
            }
        if (best == i)
            break;
        place(h, i, h->v[best]);
        i = best;
    }
    place(h, i, e);
}

int weft__timer_arm(weft__heap *h, weft__timer *t, weft_time when)
{
    if (t->idx != WEFT__TIMER_IDLE)
        weft__timer_cancel(h, t);
    if (unlikely(h->n == h->cap)) {
        uint32_t cap = h->cap ? h->cap * 2 : 256;
        void *v = weft__realloc(h->v, cap * sizeof *h->v);
        if (!v)
            return -ENOMEM;
        h->v = v;
        h->cap = cap;
    }
    t->when = when;
    sift_up(h, h->n++, (struct weft__hent){ when, t });
    return 0;
}

void weft__timer_cancel(weft__heap *h, weft__timer *t)
{
    uint32_t i = t->idx;
    if (i == WEFT__TIMER_IDLE)
        return;
    t->idx = WEFT__TIMER_IDLE;
    struct weft__hent last = h->v[--h->n];
    if (i == h->n)
        return;
    if (i > 0 && last.when < h->v[(i - 1) / 4].when)
        sift_up(h, i, last);
    else
        sift_down(h, i, last);
}

weft_time weft__timer_next(const weft__heap *h)
{
    return h->n ? h->v[0].when : WEFT_FOREVER;
}

int weft__timer_run(weft__heap *h, weft_time now)
{
    int n = 0;
    while (h->n && h->v[0].when <= now) {
        weft__timer *t = h->v[0].t;
        weft__timer_cancel(h, t);
        t->fire(t);
        n++;
    }
    return n;
}

void weft__heap_free(weft__heap *h)
{
    weft__free(h->v);
    h->v = NULL;
    h->n = h->cap = 0;
}
