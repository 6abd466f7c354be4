/*
 * weft serve: the example service (`make run`), built into the weft CLI.
 * One loop per thread, each with its own SO_REUSEPORT listener on the same
 * port (weft_http_server_run_with, whose per-loop hooks make and close
 * each loop's pools, queue handle and client); SIGTERM or SIGINT shuts it
 * down in one sequence: HTTP drained, then the running jobs finish within
 * the grace, then the pools close.
 *
 * The data lives in SQLite by default (--db, made and seeded with users
 * 1-1000 on first start: `make run` needs no server), or in PostgreSQL
 * with --pg URL / WEFT_PG_URL (pg.c: migrations applied at start, users
 * 1-10,000 and TechEmpower's World and Fortune tables). Events go through
 * the durable queue (events.c): a sqlite: queue beside --db, or --queue
 * URL / WEFT_QUEUE_URL. Every handler below runs under the request's
 * deadline (--timeout): past it the answer is 504 and a PostgreSQL
 * statement is stopped on the server too; a database that is busy (its
 * pool's acquire timeout) or away is 503 with Retry-After.
 *
 *   GET /plaintext   "Hello, World!" (the TechEmpower plaintext test)
 *   GET /json        {"message":"Hello, World!"}
 *   GET /healthz     ok
 *   GET /metrics     Prometheus text: requests by route and status, and
 *                    everything weft registers (pools, queue, loop stalls)
 *   GET /users/{id}  a user ({"id","name","email"}); 404 JSON when absent,
 *                    400 for an id that is not a positive decimal integer;
 *                    with --redis cached for 60 s (cache.c; "X-Cache: hit")
 *   PUT /users/{id}  {"name","email"}: the user changed, its cache entry
 *                    deleted; 400, 404, 413, 415
 *   POST /events     {"type": string, "user_id": int > 0, "data": object?}
 *                    -> 202 {"status":"accepted","id":N} once the job is
 *                    durable; 400 (shape), 413 (over 64 KiB), 415
 *   GET /events/{id} {"id":N,"state":"queued|scheduled|running|done|dead",
 *                    "attempts":N} (+ "error" when dead)
 *   GET /db, /queries?queries=N, /updates?queries=N, /fortunes
 *                    TechEmpower's database tests (with --pg only)
 *   GET /proxy?url=  fetched through the loop's pooled client, 5 s deadline;
 *                    504 on timeout, 502 when the upstream fails or answers
 *                    1xx (a proxy never passes an interim answer, least of
 *                    all 101 Switching Protocols, on as its final one), 403
 *                    for an upstream not on the allow-list (--proxy-allow;
 *                    by default none: no open relay, and no way around a
 *                    front end that denies this service's own /metrics),
 *                    508 for a loop (our own entry in Via, or 8 hops)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "service.h"
#include "weft/http_json.h"

static const char usage_text[] =
    "usage: weft serve [--host HOST] [--port PORT] [--threads N] [--db PATH]\n"
    "                  [--pg URL] [--queue URL] [--redis URL] [--workers N]\n"
    "                  [--attempts N] [--timeout S] [--proxy-allow HOST[:PORT],...]\n"
    "  --host HOST    IP address to listen on, or localhost (default 127.0.0.1;\n"
    "                 \"\" for every address)\n"
    "  --port PORT    default 8080\n"
    "  --threads N    loops, one per thread (default: one per core)\n"
    "  --db PATH      the SQLite database (default ./weft-example.db, made on first\n"
    "                 start): the data without --pg, and the default queue beside it\n"
    "  --pg URL       the data in PostgreSQL (default $WEFT_PG_URL): migrations\n"
    "                 applied at start; adds TechEmpower's /db, /queries, /updates,\n"
    "                 /fortunes\n"
    "  --queue URL    the events' durable queue (default $WEFT_QUEUE_URL, else\n"
    "                 sqlite: beside --db): sqlite:PATH, postgres://...\n"
    "  --redis URL    /users/{id} cached in Redis for 60 s, deleted when PUT\n"
    "                 /users/{id} changes the user (default $WEFT_REDIS_URL)\n"
    "  --workers N    event jobs each loop runs at once (default 64)\n"
    "  --attempts N   runs of an event's job before it is dead (default 5)\n"
    "  --timeout S    each request's deadline in seconds, fractions allowed\n"
    "                 (default 10): past it 504, its SQL stopped on the server\n"
    "  --proxy-allow HOST[:PORT],...\n"
    "                 the upstreams /proxy may fetch from (a host without a port: any\n"
    "                 port; IPv6 in brackets; repeatable; \"\" for none); others get\n"
    "                 403. Default: none (allowing this service itself would let\n"
    "                 /proxy reach what a front end denies, /metrics say)\n";

static struct service *the_service;

/* per loop: the shared client for /proxy and the SQLite connections (one
 * per query in flight, used on the blocking pool) */
static __thread weft_http_client *proxy_client;
static __thread weft_pool *db_pool;

/* ---- /users/{id} on SQLite ----------------------------------------------------- */

/* events: one row per event, keyed by the id POST /events gave it (a job
 * run twice records once; a job id alone is unique only within one queue,
 * and instances sharing the data may have queues of their own) */
#define EVENTS_TABLE                                                                        \
    "CREATE TABLE IF NOT EXISTS events (event_id TEXT PRIMARY KEY, job_id INTEGER NOT NULL," \
    " type TEXT NOT NULL, user_id INTEGER NOT NULL, data TEXT, created_at INTEGER NOT NULL"  \
    " DEFAULT (strftime('%s', 'now')));"
static const char schema[] =
    "PRAGMA journal_mode=WAL;"
    "CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, name TEXT NOT NULL,"
    " email TEXT NOT NULL);" EVENTS_TABLE;
/* a database made before events had their own ids: its rows keyed "job:N" */
static const char events_rekey[] =
    "BEGIN IMMEDIATE;"
    "ALTER TABLE events RENAME TO events_by_job;" EVENTS_TABLE
    "INSERT INTO events (event_id, job_id, type, user_id, data, created_at)"
    " SELECT 'job:' || job_id, job_id, type, user_id, data, created_at FROM events_by_job;"
    "DROP TABLE events_by_job;"
    "COMMIT;";

static bool events_keyed_by_job(sqlite3 *db)
{
    sqlite3_stmt *st;
    bool old = false;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM pragma_table_info('events')"
                               " WHERE name = 'event_id'", -1, &st, NULL) == SQLITE_OK) {
        old = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) == 0;
        sqlite3_finalize(st);
    }
    return old;
}

/* Creates the schema and, on first start, the seed: once, before the loops. */
static int prepare_db(const char *path)
{
    sqlite3 *db;
    int ok = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) ==
             SQLITE_OK;
    char *err = NULL;
    if (ok && sqlite3_exec(db, schema, NULL, NULL, &err) != SQLITE_OK)
        ok = 0;
    if (ok && events_keyed_by_job(db) && sqlite3_exec(db, events_rekey, NULL, NULL, &err) != SQLITE_OK)
        ok = 0;
    if (!ok) {
        fprintf(stderr, "weft serve: cannot open %s: %s\n", path, err ? err : sqlite3_errmsg(db));
        sqlite3_free(err);
        sqlite3_close(db);
        return -EIO;
    }
    sqlite3_stmt *st;
    int have = 0;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM users", -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            have = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
    }
    if (have == 0) {                      /* first start: the seed */
        sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
        sqlite3_prepare_v2(db, "INSERT INTO users (id, name, email) VALUES (?, ?, ?)", -1, &st,
                           NULL);
        for (int i = 1; i <= 1000; i++) {
            char name[32], email[64];
            snprintf(name, sizeof name, "User %d", i);
            snprintf(email, sizeof email, "user%d@example.com", i);
            sqlite3_bind_int(st, 1, i);
            sqlite3_bind_text(st, 2, name, -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(st, 3, email, -1, SQLITE_TRANSIENT);
            sqlite3_step(st);
            sqlite3_reset(st);
        }
        sqlite3_finalize(st);
        sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    }
    sqlite3_close(db);
    return 0;
}

/* ---- the pool of SQLite connections ---- */

struct db_conn { sqlite3 *db; sqlite3_stmt *get_user, *add_event, *set_user; };

static void db_destroy(void *ctx, void *res)
{
    (void)ctx;
    struct db_conn *c = res;
    sqlite3_finalize(c->get_user);
    sqlite3_finalize(c->add_event);
    sqlite3_finalize(c->set_user);
    sqlite3_close(c->db);
    free(c);
}

struct db_open { const char *path; struct db_conn *c; };

static int db_open(void *arg)             /* on the blocking pool: file I/O */
{
    struct db_open *o = arg;
    struct db_conn *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    if (sqlite3_open_v2(o->path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) ||
        sqlite3_prepare_v2(c->db, "SELECT name, email FROM users WHERE id = ?", -1,
                           &c->get_user, NULL) ||
        sqlite3_prepare_v2(c->db, "INSERT OR IGNORE INTO events (event_id, job_id, type,"
                                  " user_id, data) VALUES (?, ?, ?, ?, ?)", -1, &c->add_event,
                           NULL) ||
        sqlite3_prepare_v2(c->db, "UPDATE users SET name = ?, email = ? WHERE id = ?", -1,
                           &c->set_user, NULL)) {
        weft_log(WEFT_LOG_ERROR, "serve: %s: %s", o->path, sqlite3_errmsg(c->db));
        db_destroy(NULL, c);
        return -EIO;
    }
    o->c = c;
    return 0;
}

static int db_create(void *ctx, void **res)
{
    struct db_open o = { .path = ctx };
    int rc = weft_run_blocking(db_open, &o);
    if (rc && o.c)
        db_destroy(NULL, o.c);            /* made, but its caller gave up */
    *res = rc ? NULL : o.c;
    return rc;
}

/* a user looked up (into u), or changed (from set), and an event recorded
 * when event_id is set and the user exists */
struct db_call {
    struct db_conn *c;
    int64_t id;
    svc_user *u;
    const svc_user *set;
    bool found;
    int busy_ms;                          /* how long to wait for another's write lock */
    const char *event_id;
    int64_t job_id;
    const char *type, *data;
};

static int db_set(struct db_call *d)
{
    sqlite3_stmt *st = d->c->set_user;
    sqlite3_bind_text(st, 1, d->set->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, d->set->email, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, d->set->id);
    int rc = sqlite3_step(st);
    d->found = rc == SQLITE_DONE && sqlite3_changes(d->c->db) == 1;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? 0 : rc == SQLITE_BUSY ? -EBUSY : -EIO;
}

static int db_step(void *arg)             /* on the blocking pool */
{
    struct db_call *d = arg;
    sqlite3_busy_timeout(d->c->db, d->busy_ms);
    if (d->set)
        return db_set(d);
    sqlite3_stmt *st = d->c->get_user;
    sqlite3_bind_int64(st, 1, d->id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && d->u) {
        d->u->id = d->id;
        snprintf(d->u->name, sizeof d->u->name, "%s", (const char *)sqlite3_column_text(st, 0));
        snprintf(d->u->email, sizeof d->u->email, "%s", (const char *)sqlite3_column_text(st, 1));
    }
    d->found = rc == SQLITE_ROW;
    sqlite3_reset(st);
    if (d->found && d->event_id) {
        st = d->c->add_event;
        sqlite3_bind_text(st, 1, d->event_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, d->job_id);
        sqlite3_bind_text(st, 3, d->type, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, d->id);
        if (d->data)
            sqlite3_bind_text(st, 5, d->data, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 5);
        rc = sqlite3_step(st);
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : rc == SQLITE_BUSY ? -EBUSY : -EIO;
}

/* the longest a query waits for another connection's write lock */
#define BUSY_MS 5000

/* On a pooled connection: 0 (d->found says), or an error. The deadline
 * does not reach a query on the blocking pool (a cancel waits for it), and
 * SQLite sleeps in its busy handler while another holds the write lock:
 * that wait is bounded by what is left of the deadline, and a lock still
 * held when it runs out is -ETIMEDOUT, not -EBUSY. */
static int db_call(struct db_call *d)
{
    weft_pooled *h;
    int rc = weft_pool_acquire(db_pool, &h);
    if (rc)
        return rc;
    weft_time deadline = weft_deadline(), left = deadline - weft_now();
    bool cut = deadline != WEFT_FOREVER && left < BUSY_MS * WEFT_MS;
    if (cut && left <= 0) {
        weft_pool_release(db_pool, h);
        return -ETIMEDOUT;
    }
    d->busy_ms = cut ? (int)(left / WEFT_MS) : BUSY_MS;
    d->c = weft_pooled_get(h);
    rc = weft_run_blocking(db_step, d);   /* a cancel waits for a running query */
    if (rc == -EBUSY && cut)
        rc = -ETIMEDOUT;
    if (rc == -EIO)
        weft_pool_release_broken(db_pool, h);
    else
        weft_pool_release(db_pool, h);
    return rc;
}

int svc_user_find(int64_t id, svc_user *u, bool *found)
{
#if WEFT_HAVE_PG
    if (the_service->pg_url)
        return svc_pg_user_find(id, u, found);
#endif
    struct db_call d = { .id = id, .u = u };
    int rc = db_call(&d);
    *found = d.found;
    return rc;
}

int svc_user_update(const svc_user *u, bool *found)
{
#if WEFT_HAVE_PG
    if (the_service->pg_url)
        return svc_pg_user_update(u, found);
#endif
    struct db_call d = { .set = u };
    int rc = db_call(&d);
    *found = d.found;
    return rc;
}

int svc_event_record(const char *event_id, int64_t job_id, const char *type, int64_t user_id,
                     const char *data, bool *found)
{
#if WEFT_HAVE_PG
    if (the_service->pg_url)
        return svc_pg_event_record(event_id, job_id, type, user_id, data, found);
#endif
    struct db_call d = { .id = user_id, .event_id = event_id, .job_id = job_id, .type = type,
                         .data = data };
    int rc = db_call(&d);
    *found = d.found;
    return rc;
}

/* ---- answers ---------------------------------------------------------------------- */

int svc_json(weft_http_res *r, int status, json_t *j)
{
    weft_http_res_status(r, status);
    int rc = j ? weft_http_res_json(r, j) : -ENOMEM;
    json_decref(j);
    return rc;
}

int svc_error(weft_http_res *r, int status, const char *why)
{
    return svc_json(r, status, json_pack("{s:s}", "error", why));
}

int svc_unavailable(weft_http_res *r, int rc)
{
    char why[128];
    snprintf(why, sizeof why, "database unavailable: %s", weft_strerror(rc));
    weft_http_res_header(r, "Retry-After", "1");
    return svc_error(r, 503, why);
}

int svc_data_error(weft_http_res *r, int rc)
{
    switch (rc) {
    case -WEFT_EPOOL_TIMEOUT: case -WEFT_EACQUIRE_TIMEOUT: case -WEFT_ECONNECT_TIMEOUT:
    case -ECONNREFUSED: case -ECONNRESET: case -WEFT_EEOF: case -WEFT_EBROKEN:
    case -WEFT_ECLOSED: case -EACCES: case -EBUSY: case -EHOSTUNREACH: case -ENETUNREACH:
    case -EPIPE: case -ENOTCONN: case -ECONNABORTED:
    case -EAGAIN:                         /* Redis loading, busy, or its primary down */
        return svc_unavailable(r, rc);
    default:
        return weft_is_timeout(rc) ? svc_error(r, 504, "deadline exceeded") : rc;
    }
}

bool svc_is_json(weft_http_req *q)
{
    const char *ct = weft_http_req_header(q, "Content-Type");
    return ct && strncasecmp(ct, "application/json", 16) == 0 &&
           (!ct[16] || ct[16] == ';' || ct[16] == ' ');
}

long long svc_parse_id(const char *s)
{
    if (!s || !*s || s[strspn(s, "0123456789")])
        return 0;
    errno = 0;
    long long v = strtoll(s, NULL, 10);
    return errno ? 0 : v;
}

/* ---- the request's deadline ---- */

struct route { struct service *sv; weft_http_handler h; void *ctx; };
#define MAX_ROUTES 32
static struct route routes[MAX_ROUTES];
static int nroutes;

/* the handler under sv->timeout: calls inside it (PostgreSQL's too) end
 * at the deadline with a timeout, answered 504 */
static int under_deadline(weft_http_req *q, weft_http_res *r, void *ctx)
{
    const struct route *rt = ctx;
    weft_scope sc;
    weft_scope_enter(&sc, rt->sv->timeout);
    int rc = rt->h(q, r, rt->ctx);
    bool expired = weft_scope_exit(&sc);
    return rc < 0 && expired ? svc_error(r, 504, "deadline exceeded") : rc;
}

int svc_route(struct service *sv, const char *method, const char *pattern, weft_http_handler h,
              void *ctx)
{
    if (nroutes == MAX_ROUTES)
        return -ENOMEM;
    routes[nroutes] = (struct route){ sv, h, ctx };
    return weft_http_server_route(sv->server, method, pattern, under_deadline, &routes[nroutes++]);
}

static int user_json(weft_http_res *r, int status, const char *json)
{
    weft_http_res_status(r, status);
    weft_http_res_header(r, "Content-Type", "application/json");
    return weft_http_res_body(r, json, strlen(json));
}

static int users(weft_http_req *q, weft_http_res *r, void *ctx)
{
    (void)ctx;
    long long v = svc_parse_id(weft_http_req_param(q, "id"));
    if (v < 1)
        return svc_error(r, 400, "id must be a positive integer");
    char body[512];
#if WEFT_HAVE_REDIS
    if (svc_cache_get(v, body, sizeof body) > 0) {
        weft_http_res_header(r, "X-Cache", "hit");
        return user_json(r, 200, body);
    }
#endif
    svc_user u;
    bool found = false;
    int rc = svc_user_find(v, &u, &found);
    if (rc)
        return svc_data_error(r, rc);
    if (!found)
        return svc_json(r, 404, json_pack("{s:s, s:I}", "error", "no such user", "id",
                                          (json_int_t)v));
    json_t *j = json_pack("{s:I, s:s, s:s}", "id", (json_int_t)v, "name", u.name, "email",
                          u.email);
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!s)
        return -ENOMEM;
#if WEFT_HAVE_REDIS
    svc_cache_put(v, s);
#endif
    rc = user_json(r, 200, s);
    free(s);
    return rc;
}

/* false only when the UPDATE surely did not commit: no connection to send
 * it on, the lock never taken (SQLite), or the server's refusal (a failed
 * statement rolls back). A timeout, a cancel or a connection lost after it
 * was sent may come after the commit. */
static bool may_have_committed(int rc)
{
    switch (rc) {
    case -WEFT_EPOOL_TIMEOUT: case -WEFT_EACQUIRE_TIMEOUT: case -WEFT_ECONNECT_TIMEOUT:
    case -ECONNREFUSED: case -WEFT_EPG: case -EBUSY:
        return false;
    default:
        return true;
    }
}

/* PUT /users/{id} {"name": string, "email": string}: the change in the
 * database first, then the cached answer deleted (cache-aside), also when
 * the change may have committed though the call failed (past the
 * deadline, say): the database may hold it */
static int put_user(weft_http_req *q, weft_http_res *r, void *ctx)
{
    (void)ctx;
    long long v = svc_parse_id(weft_http_req_param(q, "id"));
    if (v < 1)
        return svc_error(r, 400, "id must be a positive integer");
    if (!svc_is_json(q))
        return svc_error(r, 415, "Content-Type must be application/json");
    size_t len;
    const char *body = weft_http_req_body(q, &len);
    json_t *j = body && len ? json_loadb(body, len, 0, NULL) : NULL;
    json_t *name = json_object_get(j, "name"), *email = json_object_get(j, "email");
    svc_user u = { .id = v };
    const char *why = NULL;
    if (!json_is_object(j))
        why = "body is not a JSON object";
    else if (!json_is_string(name) || !json_string_length(name) ||
             json_string_length(name) >= sizeof u.name)
        why = "name must be a string of 1 to 127 bytes";
    else if (!json_is_string(email) || !json_string_length(email) ||
             json_string_length(email) >= sizeof u.email)
        why = "email must be a string of 1 to 127 bytes";
    if (!why) {
        snprintf(u.name, sizeof u.name, "%s", json_string_value(name));
        snprintf(u.email, sizeof u.email, "%s", json_string_value(email));
    }
    json_decref(j);
    if (why)
        return svc_error(r, 400, why);
    bool found = false;
    int rc = svc_user_update(&u, &found);
#if WEFT_HAVE_REDIS
    if (rc ? may_have_committed(rc) : found)
        svc_cache_del(v);
#endif
    if (rc)
        return svc_data_error(r, rc);
    if (!found)
        return svc_json(r, 404, json_pack("{s:s, s:I}", "error", "no such user", "id",
                                          (json_int_t)v));
    return svc_json(r, 200, json_pack("{s:I, s:s, s:s}", "id", (json_int_t)v, "name", u.name,
                                      "email", u.email));
}

/* ---- GET /proxy?url= ---------------------------------------------------------------- */

/* Adds "host[:port]" to the allow-list: 0, or -EINVAL (malformed, or the
 * list is full). The host is normalised by the parser the client uses, so
 * the check below compares what will be fetched. */
static int allow_add(struct service *sv, const char *s, size_t len)
{
    if (sv->nallow == MAX_ALLOW || len == 0 || len > 255 || strcspn(s, "/?#@ ") < len)
        return -EINVAL;                   /* a host and a port, nothing more */
    struct upstream *a = &sv->allow[sv->nallow];
    const char *end = s + len, *colon = NULL;
    if (s[0] == '[') {                    /* [v6] or [v6]:port */
        const char *rb = memchr(s, ']', len);
        if (!rb || (rb + 1 < end && rb[1] != ':'))
            return -EINVAL;
        colon = rb + 1 < end ? rb + 1 : NULL;
    } else {
        colon = memchr(s, ':', len);
        if (colon && memchr(colon + 1, ':', (size_t)(end - colon - 1)))
            return -EINVAL;               /* an IPv6 address needs its brackets */
    }
    a->port = 0;
    if (colon) {
        char digits[8];
        size_t n = (size_t)(end - colon - 1);
        if (n == 0 || n >= sizeof digits || strspn(colon + 1, "0123456789") < n)
            return -EINVAL;
        memcpy(digits, colon + 1, n);
        digits[n] = 0;
        a->port = atoi(digits);
        if (a->port < 1 || a->port > 65535)
            return -EINVAL;
        end = colon;
    }
    static weft_url u;                    /* big; parsing runs before the loops */
    char url[300];
    snprintf(url, sizeof url, "http://%.*s/", (int)(end - s), s);
    if (weft_url_parse(&u, url) || !*u.host)
        return -EINVAL;
    snprintf(a->host, sizeof a->host, "%s", u.host);
    sv->nallow++;
    return 0;
}

/* Adds a comma-separated list ("" adds nothing). 0 or -EINVAL. */
static int allow_list(struct service *sv, const char *list)
{
    for (const char *p = list; *p;) {
        size_t n = strcspn(p, ",");
        if (allow_add(sv, p, n))
            return -EINVAL;
        p += n + (p[n] == ',');
    }
    return 0;
}

/* by host and port; the client follows no redirects (max_redirects 0), so
 * what it reaches is the URL checked here */
static bool allowed(const struct service *sv, const weft_url *u)
{
    for (int i = 0; i < sv->nallow; i++)
        if (strcmp(sv->allow[i].host, u->host) == 0 &&
            (!sv->allow[i].port || sv->allow[i].port == u->port))
            return true;
    return false;
}

/* This process's Via entry: a request that already passed through it is
 * a loop (a /proxy URL pointing back at /proxy), refused before it takes
 * a connection; so is a chain longer than MAX_HOPS. */
#define MAX_HOPS 8
static char via_self[48];

/* The Via header to send upstream into buf, or NULL for a loop. */
static const char *via_next(const weft_http_req *q, char *buf, size_t size)
{
    const char *via = weft_http_req_header(q, "Via");
    int hops = 0;
    for (const char *p = via; p && *p; p++)
        hops += *p == ',';
    if (via && (strstr(via, via_self) || hops + 1 >= MAX_HOPS))
        return NULL;
    int n = snprintf(buf, size, "%s%s%s", via ? via : "", via ? ", " : "", via_self);
    return n > 0 && (size_t)n < size ? buf : NULL;
}

static int proxy(weft_http_req *q, weft_http_res *r, void *ctx)
{
    struct service *sv = ctx;
    const char *url = weft_http_req_query_param(q, "url");
    if (!url || !*url)
        return svc_json(r, 400, json_pack("{s:s}", "error", "missing url parameter"));
    char via[512];
    weft_http_header hop = { "Via", via_next(q, via, sizeof via) };
    if (!hop.value)
        return svc_json(r, 508, json_pack("{s:s}", "error", "proxy loop (Via)"));
    weft_url *u = malloc(sizeof *u);
    if (!u)
        return -ENOMEM;
    int rc = weft_url_parse(u, url);
    if (rc == 0 && !allowed(sv, u))
        rc = svc_json(r, 403, json_pack("{s:s}", "error", "upstream not allowed (--proxy-allow)"));
    else if (rc)
        rc = svc_json(r, 400, json_pack("{s:s+}", "error", "bad URL: ", u->error));
    else
        rc = 1;
    free(u);
    if (rc != 1)
        return rc;
    weft_http_request req = { .url = url, .timeout = 5 * WEFT_SEC, .headers = &hop,
                              .nheaders = 1 };
    weft_http_response up;
    rc = weft_http_do(proxy_client, &req, &up);
    if (rc == -EINVAL) {
        rc = svc_json(r, 400, json_pack("{s:s}", "error", up.error));
    } else if (weft_is_timeout(rc)) {
        rc = svc_json(r, 504, json_pack("{s:s}", "error", weft_strerror(rc)));
    } else if (rc) {
        rc = svc_json(r, 502, json_pack("{s:s}", "error", weft_strerror(rc)));
    } else if (up.status < 200) {         /* 101 would turn our client's connection into a tunnel */
        rc = svc_json(r, 502, json_pack("{s:s, s:i}", "error", "upstream answered 1xx",
                                           "status", up.status));
    } else {
        weft_http_res_status(r, up.status);
        const char *ct = weft_http_header_get(&up, "Content-Type");
        if (ct)
            weft_http_res_header(r, "Content-Type", ct);
        rc = weft_http_res_body(r, up.body, up.body_len);
    }
    weft_http_response_free(&up);
    return rc;
}

static int plaintext(weft_http_req *q, weft_http_res *r, void *ctx)
{
    (void)q;
    (void)ctx;
    weft_http_res_header(r, "Content-Type", "text/plain");
    return weft_http_res_body(r, "Hello, World!", 13);
}

static int json(weft_http_req *q, weft_http_res *r, void *ctx)
{
    (void)q;
    (void)ctx;
    json_t *j = json_pack("{s:s}", "message", "Hello, World!");
    int rc = weft_http_res_json(r, j);
    json_decref(j);
    return rc;
}

static int healthz(weft_http_req *q, weft_http_res *r, void *ctx)
{
    (void)q;
    (void)ctx;
    weft_http_res_header(r, "Content-Type", "text/plain");
    return weft_http_res_body(r, "ok\n", 3);
}

/* Per loop, once its HTTP drained: the workers' running jobs finish
 * within the grace, then the client and the pools close. */
static void loop_stop(void *arg)
{
    (void)arg;
    svc_events_loop_stop();
#if WEFT_HAVE_REDIS
    svc_cache_loop_stop();
#endif
    if (proxy_client)
        weft_http_client_free(proxy_client, WEFT_SEC);
    if (db_pool)
        weft_pool_close(db_pool, WEFT_SEC);
    proxy_client = NULL;
    db_pool = NULL;
#if WEFT_HAVE_PG
    svc_pg_loop_stop();
#endif
}

static void banner(const struct service *sv)
{
    const char *h = sv->host;
    int p = sv->port;
    char data[512], queue[512];
    if (!sv->pg_url || weft_url_redact(sv->pg_url, data, sizeof data) < 0)
        snprintf(data, sizeof data, "%s", sv->db_path);
    if (weft_url_redact(sv->queue_url, queue, sizeof queue) < 0)
        snprintf(queue, sizeof queue, "%s", sv->queue_url);
    printf("weft serve: listening on http://%s:%d/ with %d loop%s (data %s, queue %s); try\n"
           "  curl http://%s:%d/plaintext\n  curl http://%s:%d/json\n"
           "  curl http://%s:%d/users/42\n"
           "  curl -H 'Content-Type: application/json' -d '{\"type\":\"signup\",\"user_id\":42}'"
           " http://%s:%d/events\n  curl http://%s:%d/events/1\n",
           h, p, weft_loop_count(), weft_loop_count() > 1 ? "s" : "", data, queue, h, p, h, p,
           h, p, h, p, h, p);
    if (sv->pg_url)
        printf("  curl http://%s:%d/db\n  curl 'http://%s:%d/queries?queries=20'\n"
               "  curl 'http://%s:%d/updates?queries=20'\n  curl http://%s:%d/fortunes\n",
               h, p, h, p, h, p, h, p);
    printf("  curl 'http://%s:%d/proxy?url=http://example.com/' (with --proxy-allow example.com)\n"
           "  curl http://%s:%d/healthz\n  curl http://%s:%d/metrics\n", h, p, h, p, h, p);
    fflush(stdout);
}

/* Per loop, before it serves (weft_http_server_run_with's hook): the
 * loop's data pool, the queue's handle and its workers, the client. */
static int loop_start(void *arg)
{
    struct service *sv = arg;
    int rc = 0;
#if WEFT_HAVE_PG
    if (sv->pg_url)
        rc = svc_pg_loop_start(sv);
#endif
    if (!rc && !sv->pg_url) {
        weft_pool_config dbc = { .name = "sqlite", .min_size = 1, .max_size = 16,
                                 .acquire_timeout = 2 * WEFT_SEC };
        static const weft_pool_ops db_ops = { .create = db_create, .destroy = db_destroy };
        if (!(db_pool = weft_pool_new(&dbc, &db_ops, (void *)sv->db_path)))
            rc = -ENOMEM;
    }
    /* an answer relayed is held twice (decoded, then as ours): at most
     * 1 MiB, so a gzip bomb behind /proxy costs what an upload costs */
    if (!rc && !(proxy_client = weft_http_client_new(&(weft_http_client_opts){
                     .max_body = 1 << 20 })))
        rc = -ENOMEM;
#if WEFT_HAVE_REDIS
    if (!rc)
        rc = svc_cache_loop_start(sv);
#endif
    if (!rc)
        rc = svc_events_loop_start(sv);
    if (rc) {
        loop_stop(sv);
        return rc;
    }
    if (weft_loop_index() == 0)
        banner(sv);
    return 0;
}

/* a number from lo to hi, fractions allowed when scale > 1 (seconds to
 * weft_time): 0 and *out, or -EINVAL */
static int number(const char *s, double lo, double hi, double scale, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || v != v || v < lo || v > hi || (scale == 1 && v != (long)v))
        return -EINVAL;
    *out = v * scale;
    return 0;
}

int weft_cmd_serve(int argc, char **argv)
{
    static struct service sv;
    sv = (struct service){ .host = "127.0.0.1", .port = 8080, .db_path = "weft-example.db",
                           .workers = 64, .attempts = 5, .timeout = 10 * WEFT_SEC };
    the_service = &sv;
    const char *env_pg = getenv("WEFT_PG_URL"), *env_queue = getenv("WEFT_QUEUE_URL");
    const char *env_redis = getenv("WEFT_REDIS_URL");
    sv.pg_url = env_pg && *env_pg ? env_pg : NULL;
    sv.queue_url = env_queue && *env_queue ? env_queue : NULL;
    sv.redis_url = env_redis && *env_redis ? env_redis : NULL;
    static const struct option longopts[] = {
        { "host", required_argument, NULL, 'H' },
        { "port", required_argument, NULL, 'p' },
        { "threads", required_argument, NULL, 't' },
        { "db", required_argument, NULL, 'd' },
        { "proxy-allow", required_argument, NULL, 'a' },
        { "pg", required_argument, NULL, 'g' },
        { "queue", required_argument, NULL, 'q' },
        { "redis", required_argument, NULL, 'r' },
        { "workers", required_argument, NULL, 'w' },
        { "attempts", required_argument, NULL, 'n' },
        { "timeout", required_argument, NULL, 'T' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c;
    char *end;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'H': {
            unsigned char a[16];
            sv.host = strcmp(optarg, "localhost") == 0 ? "127.0.0.1" : optarg;
            if (*sv.host && inet_pton(AF_INET, sv.host, a) != 1 &&
                inet_pton(AF_INET6, sv.host, a) != 1) {
                fprintf(stderr, "weft serve: --host needs an IP address or localhost, not '%s'\n%s",
                        optarg, usage_text);
                return 2;
            }
            break;
        }
        case 'p':
            sv.port = (int)strtol(optarg, &end, 10);
            if (*end || sv.port < 1 || sv.port > 65535) {
                fprintf(stderr, "weft serve: --port needs a number from 1 to 65535\n%s", usage_text);
                return 2;
            }
            break;
        case 't':
            sv.threads = (int)strtol(optarg, &end, 10);
            if (*end || sv.threads < 1 || sv.threads > 1024) {
                fprintf(stderr, "weft serve: --threads needs a number from 1 to 1024\n%s", usage_text);
                return 2;
            }
            break;
        case 'd':
            sv.db_path = optarg;
            break;
        case 'g':
            sv.pg_url = *optarg ? optarg : NULL;   /* "" for none, over the environment */
            break;
        case 'q':
            sv.queue_url = *optarg ? optarg : NULL;
            break;
        case 'r':
            sv.redis_url = *optarg ? optarg : NULL;
            break;
        case 'w':
        case 'n':
        case 'T': {
            double v;
            const char *what = c == 'w' ? "--workers needs a number from 1 to 10000"
                             : c == 'n' ? "--attempts needs a number from 1 to 100"
                                        : "--timeout needs seconds from 0.001 to 3600";
            if (c == 'w' ? number(optarg, 1, 10000, 1, &v)
                : c == 'n' ? number(optarg, 1, 100, 1, &v)
                           : number(optarg, 0.001, 3600, (double)WEFT_SEC, &v)) {
                fprintf(stderr, "weft serve: %s\n%s", what, usage_text);
                return 2;
            }
            if (c == 'w')
                sv.workers = (int)v;
            else if (c == 'n')
                sv.attempts = (int)v;
            else
                sv.timeout = (weft_time)v;
            break;
        }
        case 'a':
            if (allow_list(&sv, optarg)) {
                fprintf(stderr, "weft serve: --proxy-allow needs HOST[:PORT],... (at most %d), "
                                "not '%s'\n%s", MAX_ALLOW, optarg, usage_text);
                return 2;
            }
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        default:
            fprintf(stderr, "weft serve: unknown or incomplete option\n%s", usage_text);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "weft serve: unexpected argument '%s'\n%s", argv[optind], usage_text);
        return 2;
    }
    snprintf(via_self, sizeof via_self, "1.1 weft-serve-%ld", (long)getpid());
    /* our loops share the port (SO_REUSEPORT), never with another process:
     * said before the database is made */
    int prc = weft_tcp_port_check(sv.host, sv.port);
    if (prc) {
        fprintf(stderr, "weft serve: cannot listen on %s:%d: %s\n", sv.host, sv.port,
                prc == -EADDRINUSE ? "the port is in use by another socket" : weft_strerror(prc));
        return 1;
    }
    svc_events_metrics();
#if !WEFT_HAVE_REDIS
    if (sv.redis_url) {
        fprintf(stderr, "weft serve: --redis: this weft was built without Redis\n");
        return 1;
    }
#else
    if (sv.redis_url)
        svc_cache_metrics();
#endif
#if !WEFT_HAVE_PG
    if (sv.pg_url) {
        fprintf(stderr, "weft serve: --pg: this weft was built without PostgreSQL\n");
        return 1;
    }
#else
    if (sv.pg_url && svc_pg_migrate(sv.pg_url))
        return 1;
#endif
    if (!sv.pg_url && prepare_db(sv.db_path))
        return 1;
    if (!sv.queue_url) {                  /* beside the database: x.db -> x-queue.db */
        size_t n = strlen(sv.db_path);
        int keep = n > 3 && strcmp(sv.db_path + n - 3, ".db") == 0 ? (int)n - 3 : (int)n;
        if (snprintf(sv.queue_default, sizeof sv.queue_default, "sqlite:%.*s-queue.db", keep,
                     sv.db_path) >= (int)sizeof sv.queue_default) {
            fprintf(stderr, "weft serve: --db path too long\n");
            return 2;
        }
        sv.queue_url = sv.queue_default;
    }
    /* the server's own deadline is a backstop behind each handler's (504) */
    weft_http_server_opts so = { .handler_timeout = sv.timeout + WEFT_SEC,
                                 .max_body = 64 * 1024 };
    if (!(sv.server = weft_http_server_new(&so)))
        return 1;
    int rrc = svc_route(&sv, "GET", "/users/{id}", users, NULL);
    rrc = rrc ? rrc : svc_route(&sv, "PUT", "/users/{id}", put_user, NULL);
    rrc = rrc ? rrc : svc_events_routes(&sv);
#if WEFT_HAVE_PG
    rrc = rrc ? rrc : sv.pg_url ? svc_pg_routes(&sv) : 0;
#endif
    rrc = rrc ? rrc : svc_route(&sv, "GET", "/proxy", proxy, &sv);
    rrc = rrc ? rrc : svc_route(&sv, "GET", "/metrics", weft_http_metrics_handler, NULL);
    if (rrc) {
        fprintf(stderr, "weft serve: %s\n", weft_strerror(rrc));
        return 1;
    }
    weft_http_server_route(sv.server, "GET", "/plaintext", plaintext, NULL);
    weft_http_server_route(sv.server, "GET", "/json", json, NULL);
    weft_http_server_route(sv.server, "GET", "/healthz", healthz, NULL);
    weft_http_server_use_metrics(sv.server);
    weft_http_run_hooks hooks = { loop_start, loop_stop, &sv };
    int rc = weft_http_server_run_with(sv.server, sv.host, sv.port, sv.threads, &hooks);
    weft_http_server_free(sv.server);
    if (rc)
        fprintf(stderr, "weft serve: %s\n", weft_strerror(rc));
    return rc ? 1 : 0;
}
