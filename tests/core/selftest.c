/*
 * Dependency-free smoke test of the whole core: switching, tasks, groups,
 * scopes, sync, channels, fds, the blocking pool and multi-loop runs.
 * Built without cmocka so it also runs on aarch64 under qemu-user, where
 * it checks the aarch64 context switch end to end.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "weft.h"

static int failures, checks;
#define CHECK(c)                                                                   \
    do {                                                                           \
        checks++;                                                                  \
        if (!(c)) {                                                                \
            failures++;                                                            \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
        }                                                                          \
    } while (0)

static int order[16], norder;

static int yielder(void *arg)
{
    for (int i = 0; i < 3; i++) {
        order[norder++] = (int)(intptr_t)arg;
        weft_yield();
    }
    return 0;
}

static int t_yield(void *unused)
{
    (void)unused;
    weft_group *g = weft_group_new();
    weft_spawn(g, yielder, (void *)1, "a");
    weft_spawn(g, yielder, (void *)2, "b");
    CHECK(weft_group_wait(g) == 0);
    int want[] = { 1, 2, 1, 2, 1, 2 };
    CHECK(norder == 6 && memcmp(order, want, sizeof want) == 0);
    return 0;
}

static int fail_after(void *arg)
{
    weft_sleep((weft_time)(intptr_t)arg * WEFT_MS);
    return -EIO;
}

static int sleeper(void *unused)
{
    (void)unused;
    return weft_sleep(10 * WEFT_SEC);
}

static int t_group(void *unused)
{
    (void)unused;
    weft_group *g = weft_group_new();
    weft_time t0 = weft_now();
    weft_spawn(g, sleeper, NULL, "sleeper");
    weft_spawn(g, fail_after, (void *)5, "failer");
    CHECK(weft_group_wait(g) == -EIO);
    CHECK(weft_now() - t0 < 2 * WEFT_SEC);
    return 0;
}

static int t_scope(void *unused)
{
    (void)unused;
    weft_scope s;
    weft_time t0 = weft_now();
    weft_scope_enter(&s, 20 * WEFT_MS);
    CHECK(weft_sleep(WEFT_SEC) == -ETIMEDOUT);
    CHECK(weft_sleep(WEFT_SEC) == -ETIMEDOUT);      /* level triggered */
    CHECK(weft_scope_exit(&s));
    weft_time dt = weft_now() - t0;
    CHECK(dt >= 20 * WEFT_MS && dt < 500 * WEFT_MS);
    return 0;
}

static int ponger(void *arg)
{
    weft_chan **c = arg;
    int v;
    while (weft_chan_recv(c[0], &v) == 0)
        if (weft_chan_send(c[1], &v) < 0)
            break;
    return 0;
}

static int t_chan(void *unused)
{
    (void)unused;
    weft_chan *c[2] = { weft_chan_new(sizeof(int), 0), weft_chan_new(sizeof(int), 1) };
    weft_group *g = weft_group_new();
    weft_spawn(g, ponger, c, "ponger");
    int sum = 0;
    for (int i = 0; i < 1000; i++) {
        int v;
        CHECK(weft_chan_send(c[0], &i) == 0);
        CHECK(weft_chan_recv(c[1], &v) == 0);
        sum += v;
    }
    CHECK(sum == 999 * 1000 / 2);
    weft_chan_close(c[0]);
    CHECK(weft_group_wait(g) == 0);
    weft_chan_free(c[0]);
    weft_chan_free(c[1]);
    return 0;
}

static int nothing(void *arg)
{
    (*(int *)arg)++;
    return 0;
}

static int t_many(void *unused)
{
    (void)unused;
    int n = 0;
    weft_group *g = weft_group_new();
    for (int i = 0; i < 20000; i++)
        CHECK(weft_spawn(g, nothing, &n, "n") == 0 || (i = 20000));
    CHECK(weft_group_wait(g) == 0);
    CHECK(n == 20000);
    return 0;
}

static int square(void *arg)
{
    int *v = arg;
    usleep(1000);
    return *v * *v;
}

static int t_blocking(void *unused)
{
    (void)unused;
    int v = 7;
    CHECK(weft_run_blocking(square, &v) == 49);
    return 0;
}

static int recurse(int depth)
{
    volatile char buf[512];
    buf[0] = (char)depth;
    return depth ? recurse(depth - 1) + buf[0] - (char)depth : weft_yield();
}

static int deep(void *unused)
{
    (void)unused;
    return recurse(300);                  /* ~150 KiB of a 256 KiB stack */
}

static int t_deep(void *unused)
{
    (void)unused;
    weft_group *g = weft_group_new();
    weft_spawn(g, deep, NULL, "deep");
    weft_spawn(g, deep, NULL, "deep2");
    CHECK(weft_group_wait(g) == 0);
    return 0;
}

static int t_fd(void *unused)
{
    (void)unused;
    int p[2];
    CHECK(pipe(p) == 0);
    CHECK(weft_fd_wait(p[1], WEFT_WRITE) == 0);
    weft_scope s;
    weft_scope_enter(&s, 10 * WEFT_MS);
    CHECK(weft_fd_wait(p[0], WEFT_READ) == -ETIMEDOUT);
    weft_scope_exit(&s);
    CHECK(write(p[1], "x", 1) == 1);
    CHECK(weft_fd_wait(p[0], WEFT_READ) == 0);
    weft_fd_forget(p[0]);
    weft_fd_forget(p[1]);
    close(p[0]);
    close(p[1]);
    return 0;
}

static int cancelled_rc;
static int wait_forever(void *arg)
{
    cancelled_rc = weft_sem_acquire(arg);
    return cancelled_rc;
}

static int reported;
static void on_err(const char *task, int err, void *ctx)
{
    (void)task;
    (void)ctx;
    reported = err;
}

static int t_cancel(void *unused)
{
    (void)unused;
    weft_sem sem;
    weft_sem_init(&sem, 0);
    weft_group *g = weft_group_new();
    weft_spawn(g, wait_forever, &sem, "w");
    weft_yield();
    weft_group_cancel(g);
    CHECK(weft_group_wait(g) == 0);
    CHECK(cancelled_rc == -ECANCELED);
    weft_group *s = weft_supervisor_new(on_err, NULL);
    weft_spawn(s, fail_after, (void *)1, "bg");
    CHECK(weft_supervisor_close(s, WEFT_SEC) == 0);
    CHECK(reported == -EIO);
    return 0;
}

static int loop_sum;
static int per_loop(void *unused)
{
    (void)unused;
    __atomic_add_fetch(&loop_sum, weft_loop_index() + 1, __ATOMIC_RELAXED);
    return weft_sleep(WEFT_MS);
}

int main(void)
{
    static const struct { const char *name; weft_fn fn; } tests[] = {
        { "yield order", t_yield }, { "group failure", t_group }, { "scope", t_scope },
        { "channel", t_chan },      { "many tasks", t_many },     { "blocking", t_blocking },
        { "deep stack", t_deep },   { "fd wait", t_fd },         { "cancel", t_cancel },
    };
    int passed = 0, failed = 0;
    for (size_t i = 0; i < sizeof tests / sizeof *tests; i++) {
        int before = failures;
        int rc = weft_main(tests[i].fn, NULL);
        if (rc != 0 || failures != before) {
            fprintf(stderr, "FAIL %s (rc %d)\n", tests[i].name, rc);
            failed++;
        } else {
            printf("ok %s\n", tests[i].name);
            passed++;
        }
    }
    int before = failures;
    CHECK(weft_run(3, per_loop, NULL) == 0);
    CHECK(loop_sum == 6);
    if (failures != before)
        failed++;
    else
        passed++;
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
