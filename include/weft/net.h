/*
 * weft net: TCP and Unix sockets with buffered streams.
 *
 * A weft_conn is a connected socket with a read buffer and a write buffer,
 * owned by the loop that made it (another loop gets -EXDEV). One task may
 * read it while another writes it (the directions are independent); a
 * second task that must wait to read while one already waits to read (or
 * to write while one waits to write) gets -EBUSY, and the conn is
 * unharmed. On TLS a read may have to wait to write (and a write to read):
 * with a reader and a writer at once that can give -EBUSY too. Every call honours the task's deadline scope
 * and cancellation, and has its own default timeout, so nothing waits
 * forever even without a scope:
 *
 *   connect  10 s  -WEFT_ECONNECT_TIMEOUT
 *   read     30 s  -WEFT_EREAD_TIMEOUT    (per wait for data)
 *   write    30 s  -WEFT_EWRITE_TIMEOUT   (per wait for buffer space)
 *   a scope deadline gives -ETIMEDOUT, a cancellation -ECANCELED
 *
 * A connection whose read or write was interrupted (timeout, cancel) may
 * hold half a message: it is marked broken, and every later call on it
 * fails at once with -WEFT_EBROKEN; close it. After an interrupted read,
 * writing still works (a server can still send its 408); after an
 * interrupted write, nothing does. Peer resets give
 * -ECONNRESET, writes to a closed peer -EPIPE (never SIGPIPE), reads past
 * an early end of stream -WEFT_EEOF.
 *
 * Sockets are non-blocking, registered once with the loop (edge-triggered)
 * and read and written until EAGAIN; TCP_NODELAY is on by default.
 */
#ifndef WEFT_NET_H
#define WEFT_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/uio.h>

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_conn weft_conn;
typedef struct weft_listener weft_listener;

/* Per-connection settings; zero fields take the defaults. */
typedef struct weft_net_opts {
    weft_time connect_timeout;  /* default 10 s; WEFT_FOREVER: none */
    weft_time read_timeout;     /* default 30 s */
    weft_time write_timeout;    /* default 30 s */
    size_t rbuf_size;           /* read buffer, default 16 KiB */
    size_t wbuf_size;           /* write buffer, default 16 KiB (at first queued write) */
    bool no_nodelay;            /* true: leave Nagle's algorithm on */
    bool flush_before_read;     /* true: a read that must wait for data first
                                   sends what weft_conn_write queued, so a
                                   pipelining protocol's requests never sit in
                                   the buffer while it waits for their answers
                                   (use when one task both writes and reads) */
} weft_net_opts;

/* ---- connecting ----------------------------------------------------------- */

/* Connects to host (a name or an IPv4/IPv6 literal) and port, trying every
 * resolved address in turn until one answers. *out is set on 0. Errors:
 * -EINVAL (bad host or port), those of weft_dns_resolve (-WEFT_ENOTFOUND
 * "name not found", -WEFT_ENOADDR, -WEFT_EDNS),
 * -ECONNREFUSED, -ENETUNREACH, -WEFT_ECONNECT_TIMEOUT, -ETIMEDOUT,
 * -ECANCELED, -EPERM outside a task, -ENOMEM. With several addresses the
 * error of the last one tried is returned. */
int weft_tcp_connect(weft_conn **out, const char *host, int port, const weft_net_opts *o);

/* Connects to a Unix domain socket at path (-EINVAL if too long). */
int weft_unix_connect(weft_conn **out, const char *path, const weft_net_opts *o);

/* ---- listening ------------------------------------------------------------ */

#define WEFT_REUSEPORT 1        /* SO_REUSEPORT: one listener per loop, same port */

/* Listens on host:port (host NULL or "" = all IPv4 and IPv6 addresses, port
 * 0 = any free port: see weft_listener_port). SO_REUSEADDR always. backlog
 * <= 0 gives 511. -EADDRINUSE, -EACCES, -EINVAL, -EPERM outside a task. */
int weft_tcp_listen(weft_listener **out, const char *host, int port, int backlog, int flags);

/* 0 when nothing holds host:port now, -EADDRINUSE when a socket does (a
 * listener of another process included, even one that set SO_REUSEPORT
 * and would otherwise share its connections with WEFT_REUSEPORT
 * listeners of ours), -EACCES, -EINVAL. Any thread, no task needed: call
 * it before starting the loops that listen with WEFT_REUSEPORT. */
int weft_tcp_port_check(const char *host, int port);

/* Listens on a Unix socket at path. A socket file nobody listens on (left
 * by an earlier run) is replaced; a path held by a live listener, or any
 * other file there, is -EADDRINUSE and stays as it was. (The check is a
 * connect: a live listener at path accepts one connection that ends at
 * once.) -EINVAL (path empty or too long), -EACCES, -EPERM outside a task. */
int weft_unix_listen(weft_listener **out, const char *path, int backlog);

/* Waits for the next connection (no default timeout: a server waits; the
 * scope and cancellation apply). o configures the accepted connection.
 * -ECANCELED, -ETIMEDOUT, -EBADF (the listener was closed),
 * -EMFILE/-ENFILE (out of fds), -EXDEV. */
int weft_accept(weft_listener *l, weft_conn **out, const weft_net_opts *o);

int weft_listener_port(const weft_listener *l);   /* the bound port, or -EINVAL */
int weft_listener_fd(const weft_listener *l);

/* Stops listening and frees l (once no task is inside weft_accept on it);
 * a task blocked in weft_accept gets -EBADF. NULL is ignored. */
void weft_listener_close(weft_listener *l);

/* ---- reading -------------------------------------------------------------- */

/* Reads what is available (at least 1 byte, waiting if none): returns the
 * count copied into buf (buffered bytes first), 0 at the end of stream. */
int weft_conn_read_some(weft_conn *c, void *buf, size_t len);

/* Reads exactly len bytes: 0, or -WEFT_EEOF when the stream ends first. */
int weft_conn_read_exact(weft_conn *c, void *buf, size_t len);

/* Reads up to and including the delimiter, without copying: *line points
 * into the read buffer (valid until the next call on c) and the count
 * (delimiter included) is returned; the bytes are consumed. -EMSGSIZE when
 * max bytes pass without the delimiter (max is capped by the read buffer
 * size; the buffer never grows past it), -WEFT_EEOF when the stream ends
 * first. */
int weft_conn_read_until(weft_conn *c, const char *delim, size_t dlen, size_t max,
                         const char **line);

/* Zero-copy access: *data points at the bytes buffered now (no I/O); the
 * count is returned. weft_conn_fill reads more (waiting if none is
 * available) and returns the buffered count, 0 at end of stream.
 * weft_conn_consume drops n bytes from the front. */
int weft_conn_peek(weft_conn *c, const char **data);
int weft_conn_fill(weft_conn *c);
void weft_conn_consume(weft_conn *c, size_t n);

/* Waits until c has something to read (buffered bytes, bytes in the
 * socket or its end), at most timeout, without reading it: 1 then, 0 when
 * timeout passed. Nothing was read, so a timeout breaks nothing (unlike a
 * read's). -ETIMEDOUT (scope), -ECANCELED, -EBADF (closed meanwhile), a
 * read's errors. For a server's keep-alive wait: after a while with
 * nothing coming, drop the buffers (weft_conn_shrink) and wait on. */
int weft_conn_wait_readable(weft_conn *c, weft_time timeout);

/* ---- writing -------------------------------------------------------------- */

/* Queues bytes in the write buffer (sending when it fills); 0 or error.
 * weft_conn_flush sends everything queued. */
int weft_conn_write(weft_conn *c, const void *buf, size_t len);
int weft_conn_flush(weft_conn *c);

/* Frees the write buffer when nothing is queued in it (the next queued
 * write makes it again): an idle connection then costs its read buffer. */
void weft_conn_shrink(weft_conn *c);

/* Writes all of buf (after anything queued) before returning. */
int weft_conn_write_all(weft_conn *c, const void *buf, size_t len);

/* Writes all the buffers in one system call where it can (header + body
 * without copying), after anything queued. */
int weft_conn_writev(weft_conn *c, const struct iovec *iov, int iovcnt);

/* Flushes, then shuts down the writing side (the peer reads end of stream). */
int weft_conn_shutdown(weft_conn *c);

/* ---- lifetime ------------------------------------------------------------- */

/* Changes the per-wait timeouts of c from now on (a blocking command or an
 * idle subscription needs a longer read timeout than a query); 0 keeps a
 * value, WEFT_FOREVER means none (the scope still applies). 0, -EINVAL
 * (negative), -EXDEV, -EPERM. */
int weft_conn_set_timeouts(weft_conn *c, weft_time read_timeout, weft_time write_timeout);

/* Closes at once (abortive: queued bytes are dropped) and frees c, by the
 * one close rule: a task blocked reading or writing c gets -EBADF and
 * touches nothing of c afterwards (c is freed when the last such task has
 * left). -EBADF from a call on c always means this. c must not be used
 * after this call. Call it from c's loop, or after that loop has ended.
 * NULL is ignored. */
void weft_conn_close(weft_conn *c);

/* For a connection about to be reused after a complete exchange: 1 when
 * bytes or the end of the stream wait that nobody asked for (buffered, in
 * the transport or in the socket), 0 when nothing came, or an error
 * (-WEFT_EBROKEN, the socket's). No syscall while the last read emptied a
 * plain socket and no read edge came since, as far as the loop has polled
 * (bytes still on their way cannot be told from an answer); otherwise it
 * peeks at the socket. */
int weft_conn_pending(weft_conn *c);

int weft_conn_fd(const weft_conn *c);
bool weft_conn_broken(const weft_conn *c);

#ifdef __cplusplus
}
#endif

#endif
