/*
 * The kernel: the one narrow interface that core offers the layers above
 * it (net, pool, http and the data layer). They include this header, never
 * core/internal.h, and never touch a loop's or a task's fields.
 *
 * What it holds:
 *  - the allocator (the hook tests use to fail each allocation in turn);
 *  - loop ownership: loop-local objects record weft__loop_id() when made
 *    and check every later use with weft__owner_check();
 *  - deadline arithmetic that saturates (WEFT_FOREVER is never overflowed);
 *  - the wait queue: the one way a task blocks on an object, with the one
 *    rule for hand-offs and for closing (below);
 *  - waits on the file descriptors weft owns;
 *  - well-formed UTF-8 (names that go into JSON, SQL text, Redis keys).
 *
 * The wait queue and the close rule
 * ---------------------------------
 * A waiter lives on the waiting task's stack. A waker that hands something
 * over (a permit, an element, a resource, an error) unlinks the waiter and
 * sets its result in one step: from then on the waiter owns the result
 * even if it was cancelled or timed out a moment before it ran, so nothing
 * handed over is ever lost. A waiter woken otherwise (cancel, deadline)
 * unlinks itself. Closing an object hands every waiter an error (-EBADF,
 * or what its header says) through the same queue; the object is freed
 * only when the last task that may still touch it has left: a loop-local
 * object whose waiters never touch it after a hand-off can be freed at
 * once; one that waiters touch after waking (a pool; a conn or listener,
 * whose waits are fd waits) or that other threads wait on (a shared
 * channel) counts them and the last one out frees it. A waker on another
 * thread still holds the object's lock while it wakes the waiter: free a
 * shared object only after taking that lock once more.
 */
#ifndef WEFT_CORE_KERNEL_H
#define WEFT_CORE_KERNEL_H

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "weft.h"

#ifndef likely
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#endif

/* ---- allocation (alloc.c): through the hook; NULL sets errno ENOMEM ---- */
void *weft__malloc(size_t n);
void *weft__calloc(size_t n, size_t size);
void *weft__realloc(void *p, size_t n);
void weft__free(void *p);
char *weft__strdup(const char *s);         /* through the hook */

/* A large buffer (tens of KiB and up) of n bytes was freed: after a burst
 * of them, the free pages go back to the OS, off the loops (trim.c). */
void weft__mem_released(size_t n);

/* misuse that cannot be reported as an error: logs and aborts */
_Noreturn void weft__panic(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- loop ownership (kernel.c) --------------------------------------- */
/* The calling thread's loop (process-unique, never reused), 0 outside:
 * set once when the loop starts, read without a call on hot paths. */
extern __thread uint64_t weft__tls_loop_id __attribute__((tls_model("initial-exec")));
static inline uint64_t weft__loop_id(void) { return weft__tls_loop_id; }
/* 0 when a task of loop `owner` calls; -EPERM outside a task, -EXDEV from
 * a task of another loop. */
int weft__owner_check(uint64_t owner);
/* The start of a blocking call on an object of loop `owner`, in one call:
 * the ownership check, then weft__interrupted(WEFT_FOREVER, 0); *self is
 * the calling task on 0. */
int weft__enter(uint64_t owner, weft_task **self);

/* Marks a stretch of code that must not suspend (a pool's reset and
 * destroy callbacks): a blocking call inside it is misuse and aborts,
 * naming `what`. Not nested. */
void weft__suspend_forbid(const char *what);
void weft__suspend_allow(void);

/* This loop's part of a process-wide count v (a pool's max_size): v split
 * over weft_run's loops, the remainder to the lowest ones, so the parts
 * add up to v exactly; but at least `floor`. v itself outside weft_run. */
unsigned weft__loop_share(unsigned v, unsigned floor);

/* ---- deadlines --------------------------------------------------------- */
/* now + timeout, saturating at WEFT_FOREVER (which timeout may be). */
weft_time weft__after(weft_time timeout);
/* t + d for a deadline t and a duration d >= 0, saturating. */
static inline weft_time weft__deadline_add(weft_time t, weft_time d)
{
    return t == WEFT_FOREVER || d >= WEFT_FOREVER - t ? WEFT_FOREVER : t + d;
}
/* The error a blocking call of the calling task would get right now,
 * without suspending: -ECANCELED, -ETIMEDOUT (its scope), op_err (when
 * op_deadline has passed), or 0. */
int weft__interrupted(weft_time op_deadline, int op_err);

/* ---- the wait queue (wait.c) ------------------------------------------- */
struct weft__waiter {
    struct weft__waiter *next, *prev;
    weft_task *task;
    uint32_t seq;                         /* the task's wait when queued */
    int result;                           /* set by the hand-off */
    void *data;                           /* what the object passes (elements) */
    bool linked;                          /* false once handed off or left */
};

/* Queues w (its data set by the caller) at the tail of q and waits until a
 * hand-off, op_deadline (then op_err), the scope's deadline (-ETIMEDOUT) or
 * a cancel (-ECANCELED). A hand-off wins over all of them: the call returns
 * the handed result. Without a hand-off w is unlinked again before the
 * call returns. mu: NULL for a loop-local object; for one shared across
 * threads, the lock guarding q, held by the caller; it is released while
 * waiting and is not held on return. */
int weft__wq_wait(weft__wq *q, struct weft__waiter *w, pthread_mutex_t *mu,
                  weft_time op_deadline, int op_err, const char *reason);

/* The same, deaf to cancellation and deadlines: for a wait that must end
 * in the hand-off (a blocking job still running on a thread). */
int weft__wq_wait_uncancellable(weft__wq *q, struct weft__waiter *w, pthread_mutex_t *mu,
                                const char *reason);

static inline struct weft__waiter *weft__wq_first(const weft__wq *q) { return q->head; }

/* Hands result to waiter w of q (unlinks it, wakes its task on whatever
 * loop it waits). Everything the waker needs from w must be read before:
 * once handed off, the waiter may return and its frame is gone. */
void weft__wq_handoff(weft__wq *q, struct weft__waiter *w, int result);
/* Hands result to the first waiter; false if none waits. */
static inline bool weft__wq_wake_one(weft__wq *q, int result)
{
    if (!q->head)
        return false;                     /* the common case, without a call */
    weft__wq_handoff(q, q->head, result);
    return true;
}
/* Hands result to every waiter (an event set: 0; a close: an error). */
void weft__wq_wake_all(weft__wq *q, int result);

/* ---- file descriptors weft owns (fd.c) --------------------------------- */
/* Registers a non-blocking fd edge-triggered for both directions, with
 * any state a previous fd of that number left forgotten. */
int weft__fd_own(int fd);
/* After EAGAIN on an owned fd: waits for its next edge in `events` (one
 * direction), until deadline (then op_err). -EBADF when the fd is closed
 * (weft__fd_close) while waiting. */
int weft__fd_wait_io(int fd, int events, weft_time deadline, int op_err);
/* Whether a read edge (or a hang-up) came on owned fd that no reader has
 * taken yet: false says nothing arrived since its reader last waited or
 * found it empty, as far as the loop has polled. True for an fd weft does
 * not own (nothing is known). No syscall. */
bool weft__fd_read_edge(int fd);
/* Forgets an fd (its waiters get -EBADF) and closes it. */
void weft__fd_close(int fd);

/* The length of the well-formed UTF-8 sequence at p, 0 if it is not one
 * (overlong forms, surrogates and code points past U+10FFFF are not: the
 * same rule PostgreSQL and JSON parsers apply). */
static inline size_t weft__utf8_len(const unsigned char *p)
{
    size_t n = p[0] < 0x80 ? 1 : p[0] >= 0xc2 && p[0] < 0xe0 ? 2 : p[0] >= 0xe0 && p[0] < 0xf0 ? 3
             : p[0] >= 0xf0 && p[0] < 0xf5 ? 4 : 0;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    if ((n == 3 && ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] >= 0xa0))) ||
        (n == 4 && ((p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] >= 0x90))))
        return 0;
    return n;
}

#endif
