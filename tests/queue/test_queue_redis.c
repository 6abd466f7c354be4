/* What is Redis's own in the queue's Redis backend (the API's semantics are
 * queue_api's): scripts the server lost (SCRIPT FLUSH), stream entries and
 * hashes written by another program, a consumer group cursor moved by hand,
 * the server stopped and started under a running worker, keys that stay bounded
 * however many jobs went through, and many workers on one queue getting
 * disjoint jobs. Against the redis-server of the CTest fixture; each test
 * starts from FLUSHDB (every key of the queue starts with "weft:"). */
#include <stdarg.h>

#include "services.h"
#include "test.h"
#include "weft/redis.h"

#define WAIT_S(cond, secs)                                                         \
    for (weft_time ws_ = weft_now() + (secs) * WEFT_SEC; !(cond) && weft_now() < ws_;) \
        weft_sleep(WEFT_MS)

static const char *url(void)
{
    const char *u = weft_test_service_url("redis");
    return u ? u : "redis://unset";
}

/* ---- talking to the server beside the queue ------------------------------- */

/* runs the command given as NULL-terminated arguments; its integer (or a
 * string's number, or the array's length) or -1 after printing why */
static long long rcmd(weft_redis *r, const char *const *argv)
{
    int argc = 0;
    while (argv[argc])
        argc++;
    weft_redis_reply *rep = NULL;
    int rc = weft_redis_command(r, &rep, argc, argv, NULL);
    long long v = -1;
    if (rc)
        fprintf(stderr, "redis %s: %s\n", argv[0], rep && rep->str ? rep->str : weft_strerror(rc));
    else if (rep->type == WEFT_REDIS_INTEGER)
        v = rep->integer;
    else if (rep->type == WEFT_REDIS_ARRAY)
        v = (long long)rep->elements;
    else if (rep->type == WEFT_REDIS_STRING)
        v = atoll(rep->str);
    else if (rep->type == WEFT_REDIS_STATUS || rep->type == WEFT_REDIS_NIL)
        v = 0;
    weft_redis_reply_free(rep);
    return v;
}
#define CMD(r, ...) rcmd((r), (const char *const[]){ __VA_ARGS__, NULL })

static weft_redis *admin(void)
{
    weft_redis *r = weft_redis_new(url(), NULL);
    EXPECT(r != NULL);
    if (r)
        EXPECT_EQ(CMD(r, "FLUSHDB"), 0);
    return r;
}

static weft_queue *qopen(const weft_queue_opts *o)
{
    weft_queue *q = NULL;
    int rc = weft_queue_open(&q, url(), o);
    if (rc)
        fprintf(stderr, "weft_queue_open(%s): %s\n", url(), weft_strerror(rc));
    EXPECT_EQ(rc, 0);
    return q;
}

static weft_job_id enqueue(weft_queue *q, const char *queue, const char *payload,
                           const weft_job_opts *o)
{
    weft_job_id id = -1;
    int rc = weft_queue_enqueue(q, queue, "t", payload, o, &id);
    if (rc)
        fprintf(stderr, "enqueue: %s\n", weft_strerror(rc));
    EXPECT_EQ(rc, 0);
    return id;
}

static weft_queue_stats stats(weft_queue *q, const char *queue)
{
    weft_queue_stats s;
    EXPECT_EQ(weft_queue_stats_get(q, queue, &s), 0);
    return s;
}

/* jobs done, or -1 while the server cannot say (a restart) */
static long long done_count(weft_queue *q, const char *queue)
{
    weft_queue_stats s;
    return weft_queue_stats_get(q, queue, &s) == 0 ? (long long)s.done : -1;
}

static int job_state(weft_queue *q, weft_job_id id)
{
    weft_job_info i;
    int rc = weft_queue_get(q, id, &i);
    int st = rc < 0 ? rc : i.state;
    weft_job_info_free(&i);
    return st;
}

/* the not-yet-claimed entries of a queue, all priorities */
static long long stream_len(weft_redis *r, const char *queue)
{
    long long n = 0;
    for (int p = 0; p <= 9; p++) {
        char key[160];
        snprintf(key, sizeof key, "weft:q:%s:p%d", queue, p);
        n += CMD(r, "XLEN", key);
    }
    return n;
}

/* ---- a worker on a task of its own ---------------------------------------- */

#define MAX_JOBS 4000

struct runs {
    int count[MAX_JOBS + 1];             /* runs per job id */
    int total, by_worker[4];
    weft_time sleep;
};

struct worker {
    weft_queue *q;
    const char *queue;
    struct runs *runs;
    int index, concurrency, rc;
    bool returned;
    weft_group *g;
};

static int run_fn(const weft_job *job, void *ctx)
{
    struct worker *w = ctx;
    struct runs *r = w->runs;
    if (job->id > 0 && job->id <= MAX_JOBS)
        r->count[job->id]++;
    r->total++;
    r->by_worker[w->index]++;
    return r->sleep ? weft_sleep(r->sleep) : 0;
}

static int worker_main(void *arg)
{
    struct worker *w = arg;
    weft_job_handler h = { "t", run_fn, w };
    w->rc = weft_queue_work(w->q, w->queue, &h, 1, w->concurrency);
    w->returned = true;
    return 0;
}

static void worker_start(struct worker *w)
{
    w->rc = 1;
    w->returned = false;
    w->g = weft_group_new();
    EXPECT(w->g != NULL);
    EXPECT_EQ(weft_spawn(w->g, worker_main, w, "worker"), 0);
}

static void worker_stop(struct worker *w)
{
    weft_queue_stop(w->q);
    EXPECT_EQ(weft_group_wait(w->g), 0);
    EXPECT(w->returned);
    EXPECT_EQ(w->rc, 0);
}

/* ---- scripts the server lost ------------------------------------------------ */

/* SCRIPT FLUSH between calls: each script is sent again (EVAL after the
 * NOSCRIPT) and the calls succeed, from a producer and from a worker. */
static int scripts_flushed(void *unused)
{
    (void)unused;
    weft_redis *r = admin();
    weft_queue *q = qopen(NULL);
    if (!r || !q)
        return -1;
    static struct runs runs;
    memset(&runs, 0, sizeof runs);
    weft_job_id a = enqueue(q, "s", NULL, NULL);
    EXPECT_EQ(CMD(r, "SCRIPT", "FLUSH"), 0);
    weft_job_id b = enqueue(q, "s", NULL, NULL);          /* enqueue's NOSCRIPT */
    EXPECT(b > a);
    EXPECT_EQ(CMD(r, "SCRIPT", "FLUSH"), 0);
    EXPECT_EQ(job_state(q, a), WEFT_JOB_QUEUED);          /* get's */
    EXPECT_EQ(CMD(r, "SCRIPT", "FLUSH"), 0);
    EXPECT_EQ(stats(q, "s").queued, 2);                   /* stats' */
    EXPECT_EQ(CMD(r, "SCRIPT", "FLUSH"), 0);
    struct worker w = { .q = q, .queue = "s", .runs = &runs, .concurrency = 2 };
    worker_start(&w);                                     /* claim's */
    WAIT_S(stats(q, "s").done == 2, 10);
    EXPECT_EQ(stats(q, "s").done, 2);
    /* lost while the worker is idle: its next claim and the acks after it */
    EXPECT_EQ(CMD(r, "SCRIPT", "FLUSH"), 0);
    weft_job_id c = enqueue(q, "s", NULL, NULL);
    WAIT_S(job_state(q, c) == WEFT_JOB_DONE, 10);
    EXPECT_EQ(job_state(q, c), WEFT_JOB_DONE);
    worker_stop(&w);
    EXPECT_EQ(runs.total, 3);
    EXPECT_EQ(CMD(r, "SCRIPT", "FLUSH"), 0);
    EXPECT_EQ(weft_queue_purge(q, "s", -1), 3);           /* purge's */
    EXPECT_EQ(weft_queue_close(q), 0);
    return weft_redis_close(r, WEFT_SEC);
}
static void test_scripts_flushed(void **s) { (void)s; RUN(scripts_flushed, NULL); }

/* ---- enqueues of many tasks gathered into one script -------------------------- */

#define PRODUCERS 64

struct producer {
    weft_queue *q;
    int index, rc, made;                 /* made: calls that returned 0 */
    weft_job_id ids[10], shared;
    bool dup;
    weft_task *task;
};

static int produce(void *arg)
{
    struct producer *p = arg;
    p->task = weft_self();
    char payload[32];
    snprintf(payload, sizeof payload, "{\"t\":%d}", p->index);
    p->rc = weft_queue_enqueue(p->q, "e", "t", payload, NULL, &p->ids[0]);
    p->made += p->rc == 0;
    for (int k = 1; k < 10 && p->rc == 0; k++) {
        snprintf(payload, sizeof payload, "{\"t\":%d,\"k\":%d}", p->index, k);
        p->rc = weft_queue_enqueue(p->q, "e", "t", payload, NULL, &p->ids[k]);
        p->made += p->rc == 0;
    }
    if (p->rc == 0) {
        int rc = weft_queue_enqueue(p->q, "e", "t", NULL, &(weft_job_opts){ .key = "once" },
                                    &p->shared);
        p->dup = rc == 1;
        p->rc = rc < 0 ? rc : 0;
    }
    return 0;
}

/* Sixty-four tasks enqueue at once: each call gets its own jobs' ids (the
 * payloads say whose), a key enqueued by all of them makes one job; calls
 * cancelled while they waited for a script enqueued nothing, and those
 * already in one did. */
static int gathered(void *unused)
{
    (void)unused;
    weft_redis *r = admin();
    weft_queue *q = qopen(NULL);
    if (!r || !q)
        return -1;
    static struct producer p[PRODUCERS];
    weft_group *g = weft_group_new();
    for (int i = 0; i < PRODUCERS; i++) {
        p[i] = (struct producer){ .q = q, .index = i, .rc = 1 };
        EXPECT_EQ(weft_spawn(g, produce, &p[i], "producer"), 0);
    }
    weft_yield();                        /* two lead a script, the rest wait for theirs */
    for (int i = 1; i < PRODUCERS; i += 2)
        weft_task_cancel(p[i].task);
    EXPECT_EQ(weft_group_wait(g), 0);
    int made = 0, cancelled = 0, first = 0;
    weft_job_id once = 0;
    for (int i = 0; i < PRODUCERS; i++) {
        made += p[i].made;
        if (p[i].rc == -ECANCELED) {
            cancelled++;
            continue;
        }
        EXPECT_EQ(p[i].rc, 0);
        for (int k = 0; k < 10; k++) {
            weft_job_info info;
            EXPECT_EQ(weft_queue_get(q, p[i].ids[k], &info), 0);
            char want[32];
            snprintf(want, sizeof want, k ? "{\"t\":%d,\"k\":%d}" : "{\"t\":%d}", i, k);
            EXPECT(info.payload && strcmp(info.payload, want) == 0);
            weft_job_info_free(&info);
        }
        first += !p[i].dup;
        if (!once)
            once = p[i].shared;
        EXPECT_EQ(p[i].shared, once);
    }
    EXPECT(cancelled > 0);
    EXPECT_EQ(first, 1);
    /* a call cancelled while it waited enqueued nothing (those that led a
     * script were shielded and made theirs before their next call failed) */
    weft_queue_stats s = stats(q, "e");
    EXPECT_EQ(s.queued, made + 1);
    EXPECT_EQ(weft_queue_close(q), 0);
    return weft_redis_close(r, WEFT_SEC);
}
static void test_gathered(void **s) { (void)s; RUN(gathered, NULL); }

/* ---- what another program wrote ---------------------------------------------- */

static int dead_count(weft_queue *q, weft_job_id id, const char *why)
{
    weft_job_info i;
    int rc = weft_queue_get(q, id, &i);
    bool ok = rc == 0 && i.state == WEFT_JOB_DEAD && i.last_error && strstr(i.last_error, why);
    if (!ok)
        fprintf(stderr, "job %lld: rc %d state %d error %s\n", (long long)id, rc, i.state,
                i.last_error ? i.last_error : "(none)");
    weft_job_info_free(&i);
    return ok;
}

/* Entries and hashes the queue did not write: dropped and logged, or dead
 * with the reason, and the worker goes on with the good jobs. */
static int garbage(void *unused)
{
    (void)unused;
    weft_redis *r = admin();
    weft_queue *q = qopen(NULL);
    if (!r || !q)
        return -1;
    test_log_capture();
    static struct runs runs;
    memset(&runs, 0, sizeof runs);
    const char *s0 = "weft:q:g:p0";
    weft_job_id a = enqueue(q, "g", NULL, NULL);
    EXPECT(CMD(r, "XADD", s0, "*", "foo", "bar") > 0);            /* no j */
    EXPECT(CMD(r, "XADD", s0, "*", "j", "twelve") > 0);           /* not an id */
    EXPECT(CMD(r, "XADD", s0, "*", "j", "999999") > 0);           /* no such job */
    /* a "waiting job" of another program's: a type no handler has and an
     * attempts count that is not a number: run and dead-lettered */
    EXPECT_EQ(CMD(r, "HSET", "weft:job:777", "state", "0", "type", "\xff\x01", "payload", "{}",
                  "attempts", "zz"), 4);
    EXPECT(CMD(r, "XADD", s0, "*", "j", "777") > 0);
    EXPECT_EQ(CMD(r, "HSET", "weft:job:778", "state", "0", "type", "t", "payload", "not json"), 3);
    EXPECT(CMD(r, "XADD", s0, "*", "j", "778") > 0);
    EXPECT_EQ(CMD(r, "SET", "weft:job:779", "not a hash"), 0);      /* another type */
    EXPECT(CMD(r, "XADD", s0, "*", "j", "779") > 0);
    EXPECT_EQ(CMD(r, "HSET", "weft:job:780", "state", "nine", "queue", "g"), 2);
    EXPECT_EQ(CMD(r, "ZADD", "weft:q:g:all", "780", "780"), 1);      /* in the list index */
    weft_job_id b = enqueue(q, "g", NULL, &(weft_job_opts){ .priority = 3 });

    struct worker w = { .q = q, .queue = "g", .runs = &runs, .concurrency = 4 };
    worker_start(&w);
    WAIT_S(job_state(q, a) == WEFT_JOB_DONE && job_state(q, b) == WEFT_JOB_DONE &&
           job_state(q, 777) == WEFT_JOB_DEAD && job_state(q, 778) == WEFT_JOB_DEAD, 10);
    EXPECT_EQ(job_state(q, a), WEFT_JOB_DONE);
    EXPECT_EQ(job_state(q, b), WEFT_JOB_DONE);
    EXPECT(dead_count(q, 777, "unknown job type"));
    EXPECT(dead_count(q, 778, "invalid payload"));
    weft_job_info i;
    EXPECT_EQ(weft_queue_get(q, 777, &i), 0);
    EXPECT_EQ(i.attempts, 1);
    weft_job_info_free(&i);
    EXPECT_EQ(stream_len(r, "g"), 0);                   /* every entry read and deleted */
    EXPECT(test_log_has("is not a job"));
    EXPECT(test_log_has("weft:job:779 is not a waiting job"));
    EXPECT(test_log_has("weft:job:999999 is not a waiting job"));
    EXPECT(!w.returned);

    /* reads of what is not a job say so */
    EXPECT_EQ(weft_queue_get(q, 779, &i), -EIO);
    EXPECT_EQ(weft_queue_get(q, 780, &i), -EIO);
    EXPECT_EQ(weft_queue_get(q, 781, &i), -ENOENT);
    weft_job_info l[8];
    int n = weft_queue_list(q, "g", -1, 0, l, 8);
    EXPECT_EQ(n, 2);                                    /* a and b; 780 left out */
    for (int k = 0; k < n; k++)
        weft_job_info_free(&l[k]);
    EXPECT(test_log_has("are not jobs"));
    weft_queue_stats st = stats(q, NULL);
    EXPECT_EQ(st.done, 2);

    /* a group cursor moved past waiting jobs by hand: they are read again,
     * and reading the one after them does not take them away */
    worker_stop(&w);
    weft_job_id c = enqueue(q, "g", NULL, NULL), c2 = enqueue(q, "g", NULL, NULL);
    EXPECT_EQ(CMD(r, "XGROUP", "SETID", s0, "w", "$"), 0);
    weft_job_id c3 = enqueue(q, "g", NULL, NULL);
    worker_start(&w);
    WAIT_S(job_state(q, c) == WEFT_JOB_DONE && job_state(q, c2) == WEFT_JOB_DONE &&
           job_state(q, c3) == WEFT_JOB_DONE, 10);
    EXPECT_EQ(job_state(q, c), WEFT_JOB_DONE);
    EXPECT_EQ(job_state(q, c2), WEFT_JOB_DONE);
    EXPECT_EQ(job_state(q, c3), WEFT_JOB_DONE);
    EXPECT_EQ(stream_len(r, "g"), 0);
    worker_stop(&w);
    EXPECT_EQ(runs.total, 5);                           /* a, b, c..c3: 777 and 778 never reach a handler */
    weft_log_set(NULL, NULL, WEFT_LOG_INFO);
    EXPECT_EQ(weft_queue_close(q), 0);
    return weft_redis_close(r, WEFT_SEC);
}
static void test_garbage(void **s) { (void)s; RUN(garbage, NULL); }

/* ---- the server stopped and started under a running worker ----------------- */

static int do_blocking(void *arg)
{
    return weft_test_service(arg, "redis");
}

static bool hold;

static int held_fn(const weft_job *job, void *ctx)
{
    struct worker *w = ctx;
    if (job->id > 0 && job->id <= MAX_JOBS)
        w->runs->count[job->id]++;
    w->runs->total++;
    while (hold && weft_sleep(WEFT_MS) == 0)
        ;
    return 0;
}

static int held_main(void *arg)
{
    struct worker *w = arg;
    weft_job_handler h = { "t", held_fn, w };
    w->rc = weft_queue_work(w->q, w->queue, &h, 1, w->concurrency);
    w->returned = true;
    return 0;
}

/* A worker holds four jobs while the server saves a snapshot and stops;
 * the jobs then finish, and their acks fail: the worker says so and keeps
 * trying. The server comes back with the snapshot (a server without AOF):
 * the four leased in it run again once their leases expire, every job ends
 * done, and what comes after works (scripts, groups and wake-ups again). */
static int restart(void *unused)
{
    (void)unused;
    weft_redis *r = admin();
    weft_queue_opts qo = { .lease = 500 * WEFT_MS };
    weft_queue *q = qopen(&qo);
    if (!r || !q)
        return -1;
    test_log_capture();
    static struct runs runs;
    memset(&runs, 0, sizeof runs);
    int n = 60;
    weft_job_spec spec[60];
    for (int k = 0; k < n; k++)
        spec[k] = (weft_job_spec){ "r", "t", NULL, { 0 } };
    EXPECT_EQ(weft_queue_enqueue_batch(q, spec, n, NULL), 0);
    hold = true;
    struct worker w = { .q = q, .queue = "r", .runs = &runs, .concurrency = 4, .rc = 1 };
    w.g = weft_group_new();
    EXPECT_EQ(weft_spawn(w.g, held_main, &w, "worker"), 0);
    WAIT_S(runs.total == 4, 10);
    EXPECT_EQ(runs.total, 4);
    EXPECT_EQ(CMD(r, "SAVE"), 0);
    int rc = weft_run_blocking(do_blocking, (void *)"stop");
    if (rc == -ENOTSUP) {
        fprintf(stderr, "a server of your own (WEFT_TEST_REDIS_URL): not stopped\n");
    } else {
        EXPECT_EQ(rc, 0);
        hold = false;
        WAIT_S(test_log_has("queue r: "), 10);         /* the acks failed, said once */
        EXPECT(test_log_has("queue r: "));
        EXPECT_EQ(weft_run_blocking(do_blocking, (void *)"start"), 0);
    }
    hold = false;
    WAIT_S(done_count(q, "r") == n, 60);
    weft_queue_stats s = stats(q, "r");
    EXPECT_EQ(s.done, n);
    EXPECT_EQ(s.queued + s.running + s.dead, 0);
    for (int id = 1; id <= n; id++)
        EXPECT(runs.count[id] >= 1);
    EXPECT(!w.returned);
    weft_job_id id = enqueue(q, "r", NULL, NULL);
    WAIT_S(job_state(q, id) == WEFT_JOB_DONE, 20);
    EXPECT_EQ(job_state(q, id), WEFT_JOB_DONE);
    worker_stop(&w);
    weft_log_set(NULL, NULL, WEFT_LOG_INFO);
    EXPECT_EQ(weft_queue_close(q), 0);
    /* the snapshot is no other test's (the admin's connection idled
     * through the restart: its first command may find it closed) */
    CMD(r, "PING");
    EXPECT_EQ(CMD(r, "FLUSHALL"), 0);
    EXPECT_EQ(CMD(r, "SAVE"), 0);
    return weft_redis_close(r, WEFT_SEC);
}
static void test_restart(void **s) { (void)s; RUN(restart, NULL); }

/* A read right after a restart, on the connection the handle used before
 * it: a get, a list and stats answer (the first command on a connection
 * the server closed fails, and a read is safe to send again). */
static int read_after_restart(void *unused)
{
    (void)unused;
    weft_redis *r = admin();
    weft_queue *q = qopen(NULL);
    if (!r || !q)
        return -1;
    weft_job_id id = enqueue(q, "a", NULL, NULL);
    EXPECT_EQ(job_state(q, id), WEFT_JOB_QUEUED);
    EXPECT_EQ(CMD(r, "SAVE"), 0);
    int rc = weft_run_blocking(do_blocking, (void *)"restart");
    if (rc != -ENOTSUP) {
        EXPECT_EQ(rc, 0);
        EXPECT_EQ(job_state(q, id), WEFT_JOB_QUEUED);
        weft_run_blocking(do_blocking, (void *)"restart");
        weft_job_info l[2];
        EXPECT_EQ(weft_queue_list(q, "a", -1, 0, l, 2), 1);
        weft_job_info_free(&l[0]);
        weft_run_blocking(do_blocking, (void *)"restart");
        EXPECT_EQ(weft_queue_stats_get(q, "a", &(weft_queue_stats){ 0 }), 0);
    }
    EXPECT_EQ(weft_queue_close(q), 0);
    CMD(r, "PING");
    EXPECT_EQ(CMD(r, "FLUSHALL"), 0);
    EXPECT_EQ(CMD(r, "SAVE"), 0);
    return weft_redis_close(r, WEFT_SEC);
}
static void test_read_after_restart(void **s) { (void)s; RUN(read_after_restart, NULL); }

/* ---- keys stay bounded ------------------------------------------------------- */

/* Thousands of jobs of every priority, some delayed, some keyed, through a
 * worker: nothing stays in the streams (read entries are deleted), the
 * delayed and lease sets are empty, and a purge leaves only the counter,
 * the queue set and the empty streams with their group. */
static int bounded(void *unused)
{
    (void)unused;
    weft_redis *r = admin();
    weft_queue *q = qopen(NULL);
    if (!r || !q)
        return -1;
    static struct runs runs;
    memset(&runs, 0, sizeof runs);
    int n = test_scale(3000) / 100 * 100;
    if (n == 0)
        n = 100;
    weft_job_spec spec[100];
    char keys[100][16];
    for (int b = 0; b < n / 100; b++) {
        for (int k = 0; k < 100; k++) {
            spec[k] = (weft_job_spec){ "b", "t", NULL, { .priority = k % 10 } };
            if (k % 7 == 0)
                spec[k].opts.delay = 20 * WEFT_MS;
            if (k % 5 == 0) {
                snprintf(keys[k], sizeof keys[k], "k%d", b * 100 + k);
                spec[k].opts.key = keys[k];
            }
        }
        EXPECT_EQ(weft_queue_enqueue_batch(q, spec, 100, NULL), 0);
    }
    struct worker w = { .q = q, .queue = "b", .runs = &runs, .concurrency = 64 };
    worker_start(&w);
    WAIT_S(stats(q, "b").done == (uint64_t)n, 60);
    worker_stop(&w);
    EXPECT_EQ(stats(q, "b").done, n);
    EXPECT_EQ(runs.total, n);
    EXPECT_EQ(stream_len(r, "b"), 0);
    EXPECT_EQ(CMD(r, "ZCARD", "weft:q:b:delayed"), 0);
    EXPECT_EQ(CMD(r, "ZCARD", "weft:q:b:leased"), 0);
    EXPECT_EQ(CMD(r, "HLEN", "weft:q:b:keys"), n / 5);
    EXPECT_EQ(weft_queue_purge(q, "b", -1), n);
    EXPECT_EQ(CMD(r, "HLEN", "weft:q:b:keys"), 0);
    /* what is left: weft:seq, weft:queues and the ten streams, empty */
    weft_redis_reply *rep;
    EXPECT_EQ(weft_redis_commandf(r, &rep, "KEYS *"), 0);
    EXPECT(rep && rep->elements <= 12);
    for (size_t k = 0; rep && k < rep->elements; k++) {
        const char *key = rep->element[k].str;
        bool ok = !strcmp(key, "weft:seq") || !strcmp(key, "weft:queues") ||
                  !strncmp(key, "weft:q:b:p", 10);
        if (!ok)
            fprintf(stderr, "left after the purge: %s\n", key);
        EXPECT(ok);
    }
    weft_redis_reply_free(rep);
    EXPECT_EQ(weft_queue_close(q), 0);
    return weft_redis_close(r, WEFT_SEC);
}
static void test_bounded(void **s) { (void)s; RUN(bounded, NULL); }

/* ---- list across many queues ------------------------------------------------ */

/* Jobs of forty queues, interleaved: a list of all queues comes back in id
 * order, each once, over many scripts (each scans a share of ids per
 * queue), with and without a state filter, and from an `after`. */
static int list_many(void *unused)
{
    (void)unused;
    weft_redis *r = admin();
    weft_queue *q = qopen(NULL);
    if (!r || !q)
        return -1;
    enum { NQ = 40, PER = 30, N = NQ * PER };
    static weft_job_spec spec[N];
    static weft_job_id ids[N];
    char names[NQ][8];
    for (int k = 0; k < NQ; k++)
        snprintf(names[k], sizeof names[k], "l%d", k);
    for (int k = 0; k < N; k++)
        spec[k] = (weft_job_spec){ names[k % NQ], "t", NULL,
                                   { .delay = k % 3 == 0 ? 3600 * WEFT_SEC : 0 } };
    EXPECT_EQ(weft_queue_enqueue_batch(q, spec, N, ids), 0);
    static weft_job_info l[N + 1];
    int n = weft_queue_list(q, NULL, -1, 0, l, N + 1);
    EXPECT_EQ(n, N);
    for (int k = 0; k < n && k < N; k++) {
        EXPECT_EQ(l[k].id, ids[k]);
        EXPECT(l[k].queue && strcmp(l[k].queue, names[k % NQ]) == 0);
        weft_job_info_free(&l[k]);
    }
    n = weft_queue_list(q, NULL, WEFT_JOB_SCHEDULED, 0, l, N);
    EXPECT_EQ(n, N / 3);
    for (int k = 0; k < n; k++) {
        EXPECT_EQ(l[k].id, ids[3 * k]);
        EXPECT_EQ(l[k].state, WEFT_JOB_SCHEDULED);
        weft_job_info_free(&l[k]);
    }
    n = weft_queue_list(q, NULL, WEFT_JOB_QUEUED, ids[N / 2], l, 10);
    EXPECT_EQ(n, 10);
    for (int k = 0, want = N / 2 + 1; k < n; k++, want++) {
        if (want % 3 == 0)
            want++;
        EXPECT_EQ(l[k].id, ids[want]);
        weft_job_info_free(&l[k]);
    }
    EXPECT_EQ(weft_queue_close(q), 0);
    return weft_redis_close(r, WEFT_SEC);
}
static void test_list_many(void **s) { (void)s; RUN(list_many, NULL); }

/* ---- many workers, one queue -------------------------------------------------- */

/* Four handles (four clients, as four hosts would have) work one queue:
 * each job runs once, on one of them, and they all take some. */
static int disjoint(void *unused)
{
    (void)unused;
    weft_redis *r = admin();
    if (!r)
        return -1;
    static struct runs runs;
    memset(&runs, 0, sizeof runs);
    runs.sleep = WEFT_MS;
    int n = test_scale(2000);
    weft_queue *q[4];
    struct worker w[4];
    for (int k = 0; k < 4; k++) {
        if (!(q[k] = qopen(NULL)))
            return -1;
        w[k] = (struct worker){ .q = q[k], .queue = "m", .runs = &runs, .index = k,
                                .concurrency = 8 };
        worker_start(&w[k]);
    }
    for (int k = 0; k < n; k++)
        enqueue(q[k % 4], "m", NULL, &(weft_job_opts){ .priority = k % 3 });
    WAIT_S(stats(q[0], "m").done == (uint64_t)n, 60);
    for (int k = 0; k < 4; k++)
        worker_stop(&w[k]);
    EXPECT_EQ(stats(q[0], "m").done, n);
    EXPECT_EQ(runs.total, n);
    for (int id = 1; id <= n; id++)
        if (runs.count[id] != 1) {
            fprintf(stderr, "job %d ran %d times\n", id, runs.count[id]);
            EXPECT_EQ(runs.count[id], 1);
        }
    int busy = 0;
    for (int k = 0; k < 4; k++)
        busy += runs.by_worker[k] > 0;
    if (n >= 100)
        EXPECT(busy >= 2);
    for (int k = 0; k < 4; k++)
        EXPECT_EQ(weft_queue_close(q[k]), 0);
    return weft_redis_close(r, WEFT_SEC);
}
static void test_disjoint(void **s) { (void)s; RUN(disjoint, NULL); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scripts_flushed),
        cmocka_unit_test(test_gathered),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_bounded),
        cmocka_unit_test(test_list_many),
        cmocka_unit_test(test_disjoint),
        cmocka_unit_test(test_restart),
        cmocka_unit_test(test_read_after_restart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
