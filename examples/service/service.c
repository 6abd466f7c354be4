/*
 * weft serve: the example service (`make run`), built into the weft CLI.
 * One loop per thread, each with its own SO_REUSEPORT
 * listener on the same port; SIGTERM or SIGINT shuts every loop down
 * gracefully.
 *
 *   GET /plaintext   "Hello, World!" (the TechEmpower plaintext test)
 *   GET /json        {"message":"Hello, World!"}
 *   GET /healthz     ok
 *   GET /metrics     Prometheus text: requests by route and status, and
 *                    everything weft registers (pools, loop stalls)
 *   GET /users/{id}  a user from the embedded SQLite database (made and
 *                    seeded with users 1-1000 on first start), queried on
 *                    the blocking pool through a weft_pool of connections
 *                    ("sqlite" in /metrics); 404 JSON when absent, 400 for
 *                    an id that is not a positive decimal integer
 *   POST /events     {"type": string, "user_id": int > 0, "data": object?}
 *                    -> 202, processed by a supervised background task that
 *                    checks the user exists; a failure (no such user) is
 *                    logged by the supervisor's error handler and counted
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
#include <unistd.h>

#include "weft.h"
#include "weft/http_json.h"

static const char usage_text[] =
    "usage: weft serve [--host HOST] [--port PORT] [--threads N] [--db PATH]\n"
    "                  [--proxy-allow HOST[:PORT],...] [--events-max N]\n"
    "  --host HOST    IP address to listen on, or localhost (default 127.0.0.1;\n"
    "                 \"\" for every address)\n"
    "  --port PORT    default 8080\n"
    "  --threads N    loops, one per thread (default: one per core)\n"
    "  --db PATH      the SQLite database (default ./weft-example.db, made on first start)\n"
    "  --proxy-allow HOST[:PORT],...\n"
    "                 the upstreams /proxy may fetch from (a host without a port: any\n"
    "                 port; IPv6 in brackets; repeatable; \"\" for none); others get\n"
    "                 403. Default: none (allowing this service itself would let\n"
    "                 /proxy reach what a front end denies, /metrics say)\n"
    "  --events-max N events accepted and not yet processed, at most (default 1024,\n"
    "                 split over the loops); past it POST /events is 503 + Retry-After\n"
    "                 rather than accepting what it would drop\n";

#define MAX_ALLOW 64

/* an upstream /proxy may fetch from: host as weft_url has it, port 0 = any */
struct upstream { char host[256]; int port; };

struct service {
    const char *host, *db_path;
    int port, threads;
    unsigned events_max;                  /* accepted, not yet processed */
    weft_http_server *server;
    struct upstream allow[MAX_ALLOW];     /* for /proxy */
    int nallow;
};

/* per loop: the shared client for /proxy, the supervisor for events, and
 * the SQLite connections (one per query in flight, used on the blocking
 * pool) */
static __thread weft_http_client *proxy_client;
static __thread weft_group *events;
static __thread unsigned events_pending, events_bound;   /* this loop's */
static __thread weft_pool *db_pool;
static weft_metric *events_done, *events_failed, *events_accepted;

/* ---- /users/{id} on SQLite ----------------------------------------------------- */

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, name TEXT NOT NULL,"
    " email TEXT NOT NULL);";

/* Creates the schema and, on first start, the seed: once, before the loops. */
static int prepare_db(const char *path)
{
    sqlite3 *db;
    int ok = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) ==
             SQLITE_OK;
    char *err = NULL;
    if (ok && sqlite3_exec(db, schema, NULL, NULL, &err) != SQLITE_OK)
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

struct db_conn { sqlite3 *db; sqlite3_stmt *get_user; };

static void db_destroy(void *ctx, void *res)
{
    (void)ctx;
    struct db_conn *c = res;
    sqlite3_finalize(c->get_user);
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
                           &c->get_user, NULL)) {
        weft_log(WEFT_LOG_ERROR, "serve: %s: %s", o->path, sqlite3_errmsg(c->db));
        db_destroy(NULL, c);
        return -EIO;
    }
    sqlite3_busy_timeout(c->db, 5000);
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

struct user_query { struct db_conn *c; long long id; bool found; char name[128], email[128]; };

static int query_user(void *arg)          /* on the blocking pool */
{
    struct user_query *u = arg;
    sqlite3_stmt *st = u->c->get_user;
    sqlite3_bind_int64(st, 1, u->id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        u->found = true;
        snprintf(u->name, sizeof u->name, "%s", (const char *)sqlite3_column_text(st, 0));
        snprintf(u->email, sizeof u->email, "%s", (const char *)sqlite3_column_text(st, 1));
    }
    sqlite3_reset(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -EIO;
}

/* Looks a user up on a pooled connection: 0 (u->found says), or an error. */
static int find_user(struct user_query *u)
{
    weft_pooled *h;
    int rc = weft_pool_acquire(db_pool, &h);
    if (rc)
        return rc;
    u->c = weft_pooled_get(h);
    rc = weft_run_blocking(query_user, u);   /* a cancel waits for a running query */
    if (rc == -EIO)
        weft_pool_release_broken(db_pool, h);
    else
        weft_pool_release(db_pool, h);
    return rc;
}

static int json_status(weft_http_res *r, int status, json_t *j)
{
    weft_http_res_status(r, status);
    int rc = weft_http_res_json(r, j);
    json_decref(j);
    return rc;
}

/* a positive decimal integer, digits only, or 0 */
static long long parse_id(const char *s)
{
    if (!s || !*s || s[strspn(s, "0123456789")])
        return 0;
    errno = 0;
    long long v = strtoll(s, NULL, 10);
    return errno ? 0 : v;
}

static int users(weft_http_req *q, weft_http_res *r, void *ctx)
{
    (void)ctx;
    long long v = parse_id(weft_http_req_param(q, "id"));
    if (v < 1)
        return json_status(r, 400, json_pack("{s:s}", "error", "id must be a positive integer"));
    struct user_query u = { .id = v };
    int rc = find_user(&u);
    if (rc == -WEFT_EPOOL_TIMEOUT)
        return json_status(r, 503, json_pack("{s:s}", "error", "database busy"));
    if (rc)
        return rc;
    if (!u.found)
        return json_status(r, 404, json_pack("{s:s, s:I}", "error", "no such user", "id",
                                             (json_int_t)v));
    return json_status(r, 200, json_pack("{s:I, s:s, s:s}", "id", (json_int_t)v, "name",
                                         u.name, "email", u.email));
}

/* ---- POST /events ----------------------------------------------------------------- */

/* The work of a real consumer goes here: the event's user must exist.
 * Supervised: a failure reaches on_event_error and the log. */
/* What a pending event holds: what its processing reads, not the whole
 * parsed body (a thousand pending 1 MiB events would hold a gigabyte). */
struct event {
    long long user_id;
    char type[64];                        /* for the log: cut to fit */
};

static int process_event(void *arg)
{
    struct event *ev = arg;
    struct user_query u = { .id = ev->user_id };
    weft_scope sc;
    weft_scope_enter(&sc, 10 * WEFT_SEC);   /* background work has no request deadline */
    int rc = find_user(&u);
    weft_scope_exit(&sc);
    if (!rc && !u.found) {
        weft_log(WEFT_LOG_WARN, "serve: event '%s': no such user %lld", ev->type, u.id);
        rc = -ENOENT;
    }
    free(ev);
    events_pending--;
    if (!rc)
        weft_metric_add(events_done, 1);
    return rc;
}

static void on_event_error(const char *task, int err, void *ctx)
{
    (void)ctx;
    weft_metric_add(events_failed, 1);
    weft_log(WEFT_LOG_ERROR, "serve: event task '%s' failed: %s", task, weft_strerror(err));
}

static int post_event(weft_http_req *q, weft_http_res *r, void *ctx)
{
    (void)ctx;
    const char *ct = weft_http_req_header(q, "Content-Type");
    if (!ct || strncasecmp(ct, "application/json", 16) != 0)
        return json_status(r, 415, json_pack("{s:s}", "error", "Content-Type must be application/json"));
    size_t len;
    const char *body = weft_http_req_body(q, &len);
    json_error_t jerr;
    json_t *ev = body ? json_loadb(body, len, 0, &jerr) : NULL;
    const char *why = NULL;
    json_t *type = ev ? json_object_get(ev, "type") : NULL;
    json_t *user = ev ? json_object_get(ev, "user_id") : NULL;
    json_t *data = ev ? json_object_get(ev, "data") : NULL;
    if (!ev || !json_is_object(ev))
        why = "body is not a JSON object";
    else if (!json_is_string(type) || !json_string_length(type))
        why = "type must be a non-empty string";
    else if (!json_is_integer(user) || json_integer_value(user) < 1)
        why = "user_id must be a positive integer";
    else if (data && !json_is_object(data))
        why = "data must be an object";
    struct event *e = why ? NULL : malloc(sizeof *e);
    if (e) {
        e->user_id = json_integer_value(user);
        /* for the log: no control characters from a client in it */
        snprintf(e->type, sizeof e->type, "%s", json_string_value(type));
        for (char *t = e->type; *t; t++)
            if ((unsigned char)*t < 0x20 || *t == 0x7f)
                *t = '?';
    }
    json_decref(ev);
    if (why)
        return json_status(r, 400, json_pack("{s:s}", "error", why));
    /* accept only what can be held: past the bound, say so now instead of
     * taking events that would time out in the database pool and be lost */
    int rc = !e ? -ENOMEM
           : events_pending < events_bound ? weft_spawn(events, process_event, e, "event")
                                           : -EAGAIN;
    if (rc) {
        free(e);
        weft_http_res_header(r, "Retry-After", "1");
        return json_status(r, 503, json_pack("{s:s}", "error", "not accepting events"));
    }
    events_pending++;
    weft_metric_add(events_accepted, 1);
    return json_status(r, 202, json_pack("{s:s}", "status", "accepted"));
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
        return json_status(r, 400, json_pack("{s:s}", "error", "missing url parameter"));
    char via[512];
    weft_http_header hop = { "Via", via_next(q, via, sizeof via) };
    if (!hop.value)
        return json_status(r, 508, json_pack("{s:s}", "error", "proxy loop (Via)"));
    weft_url *u = malloc(sizeof *u);
    if (!u)
        return -ENOMEM;
    int rc = weft_url_parse(u, url);
    if (rc == 0 && !allowed(sv, u))
        rc = json_status(r, 403, json_pack("{s:s}", "error", "upstream not allowed (--proxy-allow)"));
    else if (rc)
        rc = json_status(r, 400, json_pack("{s:s+}", "error", "bad URL: ", u->error));
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
        rc = json_status(r, 400, json_pack("{s:s}", "error", up.error));
    } else if (weft_is_timeout(rc)) {
        rc = json_status(r, 504, json_pack("{s:s}", "error", weft_strerror(rc)));
    } else if (rc) {
        rc = json_status(r, 502, json_pack("{s:s}", "error", weft_strerror(rc)));
    } else if (up.status < 200) {         /* 101 would turn our client's connection into a tunnel */
        rc = json_status(r, 502, json_pack("{s:s, s:i}", "error", "upstream answered 1xx",
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

/* Per loop, once its HTTP drained: accepted events finish, then the
 * client and the pool close. */
static void loop_stop(void *arg)
{
    (void)arg;
    if (events)
        weft_supervisor_close(events, 5 * WEFT_SEC);
    if (proxy_client)
        weft_http_client_free(proxy_client, WEFT_SEC);
    if (db_pool)
        weft_pool_close(db_pool, WEFT_SEC);
    events = NULL;
    proxy_client = NULL;
    db_pool = NULL;
}

/* Per loop, before it serves (weft_http_server_run_with's hook): the
 * loop's pools, client and event supervisor. */
static int loop_start(void *arg)
{
    struct service *sv = arg;
    weft_pool_config dbc = { .name = "sqlite", .min_size = 1, .max_size = 16,
                             .acquire_timeout = 2 * WEFT_SEC };
    static const weft_pool_ops db_ops = { .create = db_create, .destroy = db_destroy };
    db_pool = weft_pool_new(&dbc, &db_ops, (void *)sv->db_path);
    events = weft_supervisor_new(on_event_error, NULL);
    unsigned loops = (unsigned)weft_loop_count(), me = (unsigned)weft_loop_index();
    events_bound = sv->events_max / loops + (me < sv->events_max % loops);   /* they add up */
    if (!events_bound)
        events_bound = 1;
    /* an answer relayed is held twice (decoded, then as ours): at most
     * 1 MiB, so a gzip bomb behind /proxy costs what an upload costs */
    proxy_client = weft_http_client_new(&(weft_http_client_opts){ .max_body = 1 << 20 });
    if (!db_pool || !events || !proxy_client) {
        loop_stop(sv);
        return -ENOMEM;
    }
    if (weft_loop_index() == 0) {
        const char *h = sv->host;
        int p = sv->port;
        printf("weft serve: listening on http://%s:%d/ with %d loop%s (database %s); try\n"
               "  curl http://%s:%d/plaintext\n  curl http://%s:%d/json\n"
               "  curl http://%s:%d/users/42\n"
               "  curl -H 'Content-Type: application/json' -d '{\"type\":\"signup\",\"user_id\":42}'"
               " http://%s:%d/events\n"
               "  curl 'http://%s:%d/proxy?url=http://example.com/' (with --proxy-allow example.com)\n"
               "  curl http://%s:%d/healthz\n  curl http://%s:%d/metrics\n",
               h, p, weft_loop_count(), weft_loop_count() > 1 ? "s" : "", sv->db_path, h, p, h, p,
               h, p, h, p, h, p, h, p, h, p);
        fflush(stdout);
    }
    return 0;
}

int weft_cmd_serve(int argc, char **argv)
{
    struct service sv = { .host = "127.0.0.1", .port = 8080, .threads = 0, .events_max = 1024,
                          .db_path = "weft-example.db" };
    static const struct option longopts[] = {
        { "host", required_argument, NULL, 'H' },
        { "port", required_argument, NULL, 'p' },
        { "threads", required_argument, NULL, 't' },
        { "db", required_argument, NULL, 'd' },
        { "proxy-allow", required_argument, NULL, 'a' },
        { "events-max", required_argument, NULL, 'e' },
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
        case 'e': {
            long v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > 1000000) {
                fprintf(stderr, "weft serve: --events-max needs a number from 1 to 1000000\n%s",
                        usage_text);
                return 2;
            }
            sv.events_max = (unsigned)v;
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
    if (prepare_db(sv.db_path))
        return 1;
    events_done = weft_counter("weft_example_events_total{result=\"done\"}", "Events processed");
    events_failed = weft_counter("weft_example_events_total{result=\"failed\"}", NULL);
    events_accepted = weft_counter("weft_example_events_accepted_total",
                                   "Events answered 202 (each ends done or failed)");
    if (!(sv.server = weft_http_server_new(NULL)))
        return 1;
    weft_http_server_route(sv.server, "GET", "/users/{id}", users, &sv);
    weft_http_server_route(sv.server, "POST", "/events", post_event, NULL);
    weft_http_server_route(sv.server, "GET", "/proxy", proxy, &sv);
    weft_http_server_route(sv.server, "GET", "/plaintext", plaintext, NULL);
    weft_http_server_route(sv.server, "GET", "/json", json, NULL);
    weft_http_server_route(sv.server, "GET", "/healthz", healthz, NULL);
    weft_http_server_route(sv.server, "GET", "/metrics", weft_http_metrics_handler, NULL);
    weft_http_server_use_metrics(sv.server);
    weft_http_run_hooks hooks = { loop_start, loop_stop, &sv };
    int rc = weft_http_server_run_with(sv.server, sv.host, sv.port, sv.threads, &hooks);
    weft_http_server_free(sv.server);
    if (rc)
        fprintf(stderr, "weft serve: %s\n", weft_strerror(rc));
    return rc ? 1 : 0;
}
