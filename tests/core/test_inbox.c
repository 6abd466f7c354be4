/* A stale cross-thread wake-up left on a loop's inbox when the task
 * record is reused: the record's inbox node must survive the reuse, or
 * every wake-up queued behind it is lost (and a second wake of the new
 * task makes the inbox list point at itself). The waker's window (between
 * unlinking the waiter and queueing it on the loop's inbox) is widened by
 * delaying its inbox_lock. Found by review; Y was never woken before. */

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "test.h"

static __thread int slow_lock;            /* in the waker thread: delay its 2nd lock */
int pthread_mutex_lock(pthread_mutex_t *m)
{
    static int (*real)(pthread_mutex_t *);
    if (!real)
        real = (int (*)(pthread_mutex_t *))dlsym(RTLD_NEXT, "pthread_mutex_lock");
    if (slow_lock && ++slow_lock == 3)    /* 1st: the channel's, 2nd: the inbox's */
        usleep(100 * 1000);
    return real(m);
}

static weft_chan *c1, *c2;
static int y_rc = 1, t_rc = 1;

static void *waker_t(void *u)             /* hands T an element, slowly */
{
    (void)u;
    usleep(10 * 1000);
    slow_lock = 1;
    int v = 1;
    int rc = weft_chan_try_send(c1, &v);
    slow_lock = 0;
    (void)rc;
    return NULL;
}
static void *waker_y(void *u)             /* hands Y an element meanwhile */
{
    (void)u;
    usleep(50 * 1000);
    int v = 2;
    EXPECT_EQ(weft_chan_try_send(c2, &v), 0);
    return NULL;
}

static int task_y(void *u) { (void)u; int v; y_rc = weft_chan_recv(c2, &v); return 0; }
static int task_t(void *u)
{
    (void)u;
    int v;
    weft_scope sc;
    weft_scope_enter(&sc, 20 * WEFT_MS);
    t_rc = weft_chan_recv(c1, &v);
    weft_scope_exit(&sc);
    return 0;
}
static int nop(void *u) { (void)u; return 0; }

static int root(void *u)
{
    (void)u;
    c1 = weft_chan_new_shared(sizeof(int), 0);
    c2 = weft_chan_new_shared(sizeof(int), 0);
    weft_group *g = weft_group_new();
    weft_spawn(g, task_y, NULL, "Y");
    weft_spawn(g, task_t, NULL, "T");
    weft_yield();
    pthread_t a, b;
    pthread_create(&a, NULL, waker_t, NULL);
    pthread_create(&b, NULL, waker_y, NULL);
    weft_group *g2 = weft_group_new();
    while (t_rc == 1)
        weft_yield();                     /* stay runnable: no poll in between */
    weft_spawn(g2, nop, NULL, "reuses T's record");
    weft_group_wait(g2);
    weft_time t0 = weft_now();
    while (y_rc == 1 && weft_now() - t0 < 2 * WEFT_SEC)
        weft_sleep(WEFT_MS);
    EXPECT_EQ(y_rc, 0);                   /* handed an element: woken */
    EXPECT(t_rc == 0 || t_rc == -ETIMEDOUT);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    weft_chan_close(c2);
    EXPECT_EQ(weft_group_wait(g), 0);
    weft_chan_free(c1);
    weft_chan_free(c2);
    return 0;
}

static void test_stale_wakeup_survives_record_reuse(void **s) { (void)s; RUN(root, NULL); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stale_wakeup_survives_record_reuse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
