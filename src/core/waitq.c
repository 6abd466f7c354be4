/*
 * Wait queues: intrusive FIFO lists of waiters that live on the waiting
 * tasks' stacks. Popping unlinks, so a woken task can tell a hand-off
 * (no longer linked) from a timeout or cancel (still linked, unlinks
 * itself).
 */
#include "internal.h"

void weft__wq_push(weft__wq *q, struct weft__waiter *w)
{
    w->next = NULL;
    w->prev = q->tail;
    if (q->tail)
        q->tail->next = w;
    else
        q->head = w;
    q->tail = w;
    __atomic_store_n(&w->linked, true, __ATOMIC_RELAXED);
}

void weft__wq_remove(weft__wq *q, struct weft__waiter *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        q->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        q->tail = w->prev;
    /* release: the waiter may read its result without the object's lock */
    __atomic_store_n(&w->linked, false, __ATOMIC_RELEASE);
}

struct weft__waiter *weft__wq_pop(weft__wq *q)
{
    struct weft__waiter *w = q->head;
    if (w)
        weft__wq_remove(q, w);
    return w;
}
