/*
 * The Redis backend: "redis://…" and "rediss://…" (the whole URL is the
 * server's address, as weft_redis_new reads it), for workers on many
 * hosts sharing one server.
 *
 * How jobs are kept is told in redis_lua.h: a hash per job, a stream per
 * priority of due jobs read through a consumer group, sorted sets for
 * delayed jobs and for leases by their end, idempotency keys in a hash
 * per queue, ids from one counter (INCRBY). Every change is one Lua script
 * (atomic, one round trip), loaded at open and run by SHA; a server that
 * lost its scripts (SCRIPT FLUSH, a restart) gets the body once (EVAL),
 * which loads it again. Time is the server's (TIME in the scripts), which
 * every host shares: the callers' clocks only turn lease_until and
 * until_ms into durations and the server's answers back into Unix ms.
 *
 * Calls go through weft's client (include/weft/redis.h), which
 * auto-pipelines: the scripts many tasks run in one loop turn go out in
 * one write; the enqueues of many tasks go in one script (below), the
 * worker's acks go with its next claim (worker.c). A write once begun is
 * waited for (shielded): a script that ran must not be reported as not
 * run. Replies are checked before use:
 * what the server returns that is not what a script of ours returns is
 * -EPROTO, logged, never a crash.
 *
 * Durability is the server's: a script's effects are acknowledged once in
 * memory and written to the AOF; with appendfsync always they survive a
 * power loss, with everysec up to a second of them may not (Redis 7.0 has
 * no WAITAOF to wait for the fsync).
 *
 * Idle workers subscribe to weft:q:<queue>:wake, published by a write
 * that fills an empty stream or brings the earliest delayed job forward.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/kernel.h"
#include "internal.h"
#include "redis_lua.h"
#include "weft/redis.h"

#define LIST_SCAN 1000                   /* ids of each queue one list script looks at */
#define PURGE_STEP 1000                  /* jobs one purge script removes */
#define WRITE_BOUND (75 * WEFT_SEC)      /* a write's shield: past the client's own timeouts */
#define INFO_FIELDS 13                   /* a record of get and list (redis_lua.h) */
#define CLAIM_FIELDS 7

enum { S_ENQUEUE, S_CLAIM, S_EXTEND, S_GET, S_LIST, S_RETRY, S_PURGE, S_STATS, S_N };

static const char *const body[S_N] = {
    [S_ENQUEUE] = LUA_ENQUEUE, [S_CLAIM] = LUA_CLAIM, [S_EXTEND] = LUA_EXTEND,
    [S_GET] = LUA_GET,         [S_LIST] = LUA_LIST,   [S_RETRY] = LUA_RETRY,
    [S_PURGE] = LUA_PURGE,     [S_STATS] = LUA_STATS,
};
static const char *const names[S_N] = { "enqueue", "claim", "extend", "get",
                                        "list",    "retry", "purge",  "stats" };

struct enq;

struct rq {
    weft_redis *r;
    char sha[S_N][41];
    struct enq *head, **tail;            /* enqueues waiting for a script */
    int inflight;                        /* enqueue scripts on their way */
};

/* ---- arguments ----------------------------------------------------------- */

/* a script's command: EVALSHA sha 0 ARGV..., numbers formatted in place */
struct args {
    const char **v;
    size_t *len;
    char (*num)[24];
    int n, max;
};

static int args_init(struct args *a, int argc)
{
    a->max = argc + 3;
    a->n = 3;                            /* EVALSHA sha numkeys */
    a->v = weft__malloc((size_t)a->max * sizeof *a->v);
    a->len = weft__malloc((size_t)a->max * sizeof *a->len);
    a->num = weft__malloc((size_t)a->max * sizeof *a->num);
    if (a->v && a->len && a->num)
        return 0;
    weft__free(a->v);
    weft__free(a->len);
    weft__free(a->num);
    return -ENOMEM;
}

static void args_free(struct args *a)
{
    weft__free(a->v);
    weft__free(a->len);
    weft__free(a->num);
}

static void arg_str(struct args *a, const char *s)
{
    a->v[a->n] = s;
    a->len[a->n++] = strlen(s);
}

static void arg_num(struct args *a, long long x)
{
    int n = snprintf(a->num[a->n], sizeof a->num[0], "%lld", x);
    a->v[a->n] = a->num[a->n];
    a->len[a->n++] = (size_t)n;
}

/* ---- replies ------------------------------------------------------------- */

static bool rnum(const weft_redis_reply *e, long long *v)
{
    if (e->type == WEFT_REDIS_INTEGER) {
        *v = e->integer;
        return true;
    }
    if (e->type != WEFT_REDIS_STRING || e->len == 0 || e->len > 20)
        return false;
    char *end;
    errno = 0;
    long long x = strtoll(e->str, &end, 10);
    if (errno || end != e->str + e->len)
        return false;
    *v = x;
    return true;
}

/* a number of a hash field: 0 when missing or not a number */
static long long rnum0(const weft_redis_reply *e)
{
    long long v;
    return rnum(e, &v) ? v : 0;
}

/* a string element copied with weft__malloc (info) or malloc (claims,
 * freed by weft__claim_clear); NULL for nil unless always (then "") */
static char *rdup(const weft_redis_reply *e, bool always, bool plain, bool *oom)
{
    if (e->type != WEFT_REDIS_STRING && e->type != WEFT_REDIS_STATUS && !always)
        return NULL;
    size_t n = e->type == WEFT_REDIS_STRING || e->type == WEFT_REDIS_STATUS ? e->len : 0;
    char *c = plain ? malloc(n + 1) : weft__malloc(n + 1);
    if (!c) {
        *oom = true;
        return NULL;
    }
    if (n)
        memcpy(c, e->str, n);
    c[n] = 0;
    return c;
}

static bool is_array(const weft_redis_reply *rep, size_t min)
{
    return rep && rep->type == WEFT_REDIS_ARRAY && rep->elements >= min;
}

static int bad_reply(weft_queue *q, int s, weft_redis_reply *rep)
{
    weft_log(WEFT_LOG_ERROR, "queue %s: unexpected reply to the %s script (type %d, %zu"
             " elements): not what weft's script returns", q->shown, names[s], rep ? rep->type : 0,
             rep ? rep->elements : 0);
    weft_redis_reply_free(rep);
    return -EPROTO;
}

/* an error reply as an errno, logged with the server's words */
static int server_error(weft_queue *q, const char *what, const weft_redis_reply *rep)
{
    const char *m = rep && rep->str ? rep->str : "";
    int rc = -EIO;
    if (strstr(m, "OOM "))
        rc = -ENOSPC;                    /* maxmemory: as a full disk */
    else if (!strncmp(m, "READONLY", 8) || !strncmp(m, "NOPERM", 6) || !strncmp(m, "NOAUTH", 6) ||
             strstr(m, "NOPERM"))
        rc = -EACCES;
    else if (!strncmp(m, "LOADING", 7) || !strncmp(m, "BUSY", 4) || !strncmp(m, "MASTERDOWN", 10) ||
             !strncmp(m, "TRYAGAIN", 8))
        rc = -EAGAIN;
    weft_log(WEFT_LOG_WARN, "queue %s: %s: %s (%s)", q->shown, what, m, weft_strerror(rc));
    return rc;
}

/* ---- running scripts ----------------------------------------------------- */

static bool lost(int rc)
{
    return rc == -ECONNRESET || rc == -WEFT_EEOF || rc == -EPIPE;
}

/* script s with a's arguments: 0 and *out, or < 0 (*out NULL) */
static int run(weft_queue *q, int s, struct args *a, weft_redis_reply **out)
{
    struct rq *h = q->impl;
    a->v[0] = "EVALSHA";
    a->len[0] = 7;
    a->v[1] = h->sha[s];
    a->len[1] = 40;
    a->v[2] = "0";
    a->len[2] = 1;
    int rc = weft_redis_command(h->r, out, a->n, a->v, a->len);
    /* a connection the server closed while it idled in the pool (a
     * restart) fails the first command sent on it, and is dropped: reads
     * and extends are safe to send again, on another (a few: the pool may
     * hold several such); a write may have run */
    bool again = s != S_ENQUEUE && s != S_CLAIM && s != S_RETRY && s != S_PURGE;
    for (int i = 0; again && lost(rc) && i < 3; i++)
        rc = weft_redis_command(h->r, out, a->n, a->v, a->len);
    if (rc == -WEFT_EREDIS && *out && (*out)->str && strncmp((*out)->str, "NOSCRIPT", 8) == 0) {
        /* the server lost it (SCRIPT FLUSH, a restart): the body, which
         * loads it again under the same SHA */
        weft_redis_reply_free(*out);
        a->v[0] = "EVAL";
        a->len[0] = 4;
        a->v[1] = body[s];
        a->len[1] = strlen(body[s]);
        rc = weft_redis_command(h->r, out, a->n, a->v, a->len);
    }
    if (rc == -WEFT_EREDIS) {
        char what[32];
        snprintf(what, sizeof what, "the %s script", names[s]);
        rc = server_error(q, what, *out);
        weft_redis_reply_free(*out);
        *out = NULL;
    }
    return rc;
}

/* A write: not begun when the caller is cancelled or past its deadline;
 * once begun, waited for whatever happens (the client's own timeouts bound
 * it): its effects are the caller's to know. */
static int run_write(weft_queue *q, int s, struct args *a, weft_redis_reply **out)
{
    *out = NULL;
    int rc = weft__interrupted(WEFT_FOREVER, 0);
    if (rc)
        return rc;
    weft_scope sc;
    weft_scope_enter_shielded(&sc, WRITE_BOUND);
    rc = run(q, s, a, out);
    weft_scope_exit(&sc);
    return rc;
}

/* ---- open and close ------------------------------------------------------ */

static int load_scripts(weft_queue *q, struct rq *h)
{
    for (int s = 0; s < S_N; s++) {
        weft_redis_reply *rep;
        const char *argv[] = { "SCRIPT", "LOAD", body[s] };
        int rc = weft_redis_command(h->r, &rep, 3, argv, NULL);
        if (rc == -WEFT_EREDIS) {
            rc = server_error(q, "cannot load the scripts", rep);
            weft_redis_reply_free(rep);
            return rc;
        }
        if (rc)
            return rc;
        if (rep->type != WEFT_REDIS_STRING || rep->len != 40)
            return bad_reply(q, s, rep);
        memcpy(h->sha[s], rep->str, 41);
        weft_redis_reply_free(rep);
    }
    return 0;
}

/* Redis 6.2 at least (ZMSCORE, XTRIM MINID): an older server would fail
 * every claim with an unknown command. A server that will not say (INFO
 * refused by an ACL) is taken at its word. */
static int check_version(weft_queue *q, struct rq *h)
{
    weft_redis_reply *rep;
    const char *argv[] = { "INFO", "server" };
    int rc = weft_redis_command(h->r, &rep, 2, argv, NULL);
    if (rc == -WEFT_EREDIS)
        rc = 0;
    const char *v = !rc && rep->type == WEFT_REDIS_STRING ? strstr(rep->str, "redis_version:")
                                                          : NULL;
    int major = 0, minor = 0;
    if (v && sscanf(v, "redis_version:%d.%d", &major, &minor) == 2 &&
        (major < 6 || (major == 6 && minor < 2))) {
        weft_log(WEFT_LOG_WARN, "queue %s: Redis %d.%d: the queue needs 6.2 or later", q->shown,
                 major, minor);
        rc = -ENOTSUP;
    } else if (rc) {
        weft_log(WEFT_LOG_WARN, "queue %s: %s", q->shown, weft_strerror(rc));
    }
    weft_redis_reply_free(rep);
    return rc;
}

static int rd_open(weft_queue *q, const char *url)
{
    struct rq *h = weft__calloc(1, sizeof *h);
    if (!h)
        return -ENOMEM;
    weft_redis_opts o = { .name = "weft-queue" };
    if (!(h->r = weft_redis_new(url, &o))) {
        int rc = -errno;
        weft__free(h);
        return rc;
    }
    h->tail = &h->head;
    q->impl = h;
    int rc = check_version(q, h);
    if (!rc)
        rc = load_scripts(q, h);
    if (rc) {
        weft_redis_close(h->r, 0);
        weft__free(h);
        q->impl = NULL;
    }
    return rc;
}

static void rd_close(weft_queue *q)
{
    struct rq *h = q->impl;
    if (weft_redis_close(h->r, WEFT_SEC) == -EPERM) {
        /* its connections live in the opener's background: they end with
         * that task, not before */
        weft_log(WEFT_LOG_WARN, "queue %s: closed by another task than the one that opened it:"
                 " its connections close when that task returns", q->shown);
        return;
    }
    weft__free(h);
}

/* ---- writes -------------------------------------------------------------- */

/* ---- enqueue: many tasks' calls in one script ------------------------------
 *
 * An enqueue joins the pending list; when fewer than ENQ_INFLIGHT scripts
 * are on their way, it takes itself and the calls pending before it (up
 * to ENQ_JOBS jobs, its own always) into one script, which is atomic: each
 * call stays all or nothing, and one whose keys another program holds
 * fails alone (-EIO), before any write of its. Under load the calls that
 * come while scripts run gather into the next one: one script and a few
 * Redis calls per job instead of a script each. A call still pending when its task is
 * cancelled leaves, nothing enqueued; once taken, it waits for the result.
 */

#define ENQ_JOBS 512
#define ENQ_INFLIGHT 2

struct enq {
    struct enq *next, **pprev;
    const weft_job_spec *jobs;
    int n, rc;
    weft_job_id *ids;
    bool *dup;
    bool taken, done;
    weft_event ev;                       /* set: done, or it may lead */
};

static void enq_unlink(struct rq *h, struct enq *e)
{
    *e->pprev = e->next;
    if (e->next)
        e->next->pprev = e->pprev;
    else
        h->tail = e->pprev;
}

/* the first pending call leads the next script */
static void enq_pass_on(struct rq *h)
{
    if (h->head && h->inflight < ENQ_INFLIGHT)
        weft_event_set(&h->head->ev);
}

static int enq_script(weft_queue *q, struct enq *batch, int total)
{
    struct args a;
    if (args_init(&a, 1 + 9 * total))
        return -ENOMEM;
    arg_num(&a, total);
    int call = 0;
    for (struct enq *e = batch; e; e = e->next, call++)
        for (int i = 0; i < e->n; i++) {
            const weft_job_spec *j = &e->jobs[i];
            arg_str(&a, j->queue);
            arg_str(&a, j->type);
            arg_str(&a, j->payload);
            arg_num(&a, j->opts.priority);
            arg_num(&a, j->opts.delay / WEFT_MS);
            arg_num(&a, j->opts.run_at_ms);
            arg_num(&a, j->opts.max_attempts);
            arg_str(&a, j->opts.key ? j->opts.key : "");
            arg_num(&a, call);
        }
    weft_redis_reply *rep;
    weft_scope sc;
    weft_scope_enter_shielded(&sc, WRITE_BOUND);
    int rc = run(q, S_ENQUEUE, &a, &rep);
    weft_scope_exit(&sc);
    args_free(&a);
    if (rc)
        return rc;
    if (!is_array(rep, 0) || rep->elements != 2 * (size_t)total)
        return bad_reply(q, S_ENQUEUE, rep);
    const weft_redis_reply *el = rep->element;
    for (struct enq *e = batch; e; e = e->next)
        for (int i = 0; i < e->n; i++, el += 2) {
            long long id, d;
            if (el[1].type == WEFT_REDIS_STRING && el[1].len && el[1].str[0] == '!') {
                /* a key of this call's is another program's: the script
                 * wrote none of its jobs (and all of the other calls') */
                if (!e->rc)
                    weft_log(WEFT_LOG_WARN, "queue %s: %s holds another program's data:"
                             " enqueue to queue %s fails (%s)", q->shown, el[1].str + 1,
                             e->jobs[i].queue, weft_strerror(-EIO));
                e->rc = -EIO;
                continue;
            }
            if (!rnum(&el[0], &id) || !rnum(&el[1], &d))
                return bad_reply(q, S_ENQUEUE, rep);
            e->ids[i] = id;
            e->dup[i] = d != 0;
        }
    weft_redis_reply_free(rep);
    return 0;
}

/* me and the calls pending before it, in one script */
static void enq_lead(weft_queue *q, struct enq *me)
{
    struct rq *h = q->impl;
    enq_unlink(h, me);
    me->taken = true;
    me->next = NULL;
    struct enq **last = &me->next;
    int total = me->n;
    while (h->head && total + h->head->n <= ENQ_JOBS) {
        struct enq *e = h->head;
        enq_unlink(h, e);
        e->taken = true;
        e->next = NULL;
        *last = e;
        last = &e->next;
        total += e->n;
    }
    h->inflight++;
    int rc = enq_script(q, me, total);
    h->inflight--;
    for (struct enq *e = me, *next; e; e = next) {
        next = e->next;
        if (rc)
            e->rc = rc;
        e->done = true;
        weft_event_set(&e->ev);
    }
    enq_pass_on(h);
}

static int rd_enqueue(weft_queue *q, const weft_job_spec *jobs, int n, int64_t now,
                      weft_job_id *ids, bool *dup)
{
    (void)now;                           /* the server's clock */
    struct rq *h = q->impl;
    struct enq me = { .jobs = jobs, .n = n, .ids = ids, .dup = dup };
    weft_event_init(&me.ev);
    me.pprev = h->tail;
    *h->tail = &me;
    h->tail = &me.next;
    for (;;) {
        if (me.done)
            return me.rc;
        if (!me.taken && h->inflight < ENQ_INFLIGHT) {
            int rc = weft__interrupted(WEFT_FOREVER, 0);
            if (rc) {
                enq_unlink(h, &me);
                enq_pass_on(h);
                return rc;
            }
            enq_lead(q, &me);
            continue;
        }
        int rc = weft_event_wait(&me.ev);
        weft_event_clear(&me.ev);
        if (rc < 0 && !me.taken) {
            enq_unlink(h, &me);          /* not begun: nothing enqueued */
            enq_pass_on(h);
            return rc;
        }
        if (rc < 0) {
            /* in a script on its way: its leader writes here, wait for it */
            weft_scope sc;
            weft_scope_enter_shielded(&sc, WEFT_FOREVER);
            while (!me.done) {
                weft_event_wait(&me.ev);
                weft_event_clear(&me.ev);
            }
            weft_scope_exit(&sc);
        }
    }
}

/* an outcome's id tok kind delay_ms (its text follows) */
static void outcome_args(struct args *a, const struct weft__outcome *o, int64_t now)
{
    static const char kind[][2] = { [WEFT__DONE] = "D", [WEFT__RETRY] = "R", [WEFT__DEAD] = "X",
                                    [WEFT__RELEASE] = "L" };
    arg_num(a, o->id);
    arg_num(a, (long long)o->token);
    arg_str(a, kind[o->kind]);
    arg_num(a, o->kind == WEFT__RETRY ? o->at_ms - now : 0);
}

/* a claimed job's CLAIM_FIELDS elements into c (strings with malloc: weft__claim_clear) */
static int claim_parse(const weft_redis_reply *e, const char *queue, int64_t now,
                       struct weft__claim *c)
{
    long long id, tok, att, max, age;
    if (!rnum(&e[0], &id) || !rnum(&e[1], &tok) || !rnum(&e[2], &att) || !rnum(&e[3], &max) ||
        !rnum(&e[4], &age) || e[5].type != WEFT_REDIS_STRING || e[6].type != WEFT_REDIS_STRING)
        return -EPROTO;
    bool oom = false;
    *c = (struct weft__claim){ .id = id, .token = (uint64_t)tok, .attempt = (int)att,
                               .max_attempts = (int)max, .due_ms = now - (age > 0 ? age : 0) };
    c->type = rdup(&e[5], true, true, &oom);
    c->payload = rdup(&e[6], true, true, &oom);
    c->queue = strdup(queue);
    if (oom || !c->queue) {
        weft__claim_clear(c);
        return -ENOMEM;
    }
    return 0;
}

static void claim_report(weft_queue *q, const weft_redis_reply *e, long long dropped,
                         long long bad)
{
    for (long long i = 0; i < dropped; i++)
        weft_log(WEFT_LOG_INFO, "queue: job %s was no longer leased to this worker (lease"
                 " expired): its outcome is dropped", e[i].type == WEFT_REDIS_STRING ? e[i].str : "?");
    for (long long i = dropped; i < dropped + bad; i++) {
        const char *s = e[i].type == WEFT_REDIS_STRING ? e[i].str : "?";
        if (*s == '-')
            weft_log(WEFT_LOG_WARN, "queue %s: stream entry %s is not a job (written by"
                     " another program?): dropped", q->shown, s + 1);
        else if (*s == '!')
            weft_log(WEFT_LOG_WARN, "queue %s: %s holds another program's data: its"
                     " priority is skipped, its jobs wait until that key is removed", q->shown,
                     s + 1);
        else
            weft_log(WEFT_LOG_WARN, "queue %s: weft:job:%s is not a waiting job (written by"
                     " another program?): dropped from the queue", q->shown, s);
    }
}

static int rd_claim(weft_queue *q, const char *queue, const struct weft__outcome *o, int no,
                    int max, int64_t now, int64_t lease_until, struct weft__claim *out,
                    int64_t *next)
{
    *next = INT64_MAX;
    struct args a;
    if (args_init(&a, 5 + 5 * no))
        return -ENOMEM;
    /* texts are sent as "=" text ("" for none): one buffer for them all */
    size_t tlen = 0;
    for (int i = 0; i < no; i++)
        tlen += (o[i].text ? strlen(o[i].text) : 0) + 2;
    char *texts = weft__malloc(tlen + 1), *t = texts;
    if (!texts) {
        args_free(&a);
        return -ENOMEM;
    }
    arg_str(&a, queue);
    arg_num(&a, max);
    arg_num(&a, lease_until - now > 0 ? lease_until - now : 1);
    arg_num(&a, q->o.max_attempts);
    arg_num(&a, no);
    for (int i = 0; i < no; i++) {
        outcome_args(&a, &o[i], now);
        size_t n = o[i].text ? strlen(o[i].text) : 0;
        a.v[a.n] = t;
        a.len[a.n++] = o[i].text ? n + 1 : 0;
        if (o[i].text) {
            *t = '=';
            memcpy(t + 1, o[i].text, n);
            t += n + 1;
        }
    }
    weft_redis_reply *rep;
    int rc = run_write(q, S_CLAIM, &a, &rep);
    args_free(&a);
    weft__free(texts);
    if (rc)
        return rc;
    long long n, nx, dropped, bad;
    if (!is_array(rep, 4) || !rnum(&rep->element[0], &n) || !rnum(&rep->element[1], &nx) ||
        !rnum(&rep->element[2], &dropped) || !rnum(&rep->element[3], &bad) || n < 0 ||
        n > max || dropped < 0 || bad < 0 ||
        rep->elements != 4 + (size_t)(n * CLAIM_FIELDS + dropped + bad))
        return bad_reply(q, S_CLAIM, rep);
    for (int i = 0; i < n; i++)
        if ((rc = claim_parse(&rep->element[4 + i * CLAIM_FIELDS], queue, now, &out[i]))) {
            /* the jobs stay leased until their leases expire, then run again */
            while (i--)
                weft__claim_clear(&out[i]);
            if (rc == -EPROTO)
                return bad_reply(q, S_CLAIM, rep);
            weft_redis_reply_free(rep);
            return rc;
        }
    claim_report(q, &rep->element[4 + n * CLAIM_FIELDS], dropped, bad);
    weft_redis_reply_free(rep);
    if (nx >= 0)
        *next = now + nx;
    return (int)n;
}

static int rd_extend(weft_queue *q, const weft_job_id *ids, const uint64_t *tokens, int n,
                     int64_t until, bool *lost)
{
    struct args a;
    if (args_init(&a, 1 + 2 * n))
        return -ENOMEM;
    int64_t left = until - weft__unix_ms();
    arg_num(&a, left > 0 ? left : 1);
    for (int i = 0; i < n; i++) {
        arg_num(&a, ids[i]);
        arg_num(&a, (long long)tokens[i]);
    }
    weft_redis_reply *rep;
    /* not shielded: a lease extended for a caller that went away only
     * lasts a little longer */
    int rc = run(q, S_EXTEND, &a, &rep);
    args_free(&a);
    if (rc)
        return rc;
    if (!is_array(rep, (size_t)n) || rep->elements != (size_t)n)
        return bad_reply(q, S_EXTEND, rep);
    for (int i = 0; i < n; i++)
        lost[i] = rnum0(&rep->element[i]) != 0;
    weft_redis_reply_free(rep);
    return 0;
}

static int rd_retry(weft_queue *q, weft_job_id id, int64_t now)
{
    (void)now;
    struct args a;
    if (args_init(&a, 1))
        return -ENOMEM;
    arg_num(&a, id);
    weft_redis_reply *rep;
    int rc = run_write(q, S_RETRY, &a, &rep);
    args_free(&a);
    if (rc)
        return rc;
    long long v;
    if (!rnum(rep, &v) || v < -2 || v > 0)
        return bad_reply(q, S_RETRY, rep);
    weft_redis_reply_free(rep);
    return v == 0 ? 0 : v == -1 ? -EINVAL : -ENOENT;
}

/* in steps of PURGE_STEP jobs, each a script of its own: a purge of
 * millions must not hold the server for seconds */
static int rd_purge(weft_queue *q, const char *queue, int state)
{
    long long total = 0, removed, more = 1;
    while (more) {
        struct args a;
        if (args_init(&a, 3))
            return -ENOMEM;
        arg_str(&a, queue ? queue : "");
        arg_num(&a, state);
        arg_num(&a, PURGE_STEP);
        weft_redis_reply *rep;
        int rc = run_write(q, S_PURGE, &a, &rep);
        args_free(&a);
        if (rc)
            return total ? (int)total : rc;
        if (!is_array(rep, 2) || rep->elements != 2 || !rnum(&rep->element[0], &removed) ||
            !rnum(&rep->element[1], &more))
            return bad_reply(q, S_PURGE, rep);
        weft_redis_reply_free(rep);
        total += removed;
    }
    return total > INT32_MAX ? INT32_MAX : (int)total;
}

/* ---- reads --------------------------------------------------------------- */

/* a record (INFO_FIELDS elements) into o, strings with weft__malloc */
static int info_parse(const weft_redis_reply *e, weft_job_info *o, int def_max)
{
    long long id, st;
    if (!rnum(&e[0], &id) || !rnum(&e[1], &st) || st < 0 || st > WEFT_JOB_DEAD)
        return -EPROTO;
    *o = (weft_job_info){ .id = id, .state = (int)st, .attempts = (int)rnum0(&e[2]),
                          .max_attempts = (int)rnum0(&e[3]), .priority = (int)rnum0(&e[4]),
                          .created_ms = rnum0(&e[5]), .run_at_ms = rnum0(&e[6]),
                          .finished_ms = rnum0(&e[7]) };
    if (o->max_attempts <= 0)
        o->max_attempts = def_max;
    bool oom = false;
    o->queue = rdup(&e[8], true, false, &oom);
    o->type = rdup(&e[9], true, false, &oom);
    o->payload = rdup(&e[10], true, false, &oom);
    o->result = rdup(&e[11], false, false, &oom);
    o->last_error = rdup(&e[12], false, false, &oom);
    if (oom) {
        weft_job_info_free(o);
        return -ENOMEM;
    }
    return 0;
}

static int rd_get(weft_queue *q, weft_job_id id, int64_t now, weft_job_info *out)
{
    (void)now;
    struct args a;
    if (args_init(&a, 1))
        return -ENOMEM;
    arg_num(&a, id);
    weft_redis_reply *rep;
    int rc = run(q, S_GET, &a, &rep);
    args_free(&a);
    if (rc)
        return rc;
    if (rep->type == WEFT_REDIS_INTEGER) {
        weft_log(WEFT_LOG_WARN, "queue %s: weft:job:%lld is not a job (written by another"
                 " program?)", q->shown, (long long)id);
        weft_redis_reply_free(rep);
        return -EIO;
    }
    if (!is_array(rep, 0) || (rep->elements != 0 && rep->elements != INFO_FIELDS))
        return bad_reply(q, S_GET, rep);
    rc = rep->elements == 0 ? -ENOENT : info_parse(rep->element, out, q->o.max_attempts);
    if (rc == -EPROTO)
        return bad_reply(q, S_GET, rep);
    weft_redis_reply_free(rep);
    return rc;
}

static int rd_list(weft_queue *q, const char *queue, int state, weft_job_id after, int64_t now,
                   weft_job_info *out, int max)
{
    (void)now;
    int got = 0, rc = 0;
    long long more = 1, skipped = 0;
    while (got < max && more && !rc) {
        struct args a;
        if (args_init(&a, 5)) {
            rc = -ENOMEM;
            break;
        }
        arg_str(&a, queue ? queue : "");
        arg_num(&a, state);
        arg_num(&a, after);
        arg_num(&a, max - got);
        arg_num(&a, LIST_SCAN);
        weft_redis_reply *rep;
        rc = run(q, S_LIST, &a, &rep);
        args_free(&a);
        if (rc)
            break;
        long long cursor, skip;
        size_t k = is_array(rep, 3) ? (rep->elements - 3) / INFO_FIELDS : 0;
        if (!is_array(rep, 3) || (rep->elements - 3) % INFO_FIELDS || k > (size_t)(max - got) ||
            !rnum(&rep->element[0], &more) || !rnum(&rep->element[1], &cursor) ||
            !rnum(&rep->element[2], &skip)) {
            rc = bad_reply(q, S_LIST, rep);
            break;
        }
        for (size_t i = 0; i < k && !rc; i++)
            if (!(rc = info_parse(&rep->element[3 + i * INFO_FIELDS], &out[got], q->o.max_attempts)))
                got++;
        if (rc == -EPROTO) {
            rc = bad_reply(q, S_LIST, rep);
            break;
        }
        weft_redis_reply_free(rep);
        skipped += skip;
        after = cursor;
    }
    if (skipped)
        weft_log(WEFT_LOG_WARN, "queue %s: %lld ids of the list index are not jobs (written by"
                 " another program?): left out", q->shown, skipped);
    if (rc) {
        while (got--)
            weft_job_info_free(&out[got]);
        return rc;
    }
    return got;
}

static int rd_stats(weft_queue *q, const char *queue, int64_t now, weft_queue_stats *s)
{
    (void)now;
    struct args a;
    if (args_init(&a, 1))
        return -ENOMEM;
    arg_str(&a, queue ? queue : "");
    weft_redis_reply *rep;
    int rc = run(q, S_STATS, &a, &rep);
    args_free(&a);
    if (rc)
        return rc;
    long long v[6];
    if (!is_array(rep, 6) || rep->elements != 6)
        return bad_reply(q, S_STATS, rep);
    for (int i = 0; i < 6; i++)
        if (!rnum(&rep->element[i], &v[i]) || v[i] < 0)
            return bad_reply(q, S_STATS, rep);
    weft_redis_reply_free(rep);
    *s = (weft_queue_stats){ (uint64_t)v[0], (uint64_t)v[1], (uint64_t)v[2], (uint64_t)v[3],
                             (uint64_t)v[4], (double)v[5] / 1e3 };
    return 0;
}

/* ---- waking idle workers ------------------------------------------------- */

struct watch {
    weft_queue *q;
    weft_redis_sub *sub;
    bool first, told;
};

static void *rd_watch_new(weft_queue *q, const char *queue)
{
    struct rq *h = q->impl;
    struct watch *w = weft__calloc(1, sizeof *w);
    size_t n = strlen(queue) + 16;
    char *chan = weft__malloc(n);
    if (!w || !chan) {
        weft__free(w);
        weft__free(chan);
        return NULL;
    }
    snprintf(chan, n, "weft:q:%s:wake", queue);
    const char *chans[] = { chan };
    int rc = weft_redis_subscribe(h->r, chans, 1, false, &w->sub);
    weft__free(chan);
    if (rc) {
        weft_log(WEFT_LOG_WARN, "queue %s: cannot subscribe to wake-ups (%s): idle workers look"
                 " once a second", q->shown, weft_strerror(rc));
        w->sub = NULL;
    }
    w->q = q;
    w->first = true;
    return w;
}

static void rd_watch_free(void *arg)
{
    struct watch *w = arg;
    weft_redis_sub_close(w->sub);
    weft__free(w);
}

/* Returns once a message came, after taking every one waiting: a burst of
 * enqueues wakes the worker once. The subscription is made in the
 * background, so the first wait is short: a claim made before it was in
 * place may have missed a publish. */
static int rd_watch(void *arg)
{
    struct watch *w = arg;
    if (!w->sub)
        return weft_sleep(WEFT_SEC);
    weft_redis_msg m;
    weft_scope sc;
    weft_scope_enter(&sc, w->first ? 250 * WEFT_MS : WEFT_FOREVER);
    int rc = weft_redis_sub_recv(w->sub, &m);
    bool late = weft_scope_exit(&sc);
    if (w->first && late) {
        w->first = false;
        return 0;
    }
    w->first = false;
    if (rc == -EPIPE || rc == -EACCES) {
        if (!w->told)
            weft_log(WEFT_LOG_WARN, "queue %s: wake-ups ended (%s): idle workers look once a"
                     " second", w->q->shown, weft_strerror(rc));
        w->told = true;
        return weft_sleep(WEFT_SEC);
    }
    if (rc < 0 && rc != -ENOBUFS)
        return rc;
    weft_redis_msg_free(&m);
    weft_scope_enter(&sc, 0);
    while (weft_redis_sub_recv(w->sub, &m) == 0)
        weft_redis_msg_free(&m);
    weft_scope_exit(&sc);
    return 0;
}

const struct weft__qbackend weft__qredis = {
    .name = "redis",
    .open = rd_open,
    .close = rd_close,
    .enqueue = rd_enqueue,
    .claim = rd_claim,
    .extend = rd_extend,
    .watch_new = rd_watch_new,
    .watch = rd_watch,
    .watch_free = rd_watch_free,
    .get = rd_get,
    .list = rd_list,
    .retry = rd_retry,
    .purge = rd_purge,
    .stats = rd_stats,
};
