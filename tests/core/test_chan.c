/* Channels: buffering, rendezvous, close, cancellation, the shared kind. */
#include <pthread.h>
#include <time.h>

#include "test.h"

static int producer(void *arg)
{
    weft_chan *c = arg;
    for (int i = 0; i < 100; i++) {
        int rc = weft_chan_send(c, &i);
        if (rc)
            return rc;
    }
    weft_chan_close(c);
    return 0;
}

static int buffered(void *arg)
{
    size_t cap = (size_t)(intptr_t)arg;
    weft_chan *c = weft_chan_new(sizeof(int), cap);
    weft_group *g = weft_group_new();
    weft_spawn(g, producer, c, "producer");
    int v, expect = 0;
    while (weft_chan_recv(c, &v) == 0) {
        EXPECT_EQ(v, expect);
        expect++;
    }
    EXPECT_EQ(expect, 100);
    EXPECT_EQ(weft_chan_recv(c, &v), -EPIPE);
    EXPECT_EQ(weft_chan_send(c, &v), -EPIPE);
    EXPECT_EQ(weft_group_wait(g), 0);
    weft_chan_free(c);
    return 0;
}
static void test_fifo(void **s)
{
    (void)s;
    RUN(buffered, (void *)0);                  /* rendezvous */
    RUN(buffered, (void *)1);
    RUN(buffered, (void *)16);
}

static int try_ops(void *unused)
{
    (void)unused;
    weft_chan *c = weft_chan_new(sizeof(int), 2);
    int v = 1, out;
    EXPECT_EQ(weft_chan_try_recv(c, &out), -EAGAIN);
    EXPECT_EQ(weft_chan_try_send(c, &v), 0);
    v = 2;
    EXPECT_EQ(weft_chan_try_send(c, &v), 0);
    EXPECT_EQ(weft_chan_try_send(c, &v), -EAGAIN);
    EXPECT_EQ(weft_chan_len(c), 2);
    weft_chan_close(c);
    weft_chan_close(c);                        /* idempotent */
    EXPECT_EQ(weft_chan_try_send(c, &v), -EPIPE);
    EXPECT_EQ(weft_chan_try_recv(c, &out), 0); /* drains after close */
    EXPECT_EQ(out, 1);
    EXPECT_EQ(weft_chan_recv(c, &out), 0);
    EXPECT_EQ(out, 2);
    EXPECT_EQ(weft_chan_try_recv(c, &out), -EPIPE);
    EXPECT_EQ(weft_chan_recv(c, &out), -EPIPE);
    weft_chan_free(c);
    errno = 0;
    EXPECT(weft_chan_new(0, 4) == NULL && errno == EINVAL);
    EXPECT_EQ(weft_chan_send(NULL, &v), -EINVAL);
    return 0;
}
static void test_try_and_close(void **s) { (void)s; RUN(try_ops, NULL); }

static int op_result;
static int blocked_recv(void *arg)
{
    int v;
    op_result = weft_chan_recv(arg, &v);
    return 0;
}
static int blocked_send(void *arg)
{
    int v = 42;
    op_result = weft_chan_send(arg, &v);
    return 0;
}

static int wakes(void *unused)
{
    (void)unused;
    weft_chan *c = weft_chan_new(sizeof(int), 1);
    weft_group *g;
    /* close wakes a blocked receiver with -EPIPE */
    g = weft_group_new();
    weft_spawn(g, blocked_recv, c, "r");
    weft_yield();
    weft_chan_close(c);
    weft_group_wait(g);
    EXPECT_EQ(op_result, -EPIPE);
    weft_chan_free(c);

    /* close wakes a blocked sender with -EPIPE */
    c = weft_chan_new(sizeof(int), 0);
    g = weft_group_new();
    weft_spawn(g, blocked_send, c, "s");
    weft_yield();
    weft_chan_close(c);
    weft_group_wait(g);
    EXPECT_EQ(op_result, -EPIPE);
    weft_chan_free(c);

    /* cancel while blocked in recv and in send */
    c = weft_chan_new(sizeof(int), 0);
    g = weft_group_new();
    weft_spawn(g, blocked_recv, c, "r");
    weft_yield();
    weft_group_cancel(g);
    weft_group_wait(g);
    EXPECT_EQ(op_result, -ECANCELED);
    g = weft_group_new();
    weft_spawn(g, blocked_send, c, "s");
    weft_yield();
    weft_group_cancel(g);
    weft_group_wait(g);
    EXPECT_EQ(op_result, -ECANCELED);
    int v;
    EXPECT_EQ(weft_chan_try_recv(c, &v), -EAGAIN);   /* the cancelled send left nothing */

    /* hand-off beats a later cancel: the element is delivered, not lost */
    g = weft_group_new();
    weft_spawn(g, blocked_send, c, "s");
    weft_yield();
    EXPECT_EQ(weft_chan_try_recv(c, &v), 0);  /* takes it from the blocked sender */
    EXPECT_EQ(v, 42);
    weft_group_cancel(g);
    weft_group_wait(g);
    EXPECT_EQ(op_result, 0);
    weft_chan_free(c);

    c = weft_chan_new(sizeof(int), 0);
    weft_scope sc;
    weft_scope_enter(&sc, 3 * WEFT_MS);
    EXPECT_EQ(weft_chan_recv(c, &v), -ETIMEDOUT);
    EXPECT(weft_scope_exit(&sc));
    weft_chan_free(c);
    return 0;
}
static void test_wakeups(void **s) { (void)s; RUN(wakes, NULL); }

static int free_with_waiters(void *unused)
{
    (void)unused;
    weft_chan *c = weft_chan_new(sizeof(int), 0);
    weft_group *g = weft_group_new();
    weft_spawn(g, blocked_recv, c, "r");
    weft_yield();
    weft_chan_free(c);                         /* closes first: the waiter is woken */
    weft_group_wait(g);
    EXPECT_EQ(op_result, -EPIPE);
    return 0;
}
static void test_free_wakes(void **s) { (void)s; RUN(free_with_waiters, NULL); }

/* ---- the shared kind, across loops and threads -------------------------- */

static weft_chan *xc;
enum { PER_LOOP = 20000 };

static int cross(void *unused)
{
    (void)unused;
    int n = test_scale(PER_LOOP);
    if (weft_loop_index() == 0) {              /* the consumer */
        long sum = 0;
        int v, got = 0;
        while (got < 3 * n && weft_chan_recv(xc, &v) == 0) {
            sum += v;
            got++;
        }
        EXPECT_EQ(got, 3 * n);
        EXPECT_EQ(sum, 3L * n * (n - 1) / 2);
        return 0;
    }
    for (int i = 0; i < n; i++)
        if (weft_chan_send(xc, &i))
            return -EPIPE;
    return 0;
}

static void *plain_thread(void *unused)
{
    (void)unused;
    int n = test_scale(PER_LOOP);
    for (int i = 0; i < n;) {
        int rc = weft_chan_try_send(xc, &i);
        if (rc == 0)
            i++;
        else if (rc == -EAGAIN)
            sched_yield();
        else
            break;
    }
    return NULL;
}

static void test_shared_across_loops(void **s)
{
    (void)s;
    xc = weft_chan_new_shared(sizeof(int), 8);
    pthread_t th;
    pthread_create(&th, NULL, plain_thread, NULL);  /* a thread without a loop */
    test_failures = 0;
    assert_int_equal(weft_run(3, cross, NULL), 0);
    pthread_join(th, NULL);
    assert_int_equal(test_failures, 0);
    weft_chan_free(xc);
}

static int xdev_owner(void *unused)
{
    (void)unused;
    int v = 1;
    if (weft_loop_index() == 0)
        return weft_chan_try_send(xc, &v);     /* binds to loop 0 */
    weft_sleep(20 * WEFT_MS);
    EXPECT_EQ(weft_chan_send(xc, &v), -EXDEV);
    EXPECT_EQ(weft_chan_try_recv(xc, &v), -EXDEV);
    return 0;
}

static void test_local_is_loop_local(void **s)
{
    (void)s;
    xc = weft_chan_new(sizeof(int), 4);
    test_failures = 0;
    assert_int_equal(weft_run(2, xdev_owner, NULL), 0);
    assert_int_equal(test_failures, 0);
    weft_chan_free(xc);
}

/* shared channel: a timed-out receiver racing a sender on another loop
 * never loses an element */
static int racer(void *unused)
{
    (void)unused;
    int n = test_scale(5000);
    if (weft_loop_index() == 0) {
        int v, got = 0;
        long sum = 0;
        while (got < n) {
            weft_scope sc;
            weft_scope_enter(&sc, 50 * WEFT_US);
            int rc = weft_chan_recv(xc, &v);
            weft_scope_exit(&sc);
            if (rc == 0) {
                got++;
                sum += v;
            } else if (rc != -ETIMEDOUT) {
                return rc;
            }
        }
        EXPECT_EQ(sum, (long)n * (n - 1) / 2);
        return 0;
    }
    for (int i = 0; i < n; i++)
        if (weft_chan_send(xc, &i))
            return -EPIPE;
    return 0;
}

static void test_shared_timeout_race(void **s)
{
    (void)s;
    xc = weft_chan_new_shared(sizeof(int), 0);
    test_failures = 0;
    assert_int_equal(weft_run(2, racer, NULL), 0);
    assert_int_equal(test_failures, 0);
    weft_chan_free(xc);
}

/* Issue 10.13: a shared channel freed by another thread while its waiters
 * are timing out: a waiter woken by its deadline still takes the lock to
 * leave the queue, so the channel must outlive it (the last one out frees
 * it). ASan and TSan saw the freed mutex taken on the old code. */
struct free_race { weft_chan *c; weft_time delay; };

static void *free_later(void *arg)
{
    struct free_race *fr = arg;
    struct timespec ts = { 0, (long)fr->delay };
    nanosleep(&ts, NULL);
    weft_chan_free(fr->c);
    return NULL;
}

static int timing_out(void *arg)
{
    int v, rc;
    weft_scope sc;
    weft_scope_enter(&sc, 200 * WEFT_US);
    rc = weft_chan_recv(arg, &v);
    weft_scope_exit(&sc);
    return rc == -ETIMEDOUT || rc == -EPIPE ? 0 : rc;
}

static int free_race(void *unused)
{
    (void)unused;
    int rounds = test_scale(2000);
    for (int i = 0; i < rounds; i++) {
        struct free_race fr = { weft_chan_new_shared(sizeof(int), 0), 150000 + (i % 100) * 1000 };
        weft_group *g = weft_group_new();
        for (int t = 0; t < 4; t++)
            weft_spawn(g, timing_out, fr.c, "receiver");
        weft_yield();                          /* each runs until it blocks in recv */
        pthread_t th;
        pthread_create(&th, NULL, free_later, &fr);
        EXPECT_EQ(weft_group_wait(g), 0);
        pthread_join(th, NULL);
    }
    return 0;
}
static void test_shared_free_while_timing_out(void **s) { (void)s; RUN(free_race, NULL); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo),
        cmocka_unit_test(test_try_and_close),
        cmocka_unit_test(test_wakeups),
        cmocka_unit_test(test_free_wakes),
        cmocka_unit_test(test_shared_across_loops),
        cmocka_unit_test(test_local_is_loop_local),
        cmocka_unit_test(test_shared_timeout_race),
        cmocka_unit_test(test_shared_free_while_timing_out),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
