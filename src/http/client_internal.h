/* The HTTP client's private state, shared by client.c (origins, pools,
 * requests), client_response.c (reading a response with llhttp) and
 * client_stream.c (streamed responses). */
#ifndef WEFT_HTTP_CLIENT_INTERNAL_H
#define WEFT_HTTP_CLIENT_INTERNAL_H

#include <llhttp.h>
#include <stdbool.h>

#include "../core/internal.h"
#include "internal.h"
#include "weft/http.h"
#include "weft/pool.h"
#include "weft/url.h"

#define MAX_HEADERS 128

struct origin {
    struct origin *next;
    weft_http_client *cl;
    char key[300], host[256];
    int port;
    bool tls;
    weft_pool *pool;
};

struct weft_http_client {
    weft_http_client_opts o;
    weft_tls_ctx *tls;
    bool own_tls;
    struct origin *origins;
    weft_group *bg;                       /* the pools' background tasks */
    weft_sem total;
    weft_http_client_stats stats;
};

struct hconn {
    weft_conn *c;
    struct origin *o;
    bool used;                            /* has carried a request before */
};

struct weft__http_resp {
    struct weft__head hd;                 /* header names and values */
    struct weft__hdr idx[MAX_HEADERS];
};

/* one response being read */
struct parse {
    llhttp_t p;
    weft_http_response *r;
    struct weft__head *hd;                /* in r's own storage */
    bool head_request, complete, any;
    bool streaming, head_done;            /* streaming: pause after the head */
    char *sbuf;                           /* streaming: body bytes not yet read */
    size_t scap, slen, spos;
    size_t max_body, body_cap;
    int err;
    const char *why;
};

/* client.c */
struct origin *weft__origin_get(weft_http_client *cl, const weft_url *u);
/* Acquires a connection to u's origin and sends the request on it. *ph
 * is set once a connection was acquired (even if sending failed): the
 * caller releases it, broken unless the exchange ends cleanly. */
int weft__send_pooled(weft_http_client *cl, const weft_url *u, const weft_http_request *req,
                      const char *method, weft_http_response *r, struct origin **o,
                      weft_pooled **ph);

/* client_response.c */
struct weft__http_resp *weft__resp_store(void);   /* a response's own storage */
void weft__parse_init(struct parse *s, weft_http_client *cl, weft_http_response *r,
                      bool head_request);
/* One step of reading a response: feeds at most max_feed buffered bytes to
 * llhttp (reading more from c when nothing is buffered). Returns 0 to go
 * on, 1 when paused after the head (streaming), 2 when the response is
 * complete, or an error with r->error set. */
int weft__pump(struct parse *s, weft_conn *c, size_t max_feed);
int weft__publish_headers(struct parse *s);       /* r->headers from the index */
/* Reads one response from c into r. *keep says whether c may be reused. */
int weft__read_response(weft_http_client *cl, weft_conn *c, bool head_request,
                        weft_http_response *r, bool *keep, bool *any);
/* gzip and deflate bodies are decoded in place of the raw ones */
int weft__decode_body(weft_http_client *cl, weft_http_response *r);

#endif
