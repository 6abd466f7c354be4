/*
 * weft_queue_work: claims due jobs, runs each on a task of its own, and
 * writes what became of them, the same way on every backend.
 *
 * One round trip does both halves of the cycle: the outcomes gathered
 * since the last one (acks, retries, dead letters) and the claim of as
 * many jobs as there are free slots go to the backend together, so on
 * SQLite a cycle costs one transaction and one fsync however many jobs it
 * finished and started. An outcome waits at most 10 ms or 256 outcomes for
 * its round; a job's slot is free as soon as its handler returned.
 *
 * Beside the main task: a heartbeat moves the leases of running jobs every
 * lease/3 (a job whose lease was lost meanwhile is cancelled: someone else
 * runs it now), a watcher wakes the main task when another writer touched
 * the store, a stopper waits for weft_queue_stop.
 */
#include <errno.h>
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "../core/kernel.h"
#include "internal.h"

#define ROUND_MAX 256                     /* jobs claimed, outcomes held */
#define HOLD (10 * WEFT_MS)               /* an outcome's longest wait for its round */
#define IDLE_CHECK (1 * WEFT_SEC)         /* an idle worker looks anyway this often */
#define GIVE_UP (30 * WEFT_SEC)           /* storage failing this long ends the worker */

struct job {
    struct job *next, **pprev;            /* the worker's running jobs */
    struct worker *w;
    struct weft__claim c;
    weft_job pub;                         /* what the handler sees */
    weft_task *task;
    char *result, *error;                 /* set by the handler */
    bool released;                        /* its outcome is settled: drop the run's */
};

struct worker {
    weft_queue *q;
    const char *queue;
    const weft_job_handler *h;
    int nh, concurrency, running;
    struct job *jobs;
    struct weft__outcome *out;            /* waiting for the next round */
    int nout, cap;
    weft_time oldest;                     /* when out's first entry came */
    weft_event wake;
    bool maybe;                           /* a claim may find jobs */
    bool stop;
    bool releasing;                       /* the grace is over: running jobs are cancelled */
    weft_time next_due;                   /* when a scheduled job or a lease falls due */
    int failures;                         /* rounds failed in a row */
    weft_group *jobs_g, *aux_g;
    void *watch;
    weft_metric *m_ok, *m_retry, *m_dead, *m_running, *m_lag;
};

/* ---- outcomes ---------------------------------------------------------- */

static int out_push(struct worker *w, const struct weft__outcome *o)
{
    if (w->nout == w->cap) {
        int cap = w->cap ? 2 * w->cap : 64;
        void *p = weft__realloc(w->out, (size_t)cap * sizeof *w->out);
        if (!p)
            return -ENOMEM;
        w->out = p;
        w->cap = cap;
    }
    if (w->nout == 0)
        w->oldest = weft_now();
    w->out[w->nout++] = *o;
    if (w->nout >= ROUND_MAX)
        weft_event_set(&w->wake);
    return 0;
}

static void outs_free(struct weft__outcome *o, int n)
{
    for (int i = 0; i < n; i++)
        weft__free(o[i].text);
    weft__free(o);
}

/* the delay before attempt+1: backoff doubled per attempt, ±25 %, capped */
static weft_time backoff(const weft_queue_opts *o, int attempt)
{
    weft_time d = o->backoff;
    for (int i = 1; i < attempt && d < o->backoff_max; i++)
        d = d > o->backoff_max / 2 ? o->backoff_max : 2 * d;
    if (d > o->backoff_max)
        d = o->backoff_max;
    uint32_t r = 0;
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) != sizeof r)
        r = (uint32_t)weft_now();
    double x = (double)d * (0.75 + 0.5 * (r / 4294967296.0));
    return x >= 9e18 ? (weft_time)9e18 : (weft_time)x;
}

/* what became of j's run (kind: WEFT__DONE ...; text: result or error) */
static void settle(struct job *j, int kind, const char *text)
{
    struct worker *w = j->w;
    weft_metric *m = kind == WEFT__DONE    ? w->m_ok
                     : kind == WEFT__DEAD  ? w->m_dead
                     : kind == WEFT__RETRY ? w->m_retry
                                           : NULL;
    int64_t now = weft__unix_ms();
    struct weft__outcome o = { j->c.id, j->c.token, kind, now, text ? weft__strdup(text) : NULL };
    if (kind == WEFT__RETRY)
        o.at_ms = now + backoff(&w->q->o, j->c.attempt) / WEFT_MS;
    if (out_push(w, &o) < 0) {
        weft__free(o.text);               /* its lease expires: it runs again */
        weft_log(WEFT_LOG_WARN, "queue %s: job %lld: no memory to record its outcome",
                 w->queue, (long long)j->c.id);
    } else if (m) {
        weft_metric_add(m, 1);
    }
    j->released = true;
}

static void job_free(struct job *j)
{
    weft__claim_clear(&j->c);
    weft__free(j->result);
    weft__free(j->error);
    weft__free(j);
}

/* ---- one job ----------------------------------------------------------- */

static const weft_job_handler *handler_of(const struct worker *w, const char *type)
{
    for (int i = 0; i < w->nh; i++)
        if (strcmp(w->h[i].type, type) == 0)
            return &w->h[i];
    return NULL;
}

static void run(struct job *j)
{
    struct worker *w = j->w;
    const weft_queue_opts *o = &w->q->o;
    char why[WEFT__QNAME_MAX + 160];
    const weft_job_handler *h = handler_of(w, j->c.type);
    json_error_t e;
    json_t *payload = h ? json_loads(j->c.payload, JSON_DECODE_ANY, &e) : NULL;
    if (!h) {
        snprintf(why, sizeof why, "unknown job type '%s': no handler for it", j->c.type);
        settle(j, WEFT__DEAD, why);
        return;
    }
    if (!payload) {
        snprintf(why, sizeof why, "invalid payload: not JSON (%s at line %d column %d)", e.text,
                 e.line, e.column);
        settle(j, WEFT__DEAD, why);
        return;
    }
    json_decref(payload);
    weft_time t0 = weft_now();
    weft_scope s;
    weft_scope_enter(&s, o->job_timeout);
    int rc = h->fn(&j->pub, h->ctx);
    bool late = weft_scope_exit(&s) || weft_now() - t0 >= o->job_timeout;
    if (j->released)
        return;                           /* its lease was lost meanwhile */
    if (w->releasing && rc != 0) {
        settle(j, WEFT__RELEASE, NULL);   /* cut short by the stop: not an attempt */
        return;
    }
    if (late && !w->releasing) {
        snprintf(why, sizeof why, "job timeout: the handler ran past %lld ms",
                 (long long)(o->job_timeout / WEFT_MS));
        rc = -ETIMEDOUT;
    } else if (rc == 0) {
        settle(j, WEFT__DONE, j->result);
        return;
    } else {
        /* a handler's words, cut to fit: stored as text and shown as JSON */
        snprintf(why, sizeof why, "%s", j->error ? j->error : weft_strerror(rc));
        weft__utf8_fix(why);
    }
    bool dead = rc == -WEFT_EJOB_DEAD || j->c.attempt >= j->c.max_attempts;
    settle(j, dead ? WEFT__DEAD : WEFT__RETRY, why);
}

static int job_main(void *arg)
{
    struct job *j = arg;
    struct worker *w = j->w;
    j->task = weft_self();
    if (!j->released)
        run(j);
    *j->pprev = j->next;
    if (j->next)
        j->next->pprev = j->pprev;
    w->running--;
    weft_metric_add(w->m_running, -1);
    job_free(j);
    weft_event_set(&w->wake);
    return 0;                             /* never a failure: a group would cancel the rest */
}

static struct job *job_of(const weft_job *pub)
{
    return (struct job *)((char *)pub - offsetof(struct job, pub));
}

static int set_text(char **slot, const char *s)
{
    char *c = weft__strdup(s);
    if (!c)
        return -ENOMEM;
    weft__free(*slot);
    *slot = c;
    return 0;
}

int weft_job_set_result(const weft_job *job, const char *json)
{
    if (!job || !json)
        return -EINVAL;
    json_t *j = json_loads(json, JSON_DECODE_ANY, NULL);
    if (!j)
        return -EINVAL;
    json_decref(j);
    return set_text(&job_of(job)->result, json);
}

int weft_job_set_error(const weft_job *job, const char *msg)
{
    return job && msg ? set_text(&job_of(job)->error, msg) : -EINVAL;
}

/* ---- rounds ------------------------------------------------------------ */

static bool stopping(struct worker *w);

/* a claimed job on a task of its own; given back when stopping */
static void start(struct worker *w, struct weft__claim *c)
{
    struct job *j = stopping(w) ? NULL : weft__calloc(1, sizeof *j);
    if (!j) {
        struct weft__outcome o = { c->id, c->token, WEFT__RELEASE, 0, NULL };
        weft__claim_clear(c);
        out_push(w, &o);
        return;
    }
    j->w = w;
    j->c = *c;
    j->pub = (weft_job){ c->id, c->queue, c->type, c->payload, c->attempt, c->max_attempts };
    j->next = w->jobs;
    if (j->next)
        j->next->pprev = &j->next;
    j->pprev = &w->jobs;
    w->jobs = j;
    w->running++;
    weft_metric_add(w->m_running, 1);
    if (weft_spawn(w->jobs_g, job_main, j, "queue job") < 0) {
        settle(j, WEFT__RELEASE, NULL);   /* it ran nowhere: give it back */
        *j->pprev = j->next;
        if (j->next)
            j->next->pprev = j->pprev;
        w->running--;
        weft_metric_add(w->m_running, -1);
        job_free(j);
    }
}

/* the monotonic time of Unix ms `at` (INT64_MAX: never) */
static weft_time due_in(int64_t at)
{
    if (at == INT64_MAX)
        return WEFT_FOREVER;
    int64_t now = weft__unix_ms();
    if (at <= now)
        return weft_now();
    return at - now > 3600 * 1000 ? weft_now() + 3600 * WEFT_SEC : weft_now() + (at - now) * WEFT_MS;
}

/* writes the waiting outcomes and claims up to max jobs: how many, or < 0
 * (the outcomes stay for the next round) */
static int round_trip(struct worker *w, int max)
{
    struct weft__outcome *o = w->out;
    int no = w->nout;
    w->out = NULL;
    w->nout = w->cap = 0;
    struct weft__claim c[ROUND_MAX];
    int64_t now = weft__unix_ms(), next;
    if (max > ROUND_MAX)
        max = ROUND_MAX;
    int n = w->q->be->claim(w->q, w->queue, o, no, max, now, now + w->q->o.lease / WEFT_MS, c,
                            &next);
    if (n < 0) {
        for (int i = 0; i < no; i++)
            if (out_push(w, &o[i]) < 0)
                weft__free(o[i].text);
        weft__free(o);
        return n;
    }
    outs_free(o, no);
    int64_t lag = 0;
    for (int i = 0; i < n; i++) {
        /* due times come from the file: nothing is assumed of their range */
        if (c[i].due_ms >= 0 && c[i].due_ms < now && now - c[i].due_ms > lag)
            lag = now - c[i].due_ms;
        start(w, &c[i]);
    }
    if (max > 0) {
        weft_metric_set(w->m_lag, (lag + 500) / 1000);
        if (n < max) {
            w->maybe = false;
            w->next_due = due_in(next);
        }
    }
    return n;
}

/* ---- the helpers beside the main task ---------------------------------- */

static int heartbeat_main(void *arg)
{
    struct worker *w = arg;
    const weft_queue_opts *o = &w->q->o;
    for (;;) {
        if (weft_sleep(o->lease / 3) < 0)
            return 0;
        int n = 0;
        for (struct job *j = w->jobs; j; j = j->next)
            n += !j->released;
        if (!n)
            continue;
        weft_job_id *ids = weft__malloc((size_t)n * sizeof *ids);
        uint64_t *tokens = weft__malloc((size_t)n * sizeof *tokens);
        bool *lost = weft__calloc((size_t)n, sizeof *lost);
        int i = 0, rc = -ENOMEM;
        if (ids && tokens && lost) {
            for (struct job *j = w->jobs; j && i < n; j = j->next)
                if (!j->released) {
                    ids[i] = j->c.id;
                    tokens[i++] = j->c.token;
                }
            rc = w->q->be->extend(w->q, ids, tokens, i, weft__unix_ms() + o->lease / WEFT_MS,
                                  lost);
        }
        if (rc < 0 && rc != -ECANCELED)
            weft_log(WEFT_LOG_WARN, "queue %s: leases not extended: %s", w->queue,
                     weft_strerror(rc));
        for (int k = 0; rc == 0 && k < i; k++) {
            if (!lost[k])
                continue;
            for (struct job *j = w->jobs; j; j = j->next)
                if (j->c.id == ids[k] && j->c.token == tokens[k] && !j->released) {
                    weft_log(WEFT_LOG_WARN, "queue %s: job %lld lost its lease (it expired):"
                             " cancelled here, it runs elsewhere", w->queue, (long long)j->c.id);
                    j->released = true;
                    if (j->task)
                        weft_task_cancel(j->task);
                }
        }
        weft__free(ids);
        weft__free(tokens);
        weft__free(lost);
        if (rc == -ECANCELED)
            return 0;
    }
}

static int watch_main(void *arg)
{
    struct worker *w = arg;
    for (;;) {
        int rc = w->q->be->watch(w->watch);
        if (rc == -ECANCELED)
            return 0;
        if (rc < 0 && weft_sleep(100 * WEFT_MS) < 0)
            return 0;
        w->maybe = true;
        weft_event_set(&w->wake);
    }
}

static int stopper_main(void *arg)
{
    struct worker *w = arg;
    char c;
    if (weft_chan_recv(w->q->stop_chan, &c) == -EPIPE) {
        w->stop = true;
        weft_event_set(&w->wake);
    }
    return 0;
}

/* ---- the main task ----------------------------------------------------- */

/* the stopper task tells the loop; the flag is read too, so that nothing
 * is claimed once weft_queue_stop has returned on another thread */
static bool stopping(struct worker *w)
{
    return w->stop || __atomic_load_n(&w->q->stop, __ATOMIC_ACQUIRE);
}

/* claims and waits until a stop; < 0: storage failing for GIVE_UP */
static int serve(struct worker *w)
{
    weft_time failing_since = 0;
    while (!stopping(w) && !weft_cancelled()) {
        weft_event_clear(&w->wake);
        weft_time now = weft_now();
        if (w->next_due <= now) {
            w->maybe = true;
            w->next_due = WEFT_FOREVER;
        }
        int free = w->concurrency - w->running;
        bool flush = w->nout >= ROUND_MAX || (w->nout && now >= w->oldest + HOLD);
        if ((free > 0 && w->maybe) || flush) {
            int rc = round_trip(w, free > 0 && w->maybe ? free : 0);
            if (rc >= 0) {
                w->failures = 0;
                continue;
            }
            if (rc == -ECANCELED || weft_cancelled())
                break;
            if (w->failures == 0)
                failing_since = now;
            else if (now - failing_since >= GIVE_UP) {
                weft_log(WEFT_LOG_ERROR, "queue %s: %s for %lld s: the worker stops", w->queue,
                         weft_strerror(rc), (long long)(GIVE_UP / WEFT_SEC));
                return rc;
            }
            if (w->failures++ % 20 == 0)
                weft_log(WEFT_LOG_WARN, "queue %s: %s (retrying)", w->queue, weft_strerror(rc));
            weft_time pause = (100 * WEFT_MS) << (w->failures < 6 ? w->failures : 6);
            weft_scope s;
            weft_scope_enter(&s, pause);
            weft_event_wait(&w->wake);
            weft_scope_exit(&s);
            continue;
        }
        weft_time until = now + IDLE_CHECK;
        if (w->next_due < until)
            until = w->next_due;
        if (w->nout && w->oldest + HOLD < until)
            until = w->oldest + HOLD;
        weft_scope s;
        weft_scope_enter_at(&s, until);
        int rc = weft_event_wait(&w->wake);
        weft_scope_exit(&s);
        if (rc == -ETIMEDOUT && weft_now() >= now + IDLE_CHECK)
            w->maybe = true;
        if (rc == -ECANCELED)
            break;
    }
    return 0;
}

/* No more claims; running jobs get the grace, then are cancelled. A job
 * is released only once its task has ended (a handler stuck in blocking
 * work still holds its lease, heartbeat included): released while it still
 * ran, another worker would run it beside it. A cancelled handler that
 * returns 0 is acknowledged. */
static void drain(struct worker *w)
{
    weft_time end = weft__deadline_add(weft_now(), w->q->o.shutdown_grace);
    while (w->running > 0 && weft_now() < end) {
        weft_event_clear(&w->wake);
        weft_scope s;
        weft_scope_enter_at(&s, end);
        weft_event_wait(&w->wake);
        weft_scope_exit(&s);
        if (w->nout >= ROUND_MAX)
            round_trip(w, 0);
    }
    w->releasing = true;
    for (struct job *j = w->jobs; j; j = j->next)
        if (!j->released && j->task)
            weft_task_cancel(j->task);
    weft_group_wait(w->jobs_g);           /* each settles its own outcome */
    w->jobs_g = NULL;
    for (int i = 0; i < 3 && w->nout; i++)
        round_trip(w, 0);
}

static int check_args(const char *queue, const weft_job_handler *h, int nh, int concurrency)
{
    if (!weft__good_name(queue, WEFT__QNAME_MAX) || !h || nh < 1 || concurrency < 1)
        return -EINVAL;
    for (int i = 0; i < nh; i++)
        if (!h[i].type || !*h[i].type || !h[i].fn)
            return -EINVAL;
    return 0;
}

/* a stop ends the workers running; the last one out re-arms it */
static bool worker_enter(weft_queue *q)
{
    pthread_mutex_lock(&q->stop_lock);
    q->workers++;
    bool stopped = q->stop;
    pthread_mutex_unlock(&q->stop_lock);
    return !stopped;
}

static void worker_leave(weft_queue *q)
{
    pthread_mutex_lock(&q->stop_lock);
    if (--q->workers == 0 && q->stop) {
        weft_chan *c = weft_chan_new_shared(1, 1);
        if (c) {
            weft_chan_free(q->stop_chan);
            q->stop_chan = c;
            __atomic_store_n(&q->stop, false, __ATOMIC_RELEASE);
        }
    }
    pthread_mutex_unlock(&q->stop_lock);
}

void weft_queue_stop(weft_queue *q)
{
    if (!q)
        return;
    pthread_mutex_lock(&q->stop_lock);
    __atomic_store_n(&q->stop, true, __ATOMIC_RELEASE);
    weft_chan_close(q->stop_chan);
    pthread_mutex_unlock(&q->stop_lock);
}

static int work(struct worker *w)
{
    weft_queue *q = w->q;
    w->m_ok = weft__qmetric("weft_queue_jobs_total", w->queue, "succeeded");
    w->m_retry = weft__qmetric("weft_queue_jobs_total", w->queue, "retried");
    w->m_dead = weft__qmetric("weft_queue_jobs_total", w->queue, "dead");
    w->m_running = weft__qmetric("weft_queue_running", w->queue, NULL);
    w->m_lag = weft__qmetric("weft_queue_lag_seconds", w->queue, NULL);
    if (!w->m_ok || !w->m_retry || !w->m_dead || !w->m_running || !w->m_lag)
        return -ENOMEM;
    if (!(w->jobs_g = weft_group_new()))
        return -errno;
    if (!(w->aux_g = weft_group_new()) || !(w->watch = q->be->watch_new(q, w->queue)) ||
        weft_spawn(w->aux_g, stopper_main, w, "queue stopper") ||
        weft_spawn(w->aux_g, heartbeat_main, w, "queue heartbeat") ||
        weft_spawn(w->aux_g, watch_main, w, "queue watcher")) {
        if (w->aux_g) {
            weft_group_cancel(w->aux_g);
            weft_group_wait(w->aux_g);
        }
        weft_group_wait(w->jobs_g);
        if (w->watch)
            q->be->watch_free(w->watch);
        return -ENOMEM;
    }
    int rc = serve(w);
    /* shielded: a cancelled caller still gets a graceful stop; the shield's
     * own bound is long, handlers that ignore cancellation hold it */
    weft_scope s;
    weft_scope_enter_shielded(&s, weft__deadline_add(q->o.shutdown_grace, 600 * WEFT_SEC));
    drain(w);
    weft_group_cancel(w->aux_g);
    weft_group_wait(w->aux_g);
    weft_scope_exit(&s);
    if (w->nout)
        weft_log(WEFT_LOG_WARN, "queue %s: %d outcomes not written: those jobs run again once"
                 " their leases expire", w->queue, w->nout);
    outs_free(w->out, w->nout);
    q->be->watch_free(w->watch);
    return rc;
}

int weft_queue_work(weft_queue *q, const char *queue, const weft_job_handler *h, int nh,
                    int concurrency)
{
    int rc = weft__queue_enter(q);
    if (rc)
        return rc;
    if ((rc = check_args(queue, h, nh, concurrency)) != 0)
        return rc;
    struct worker w = { .q = q, .queue = queue, .h = h, .nh = nh, .concurrency = concurrency,
                        .maybe = true, .next_due = WEFT_FOREVER };
    weft_event_init(&w.wake);
    if (worker_enter(q))
        rc = work(&w);
    worker_leave(q);
    return rc;
}
