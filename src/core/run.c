/*
 * weft_run: one loop per thread, each running the same root function (the
 * shape of a SO_REUSEPORT server: thread-per-core, shared-nothing). The
 * first loop to fail records its error and asks the others to cancel their
 * root tasks; all are joined before returning.
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "internal.h"

struct run {
    weft_fn fn;
    void *arg;
    int count;
    pthread_mutex_t mu;
    int err;
    bool failed;
    weft__loop **loops;                   /* published by each loop, under mu */
};

struct slot {
    struct run *run;
    int index;
    pthread_t th;
    int rc;
};

static void fail(struct run *r, int rc)
{
    pthread_mutex_lock(&r->mu);
    if (!r->failed) {
        r->failed = true;
        r->err = rc;
        for (int i = 0; i < r->count; i++) {
            if (r->loops[i])
                weft__loop_request_cancel(r->loops[i]);
        }
    }
    pthread_mutex_unlock(&r->mu);
}

/* root wrapper: a loop that starts after the failure cancels itself */
static int root(void *p)
{
    struct slot *s = p;
    struct run *r = s->run;
    pthread_mutex_lock(&r->mu);
    bool failed = r->failed;
    pthread_mutex_unlock(&r->mu);
    if (failed)
        weft_task_cancel(weft_self());
    return r->fn(r->arg);
}

static void *thread_main(void *p)
{
    struct slot *s = p;
    struct run *r = s->run;
    s->rc = weft__loop_main(s->index, r->count, &r->loops[s->index], &r->mu, root, s,
                            (void *)r->fn);
    if (s->rc)
        fail(r, s->rc);
    return NULL;
}

int weft_run(int threads, weft_fn fn, void *arg)
{
    if (threads < 0 || !fn)
        return -EINVAL;
    if (threads == 0)
        threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (threads < 1)
        threads = 1;
    struct run r = { .fn = fn, .arg = arg, .count = threads };
    struct slot *slots = weft__calloc(threads, sizeof *slots);
    r.loops = weft__calloc(threads, sizeof *r.loops);
    if (!slots || !r.loops) {
        weft__free(slots);
        weft__free(r.loops);
        return -ENOMEM;
    }
    pthread_mutex_init(&r.mu, NULL);
    int started = 0, rc = 0;
    for (; started < threads; started++) {
        slots[started] = (struct slot){ .run = &r, .index = started };
        if ((rc = -pthread_create(&slots[started].th, NULL, thread_main, &slots[started]))) {
            fail(&r, rc);
            break;
        }
    }
    for (int i = 0; i < started; i++)
        pthread_join(slots[i].th, NULL);
    pthread_mutex_destroy(&r.mu);
    weft__free(slots);
    weft__free(r.loops);
    return r.failed ? r.err : 0;
}
