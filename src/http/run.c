/*
 * weft_http_server_run: listen, serve on every loop, stop on a signal
 * (weft/http.h). The signals are blocked in every thread (weft's threads
 * inherit the mask) and taken by a task of loop 0 through a signalfd.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <time.h>

#include "../core/kernel.h"
#include "weft/http.h"

struct run {
    weft_http_server *s;
    const char *host;
    int port;
    sigset_t sigs;
    const weft_http_run_hooks *hooks;   /* never NULL */
    _Atomic int err;                    /* the first loop's failure */
};

static int on_signal(void *arg)
{
    struct run *r = arg;
    int sig = weft_signal_wait(&r->sigs);
    if (sig > 0) {
        weft_log(WEFT_LOG_INFO, "http: %s, shutting down gracefully",
                 sig == SIGTERM ? "SIGTERM" : "SIGINT");
        weft_http_server_shutdown(r->s);
    }
    return 0;
}

/* A loop that cannot serve stops the others gracefully (they drain and
 * run their stop hooks, not cancelled as a failed root would have them)
 * and its error is the run's. */
static void fail(struct run *r, int rc)
{
    int none = 0;
    atomic_compare_exchange_strong(&r->err, &none, rc);
    weft_http_server_shutdown(r->s);
}

static int serve(struct run *r)
{
    weft_listener *l;
    int rc = weft_tcp_listen(&l, r->host, r->port, 4096, WEFT_REUSEPORT);
    if (rc) {
        weft_log(WEFT_LOG_ERROR, "http: cannot listen on %s:%d: %s", r->host, r->port,
                 weft_strerror(rc));
        fail(r, rc);
        return 0;
    }
    weft_group *g = weft_loop_index() == 0 ? weft_group_new() : NULL;
    if (g)
        weft_spawn(g, on_signal, r, "signals");
    rc = weft_http_serve(r->s, l);
    if (g) {
        weft_group_cancel(g);
        weft_group_wait(g);
    }
    return rc;
}

static int loop_main(void *arg)
{
    struct run *r = arg;
    const weft_http_run_hooks *h = r->hooks;
    int rc = h->on_loop_start ? h->on_loop_start(h->ctx) : 0;
    if (rc) {
        weft_log(WEFT_LOG_ERROR, "http: loop %d did not start: %s", weft_loop_index(),
                 weft_strerror(rc));
        fail(r, rc < 0 ? rc : -EINVAL);
        return 0;
    }
    rc = serve(r);
    if (h->on_loop_stop)
        h->on_loop_stop(h->ctx);
    return rc;
}

int weft_http_server_run_with(weft_http_server *s, const char *host, int port, int threads,
                              const weft_http_run_hooks *hooks)
{
    static const weft_http_run_hooks none;
    if (!s || !host || port < 1 || port > 65535 || threads < 0)
        return -EINVAL;
    if (weft_self())
        return -EPERM;
    /* the loops share the port through SO_REUSEPORT: never with a stranger
     * (another process's REUSEPORT listener would get half our connections) */
    int rc = weft_tcp_port_check(host, port);
    if (rc) {
        weft_log(WEFT_LOG_ERROR, "http: cannot listen on %s:%d: %s", host, port,
                 rc == -EADDRINUSE ? "the port is in use by another socket" : weft_strerror(rc));
        return rc;
    }
    struct run r = { .s = s, .host = host, .port = port, .hooks = hooks ? hooks : &none };
    sigemptyset(&r.sigs);
    sigaddset(&r.sigs, SIGTERM);
    sigaddset(&r.sigs, SIGINT);
    sigset_t old;
    pthread_sigmask(SIG_BLOCK, &r.sigs, &old);
    rc = weft_run(threads, loop_main, &r);
    struct timespec zero = { 0, 0 };
    while (sigtimedwait(&r.sigs, NULL, &zero) > 0)
        ;                                 /* a second Ctrl-C during the drain */
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    int err = atomic_load(&r.err);
    return err ? err : rc;
}

int weft_http_server_run(weft_http_server *s, const char *host, int port, int threads)
{
    return weft_http_server_run_with(s, host, port, threads, NULL);
}
