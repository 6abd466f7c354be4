/* Private parts of the net layer shared by its files. */
#ifndef WEFT_NET_INTERNAL_H
#define WEFT_NET_INTERNAL_H

#include "../core/internal.h"
#include "weft/dns.h"
#include "weft/net.h"

struct weft__tls;

struct weft_conn {
    int fd;
    struct weft__tls *tls;                /* NULL for plain TCP/Unix */
    uint64_t loop;                        /* owning loop id */
    int broken;                           /* the error that broke it, or 0 */
    int rbroken;                          /* a read was interrupted: reads fail */
    bool eof;
    bool drained;                         /* the last read was short: wait first */
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
/* 0 when the calling task may use c now; waits after EAGAIN/WANT_* */
int weft__conn_usable(const weft_conn *c);
int weft__conn_wait(weft_conn *c, int events);

/* tls.c: one attempt each; < 0 with *want set means wait for that, < 0
 * with *want 0 is an error */
ssize_t weft__tls_read(weft_conn *c, void *buf, size_t len, int *want);
ssize_t weft__tls_write(weft_conn *c, const void *buf, size_t len, int *want);
int weft__tls_shutdown(weft_conn *c);
void weft__tls_free(weft_conn *c);

/* forget and close an fd owned by the loop */
void weft__fd_close(int fd);
/* the deadline for one wait of `timeout` from now */
weft_time weft__after(weft_time timeout);

#endif
