/*
 * The generic resource pool (weft/pool.h).
 *
 * Resources sit on an idle stack (LIFO: the warmest is lent first and the
 * coldest idle out) or on the in-use list with their holder task. A task
 * that finds neither an idle resource nor room to create one queues as a
 * waiter. Releases and freed slots are handed straight to the first
 * waiter: either the resource itself (HANDOFF) or the right to create one,
 * with the slot already reserved (CREATE). A hand-off is final: the waiter
 * owns what it was given even if it was cancelled a moment later, so no
 * slot can leak. A background task (in a supervisor owned by the pool's
 * creator) closes idle and old resources, refills to min_size and
 * publishes the metrics once a second.
 *
 * Clock reads use CLOCK_MONOTONIC_COARSE: ages and idle times need
 * milliseconds, not nanoseconds, and the fast path stays a few loads.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../core/internal.h"
#include "weft/pool.h"

enum { HANDOFF = 1, CREATE = 2, CLOSED = 3 };

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
    weft_pooled *idle, *used;
    unsigned nidle, nused, ncreating, nwait;
    weft__wq waiters;
    bool closing, orphaned;
    weft_task *owner;
    weft_group *bg;                       /* where maintain() runs */
    bool own_bg;                          /* bg is ours to close */
    weft_task *maint;
    weft_event kick, drained, maint_done;
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

static void idle_push(weft_pool *p, weft_pooled *h)
{
    h->since = coarse_now();
    h->next = p->idle;
    p->idle = h;
    p->nidle++;
}

/* ---- slots ---------------------------------------------------------------- */

static void maybe_drained(weft_pool *p);

/* A slot became free: the first waiter gets the right to create (the slot
 * stays reserved for it), else the background task may refill. */
static void slot_freed(weft_pool *p)
{
    if (p->closing) {
        maybe_drained(p);
        return;
    }
    struct weft__waiter *w = p->waiters.head;
    if (w) {
        p->ncreating++;
        w->result = CREATE;
        weft__wq_remove(&p->waiters, w);
        weft__wake(w->task, 0);
    } else if (total(p) < p->min) {
        weft_event_set(&p->kick);
    }
}

static void destroy(weft_pool *p, weft_pooled *h)
{
    p->ops.destroy(p->ctx, h->res);
    weft__free(h);
    p->discarded++;
}

static void discard(weft_pool *p, weft_pooled *h)
{
    destroy(p, h);
    slot_freed(p);
}

/* Makes a resource in a slot the caller reserved (ncreating counted). */
static int create_one(weft_pool *p, weft_pooled **out)
{
    weft_pooled *h = weft__calloc(1, sizeof *h);
    int rc = h ? p->ops.create(p->ctx, &h->res) : -ENOMEM;
    p->ncreating--;
    if (rc == 0 && p->closing) {
        p->ops.destroy(p->ctx, h->res);
        rc = -WEFT_ECLOSED;
    }
    if (rc) {
        weft__free(h);
        slot_freed(p);
        return rc;
    }
    h->born = coarse_now();
    p->created++;
    *out = h;
    return 0;
}

static bool expired(const weft_pool *p, const weft_pooled *h, weft_time now)
{
    return now - h->born >= p->lifetime;
}

/* The next usable idle resource, lent to self; NULL if none. A check may
 * block: the resource counts as in use meanwhile. */
static weft_pooled *take_idle(weft_pool *p, weft_task *self)
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
        snprintf(p->last_error + len, size - len, " nobody (all being created)");
    weft_log(WEFT_LOG_WARN, "%s", p->last_error);
}

/* ---- acquire and release -------------------------------------------------- */

static int usable(const weft_pool *p)
{
    weft__loop *l = weft__cur_loop;
    if (!p)
        return -EINVAL;
    if (!l || !l->cur)
        return -EPERM;
    return l->id == p->loop ? 0 : -EXDEV;
}

int weft_pool_acquire(weft_pool *p, weft_pooled **out)
{
    int rc = usable(p);
    if (rc || (rc = out ? 0 : -EINVAL))
        return rc;
    if (p->closing)
        return -WEFT_ECLOSED;
    if ((rc = weft__check(WEFT_FOREVER, 0)))
        return rc;
    weft_task *self = weft__self();
    p->acquires++;
    if (!p->waiters.head) {
        weft_pooled *h = take_idle(p, self);
        if (h) {
            p->fast++;
            *out = h;
            return 0;
        }
        if (total(p) < p->max) {
            p->ncreating++;
            if ((rc = create_one(p, &h)))
                return rc;
            used_push(p, h, self);
            h->since = h->born;
            p->fast++;
            *out = h;
            return 0;
        }
    }
    if (deadlock(p, self)) {
        describe(p, "deadlock: the acquiring task holds resources every other holder waits for");
        return -EDEADLK;
    }
    struct weft__waiter w = { .task = self };
    weft__wq_push(&p->waiters, &w);
    p->nwait++;
    weft_time t0 = weft_now();
    rc = weft__wait(t0 + p->acquire_to, -WEFT_EPOOL_TIMEOUT, "pool acquire");
    p->nwait--;
    if (!w.linked) {                      /* handed something: that wins */
        if (w.result == CLOSED)
            return -WEFT_ECLOSED;
        weft_pooled *h = w.data;
        if (w.result == CREATE) {
            if ((rc = create_one(p, &h)))
                return rc;
            used_push(p, h, self);
        }
        h->since = coarse_now();
        if (p->m.hist)
            weft_metric_observe(p->m.hist, (double)(weft_now() - t0) / WEFT_SEC);
        *out = h;
        return 0;
    }
    weft__wq_remove(&p->waiters, &w);
    if (rc == -WEFT_EPOOL_TIMEOUT) {
        p->timeouts++;
        describe(p, "acquire timeout");
    }
    return rc;
}

void *weft_pooled_get(const weft_pooled *h) { return h ? h->res : NULL; }

static void give_back(weft_pool *p, weft_pooled *h, bool broken)
{
    if (!p || !h)
        return;
    if (weft__foreign(&p->loop))
        weft__panic("weft_pool_release: pool '%s' belongs to another loop", p->name);
    used_remove(p, h);
    if (p->closing) {
        destroy(p, h);
        maybe_drained(p);
        return;
    }
    if (broken || (p->ops.reset && p->ops.reset(p->ctx, h->res) < 0) ||
        expired(p, h, coarse_now())) {
        discard(p, h);
        return;
    }
    struct weft__waiter *w = p->waiters.head;
    if (w) {
        w->result = HANDOFF;
        w->data = h;
        used_push(p, h, w->task);         /* in use by the waiter from now on */
        weft__wq_remove(&p->waiters, w);
        weft__wake(w->task, 0);
    } else if (p->nidle < p->max_idle) {
        idle_push(p, h);
    } else {
        discard(p, h);
    }
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
    for (; p->fast; p->fast--)            /* acquires that did not wait */
        weft_metric_observe(p->m.hist, 0);
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

static int maintain_loop(weft_pool *p);

static int maintain(void *arg)
{
    weft_pool *p = arg;
    p->maint = weft__self();
    int rc = maintain_loop(p);
    p->maint = NULL;
    weft_event_set(&p->maint_done);
    return rc;
}

static int maintain_loop(weft_pool *p)
{
    for (;;) {
        weft_scope sc;
        weft_scope_enter(&sc, WEFT_SEC);
        int rc = weft_event_wait(&p->kick);
        weft_scope_exit(&sc);
        if (rc == -ECANCELED)
            break;
        weft_event_clear(&p->kick);
        expire_idle(p);
        while (!p->closing && total(p) < p->min && !p->waiters.head) {
            weft_pooled *h;
            p->ncreating++;
            if ((rc = create_one(p, &h))) {
                weft_log(WEFT_LOG_WARN, "pool '%s': refilling to min_size %u failed: %s",
                         p->name, p->min, weft_strerror(rc));
                if (weft_sleep(WEFT_SEC) == -ECANCELED)
                    return 0;
                break;
            }
            used_push(p, h, weft__self());
            give_back(p, h, false);       /* to a waiter, or idle */
        }
        sync_metrics(p);
    }
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

static unsigned share(unsigned v, int loops)
{
    if (loops <= 1 || !v)
        return v;
    unsigned s = v / (unsigned)loops;
    return s ? s : 1;
}

weft_pool *weft_pool_new(const weft_pool_config *cfg, const weft_pool_ops *ops, void *ctx)
{
    weft_task *self = weft__self();
    weft_pool_config none = { 0 };
    if (!cfg)
        cfg = &none;
    if (!self) {
        errno = EPERM;
        return NULL;
    }
    unsigned max = cfg->max_size ? cfg->max_size : 10;
    if (!ops || !ops->create || !ops->destroy || cfg->min_size > max) {
        errno = EINVAL;
        return NULL;
    }
    weft_pool *p = weft__calloc(1, sizeof *p);
    if (!p)
        return NULL;
    int loops = weft_loop_count();
    p->loop = self->loop->id;
    p->ops = *ops;
    p->ctx = ctx;
    snprintf(p->name, sizeof p->name, "%s", cfg->name && *cfg->name ? cfg->name : "pool");
    p->max = share(max, loops);
    p->min = share(cfg->min_size, loops);
    p->max_idle = cfg->max_idle ? share(cfg->max_idle, loops) : p->max;
    p->acquire_to = cfg->acquire_timeout ? cfg->acquire_timeout : 30 * WEFT_SEC;
    p->idle_to = cfg->idle_timeout ? cfg->idle_timeout : 300 * WEFT_SEC;
    p->lifetime = cfg->max_lifetime ? cfg->max_lifetime : 3600 * WEFT_SEC;
    p->check_idle = cfg->check_idle ? cfg->check_idle : WEFT_SEC;
    p->owner = self;
    weft_event_init(&p->kick);
    weft_event_init(&p->drained);
    weft_event_init(&p->maint_done);
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

static void maybe_drained(weft_pool *p)
{
    if (p->nused || p->ncreating)
        return;
    if (p->orphaned)
        weft__free(p);                    /* close gave up waiting: last one out */
    else
        weft_event_set(&p->drained);
}

int weft_pool_close(weft_pool *p, weft_time grace)
{
    int rc = usable(p);
    if (rc)
        return rc;
    if (p->closing)
        return -WEFT_ECLOSED;
    if (p->own_bg && weft__self() != p->owner)
        return -EPERM;                    /* its background task is the owner's */
    p->closing = true;
    struct weft__waiter *w;
    while ((w = p->waiters.head)) {
        w->result = CLOSED;
        weft__wq_remove(&p->waiters, w);
        weft__wake(w->task, 0);
    }
    while (p->idle) {
        weft_pooled *h = p->idle;
        p->idle = h->next;
        p->nidle--;
        destroy(p, h);
    }
    if (p->own_bg) {
        weft_supervisor_close(p->bg, 0);
    } else if (p->maint) {
        weft_task_cancel(p->maint);       /* and wait for it, whatever happens */
        weft_scope sh;
        weft_scope_enter_shielded(&sh, 5 * WEFT_SEC);
        weft_event_wait(&p->maint_done);
        weft_scope_exit(&sh);
    }
    sync_metrics(p);
    if (p->nused || p->ncreating) {
        weft_scope sc;
        weft_scope_enter(&sc, grace);
        weft_event_wait(&p->drained);
        weft_scope_exit(&sc);
    }
    if (p->nused || p->ncreating) {
        p->orphaned = true;               /* freed by the last release */
        return -ETIMEDOUT;
    }
    weft__free(p);
    return 0;
}

void weft_pool_stats_get(const weft_pool *p, weft_pool_stats *s)
{
    if (!p || !s)
        return;
    *s = (weft_pool_stats){ total(p), p->nidle, p->nused, p->ncreating, p->nwait,
                            p->acquires, p->timeouts, p->created, p->discarded };
}

const char *weft_pool_last_error(const weft_pool *p) { return p ? p->last_error : ""; }
