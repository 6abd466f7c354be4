/*
 * weft http: the HTTP/1.1 client (the server part lands with its issue).
 *
 * One weft_http_client is shared by every task of a loop ("connection
 * pools, never a client per request"): it keeps a weft_pool of keep-alive
 * connections per origin (scheme, host, port), bounded per origin and in
 * total, like httpx's Limits. Every request has a timeout for each phase,
 * each failure with its own code and message (weft_strerror):
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
 * the limit), -ECONNREFUSED, -ECONNRESET, -WEFT_EEOF (closed early),
 * -WEFT_ETLS_VERIFY, -ECANCELED. An HTTP status is not an error.
 *
 * A request on a reused keep-alive connection that the server had closed
 * is retried once on a fresh connection, for idempotent methods only. A
 * connection whose request was interrupted (timeout, cancel) is closed,
 * never returned to the pool.
 */
#ifndef WEFT_HTTP_H
#define WEFT_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "core.h"
#include "tls.h"

typedef struct weft_http_client weft_http_client;

typedef struct weft_http_header {
    const char *name, *value;
} weft_http_header;

/* Zero fields take the defaults. */
typedef struct weft_http_client_opts {
    unsigned max_connections;      /* in total, default 100 */
    unsigned max_per_origin;       /* default max_connections */
    unsigned max_idle_per_origin;  /* keep-alive connections kept, default 20 */
    weft_time idle_timeout;        /* keep-alive expiry, default 5 s */
    weft_time connect_timeout;     /* default 10 s */
    weft_time read_timeout;        /* default 30 s */
    weft_time write_timeout;       /* default 30 s */
    weft_time pool_timeout;        /* default 30 s */
    weft_time timeout;             /* whole request, default none (the scope's) */
    size_t max_body;               /* buffered response body, default 16 MiB */
    size_t max_header_bytes;       /* status line + headers, default 64 KiB */
    int max_redirects;             /* 0 (default): redirects are returned, not followed */
    bool no_decompress;            /* true: leave gzip/deflate bodies alone */
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

/* Closes every connection (waiting up to grace for ones in use) and frees. */
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

#endif
