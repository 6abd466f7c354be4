/* The HTTP server's private state, shared by the files of its parts:
 * server.c (routes, accepting, draining), request.c (parsing, the request
 * for handlers), response.c, connection.c (the loop of one connection). */
#ifndef WEFT_HTTP_SERVER_INTERNAL_H
#define WEFT_HTTP_SERVER_INTERNAL_H

#include <llhttp.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "../core/kernel.h"
#include "internal.h"
#include "weft/http.h"
#include "weft/router.h"

/* per-connection buffers kept between requests, at most: a connection
 * that once carried a 1 MiB body idles at the cost of any other */
#define WEFT__HTTP_RETAIN (16 * 1024)

/* a connection idle this long drops every buffer but its read buffer, so
 * an idle connection costs what a fresh one does whatever it did before;
 * a second of idling is worth far more than the mallocs that bring them
 * back */
#define WEFT__HTTP_IDLE_SHED WEFT_SEC

struct middleware {
    weft_http_before before;
    weft_http_after after;
    void *ctx;
};

struct weft_http_server {
    weft_router *router;
    weft_http_server_opts o;
    _Atomic bool stopping;
    weft_chan *stop;                      /* shared; closed by shutdown, from any thread */
    struct middleware *mw;
    int nmw;
    weft_metric *in_flight;               /* process-wide gauges */
    weft_metric *body_bytes;
    char keepalive_hdr[48];               /* "Keep-Alive: timeout=N\r\n" */
    _Atomic size_t body_mem;              /* body buffers past WEFT__HTTP_RETAIN, all loops */
};

/* one weft_http_serve: its connections, in this loop */
struct serving {
    weft_http_server *s;
    weft_listener *l;
    weft_sem conns;                       /* max_connections */
    unsigned in_flight;
    bool draining;
    struct conn_slot *slots;              /* live connections */
    weft_group *conn_tasks;
    weft_event stop;                      /* a shutdown, or the accept loop ended */
    int accept_rc;                        /* why the accept loop ended by itself */
};

struct conn_slot {
    struct conn_slot *next, *prev;
    struct serving *sv;
    weft_conn *c;
    weft_task *task;
    const struct weft_http_req *q;        /* the request being read */
    bool idle;                            /* between requests */
};

struct weft_http_req {
    llhttp_t p;                           /* first: callbacks cast back */
    weft_http_server *s;
    struct weft__head hd;                 /* URL and header fields */
    size_t url;                           /* offset of the URL in hd.buf */
    bool in_url, complete, any, headers_done;
    bool expect_continue;                 /* send 100 before waiting for the body */
    bool chunked;                         /* the body is read by ck, not llhttp */
    struct weft__chunked ck;
    unsigned char scan;                   /* the raw-byte scan of the head: where */
    bool cr;                              /* it is, and a CR wants its LF */
    size_t raw;                           /* head bytes scanned, whitespace included */
    int status;                           /* a limit's status, when broken */
    const char *why;
    char *body;
    size_t blen, bcap;
    size_t charged;                       /* of bcap, counted in the server's body_mem */
    size_t announced;                     /* Content-Length, 0 without (llhttp counts
                                             its copy down) */
    weft_time idle_waited;                /* of keepalive_timeout, before the read */
    weft_time started;                    /* when its head was read whole */
    const char *method;                   /* llhttp's static name */
    const char *path, *query;
    weft_route_match m;
    char *pbuf;                           /* decoded params and query values, */
    size_t pused, pcap;                   /* made at the first lookup */
    struct weft__hdr h[];                 /* max_headers of them */
};

struct weft_http_res {
    weft_conn *c;
    const char *keepalive_hdr;            /* the server's, said on kept connections */
    bool head, streaming;                 /* head: a response to HEAD */
    bool http10;                          /* no chunks; keep-alive said aloud */
    int stream_err;
    int status;
    char *hbuf;                           /* extra header lines */
    size_t hlen, hcap;
    char *body;
    size_t blen, bcap;
};

/* request.c */
struct weft_http_req *weft__req_new(weft_http_server *s);
void weft__req_free(struct weft_http_req *q);
void weft__req_reset(struct weft_http_req *q);
/* Frees the buffers q keeps between requests (an idle connection's). */
void weft__req_shed(struct weft_http_req *q);
/* Reads the next request. 0 with q complete; 1 when the client is done
 * (closed, or idle past keep-alive); < 0 with q->status set for an answer
 * (0 status: just close). */
int weft__read_request(struct weft_http_req *q, weft_conn *c);
void weft__split_url(struct weft_http_req *q);

/* response.c */
const char *weft__http_reason(int status);
void weft__res_reset(struct weft_http_res *r);
void weft__res_shed(struct weft_http_res *r);
void weft__res_free(struct weft_http_res *r);
int weft__send_response(weft_conn *c, struct weft_http_res *r, bool head, bool close);

/* connection.c: serves c until it ends (slot: when weft_http_serve owns c) */
int weft__serve(weft_http_server *s, weft_conn *c, struct conn_slot *slot);

#endif
