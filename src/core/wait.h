/*
 * The wait queue's implementation, inline for core's own hot paths (sem,
 * event, chan: a hand-off and a wait on every channel switch). The layers
 * above core call the same code through kernel.h's out-of-line functions
 * (wait.c); see kernel.h for the contract and wait.c for how it works.
 */
#ifndef WEFT_CORE_WAIT_H
#define WEFT_CORE_WAIT_H

static inline void weft__wq_push_(weft__wq *q, struct weft__waiter *w)
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

static inline void weft__wq_unlink_(weft__wq *q, struct weft__waiter *w)
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

static inline int weft__wq_wait_fast(weft__wq *q, struct weft__waiter *w, pthread_mutex_t *mu,
                                     weft_time op_deadline, int op_err, const char *reason,
                                     bool shield)
{
    weft_task *t = weft__cur_loop->cur;
    w->task = t;
    w->seq = t->seq;
    w->result = 0;
    weft__wq_push_(q, w);
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
        weft__wq_unlink_(q, w);
        return rc;
    }
    pthread_mutex_lock(mu);
    if (w->linked)
        weft__wq_unlink_(q, w);
    else
        rc = w->result;                   /* handed off while we took the lock */
    pthread_mutex_unlock(mu);
    return rc;
}

static inline void weft__wq_handoff_fast(weft__wq *q, struct weft__waiter *w, int result)
{
    weft_task *t = w->task;
    uint32_t seq = w->seq;
    w->result = result;
    weft__wq_unlink_(q, w);
    if (likely(t->loop == weft__cur_loop))
        weft__wake(t, result);            /* still in this wait: nothing is stale */
    else
        weft__wake_remote(t->loop, t, seq, result);
}

static inline bool weft__wq_wake_one_fast(weft__wq *q, int result)
{
    if (!q->head)
        return false;
    weft__wq_handoff_fast(q, q->head, result);
    return true;
}

#endif
