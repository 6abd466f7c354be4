/* Semaphore, mutex, event: fairness, bounds, cancellation, hand-off. */
#include "test.h"

struct sem_ctx { weft_sem sem; int in, max, order[64], n; };

static int bounded(void *arg)
{
    struct sem_ctx *c = arg;
    int rc = weft_sem_acquire(&c->sem);
    if (rc)
        return rc;
    if (++c->in > c->max)
        c->max = c->in;
    weft_sleep(WEFT_MS);
    c->in--;
    weft_sem_release(&c->sem);
    return 0;
}

static int sem_bound(void *unused)
{
    (void)unused;
    struct sem_ctx c = { .in = 0 };
    weft_sem_init(&c.sem, 5);
    weft_group *g = weft_group_new();
    for (int i = 0; i < 200; i++)
        weft_spawn(g, bounded, &c, "b");
    EXPECT_EQ(weft_group_wait(g), 0);
    EXPECT_EQ(c.max, 5);
    EXPECT_EQ(weft_sem_available(&c.sem), 5);
    return 0;
}
static void test_sem_bound(void **s) { (void)s; RUN(sem_bound, NULL); }

static struct sem_ctx fair;
static int fair_waiter(void *arg)
{
    EXPECT_EQ(weft_sem_acquire(&fair.sem), 0);
    fair.order[fair.n++] = (int)(intptr_t)arg;
    weft_yield();
    weft_sem_release(&fair.sem);
    return 0;
}

static int sem_fifo(void *unused)
{
    (void)unused;
    memset(&fair, 0, sizeof fair);
    weft_sem_init(&fair.sem, 1);
    EXPECT_EQ(weft_sem_acquire(&fair.sem), 0);
    weft_group *g = weft_group_new();
    for (intptr_t i = 0; i < 10; i++)
        weft_spawn(g, fair_waiter, (void *)i, "w");
    weft_yield();                              /* all queued, in order */
    weft_sem_release(&fair.sem);
    /* a newcomer cannot overtake the queue */
    EXPECT_EQ(weft_sem_try_acquire(&fair.sem), -EAGAIN);
    EXPECT_EQ(weft_group_wait(g), 0);
    for (int i = 0; i < 10; i++)
        EXPECT_EQ(fair.order[i], i);
    EXPECT_EQ(weft_sem_try_acquire(&fair.sem), 0);
    weft_sem_release(&fair.sem);
    return 0;
}
static void test_sem_fifo(void **s) { (void)s; RUN(sem_fifo, NULL); }

static int acquire_result;
static int acquirer(void *arg)
{
    acquire_result = weft_sem_acquire(arg);
    return 0;
}

static int sem_cancel(void *unused)
{
    (void)unused;
    weft_sem sem;
    weft_sem_init(&sem, 0);
    weft_group *g = weft_group_new();
    weft_spawn(g, acquirer, &sem, "a");
    weft_yield();
    weft_group_cancel(g);
    EXPECT_EQ(weft_group_wait(g), 0);
    EXPECT_EQ(acquire_result, -ECANCELED);
    weft_sem_release(&sem);                    /* the cancelled waiter is gone */
    EXPECT_EQ(weft_sem_available(&sem), 1);

    /* hand-off wins over a later cancel: the permit is not lost */
    weft_sem_init(&sem, 0);
    g = weft_group_new();
    weft_spawn(g, acquirer, &sem, "a");
    weft_yield();
    weft_sem_release(&sem);                    /* hands the permit over */
    weft_group_cancel(g);                      /* before the waiter runs */
    EXPECT_EQ(weft_group_wait(g), 0);
    EXPECT_EQ(acquire_result, 0);
    EXPECT_EQ(weft_sem_available(&sem), 0);    /* it holds the permit */

    weft_scope sc;
    weft_scope_enter(&sc, 5 * WEFT_MS);
    EXPECT_EQ(weft_sem_acquire(&sem), -ETIMEDOUT);
    EXPECT(weft_scope_exit(&sc));
    return 0;
}
static void test_sem_cancel_and_handoff(void **s) { (void)s; RUN(sem_cancel, NULL); }

static weft_mutex mu;
static int shared_counter;
static int locker(void *unused)
{
    (void)unused;
    for (int i = 0; i < 100; i++) {
        EXPECT_EQ(weft_mutex_lock(&mu), 0);
        int v = shared_counter;
        weft_yield();                          /* others run, none gets in */
        shared_counter = v + 1;
        weft_mutex_unlock(&mu);
    }
    return 0;
}

static int lock_result;
static int lock_waiter(void *arg)
{
    lock_result = weft_mutex_lock(arg);
    if (lock_result == 0)
        weft_mutex_unlock(arg);
    return 0;
}

static int mutex_cancel(void *unused)
{
    (void)unused;
    weft_mutex m;
    weft_mutex_init(&m);
    EXPECT_EQ(weft_mutex_lock(&m), 0);
    weft_group *g = weft_group_new();
    weft_spawn(g, lock_waiter, &m, "w");
    weft_yield();
    weft_group_cancel(g);
    EXPECT_EQ(weft_group_wait(g), 0);
    EXPECT_EQ(lock_result, -ECANCELED);
    weft_mutex_unlock(&m);
    EXPECT_EQ(weft_mutex_trylock(&m), 0);      /* the lock was not lost */
    weft_mutex_unlock(&m);
    weft_scope sc;
    EXPECT_EQ(weft_mutex_lock(&m), 0);
    g = weft_group_new();
    weft_scope_enter(&sc, 3 * WEFT_MS);
    weft_spawn(g, lock_waiter, &m, "w");       /* inherits the deadline */
    weft_scope_exit(&sc);
    EXPECT_EQ(weft_group_wait(g), 0);
    EXPECT_EQ(lock_result, -ETIMEDOUT);
    weft_mutex_unlock(&m);
    return 0;
}
static void test_mutex_cancel(void **s) { (void)s; RUN(mutex_cancel, NULL); }

static int mutex(void *unused)
{
    (void)unused;
    weft_mutex_init(&mu);
    shared_counter = 0;
    weft_group *g = weft_group_new();
    for (int i = 0; i < 5; i++)
        weft_spawn(g, locker, NULL, "l");
    EXPECT_EQ(weft_group_wait(g), 0);
    EXPECT_EQ(shared_counter, 500);
    EXPECT_EQ(weft_mutex_lock(&mu), 0);
    EXPECT_EQ(weft_mutex_lock(&mu), -EDEADLK);
    EXPECT_EQ(weft_mutex_trylock(&mu), -EBUSY);
    weft_mutex_unlock(&mu);
    EXPECT_EQ(weft_mutex_trylock(&mu), 0);
    weft_mutex_unlock(&mu);
    return 0;
}
static void test_mutex(void **s) { (void)s; RUN(mutex, NULL); }

static int bad_unlock(void *unused)
{
    (void)unused;
    weft_mutex m;
    weft_mutex_init(&m);
    weft_mutex_unlock(&m);
    return 0;
}
static void run_bad_unlock(void *u) { (void)u; weft_main(bad_unlock, NULL); }
static void test_mutex_misuse(void **s)
{
    (void)s;
    char out[1024];
    int st = run_in_child(run_bad_unlock, NULL, out, sizeof out);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
    assert_non_null(strstr(out, "weft_mutex_unlock: task 'main' does not hold this mutex"));
}

static int event_waiter(void *arg)
{
    return weft_event_wait(arg);
}

static int event(void *unused)
{
    (void)unused;
    weft_event ev;
    weft_event_init(&ev);
    EXPECT(!weft_event_is_set(&ev));
    weft_group *g = weft_group_new();
    for (int i = 0; i < 5; i++)
        weft_spawn(g, event_waiter, &ev, "w");
    weft_yield();
    EXPECT_EQ(weft_group_size(g), 5);
    weft_event_set(&ev);                       /* wakes all */
    EXPECT_EQ(weft_group_wait(g), 0);
    EXPECT(weft_event_is_set(&ev));
    EXPECT_EQ(weft_event_wait(&ev), 0);        /* stays set */
    weft_event_clear(&ev);
    weft_scope sc;
    weft_scope_enter(&sc, 2 * WEFT_MS);
    EXPECT_EQ(weft_event_wait(&ev), -ETIMEDOUT);
    weft_scope_exit(&sc);
    g = weft_group_new();
    weft_spawn(g, event_waiter, &ev, "w");
    weft_yield();
    weft_group_cancel(g);
    EXPECT_EQ(weft_group_wait(g), 0);          /* -ECANCELED, group-caused */
    return 0;
}
static void test_event(void **s) { (void)s; RUN(event, NULL); }

/* loop-local objects used from another loop: -EXDEV */
static weft_sem xsem;
static weft_event xev;
static int other_loop(void *unused)
{
    (void)unused;
    if (weft_loop_index() == 0) {
        EXPECT_EQ(weft_sem_acquire(&xsem), 0);    /* binds to loop 0 */
        EXPECT_EQ(weft_event_wait(&xev), 0);
        return 0;
    }
    weft_sleep(20 * WEFT_MS);                    /* let loop 0 bind first */
    EXPECT_EQ(weft_sem_acquire(&xsem), -EXDEV);
    EXPECT_EQ(weft_sem_try_acquire(&xsem), -EXDEV);
    return 0;
}

static void test_cross_loop(void **s)
{
    (void)s;
    weft_sem_init(&xsem, 1);
    weft_event_init(&xev);
    weft_event_set(&xev);
    test_failures = 0;
    assert_int_equal(weft_run(2, other_loop, NULL), 0);
    assert_int_equal(test_failures, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sem_bound),
        cmocka_unit_test(test_sem_fifo),
        cmocka_unit_test(test_sem_cancel_and_handoff),
        cmocka_unit_test(test_mutex),
        cmocka_unit_test(test_mutex_cancel),
        cmocka_unit_test(test_mutex_misuse),
        cmocka_unit_test(test_event),
        cmocka_unit_test(test_cross_loop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
