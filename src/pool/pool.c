/*
 * The generic resource pool (weft/pool.h).
 *
 * Resources sit on an idle stack (LIFO: the warmest is lent first and the
 * coldest idle out) or on the in-use list with their holder task. A task
 * that finds no idle resource queues as a waiter on the pool's wait queue
 * (kernel.h) and, if there is room, starts a creator task: resources are
 * made in the pool's background (a supervisor), never in the acquiring
 * task, so an acquirer that gives up leaves the connect running and the
 * new resource joins the pool. A resource, released or new, is handed
 * straight to the first waiter (the hand-off is final: the waiter owns it
 * even if it was cancelled a moment later, so nothing leaks). A failed
 * create hands its error to the first waiter and starts a backoff
 * (doubling up to backoff_max): until it passes, acquirers that would
 * need a new resource fail at once with that error instead of each
 * trying. A maintenance task closes idle and old resources, refills to
 * min_size and publishes the metrics every maintenance period.
 *
 * Lifetime, by the one close rule: the pool counts its references (the
 * owner's, each waiter, each lent or creating resource, the maintenance
 * task) and the last one to leave frees it.
 *
 * Clock reads use CLOCK_MONOTONIC_COARSE: ages and idle times need
 * milliseconds, not nanoseconds, and the fast path stays a few loads.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../core/kernel.h"
#include "weft/pool.h"

enum { HANDOFF = 1 };                     /* a wait's result: *w.data is ours */

struct weft_pooled {
    void *res;
    weft_pooled *next, *prev;
    weft_task *holder;
    weft_time born, since;                /* since: lent at / idle since */
};

struct weft_pool {
    uint64_t loop;
    weft_pool_ops ops;
    void *ctx;
    char name[32];
    unsigned min, max, max_idle;
    weft_time acquire_to, idle_to, lifetime, check_idle;
    weft_time period, backoff0, backoff_max;
    weft_pooled *idle, *used;
    unsigned nidle, nused, ncreating, nwait;
    unsigned refs;                        /* see the close rule above */
    weft__wq waiters;
    bool closing;
    int down_err;                         /* the last create error, while backing off */
    weft_time down_until, backoff;
    weft_task *owner;
    weft_group *bg;                       /* where maintain() runs */
    bool own_bg;                          /* bg is ours to close */
    struct creator *creators;             /* running creator tasks */
    weft_event kick, drained;
    uint64_t acquires, timeouts, created, discarded, fast;
    struct { weft_metric *size, *idle, *used, *wait, *acq, *tmo, *created, *discarded, *hist; } m;
    int64_t pub[4];                       /* gauge values last published */
    uint64_t pub_acq, pub_tmo, pub_created, pub_discarded;
    char last_error[512];
};

static weft_time coarse_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (weft_time)ts.tv_sec * WEFT_SEC + ts.tv_nsec;
}

static unsigned total(const weft_pool *p) { return p->nidle + p->nused + p->ncreating; }

/* ---- lists ---------------------------------------------------------------- */

static void used_push(weft_pool *p, weft_pooled *h, weft_task *holder)
{
    h->holder = holder;
    h->prev = NULL;
    h->next = p->used;
    if (p->used)
        p->used->prev = h;
    p->used = h;
    p->nused++;
}

static void used_remove(weft_pool *p, weft_pooled *h)
{
    if (h->prev)
        h->prev->next = h->next;
    else
        p->used = h->next;
    if (h->next)
        h->next->prev = h->prev;
    p->nused--;
    h->holder = NULL;
}

static void idle_push(weft_pool *p, weft_pooled *h, weft_time now)
{
    h->since = now;
    h->next = p->idle;
    p->idle = h;
    p->nidle++;
}

/* ---- references and slots ------------------------------------------------ */

static void pool_free(weft_pool *p);

static void ref(weft_pool *p) { p->refs++; }

static void unref(weft_pool *p)
{
    if (--p->refs == 0)
        pool_free(p);
}

static void maybe_drained(weft_pool *p)
{
    if (p->closing && !p->nused && !p->ncreating)
        weft_event_set(&p->drained);
}

static int start_create(weft_pool *p);
static int backing_off(weft_pool *p);

/* A slot became free: a waiter gets a resource made for it, else the
 * maintenance task may refill to min_size. */
static void slot_freed(weft_pool *p)
{
    int rc;
    if (p->closing)
        maybe_drained(p);
    else if (p->waiters.head && p->nwait > p->ncreating && !backing_off(p) &&
             (rc = start_create(p)))
        weft__wq_wake_one(&p->waiters, rc);
    else if (total(p) < p->min)
        weft_event_set(&p->kick);
}

/* Destroying must not suspend: it runs where a waker cannot wait. */
static void destroy(weft_pool *p, weft_pooled *h)
{
    weft__suspend_forbid("a pool's destroy");
    p->ops.destroy(p->ctx, h->res);
    weft__suspend_allow();
    weft__free(h);
    p->discarded++;
}

static void discard(weft_pool *p, weft_pooled *h)
{
    destroy(p, h);
    slot_freed(p);
    unref(p);                             /* the resource's, last: it may free p */
}

/* Lends h (counted in use by the caller of used_push) to the first waiter,
 * or keeps it idle, or, past max_idle, closes it. */
static void lend_or_keep(weft_pool *p, weft_pooled *h, weft_time now)
{
    struct weft__waiter *w = weft__wq_first(&p->waiters);
    used_remove(p, h);
    if (w) {
        w->data = h;
        used_push(p, h, w->task);         /* in use by the waiter from now on */
        weft__wq_handoff(&p->waiters, w, HANDOFF);
    } else if (p->nidle < p->max_idle && !p->closing) {
        idle_push(p, h, now);
    } else {
        destroy(p, h);
        maybe_drained(p);
        unref(p);
    }
}

static bool expired(const weft_pool *p, const weft_pooled *h, weft_time now)
{
    return now - h->born >= p->lifetime;
}

/* ---- creating, in the background -------------------------------------------- */

/* A create failed. The backoff doubles once per try after the last one
 * ran out, not once per create of a burst that failed together. */
static void backed_off(weft_pool *p, int err)
{
    bool again = p->down_err && weft_now() < p->down_until;
    p->down_err = err;
    if (again)
        return;
    weft_time b = !p->backoff ? p->backoff0
                : p->backoff > p->backoff_max / 2 ? p->backoff_max : p->backoff * 2;
    p->backoff = b < p->backoff_max ? b : p->backoff_max;
    p->down_until = weft__after(p->backoff);
    weft_log(WEFT_LOG_WARN, "pool '%s': creating a resource failed: %s (next try in %.3g s)",
             p->name, weft_strerror(err), (double)p->backoff / WEFT_SEC);
}

/* A create failed: the first waiter (the one it was made for, or the one
 * now first in line) gets its error, and so do the waiters that nothing
 * pending (a creator still running, a resource in use) can serve. */
static void fail_waiters(weft_pool *p, int err)
{
    unsigned linked = 0;
    for (struct weft__waiter *w = weft__wq_first(&p->waiters); w; w = w->next)
        linked++;
    if (linked && weft__wq_wake_one(&p->waiters, err))
        linked--;
    for (; linked > p->ncreating + p->nused; linked--)
        weft__wq_wake_one(&p->waiters, err);
}

/* One resource, made in its own task of the pool's supervisor: the
 * acquirer that asked for it may give up meanwhile, the resource still
 * joins the pool. Holds a reference and a slot (ncreating). */
struct creator { weft_task *task; struct creator *next, *prev; };

static int creator(void *arg)
{
    weft_pool *p = arg;
    struct creator me = { weft_self(), p->creators, NULL };
    if (p->creators)
        p->creators->prev = &me;
    p->creators = &me;                    /* so that close can cancel it */
    weft_pooled *h = p->closing ? NULL : weft__calloc(1, sizeof *h);
    int rc = p->closing ? -WEFT_ECLOSED : h ? p->ops.create(p->ctx, &h->res) : -ENOMEM;
    if (me.prev)
        me.prev->next = me.next;
    else
        p->creators = me.next;
    if (me.next)
        me.next->prev = me.prev;
    p->ncreating--;
    if (rc == 0 && p->closing) {
        destroy(p, h);                    /* made too late: counted and let go */
        h = NULL;
        rc = -WEFT_ECLOSED;
    }
    if (rc) {
        weft__free(h);
        if (!p->closing) {
            if (rc != -ECANCELED)         /* its supervisor closed: no outage */
                backed_off(p, rc);
            fail_waiters(p, rc);          /* nobody waits for a create that ended */
        }
        maybe_drained(p);
        unref(p);
        return 0;
    }
    p->backoff = 0;
    p->down_err = 0;
    h->born = h->since = coarse_now();
    p->created++;
    used_push(p, h, weft_self());
    lend_or_keep(p, h, h->born);          /* the resource keeps the reference */
    return 0;
}

/* Reserves a slot and starts a creator: 0, or weft_spawn's error. */
static int start_create(weft_pool *p)
{
    p->ncreating++;
    p->refs++;                            /* never the last: the caller holds one */
    int rc = weft_spawn(p->bg, creator, p, "pool create");
    if (rc) {
        p->ncreating--;
        p->refs--;
    }
    return rc;
}

/* The create error to fail with at once while backing off, else 0. */
static int backing_off(weft_pool *p)
{
    if (!p->down_err)
        return 0;
    if (weft_now() < p->down_until)       /* the precise clock, as weft__after's */
        return p->down_err;
    return 0;                             /* time for the next try */
}

/* The next usable idle resource, lent to self; NULL if none (*err set when
 * the caller's own deadline or cancel stopped the search). A check may
 * block: the resource counts as in use meanwhile. A check that fails
 * because the caller was interrupted condemns nothing: the resource goes
 * back idle and the interruption is the caller's. */
static weft_pooled *take_idle(weft_pool *p, weft_task *self, int *err)
{
    while (p->idle) {
        weft_pooled *h = p->idle;
        p->idle = h->next;
        p->nidle--;
        weft_time now = coarse_now();
        if (expired(p, h, now)) {
            discard(p, h);
            continue;
        }
        used_push(p, h, self);
        if (p->ops.check && now - h->since >= p->check_idle && p->ops.check(p->ctx, h->res) < 0) {
            if ((*err = weft__interrupted(WEFT_FOREVER, 0))) {
                weft_time since = h->since;
                lend_or_keep(p, h, now);  /* to a waiter, idle, or closed meanwhile */
                if (p->idle == h)
                    h->since = since;     /* still due a check */
                return NULL;
            }
            used_remove(p, h);
            discard(p, h);
            continue;
        }
        h->since = now;
        return h;
    }
    return NULL;
}

/* ---- diagnostics ---------------------------------------------------------- */

static bool is_waiting(const weft_pool *p, const weft_task *t)
{
    for (struct weft__waiter *w = p->waiters.head; w; w = w->next)
        if (w->task == t)
            return true;
    return false;
}

/* self holds some of this pool's resources, and every resource is held by
 * a task waiting on this pool: nobody will ever release one. */
static bool deadlock(const weft_pool *p, const weft_task *self)
{
    if (total(p) < p->max || p->nidle || p->ncreating)
        return false;
    bool holds = false;
    for (weft_pooled *h = p->used; h; h = h->next) {
        if (h->holder == self)
            holds = true;
        else if (!is_waiting(p, h->holder))
            return false;
    }
    return holds;
}

static void describe(weft_pool *p, const char *what)
{
    size_t len = 0, size = sizeof p->last_error;
    weft_time now = coarse_now();
    len += (size_t)snprintf(p->last_error, size, "pool '%s' %s: %u/%u in use, %u waiting; held by",
                            p->name, what, p->nused, p->max, p->nwait);
    int shown = 0;
    for (weft_pooled *h = p->used; h && len < size; h = h->next, shown++) {
        if (shown == 8) {
            len += (size_t)snprintf(p->last_error + len, size - len, " ...");
            break;
        }
        len += (size_t)snprintf(p->last_error + len, size - len, "%s '%s' for %.1f s",
                                shown ? "," : "", h->holder ? weft_task_name(h->holder) : "?",
                                (double)(now - h->since) / WEFT_SEC);
    }
    if (!p->used)
        snprintf(p->last_error + len, size - len, " nobody (%u being created)", p->ncreating);
    weft_log(WEFT_LOG_WARN, "%s", p->last_error);
}

/* ---- acquire and release -------------------------------------------------- */

static int usable(const weft_pool *p) { return p ? weft__owner_check(p->loop) : -EINVAL; }

static void sync_metrics(weft_pool *p);

static int acquire_wait(weft_pool *p, weft_task *self, weft_pooled **out)
{
    if (deadlock(p, self)) {
        describe(p, "deadlock: the acquiring task holds resources every other holder waits for");
        return -EDEADLK;
    }
    struct weft__waiter w;
    weft_time t0 = weft_now();
    p->nwait++;
    int rc = weft__wq_wait(&p->waiters, &w, NULL, weft__deadline_add(t0, p->acquire_to),
                           -WEFT_EPOOL_TIMEOUT, "pool acquire");
    p->nwait--;
    if (rc == HANDOFF) {
        weft_pooled *h = w.data;
        h->since = coarse_now();
        if (p->m.hist)
            weft_metric_observe(p->m.hist, (double)(weft_now() - t0) / WEFT_SEC);
        *out = h;
        rc = 0;
    } else if (rc == -WEFT_EPOOL_TIMEOUT) {
        p->timeouts++;
        describe(p, "acquire timeout");
    }
    /* a wait is published at once, so the counters with it: the fast
     * path's stay batched until the maintenance round (they cost nothing
     * there), and every acquire the histogram counts is in acquires_total */
    sync_metrics(p);
    return rc;
}

static int acquire(weft_pool *p, weft_task *self, weft_pooled **out)
{
    int rc = 0;
    p->acquires++;
    if (!p->waiters.head) {
        weft_pooled *h = take_idle(p, self, &rc);
        if (h) {
            p->fast++;
            *out = h;
            return 0;
        }
        if (rc)
            return rc;
        if (p->closing)
            return -WEFT_ECLOSED;         /* closed while a check ran */
    }
    if (total(p) < p->max && p->nwait >= p->ncreating) {
        if ((rc = backing_off(p)) || (rc = start_create(p)))
            return rc;                    /* the server is down: fail fast */
    }
    return acquire_wait(p, self, out);
}

int weft_pool_acquire(weft_pool *p, weft_pooled **out)
{
    weft_task *self;
    if (!p || !out)
        return -EINVAL;
    int rc = weft__enter(p->loop, &self);
    if (rc == -EPERM || rc == -EXDEV)
        return rc;
    if (p->closing)
        return -WEFT_ECLOSED;
    if (rc)
        return rc;                        /* cancelled, or the scope expired */
    ref(p);                               /* checks and waits suspend: p may close */
    rc = acquire(p, self, out);
    unref(p);
    return rc;
}

void *weft_pooled_get(const weft_pooled *h) { return h ? h->res : NULL; }

/* reset must not suspend either: a release never blocks its caller */
static int reset(weft_pool *p, weft_pooled *h)
{
    if (!p->ops.reset)
        return 0;
    weft__suspend_forbid("a pool's reset");
    int rc = p->ops.reset(p->ctx, h->res);
    weft__suspend_allow();
    return rc;
}

static void give_back(weft_pool *p, weft_pooled *h, bool broken)
{
    if (!p || !h)
        return;
    if (p->loop != weft__loop_id())
        weft__panic("weft_pool_release: pool '%s' belongs to another loop", p->name);
    weft_time now = coarse_now();         /* one clock read for the whole release */
    if (broken || p->closing || reset(p, h) < 0 || expired(p, h, now)) {
        used_remove(p, h);
        discard(p, h);
        return;
    }
    lend_or_keep(p, h, now);
}

void weft_pool_release(weft_pool *p, weft_pooled *h) { give_back(p, h, false); }
void weft_pool_release_broken(weft_pool *p, weft_pooled *h) { give_back(p, h, true); }

int weft_pool_trim(weft_pool *p, unsigned n)
{
    int rc = usable(p);
    if (rc)
        return rc;
    unsigned done = 0;
    for (; done < n && p->idle; done++) {
        weft_pooled **pp = &p->idle;
        while ((*pp)->next)
            pp = &(*pp)->next;            /* the coldest is at the bottom */
        weft_pooled *h = *pp;
        *pp = NULL;
        p->nidle--;
        discard(p, h);
    }
    return (int)done;
}

/* ---- background maintenance ----------------------------------------------- */

static void publish(weft_metric *m, int64_t *last, int64_t now)
{
    weft_metric_add(m, now - *last);      /* deltas: pools of several loops add up */
    *last = now;
}

static void sync_metrics(weft_pool *p)
{
    if (!p->m.size)
        return;
    publish(p->m.size, &p->pub[0], total(p));
    publish(p->m.idle, &p->pub[1], p->nidle);
    publish(p->m.used, &p->pub[2], p->nused);
    publish(p->m.wait, &p->pub[3], p->nwait);
    weft_metric_add(p->m.acq, (int64_t)(p->acquires - p->pub_acq));
    weft_metric_add(p->m.tmo, (int64_t)(p->timeouts - p->pub_tmo));
    weft_metric_add(p->m.created, (int64_t)(p->created - p->pub_created));
    weft_metric_add(p->m.discarded, (int64_t)(p->discarded - p->pub_discarded));
    p->pub_acq = p->acquires;
    p->pub_tmo = p->timeouts;
    p->pub_created = p->created;
    p->pub_discarded = p->discarded;
    weft_metric_observe_n(p->m.hist, 0, p->fast);   /* acquires that did not wait */
    p->fast = 0;
}

static void expire_idle(weft_pool *p)
{
    weft_time now = coarse_now();
    weft_pooled **pp = &p->idle;
    while (*pp) {
        weft_pooled *h = *pp;
        bool old = expired(p, h, now);
        bool stale = now - h->since >= p->idle_to && total(p) > p->min;
        if (old || stale) {
            *pp = h->next;
            p->nidle--;
            discard(p, h);
        } else {
            pp = &h->next;
        }
    }
}

static int maintain(void *arg)
{
    weft_pool *p = arg;
    while (!p->closing) {
        weft_scope sc;
        weft_scope_enter(&sc, p->period);
        int rc = weft_event_wait(&p->kick);
        weft_scope_exit(&sc);
        if (rc == -ECANCELED)
            break;
        weft_event_clear(&p->kick);
        expire_idle(p);
        while (!p->closing && total(p) < p->min && !backing_off(p) && !start_create(p))
            ;                             /* each to a waiter, or idle */
        sync_metrics(p);
    }
    unref(p);
    return 0;
}

static void bg_error(const char *task, int err, void *ctx)
{
    weft_pool *p = ctx;
    weft_log(WEFT_LOG_ERROR, "pool '%s': background task '%s' failed: %s", p->name, task,
             weft_strerror(err));
}

/* ---- lifetime ------------------------------------------------------------- */

static weft_metric *metric(int kind, const char *family, const char *pool, const char *help)
{
    char name[160];
    snprintf(name, sizeof name, "%s{pool=\"%s\"}", family, pool);
    static const double bounds[] = { 0.0001, 0.001, 0.01, 0.1, 1, 10 };
    return kind == 0 ? weft_counter(name, help)
         : kind == 1 ? weft_gauge(name, help)
                     : weft_histogram(name, help, bounds, sizeof bounds / sizeof *bounds);
}

weft_pool *weft_pool_new(const weft_pool_config *cfg, const weft_pool_ops *ops, void *ctx)
{
    weft_task *self = weft_self();
    weft_pool_config none = { 0 };
    if (!cfg)
        cfg = &none;
    if (!self) {
        errno = EPERM;
        return NULL;
    }
    unsigned max = cfg->max_size ? cfg->max_size : 10;
    if (!ops || !ops->create || !ops->destroy || cfg->min_size > max ||
        cfg->acquire_timeout < 0 || cfg->idle_timeout < 0 || cfg->max_lifetime < 0 ||
        cfg->check_idle < 0 || cfg->maintenance_period < 0 || cfg->backoff < 0 ||
        cfg->backoff_max < 0) {
        errno = EINVAL;
        return NULL;
    }
    weft_pool *p = weft__calloc(1, sizeof *p);
    if (!p)
        return NULL;
    int loops = weft_loop_count(), index = weft_loop_index();
    p->loop = weft__loop_id();
    p->refs = 1;                          /* the owner's, dropped by close */
    p->ops = *ops;
    p->ctx = ctx;
    snprintf(p->name, sizeof p->name, "%s", cfg->name && *cfg->name ? cfg->name : "pool");
    p->max = weft__loop_share(max, 1);    /* pool.h: 1 each at least */
    p->min = weft__loop_share(cfg->min_size, 0);
    p->max_idle = cfg->max_idle ? weft__loop_share(cfg->max_idle, 1) : p->max;
    if (loops > 1 && max < (unsigned)loops && index == 0)
        weft_log(WEFT_LOG_WARN, "pool '%s': max_size %u is below the %d loops: each loop "
                 "gets 1, %d in all", p->name, max, loops, loops);
    p->acquire_to = cfg->acquire_timeout ? cfg->acquire_timeout : 30 * WEFT_SEC;
    p->idle_to = cfg->idle_timeout ? cfg->idle_timeout : 300 * WEFT_SEC;
    p->lifetime = cfg->max_lifetime ? cfg->max_lifetime : 3600 * WEFT_SEC;
    p->check_idle = cfg->check_idle ? cfg->check_idle : WEFT_SEC;
    p->period = cfg->maintenance_period ? cfg->maintenance_period : WEFT_SEC;
    p->backoff0 = cfg->backoff ? cfg->backoff : 100 * WEFT_MS;
    p->backoff_max = cfg->backoff_max ? cfg->backoff_max : 5 * WEFT_SEC;
    p->owner = self;
    weft_event_init(&p->kick);
    weft_event_init(&p->drained);
    p->m.size = metric(1, "weft_pool_size", p->name, "Resources open or being opened");
    p->m.idle = metric(1, "weft_pool_idle", p->name, "Idle resources");
    p->m.used = metric(1, "weft_pool_in_use", p->name, "Resources lent out");
    p->m.wait = metric(1, "weft_pool_waiting", p->name, "Tasks waiting to acquire");
    p->m.acq = metric(0, "weft_pool_acquires_total", p->name, "Acquire calls");
    p->m.tmo = metric(0, "weft_pool_acquire_timeouts_total", p->name, "Acquires that timed out");
    p->m.created = metric(0, "weft_pool_created_total", p->name, "Resources created");
    p->m.discarded = metric(0, "weft_pool_discarded_total", p->name, "Resources destroyed");
    p->m.hist = metric(2, "weft_pool_acquire_wait_seconds", p->name, "Time spent acquiring");
    p->bg = cfg->supervisor;
    p->own_bg = !p->bg;
    if (p->own_bg && !(p->bg = weft_supervisor_new(bg_error, p))) {
        weft__free(p);
        errno = ENOMEM;
        return NULL;
    }
    p->refs++;                            /* the maintenance task's */
    int rc = weft_spawn(p->bg, maintain, p, "pool maintenance");
    if (rc < 0) {
        if (p->own_bg)
            weft_supervisor_close(p->bg, 0);
        weft__free(p);
        errno = -rc;
        return NULL;
    }
    if (p->min)
        weft_event_set(&p->kick);
    return p;
}

static void pool_free(weft_pool *p)
{
    sync_metrics(p);
    weft__free(p);
}

int weft_pool_close(weft_pool *p, weft_time grace)
{
    int rc = usable(p);
    if (rc)
        return rc;
    if (p->closing)
        return -WEFT_ECLOSED;
    if (p->own_bg && weft_self() != p->owner)
        return -EPERM;                    /* its background task is the owner's */
    p->closing = true;
    weft__wq_wake_all(&p->waiters, -WEFT_ECLOSED);
    while (p->idle) {
        weft_pooled *h = p->idle;
        p->idle = h->next;
        p->nidle--;
        destroy(p, h);
        p->refs--;                        /* never the last: the owner holds one */
    }
    weft_event_set(&p->kick);             /* the maintenance task leaves */
    for (struct creator *c = p->creators; c; c = c->next)
        weft_task_cancel(c->task);        /* a connect in progress is not waited for */
    if (p->own_bg)
        weft_supervisor_close(p->bg, 0);
    sync_metrics(p);
    if (p->nused || p->ncreating) {
        weft_scope sc;
        weft_scope_enter(&sc, grace);
        weft_event_wait(&p->drained);
        weft_scope_exit(&sc);
    }
    rc = p->nused || p->ncreating ? -ETIMEDOUT : 0;
    unref(p);                             /* the last one out frees it */
    return rc;
}

void weft_pool_stats_get(const weft_pool *p, weft_pool_stats *s)
{
    if (!p || !s)
        return;
    *s = (weft_pool_stats){ total(p), p->nidle, p->nused, p->ncreating, p->nwait,
                            p->acquires, p->timeouts, p->created, p->discarded };
}

const char *weft_pool_last_error(const weft_pool *p) { return p ? p->last_error : ""; }
