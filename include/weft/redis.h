/*
 * weft redis: a pooled, auto-pipelining, cancel-safe Redis client.
 *
 * A weft_redis is a pool of connections (min 1, max 16 for the whole
 * process, split across weft_run loops) to one server, given by a URL:
 *
 *   redis://[[user]:password@]host[:port][/db]    TCP, port 6379, db 0
 *   rediss://...                                   TLS (opts.tls, or a
 *                                                  verifying context)
 *   unix:///path/to/socket[?db=N]                  a Unix socket
 *
 * parsed strictly (a bad port, db or escape is -EINVAL, logged with what
 * is wrong). On connect: AUTH (user and password, or the password alone),
 * SELECT db, CLIENT SETNAME opts.name.
 *
 * weft_redis_command on the pool auto-pipelines: the commands many tasks
 * of the loop issue in one loop turn go out in one write on a shared
 * connection and their replies are matched in order, at most
 * max_in_flight per connection. A task cancelled or timed out after its
 * command was written never leaves its reply for someone else: it is still
 * read and dropped, in order. Commands that hold a connection's state
 * (MULTI/EXEC, WATCH, blocking commands, explicit pipelines) take one with
 * weft_redis_acquire; weft_redis_release DISCARDs an open MULTI and drains
 * unread replies (within resync_grace), or closes the connection.
 *
 * Replies are one allocation each (weft_redis_reply_free), RESP2 through
 * hiredis 0.14's reader: its nesting limit of 7 levels is a documented
 * limit (deeper is -EPROTO). weft bounds a reply at max_reply bytes and an
 * array's elements itself (-EMSGSIZE, connection closed).
 */
#ifndef WEFT_REDIS_H
#define WEFT_REDIS_H

#include <stdbool.h>
#include <stddef.h>

#include "core.h"
#include "tls.h"

typedef struct weft_redis weft_redis;
typedef struct weft_redis_conn weft_redis_conn;
typedef struct weft_redis_sub weft_redis_sub;

typedef struct weft_redis_opts {
    const char *name;              /* CLIENT SETNAME and metrics label, default "redis" */
    unsigned min_size, max_size;   /* connections, process-wide: 1, 16 */
    unsigned max_in_flight;        /* auto-pipelined commands per connection,
                                      default 1024; 1: none */
    weft_time connect_timeout;     /* default 10 s: -WEFT_ECONNECT_TIMEOUT */
    weft_time command_timeout;     /* default 30 s: -WEFT_ECOMMAND_TIMEOUT */
    weft_time acquire_timeout;     /* default 30 s: -WEFT_EPOOL_TIMEOUT */
    weft_time resync_grace;        /* reading abandoned replies on release, 1 s, else closed */
    size_t max_reply;              /* bytes of one reply, default 512 MiB: -EMSGSIZE */
    weft_tls_ctx *tls;             /* rediss://: NULL gives a verifying client context */
} weft_redis_opts;

/* hiredis's numbering */
enum {
    WEFT_REDIS_STRING = 1,
    WEFT_REDIS_ARRAY,
    WEFT_REDIS_INTEGER,
    WEFT_REDIS_NIL,
    WEFT_REDIS_STATUS,
    WEFT_REDIS_ERROR
};

/* One block: the reply, its elements and their strings. str is
 * NUL-terminated for STRING, STATUS and ERROR (binary-safe: len). */
typedef struct weft_redis_reply {
    int type;
    long long integer;
    const char *str;
    size_t len;
    size_t elements;
    struct weft_redis_reply *element;
} weft_redis_reply;

void weft_redis_reply_free(weft_redis_reply *reply);   /* NULL is ignored */

#endif
