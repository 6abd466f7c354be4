/*
 * Task stacks.
 *
 * Stacks are carved from slabs of 256 slots reserved with one
 * mmap(MAP_NORESERVE): address space is free, and the kernel commits a page
 * only when a task touches it, so an idle task costs the pages it used
 * (usually one). A slab is never unmapped while its loop lives; freed
 * stacks go to a LIFO "hot" list so the next task runs on warm memory, and
 * beyond 256 hot stacks they are trimmed with MADV_DONTNEED onto a "cold"
 * list.
 *
 * Slab layout (grows up):
 *
 *   [lead page][slot 0][slot 1]...[slot 255]
 *   slot i: [guard page or usable][ usable ... ][16-byte canary of slot i+1]
 *
 * The canary of slot i lives in the top 16 bytes of slot i-1 (or the lead
 * page for slot 0): the first thing an overflow of slot i clobbers, and a
 * page that is committed anyway, so canaries cost no memory. A guard page
 * (PROT_NONE) sits at the bottom of each slot while the process has map
 * count headroom (see core.h); guards are made once and kept when the
 * stack is pooled.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <valgrind/valgrind.h>

#include "internal.h"

#define SLAB_SLOTS 256
#define MAX_HOT 256

struct weft__slab {
    struct weft__slab *next;
    char *base;
    size_t len;
    unsigned used;
    weft__stack st[SLAB_SLOTS];
};

static size_t page_size;
static _Atomic long guards_left = -1;     /* process-wide guard budget */
static pthread_once_t budget_once = PTHREAD_ONCE_INIT;

static long read_long(const char *path, long dflt)
{
    FILE *f = fopen(path, "re");
    long v = dflt;
    if (f) {
        if (fscanf(f, "%ld", &v) != 1)
            v = dflt;
        fclose(f);
    }
    return v;
}

static long count_maps(void)
{
    FILE *f = fopen("/proc/self/maps", "re");
    long n = 0;
    int c;
    if (!f)
        return 0;
    while ((c = getc_unlocked(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

/* Keep half of vm.max_map_count for everything else; each guard splits a
 * mapping into up to two more VMAs. */
static void budget_init(void)
{
    page_size = (size_t)sysconf(_SC_PAGESIZE);
    long max = read_long("/proc/sys/vm/max_map_count", 65530);
    long left = (max / 2 - count_maps()) / 2;
    const char *e = getenv("WEFT_STACK_GUARDS");   /* a lower cap, for tests */
    if (e && atol(e) >= 0 && atol(e) < left)
        left = atol(e);
    atomic_store(&guards_left, left > 0 ? left : 0);
}

void weft__stacks_init(weft__stacks *s, size_t size)
{
    pthread_once(&budget_once, budget_init);   /* page_size too: loops start at once */
    size = (size + page_size - 1) & ~(page_size - 1);
    if (size < 16 * 1024)
        size = 16 * 1024;
    memset(s, 0, sizeof *s);
    s->size = size;
}

static int slab_new(weft__stacks *s)
{
    struct weft__slab *sl = weft__malloc(sizeof *sl);
    if (!sl)
        return -ENOMEM;
    sl->len = page_size + SLAB_SLOTS * s->size;
    sl->base = mmap(NULL, sl->len, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (sl->base == MAP_FAILED) {
        weft__free(sl);
        return -ENOMEM;
    }
    madvise(sl->base, sl->len, MADV_NOHUGEPAGE);
    sl->used = 0;
    sl->next = s->slabs;
    s->slabs = sl;
    s->avail += SLAB_SLOTS;
    return 0;
}

int weft__stacks_reserve(weft__stacks *s, size_t n)
{
    while (s->avail < n)
        if (slab_new(s) < 0)
            return -ENOMEM;
    return 0;
}

/* One guard from the process-wide budget, if any is left. The budget
 * never goes below zero: a loop that loses the race for the last guard
 * takes nothing (a fetch_sub would leave it at -1, and the guard given
 * back later would only bring it to 0: one guard lost for good). */
static bool take_guard(void)
{
    long left = atomic_load_explicit(&guards_left, memory_order_relaxed);
    while (left > 0)
        if (atomic_compare_exchange_weak(&guards_left, &left, left - 1))
            return true;
    return false;
}

static weft__stack *slot_new(weft__stacks *s)
{
    struct weft__slab *sl = s->slabs;
    unsigned i = sl->used++;
    weft__stack *st = &sl->st[i];
    char *slot = sl->base + page_size + (size_t)i * s->size;

    st->canary = (uint64_t *)(slot - 16);
    *st->canary = WEFT__CANARY;
    st->guarded = false;
    if (take_guard()) {
        if (mprotect(slot, page_size, PROT_NONE) == 0)
            st->guarded = true;
        else                              /* map count full: no guard made */
            atomic_fetch_add(&guards_left, 1);
    }
    st->lo = slot + (st->guarded ? page_size : 0);
    st->hi = slot + s->size - 16;
    st->vg_id = VALGRIND_STACK_REGISTER(st->lo, st->hi);
    st->dirty = false;
    return st;
}

weft__stack *weft__stack_get(weft__stacks *s)
{
    weft__stack *st;
    if (s->hot) {
        st = s->hot;
        s->hot = st->next;
        s->nhot--;
    } else if (s->cold) {
        st = s->cold;
        s->cold = st->next;
    } else {
        /* weft__stacks_reserve guaranteed a slab with a free slot */
        struct weft__slab **pp = &s->slabs;
        while ((*pp)->used == SLAB_SLOTS)
            pp = &(*pp)->next;
        struct weft__slab *sl = *pp;
        *pp = sl->next;                   /* move it to the front */
        sl->next = s->slabs;
        s->slabs = sl;
        st = slot_new(s);
    }
    s->avail--;
    return st;
}

void weft__stack_put(weft__stacks *s, weft__stack *st)
{
    s->avail++;
    if (s->nhot < MAX_HOT) {
        st->next = s->hot;
        s->hot = st;
        s->nhot++;
        return;
    }
    /* trim all but the top page, which holds the canary of the slot above */
    char *top_page = (char *)((uintptr_t)st->hi & ~(page_size - 1));
    if (top_page > st->lo)
        madvise(st->lo, top_page - st->lo, MADV_DONTNEED);
    st->next = s->cold;
    s->cold = st;
}

void weft__stacks_free(weft__stacks *s)
{
    struct weft__slab *sl, *next;
    for (sl = s->slabs; sl; sl = next) {
        next = sl->next;
        for (unsigned i = 0; i < sl->used; i++) {
            VALGRIND_STACK_DEREGISTER(sl->st[i].vg_id);
            if (sl->st[i].guarded)
                atomic_fetch_add(&guards_left, 1);
        }
        munmap(sl->base, sl->len);
        weft__free(sl);
    }
    memset(s, 0, sizeof *s);
}
