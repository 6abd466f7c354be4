/*
 * weft pool: the one generic resource pool that the HTTP, PostgreSQL and
 * Redis pools are built on ("connection pools, never a client per
 * request").
 *
 * A pool keeps between min_size and max_size resources made by ops->create,
 * lends them to tasks with weft_pool_acquire and takes them back with
 * weft_pool_release. It is loop-local (another loop gets -EXDEV); sizes are
 * process-wide: a pool created on each of the N loops of weft_run gets a
 * share of max_size, min_size and max_idle (v / N, the remainder going to
 * the lowest loops), so the shares add up to exactly what was configured.
 * max_size and max_idle are at least 1 per loop: with more loops than
 * max_size the process may hold N resources (a warning says so at
 * creation); give max_size >= the number of loops to keep the bound.
 *
 * Designed out, on purpose:
 *  - a waiter cancelled or timed out while acquiring never leaks a slot;
 *    a hand-off that reached it first wins and the resource is its to
 *    release;
 *  - resources being created count toward max_size until they exist or
 *    fail, so a storm of cancellations cannot trigger a reconnect storm;
 *  - a real deadlock (the waiting task holds resources of this pool and
 *    every resource is held by tasks waiting on this pool) gives -EDEADLK
 *    at once instead of waiting for the deadline;
 *  - an acquire timeout is logged with who holds what, and for how long
 *    (weft_pool_last_error).
 *
 * Resources are created in the pool's background (a task per resource in
 * the pool's supervisor), never in the acquiring task: an acquirer whose
 * deadline passes gives up, and the resource still joins the pool. A
 * failed create is handed to the acquirer it was made for and starts a
 * backoff (backoff, doubling up to backoff_max); until it passes, an
 * acquire that would need a new resource fails at once with that error
 * (the server is down: nobody waits for a connect that will fail too).
 *
 * Lifecycle of a resource: created (for an acquirer, or to keep
 * min_size), lent, released (reset, then
 * idle, or discarded), health-checked before reuse once it has been idle
 * longer than check_idle, closed when idle longer than idle_timeout (down
 * to min_size) or older than max_lifetime.
 */
#ifndef WEFT_POOL_H
#define WEFT_POOL_H

#include <stdint.h>

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_pool weft_pool;
typedef struct weft_pooled weft_pooled;   /* a lent resource */

typedef struct weft_pool_ops {
    /* Makes a resource (may block: connect, handshake). 0 and *res set,
     * or a negative code, which the acquire returns. */
    int (*create)(void *ctx, void **res);
    /* Frees a resource. Must not block (close the fd, free memory): a
     * blocking call inside it aborts the program, naming it. */
    void (*destroy)(void *ctx, void *res);
    /* Optional: is an idle resource still good? 0 yes, < 0 discard it. It
     * runs in the acquiring task, under that task's deadline: a check that
     * fails because the acquirer was cancelled or ran out of time condemns
     * nothing (the resource goes to the next waiter, or back idle still due
     * a check, and the acquire returns -ECANCELED or -ETIMEDOUT), so a
     * check interrupted midway must leave the resource so that its next
     * use or check fails on its own. */
    int (*check)(void *ctx, void *res);
    /* Optional: called on release; 0 keeps it, < 0 discards it (a
     * connection with a transaction still open, say). Must not suspend
     * (a release never blocks its caller): a blocking call inside it
     * aborts the program, naming it. Work that must talk to the server
     * (a rollback) is done before the release, or the resource is
     * released broken. */
    int (*reset)(void *ctx, void *res);
} weft_pool_ops;

/* Zero fields take the defaults. */
typedef struct weft_pool_config {
    const char *name;              /* for metrics and messages, default "pool" */
    unsigned min_size;             /* default 0 */
    unsigned max_size;             /* default 10 */
    unsigned max_idle;             /* idle ones kept, default max_size */
    weft_time acquire_timeout;     /* default 30 s: -WEFT_EPOOL_TIMEOUT */
    weft_time idle_timeout;        /* default 5 min */
    weft_time max_lifetime;        /* default 1 h */
    weft_time check_idle;          /* health check after this much idle, default 1 s */
    weft_time maintenance_period;  /* idle/lifetime sweep, refill, metrics: default 1 s */
    weft_time backoff;             /* after a failed create, default 100 ms, doubling */
    weft_time backoff_max;         /* up to this, default 5 s */
    weft_group *supervisor;        /* where the background tasks run (maintenance,
                                      creates); it must stay open until
                                      weft_pool_close has returned. NULL: a
                                      supervisor of the creating task's own */
} weft_pool_config;

/* NULL with errno EINVAL (no ops, no create/destroy, min > max), EPERM
 * (outside a task) or ENOMEM. Without cfg->supervisor the calling task
 * owns the pool's background task and must weft_pool_close it before
 * returning; with one (a client that makes pools on demand from any of
 * its tasks), any task of the loop may close it. */
weft_pool *weft_pool_new(const weft_pool_config *cfg, const weft_pool_ops *ops, void *ctx);

/* Lends a resource: an idle one (checked if it idled long), else waits in
 * FIFO order for a released one or a new one (made in the background if
 * below max_size). Returns 0 and sets *out, or -WEFT_EPOOL_TIMEOUT (the
 * pool's acquire timeout; WEFT_FOREVER: none), -ETIMEDOUT (the scope's
 * deadline), -ECANCELED, -EDEADLK, -WEFT_ECLOSED (pool closing or closed
 * while waiting), create's error (for the acquirer the create was made
 * for, and at once for later ones while backing off), -EXDEV, -EPERM,
 * -EINVAL. */
int weft_pool_acquire(weft_pool *p, weft_pooled **out);

/* The resource behind a handle. */
void *weft_pooled_get(const weft_pooled *h);

/* Gives it back: reset, then kept idle, handed to the first waiter, or
 * discarded. After the pool closed it is destroyed. */
void weft_pool_release(weft_pool *p, weft_pooled *h);

/* Gives it back as unusable (an interrupted query, a broken stream): it is
 * destroyed and, if tasks wait or the pool is below min_size, replaced. */
void weft_pool_release_broken(weft_pool *p, weft_pooled *h);

/* Destroys up to n idle resources now, the longest idle first (to make
 * room elsewhere: an HTTP client at its total bound closes another
 * origin's idle connection this way). The count destroyed, -EXDEV, -EPERM,
 * -EINVAL. */
int weft_pool_trim(weft_pool *p, unsigned n);

/* Called by the task that made the pool (else -EPERM), or by any task of
 * the loop when the pool runs in a given supervisor.
 * By the one close rule: stops lending (waiters and later acquires get
 * -WEFT_ECLOSED), destroys the idle resources, cancels creates in
 * progress, waits up to grace for the lent ones to come back, and drops
 * the owner's reference: the pool is freed when the last waiter, lent
 * resource or background task has left. 0, or -ETIMEDOUT if some were
 * still lent after grace (they are destroyed on release, and the handles
 * and the pool stay valid until then; nothing else may be called on p). */
int weft_pool_close(weft_pool *p, weft_time grace);

typedef struct weft_pool_stats {
    unsigned size;                 /* idle + in use + being created */
    unsigned idle, in_use, creating, waiting;
    uint64_t acquires, timeouts, created, discarded;
} weft_pool_stats;

void weft_pool_stats_get(const weft_pool *p, weft_pool_stats *s);

/* The message of the last acquire timeout or deadlock ("" if none). */
const char *weft_pool_last_error(const weft_pool *p);

#ifdef __cplusplus
}
#endif

#endif
