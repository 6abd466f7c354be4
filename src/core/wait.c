/*
 * The wait queue (kernel.h): the one way a task blocks on an object.
 *
 * An intrusive FIFO of waiters that live on the waiting tasks' stacks.
 * Unlinking is the commit point of a hand-off: the waker sets the result,
 * unlinks (a release store of `linked`) and wakes; a woken waiter that
 * finds itself unlinked owns the result whatever else woke it, and one
 * still linked unlinks itself (under the object's lock when the object is
 * shared across threads) and reports its own reason. So a result handed
 * over is never lost and a waiter is never woken twice for one wait: a
 * late wake-up names the task's old wait sequence and is dropped.
 */
#include "internal.h"

static void push(weft__wq *q, struct weft__waiter *w)
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

static void unlink_waiter(weft__wq *q, struct weft__waiter *w)
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

static int wq_wait(weft__wq *q, struct weft__waiter *w, pthread_mutex_t *mu,
                   weft_time op_deadline, int op_err, const char *reason, bool shield)
{
    weft_task *t = weft__cur_loop->cur;
    w->task = t;
    w->seq = t->seq;
    w->result = 0;
    push(q, w);
    if (mu) {
        pthread_mutex_unlock(mu);
        t->loop->remote_waits++;          /* another thread may wake us */
    }
    int rc = shield ? weft__wait_uncancellable(reason) : weft__wait(op_deadline, op_err, reason);
    if (mu)
        t->loop->remote_waits--;
    if (!__atomic_load_n(&w->linked, __ATOMIC_ACQUIRE))
        return w->result;                 /* handed off: that wins */
    if (!mu) {
        unlink_waiter(q, w);
        return rc;
    }
    pthread_mutex_lock(mu);
    if (w->linked)
        unlink_waiter(q, w);
    else
        rc = w->result;                   /* handed off while we took the lock */
    pthread_mutex_unlock(mu);
    return rc;
}

int weft__wq_wait(weft__wq *q, struct weft__waiter *w, pthread_mutex_t *mu,
                  weft_time op_deadline, int op_err, const char *reason)
{
    return wq_wait(q, w, mu, op_deadline, op_err, reason, false);
}

int weft__wq_wait_uncancellable(weft__wq *q, struct weft__waiter *w, pthread_mutex_t *mu,
                                const char *reason)
{
    return wq_wait(q, w, mu, WEFT_FOREVER, 0, reason, true);
}

void weft__wq_handoff(weft__wq *q, struct weft__waiter *w, int result)
{
    weft_task *t = w->task;
    uint32_t seq = w->seq;
    w->result = result;
    unlink_waiter(q, w);
    weft__wake_remote(t->loop, t, seq, result);
}

bool weft__wq_wake_one(weft__wq *q, int result)
{
    if (!q->head)
        return false;
    weft__wq_handoff(q, q->head, result);
    return true;
}

void weft__wq_wake_all(weft__wq *q, int result)
{
    while (q->head)
        weft__wq_handoff(q, q->head, result);
}
