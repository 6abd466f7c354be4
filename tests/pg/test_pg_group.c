/*
 * Statements of many tasks on one shared connection in one loop turn share
 * one Sync (one implicit transaction), and still each task's statement is
 * its own: an error in one never rolls back another's, a cancelled task
 * does not disturb the others, each statement runs under its own timeout,
 * and a deadlock the grouping itself caused is retried, not reported.
 *
 * A pool of one connection (min 1, max 1) puts every task's statement on
 * the same connection: the tasks spawned together queue theirs before the
 * connection's reader runs, so they form one group.
 */
#include "pgtest.h"
#include "weft/metrics.h"

/* one connection, warm and idle in the pool; grp_xid() shows the
 * transaction a statement ran in (txid_current() itself never groups) */
static weft_pg *open_one(void)
{
    weft_pg *db = weft_pg_new(pgt_url(), &(weft_pg_opts){ .min_size = 1, .max_size = 1 });
    EXPECT(db != NULL);
    weft_pg_result r;
    EXPECT_EQ(weft_pg_query(db, &r, "CREATE OR REPLACE FUNCTION grp_xid() RETURNS bigint "
                                    "LANGUAGE sql AS 'SELECT txid_current()'", 0, NULL), 0);
    weft_pg_result_free(&r);
    return db;
}

/* statements run again alone after their group failed, so far */
static int64_t regrouped(void)
{
    return weft_metric_value(weft_counter("weft_pg_regrouped_total{pool=\"pg\"}", "x"));
}

/* one task's statement and what it got */
struct job {
    weft_pg *db;
    const char *sql;
    int nparams;
    int64_t p[2];
    weft_time scope;                  /* 0: none */
    weft_task *self;
    int rc;
    int64_t v;                        /* column 0 as an integer, if it is one */
    char text[64];                    /* column 0 as text */
    char state[8];                    /* SQLSTATE of an error */
};

static int run_job(void *arg)
{
    struct job *j = arg;
    j->self = weft_self();
    weft_pg_val p[2] = { WEFT_PG_INT(j->p[0]), WEFT_PG_INT(j->p[1]) };
    weft_pg_result r;
    weft_scope sc;
    if (j->scope)
        weft_scope_enter(&sc, j->scope);
    j->rc = weft_pg_query(j->db, &r, j->sql, j->nparams, p);
    if (j->scope)
        weft_scope_exit(&sc);
    j->v = -1;
    const char *s;
    size_t n;
    if (!j->rc && r.nrows > 0) {
        weft_pg_get_int(&r, 0, 0, &j->v);
        if (!weft_pg_get_text(&r, 0, 0, &s, &n))
            snprintf(j->text, sizeof j->text, "%.*s", (int)n, s);
    }
    const weft_pg_error_info *e = weft_pg_error(&r);
    if (e && e->sqlstate)
        snprintf(j->state, sizeof j->state, "%s", e->sqlstate);
    weft_pg_result_free(&r);
    return 0;
}

/* cancels the task of job arg: spawned after the others, it runs once
 * they all queued their statements, before the connection's reader */
static int cancel_job(void *arg)
{
    struct job *j = arg;
    EXPECT(j->self != NULL);
    weft_task_cancel(j->self);
    return 0;
}

/* runs the jobs together (one loop turn), cancelling job `cancel` (-1: none) */
static void run_together(struct job *jobs, int n, int cancel)
{
    weft_group *g = weft_group_new();
    for (int i = 0; i < n; i++)
        EXPECT_EQ(weft_spawn(g, run_job, &jobs[i], "job"), 0);
    if (cancel >= 0)
        EXPECT_EQ(weft_spawn(g, cancel_job, &jobs[cancel], "cancel"), 0);
    EXPECT_EQ(weft_group_wait(g), 0);
}

/* ---- the statements of one loop turn share a transaction ------------------------------ */

static int grouped(void *unused)
{
    (void)unused;
    weft_pg *db = open_one();
    struct job j[4];
    for (int i = 0; i < 4; i++)
        j[i] = (struct job){ .db = db, .sql = "SELECT grp_xid()" };
    run_together(j, 4, -1);
    for (int i = 0; i < 4; i++)
        EXPECT_EQ(j[i].rc, 0);
    for (int i = 1; i < 4; i++)
        EXPECT_EQ(j[i].v, j[0].v);                     /* one transaction: one Sync */
    EXPECT_EQ(weft_pg_close(db, WEFT_SEC), 0);
    return 0;
}
static void test_grouped(void **s) { (void)s; RUN(grouped, NULL); }

/* ---- an error in one never rolls back another's --------------------------------------- */

static int error_alone(void *unused)
{
    (void)unused;
    weft_pg *db = open_one();
    pgt_exec(db, "DROP TABLE IF EXISTS grp_err");
    pgt_exec(db, "CREATE TABLE grp_err (k int PRIMARY KEY)");
    pgt_exec(db, "CREATE OR REPLACE FUNCTION grp_err_put(int) RETURNS int LANGUAGE sql AS"
             " 'INSERT INTO grp_err VALUES ($1) RETURNING k'");
    struct job j[3] = {
        { .db = db, .sql = "SELECT grp_err_put(1)" },
        { .db = db, .sql = "SELECT 1 / 0" },
        { .db = db, .sql = "SELECT grp_err_put(2)" },
    };
    int64_t again = regrouped();
    run_together(j, 3, -1);
    EXPECT_EQ(regrouped() - again, 2);                 /* grouped, then 1 and 2 alone */
    EXPECT_EQ(j[0].rc, 0);
    EXPECT_EQ(j[1].rc, -WEFT_EPG);
    EXPECT(strcmp(j[1].state, "22012") == 0);          /* its own error, division by zero */
    EXPECT_EQ(j[2].rc, 0);
    EXPECT_EQ(pgt_int(db, "SELECT count(*) FROM grp_err WHERE k IN (1, 2)"), 2);
    EXPECT_EQ(pgt_int(db, "SELECT count(*) FROM grp_err"), 2);   /* each once */
    pgt_exec(db, "DROP TABLE grp_err");
    EXPECT_EQ(weft_pg_close(db, WEFT_SEC), 0);
    return 0;
}
static void test_error_alone(void **s) { (void)s; RUN(error_alone, NULL); }

/* failures at every position of a group of 6, one or two at once: every
 * task gets its own answer, every successful insert is there exactly once */
static int positions(void *unused)
{
    (void)unused;
    enum { N = 6 };
    weft_pg *db = open_one();
    pgt_exec(db, "DROP TABLE IF EXISTS grp_pos");
    pgt_exec(db, "CREATE TABLE grp_pos (round int, i int, PRIMARY KEY (round, i))");
    pgt_exec(db, "CREATE OR REPLACE FUNCTION grp_pos_put(int, int) RETURNS int LANGUAGE sql AS"
             " 'INSERT INTO grp_pos VALUES ($1, $2) RETURNING i'");
    int round = 0;
    for (int twice = 0; twice < 2; twice++)
        for (int p = 0; p < N; p++, round++) {
            int q = twice ? (p + 3) % N : -1;          /* a second failure, later or earlier */
            struct job j[N];
            for (int i = 0; i < N; i++) {
                bool fail = i == p || i == q;
                j[i] = (struct job){ .db = db, .nparams = 2, .p = { round, i },
                                     .sql = fail ? "SELECT grp_pos_put($1::int, $2::int / 0)"
                                                 : "SELECT grp_pos_put($1::int, $2::int)" };
            }
            run_together(j, N, -1);
            int ok = 0;
            for (int i = 0; i < N; i++) {
                if (i == p || i == q) {
                    EXPECT_EQ(j[i].rc, -WEFT_EPG);
                    EXPECT(strcmp(j[i].state, "22012") == 0);
                } else {
                    EXPECT_EQ(j[i].rc, 0);
                    EXPECT_EQ(j[i].v, i);              /* its own answer */
                    ok++;
                }
            }
            weft_pg_val rp[] = { WEFT_PG_INT(round) };
            weft_pg_result r;
            EXPECT_EQ(weft_pg_query(db, &r, "SELECT count(*) FROM grp_pos WHERE round = $1", 1, rp), 0);
            int64_t rows = -1;
            EXPECT_EQ(weft_pg_get_int(&r, 0, 0, &rows), 0);
            EXPECT_EQ(rows, ok);
            weft_pg_result_free(&r);
        }
    pgt_exec(db, "DROP TABLE grp_pos");
    EXPECT_EQ(weft_pg_close(db, WEFT_SEC), 0);
    return 0;
}
static void test_positions(void **s) { (void)s; RUN(positions, NULL); }

/* ---- a cancelled task in a group ------------------------------------------------------- */

static int cancelled(void *unused)
{
    (void)unused;
    weft_pg *db = open_one();
    pgt_exec(db, "DROP TABLE IF EXISTS grp_cancel");
    pgt_exec(db, "CREATE TABLE grp_cancel (k int PRIMARY KEY)");
    pgt_exec(db, "CREATE OR REPLACE FUNCTION grp_cancel_put(int) RETURNS int LANGUAGE sql AS"
             " 'INSERT INTO grp_cancel VALUES ($1) RETURNING k'");
    /* the cancelled one runs fine, fails itself, or a neighbour fails */
    static const char *const middle[] = { "SELECT pg_sleep(0.05), 7", "SELECT 1 / 0",
                                          "SELECT pg_sleep(0.05), 7" };
    static const char *const last[] = { "SELECT grp_cancel_put($1::int)",
                                        "SELECT grp_cancel_put($1::int)",
                                        "SELECT grp_cancel_put($1::int / 0)" };
    for (int t = 0; t < 3; t++) {
        struct job j[3] = {
            { .db = db, .sql = "SELECT grp_cancel_put($1::int)", .nparams = 1, .p = { 10 * t + 1 } },
            { .db = db, .sql = middle[t] },
            { .db = db, .sql = last[t], .nparams = 1, .p = { 10 * t + 3 } },
        };
        run_together(j, 3, 1);
        EXPECT_EQ(j[0].rc, 0);
        EXPECT_EQ(j[1].rc, -ECANCELED);
        EXPECT_EQ(j[2].rc, t == 2 ? -WEFT_EPG : 0);
        weft_pg_val p[] = { WEFT_PG_INT(10 * t) };
        weft_pg_result r;
        EXPECT_EQ(weft_pg_query(db, &r, "SELECT count(*) FROM grp_cancel WHERE k / 10 = $1 / 10",
                                1, p), 0);
        int64_t rows = -1;
        EXPECT_EQ(weft_pg_get_int(&r, 0, 0, &rows), 0);
        EXPECT_EQ(rows, t == 2 ? 1 : 2);
        weft_pg_result_free(&r);
    }
    /* the connection is still in order: one more group, every answer its own */
    struct job k[4];
    for (int i = 0; i < 4; i++)
        k[i] = (struct job){ .db = db, .sql = "SELECT $1::int8 * 3", .nparams = 1, .p = { i } };
    run_together(k, 4, -1);
    for (int i = 0; i < 4; i++)
        EXPECT(k[i].rc == 0 && k[i].v == 3 * i);
    weft_pg_stats st;
    weft_pg_stats_get(db, &st);
    EXPECT_EQ(st.in_use, 0);
    pgt_exec(db, "DROP TABLE grp_cancel");
    EXPECT_EQ(weft_pg_close(db, WEFT_SEC), 0);
    return 0;
}
static void test_cancelled(void **s) { (void)s; RUN(cancelled, NULL); }

/* ---- each task's statement under its own timeout ---------------------------------------- */

static int timeouts(void *unused)
{
    (void)unused;
    weft_pg *db = open_one();           /* query_timeout 30 s: the session's statement_timeout */
    const char *show = "SELECT current_setting('statement_timeout')";
    struct job j[4] = {
        { .db = db, .sql = show, .scope = 5 * WEFT_SEC },
        { .db = db, .sql = show },
        { .db = db, .sql = show, .scope = 2 * WEFT_SEC },
        { .db = db, .sql = show, .scope = 2 * WEFT_SEC },
    };
    run_together(j, 4, -1);
    for (int i = 0; i < 4; i++)
        EXPECT_EQ(j[i].rc, 0);
    EXPECT(strcmp(j[0].text, "5s") == 0);
    EXPECT(strcmp(j[1].text, "30s") == 0);             /* not the one before it */
    EXPECT(strcmp(j[2].text, "2s") == 0);
    EXPECT(strcmp(j[3].text, "2s") == 0);
    if (strcmp(j[1].text, "30s"))
        fprintf(stderr, "timeouts: %s %s %s %s\n", j[0].text, j[1].text, j[2].text, j[3].text);

    /* a short one runs out on the server; the long one after it is not
     * cut by its timeout, nor lost with its transaction */
    struct job k[3] = {
        { .db = db, .sql = "SELECT pg_sleep(2), 1", .scope = 150 * WEFT_MS },
        { .db = db, .sql = "SELECT 2 FROM pg_sleep(0.3)" },
        { .db = db, .sql = "SELECT 3", .scope = 5 * WEFT_SEC },
    };
    weft_time t0 = weft_now();
    run_together(k, 3, -1);
    EXPECT_EQ(k[0].rc, -ETIMEDOUT);
    EXPECT(k[1].rc == 0 && k[1].v == 2);
    EXPECT(k[2].rc == 0 && k[2].v == 3);
    EXPECT(weft_now() - t0 < 1500 * WEFT_MS);          /* the server stopped the short one */
    EXPECT_EQ(weft_pg_close(db, WEFT_SEC), 0);
    return 0;
}
static void test_timeouts(void **s) { (void)s; RUN(timeouts, NULL); }

/* ---- a deadlock the grouping caused is retried, not reported ------------------------------ */

static int deadlock(void *unused)
{
    (void)unused;
    weft_pg *a = open_one(), *b = open_one();          /* two connections, a group on each */
    pgt_exec(a, "DROP TABLE IF EXISTS grp_dl");
    pgt_exec(a, "CREATE TABLE grp_dl (k int PRIMARY KEY, v int)");
    pgt_exec(a, "INSERT INTO grp_dl VALUES (1, 0), (2, 0)");
    /* writes go alone: these are reads (SELECTs) of functions that write */
    pgt_exec(a, "CREATE OR REPLACE FUNCTION grp_dl_bump(int) RETURNS int LANGUAGE sql AS"
            " 'UPDATE grp_dl SET v = v + 1 WHERE k = $1 RETURNING k'");
    const char *now = "SELECT grp_dl_bump($1::int)";
    const char *later = "SELECT grp_dl_bump($1::int) FROM pg_sleep(0.2)";
    /* alone, each statement commits at once and none waits for another;
     * grouped, a's transaction holds row 1 while it wants 2, b's holds 2
     * and wants 1 */
    struct job j[4] = {
        { .db = a, .sql = now, .nparams = 1, .p = { 1 } },
        { .db = a, .sql = later, .nparams = 1, .p = { 2 } },
        { .db = b, .sql = now, .nparams = 1, .p = { 2 } },
        { .db = b, .sql = later, .nparams = 1, .p = { 1 } },
    };
    run_together(j, 4, -1);
    for (int i = 0; i < 4; i++) {
        if (j[i].rc)
            fprintf(stderr, "deadlock: job %d: %s %s\n", i, weft_errname(j[i].rc), j[i].state);
        EXPECT_EQ(j[i].rc, 0);
    }
    EXPECT_EQ(pgt_int(a, "SELECT sum(v) FROM grp_dl"), 4);   /* each update once */
    EXPECT_EQ(pgt_int(a, "SELECT min(v) FROM grp_dl"), 2);
    pgt_exec(a, "DROP TABLE grp_dl");
    EXPECT_EQ(weft_pg_close(a, WEFT_SEC), 0);
    EXPECT_EQ(weft_pg_close(b, WEFT_SEC), 0);
    return 0;
}
static void test_deadlock(void **s) { (void)s; RUN(deadlock, NULL); }

/* ---- what never joins a group ---------------------------------------------------------------- */

/* setval is not transactional and not idempotent once others take values
 * in between: run again after its group failed, it would set the sequence
 * back. It runs in a transaction of its own. */
static int alone(void *unused)
{
    (void)unused;
    weft_pg *db = open_one();
    pgt_exec(db, "DROP SEQUENCE IF EXISTS grp_seq");
    pgt_exec(db, "CREATE SEQUENCE grp_seq");
    struct job j[3] = {
        { .db = db, .sql = "SELECT grp_xid()" },
        { .db = db, .sql = "SELECT setval('grp_seq', 5) * 0 + grp_xid()" },
        { .db = db, .sql = "SELECT grp_xid()" },
    };
    run_together(j, 3, -1);
    for (int i = 0; i < 3; i++)
        EXPECT_EQ(j[i].rc, 0);
    EXPECT(j[1].v != j[0].v && j[1].v != j[2].v);
    pgt_exec(db, "DROP SEQUENCE grp_seq");
    EXPECT_EQ(weft_pg_close(db, WEFT_SEC), 0);
    return 0;
}
static void test_alone(void **s) { (void)s; RUN(alone, NULL); }

/* What shows the transaction itself keeps a transaction of its own: its
 * id (txid_current, pg_current_xact_id), its start (now(),
 * current_timestamp, transaction_timestamp) and transaction-level
 * advisory locks. A task that asks gets its own, as rule 3 of the
 * contract says, not its group's. */
static int own_transaction(void *unused)
{
    (void)unused;
    weft_pg *db = open_one();
    static const char *const sqls[] = {
        "SELECT txid_current()",
        "SELECT pg_current_xact_id()::text::bigint",
        "SELECT (extract(epoch FROM now()) * 1000000)::bigint",
        "SELECT (extract(epoch FROM current_timestamp) * 1000000)::bigint",
        "SELECT (extract(epoch FROM transaction_timestamp()) * 1000000)::bigint",
        "SELECT grp_xid() FROM pg_advisory_xact_lock(4242)",
        "SELECT grp_xid() + 0 * extract(epoch FROM 'now'::timestamptz)::bigint",
        "SELECT NOW  () IS NOT NULL AND grp_xid() > 0",
    };
    enum { N = 8 };
    for (size_t q = 0; q < sizeof sqls / sizeof *sqls; q++) {
        struct job j[N + 1];
        for (int i = 0; i < N; i++)
            j[i] = (struct job){ .db = db, .sql = sqls[q] };
        j[N] = (struct job){ .db = db, .sql = "SELECT grp_xid()" };
        run_together(j, N + 1, -1);
        for (int i = 0; i <= N; i++)
            EXPECT_EQ(j[i].rc, 0);
        for (int i = 0; i < N && q < 7; i++)
            for (int k = i + 1; k < N; k++)
                if (j[i].v == j[k].v)
                    fail_msg("%s: tasks %d and %d got %lld, one transaction", sqls[q], i, k,
                             (long long)j[i].v);
    }
    EXPECT_EQ(weft_pg_close(db, WEFT_SEC), 0);
    return 0;
}
static void test_own_transaction(void **s) { (void)s; RUN(own_transaction, NULL); }

/* ---- many tasks, failures, cancels and timeouts mixed ------------------------------------ */

struct mixed { weft_pg *db; int i, kind, rc, yields; weft_task *self; int64_t v; char error[256]; };

static int mixed_job(void *arg)
{
    struct mixed *m = arg;
    m->self = weft_self();
    static const char *const sql[] = {
        "SELECT grp_mix_put($1::int)",                  /* 0-3: fine */
        "SELECT grp_mix_put($1::int / 0)",              /* 4: fails */
        "SELECT grp_mix_put($1::int)",                  /* 5: cancelled */
        "SELECT grp_mix_put($1::int) FROM pg_sleep(0.02)", /* 6: times out */
    };
    int kind = m->kind < 4 ? 0 : m->kind - 3;
    weft_pg_val p[] = { WEFT_PG_INT(m->i) };
    weft_pg_result r;
    weft_scope sc;
    weft_scope_enter(&sc, kind == 3 ? 5 * WEFT_MS : WEFT_FOREVER);
    m->rc = weft_pg_query(m->db, &r, sql[kind], 1, p);
    weft_scope_exit(&sc);
    m->v = -1;
    if (!m->rc)
        weft_pg_get_int(&r, 0, 0, &m->v);
    snprintf(m->error, sizeof m->error, "%s", r.error);
    weft_pg_result_free(&r);
    m->self = NULL;                                    /* its task may be reused once it ends */
    return 0;
}

static int mixed_cancel(void *arg)
{
    struct mixed *m = arg;
    for (int i = 0; i < m->yields; i++)
        weft_yield();
    if (m->self)
        weft_task_cancel(m->self);
    return 0;
}

/* every task gets its own answer; every insert that returned 0 is there
 * once, every failed or timed-out one is not, a cancelled one at most
 * once (the primary key would make a second run an error) */
static int mixed(void *unused)
{
    (void)unused;
    weft_pg *db = weft_pg_new(pgt_url(), NULL);
    EXPECT(db != NULL);
    pgt_exec(db, "DROP TABLE IF EXISTS grp_mix");
    pgt_exec(db, "CREATE TABLE grp_mix (k int PRIMARY KEY)");
    pgt_exec(db, "CREATE OR REPLACE FUNCTION grp_mix_put(int) RETURNS int LANGUAGE sql AS"
             " 'INSERT INTO grp_mix VALUES ($1) RETURNING k'");
    int n = test_scale(3000);
    struct mixed *m = calloc((size_t)n, sizeof *m);
    unsigned seed = 12345;
    int64_t again = regrouped();
    weft_group *g = weft_group_new();
    for (int i = 0; i < n; i++) {
        seed = seed * 1103515245 + 12345;
        m[i] = (struct mixed){ .db = db, .i = i, .kind = i % 7, .yields = (int)(seed >> 16) % 40 };
        EXPECT_EQ(weft_spawn(g, mixed_job, &m[i], "mixed"), 0);
        if (m[i].kind == 5)
            EXPECT_EQ(weft_spawn(g, mixed_cancel, &m[i], "cancel"), 0);
    }
    EXPECT_EQ(weft_group_wait(g), 0);
    weft_pg_result r;
    EXPECT_EQ(weft_pg_query(db, &r, "SELECT k FROM grp_mix", 0, NULL), 0);
    char *there = calloc((size_t)n, 1);
    for (int row = 0; row < r.nrows; row++) {
        int64_t k = -1;
        EXPECT_EQ(weft_pg_get_int(&r, row, 0, &k), 0);
        if (k >= 0 && k < n)
            there[k]++;
    }
    weft_pg_result_free(&r);
    int bad = 0, cancelled = 0;
    for (int i = 0; i < n; i++) {
        int kind = m[i].kind;
        bool ok;
        if (kind < 4)
            ok = m[i].rc == 0 && m[i].v == i && there[i] == 1;
        else if (kind == 4)
            ok = m[i].rc == -WEFT_EPG && !there[i];
        else if (kind == 5)
            ok = (m[i].rc == 0 && m[i].v == i && there[i] == 1) ||
                 (m[i].rc == -ECANCELED && there[i] <= 1);
        else
            ok = m[i].rc == -ETIMEDOUT && !there[i];
        cancelled += kind == 5 && m[i].rc == -ECANCELED;
        if (!ok && bad++ < 10)
            fprintf(stderr, "mixed: task %d kind %d: %s v %lld, row %d: %s\n", i, kind,
                    weft_errname(m[i].rc), (long long)m[i].v, there[i], m[i].error);
    }
    fprintf(stderr, "mixed: %d tasks, %d cancelled, %lld run again alone\n", n, cancelled,
            (long long)(regrouped() - again));
    EXPECT(regrouped() > again);
    EXPECT_EQ(bad, 0);
    EXPECT(cancelled > 0);
    weft_pg_stats st;
    weft_pg_stats_get(db, &st);
    EXPECT_EQ(st.in_use, 0);
    EXPECT_EQ(st.queries, (uint64_t)n + 4);     /* and drop, create, create function, select */
    free(there);
    free(m);
    pgt_exec(db, "DROP TABLE grp_mix");
    EXPECT_EQ(weft_pg_close(db, WEFT_SEC), 0);
    return 0;
}
static void test_mixed(void **s) { (void)s; RUN(mixed, NULL); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grouped),
        cmocka_unit_test(test_error_alone),
        cmocka_unit_test(test_positions),
        cmocka_unit_test(test_cancelled),
        cmocka_unit_test(test_timeouts),
        cmocka_unit_test(test_deadlock),
        cmocka_unit_test(test_alone),
        cmocka_unit_test(test_own_transaction),
        cmocka_unit_test(test_mixed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
