/* Private parts of the net layer shared by its files. */
#ifndef WEFT_NET_INTERNAL_H
#define WEFT_NET_INTERNAL_H

#include <sys/types.h>
#include <sys/uio.h>

#include "../core/kernel.h"
#include "weft/dns.h"
#include "weft/net.h"

/* What carries a conn's bytes: the plain socket (conn.c) or TLS (tls.c).
 * Each call is one attempt: a count, 0 (read: end of stream), -EAGAIN
 * with *want set to the direction to wait for (a TLS write may have to
 * wait for a read), or another error. The stream layer (conn.c) does the
 * waiting and knows nothing of TLS; tls.c installs itself on a conn. */
struct weft__transport {
    ssize_t (*read)(weft_conn *c, void *buf, size_t len, int *want);
    ssize_t (*writev)(weft_conn *c, const struct iovec *iov, int cnt, int *want);
    int (*shutdown)(weft_conn *c, int *want);   /* 0 once our side is closed */
    void (*free)(weft_conn *c);                 /* the transport's own state */
    bool (*buffered)(weft_conn *c);             /* bytes held that a read would return */
};

struct weft_conn {
    int fd;
    const struct weft__transport *tr;
    void *tp;                             /* the transport's state (TLS) */
    uint64_t loop;                        /* owning loop id */
    int broken;                           /* the error that broke it, or 0 */
    int rbroken;                          /* a read was interrupted: reads fail */
    unsigned waiting;                     /* tasks inside a wait on c */
    bool closed;                          /* freed by the last waiter to leave */
    bool eof;
    bool drained;                         /* the last read was short: wait first */
    bool flush_before_read;
    weft_time rto, wto;                   /* per-wait read / write timeouts */
    char *rbuf;
    size_t rcap, rpos, rlen;              /* buffered bytes: rbuf[rpos, rpos+rlen) */
    char *wbuf;
    size_t wcap, wlen;
};

/* default option values */
#define WEFT__CONNECT_TIMEOUT (10 * WEFT_SEC)
#define WEFT__IO_TIMEOUT (30 * WEFT_SEC)
#define WEFT__BUF_SIZE (16 * 1024)

/* a connection around a connected, non-blocking, loop-owned fd */
int weft__conn_new(weft_conn **out, int fd, const weft_net_opts *o);
/* 0 when the calling task may use c now */
int weft__conn_usable(const weft_conn *c);
/* Runs step until it stops asking to wait, waiting on c's fd in between
 * with c's timeouts (a read's or a write's, as `writing` says). step
 * returns -EAGAIN with *want set to wait; anything else ends the loop.
 * -EBADF when c is closed meanwhile (do not touch c then). */
int weft__conn_drive(weft_conn *c, bool writing, int (*step)(weft_conn *c, int *want));

#endif
