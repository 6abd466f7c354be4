/*
 * The queue's insides: the handle, and the backend interface every store
 * (SQLite now, Redis and PostgreSQL next) implements.
 *
 * A backend stores jobs and answers in Unix milliseconds (jobs outlive
 * processes and, on a server, hosts). It knows nothing of handlers, tasks,
 * backoff or heartbeats: worker.c does those the same way on every store.
 * Every call is made from a task of the handle's loop and may suspend.
 * A backend on a server (Redis, PostgreSQL) keeps time by the server's
 * clock, which all hosts share: it takes the caller's now_ms only to turn
 * lease_until and until_ms into durations.
 *
 *   enqueue   n jobs, durable on return, all or nothing; dup[i] set when a
 *             key matched (ids[i] is then the existing job's)
 *   claim     one round trip: first writes the outcomes (acks, retries,
 *             dead letters, releases), then claims up to max due jobs of
 *             queue with a lease until lease_until, returning how many;
 *             *next_ms is when a job may next be due (earliest scheduled
 *             job or lease to expire), INT64_MAX if none. Leases found
 *             expired are taken back first: the job is due again, or dead
 *             when its attempts are spent.
 *   extend    moves the leases of n running jobs to until_ms; lost[i] set
 *             when job i is no longer held with that token
 *   watch     waits until another writer may have added work (or an
 *             error); the worker wakes on it. watch_new makes the state of
 *             one waiter on queue (NULL: ENOMEM), watch_free frees it.
 */
#ifndef WEFT_QUEUE_INTERNAL_H
#define WEFT_QUEUE_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "weft/metrics.h"
#include "weft/queue.h"
#include "weft/sync.h"

#define WEFT__QNAME_MAX 128        /* bytes of a queue or type name */

/* a claimed job, strings owned by it (weft__claim_clear) */
struct weft__claim {
    weft_job_id id;
    uint64_t token;                /* the lease's: acks and extends must carry it */
    int attempt, max_attempts;
    int64_t due_ms;                /* when it became due (the lag metric) */
    char *queue, *type, *payload;
};

enum { WEFT__DONE, WEFT__RETRY, WEFT__DEAD, WEFT__RELEASE };

/* what became of a run, written by the next claim (or flush) */
struct weft__outcome {
    weft_job_id id;
    uint64_t token;
    int kind;
    int64_t at_ms;                 /* now (done, dead) or when due again (retry) */
    char *text;                    /* result (done) or error (retry, dead); owned */
};

struct weft__qbackend {
    const char *name;
    int (*open)(weft_queue *q, const char *where);
    void (*close)(weft_queue *q);
    int (*enqueue)(weft_queue *q, const weft_job_spec *jobs, int n, int64_t now_ms,
                   weft_job_id *ids, bool *dup);
    int (*claim)(weft_queue *q, const char *queue, const struct weft__outcome *o, int no,
                 int max, int64_t now_ms, int64_t lease_until, struct weft__claim *out,
                 int64_t *next_ms);
    int (*extend)(weft_queue *q, const weft_job_id *ids, const uint64_t *tokens, int n,
                  int64_t until_ms, bool *lost);
    void *(*watch_new)(weft_queue *q, const char *queue);
    int (*watch)(void *w);
    void (*watch_free)(void *w);
    int (*get)(weft_queue *q, weft_job_id id, int64_t now_ms, weft_job_info *out);
    int (*list)(weft_queue *q, const char *queue, int state, weft_job_id after, int64_t now_ms,
                weft_job_info *out, int max);
    int (*retry)(weft_queue *q, weft_job_id id, int64_t now_ms);
    int (*purge)(weft_queue *q, const char *queue, int state);
    int (*stats)(weft_queue *q, const char *queue, int64_t now_ms, weft_queue_stats *s);
};

extern const struct weft__qbackend weft__qsqlite, weft__qpg, weft__qredis;

struct weft_queue {
    const struct weft__qbackend *be;
    void *impl;                    /* the backend's */
    char *url;
    char *shown;                   /* url without its password, for messages */
    weft_queue_opts o;
    uint64_t loop_;                /* the loop it belongs to */
    int workers;                   /* weft_queue_work calls running on it */
    int calls;                     /* other calls waiting on the backend: close waits for none */
    /* weft_queue_stop: the flag, and a closed channel wakes every worker */
    pthread_mutex_t stop_lock;
    bool stop;
    weft_chan *stop_chan;
};

/* wall clock, Unix ms */
int64_t weft__unix_ms(void);
void weft__claim_clear(struct weft__claim *c);
/* the queue's metric of one result ("enqueued", ...), created on first use */
weft_metric *weft__qmetric(const char *family, const char *queue, const char *result);
/* printable UTF-8 of 1..max bytes: a queue name, a type, a key */
bool weft__good_name(const char *s, size_t max);
/* s made well-formed UTF-8 in place: each byte that is not becomes '?' */
void weft__utf8_fix(char *s);
/* -EPERM outside a task, -EXDEV from another loop than q's */
int weft__queue_enter(weft_queue *q);

#endif
