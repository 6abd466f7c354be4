/* Deadline scopes, cancellation and shields: DESIGN.md's exact semantics. */
#include "test.h"

static int nested(void *unused)
{
    (void)unused;
    weft_scope outer, inner;
    EXPECT(weft_deadline() == WEFT_FOREVER);
    weft_scope_enter(&outer, 30 * WEFT_MS);
    weft_time dl = weft_deadline();
    EXPECT(dl != WEFT_FOREVER);
    weft_scope_enter(&inner, 10 * WEFT_SEC);   /* cannot extend */
    EXPECT(weft_deadline() == dl);
    weft_time t0 = weft_now();
    EXPECT_EQ(weft_sleep(WEFT_SEC), -ETIMEDOUT);
    EXPECT(weft_now() - t0 < 500 * WEFT_MS);
    EXPECT(!weft_scope_exit(&inner));          /* the outer deadline fired */
    EXPECT(weft_scope_exit(&outer));
    EXPECT(weft_deadline() == WEFT_FOREVER);

    weft_scope_enter(&outer, 10 * WEFT_SEC);
    weft_scope_enter(&inner, 10 * WEFT_MS);    /* shortens */
    EXPECT(weft_deadline() < weft_now() + 20 * WEFT_MS);
    EXPECT_EQ(weft_sleep(WEFT_SEC), -ETIMEDOUT);
    EXPECT(weft_scope_exit(&inner));
    EXPECT(weft_deadline() > weft_now() + 5 * WEFT_SEC);
    EXPECT_EQ(weft_sleep(WEFT_MS), 0);         /* outer still fine */
    EXPECT(!weft_scope_exit(&outer));
    return 0;
}
static void test_nested(void **s) { (void)s; RUN(nested, NULL); }

static int level(void *unused)
{
    (void)unused;
    weft_scope sc;
    weft_scope_enter(&sc, 5 * WEFT_MS);
    EXPECT_EQ(weft_sleep(WEFT_SEC), -ETIMEDOUT);
    /* expired: every blocking call returns at once */
    weft_time t0 = weft_now();
    weft_sem sem;
    weft_sem_init(&sem, 0);
    EXPECT_EQ(weft_sem_acquire(&sem), -ETIMEDOUT);
    weft_sem_init(&sem, 1);
    EXPECT_EQ(weft_sem_acquire(&sem), -ETIMEDOUT);
    weft_event ev;
    weft_event_init(&ev);
    EXPECT_EQ(weft_event_wait(&ev), -ETIMEDOUT);
    EXPECT_EQ(weft_sleep(WEFT_SEC), -ETIMEDOUT);
    EXPECT(weft_now() - t0 < 500 * WEFT_MS);      /* not 4 x 1 s */
    EXPECT(weft_scope_exit(&sc));

    /* a zero timeout is expired from the start */
    weft_scope_enter(&sc, 0);
    EXPECT_EQ(weft_sleep(WEFT_SEC), -ETIMEDOUT);
    EXPECT(weft_scope_exit(&sc));
    /* a scope nothing blocked in reports false */
    weft_scope_enter(&sc, WEFT_SEC);
    EXPECT(!weft_scope_exit(&sc));
    weft_scope_enter(&sc, WEFT_FOREVER);
    EXPECT(weft_deadline() == WEFT_FOREVER);
    EXPECT(!weft_scope_exit(&sc));
    return 0;
}
static void test_level_triggered(void **s) { (void)s; RUN(level, NULL); }

static int submilli(void *unused)
{
    (void)unused;
    for (int i = 0; i < 20; i++) {
        weft_scope sc;
        weft_time t0 = weft_now();
        weft_scope_enter(&sc, 200 * WEFT_US);
        EXPECT_EQ(weft_sleep(WEFT_SEC), -ETIMEDOUT);
        weft_time dt = weft_now() - t0;
        weft_scope_exit(&sc);
        EXPECT(dt >= 200 * WEFT_US);          /* never early */
        EXPECT(dt < 500 * WEFT_MS);
    }
    return 0;
}
static void test_submillisecond(void **s) { (void)s; RUN(submilli, NULL); }

static int cancelled_in_scope(void *arg)
{
    weft_event *ev = arg;
    weft_scope sc;
    weft_scope_enter(&sc, 20 * WEFT_MS);
    weft_event_set(ev);
    weft_sleep(100 * WEFT_MS);                 /* both will apply */
    EXPECT_EQ(weft_sleep(WEFT_SEC), -ECANCELED);
    weft_scope_exit(&sc);
    return 0;
}

static int cancel_beats_timeout(void *unused)
{
    (void)unused;
    weft_event ev;
    weft_event_init(&ev);
    weft_group *g = weft_group_new();
    weft_spawn(g, cancelled_in_scope, &ev, "c");
    weft_event_wait(&ev);
    weft_group_cancel(g);
    EXPECT_EQ(weft_group_wait(g), 0);

    /* cancelled and past a deadline at the same moment: -ECANCELED */
    weft_scope sc;
    weft_scope_enter(&sc, 0);
    weft_task_cancel(weft_self());
    EXPECT_EQ(weft_sleep(WEFT_SEC), -ECANCELED);
    EXPECT(!weft_scope_exit(&sc));
    return 0;
}
static void test_cancel_beats_timeout(void **s) { (void)s; RUN(cancel_beats_timeout, NULL); }

/* The victim's deadline timer fires, and a task that runs before it in
 * the same turn cancels it: the pending timeout turns into -ECANCELED. */
static weft_task *victim;
static int race_victim(void *arg)
{
    weft_scope sc;
    victim = weft_self();
    weft_scope_enter(&sc, 2 * WEFT_MS);
    *(int *)arg = weft_sleep(WEFT_SEC);
    weft_scope_exit(&sc);
    return 0;
}

static int race_canceller(void *unused)
{
    (void)unused;
    weft_sleep(WEFT_MS);                       /* fires in the same turn, first */
    return weft_task_cancel(victim);
}

static int timer_then_cancel(void *unused)
{
    (void)unused;
    int rc = 1;
    weft_group *g = weft_group_new();
    weft_spawn(g, race_victim, &rc, "victim");
    weft_spawn(g, race_canceller, NULL, "canceller");
    weft_yield();                              /* both armed their timers */
    weft_time until = weft_now() + 10 * WEFT_MS;
    while (weft_now() < until)
        ;                                      /* hold the loop past both deadlines */
    EXPECT_EQ(weft_group_wait(g), 0);
    EXPECT_EQ(rc, -ECANCELED);
    return 0;
}
static void test_timer_then_cancel(void **s) { (void)s; RUN(timer_then_cancel, NULL); }

static int shielded_cleanup(void *arg)
{
    int *steps = arg;
    weft_scope outer;
    weft_scope_enter(&outer, 10 * WEFT_MS);
    EXPECT_EQ(weft_sleep(WEFT_SEC), -ECANCELED);
    (*steps)++;
    weft_scope sh;
    weft_scope_enter_shielded(&sh, 50 * WEFT_MS);
    EXPECT(weft_deadline() > weft_now() + 30 * WEFT_MS);   /* own deadline only */
    EXPECT_EQ(weft_sleep(20 * WEFT_MS), 0);   /* cleanup still sleeps: past outer deadline */
    (*steps)++;
    EXPECT_EQ(weft_sleep(WEFT_SEC), -ETIMEDOUT);   /* but its own deadline holds */
    EXPECT(weft_scope_exit(&sh));
    EXPECT_EQ(weft_sleep(WEFT_MS), -ECANCELED);    /* outside the shield again */
    EXPECT(weft_cancelled());
    weft_scope_exit(&outer);
    return 0;
}

static int shield(void *unused)
{
    (void)unused;
    int steps = 0;
    weft_group *g = weft_group_new();
    weft_spawn(g, shielded_cleanup, &steps, "cleanup");
    weft_yield();
    weft_group_cancel(g);
    EXPECT_EQ(weft_group_wait(g), 0);
    EXPECT_EQ(steps, 2);
    return 0;
}
static void test_shield(void **s) { (void)s; RUN(shield, NULL); }

static int inherit_child(void *arg)
{
    weft_time parent = *(weft_time *)arg;
    EXPECT(weft_deadline() == parent);
    return weft_sleep(WEFT_SEC);
}

static int inherit(void *unused)
{
    (void)unused;
    weft_scope sc;
    weft_scope_enter(&sc, 20 * WEFT_MS);
    weft_time dl = weft_deadline();
    weft_group *g = weft_group_new();
    weft_spawn(g, inherit_child, &dl, "child");
    int rc = weft_group_wait(g);
    /* the child failed with -ETIMEDOUT first; or the wait itself expired */
    EXPECT_EQ(rc, -ETIMEDOUT);
    weft_scope_exit(&sc);
    return 0;
}
static void test_children_inherit_deadline(void **s) { (void)s; RUN(inherit, NULL); }

static int bad_lifo(void *unused)
{
    (void)unused;
    weft_scope a, b;
    weft_scope_enter(&a, WEFT_SEC);
    weft_scope_enter(&b, WEFT_SEC);
    weft_scope_exit(&a);
    return 0;
}
static void run_bad_lifo(void *unused) { (void)unused; weft_main(bad_lifo, NULL); }

static int open_scope(void *unused)
{
    (void)unused;
    static weft_scope a;
    weft_scope_enter(&a, WEFT_SEC);
    return 0;
}
static void run_open_scope(void *unused) { (void)unused; weft_main(open_scope, NULL); }

static void run_outside(void *unused)
{
    (void)unused;
    weft_scope a;
    weft_scope_enter(&a, WEFT_SEC);
}

static void test_misuse_aborts(void **s)
{
    (void)s;
    char out[2048];
    int st = run_in_child(run_bad_lifo, NULL, out, sizeof out);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
    assert_non_null(strstr(out, "not the innermost scope of task 'main'"));
    st = run_in_child(run_open_scope, NULL, out, sizeof out);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
    assert_non_null(strstr(out, "task 'main' returned inside a weft_scope"));
    st = run_in_child(run_outside, NULL, out, sizeof out);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
    assert_non_null(strstr(out, "weft_scope_enter called outside a weft task"));
}

static int absolute(void *unused)
{
    (void)unused;
    weft_scope sc;
    weft_time dl = weft_now() + 5 * WEFT_MS;
    weft_scope_enter_at(&sc, dl);
    EXPECT(weft_deadline() == dl);
    EXPECT_EQ(weft_sleep(WEFT_SEC), -ETIMEDOUT);
    EXPECT(weft_now() >= dl);
    EXPECT(weft_scope_exit(&sc));
    return 0;
}
static void test_enter_at(void **s) { (void)s; RUN(absolute, NULL); }

/* huge durations do not overflow into the past */
static int forever(void *unused)
{
    (void)unused;
    weft_scope sc;
    weft_time t0 = weft_now();
    weft_scope_enter(&sc, 5 * WEFT_MS);
    EXPECT_EQ(weft_sleep(WEFT_FOREVER), -ETIMEDOUT);
    EXPECT_EQ(weft_sleep(WEFT_FOREVER - 1), -ETIMEDOUT);
    EXPECT(weft_scope_exit(&sc));
    EXPECT(weft_now() - t0 >= 5 * WEFT_MS);
    weft_scope_enter(&sc, WEFT_FOREVER - 1);
    EXPECT(weft_deadline() == WEFT_FOREVER);
    weft_scope_exit(&sc);
    return 0;
}
static void test_huge_durations(void **s) { (void)s; RUN(forever, NULL); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nested),
        cmocka_unit_test(test_level_triggered),
        cmocka_unit_test(test_submillisecond),
        cmocka_unit_test(test_cancel_beats_timeout),
        cmocka_unit_test(test_timer_then_cancel),
        cmocka_unit_test(test_shield),
        cmocka_unit_test(test_children_inherit_deadline),
        cmocka_unit_test(test_misuse_aborts),
        cmocka_unit_test(test_enter_at),
        cmocka_unit_test(test_huge_durations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
