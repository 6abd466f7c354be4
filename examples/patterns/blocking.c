/*
 * Blocking work: a call that blocks or burns CPU goes to a thread pool, so
 * the loop keeps serving every other task.
 *
 * asyncio teaches: one blocking call (requests.get, time.sleep, a big
 * json.loads, a C library without an async API) freezes the event loop and
 * every task on it; use `await asyncio.to_thread(fn)` or
 * loop.run_in_executor(), and turn on debug mode, whose slow-callback
 * warning tells you which callback held the loop.
 *
 * The weft way: weft_run_blocking(fn, arg) runs fn on weft's bounded
 * blocking pool (16 threads, WEFT_BLOCKING_THREADS) and returns fn's value
 * unchanged; the calling task waits, the loop does not. If the caller is
 * cancelled while the job is still queued, the job is dropped; if it is
 * already running, the call waits for it (arg stays valid), then returns
 * -ECANCELED. weft_run_blocking_detached is the fire-and-forget form that
 * owns its arg.
 *
 * And the safety net is on by default: the stall detector names any task
 * that holds its loop longer than WEFT_STALL_MS (100 ms by default; 0
 * turns it off), while it still holds it, with its stack, and counts it in
 * weft_loop_stalls_total. This program does it the wrong way once on
 * purpose, so you can see the report on stderr.
 *
 * A ticker task ticks every 10 ms throughout: it keeps ticking while the
 * work runs on the pool, and stops dead while the work runs on the loop.
 */
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "example.h"

static int ticks;

static int ticker(void *unused)
{
    (void)unused;
    int rc;
    while ((rc = weft_sleep(10 * WEFT_MS)) == 0)
        ticks++;
    return rc;                        /* -ECANCELED at the end: the group's doing */
}

/* CPU-bound work that never suspends: hashing for ms milliseconds (stands
 * in for compression, a parser, a blocking C library call). */
struct crunch_job {
    long ms;
    uint64_t hash;
};

static int crunch(void *arg)
{
    struct crunch_job *j = arg;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint64_t h = 1469598103934665603ULL;
    do {
        for (int i = 0; i < 10000; i++)
            h = (h ^ (uint64_t)i) * 1099511628211ULL;
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < j->ms);
    j->hash = h;
    return 0;
}

/* The stall threshold in force, as the detector reads it (0: off). */
static double stall_ms(void)
{
    const char *e = getenv("WEFT_STALL_MS");
    return e && *e ? atof(e) : 100;
}

static int run(void *unused)
{
    (void)unused;
    weft_group *g = weft_group_new();
    if (!g)
        return -errno;
    int rc = weft_spawn(g, ticker, NULL, "ticker");
    if (rc) {
        weft_group_wait(g);
        return rc;
    }

    /* The right way: 300 ms of CPU on the blocking pool. */
    struct crunch_job job = { .ms = 300 };
    int before = ticks;
    rc = weft_run_blocking(crunch, &job);      /* fn's value: 0 here */
    int ticked_offloaded = ticks - before;
    printf("  300 ms of work on the blocking pool: the ticker ticked %d times meanwhile\n",
           ticked_offloaded);
    expect(rc == 0, "weft_run_blocking returned crunch's value (%s)", weft_strerror(rc));
    expect(ticked_offloaded >= 5, "the loop stayed responsive (%d ticks)", ticked_offloaded);

    /* The wrong way, on purpose: 250 ms of CPU on the loop itself. */
    weft_metric *stalls = weft_counter("weft_loop_stalls_total", NULL);  /* the detector's */
    int64_t stalls_before = stalls ? weft_metric_value(stalls) : 0;
    struct crunch_job bad = { .ms = 250 };
    before = ticks;
    printf("  250 ms of work on the loop (the stall detector reports it on stderr):\n");
    crunch(&bad);                              /* never suspends: the loop is stuck */
    int ticked_on_loop = ticks - before;
    weft_yield();                              /* the detector's "held ... in total" line */
    int64_t stalls_after = stalls ? weft_metric_value(stalls) : 0;
    printf("  the ticker ticked %d times meanwhile; weft_loop_stalls_total went %lld -> %lld\n",
           ticked_on_loop, (long long)stalls_before, (long long)stalls_after);
    expect(ticked_on_loop == 0, "nothing else ran while the loop was held (%d ticks)",
           ticked_on_loop);
    if (stall_ms() > 0 && stall_ms() < 200)
        expect(stalls_after > stalls_before, "the stall detector named the task");
    else
        printf("  (WEFT_STALL_MS=%g: the detector is off or slower than this stall)\n",
               stall_ms());

    weft_group_cancel(g);                      /* stop the ticker */
    return weft_group_wait(g);
}

int main(void)
{
    example_begin("blocking work: off the loop on the blocking pool, and the stall detector");
    return example_exit("blocking", weft_main(run, NULL));
}
