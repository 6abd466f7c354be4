/*
 * What the pool reads in a statement's words (weft__pg_scan): whether it
 * changes the session (refused on shared connections), whether it shows
 * or leaves its transaction (never grouped with other tasks'), whether it
 * writes or locks rows. Words count as the server's lexer reads them:
 * in any case and spacing, not inside strings, quoted names or comments.
 */
#include "test.h"
#include "pg/internal.h"

struct want {
    const char *sql;
    int kind;                             /* weft__pg_kind */
    bool shows, writes, locks;
};

static const struct want cases[] = {
    { "SELECT abalance FROM pgbench_accounts WHERE aid = $1", 0, false, false, false },
    /* the session */
    { "SELECT SET_CONFIG('app.tenant', '7', true)", 1, false, false, false },
    { "select set_config('a.b', $1, false)", 1, false, false, false },
    { "SELECT pg_advisory_lock(1)", 1, false, false, false },
    { "SELECT PG_TRY_ADVISORY_LOCK_SHARED(1)", 1, false, false, false },
    { "CREATE TEMP TABLE t (a int)", 1, false, false, false },
    { "create temporary table t (a int)", 1, false, false, false },
    { "  /* hi */ SET search_path = x", 1, false, false, false },
    { "BEGIN", 2, false, false, false },
    { "-- c\nCOPY t FROM STDIN", 2, false, false, false },
    { "SELECT 'set_config(1)'", 0, false, false, false },         /* a string, not a call */
    /* the transaction shown */
    { "SELECT txid_current()", 0, true, false, false },
    { "SELECT pg_current_xact_id()", 0, true, false, false },
    { "SELECT pg_advisory_xact_lock(4)", 0, true, false, false },
    { "SELECT NOW()", 0, true, false, false },
    { "SELECT now  ()", 0, true, false, false },
    { "SELECT now\n()", 0, true, false, false },
    { "SELECT \"now\"()", 0, true, false, false },
    { "SELECT pg_catalog.now()", 0, true, false, false },
    { "SELECT CURRENT_TIMESTAMP", 0, true, false, false },
    { "SELECT current_date", 0, true, false, false },
    { "SELECT LOCALTIMESTAMP", 0, true, false, false },
    { "SELECT transaction_timestamp()", 0, true, false, false },
    { "SELECT age(d) FROM t", 0, true, false, false },
    { "SELECT 'now'::timestamptz", 0, true, false, false },
    { "SELECT timestamptz ' Today '", 0, true, false, false },
    { "SELECT E'now'::date", 0, true, false, false },
    { "SELECT $$now$$::timestamptz", 0, true, false, false },
    { "SELECT setval('s', 5)", 0, true, false, false },
    { "SELECT * FROM dblink('x', 'y') AS t(a int)", 0, true, false, false },
    /* not shown: these stay groupable */
    { "SELECT statement_timestamp(), clock_timestamp()", 0, false, false, false },
    { "SELECT snow(1), max_xact_age, localtime_offset, xact_commit FROM t", 0, false, false, false },
    { "SELECT 1 WHERE x LIKE '%now(%' -- now()\n", 0, false, false, false },
    { "SELECT /* now() /* nested */ txid_current() */ 1", 0, false, false, false },
    { "SELECT 'it''s now' AS \"now\"", 0, false, false, false },
    { "SELECT updated_at, deleted FROM t", 0, false, false, false },
    { "SELECT name, age, now FROM users WHERE id = $1", 0, false, false, false },
    { "SELECT age /* c */ (d), 1", 0, true, false, false },
    /* writes and locks */
    { "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", 0, false, true, false },
    { "WITH u AS (update t set a = 1 returning a) SELECT a FROM u", 0, false, true, false },
    { "SELECT * FROM t FOR UPDATE", 0, false, true, true },
    { "SELECT * FROM t for  no key update", 0, false, true, true },
    { "SELECT * FROM t FOR SHARE SKIP LOCKED", 0, false, false, true },
    { "SELECT * FROM t FOR KEY SHARE", 0, false, false, true },
    { "SELECT 'for update' FROM t", 0, false, false, false },
};

static void test_scan(void **s)
{
    (void)s;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const struct want *w = &cases[i];
        struct weft__pg_sql q;
        weft__pg_scan(w->sql, &q);
        if (weft__pg_kind(&q) != w->kind || q.shows_tx != w->shows || q.writes != w->writes ||
            q.locks != w->locks)
            fail_msg("%s: kind %d shows %d writes %d locks %d", w->sql, weft__pg_kind(&q),
                     q.shows_tx, q.writes, q.locks);
    }
}

/* the first keyword, past comments and parentheses */
static void test_first(void **s)
{
    (void)s;
    struct weft__pg_sql q;
    weft__pg_scan("/* a */ -- b\n ((SELECT 1))", &q);
    assert_string_equal(q.first, "select");
    weft__pg_scan("", &q);
    assert_string_equal(q.first, "");
    weft__pg_scan(NULL, &q);
    assert_string_equal(q.first, "");
    weft__pg_scan("'unterminated", &q);
    assert_string_equal(q.first, "");
    weft__pg_scan("SELECT $tag$ unterminated", &q);
    assert_string_equal(q.first, "select");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scan),
        cmocka_unit_test(test_first),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
