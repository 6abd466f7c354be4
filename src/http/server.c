/*
 * The HTTP/1.1 server (weft/http.h, server part): the server object and
 * its routes and middleware, and the accept loop with its bounds
 * (max_connections, backpressure) and graceful drain. A connection's own
 * loop is connection.c; requests are request.c, responses response.c.
 *
 * Each weft_http_serve is three tasks of its loop and the connections'
 * tasks: the caller's waits on an event that the accept task sets when it
 * ends by itself and the stop task sets when weft_http_server_shutdown
 * closes the server's shared channel (from any thread, any loop: the
 * channel wakes them all). Nothing polls: an idle server sleeps in epoll,
 * and the drain is a wait on the connections' group within the grace.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "server_internal.h"

#define MAX_HDRS 256                     /* bound on max_headers */

/* ---- server and routes ----------------------------------------------------- */

weft_http_server *weft_http_server_new(const weft_http_server_opts *o)
{
    weft_http_server *s = weft__calloc(1, sizeof *s);
    if (!s)
        return NULL;
    if (!(s->router = weft_router_new())) {
        weft__free(s);
        return NULL;
    }
    if (o)
        s->o = *o;
    if (!s->o.max_header_bytes)
        s->o.max_header_bytes = 8 << 10;
    if (s->o.max_header_bytes > 1u << 30)
        s->o.max_header_bytes = 1u << 30;     /* header offsets are 32-bit */
    if (!s->o.max_headers)
        s->o.max_headers = 100;
    if (s->o.max_headers > MAX_HDRS)
        s->o.max_headers = MAX_HDRS;
    if (!s->o.max_body)
        s->o.max_body = 1 << 20;
    if (!s->o.max_body_memory)
        s->o.max_body_memory = (size_t)512 << 20;
    if (!s->o.header_timeout)
        s->o.header_timeout = 10 * WEFT_SEC;
    if (!s->o.body_timeout)
        s->o.body_timeout = 10 * WEFT_SEC;
    if (!s->o.keepalive_timeout)
        s->o.keepalive_timeout = 5 * WEFT_SEC;
    if (!s->o.handler_timeout)
        s->o.handler_timeout = 30 * WEFT_SEC;
    if (!s->o.max_connections)
        s->o.max_connections = 10000;
    if (!s->o.max_in_flight)
        s->o.max_in_flight = 1000;
    if (!s->o.shutdown_grace)
        s->o.shutdown_grace = 10 * WEFT_SEC;
    if (!s->o.health_path)
        s->o.health_path = "/healthz";
    /* a second less than the real idle close, so a client that trusts it
     * never sends into a connection we are closing; under 2 s, nothing */
    weft_time ka = s->o.keepalive_timeout / WEFT_SEC - 1;
    if (ka >= 1)
        snprintf(s->keepalive_hdr, sizeof s->keepalive_hdr, "Keep-Alive: timeout=%lld\r\n",
                 (long long)ka);
    s->in_flight = weft_gauge("weft_http_in_flight", "HTTP requests being handled");
    s->body_bytes = weft_gauge("weft_http_body_bytes",
                               "Request body buffers held (max_body_memory counts them)");
    if (!(s->stop = weft_chan_new_shared(1, 0))) {
        weft_router_free(s->router);
        weft__free(s);
        return NULL;
    }
    return s;
}

int weft_http_server_use(weft_http_server *s, weft_http_before before, weft_http_after after,
                         void *ctx)
{
    if (!s || (!before && !after))
        return -EINVAL;
    struct middleware *m = weft__realloc(s->mw, (size_t)(s->nmw + 1) * sizeof *m);
    if (!m)
        return -ENOMEM;
    s->mw = m;
    s->mw[s->nmw++] = (struct middleware){ before, after, ctx };
    return 0;
}

void weft_http_server_free(weft_http_server *s)
{
    if (!s)
        return;
    weft__free(s->mw);
    weft_chan_free(s->stop);
    weft_router_free(s->router);
    weft__free(s);
}

int weft_http_server_route(weft_http_server *s, const char *method, const char *pattern,
                           weft_http_handler h, void *ctx)
{
    if (!s || !h)
        return -EINVAL;
    return weft_router_add(s->router, method, pattern, (void *)h, ctx);
}

/* ---- accepting and draining ------------------------------------------------------ */

static int conn_task(void *arg)
{
    struct conn_slot *slot = arg;
    struct serving *sv = slot->sv;
    slot->task = weft_self();
    if (sv->draining)                     /* accepted before the drain, started after */
        weft_task_cancel(slot->task);
    int rc = weft__serve(sv->s, slot->c, slot);
    if (slot->prev)
        slot->prev->next = slot->next;
    else
        sv->slots = slot->next;
    if (slot->next)
        slot->next->prev = slot->prev;
    weft__free(slot);
    weft_sem_release(&sv->conns);
    (void)rc;                             /* one connection's end is not the server's */
    return 0;
}

/* c's task, registered as a live connection; closes c if it cannot */
static void spawn_conn(struct serving *sv, weft_conn *c)
{
    struct conn_slot *slot = weft__calloc(1, sizeof *slot);
    if (!slot || weft_spawn(sv->conn_tasks, conn_task, slot, "http-conn") != 0) {
        weft__free(slot);
        weft_conn_close(c);
        weft_sem_release(&sv->conns);
        return;
    }
    slot->sv = sv;
    slot->c = c;
    slot->next = sv->slots;
    if (sv->slots)
        sv->slots->prev = slot;
    sv->slots = slot;
}

static int accept_task(void *arg)
{
    struct serving *sv = arg;
    int rc;
    for (;;) {
        rc = weft_sem_acquire(&sv->conns);          /* backpressure */
        weft_conn *c = NULL;
        if (rc == 0 && (rc = weft_accept(sv->l, &c, NULL)) != 0)
            weft_sem_release(&sv->conns);
        if (rc == -EMFILE || rc == -ENFILE || rc == -ENOBUFS || rc == -ENOMEM) {
            weft_log(WEFT_LOG_WARN, "http: accept: %s; pausing 100 ms", weft_strerror(rc));
            if ((rc = weft_sleep(100 * WEFT_MS)) != 0)
                break;
            continue;
        }
        if (rc)
            break;                        /* cancelled, or the listener is gone */
        spawn_conn(sv, c);
    }
    if (rc != -ECANCELED) {               /* ended by itself, not by weft_http_serve */
        sv->accept_rc = rc;
        weft_event_set(&sv->stop);
    }
    return 0;
}

/* weft_http_server_shutdown closes the shared channel: -EPIPE here, on
 * every loop, at once */
static int stop_task(void *arg)
{
    struct serving *sv = arg;
    char none;
    if (weft_chan_recv(sv->s->stop, &none) == -EPIPE)
        weft_event_set(&sv->stop);
    return 0;
}

/* close the connections that wait for a next request, not yet begun */
static void close_idle(struct serving *sv)
{
    for (struct conn_slot *c = sv->slots; c; c = c->next)
        if (c->idle && c->task && !(c->q && c->q->any))
            weft_task_cancel(c->task);
}

/* No new connections, idle ones closed, busy ones finish their request
 * (and then close: keep-alive ends while draining), the rest cancelled
 * after the grace. */
static void drain(struct serving *sv)
{
    sv->draining = true;
    weft_listener_close(sv->l);
    close_idle(sv);
    weft_scope grace;
    weft_scope_enter_shielded(&grace, sv->s->o.shutdown_grace);
    weft_group_wait(sv->conn_tasks);      /* past the grace: cancels the rest, joins */
    weft_scope_exit(&grace);
}

int weft_http_serve(weft_http_server *s, weft_listener *l)
{
    if (!s || !l)
        return -EINVAL;
    if (!weft_self())
        return -EPERM;
    struct serving sv = { .s = s, .l = l };
    weft_sem_init(&sv.conns, s->o.max_connections);
    weft_event_init(&sv.stop);
    weft_group *ctl = weft_group_new();
    if (!ctl || !(sv.conn_tasks = weft_group_new())) {
        if (ctl)
            weft_group_wait(ctl);
        weft_listener_close(l);           /* it is ours whatever happens (http.h) */
        return -ENOMEM;
    }
    int rc = weft_spawn(ctl, stop_task, &sv, "http-stop");
    if (!rc)
        rc = weft_spawn(ctl, accept_task, &sv, "http-accept");
    if (!rc)
        rc = weft_event_wait(&sv.stop);   /* or our own cancellation */
    if (!rc)
        rc = sv.accept_rc;
    weft_group_cancel(ctl);
    weft_group_wait(ctl);
    if (atomic_load(&s->stopping))
        rc = 0;                           /* asked to stop: not an error */
    drain(&sv);
    return rc == -ECANCELED || rc == -EBADF ? 0 : rc;
}

void weft_http_server_shutdown(weft_http_server *s)
{
    if (s && !atomic_exchange(&s->stopping, true))
        weft_chan_close(s->stop);         /* thread-safe: wakes every loop's stop task */
}
