/*
 * Counting semaphore, FIFO-fair: a released permit is handed straight to
 * the first waiter, so a task that arrives later cannot overtake it, and a
 * fast acquire only succeeds when nobody is queued.
 */
#include <errno.h>

#include "internal.h"

void weft_sem_init(weft_sem *s, unsigned permits)
{
    s->permits_ = permits;
    s->wq_.head = s->wq_.tail = NULL;
    s->loop_ = 0;
}

int weft_sem_try_acquire(weft_sem *s)
{
    if (!s)
        return -EINVAL;
    int rc = weft__bind(&s->loop_);
    if (rc)
        return rc;
    if (s->permits_ == 0 || s->wq_.head)
        return -EAGAIN;
    s->permits_--;
    return 0;
}

int weft_sem_acquire(weft_sem *s)
{
    if (!s)
        return -EINVAL;
    int rc = weft__bind(&s->loop_);
    if (rc)
        return rc;
    if ((rc = weft__check(WEFT_FOREVER, 0)))
        return rc;
    if (s->permits_ && !s->wq_.head) {
        s->permits_--;
        return 0;
    }
    struct weft__waiter w = { .task = weft__self() };
    weft__wq_push(&s->wq_, &w);
    rc = weft__wait(WEFT_FOREVER, 0, "sem acquire");
    if (!w.linked)
        return 0;                         /* handed a permit: that wins */
    weft__wq_remove(&s->wq_, &w);
    return rc;
}

void weft_sem_release(weft_sem *s)
{
    if (!s)
        weft__panic("weft_sem_release: NULL semaphore");
    if (weft__foreign(&s->loop_))
        weft__panic("weft_sem_release: semaphore belongs to another loop");
    struct weft__waiter *w = weft__wq_pop(&s->wq_);
    if (w)
        weft__wake(w->task, 0);
    else
        s->permits_++;
}

unsigned weft_sem_available(const weft_sem *s) { return s ? s->permits_ : 0; }
