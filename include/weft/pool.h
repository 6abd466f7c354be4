/*
 * weft pool: the one generic resource pool that the HTTP, PostgreSQL and
 * Redis pools are built on ("connection pools, never a client per
 * request").
 *
 * A pool keeps between min_size and max_size resources made by ops->create,
 * lends them to tasks with weft_pool_acquire and takes them back with
 * weft_pool_release. It is loop-local (another loop gets -EXDEV); sizes are
 * process-wide: a pool created on each of the N loops of weft_run gets
 * max_size / N and min_size / N of them (at least 1 each), so the total
 * never exceeds what was configured.
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
 * Lifecycle of a resource: created (in the acquiring task, or in the
 * pool's background task to keep min_size), lent, released (reset, then
 * idle, or discarded), health-checked before reuse once it has been idle
 * longer than check_idle, closed when idle longer than idle_timeout (down
 * to min_size) or older than max_lifetime.
 */
#ifndef WEFT_POOL_H
#define WEFT_POOL_H

#include <stdint.h>

#include "core.h"

typedef struct weft_pool weft_pool;
typedef struct weft_pooled weft_pooled;   /* a lent resource */

typedef struct weft_pool_ops {
    /* Makes a resource (may block: connect, handshake). 0 and *res set,
     * or a negative code, which the acquire returns. */
    int (*create)(void *ctx, void **res);
    /* Frees a resource. Must not block (close the fd, free memory). */
    void (*destroy)(void *ctx, void *res);
    /* Optional: is an idle resource still good? 0 yes, < 0 discard it. */
    int (*check)(void *ctx, void *res);
    /* Optional: called on release; 0 keeps it, < 0 discards it (a
     * connection with a transaction still open, say). */
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
    weft_group *supervisor;        /* where the background task runs; NULL: a
                                      supervisor of the creating task's own */
} weft_pool_config;

/* NULL with errno EINVAL (no ops, no create/destroy, min > max), EPERM
 * (outside a task) or ENOMEM. Without cfg->supervisor the calling task
 * owns the pool's background task and must weft_pool_close it before
 * returning; with one (a client that makes pools on demand from any of
 * its tasks), any task of the loop may close it. */
weft_pool *weft_pool_new(const weft_pool_config *cfg, const weft_pool_ops *ops, void *ctx);

/* Lends a resource: an idle one (checked if it idled long), a new one if
 * below max_size, else waits in FIFO order. Returns 0 and sets *out, or
 * -WEFT_EPOOL_TIMEOUT (the pool's acquire timeout), -ETIMEDOUT (the
 * scope's deadline), -ECANCELED, -EDEADLK, -WEFT_ECLOSED (pool closing),
 * create's error, -EXDEV, -EPERM, -EINVAL. */
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
 * Stops lending (waiters and later acquires get -WEFT_ECLOSED), destroys
 * the idle resources, waits up to grace for the lent ones to come back,
 * then frees the pool once the last one is released. 0, or -ETIMEDOUT if
 * some were still lent after grace (they are destroyed on release). */
int weft_pool_close(weft_pool *p, weft_time grace);

typedef struct weft_pool_stats {
    unsigned size;                 /* idle + in use + being created */
    unsigned idle, in_use, creating, waiting;
    uint64_t acquires, timeouts, created, discarded;
} weft_pool_stats;

void weft_pool_stats_get(const weft_pool *p, weft_pool_stats *s);

/* The message of the last acquire timeout or deadlock ("" if none). */
const char *weft_pool_last_error(const weft_pool *p);

#endif
