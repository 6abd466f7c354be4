/* The HTTP client's private state, shared by client.c (origins, pools,
 * requests), client_response.c (reading a response with llhttp) and
 * client_stream.c (streamed responses). */
#ifndef WEFT_HTTP_CLIENT_INTERNAL_H
#define WEFT_HTTP_CLIENT_INTERNAL_H

#include <llhttp.h>
#include <stdbool.h>
#include <zlib.h>

#include "../core/kernel.h"
#include "internal.h"
#include "weft/http.h"
#include "weft/pool.h"
#include "weft/url.h"

#define MAX_HEADERS 128

/* Lifetimes are reference counts, so nothing is freed under a user: an
 * origin is held by the client's list, by each of its connections (idle
 * or lent), by each connection being created (the pool's creator task
 * outlives the request that asked) and by each request or stream using
 * it; it holds its client.
 * weft_http_client_free closes the pools and drops the caller's and the
 * list's references; whatever a stream still holds goes with its close. */
struct origin {
    struct origin *next;
    weft_http_client *cl;
    unsigned refs;
    weft_time idle_since;                 /* when only the list held it last */
    char key[300], host[256];
    int port;
    bool tls;
    weft_pool *pool;                      /* closed once off the list; still
                                             valid for its lent connections */
    char connect_error[160];              /* why the last connect failed, in
                                             detail (TLS: OpenSSL's reason) */
};

struct weft_http_client {
    unsigned refs;                        /* the caller's, each origin's, each
                                             weft_http_do running */
    bool closing;                         /* weft_http_client_free was called */
    weft_http_client_opts o;
    weft_tls_ctx *tls;
    bool own_tls;
    struct origin *origins;
    weft_event has_origins;               /* wakes the janitor */
    weft_group *bg;                       /* the pools' background tasks, the janitor */
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
    /* a gzip or deflate body is decoded as it comes: the raw bytes are
     * never held, and max_body holds on both */
    bool decompress;                      /* the client's no_decompress, inverted */
    int zstate;                           /* Z_NONE, Z_ON, Z_DONE */
    const char *enc;
    size_t raw_len;
    z_stream z;
    char why_buf[96];
};

/* client.c */
void weft__client_hold(weft_http_client *cl);
void weft__client_put(weft_http_client *cl);     /* the last one frees it */
/* Acquires a connection to u's origin and sends the request on it. *o and
 * *ph are set once a connection was acquired (even if sending failed): the
 * caller gives both back with weft__conn_done; else both are NULL. */
int weft__send_pooled(weft_http_client *cl, const weft_url *u, const weft_http_request *req,
                      const char *method, weft_http_response *r, struct origin **o,
                      weft_pooled **ph);
/* Gives back a connection from weft__send_pooled (kept for reuse when
 * keep, else closed) and the reference to its origin. NULLs are ignored. */
void weft__conn_done(struct origin *o, weft_pooled *ph, bool keep);

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
extern size_t weft__zlib_slice;           /* bytes per inflate call, at most */

/* Parses url into a new weft_url (*out, freed with weft__free), or says
 * in r->error what is wrong with it. */
int weft__url_new(const char *url, weft_http_response *r, weft_url **out);

#endif
