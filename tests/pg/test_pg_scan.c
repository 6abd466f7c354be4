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
    /* a string constant is read as SQL too (query_to_xml's, a function
     * body's): what it says is taken at its word, data or not */
    { "SELECT 'set_config(1)'", 1, false, false, false },
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
    { "SELECT 1 WHERE x LIKE '%snow(%' -- now()\n", 0, false, false, false },
    { "SELECT 1 WHERE x LIKE '%now%'", 0, true, false, false },  /* taken at its word */
    { "SELECT /* now() /* nested */ txid_current() */ 1", 0, false, false, false },
    { "SELECT 'it''s late' AS \"now\"", 0, false, false, false },
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
    /* the second review's: what hid a session change */
    { "DO $$BEGIN PERFORM set_config('search_path','evil',false); END$$", 1, false, false, false },
    /* a DO body's statements are read as statements */
    { "do $$ begin perform 1; end $$", 0, false, false, false },
    { "DO $$BEGIN SET LOCAL client_min_messages = warning; DROP TABLE x; END$$", 0, false, false, false },
    { "DO $$BEGIN SET client_min_messages = warning; END$$", 1, false, false, false },
    { "DO $$BEGIN SET SESSION search_path = x; END$$", 1, false, false, false },
    { "DO $$BEGIN IF true THEN RESET ALL; END IF; END$$", 1, false, false, false },
    { "DO $b$ BEGIN CREATE TEMP TABLE t (a int); END $b$", 1, false, false, false },
    { "DO $$BEGIN UPDATE t SET a = 1; CREATE TABLE u (temp int); END$$", 0, false, false, false },
    { "DO $$BEGIN LISTEN c; END$$", 1, false, false, false },
    { "DO $$DECLARE n int; BEGIN PERFORM pg_advisory_lock(1); END$$", 1, false, false, false },
    { "SELECT query_to_xml('select set_config(''search_path'',''x'',false)', true, false, '')",
      1, false, false, false },
    { "SELECT query_to_xml('select pg_advisory_lock(1)', true, false, '')", 1, false, false, false },
    { "SELECT U&\"\\0073et_config\"('search_path','evil',false)", 1, true, false, false },
    { "SELECT 1 AS a INTO TEMP t2", 1, false, false, false },
    { "SELECT 1 AS a into temporary table t3", 1, false, false, false },
    { "CREATE TABLE pg_temp.t (a int)", 1, false, false, false },
    { "CREATE OR REPLACE TEMP VIEW v AS SELECT 1", 1, false, false, false },
    { "CREATE GLOBAL TEMPORARY TABLE t (a int)", 1, false, false, false },
    /* ... what hid the transaction */
    { "SELECT 'now\n'::timestamptz", 0, true, false, false },
    { "SELECT 'today 10:00'::timestamptz", 0, true, false, false },
    { "SELECT E'\\156ow'::timestamptz", 0, true, false, false },
    { "SELECT U&'\\006eow'::timestamptz", 0, true, false, false },
    { "SELECT pg_current_snapshot()", 0, true, false, false },
    { "SELECT xact_start, backend_xid FROM pg_stat_activity", 0, true, false, false },
    { "SELECT * FROM t WHERE id=1for update", 0, false, true, true },
    { "SELECT * FROM t WHERE id=$1for share", 0, false, false, true },
    /* ... and what was refused for nothing */
    { "CREATE TABLE weather (city text, temp int)", 0, false, false, false },
    { "CREATE INDEX ON weather (temp)", 0, false, false, false },
    { "INSERT INTO temp (a) VALUES (1)", 0, false, true, false },
    { "SELECT * FROM t WHERE note = 'set aside'", 0, false, false, false },
    { "SELECT 1e10, 1.5e-3, a$b FROM t", 0, false, false, false },
    { "SELECT \"caf\xc3\xa9\", \xc3\xa9t\xc3\xa9 FROM t", 0, false, false, false },
    { "SELECT E'it\\'s' AS a, 1", 0, true, false, false },
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
    weft__pg_scan("/*c*/ DISCARD ALL", &q);
    assert_string_equal(q.first, "discard");
    assert_int_equal(weft__pg_kind(&q), 1);
    char longname[600];                   /* a name past 63 bytes, quoted and not */
    snprintf(longname, sizeof longname, "SELECT %0150d, \"%0150d\", U&\"%0150d\"", 0, 0, 0);
    for (char *p = longname + 7; *p; p++)
        if (*p == '0')
            *p = 'x';
    weft__pg_scan(longname, &q);
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
