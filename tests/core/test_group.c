/* Groups and supervisors: structured concurrency as DESIGN.md defines it. */
#include "test.h"

struct step { weft_time ms; int rc; };

static int after(void *arg)
{
    struct step *s = arg;
    int rc = weft_sleep(s->ms * WEFT_MS);
    return rc ? rc : s->rc;
}

static int first_failure(void *unused)
{
    (void)unused;
    /* completion order decides, not spawn order */
    struct step a = { 30, -EIO }, b = { 10, -EPIPE }, c = { 5000, 0 };
    weft_group *g = weft_group_new();
    weft_spawn(g, after, &a, "a");
    weft_spawn(g, after, &b, "b");
    weft_spawn(g, after, &c, "c");
    weft_time t0 = weft_now();
    EXPECT_EQ(weft_group_wait(g), -EPIPE);
    EXPECT(weft_now() - t0 < WEFT_SEC);        /* siblings were cancelled */
    return 0;
}
static void test_first_failure(void **s) { (void)s; RUN(first_failure, NULL); }

static int ok_group(void *unused)
{
    (void)unused;
    struct step a = { 1, 0 }, b = { 2, 0 };
    weft_group *g = weft_group_new();
    weft_spawn(g, after, &a, "a");
    weft_spawn(g, after, &b, "b");
    EXPECT_EQ(weft_group_wait(g), 0);
    g = weft_group_new();                      /* empty group */
    EXPECT_EQ(weft_group_wait(g), 0);
    return 0;
}
static void test_all_succeed(void **s) { (void)s; RUN(ok_group, NULL); }

static int failing_cleanup(void *unused)
{
    (void)unused;
    int rc = weft_sleep(WEFT_SEC);
    return rc == -ECANCELED ? -EBADMSG : 0;    /* a real failure after cancel */
}

static int explicit_cancel(void *unused)
{
    (void)unused;
    struct step a = { 5000, 0 };
    weft_group *g = weft_group_new();
    weft_spawn(g, after, &a, "a");
    weft_spawn(g, after, &a, "b");
    weft_yield();
    weft_group_cancel(g);
    EXPECT_EQ(weft_spawn(g, after, &a, "late"), -ECANCELED);
    EXPECT_EQ(weft_group_wait(g), 0);          /* cancelled children are no failure */

    g = weft_group_new();
    weft_spawn(g, failing_cleanup, NULL, "x");
    weft_spawn(g, after, &a, "y");
    weft_yield();
    weft_group_cancel(g);
    EXPECT_EQ(weft_group_wait(g), -EBADMSG);   /* unless a child failed otherwise */
    return 0;
}
static void test_explicit_cancel(void **s) { (void)s; RUN(explicit_cancel, NULL); }

static int waiter_in_group(void *arg)
{
    int *result = arg;
    struct step a = { 5000, 0 };
    weft_group *g = weft_group_new();
    weft_spawn(g, after, &a, "grandchild1");
    weft_spawn(g, after, &a, "grandchild2");
    *result = weft_group_wait(g);
    return *result;
}

static int waiter_cancelled(void *unused)
{
    (void)unused;
    int result = 1;
    weft_group *g = weft_group_new();
    weft_spawn(g, waiter_in_group, &result, "waiter");
    weft_sleep(2 * WEFT_MS);
    weft_time t0 = weft_now();
    weft_group_cancel(g);
    EXPECT_EQ(weft_group_wait(g), 0);
    EXPECT_EQ(result, -ECANCELED);
    EXPECT(weft_now() - t0 < WEFT_SEC);
    return 0;
}
static void test_waiter_cancelled(void **s) { (void)s; RUN(waiter_cancelled, NULL); }

static int waiter_times_out(void *unused)
{
    (void)unused;
    struct step a = { 5000, 0 };
    weft_scope sc;
    weft_group *g = weft_group_new();
    weft_spawn(g, after, &a, "a");
    weft_scope_enter(&sc, 10 * WEFT_MS);
    weft_time t0 = weft_now();
    EXPECT_EQ(weft_group_wait(g), -ETIMEDOUT);
    EXPECT(weft_scope_exit(&sc));
    EXPECT(weft_now() - t0 < WEFT_SEC);
    return 0;
}
static void test_waiter_times_out(void **s) { (void)s; RUN(waiter_times_out, NULL); }

static int freed;
static int frees_arg(void *arg)
{
    int rc = weft_yield();
    free(arg);
    freed++;
    return rc;
}

static int cancel_before_run(void *unused)
{
    (void)unused;
    freed = 0;
    weft_group *g = weft_group_new();
    for (int i = 0; i < 10; i++)
        weft_spawn(g, frees_arg, malloc(16), "f");
    weft_group_cancel(g);                      /* none has run yet */
    EXPECT_EQ(weft_group_wait(g), 0);
    EXPECT_EQ(freed, 10);                      /* each ran: no arg leaked */
    return 0;
}
static void test_cancel_before_first_run(void **s) { (void)s; RUN(cancel_before_run, NULL); }

static int orphaner(void *arg)
{
    struct step *s = arg;
    weft_group *g = weft_group_new();
    weft_spawn(g, after, s, "orphan");
    weft_yield();
    return 0;                                  /* forgets the group */
}

static int orphans(void *unused)
{
    (void)unused;
    test_log_capture();
    struct step slow = { 5000, 0 }, failing = { 0, -ENOSPC };
    weft_group *g = weft_group_new();
    weft_spawn(g, orphaner, &slow, "forgetful");
    weft_time t0 = weft_now();
    EXPECT_EQ(weft_group_wait(g), 0);          /* cancelled, not a failure */
    EXPECT(weft_now() - t0 < WEFT_SEC);
    EXPECT(strstr(test_log, "task 'forgetful' returned without waiting for its group") != NULL);

    g = weft_group_new();
    weft_spawn(g, orphaner, &failing, "forgetful2");
    EXPECT_EQ(weft_group_wait(g), -ENOSPC);    /* the orphan's error is kept */
    weft_log_set(NULL, NULL, WEFT_LOG_INFO);
    return 0;
}
static void test_orphaned_group(void **s) { (void)s; RUN(orphans, NULL); }

static weft_group *shared_group;
static int not_owner(void *unused)
{
    (void)unused;
    EXPECT_EQ(weft_group_wait(shared_group), -EPERM);
    EXPECT_EQ(weft_supervisor_close(shared_group, 0), -EPERM);
    return 0;
}

static int ownership(void *unused)
{
    (void)unused;
    shared_group = weft_group_new();
    weft_group *g = weft_group_new();
    weft_spawn(g, not_owner, NULL, "intruder");
    EXPECT_EQ(weft_group_wait(g), 0);
    EXPECT_EQ(weft_supervisor_close(shared_group, 0), -EPERM);   /* not a supervisor */
    EXPECT_EQ(weft_group_wait(shared_group), 0);
    return 0;
}
static void test_ownership(void **s) { (void)s; RUN(ownership, NULL); }

/* ---- supervisors -------------------------------------------------------- */

struct report { char names[8][32]; int errs[8]; int n; };

static void on_error(const char *task, int err, void *ctx)
{
    struct report *r = ctx;
    EXPECT(weft_self() != NULL);               /* on the loop thread, as it exits */
    if (r->n < 8) {
        snprintf(r->names[r->n], 32, "%s", task);
        r->errs[r->n++] = err;
    }
}

static int supervisor(void *unused)
{
    (void)unused;
    struct report r = { .n = 0 };
    errno = 0;
    EXPECT(weft_supervisor_new(NULL, NULL) == NULL && errno == EINVAL);
    weft_group *s = weft_supervisor_new(on_error, &r);
    struct step fail1 = { 1, -EIO }, fail2 = { 3, -EPIPE }, ok = { 20, 0 };
    weft_spawn(s, after, &fail1, "job1");
    weft_spawn(s, after, &ok, "steady");
    weft_spawn(s, after, &fail2, "job2");
    weft_sleep(10 * WEFT_MS);
    EXPECT_EQ(r.n, 2);                          /* reported as they exited */
    EXPECT(strcmp(r.names[0], "job1") == 0 && r.errs[0] == -EIO);
    EXPECT(strcmp(r.names[1], "job2") == 0 && r.errs[1] == -EPIPE);
    EXPECT_EQ(weft_group_size(s), 1);           /* the sibling was not cancelled */
    EXPECT_EQ(weft_supervisor_close(s, WEFT_SEC), 0);   /* finished within grace */
    EXPECT_EQ(r.n, 2);
    return 0;
}
static void test_supervisor_errors(void **s) { (void)s; RUN(supervisor, NULL); }

static int closing_spawn(void *arg)
{
    weft_group *s = arg;
    struct step st = { 1, 0 };
    EXPECT_EQ(weft_spawn(s, after, &st, "late"), -ECANCELED);
    return 0;
}

static int supervisor_close_semantics(void *unused)
{
    (void)unused;
    struct report r = { .n = 0 };
    weft_group *s = weft_supervisor_new(on_error, &r);
    struct step slow = { 5000, 0 }, quick = { 5, 0 };
    weft_spawn(s, after, &slow, "slow");
    weft_spawn(s, after, &quick, "quick");
    weft_time t0 = weft_now();
    EXPECT_EQ(weft_supervisor_close(s, 30 * WEFT_MS), -ETIMEDOUT);
    weft_time dt = weft_now() - t0;
    EXPECT(dt >= 30 * WEFT_MS && dt < WEFT_SEC);
    EXPECT_EQ(r.n, 0);                          /* cancelled ones are not errors */

    s = weft_supervisor_new(on_error, &r);
    weft_spawn(s, after, &quick, "quick");
    weft_spawn(s, closing_spawn, s, "spawner");
    EXPECT_EQ(weft_supervisor_close(s, WEFT_SEC), 0);

    s = weft_supervisor_new(on_error, &r);
    weft_spawn(s, after, &slow, "slow");
    EXPECT_EQ(weft_supervisor_close(s, 0), -ETIMEDOUT);
    return 0;
}
static void test_supervisor_close(void **s) { (void)s; RUN(supervisor_close_semantics, NULL); }

static int forgets_supervisor(void *arg)
{
    struct report *r = arg;
    weft_group *s = weft_supervisor_new(on_error, r);
    struct step slow = { 5000, 0 };
    weft_spawn(s, after, &slow, "bg");
    return 0;
}

static int unclosed_supervisor(void *unused)
{
    (void)unused;
    struct report r = { .n = 0 };
    weft_group *g = weft_group_new();
    weft_spawn(g, forgets_supervisor, &r, "owner");
    weft_time t0 = weft_now();
    EXPECT_EQ(weft_group_wait(g), 0);
    EXPECT(weft_now() - t0 < WEFT_SEC);         /* closed with grace 0 */
    EXPECT_EQ(r.n, 0);
    return 0;
}
static void test_unclosed_supervisor(void **s) { (void)s; RUN(unclosed_supervisor, NULL); }

/* Background work outlives the request that started it: a supervisor's
 * child does not inherit the spawner's deadline (a pool's maintenance
 * task, started inside a handler's 5 s scope, spun once that passed). */
static weft_time child_deadline;
static int sleeps_past(void *arg)
{
    (void)arg;
    child_deadline = weft_deadline();
    return weft_sleep(50 * WEFT_MS);
}

static int no_inherited_deadline(void *unused)
{
    (void)unused;
    struct report rep = { .n = 0 };
    weft_group *sv = weft_supervisor_new(on_error, &rep);
    weft_group *g = weft_group_new();
    weft_scope sc;
    weft_scope_enter(&sc, 10 * WEFT_MS);
    EXPECT_EQ(weft_spawn(sv, sleeps_past, NULL, "background"), 0);
    weft_scope_exit(&sc);
    EXPECT_EQ(weft_supervisor_close(sv, WEFT_SEC), 0);
    EXPECT_EQ(child_deadline, WEFT_FOREVER);
    EXPECT_EQ(rep.n, 0);
    weft_scope_enter(&sc, 10 * WEFT_MS);          /* a group's child does inherit */
    EXPECT_EQ(weft_spawn(g, sleeps_past, NULL, "child"), 0);
    weft_scope_exit(&sc);
    EXPECT_EQ(weft_group_wait(g), -ETIMEDOUT);
    EXPECT(child_deadline != WEFT_FOREVER);
    return 0;
}
static void test_supervisor_child_deadline(void **s) { (void)s; RUN(no_inherited_deadline, NULL); }

static int close_result;
static int closer(void *arg)
{
    struct report *r = arg;
    weft_group *s = weft_supervisor_new(on_error, r);
    struct step slow = { 5000, 0 };
    weft_spawn(s, after, &slow, "bg");
    close_result = weft_supervisor_close(s, 10 * WEFT_SEC);
    return 0;
}

static int closer_cancelled(void *unused)
{
    (void)unused;
    struct report r = { .n = 0 };
    weft_group *g = weft_group_new();
    weft_spawn(g, closer, &r, "closer");
    weft_sleep(2 * WEFT_MS);
    weft_time t0 = weft_now();
    weft_group_cancel(g);
    EXPECT_EQ(weft_group_wait(g), 0);
    EXPECT_EQ(close_result, -ECANCELED);       /* children cancelled and joined */
    EXPECT(weft_now() - t0 < WEFT_SEC);
    EXPECT_EQ(r.n, 0);
    return 0;
}
static void test_supervisor_closer_cancelled(void **s) { (void)s; RUN(closer_cancelled, NULL); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_failure),
        cmocka_unit_test(test_all_succeed),
        cmocka_unit_test(test_explicit_cancel),
        cmocka_unit_test(test_waiter_cancelled),
        cmocka_unit_test(test_waiter_times_out),
        cmocka_unit_test(test_cancel_before_first_run),
        cmocka_unit_test(test_orphaned_group),
        cmocka_unit_test(test_ownership),
        cmocka_unit_test(test_supervisor_errors),
        cmocka_unit_test(test_supervisor_close),
        cmocka_unit_test(test_unclosed_supervisor),
        cmocka_unit_test(test_supervisor_closer_cancelled),
        cmocka_unit_test(test_supervisor_child_deadline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
