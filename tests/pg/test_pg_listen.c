/*
 * weft pg's LISTEN/NOTIFY and COPY against a real PostgreSQL that the
 * test fixture started (scripts/services): notifications with channel,
 * payload and pid, quoting, a listener across a server restart, a slow
 * receiver past the bound, close while a task waits; COPY in and out of a
 * million rows in flat memory, aborted by either callback, cancelled and
 * timed out midway, refused where it cannot run.
 */
#include "procstat.h"
#include "services.h"
#include "test.h"
#include "weft/pg.h"

static const char *url(void)
{
    const char *u = weft_test_service_url("pg");
    return u ? u : "postgresql://unset";
}

static weft_pg *open_db(const weft_pg_opts *o)
{
    weft_pg *db = weft_pg_new(url(), o);
    EXPECT(db != NULL);
    return db;
}

static void exec(weft_pg *db, const char *sql)
{
    weft_pg_result r;
    int rc = weft_pg_query(db, &r, sql, 0, NULL);
    if (rc)
        fprintf(stderr, "exec(%s): %s\n", sql, r.error);
    EXPECT_EQ(rc, 0);
    weft_pg_result_free(&r);
}

/* ---- COPY where it cannot run -------------------------------------------------------- */

/* COPY through the pool's calls or a connection's query is refused: in
 * pipeline mode libpq hands out the COPY result again and again (the
 * batch span the loop forever before it was refused) */
static int copy_refused(void *unused)
{
    (void)unused;
    weft_pg *db = open_db(NULL);
    exec(db, "DROP TABLE IF EXISTS weft_t_refused");
    exec(db, "CREATE TABLE weft_t_refused (id int)");
    weft_pg_result r, rs[2];
    EXPECT_EQ(weft_pg_query(db, &r, "COPY weft_t_refused FROM STDIN", 0, NULL), -EINVAL);
    weft_pg_result_free(&r);
    weft_pg_stmt s[] = { { "SELECT 1", 0, NULL }, { " copy weft_t_refused TO STDOUT", 0, NULL } };
    EXPECT_EQ(weft_pg_batch(db, s, 2, rs), -EINVAL);
    weft_pg_result_free(&rs[0]);
    weft_pg_result_free(&rs[1]);
    weft_pg_conn *c;
    EXPECT_EQ(weft_pg_acquire(db, &c), 0);
    EXPECT_EQ(weft_pg_conn_query(c, &r, "/* x */ COPY weft_t_refused FROM STDIN", 0, NULL), -EINVAL);
    weft_pg_result_free(&r);
    EXPECT_EQ(weft_pg_conn_query(c, &r, "SELECT 1", 0, NULL), 0);
    weft_pg_result_free(&r);
    weft_pg_release(db, c);
    exec(db, "DROP TABLE weft_t_refused");
    EXPECT_EQ(weft_pg_close(db, WEFT_SEC), 0);
    return 0;
}
static void test_copy_refused(void **s) { (void)s; RUN(copy_refused, NULL); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_copy_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
