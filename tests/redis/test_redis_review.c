/* Review tests for src/redis (reviewer's, failing on purpose). Run as
 * weft_service_test(redis_review redis SERVICES redis TIMEOUT 120 SOURCES test_redis_review.c) */
#include <stdlib.h>
#include "services.h"
#include "test.h"
#include "weft/redis.h"

static const char *url(void)
{
    const char *u = weft_test_service_url("redis");
    return u ? u : "redis://unset";
}

/* 1. a big command written while the reader flushes: the reader's
 * flush_before_read races the writer's writev on the same weft_conn */
struct big { weft_redis *r; int rc; size_t n; char *val; };

static int small_get(void *arg)
{
    struct big *b = arg;
    weft_redis_reply *rep;
    b->rc = weft_redis_commandf(b->r, &rep, "GET weft:rv:small");
    fprintf(stderr, "GET reply type %d str %.60s\n", rep ? rep->type : -1, rep && rep->str ? rep->str : "-");
    weft_redis_reply_free(rep);
    return 0;
}

static int big_set(void *arg)
{
    struct big *b = arg;
    weft_redis_reply *rep;
    b->rc = weft_redis_commandf(b->r, &rep, "SET weft:rv:big %b", b->val, b->n);
    fprintf(stderr, "SET reply type %d str %.60s\n", rep ? rep->type : -1, rep && rep->str ? rep->str : "-");
    weft_redis_reply_free(rep);
    return 0;
}

static int bigwrite(void *unused)
{
    (void)unused;
    weft_redis *r = weft_redis_new(url(), NULL);
    weft_redis_reply *rep;
    EXPECT_EQ(weft_redis_commandf(r, &rep, "PING"), 0);
    weft_redis_reply_free(rep);
    size_t n = 64u << 20;
    char *val = malloc(n);
    memset(val, 'v', n);
    struct big a = { r, 1, n, val }, b = { r, 1, 0, NULL };
    weft_group *g = weft_group_new();
    weft_spawn(g, small_get, &b, "small");
    weft_spawn(g, big_set, &a, "big");
    weft_group_wait(g);
    fprintf(stderr, "small rc %d (%s), big rc %d (%s)\n", b.rc, weft_strerror(b.rc), a.rc,
            weft_strerror(a.rc));
    EXPECT_EQ(b.rc, 0);
    EXPECT_EQ(a.rc, 0);
    EXPECT_EQ(weft_redis_commandf(r, &rep, "STRLEN weft:rv:big"), 0);
    fprintf(stderr, "STRLEN reply type %d int %lld str %.80s\n", rep ? rep->type : -1, rep ? rep->integer : 0, rep && rep->str ? rep->str : "-");
    for (int i = 0; i < 3; i++) { weft_redis_reply *q; int qr = weft_redis_commandf(r, &q, "ECHO e%d", i);
      fprintf(stderr, "ECHO e%d -> rc %d type %d str %.60s\n", i, qr, q ? q->type : -1, q && q->str ? q->str : "-"); weft_redis_reply_free(q); }
    EXPECT(rep && rep->integer == (long long)n);
    weft_redis_reply_free(rep);
    free(val);
    EXPECT_EQ(weft_redis_close(r, WEFT_SEC), 0);
    return 0;
}
static void test_bigwrite(void **s) { (void)s; RUN(bigwrite, NULL); }

/* 2. SELECT on an exclusive connection leaks into shared commands */
static int select_leak(void *unused)
{
    (void)unused;
    weft_redis *r = weft_redis_new(url(), &(weft_redis_opts){ .max_size = 1 });
    weft_redis_reply *rep;
    EXPECT_EQ(weft_redis_commandf(r, &rep, "SET weft:rv:db zero"), 0);
    weft_redis_reply_free(rep);
    weft_redis_conn *c;
    EXPECT_EQ(weft_redis_acquire(r, &c), 0);
    EXPECT_EQ(weft_redis_conn_command(c, &rep, 2, (const char *[]){ "SELECT", "7" }, NULL), 0);
    weft_redis_reply_free(rep);
    weft_redis_release(r, c);
    EXPECT_EQ(weft_redis_commandf(r, &rep, "GET weft:rv:db"), 0);
    EXPECT(rep && rep->type == WEFT_REDIS_STRING && strcmp(rep->str, "zero") == 0);
    if (rep && rep->type == WEFT_REDIS_NIL)
        fprintf(stderr, "select_leak: the pool lent a connection still on db 7\n");
    weft_redis_reply_free(rep);
    EXPECT_EQ(weft_redis_close(r, WEFT_SEC), 0);
    return 0;
}
static void test_select_leak(void **s) { (void)s; RUN(select_leak, NULL); }

/* 3. SUBSCRIBE on an exclusive connection (the header recommends it):
 * released with replies still coming; the next shared command gets them */
static int subscribe_leak(void *unused)
{
    (void)unused;
    weft_redis *r = weft_redis_new(url(), &(weft_redis_opts){ .max_size = 1 });
    weft_redis_reply *rep;
    weft_redis_conn *c;
    EXPECT_EQ(weft_redis_acquire(r, &c), 0);
    EXPECT_EQ(weft_redis_conn_command(c, &rep, 3, (const char *[]){ "SUBSCRIBE", "weft:rv:a", "weft:rv:b" }, NULL), 0);
    weft_redis_reply_free(rep);
    weft_redis_release(r, c);
    weft_sleep(50 * WEFT_MS);
    int rc = weft_redis_commandf(r, &rep, "ECHO hello");
    fprintf(stderr, "subscribe_leak: ECHO rc %d type %d\n", rc, rep ? rep->type : -1);
    EXPECT_EQ(rc, 0);
    EXPECT(rep && rep->type == WEFT_REDIS_STRING && strcmp(rep->str, "hello") == 0);
    weft_redis_reply_free(rep);
    EXPECT_EQ(weft_redis_close(r, WEFT_SEC), 0);
    return 0;
}
static void test_subscribe_leak(void **s) { (void)s; RUN(subscribe_leak, NULL); }

/* 4. WATCH left on an exclusive connection aborts someone else's EXEC */
static int watch_leak(void *unused)
{
    (void)unused;
    weft_redis *r = weft_redis_new(url(), &(weft_redis_opts){ .max_size = 1 });
    weft_redis_reply *rep;
    weft_redis_conn *c;
    EXPECT_EQ(weft_redis_acquire(r, &c), 0);
    EXPECT_EQ(weft_redis_conn_command(c, &rep, 2, (const char *[]){ "WATCH", "weft:rv:w" }, NULL), 0);
    weft_redis_reply_free(rep);
    weft_redis_release(r, c);                 /* task failed before MULTI */
    /* someone changes the key through another client... simulated with SET on a 2nd pool */
    weft_redis *r2 = weft_redis_new(url(), NULL);
    EXPECT_EQ(weft_redis_commandf(r2, &rep, "SET weft:rv:w x"), 0);
    weft_redis_reply_free(rep);
    EXPECT_EQ(weft_redis_close(r2, WEFT_SEC), 0);
    EXPECT_EQ(weft_redis_acquire(r, &c), 0);
    EXPECT_EQ(weft_redis_conn_command(c, &rep, 1, (const char *[]){ "MULTI" }, NULL), 0);
    weft_redis_reply_free(rep);
    EXPECT_EQ(weft_redis_conn_command(c, &rep, 3, (const char *[]){ "SET", "weft:rv:other", "1" }, NULL), 0);
    weft_redis_reply_free(rep);
    EXPECT_EQ(weft_redis_conn_command(c, &rep, 1, (const char *[]){ "EXEC" }, NULL), 0);
    EXPECT(rep && rep->type == WEFT_REDIS_ARRAY);   /* NIL: aborted by a stranger's WATCH */
    if (rep && rep->type == WEFT_REDIS_NIL)
        fprintf(stderr, "watch_leak: EXEC aborted by a WATCH left by an earlier holder\n");
    weft_redis_reply_free(rep);
    weft_redis_release(r, c);
    EXPECT_EQ(weft_redis_close(r, WEFT_SEC), 0);
    return 0;
}
static void test_watch_leak(void **s) { (void)s; RUN(watch_leak, NULL); }

/* 5. a command with no reply on the shared path shifts every reply */
struct one { weft_redis *r; const char *cmd; char got[64]; };
static int run_one(void *arg)
{
    struct one *o = arg;
    weft_redis_reply *rep;
    weft_scope sc;
    weft_scope_enter(&sc, 500 * WEFT_MS);
    int rc = weft_redis_commandf(o->r, &rep, o->cmd);
    weft_scope_exit(&sc);
    snprintf(o->got, sizeof o->got, "%d:%s", rc, rep && rep->str ? rep->str : "-");
    weft_redis_reply_free(rep);
    return 0;
}
static int reply_skip(void *unused)
{
    (void)unused;
    weft_redis *r = weft_redis_new(url(), NULL);
    weft_redis_reply *rep;
    EXPECT_EQ(weft_redis_commandf(r, &rep, "PING"), 0);
    weft_redis_reply_free(rep);
    struct one o[3] = { { r, "CLIENT REPLY SKIP", "" }, { r, "ECHO first", "" }, { r, "ECHO second", "" } };
    weft_group *g = weft_group_new();
    for (int i = 0; i < 3; i++)
        weft_spawn(g, run_one, &o[i], "one");
    weft_group_wait(g);
    fprintf(stderr, "reply_skip: [%s] [%s] [%s]\n", o[0].got, o[1].got, o[2].got);
    EXPECT(strstr(o[0].got, "second") == NULL);     /* a task got another's reply */
    EXPECT_EQ(weft_redis_close(r, WEFT_SEC), 0);
    return 0;
}
static void test_reply_skip(void **s) { (void)s; RUN(reply_skip, NULL); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_select_leak),
        cmocka_unit_test(test_subscribe_leak),
        cmocka_unit_test(test_watch_leak),
        cmocka_unit_test(test_reply_skip),
        cmocka_unit_test(test_bigwrite),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
