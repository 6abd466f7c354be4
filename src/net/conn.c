/*
 * Buffered streams over a connected socket (weft_conn), plain or TLS: the
 * bytes go through the conn's transport (internal.h), the plain socket's
 * below or the one tls.c installs, so this layer knows nothing of TLS.
 *
 * The read buffer is filled with recv() until EAGAIN, then the task waits
 * for the next edge with the read timeout; read_until scans only the bytes
 * it has not scanned before. Writes collect in the write buffer and go out
 * with send()/sendmsg() (MSG_NOSIGNAL: a closed peer is -EPIPE, never
 * SIGPIPE); writev sends the queued bytes and the caller's buffers in one
 * call. Any wait that ends in a timeout or cancellation breaks the
 * connection, since the stream may now be cut mid-message.
 *
 * Closing follows the one close rule (kernel.h): a task blocked on the
 * conn gets -EBADF, and the last one to leave frees it.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"

static weft_time or_default(weft_time v, weft_time dflt) { return v ? v : dflt; }

/* ---- the plain socket transport ----------------------------------------- */

static ssize_t tcp_read(weft_conn *c, void *buf, size_t len, int *want)
{
    for (;;) {
        ssize_t n = recv(c->fd, buf, len, 0);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        *want = errno == EAGAIN ? WEFT_READ : 0;
        return -errno;
    }
}

static ssize_t tcp_writev(weft_conn *c, const struct iovec *iov, int cnt, int *want)
{
    struct msghdr mh = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)cnt };
    for (;;) {
        ssize_t n = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        *want = errno == EAGAIN ? WEFT_WRITE : 0;
        return -errno;
    }
}

static int tcp_shutdown(weft_conn *c, int *want)
{
    *want = 0;
    return shutdown(c->fd, SHUT_WR) < 0 ? -errno : 0;
}

static void tcp_free(weft_conn *c) { (void)c; }

static bool tcp_buffered(weft_conn *c) { (void)c; return false; }

static const struct weft__transport tcp = { tcp_read, tcp_writev, tcp_shutdown, tcp_free,
                                            tcp_buffered };

/* ---- lifetime ----------------------------------------------------------- */

int weft__conn_new(weft_conn **out, int fd, const weft_net_opts *o)
{
    weft_net_opts none = { 0 };
    if (!o)
        o = &none;
    weft_conn *c = weft__calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->fd = fd;
    c->tr = &tcp;
    c->loop = weft__loop_id();
    c->rto = or_default(o->read_timeout, WEFT__IO_TIMEOUT);
    c->wto = or_default(o->write_timeout, WEFT__IO_TIMEOUT);
    c->flush_before_read = o->flush_before_read;
    c->rcap = o->rbuf_size ? o->rbuf_size : WEFT__BUF_SIZE;
    c->wcap = o->wbuf_size ? o->wbuf_size : WEFT__BUF_SIZE;
    c->rbuf = weft__malloc(c->rcap);      /* the write buffer waits for a write */
    if (!c->rbuf) {
        weft__free(c);
        return -ENOMEM;
    }
    *out = c;
    return 0;
}

static void conn_free(weft_conn *c)
{
    weft__mem_released(c->rcap + (c->wbuf ? c->wcap : 0));   /* thousands closing: a burst */
    weft__free(c->rbuf);
    weft__free(c->wbuf);
    weft__free(c);
}

/* The close rule (kernel.h): the fd and the transport go at once, and the
 * tasks waiting on c are handed -EBADF by the fd wait; c itself is freed by
 * the last of them to leave, since each still looks at c as it wakes. */
void weft_conn_close(weft_conn *c)
{
    if (!c || c->closed)
        return;
    c->closed = true;
    c->tr->free(c);
    if (weft__loop_id() == c->loop)
        weft__fd_close(c->fd);
    else
        close(c->fd);                     /* its loop is gone: nothing registered */
    c->fd = -1;
    if (!c->waiting)
        conn_free(c);
}

/* 0 when the calling task may use c now */
int weft__conn_usable(const weft_conn *c)
{
    if (!c)
        return -EINVAL;
    int rc = weft__owner_check(c->loop);
    if (rc)
        return rc;
    if (unlikely(c->closed))
        return -EBADF;                    /* misuse, while a waiter keeps it alive */
    return c->broken || c->rbroken ? -WEFT_EBROKEN : 0;
}

/* writes stay possible after an interrupted read (a server's 408) */
static int writable(const weft_conn *c)
{
    int rc = weft__conn_usable(c);
    return rc == -WEFT_EBROKEN && !c->broken ? 0 : rc;
}

int weft_conn_set_timeouts(weft_conn *c, weft_time read_timeout, weft_time write_timeout)
{
    int rc = c ? weft__owner_check(c->loop) : -EINVAL;
    if (rc)
        return rc;
    if (read_timeout < 0 || write_timeout < 0)
        return -EINVAL;
    if (read_timeout)
        c->rto = read_timeout;
    if (write_timeout)
        c->wto = write_timeout;
    return 0;
}

/* After EAGAIN: waits for the next edge in `want`. A wait interrupted by a
 * timeout or a cancel breaks c (a read's only its reading side). -EBADF
 * when c was closed meanwhile: the caller must not touch c then. */
static int wait_io(weft_conn *c, int want, bool writing)
{
    c->waiting++;
    int rc = weft__fd_wait_io(c->fd, want, weft__after(writing ? c->wto : c->rto),
                              writing ? -WEFT_EWRITE_TIMEOUT : -WEFT_EREAD_TIMEOUT);
    c->waiting--;
    if (unlikely(c->closed)) {
        if (!c->waiting)
            conn_free(c);
        return -EBADF;
    }
    if (rc == -EBUSY)
        return rc;                        /* another task waits that way: c is fine */
    if (rc == -EBADF)
        rc = -ECONNABORTED;               /* its fd was forgotten under it, not closed */
    if (rc && writing)
        c->broken = rc;
    else if (rc)
        c->rbroken = rc;
    return rc;
}

int weft__conn_drive(weft_conn *c, bool writing, int (*step)(weft_conn *c, int *want))
{
    for (;;) {
        int want = 0, rc = step(c, &want);
        if (rc == -EBADF)
            return -ECONNABORTED;         /* -EBADF means closed, and c is alive */
        if (rc != -EAGAIN || !want)
            return rc;
        if ((rc = wait_io(c, want, writing)))
            return rc;
    }
}

static int flush_queued(weft_conn *c);

/* One read from the transport into buf, waiting while nothing is there:
 * the count (> 0), 0 at end of stream, or an error (which breaks c). */
static int read_raw(weft_conn *c, void *buf, size_t len)
{
    int rc;
    if (c->flush_before_read && c->wlen && (rc = flush_queued(c)))
        return rc;
    if (c->drained && c->tr == &tcp) {
        /* the last recv emptied the socket: a recv now would most likely
         * say EAGAIN, so wait for the edge first (kept if it came already) */
        c->drained = false;
        if ((rc = wait_io(c, WEFT_READ, false)))
            return rc;
    }
    for (;;) {
        int want = 0;
        ssize_t n = c->tr->read(c, buf, len, &want);
        if (n > 0) {
            c->drained = (size_t)n < len;
            return (int)n;
        }
        if (n == 0) {
            c->eof = true;
            return 0;
        }
        if (!want)
            return c->broken = (int)n;
        if ((rc = wait_io(c, want, false)))
            return rc;
    }
}

/* One read that never waits: 1 bytes came (or the end), 0 nothing there
 * now (EAGAIN), or an error, which breaks c as any read's does. */
static int fill_now(weft_conn *c)
{
    if (c->rpos && c->rpos + c->rlen == c->rcap) {
        memmove(c->rbuf, c->rbuf + c->rpos, c->rlen);
        c->rpos = 0;
    }
    size_t room = c->rcap - c->rpos - c->rlen;
    if (!room || c->eof)
        return 1;
    int want = 0;
    ssize_t n = c->tr->read(c, c->rbuf + c->rpos + c->rlen, room, &want);
    if (n > 0) {
        c->rlen += (size_t)n;
        c->drained = (size_t)n < room;
        return 1;
    }
    if (n == 0) {
        c->eof = true;
        return 1;
    }
    if (!want)
        return c->rbroken = (int)n;
    c->drained = true;                    /* emptied: wait for the edge */
    return 0;
}

/* Reads more into the buffer: the buffered count (> 0), 0 at end of
 * stream (or when the buffer is full), or an error. */
static int fill(weft_conn *c)
{
    if (c->rpos && c->rpos + c->rlen == c->rcap) {   /* make room at the end */
        memmove(c->rbuf, c->rbuf + c->rpos, c->rlen);
        c->rpos = 0;
    }
    size_t room = c->rcap - c->rpos - c->rlen;
    if (!room || c->eof)
        return 0;
    int n = read_raw(c, c->rbuf + c->rpos + c->rlen, room);
    if (n > 0)
        c->rlen += (size_t)n;
    return n > 0 ? (int)c->rlen : n;
}

int weft_conn_peek(weft_conn *c, const char **data)
{
    if (!c || !data)
        return -EINVAL;
    *data = c->rbuf + c->rpos;
    return (int)c->rlen;
}

/* The socket needs asking only when the last read may have left bytes in
 * it or an edge came since: a plain socket's short recv emptied it, and
 * anything that arrives after raises an edge the fd layer keeps. TLS reads
 * a record at a time, so the socket may hold more after a short read. */
int weft_conn_pending(weft_conn *c)
{
    int rc = weft__conn_usable(c);
    if (rc)
        return rc;
    if (c->rlen || c->eof || c->tr->buffered(c))
        return 1;
    if (c->tr == &tcp && c->drained && !weft__fd_read_edge(c->fd))
        return 0;
    char b;
    ssize_t n;
    while ((n = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT)) < 0 && errno == EINTR)
        ;
    return n >= 0 ? 1 : errno == EAGAIN ? 0 : -errno;   /* 0: the end of the stream */
}

void weft_conn_consume(weft_conn *c, size_t n)
{
    if (!c)
        return;
    if (n > c->rlen)
        n = c->rlen;
    c->rpos += n;
    c->rlen -= n;
    if (!c->rlen)
        c->rpos = 0;
}

int weft_conn_fill(weft_conn *c)
{
    int rc = weft__conn_usable(c);
    if (rc)
        return rc;
    if (c->rlen == c->rcap)
        return -EMSGSIZE;                 /* consume first */
    rc = fill(c);
    return rc < 0 ? rc : (int)c->rlen;
}

int weft_conn_wait_readable(weft_conn *c, weft_time timeout)
{
    int rc = weft__conn_usable(c);
    if (rc)
        return rc;
    if (c->rlen || c->eof || c->tr->buffered(c))
        return 1;
    if (!c->drained) {
        /* the last read filled what it was given: bytes may wait in the
         * socket with no edge to come, so look before waiting for one */
        if ((rc = fill_now(c)) != 0)
            return rc < 0 ? rc : 1;
    }
    c->waiting++;
    rc = weft__fd_wait_io(c->fd, WEFT_READ, weft__after(timeout), -EAGAIN);
    c->waiting--;
    if (unlikely(c->closed)) {
        if (!c->waiting)
            conn_free(c);
        return -EBADF;
    }
    c->drained = false;                   /* the edge is taken: the next read looks first */
    if (rc == -EAGAIN)
        return 0;                         /* nothing read, nothing broken */
    if (rc == -EBADF)
        rc = -ECONNABORTED;
    return rc ? rc : 1;
}

void weft_conn_shrink(weft_conn *c)
{
    if (c && !c->wlen && c->wbuf && weft__owner_check(c->loop) == 0) {
        weft__mem_released(c->wcap);
        weft__free(c->wbuf);
        c->wbuf = NULL;
    }
}

int weft_conn_read_some(weft_conn *c, void *buf, size_t len)
{
    int rc = weft__conn_usable(c);
    if (rc)
        return rc;
    if (!buf && len)
        return -EINVAL;
    if (!c->rlen && len) {
        /* large reads skip the buffer (and a copy) */
        if (len >= c->rcap / 4 && !c->eof)
            return read_raw(c, buf, len > INT32_MAX ? INT32_MAX : len);
        if ((rc = fill(c)) <= 0)
            return rc;
    }
    size_t n = len < c->rlen ? len : c->rlen;
    memcpy(buf, c->rbuf + c->rpos, n);
    weft_conn_consume(c, n);
    return (int)n;
}

int weft_conn_read_exact(weft_conn *c, void *buf, size_t len)
{
    char *p = buf;
    while (len) {
        int n = weft_conn_read_some(c, p, len);
        if (n < 0)
            return n;
        if (n == 0)
            return -WEFT_EEOF;
        p += n;
        len -= (size_t)n;
    }
    return weft__conn_usable(c);
}

int weft_conn_read_until(weft_conn *c, const char *delim, size_t dlen, size_t max,
                         const char **line)
{
    int rc = weft__conn_usable(c);
    if (rc)
        return rc;
    if (!delim || !dlen || !line)
        return -EINVAL;
    if (max > c->rcap)
        max = c->rcap;
    size_t scanned = 0;
    for (;;) {
        size_t avail = c->rlen < max ? c->rlen : max;
        if (avail >= dlen) {
            size_t from = scanned >= dlen ? scanned - dlen + 1 : 0;
            char *hit = memmem(c->rbuf + c->rpos + from, avail - from, delim, dlen);
            if (hit) {
                size_t n = (size_t)(hit - (c->rbuf + c->rpos)) + dlen;
                *line = c->rbuf + c->rpos;
                c->rpos += n;                 /* consumed, still readable via *line */
                c->rlen -= n;
                return (int)n;
            }
            scanned = avail;
        }
        if (c->rlen >= max)
            return -EMSGSIZE;
        if ((rc = fill(c)) < 0)
            return rc;
        if (rc == 0)
            return -WEFT_EEOF;
    }
}

/* ---- writing ------------------------------------------------------------ */

/* Sends iov until all is out; partial writes advance through the array. */
static int send_all(weft_conn *c, struct iovec *iov, int cnt)
{
    while (cnt > 0) {
        int want = 0;
        ssize_t n = c->tr->writev(c, iov, cnt, &want);
        if (n < 0) {
            if (!want)
                return c->broken = (int)n;
            int rc = wait_io(c, want, true);
            if (rc)
                return rc;
            continue;
        }
        while (cnt > 0 && (size_t)n >= iov->iov_len) {
            n -= (ssize_t)iov->iov_len;
            iov++;
            cnt--;
        }
        if (cnt > 0) {
            iov->iov_base = (char *)iov->iov_base + n;
            iov->iov_len -= (size_t)n;
        }
    }
    return 0;
}

static int flush_queued(weft_conn *c)
{
    struct iovec iov = { c->wbuf, c->wlen };
    int rc = send_all(c, &iov, 1);
    if (rc == 0)
        c->wlen = 0;
    return rc;
}

int weft_conn_flush(weft_conn *c)
{
    int rc = writable(c);
    return rc || !c->wlen ? rc : flush_queued(c);
}

int weft_conn_writev(weft_conn *c, const struct iovec *iov, int iovcnt)
{
    int rc = writable(c);
    if (rc)
        return rc;
    if (iovcnt < 0 || (iovcnt && !iov) || iovcnt > 63)
        return -EINVAL;
    struct iovec v[64];
    int n = 0;
    if (c->wlen)
        v[n++] = (struct iovec){ c->wbuf, c->wlen };
    for (int i = 0; i < iovcnt; i++)
        if (iov[i].iov_len)
            v[n++] = iov[i];
    rc = send_all(c, v, n);
    if (rc == 0)
        c->wlen = 0;
    return rc;
}

int weft_conn_write(weft_conn *c, const void *buf, size_t len)
{
    int rc = writable(c);
    if (rc)
        return rc;
    if (!buf && len)
        return -EINVAL;
    if (!len)
        return 0;
    if (!c->wbuf && len < c->wcap)
        c->wbuf = weft__malloc(c->wcap);  /* without one, bytes go out now */
    if (c->wbuf && len <= c->wcap - c->wlen) {
        memcpy(c->wbuf + c->wlen, buf, len);
        c->wlen += len;
        return 0;
    }
    struct iovec iov = { (void *)buf, len };
    return weft_conn_writev(c, &iov, 1);      /* queued bytes, then buf */
}

int weft_conn_write_all(weft_conn *c, const void *buf, size_t len)
{
    struct iovec iov = { (void *)buf, len };
    return weft_conn_writev(c, &iov, 1);
}

static int shutdown_step(weft_conn *c, int *want) { return c->tr->shutdown(c, want); }

int weft_conn_shutdown(weft_conn *c)
{
    int rc = weft_conn_flush(c);
    return rc ? rc : weft__conn_drive(c, true, shutdown_step);
}

int weft_conn_fd(const weft_conn *c) { return c ? c->fd : -EINVAL; }
bool weft_conn_broken(const weft_conn *c) { return c && (c->broken || c->rbroken); }
