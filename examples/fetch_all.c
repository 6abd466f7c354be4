/*
 * fetch_all, the shape of the seed's asyncio example, in weft: 1,000 jobs,
 * at most 50 in flight (a semaphore), every job under a deadline, all in
 * one group that cancels the rest on the first real failure.
 *
 * The "fetch" here is simulated (a sleep of 1-40 ms) until the HTTP client
 * lands; the structure is the one a real crawler uses.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "weft.h"

enum { JOBS = 1000, IN_FLIGHT = 50 };

struct job {
    int id;
    weft_sem *limit;
    int *done, *timed_out;
};

static int fetch(struct job *j)
{
    /* stands in for weft_http_get(j->url): a call that waits on the network */
    (void)j;
    return weft_sleep((1 + rand() % 40) * WEFT_MS);
}

static int worker(void *arg)
{
    struct job *j = arg;
    int rc = weft_sem_acquire(j->limit);          /* at most 50 at once */
    if (rc)
        return rc;
    weft_scope deadline;
    weft_scope_enter(&deadline, 30 * WEFT_MS);    /* no call waits forever */
    rc = fetch(j);
    bool expired = weft_scope_exit(&deadline);
    weft_sem_release(j->limit);
    if (expired) {
        (*j->timed_out)++;                        /* a timeout is data, not a crash */
        return 0;
    }
    if (rc == 0)
        (*j->done)++;
    return rc;
}

static int fetch_all(void *unused)
{
    (void)unused;
    static struct job jobs[JOBS];
    weft_sem limit;
    int done = 0, timed_out = 0;
    weft_sem_init(&limit, IN_FLIGHT);
    weft_time t0 = weft_now();
    weft_group *g = weft_group_new();
    if (!g)
        return -errno;
    for (int i = 0; i < JOBS; i++) {
        jobs[i] = (struct job){ i, &limit, &done, &timed_out };
        int rc = weft_spawn(g, worker, &jobs[i], "fetch");
        if (rc) {
            weft_group_cancel(g);
            weft_group_wait(g);
            return rc;
        }
    }
    int rc = weft_group_wait(g);                  /* first failure, or 0 */
    printf("fetch_all: %d done, %d timed out, in %.0f ms with %d in flight (%s)\n", done,
           timed_out, (double)(weft_now() - t0) / WEFT_MS, IN_FLIGHT, weft_strerror(rc));
    return rc;
}

int main(void)
{
    srand(42);
    int rc = weft_main(fetch_all, NULL);
    return rc ? 1 : 0;
}
