/*
 * The PostgreSQL backend: "postgres://..." or "postgresql://...", for
 * workers on many hosts sharing one server.
 *
 * A job is a row of weft_queue.jobs (pg_schema.h); every change of state
 * is one call of a function of the schema through weft's pool (one round
 * trip, one transaction, committed when the call returns). Claims take
 * due rows with FOR UPDATE SKIP LOCKED, so workers on any number of hosts
 * never wait on each other's rows; leases are the server's Unix ms; idle
 * workers wait on LISTEN weft_queue (each enqueue and retry notifies the
 * job's queue) besides the next due time the claim returned.
 *
 * The schema is made by migrations compiled in, recorded in
 * weft_queue.migrations (never in the application's schema_migrations),
 * under an advisory lock of their own: hosts starting together apply them
 * once.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/kernel.h"
#include "internal.h"
#include "pg/own.h"
#include "pg_schema.h"
#include "weft/error.h"
#include "weft/log.h"
#include "weft/pg.h"

#define MIGRATE_LOCK 2004116853LL          /* the application's is 2004116852 */
#define CHANNEL "weft_queue"

static const struct weft__pg_migration_src migrations[] = {
    { 1, "jobs", PGQ_V1 },
};

/* an enqueue call waiting for its group (on the caller's stack) */
struct enq {
    struct enq *next;
    const weft_job_spec *jobs;
    int n, rc;
    weft_job_id *ids;
    bool *dup;
    bool sent, done;
    weft_event ev;
};

struct pgq {
    weft_pg *db;
    struct enq *head, **tail;            /* waiting to be sent */
    bool flushing;                       /* a group is in flight */
};

static weft_pg *db_of(weft_queue *q)
{
    return ((struct pgq *)q->impl)->db;
}

/* logs what failed with the server's words; the code stays the pool's */
static int failed(weft_queue *q, const char *what, int rc, const weft_pg_result *r)
{
    weft_log(WEFT_LOG_WARN, "queue %s: %s: %s", q->shown, what,
             r && r->error[0] ? r->error : weft_strerror(rc));
    return rc;
}

/* ---- opening ----------------------------------------------------------- */

/* the schema is there at the latest version: a role that may use the
 * tables but not create anything opens the queue too (CREATE ... IF NOT
 * EXISTS checks the privilege before the existence) */
static bool migrated(weft_pg *db)
{
    weft_pg_result r;
    int64_t v = 0;
    int rc = weft_pg_query(db, &r, "SELECT max(version) FROM weft_queue.migrations", 0, NULL);
    if (rc == 0 && r.nrows == 1 && !weft_pg_is_null(&r, 0, 0))
        weft_pg_get_int(&r, 0, 0, &v);
    weft_pg_result_free(&r);
    return v >= migrations[sizeof migrations / sizeof *migrations - 1].version;
}

static int pq_open(weft_queue *q, const char *where)
{
    (void)where;
    struct pgq *h = calloc(1, sizeof *h);
    if (!h)
        return -ENOMEM;
    weft_pg_opts o = { .name = "weft_queue", .min_size = 1 };
    if (!(h->db = weft_pg_new(q->url, &o))) {
        int rc = -errno;
        free(h);
        return rc;
    }
    weft_pg_result r = { 0 };
    int rc = migrated(h->db) ? 0 : weft__pg_migrate_embedded(h->db, "weft_queue.migrations", MIGRATE_LOCK,
                                       "CREATE SCHEMA IF NOT EXISTS weft_queue", migrations,
                                       (int)(sizeof migrations / sizeof *migrations), &r);
    if (rc < 0) {
        failed(q, "cannot make the schema", rc, &r);
        weft_pg_result_free(&r);
        weft_pg_close(h->db, 0);
        free(h);
        return rc;
    }
    weft_pg_result_free(&r);
    h->tail = &h->head;
    q->impl = h;
    return 0;
}

static void pq_close(weft_queue *q)
{
    struct pgq *h = q->impl;
    weft_pg_close(h->db, 5 * WEFT_SEC);
    free(h);
}

/* ---- JSON arguments ----------------------------------------------------- */

/* a json_t made of (..) and freed by json_dumps' caller: NULL on ENOMEM */
static char *dump(json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    return s;
}

/* the jobs of every call in the group, in order, as one JSON array */
static char *jobs_json(const struct enq *group)
{
    json_t *a = json_array();
    for (const struct enq *e = group; a && e; e = e->next)
        for (int i = 0; i < e->n; i++) {
            const weft_job_spec *js = &e->jobs[i];
            const weft_job_opts *o = &js->opts;
            json_t *j = json_pack("{s:s, s:s, s:s, s:i, s:I, s:I, s:i, s:s?}", "queue",
                                  js->queue, "type", js->type, "payload", js->payload,
                                  "priority", o->priority, "delay",
                                  (json_int_t)(o->delay / WEFT_MS), "run_at",
                                  (json_int_t)o->run_at_ms, "max_attempts", o->max_attempts,
                                  "key", o->key);
            if (!j || json_array_append_new(a, j)) {
                json_decref(a);
                return NULL;
            }
        }
    return dump(a);
}

/* outcomes with a retry's due time as a delay from now (the server's clock
 * then places it) */
static char *outcomes_json(const struct weft__outcome *o, int n, int64_t now)
{
    json_t *a = json_array();
    for (int i = 0; a && i < n; i++) {
        int64_t delay = o[i].kind == WEFT__RETRY && o[i].at_ms > now ? o[i].at_ms - now : 0;
        json_t *j = json_pack("{s:I, s:I, s:i, s:I, s:s?}", "id", (json_int_t)o[i].id, "token",
                              (json_int_t)o[i].token, "kind", o[i].kind, "delay",
                              (json_int_t)delay, "text", o[i].text);
        if (!j || json_array_append_new(a, j)) {
            json_decref(a);
            return NULL;
        }
    }
    return dump(a);
}

/* ---- writes -------------------------------------------------------------- */

static bool retryable(const weft_pg_result *r)
{
    const weft_pg_error_info *e = weft_pg_error(r);
    return e && e->sqlstate && (strcmp(e->sqlstate, "40P01") == 0 || strcmp(e->sqlstate, "40001") == 0);
}

/* the calls of group in one transaction; each gets the code, and its ids */
static int send_group(weft_queue *q, struct enq *group)
{
    int total = 0;
    for (struct enq *e = group; e; e = e->next)
        total += e->n;
    char *arg = jobs_json(group);
    if (!arg)
        return -ENOMEM;
    weft_pg_result r;
    weft_pg_val p[] = { WEFT_PG_TEXT(arg) };
    int rc;
    /* a deadlock or serialization failure rolled it all back: sent again */
    for (int tries = 0;; tries++) {
        rc = weft_pg_query(db_of(q), &r, "SELECT out_id, out_dup FROM weft_queue.enqueue($1::jsonb)",
                           1, p);
        if (rc != -WEFT_EPG || tries == 4 || !retryable(&r))
            break;
        weft_pg_result_free(&r);
    }
    free(arg);
    if (rc == 0 && r.nrows != total)
        rc = -EPROTO;
    int row = 0;
    for (struct enq *e = group; rc == 0 && e; e = e->next)
        for (int i = 0; rc == 0 && i < e->n; i++, row++) {
            int64_t id;
            bool d;
            if ((rc = weft_pg_get_int(&r, row, 0, &id)) == 0 &&
                (rc = weft_pg_get_bool(&r, row, 1, &d)) == 0) {
                e->ids[i] = id;
                e->dup[i] = d;
            }
        }
    if (rc < 0)
        failed(q, "enqueue", rc, &r);
    weft_pg_result_free(&r);
    return rc;
}

/* Group commit: the calls of the loop that come while a group is in flight
 * go together in the next one, one transaction and one WAL flush for all.
 * The caller whose turn it is sends the group, shielded (bounded by the
 * pool's query timeout) so that its own cancellation does not leave the
 * others not knowing whether their jobs were committed; a call cancelled
 * while it waits to be sent is taken out, nothing done. A group the
 * server refused is sent again call by call, so one call's error stays
 * its own. */
static void flush(weft_queue *q)
{
    struct pgq *h = q->impl;
    struct enq *group = h->head;
    h->head = NULL;
    h->tail = &h->head;
    h->flushing = true;
    for (struct enq *e = group; e; e = e->next)
        e->sent = true;
    weft_scope s;
    weft_scope_enter_shielded(&s, 60 * WEFT_SEC);
    int rc = send_group(q, group);
    if (rc == -WEFT_EPG && group->next)
        for (struct enq *e = group, *next; e; e = next) {
            next = e->next;
            e->next = NULL;
            e->rc = send_group(q, e);
            e->next = next;
        }
    else
        for (struct enq *e = group; e; e = e->next)
            e->rc = rc;
    weft_scope_exit(&s);
    for (struct enq *e = group, *next; e; e = next) {
        next = e->next;                  /* e may be gone once woken */
        e->done = true;
        weft_event_set(&e->ev);
    }
    h->flushing = false;
    if (h->head)                         /* the next group's first sends it */
        weft_event_set(&h->head->ev);
}

/* e leaves the waiting list unsent; the next waiter's turn may come */
static void unlink_enq(struct pgq *h, struct enq *e)
{
    struct enq **p = &h->head;
    while (*p != e)
        p = &(*p)->next;
    if (!(*p = e->next))
        h->tail = p;
    if (!h->flushing && h->head)
        weft_event_set(&h->head->ev);
}

static int pq_enqueue(weft_queue *q, const weft_job_spec *jobs, int n, int64_t now,
                      weft_job_id *ids, bool *dup)
{
    (void)now;                           /* the server's clock places the jobs */
    struct pgq *h = q->impl;
    struct enq e = { .jobs = jobs, .n = n, .ids = ids, .dup = dup };
    weft_event_init(&e.ev);
    *h->tail = &e;
    h->tail = &e.next;
    while (!e.done) {
        if (!h->flushing && !e.sent) {
            int rc = weft__interrupted(WEFT_FOREVER, 0);
            if (rc) {                    /* cancelled or out of time: nothing sent */
                unlink_enq(h, &e);
                return rc;
            }
            flush(q);
            continue;
        }
        weft_event_clear(&e.ev);
        if (e.sent) {                    /* in flight: its outcome is awaited */
            weft_scope s;
            weft_scope_enter_shielded(&s, 120 * WEFT_SEC);
            weft_event_wait(&e.ev);
            weft_scope_exit(&s);
            continue;
        }
        int rc = weft_event_wait(&e.ev);
        if (rc == 0 || e.done || e.sent)
            continue;
        /* cancelled before it was sent: out of the list, nothing done */
        unlink_enq(h, &e);
        return rc;
    }
    return e.rc;
}

/* row i of a claim's result into c: 0, or < 0 (a row it cannot read) */
static int claim_row(const weft_pg_result *r, int i, const char *queue, struct weft__claim *c)
{
    int64_t id, token, attempt, max, due;
    const char *type, *payload;
    size_t len;
    if (weft_pg_get_int(r, i, 0, &id) || weft_pg_get_int(r, i, 1, &token) ||
        weft_pg_get_text(r, i, 2, &type, &len) || weft_pg_get_text(r, i, 3, &payload, &len) ||
        weft_pg_get_int(r, i, 4, &attempt) || weft_pg_get_int(r, i, 5, &max) ||
        weft_pg_get_int(r, i, 6, &due))
        return -EPROTO;
    *c = (struct weft__claim){ .id = id, .token = (uint64_t)token, .attempt = (int)attempt,
                               .max_attempts = (int)max, .due_ms = due };
    c->queue = strdup(queue);
    c->type = strdup(type);
    c->payload = strdup(payload);
    if (!c->queue || !c->type || !c->payload) {
        weft__claim_clear(c);
        return -ENOMEM;
    }
    return 0;
}

static int pq_claim(weft_queue *q, const char *queue, const struct weft__outcome *o, int no,
                    int max, int64_t now, int64_t lease_until, struct weft__claim *out,
                    int64_t *next)
{
    *next = INT64_MAX;
    char *outs = no ? outcomes_json(o, no, now) : NULL;
    if (no && !outs)
        return -ENOMEM;
    weft_pg_result r = { 0 };
    weft_pg_val p[] = { WEFT_PG_TEXT(queue), outs ? WEFT_PG_TEXT(outs) : WEFT_PG_NULL,
                        WEFT_PG_INT(max), WEFT_PG_INT(lease_until - now),
                        WEFT_PG_INT(q->o.max_attempts) };
    /* once asked, the answer is awaited: claims the server made and nobody
     * read would wait for their leases to expire */
    int rc = weft__interrupted(WEFT_FOREVER, 0);
    if (!rc) {
        weft_scope s;
        weft_scope_enter_shielded(&s, 10 * WEFT_SEC);
        rc = weft_pg_query(db_of(q), &r, "SELECT * FROM weft_queue.claim($1, $2::jsonb, $3, $4, $5)",
                           5, p);
        weft_scope_exit(&s);
    }
    free(outs);
    int n = 0;
    for (int i = 0; rc == 0 && i < r.nrows; i++) {
        int64_t id, due, t;
        if (weft_pg_get_int(&r, i, 8, &t)) {
            rc = -EPROTO;
            break;
        }
        if (weft_pg_get_int(&r, i, 0, &id) == 0 && id == 0) {   /* the next due time */
            /* the server's clock to ours: hosts' clocks differ */
            if (weft_pg_get_int(&r, i, 6, &due) == 0 && due != INT64_MAX)
                *next = now + (due - t);
            continue;
        }
        if (n == max || (rc = claim_row(&r, i, queue, &out[n])) < 0) {
            rc = rc < 0 ? rc : -EPROTO;
        } else {
            out[n].due_ms = now + (out[n].due_ms - t);
            n++;
        }
    }
    if (rc < 0) {
        /* the jobs claimed are not handed out: their leases expire */
        while (n)
            weft__claim_clear(&out[--n]);
        failed(q, "claim", rc, &r);
    }
    weft_pg_result_free(&r);
    return rc < 0 ? rc : n;
}

/* "{1,2,3}": an int8[] literal */
static char *int_array(const int64_t *v, int n)
{
    size_t cap = (size_t)n * 21 + 3, len = 1;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    s[0] = '{';
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(s + len, cap - len, "%s%lld", i ? "," : "", (long long)v[i]);
    snprintf(s + len, cap - len, "}");
    return s;
}

static int pq_extend(weft_queue *q, const weft_job_id *ids, const uint64_t *tokens, int n,
                     int64_t until, bool *lost)
{
    char *a = int_array(ids, n), *b = int_array((const int64_t *)tokens, n);
    int rc = a && b ? 0 : -ENOMEM;
    weft_pg_result r = { 0 };
    if (!rc) {
        weft_pg_val p[] = { WEFT_PG_TEXT(a), WEFT_PG_TEXT(b),
                            WEFT_PG_INT(until - weft__unix_ms()) };
        rc = weft_pg_query(db_of(q), &r,
                           "UPDATE weft_queue.jobs j SET lease_until = weft_queue.now_ms() + $3"
                           " FROM unnest($1::int8[], $2::int8[]) AS u(id, token)"
                           " WHERE j.id = u.id AND j.token = u.token AND j.state = 2"
                           " RETURNING j.id, j.token", 3, p);
    }
    free(a);
    free(b);
    for (int i = 0; rc == 0 && i < n; i++)
        lost[i] = true;
    for (int k = 0; rc == 0 && k < r.nrows; k++) {
        int64_t id, token;
        if (weft_pg_get_int(&r, k, 0, &id) || weft_pg_get_int(&r, k, 1, &token))
            continue;
        for (int i = 0; i < n; i++)
            if (ids[i] == id && (int64_t)tokens[i] == token)
                lost[i] = false;
    }
    if (rc < 0)
        failed(q, "extend leases", rc, &r);
    weft_pg_result_free(&r);
    return rc;
}

static int pq_retry(weft_queue *q, weft_job_id id, int64_t now)
{
    (void)now;
    weft_pg_result r;
    weft_pg_val p[] = { WEFT_PG_INT(id) };
    int rc = weft_pg_query(db_of(q), &r, "SELECT weft_queue.revive($1)", 1, p);
    int64_t v = 0;
    if (rc == 0 && (rc = weft_pg_get_int(&r, 0, 0, &v)) == 0)
        rc = v == 1 ? 0 : v == 0 ? -EINVAL : -ENOENT;
    else
        failed(q, "retry", rc, &r);
    weft_pg_result_free(&r);
    return rc;
}

static int pq_purge(weft_queue *q, const char *queue, int state)
{
    /* in steps of 10,000 rows: each its own short transaction, however many */
    weft_pg_val p[] = { queue ? WEFT_PG_TEXT(queue) : WEFT_PG_NULL, WEFT_PG_INT(state) };
    int64_t total = 0;
    for (;;) {
        weft_pg_result r;
        int rc = weft_pg_query(db_of(q), &r,
                               "DELETE FROM weft_queue.jobs WHERE id IN (SELECT id FROM"
                               " weft_queue.jobs WHERE ($1::text IS NULL OR queue = $1) AND"
                               " (state = $2 OR ($2 < 0 AND state IN (3, 4))) LIMIT 10000)", 2, p);
        int64_t n = r.affected;
        if (rc < 0)
            failed(q, "purge", rc, &r);
        weft_pg_result_free(&r);
        if (rc < 0)
            return rc;
        total += n;
        if (n < 10000)
            return total > INT32_MAX ? INT32_MAX : (int)total;
    }
}

/* ---- reads ------------------------------------------------------------------ */

/* the state as the API tells it, by the server's clock read once (n.t) */
#define STATE_SQL                                                                          \
    "CASE WHEN state = 0 AND run_at > n.t THEN 1"                                          \
    " WHEN state = 2 AND lease_until <= n.t THEN 0 ELSE state END"
#define JOBS_SQL " FROM weft_queue.jobs, (SELECT weft_queue.now_ms() AS t) n "
#define INFO_SQL                                                                           \
    "SELECT id, " STATE_SQL " AS st, attempts, max_attempts, priority, created, run_at,"   \
    " coalesce(finished, 0), queue, type, payload, result, last_error" JOBS_SQL

/* column c of row i as a string of its own: NULL for SQL NULL unless always */
static char *col_dup(const weft_pg_result *r, int i, int c, bool always, bool *oom)
{
    const char *s;
    size_t len;
    if (weft_pg_is_null(r, i, c) && !always)
        return NULL;
    if (weft_pg_get_text(r, i, c, &s, &len) != 0) {
        s = "";
        len = 0;
    }
    char *d = weft__malloc(len + 1);
    if (!d) {
        *oom = true;
        return NULL;
    }
    memcpy(d, s, len);
    d[len] = 0;
    return d;
}

static int row_info(const weft_pg_result *r, int i, int def_max, weft_job_info *o)
{
    int64_t v[8] = { 0 };
    for (int c = 0; c < 8; c++)
        if (!weft_pg_is_null(r, i, c) && weft_pg_get_int(r, i, c, &v[c]) != 0)
            return -EPROTO;
    *o = (weft_job_info){ .id = v[0], .state = (int)v[1], .attempts = (int)v[2],
                          .max_attempts = v[3] > 0 ? (int)v[3] : def_max, .priority = (int)v[4],
                          .created_ms = v[5], .run_at_ms = v[6], .finished_ms = v[7] };
    bool oom = false;
    o->queue = col_dup(r, i, 8, true, &oom);
    o->type = col_dup(r, i, 9, true, &oom);
    o->payload = col_dup(r, i, 10, true, &oom);
    o->result = col_dup(r, i, 11, false, &oom);
    o->last_error = col_dup(r, i, 12, false, &oom);
    if (oom)
        weft_job_info_free(o);
    return oom ? -ENOMEM : 0;
}

static int rows_info(weft_queue *q, const weft_pg_result *r, weft_job_info *out, int max)
{
    int n = 0;
    for (int i = 0; i < r->nrows && n < max; i++, n++) {
        int rc = row_info(r, i, q->o.max_attempts, &out[n]);
        if (rc < 0) {
            while (n--)
                weft_job_info_free(&out[n]);
            return rc;
        }
    }
    return n;
}

static int pq_get(weft_queue *q, weft_job_id id, int64_t now, weft_job_info *out)
{
    (void)now;
    weft_pg_result r;
    weft_pg_val p[] = { WEFT_PG_INT(id) };
    int rc = weft_pg_query(db_of(q), &r, INFO_SQL "WHERE id = $1", 1, p);
    if (rc == 0)
        rc = r.nrows == 0 ? -ENOENT : rows_info(q, &r, out, 1) < 0 ? -ENOMEM : 0;
    else
        failed(q, "get", rc, &r);
    weft_pg_result_free(&r);
    return rc;
}

static int pq_list(weft_queue *q, const char *queue, int state, weft_job_id after, int64_t now,
                   weft_job_info *out, int max)
{
    (void)now;
    weft_pg_result r;
    weft_pg_val p[] = { WEFT_PG_INT(after), queue ? WEFT_PG_TEXT(queue) : WEFT_PG_NULL,
                        WEFT_PG_INT(state), WEFT_PG_INT(max) };
    int rc = weft_pg_query(db_of(q), &r,
                           "SELECT * FROM (" INFO_SQL "WHERE ($2::text IS NULL OR queue = $2)"
                           " AND id > $1) s WHERE $3 < 0 OR st = $3 ORDER BY id LIMIT $4", 4, p);
    if (rc == 0)
        rc = rows_info(q, &r, out, max);
    else
        failed(q, "list", rc, &r);
    weft_pg_result_free(&r);
    return rc;
}

static int pq_stats(weft_queue *q, const char *queue, int64_t now, weft_queue_stats *s)
{
    (void)now;
    weft_pg_result r;
    weft_pg_val p[] = { queue ? WEFT_PG_TEXT(queue) : WEFT_PG_NULL };
    int rc = weft_pg_query(db_of(q), &r,
                           "SELECT st, count(*), min(due), min(t) FROM (SELECT " STATE_SQL " AS st,"
                           " CASE WHEN state = 0 THEN run_at ELSE lease_until END AS due, n.t"
                           JOBS_SQL "WHERE $1::text IS NULL OR queue = $1) s GROUP BY st", 1, p);
    if (rc < 0) {
        failed(q, "stats", rc, &r);
        weft_pg_result_free(&r);
        return rc;
    }
    uint64_t *by[5] = { &s->queued, &s->scheduled, &s->running, &s->done, &s->dead };
    for (int i = 0; i < r.nrows; i++) {
        int64_t st, count, due, t;
        if (weft_pg_get_int(&r, i, 0, &st) || weft_pg_get_int(&r, i, 1, &count))
            continue;
        if (st >= 0 && st < 5)
            *by[st] += (uint64_t)count;
        if (st == 0 && !weft_pg_is_null(&r, i, 2) && weft_pg_get_int(&r, i, 2, &due) == 0 &&
            weft_pg_get_int(&r, i, 3, &t) == 0 && due < t)
            s->lag_s = ((double)t - (double)due) / 1e3;
    }
    weft_pg_result_free(&r);
    return 0;
}

/* ---- waking idle workers ----------------------------------------------------- */

struct watch {
    weft_queue *q;
    char *queue;
    weft_pg_listener *l;                  /* NULL until it could be made */
};

static void *pq_watch_new(weft_queue *q, const char *queue)
{
    struct watch *w = calloc(1, sizeof *w);
    if (w && !(w->queue = strdup(queue))) {
        free(w);
        return NULL;
    }
    if (w)
        w->q = q;
    return w;
}

static void pq_watch_free(void *arg)
{
    struct watch *w = arg;
    if (w->l)
        weft_pg_listener_close(w->l);
    free(w->queue);
    free(w);
}

/* returns once a notification for the queue came, or one may have been
 * missed (the listener reconnected, or dropped some) */
static int pq_watch(void *arg)
{
    struct watch *w = arg;
    const char *chan = CHANNEL;
    if (!w->l) {
        int rc = weft_pg_listen(db_of(w->q), &chan, 1, &w->l);
        if (rc < 0) {
            w->l = NULL;
            return rc;                     /* the worker waits a little and asks again */
        }
        return 0;                          /* anything before it came unseen */
    }
    for (;;) {
        weft_pg_notify m;
        int rc = weft_pg_listener_recv(w->l, &m);
        if (rc == -ECONNRESET || rc == -ENOBUFS)
            return 0;
        if (rc < 0)
            return rc;
        bool ours = strcmp(m.payload, w->queue) == 0;
        weft_pg_notify_free(&m);
        if (ours)
            break;
    }
    /* a burst of enqueues wakes the worker once: what already came is read */
    weft_scope s;
    weft_scope_enter(&s, 0);
    weft_pg_notify m;
    while (weft_pg_listener_recv(w->l, &m) == 0)
        weft_pg_notify_free(&m);
    weft_scope_exit(&s);
    return 0;
}

const struct weft__qbackend weft__qpg = {
    .name = "postgres",
    .open = pq_open,
    .close = pq_close,
    .enqueue = pq_enqueue,
    .claim = pq_claim,
    .extend = pq_extend,
    .watch_new = pq_watch_new,
    .watch = pq_watch,
    .watch_free = pq_watch_free,
    .get = pq_get,
    .list = pq_list,
    .retry = pq_retry,
    .purge = pq_purge,
    .stats = pq_stats,
};
