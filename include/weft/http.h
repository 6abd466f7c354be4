/*
 * weft http: the HTTP/1.1 client (first) and server (from "---- server":
 * routes, limits, graceful shutdown; route patterns are weft/router.h's).
 *
 * One weft_http_client is shared by every task of a loop ("connection
 * pools, never a client per request"): it keeps a weft_pool of keep-alive
 * connections per origin (scheme, host, port), bounded per origin and in
 * total, like httpx's Limits. An origin left with no connection and no
 * request for idle_timeout is dropped with its pool, so a client that
 * crawls many hosts holds state only for the ones it is using. Every
 * request has a timeout for each phase, each failure with its own code and
 * message (weft_strerror):
 *
 *   -WEFT_ECONNECT_TIMEOUT "connect timeout"   connecting (and TLS handshake)
 *   -WEFT_EWRITE_TIMEOUT   "write timeout"     sending the request
 *   -WEFT_EREAD_TIMEOUT    "read timeout"      waiting for response bytes
 *   -WEFT_EPOOL_TIMEOUT    "pool timeout"      waiting for a connection
 *   -ETIMEDOUT             "deadline exceeded" the whole-request deadline
 *                                              (the task's scope or
 *                                              request.timeout)
 *
 * weft_is_timeout() is true for all of them. Other errors: -EINVAL (bad
 * URL or request; response.error says what), -EPROTO (malformed or hostile
 * response; the connection is discarded), -EMSGSIZE (body or headers over
 * the limit), -WEFT_ENOTFOUND / -WEFT_ENOADDR / -WEFT_EDNS (the host's
 * name: not found, no address, DNS failed), -ECONNREFUSED, -ECONNRESET,
 * -WEFT_EEOF (closed early),
 * -WEFT_ETLS_VERIFY, -WEFT_EREDIRECT (below), -WEFT_ECLOSED (client freed),
 * -ECANCELED. An HTTP status is not an error.
 *
 * A request on a reused keep-alive connection that the server had closed
 * is retried once on a fresh connection, for idempotent methods only. A
 * connection whose request was interrupted (timeout, cancel) is closed,
 * never returned to the pool, and so is one on which the server sent
 * bytes after a complete response (after a 204 or 304, past a
 * Content-Length): checked on every reuse, however soon, they are never
 * read as the next request's response.
 *
 * REDIRECTS (with max_redirects > 0): 301, 302, 303, 307 and 308 with a
 * Location are followed (303, and 301/302 after a POST, as GET without the
 * body). The caller's Authorization, Cookie and Proxy-Authorization
 * headers go only to the request's own origin (scheme, host and port):
 * they are dropped at the first redirect elsewhere and stay dropped for
 * the redirects after it. A redirect from https to http fails with
 * -WEFT_EREDIRECT ("redirect refused"; the 3xx response stays in resp)
 * unless allow_downgrade is set.
 */
#ifndef WEFT_HTTP_H
#define WEFT_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "core.h"
#include "tls.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_http_client weft_http_client;

typedef struct weft_http_header {
    const char *name, *value;
} weft_http_header;

/* Zero fields take the defaults.
 *
 * The two bounds are for the process, and split the same way: a client
 * belongs to one loop, so under weft_run (N loops) each loop makes its
 * own, and each takes its share of max_connections open connections in
 * all and of max_per_origin to any one origin (v / N, the remainder to
 * the lowest loops, at least 1 each, as weft_pool splits max_size). The
 * process then never has more than
 * max_connections open, nor more than max_per_origin to one origin, as
 * long as N does not exceed them (else at most N); a loop cannot borrow
 * another loop's share. */
typedef struct weft_http_client_opts {
    unsigned max_connections;      /* in total, default 100 */
    unsigned max_per_origin;       /* to one origin, default max_connections */
    unsigned max_idle_per_origin;  /* keep-alive connections kept, default 20 */
    weft_time idle_timeout;        /* keep-alive expiry (and an idle origin's), default 5 s */
    weft_time connect_timeout;     /* default 10 s */
    weft_time read_timeout;        /* default 30 s */
    weft_time write_timeout;       /* default 30 s */
    weft_time pool_timeout;        /* default 30 s */
    weft_time timeout;             /* whole request, default none (the scope's) */
    size_t max_body;               /* buffered response body, as sent and as
                                      decoded: default 16 MiB */
    size_t max_header_bytes;       /* status line + headers, default 64 KiB */
    int max_redirects;             /* 0 (default): redirects are returned, not followed */
    bool allow_downgrade;          /* follow https -> http redirects (see REDIRECTS) */
    bool no_decompress;            /* true: leave gzip/deflate bodies alone.
                                      Else a Content-Encoding of gzip or
                                      deflate (zlib-wrapped) is decoded as the
                                      body arrives: the encoded body is never
                                      held, the decoded one at most max_body
                                      (-EMSGSIZE past it, -EPROTO for a corrupt
                                      or cut stream; bytes after its end are
                                      ignored); other codings are left as sent */
    weft_tls_ctx *tls;             /* NULL: a verifying client context */
    const char *user_agent;        /* default "weft/0.1" */
} weft_http_client_opts;

typedef struct weft_http_request {
    const char *method;            /* default "GET" */
    const char *url;
    const weft_http_header *headers;
    int nheaders;
    const void *body;              /* a buffered body (Content-Length) ... */
    size_t body_len;
    /* ... or a streamed one, sent chunked: body_read fills buf with up to
     * len bytes and returns the count, 0 at the end, or a negative code
     * (which aborts the request). A streamed request is never retried. */
    int (*body_read)(void *ctx, void *buf, size_t len);
    void *body_ctx;
    weft_time timeout;             /* whole request; 0: the client's */
} weft_http_request;

typedef struct weft_http_response {
    int status;
    weft_http_header *headers;     /* owned by the response */
    int nheaders;
    char *body;                    /* NUL-terminated, decoded; owned */
    size_t body_len;
    int redirects;                 /* how many were followed */
    char error[160];               /* details of a failure */
    struct weft__http_resp *priv_;
} weft_http_response;

/* A client for the calling loop, usable by all its tasks. NULL with errno
 * EPERM (outside a task), EINVAL, ENOMEM. The calling task owns the
 * client's background work: free it with weft_http_client_free from that
 * task before it returns. */
weft_http_client *weft_http_client_new(const weft_http_client_opts *o);

/* Closes every idle connection, waits up to grace (in all) for the ones in
 * use, and frees the client: c must not be used by the caller afterwards.
 * A request of another task still running in c ends with -WEFT_ECLOSED
 * where it would have needed a new connection. A stream or request still
 * using a connection past grace keeps what it needs: its connection is
 * closed, and the last of the client freed, when it ends
 * (weft_http_stream_close). */
void weft_http_client_free(weft_http_client *c, weft_time grace);

/* Sends req and reads the whole response into resp (which the caller
 * frees with weft_http_response_free, also after a failure). */
int weft_http_do(weft_http_client *c, const weft_http_request *req, weft_http_response *resp);

/* GET url. */
int weft_http_get(weft_http_client *c, const char *url, weft_http_response *resp);

void weft_http_response_free(weft_http_response *r);

/* Streaming responses: weft_http_open sends req and reads the response
 * head into resp (status, headers; body stays NULL); the body is then read
 * in pieces with weft_http_stream_read, as sent (de-chunked, not
 * decompressed, redirects not followed). req.timeout bounds the head; the
 * body reads are bounded by the read timeout and the caller's scope. resp
 * must outlive the stream. */
typedef struct weft_http_stream weft_http_stream;
int weft_http_open(weft_http_client *c, const weft_http_request *req,
                   weft_http_response *resp, weft_http_stream **out);

/* Up to len body bytes: the count, 0 at the end of the body, or an error
 * (the stream is then unusable; close it). */
int weft_http_stream_read(weft_http_stream *s, void *buf, size_t len);

/* Ends the stream: the connection goes back to the pool if the body was
 * read to its end, else it is closed. NULL is ignored. */
void weft_http_stream_close(weft_http_stream *s);

/* The first value of a response header (case-insensitive), or NULL. */
const char *weft_http_header_get(const weft_http_response *r, const char *name);

/* Connections opened and requests sent so far (for tests and metrics). */
typedef struct weft_http_client_stats {
    unsigned long connections, requests, retries;
    unsigned long open;            /* connections open now */
} weft_http_client_stats;
void weft_http_client_stats_get(const weft_http_client *c, weft_http_client_stats *s);


/* ---- server ----------------------------------------------------------------
 *
 * Routes (weft/router.h patterns) to handlers; each connection is a task
 * that reads requests with llhttp (keep-alive and pipelining), answers
 * with what the handler set, and enforces the limits with the right status
 * before closing gracefully (the error response is written, the writing
 * side shut down, and what the client still sends drained for a moment so
 * no TCP reset eats the response):
 *
 *   request line + headers over max_header_bytes, or > max_headers,
 *   the whole head with its whitespace and leading empty lines over
 *   twice max_header_bytes, a chunked body's trailer section over
 *   max_header_bytes                                                 431
 *   body over max_body, or chunk lines over max_body + max_header_bytes
 *   in all (extensions cannot carry gigabytes around a small body)   413
 *   malformed, Content-Length with Transfer-Encoding (even an empty
 *   one), Transfer-Encoding in an HTTP/1.0 request, conflicting or
 *   repeated Content-Length, obsolete line folding, a bare LF or CR
 *   anywhere in the head (also after empty lines before the request
 *   line), a control character (a tab too) in the request line, an
 *   empty header name or one with a non-token byte, HTTP/1.1
 *   without Host (or with two), a Host other than uri-host[:port] (or
 *   empty), a #fragment or %00 in the target, chunked framing
 *   other than RFC 9112's (anything but CRLF after a chunk's line or
 *   data, a bad size, extension or trailer; read strictly, so no front
 *   end can see a different request boundary)                        400
 *   Transfer-Encoding other than chunked, CONNECT                    501
 *   an Expect other than a single 100-continue                       417
 *   an HTTP version other than 1.0 and 1.1 (HTTP/2's preface too)   505
 *   head not complete within header_timeout, body stalled            408
 *   no route 404, other methods 405 with Allow, HEAD served by GET
 *   handler error 500 (logged), handler past handler_timeout 503
 *   more than max_in_flight requests being handled (but health_path) 503
 *   request bodies held by the server over max_body_memory           503
 *
 * "Expect: 100-continue" gets its 100 before the body is read; an Upgrade
 * is ignored (the connection stays HTTP); a chunked body's trailer fields
 * are dropped (never merged into the headers). Answers to
 * pipelined requests go out together in one write. Nothing is allocated
 * per request on this path beyond what the handler asks for while bodies
 * stay under 16 KiB (buffers belong to the connection and are reused; a
 * larger body's buffer is freed after its request, and the memory of a
 * burst of them goes back to the OS).
 */
typedef struct weft_http_server weft_http_server;
typedef struct weft_http_req weft_http_req;
typedef struct weft_http_res weft_http_res;

/* Returns 0, or a negative code: a 500 is sent if nothing was yet. */
typedef int (*weft_http_handler)(weft_http_req *req, weft_http_res *res, void *ctx);

typedef struct weft_http_server_opts {
    size_t max_header_bytes;       /* default 8 KiB */
    int max_headers;               /* default 100 */
    size_t max_body;               /* default 1 MiB */
    size_t max_body_memory;        /* request body buffers held at once by the
                                      whole server (all loops), default 512 MiB:
                                      a body whose buffer would go past it is
                                      refused 503 + Retry-After (before any 100
                                      Continue), one announced larger than it
                                      413. A buffer over 16 KiB counts in full,
                                      from its first byte to the end of the
                                      request; smaller ones are bounded only by
                                      max_connections. Gauge
                                      weft_http_body_bytes: what is held */
    weft_time header_timeout;      /* first byte to end of head, default 10 s */
    weft_time body_timeout;        /* per wait for body bytes (not the whole
                                      body: a long upload that keeps coming is
                                      never cut), default 10 s */
    weft_time keepalive_timeout;   /* idle between requests, default 5 s */
    weft_time handler_timeout;     /* default 30 s */
    unsigned max_connections;      /* per loop, default 10000: past it, stop accepting */
    unsigned max_in_flight;        /* per loop, default 1000: past it, 503 + Retry-After */
    weft_time shutdown_grace;      /* default 10 s */
    const char *health_path;       /* answered even past max_in_flight (a health check
                                      must say the process lives while it sheds load);
                                      default "/healthz", "" for none. Keep its handler
                                      cheap */
} weft_http_server_opts;

/* NULL with errno ENOMEM. Add routes, then serve; the routes are then
 * read-only and the server may be shared by every loop. */
weft_http_server *weft_http_server_new(const weft_http_server_opts *o);
void weft_http_server_free(weft_http_server *s);

/* -EINVAL, -EEXIST, -ENOMEM as weft_router_add. */
int weft_http_server_route(weft_http_server *s, const char *method, const char *pattern,
                           weft_http_handler h, void *ctx);

/* Serves requests on c until the client closes, a limit or error ends
 * it, or the task is cancelled; then closes c. Returns 0 or the error
 * that ended the connection. */
int weft_http_serve_conn(weft_http_server *s, weft_conn *c);

/* Accepts on l (each connection a task) until weft_http_server_shutdown
 * or until the calling task is cancelled; then stops accepting, closes
 * idle keep-alive connections (no request begun), lets requests in flight
 * finish within shutdown_grace (their connections close after the answer)
 * and cancels what is left, closes l and returns 0. At
 * max_connections it stops accepting until one closes (backpressure, not
 * collapse). Run one per loop over a WEFT_REUSEPORT listener to use every
 * core. Every accepted request gets a response. */
int weft_http_serve(weft_http_server *s, weft_listener *l);

/* The whole server in one call, for programs that are only a server: one
 * loop per thread (threads 0: one per core), each with its own
 * WEFT_REUSEPORT listener on host:port and weft_http_serve on it, until
 * weft_http_server_shutdown, SIGTERM or SIGINT (then gracefully, as
 * weft_http_serve). Call it outside any loop; it blocks SIGTERM and SIGINT
 * while it runs. 0, or the first loop's error (-EADDRINUSE, ...). */
int weft_http_server_run(weft_http_server *s, const char *host, int port, int threads);

/* Per-loop set-up and tear-down around weft_http_server_run's serving, for
 * a service with loop-local pools, clients and workers (weft objects are
 * loop-local: one per loop). Both run in a task of that loop (the loop's
 * root), so they may block on weft calls:
 *   on_loop_start(ctx): before the loop listens or serves. 0 to go on; a
 *     failure (< 0) stops every loop gracefully (those serving drain as on
 *     SIGTERM), this loop serves nothing and its on_loop_stop does not
 *     run, and the run returns that code (the first loop's to fail).
 *     Undo in it what it made before it failed.
 *   on_loop_stop(ctx): after the loop's HTTP drained (weft_http_serve
 *     returned: no request of this loop runs any more), on every loop
 *     whose on_loop_start returned 0, also when listening failed: stop
 *     background work here, then close what on_loop_start made.
 * Either may be NULL. */
typedef struct weft_http_run_hooks {
    int (*on_loop_start)(void *ctx);
    void (*on_loop_stop)(void *ctx);
    void *ctx;
} weft_http_run_hooks;

/* weft_http_server_run with hooks (NULL: none). A loop whose listener
 * cannot be made stops the others in the same graceful way. */
int weft_http_server_run_with(weft_http_server *s, const char *host, int port, int threads,
                              const weft_http_run_hooks *hooks);

/* Asks every weft_http_serve of s, on any loop, to shut down gracefully,
 * waking them at once (through a channel shared by the loops: nothing
 * polls). Safe from any thread. It is final: a later weft_http_serve of s
 * returns at once (make a new server to serve again). */
void weft_http_server_shutdown(weft_http_server *s);

/* The request, valid during the handler. */
const char *weft_http_req_method(const weft_http_req *r);
const char *weft_http_req_path(const weft_http_req *r);          /* without the query */
const char *weft_http_req_query(const weft_http_req *r);         /* "" if none */
/* the first field of that name (any case), without surrounding whitespace */
const char *weft_http_req_header(const weft_http_req *r, const char *name);
/* The pattern of the route that matched ("/users/{id}"), NULL when none
 * did (404, 405, a shed request): a label for metrics and logs that does
 * not grow with the paths clients send. */
const char *weft_http_req_route(const weft_http_req *r);
/* A route parameter, percent-decoded and NUL-terminated, or NULL. Routing
 * matches the raw path, so an encoded "/" (%2F) stays inside its segment. */
const char *weft_http_req_param(weft_http_req *r, const char *name);
/* The first value of a query parameter ("?a=1&b=x+y" -> "1", "x y"),
 * percent- and '+'-decoded; "" for a name without "="; NULL when absent.
 * Names are compared as sent. Decoded values last until the request ends
 * and share room for twice max_header_bytes (NULL once it is spent). */
const char *weft_http_req_query_param(weft_http_req *r, const char *name);
const void *weft_http_req_body(const weft_http_req *r, size_t *len);

/* The response: status (default 200), headers, and a body (copied).
 * weft_http_res_status takes 200..999, else -EINVAL and the status stays:
 * a 1xx is never a final answer (a client would wait for the real one, or
 * for 101 hand the connection over to another protocol). */
int weft_http_res_status(weft_http_res *r, int status);
int weft_http_res_header(weft_http_res *r, const char *name, const char *value);
int weft_http_res_body(weft_http_res *r, const void *data, size_t len);

/* (A jansson json_t as the body: weft_http_res_json in weft/http_json.h.) */

/* Streams the body: the first call sends the status and headers with
 * Transfer-Encoding: chunked, each call sends one chunk (a response to HEAD
 * sends none), and the end of the handler ends the body. (To an HTTP/1.0
 * client the body goes unchunked and the connection closes after it.) Once streaming
 * started, a failing or timed-out handler ends the connection instead of
 * answering 500/503. 0 or a write error. */
int weft_http_res_write(weft_http_res *r, const void *data, size_t len);

/* Middleware: before runs ahead of every routed handler (return 0 to go
 * on, 1 when it answered itself, < 0 for a 500); after runs once the
 * response is ready, before it is sent (logging, metrics, headers). Either
 * may be NULL. Calls run in the order added. -ENOMEM, -EINVAL. */
typedef int (*weft_http_before)(weft_http_req *req, weft_http_res *res, void *ctx);
typedef void (*weft_http_after)(weft_http_req *req, weft_http_res *res, void *ctx);
int weft_http_server_use(weft_http_server *s, weft_http_before before, weft_http_after after,
                         void *ctx);

/* The status the response will carry (for after-middleware). */
int weft_http_res_get_status(const weft_http_res *r);

/* When the request's head was read whole (weft_now's clock): the start of
 * its latency. */
weft_time weft_http_req_started(const weft_http_req *r);

/* ---- observability ready-made ---------------------------------------------- */

/* A /metrics handler: every metric of the process (weft_metrics_render) in
 * Prometheus' text format:
 *   weft_http_server_route(s, "GET", "/metrics", weft_http_metrics_handler, NULL); */
int weft_http_metrics_handler(weft_http_req *req, weft_http_res *res, void *ctx);

/* Per-route metrics as after-middleware (weft_http_server_use):
 * weft_http_requests_total{route,status} and the latency histogram
 * weft_http_request_duration_seconds{route} (0.5 ms .. 10 s buckets), from
 * the head read to the response ready. route is the matched pattern
 * ("/users/{id}"), "unrouted" for 404s and the like: a path is never a
 * label, so a client cannot grow the registry. 0, -ENOMEM. */
int weft_http_server_use_metrics(weft_http_server *s);

#ifdef __cplusplus
}
#endif

#endif
