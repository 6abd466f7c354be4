/*
 * One connection of the HTTP server: read a request, route it through
 * the middleware to its handler within the handler deadline, answer, and
 * again while the connection is kept alive. A request that breaks a limit
 * gets its status, "Connection: close", and a lingering close.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "server_internal.h"

/* ---- the connection ------------------------------------------------------------ */

/* Shut down writing, drain what the client still sends for a moment, so
 * the error response is not lost to a reset. */
static void lingering_close(weft_conn *c)
{
    if (weft_conn_shutdown(c) == 0) {
        weft_scope sc;
        weft_scope_enter(&sc, 500 * WEFT_MS);
        char junk[4096];
        size_t drained = 0;
        int n;
        while (drained < (256 << 10) && (n = weft_conn_read_some(c, junk, sizeof junk)) > 0)
            drained += (size_t)n;
        weft_scope_exit(&sc);
    }
}

static void error_response(weft_conn *c, struct weft_http_res *r, int status, const char *why)
{
    weft__res_reset(r);
    r->status = status;
    weft_http_res_header(r, "Content-Type", "text/plain");
    if (status == 503)                    /* a passing condition: say when to come back */
        weft_http_res_header(r, "Retry-After", "1");
    char msg[160];
    int n = snprintf(msg, sizeof msg, "%d %s: %s\n", status, weft__http_reason(status), why ? why : "");
    weft_http_res_body(r, msg, (size_t)n);
    weft__send_response(c, r, false, true);
}

static int dispatch(weft_http_server *s, struct weft_http_req *q, struct weft_http_res *r)
{
    char allow[128];
    int rc = weft_router_match(s->router, q->method, q->path, strlen(q->path), &q->m, allow,
                               sizeof allow);
    if (rc == -ENOENT || rc == -EINVAL) {
        r->status = 404;
        weft_http_res_body(r, "not found\n", 10);
        goto after;
    }
    if (rc == -EPERM) {
        r->status = 405;
        weft_http_res_header(r, "Allow", allow);
        weft_http_res_body(r, "method not allowed\n", 19);
        goto after;
    }
    weft_http_handler h = (weft_http_handler)q->m.handler;
    weft_scope sc;
    weft_scope_enter(&sc, s->o.handler_timeout);
    rc = 0;
    for (int i = 0; i < s->nmw && rc == 0; i++)
        if (s->mw[i].before)
            rc = s->mw[i].before(q, r, s->mw[i].ctx);
    if (rc == 0)
        rc = h(q, r, q->m.ctx);
    else if (rc > 0)
        rc = 0;                           /* a middleware answered */
    bool expired = weft_scope_exit(&sc);
    if (r->streaming) {
        if (expired || rc < 0)
            r->stream_err = rc ? rc : -ETIMEDOUT;   /* mid-body: only closing can say it */
    } else if (expired) {
        weft__res_reset(r);
        r->status = 503;
        weft_http_res_body(r, "handler timed out\n", 18);
        weft_log(WEFT_LOG_WARN, "http: %s %s: handler timed out", q->method, q->path);
    } else if (rc < 0) {
        weft__res_reset(r);
        r->status = 500;
        weft_http_res_body(r, "internal server error\n", 22);
        weft_log(WEFT_LOG_ERROR, "http: %s %s: handler failed: %s", q->method, q->path,
                 weft_strerror(rc));
    }
after:
    for (int i = 0; i < s->nmw; i++)
        if (s->mw[i].after)
            s->mw[i].after(q, r, s->mw[i].ctx);
    return 0;
}

int weft_http_serve_conn(weft_http_server *s, weft_conn *c)
{
    if (!s || !c)
        return -EINVAL;
    return weft__serve(s, c, NULL);
}

/* the health check is answered even while shedding load */
static bool is_health(const weft_http_server *s, const struct weft_http_req *q)
{
    const char *path = weft_http_req_path(q);
    return *s->o.health_path && path && strcmp(path, s->o.health_path) == 0;
}

/* Between requests, nothing buffered: answers queued for pipelined
 * requests go out, and when nothing comes for WEFT__HTTP_IDLE_SHED the
 * buffers the last requests grew go too. Returns how long it waited (of
 * keepalive_timeout); an error is left for the read to meet again. */
static weft_time idle_wait(weft_http_server *s, weft_conn *c, struct weft_http_req *q,
                           struct weft_http_res *r)
{
    const char *d;
    if (weft_conn_peek(c, &d) != 0 || s->o.keepalive_timeout <= WEFT__HTTP_IDLE_SHED ||
        weft_conn_flush(c) != 0)
        return 0;
    weft_time t0 = weft_now();
    if (weft_conn_wait_readable(c, WEFT__HTTP_IDLE_SHED) == 0) {
        weft__req_shed(q);
        weft__res_shed(r);
        weft_conn_shrink(c);
    }
    return weft_now() - t0;
}

int weft__serve(weft_http_server *s, weft_conn *c, struct conn_slot *slot)
{
    struct weft_http_req *q = weft__req_new(s);
    struct weft_http_res *r = weft__calloc(1, sizeof *r);
    int rc = q && r ? 0 : -ENOMEM;
    if (slot)
        slot->q = q;
    while (!rc) {
        weft__req_reset(q);
        weft__res_reset(r);
        if (slot)
            slot->idle = true;            /* a drain may close us here */
        q->idle_waited = idle_wait(s, c, q, r);
        rc = weft__read_request(q, c);
        if (slot)
            slot->idle = false;
        if (rc == 1 || (rc == -ECANCELED && !q->any)) {
            rc = 0;
            break;                        /* the client is done, or we drain */
        }
        if (rc < 0) {
            if (q->status)
                error_response(c, r, q->status, q->why);
            if (q->status && !weft_conn_broken(c))
                lingering_close(c);
            break;
        }
        weft__split_url(q);
        r->c = c;
        r->keepalive_hdr = s->keepalive_hdr;
        r->head = q->p.method == HTTP_HEAD;
        r->http10 = q->p.http_major == 1 && q->p.http_minor == 0;
        if (slot && slot->sv->in_flight >= s->o.max_in_flight && !is_health(s, q)) {
            r->status = 503;              /* shed load now, not after a queue */
            weft_http_res_header(r, "Retry-After", "1");
            weft_http_res_body(r, "overloaded\n", 11);
        } else {
            if (slot)
                slot->sv->in_flight++;
            weft_metric_add(s->in_flight, 1);
            dispatch(s, q, r);
            weft_metric_add(s->in_flight, -1);
            if (slot)
                slot->sv->in_flight--;
        }
        bool head = r->head;
        bool keep = llhttp_should_keep_alive(&q->p) &&
                    !(slot && (slot->sv->draining || atomic_load(&s->stopping)));
        if (r->streaming) {               /* end the chunked body */
            if (r->stream_err || r->http10 ||
                (!head && (rc = weft_conn_write_all(c, "0\r\n\r\n", 5))))
                break;
        } else if ((rc = weft__send_response(c, r, head, !keep))) {
            break;
        }
        if (!keep)
            break;
        rc = weft__interrupted(WEFT_FOREVER, 0);   /* cancelled: stop between requests */
    }
    if (slot)
        slot->q = NULL;
    weft__req_free(q);
    weft__res_free(r);
    weft_conn_flush(c);                   /* answers queued before a cancel */
    weft_conn_close(c);
    return rc;
}
