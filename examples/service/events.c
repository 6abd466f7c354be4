/*
 * POST /events on the durable queue: an event is a job ("event" in queue
 * "events") committed before the 202, so a crash after the answer loses
 * nothing; workers on every loop run it (record the event if its user
 * exists, else fail: retried, then dead with the reason). GET /events/{id}
 * tells its state. Each event gets a random 128-bit id when accepted, in
 * its job's payload and as the job's idempotency key: the events table is
 * keyed by it, since a job id is unique only within one queue (instances
 * sharing a database may each have their own, or --queue may change).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "service.h"

static const char QUEUE[] = "events";

/* per loop: the queue's handle (loop-local), the task working it, and
 * what wakes that task from its pause between runs when the loop stops */
static __thread weft_queue *queue;
static __thread weft_group *workers;
static __thread weft_event stopping;
/* loops whose event workers run, or pause after their queue failed */
static weft_metric *running, *pausing, *restarts;

/* the longest pause between runs of the workers after a storage failure */
#define PAUSE_MAX (30 * WEFT_SEC)

void svc_events_metrics(void)
{
    running = weft_gauge("weft_example_event_workers{state=\"running\"}",
                         "loops whose event workers run, or pause after a queue failure");
    pausing = weft_gauge("weft_example_event_workers{state=\"paused\"}", NULL);
    restarts = weft_counter("weft_example_event_workers_restarts_total",
                            "event workers run again after their queue failed");
}

/* what a client sent, for the log: cut, no control characters */
static void loggable(char *out, size_t size, const char *s)
{
    snprintf(out, size, "%s", s);
    for (char *t = out; *t; t++)
        if ((unsigned char)*t < 0x20 || *t == 0x7f)
            *t = '?';
}

/* the job: the event recorded if its user exists (once, however often the
 * job runs), else a failure with the reason */
static int run_event(const weft_job *job, void *ctx)
{
    (void)ctx;
    json_t *p = json_loads(job->payload, 0, NULL);
    json_t *type = json_object_get(p, "type"), *user = json_object_get(p, "user_id");
    json_t *data = json_object_get(p, "data"), *eid = json_object_get(p, "event_id");
    if (!json_is_string(type) || !json_is_integer(user) || (eid && !json_is_string(eid))) {
        json_decref(p);
        weft_job_set_error(job, "not an event");
        return -WEFT_EJOB_DEAD;
    }
    char *data_s = data ? json_dumps(data, JSON_COMPACT) : NULL;
    int64_t uid = json_integer_value(user);
    bool found = false;
    char by_job[32];                      /* a job enqueued before events had ids */
    snprintf(by_job, sizeof by_job, "job:%lld", (long long)job->id);
    int rc = svc_event_record(eid ? json_string_value(eid) : by_job, job->id,
                              json_string_value(type), uid, data_s, &found);
    char t[64], why[96];
    loggable(t, sizeof t, json_string_value(type));
    if (!rc && !found) {
        snprintf(why, sizeof why, "no such user %lld", (long long)uid);
        weft_job_set_error(job, why);
        rc = -ENOENT;
    } else if (rc) {
        snprintf(why, sizeof why, "%s", weft_strerror(rc));
    }
    if (rc)
        weft_log(job->attempt < job->max_attempts ? WEFT_LOG_WARN : WEFT_LOG_ERROR,
                 "serve: event %lld '%s' (attempt %d of %d) failed: %s%s", (long long)job->id, t,
                 job->attempt, job->max_attempts, why,
                 job->attempt < job->max_attempts ? ", will retry" : ", dead");
    free(data_s);
    json_decref(p);
    return rc;
}

/* pause, or less if the loop stops: true when it stops */
static bool pause_until_stop(weft_time backoff)
{
    weft_metric_add(pausing, 1);
    weft_scope sc;
    weft_scope_enter(&sc, backoff);
    int rc = weft_event_wait(&stopping);
    weft_scope_exit(&sc);
    weft_metric_add(pausing, -1);
    return weft_event_is_set(&stopping) || rc == -ECANCELED;
}

/* weft_queue_work gives up after a storage failure that lasts (a database
 * away for 30 s): run again, after a pause that doubles up to PAUSE_MAX
 * (from 1 s again after a run of a while), until the loop stops; an
 * instance whose queue came back would otherwise accept events it never
 * runs */
static int work(void *arg)
{
    const struct service *sv = arg;
    static const weft_job_handler h[] = { { "event", run_event, NULL } };
    weft_time backoff = WEFT_SEC;
    for (;;) {
        weft_time began = weft_now();
        weft_metric_add(running, 1);
        int rc = weft_queue_work(queue, QUEUE, h, 1, sv->workers);
        weft_metric_add(running, -1);
        if (!rc || weft_event_is_set(&stopping) || weft_cancelled())
            return rc == -ECANCELED ? 0 : rc;
        if (weft_now() - began > 2 * PAUSE_MAX)
            backoff = WEFT_SEC;
        weft_log(WEFT_LOG_ERROR, "serve: the event workers stopped: %s; again in %.0f s",
                 weft_strerror(rc), (double)backoff / WEFT_SEC);
        if (pause_until_stop(backoff))
            return 0;
        weft_metric_add(restarts, 1);
        backoff = backoff * 2 > PAUSE_MAX ? PAUSE_MAX : backoff * 2;
    }
}

int svc_events_loop_start(const struct service *sv)
{
    weft_queue_opts o = {
        .lease = 10 * WEFT_SEC,           /* a killed worker's events run again 10 s on */
        .max_attempts = sv->attempts,
        .backoff = 250 * WEFT_MS,
        .job_timeout = 30 * WEFT_SEC,
        .shutdown_grace = 10 * WEFT_SEC,
    };
    weft_event_init(&stopping);
    int rc = weft_queue_open(&queue, sv->queue_url, &o);
    if (rc) {
        weft_log(WEFT_LOG_ERROR, "serve: cannot open the queue: %s", weft_strerror(rc));
        queue = NULL;
        return rc;
    }
    if (!(workers = weft_group_new()) || weft_spawn(workers, work, (void *)sv, "events")) {
        svc_events_loop_stop();
        return -ENOMEM;
    }
    return 0;
}

/* after HTTP drained: the workers take nothing more and their running
 * jobs finish within the grace (the rest are released, to run again) */
void svc_events_loop_stop(void)
{
    if (workers)
        weft_event_set(&stopping);        /* before the stop: a paused task ends */
    if (queue)
        weft_queue_stop(queue);
    if (workers)
        weft_group_wait(workers);
    workers = NULL;
    if (queue)
        weft_queue_close(queue);
    queue = NULL;
}

/* 32 hex digits from the kernel's random source: 0 or -EIO */
static int new_event_id(char out[33])
{
    unsigned char b[16];
    if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b)
        return -EIO;
    for (size_t i = 0; i < sizeof b; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
    return 0;
}

/* The queue's failure as the data endpoints' (svc_data_error): 504 past
 * the deadline, 503 + Retry-After when its store is away or busy. The
 * queue's -WEFT_EPG carries no SQLSTATE (the server's words go to its
 * log only), as a refused connection's has none: a PostgreSQL that is
 * shutting down, starting up or gone is all it says in a restart, so it
 * is taken as unavailable too. */
static int queue_error(weft_http_res *r, int rc)
{
    return rc == -WEFT_EPG ? svc_unavailable(r, rc) : svc_data_error(r, rc);
}

static int post_event(weft_http_req *q, weft_http_res *r, void *ctx)
{
    (void)ctx;
    if (!svc_is_json(q))
        return svc_error(r, 415, "Content-Type must be application/json");
    size_t len;
    const char *body = weft_http_req_body(q, &len);
    json_error_t jerr;
    json_t *ev = body && len ? json_loadb(body, len, 0, &jerr) : NULL;
    const char *why = NULL;
    json_t *type = json_object_get(ev, "type"), *user = json_object_get(ev, "user_id");
    json_t *data = json_object_get(ev, "data");
    if (!json_is_object(ev))
        why = "body is not a JSON object";
    else if (!json_is_string(type) || !json_string_length(type))
        why = "type must be a non-empty string";
    else if (json_string_length(type) > 256)
        why = "type is longer than 256 bytes";
    else if (!json_is_integer(user) || json_integer_value(user) < 1)
        why = "user_id must be a positive integer";
    else if (data && !json_is_object(data))
        why = "data must be an object";
    if (why) {
        json_decref(ev);
        return svc_error(r, 400, why);
    }
    /* what the job needs, not whatever else the body held */
    char eid[33];
    if (new_event_id(eid)) {
        json_decref(ev);
        return -EIO;
    }
    json_t *job = json_pack("{s:s, s:O, s:O}", "event_id", eid, "type", type, "user_id", user);
    if (job && data)
        json_object_set(job, "data", data);
    char *payload = job ? json_dumps(job, JSON_COMPACT) : NULL;
    json_decref(job);
    json_decref(ev);
    if (!payload)
        return -ENOMEM;
    weft_job_id id = 0;
    int rc = weft_queue_enqueue(queue, QUEUE, "event", payload, &(weft_job_opts){ .key = eid },
                                &id);
    free(payload);
    if (rc < 0)
        return queue_error(r, rc);
    return svc_json(r, 202, json_pack("{s:s, s:I}", "status", "accepted", "id", (json_int_t)id));
}

static int get_event(weft_http_req *q, weft_http_res *r, void *ctx)
{
    (void)ctx;
    long long id = svc_parse_id(weft_http_req_param(q, "id"));
    if (id < 1)
        return svc_error(r, 400, "id must be a positive integer");
    weft_job_info info;
    int rc = weft_queue_get(queue, id, &info);
    if (rc == -ENOENT || (!rc && strcmp(info.queue, QUEUE) != 0)) {
        weft_job_info_free(&info);
        return svc_json(r, 404, json_pack("{s:s, s:I}", "error", "no such event", "id",
                                          (json_int_t)id));
    }
    if (rc) {
        weft_job_info_free(&info);
        return queue_error(r, rc);
    }
    json_t *j = json_pack("{s:I, s:s, s:i}", "id", (json_int_t)id, "state",
                          weft_job_state_name(info.state), "attempts", info.attempts);
    if (j && info.state == WEFT_JOB_DEAD && info.last_error)
        json_object_set_new(j, "error", json_string(info.last_error));
    weft_job_info_free(&info);
    return svc_json(r, 200, j);
}

int svc_events_routes(struct service *sv)
{
    int rc = svc_route(sv, "POST", "/events", post_event, NULL);
    return rc ? rc : svc_route(sv, "GET", "/events/{id}", get_event, NULL);
}
