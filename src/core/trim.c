/*
 * Memory back to the OS after a burst.
 *
 * glibc keeps what a burst of large buffers freed: its mmap threshold
 * rises to the largest block freed (so the next 1 MiB bodies come from the
 * heap, not mmap), and each thread's arena holds its own free pages. 300
 * connections that once sent 1 MiB leave a server at 20 times its idle
 * size. The layers that free large buffers (request bodies, decoded
 * responses) say so here; once TRIM_AFTER bytes went back and the frees
 * have stopped for QUIET, one thread of our own calls malloc_trim, which
 * returns the free pages of every arena. Never on a loop: a trim walks
 * the heaps. Only large frees (64 KiB and up) keep the burst going, so a
 * health checker's connection every 50 ms does not put the trim off; a
 * steady stream of large buffers puts it off at most 2 s.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "internal.h"

#define TRIM_AFTER (4u << 20)
#define QUIET (100 * WEFT_MS)
#define MAX_WAIT (2 * WEFT_SEC)
#define LARGE (64u << 10)                 /* a free that says a burst goes on */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;   /* to wake the trimmer */
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static _Atomic size_t freed;              /* since the last trim */
static _Atomic unsigned long frees;       /* changes while a burst goes on */
static bool started, failed;              /* under mu */

static void *trimmer(void *unused)
{
    (void)unused;
    struct timespec quiet = { 0, QUIET }, after = { 1, 0 };
    for (;;) {
        pthread_mutex_lock(&mu);
        while (atomic_load(&freed) < TRIM_AFTER)
            pthread_cond_wait(&wake, &mu);
        pthread_mutex_unlock(&mu);
        /* until the burst is over (no large frees for QUIET), but at most
         * MAX_WAIT: under steady churn the trim still comes */
        unsigned long seen;
        int waits = 0;
        do {
            seen = atomic_load(&frees);
            nanosleep(&quiet, NULL);
        } while (atomic_load(&frees) != seen && ++waits < MAX_WAIT / QUIET);
        atomic_store(&freed, 0);
#ifdef __GLIBC__
        /* and once more a moment later, for what the burst's work frees
         * after its buffers: its tasks ending, its connections closing */
        malloc_trim(0);
        nanosleep(&after, NULL);
        malloc_trim(0);
#endif
    }
    return NULL;
}

/* lock-free but when a burst begins: every connection's close says it */
void weft__mem_released(size_t n)
{
    if (n >= LARGE)                       /* connections closing one by one are no burst */
        atomic_fetch_add_explicit(&frees, 1, memory_order_relaxed);
    size_t was = atomic_fetch_add_explicit(&freed, n, memory_order_relaxed);
    if (was >= TRIM_AFTER || was + n < TRIM_AFTER)
        return;
    pthread_mutex_lock(&mu);
    if (!started && !failed && weft__thread_spawn(trimmer, NULL) != 0)
        failed = true;                    /* no thread: the memory stays with malloc */
    started = true;
    pthread_cond_signal(&wake);
    pthread_mutex_unlock(&mu);
}
