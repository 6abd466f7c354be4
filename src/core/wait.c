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
 *
 * The code is in wait.h, inline for core's hot paths; these are the entry
 * points of the layers above core.
 */
#include "internal.h"

int weft__wq_wait(weft__wq *q, struct weft__waiter *w, pthread_mutex_t *mu,
                  weft_time op_deadline, int op_err, const char *reason)
{
    return weft__wq_wait_fast(q, w, mu, op_deadline, op_err, reason, false);
}

int weft__wq_wait_uncancellable(weft__wq *q, struct weft__waiter *w, pthread_mutex_t *mu,
                                const char *reason)
{
    return weft__wq_wait_fast(q, w, mu, WEFT_FOREVER, 0, reason, true);
}

void weft__wq_handoff(weft__wq *q, struct weft__waiter *w, int result)
{
    weft__wq_handoff_fast(q, w, result);
}

void weft__wq_wake_all(weft__wq *q, int result)
{
    while (q->head)
        weft__wq_handoff_fast(q, q->head, result);
}
