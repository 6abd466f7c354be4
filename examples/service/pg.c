/*
 * weft serve on PostgreSQL (--pg URL): the schema applied at start by
 * migrations compiled into the binary, a weft_pg pool per loop, /users/{id}
 * read with the data mapper, and TechEmpower's database tests (/db,
 * /queries, /updates, /fortunes) as its rules say.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service.h"
#include "../../src/pg/own.h"    /* weft__pg_migrate_embedded: the CLI links weft statically */

/* ---- the schema ---------------------------------------------------------- */

/* Applied once each, in order, recorded in weft_serve_migrations (not the
 * application's schema_migrations, which `weft migrate` owns). Never edit
 * one once released: a change is a new version. TechEmpower's tables are
 * World(id, randomNumber) and Fortune(id, message), created unquoted as
 * its own scripts do. */
static const struct weft__pg_migration_src migrations[] = {
    { 1, "users",
      "CREATE TABLE users (id bigint PRIMARY KEY, name text NOT NULL, email text NOT NULL);\n"
      "INSERT INTO users (id, name, email)\n"
      "  SELECT i, 'User ' || i, 'user' || i || '@example.com' FROM generate_series(1, 10000) i;\n"
      /* one row per job: a job run twice (at least once delivery) records once
       * (keyed by event id since version 3) */
      "CREATE TABLE events (job_id bigint PRIMARY KEY, type text NOT NULL,\n"
      "  user_id bigint NOT NULL, data jsonb, created_at timestamptz NOT NULL DEFAULT now());\n" },
    { 2, "techempower",
      "CREATE TABLE World (id integer NOT NULL, randomNumber integer NOT NULL DEFAULT 0,\n"
      "  PRIMARY KEY (id));\n"
      "INSERT INTO World (id, randomNumber)\n"
      "  SELECT x, least(floor(random() * 10000 + 1), 10000) FROM generate_series(1, 10000) x;\n"
      "CREATE TABLE Fortune (id integer NOT NULL, message varchar(2048) NOT NULL,\n"
      "  PRIMARY KEY (id));\n"
      "INSERT INTO Fortune (id, message) VALUES\n"
      "  (1, 'fortune: No such file or directory'),\n"
      "  (2, 'A computer scientist is someone who fixes things that aren''t broken.'),\n"
      "  (3, 'After enough decimal places, nobody gives a damn.'),\n"
      "  (4, 'A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, 1'),\n"
      "  (5, 'A computer program does what you tell it to do, not what you want it to do.'),\n"
      "  (6, 'Emacs is a nice operating system, but I prefer UNIX. — Tom Christaensen'),\n"
      "  (7, 'Any program that runs right is obsolete.'),\n"
      "  (8, 'A list is only as strong as its weakest link. — Donald Knuth'),\n"
      "  (9, 'Feature: A bug with seniority.'),\n"
      "  (10, 'Computers make very fast, very accurate mistakes.'),\n"
      "  (11, '<script>alert(\"This should not be displayed in a browser alert box.\");</script>'),\n"
      "  (12, 'フレームワークのベンチマーク');\n" },
    /* a job id is unique only within its queue (instances sharing this
     * database may each have their own): an event is keyed by the id POST
     * /events gave it; rows from before keep theirs as "job:N" */
    { 3, "event_ids",
      "ALTER TABLE events ADD COLUMN event_id text;\n"
      "UPDATE events SET event_id = 'job:' || job_id;\n"
      "ALTER TABLE events ALTER COLUMN event_id SET NOT NULL;\n"
      "ALTER TABLE events DROP CONSTRAINT events_pkey;\n"
      "ALTER TABLE events ADD PRIMARY KEY (event_id);\n" },
};
#define MIGRATE_LOCK 2004116853           /* weft migrate's is 2004116852 */

static int migrate_main(void *arg)
{
    const char *url = arg;
    weft_pg *db = weft_pg_new(url, &(weft_pg_opts){ .name = "pg_migrate", .min_size = 1,
                                                     .max_size = 1 });
    if (!db)
        return -errno;
    weft_pg_result r = { 0 };
    weft_scope sc;
    weft_scope_enter(&sc, 60 * WEFT_SEC);
    int rc = weft__pg_migrate_embedded(db, "weft_serve_migrations", MIGRATE_LOCK, NULL,
                                       migrations, (int)(sizeof migrations / sizeof *migrations),
                                       &r);
    weft_scope_exit(&sc);
    if (rc < 0)
        fprintf(stderr, "weft serve: migrations failed: %s%s%s\n", weft_strerror(rc),
                *r.error ? ": " : "", r.error);
    else if (rc > 0)
        printf("weft serve: %d migration%s applied\n", rc, rc > 1 ? "s" : "");
    weft_pg_result_free(&r);
    weft_pg_close(db, WEFT_SEC);
    return rc < 0 ? rc : 0;
}

int svc_pg_migrate(const char *url)
{
    return weft_main(migrate_main, (void *)url) ? 1 : 0;
}

/* ---- per loop -------------------------------------------------------------- */

static __thread weft_pg *pg;
static __thread uint64_t rng;             /* xorshift64 */

int svc_pg_loop_start(const struct service *sv)
{
    weft_pg_opts o = { .name = "pg", .acquire_timeout = 2 * WEFT_SEC,
                       .connect_timeout = 5 * WEFT_SEC };
    if (!(pg = weft_pg_new(sv->pg_url, &o)))
        return -errno;
    rng = (uint64_t)weft_now() * 2654435761u + (uint64_t)weft_loop_index() + 1;
    return 0;
}

void svc_pg_loop_stop(void)
{
    if (pg)
        weft_pg_close(pg, WEFT_SEC);
    pg = NULL;
}

/* 1..10000, as TechEmpower's ids and random numbers */
static int random_10k(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return 1 + (int)(rng % 10000);
}

/* The server's own "go away" (shutting down, starting up, too many
 * connections, a lost connection) is the database being unavailable, as a
 * refused connection is: 503 for the client, not 500. So is -WEFT_EPG
 * without the server's error fields: a connection the server refused
 * (weft_pg's connect errors). */
static int pg_code(int rc, const weft_pg_result *r)
{
    if (rc != -WEFT_EPG)
        return rc;
    const weft_pg_error_info *e = weft_pg_error(r);
    const char *st = e && e->sqlstate ? e->sqlstate : "";
    if (strcmp(st, "57014") == 0)         /* statement_timeout: the deadline we sent */
        return -ETIMEDOUT;
    if (!*st || strncmp(st, "57", 2) == 0 || strncmp(st, "08", 2) == 0 ||
        strncmp(st, "53", 2) == 0)
        return -ECONNRESET;
    weft_log(WEFT_LOG_ERROR, "serve: PostgreSQL: %s", r->error);
    return rc;
}

/* ---- /users/{id} with the data mapper ---- */

static const weft_pg_field user_fields[] = {
    WEFT_PG_FIELD(svc_user, id, "id", WEFT_PG_T_INT),
    WEFT_PG_FIELD(svc_user, name, "name", WEFT_PG_T_TEXT),
    WEFT_PG_FIELD(svc_user, email, "email", WEFT_PG_T_TEXT),
};
static const weft_pg_map user_map = WEFT_PG_MAP("users", "id", user_fields);

int svc_pg_user_find(int64_t id, svc_user *u, bool *found)
{
    weft_pg_result r = { 0 };
    int rc = weft_pg_query(pg, &r, "SELECT id, name, email FROM users WHERE id = $1", 1,
                           (weft_pg_val[]){ WEFT_PG_INT(id) });
    *found = !rc && r.nrows == 1;
    if (*found)
        rc = weft_pg_row_to(&r, 0, &user_map, u);
    rc = pg_code(rc, &r);
    weft_pg_result_free(&r);
    return rc;
}

/* the data mapper's UPDATE users SET name, email WHERE id */
int svc_pg_user_update(const svc_user *u, bool *found)
{
    weft_pg_result r = { 0 };
    int rc = weft_pg_update(pg, &user_map, u, &r);
    *found = !rc && r.affected == 1;
    rc = pg_code(rc, &r);
    weft_pg_result_free(&r);
    return rc;
}

/* one round trip: the user looked up and the event recorded if it exists */
int svc_pg_event_record(const char *event_id, int64_t job_id, const char *type, int64_t user_id,
                        const char *data, bool *found)
{
    weft_pg_result r = { 0 };
    weft_pg_val p[] = { WEFT_PG_INT(job_id), WEFT_PG_TEXT(type), WEFT_PG_INT(user_id),
                        data ? WEFT_PG_TEXT(data) : WEFT_PG_NULL, WEFT_PG_TEXT(event_id) };
    int rc = weft_pg_query(pg, &r,
                           "WITH u AS (SELECT id FROM users WHERE id = $3),"
                           " ins AS (INSERT INTO events (event_id, job_id, type, user_id, data)"
                           "  SELECT $5, $1, $2, u.id, $4::jsonb FROM u"
                           "  ON CONFLICT (event_id) DO NOTHING)"
                           " SELECT count(*) FROM u",
                           5, p);
    int64_t n = 0;
    if (!rc)
        rc = weft_pg_get_int(&r, 0, 0, &n);
    *found = n > 0;
    rc = pg_code(rc, &r);
    weft_pg_result_free(&r);
    return rc;
}

/* ---- TechEmpower: /db, /queries, /updates -------------------------------- */

struct world { int32_t id, randomnumber; };
static const weft_pg_field world_fields[] = {
    WEFT_PG_FIELD(struct world, id, "id", WEFT_PG_T_INT),
    WEFT_PG_FIELD(struct world, randomnumber, "randomnumber", WEFT_PG_T_INT),
};
static const weft_pg_map world_map = WEFT_PG_MAP("world", "id", world_fields);

static const char select_world[] = "SELECT id, randomnumber FROM world WHERE id = $1";

/* queries=N: 1..500; missing, empty, not an integer or < 1 is 1 */
static int query_count(weft_http_req *q)
{
    const char *s = weft_http_req_query_param(q, "queries");
    if (!s || !*s || s[strspn(s, "0123456789")])
        return 1;
    s += strspn(s, "0");                   /* "0005" is 5 */
    long v = strlen(s) > 4 ? 501 : strtol(s, NULL, 10);
    return v < 1 ? 1 : v > 500 ? 500 : (int)v;
}

/* n random rows, each its own statement, sent together (one round trip) */
static int worlds_read(struct world *w, int n)
{
    weft_pg_stmt *st = calloc((size_t)n, sizeof *st);
    weft_pg_val *p = calloc((size_t)n, sizeof *p);
    weft_pg_result *rs = calloc((size_t)n, sizeof *rs);
    int rc = st && p && rs ? 0 : -ENOMEM;
    for (int i = 0; i < n && !rc; i++) {
        p[i] = WEFT_PG_INT(random_10k());
        st[i] = (weft_pg_stmt){ select_world, 1, &p[i] };
    }
    if (!rc)
        rc = n == 1 ? weft_pg_query(pg, rs, select_world, 1, p) : weft_pg_batch(pg, st, n, rs);
    for (int i = 0; i < n && !rc; i++)
        rc = rs[i].nrows == 1 ? weft_pg_row_to(&rs[i], 0, &world_map, &w[i]) : -ENOENT;
    if (rc == -WEFT_EPG && rs) {          /* the failing statement's, if the server said */
        int i = 0;
        while (i < n - 1 && !weft_pg_error(&rs[i]))
            i++;
        rc = pg_code(rc, &rs[i]);
    }
    for (int i = 0; rs && i < n; i++)
        weft_pg_result_free(&rs[i]);
    free(st);
    free(p);
    free(rs);
    return rc;
}

static int worlds_json(weft_http_res *r, const struct world *w, int n, bool array)
{
    size_t size = (size_t)n * 40 + 4, len = 0;
    char *b = malloc(size);
    if (!b)
        return -ENOMEM;
    if (array)
        b[len++] = '[';
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(b + len, size - len, "%s{\"id\":%d,\"randomNumber\":%d}",
                                i ? "," : "", w[i].id, w[i].randomnumber);
    if (array)
        b[len++] = ']';
    weft_http_res_header(r, "Content-Type", "application/json");
    int rc = weft_http_res_body(r, b, len);
    free(b);
    return rc;
}

static int db(weft_http_req *q, weft_http_res *r, void *ctx)
{
    (void)q;
    (void)ctx;
    struct world w;
    int rc = worlds_read(&w, 1);
    return rc ? svc_data_error(r, rc) : worlds_json(r, &w, 1, false);
}

static int queries(weft_http_req *q, weft_http_res *r, void *ctx)
{
    (void)ctx;
    int n = query_count(q);
    struct world *w = malloc((size_t)n * sizeof *w);
    int rc = w ? worlds_read(w, n) : -ENOMEM;
    rc = rc ? svc_data_error(r, rc) : worlds_json(r, w, n, true);
    free(w);
    return rc;
}

static int by_id(const void *a, const void *b)
{
    const struct world *x = *(struct world *const *)a, *y = *(struct world *const *)b;
    return x->id != y->id ? (x->id > y->id) - (x->id < y->id) : (x > y) - (x < y);
}

/* The new numbers of n rows in one statement (one round trip). A row read
 * twice gets one number (its last), the one stored, so the answer says
 * what the table holds; the ids go sorted, so that concurrent updates
 * take their row locks in one order. */
static int worlds_update(struct world *w, int n)
{
    struct world **o = malloc((size_t)n * sizeof *o);
    size_t size = (size_t)n * 12 + 4;
    char *ids = malloc(size), *nums = malloc(size);
    int rc = o && ids && nums ? 0 : -ENOMEM;
    if (!rc) {
        for (int i = 0; i < n; i++) {
            w[i].randomnumber = random_10k();
            o[i] = &w[i];
        }
        qsort(o, (size_t)n, sizeof *o, by_id);
        size_t li = 1, ln = 1;
        ids[0] = nums[0] = '{';
        for (int i = n - 1; i >= 0; i--) {  /* the last of each id wins */
            if (i < n - 1 && o[i]->id == o[i + 1]->id) {
                o[i]->randomnumber = o[i + 1]->randomnumber;
                continue;
            }
            li += (size_t)snprintf(ids + li, size - li, "%s%d", li > 1 ? "," : "", o[i]->id);
            ln += (size_t)snprintf(nums + ln, size - ln, "%s%d", ln > 1 ? "," : "",
                                   o[i]->randomnumber);
        }
        snprintf(ids + li, size - li, "}");
        snprintf(nums + ln, size - ln, "}");
        weft_pg_result r = { 0 };
        rc = weft_pg_query(pg, &r,
                           "UPDATE world SET randomnumber = v.r"
                           " FROM unnest($1::int[], $2::int[]) AS v(id, r) WHERE world.id = v.id",
                           2, (weft_pg_val[]){ WEFT_PG_TEXT(ids), WEFT_PG_TEXT(nums) });
        rc = pg_code(rc, &r);
        weft_pg_result_free(&r);
    }
    free(o);
    free(ids);
    free(nums);
    return rc;
}

static int updates(weft_http_req *q, weft_http_res *r, void *ctx)
{
    (void)ctx;
    int n = query_count(q);
    struct world *w = malloc((size_t)n * sizeof *w);
    int rc = w ? worlds_read(w, n) : -ENOMEM;
    if (!rc)
        rc = worlds_update(w, n);
    rc = rc ? svc_data_error(r, rc) : worlds_json(r, w, n, true);
    free(w);
    return rc;
}

/* ---- TechEmpower: /fortunes ------------------------------------------------ */

struct fortune { int32_t id; const char *message; };
static const weft_pg_field fortune_fields[] = {
    WEFT_PG_FIELD(struct fortune, id, "id", WEFT_PG_T_INT),
    WEFT_PG_FIELD(struct fortune, message, "message", WEFT_PG_T_STR),
};
static const weft_pg_map fortune_map = WEFT_PG_MAP("fortune", "id", fortune_fields);

static int by_message(const void *a, const void *b)
{
    return strcmp(((const struct fortune *)a)->message, ((const struct fortune *)b)->message);
}

/* appends s HTML-escaped; b has room for 6 bytes per byte of s */
static size_t escape(char *b, const char *s)
{
    size_t n = 0;
    for (; *s; s++) {
        const char *e = *s == '&' ? "&amp;" : *s == '<' ? "&lt;" : *s == '>' ? "&gt;"
                      : *s == '"' ? "&quot;" : *s == '\'' ? "&#39;" : NULL;
        if (e) {
            memcpy(b + n, e, strlen(e));
            n += strlen(e);
        } else {
            b[n++] = *s;
        }
    }
    return n;
}

static int fortunes_html(weft_http_res *r, struct fortune *f, int n)
{
    static const char head[] = "<!DOCTYPE html><html><head><title>Fortunes</title></head><body>"
                               "<table><tr><th>id</th><th>message</th></tr>";
    static const char tail[] = "</table></body></html>";
    size_t size = sizeof head + sizeof tail;
    for (int i = 0; i < n; i++)
        size += 40 + 6 * strlen(f[i].message);
    char *b = malloc(size);
    if (!b)
        return -ENOMEM;
    size_t len = sizeof head - 1;
    memcpy(b, head, len);
    for (int i = 0; i < n; i++) {
        len += (size_t)snprintf(b + len, size - len, "<tr><td>%d</td><td>", f[i].id);
        len += escape(b + len, f[i].message);
        memcpy(b + len, "</td></tr>", 10);
        len += 10;
    }
    memcpy(b + len, tail, sizeof tail - 1);
    len += sizeof tail - 1;
    weft_http_res_header(r, "Content-Type", "text/html; charset=utf-8");
    int rc = weft_http_res_body(r, b, len);
    free(b);
    return rc;
}

static int fortunes(weft_http_req *q, weft_http_res *r, void *ctx)
{
    (void)q;
    (void)ctx;
    weft_pg_result res = { 0 };
    int rc = weft_pg_query(pg, &res, "SELECT id, message FROM fortune", 0, NULL);
    rc = pg_code(rc, &res);
    struct fortune *f = rc ? NULL : malloc((size_t)(res.nrows + 1) * sizeof *f);
    if (!rc && !f)
        rc = -ENOMEM;
    int n = rc ? rc : weft_pg_rows_to(&res, &fortune_map, f, sizeof *f, res.nrows);
    if (n >= 0) {
        f[n++] = (struct fortune){ 0, "Additional fortune added at request time." };
        qsort(f, (size_t)n, sizeof *f, by_message);
        rc = fortunes_html(r, f, n);
    } else {
        rc = svc_data_error(r, n);
    }
    free(f);
    weft_pg_result_free(&res);     /* after the page: the messages point into it */
    return rc;
}

int svc_pg_routes(struct service *sv)
{
    int rc = svc_route(sv, "GET", "/db", db, NULL);
    rc = rc ? rc : svc_route(sv, "GET", "/queries", queries, NULL);
    rc = rc ? rc : svc_route(sv, "GET", "/updates", updates, NULL);
    rc = rc ? rc : svc_route(sv, "GET", "/fortunes", fortunes, NULL);
    return rc;
}
