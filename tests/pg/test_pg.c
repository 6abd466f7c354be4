/*
 * weft pg against a real PostgreSQL that the test fixture started
 * (scripts/services): values both ways, errors, the pipeline across
 * tasks, transactions, deadlines that reach the server, cancellation.
 */
#include "pgtest.h"
#include "weft/pg_json.h"

/* ---- values ------------------------------------------------------------------------ */

static int values(void *unused)
{
    (void)unused;
    weft_pg *db = pgt_open(NULL);
    weft_pg_result r;
    static const uint8_t blob[] = { 0, 1, 2, 0xff, 0x80, '\\', 'x' };
    weft_pg_val p[] = { WEFT_PG_INT(INT64_MIN), WEFT_PG_INT(INT64_MAX), WEFT_PG_FLOAT(0.1),
                        WEFT_PG_BOOL(true), WEFT_PG_TEXT("héllo 'quoted'"), WEFT_PG_NULL,
                        WEFT_PG_BYTES(blob, sizeof blob), WEFT_PG_FLOAT(-1.0 / 0.0) };
    int rc = weft_pg_query(db, &r,
                           "SELECT $1::int8, $2::int8, $3::float8, $4::bool, $5::text, $6::int4,"
                           " $7::bytea, $8::float8, 32767::int2, '12345678901234567890.5'::numeric,"
                           " 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid,"
                           " '2024-02-29 13:14:15.123456+00'::timestamptz, '1969-12-31'::date,"
                           " '{\"a\": [1, 2]}'::jsonb",
                           8, p);
    if (rc) fprintf(stderr, "values: %s\n", r.error);
    EXPECT_EQ(rc, 0);
    EXPECT_EQ(r.nrows, 1);
    EXPECT_EQ(r.ncols, 14);
    int64_t i;
    double d;
    bool b;
    const char *s;
    size_t n;
    EXPECT_EQ(weft_pg_get_int(&r, 0, 0, &i), 0);
    EXPECT(i == INT64_MIN);
    EXPECT_EQ(weft_pg_get_int(&r, 0, 1, &i), 0);
    EXPECT(i == INT64_MAX);
    EXPECT_EQ(weft_pg_get_double(&r, 0, 2, &d), 0);
    EXPECT(d == 0.1);
    EXPECT_EQ(weft_pg_get_bool(&r, 0, 3, &b), 0);
    EXPECT(b);
    EXPECT_EQ(weft_pg_get_text(&r, 0, 4, &s, &n), 0);
    EXPECT(strcmp(s, "héllo 'quoted'") == 0 && n == strlen(s));
    i = 7;
    EXPECT_EQ(weft_pg_get_int(&r, 0, 5, &i), -ENODATA);
    EXPECT_EQ(i, 7);                                   /* untouched */
    EXPECT(weft_pg_is_null(&r, 0, 5));
    const void *bp;
    EXPECT_EQ(weft_pg_get_bytes(&r, 0, 6, &bp, &n), 0);
    EXPECT(n == sizeof blob && memcmp(bp, blob, n) == 0);
    EXPECT_EQ(weft_pg_get_double(&r, 0, 7, &d), 0);
    EXPECT(d < 0 && d * 0 != 0);                       /* -Infinity */
    EXPECT_EQ(weft_pg_get_int(&r, 0, 8, &i), 0);
    EXPECT_EQ(i, 32767);
    EXPECT_EQ(weft_pg_get_text(&r, 0, 9, &s, NULL), 0);
    EXPECT(strcmp(s, "12345678901234567890.5") == 0);
    EXPECT_EQ(weft_pg_get_int(&r, 0, 9, &i), -WEFT_ETYPE);    /* numeric is not an integer */
    uint8_t u[16];
    EXPECT_EQ(weft_pg_get_uuid(&r, 0, 10, u), 0);
    EXPECT(u[0] == 0xa0 && u[15] == 0x11);
    int64_t us;
    EXPECT_EQ(weft_pg_get_time(&r, 0, 11, &us), 0);
    EXPECT(us == 1709212455123456LL);
    EXPECT_EQ(weft_pg_get_time(&r, 0, 12, &us), 0);
    EXPECT(us == -86400LL * 1000000);
    EXPECT_EQ(weft_pg_get_text(&r, 0, 13, &s, NULL), 0);
    EXPECT(strcmp(s, "{\"a\": [1, 2]}") == 0);
    json_t *j = NULL;
    EXPECT_EQ(weft_pg_get_json(&r, 0, 13, &j), 0);
    EXPECT(j && json_integer_value(json_array_get(json_object_get(j, "a"), 1)) == 2);
    json_decref(j);
    EXPECT_EQ(weft_pg_get_json(&r, 0, 4, &j), -WEFT_ETYPE);
    /* mismatches are errors, not garbage */
    EXPECT_EQ(weft_pg_get_int(&r, 0, 4, &i), -WEFT_ETYPE);
    EXPECT_EQ(weft_pg_get_bool(&r, 0, 0, &b), -WEFT_ETYPE);
    EXPECT_EQ(weft_pg_get_time(&r, 0, 4, &us), -WEFT_ETYPE);
    EXPECT_EQ(weft_pg_get_int(&r, 1, 0, &i), -EINVAL);
    EXPECT_EQ(weft_pg_get_int(&r, 0, 14, &i), -EINVAL);
    EXPECT_EQ(weft_pg_col(&r, "int8"), 0);
    EXPECT_EQ(weft_pg_col(&r, "nope"), -ENOENT);
    weft_pg_result_free(&r);
    /* out of range */
    EXPECT_EQ(weft_pg_query(db, &r, "SELECT '1e400'::numeric, 'infinity'::timestamptz", 0, NULL), 0);
    EXPECT_EQ(weft_pg_get_double(&r, 0, 0, &d), -ERANGE);
    EXPECT_EQ(weft_pg_get_time(&r, 0, 1, &us), -ERANGE);
    weft_pg_result_free(&r);
    /* integers fit what the statement needs: int4 when they can (function
     * arguments have no int8 form), int8 past it; a NULL text is NULL */
    weft_pg_val sp[] = { WEFT_PG_INT(2), WEFT_PG_INT(5000000000LL), WEFT_PG_TEXT(NULL) };
    EXPECT_EQ(weft_pg_query(db, &r, "SELECT substring('hello', $1), $2 + 1, $3::text IS NULL", 3, sp), 0);
    EXPECT_EQ(weft_pg_get_text(&r, 0, 0, &s, NULL), 0);
    EXPECT(strcmp(s, "ello") == 0);
    EXPECT_EQ(weft_pg_get_int(&r, 0, 1, &i), 0);
    EXPECT(i == 5000000001LL);
    EXPECT_EQ(weft_pg_get_bool(&r, 0, 2, &b), 0);
    EXPECT(b);
    weft_pg_result_free(&r);
    weft_pg_val one[] = { WEFT_PG_INT(7) };
    EXPECT_EQ(weft_pg_query(db, &r, "SELECT $1", 1, one), 0);
    EXPECT_EQ(weft_pg_get_int(&r, 0, 0, &i), 0);
    EXPECT_EQ(i, 7);
    weft_pg_result_free(&r);
    /* affected rows */
    EXPECT_EQ(weft_pg_query(db, &r, "SELECT generate_series(1, 5)", 0, NULL), 0);
    EXPECT_EQ(r.nrows, 5);
    EXPECT_EQ(r.affected, 5);
    weft_pg_result_free(&r);
    EXPECT_EQ(weft_pg_close(db, WEFT_SEC), 0);
    return 0;
}
static void test_values(void **s) { (void)s; RUN(values, NULL); }

/* ---- errors ------------------------------------------------------------------------- */

static int errors(void *unused)
{
    (void)unused;
    weft_pg *db = pgt_open(NULL);
    weft_pg_result r;
    EXPECT_EQ(weft_pg_query(db, &r, "SELEC 1", 0, NULL), -WEFT_EPG);
    const weft_pg_error_info *e = weft_pg_error(&r);
    EXPECT(e && strcmp(e->sqlstate, "42601") == 0 && strcmp(e->severity, "ERROR") == 0);
    EXPECT(strstr(r.error, "syntax error") != NULL);
    weft_pg_result_free(&r);
    EXPECT_EQ(weft_pg_query(db, &r, "SELECT 1", 0, NULL), 0);   /* the connection is fine */
    weft_pg_result_free(&r);
    /* session state belongs on an exclusive connection */
    EXPECT_EQ(weft_pg_query(db, &r, "CREATE TEMP TABLE IF NOT EXISTS u (id int PRIMARY KEY)", 0, NULL), -EINVAL);
    EXPECT(strstr(r.error, "weft_pg_acquire") != NULL);
    weft_pg_result_free(&r);
    EXPECT_EQ(weft_pg_query(db, &r, "DROP TABLE IF EXISTS weft_t_err; "
                                    "", 0, NULL), 0);
    weft_pg_result_free(&r);
    EXPECT_EQ(weft_pg_query(db, &r, "CREATE TABLE weft_t_err (id int PRIMARY KEY, v text NOT NULL)", 0, NULL), 0);
    weft_pg_result_free(&r);
    EXPECT_EQ(weft_pg_query(db, &r, "INSERT INTO weft_t_err VALUES (1, 'a')", 0, NULL), 0);
    EXPECT_EQ(r.affected, 1);
    weft_pg_result_free(&r);
    EXPECT_EQ(weft_pg_query(db, &r, "INSERT INTO weft_t_err VALUES (1, 'b')", 0, NULL), -WEFT_EPG);
    e = weft_pg_error(&r);
    EXPECT(e && strcmp(e->sqlstate, "23505") == 0);
    EXPECT(e && e->constraint && strcmp(e->constraint, "weft_t_err_pkey") == 0);
    EXPECT(e && e->table && strcmp(e->table, "weft_t_err") == 0);
    EXPECT(e && e->detail && strstr(e->detail, "already exists"));
    weft_pg_result_free(&r);
    EXPECT_EQ(weft_pg_query(db, &r, "INSERT INTO weft_t_err VALUES (2, NULL)", 0, NULL), -WEFT_EPG);
    e = weft_pg_error(&r);
    EXPECT(e && strcmp(e->sqlstate, "23502") == 0 && e->column && strcmp(e->column, "v") == 0);
    weft_pg_result_free(&r);
    /* a parameter count that does not match */
    EXPECT_EQ(weft_pg_query(db, &r, "SELECT $1::int", 0, NULL), -WEFT_EPG);
    weft_pg_result_free(&r);
    EXPECT_EQ(weft_pg_query(db, &r, NULL, 0, NULL), -EINVAL);
    weft_pg_result_free(&r);
    EXPECT_EQ(weft_pg_query(db, &r, "DROP TABLE weft_t_err", 0, NULL), 0);
    weft_pg_result_free(&r);
    EXPECT_EQ(weft_pg_close(db, WEFT_SEC), 0);
    return 0;
}
static void test_errors(void **s) { (void)s; RUN(errors, NULL); }

/* ---- the pipeline across tasks ----------------------------------------------------------- */

struct many { weft_pg *db; int i; int bad; };

static int ask(void *arg)
{
    struct many *m = arg;
    weft_pg_result r;
    weft_pg_val p[] = { WEFT_PG_INT(m->i), WEFT_PG_TEXT("x") };
    int rc = weft_pg_query(m->db, &r, "SELECT $1::int8 * 2, $2::text", 2, p);
    int64_t v = -1;
    if (rc || weft_pg_get_int(&r, 0, 0, &v) || v != 2 * m->i)
        m->bad = 1;
    weft_pg_result_free(&r);
    return 0;
}

static int pipeline(void *unused)
{
    (void)unused;
    weft_pg *db = pgt_open(NULL);
    int n = test_scale(1000);
    struct many *m = calloc((size_t)n, sizeof *m);
    weft_group *g = weft_group_new();
    for (int i = 0; i < n; i++) {
        m[i] = (struct many){ db, i, 0 };
        EXPECT_EQ(weft_spawn(g, ask, &m[i], "ask"), 0);
    }
    EXPECT_EQ(weft_group_wait(g), 0);
    int bad = 0;
    for (int i = 0; i < n; i++)
        bad += m[i].bad;
    EXPECT_EQ(bad, 0);
    weft_pg_stats st;
    weft_pg_stats_get(db, &st);
    EXPECT(st.size <= 20);
    EXPECT_EQ(st.in_use, 0);
    EXPECT_EQ(st.queries, (uint64_t)n);
    free(m);
    EXPECT_EQ(weft_pg_close(db, WEFT_SEC), 0);
    return 0;
}
static void test_pipeline(void **s) { (void)s; RUN(pipeline, NULL); }


/* ---- transactions --------------------------------------------------------------------- */

static int transactions(void *unused)
{
    (void)unused;
    weft_pg *db = pgt_open(NULL);
    weft_pg_result r;
    EXPECT_EQ(weft_pg_query(db, &r, "DROP TABLE IF EXISTS weft_t_tx", 0, NULL), 0);
    weft_pg_result_free(&r);
    EXPECT_EQ(weft_pg_query(db, &r, "CREATE TABLE weft_t_tx (id int PRIMARY KEY)", 0, NULL), 0);
    weft_pg_result_free(&r);
    weft_pg_conn *c;
    EXPECT_EQ(weft_pg_acquire(db, &c), 0);
    EXPECT(!weft_pg_in_transaction(c));
    EXPECT_EQ(weft_pg_begin(c, "ISOLATION LEVEL SERIALIZABLE"), 0);
    EXPECT(weft_pg_in_transaction(c));
    EXPECT_EQ(weft_pg_begin(c, NULL), -EINVAL);              /* one at a time */
    EXPECT_EQ(weft_pg_conn_query(c, &r, "INSERT INTO weft_t_tx VALUES (1)", 0, NULL), 0);
    weft_pg_result_free(&r);
    EXPECT_EQ(weft_pg_savepoint(c, "sp1"), 0);
    EXPECT_EQ(weft_pg_conn_query(c, &r, "INSERT INTO weft_t_tx VALUES (2)", 0, NULL), 0);
    weft_pg_result_free(&r);
    EXPECT_EQ(weft_pg_rollback_to(c, "sp1"), 0);
    EXPECT_EQ(weft_pg_savepoint(c, "bad name"), -EINVAL);
    EXPECT_EQ(weft_pg_commit(c, NULL), 0);
    EXPECT(!weft_pg_in_transaction(c));
    EXPECT_EQ(pgt_int(db, "SELECT count(*) FROM weft_t_tx"), 1);
    /* a failed transaction's COMMIT is answered ROLLBACK: an error */
    EXPECT_EQ(weft_pg_begin(c, NULL), 0);
    EXPECT_EQ(weft_pg_conn_query(c, &r, "INSERT INTO weft_t_tx VALUES (5)", 0, NULL), 0);
    weft_pg_result_free(&r);
    EXPECT_EQ(weft_pg_conn_query(c, &r, "INSERT INTO weft_t_tx VALUES (1)", 0, NULL), -WEFT_EPG);
    weft_pg_result_free(&r);
    EXPECT_EQ(weft_pg_commit(c, &r), -WEFT_EPG);
    EXPECT(weft_pg_error(&r) && strcmp(weft_pg_error(&r)->sqlstate, "25P02") == 0);
    weft_pg_result_free(&r);
    EXPECT(!weft_pg_in_transaction(c));
    EXPECT_EQ(pgt_int(db, "SELECT count(*) FROM weft_t_tx"), 1);
    /* left open: release rolls it back */
    EXPECT_EQ(weft_pg_begin(c, NULL), 0);
    EXPECT_EQ(weft_pg_conn_query(c, &r, "INSERT INTO weft_t_tx VALUES (7)", 0, NULL), 0);
    weft_pg_result_free(&r);
    weft_pg_release(db, c);
    EXPECT_EQ(pgt_int(db, "SELECT count(*) FROM weft_t_tx"), 1);
    EXPECT_EQ(pgt_int(db, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                          " AND state LIKE 'idle in transaction%'"), 0);
    EXPECT_EQ(weft_pg_query(db, &r, "DROP TABLE weft_t_tx", 0, NULL), 0);
    weft_pg_result_free(&r);
    EXPECT_EQ(weft_pg_close(db, WEFT_SEC), 0);
    return 0;
}
static void test_transactions(void **s) { (void)s; RUN(transactions, NULL); }

/* ---- deadlines reach the server ---------------------------------------------------------- */

/* statements running pg_sleep on the server now */
static int64_t sleeping(weft_pg *db)
{
    return pgt_int(db, "SELECT count(*) FROM pg_stat_activity WHERE state = 'active'"
                       " AND query LIKE '%pg_sleep(5)%' AND pid <> pg_backend_pid()");
}

static int slow(void *arg)
{
    weft_pg *db = arg;
    weft_pg_result r;
    weft_scope sc;
    weft_time t0 = weft_now();
    weft_scope_enter(&sc, 200 * WEFT_MS);
    int rc = weft_pg_query(db, &r, "SELECT pg_sleep(5)", 0, NULL);
    weft_scope_exit(&sc);
    EXPECT_EQ(rc, -ETIMEDOUT);
    EXPECT(weft_now() - t0 < WEFT_SEC);
    weft_pg_result_free(&r);
    return 0;
}

static int deadlines(void *unused)
{
    (void)unused;
    for (unsigned pipeline = 1; pipeline <= 8; pipeline += 7) {
        weft_pg *db = pgt_open(&(weft_pg_opts){ .pipeline = pipeline });
        weft_pg_result r;
        /* on the pool */
        EXPECT_EQ(slow(db), 0);
        weft_time t0 = weft_now();
        WAIT_UNTIL(sleeping(db) == 0);
        EXPECT(weft_now() - t0 < 1500 * WEFT_MS);
        /* on an exclusive connection, in a transaction */
        weft_pg_conn *c;
        EXPECT_EQ(weft_pg_acquire(db, &c), 0);
        EXPECT_EQ(weft_pg_begin(c, NULL), 0);
        weft_scope sc;
        weft_scope_enter(&sc, 200 * WEFT_MS);
        EXPECT_EQ(weft_pg_conn_query(c, &r, "SELECT pg_sleep(5)", 0, NULL), -ETIMEDOUT);
        weft_scope_exit(&sc);
        weft_pg_result_free(&r);
        EXPECT_EQ(weft_pg_rollback(c), 0);
        EXPECT_EQ(weft_pg_conn_query(c, &r, "SELECT 42", 0, NULL), 0);   /* usable again */
        weft_pg_result_free(&r);
        weft_pg_release(db, c);
        EXPECT_EQ(sleeping(db), 0);
        /* query_timeout */
        EXPECT_EQ(weft_pg_close(db, WEFT_SEC), 0);
        db = pgt_open(&(weft_pg_opts){ .pipeline = pipeline, .query_timeout = 300 * WEFT_MS });
        t0 = weft_now();
        EXPECT_EQ(weft_pg_query(db, &r, "SELECT pg_sleep(5)", 0, NULL), -WEFT_EQUERY_TIMEOUT);
        EXPECT(weft_now() - t0 < WEFT_SEC);
        weft_pg_result_free(&r);
        EXPECT_EQ(pgt_int(db, "SELECT 7"), 7);
        WAIT_UNTIL(sleeping(db) == 0);
        EXPECT_EQ(sleeping(db), 0);
        EXPECT_EQ(weft_pg_close(db, WEFT_SEC), 0);
    }
    return 0;
}
static void test_deadlines(void **s) { (void)s; RUN(deadlines, NULL); }

/* ---- cancellation: every later statement gets its own answer ----------------------------- */

struct storm { weft_pg *db; unsigned seed; int done; };

static int victim(void *arg)
{
    struct storm *st = arg;
    weft_pg_result r;
    unsigned kind = st->seed % 3;
    weft_pg_val p[] = { WEFT_PG_INT(st->seed) };
    if (kind == 0) {                                   /* shared */
        weft_pg_query(st->db, &r, "SELECT $1::int8, pg_sleep(random() * 0.01)", 1, p);
        weft_pg_result_free(&r);
    } else {                                           /* exclusive, maybe in a transaction */
        weft_pg_conn *c;
        if (weft_pg_acquire(st->db, &c) == 0) {
            if (kind == 2)
                weft_pg_begin(c, NULL);
            weft_pg_conn_query(c, &r, "SELECT $1::int8, pg_sleep(random() * 0.01)", 1, p);
            weft_pg_result_free(&r);
            weft_pg_release(st->db, c);
        }
    }
    st->done = 1;
    return 0;
}

static int cancels(void *unused)
{
    (void)unused;
    weft_pg *db = pgt_open(NULL);
    int n = test_scale(10000);
    struct storm *st = calloc((size_t)n, sizeof *st);
    unsigned seed = 12345;
    for (int round = 0; round < n; round += 100) {
        weft_group *g = weft_group_new();
        for (int i = round; i < round + 100 && i < n; i++) {
            st[i] = (struct storm){ db, (unsigned)i, 0 };
            weft_spawn(g, victim, &st[i], "victim");
        }
        seed = seed * 1103515245 + 12345;
        weft_sleep((weft_time)(seed >> 16) % 5 * WEFT_MS);
        weft_group_cancel(g);
        weft_group_wait(g);
    }
    /* every later statement gets its own answer */
    struct many *m = calloc(200, sizeof *m);
    weft_group *g = weft_group_new();
    for (int i = 0; i < 200; i++) {
        m[i] = (struct many){ db, i * 7, 0 };
        weft_spawn(g, ask, &m[i], "ask");
    }
    EXPECT_EQ(weft_group_wait(g), 0);
    int bad = 0;
    for (int i = 0; i < 200; i++)
        bad += m[i].bad;
    EXPECT_EQ(bad, 0);
    weft_pg_stats s;
    /* a reader may still drop what cancelled tasks left on its connection */
    WAIT_UNTIL((weft_pg_stats_get(db, &s), s.in_use == 0));
    EXPECT_EQ(s.in_use, 0);
    EXPECT(s.size <= 20);
    WAIT_UNTIL(pgt_int(db, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                           " AND (state LIKE 'idle in transaction%' OR (state = 'active'"
                           " AND pid <> pg_backend_pid()))") == 0);
    EXPECT_EQ(pgt_int(db, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                          " AND (state LIKE 'idle in transaction%' OR (state = 'active'"
                          " AND pid <> pg_backend_pid()))"), 0);
    fprintf(stderr, "cancels: %d victims, %llu cancel requests\n", n,
            (unsigned long long)s.cancels);
    static char text[65536];
    weft_metrics_render(text, sizeof text);
    EXPECT(strstr(text, "weft_pg_errors_total{pool=\"pg\",kind=\"cancelled\"}") != NULL);
    free(m);
    free(st);
    EXPECT_EQ(weft_pg_close(db, WEFT_SEC), 0);
    return 0;
}
static void test_cancels(void **s) { (void)s; RUN(cancels, NULL); }

/* ---- connecting ------------------------------------------------------------------------------ */

static int connecting(void *unused)
{
    (void)unused;
    weft_pg_result r;
    /* nothing listens */
    weft_pg *db = weft_pg_new("postgresql://weft:weft@127.0.0.1:1/weft", NULL);
    EXPECT(db != NULL);
    weft_time t0 = weft_now();
    EXPECT_EQ(weft_pg_query(db, &r, "SELECT 1", 0, NULL), -ECONNREFUSED);
    EXPECT(strstr(r.error, "refused") != NULL);
    weft_pg_result_free(&r);
    EXPECT_EQ(weft_pg_query(db, &r, "SELECT 1", 0, NULL), -ECONNREFUSED);   /* fast, not again */
    weft_pg_result_free(&r);
    EXPECT(weft_now() - t0 < WEFT_SEC);
    EXPECT_EQ(weft_pg_close(db, WEFT_SEC), 0);
    /* a name that does not resolve */
    db = weft_pg_new("postgresql://weft:weft@nowhere.invalid:5432/weft", &(weft_pg_opts){ .min_size = 0, .max_size = 1 });
    EXPECT(db != NULL);
    int rc = weft_pg_query(db, &r, "SELECT 1", 0, NULL);
    EXPECT(rc == -WEFT_ENOTFOUND || rc == -WEFT_EDNS || weft_is_timeout(rc));
    weft_pg_result_free(&r);
    EXPECT_EQ(weft_pg_close(db, WEFT_SEC), 0);
    /* a refused password */
    char bad[512];
    snprintf(bad, sizeof bad, "%s", pgt_url());
    char *pw = strstr(bad, ":weft@");
    if (pw) {
        memcpy(pw, ":nope@", 6);
        db = weft_pg_new(bad, &(weft_pg_opts){ .min_size = 0 });
        EXPECT_EQ(weft_pg_query(db, &r, "SELECT 1", 0, NULL), -EACCES);
        EXPECT(strstr(r.error, "password authentication failed") != NULL);
        weft_pg_result_free(&r);
        EXPECT_EQ(weft_pg_close(db, WEFT_SEC), 0);
    }
    /* bad conninfo */
    errno = 0;
    EXPECT(weft_pg_new("host=x port", NULL) == NULL);
    EXPECT_EQ(errno, EINVAL);
    return 0;
}
static void test_connecting(void **s) { (void)s; RUN(connecting, NULL); }

/* ---- the server restarted under load ------------------------------------------------------ */

struct load { weft_pg *db; int ok, failed, late; bool stop; };

static int loader(void *arg)
{
    struct load *l = arg;
    while (!l->stop) {
        weft_pg_result r;
        weft_scope sc;
        weft_time t0 = weft_now();
        weft_scope_enter(&sc, 2 * WEFT_SEC);
        int rc = weft_pg_query(l->db, &r, "SELECT pg_sleep(0.001), 1", 0, NULL);
        weft_scope_exit(&sc);
        if (weft_now() - t0 > 2500 * WEFT_MS)
            l->late++;                                 /* nobody waits past a deadline */
        if (rc == 0) {
            l->ok++;
        } else {
            l->failed++;
            EXPECT(rc == -ECONNRESET || rc == -WEFT_EEOF || rc == -ECONNREFUSED ||
                   rc == -WEFT_EPG || rc == -ETIMEDOUT || rc == -WEFT_EPOOL_TIMEOUT);
            if (!(rc == -ECONNRESET || rc == -WEFT_EEOF || rc == -ECONNREFUSED ||
                  rc == -WEFT_EPG || rc == -ETIMEDOUT || rc == -WEFT_EPOOL_TIMEOUT))
                fprintf(stderr, "restart: unexpected %s: %s\n", weft_errname(rc), r.error);
            weft_sleep(10 * WEFT_MS);
        }
        weft_pg_result_free(&r);
    }
    return 0;
}

static int do_restart(void *arg)
{
    (void)arg;
    return weft_test_service_restart("pg");
}

static int restart(void *unused)
{
    (void)unused;
    weft_pg *db = pgt_open(NULL);
    struct load l = { db, 0, 0, 0, false };
    weft_group *g = weft_group_new();
    for (int i = 0; i < 30; i++)
        weft_spawn(g, loader, &l, "loader");
    weft_sleep(300 * WEFT_MS);
    int before = l.ok;
    EXPECT(before > 0);
    EXPECT_EQ(weft_run_blocking(do_restart, NULL), 0);
    int at = l.ok;
    WAIT_UNTIL(l.ok > at + 100);                       /* the pool reconnected */
    EXPECT(l.ok > at + 100);
    l.stop = true;
    EXPECT_EQ(weft_group_wait(g), 0);
    EXPECT_EQ(l.late, 0);
    fprintf(stderr, "restart: %d ok, %d failed around the restart\n", l.ok, l.failed);
    EXPECT_EQ(pgt_int(db, "SELECT 5"), 5);
    EXPECT_EQ(weft_pg_close(db, WEFT_SEC), 0);
    return 0;
}
static void test_restart(void **s) { (void)s; RUN(restart, NULL); }

/* ---- batches: one round trip, all or nothing ------------------------------------------------ */

static int batch(void *unused)
{
    (void)unused;
    weft_pg *db = pgt_open(NULL);
    weft_pg_result r, rs[3];
    EXPECT_EQ(weft_pg_query(db, &r, "DROP TABLE IF EXISTS weft_t_batch", 0, NULL), 0);
    weft_pg_result_free(&r);
    EXPECT_EQ(weft_pg_query(db, &r, "CREATE TABLE weft_t_batch (id int PRIMARY KEY)", 0, NULL), 0);
    weft_pg_result_free(&r);
    weft_pg_val one[] = { WEFT_PG_INT(1) }, two[] = { WEFT_PG_INT(2) };
    weft_pg_stmt ok[] = { { "INSERT INTO weft_t_batch VALUES ($1)", 1, one },
                          { "INSERT INTO weft_t_batch VALUES ($1)", 1, two },
                          { "SELECT count(*) FROM weft_t_batch", 0, NULL } };
    EXPECT_EQ(weft_pg_batch(db, ok, 3, rs), 0);
    int64_t n = -1;
    EXPECT_EQ(weft_pg_get_int(&rs[2], 0, 0, &n), 0);
    EXPECT_EQ(n, 2);
    for (int i = 0; i < 3; i++)
        weft_pg_result_free(&rs[i]);
    /* the first fails: nothing of the batch stays, the rest is not run */
    weft_pg_val three[] = { WEFT_PG_INT(3) };
    weft_pg_stmt bad[] = { { "INSERT INTO weft_t_batch VALUES ($1)", 1, three },
                           { "INSERT INTO weft_t_batch VALUES ($1)", 1, one },
                           { "SELECT id * 10 FROM weft_t_batch WHERE id = $1", 1, two } };
    EXPECT_EQ(weft_pg_batch(db, bad, 3, rs), -WEFT_EPG);
    EXPECT(weft_pg_error(&rs[1]) && strcmp(weft_pg_error(&rs[1])->sqlstate, "23505") == 0);
    EXPECT(strstr(rs[2].error, "not run") != NULL);
    for (int i = 0; i < 3; i++)
        weft_pg_result_free(&rs[i]);
    EXPECT_EQ(pgt_int(db, "SELECT count(*) FROM weft_t_batch"), 2);
    /* the third's Parse was skipped: its statement is prepared again, not
     * taken for made (it was "prepared statement does not exist" forever) */
    for (int i = 0; i < 25; i++) {
        EXPECT_EQ(weft_pg_query(db, &r, "SELECT id * 10 FROM weft_t_batch WHERE id = $1", 1, two), 0);
        weft_pg_result_free(&r);
    }
    EXPECT_EQ(weft_pg_query(db, &r, "DROP TABLE weft_t_batch", 0, NULL), 0);
    weft_pg_result_free(&r);
    EXPECT_EQ(weft_pg_close(db, WEFT_SEC), 0);
    return 0;
}
static void test_batch(void **s) { (void)s; RUN(batch, NULL); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_pipeline),
        cmocka_unit_test(test_transactions),
        cmocka_unit_test(test_batch),
        cmocka_unit_test(test_deadlines),
        cmocka_unit_test(test_cancels),
        cmocka_unit_test(test_connecting),
        cmocka_unit_test(test_restart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
