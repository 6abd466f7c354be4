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
    struct weft__waiter w;
    return weft__wq_wait_fast(&s->wq_, &w, NULL, WEFT_FOREVER, 0, "sem acquire", false);
}

void weft_sem_release(weft_sem *s)
{
    if (!s)
        weft__panic("weft_sem_release: NULL semaphore");
    if (weft__foreign(&s->loop_))
        weft__panic("weft_sem_release: semaphore belongs to another loop");
    if (!weft__wq_wake_one_fast(&s->wq_, 0))  /* the permit goes to the first waiter */
        s->permits_++;
}

unsigned weft_sem_available(const weft_sem *s) { return s ? s->permits_ : 0; }
