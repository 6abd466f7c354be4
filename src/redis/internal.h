/* The Redis client's private parts, shared by its files:
 * url.c (redis://, rediss://, unix:// URLs, parsed strictly),
 * reply.c (RESP2 replies through hiredis 0.14's reader, with the limits
 * weft enforces and hiredis does not), format.c (commands written in RESP
 * straight into a caller's buffer), client.c (connections, auto-pipelining,
 * the pool, exclusive connections), sub.c (pub/sub). */
#ifndef WEFT_REDIS_INTERNAL_H
#define WEFT_REDIS_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "../core/kernel.h"
#include "weft/metrics.h"
#include "weft/net.h"
#include "weft/pool.h"
#include "weft/redis.h"
#include "weft/sync.h"

/* ---- url.c ---- */
enum { WEFT__REDIS_TCP, WEFT__REDIS_TLS, WEFT__REDIS_UNIX };

struct weft__redis_url {
    int kind;
    char host[256];                   /* name or literal, brackets removed */
    int port;                         /* 6379 unless given */
    char path[108];                   /* unix socket */
    char user[128], pass[256];        /* percent-decoded; "" when absent */
    bool has_pass;
    int db;                           /* 0 unless given, 0..(INT_MAX) */
};

/* 0, or -EINVAL with err saying what is wrong ("bad port", ...). */
int weft__redis_url_parse(const char *url, struct weft__redis_url *u, char *err, size_t errlen);

/* ---- reply.c ---- */
struct weft__redis_reader;

/* max_reply: bytes of one reply (its strings, and its arrays' element
 * records, sizeof(weft_redis_reply) each, all together), max_elements:
 * elements of one reply (nested arrays counted too). NULL on ENOMEM. */
struct weft__redis_reader *weft__redis_reader_new(size_t max_reply, size_t max_elements);
void weft__redis_reader_free(struct weft__redis_reader *rd);
/* Buffers len bytes. 0, -ENOMEM. */
int weft__redis_reader_feed(struct weft__redis_reader *rd, const char *buf, size_t len);
/* The next complete reply: 1 and *out (one allocation: free with
 * weft_redis_reply_free), 0 when none is complete yet, -EPROTO (not
 * RESP2, or nested past hiredis's limit: weft__redis_reader_error says
 * what), -EMSGSIZE (over a limit), -ENOMEM. After an error the reader is
 * unusable (the connection is closed). */
int weft__redis_reader_get(struct weft__redis_reader *rd, weft_redis_reply **out);
const char *weft__redis_reader_error(const struct weft__redis_reader *rd);

/* ---- format.c ---- */
/* The RESP of one command (argc, argv, argvlen: NULL means strlen)
 * appended to *buf (len, cap grown by doubling, weft's allocator).
 * 0, -EINVAL (argc < 1), -ENOMEM. */
int weft__redis_format_argv(char **buf, size_t *len, size_t *cap, int argc,
                            const char *const *argv, const size_t *argvlen);
/* The same from hiredis's format rules: spaces split arguments, %s a C
 * string, %b a pointer and a size_t length, %d an int, %lld a long long,
 * %% a percent; a %s or %b is one argument even with spaces in it.
 * -EINVAL for a bad format. */
int weft__redis_format_v(char **buf, size_t *len, size_t *cap, const char *fmt, va_list ap);

/* ---- client.c ---- */
/* a command in flight on a shared connection: its task's, while it waits */
struct pending {
    weft_redis_reply *reply;
    int rc;
    bool done;
    weft__wq wq;
};

struct slot {
    struct pending *p;                    /* NULL: its task left, the reply is dropped */
    weft_time deadline;                   /* the task's budget */
};

struct weft_redis_conn {
    weft_redis *r;
    weft_conn *c;
    struct weft__redis_reader *rd;
    weft_pooled *h;
    bool broken, exclusive, in_multi, reading;
    bool watching;                        /* exclusive: a WATCH to UNWATCH on release */
    bool dirty;                           /* exclusive: SELECT, SUBSCRIBE ...: closed on release */
    bool flushing;                        /* shared: a task will send what is queued */
    unsigned writers;                     /* shared: tasks writing (the reader waits for them) */
    weft__wq rwq;                         /* shared: the reader, waiting for writers */
    unsigned owed;                        /* exclusive: replies not yet read */
    weft_mutex wlock;                     /* one command written at a time */
    char *fbuf;                           /* formatting scratch, reused */
    size_t flen, fcap;
    struct slot *ring;                    /* shared: commands in flight */
    unsigned rhead, rcount;
    struct weft_redis_conn *snext, **sprev;
};

struct weft_redis {
    weft_redis_opts o;
    struct weft__redis_url url;
    weft_pool *pool;
    weft_group *bg;                       /* the shared connections' readers */
    weft_tls_ctx *tls, *own_tls;
    uint64_t loop;
    struct weft_redis_conn *shared;
    weft__wq slot_wq;
    unsigned refs;
    bool closing;
    char connect_error[160];
    weft_metric *m_commands, *m_errors, *m_timeouts, *m_depth, *m_sub_drops;
    struct weft_redis_sub *subs;          /* open subscriptions, stopped by close */
    weft_task *owner;                     /* the task that made it: the one that closes it */
};

/* sub.c: stops every subscription of r (weft_redis_close) */
void weft__redis_subs_stop(weft_redis *r);

/* A connection made and set up (AUTH, SELECT, CLIENT SETNAME): the
 * pool's create, and a subscriber's own connection. */
int weft__redis_connect(weft_redis *r, struct weft_redis_conn **out);
void weft__redis_conn_free(struct weft_redis_conn *k);
/* One command into k's write buffer (sent by the next read). */
int weft__redis_put(struct weft_redis_conn *k, int argc, const char *const *argv,
                    const size_t *argvlen);
/* The next reply on k, reading as needed (it sends nothing: see
 * weft__redis_flush_next); k->broken on an error. */
int weft__redis_next(struct weft_redis_conn *k, weft_redis_reply **out);
/* For a connection one task holds: sends what is queued, then the next reply. */
int weft__redis_flush_next(struct weft_redis_conn *k, weft_redis_reply **out);
void weft__redis_unref(weft_redis *r);

#endif
