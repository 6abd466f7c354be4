/*
 * The PostgreSQL pool: connections from weft_pool, lent two ways.
 *
 * Exclusive: weft_pg_acquire lends one to a task (transactions, session
 * state); its release rolls back what the task left open.
 *
 * Shared: weft_pg_query puts one statement on a connection in shared use,
 * a segment of its pipeline. The task queues its segment (Parse if new,
 * set_config(statement_timeout, true) if its budget is not the one in
 * force, Bind/Execute) into the connection's open group, or alone with a
 * Sync of its own (statements that may not share a transaction), and
 * waits for its result. A reader task per shared connection ends the open
 * group with one Sync when it gets to it (so the statements queued while
 * the group before was on the wire, or in this loop turn, share one
 * implicit transaction), reads the segments' results in order into memory
 * of the connection's, and after the group's Sync hands each to its task
 * by moving it into the task's result; a task that gave up (deadline,
 * cancel) has left, and its result is read and dropped in its turn. When
 * a statement of a group failed, the others rolled back with it or never
 * ran: their tasks are told to run them again, alone (settle). The
 * reader waits for the server no longer than the head segment's budget
 * plus cancel_grace (its statement_timeout stops it on the server by
 * then): past that, or when the connection is lost, every segment
 * still on it fails and the connection is closed. When its last segment
 * is done the reader gives the connection back to the pool, so exclusive
 * acquirers are never starved by idle shared connections. A new statement
 * joins an open group with room, else goes to the least loaded shared
 * connection, or to a connection of its own while the pool has one at
 * hand (pick).
 *
 * Lifetimes: db is counted (the owner, each call in progress, each held
 * connection) and freed by the last; a segment belongs to its connection's
 * ring, never to a task's stack.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "internal.h"
#include "weft/log.h"
#include "weft/metrics.h"
#include "weft/sync.h"

struct seg {
    struct call k;
    weft_pg_stmt st;
    int rc;                               /* its read's code, held until its group's Sync */
    weft_pg_result res;                   /* read here, then moved to *out */
    weft_pg_result *out;                  /* the waiting task's; NULL: it left */
    weft_time sent;                       /* when it was queued */
    weft__wq done;                        /* the task waiting for it */
};

/* a segment's code when it rolled back with its group (or never ran):
 * its task runs it again, alone */
#define WEFT__PG_AGAIN 1

/* ---- the pool's side ------------------------------------------------------------ */

static void unref(weft_pg *db);

/* runs in the pool's background, which may outlive weft_pg_close: it
 * holds db while it connects */
static int pg_create(void *ctx, void **res)
{
    weft_pg *db = ctx;
    struct weft_pg_conn *c;
    db->refs++;
    int rc = weft__pg_connect(db, &c);
    if (!rc)
        *res = c;
    unref(db);
    return rc;
}

static void pg_destroy(void *ctx, void *res)
{
    (void)ctx;
    struct weft_pg_conn *c = res;
    weft__free(c->ring);
    weft__pg_conn_free(c);
}

/* an idle connection the server closed (restart, idle timeout) has said
 * so on its socket: look, without a round trip */
static int pg_check(void *ctx, void *res)
{
    (void)ctx;
    struct weft_pg_conn *c = res;
    if (c->fd < 0)
        return -ECONNRESET;
    int rc = weft_fd_wait_for(c->fd, WEFT_READ, 0, -EAGAIN);
    if (rc == -EAGAIN)
        return 0;
    if (rc < 0)
        return rc;
    if (!PQconsumeInput(c->pg) || PQstatus(c->pg) != CONNECTION_OK)
        return -ECONNRESET;
    return 0;
}

static int pg_reset(void *ctx, void *res)
{
    (void)ctx;
    struct weft_pg_conn *c = res;
    if (c->broken || c->rcount || PQtransactionStatus(c->pg) != PQTRANS_IDLE)
        return -1;
    c->exclusive = false;
    c->h = NULL;
    return 0;
}

static const weft_pool_ops pool_ops = { pg_create, pg_destroy, pg_check, pg_reset };

/* ---- the object ----------------------------------------------------------------- */

static void unref(weft_pg *db)
{
    if (--db->refs == 0) {
        weft__free(db->conninfo);
        weft__free(db->host);
        weft__free(db);
    }
}

void weft__pg_unref(weft_pg *db)
{
    unref(db);
}

static void on_reader_error(const char *task, int err, void *ctx)
{
    (void)ctx;
    weft_log(WEFT_LOG_ERROR, "pg: %s failed: %s", task, weft_strerror(err));
}

static weft_metric *metric(const char *family, const char *name, const char *kind,
                           const char *help)
{
    char full[192];
    if (kind)
        snprintf(full, sizeof full, "%s{pool=\"%s\",kind=\"%s\"}", family, name, kind);
    else
        snprintf(full, sizeof full, "%s{pool=\"%s\"}", family, name);
    return weft_counter(full, help);
}

static const char *const error_kinds[5] = { "server", "connection", "timeout", "cancelled",
                                            "other" };

static int error_kind(int rc)
{
    if (rc == -WEFT_EPG)
        return 0;
    if (rc == -ECONNRESET || rc == -WEFT_EEOF || rc == -ECONNREFUSED || rc == -EACCES ||
        rc == -WEFT_EBROKEN || rc == -WEFT_ENOTFOUND || rc == -WEFT_ENOADDR || rc == -WEFT_EDNS)
        return 1;
    if (weft_is_timeout(rc))
        return 2;
    return rc == -ECANCELED ? 3 : 4;
}

/* the host to resolve ourselves: a single name, not a socket or literal */
static int find_host(weft_pg *db, PQconninfoOption *opts)
{
    const char *host = NULL, *hostaddr = NULL;
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (strcmp(o->keyword, "host") == 0)
            host = o->val;
        else if (strcmp(o->keyword, "hostaddr") == 0)
            hostaddr = o->val;
    }
    if (!host || !*host || *host == '/' || *host == '@' || (hostaddr && *hostaddr))
        return 0;
    if (strchr(host, ',')) {
        weft_log(WEFT_LOG_ERROR, "pg: several hosts in one conninfo are not supported");
        return -EINVAL;
    }
    unsigned char buf[16];
    if (inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1)
        return 0;                             /* libpq reads a literal without DNS */
    return (db->host = weft__malloc(strlen(host) + 1)) ? (strcpy(db->host, host), 0) : -ENOMEM;
}

static void defaults(weft_pg_opts *o)
{
    if (!o->name)
        o->name = "pg";
    if (!o->max_size)
        o->max_size = 20;
    if (!o->min_size && o->max_size >= 5)
        o->min_size = 5;
    if (o->min_size > o->max_size)
        o->min_size = o->max_size;
    if (!o->connect_timeout)
        o->connect_timeout = 10 * WEFT_SEC;
    if (!o->query_timeout)
        o->query_timeout = 30 * WEFT_SEC;
    if (!o->acquire_timeout)
        o->acquire_timeout = 30 * WEFT_SEC;
    if (!o->idle_timeout)
        o->idle_timeout = 5 * 60 * WEFT_SEC;
    if (!o->max_lifetime)
        o->max_lifetime = 3600 * WEFT_SEC;
    if (!o->cancel_grace)
        o->cancel_grace = 2 * WEFT_SEC;
    if (!o->pipeline)
        o->pipeline = 8;
    if (!o->stmt_cache)
        o->stmt_cache = 256;
    if (!o->max_result)
        o->max_result = (size_t)64 << 20;
}

weft_pg *weft_pg_new(const char *conninfo, const weft_pg_opts *o)
{
    if (!weft__loop_id()) {
        errno = EPERM;
        return NULL;
    }
    char *err = NULL;
    PQconninfoOption *opts = conninfo ? PQconninfoParse(conninfo, &err) : NULL;
    if (!opts) {
        weft_log(WEFT_LOG_ERROR, "pg: bad conninfo: %s", err ? err : "none given");
        PQfreemem(err);
        errno = EINVAL;
        return NULL;
    }
    weft_pg *db = weft__calloc(1, sizeof *db);
    int rc = db ? 0 : -ENOMEM;
    if (db) {
        if (o)
            db->o = *o;
        defaults(&db->o);
        db->refs = 1;
        db->loop = weft__loop_id();
        rc = find_host(db, opts);
    }
    PQconninfoFree(opts);
    if (!rc && !(db->conninfo = weft__malloc(strlen(conninfo) + 1)))
        rc = -ENOMEM;
    if (!rc) {
        strcpy(db->conninfo, conninfo);
        weft_pool_config cfg = {
            .name = db->o.name, .min_size = db->o.min_size, .max_size = db->o.max_size,
            .acquire_timeout = db->o.acquire_timeout, .idle_timeout = db->o.idle_timeout,
            .max_lifetime = db->o.max_lifetime,
        };
        db->max_here = weft__loop_share(db->o.max_size, 1);
        db->bg = weft_supervisor_new(on_reader_error, NULL);
        db->pool = db->bg ? weft_pool_new(&cfg, &pool_ops, db) : NULL;
        if (!db->pool)
            rc = -errno;
    }
    if (rc) {
        if (db && db->bg)
            weft_supervisor_close(db->bg, 0);
        if (db) {
            weft__free(db->conninfo);
            weft__free(db->host);
            weft__free(db);
        }
        errno = -rc;
        return NULL;
    }
    db->m_queries = metric("weft_pg_queries_total", db->o.name, NULL, "Statements run");
    for (int i = 0; i < 5; i++)
        db->m_errors[i] = metric("weft_pg_errors_total", db->o.name, error_kinds[i],
                                 "Statements that failed, by kind");
    db->m_timeouts = metric("weft_pg_timeouts_total", db->o.name, NULL,
                            "Statements past their deadline");
    db->m_cancels = metric("weft_pg_cancels_total", db->o.name, NULL, "Cancel requests sent");
    db->m_again = metric("weft_pg_regrouped_total", db->o.name, NULL,
                         "Statements run again alone after their group's transaction failed");
    return db;
}

int weft_pg_close(weft_pg *db, weft_time grace)
{
    if (!db)
        return -EINVAL;
    db->closing = true;
    weft__wq_wake_all(&db->slot_wq, -WEFT_ECLOSED);
    weft__pg_listeners_stop(db);              /* their tasks end, their receivers get -EPIPE */
    weft_time deadline = weft__after(grace);
    /* the readers end when their segments are done; past grace, cancelled */
    int rc = weft_supervisor_close(db->bg, grace);
    weft_time left = deadline - weft_now();
    int prc = weft_pool_close(db->pool, left > 0 ? left : 0);
    unref(db);
    return rc == -ETIMEDOUT ? rc : prc;
}

/* ---- counting ------------------------------------------------------------------- */

static int count(weft_pg *db, weft_pg_result *r, int rc)
{
    db->st.queries++;
    weft_metric_add(db->m_queries, 1);
    if (rc) {
        db->st.errors++;
        weft_metric_add(db->m_errors[error_kind(rc)], 1);
        if (weft_is_timeout(rc)) {
            db->st.timeouts++;
            weft_metric_add(db->m_timeouts, 1);
        }
        if (r && !r->error[0])
            weft__pg_fail(r, rc, NULL);
    }
    return rc;
}

/* an acquire's error, with libpq's words when it was a connect */
static int acquire_error(weft_pg *db, weft_pg_result *r, int rc)
{
    bool connect = rc == -ECONNREFUSED || rc == -EACCES || rc == -WEFT_EPG ||
                   rc == -WEFT_ECONNECT_TIMEOUT;
    return weft__pg_fail(r, rc, connect ? db->connect_error : NULL);
}

/* ---- exclusive connections -------------------------------------------------------- */

static int take(weft_pg *db, struct weft_pg_conn **out)
{
    weft_pooled *h;
    int rc = weft_pool_acquire(db->pool, &h);
    if (rc)
        return rc;
    struct weft_pg_conn *c = weft_pooled_get(h);
    c->h = h;
    *out = c;
    return 0;
}

static void give_back(weft_pg *db, struct weft_pg_conn *c)
{
    weft_pooled *h = c->h;
    if (c->broken)
        weft_pool_release_broken(db->pool, h);
    else
        weft_pool_release(db->pool, h);
}

int weft_pg_acquire(weft_pg *db, weft_pg_conn **out)
{
    if (!db || !out)
        return -EINVAL;
    int rc = weft__owner_check(db->loop);
    if (rc)
        return rc;
    if (db->closing)
        return -WEFT_ECLOSED;
    db->refs++;
    struct weft_pg_conn *c;
    rc = take(db, &c);
    if (rc) {
        unref(db);
        return rc;
    }
    c->exclusive = true;
    *out = c;
    return 0;
}

void weft_pg_release(weft_pg *db, weft_pg_conn *c)
{
    if (!db || !c)
        return;
    weft_scope sc;                            /* the task may be cancelled: still clean up */
    weft_scope_enter_shielded(&sc, db->o.cancel_grace);
    if (!c->broken && PQtransactionStatus(c->pg) != PQTRANS_IDLE) {
        if (weft__pg_simple(c, "ROLLBACK", NULL) || PQtransactionStatus(c->pg) != PQTRANS_IDLE)
            c->broken = true;
        c->timeout_ms = -1;
    }
    if (!c->broken && c->dirty) {
        /* SET, LISTEN, temp tables, advisory locks ... never reach the next
         * user: back to the connection's own settings */
        if (weft__pg_simple(c, "DISCARD ALL", NULL))
            c->broken = true;
        weft__stmt_free(&c->stmts);           /* DISCARD ALL dropped them */
        if (weft__stmt_init(&c->stmts, db->o.stmt_cache))
            c->broken = true;
        c->timeout_ms = weft__pg_timeout_ms(db->o.query_timeout);
        c->dirty = false;
    }
    weft_scope_exit(&sc);
    /* notifications a LISTEN on it queued in libpq: nobody reads them here */
    for (PGnotify *n; !c->broken && (n = PQnotifies(c->pg)) != NULL;)
        PQfreemem(n);
    weft_pg_result_free(&c->copy_err);        /* the holder's, not the next one's */
    memset(&c->copy_err, 0, sizeof c->copy_err);
    give_back(db, c);
    unref(db);
}

/* one call on a connection the task holds */
static int run_call(struct weft_pg_conn *c, struct call *k, weft_pg_result *rs)
{
    int rc = weft__pg_send(c, k, rs);
    if (!rc && (rc = weft__pg_flush(c, k)))
        weft__pg_fail(rs, rc, NULL);
    if (!rc)
        rc = weft__pg_read_call(c, k, rs);
    if (rc && !c->broken && k->read <= k->steps) {
        weft__pg_fail(rs, rc, NULL);
        weft__pg_recover(c, k);               /* cancel if running, drain, or broken */
    }
    return rc;
}

/* a cached statement that must be prepared again: its plan is stale, or
 * its Parse was skipped in a segment that failed before it (another task's
 * Parse that ran out of time waiting for a lock, say). It is sent again
 * once, unnamed: with a Parse of its own, so that its result cannot hang
 * on yet another task's Parse in flight. */
static bool stale_plan(const weft_pg_result *r)
{
    const weft_pg_error_info *e = weft_pg_error(r);
    return e && ((e->message && strstr(e->message, "cached plan must not change result type")) ||
                 (e->sqlstate && strcmp(e->sqlstate, "26000") == 0));
}

/* a statement that changes the session leaves c to be cleaned on release;
 * one that drops prepared statements empties the cache */
static void session_change(struct weft_pg_conn *c, const struct weft__pg_sql *q)
{
    if (weft__pg_kind(q) != 1)
        return;
    c->dirty = true;
    c->timeout_ms = -1;                       /* SET statement_timeout, RESET ALL ... */
    if (strcmp(q->first, "discard") == 0 || strcmp(q->first, "deallocate") == 0) {
        weft__stmt_free(&c->stmts);
        if (weft__stmt_init(&c->stmts, c->db->o.stmt_cache))
            c->broken = true;
    }
}

static int conn_query(struct weft_pg_conn *c, weft_pg_result *r, const weft_pg_stmt *st,
                      const struct weft__pg_sql *q)
{
    struct call k;
    weft__pg_call_init(&k, c->db, st, 1);
    session_change(c, q);
    int rc = run_call(c, &k, r);
    /* the table changed under a cached plan: prepared again, once, where
     * no transaction was lost with it */
    if (rc == -WEFT_EPG && stale_plan(r) && PQtransactionStatus(c->pg) == PQTRANS_IDLE) {
        weft_pg_result_free(r);
        memset(r, 0, sizeof *r);
        weft__pg_call_init(&k, c->db, st, 1);
        k.unnamed = true;
        rc = run_call(c, &k, r);
    }
    return rc;
}


int weft_pg_conn_query(weft_pg_conn *c, weft_pg_result *r, const char *sql, int n,
                       const weft_pg_val *params)
{
    if (!r)
        return -EINVAL;
    memset(r, 0, sizeof *r);
    if (!c)
        return weft__pg_fail(r, -EINVAL, NULL);
    int rc = weft__enter(c->db->loop, &(weft_task *){ NULL });
    if (rc)
        return weft__pg_fail(r, rc, NULL);
    struct weft__pg_sql q;
    weft__pg_scan(sql, &q);
    /* COPY in pipeline mode would have libpq hand out its COPY result
     * again and again: it runs through weft_pg_copy_in/out only */
    if (strcmp(q.first, "copy") == 0)
        return weft__pg_fail(r, -EINVAL, "COPY: use weft_pg_copy_in or weft_pg_copy_out");
    weft_pg_stmt st = { sql, n, params };
    return count(c->db, r, conn_query(c, r, &st, &q));
}

/* ---- transactions ------------------------------------------------------------------- */

bool weft_pg_in_transaction(const weft_pg_conn *c)
{
    return c && PQtransactionStatus(c->pg) != PQTRANS_IDLE;
}

static int simple(weft_pg_conn *c, const char *sql, weft_pg_result *r)
{
    int rc = weft__enter(c->db->loop, &(weft_task *){ NULL });
    return rc ? rc : weft__pg_simple(c, sql, r);
}

int weft_pg_begin(weft_pg_conn *c, const char *mode)
{
    if (!c || (mode && strpbrk(mode, ";'\"\\")) || weft_pg_in_transaction(c))
        return -EINVAL;
    char sql[160];
    if (snprintf(sql, sizeof sql, "BEGIN%s%s", mode ? " " : "", mode ? mode : "") >=
        (int)sizeof sql)
        return -EINVAL;
    return simple(c, sql, NULL);
}

int weft_pg_commit(weft_pg_conn *c, weft_pg_result *r)
{
    weft_pg_result scratch = { 0 };
    if (!r)
        r = &scratch;
    memset(r, 0, sizeof *r);
    if (!c)
        return -EINVAL;
    int rc = simple(c, "COMMIT", r);
    if (!rc && r->priv_ && strcmp(PQcmdStatus(r->priv_->res), "ROLLBACK") == 0) {
        /* the transaction had failed: the server rolled back, said so only
         * in the tag; an error, with the state SQL gives it */
        weft_pg_error_info *e = &r->priv_->err;
        *e = (weft_pg_error_info){ .sqlstate = "25P02", .severity = "ERROR",
                                   .message = "the transaction failed before COMMIT and was "
                                              "rolled back" };
        r->priv_->has_err = true;
        snprintf(r->error, sizeof r->error, "%s (SQLSTATE 25P02)", e->message);
        c->timeout_ms = -1;
        rc = -WEFT_EPG;
    }
    if (rc)
        c->timeout_ms = -1;
    weft_pg_result_free(&scratch);
    return rc;
}

int weft_pg_rollback(weft_pg_conn *c)
{
    if (!c)
        return -EINVAL;
    c->timeout_ms = -1;                       /* a set_config inside is undone */
    return simple(c, "ROLLBACK", NULL);
}

static int savepoint_cmd(weft_pg_conn *c, const char *verb, const char *name)
{
    if (!c || !name || !*name || strlen(name) > 63 || (*name >= '0' && *name <= '9') ||
        strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") !=
            strlen(name))
        return -EINVAL;
    char sql[96];
    snprintf(sql, sizeof sql, "%s %s", verb, name);
    return simple(c, sql, NULL);
}

int weft_pg_savepoint(weft_pg_conn *c, const char *name)
{
    return savepoint_cmd(c, "SAVEPOINT", name);
}

int weft_pg_rollback_to(weft_pg_conn *c, const char *name)
{
    if (c)
        c->timeout_ms = -1;
    return savepoint_cmd(c, "ROLLBACK TO SAVEPOINT", name);
}

int weft_pg_release_savepoint(weft_pg_conn *c, const char *name)
{
    return savepoint_cmd(c, "RELEASE SAVEPOINT", name);
}

/* ---- shared connections: the reader ---------------------------------------------------- */

static void unlink_shared(weft_pg *db, struct weft_pg_conn *c)
{
    if (c->sprev) {
        *c->sprev = c->snext;
        if (c->snext)
            c->snext->sprev = c->sprev;
        c->sprev = NULL;
        db->nshared--;
    }
}

/* the head segment is done: its result to its task, or dropped */
static void complete(weft_pg *db, struct weft_pg_conn *c, int rc)
{
    struct seg *s = &c->ring[c->rhead];
    if (s->out) {
        *s->out = s->res;                     /* moved: the task owns it now */
        memset(&s->res, 0, sizeof s->res);
        s->out = NULL;
        struct weft__waiter *w = weft__wq_first(&s->done);
        if (w) {
            w->data = s;                      /* "handed", told apart from a timeout */
            weft__wq_handoff(&s->done, w, rc);
        }
    } else {
        weft_pg_result_free(&s->res);
    }
    c->rhead = (c->rhead + 1) % db->o.pipeline;
    c->rcount--;
    weft__wq_wake_one(&db->slot_wq, 0);       /* a slot is free */
}

/* the i-th segment from the head */
static struct seg *seg_at(struct weft_pg_conn *c, unsigned i)
{
    return &c->ring[(c->rhead + i) % c->db->o.pipeline];
}

/* reads s, the server given its budget counted from now */
static void read_seg(weft_pg *db, struct weft_pg_conn *c, struct seg *s)
{
    /* the server stops the statement at its budget, counted from when
     * it starts (now that it is at the head, not when it was queued
     * behind slower ones); a little more for its answer to come, then
     * the connection is given up */
    weft_time budget = s->k.deadline;
    weft_time allowed = budget == WEFT_FOREVER ? WEFT_FOREVER : budget - s->sent;
    s->k.deadline = weft__deadline_add(weft__after(allowed > 0 ? allowed : 0), db->o.cancel_grace);
    s->rc = weft__pg_read_call(c, &s->k, &s->res);
    s->k.deadline = budget;
    if (s->rc && !weft__pg_call_done(&s->k))
        c->broken = true;                     /* lost, or no answer in time */
}

/* the group's failure is one that running its statements together may
 * have caused: each runs again alone */
static bool grouping_conflict(const weft_pg_result *r)
{
    const weft_pg_error_info *e = weft_pg_error(r);
    return e && e->sqlstate && (strcmp(e->sqlstate, "40P01") == 0 ||   /* deadlock */
                                strcmp(e->sqlstate, "40001") == 0);     /* serialization */
}

/* the n segments of the group at the head were read, its Sync too: all
 * committed, or the first failure is its statement's own and every other
 * one rolled back (before it) or never ran (after it): those run again,
 * each alone */
static void settle(weft_pg *db, struct weft_pg_conn *c, unsigned n)
{
    int f = -1;
    for (unsigned i = 0; i < n && f < 0; i++)
        if (weft_pg_error(&seg_at(c, i)->res))
            f = (int)i;
    bool all = f >= 0 && grouping_conflict(&seg_at(c, (unsigned)f)->res);
    for (int i = 0; i < (int)n; i++) {
        struct seg *s = seg_at(c, 0);         /* complete moves the head on */
        int rc = s->rc;
        if (n > 1 && f >= 0 && (i != f || all)) {
            weft_pg_result_free(&s->res);
            memset(&s->res, 0, sizeof s->res);
            rc = WEFT__PG_AGAIN;
            weft_metric_add(db->m_again, 1);
        }
        complete(db, c, rc);
    }
}

static int reader(void *arg)
{
    struct weft_pg_conn *c = arg;
    weft_pg *db = c->db;
    while (c->rcount && !c->broken) {
        /* the head's group is open: the statements queued so far (this
         * loop turn's, or those queued while the group before was on the
         * wire) go now, ended by one Sync */
        if (c->nopen == c->rcount && weft__pg_sync(c))
            break;
        /* its results are handed out only after its Sync: a 0 means committed */
        unsigned n = 0;
        bool synced = false;
        while (!synced && !c->broken) {
            struct seg *s = seg_at(c, n++);
            read_seg(db, c, s);
            synced = s->k.sync;
        }
        if (c->broken)
            break;
        settle(db, c, n);
    }
    int left = db->closing ? -WEFT_ECLOSED : -ECONNRESET;
    c->nopen = 0;
    c->open_tail = NULL;
    while (c->rcount) {                       /* what is left fails */
        struct seg *s = &c->ring[c->rhead];
        if (!weft_pg_error(&s->res)) {        /* rows of a group never committed */
            weft_pg_result_free(&s->res);
            memset(&s->res, 0, sizeof s->res);
        }
        weft__pg_fail(&s->res, left, db->closing ? "pool closed with statements in flight"
                                                 : "connection lost with statements in flight");
        complete(db, c, left);
    }
    unlink_shared(db, c);
    c->reading = false;
    give_back(db, c);
    unref(db);
    return 0;
}

/* ---- shared connections: the statement's side ----------------------------------------- */

static struct weft_pg_conn *least_loaded(weft_pg *db)
{
    struct weft_pg_conn *best = NULL;
    for (struct weft_pg_conn *c = db->shared; c; c = c->snext)
        if (!c->broken && c->rcount < db->o.pipeline && (!best || c->rcount < best->rcount))
            best = c;
    return best;
}

/* a shared connection with an open group that has room: a statement
 * joins it (one Sync, one transaction on the server for all) */
static struct weft_pg_conn *open_group(weft_pg *db)
{
    for (struct weft_pg_conn *c = db->shared; c; c = c->snext)
        if (!c->broken && c->nopen && c->rcount < db->o.pipeline)
            return c;
    return NULL;
}

/* a connection into shared use, with its reader */
static int share_new(weft_pg *db, struct weft_pg_conn **out)
{
    struct weft_pg_conn *c;
    int rc = take(db, &c);
    if (rc)
        return rc;
    if (db->closing) {                        /* closed while we waited: no readers now */
        give_back(db, c);
        return -WEFT_ECLOSED;
    }
    if (!c->ring && !(c->ring = weft__calloc(db->o.pipeline, sizeof *c->ring))) {
        give_back(db, c);
        return -ENOMEM;
    }
    c->rhead = c->rcount = 0;
    c->snext = db->shared;
    if (c->snext)
        c->snext->sprev = &c->snext;
    c->sprev = &db->shared;
    db->shared = c;
    db->nshared++;
    *out = c;
    return 0;
}

/* a shared connection with a free slot: one whose open group has room
 * (the statement joins it: groups as large as the pipeline allows are
 * what saves the server's work: measured 20 tasks, 8 deep, 112k point
 * selects/s joining, 65k spreading over the least loaded); else the least
 * loaded while it has fewer than half a pipeline in flight, else another
 * connection while the pool has one at hand, else the least loaded
 * anyway; all full: wait for a slot (or, none shared, for the pool). A
 * statement that goes alone joins no group. Half a pipeline per
 * connection is where a backend's wake-ups pay off (measured before
 * groups: 46k at half, 24k spreading one per connection, 40k filling
 * each) while a slow statement holds up fewer others behind it. */
static int pick(weft_pg *db, struct weft_pg_conn **out, weft_time deadline, bool alone)
{
    unsigned spread = db->o.pipeline / 2 ? db->o.pipeline / 2 : 1;
    for (;;) {
        if (db->closing)
            return -WEFT_ECLOSED;
        struct weft_pg_conn *c = alone ? NULL : open_group(db);
        if (c) {
            *out = c;
            return 0;
        }
        c = least_loaded(db);
        weft_pool_stats ps;
        weft_pool_stats_get(db->pool, &ps);
        bool at_hand = ps.idle > 0 || ps.size < db->max_here;
        if (c && (c->rcount < spread || !at_hand)) {
            *out = c;
            return 0;
        }
        if (c || !db->nshared || at_hand) {
            /* share_new may suspend (a connect): nothing seen before it
             * holds after it, so a failure looks again from the start */
            int rc = share_new(db, out);
            if (rc == 0 || !c || rc == -ECANCELED || weft_is_timeout(rc))
                return rc;                    /* a cancelled task's acquire fails at once:
                                                 looping on it never suspends */
            /* no new connection now (the server refuses, backoff): a shared
             * one still takes it; share_new may have suspended, so look again */
            if ((c = least_loaded(db)) != NULL) {
                *out = c;
                return 0;
            }
            continue;
        }
        struct weft__waiter w = { 0 };
        int rc = weft__wq_wait(&db->slot_wq, &w, NULL, deadline, -WEFT_EPOOL_TIMEOUT,
                               "pg pipeline slot");
        if (rc)
            return rc;
    }
}

/* May a statement share a transaction (one Sync) with other tasks'?
 * Only reads: SELECT, VALUES, TABLE, and WITH without a data-modifying
 * part, none with a locking clause. A write holds its row locks until its
 * group commits, so grouped writes of different connections wait on each
 * other and deadlock (PostgreSQL finds that only after deadlock_timeout,
 * 1 s: TechEmpower's /updates fell from thousands of requests a second to
 * ten); a write goes alone, with its own Sync. A read is safe to run again
 * after its group rolled back, except where it reaches outside the
 * transaction: setval (it would set the sequence back) and dblink
 * (another server) go alone too. So does a read that shows the
 * transaction itself (its id: txid_current, pg_current_xact_id; its start:
 * now(), current_timestamp, 'now'; its pg_advisory_xact_lock): the
 * contract promises each task's statement its own transaction, and these
 * are how it would see that it has not. The statement's words are read as
 * the server's lexer would (not inside strings or comments). A function
 * called by a SELECT may write: that is still correct (its group's
 * rollback undoes it, it runs again), and a deadlock it meets in a group
 * is retried alone; nextval run again leaves a gap, as after any
 * rollback. */
static bool groupable(const struct weft__pg_sql *q)
{
    static const char *const reads[] = { "select", "with", "values", "table", NULL };
    bool read = false;
    for (int i = 0; reads[i] && !read; i++)
        read = strcmp(q->first, reads[i]) == 0;
    return read && !q->shows_tx && !q->locks && !q->session &&
           !(q->writes && strcmp(q->first, "with") == 0);
}

/* one segment for st on a shared connection: joining the open group, or
 * alone (its own Sync); WEFT__PG_AGAIN when its group rolled it back */
static int shared_segment(weft_pg *db, weft_pg_result *r, const struct call *first, bool alone)
{
    struct weft_pg_conn *c;
    int rc = pick(db, &c, weft__after(db->o.acquire_timeout), alone);
    if (rc)
        return acquire_error(db, r, rc);
    unsigned i = (c->rhead + c->rcount) % db->o.pipeline;
    struct seg *s = &c->ring[i];
    memset(&s->res, 0, sizeof s->res);
    s->st = first->stmts[0];
    weft__pg_call_init(&s->k, db, &s->st, 1);
    s->k.deadline = first->deadline;          /* the first try's: a retry has no more time */
    s->k.timeout_err = first->timeout_err;
    s->k.local = true;                        /* its budget for its own transaction */
    s->k.unnamed = first->unnamed;
    s->k.open = !alone;
    s->sent = weft_now();
    c->rcount++;
    rc = weft__pg_send(c, &s->k, &s->res);
    if (rc && !c->broken) {                   /* refused before anything was queued */
        c->rcount--;
        *r = s->res;
        memset(&s->res, 0, sizeof s->res);
        if (!c->reading && !c->rcount) {
            unlink_shared(db, c);
            give_back(db, c);
        }
        return rc;
    }
    /* the reader sends it, with whatever else this loop turn queues (one
     * write for many tasks); but libpq may have read input while queuing
     * (a send that would block reads, to avoid a deadlock): then the
     * reader, parked on the socket, is told to look again */
    if (!rc && !PQisBusy(c->pg))
        weft__pg_kick(c);
    s->out = r;
    if (!c->reading) {
        c->reading = true;
        db->refs++;
        if ((rc = weft_spawn(db->bg, reader, c, "pg reader"))) {
            c->reading = false;
            db->refs--;
            c->broken = true;                 /* no reader: nothing is read */
            s->out = NULL;
            c->nopen = 0;
            c->open_tail = NULL;
            while (c->rcount)
                complete(db, c, rc);
            unlink_shared(db, c);
            give_back(db, c);
            return weft__pg_fail(r, rc, NULL);
        }
    }
    struct weft__waiter w = { 0 };
    rc = weft__wq_wait(&s->done, &w, NULL, s->k.deadline, s->k.timeout_err, "pg statement");
    if (w.data)
        return rc;                            /* handed: r holds the result (s may be reused) */
    s->out = NULL;                            /* gone: the reader drops it */
    return weft__pg_fail(r, rc, NULL);
}

static int shared_query(weft_pg *db, weft_pg_result *r, const weft_pg_stmt *st, bool unnamed,
                        const struct weft__pg_sql *q)
{
    struct call first;
    weft__pg_call_init(&first, db, st, 1);
    first.unnamed = unnamed;
    bool alone = unnamed || !groupable(q);
    int rc;
    /* rolled back with its group (another's statement failed): again, in
     * a transaction of its own, where only its own error can stop it */
    while ((rc = shared_segment(db, r, &first, alone)) == WEFT__PG_AGAIN) {
        alone = true;
        if (weft_now() >= first.deadline)
            return weft__pg_fail(r, first.timeout_err, "rolled back with its group (another "
                                                       "statement failed), no time to run again");
    }
    return rc;
}

/* ---- statements on the pool --------------------------------------------------------------- */

static int stateless(weft_pg_result *r, const struct weft__pg_sql *q)
{
    int kind = weft__pg_kind(q);
    if (!kind)
        return 0;
    return weft__pg_fail(r, -EINVAL, kind == 2 ? "transaction control or COPY: use weft_pg_acquire"
                                               : "it changes the session: use weft_pg_acquire");
}

/* the start of a call on the pool: its result said why when it cannot run */
static int enter(weft_pg *db, weft_pg_result *r)
{
    if (!db)
        return weft__pg_fail(r, -EINVAL, NULL);
    int rc = weft__enter(db->loop, &(weft_task *){ NULL });
    if (rc)
        return weft__pg_fail(r, rc, NULL);
    return db->closing ? weft__pg_fail(r, -WEFT_ECLOSED, NULL) : 0;
}

int weft_pg_query(weft_pg *db, weft_pg_result *r, const char *sql, int n, const weft_pg_val *params)
{
    if (!r)
        return -EINVAL;
    memset(r, 0, sizeof *r);
    int rc = enter(db, r);
    if (rc)
        return rc;
    struct weft__pg_sql q;
    weft__pg_scan(sql, &q);
    if ((rc = stateless(r, &q)))
        return rc;
    weft_pg_stmt st = { sql, n, params };
    db->refs++;
    if (db->o.pipeline > 1) {
        rc = shared_query(db, r, &st, false, &q);
        if (rc == -WEFT_EPG && stale_plan(r)) {     /* prepared again, once */
            weft_pg_result_free(r);
            memset(r, 0, sizeof *r);
            rc = shared_query(db, r, &st, true, &q);
        }
    } else {
        struct weft_pg_conn *c;
        rc = take(db, &c);
        if (rc) {
            acquire_error(db, r, rc);
        } else {
            rc = conn_query(c, r, &st, &q);
            give_back(db, c);
        }
    }
    count(db, r, rc);
    unref(db);
    return rc;
}

int weft_pg_batch(weft_pg *db, const weft_pg_stmt *s, int n, weft_pg_result *rs)
{
    if (!rs || n < 1 || n > WEFT__PG_BATCH_MAX || !s)
        return -EINVAL;
    memset(rs, 0, (size_t)n * sizeof *rs);
    int rc = enter(db, rs);
    if (rc)
        return rc;
    for (int i = 0; i < n; i++) {
        struct weft__pg_sql q;
        weft__pg_scan(s[i].sql, &q);
        if ((rc = stateless(&rs[i], &q)))
            return rc;
    }
    struct call k;
    weft__pg_call_init(&k, db, s, n);
    int *mains = weft__calloc((size_t)n, 2 * sizeof(int) + 2 * sizeof(unsigned));
    if (!mains)
        return weft__pg_fail(rs, -ENOMEM, NULL);
    k.mains = mains;
    k.prepare_steps = mains + n;
    k.ids = (unsigned *)(mains + 2 * n);
    k.prepared = k.ids + n;
    db->refs++;
    struct weft_pg_conn *c;
    rc = take(db, &c);
    if (rc) {
        acquire_error(db, rs, rc);
    } else {
        rc = run_call(c, &k, rs);
        give_back(db, c);
    }
    weft__free(mains);
    count(db, rs, rc);
    unref(db);
    return rc;
}

void weft_pg_stats_get(const weft_pg *db, weft_pg_stats *s)
{
    memset(s, 0, sizeof *s);
    if (!db)
        return;
    weft_pool_stats ps;
    weft_pool_stats_get(db->pool, &ps);
    *s = db->st;
    s->size = ps.size;
    s->idle = ps.idle;
    s->in_use = ps.in_use;
    s->creating = ps.creating;
    s->waiting = ps.waiting;
    s->shared = db->nshared;
}
