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
#include "weft/redis.h"

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

/* max_reply: bytes of one reply (bulk strings and everything inside an
 * array together), max_elements: elements of one array (nested counted
 * too). NULL on ENOMEM. */
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

#endif
