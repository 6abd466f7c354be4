/*
 * Task records: allocation, naming, reaping.
 *
 * Records come from per-loop arenas (chunks that double from 64 records
 * to 4 MiB, the big ones backed by transparent huge pages where the system
 * allows, so a million tasks cost a hundred page faults, not 60,000) and
 * go back to a per-loop free list. A record lives until its loop ends,
 * so a late cross-thread wake-up that names a finished task reads valid
 * memory and is dropped by its sequence number. The stack is separate:
 * taken at first run (loop.c), returned here when the task dies.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "internal.h"

#ifdef WEFT_TSAN
#include <sanitizer/tsan_interface.h>
#endif

#define ARENA_MIN (64 * sizeof(weft_task))
#define ARENA_MAX ((size_t)4 << 20)

struct weft__arena {
    struct weft__arena *next;
    size_t size;
};

static weft_task *arena_take(weft__loop *l)
{
    if (l->arena_left < sizeof(weft_task)) {
        size_t size = l->arenas ? l->arenas->size * 2 : ARENA_MIN;
        if (size > ARENA_MAX)
            size = ARENA_MAX;
        struct weft__arena *a = weft__malloc(size);
        if (!a)
            return NULL;
        if (size == ARENA_MAX)
            madvise((void *)(((uintptr_t)a + 4095) & ~(uintptr_t)4095),
                    size - 4096, MADV_HUGEPAGE);
        a->size = size;
        a->next = l->arenas;
        l->arenas = a;
        l->arena_next = (char *)(a + 1);
        l->arena_left = size - sizeof *a;
        l->arena_left -= l->arena_left % sizeof(weft_task);
    }
    weft_task *t = (weft_task *)l->arena_next;
    l->arena_next += sizeof(weft_task);
    l->arena_left -= sizeof(weft_task);
    return t;
}

void weft__tasks_free(weft__loop *l)
{
    struct weft__arena *a;
    while ((a = l->arenas)) {
        l->arenas = a->next;
        weft__free(a);
    }
    l->free_tasks = NULL;
}

weft_task *weft__task_new(weft__loop *l, weft_fn fn, void *arg, const char *name,
                          void *site)
{
    if (weft__stacks_reserve(&l->stacks, l->unstarted + 1) < 0)
        return NULL;
    weft_task *t = l->free_tasks;
    uint32_t seq = 0;
    if (t) {
        l->free_tasks = t->next;
        seq = t->seq;                     /* keeps stale wake-ups stale */
        memset(t, 0, offsetof(weft_task, rnext));   /* not the inbox node: see internal.h */
    } else if ((t = arena_take(l))) {
        memset(t, 0, sizeof *t);          /* new: no other thread knows it */
    } else {
        return NULL;
    }
    t->seq = seq + 1;
    t->loop = l;
    t->fn = fn;
    t->arg = arg;
    t->spawn_site = site;
    t->base_deadline = WEFT_FOREVER;
    t->timer.idx = WEFT__TIMER_IDLE;
    size_t n = name ? strnlen(name, sizeof t->name - 1) : 0;
    if (name)
        memcpy(t->name, name, n);
    else
        memcpy(t->name, "task", (n = 4));
    t->name[n] = 0;
    /* live-task list, for the dump */
    t->all_next = l->all;
    if (l->all)
        l->all->all_prev = t;
    l->all = t;
    l->ntasks++;
    l->unstarted++;
    return t;
}

/* Back to the free list; the record's memory stays valid (see above). */
static void release(weft__loop *l, weft_task *t)
{
    if (t->all_prev)
        t->all_prev->all_next = t->all_next;
    else
        l->all = t->all_next;
    if (t->all_next)
        t->all_next->all_prev = t->all_prev;
    l->ntasks--;
    t->next = l->free_tasks;
    l->free_tasks = t;
}

/* Frees the stack of the task that just died. Runs on another stack. */
void weft__task_reap(weft__loop *l)
{
    weft_task *t = l->dead;
    l->dead = NULL;
    weft__stack_put(&l->stacks, t->stack);
#ifdef WEFT_TSAN
    __tsan_destroy_fiber(t->tsan_fiber);
    t->tsan_fiber = NULL;
#endif
    if (t != l->root)
        release(l, t);
    t->stack = NULL;
}

weft_task *weft_self(void) { return weft__self(); }

const char *weft_task_name(const weft_task *t) { return t ? t->name : "?"; }

int weft_task_cancel(weft_task *t)
{
    weft__loop *l = weft__cur_loop;
    if (!t)
        return -EINVAL;
    if (!l)
        return -EPERM;
    if (t->loop != l)
        return -EXDEV;
    weft__cancel(t, false);
    return 0;
}

bool weft_cancelled(void)
{
    weft_task *t = weft__self();
    return t && t->cancelled;
}
