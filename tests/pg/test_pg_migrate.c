/*
 * Migrations against the test server: a fresh run, a re-run (nothing twice),
 * two runs at once (each file once), a changed file, a failing file (nothing
 * half done, the line named), a no-transaction file, the status, and bad
 * folders; the statement splitter on the SQL it must not cut.
 */
#include <dirent.h>
#include <sys/stat.h>
#include <limits.h>

#include "pgtest.h"

static char dir[64];

static void put(const char *name, const char *text)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void drop(const char *name)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    unlink(p);
}

static int exec_sql(void *sql)
{
    weft_pg *db = weft_pg_new(pgt_url(), NULL);
    EXPECT(db != NULL);
    weft_pg_conn *c;
    EXPECT_EQ(weft_pg_acquire(db, &c), 0);
    weft_pg_result r;
    int rc = weft_pg_conn_query(c, &r, sql, 0, NULL);
    if (rc)
        fprintf(stderr, "%s: %s\n", (char *)sql, r.error);
    EXPECT_EQ(rc, 0);
    weft_pg_result_free(&r);
    weft_pg_release(db, c);
    return weft_pg_close(db, WEFT_SEC);
}

static int setup(void **state)
{
    (void)state;
    strcpy(dir, "/tmp/weft-migrate-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    test_failures = 0;
    weft_main(exec_sql, "DROP TABLE IF EXISTS schema_migrations, m_users, m_t3, m_t4, m_side"
                        " CASCADE");
    return test_failures ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            drop(e->d_name);
    if (d)
        closedir(d);
    rmdir(dir);
    return 0;
}

static const char init_sql[] =
    "CREATE TABLE m_users(id serial PRIMARY KEY, name text NOT NULL);\n"
    "-- a comment; with a semicolon\n"
    "INSERT INTO m_users(name) VALUES ('a;b'), ($$x;y$$), (E'it\\'s;');\n"
    "DO $body$ BEGIN PERFORM 1; END $body$;\n";

struct seen {
    int n;
    int64_t versions[8];
    char names[8][32];
};

static void on_applied(const weft_pg_migration *m, void *ctx)
{
    struct seen *s = ctx;
    if (s->n < 8) {
        s->versions[s->n] = m->version;
        snprintf(s->names[s->n++], 32, "%.31s", m->name);
    }
}

/* ---- fresh, then again: nothing twice -------------------------------------- */

static int fresh_and_rerun(void *arg)
{
    (void)arg;
    weft_pg *db = weft_pg_new(pgt_url(), NULL);
    weft_pg_result r;
    struct seen s = { 0 };
    int rc = weft_pg_migrate_cb(db, dir, &r, on_applied, &s);
    if (rc < 0)
        fprintf(stderr, "migrate: %s\n", r.error);
    EXPECT_EQ(rc, 2);
    EXPECT_EQ(s.n, 2);
    EXPECT_EQ(s.versions[0], 1);
    EXPECT_EQ(s.versions[1], 10);
    EXPECT(strcmp(s.names[0], "init") == 0);
    EXPECT(strcmp(s.names[1], "more_users") == 0);
    weft_pg_result_free(&r);
    EXPECT_EQ(pgt_int(db, "SELECT count(*) FROM m_users"), 4);
    EXPECT_EQ(pgt_int(db, "SELECT count(*) FROM m_users WHERE name IN ('a;b','x;y','it''s;')"), 3);
    /* again: nothing applied, nothing run twice */
    EXPECT_EQ(weft_pg_migrate(db, dir, &r), 0);
    weft_pg_result_free(&r);
    EXPECT_EQ(pgt_int(db, "SELECT count(*) FROM m_users"), 4);
    EXPECT_EQ(pgt_int(db, "SELECT count(*) FROM schema_migrations"), 2);
    EXPECT_EQ(pgt_int(db, "SELECT count(*) FROM schema_migrations WHERE length(checksum) = 64"), 2);
    /* a new file later: only it */
    put("0011_side.sql", "CREATE TABLE m_side(a int);");
    EXPECT_EQ(weft_pg_migrate(db, dir, NULL), 1);
    /* the status: all applied, nothing changed */
    weft_pg_migration *list;
    int n = weft_pg_migrations(db, dir, &list, NULL);
    EXPECT_EQ(n, 3);
    for (int i = 0; i < n && n == 3; i++) {
        EXPECT(list[i].applied);
        EXPECT(!list[i].changed);
        EXPECT(list[i].applied_at_us > 0);
    }
    if (n == 3)
        EXPECT_EQ(list[2].version, 11);
    weft_pg_migrations_free(list);
    return weft_pg_close(db, WEFT_SEC);
}

static void test_fresh_and_rerun(void **state)
{
    (void)state;
    put("0001_init.sql", init_sql);
    put("0010_more_users.sql", "INSERT INTO m_users(name) VALUES ('d');");
    put("README.md", "not a migration");
    put("0002_draft.sql~", "not one either");
    RUN(fresh_and_rerun, NULL);
}

/* ---- two at once: each file once ------------------------------------------- */

static _Atomic int applied_total;

static int racer(void *arg)
{
    (void)arg;
    weft_pg *db = weft_pg_new(pgt_url(), NULL);
    weft_pg_result r;
    int rc = weft_pg_migrate(db, dir, &r);
    if (rc < 0)
        fprintf(stderr, "loop %d: %s\n", weft_loop_index(), r.error);
    EXPECT(rc >= 0);
    if (rc > 0)
        applied_total += rc;
    weft_pg_result_free(&r);
    return weft_pg_close(db, WEFT_SEC);
}

static int check_once(void *arg)
{
    (void)arg;
    weft_pg *db = weft_pg_new(pgt_url(), NULL);
    EXPECT_EQ(pgt_int(db, "SELECT count(*) FROM m_users"), 4);
    EXPECT_EQ(pgt_int(db, "SELECT count(*) FROM schema_migrations"), 2);
    return weft_pg_close(db, WEFT_SEC);
}

static void test_two_at_once(void **state)
{
    (void)state;
    put("0001_init.sql", init_sql);
    /* slow enough that the two runs overlap */
    put("0002_slow.sql", "SELECT pg_sleep(0.3); INSERT INTO m_users(name) VALUES ('slow');");
    applied_total = 0;
    test_failures = 0;
    assert_int_equal(weft_run(2, racer, NULL), 0);
    assert_int_equal(test_failures, 0);
    assert_int_equal(applied_total, 2);
    RUN(check_once, NULL);
}

/* ---- a changed file, a failing file ---------------------------------------- */

static int changed(void *arg)
{
    (void)arg;
    weft_pg *db = weft_pg_new(pgt_url(), NULL);
    EXPECT_EQ(weft_pg_migrate(db, dir, NULL), 1);
    put("0001_init.sql", "CREATE TABLE m_users(id int); -- edited");
    put("0002_next.sql", "CREATE TABLE m_t3(a int);");
    weft_pg_result r;
    EXPECT_EQ(weft_pg_migrate(db, dir, &r), -EINVAL);
    EXPECT(strstr(r.error, "0001_init.sql") != NULL);
    EXPECT(strstr(r.error, "changed") != NULL);
    weft_pg_result_free(&r);
    EXPECT_EQ(pgt_int(db, "SELECT count(*) FROM pg_tables WHERE tablename = 'm_t3'"), 0);
    weft_pg_migration *list;
    int n = weft_pg_migrations(db, dir, &list, NULL);
    EXPECT_EQ(n, 2);
    if (n == 2) {
        EXPECT(list[0].applied && list[0].changed);
        EXPECT(!list[1].applied);
    }
    weft_pg_migrations_free(list);
    return weft_pg_close(db, WEFT_SEC);
}

static void test_changed_file(void **state)
{
    (void)state;
    put("0001_init.sql", init_sql);
    RUN(changed, NULL);
}

static int failing(void *arg)
{
    (void)arg;
    weft_pg *db = weft_pg_new(pgt_url(), NULL);
    weft_pg_result r;
    /* a syntax error: the server gives the position */
    put("0002_bad.sql", "CREATE TABLE m_t3(a int);\n\nSELEC 1;\n");
    EXPECT_EQ(weft_pg_migrate(db, dir, &r), -WEFT_EPG);
    EXPECT(strstr(r.error, "0002_bad.sql line 3") != NULL);
    const weft_pg_error_info *e = weft_pg_error(&r);
    EXPECT(e && e->sqlstate && strcmp(e->sqlstate, "42601") == 0);
    weft_pg_result_free(&r);
    /* a runtime error, no position: the statement that failed */
    put("0002_bad.sql", "CREATE TABLE m_t3(a int);\nINSERT INTO m_t3 VALUES (1);\n"
                        "INSERT INTO m_t3\n  VALUES (1/0);\n");
    EXPECT_EQ(weft_pg_migrate(db, dir, &r), -WEFT_EPG);
    if (!strstr(r.error, "0002_bad.sql line 3: division by zero"))
        fprintf(stderr, "got: %s\n", r.error);
    EXPECT(strstr(r.error, "0002_bad.sql line 3: division by zero") != NULL);
    weft_pg_result_free(&r);
    /* nothing of the failing file stayed, the one before it did */
    EXPECT_EQ(pgt_int(db, "SELECT count(*) FROM pg_tables WHERE tablename = 'm_t3'"), 0);
    EXPECT_EQ(pgt_int(db, "SELECT count(*) FROM schema_migrations"), 1);
    /* fixed: it runs */
    put("0002_bad.sql", "CREATE TABLE m_t3(a int);");
    EXPECT_EQ(weft_pg_migrate(db, dir, NULL), 1);
    return weft_pg_close(db, WEFT_SEC);
}

static void test_failing_file(void **state)
{
    (void)state;
    put("0001_init.sql", init_sql);
    RUN(failing, NULL);
}

/* ---- outside a transaction --------------------------------------------------- */

static int no_tx(void *arg)
{
    (void)arg;
    weft_pg *db = weft_pg_new(pgt_url(), NULL);
    weft_pg_result r;
    int rc = weft_pg_migrate(db, dir, &r);
    if (rc < 0)
        fprintf(stderr, "migrate: %s\n", r.error);
    EXPECT_EQ(rc, 2);
    weft_pg_result_free(&r);
    EXPECT_EQ(pgt_int(db, "SELECT count(*) FROM pg_indexes WHERE indexname = 'm_users_name'"), 1);
    /* a failing statement: the ones before it stay, the file is not recorded */
    put("0003_idx.sql", "-- weft:no-transaction\nCREATE INDEX CONCURRENTLY m_users_id2 ON"
                        " m_users(id);\n\nCREATE INDEX CONCURRENTLY x ON nosuch(a);\n");
    EXPECT_EQ(weft_pg_migrate(db, dir, &r), -WEFT_EPG);
    EXPECT(strstr(r.error, "0003_idx.sql line 4") != NULL);
    weft_pg_result_free(&r);
    EXPECT_EQ(pgt_int(db, "SELECT count(*) FROM pg_indexes WHERE indexname = 'm_users_id2'"), 1);
    EXPECT_EQ(pgt_int(db, "SELECT count(*) FROM schema_migrations"), 2);
    return weft_pg_close(db, WEFT_SEC);
}

static void test_no_transaction(void **state)
{
    (void)state;
    put("0001_init.sql", init_sql);
    /* in a transaction this fails: CONCURRENTLY refuses transaction blocks */
    put("0002_idx.sql", "-- weft:no-transaction\n"
                        "CREATE INDEX CONCURRENTLY m_users_name ON m_users(name);\n");
    RUN(no_tx, NULL);
}

/* ---- bad folders --------------------------------------------------------------- */

static int bad_dirs(void *arg)
{
    (void)arg;
    weft_pg *db = weft_pg_new(pgt_url(), NULL);
    weft_pg_result r;
    EXPECT_EQ(weft_pg_migrate(db, "/nonexistent/migrations", &r), -ENOENT);
    EXPECT(strstr(r.error, "/nonexistent/migrations") != NULL);
    weft_pg_result_free(&r);
    EXPECT_EQ(weft_pg_migrate(db, dir, &r), -EINVAL);  /* two files numbered 1 */
    EXPECT(strstr(r.error, "numbered 1") != NULL);
    weft_pg_result_free(&r);
    EXPECT_EQ(weft_pg_migrate(NULL, dir, &r), -EINVAL);
    weft_pg_result_free(&r);
    EXPECT_EQ(weft_pg_migrate(db, NULL, NULL), -EINVAL);
    return weft_pg_close(db, WEFT_SEC);
}

static void test_bad_dirs(void **state)
{
    (void)state;
    put("0001_a.sql", "SELECT 1;");
    put("1_b.sql", "SELECT 2;");
    RUN(bad_dirs, NULL);
}


/* ---- what the review found -------------------------------------------------- */

static int review(void *arg)
{
    (void)arg;
    weft_pg *db = weft_pg_new(pgt_url(), NULL);
    weft_pg_result r;
    EXPECT_EQ(weft_pg_migrate(db, dir, &r), 2);
    weft_pg_result_free(&r);
    /* a COPY TO STDOUT in a file: an error, not a loop that never ends */
    put("0003_copy.sql", "COPY (SELECT 1) TO STDOUT;");
    weft_scope sc;
    weft_scope_enter(&sc, 10 * WEFT_SEC);
    EXPECT_EQ(weft_pg_migrate(db, dir, &r), -EINVAL);
    EXPECT(!weft_scope_exit(&sc));
    EXPECT(strstr(r.error, "COPY") != NULL);
    weft_pg_result_free(&r);
    drop("0003_copy.sql");
    /* a file that ends its own transaction: refused before it runs */
    put("0003_tx.sql", "CREATE TABLE m_t3(a int);\nCOMMIT;\nCREATE TABLE m_t4(a int);\n");
    EXPECT_EQ(weft_pg_migrate(db, dir, &r), -EINVAL);
    EXPECT(strstr(r.error, "0003_tx.sql line 2: commit") != NULL);
    weft_pg_result_free(&r);
    EXPECT_EQ(pgt_int(db, "SELECT count(*) FROM pg_tables WHERE tablename = 'm_t3'"), 0);
    put("0003_tx.sql", "CREATE TABLE m_t3(a int);\nROLLBACK;\n");
    EXPECT_EQ(weft_pg_migrate(db, dir, &r), -EINVAL);
    weft_pg_result_free(&r);
    EXPECT_EQ(pgt_int(db, "SELECT count(*) FROM schema_migrations"), 2);
    drop("0003_tx.sql");
    /* a directory with a migration's name */
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/0003_dir.sql", dir);
    EXPECT_EQ(mkdir(p, 0700), 0);
    EXPECT_EQ(weft_pg_migrate(db, dir, &r), -EINVAL);
    EXPECT(strstr(r.error, "not a regular file") != NULL);
    weft_pg_result_free(&r);
    rmdir(p);
    /* a name that is not UTF-8 */
    put("0003_caf\xe9.sql", "SELECT 1;");
    EXPECT_EQ(weft_pg_migrate(db, dir, &r), -EINVAL);
    EXPECT(strstr(r.error, "not UTF-8") != NULL);
    weft_pg_result_free(&r);
    drop("0003_caf\xe9.sql");
    /* nor is a surrogate's or an overlong encoding (PostgreSQL would refuse
     * the name later, in the middle of the run) */
    static const char *const bad[] = { "0003_\xed\xa0\x80.sql", "0003_\xe0\x80\xaf.sql",
                                       "0003_\xf4\x90\x80\x80.sql" };
    for (int i = 0; i < 3; i++) {
        put(bad[i], "SELECT 1;");
        EXPECT_EQ(weft_pg_migrate(db, dir, &r), -EINVAL);
        EXPECT(strstr(r.error, "not UTF-8") != NULL);
        weft_pg_result_free(&r);
        drop(bad[i]);
    }
    /* numbered below an applied one; and every checksum checked first */
    put("0010_c.sql", "CREATE TABLE m_t3(a int);");
    EXPECT_EQ(weft_pg_migrate(db, dir, NULL), 1);
    put("0007_late.sql", "CREATE TABLE m_t4(a int);");
    EXPECT_EQ(weft_pg_migrate(db, dir, &r), -EINVAL);
    EXPECT(strstr(r.error, "0007_late.sql is numbered below 10") != NULL);
    weft_pg_result_free(&r);
    drop("0007_late.sql");
    put("0011_d.sql", "CREATE TABLE m_side(a int);");
    put("0010_c.sql", "CREATE TABLE m_t3(a int); -- edited");
    EXPECT_EQ(weft_pg_migrate(db, dir, &r), -EINVAL);
    weft_pg_result_free(&r);
    EXPECT_EQ(pgt_int(db, "SELECT count(*) FROM pg_tables WHERE tablename = 'm_side'"), 0);
    put("0010_c.sql", "CREATE TABLE m_t3(a int);");
    drop("0011_d.sql");
    /* a file's SET does not reach the next file */
    put("0012_set.sql", "SET statement_timeout = 1;");
    put("0013_slow.sql", "SELECT pg_sleep(0.05);");
    int rc = weft_pg_migrate(db, dir, &r);
    if (rc != 2)
        fprintf(stderr, "set/slow: %s\n", r.error);
    EXPECT_EQ(rc, 2);
    weft_pg_result_free(&r);
    /* a session advisory lock taken on a pooled connection is gone on release */
    weft_pg_conn *c;
    EXPECT_EQ(weft_pg_acquire(db, &c), 0);
    EXPECT_EQ(weft_pg_conn_query(c, &r, "SELECT pg_advisory_lock(4242)", 0, NULL), 0);
    weft_pg_result_free(&r);
    weft_pg_release(db, c);
    EXPECT_EQ(pgt_int(db, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                        " AND objid = 4242"), 0);
    return weft_pg_close(db, WEFT_SEC);
}

static void test_review(void **state)
{
    (void)state;
    put("0001_init.sql", init_sql);
    put("0002_b.sql", "SELECT 1;");
    RUN(review, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fresh_and_rerun, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changed_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failing_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_transaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_dirs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_review, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
