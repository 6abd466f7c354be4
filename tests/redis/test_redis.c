/*
 * weft redis against a real redis-server 7 that the fixture started
 * (scripts/services): commands and replies, auto-pipelining across tasks,
 * cancellation that never hands a reply to the wrong task, exclusive
 * connections (MULTI/EXEC, explicit pipelines, blocking commands bounded
 * by the scope), AUTH, and a restart under load.
 */
#include "services.h"
#include "test.h"
#include "weft/redis.h"

static const char *url(void)
{
    const char *u = weft_test_service_url("redis");
    return u ? u : "redis://unset";
}

static weft_redis *open_r(const weft_redis_opts *o)
{
    weft_redis *r = weft_redis_new(url(), o);
    EXPECT(r != NULL);
    return r;
}

/* ---- commands and replies ------------------------------------------------------------- */

static int basics(void *unused)
{
    (void)unused;
    weft_redis *r = open_r(NULL);
    weft_redis_reply *rep;
    EXPECT_EQ(weft_redis_commandf(r, &rep, "SET weft:t:%s %b", "k1", "a b\0c", (size_t)5), 0);
    EXPECT(rep && rep->type == WEFT_REDIS_STATUS && strcmp(rep->str, "OK") == 0);
    weft_redis_reply_free(rep);
    EXPECT_EQ(weft_redis_commandf(r, &rep, "GET weft:t:k1"), 0);
    EXPECT(rep && rep->type == WEFT_REDIS_STRING && rep->len == 5 && memcmp(rep->str, "a b\0c", 5) == 0);
    weft_redis_reply_free(rep);
    const char *argv[] = { "DEL", "weft:t:list" };
    EXPECT_EQ(weft_redis_command(r, &rep, 2, argv, NULL), 0);
    EXPECT(rep && rep->type == WEFT_REDIS_INTEGER);
    weft_redis_reply_free(rep);
    EXPECT_EQ(weft_redis_commandf(r, &rep, "RPUSH weft:t:list a b c"), 0);
    EXPECT(rep && rep->integer == 3);
    weft_redis_reply_free(rep);
    EXPECT_EQ(weft_redis_commandf(r, &rep, "LRANGE weft:t:list 0 -1"), 0);
    EXPECT(rep && rep->type == WEFT_REDIS_ARRAY && rep->elements == 3 &&
           strcmp(rep->element[2].str, "c") == 0);
    weft_redis_reply_free(rep);
    EXPECT_EQ(weft_redis_commandf(r, &rep, "GET weft:t:nothing"), 0);
    EXPECT(rep && rep->type == WEFT_REDIS_NIL);
    weft_redis_reply_free(rep);
    /* an error reply is -WEFT_EREDIS, with the reply */
    EXPECT_EQ(weft_redis_commandf(r, &rep, "INCR weft:t:list"), -WEFT_EREDIS);
    EXPECT(rep && rep->type == WEFT_REDIS_ERROR && strstr(rep->str, "WRONGTYPE"));
    weft_redis_reply_free(rep);
    EXPECT_EQ(weft_redis_commandf(r, &rep, "NOSUCHCOMMAND"), -WEFT_EREDIS);
    weft_redis_reply_free(rep);
    /* the connection is fine after them */
    EXPECT_EQ(weft_redis_commandf(r, &rep, "PING"), 0);
    EXPECT(rep && strcmp(rep->str, "PONG") == 0);
    weft_redis_reply_free(rep);
    EXPECT_EQ(weft_redis_commandf(r, &rep, "SET a %q"), -EINVAL);   /* bad format */
    EXPECT(rep == NULL);
    EXPECT_EQ(weft_redis_close(r, WEFT_SEC), 0);
    return 0;
}
static void test_basics(void **s) { (void)s; RUN(basics, NULL); }

/* ---- auto-pipelining ----------------------------------------------------------------------- */

struct many { weft_redis *r; int i; int bad; };

static int incr_own(void *arg)
{
    struct many *m = arg;
    char key[32], val[32];
    snprintf(key, sizeof key, "weft:t:own:%d", m->i);
    snprintf(val, sizeof val, "%d", m->i * 3);
    weft_redis_reply *rep;
    if (weft_redis_command(m->r, &rep, 3, (const char *[]){ "SET", key, val }, NULL))
        m->bad = 1;
    weft_redis_reply_free(rep);
    if (weft_redis_command(m->r, &rep, 2, (const char *[]){ "GET", key }, NULL) || !rep ||
        strcmp(rep->str, val) != 0)
        m->bad = 1;
    weft_redis_reply_free(rep);
    return 0;
}

static int pipelining(void *unused)
{
    (void)unused;
    weft_redis *r = open_r(NULL);
    int n = test_scale(2000);
    struct many *m = calloc((size_t)n, sizeof *m);
    weft_group *g = weft_group_new();
    for (int i = 0; i < n; i++) {
        m[i] = (struct many){ r, i, 0 };
        weft_spawn(g, incr_own, &m[i], "own");
    }
    EXPECT_EQ(weft_group_wait(g), 0);
    int bad = 0;
    for (int i = 0; i < n; i++)
        bad += m[i].bad;
    EXPECT_EQ(bad, 0);
    free(m);
    EXPECT_EQ(weft_redis_close(r, WEFT_SEC), 0);
    return 0;
}
static void test_pipelining(void **s) { (void)s; RUN(pipelining, NULL); }

/* ---- cancellation: a reply is never someone else's ------------------------------------------ */

static int victim(void *arg)
{
    struct many *m = arg;
    weft_redis_reply *rep;
    char key[32];
    snprintf(key, sizeof key, "weft:t:v:%d", m->i % 50);
    weft_redis_command(m->r, &rep, 2, (const char *[]){ "INCR", key }, NULL);
    weft_redis_reply_free(rep);
    return 0;
}

static int cancels(void *unused)
{
    (void)unused;
    weft_redis *r = open_r(NULL);
    int n = test_scale(10000);
    struct many *m = calloc((size_t)n, sizeof *m);
    for (int round = 0; round < n; round += 500) {
        weft_group *g = weft_group_new();
        for (int i = round; i < round + 500 && i < n; i++) {
            m[i] = (struct many){ r, i, 0 };
            weft_spawn(g, victim, &m[i], "victim");
        }
        weft_yield();
        weft_group_cancel(g);
        weft_group_wait(g);
    }
    struct many *a = calloc(500, sizeof *a);
    weft_group *g = weft_group_new();
    for (int i = 0; i < 500; i++) {
        a[i] = (struct many){ r, 100000 + i, 0 };
        weft_spawn(g, incr_own, &a[i], "own");
    }
    EXPECT_EQ(weft_group_wait(g), 0);
    int bad = 0;
    for (int i = 0; i < 500; i++)
        bad += a[i].bad;
    EXPECT_EQ(bad, 0);
    free(a);
    free(m);
    EXPECT_EQ(weft_redis_close(r, WEFT_SEC), 0);
    return 0;
}
static void test_cancels(void **s) { (void)s; RUN(cancels, NULL); }

/* ---- exclusive connections --------------------------------------------------------------------- */

static int exclusive(void *unused)
{
    (void)unused;
    weft_redis *r = open_r(NULL);
    weft_redis_conn *c;
    weft_redis_reply *rep;
    EXPECT_EQ(weft_redis_acquire(r, &c), 0);
    EXPECT_EQ(weft_redis_conn_command(c, &rep, 1, (const char *[]){ "MULTI" }, NULL), 0);
    weft_redis_reply_free(rep);
    EXPECT_EQ(weft_redis_conn_command(c, &rep, 3, (const char *[]){ "SET", "weft:t:m", "1" }, NULL), 0);
    EXPECT(rep && strcmp(rep->str, "QUEUED") == 0);
    weft_redis_reply_free(rep);
    EXPECT_EQ(weft_redis_conn_command(c, &rep, 1, (const char *[]){ "EXEC" }, NULL), 0);
    EXPECT(rep && rep->type == WEFT_REDIS_ARRAY && rep->elements == 1);
    weft_redis_reply_free(rep);
    /* a MULTI left open and replies left unread: release cleans up */
    EXPECT_EQ(weft_redis_conn_command(c, &rep, 1, (const char *[]){ "MULTI" }, NULL), 0);
    weft_redis_reply_free(rep);
    EXPECT_EQ(weft_redis_append(c, 3, (const char *[]){ "SET", "weft:t:m", "2" }, NULL), 0);
    EXPECT_EQ(weft_redis_append(c, 2, (const char *[]){ "GET", "weft:t:m" }, NULL), 0);
    weft_redis_release(r, c);
    EXPECT_EQ(weft_redis_commandf(r, &rep, "GET weft:t:m"), 0);
    EXPECT(rep && strcmp(rep->str, "1") == 0);          /* the MULTI was discarded */
    weft_redis_reply_free(rep);
    /* explicit pipeline */
    EXPECT_EQ(weft_redis_acquire(r, &c), 0);
    for (int i = 0; i < 100; i++)
        EXPECT_EQ(weft_redis_append(c, 2, (const char *[]){ "INCR", "weft:t:p" }, NULL), 0);
    long long last = 0;
    for (int i = 0; i < 100; i++) {
        EXPECT_EQ(weft_redis_get_reply(c, &rep), 0);
        EXPECT(rep && rep->integer == last + 1);
        last = rep ? rep->integer : last;
        weft_redis_reply_free(rep);
    }
    EXPECT_EQ(weft_redis_get_reply(c, &rep), -EINVAL);   /* nothing owed */
    /* a blocking command is bounded by the scope, not command_timeout */
    weft_scope sc;
    weft_time t0 = weft_now();
    weft_scope_enter(&sc, 200 * WEFT_MS);
    int rc = weft_redis_conn_command(c, &rep, 3, (const char *[]){ "BLPOP", "weft:t:empty", "0" }, NULL);
    weft_scope_exit(&sc);
    EXPECT_EQ(rc, -ETIMEDOUT);
    EXPECT(rep == NULL);
    EXPECT(weft_now() - t0 < WEFT_SEC);
    weft_redis_release(r, c);                          /* broken by the cut read: closed */
    EXPECT_EQ(weft_redis_commandf(r, &rep, "PING"), 0);
    weft_redis_reply_free(rep);

    EXPECT_EQ(weft_redis_close(r, WEFT_SEC), 0);
    return 0;
}
static void test_exclusive(void **s) { (void)s; RUN(exclusive, NULL); }

/* ---- connecting ------------------------------------------------------------------------------------ */

static int connecting(void *unused)
{
    (void)unused;
    weft_redis_reply *rep;
    errno = 0;
    EXPECT(weft_redis_new("redis://127.0.0.1:99999", NULL) == NULL);
    EXPECT_EQ(errno, EINVAL);
    EXPECT(weft_redis_new("http://127.0.0.1", NULL) == NULL);
    weft_redis *r = weft_redis_new("redis://127.0.0.1:1", &(weft_redis_opts){ .min_size = 1 });
    EXPECT(r != NULL);
    weft_time t0 = weft_now();
    EXPECT_EQ(weft_redis_commandf(r, &rep, "PING"), -ECONNREFUSED);
    EXPECT_EQ(weft_redis_commandf(r, &rep, "PING"), -ECONNREFUSED);
    EXPECT(weft_now() - t0 < WEFT_SEC);
    EXPECT_EQ(weft_redis_close(r, WEFT_SEC), 0);
    /* ACL user weft (password weft) exists; a wrong password is refused */
    char u[256];
    const char *base = url();
    snprintf(u, sizeof u, "redis://weft:nope@%s", base + strlen("redis://"));
    r = weft_redis_new(u, NULL);
    EXPECT_EQ(weft_redis_commandf(r, &rep, "PING"), -EACCES);
    EXPECT_EQ(weft_redis_close(r, WEFT_SEC), 0);
    snprintf(u, sizeof u, "redis://weft:weft@%s/3", base + strlen("redis://"));
    r = weft_redis_new(u, NULL);
    EXPECT_EQ(weft_redis_commandf(r, &rep, "CLIENT INFO"), -EINVAL);   /* not on a shared one */
    weft_redis_conn *c;
    EXPECT_EQ(weft_redis_acquire(r, &c), 0);
    EXPECT_EQ(weft_redis_conn_command(c, &rep, 2, (const char *[]){ "CLIENT", "INFO" }, NULL), 0);
    EXPECT(rep && strstr(rep->str, "db=3") && strstr(rep->str, "name=redis"));
    weft_redis_reply_free(rep);
    weft_redis_release(r, c);
    EXPECT_EQ(weft_redis_close(r, WEFT_SEC), 0);
    return 0;
}
static void test_connecting(void **s) { (void)s; RUN(connecting, NULL); }


/* ---- WATCH: a conflicting write aborts the transaction ------------------------------------- */

static int watch(void *unused)
{
    (void)unused;
    weft_redis *r = open_r(NULL);
    weft_redis_conn *c;
    weft_redis_reply *rep;
    EXPECT_EQ(weft_redis_acquire(r, &c), 0);
    EXPECT_EQ(weft_redis_conn_command(c, &rep, 2, (const char *[]){ "WATCH", "weft:t:w" }, NULL), 0);
    weft_redis_reply_free(rep);
    /* someone else writes the key */
    EXPECT_EQ(weft_redis_commandf(r, &rep, "SET weft:t:w other"), 0);
    weft_redis_reply_free(rep);
    EXPECT_EQ(weft_redis_conn_command(c, &rep, 1, (const char *[]){ "MULTI" }, NULL), 0);
    weft_redis_reply_free(rep);
    EXPECT_EQ(weft_redis_conn_command(c, &rep, 3, (const char *[]){ "SET", "weft:t:w", "mine" }, NULL), 0);
    weft_redis_reply_free(rep);
    EXPECT_EQ(weft_redis_conn_command(c, &rep, 1, (const char *[]){ "EXEC" }, NULL), 0);
    EXPECT(rep && rep->type == WEFT_REDIS_NIL);        /* aborted */
    weft_redis_reply_free(rep);
    weft_redis_release(r, c);
    EXPECT_EQ(weft_redis_commandf(r, &rep, "GET weft:t:w"), 0);
    EXPECT(rep && strcmp(rep->str, "other") == 0);
    weft_redis_reply_free(rep);
    EXPECT_EQ(weft_redis_close(r, WEFT_SEC), 0);
    return 0;
}
static void test_watch(void **s) { (void)s; RUN(watch, NULL); }

/* ---- pub/sub, across a restart, and a subscriber that falls behind -------------------------- */

/* publishes until someone receives it (a subscription takes a moment) */
static void publish_seen(weft_redis *r, const char *ch, const char *data)
{
    for (int i = 0; i < 500; i++) {
        weft_redis_reply *rep;
        int rc = weft_redis_commandf(r, &rep, "PUBLISH %s %s", ch, data);
        long long n = rc == 0 && rep ? rep->integer : 0;
        weft_redis_reply_free(rep);
        if (n > 0)
            return;
        weft_sleep(10 * WEFT_MS);
    }
    EXPECT(!"published to nobody");
}

struct waiter { weft_redis_sub *s; int rc; };

static int waits(void *arg)
{
    struct waiter *w = arg;
    weft_redis_msg m;
    w->rc = weft_redis_sub_recv(w->s, &m);
    weft_redis_msg_free(&m);
    return 0;
}

static int do_restart(void *arg);

static int pubsub(void *unused)
{
    (void)unused;
    weft_redis *r = open_r(NULL);
    weft_redis_sub *s, *p;
    EXPECT_EQ(weft_redis_subscribe(r, (const char *[]){ "weft:ch" }, 1, false, &s), 0);
    EXPECT_EQ(weft_redis_subscribe(r, (const char *[]){ "weft:p:*" }, 1, true, &p), 0);
    weft_redis_msg m;
    publish_seen(r, "weft:ch", "hello");
    EXPECT_EQ(weft_redis_sub_recv(s, &m), 0);
    EXPECT(m.channel && strcmp(m.channel, "weft:ch") == 0 && m.pattern == NULL);
    EXPECT(m.data && strcmp(m.data, "hello") == 0 && m.len == 5);
    weft_redis_msg_free(&m);
    publish_seen(r, "weft:p:x", "pat");
    EXPECT_EQ(weft_redis_sub_recv(p, &m), 0);
    EXPECT(m.pattern && strcmp(m.pattern, "weft:p:*") == 0 && strcmp(m.channel, "weft:p:x") == 0);
    weft_redis_msg_free(&m);
    /* across a restart: subscribed again by itself */
    EXPECT_EQ(weft_run_blocking(do_restart, NULL), 0);
    publish_seen(r, "weft:ch", "again");
    int rc;
    do {                                               /* what was published to nobody is lost */
        rc = weft_redis_sub_recv(s, &m);
        bool again = rc == 0 && strcmp(m.data, "again") == 0;
        weft_redis_msg_free(&m);
        if (again)
            break;
    } while (rc == 0);
    EXPECT_EQ(rc, 0);
    /* a subscriber that falls behind: told once, the rest still comes */
    weft_redis_conn *c;
    EXPECT_EQ(weft_redis_acquire(r, &c), 0);
    for (int i = 0; i < 10050; i++)
        weft_redis_append(c, 3, (const char *[]){ "PUBLISH", "weft:ch", "x" }, NULL);
    for (int i = 0; i < 10050; i++) {
        weft_redis_reply *rep;
        weft_redis_get_reply(c, &rep);
        weft_redis_reply_free(rep);
    }
    weft_redis_release(r, c);
    weft_sleep(200 * WEFT_MS);
    EXPECT_EQ(weft_redis_sub_recv(s, &m), -ENOBUFS);
    EXPECT_EQ(weft_redis_sub_recv(s, &m), 0);
    weft_redis_msg_free(&m);
    /* a close wakes a waiting receiver */
    weft_redis_sub_close(p);
    weft_redis_sub *q;
    EXPECT_EQ(weft_redis_subscribe(r, (const char *[]){ "weft:quiet" }, 1, false, &q), 0);
    struct waiter w = { q, 1 };
    weft_group *g = weft_group_new();
    weft_spawn(g, waits, &w, "waits");
    weft_sleep(50 * WEFT_MS);
    weft_redis_sub_close(q);
    weft_group_wait(g);
    EXPECT_EQ(w.rc, -EPIPE);
    weft_redis_sub_close(s);
    /* refused by an ACL: said, not retried for ever */
    EXPECT_EQ(weft_redis_acquire(r, &c), 0);
    weft_redis_reply *rep;
    EXPECT_EQ(weft_redis_conn_command(c, &rep, 6, (const char *[]){ "ACL", "SETUSER", "nosub", "on",
                                                                    ">pw", "+@all" }, NULL), 0);
    weft_redis_reply_free(rep);
    EXPECT_EQ(weft_redis_conn_command(c, &rep, 4, (const char *[]){ "ACL", "SETUSER", "nosub",
                                                                    "resetchannels" }, NULL), 0);
    weft_redis_reply_free(rep);
    weft_redis_release(r, c);
    char u[256];
    snprintf(u, sizeof u, "redis://nosub:pw@%s", url() + strlen("redis://"));
    weft_redis *n = weft_redis_new(u, NULL);
    weft_redis_sub *no;
    EXPECT_EQ(weft_redis_subscribe(n, (const char *[]){ "weft:ch" }, 1, false, &no), 0);
    weft_scope sc;
    weft_scope_enter(&sc, 5 * WEFT_SEC);
    EXPECT_EQ(weft_redis_sub_recv(no, &m), -EACCES);
    weft_scope_exit(&sc);
    weft_redis_sub_close(no);
    EXPECT_EQ(weft_redis_close(n, WEFT_SEC), 0);
    EXPECT_EQ(weft_redis_close(r, WEFT_SEC), 0);
    return 0;
}
static void test_pubsub(void **s) { (void)s; RUN(pubsub, NULL); }


/* ---- TLS: rediss:// with a private CA ------------------------------------------------------ */

static int tls(void *unused)
{
    (void)unused;
    char path[1024], u[256] = "";
    snprintf(path, sizeof path, "%s/url-tls", weft__test_service_dir("redis"));
    FILE *f = fopen(path, "r");
    EXPECT(f != NULL);
    if (!f)
        return 0;
    if (!fgets(u, sizeof u, f))
        u[0] = 0;
    fclose(f);
    u[strcspn(u, "\r\n")] = 0;
    snprintf(path, sizeof path, "%s/ca.pem", weft__test_service_dir("redis"));
    weft_tls_ctx *ctx = weft_tls_client_new();
    EXPECT_EQ(weft_tls_ctx_load_ca(ctx, path), 0);
    weft_redis *r = weft_redis_new(u, &(weft_redis_opts){ .tls = ctx });
    weft_redis_reply *rep;
    EXPECT_EQ(weft_redis_commandf(r, &rep, "PING"), 0);
    EXPECT(rep && strcmp(rep->str, "PONG") == 0);
    weft_redis_reply_free(rep);
    EXPECT_EQ(weft_redis_close(r, WEFT_SEC), 0);
    /* the system's CAs do not know the test CA: refused */
    r = weft_redis_new(u, NULL);
    EXPECT_EQ(weft_redis_commandf(r, &rep, "PING"), -WEFT_ETLS_VERIFY);
    EXPECT_EQ(weft_redis_close(r, WEFT_SEC), 0);
    weft_tls_ctx_free(ctx);
    return 0;
}
static void test_tls(void **s) { (void)s; RUN(tls, NULL); }

/* ---- restarted under load ------------------------------------------------------------------------------ */

struct load { weft_redis *r; int ok, failed, late; bool stop; };

static int loader(void *arg)
{
    struct load *l = arg;
    while (!l->stop) {
        weft_redis_reply *rep;
        weft_scope sc;
        weft_time t0 = weft_now();
        weft_scope_enter(&sc, 2 * WEFT_SEC);
        int rc = weft_redis_commandf(l->r, &rep, "INCR weft:t:load");
        weft_scope_exit(&sc);
        if (weft_now() - t0 > 2500 * WEFT_MS)
            l->late++;
        if (rc == 0)
            l->ok++;
        else {
            l->failed++;
            EXPECT(rc == -ECONNRESET || rc == -WEFT_EEOF || rc == -ECONNREFUSED || rc == -EPIPE ||
                   rc == -ETIMEDOUT || rc == -WEFT_EPOOL_TIMEOUT || rc == -WEFT_EBROKEN);
            weft_sleep(10 * WEFT_MS);
        }
        weft_redis_reply_free(rep);
    }
    return 0;
}

static int do_restart(void *arg)
{
    (void)arg;
    return weft_test_service_restart("redis");
}

static int restart(void *unused)
{
    (void)unused;
    weft_redis *r = open_r(NULL);
    struct load l = { r, 0, 0, 0, false };
    weft_group *g = weft_group_new();
    for (int i = 0; i < 30; i++)
        weft_spawn(g, loader, &l, "loader");
    weft_sleep(300 * WEFT_MS);
    EXPECT(l.ok > 0);
    EXPECT_EQ(weft_run_blocking(do_restart, NULL), 0);
    int at = l.ok;
    WAIT_UNTIL(l.ok > at + 100);
    EXPECT(l.ok > at + 100);
    l.stop = true;
    EXPECT_EQ(weft_group_wait(g), 0);
    EXPECT_EQ(l.late, 0);
    EXPECT_EQ(weft_redis_close(r, WEFT_SEC), 0);
    return 0;
}
static void test_restart(void **s) { (void)s; RUN(restart, NULL); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basics),
        cmocka_unit_test(test_pipelining),
        cmocka_unit_test(test_cancels),
        cmocka_unit_test(test_exclusive),
        cmocka_unit_test(test_watch),
        cmocka_unit_test(test_pubsub),
        cmocka_unit_test(test_tls),
        cmocka_unit_test(test_connecting),
        cmocka_unit_test(test_restart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
