/* The generic pool: bounds, waiting, timeouts, replacement, lifetimes,
 * close, deadlock, and exact accounting under random cancellation. */
#include <stdatomic.h>

#include "test.h"

struct res_ctx {
    int open, made, fail_create, fail_check, fail_reset, next_id;
    int attempts;                          /* creates tried */
    weft_time create_takes, check_takes;   /* a slow connect, a slow health check */
    bool reset_blocks;
};
struct res { int id; };

static int r_create(void *ctx, void **out)
{
    struct res_ctx *c = ctx;
    c->attempts++;
    if (c->fail_create)
        return c->fail_create;
    int rc = c->create_takes ? weft_sleep(c->create_takes) : weft_yield(); /* a connect */
    if (rc)
        return rc;
    struct res *r = malloc(sizeof *r);
    r->id = ++c->next_id;
    c->open++;
    c->made++;
    *out = r;
    return 0;
}
static void r_destroy(void *ctx, void *res)
{
    ((struct res_ctx *)ctx)->open--;
    free(res);
}
static int r_check(void *ctx, void *res)
{
    (void)res;
    struct res_ctx *c = ctx;
    if (c->check_takes) {
        int rc = weft_sleep(c->check_takes);   /* a ping round trip */
        if (rc)
            return rc;
    }
    return c->fail_check ? -EIO : 0;
}
static int r_reset(void *ctx, void *res)
{
    (void)res;
    struct res_ctx *c = ctx;
    if (c->reset_blocks)
        weft_sleep(WEFT_MS);                   /* misuse: reset must not suspend */
    return c->fail_reset ? -EIO : 0;
}

static weft_pool_stats stats(weft_pool *p)
{
    weft_pool_stats s;
    weft_pool_stats_get(p, &s);
    return s;
}
static const weft_pool_ops ops = { r_create, r_destroy, r_check, r_reset };

static int basics(void *unused)
{
    (void)unused;
    struct res_ctx rc = { 0 };
    weft_pool_config cfg = { .name = "basic", .max_size = 3 };
    weft_pool *p = weft_pool_new(&cfg, &ops, &rc);
    weft_pooled *a, *b;
    EXPECT_EQ(weft_pool_acquire(p, &a), 0);
    EXPECT_EQ(weft_pool_acquire(p, &b), 0);
    EXPECT(weft_pooled_get(a) != weft_pooled_get(b));
    weft_pool_stats s;
    weft_pool_stats_get(p, &s);
    EXPECT_EQ(s.in_use, 2);
    EXPECT_EQ(s.size, 2);
    int id = ((struct res *)weft_pooled_get(b))->id;
    weft_pool_release(p, b);
    EXPECT_EQ(weft_pool_acquire(p, &b), 0);    /* reused, LIFO */
    EXPECT_EQ(((struct res *)weft_pooled_get(b))->id, id);
    EXPECT_EQ(rc.made, 2);
    weft_pool_release(p, a);
    weft_pool_release(p, b);
    weft_pool_stats_get(p, &s);
    EXPECT_EQ(s.idle, 2);
    EXPECT_EQ(s.in_use, 0);
    /* trim: the longest idle goes first, and never more than is idle */
    EXPECT_EQ(weft_pool_acquire(p, &a), 0);
    int warm = ((struct res *)weft_pooled_get(a))->id;
    weft_pool_release(p, a);
    EXPECT_EQ(weft_pool_trim(p, 1), 1);
    EXPECT_EQ(rc.open, 1);
    EXPECT_EQ(weft_pool_acquire(p, &a), 0);
    EXPECT_EQ(((struct res *)weft_pooled_get(a))->id, warm);   /* the warm one stayed */
    weft_pool_release(p, a);
    EXPECT_EQ(weft_pool_trim(p, 5), 1);
    EXPECT_EQ(weft_pool_trim(p, 5), 0);
    EXPECT_EQ(weft_pool_trim(NULL, 1), -EINVAL);
    weft_pool_stats_get(p, &s);
    EXPECT_EQ(s.size, 0);
    EXPECT_EQ(weft_pool_close(p, WEFT_SEC), 0);
    EXPECT_EQ(rc.open, 0);
    /* bad configurations */
    errno = 0;
    weft_pool_config bad = { .min_size = 5, .max_size = 2 };
    EXPECT(weft_pool_new(&bad, &ops, &rc) == NULL && errno == EINVAL);
    EXPECT(weft_pool_new(NULL, NULL, &rc) == NULL && errno == EINVAL);
    return 0;
}
static void test_basics(void **s) { (void)s; RUN(basics, NULL); }

struct load { weft_pool *p; int held, max_held, done; };
static int borrower(void *arg)
{
    struct load *l = arg;
    weft_pooled *h;
    int rc = weft_pool_acquire(l->p, &h);
    if (rc)
        return rc;
    if (++l->held > l->max_held)
        l->max_held = l->held;
    weft_sleep(WEFT_MS);
    l->held--;
    weft_pool_release(l->p, h);
    l->done++;
    return 0;
}

static int bound(void *unused)
{
    (void)unused;
    struct res_ctx rc = { 0 };
    weft_pool_config cfg = { .name = "bound", .max_size = 10 };
    struct load l = { weft_pool_new(&cfg, &ops, &rc), 0, 0, 0 };
    weft_group *g = weft_group_new();
    for (int i = 0; i < 1000; i++)
        weft_spawn(g, borrower, &l, "borrower");
    EXPECT_EQ(weft_group_wait(g), 0);
    EXPECT_EQ(l.done, 1000);
    EXPECT_EQ(l.max_held, 10);
    EXPECT_EQ(rc.made, 10);
    weft_pool_stats s;
    weft_pool_stats_get(l.p, &s);
    EXPECT_EQ(s.acquires, 1000);
    EXPECT_EQ(weft_pool_close(l.p, WEFT_SEC), 0);
    EXPECT_EQ(rc.open, 0);
    return 0;
}
static void test_bound_1000_acquirers(void **s) { (void)s; RUN(bound, NULL); }

static int hold_for(void *arg)
{
    weft_pool *p = arg;
    weft_pooled *h;
    int rc = weft_pool_acquire(p, &h);
    if (rc)
        return rc;
    weft_sleep(200 * WEFT_MS);
    weft_pool_release(p, h);
    return 0;
}

static int timeouts(void *unused)
{
    (void)unused;
    struct res_ctx rc = { 0 };
    weft_pool_config cfg = { .name = "tiny", .max_size = 1, .acquire_timeout = 50 * WEFT_MS };
    weft_pool *p = weft_pool_new(&cfg, &ops, &rc);
    weft_group *g = weft_group_new();
    weft_spawn(g, hold_for, p, "holder");
    WAIT_UNTIL(stats(p).in_use == 1);
    weft_pooled *h;
    weft_time t0 = weft_now();
    int r = weft_pool_acquire(p, &h);
    EXPECT_EQ(r, -WEFT_EPOOL_TIMEOUT);
    EXPECT(weft_is_timeout(r));
    EXPECT(weft_now() - t0 >= 50 * WEFT_MS);
    EXPECT(strstr(weft_pool_last_error(p), "pool 'tiny' acquire timeout: 1/1 in use") != NULL);
    EXPECT(strstr(weft_pool_last_error(p), "held by 'holder' for") != NULL);
    weft_scope sc;
    weft_scope_enter(&sc, 10 * WEFT_MS);
    EXPECT_EQ(weft_pool_acquire(p, &h), -ETIMEDOUT);   /* the scope came first */
    EXPECT(weft_scope_exit(&sc));
    weft_pool_stats s;
    weft_pool_stats_get(p, &s);
    EXPECT_EQ(s.timeouts, 1);
    EXPECT_EQ(s.waiting, 0);
    EXPECT_EQ(weft_group_wait(g), 0);
    EXPECT_EQ(weft_pool_acquire(p, &h), 0);    /* the slot was not leaked */
    weft_pool_release(p, h);
    EXPECT_EQ(weft_pool_close(p, WEFT_SEC), 0);
    return 0;
}
static void test_acquire_timeout(void **s) { (void)s; RUN(timeouts, NULL); }

static int replacement(void *unused)
{
    (void)unused;
    struct res_ctx rc = { 0 };
    weft_pool_config cfg = { .name = "repl", .min_size = 2, .max_size = 4,
                             .maintenance_period = 5 * WEFT_MS };
    weft_pool *p = weft_pool_new(&cfg, &ops, &rc);
    WAIT_UNTIL(stats(p).idle == 2);            /* filled to min in the background */
    EXPECT_EQ(rc.open, 2);
    weft_pooled *h;
    EXPECT_EQ(weft_pool_acquire(p, &h), 0);
    weft_pool_release_broken(p, h);
    EXPECT_EQ(rc.open, 1);
    WAIT_UNTIL(stats(p).idle == 2);
    EXPECT_EQ(rc.open, 2);                     /* replaced up to min */
    weft_pool_stats s;
    weft_pool_stats_get(p, &s);
    EXPECT_EQ(s.discarded, 1);
    EXPECT_EQ(s.idle, 2);
    /* a failing reset discards too */
    rc.fail_reset = 1;
    EXPECT_EQ(weft_pool_acquire(p, &h), 0);
    weft_pool_release(p, h);
    weft_pool_stats_get(p, &s);
    EXPECT_EQ(s.discarded, 2);
    rc.fail_reset = 0;
    EXPECT_EQ(weft_pool_close(p, WEFT_SEC), 0);
    EXPECT_EQ(rc.open, 0);
    return 0;
}
static void test_broken_release_replaced(void **s) { (void)s; RUN(replacement, NULL); }

static int lifetimes(void *unused)
{
    (void)unused;
    struct res_ctx rc = { 0 };
    weft_pool_config cfg = { .name = "life", .max_size = 2, .max_lifetime = 40 * WEFT_MS,
                             .check_idle = 10 * WEFT_MS };
    weft_pool *p = weft_pool_new(&cfg, &ops, &rc);
    weft_pooled *h;
    EXPECT_EQ(weft_pool_acquire(p, &h), 0);
    int first = ((struct res *)weft_pooled_get(h))->id;
    weft_pool_release(p, h);
    weft_sleep(60 * WEFT_MS);
    EXPECT_EQ(weft_pool_acquire(p, &h), 0);    /* too old: a new one */
    EXPECT(((struct res *)weft_pooled_get(h))->id != first);
    weft_pool_release(p, h);
    /* a failing health check after idling: discarded, replaced */
    weft_pool_config cfg2 = { .name = "check", .max_size = 2, .check_idle = 10 * WEFT_MS };
    weft_pool *q = weft_pool_new(&cfg2, &ops, &rc);
    EXPECT_EQ(weft_pool_acquire(q, &h), 0);
    first = ((struct res *)weft_pooled_get(h))->id;
    weft_pool_release(q, h);
    rc.fail_check = 1;
    weft_sleep(20 * WEFT_MS);
    EXPECT_EQ(weft_pool_acquire(q, &h), 0);
    EXPECT(((struct res *)weft_pooled_get(h))->id != first);
    rc.fail_check = 0;
    weft_pool_release(q, h);
    /* idle timeout: the background task closes idle ones */
    weft_pool_config cfg3 = { .name = "idle", .max_size = 2, .idle_timeout = 50 * WEFT_MS,
                              .maintenance_period = 10 * WEFT_MS };
    weft_pool *r = weft_pool_new(&cfg3, &ops, &rc);
    EXPECT_EQ(weft_pool_acquire(r, &h), 0);
    weft_pool_release(r, h);
    weft_time t0 = weft_now();
    WAIT_UNTIL(stats(r).idle == 0);
    EXPECT_EQ(stats(r).idle, 0);
    EXPECT(weft_now() - t0 >= 50 * WEFT_MS);   /* not before its idle timeout */
    EXPECT_EQ(weft_pool_close(p, WEFT_SEC), 0);
    EXPECT_EQ(weft_pool_close(q, WEFT_SEC), 0);
    EXPECT_EQ(weft_pool_close(r, WEFT_SEC), 0);
    EXPECT_EQ(rc.open, 0);
    return 0;
}
static void test_lifetime_check_idle(void **s) { (void)s; RUN(lifetimes, NULL); }

static int waiter_rc;
static int waiter(void *arg)
{
    weft_pooled *h;
    waiter_rc = weft_pool_acquire(arg, &h);
    return 0;
}

static int closing(void *unused)
{
    (void)unused;
    struct res_ctx rc = { 0 };
    weft_pool_config cfg = { .name = "close", .max_size = 1 };
    weft_pool *p = weft_pool_new(&cfg, &ops, &rc);
    weft_group *g = weft_group_new();
    weft_spawn(g, hold_for, p, "holder");
    WAIT_UNTIL(stats(p).in_use == 1);
    weft_group *w = weft_group_new();
    weft_spawn(w, waiter, p, "waiter");
    weft_yield();
    /* in-use item: close waits for it within grace */
    weft_time t0 = weft_now();
    EXPECT_EQ(weft_pool_close(p, WEFT_SEC), 0);
    EXPECT(weft_now() - t0 >= 150 * WEFT_MS);
    EXPECT_EQ(weft_group_wait(w), 0);
    EXPECT_EQ(waiter_rc, -WEFT_ECLOSED);       /* waiters were told */
    EXPECT_EQ(weft_group_wait(g), 0);
    EXPECT_EQ(rc.open, 0);
    /* grace too short: -ETIMEDOUT, the late release still cleans up */
    p = weft_pool_new(&cfg, &ops, &rc);
    g = weft_group_new();
    weft_spawn(g, hold_for, p, "holder");
    WAIT_UNTIL(stats(p).in_use == 1);
    EXPECT_EQ(weft_pool_close(p, 10 * WEFT_MS), -ETIMEDOUT);
    EXPECT_EQ(weft_group_wait(g), 0);
    EXPECT_EQ(rc.open, 0);
    return 0;
}
static void test_close_with_in_use(void **s) { (void)s; RUN(closing, NULL); }

static int deadlock(void *unused)
{
    (void)unused;
    struct res_ctx rc = { 0 };
    weft_pool_config cfg = { .name = "dl", .max_size = 2, .acquire_timeout = 5 * WEFT_SEC };
    weft_pool *p = weft_pool_new(&cfg, &ops, &rc);
    weft_pooled *a, *b, *c;
    EXPECT_EQ(weft_pool_acquire(p, &a), 0);
    EXPECT_EQ(weft_pool_acquire(p, &b), 0);
    weft_time t0 = weft_now();
    EXPECT_EQ(weft_pool_acquire(p, &c), -EDEADLK);   /* holds all: would wait forever */
    EXPECT(weft_now() - t0 < WEFT_SEC);
    EXPECT(strstr(weft_pool_last_error(p), "deadlock") != NULL);
    weft_pool_release(p, a);
    weft_pool_release(p, b);
    /* another holder that is not waiting: not a deadlock, a wait */
    weft_group *g = weft_group_new();
    weft_spawn(g, hold_for, p, "holder");
    WAIT_UNTIL(stats(p).in_use == 1);
    EXPECT_EQ(weft_pool_acquire(p, &a), 0);
    EXPECT_EQ(weft_pool_acquire(p, &b), 0);    /* waits for the holder */
    weft_pool_release(p, a);
    weft_pool_release(p, b);
    EXPECT_EQ(weft_group_wait(g), 0);
    EXPECT_EQ(weft_pool_close(p, WEFT_SEC), 0);
    return 0;
}
static void test_deadlock(void **s) { (void)s; RUN(deadlock, NULL); }

static int create_failure(void *unused)
{
    (void)unused;
    struct res_ctx rc = { .fail_create = -ECONNREFUSED };
    weft_pool_config cfg = { .name = "fail", .max_size = 1, .backoff = 20 * WEFT_MS,
                             .backoff_max = 40 * WEFT_MS };
    weft_pool *p = weft_pool_new(&cfg, &ops, &rc);
    weft_pooled *h;
    EXPECT_EQ(weft_pool_acquire(p, &h), -ECONNREFUSED);  /* the create's own error */
    EXPECT_EQ(rc.attempts, 1);
    /* the server is down: the next acquirers fail fast, nobody tries again */
    for (int i = 0; i < 10; i++)
        EXPECT_EQ(weft_pool_acquire(p, &h), -ECONNREFUSED);
    EXPECT_EQ(rc.attempts, 1);
    EXPECT_EQ(stats(p).size, 0);                         /* the slot came back */
    /* after the backoff one acquirer tries again, and it doubles */
    weft_sleep(25 * WEFT_MS);
    EXPECT_EQ(weft_pool_acquire(p, &h), -ECONNREFUSED);
    EXPECT_EQ(rc.attempts, 2);
    /* back up: once the backoff has passed, acquires work again */
    rc.fail_create = 0;
    int r;
    WAIT_UNTIL((r = weft_pool_acquire(p, &h)) == 0);
    EXPECT_EQ(r, 0);
    weft_pool_release(p, h);
    EXPECT_EQ(weft_pool_close(p, WEFT_SEC), 0);
    return 0;
}
static void test_create_failure(void **s) { (void)s; RUN(create_failure, NULL); }

/* 10,000 random cancellations of acquiring and holding tasks */
struct storm { weft_pool *p; uint64_t rng; int ok; };
static int storm_task(void *arg)
{
    struct storm *st = arg;
    weft_pooled *h;
    int rc = weft_pool_acquire(st->p, &h);
    if (rc)
        return rc == -ECANCELED || rc == -WEFT_EPOOL_TIMEOUT ? 0 : rc;
    st->ok++;
    st->rng ^= st->rng << 13, st->rng ^= st->rng >> 7, st->rng ^= st->rng << 17;
    rc = weft_sleep((weft_time)(st->rng % 300) * WEFT_US);
    if (rc == -ECANCELED && (st->rng & 1))
        weft_pool_release_broken(st->p, h);   /* as an interrupted query would */
    else
        weft_pool_release(st->p, h);
    return 0;
}

static int storm(void *unused)
{
    (void)unused;
    struct res_ctx rc = { 0 };
    weft_pool_config cfg = { .name = "storm", .max_size = 8, .min_size = 2 };
    struct storm st = { weft_pool_new(&cfg, &ops, &rc), 0x12345678abcdefULL, 0 };
    int n = test_scale(10000), cancelled = 0;
    for (int round = 0; round < n / 100; round++) {
        weft_group *g = weft_group_new();
        for (int i = 0; i < 100; i++)
            weft_spawn(g, storm_task, &st, "storm");
        st.rng ^= st.rng << 13, st.rng ^= st.rng >> 7, st.rng ^= st.rng << 17;
        weft_sleep((weft_time)(st.rng % 500) * WEFT_US);
        weft_group_cancel(g);                  /* acquirers and holders alike */
        cancelled += weft_group_size(g);
        EXPECT_EQ(weft_group_wait(g), 0);
        weft_pool_stats s;
        weft_pool_stats_get(st.p, &s);
        for (int i = 0; i < 100 && s.creating; i++) {   /* the refill to min_size */
            weft_yield();
            weft_pool_stats_get(st.p, &s);
        }
        EXPECT_EQ(s.in_use, 0);
        EXPECT_EQ(s.waiting, 0);
        EXPECT_EQ(s.creating, 0);
        EXPECT_EQ(s.size, s.idle);
        EXPECT_EQ((int)s.size, rc.open);       /* every slot accounted for */
        EXPECT(s.size <= 8);
        EXPECT_EQ(s.created - s.discarded, s.size);
    }
    EXPECT(cancelled > 0 && st.ok > 0);
    EXPECT_EQ(weft_pool_close(st.p, WEFT_SEC), 0);
    EXPECT_EQ(rc.open, 0);
    return 0;
}
static void test_random_cancellation_storm(void **s) { (void)s; RUN(storm, NULL); }

/* waiters are served first come, first served */
static int order[8], norder;
static int fifo_waiter(void *arg)
{
    void **a = arg;
    weft_pooled *h;
    int rc = weft_pool_acquire(a[0], &h);
    if (rc)
        return rc;
    order[norder++] = (int)(intptr_t)a[1];
    weft_yield();
    weft_pool_release(a[0], h);
    return 0;
}

static int fifo(void *unused)
{
    (void)unused;
    struct res_ctx rc = { 0 };
    weft_pool_config cfg = { .name = "fifo", .max_size = 1, .maintenance_period = 10 * WEFT_MS };
    weft_pool *p = weft_pool_new(&cfg, &ops, &rc);
    weft_pooled *h;
    EXPECT_EQ(weft_pool_acquire(p, &h), 0);
    void *args[6][2];
    weft_group *g = weft_group_new();
    norder = 0;
    for (intptr_t i = 0; i < 6; i++) {
        args[i][0] = p;
        args[i][1] = (void *)i;
        weft_spawn(g, fifo_waiter, args[i], "w");
    }
    weft_yield();                              /* all six queue, in order */
    weft_pool_release(p, h);
    EXPECT_EQ(weft_pool_acquire(p, &h), 0);    /* a latecomer queues behind them */
    EXPECT_EQ(norder, 6);
    for (int i = 0; i < 6; i++)
        EXPECT_EQ(order[i], i);
    weft_pool_release(p, h);
    EXPECT_EQ(weft_group_wait(g), 0);
    /* the metrics are published every maintenance period */
    char buf[16384];
    WAIT_UNTIL(weft_metrics_render(buf, sizeof buf) > 0 &&
               strstr(buf, "weft_pool_acquires_total{pool=\"fifo\"} 8"));
    EXPECT(strstr(buf, "weft_pool_acquires_total{pool=\"fifo\"} 8") != NULL);
    EXPECT(strstr(buf, "weft_pool_size{pool=\"fifo\"} 1") != NULL);
    EXPECT(strstr(buf, "weft_pool_acquire_wait_seconds_count{pool=\"fifo\"}") != NULL);
    EXPECT_EQ(weft_pool_close(p, WEFT_SEC), 0);
    return 0;
}
static void test_fifo_and_metrics(void **s) { (void)s; RUN(fifo, NULL); }

/* sizes are process-wide: split across the loops of weft_run */
static int per_loop(void *unused)
{
    (void)unused;
    struct res_ctx rc = { 0 };
    weft_pool_config cfg = { .name = "split", .max_size = 10, .acquire_timeout = 20 * WEFT_MS };
    weft_pool *p = weft_pool_new(&cfg, &ops, &rc);
    weft_pooled *h[6];
    int got = 0;
    for (int i = 0; i < 6; i++)
        if (weft_pool_acquire(p, &h[i]) == 0)
            got++;
        else
            break;
    EXPECT_EQ(got, 5);                         /* 10 / 2 loops */
    for (int i = 0; i < got; i++)
        weft_pool_release(p, h[i]);
    return weft_pool_close(p, WEFT_SEC);
}

static void test_process_wide_bound(void **s)
{
    (void)s;
    test_failures = 0;
    assert_int_equal(weft_run(2, per_loop, NULL), 0);
    assert_int_equal(test_failures, 0);
}

static weft_group *chk_sup;
static weft_pool *chk_pool;

/* Issue 10.6: a health check interrupted by the acquirer's own deadline
 * condemns nothing (5 idle, an acquire with 2 ms left: all 5 were lost). */
static int check_interrupted(void *unused)
{
    (void)unused;
    static struct res_ctx rc;                 /* the pool outlives this task */
    rc = (struct res_ctx){ 0 };
    weft_pool_config cfg = { .name = "chk", .max_size = 5, .check_idle = WEFT_MS,
                             .supervisor = chk_sup };
    weft_pool *p = weft_pool_new(&cfg, &ops, &rc);
    chk_pool = p;
    weft_pooled *h[5];
    for (int i = 0; i < 5; i++)
        EXPECT_EQ(weft_pool_acquire(p, &h[i]), 0);
    for (int i = 0; i < 5; i++)
        weft_pool_release(p, h[i]);
    weft_sleep(10 * WEFT_MS);                  /* idle past check_idle (a coarse clock) */
    rc.check_takes = 20 * WEFT_MS;
    weft_scope sc;
    weft_scope_enter(&sc, 2 * WEFT_MS);
    EXPECT_EQ(weft_pool_acquire(p, &h[0]), -ETIMEDOUT);
    EXPECT(weft_scope_exit(&sc));
    EXPECT_EQ(stats(p).idle, 5);
    EXPECT_EQ(stats(p).discarded, 0);
    EXPECT_EQ(rc.open, 5);
    /* a cancel likewise */
    weft_task_cancel(weft_self());
    EXPECT_EQ(weft_pool_acquire(p, &h[0]), -ECANCELED);
    EXPECT_EQ(stats(p).idle, 5);
    rc.check_takes = 0;
    return 0;                                  /* cancelled: the root closes it */
}

static void chk_error(const char *task, int err, void *ctx)
{
    (void)task, (void)err, (void)ctx;
}

static int check_interrupted_root(void *unused)
{
    (void)unused;
    chk_sup = weft_supervisor_new(chk_error, NULL);
    weft_group *g = weft_group_new();
    weft_spawn(g, check_interrupted, NULL, "acquirer");
    EXPECT_EQ(weft_group_wait(g), 0);
    EXPECT_EQ(weft_pool_close(chk_pool, WEFT_SEC), 0);
    return weft_supervisor_close(chk_sup, WEFT_SEC);
}
static void test_check_interrupted_by_caller(void **s) { (void)s; RUN(check_interrupted_root, NULL); }

/* Issue 10.7: acquire_timeout = WEFT_FOREVER waits (it overflowed: every
 * wait failed at once with "pool timeout"). */
static int forever(void *unused)
{
    (void)unused;
    struct res_ctx rc = { 0 };
    weft_pool_config cfg = { .name = "forever", .max_size = 1, .acquire_timeout = WEFT_FOREVER };
    weft_pool *p = weft_pool_new(&cfg, &ops, &rc);
    weft_group *g = weft_group_new();
    weft_spawn(g, hold_for, p, "holder");
    WAIT_UNTIL(stats(p).in_use == 1);
    weft_pooled *h;
    EXPECT_EQ(weft_pool_acquire(p, &h), 0);    /* after the holder's 200 ms */
    weft_pool_release(p, h);
    EXPECT_EQ(weft_group_wait(g), 0);
    EXPECT_EQ(stats(p).timeouts, 0);
    EXPECT_EQ(weft_pool_close(p, WEFT_SEC), 0);
    return 0;
}
static void test_acquire_timeout_forever(void **s) { (void)s; RUN(forever, NULL); }

/* Creating runs in the background: an acquirer that gives up leaves the
 * connect running, and the new resource joins the pool. */
static int gives_up(void *unused)
{
    (void)unused;
    struct res_ctx rc = { .create_takes = 30 * WEFT_MS };
    weft_pool_config cfg = { .name = "bg", .max_size = 2 };
    weft_pool *p = weft_pool_new(&cfg, &ops, &rc);
    weft_pooled *h;
    weft_scope sc;
    weft_scope_enter(&sc, 5 * WEFT_MS);
    EXPECT_EQ(weft_pool_acquire(p, &h), -ETIMEDOUT);
    weft_scope_exit(&sc);
    EXPECT_EQ(stats(p).creating, 1);
    WAIT_UNTIL(stats(p).idle == 1);
    EXPECT_EQ(stats(p).idle, 1);
    EXPECT_EQ(rc.made, 1);
    EXPECT_EQ(weft_pool_acquire(p, &h), 0);    /* the one made for the first */
    EXPECT_EQ(rc.made, 1);
    weft_pool_release(p, h);
    EXPECT_EQ(weft_pool_close(p, WEFT_SEC), 0);
    EXPECT_EQ(rc.open, 0);
    return 0;
}
static void test_create_in_background(void **s) { (void)s; RUN(gives_up, NULL); }

/* Close with waiters, then a holder that releases after the grace: the
 * waiters are told, nothing touches freed memory (ASan), the late release
 * frees the pool. */
static int close_waiter(void *arg)
{
    weft_pooled *h;
    int rc = weft_pool_acquire(arg, &h);
    return rc == -WEFT_ECLOSED ? 0 : rc ? rc : -EPROTO;
}

static int close_under_waiters(void *unused)
{
    (void)unused;
    struct res_ctx rc = { 0 };
    weft_pool_config cfg = { .name = "cw", .max_size = 1 };
    weft_pool *p = weft_pool_new(&cfg, &ops, &rc);
    weft_group *hg = weft_group_new();
    weft_spawn(hg, hold_for, p, "holder");
    WAIT_UNTIL(stats(p).in_use == 1);
    weft_group *g = weft_group_new();
    for (int i = 0; i < 3; i++)
        weft_spawn(g, close_waiter, p, "waiter");
    WAIT_UNTIL(stats(p).waiting == 3);
    EXPECT_EQ(weft_pool_close(p, 0), -ETIMEDOUT);
    EXPECT_EQ(weft_group_wait(g), 0);           /* each got -WEFT_ECLOSED */
    EXPECT_EQ(weft_group_wait(hg), 0);          /* its release frees the pool */
    EXPECT_EQ(rc.open, 0);
    return 0;
}
static void test_close_under_waiters(void **s) { (void)s; RUN(close_under_waiters, NULL); }

/* Issue 10.13: a pool in a caller's supervisor: close does not wait for
 * the maintenance task nor free memory it still uses. */
static void sup_error(const char *task, int err, void *ctx)
{
    (void)task, (void)ctx;
    fprintf(stderr, "supervised task failed: %s\n", weft_strerror(err));
    test_failures++;
}

static int external_supervisor(void *unused)
{
    (void)unused;
    struct res_ctx rc = { .create_takes = 50 * WEFT_MS };
    weft_group *sup = weft_supervisor_new(sup_error, NULL);
    weft_pool_config cfg = { .name = "ext", .max_size = 2, .min_size = 1, .supervisor = sup,
                             .maintenance_period = WEFT_MS };
    for (int i = 0; i < 20; i++) {
        weft_pool *p = weft_pool_new(&cfg, &ops, &rc);
        weft_sleep((weft_time)(i % 4) * WEFT_MS);   /* close at various points */
        EXPECT_EQ(weft_pool_close(p, WEFT_SEC), 0);
    }
    EXPECT_EQ(weft_supervisor_close(sup, WEFT_SEC), 0);
    EXPECT_EQ(rc.open, 0);
    return 0;
}
static void test_close_external_supervisor(void **s) { (void)s; RUN(external_supervisor, NULL); }

/* reset must not suspend: a reset that blocks aborts, naming it */
static int blocking_reset(void *unused)
{
    (void)unused;
    struct res_ctx rc = { .reset_blocks = true };
    weft_pool_config cfg = { .name = "rst", .max_size = 1 };
    weft_pool *p = weft_pool_new(&cfg, &ops, &rc);
    weft_pooled *h;
    if (weft_pool_acquire(p, &h) == 0)
        weft_pool_release(p, h);
    return 0;
}
static void run_blocking_reset(void *unused) { (void)unused; weft_main(blocking_reset, NULL); }
static void test_reset_must_not_suspend(void **s)
{
    (void)s;
    char out[4096];
    int st = run_in_child(run_blocking_reset, NULL, out, sizeof out);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
    assert_non_null(strstr(out, "a pool's reset, which must not suspend"));
}

/* Issue 10.8: sizes split across loops add up to max_size exactly, the
 * remainder going to the lowest loops. */
static _Atomic int held_total, held_peak;
static int split3(void *arg)
{
    unsigned max = (unsigned)(intptr_t)arg;
    struct res_ctx rc = { 0 };
    weft_pool_config cfg = { .name = "split3", .max_size = max, .acquire_timeout = WEFT_MS };
    weft_pool *p = weft_pool_new(&cfg, &ops, &rc);
    weft_pooled *h[16];
    int got = 0;
    while (got < 16 && weft_pool_acquire(p, &h[got]) == 0)
        got++;
    int now = atomic_fetch_add(&held_total, got) + got;
    int peak = atomic_load(&held_peak);
    while (now > peak && !atomic_compare_exchange_weak(&held_peak, &peak, now))
        ;
    unsigned want = max / 3 + ((unsigned)weft_loop_index() < max % 3);
    EXPECT_EQ(got, want ? want : 1);
    for (int i = 0; i < got; i++)
        weft_pool_release(p, h[i]);
    return weft_pool_close(p, WEFT_SEC);
}

static void test_split_remainder(void **s)
{
    (void)s;
    test_failures = 0;
    assert_int_equal(weft_run(3, split3, (void *)(intptr_t)7), 0);   /* 3 + 2 + 2 */
    assert_int_equal(test_failures, 0);
    atomic_store(&held_total, 0);
    test_log_capture();
    assert_int_equal(weft_run(3, split3, (void *)(intptr_t)2), 0);   /* 1 each, said */
    assert_int_equal(test_failures, 0);
    assert_true(test_log_has("max_size 2 is below the 3 loops"));
}

/* Found by review: a check its caller interrupted hands the resource to
 * the task waiting behind it (it went idle, unseen, and the waiter waited
 * out its timeout), and during a close it is destroyed (it leaked). */
static weft_pool *rv_pool;
static int impatient(void *unused)
{
    (void)unused;
    weft_pooled *h;
    weft_scope sc;
    weft_scope_enter(&sc, 5 * WEFT_MS);
    int rc = weft_pool_acquire(rv_pool, &h);
    weft_scope_exit(&sc);
    return rc == -ETIMEDOUT || rc == -WEFT_ECLOSED ? 0 : rc ? rc : -EPROTO;
}
static int patient(void *unused)
{
    (void)unused;
    weft_pooled *h;
    int rc = weft_pool_acquire(rv_pool, &h);
    if (rc == 0)
        weft_pool_release(rv_pool, h);
    return rc;
}

static int interrupted_check_serves_waiter(void *unused)
{
    (void)unused;
    for (int closing = 0; closing < 2; closing++) {
        struct res_ctx rc = { 0 };
        weft_pool_config cfg = { .name = "rv1", .max_size = 1, .check_idle = WEFT_MS,
                                 .acquire_timeout = 5 * WEFT_SEC };
        rv_pool = weft_pool_new(&cfg, &ops, &rc);
        weft_pooled *h;
        EXPECT_EQ(weft_pool_acquire(rv_pool, &h), 0);
        weft_pool_release(rv_pool, h);
        weft_sleep(10 * WEFT_MS);             /* idle past check_idle (a coarse clock) */
        rc.check_takes = 50 * WEFT_MS;
        weft_group *g = weft_group_new();
        weft_spawn(g, impatient, NULL, "impatient");
        if (!closing) {
            weft_spawn(g, patient, NULL, "patient");
            weft_time t0 = weft_now();
            EXPECT_EQ(weft_group_wait(g), 0);
            EXPECT(weft_now() - t0 < 2 * WEFT_SEC);   /* not its acquire timeout */
            EXPECT_EQ(weft_pool_close(rv_pool, WEFT_SEC), 0);
        } else {
            weft_yield();                     /* impatient is inside its check */
            EXPECT_EQ(weft_pool_close(rv_pool, 2 * WEFT_SEC), 0);
            EXPECT_EQ(weft_group_wait(g), 0);
        }
        EXPECT_EQ(rc.open, 0);
    }
    return 0;
}
static void test_interrupted_check_serves_waiter(void **s)
{
    (void)s;
    RUN(interrupted_check_serves_waiter, NULL);
}

/* Found by review: creates that fail together double the backoff once,
 * not once each (8 of them took 50 ms to 6.4 s); no overflow with
 * backoff_max = WEFT_FOREVER. */
static int failer(void *arg)
{
    weft_pooled *h;
    int rc = weft_pool_acquire(arg, &h);
    return rc == -ECONNREFUSED ? 0 : rc ? rc : -EPROTO;
}

static int burst_backoff(void *unused)
{
    (void)unused;
    struct res_ctx rc = { .fail_create = -ECONNREFUSED };
    weft_pool_config cfg = { .name = "rv3", .max_size = 8, .backoff = 20 * WEFT_MS,
                             .backoff_max = WEFT_FOREVER };
    weft_pool *p = weft_pool_new(&cfg, &ops, &rc);
    weft_group *g = weft_group_new();
    for (int i = 0; i < 8; i++)
        weft_spawn(g, failer, p, "failer");
    EXPECT_EQ(weft_group_wait(g), 0);
    EXPECT(rc.attempts >= 1 && rc.attempts <= 8);
    int before = rc.attempts;
    weft_sleep(30 * WEFT_MS);                 /* past one backoff, not two */
    weft_pooled *h;
    EXPECT_EQ(weft_pool_acquire(p, &h), -ECONNREFUSED);
    EXPECT_EQ(rc.attempts, before + 1);       /* tried again */
    EXPECT_EQ(weft_pool_close(p, WEFT_SEC), 0);
    return 0;
}
static void test_burst_of_failures_backs_off_once(void **s) { (void)s; RUN(burst_backoff, NULL); }

/* Found by review: with a supervisor of the caller's, close cancels a
 * create that has not started yet (it waited out a whole connect), and a
 * create cancelled by its supervisor closing fails its waiter at once. */
static int waiter_closed_or_cancelled(void *arg)
{
    weft_pooled *h;
    int rc = weft_pool_acquire(arg, &h);
    return rc == -WEFT_ECLOSED || rc == -ECANCELED ? 0 : rc ? rc : -EPROTO;
}

static int creators_and_closes(void *unused)
{
    (void)unused;
    struct res_ctx rc = { .create_takes = 2 * WEFT_SEC };
    weft_group *sup = weft_supervisor_new(sup_error, NULL);
    weft_pool_config cfg = { .name = "rv5", .max_size = 2, .supervisor = sup,
                             .acquire_timeout = 10 * WEFT_SEC };
    weft_pool *p = weft_pool_new(&cfg, &ops, &rc);
    weft_group *g = weft_group_new();
    weft_spawn(g, waiter_closed_or_cancelled, p, "waiter");
    weft_yield();                             /* queued; its creator not yet run */
    weft_time t0 = weft_now();
    EXPECT_EQ(weft_pool_close(p, 5 * WEFT_SEC), 0);
    EXPECT(weft_now() - t0 < WEFT_SEC);
    EXPECT_EQ(weft_group_wait(g), 0);
    /* the supervisor closes under a running create */
    p = weft_pool_new(&cfg, &ops, &rc);
    g = weft_group_new();
    weft_spawn(g, waiter_closed_or_cancelled, p, "waiter");
    WAIT_UNTIL(stats(p).creating == 1 && rc.attempts >= 1);
    t0 = weft_now();
    EXPECT_EQ(weft_supervisor_close(sup, 0), -ETIMEDOUT);
    EXPECT_EQ(weft_group_wait(g), 0);
    EXPECT(weft_now() - t0 < WEFT_SEC);       /* not its acquire timeout */
    EXPECT_EQ(weft_pool_close(p, WEFT_SEC), 0);
    EXPECT_EQ(rc.open, 0);
    return 0;
}
static void test_creators_and_closes(void **s) { (void)s; RUN(creators_and_closes, NULL); }

/* Found by review: min_size split across loops adds up exactly (1 over 4
 * loops kept 4 open). */
static _Atomic int min_open;
static int mc_create(void *ctx, void **out)
{
    (void)ctx;
    *out = malloc(1);
    atomic_fetch_add(&min_open, 1);
    return 0;
}
static void mc_destroy(void *ctx, void *r)
{
    (void)ctx;
    free(r);
}
static const weft_pool_ops min_ops = { mc_create, mc_destroy, NULL, NULL };
static int min_per_loop(void *unused)
{
    (void)unused;
    weft_pool_config cfg = { .name = "rv9", .max_size = 8, .min_size = 1,
                             .maintenance_period = WEFT_MS };
    weft_pool *p = weft_pool_new(&cfg, &min_ops, NULL);
    WAIT_UNTIL(atomic_load(&min_open) >= 1);
    weft_sleep(20 * WEFT_MS);                 /* twenty refill periods */
    return weft_pool_close(p, WEFT_SEC);
}

static void test_min_size_split_exactly(void **s)
{
    (void)s;
    test_failures = 0;
    assert_int_equal(weft_run(4, min_per_loop, NULL), 0);
    assert_int_equal(atomic_load(&min_open), 1);
}


/* The pool's metrics agree at any moment: every acquire the wait histogram
 * has counted is in acquires_total too (it lagged until the pool's next
 * maintenance round, while the waits were counted at once). */
struct holder { weft_pool *p; weft_pooled *h; weft_event got; };

static int agree_waiter(void *arg)
{
    struct holder *w = arg;
    EXPECT_EQ(weft_pool_acquire(w->p, &w->h), 0);
    weft_event_set(&w->got);
    return 0;
}

static int metrics_agree(void *unused)
{
    (void)unused;
    struct res_ctx rc = { 0 };
    weft_pool_config cfg = { .name = "agree", .max_size = 1 };
    weft_pool *p = weft_pool_new(&cfg, &ops, &rc);
    weft_metric *acq = weft_counter("weft_pool_acquires_total{pool=\"agree\"}", NULL);
    static const double b[] = { 0.0001, 0.001, 0.01, 0.1, 1, 10 };
    weft_metric *hist = weft_histogram("weft_pool_acquire_wait_seconds{pool=\"agree\"}", NULL, b, 6);
    weft_pooled *a;
    EXPECT_EQ(weft_pool_acquire(p, &a), 0);
    struct holder w = { .p = p };
    weft_event_init(&w.got);
    weft_group *g = weft_group_new();
    weft_spawn(g, agree_waiter, &w, "waiter");
    weft_yield();                         /* it waits now */
    weft_pool_release(p, a);
    EXPECT_EQ(weft_event_wait(&w.got), 0);
    /* right after the waited acquire, before any maintenance round */
    EXPECT(weft_metric_value(hist) >= 1);
    EXPECT(weft_metric_value(acq) >= weft_metric_value(hist));
    weft_pool_release(p, w.h);
    EXPECT_EQ(weft_group_wait(g), 0);
    return weft_pool_close(p, WEFT_SEC);
}

static void test_metrics_agree(void **s) { (void)s; RUN(metrics_agree, NULL); }


/* A hand-off (result 1) must not pass for the timer: a scope whose deadline
 * never fired was marked caught (weft_scope_exit true) after an acquire
 * that waited for the background create. */
static int slow_make(void *ctx, void **res)
{
    (void)ctx;
    *res = malloc(1);
    return weft_sleep(WEFT_MS);
}
static void slow_free(void *ctx, void *res) { (void)ctx; free(res); }

static int handoff_not_timer(void *unused)
{
    (void)unused;
    static const weft_pool_ops slow = { .create = slow_make, .destroy = slow_free };
    weft_pool_config cfg = { .name = "handoff" };
    weft_pool *p = weft_pool_new(&cfg, &slow, NULL);
    weft_scope s;
    weft_scope_enter(&s, 5 * WEFT_SEC);
    weft_pooled *h;
    int rc = weft_pool_acquire(p, &h);    /* waits for the background create */
    EXPECT_EQ(rc, 0);
    EXPECT(!weft_scope_exit(&s));         /* its deadline never fired */
    if (!rc)
        weft_pool_release(p, h);
    return weft_pool_close(p, WEFT_SEC);
}

static void test_handoff_not_timer(void **s) { (void)s; RUN(handoff_not_timer, NULL); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handoff_not_timer),
        cmocka_unit_test(test_metrics_agree),
        cmocka_unit_test(test_basics),
        cmocka_unit_test(test_bound_1000_acquirers),
        cmocka_unit_test(test_acquire_timeout),
        cmocka_unit_test(test_broken_release_replaced),
        cmocka_unit_test(test_lifetime_check_idle),
        cmocka_unit_test(test_close_with_in_use),
        cmocka_unit_test(test_deadlock),
        cmocka_unit_test(test_create_failure),
        cmocka_unit_test(test_random_cancellation_storm),
        cmocka_unit_test(test_process_wide_bound),
        cmocka_unit_test(test_fifo_and_metrics),
        cmocka_unit_test(test_check_interrupted_by_caller),
        cmocka_unit_test(test_acquire_timeout_forever),
        cmocka_unit_test(test_create_in_background),
        cmocka_unit_test(test_close_under_waiters),
        cmocka_unit_test(test_close_external_supervisor),
        cmocka_unit_test(test_reset_must_not_suspend),
        cmocka_unit_test(test_split_remainder),
        cmocka_unit_test(test_interrupted_check_serves_waiter),
        cmocka_unit_test(test_burst_of_failures_backs_off_once),
        cmocka_unit_test(test_creators_and_closes),
        cmocka_unit_test(test_min_size_split_exactly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
