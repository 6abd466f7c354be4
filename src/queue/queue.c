/*
 * The queue's front: URLs to backends, options, checking what callers
 * give before any backend sees it, and the calls that only forward.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/kernel.h"
#include "internal.h"
#include "weft/config.h"
#include "weft/url.h"

#define KEY_MAX 512

int64_t weft__unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void weft__claim_clear(struct weft__claim *c)
{
    free(c->queue);
    free(c->type);
    free(c->payload);
    c->queue = c->type = c->payload = NULL;
}

/* label values are escaped as the text format wants */
static void label(char *out, size_t size, const char *v)
{
    size_t n = 0;
    for (; *v && n + 3 < size; v++) {
        if (*v == '"' || *v == '\\' || *v == '\n')
            out[n++] = '\\';
        out[n++] = *v == '\n' ? 'n' : *v;
    }
    out[n] = 0;
}

weft_metric *weft__qmetric(const char *family, const char *queue, const char *result)
{
    char q[2 * WEFT__QNAME_MAX + 1], name[3 * WEFT__QNAME_MAX];
    label(q, sizeof q, queue);
    if (strcmp(family, "weft_queue_jobs_total") == 0) {
        snprintf(name, sizeof name, "%s{queue=\"%s\",result=\"%s\"}", family, q, result);
        return weft_counter(name, "Jobs by what became of them");
    }
    snprintf(name, sizeof name, "%s{queue=\"%s\"}", family, q);
    return weft_gauge(name, strcmp(family, "weft_queue_running") == 0
                                ? "Jobs this process is running"
                                : "Age of the oldest due job, seconds");
}

int weft__queue_enter(weft_queue *q)
{
    return q ? weft__owner_check(q->loop_) : -EINVAL;
}

/* ---- names and states -------------------------------------------------- */

static const char *const state_names[] = { "queued", "scheduled", "running", "done", "dead" };

const char *weft_job_state_name(int state)
{
    return state >= 0 && state <= WEFT_JOB_DEAD ? state_names[state] : NULL;
}

int weft_job_state_parse(const char *name)
{
    for (int i = 0; name && i <= WEFT_JOB_DEAD; i++)
        if (strcmp(name, state_names[i]) == 0)
            return i;
    return -EINVAL;
}

void weft_job_info_free(weft_job_info *info)
{
    if (!info)
        return;
    weft__free(info->queue);
    weft__free(info->type);
    weft__free(info->payload);
    weft__free(info->result);
    weft__free(info->last_error);
    info->queue = info->type = info->payload = info->result = info->last_error = NULL;
}

/* ---- open and close ---------------------------------------------------- */

static int check_opts(weft_queue_opts *o, const weft_queue_opts *in)
{
    if (in)
        *o = *in;
    if (o->lease < 0 || o->max_attempts < 0 || o->backoff < 0 || o->backoff_max < 0 ||
        o->job_timeout < 0 || o->shutdown_grace < 0)
        return -EINVAL;
    if (o->lease && (o->lease < 3 * WEFT_MS || o->lease > 86400 * WEFT_SEC))
        return -EINVAL;                   /* a heartbeat every lease/3 ms; a day at most */
    if (o->backoff_max > 30 * 86400 * WEFT_SEC)
        o->backoff_max = 30 * 86400 * WEFT_SEC;
    o->lease = o->lease ? o->lease : 30 * WEFT_SEC;
    o->max_attempts = o->max_attempts ? o->max_attempts : 5;
    o->backoff = o->backoff ? o->backoff : WEFT_SEC;
    o->backoff_max = o->backoff_max ? o->backoff_max : 3600 * WEFT_SEC;
    o->job_timeout = o->job_timeout ? o->job_timeout : 300 * WEFT_SEC;
    o->shutdown_grace = o->shutdown_grace ? o->shutdown_grace : 10 * WEFT_SEC;
    return 0;
}

static int backend_of(const char *url, const struct weft__qbackend **be, const char **rest)
{
    if (strncmp(url, "sqlite:", 7) == 0) {
        *be = &weft__qsqlite;
        *rest = url + 7;
        /* sqlite://PATH is tolerated: sqlite:///abs and sqlite://rel */
        if (strncmp(*rest, "//", 2) == 0)
            *rest += 2;
        return 0;
    }
#if WEFT_HAVE_PG
    if (strncmp(url, "postgres://", 11) == 0 || strncmp(url, "postgresql://", 13) == 0) {
        *be = &weft__qpg;
        *rest = url;
        return 0;
    }
#endif
#if WEFT_HAVE_REDIS
    if (strncmp(url, "redis://", 8) == 0 || strncmp(url, "rediss://", 9) == 0) {
        *be = &weft__qredis;
        *rest = url;                      /* the whole URL is the server's address */
        return 0;
    }
#endif
    char shown[256];
    weft_url_redact(url, shown, sizeof shown);
    weft_log(WEFT_LOG_WARN, "queue url '%s': not sqlite:PATH, redis://… or postgres://…", shown);
    return -EINVAL;
}

int weft_queue_open(weft_queue **out, const char *url, const weft_queue_opts *o)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!url)
        return -EINVAL;
    weft_task *self;
    int rc = weft__enter(weft__loop_id(), &self);
    if (rc)
        return rc;
    weft_queue *q = weft__calloc(1, sizeof *q);
    if (!q)
        return -ENOMEM;
    const char *rest;
    if ((rc = check_opts(&q->o, o)) != 0) {
        weft_log(WEFT_LOG_WARN, "queue: bad options: durations and counts must not be"
                 " negative, a lease is 3 ms to a day");
        goto fail;
    }
    if ((rc = backend_of(url, &q->be, &rest)) != 0)
        goto fail;
    rc = -ENOMEM;
    size_t len = strlen(url) + 4;
    if (!(q->url = strdup(url)) || !(q->shown = malloc(len)) ||
        !(q->stop_chan = weft_chan_new_shared(1, 1)))
        goto fail;
    weft_url_redact(url, q->shown, len);
    pthread_mutex_init(&q->stop_lock, NULL);
    q->loop_ = weft__loop_id();
    if ((rc = q->be->open(q, rest)) != 0) {
        pthread_mutex_destroy(&q->stop_lock);
        goto fail;
    }
    *out = q;
    return 0;
fail:
    if (q->stop_chan)
        weft_chan_free(q->stop_chan);
    free(q->url);
    free(q->shown);
    weft__free(q);
    return rc;
}

int weft_queue_close(weft_queue *q)
{
    if (!q)
        return 0;
    int rc = weft__queue_enter(q);
    if (rc)
        return rc;
    if (q->workers || q->calls)
        return -EBUSY;
    q->be->close(q);
    weft_chan_free(q->stop_chan);
    pthread_mutex_destroy(&q->stop_lock);
    free(q->url);
    free(q->shown);
    weft__free(q);
    return 0;
}

/* ---- enqueue ----------------------------------------------------------- */

void weft__utf8_fix(char *s)
{
    for (unsigned char *p = (unsigned char *)s; *p;) {
        size_t n = weft__utf8_len(p);
        if (n)
            p += n;
        else
            *p++ = '?';
    }
}

/* names go into SQL text, Redis keys and JSON: printable UTF-8 */
bool weft__good_name(const char *s, size_t max)
{
    if (!s || !*s || strlen(s) > max)
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        size_t n = weft__utf8_len(p);
        if (!n || *p < 0x20 || *p == 0x7f)
            return false;
        p += n;
    }
    return true;
}

static bool is_json(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &e);
    json_decref(j);
    return j != NULL;
}

#define RUN_AT_MAX ((int64_t)1 << 53)

/* the spec with defaults filled in, or -EINVAL naming what is wrong */
static int normalize(const weft_job_spec *in, weft_job_spec *out)
{
    *out = *in;
    const weft_job_opts *o = &in->opts;
    const char *why = NULL;
    if (!out->payload)
        out->payload = "{}";
    if (!weft__good_name(in->queue, WEFT__QNAME_MAX))
        why = "the queue name is empty, too long, not UTF-8 or has control characters";
    else if (!weft__good_name(in->type, WEFT__QNAME_MAX))
        why = "the job type is empty, too long, not UTF-8 or has control characters";
    else if (o->priority < 0 || o->priority > 9)
        why = "priority is not within 0..9";
    else if (o->max_attempts < 0 || o->delay < 0 || o->run_at_ms < 0)
        why = "a negative delay, run_at or max_attempts";
    else if (o->key && !weft__good_name(o->key, KEY_MAX))
        why = "the key is empty, longer than 512 bytes, not UTF-8 or has control characters";
    else if (!is_json(out->payload))
        why = "the payload is not JSON";
    /* past 2^53 ms (year 287,396) is never; Redis keeps times as doubles */
    if (out->opts.run_at_ms > RUN_AT_MAX)
        out->opts.run_at_ms = RUN_AT_MAX;
    if (why) {
        weft_log(WEFT_LOG_WARN, "queue enqueue (%.64s, %.64s): %s", in->queue ? in->queue : "NULL",
                 in->type ? in->type : "NULL", why);
        return -EINVAL;
    }
    return 0;                             /* max_attempts 0 stays: the worker's, when claimed */
}

int weft_queue_enqueue_batch(weft_queue *q, const weft_job_spec *jobs, int n, weft_job_id *ids)
{
    int rc = weft__queue_enter(q);
    if (rc)
        return rc;
    if (n < 0 || (n && !jobs))
        return -EINVAL;
    if (n == 0)
        return 0;
    weft_job_spec *norm = weft__malloc((size_t)n * sizeof *norm);
    bool *dup = weft__calloc((size_t)n, sizeof *dup);
    weft_job_id *got = ids ? ids : weft__calloc((size_t)n, sizeof *got);
    rc = norm && dup && got ? 0 : -ENOMEM;
    for (int i = 0; i < n && !rc; i++)
        rc = normalize(&jobs[i], &norm[i]);
    if (!rc) {
        q->calls++;
        rc = q->be->enqueue(q, norm, n, weft__unix_ms(), got, dup);
        q->calls--;
    }
    const char *last = NULL;
    weft_metric *m = NULL;
    for (int i = 0; i < n && rc == 0; i++) {
        if (dup[i])
            continue;
        if (!last || strcmp(last, norm[i].queue) != 0)
            m = weft__qmetric("weft_queue_jobs_total", last = norm[i].queue, "enqueued");
        if (m)
            weft_metric_add(m, 1);
    }
    if (rc == 0 && n == 1 && dup[0])
        rc = 1;
    weft__free(norm);
    weft__free(dup);
    if (got != ids)
        weft__free(got);
    return rc;
}

int weft_queue_enqueue(weft_queue *q, const char *queue, const char *type, const char *payload,
                       const weft_job_opts *o, weft_job_id *id)
{
    weft_job_spec spec = { queue, type, payload, { 0 } };
    if (o)
        spec.opts = *o;
    weft_job_id got = 0;
    int rc = weft_queue_enqueue_batch(q, &spec, 1, &got);
    if (id)
        *id = rc >= 0 ? got : 0;
    return rc;
}

/* ---- reading and managing jobs ----------------------------------------- */

int weft_queue_get(weft_queue *q, weft_job_id id, weft_job_info *out)
{
    if (!out)
        return -EINVAL;
    memset(out, 0, sizeof *out);
    int rc = weft__queue_enter(q);
    if (rc)
        return rc;
    q->calls++;
    rc = q->be->get(q, id, weft__unix_ms(), out);
    q->calls--;
    return rc;
}

int weft_queue_list(weft_queue *q, const char *queue, int state, weft_job_id after,
                    weft_job_info *out, int max)
{
    int rc = weft__queue_enter(q);
    if (rc)
        return rc;
    if (max < 0 || (max && !out) || state < -1 || state > WEFT_JOB_DEAD)
        return -EINVAL;
    if (!max)
        return 0;
    memset(out, 0, (size_t)max * sizeof *out);
    q->calls++;
    rc = q->be->list(q, queue, state, after, weft__unix_ms(), out, max);
    q->calls--;
    return rc;
}

int weft_queue_retry(weft_queue *q, weft_job_id id)
{
    int rc = weft__queue_enter(q);
    if (rc)
        return rc;
    q->calls++;
    rc = q->be->retry(q, id, weft__unix_ms());
    q->calls--;
    return rc;
}

int weft_queue_purge(weft_queue *q, const char *queue, int state)
{
    int rc = weft__queue_enter(q);
    if (rc)
        return rc;
    if (state != -1 && state != WEFT_JOB_DONE && state != WEFT_JOB_DEAD)
        return -EINVAL;
    q->calls++;
    rc = q->be->purge(q, queue, state);
    q->calls--;
    return rc;
}

int weft_queue_stats_get(weft_queue *q, const char *queue, weft_queue_stats *s)
{
    if (!s)
        return -EINVAL;
    memset(s, 0, sizeof *s);
    int rc = weft__queue_enter(q);
    if (rc)
        return rc;
    q->calls++;
    rc = q->be->stats(q, queue, weft__unix_ms(), s);
    q->calls--;
    weft_metric *m = rc == 0 && queue ? weft__qmetric("weft_queue_lag_seconds", queue, NULL) : NULL;
    if (m)
        weft_metric_set(m, (int64_t)(s->lag_s + 0.5));
    return rc;
}
