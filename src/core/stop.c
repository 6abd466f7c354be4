/*
 * The graceful stop: one process-wide flag that a signal (under
 * weft_run_with's stop_on_signals) or weft_stop() raises, and that tasks of
 * every loop wait for with weft_stop_wait. What a stop means is the
 * program's to say (close its listeners, finish what it has): weft only
 * tells it, and, under weft_run_with, cancels the roots once the grace is
 * over (run.c).
 */
#include <errno.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "internal.h"

static pthread_mutex_t stop_mu = PTHREAD_MUTEX_INITIALIZER;
static weft__wq stop_wq;
static _Atomic bool stopping;
static int notify_fd = -1;              /* run.c's signal thread hears of a stop here */

void weft__stop_reset(int fd)
{
    pthread_mutex_lock(&stop_mu);
    atomic_store(&stopping, false);
    notify_fd = fd;
    pthread_mutex_unlock(&stop_mu);
}

void weft_stop(void)
{
    pthread_mutex_lock(&stop_mu);
    if (!atomic_exchange(&stopping, true)) {
        weft__wq_wake_all(&stop_wq, 0);
        if (notify_fd >= 0) {
            uint64_t one = 1;
            if (write(notify_fd, &one, sizeof one) < 0) {
                /* the counter cannot overflow from one write: nothing to do */
            }
        }
    }
    pthread_mutex_unlock(&stop_mu);
}

bool weft_stopping(void)
{
    return atomic_load(&stopping);
}

int weft_stop_wait(void)
{
    if (!weft__self())
        return -EPERM;
    pthread_mutex_lock(&stop_mu);
    if (atomic_load(&stopping)) {
        pthread_mutex_unlock(&stop_mu);
        return 0;
    }
    struct weft__waiter w = { 0 };
    return weft__wq_wait(&stop_wq, &w, &stop_mu, WEFT_FOREVER, 0, "weft_stop_wait");
}
