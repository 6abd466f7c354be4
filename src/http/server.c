/*
 * The HTTP/1.1 server (weft/http.h, server part): the server object and
 * its routes and middleware, and the accept loop with its bounds
 * (max_connections, backpressure) and graceful drain. A connection's own
 * loop is connection.c; requests are request.c, responses response.c.
 */
#include <errno.h>
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
    s->in_flight = weft_gauge("weft_http_in_flight", "HTTP requests being handled");
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

/* close the connections that wait for a next request */
static void close_idle(struct serving *sv)
{
    for (struct conn_slot *c = sv->slots; c; c = c->next)
        if (c->idle && c->task)
            weft_task_cancel(c->task);
}

int weft_http_serve(weft_http_server *s, weft_listener *l)
{
    if (!s || !l)
        return -EINVAL;
    if (!weft__self())
        return -EPERM;
    struct serving sv = { .s = s };
    weft_sem_init(&sv.conns, s->o.max_connections);
    weft_group *g = weft_group_new();
    if (!g)
        return -ENOMEM;
    int rc = 0;
    while (!atomic_load(&s->stopping)) {
        /* 100 ms slices: a shutdown asked from any thread is seen quickly */
        weft_scope sc;
        weft_scope_enter(&sc, 100 * WEFT_MS);
        rc = weft_sem_acquire(&sv.conns);           /* backpressure */
        weft_conn *c = NULL;
        if (rc == 0 && (rc = weft_accept(l, &c, NULL)) != 0)
            weft_sem_release(&sv.conns);
        bool slice = weft_scope_exit(&sc);
        if (rc == -ETIMEDOUT && slice)
            continue;
        if (rc == -EMFILE || rc == -ENFILE || rc == -ENOBUFS || rc == -ENOMEM) {
            weft_log(WEFT_LOG_WARN, "http: accept: %s; pausing 100 ms", weft_strerror(rc));
            if (weft_sleep(100 * WEFT_MS) == -ECANCELED)
                break;
            continue;
        }
        if (rc)
            break;                        /* cancelled, or the listener is gone */
        struct conn_slot *slot = weft__calloc(1, sizeof *slot);
        if (!slot || weft_spawn(g, conn_task, slot, "http-conn") != 0) {
            weft__free(slot);
            weft_conn_close(c);
            weft_sem_release(&sv.conns);
            continue;
        }
        slot->sv = &sv;
        slot->c = c;
        slot->next = sv.slots;
        if (sv.slots)
            sv.slots->prev = slot;
        sv.slots = slot;
    }
    if (atomic_load(&s->stopping))
        rc = 0;                           /* asked to stop: not an error */
    /* drain: no new connections, idle ones closed, busy ones finish their
     * request (and then close), the rest cancelled after the grace */
    sv.draining = true;
    weft_listener_close(l);
    close_idle(&sv);
    weft_scope grace;
    weft_scope_enter_shielded(&grace, s->o.shutdown_grace);
    while (weft_group_size(g) > 0 && weft_sleep(10 * WEFT_MS) == 0)
        close_idle(&sv);                  /* busy ones turn idle, then close */
    weft_scope_exit(&grace);
    weft_group_cancel(g);
    weft_group_wait(g);
    return rc == -ECANCELED || rc == -EBADF || rc == 0 ? 0 : rc;
}

void weft_http_server_shutdown(weft_http_server *s)
{
    if (s)
        atomic_store(&s->stopping, true);
}
