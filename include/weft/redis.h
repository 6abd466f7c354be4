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

#ifdef __cplusplus
extern "C" {
#endif

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

/* A pool for url, made on the calling loop; connections come in the
 * background. NULL with errno EINVAL (a bad URL: logged with what is
 * wrong), EPERM (outside a task), ENOMEM. The calling task owns the pool's
 * background work: close it before that task returns. */
weft_redis *weft_redis_new(const char *url, const weft_redis_opts *o);

/* Called by the task that made r (else -EPERM, nothing closed): stops
 * lending (waiters get -WEFT_ECLOSED), ends the subscriptions, lets
 * commands in flight finish within grace, closes everything, frees r. 0,
 * or -ETIMEDOUT when some had to be cut off. */
int weft_redis_close(weft_redis *r, weft_time grace);

/* Runs one command (argvlen NULL: each argument's strlen; binary-safe
 * otherwise), auto-pipelined with the other tasks' on a shared
 * connection. 0 and *out (the reply, yours to free); -WEFT_EREDIS with
 * *out the ERROR reply; else *out is NULL and the code is -ETIMEDOUT (the
 * scope), -WEFT_ECOMMAND_TIMEOUT, -ECANCELED (its reply is still read and
 * dropped, in order), -EPROTO, -EMSGSIZE (reply over max_reply), connect
 * errors (-ECONNREFUSED, -EACCES for a refused AUTH, DNS's, TLS's),
 * -ECONNRESET or -WEFT_EEOF (connection lost), -WEFT_EPOOL_TIMEOUT,
 * -WEFT_ECLOSED, -EINVAL (also for the commands a shared connection
 * refuses: MULTI, EXEC, DISCARD, WATCH, UNWATCH, SELECT, the SUBSCRIBE
 * family, CLIENT, HELLO, MONITOR, RESET, QUIT, AUTH, blocking commands
 * (BLPOP ..., XREAD/XREADGROUP with BLOCK): take an exclusive connection
 * for them), -EXDEV, -EPERM, -ENOMEM. Commands share a connection in
 * order: a slow one holds those behind it, and one whose answer is late
 * past its budget and resync_grace fails the connection's others with
 * -ECONNRESET. */
int weft_redis_command(weft_redis *r, weft_redis_reply **out, int argc, const char *const *argv,
                       const size_t *argvlen);

/* The same, the command given as hiredis formats it: spaces split
 * arguments; %s (a C string) and %b (a pointer and a size_t) are one
 * argument each, spaces included; %d, %lld, %%. -EINVAL for a bad format. */
int weft_redis_commandf(weft_redis *r, weft_redis_reply **out, const char *fmt, ...);

/* ---- exclusive connections ---- */

/* The pool's errors (-WEFT_EPOOL_TIMEOUT, -ETIMEDOUT, -ECANCELED,
 * -WEFT_ECLOSED, connect errors, -EXDEV, -EPERM). */
int weft_redis_acquire(weft_redis *r, weft_redis_conn **out);

/* Gives c back: an open MULTI is DISCARDed and replies not yet read are
 * read and dropped (shielded, within resync_grace), else the connection is
 * closed. Never fails. */
void weft_redis_release(weft_redis *r, weft_redis_conn *c);

/* Queues a command on c (sent at the next get_reply): explicit pipelines.
 * 0, -WEFT_EBROKEN, write errors, -EINVAL. */
int weft_redis_append(weft_redis_conn *c, int argc, const char *const *argv,
                      const size_t *argvlen);

/* Sends what was appended, then reads the next reply (command_timeout):
 * as weft_redis_command; -EINVAL when nothing is owed. */
int weft_redis_get_reply(weft_redis_conn *c, weft_redis_reply **out);

/* append + get_reply. A blocking command (BLPOP, BRPOP, BLMOVE, BZPOPMIN,
 * XREAD, XREADGROUP, WAIT ...) waits as long as the task's scope allows,
 * not command_timeout: give it a scope. */
int weft_redis_conn_command(weft_redis_conn *c, weft_redis_reply **out, int argc,
                            const char *const *argv, const size_t *argvlen);

/* ---- pub/sub ---- */

/* A message: channel, pattern (PSUBSCRIBE, else NULL) and data (len
 * bytes, NUL-terminated), all in one block the receiver owns. */
typedef struct weft_redis_msg {
    char *channel, *pattern, *data;
    size_t len;
} weft_redis_msg;

/* Subscribes to n channels (patterns: PSUBSCRIBE) on a connection of its
 * own, made and kept in the client's background: after a lost connection
 * it connects again (backoff 100 ms doubling to 5 s) and subscribes again;
 * messages published while it was away are lost (Redis keeps none). 0,
 * -EINVAL, -WEFT_ECLOSED, -EXDEV, -EPERM, -ENOMEM. */
int weft_redis_subscribe(weft_redis *r, const char *const *chans, int n, bool patterns,
                         weft_redis_sub **out);

/* Waits for the next message (the scope bounds the wait): 0 and *m (free
 * with weft_redis_msg_free); -ENOBUFS once when messages were dropped
 * because more than 10,000 (or 64 MiB of them) waited unread (counted in
 * weft_redis_sub_dropped_total; the queue's messages still come);
 * -EPIPE once the subscription (or the client) was closed and the queue
 * is empty; -EACCES when the server refused it (an ACL); -ETIMEDOUT,
 * -ECANCELED. A quiet link is asked a PING every 30 s, and a dead one
 * (no answer by the next) is connected again. */
int weft_redis_sub_recv(weft_redis_sub *s, weft_redis_msg *m);
void weft_redis_msg_free(weft_redis_msg *m);

/* Unsubscribes (closes its connection) and frees s; a task waiting in
 * sub_recv gets -EPIPE. s must not be used after. */
void weft_redis_sub_close(weft_redis_sub *s);

#ifdef __cplusplus
}
#endif

#endif
