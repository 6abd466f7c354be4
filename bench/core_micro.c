/*
 * Core microbenchmarks, printed as "name value" lines for bench/run.sh:
 * task switch, spawn+join, channel ping-pong, memory per idle task,
 * timer arm+cancel, uncontended semaphore, run_blocking round trip.
 *
 *   core_micro [scale [name]]   scale 1 = full size (default), 0.1 = a tenth;
 *                               name runs just that benchmark
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weft.h"
#include "../tests/procstat.h"
#include "../src/core/internal.h"

static double scale = 1.0;
static int N(int n) { return (int)(n * scale) > 0 ? (int)(n * scale) : 1; }

static int yielder(void *arg)
{
    int n = *(int *)arg;
    for (int i = 0; i < n; i++)
        weft_yield();
    return 0;
}

static double bench_switch(void)
{
    int n = N(10000000);
    weft_group *g = weft_group_new();
    weft_time t0 = weft_now();
    weft_spawn(g, yielder, &n, "a");
    weft_spawn(g, yielder, &n, "b");
    weft_group_wait(g);
    return (double)(weft_now() - t0) / (2.0 * n);
}

static int nothing(void *arg)
{
    (void)arg;
    return 0;
}

static double bench_spawn_join(void)
{
    int n = N(1000000);
    weft_time t0 = weft_now();
    weft_group *g = weft_group_new();
    for (int i = 0; i < n; i++)
        weft_spawn(g, nothing, NULL, "t");
    weft_group_wait(g);
    return (double)(weft_now() - t0) / n;
}

struct pp { weft_chan *a, *b; int n; };
static int ponger(void *arg)
{
    struct pp *p = arg;
    char v;
    for (int i = 0; i < p->n; i++) {
        weft_chan_recv(p->a, &v);
        weft_chan_send(p->b, &v);
    }
    return 0;
}

static double bench_pingpong(void)
{
    struct pp p = { weft_chan_new(1, 0), weft_chan_new(1, 0), N(5000000) };
    weft_group *g = weft_group_new();
    weft_spawn(g, ponger, &p, "ponger");
    weft_yield();
    char v = 1;
    weft_time t0 = weft_now();
    for (int i = 0; i < p.n; i++) {
        weft_chan_send(p.a, &v);
        weft_chan_recv(p.b, &v);
    }
    double ns = (double)(weft_now() - t0) / (2.0 * p.n);
    weft_group_wait(g);
    weft_chan_free(p.a);
    weft_chan_free(p.b);
    return ns;
}

static int sleeper(void *arg)
{
    (void)arg;
    weft_sleep(3600 * WEFT_SEC);
    return 0;
}

static double bench_idle_bytes(int n)
{
    long before = vm_kb("VmRSS:") + vm_kb("VmPTE:");
    weft_group *g = weft_group_new();
    for (int i = 0; i < n; i++)
        weft_spawn(g, sleeper, NULL, "idle");
    weft_sleep(WEFT_MS);
    long after = vm_kb("VmRSS:") + vm_kb("VmPTE:");
    weft_group_cancel(g);
    weft_group_wait(g);
    return (after - before) * 1024.0 / n;
}

static void fire_nothing(weft__timer *t) { (void)t; }

static double bench_timer(void)
{
    /* arm + cancel with 100,000 other timers live, as under real load */
    weft__heap h = { 0 };
    int live = 100000, n = N(10000000);
    weft__timer *bg = calloc(live, sizeof *bg), t = { .idx = WEFT__TIMER_IDLE, .fire = fire_nothing };
    uint64_t x = 88172645463325252ULL;
    weft_time now = weft_now();
    for (int i = 0; i < live; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        bg[i] = (weft__timer){ .idx = WEFT__TIMER_IDLE, .fire = fire_nothing };
        weft__timer_arm(&h, &bg[i], now + (weft_time)(x % (60 * WEFT_SEC)));
    }
    weft_time t0 = weft_now();
    for (int i = 0; i < n; i++) {
        /* a deadline 30 s out, like an operation default */
        weft__timer_arm(&h, &t, t0 + 30 * WEFT_SEC + i);
        weft__timer_cancel(&h, &t);
    }
    double ns = (double)(weft_now() - t0) / n;
    weft__heap_free(&h);
    free(bg);
    return ns;
}

static double bench_sem(void)
{
    weft_sem s;
    weft_sem_init(&s, 1);
    int n = N(20000000);
    weft_time t0 = weft_now();
    for (int i = 0; i < n; i++) {
        weft_sem_acquire(&s);
        weft_sem_release(&s);
    }
    return (double)(weft_now() - t0) / n;
}

static double bench_run_blocking(void)
{
    int n = N(200000);
    weft_run_blocking(nothing, NULL);         /* start a thread */
    weft_time t0 = weft_now();
    for (int i = 0; i < n; i++)
        weft_run_blocking(nothing, NULL);
    return (double)(weft_now() - t0) / n;
}

static const char *only;
static bool want(const char *name) { return !only || strcmp(only, name) == 0; }

static int root(void *arg)
{
    (void)arg;
    if (want("switch_ns"))
        printf("switch_ns %.2f\n", bench_switch());
    if (want("spawn_join_ns"))
        printf("spawn_join_ns %.1f\n", bench_spawn_join());
    if (want("spawn_join_warm_ns")) {
        if (only)
            bench_spawn_join();                 /* warm up */
        printf("spawn_join_warm_ns %.1f\n", bench_spawn_join());   /* records reused */
    }
    if (want("pingpong_ns"))
        printf("pingpong_ns %.2f\n", bench_pingpong());
    if (want("idle_task_bytes_100k"))
        printf("idle_task_bytes_100k %.0f\n", bench_idle_bytes(N(100000)));
    if (want("idle_task_bytes_1m"))
        printf("idle_task_bytes_1m %.0f\n", bench_idle_bytes(N(1000000)));
    if (want("timer_arm_cancel_ns"))
        printf("timer_arm_cancel_ns %.1f\n", bench_timer());
    if (want("sem_acquire_release_ns"))
        printf("sem_acquire_release_ns %.2f\n", bench_sem());
    if (want("run_blocking_ns"))
        printf("run_blocking_ns %.0f\n", bench_run_blocking());
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1)
        scale = atof(argv[1]);
    if (argc > 2)
        only = argv[2];
    setenv("WEFT_STALL_MS", "0", 0);
    return weft_main(root, NULL) ? 1 : 0;
}
