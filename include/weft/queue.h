/*
 * weft queue: a durable job queue (Celery, RQ, ARQ done in C).
 *
 * Work that must not be lost goes through a queue, not a background task:
 * a job is a (queue, type, JSON payload) record that outlives the process
 * that enqueued it and the worker that runs it. One API on every backend,
 * chosen by the URL given to weft_queue_open:
 *
 *   sqlite:PATH             embedded, no server (the default): a file that
 *                           several processes (producers and workers) share
 *   postgres://…            PostgreSQL (postgresql:// too): workers on many
 *                           hosts; schema weft_queue, made at open
 *   redis://…               Redis 7 (rediss:// with TLS): workers on many
 *                           hosts, the highest rate
 *
 * DURABILITY. weft_queue_enqueue returns once the job is durable: on SQLite
 * committed in WAL mode with synchronous=FULL, so kill -9 of any process
 * loses nothing and a power loss loses nothing either (the commit's fsync).
 * Many tasks' enqueues, claims and acks share one transaction and one fsync
 * (group commit, one writer per file per process), so durability does not
 * cost an fsync per job. On PostgreSQL: committed (the loop's concurrent
 * enqueues share one transaction). On Redis: acknowledged by the server,
 * which is as durable as its appendfsync (everysec may lose the last
 * second on a power loss or a kill of the server; Redis 7.0 has no WAITAOF).
 * The server backends keep leases and due times by the server's clock.
 *
 * DELIVERY is at least once. A worker claims a job with a lease (opts.lease,
 * 30 s), extended by a heartbeat every lease/3 while its handler runs; the
 * job is acknowledged only after the handler returned 0. A worker killed
 * with kill -9 loses nothing: its leases expire and the jobs run again. A
 * job runs at most twice because of one crash: the jobs running at the kill
 * and those finished whose ack was not yet committed (acks are grouped for
 * at most 10 ms or 256 acks). A job's attempt counts when it is claimed, so
 * a job that kills its worker ends dead after max_attempts.
 *
 * ORDER. Priority 0..9, higher first; FIFO within a priority (by due time,
 * then enqueue order); delay or run_at_ms schedules a job for later.
 *
 * FAILURE. A handler returning < 0 is retried after a backoff (opts.backoff
 * doubled per attempt, ±25 % jitter, at most backoff_max); after
 * max_attempts, or at once when it returns -WEFT_EJOB_DEAD, the job is dead
 * with its last error (weft_job_set_error, else the code's message) until
 * weft_queue_retry. A handler past job_timeout is cancelled (its blocking
 * calls return -ETIMEDOUT) and the run counts as a failure even if it then
 * returns 0. An unknown type or a payload that is not JSON is dead at once,
 * with the reason; the worker goes on.
 *
 * THREADS. A weft_queue is loop-local (like every weft object): open one
 * per loop. Handles of one process on one file share one writer, so loops
 * group-commit together. weft_queue_stop may be called from any thread.
 * On a server backend the handle holds a connection pool whose background
 * work belongs to the task that opened it: close it from that task, before
 * it returns.
 *
 * When to use it: a supervised background task (weft_supervisor_new) is
 * enough for work you can lose on a crash (a cache refresh, a metric push).
 * Work that must happen once accepted (an email, a payment, an event a
 * client was told is "accepted") goes through the queue.
 *
 * Metrics: weft_queue_jobs_total{queue,result="enqueued|succeeded|retried|
 * dead"}, weft_queue_running{queue} (this process's running jobs),
 * weft_queue_lag_seconds{queue} (age of the oldest due job, refreshed by
 * weft_queue_stats_get and by idle workers).
 */
#ifndef WEFT_QUEUE_H
#define WEFT_QUEUE_H

#include <stdint.h>

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_queue weft_queue;
typedef int64_t weft_job_id;        /* SQLite rowid, PG bigserial, Redis INCR: one type */

/* Zero fields mean the defaults. */
typedef struct weft_queue_opts {
    weft_time lease;                /* 30 s; heartbeat every lease/3 */
    int max_attempts;               /* 5, the first run included */
    weft_time backoff, backoff_max; /* 1 s doubled per attempt, ±25 % jitter; ≤ 1 h */
    weft_time job_timeout;          /* 5 min: the handler is cancelled past it */
    weft_time shutdown_grace;       /* 10 s: running jobs finish within it on stop */
} weft_queue_opts;

/* Opens (and creates, with its schema) the queue at url. 0, -EINVAL (bad
 * URL or option, logged with what is wrong; "sqlite::memory:" too, which
 * is neither durable nor shared), -ENOENT (no such directory), -EISDIR,
 * -EACCES (not readable or not writable: a read-only file is refused here,
 * not at the first enqueue), -EIO (not a database, I/O error), -ENOTSUP
 * (a backend not built in), connection errors. Options: a lease of 3 ms
 * to a day; backoff_max at most 30 days. Call from a task. */
int weft_queue_open(weft_queue **out, const char *url, const weft_queue_opts *o);

/* Frees q (its committed work is durable: nothing is buffered outside a
 * running call). -EBUSY (nothing freed) while a weft_queue_work or any
 * other call of another task runs on q; -EXDEV from another loop. NULL is
 * a no-op. */
int weft_queue_close(weft_queue *q);

typedef struct weft_job_opts {
    weft_time delay;                /* run no earlier than now + delay */
    int64_t run_at_ms;              /* or at this Unix time in ms (the later of the two wins) */
    int priority;                   /* 0..9, higher first */
    int max_attempts;               /* 0 = the worker's (its weft_queue_opts), when claimed */
    const char *key;                /* idempotency key within the queue, or NULL */
} weft_job_opts;

/* Enqueues one job; returns once it is durable. 0 and *id; 1 and the
 * existing job's *id when key matched one not yet purged (nothing is
 * enqueued); -EINVAL (payload not JSON, empty or over-long queue or type,
 * priority outside 0..9, negative max_attempts or delay), -ENOSPC (disk
 * full; -EFBIG past RLIMIT_FSIZE), -EACCES, -EIO, -EBUSY (another process
 * held the file's write lock for 10 s). Cancelled or past the deadline
 * before the writer took it: -ECANCELED / -ETIMEDOUT and nothing enqueued;
 * once taken the call waits for the commit and returns its result.
 * payload NULL is "{}". */
int weft_queue_enqueue(weft_queue *q, const char *queue, const char *type, const char *payload,
                       const weft_job_opts *o, weft_job_id *id);

typedef struct weft_job_spec {
    const char *queue, *type, *payload;
    weft_job_opts opts;
} weft_job_spec;

/* n jobs in one commit, all or nothing: 0 and ids[i] for each (a key that
 * matched gives the existing id), or the first invalid spec's -EINVAL and
 * nothing enqueued. ids may be NULL. */
int weft_queue_enqueue_batch(weft_queue *q, const weft_job_spec *jobs, int n, weft_job_id *ids);

/* What a handler sees; valid during the handler only. */
typedef struct weft_job {
    weft_job_id id;
    const char *queue, *type, *payload;
    int attempt, max_attempts;      /* attempt: 1 on the first run */
} weft_job;

/* 0 done; < 0 retry (or dead after max_attempts); -WEFT_EJOB_DEAD: dead now. */
typedef int (*weft_job_fn)(const weft_job *job, void *ctx);
typedef struct weft_job_handler {
    const char *type;
    weft_job_fn fn;
    void *ctx;
} weft_job_handler;

/* From a handler: the JSON result stored with the job when it succeeds
 * (weft_job_info.result); 0, -EINVAL (not JSON), -ENOMEM. */
int weft_job_set_result(const weft_job *job, const char *json);
/* From a handler: the error text stored when this run fails (it becomes
 * last_error); without it, last_error is the returned code's message. */
int weft_job_set_error(const weft_job *job, const char *msg);

/* Runs up to concurrency jobs of queue at once on tasks of this loop,
 * handled by type, until weft_queue_stop or cancellation of the caller;
 * then claims nothing more, lets running jobs finish within
 * shutdown_grace, cancels the rest, and releases the lease of each as its
 * handler returns (a released run does not count as an attempt; a
 * cancelled handler that returns 0 is acknowledged; one stuck in blocking
 * work keeps its lease, heartbeats included, until it ends: the job never
 * runs twice at once). Commits every ack and returns 0. An idle worker
 * sleeps until a job may be due: woken by any process's commit to the
 * file (inotify on its WAL; without inotify it polls every 100 ms), the
 * earliest scheduled job or lease expiry, and looks once a second anyway
 * (a cheap query with nothing due). -EINVAL (no handlers, concurrency <
 * 1); a storage error that lasts 30 s (disk full, file gone read-only)
 * stops the worker gracefully and is returned. */
int weft_queue_work(weft_queue *q, const char *queue, const weft_job_handler *h, int nh,
                    int concurrency);

/* Ends every weft_queue_work running on q, from any thread (not from a
 * signal handler). A stop while none runs makes the next one return at
 * once, so a stop racing a start is never lost. */
void weft_queue_stop(weft_queue *q);

enum { WEFT_JOB_QUEUED, WEFT_JOB_SCHEDULED, WEFT_JOB_RUNNING, WEFT_JOB_DONE, WEFT_JOB_DEAD };

/* "queued", "scheduled", "running", "done", "dead"; NULL for anything else */
const char *weft_job_state_name(int state);
/* the state for such a name, or -EINVAL */
int weft_job_state_parse(const char *name);

typedef struct weft_job_info {
    weft_job_id id;
    int state, attempts, max_attempts, priority;
    int64_t created_ms, run_at_ms, finished_ms;     /* Unix ms; finished 0 until done or dead */
    char *queue, *type, *payload, *result, *last_error; /* result, last_error may be NULL */
} weft_job_info;

/* One job's record: 0, -ENOENT. Free with weft_job_info_free (also after
 * a failure: out is zeroed on entry). A leased job reads RUNNING until its
 * lease expires, then QUEUED. A job enqueued without max_attempts shows
 * this handle's until a worker claims it (then the worker's). */
int weft_queue_get(weft_queue *q, weft_job_id id, weft_job_info *out);
void weft_job_info_free(weft_job_info *info);

/* Up to max jobs (oldest first, from id > after) of queue (NULL: all) in
 * state (-1: any) into out[]; returns how many (free each). */
int weft_queue_list(weft_queue *q, const char *queue, int state, weft_job_id after,
                    weft_job_info *out, int max);

/* A dead job back to queued with fresh attempts: 0, -ENOENT, -EINVAL (not dead). */
int weft_queue_retry(weft_queue *q, weft_job_id id);

/* Removes the jobs of queue (NULL: all) in state DONE or DEAD (-1: both);
 * their keys are forgotten. Returns the count removed; -EINVAL for any
 * other state (queued and running jobs are never purged). */
int weft_queue_purge(weft_queue *q, const char *queue, int state);

typedef struct weft_queue_stats {
    uint64_t queued, scheduled, running, done, dead;
    double lag_s;                   /* age of the oldest due job, 0 if none */
} weft_queue_stats;

/* Counts of queue (NULL: all queues). 0 or a storage error. */
int weft_queue_stats_get(weft_queue *q, const char *queue, weft_queue_stats *s);

#ifdef __cplusplus
}
#endif

#endif
