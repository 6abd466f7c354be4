/*
 * One PostgreSQL connection on the loop: libpq in non-blocking pipeline
 * mode, its socket a foreign fd the task waits on (weft_fd_wait_for).
 *
 * Every call is one "segment" of the pipeline: [DEALLOCATE] [Parse]
 * [set_config(statement_timeout)] Bind/Execute, then its own Sync, so its
 * implicit transaction, its error and its timeout are its own; or, on a
 * shared connection, without a Sync: it joins the open group, which one
 * Sync ends (weft__pg_sync) and pg.c's reader settles. Results
 * are read in order up to the Sync. A read that is interrupted (deadline,
 * cancel) leaves the segment's results on the wire: on an exclusive
 * connection weft__pg_recover sends a cancel request if the statement is
 * still running and drains to the Sync within cancel_grace, shielded, or
 * marks the connection broken (closed on release). PQcancel blocks in
 * libpq 15, so it runs on the blocking pool; the connection is reused only
 * after it finished, or a late cancel could stop the next statement.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"
#include "weft/dns.h"
#include "weft/log.h"
#include "weft/sync.h"

/* statement_timeout for a budget: rounded up to 1 ms, never 0 (which is
 * "none") unless the budget is beyond what the setting holds */
long long weft__pg_timeout_ms(weft_time left)
{
    if (left >= (weft_time)INT_MAX * 1000000)
        return 0;
    return left <= 0 ? 1 : (long long)((left + 999999) / 1000000);
}

/* ---- connecting -------------------------------------------------------------- */

static void notice(void *arg, const char *msg)
{
    (void)arg;
    size_t n = strlen(msg);
    weft_log(WEFT_LOG_INFO, "pg: %.*s", (int)(n && msg[n - 1] == '\n' ? n - 1 : n), msg);
}

/* libpq says what failed only in words */
static int connect_error(PGconn *pg)
{
    const char *m = PQerrorMessage(pg);
    if (strstr(m, "Connection refused"))
        return -ECONNREFUSED;
    if (strstr(m, "authentication failed") || strstr(m, "no password supplied") ||
        strstr(m, "pg_hba.conf rejects"))
        return -EACCES;
    return -WEFT_EPG;
}

struct params {
    const char *keys[64], *vals[64];
    int n;
    char options[512], hostaddr[INET6_ADDRSTRLEN];
};

static void param(struct params *p, const char *k, const char *v)
{
    for (int i = 0; i < p->n; i++)
        if (strcmp(p->keys[i], k) == 0) {
            p->vals[i] = v;
            return;
        }
    if (p->n < 63) {
        p->keys[p->n] = k;
        p->vals[p->n++] = v;
    }
}

static const char *param_get(const struct params *p, const char *k)
{
    for (int i = 0; i < p->n; i++)
        if (strcmp(p->keys[i], k) == 0)
            return p->vals[i];
    return NULL;
}

/* the conninfo's settings, with ours: the session's forms, no GSS probe,
 * the address weft resolved (libpq would resolve on the loop) */
static int build_params(weft_pg *db, PQconninfoOption *opts, struct params *p)
{
    p->n = 0;
    for (PQconninfoOption *o = opts; o->keyword; o++)
        if (o->val && *o->val && strcmp(o->keyword, "connect_timeout") != 0)
            param(p, o->keyword, o->val);
    const char *user = param_get(p, "options");
    snprintf(p->options, sizeof p->options,
             "%s%s-c TimeZone=UTC -c DateStyle=ISO -c standard_conforming_strings=on "
             "-c statement_timeout=%lld",
             user ? user : "", user ? " " : "", weft__pg_timeout_ms(db->o.query_timeout));
    param(p, "options", p->options);
    param(p, "client_encoding", "UTF8");
    if (!param_get(p, "gssencmode"))
        param(p, "gssencmode", "disable");
    param(p, "fallback_application_name", "weft");
    if (db->host && !param_get(p, "hostaddr")) {
        weft_addr a;
        int rc = weft_dns_resolve(db->host, 0, &a, 1, db->o.connect_timeout);
        if (rc < 0)
            return rc;
        const void *in = a.ss.ss_family == AF_INET6
                             ? (const void *)&((struct sockaddr_in6 *)&a.ss)->sin6_addr
                             : (const void *)&((struct sockaddr_in *)&a.ss)->sin_addr;
        inet_ntop(a.ss.ss_family, in, p->hostaddr, sizeof p->hostaddr);
        param(p, "hostaddr", p->hostaddr);
    }
    p->keys[p->n] = p->vals[p->n] = NULL;
    return 0;
}

static int poll_connect(weft_pg *db, PGconn *pg)
{
    weft_time deadline = weft__after(db->o.connect_timeout);
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    while (st != PGRES_POLLING_OK) {
        if (st == PGRES_POLLING_FAILED)
            return connect_error(pg);
        int fd = PQsocket(pg);
        if (fd < 0)
            return connect_error(pg);
        weft_time left = deadline - weft_now();
        int rc = weft_fd_wait_for(fd, st == PGRES_POLLING_READING ? WEFT_READ : WEFT_WRITE,
                                  left > 0 ? left : 0, -WEFT_ECONNECT_TIMEOUT);
        weft_fd_forget(fd);                   /* the next poll may close it */
        if (rc < 0)
            return rc;
        st = PQconnectPoll(pg);
    }
    return 0;
}

int weft__pg_connect(weft_pg *db, struct weft_pg_conn **out)
{
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(db->conninfo, &err);
    if (!opts) {
        PQfreemem(err);
        return -EINVAL;                       /* checked at weft_pg_new */
    }
    struct params p;
    int rc = build_params(db, opts, &p);
    PGconn *pg = NULL;
    if (!rc) {
        pg = PQconnectStartParams(p.keys, p.vals, 0);
        rc = !pg ? -ENOMEM : PQstatus(pg) == CONNECTION_BAD ? connect_error(pg) : 0;
    }
    PQconninfoFree(opts);
    if (!rc && PQsetnonblocking(pg, 1) != 0)
        rc = connect_error(pg);
    if (!rc)
        rc = poll_connect(db, pg);
    if (!rc && !PQenterPipelineMode(pg))
        rc = -WEFT_EPG;
    struct weft_pg_conn *c = NULL;
    if (!rc && !(c = weft__calloc(1, sizeof *c)))
        rc = -ENOMEM;
    if (!rc && (rc = weft__stmt_init(&c->stmts, db->o.stmt_cache))) {
        weft__free(c);
        c = NULL;
    }
    if (rc) {
        if (pg && rc != -ENOMEM && rc != -ECANCELED && rc != -ETIMEDOUT)
            snprintf(db->connect_error, sizeof db->connect_error, "%s", PQerrorMessage(pg));
        PQfinish(pg);
        return rc;
    }
    PQsetNoticeProcessor(pg, notice, NULL);
    c->db = db;
    c->pg = pg;
    c->fd = PQsocket(pg);
    c->timeout_ms = weft__pg_timeout_ms(db->o.query_timeout);
    *out = c;
    return 0;
}

/* libpq closes its socket itself when it drops a connection: forget the
 * fd at once, before its number belongs to another socket of the loop */
static void fd_check(struct weft_pg_conn *c)
{
    if (c->fd >= 0 && PQsocket(c->pg) != c->fd) {
        weft_fd_forget(c->fd);
        c->fd = -1;
    }
}

void weft__pg_conn_free(struct weft_pg_conn *c)
{
    if (!c)
        return;
    if (c->fd >= 0)
        weft_fd_forget(c->fd);
    PQfinish(c->pg);                          /* non-blocking: Terminate if it fits */
    weft__stmt_free(&c->stmts);
    weft_pg_result_free(&c->copy_err);
    weft__free(c);
}

/* ---- sending ------------------------------------------------------------------ */

static int lost(struct weft_pg_conn *c, weft_pg_result *r)
{
    c->broken = true;
    fd_check(c);
    return weft__pg_fail(r, -ECONNRESET, PQerrorMessage(c->pg));
}

/* an integer that fits int4 is sent as int4, as psycopg does: it then
 * fits function arguments and int4 columns exactly (substring(s, $1)
 * has no int8 form); a larger one as int8 (its own prepared statement) */
static bool small_int(const weft_pg_val *v)
{
    return v->kind_ == WEFT__PG_INT && v->i_ >= INT32_MIN && v->i_ <= INT32_MAX;
}

static unsigned ptype(const weft_pg_val *v)
{
    if (small_int(v))
        return 23;                            /* int4 */
    switch (v->kind_) {
    case WEFT__PG_INT: return 20;             /* int8 */
    case WEFT__PG_FLOAT: return 701;          /* float8 */
    case WEFT__PG_BOOL: return 16;
    case WEFT__PG_BYTES: return 17;           /* bytea, sent binary */
    }
    return 0;                                 /* text and NULL: the server infers */
}

/* the statement's key: its SQL, a NUL, a letter per parameter's kind */
static char *stmt_key(const weft_pg_stmt *st, size_t *len, char *small, size_t cap)
{
    size_t sl = strlen(st->sql);
    *len = sl + 1 + (size_t)st->n;
    char *key = *len <= cap ? small : weft__malloc(*len);
    if (key) {
        memcpy(key, st->sql, sl + 1);
        for (int i = 0; i < st->n; i++)
            key[sl + 1 + i] = small_int(&st->params[i]) ? 'i' : (char)('a' + st->params[i].kind_);
    }
    return key;
}

/* the statement's budget as statement_timeout, when the one in force
 * differs: the session's, or what a set_config(..., true) of an earlier
 * statement of the same group's transaction left (the server starts each
 * statement's timer afresh at its first message, with the value then in
 * force) */
static int send_timeout(struct weft_pg_conn *c, struct call *k)
{
    long long ms = weft__pg_timeout_ms(k->deadline - weft_now());
    if (ms == c->tx_timeout_ms)
        return 0;                             /* in force already */
    char v[24];
    snprintf(v, sizeof v, "%lld", ms);
    const char *vals[2] = { v, k->local ? "t" : "f" };
    if (!PQsendQueryParams(c->pg, "SELECT pg_catalog.set_config('statement_timeout', $1, $2::bool)",
                           2, NULL, vals, NULL, NULL, 0))
        return -1;
    if (!k->local)
        c->timeout_ms = ms;
    c->tx_timeout_ms = ms;
    k->steps++;
    return 0;
}

static int send_deallocate(struct weft_pg_conn *c, struct call *k, unsigned id)
{
    char sql[32];
    snprintf(sql, sizeof sql, "DEALLOCATE w%u", id);
    if (!PQsendQueryParams(c->pg, sql, 0, NULL, NULL, NULL, NULL, 0))
        return -1;
    k->steps++;
    return 0;
}

/* values in libpq's form: text (numbers written into num), bytea binary */
static int send_bind(struct weft_pg_conn *c, const weft_pg_stmt *st, const char *name)
{
    enum { SMALL = 16 };
    const char *vs[SMALL];
    int ls[SMALL], fs[SMALL];
    char nums[SMALL][32];
    const char **vals = vs;
    int *lens = ls, *fmts = fs;
    char (*num)[32] = nums;
    void *heap = NULL;
    if (st->n > SMALL) {
        size_t one = sizeof *vals + 2 * sizeof(int) + 32;
        if (!(heap = weft__malloc((size_t)st->n * one)))
            return -ENOMEM;
        vals = heap;
        lens = (int *)(vals + st->n);
        fmts = lens + st->n;
        num = (char (*)[32])(fmts + st->n);
    }
    for (int i = 0; i < st->n; i++) {
        const weft_pg_val *v = &st->params[i];
        lens[i] = fmts[i] = 0;
        vals[i] = num[i];
        switch (v->kind_) {
        case WEFT__PG_NULL: vals[i] = NULL; break;
        case WEFT__PG_INT: snprintf(num[i], 32, "%lld", (long long)v->i_); break;
        case WEFT__PG_BOOL: vals[i] = v->i_ ? "t" : "f"; break;
        case WEFT__PG_FLOAT:
            if (v->d_ != v->d_)
                vals[i] = "NaN";
            else if (v->d_ > 1.7976931348623157e308 || v->d_ < -1.7976931348623157e308)
                vals[i] = v->d_ > 0 ? "Infinity" : "-Infinity";
            else
                snprintf(num[i], 32, "%.17g", v->d_);
            break;
        case WEFT__PG_TEXT: vals[i] = v->p_; break;          /* NULL: SQL NULL */
        case WEFT__PG_BYTES:
            vals[i] = v->p_ ? v->p_ : "";
            lens[i] = (int)v->len_;           /* over INT_MAX: refused by check_stmt */
            fmts[i] = 1;
            break;
        }
    }
    int ok = PQsendQueryPrepared(c->pg, name, st->n, vals, lens, fmts, 0);
    weft__free(heap);
    return ok ? 0 : -1;
}

static int check_stmt(const weft_pg_stmt *st, weft_pg_result *r)
{
    if (!st->sql || st->n < 0 || st->n > 65535 || (st->n && !st->params))
        return weft__pg_fail(r, -EINVAL, "bad statement or parameters");
    for (int i = 0; i < st->n; i++) {
        const weft_pg_val *v = &st->params[i];
        if (v->kind_ < WEFT__PG_NULL || v->kind_ > WEFT__PG_BYTES ||
            (v->kind_ == WEFT__PG_BYTES && v->len_ > INT_MAX))
            return weft__pg_fail(r, -EINVAL, "bad parameter");
    }
    return 0;
}

/* [DEALLOCATE] [Parse] Bind/Execute of statement i; -1 libpq failed,
 * -ENOMEM */
static int send_stmt(struct weft_pg_conn *c, struct call *k, int i)
{
    const weft_pg_stmt *st = &k->stmts[i];
    char small[256], name[16];
    size_t klen;
    if (k->unnamed) {                         /* Parse and Bind of its own, nothing shared */
        unsigned types[st->n ? st->n : 1];
        for (int j = 0; j < st->n; j++)
            types[j] = ptype(&st->params[j]);
        if (!PQsendPrepare(c->pg, "", st->sql, st->n, types))
            return -1;
        k->prepared[i] = k->ids[i] = 0;
        k->steps++;
        k->mains[i] = k->steps++;
        return send_bind(c, st, "");
    }
    char *key = stmt_key(st, &klen, small, sizeof small);
    if (!key)
        return -ENOMEM;
    struct stmt *s = weft__stmt_find(&c->stmts, key, klen);
    unsigned evicted = 0;
    if (!s)
        s = weft__stmt_add(&c->stmts, key, klen, &evicted);
    if (key != small)
        weft__free(key);
    if (evicted && send_deallocate(c, k, evicted))
        return -1;
    if (!s)
        return -ENOMEM;
    snprintf(name, sizeof name, "w%u", s->id);
    if (!s->ready) {                          /* new: prepared in this segment */
        unsigned types[st->n ? st->n : 1];
        for (int j = 0; j < st->n; j++)
            types[j] = ptype(&st->params[j]);
        if (!PQsendPrepare(c->pg, name, st->sql, st->n, types))
            return -1;
        k->prepared[i] = s->id;
        k->prepare_steps[i] = k->steps++;
        s->ready = true;
    }
    k->ids[i] = s->id;
    k->mains[i] = k->steps++;
    return send_bind(c, st, name);
}

int weft__pg_sync(struct weft_pg_conn *c)
{
    if (c->broken)
        return -ECONNRESET;
    if (!c->nopen)
        return 0;
    if (!PQpipelineSync(c->pg))               /* libpq 15 flushes here */
        return weft__pg_conn_lost(c);
    c->open_tail->sync = true;
    c->open_tail = NULL;
    c->nopen = 0;
    return 0;
}

int weft__pg_send(struct weft_pg_conn *c, struct call *k, weft_pg_result *r)
{
    if (c->broken)
        return weft__pg_fail(r, -WEFT_EBROKEN, NULL);
    for (int i = 0; i < k->nstmt; i++) {
        int rc = check_stmt(&k->stmts[i], &r[i]);
        if (rc)
            return rc;
        k->prepared[i] = 0;
    }
    if (!k->open && weft__pg_sync(c))         /* a segment of its own: the group before it ends */
        return lost(c, r);
    if (!c->nopen)
        c->tx_timeout_ms = c->timeout_ms;     /* a new transaction: the session's value */
    k->steps = k->read = 0;
    k->sync = false;
    int rc = 0;
    if (k->simple) {
        k->mains[0] = k->steps++;
        if (!PQsendQueryParams(c->pg, k->stmts[0].sql, 0, NULL, NULL, NULL, NULL, 0))
            rc = -1;
    } else {
        rc = send_timeout(c, k);
        for (int i = 0; i < k->nstmt && !rc; i++)
            rc = send_stmt(c, k, i);
    }
    if (!rc && !k->open && !PQpipelineSync(c->pg))
        rc = -1;
    if (rc) {
        c->broken = true;                     /* part of a segment queued, no Sync */
        return rc == -ENOMEM ? weft__pg_fail(r, rc, NULL) : lost(c, r);
    }
    if (k->open) {
        c->nopen++;
        c->open_tail = k;
    } else {
        k->sync = true;
    }
    return 0;
}

/* ---- reading ------------------------------------------------------------------- */

int weft__pg_flush(struct weft_pg_conn *c, const struct call *k)
{
    int rc;
    while ((rc = PQflush(c->pg)) == 1) {
        weft_time left = k->deadline - weft_now();
        rc = weft_fd_wait_for(c->fd, WEFT_READ | WEFT_WRITE, left > 0 ? left : 0, k->timeout_err);
        if (rc < 0) {
            c->broken = true;                 /* a message may be half sent */
            return rc;
        }
        if ((rc & WEFT_READ) && !PQconsumeInput(c->pg))   /* the server may talk first */
            break;
    }
    if (rc) {
        c->broken = true;
        fd_check(c);
        return -ECONNRESET;
    }
    return 0;
}

int weft__pg_next(struct weft_pg_conn *c, const struct call *k, PGresult **out)
{
    bool ended = false;                       /* a NULL: one command's results are over */
    for (;;) {
        if (!PQisBusy(c->pg)) {
            PGresult *res = PQgetResult(c->pg);
            if (res) {
                *out = res;
                return 0;
            }
            if (PQstatus(c->pg) == CONNECTION_BAD || ended) {
                c->broken = true;             /* nothing more will come */
                fd_check(c);
                return -ECONNRESET;
            }
            ended = true;
            continue;
        }
        ended = false;
        /* output other tasks queued goes out while we wait for ours */
        int f = PQflush(c->pg);
        if (f < 0) {
            c->broken = true;
            fd_check(c);
            return -ECONNRESET;
        }
        weft_time left = k->deadline - weft_now();
        c->parked = true;
        int rc = weft_fd_wait_for(c->fd, WEFT_READ | (f ? WEFT_WRITE : 0), left > 0 ? left : 0,
                                  k->timeout_err);
        c->parked = false;
        if (rc == -EBADF && c->kicked) {
            c->kicked = false;                /* look again: input may be in libpq */
            continue;
        }
        if (rc < 0)
            return rc;
        if (!(rc & WEFT_READ))
            continue;                         /* room to write: flush again */
        if (!PQconsumeInput(c->pg)) {
            c->broken = true;
            fd_check(c);
            return PQstatus(c->pg) == CONNECTION_BAD ? -ECONNRESET : -WEFT_EEOF;
        }
    }
}

void weft__pg_kick(struct weft_pg_conn *c)
{
    if (c->parked && !c->kicked && c->fd >= 0) {
        c->kicked = true;
        weft_fd_forget(c->fd);                /* its waiter gets -EBADF, then waits again */
    }
}

int weft__pg_conn_lost(struct weft_pg_conn *c)
{
    c->broken = true;
    fd_check(c);
    return -ECONNRESET;
}

int weft__pg_plain_next(struct weft_pg_conn *c, weft_time deadline, int err, PGresult **out)
{
    while (PQisBusy(c->pg)) {
        int f = PQflush(c->pg);
        if (f < 0)
            return weft__pg_conn_lost(c);
        weft_time left = deadline - weft_now();
        int rc = weft_fd_wait_for(c->fd, WEFT_READ | (f ? WEFT_WRITE : 0), left > 0 ? left : 0, err);
        if (rc < 0)
            return rc;
        if ((rc & WEFT_READ) && !PQconsumeInput(c->pg))
            return weft__pg_conn_lost(c);
    }
    *out = PQgetResult(c->pg);
    return 0;
}

/* the first keyword of sql, past white space and comments, in lower case */
void weft__pg_first_word(const char *sql, char *w, size_t cap)
{
    for (;;) {
        sql += strspn(sql, " \t\r\n\f(");
        if (sql[0] == '-' && sql[1] == '-')
            sql += strcspn(sql, "\n");
        else if (sql[0] == '/' && sql[1] == '*') {
            const char *e = strstr(sql + 2, "*/");
            sql = e ? e + 2 : sql + strlen(sql);
        } else
            break;
    }
    size_t n = 0;
    for (; n + 1 < cap && ((*sql >= 'a' && *sql <= 'z') || (*sql >= 'A' && *sql <= 'Z')); sql++)
        w[n++] = (char)(*sql | 0x20);
    w[n] = 0;
}

/* What a word may mean to the pool (word_flags). */
enum {
    WF_SESSION = 1,      /* session state that outlives the statement */
    WF_SHOWS = 2,        /* shows the transaction (its id, snapshot, start, locks) or
                           reaches outside it (a rollback does not undo it) */
    WF_CALL = 4,         /* the same, when called (a column may be named so) */
    WF_WRITE = 8,
    WF_LOCK = 16,        /* after FOR: a locking clause */
    WF_TEMP = 32,        /* after CREATE [OR REPLACE] [GLOBAL|LOCAL], or INTO */
    WF_CREATE = 64,      /* may stand between CREATE and TEMP */
    WF_FOR = 128,
    WF_INTO = 256,
};

static bool starts(const char *w, size_t n, const char *p)
{
    size_t l = strlen(p);
    return n >= l && memcmp(w, p, l) == 0;
}

/* a switch on the length: a statement's words cost a compare or two each
 * (this runs for every weft_pg_query) */
static unsigned word_flags(const char *w, size_t n)
{
#define EQ(s) (memcmp(w, s, n) == 0)
    if (w[0] == 'p' && n > 3 && w[1] == 'g' && w[2] == '_') {
        if (starts(w, n, "pg_advisory_lock") || starts(w, n, "pg_try_advisory_lock"))
            return WF_SESSION;
        if (starts(w, n, "pg_current_xact_id") || starts(w, n, "pg_advisory_xact_lock") ||
            starts(w, n, "pg_try_advisory_xact_lock"))
            return WF_SHOWS;
    }
    if ((w[0] == 't' && starts(w, n, "txid_")) || (w[0] == 'd' && starts(w, n, "dblink")))
        return WF_SHOWS;
    switch (n) {
    case 2: return EQ("no") ? WF_LOCK : EQ("or") ? WF_CREATE : 0;
    case 3: return EQ("now") || EQ("age") ? WF_CALL : EQ("key") ? WF_LOCK : EQ("for") ? WF_FOR : 0;
    case 4: return EQ("temp") ? WF_TEMP : EQ("into") ? WF_INTO : 0;
    case 5: return EQ("merge") ? WF_WRITE : EQ("share") ? WF_LOCK : EQ("local") ? WF_CREATE : 0;
    case 6:
        return EQ("insert") || EQ("delete") ? WF_WRITE : EQ("update") ? WF_WRITE | WF_LOCK
             : EQ("setval") ? WF_SHOWS : EQ("global") ? WF_CREATE : 0;
    case 7: return EQ("pg_temp") ? WF_SESSION : EQ("replace") ? WF_CREATE : 0;
    case 9: return EQ("temporary") ? WF_TEMP : EQ("localtime") ? WF_SHOWS : 0;
    case 10: return EQ("set_config") ? WF_SESSION : EQ("xact_start") ? WF_SHOWS : 0;
    case 11: return EQ("backend_xid") ? WF_SHOWS : 0;
    case 12: return EQ("backend_xmin") || EQ("current_time") || EQ("current_date") ? WF_SHOWS : 0;
    case 14: return EQ("localtimestamp") ? WF_SHOWS : 0;
    case 17: return EQ("current_timestamp") ? WF_SHOWS : 0;
    case 19: return EQ("pg_current_snapshot") ? WF_SHOWS : 0;
    case 21: return EQ("transaction_timestamp") ? WF_SHOWS : 0;
    }
    return 0;
#undef EQ
}

/* whole words, for the first keyword */
struct word {
    const char *w;
    unsigned char len;
};
#define W(s) { s, sizeof s - 1 }

static bool word_in(const char *w, size_t n, const struct word *list)
{
    for (; list->w; list++)
        if (n == list->len && memcmp(w, list->w, n) == 0)
            return true;
    return false;
}

static bool time_word(const char *w, size_t n)
{
    return (n == 3 && memcmp(w, "now", 3) == 0) || (n == 5 && memcmp(w, "today", 5) == 0) ||
           (n == 8 && memcmp(w, "tomorrow", 8) == 0) || (n == 9 && memcmp(w, "yesterday", 9) == 0);
}

/* a string constant that holds a word the server reads as the
 * transaction's time ('now', ' Today 10:00') */
static bool time_string(const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t j = i;
        char w[10];
        while (j < n && ((s[j] | 0x20) >= 'a' && (s[j] | 0x20) <= 'z'))
            j++;
        if (j > i && j - i < sizeof w) {
            for (size_t k = i; k < j; k++)
                w[k - i] = (char)(s[k] | 0x20);
            if (time_word(w, j - i))
                return true;
        }
        i = j > i ? j : i + 1;
    }
    return false;
}

static int scan_word(void *ctx, int kind, const char *w, size_t n, char next);

/* what a statement's first keyword says: 2 transaction control or COPY,
 * 1 session state, 0 nothing the pool must know */
static int first_kind(const char *w, size_t n)
{
    static const struct word tx[] = { W("begin"), W("start"), W("commit"), W("end"),
                                      W("rollback"), W("abort"), W("savepoint"), W("release"),
                                      W("prepare"), W("copy"), { 0 } };
    static const struct word session[] = { W("set"), W("reset"), W("discard"), W("deallocate"),
                                           W("listen"), W("unlisten"), W("load"), W("lock"),
                                           W("declare"), W("close"), W("fetch"), W("move"),
                                           { 0 } };
    return word_in(w, n, tx) ? 2 : word_in(w, n, session);
}

/* PL/pgSQL words after which a statement starts */
static bool block_word(const char *w, size_t n)
{
    static const struct word block[] = { W("begin"), W("then"), W("else"), W("loop"), { 0 } };
    return word_in(w, n, block);
}

/* a string constant read as SQL too: query_to_xml's query, a function
 * body, or data (then a set_config in it is taken at its word: refused,
 * as before) */
static void scan_string(struct weft__pg_sql *q, const char *s, size_t n)
{
    q->shows_tx |= time_string(s, n);
    if (q->depth >= 2)
        return;
    struct weft__pg_sql in = { .depth = q->depth + 1, .stmt_start = true };
    in.code = q->code || (q->depth == 0 && strcmp(q->first, "do") == 0);
    weft__sql_words(s, n, scan_word, &in);
    q->session |= in.session;
    q->shows_tx |= in.shows_tx;
}

static int scan_word(void *ctx, int kind, const char *w, size_t n, char next)
{
    struct weft__pg_sql *q = ctx;
    if (kind & WEFT__SQL_ESCAPED) {           /* unread: assume the worst */
        q->shows_tx = true;
        q->session |= (kind & WEFT__SQL_WORD) != 0;
    }
    if (kind & (WEFT__SQL_STRING | WEFT__SQL_END)) {
        if (kind & WEFT__SQL_STRING)
            scan_string(q, w, n);
        q->session |= q->set_head;            /* SET 'x' ...: not LOCAL */
        q->after_for = q->after_into = q->create_head = q->set_head = false;
        q->stmt_start = kind & WEFT__SQL_END;
        return 0;
    }
    /* the first word of the statement, or of one in a DO body */
    bool first = !q->words++, head = first || (q->code && q->stmt_start);
    if (first) {
        size_t m = n < sizeof q->first ? n : sizeof q->first - 1;
        memcpy(q->first, w, m);
        q->first[m] = 0;
    } else if (head) {
        bool set = n == 3 && memcmp(w, "set", 3) == 0;   /* SET LOCAL ends with the transaction */
        q->session |= first_kind(w, n) == 1 && !set;
        q->set_head = set;
    } else if (q->set_head) {
        q->session |= !(n == 5 && memcmp(w, "local", 5) == 0);
        q->set_head = false;
    }
    q->stmt_start = q->code && block_word(w, n);
    unsigned f = word_flags(w, n);
    q->session |= (f & WF_SESSION) || ((f & WF_TEMP) && (q->create_head || q->after_into));
    q->create_head = head ? n == 6 && memcmp(w, "create", 6) == 0
                          : q->create_head && (f & WF_CREATE);
    q->shows_tx |= (f & WF_SHOWS) || ((f & WF_CALL) && next == '(');
    q->writes |= (f & WF_WRITE) != 0;
    q->locks |= q->after_for && (f & WF_LOCK);
    q->after_for = f & WF_FOR;
    q->after_into = (f & WF_INTO) &&                /* SELECT ... INTO TEMP t */
                    (strcmp(q->first, "select") == 0 || strcmp(q->first, "with") == 0);
    return 0;
}

void weft__pg_scan(const char *sql, struct weft__pg_sql *out)
{
    memset(out, 0, sizeof *out);
    if (sql)
        weft__sql_words(sql, strlen(sql), scan_word, out);
}

int weft__pg_kind(const struct weft__pg_sql *q)
{
    int kind = first_kind(q->first, strlen(q->first));
    return kind ? kind : q->session;
}

bool weft__pg_statement_timeout(const PGresult *res)
{
    const char *st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    const char *m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    return st && strcmp(st, "57014") == 0 && m && strstr(m, "statement timeout");
}

static void forget_stmt(struct weft_pg_conn *c, unsigned id)
{
    for (unsigned i = 0; i < c->stmts.cap; i++)
        if (c->stmts.slots[i].key && c->stmts.slots[i].id == id) {
            weft__stmt_forget(&c->stmts, &c->stmts.slots[i]);
            return;
        }
}

/* what the error of a segment means for the connection's state (the
 * statements' SQL may be gone: the ids say which were used) */
static void after_error(struct weft_pg_conn *c, struct call *k, PGresult *err, int step)
{
    if (!k->local)
        c->timeout_ms = -1;                   /* a set_config may have rolled back */
    if (k->simple)
        return;
    const char *m = PQresultErrorField(err, PG_DIAG_MESSAGE_PRIMARY);
    const char *state = PQresultErrorField(err, PG_DIAG_SQLSTATE);
    /* stale, or gone (its Parse was skipped in an earlier failed segment) */
    bool redo = (m && strstr(m, "cached plan must not change result type")) ||
                (state && strcmp(state, "26000") == 0);
    for (int i = 0; i < k->nstmt; i++)
        if ((k->prepared[i] && step <= k->prepare_steps[i]) ||
            (redo && step == k->mains[i] && k->ids[i]))
            forget_stmt(c, k->ids[i]);        /* never made (failed or skipped), stale */
}

/* which statement's own result step is, or -1 */
static int stmt_at(const struct call *k, int step)
{
    for (int i = 0; i < k->nstmt; i++)
        if (k->mains[i] == step)
            return i;
    return -1;
}

int weft__pg_read_call(struct weft_pg_conn *c, struct call *k, weft_pg_result *rs)
{
    int code = 0, rc;
    for (;;) {
        PGresult *res;
        if (!k->sync && k->read >= k->steps)
            return code;                      /* a group's member: the Sync comes after another's */
        if ((rc = weft__pg_next(c, k, &res)))
            return rc;                        /* the caller recovers or drops c */
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_PIPELINE_SYNC) {
            PQclear(res);
            break;
        }
        int i = stmt_at(k, k->read);
        if (st == PGRES_FATAL_ERROR && !code && PQstatus(c->pg) == CONNECTION_BAD) {
            /* the connection went (a restart's FATAL, or libpq's own words
             * for a lost socket): that, not a statement error */
            c->broken = true;
            fd_check(c);
            weft__pg_result_error(&rs[i >= 0 ? i : 0], res);
            code = -ECONNRESET;
            k->read = k->steps + (k->sync ? 1 : 0);
            return code;
        }
        if (st == PGRES_FATAL_ERROR && !code) {
            after_error(c, k, res, k->read);
            bool timeout = weft__pg_statement_timeout(res);
            int j = i >= 0 ? i : 0;          /* a Parse's error is its statement's, */
            for (int s = 0; s < k->nstmt; s++)   /* set_config's the first's */
                if (k->prepared[s] && k->prepare_steps[s] == k->read)
                    j = s;
            code = weft__pg_result_error(&rs[j], res);
            if (timeout)
                code = k->timeout_err;        /* the budget we sent ran out */
        } else if (st == PGRES_PIPELINE_ABORTED) {
            /* not run: an earlier statement of the transaction failed (of
             * this call, or of its group); a Parse skipped made nothing */
            if (i >= 0 && !rs[i].priv_ && !rs[i].error[0])
                weft__pg_fail(&rs[i], -ECANCELED, "not run: an earlier statement failed");
            for (int s = 0; s < k->nstmt; s++)
                if (k->prepared[s] && k->prepare_steps[s] == k->read)
                    forget_stmt(c, k->ids[s]);
            PQclear(res);
        } else if (i >= 0 && st != PGRES_FATAL_ERROR) {
            if ((size_t)PQresultMemorySize(res) > c->db->o.max_result) {
                PQclear(res);
                if (!code)
                    code = weft__pg_fail(&rs[i], -EMSGSIZE, "result over max_result");
            } else if ((rc = weft__pg_result_set(&rs[i], res)) && !code) {
                code = rc;
            }
        } else {
            PQclear(res);
        }
        k->read++;
    }
    k->read = k->steps + 1;                   /* all of it, Sync included */
    return code;
}

/* ---- recovering after an interrupted read -------------------------------------- */

struct cancel_job {
    _Atomic int refs;
    PGcancel *cn;
    weft_chan *done;
};

/* PQcancel blocks its thread until the server answers, with no timeout
 * of its own: a server gone unreachable would hold every blocking thread
 * (and with them every run_blocking of the process) for minutes. A few at
 * a time; past that the connection is drained or closed instead. */
#define MAX_CANCELS 4
static _Atomic int cancels_running;

static int cancel_run(void *arg)
{
    struct cancel_job *j = arg;
    char err[256];
    int ok = PQcancel(j->cn, err, sizeof err);
    atomic_fetch_sub(&cancels_running, 1);
    weft_chan_try_send(j->done, &ok);
    return 0;
}

static void cancel_unref(void *arg)
{
    struct cancel_job *j = arg;
    if (atomic_fetch_sub(&j->refs, 1) == 1) {
        PQfreeCancel(j->cn);
        weft_chan_free(j->done);
        weft__free(j);
    }
}

struct cancel_job *weft__pg_cancel_start(struct weft_pg_conn *c)
{
    if (atomic_fetch_add(&cancels_running, 1) >= MAX_CANCELS) {
        atomic_fetch_sub(&cancels_running, 1);
        return NULL;
    }
    struct cancel_job *j = weft__calloc(1, sizeof *j);
    if (!j) {
        atomic_fetch_sub(&cancels_running, 1);
        return NULL;
    }
    atomic_init(&j->refs, 2);
    j->cn = PQgetCancel(c->pg);
    j->done = weft_chan_new_shared(sizeof(int), 1);
    if (!j->cn || !j->done) {
        PQfreeCancel(j->cn);
        if (j->done)
            weft_chan_free(j->done);
        weft__free(j);
        atomic_fetch_sub(&cancels_running, 1);
        return NULL;
    }
    c->db->st.cancels++;
    weft_metric_add(c->db->m_cancels, 1);
    weft_run_blocking_detached(cancel_run, j, cancel_unref);   /* owns one reference */
    return j;
}

int weft__pg_cancel_wait(struct cancel_job *j)
{
    int ok;
    int rc = weft_chan_recv(j->done, &ok);
    cancel_unref(j);
    return rc;
}

void weft__pg_cancel_and_break(struct weft_pg_conn *c)
{
    struct cancel_job *j = c->broken ? NULL : weft__pg_cancel_start(c);
    if (j)
        cancel_unref(j);                      /* the request goes on its own */
    c->broken = true;
}

/* drains k's results to its Sync, within the shield's time */
static int drain(struct weft_pg_conn *c, struct call *k)
{
    struct call d = *k;
    d.deadline = WEFT_FOREVER;                /* the shield's scope bounds it */
    d.timeout_err = -ETIMEDOUT;
    int rc = 0;
    while (!rc && k->read <= k->steps) {
        PGresult *res;
        if (!(rc = weft__pg_next(c, &d, &res))) {
            if (PQresultStatus(res) == PGRES_FATAL_ERROR)
                after_error(c, k, res, k->read);
            k->read++;
            if (PQresultStatus(res) == PGRES_PIPELINE_SYNC)
                k->read = k->steps + 1;
            PQclear(res);
        }
    }
    return rc;
}

void weft__pg_recover(struct weft_pg_conn *c, struct call *k)
{
    if (c->broken || k->read > k->steps)
        return;
    /* a statement runs while the last one's result has not come */
    bool running = k->nstmt > 0 && k->read <= k->mains[k->nstmt - 1];
    weft_scope sc;
    weft_scope_enter_shielded(&sc, c->db->o.cancel_grace);
    struct cancel_job *j = NULL;
    int rc = -ETIMEDOUT;
    if (running && !weft_cancelled()) {
        /* a deadline: the server's statement_timeout ends it at the same
         * moment; give its error a moment before asking for more */
        weft_scope quick;
        weft_scope_enter(&quick, 100 * WEFT_MS);
        rc = drain(c, k);
        weft_scope_exit(&quick);
    }
    if (rc && running && !c->broken)
        j = weft__pg_cancel_start(c);
    if (rc && !c->broken)
        rc = drain(c, k);
    if (j && weft__pg_cancel_wait(j))
        rc = -ETIMEDOUT;                      /* a late cancel could stop the next statement */
    weft_scope_exit(&sc);
    if (rc)
        c->broken = true;
}

void weft__pg_call_init(struct call *k, weft_pg *db, const weft_pg_stmt *s, int n)
{
    *k = (struct call){ .stmts = s, .nstmt = n, .mains = &k->one_main, .ids = &k->one_id,
                        .prepared = &k->one_prepared, .prepare_steps = &k->one_prep_step };
    k->deadline = weft__after(db->o.query_timeout);
    k->timeout_err = -WEFT_EQUERY_TIMEOUT;
    if (weft_deadline() <= k->deadline) {
        k->deadline = weft_deadline();
        k->timeout_err = -ETIMEDOUT;
    }
}

int weft__pg_simple(struct weft_pg_conn *c, const char *sql, weft_pg_result *r)
{
    weft_pg_result scratch = { 0 };
    weft_pg_stmt st = { .sql = sql };
    struct call k;
    weft__pg_call_init(&k, c->db, &st, 1);
    k.simple = true;
    int rc = weft__pg_send(c, &k, r ? r : &scratch);
    if (!rc)
        rc = weft__pg_flush(c, &k);
    if (!rc)
        rc = weft__pg_read_call(c, &k, r ? r : &scratch);
    if (rc && !c->broken && k.read <= k.steps)
        weft__pg_recover(c, &k);
    weft_pg_result_free(&scratch);
    return rc;
}
