/*
 * The blocking thread pool: where work that would stall the loop goes
 * (file I/O, CPU-heavy work, libraries without a non-blocking API).
 *
 * One process-wide FIFO of jobs under a mutex, served by up to `max`
 * detached threads started on demand. A waiting task's job lives on its
 * stack with a wait queue of its own (kernel.h) guarded by the pool's
 * mutex: the worker that finishes it hands the task the completion, on
 * whatever loop it waits. A job whose task is cancelled while still
 * queued is unlinked and dropped; one already running is waited for
 * without interruption (its arg must stay valid).
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>

#include "internal.h"

enum { QUEUED, RUNNING, DONE };

struct job {
    struct job *next, *prev;
    weft_fn fn;
    void *arg;
    void (*dtor)(void *);
    int rc, state;
    bool detached;
    weft__wq done;                        /* its task, waiting for the result */
    struct weft__waiter w;
};

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct job *head, *tail;
    int threads, idle, max, queued;
} pool = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, NULL, 0, 0, 0, 0 };

int weft__thread_spawn(void *(*fn)(void *), void *arg)
{
    sigset_t all, old;
    pthread_t th;
    pthread_attr_t attr;
    sigfillset(&all);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&th, &attr, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    return -rc;
}

int weft_blocking_set_threads(int n)
{
    if (n < 1)
        return -EINVAL;
    pthread_mutex_lock(&pool.mu);
    pool.max = n;
    pthread_mutex_unlock(&pool.mu);
    return 0;
}

static void unlink_job(struct job *j)
{
    pool.queued--;
    if (j->prev)
        j->prev->next = j->next;
    else
        pool.head = j->next;
    if (j->next)
        j->next->prev = j->prev;
    else
        pool.tail = j->prev;
}

static void *worker(void *unused)
{
    (void)unused;
    pthread_mutex_lock(&pool.mu);
    for (;;) {
        while (!pool.head) {
            pool.idle++;
            pthread_cond_wait(&pool.cv, &pool.mu);
            pool.idle--;
        }
        struct job *j = pool.head;
        unlink_job(j);
        j->state = RUNNING;
        pthread_mutex_unlock(&pool.mu);
        int rc = j->fn(j->arg);
        if (j->detached) {
            if (j->dtor)
                j->dtor(j->arg);
            if (rc)
                weft_log(WEFT_LOG_WARN, "detached blocking job failed: %s", weft_strerror(rc));
            weft__free(j);
            pthread_mutex_lock(&pool.mu);
            continue;
        }
        pthread_mutex_lock(&pool.mu);
        j->rc = rc;
        j->state = DONE;
        weft__wq_wake_one(&j->done, 0);   /* j may vanish once we unlock */
    }
    return NULL;
}

/* called locked; -EAGAIN when no thread could be had at all */
static int submit(struct job *j)
{
    if (!pool.max) {
        const char *e = getenv("WEFT_BLOCKING_THREADS");
        pool.max = e && atoi(e) > 0 ? atoi(e) : 16;
    }
    /* a new thread only when the idle ones are all spoken for */
    if (pool.idle <= pool.queued && pool.threads < pool.max) {
        if (weft__thread_spawn(worker, NULL) == 0)
            pool.threads++;
        else if (pool.threads == 0)
            return -EAGAIN;
    }
    j->state = QUEUED;
    pool.queued++;
    j->next = NULL;
    j->prev = pool.tail;
    if (pool.tail)
        pool.tail->next = j;
    else
        pool.head = j;
    pool.tail = j;
    pthread_cond_signal(&pool.cv);
    return 0;
}

int weft_run_blocking(weft_fn fn, void *arg)
{
    if (!weft__self())
        return -EPERM;
    if (!fn)
        return -EINVAL;
    int rc = weft__check(WEFT_FOREVER, 0);
    if (rc)
        return rc;
    struct job j = { .fn = fn, .arg = arg };
    pthread_mutex_lock(&pool.mu);
    if ((rc = submit(&j))) {
        pthread_mutex_unlock(&pool.mu);
        return rc;
    }
    rc = weft__wq_wait(&j.done, &j.w, &pool.mu, WEFT_FOREVER, 0, "run_blocking");
    pthread_mutex_lock(&pool.mu);
    if (j.state == QUEUED)                /* interrupted before a thread took it */
        unlink_job(&j);
    while (j.state == RUNNING) {          /* interrupted while running: arg must outlive fn */
        weft__wq_wait_uncancellable(&j.done, &j.w, &pool.mu, "run_blocking (cancelled, finishing)");
        pthread_mutex_lock(&pool.mu);
    }
    pthread_mutex_unlock(&pool.mu);
    return rc == 0 && j.state == DONE ? j.rc : rc;
}

int weft_run_blocking_detached(weft_fn fn, void *arg, void (*dtor)(void *))
{
    if (!fn) {
        if (dtor)
            dtor(arg);
        return -EINVAL;
    }
    struct job *j = weft__calloc(1, sizeof *j);
    if (!j) {
        if (dtor)
            dtor(arg);
        return -ENOMEM;
    }
    j->fn = fn;
    j->arg = arg;
    j->dtor = dtor;
    j->detached = true;
    pthread_mutex_lock(&pool.mu);
    int rc = submit(j);
    pthread_mutex_unlock(&pool.mu);
    if (rc) {
        if (dtor)
            dtor(arg);
        weft__free(j);
    }
    return rc;
}
