/*
 * Streamed responses (weft_http_open): the head is read and published,
 * then the body is handed to the caller as it arrives, on a pooled
 * connection held until weft_http_stream_close.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "client_internal.h"

/* ---- streaming responses ---------------------------------------------------- */

struct weft_http_stream {
    struct origin *o;                     /* held until the close */
    weft_pooled *ph;
    struct hconn *h;
    struct parse ps;
    int err;
    char buf[16384];
};

/* Sends the request and reads the head into r, for the stream st. */
static int open_stream(weft_http_client *cl, const weft_http_request *req,
                       weft_http_response *r, weft_http_stream *st)
{
    weft_url *u;
    int rc = weft__url_new(req->url, r, &u);
    if (rc)
        return rc;
    const char *method = req->method ? req->method : "GET";
    rc = weft__send_pooled(cl, u, req, method, r, &st->o, &st->ph);
    weft__free(u);
    if (!st->ph)
        return rc;
    st->h = weft_pooled_get(st->ph);
    st->h->used = true;
    if (rc)
        return rc;
    weft__parse_init(&st->ps, cl, r, strcmp(method, "HEAD") == 0);
    st->ps.streaming = true;
    st->ps.sbuf = st->buf;
    st->ps.scap = sizeof st->buf;
    while ((rc = weft__pump(&st->ps, st->h->c, sizeof st->buf)) == 0)
        ;
    if (rc > 0)                           /* paused after the head, or complete */
        rc = weft__publish_headers(&st->ps);
    return rc;
}

int weft_http_open(weft_http_client *cl, const weft_http_request *req, weft_http_response *r,
                   weft_http_stream **out)
{
    if (!r)
        return -EINVAL;
    memset(r, 0, sizeof *r);
    if (!cl || !req || !req->url || !out) {
        snprintf(r->error, sizeof r->error, "no client, request, URL or stream");
        return -EINVAL;
    }
    if (!weft_self())
        return -EPERM;
    weft_http_stream *st = weft__calloc(1, sizeof *st);
    r->priv_ = st ? weft__resp_store() : NULL;
    if (!r->priv_) {
        weft__free(st);
        snprintf(r->error, sizeof r->error, "%s", weft_strerror(-ENOMEM));
        return -ENOMEM;
    }
    weft_scope sc;
    weft_time total = req->timeout ? req->timeout : cl->o.timeout;
    weft_scope_enter(&sc, total ? total : WEFT_FOREVER);
    int rc = open_stream(cl, req, r, st);
    weft_scope_exit(&sc);
    if (rc) {
        if (!r->error[0])
            snprintf(r->error, sizeof r->error, "%s", weft_strerror(rc));
        st->err = rc;
        weft_http_stream_close(st);
        return rc;
    }
    *out = st;
    return 0;
}

int weft_http_stream_read(weft_http_stream *st, void *buf, size_t len)
{
    if (!st || (!buf && len))
        return -EINVAL;
    struct parse *s = &st->ps;
    for (;;) {
        if (st->err)
            return st->err;
        if (s->spos < s->slen) {
            size_t n = s->slen - s->spos < len ? s->slen - s->spos : len;
            memcpy(buf, s->sbuf + s->spos, n);
            s->spos += n;
            return (int)n;
        }
        if (s->complete)
            return 0;
        s->slen = s->spos = 0;            /* pump feeds at most what fits */
        int rc = weft__pump(s, st->h->c, s->scap);
        if (rc < 0)
            st->err = rc;
    }
}

void weft_http_stream_close(weft_http_stream *st)
{
    if (!st)
        return;
    bool keep = !st->err && st->ps.complete && llhttp_should_keep_alive(&st->ps.p);
    weft__conn_done(st->o, st->ph, keep);  /* may free what the client left */
    weft__free(st);
}
