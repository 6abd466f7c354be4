/*
 * weft_run: one loop per thread, each running the same root function (the
 * shape of a SO_REUSEPORT server: thread-per-core, shared-nothing). The
 * first loop to fail records its error and asks the others to cancel their
 * root tasks; all are joined before returning.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
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

/* every root cancelled, without it counting as a loop's failure */
static void cancel_all(struct run *r)
{
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < r->count; i++)
        if (r->loops[i])
            weft__loop_request_cancel(r->loops[i]);
    pthread_mutex_unlock(&r->mu);
}

/* ---- the signal thread of weft_run_with ------------------------------------ */

struct watch {
    struct run *run;
    int sigfd, stopfd, quitfd;
    weft_time grace;
    pthread_t th;
};

static weft_time mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (weft_time)ts.tv_sec * WEFT_SEC + ts.tv_nsec;
}

/* A signal or weft_stop() starts the stop; the grace's end, or a second
 * signal, cancels the roots. */
static void *watch_main(void *arg)
{
    struct watch *w = arg;
    weft_time end = WEFT_FOREVER;
    bool cancelled = false;
    for (;;) {
        struct pollfd p[3] = { { w->quitfd, POLLIN, 0 }, { w->sigfd, POLLIN, 0 },
                               { w->stopfd, POLLIN, 0 } };
        int timeout = -1;
        if (end != WEFT_FOREVER && !cancelled) {
            weft_time left = end - mono_now();
            timeout = left <= 0 ? 0 : (int)((left + WEFT_MS - 1) / WEFT_MS);
        }
        int n = poll(p, 3, timeout);
        if (n < 0 && errno != EINTR)
            break;
        if (p[0].revents)
            break;
        if (p[1].revents) {
            struct signalfd_siginfo si;
            if (read(w->sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
                const char *name = si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT";
                if (end == WEFT_FOREVER) {
                    weft_log(WEFT_LOG_INFO, "%s: stopping gracefully (%lld ms grace; again to"
                             " stop at once)", name, (long long)(w->grace / WEFT_MS));
                    weft_stop();
                } else if (!cancelled) {
                    weft_log(WEFT_LOG_WARN, "%s again: cancelling every task now", name);
                    cancel_all(w->run);
                    cancelled = true;
                } else {
                    /* cancelling did not end it (work that no cancel reaches):
                     * the operator asked three times */
                    weft_log(WEFT_LOG_ERROR, "%s a third time: exiting now", name);
                    _exit(128 + (int)si.ssi_signo);
                }
            }
        }
        if (p[2].revents) {
            uint64_t v;
            if (read(w->stopfd, &v, sizeof v) == (ssize_t)sizeof v && end == WEFT_FOREVER)
                end = weft__deadline_add(mono_now(), w->grace);
        }
        if (!cancelled && end != WEFT_FOREVER && mono_now() >= end) {
            weft_log(WEFT_LOG_WARN, "graceful stop: the %lld ms grace is over, cancelling"
                     " every task", (long long)(w->grace / WEFT_MS));
            cancel_all(w->run);
            cancelled = true;
        }
    }
    return NULL;
}

static int run_loops(int threads, weft_fn fn, void *arg, const weft_run_opts *o);

int weft_run(int threads, weft_fn fn, void *arg)
{
    return run_loops(threads, fn, arg, NULL);
}

int weft_run_with(const weft_run_opts *o, weft_fn fn, void *arg)
{
    if (!o || o->grace < 0)
        return -EINVAL;
    return run_loops(o->threads, fn, arg, o);
}

static int watch_start(struct watch *w, struct run *r, const weft_run_opts *o, sigset_t *old)
{
    *w = (struct watch){ .run = r, .sigfd = -1, .stopfd = -1, .quitfd = -1,
                         .grace = o->grace ? o->grace : 10 * WEFT_SEC };
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    /* blocked before any loop starts: every thread inherits the mask, and a
     * signal from now on waits for the signalfd instead of killing us */
    pthread_sigmask(SIG_BLOCK, &set, old);
    w->sigfd = signalfd(-1, &set, SFD_CLOEXEC);
    w->stopfd = eventfd(0, EFD_CLOEXEC);
    w->quitfd = eventfd(0, EFD_CLOEXEC);
    if (w->sigfd < 0 || w->stopfd < 0 || w->quitfd < 0 ||
        pthread_create(&w->th, NULL, watch_main, w)) {
        int err = errno ? -errno : -EAGAIN;
        close(w->sigfd);
        close(w->stopfd);
        close(w->quitfd);
        pthread_sigmask(SIG_SETMASK, old, NULL);
        return err;
    }
    weft__stop_reset(w->stopfd);
    return 0;
}

static void watch_end(struct watch *w, const sigset_t *old)
{
    uint64_t one = 1;
    if (write(w->quitfd, &one, sizeof one) < 0) {
        /* an eventfd write of 1 does not fail */
    }
    pthread_join(w->th, NULL);
    weft__stop_reset(-1);
    close(w->sigfd);
    close(w->stopfd);
    close(w->quitfd);
    /* signals that came meanwhile were for this run: not for the caller */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    struct timespec zero = { 0, 0 };
    while (sigtimedwait(&set, NULL, &zero) > 0)
        ;
    pthread_sigmask(SIG_SETMASK, old, NULL);
}

static int run_loops(int threads, weft_fn fn, void *arg, const weft_run_opts *o)
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
    struct watch w;
    sigset_t old;
    bool watching = o && o->stop_on_signals;
    if (!watching)
        weft__stop_reset(-1);             /* a stop belongs to the run it was made in */
    if (watching) {
        int err = watch_start(&w, &r, o, &old);
        if (err) {
            pthread_mutex_destroy(&r.mu);
            weft__free(slots);
            weft__free(r.loops);
            return err;
        }
    }
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
    if (watching)
        watch_end(&w, &old);
    pthread_mutex_destroy(&r.mu);
    weft__free(slots);
    weft__free(r.loops);
    return r.failed ? r.err : 0;
}
