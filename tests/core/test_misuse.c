/*
 * Misuse that weft reports in words: a loop-local object used from another
 * loop (-EXDEV, logged with the call and both loops), a task returning a
 * positive value (logged, a failure, never read as an errno).
 */
#include "test.h"

static weft_sem sem;
static _Atomic int bound;
static _Atomic int xdev_rc;

static int cross(void *arg)
{
    (void)arg;
    if (weft_loop_index() == 0) {
        weft_sem_init(&sem, 1);
        EXPECT_EQ(weft_sem_acquire(&sem), 0);   /* binds it to loop 0 */
        weft_sem_release(&sem);
        bound = 1;
        WAIT_UNTIL(xdev_rc != 0);
        return 0;
    }
    WAIT_UNTIL(bound);
    xdev_rc = weft_sem_acquire(&sem);
    return 0;
}

static void test_cross_loop_named(void **state)
{
    (void)state;
    test_log_capture();
    test_failures = 0;
    assert_int_equal(weft_run(2, cross, NULL), 0);
    assert_int_equal(test_failures, 0);
    assert_int_equal(xdev_rc, -EXDEV);
    assert_true(test_log_has("weft_sem_acquire: an object of loop 0"));
    assert_true(test_log_has("used from loop 1"));
    assert_true(test_log_has("loop-local"));
    weft_log_set(NULL, NULL, WEFT_LOG_INFO);
}

static int five(void *arg)
{
    (void)arg;
    return 5;
}

static int parent(void *arg)
{
    (void)arg;
    weft_group *g = weft_group_new();
    EXPECT_EQ(weft_spawn(g, five, NULL, "counter"), 0);
    EXPECT_EQ(weft_group_wait(g), -EINVAL);
    return 0;
}

static void test_positive_result(void **state)
{
    (void)state;
    test_log_capture();
    RUN(parent, NULL);
    assert_true(test_log_has("task 'counter' returned 5"));
    assert_int_equal(weft_main(five, NULL), -EINVAL);
    weft_log_set(NULL, NULL, WEFT_LOG_INFO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cross_loop_named),
        cmocka_unit_test(test_positive_result),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
