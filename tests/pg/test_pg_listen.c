/*
 * weft pg's LISTEN/NOTIFY and COPY against a real PostgreSQL that the
 * test fixture started (scripts/services): notifications with channel,
 * payload and pid, quoting, a listener across a server restart, a slow
 * receiver past the bound, close while a task waits; COPY in and out of a
 * million rows in flat memory, aborted by either callback, cancelled and
 * timed out midway, refused where it cannot run.
 */
#include "procstat.h"
#include "pgtest.h"

/* ---- COPY where it cannot run -------------------------------------------------------- */

/* COPY through the pool's calls or a connection's query is refused: in
 * pipeline mode libpq hands out the COPY result again and again (the
 * batch span the loop forever before it was refused) */
static int copy_refused(void *unused)
{
    (void)unused;
    weft_pg *db = pgt_open(NULL);
    pgt_exec(db, "DROP TABLE IF EXISTS weft_t_refused");
    pgt_exec(db, "CREATE TABLE weft_t_refused (id int)");
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
    pgt_exec(db, "DROP TABLE weft_t_refused");
    EXPECT_EQ(weft_pg_close(db, WEFT_SEC), 0);
    return 0;
}
static void test_copy_refused(void **s) { (void)s; RUN(copy_refused, NULL); }

/* ---- LISTEN/NOTIFY ------------------------------------------------------------------ */

/* pg_notify(channel, payload) on a connection of the pool's; its pid */
static int notify(weft_pg *db, const char *channel, const char *payload)
{
    weft_pg_conn *c;
    int rc = weft_pg_acquire(db, &c);
    if (rc)
        return rc;
    weft_pg_result r;
    weft_pg_val p[] = { WEFT_PG_TEXT(channel), WEFT_PG_TEXT(payload) };
    int64_t pid = -1;
    rc = weft_pg_conn_query(c, &r, "SELECT pg_backend_pid(), pg_notify($1, $2)", 2, p);
    if (!rc)
        rc = weft_pg_get_int(&r, 0, 0, &pid);
    if (rc)
        fprintf(stderr, "notify: %s\n", r.error);
    weft_pg_result_free(&r);
    weft_pg_release(db, c);
    return rc ? rc : (int)pid;
}

/* the next notification, within 10 s */
static int recv_one(weft_pg_listener *l, weft_pg_notify *m)
{
    weft_scope sc;
    weft_scope_enter(&sc, 10 * WEFT_SEC);
    int rc = weft_pg_listener_recv(l, m);
    weft_scope_exit(&sc);
    return rc;
}

static void expect_note(weft_pg_listener *l, const char *channel, const char *payload, int pid)
{
    weft_pg_notify m;
    int rc = recv_one(l, &m);
    EXPECT_EQ(rc, 0);
    if (rc == 0) {
        EXPECT(strcmp(m.channel, channel) == 0);
        EXPECT(strcmp(m.payload, payload) == 0);
        if (pid)
            EXPECT_EQ(m.pid, pid);
        if (strcmp(m.channel, channel) || strcmp(m.payload, payload))
            fprintf(stderr, "got %s: %s\n", m.channel, m.payload);
    }
    weft_pg_notify_free(&m);
}

static int notifications(void *unused)
{
    (void)unused;
    weft_pg *db = pgt_open(NULL);
    weft_pg_listener *l;
    const char *chans[] = { "weft_a", "weft_b", "Weft Mixed \"Quoted\" Name" };
    EXPECT_EQ(weft_pg_listen(db, chans, 3, &l), 0);
    /* arrives with its channel, payload and the sender's pid */
    int pid = notify(db, "weft_a", "hello");
    EXPECT(pid > 0);
    expect_note(l, "weft_a", "hello", pid);
    /* several channels, in order; a name that needs quotes is kept as it is */
    EXPECT(notify(db, "weft_b", "two") > 0);
    EXPECT(notify(db, chans[2], "three") > 0);
    EXPECT(notify(db, "weft_other", "not listened") > 0);
    EXPECT(notify(db, "weft_a", "") > 0);
    expect_note(l, "weft_b", "two", 0);
    expect_note(l, chans[2], "three", 0);
    expect_note(l, "weft_a", "", 0);
    /* NOTIFY in SQL folds an unquoted name: weft_mixed is another channel */
    weft_pg_notify m;
    weft_scope sc;
    weft_scope_enter(&sc, 200 * WEFT_MS);
    EXPECT_EQ(weft_pg_listener_recv(l, &m), -ETIMEDOUT);
    weft_scope_exit(&sc);
    EXPECT(m.channel == NULL);
    /* bad names and arguments */
    weft_pg_listener *bad = (weft_pg_listener *)1;
    const char *empty[] = { "" }, *none[] = { NULL };
    char long_name[65];
    memset(long_name, 'x', 64);
    long_name[64] = 0;
    const char *too_long[] = { "weft_ok", long_name };
    EXPECT_EQ(weft_pg_listen(db, empty, 1, &bad), -EINVAL);
    EXPECT(bad == NULL);
    EXPECT_EQ(weft_pg_listen(db, none, 1, &bad), -EINVAL);
    EXPECT_EQ(weft_pg_listen(db, too_long, 2, &bad), -EINVAL);
    EXPECT_EQ(weft_pg_listen(db, chans, 0, &bad), -EINVAL);
    /* 63 bytes is the most: taken */
    long_name[63] = 0;
    const char *longest[] = { long_name };
    weft_pg_listener *l2;
    EXPECT_EQ(weft_pg_listen(db, longest, 1, &l2), 0);
    EXPECT(notify(db, long_name, "long") > 0);
    expect_note(l2, long_name, "long", 0);
    weft_pg_listener_close(l2);
    /* a name the server refuses (not UTF-8): the server's error */
    const char *invalid[] = { "weft_\xff" };
    EXPECT_EQ(weft_pg_listen(db, invalid, 1, &bad), -WEFT_EPG);
    weft_pg_listener_close(l);
    /* the listener's connection is not the pool's */
    weft_pg_stats st;
    weft_pg_stats_get(db, &st);
    EXPECT(st.size <= 5);
    EXPECT_EQ(weft_pg_close(db, WEFT_SEC), 0);
    return 0;
}
static void test_notifications(void **s) { (void)s; RUN(notifications, NULL); }

/* a receiver that falls behind: the newest past 10,000 are dropped,
 * counted, said once; the kept ones come in order */
static int slow_receiver(void *unused)
{
    (void)unused;
    weft_pg *db = pgt_open(NULL);
    weft_pg_listener *l;
    const char *chans[] = { "weft_slow" };
    EXPECT_EQ(weft_pg_listen(db, chans, 1, &l), 0);
    pgt_exec(db, "SELECT pg_notify('weft_slow', i::text) FROM generate_series(1, 10500) i");
    WAIT_UNTIL(weft_pg_listener_dropped(l) == 500);
    EXPECT_EQ(weft_pg_listener_dropped(l), 500);
    weft_pg_notify m;
    EXPECT_EQ(weft_pg_listener_recv(l, &m), -ENOBUFS);
    for (int i = 1; i <= 10000; i++) {
        int rc = weft_pg_listener_recv(l, &m);
        if (rc || atoi(m.payload) != i) {
            EXPECT_EQ(rc, 0);
            EXPECT_EQ(rc ? -1 : atoi(m.payload), i);
            weft_pg_notify_free(&m);
            break;
        }
        weft_pg_notify_free(&m);
    }
    weft_scope sc;
    weft_scope_enter(&sc, 100 * WEFT_MS);
    EXPECT_EQ(weft_pg_listener_recv(l, &m), -ETIMEDOUT);   /* said once only */
    weft_scope_exit(&sc);
    /* room again */
    EXPECT(notify(db, "weft_slow", "after") > 0);
    expect_note(l, "weft_slow", "after", 0);
    weft_pg_listener_close(l);
    EXPECT_EQ(weft_pg_close(db, WEFT_SEC), 0);
    return 0;
}
static void test_slow_receiver(void **s) { (void)s; RUN(slow_receiver, NULL); }

struct waiting { weft_pg_listener *l; int rc; bool in; };

static int waiter(void *arg)
{
    struct waiting *w = arg;
    weft_pg_notify m;
    w->in = true;
    w->rc = weft_pg_listener_recv(w->l, &m);
    weft_pg_notify_free(&m);
    return 0;
}

/* close while tasks wait in recv: they get -EPIPE, nothing is used after
 * it is freed (ASan); the pool's close stops a listener too */
static int close_waiting(void *unused)
{
    (void)unused;
    weft_pg *db = pgt_open(NULL);
    const char *chans[] = { "weft_close" };
    struct waiting w[2] = { { 0 } };
    EXPECT_EQ(weft_pg_listen(db, chans, 1, &w[0].l), 0);
    w[1].l = w[0].l;
    weft_group *g = weft_group_new();
    weft_spawn(g, waiter, &w[0], "waiter");
    weft_spawn(g, waiter, &w[1], "waiter");
    WAIT_UNTIL(w[0].in && w[1].in);
    weft_sleep(WEFT_MS);                       /* both parked in recv */
    weft_pg_listener_close(w[0].l);
    EXPECT_EQ(weft_group_wait(g), 0);
    EXPECT_EQ(w[0].rc, -EPIPE);
    EXPECT_EQ(w[1].rc, -EPIPE);
    /* the pool closed under a listener and a waiting receiver */
    struct waiting v = { 0 };
    EXPECT_EQ(weft_pg_listen(db, chans, 1, &v.l), 0);
    g = weft_group_new();
    weft_spawn(g, waiter, &v, "waiter");
    WAIT_UNTIL(v.in);
    weft_sleep(WEFT_MS);
    EXPECT_EQ(weft_pg_close(db, WEFT_SEC), 0);
    EXPECT_EQ(weft_group_wait(g), 0);
    EXPECT_EQ(v.rc, -EPIPE);
    weft_pg_notify m;
    EXPECT_EQ(weft_pg_listener_recv(v.l, &m), -EPIPE);
    weft_pg_listener_close(v.l);              /* after the pool's close: still fine */
    return 0;
}
static void test_close_waiting(void **s) { (void)s; RUN(close_waiting, NULL); }

static int do_restart(void *arg)
{
    (void)arg;
    return weft_test_service_restart("pg");
}

/* across a server restart: reconnected, LISTENs again, says -ECONNRESET
 * once they are back, then a NOTIFY after it arrives */
static int listen_restart(void *unused)
{
    (void)unused;
    weft_pg *db = pgt_open(NULL);
    weft_pg_listener *l;
    const char *chans[] = { "weft_restart" };
    EXPECT_EQ(weft_pg_listen(db, chans, 1, &l), 0);
    EXPECT(notify(db, "weft_restart", "before") > 0);
    expect_note(l, "weft_restart", "before", 0);
    EXPECT_EQ(weft_run_blocking(do_restart, NULL), 0);
    weft_pg_notify m;
    weft_scope sc;
    weft_scope_enter(&sc, 30 * WEFT_SEC);
    EXPECT_EQ(weft_pg_listener_recv(l, &m), -ECONNRESET);
    weft_scope_exit(&sc);
    /* the pool's connections may have gone with the server: try again */
    int pid = -1;
    for (int i = 0; i < 50 && pid < 0; i++)
        if ((pid = notify(db, "weft_restart", "after")) < 0)
            weft_sleep(100 * WEFT_MS);
    EXPECT(pid > 0);
    expect_note(l, "weft_restart", "after", pid);
    weft_pg_listener_close(l);
    EXPECT_EQ(weft_pg_close(db, WEFT_SEC), 0);
    return 0;
}
static void test_listen_restart(void **s) { (void)s; RUN(listen_restart, NULL); }

/* ---- COPY ------------------------------------------------------------------------------ */

static int64_t count_rows(weft_pg_conn *c, const char *sql)
{
    weft_pg_result r;
    int64_t n = -1;
    int rc = weft_pg_conn_query(c, &r, sql, 0, NULL);
    if (rc)
        fprintf(stderr, "count_rows(%s): %s\n", sql, r.error);
    EXPECT_EQ(rc, 0);
    EXPECT_EQ(weft_pg_get_int(&r, 0, 0, &n), 0);
    weft_pg_result_free(&r);
    return n;
}

#define PAD "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghij"

/* rows "i\tPAD\n" for i in 1..n, in pieces of any size */
struct gen {
    int64_t next, n, abort_at;
    int abort_code;
    weft_time slow;                            /* a sleep per piece */
    char pending[160];
    size_t plen, poff;
};

static int gen_read(void *ctx, void *buf, size_t len)
{
    struct gen *g = ctx;
    char *p = buf;
    size_t fill = 0;
    int rc = g->slow ? weft_sleep(g->slow) : 0;
    if (rc)
        return rc;                             /* interrupted: abort with it */
    while (fill < len) {
        if (g->poff == g->plen) {
            if (g->next > g->n)
                break;
            if (g->abort_at && g->next == g->abort_at)
                return g->abort_code;
            g->plen = (size_t)snprintf(g->pending, sizeof g->pending, "%lld\t%s\n",
                                       (long long)g->next++, PAD);
            g->poff = 0;
        }
        size_t k = g->plen - g->poff < len - fill ? g->plen - g->poff : len - fill;
        memcpy(p + fill, g->pending + g->poff, k);
        g->poff += k;
        fill += k;
    }
    return (int)fill;
}

/* checks COPY TO's data as it comes: rows in order */
struct sink {
    int64_t rows, bytes, abort_after;
    int abort_code;
    bool bad;
    int64_t next;
    char part[256];
    size_t plen;
};

static int sink_write(void *ctx, const void *buf, size_t len)
{
    struct sink *s = ctx;
    const char *p = buf;
    s->bytes += (int64_t)len;
    for (size_t i = 0; i < len; i++) {
        if (p[i] != '\n') {
            if (s->plen < sizeof s->part - 1)
                s->part[s->plen++] = p[i];
            continue;
        }
        s->part[s->plen] = 0;
        if (atoll(s->part) != s->next + 1 || !strstr(s->part, PAD))
            s->bad = true;
        s->next++;
        s->rows++;
        s->plen = 0;
    }
    if (s->abort_after && s->bytes >= s->abort_after)
        return s->abort_code;
    return 0;
}

/* a fixed string, in one piece */
struct fixed { const char *p; };

static int fixed_read(void *ctx, void *buf, size_t len)
{
    struct fixed *f = ctx;
    size_t n = strlen(f->p) < len ? strlen(f->p) : len;
    memcpy(buf, f->p, n);
    f->p += n;
    return (int)n;
}

static void reset_peak(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (f) {
        fputs("5", f);                        /* VmHWM back to VmRSS */
        fclose(f);
    }
}

/* the measure itself sees memory: a block of 32 MiB touched shows in the
 * peak (else the bounds below could not fail) */
static void check_peak_measure(void)
{
    reset_peak();
    long before = vm_kb("VmHWM");
    size_t n = (size_t)32 << 20;
    volatile char *p = malloc(n);
    for (size_t i = 0; p && i < n; i += 4096)
        p[i] = 1;
    EXPECT(vm_kb("VmHWM") - before >= 30 * 1024);
    free((void *)p);
}

static void make_table(weft_pg *db)
{
    pgt_exec(db, "DROP TABLE IF EXISTS weft_t_copy");
    pgt_exec(db, "CREATE UNLOGGED TABLE weft_t_copy (id int8, pad text)");
}

/* a million rows in and out (~100 MB each way) with flat memory */
static int copy_big(void *unused)
{
    (void)unused;
    weft_pg *db = pgt_open(NULL);
    make_table(db);
    int64_t n = test_scale(1000000);
    weft_pg_conn *c;
    EXPECT_EQ(weft_pg_acquire(db, &c), 0);
    check_peak_measure();
    reset_peak();
    long before = vm_kb("VmHWM");
    struct gen g = { .next = 1, .n = n };
    int64_t rows = -1;
    int rc = weft_pg_copy_in(c, "COPY weft_t_copy (id, pad) FROM STDIN", gen_read, &g, &rows);
    if (rc)
        fprintf(stderr, "copy_in: %s: %s\n", weft_strerror(rc),
                weft_pg_copy_error(c) ? weft_pg_copy_error(c)->message : "");
    EXPECT_EQ(rc, 0);
    EXPECT_EQ(rows, n);
    long in_peak = vm_kb("VmHWM");
    EXPECT_EQ(count_rows(c, "SELECT count(*) FROM weft_t_copy"), n);
    EXPECT_EQ(count_rows(c, "SELECT sum(id)::int8 FROM weft_t_copy"), n * (n + 1) / 2);
    reset_peak();
    long before_out = vm_kb("VmHWM");
    struct sink s = { 0 };
    rows = -1;
    rc = weft_pg_copy_out(c, "COPY (SELECT id, pad FROM weft_t_copy ORDER BY id) TO STDOUT",
                          sink_write, &s, &rows);
    EXPECT_EQ(rc, 0);
    EXPECT_EQ(rows, n);
    EXPECT_EQ(s.rows, n);
    EXPECT(!s.bad);
    long out_peak = vm_kb("VmHWM");
    fprintf(stderr, "copy: %lld rows, %lld bytes; peak RSS +%ld kB in, +%ld kB out\n",
            (long long)n, (long long)s.bytes, in_peak - before, out_peak - before_out);
    EXPECT(in_peak - before < 64 * 1024);
    EXPECT(out_peak - before_out < 64 * 1024);
    /* the connection is back in pipeline mode: statements work */
    EXPECT_EQ(count_rows(c, "SELECT 42"), 42);
    weft_pg_release(db, c);
    pgt_exec(db, "DROP TABLE weft_t_copy");
    EXPECT_EQ(weft_pg_close(db, WEFT_SEC), 0);
    return 0;
}
static void test_copy_big(void **s) { (void)s; RUN(copy_big, NULL); }

/* what COPY TO sent, whole */
struct text { char buf[256]; size_t len; };

static int text_write(void *ctx, const void *buf, size_t len)
{
    struct text *t = ctx;
    if (t->len + len >= sizeof t->buf)
        return -EMSGSIZE;
    memcpy(t->buf + t->len, buf, len);
    t->len += len;
    t->buf[t->len] = 0;
    return 0;
}

/* the task's deadline reaches the server as the COPY's statement_timeout */
static int copy_budget(void *unused)
{
    (void)unused;
    weft_pg *db = pgt_open(NULL);
    weft_pg_conn *c;
    EXPECT_EQ(weft_pg_acquire(db, &c), 0);
    struct text t = { .len = 0 };
    weft_scope sc;
    weft_scope_enter(&sc, 5 * WEFT_SEC);
    EXPECT_EQ(weft_pg_copy_out(c, "COPY (SELECT current_setting('statement_timeout')) TO STDOUT",
                               text_write, &t, NULL), 0);
    weft_scope_exit(&sc);
    /* "5s" or "4998ms", not the session's 30 s */
    int v = atoi(t.buf);
    bool ms = strstr(t.buf, "ms") != NULL;
    fprintf(stderr, "statement_timeout in a 5 s scope: %s", t.buf);
    EXPECT((ms && v > 4000 && v <= 5000) || strcmp(t.buf, "5s\n") == 0);
    /* without a scope: query_timeout's */
    t.len = 0;
    EXPECT_EQ(weft_pg_copy_out(c, "COPY (SELECT current_setting('statement_timeout')) TO STDOUT",
                               text_write, &t, NULL), 0);
    EXPECT(strcmp(t.buf, "30s\n") == 0);
    weft_pg_release(db, c);
    EXPECT_EQ(weft_pg_close(db, WEFT_SEC), 0);
    /* a COPY's error stays with its holder: the next one (the same
     * connection, in a pool of one) does not see it */
    weft_pg_opts one = { .min_size = 1, .max_size = 1 };
    db = pgt_open(&one);
    EXPECT_EQ(weft_pg_acquire(db, &c), 0);
    EXPECT_EQ(weft_pg_copy_out(c, "COPY nothing_here TO STDOUT", text_write, &t, NULL), -WEFT_EPG);
    EXPECT(weft_pg_copy_error(c) != NULL);
    weft_pg_release(db, c);
    EXPECT_EQ(weft_pg_acquire(db, &c), 0);
    EXPECT(weft_pg_copy_error(c) == NULL);
    weft_pg_release(db, c);
    EXPECT_EQ(weft_pg_close(db, WEFT_SEC), 0);
    return 0;
}
static void test_copy_budget(void **s) { (void)s; RUN(copy_budget, NULL); }

/* the callbacks abort: nothing copied in, the connection reusable */
static int copy_aborts(void *unused)
{
    (void)unused;
    weft_pg *db = pgt_open(NULL);
    make_table(db);
    weft_pg_conn *c;
    EXPECT_EQ(weft_pg_acquire(db, &c), 0);
    struct gen g = { .next = 1, .n = 100000, .abort_at = 50000, .abort_code = -EIO };
    int64_t rows = -1;
    EXPECT_EQ(weft_pg_copy_in(c, "COPY weft_t_copy FROM STDIN", gen_read, &g, &rows), -EIO);
    EXPECT_EQ(rows, 0);
    EXPECT(weft_pg_copy_error(c) == NULL);
    EXPECT_EQ(count_rows(c, "SELECT count(*) FROM weft_t_copy"), 0);
    /* now for real, in a transaction */
    EXPECT_EQ(weft_pg_begin(c, NULL), 0);
    g = (struct gen){ .next = 1, .n = 100000 };
    EXPECT_EQ(weft_pg_copy_in(c, "COPY weft_t_copy FROM STDIN", gen_read, &g, &rows), 0);
    EXPECT_EQ(rows, 100000);
    EXPECT_EQ(weft_pg_commit(c, NULL), 0);
    /* COPY out aborted by write after some data: cancelled on the server */
    struct sink s = { .abort_after = 100000, .abort_code = -EPIPE };
    EXPECT_EQ(weft_pg_copy_out(c, "COPY weft_t_copy TO STDOUT", sink_write, &s, &rows), -EPIPE);
    EXPECT(s.rows > 0 && s.rows < 100000);
    EXPECT_EQ(count_rows(c, "SELECT count(*) FROM weft_t_copy"), 100000);
    /* a syntax error: the server's message */
    EXPECT_EQ(weft_pg_copy_in(c, "COPY weft_t_copy FROM STDIN WITH (FORMAT", gen_read, &g, &rows),
              -WEFT_EPG);
    const weft_pg_error_info *e = weft_pg_copy_error(c);
    EXPECT(e && strcmp(e->sqlstate, "42601") == 0 && strstr(e->message, "syntax error"));
    EXPECT_EQ(weft_pg_copy_out(c, "COPY no_such_table TO STDOUT", sink_write, &s, &rows),
              -WEFT_EPG);
    e = weft_pg_copy_error(c);
    EXPECT(e && strcmp(e->sqlstate, "42P01") == 0);
    /* a bad row: the server's error at the end, nothing stays */
    struct fixed f = { "1\tx\nnot a number\ty\n" };
    EXPECT_EQ(weft_pg_copy_in(c, "COPY weft_t_copy FROM STDIN", fixed_read, &f, &rows), -WEFT_EPG);
    e = weft_pg_copy_error(c);
    EXPECT(e && strcmp(e->sqlstate, "22P02") == 0);
    /* a few rows, and server-side statements after it */
    g = (struct gen){ .next = 1, .n = 10 };
    EXPECT_EQ(weft_pg_copy_in(c, "COPY weft_t_copy FROM STDIN", gen_read, &g, &rows), 0);
    EXPECT_EQ(rows, 10);
    /* the wrong direction, or no COPY: -EINVAL, the connection clean */
    g = (struct gen){ .next = 1, .n = 10 };
    EXPECT_EQ(weft_pg_copy_in(c, "COPY weft_t_copy TO STDOUT", gen_read, &g, &rows), -EINVAL);
    EXPECT_EQ(weft_pg_copy_out(c, "COPY weft_t_copy FROM STDIN", sink_write, &s, &rows), -EINVAL);
    EXPECT_EQ(weft_pg_copy_in(c, "SELECT 1", gen_read, &g, &rows), -EINVAL);
    EXPECT_EQ(weft_pg_copy_in(c, "COPY weft_t_copy FROM STDIN", NULL, &g, &rows), -EINVAL);
    EXPECT_EQ(count_rows(c, "SELECT count(*) FROM weft_t_copy"), 100010);
    weft_pg_release(db, c);
    pgt_exec(db, "DROP TABLE weft_t_copy");
    EXPECT_EQ(weft_pg_close(db, WEFT_SEC), 0);
    return 0;
}
static void test_copy_aborts(void **s) { (void)s; RUN(copy_aborts, NULL); }

/* COPY TO of 100 million rows, streamed (a set-returning function in
 * the select list: in FROM it would be gathered whole first) */

/* a statement running on the server now, by its text */
static int64_t running(weft_pg *db, const char *like)
{
    weft_pg_result r;
    weft_pg_val p[] = { WEFT_PG_TEXT(like) };
    int64_t n = -1;
    int rc = weft_pg_query(db, &r,
                           "SELECT count(*) FROM pg_stat_activity WHERE state = 'active'"
                           " AND query LIKE $1 AND pid <> pg_backend_pid()", 1, p);
    if (!rc)
        weft_pg_get_int(&r, 0, 0, &n);
    weft_pg_result_free(&r);
    return n;
}

struct copier { weft_pg *db; struct sink s; int rc; bool clean; };

static int copier(void *arg)
{
    struct copier *k = arg;
    weft_pg_conn *c;
    if ((k->rc = weft_pg_acquire(k->db, &c)))
        return 0;
    k->rc = weft_pg_copy_out(c, "COPY (SELECT generate_series(1, 100000000), '" PAD "')"
                             " TO STDOUT", sink_write, &k->s, NULL);
    weft_pg_result r;
    weft_scope sc;
    weft_scope_enter_shielded(&sc, 5 * WEFT_SEC);   /* the task is cancelled: look anyway */
    int rc = weft_pg_conn_query(c, &r, "SELECT 1", 0, NULL);
    weft_scope_exit(&sc);
    k->clean = rc == 0;
    EXPECT(rc == 0 || rc == -WEFT_EBROKEN);
    weft_pg_result_free(&r);
    weft_pg_release(k->db, c);
    return 0;
}

/* COPY cut short by a cancel or the deadline: the server's COPY stops, the
 * connection is clean or closed, the pool goes on */
static int copy_cancelled(void *unused)
{
    (void)unused;
    weft_pg *db = pgt_open(NULL);
    make_table(db);
    /* the task cancelled in the middle of COPY TO */
    struct copier k = { .db = db };
    weft_group *g = weft_group_new();
    weft_spawn(g, copier, &k, "copier");
    WAIT_UNTIL(k.s.rows > 1000);
    weft_group_cancel(g);
    EXPECT_EQ(weft_group_wait(g), 0);
    EXPECT_EQ(k.rc, -ECANCELED);
    EXPECT(k.s.rows > 1000 && !k.s.bad);
    fprintf(stderr, "cancelled COPY TO after %lld rows: connection %s\n", (long long)k.s.rows,
            k.clean ? "clean" : "closed");
    EXPECT(k.clean);                          /* a server on this machine answers the cancel */
    int64_t left = 1;
    for (int i = 0; i < 100 && left; i++)
        if ((left = running(db, "COPY (SELECT generate_series%")))
            weft_sleep(10 * WEFT_MS);
    EXPECT_EQ(left, 0);
    /* COPY FROM whose scope expires while data still comes */
    weft_pg_conn *c;
    EXPECT_EQ(weft_pg_acquire(db, &c), 0);
    struct gen gn = { .next = 1, .n = 100000000, .slow = WEFT_MS };
    weft_scope sc;
    weft_scope_enter(&sc, 300 * WEFT_MS);
    int rc = weft_pg_copy_in(c, "COPY weft_t_copy FROM STDIN", gen_read, &gn, NULL);
    weft_scope_exit(&sc);
    EXPECT_EQ(rc, -ETIMEDOUT);                 /* the callback's sleep, or our wait */
    EXPECT(gn.next > 1000);
    weft_pg_result r;
    rc = weft_pg_conn_query(c, &r, "SELECT count(*) FROM weft_t_copy", 0, NULL);
    EXPECT(rc == 0 || rc == -WEFT_EBROKEN);
    int64_t n = -1;
    if (rc == 0) {
        EXPECT_EQ(weft_pg_get_int(&r, 0, 0, &n), 0);
        EXPECT_EQ(n, 0);
    }
    weft_pg_result_free(&r);
    weft_pg_release(db, c);
    /* the deadline while the server sends: COPY TO in a short scope */
    EXPECT_EQ(weft_pg_acquire(db, &c), 0);
    struct sink s = { 0 };
    weft_scope_enter(&sc, 200 * WEFT_MS);
    rc = weft_pg_copy_out(c, "COPY (SELECT generate_series(1, 100000000), '" PAD "')"
                          " TO STDOUT", sink_write, &s, NULL);
    weft_scope_exit(&sc);
    EXPECT(rc == -ETIMEDOUT);
    EXPECT(s.rows > 0 && !s.bad);
    rc = weft_pg_conn_query(c, &r, "SELECT 1", 0, NULL);
    EXPECT(rc == 0 || rc == -WEFT_EBROKEN);
    weft_pg_result_free(&r);
    weft_pg_release(db, c);
    /* the deadline before the COPY's data starts: the statement stops on
     * the server too, the connection is clean or closed */
    EXPECT_EQ(weft_pg_acquire(db, &c), 0);
    weft_scope_enter(&sc, 300 * WEFT_MS);
    rc = weft_pg_copy_out(c, "COPY (SELECT 1 FROM pg_sleep(5)) TO STDOUT", sink_write, &s, NULL);
    weft_scope_exit(&sc);
    EXPECT_EQ(rc, -ETIMEDOUT);
    rc = weft_pg_conn_query(c, &r, "SELECT 1", 0, NULL);
    EXPECT(rc == 0 || rc == -WEFT_EBROKEN);
    weft_pg_result_free(&r);
    weft_pg_release(db, c);
    /* the pool goes on, no COPY left running (the pg_sleep(5) stopped) */
    EXPECT_EQ(running(db, "COPY%"), 0);
    pgt_exec(db, "DROP TABLE weft_t_copy");
    EXPECT_EQ(weft_pg_close(db, WEFT_SEC), 0);
    return 0;
}
static void test_copy_cancelled(void **s) { (void)s; RUN(copy_cancelled, NULL); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_copy_refused),
        cmocka_unit_test(test_notifications),
        cmocka_unit_test(test_slow_receiver),
        cmocka_unit_test(test_close_waiting),
        cmocka_unit_test(test_copy_big),
        cmocka_unit_test(test_copy_aborts),
        cmocka_unit_test(test_copy_budget),
        cmocka_unit_test(test_copy_cancelled),
        cmocka_unit_test(test_listen_restart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
