/* Private parts of the net layer shared by its files. */
#ifndef WEFT_NET_INTERNAL_H
#define WEFT_NET_INTERNAL_H

#include "../core/internal.h"
#include "weft/dns.h"
#include "weft/net.h"

struct weft_conn {
    int fd;
    uint64_t loop;                        /* owning loop id */
    int broken;                           /* the error that broke it, or 0 */
    bool eof;
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
/* forget and close an fd owned by the loop */
void weft__fd_close(int fd);
/* the deadline for one wait of `timeout` from now */
weft_time weft__after(weft_time timeout);

#endif
