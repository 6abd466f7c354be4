/*
 * Waiting for file descriptors.
 *
 * Two kinds of fd, one table (indexed by fd, per loop):
 *
 *  - foreign fds (weft_fd_wait: libpq, c-ares, a user's fd) get level
 *    semantics: each wait (re)arms the fd with EPOLLONESHOT for the
 *    directions someone waits on, so an fd that is already ready fires at
 *    once, and an fd nobody waits on costs no wake-ups. One epoll_ctl per
 *    wait; weft_fd_forget(fd) must precede close(fd).
 *
 *  - fds weft owns (its sockets, through the net layer) are registered once,
 *    edge-triggered for both directions. I/O is tried until EAGAIN and only
 *    then waits (weft__fd_wait_io): any byte or buffer space that arrives
 *    after the EAGAIN raises a new edge, and a busy socket costs no
 *    epoll_ctl at all. A read edge that comes while nobody waits is kept,
 *    so a reader may also wait *before* trying (after a short read, when
 *    the socket is most likely empty) and skip a recv that would say EAGAIN.
 *
 * A wait ends with the events that fired (WEFT__WAKE_FD | WEFT_READ/WRITE)
 * as its wake result; the OS API is the poller backend's (epoll.c).
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

enum { FD_NONE, FD_FOREIGN, FD_OWNED };

struct weft__fdstate {
    weft_task *reader, *writer;
    uint8_t mode;
    bool registered;
    bool rready;                          /* FD_OWNED: an edge came while no reader waited */
    bool rhup;                            /* FD_OWNED: end of stream or error seen: sticky */
};

static struct weft__fdstate *fd_state(weft__loop *l, int fd)
{
    if (fd >= l->nfds) {
        int n = l->nfds ? l->nfds : 64;
        while (n <= fd)
            n *= 2;
        struct weft__fdstate *v = weft__realloc(l->fds, n * sizeof *v);
        if (!v)
            return NULL;
        memset(v + l->nfds, 0, (n - l->nfds) * sizeof *v);
        l->fds = v;
        l->nfds = n;
    }
    return &l->fds[fd];
}

/* wake results of fd waits: the fired directions, above the timer's */
#define WEFT__WAKE_FD 0x10

static int ctl(weft__loop *l, struct weft__fdstate *st, int fd, unsigned how)
{
    int rc = weft__poller_arm(l, fd, how, st->registered);
    if (rc == 0)
        st->registered = true;
    return rc;
}

static int arm_foreign(weft__loop *l, struct weft__fdstate *st, int fd)
{
    unsigned how = (st->reader ? WEFT__POLL_IN : 0) | (st->writer ? WEFT__POLL_OUT : 0);
    return how ? ctl(l, st, fd, how | WEFT__POLL_ONESHOT) : 0;
}

void weft__fd_event(weft__loop *l, int fd, unsigned events)
{
    if (fd >= l->nfds)
        return;
    struct weft__fdstate *st = &l->fds[fd];
    /* the peer's end of writing ends read waits; a full hang-up or an
     * error ends waits in both directions: the next read or write reports it */
    bool hup = events & WEFT__POLL_HUP, err = events & WEFT__POLL_ERR;
    int fired = (events & WEFT__POLL_IN || hup || err ? WEFT_READ : 0) |
                (events & WEFT__POLL_OUT || err ? WEFT_WRITE : 0);
    if ((fired & WEFT_READ) && !st->reader && st->mode == FD_OWNED)
        st->rready = true;                /* kept for a reader that skips its EAGAIN */
    if (hup)
        st->rhup = true;                  /* its one edge may come with the last data */
    /* a task waiting both ways is woken once, with both directions */
    weft_task *r = st->reader, *w = st->writer;
    int both = r == w ? WEFT_READ | WEFT_WRITE : 0;
    if (r && (fired & (WEFT_READ | (both & WEFT_WRITE)))) {
        st->reader = NULL;
        if (both)
            st->writer = w = NULL;
        weft__wake(r, WEFT__WAKE_FD | (fired & (both ? both : WEFT_READ)));
    }
    if (w && (fired & WEFT_WRITE)) {
        st->writer = NULL;
        weft__wake(w, WEFT__WAKE_FD | WEFT_WRITE);
    }
    if (st->mode == FD_FOREIGN && (st->reader || st->writer))
        arm_foreign(l, st, fd);           /* one-shot fired for the other side */
}

/* Parks self as reader and/or writer of fd; cleans up after a timeout. */
static int park_on(weft__loop *l, int fd, int events, weft_time op_deadline, int op_err)
{
    weft_task *self = l->cur;
    l->fd_waits++;
    int rc = weft__wait(op_deadline, op_err, events & WEFT_WRITE ? "fd write" : "fd read");
    l->fd_waits--;
    if (rc >= WEFT__WAKE_FD)
        rc &= WEFT_READ | WEFT_WRITE;     /* the directions that fired */
    struct weft__fdstate *st = &l->fds[fd];   /* the table may have moved */
    if (st->reader == self)
        st->reader = NULL;
    if (st->writer == self)
        st->writer = NULL;
    return rc;
}

static int claim(struct weft__fdstate *st, weft_task *self, int events)
{
    if (((events & WEFT_READ) && st->reader) || ((events & WEFT_WRITE) && st->writer))
        return -EBUSY;
    if (events & WEFT_READ)
        st->reader = self;
    if (events & WEFT_WRITE)
        st->writer = self;
    return 0;
}

/* timeout 0: look without waiting */
static int ready_now(int fd, int events, int timeout_err)
{
    int rc = weft__check(WEFT_FOREVER, 0);
    if (rc)
        return rc;
    struct pollfd p = { fd, (short)((events & WEFT_READ ? POLLIN : 0) |
                                    (events & WEFT_WRITE ? POLLOUT : 0)), 0 };
    if (poll(&p, 1, 0) < 0)
        return -errno;
    if (p.revents & POLLNVAL)
        return -EBADF;
    bool hup = p.revents & (POLLHUP | POLLERR);
    int fired = ((p.revents & POLLIN) || hup ? WEFT_READ : 0) |
                ((p.revents & POLLOUT) || hup ? WEFT_WRITE : 0);
    fired &= events;
    return fired ? fired : timeout_err;
}

int weft_fd_wait_for(int fd, int events, weft_time timeout, int timeout_err)
{
    weft__loop *l = weft__cur_loop;
    if (!l || !l->cur)
        return -EPERM;
    if (fd < 0 || !events || (events & ~(WEFT_READ | WEFT_WRITE)) || timeout < 0 ||
        timeout_err >= 0)
        return -EINVAL;
    if (timeout == 0)
        return ready_now(fd, events, timeout_err);
    weft_time deadline = weft__after(timeout);
    int rc = weft__check(deadline, timeout_err);
    if (rc)
        return rc;
    struct weft__fdstate *st = fd_state(l, fd);
    if (!st)
        return -ENOMEM;
    if (st->mode == FD_OWNED)
        return -EBUSY;
    if ((rc = claim(st, l->cur, events)))
        return rc;
    st->mode = FD_FOREIGN;
    rc = arm_foreign(l, st, fd);
    if (rc == -EPERM) {                   /* regular file: always ready */
        st->reader = st->writer = NULL;
        return events;
    }
    if (rc) {
        if (st->reader == l->cur)
            st->reader = NULL;
        if (st->writer == l->cur)
            st->writer = NULL;
        return rc;
    }
    return park_on(l, fd, events, deadline, timeout_err);
}

int weft_fd_wait(int fd, int events)
{
    int rc = weft_fd_wait_for(fd, events, WEFT_FOREVER, -ETIMEDOUT);
    return rc > 0 ? 0 : rc;
}

void weft_fd_forget(int fd)
{
    weft__loop *l = weft__cur_loop;
    if (!l || fd < 0 || fd >= l->nfds)
        return;
    struct weft__fdstate *st = &l->fds[fd];
    if (st->registered)
        weft__poller_forget(l, fd);
    if (st->reader)
        weft__wake(st->reader, -EBADF);
    if (st->writer)
        weft__wake(st->writer, -EBADF);
    memset(st, 0, sizeof *st);
}

/* ---- fds weft owns (net layer) ------------------------------------------ */

int weft__fd_own(int fd)
{
    weft__loop *l = weft__cur_loop;
    if (!l)
        return -EPERM;
    struct weft__fdstate *st = fd_state(l, fd);
    if (!st)
        return -ENOMEM;
    if (st->reader)                       /* waits on an earlier fd of this number */
        weft__wake(st->reader, -EBADF);
    if (st->writer)
        weft__wake(st->writer, -EBADF);
    /* nothing of an earlier fd of this number (closed without
     * weft_fd_forget) may survive: a stale hang-up made reads spin */
    *st = (struct weft__fdstate){ .registered = st->registered };
    int rc = ctl(l, st, fd, WEFT__POLL_IN | WEFT__POLL_OUT | WEFT__POLL_EDGE);
    if (rc)
        return rc;
    st->mode = FD_OWNED;
    return 0;
}

int weft__fd_wait_io(int fd, int events, weft_time op_deadline, int op_err)
{
    weft__loop *l = weft__cur_loop;
    if (!l || !l->cur)
        return -EPERM;
    if (fd < 0 || fd >= l->nfds || l->fds[fd].mode != FD_OWNED)
        return -EBADF;
    struct weft__fdstate *st = &l->fds[fd];
    if (events == WEFT_READ && (st->rready || st->rhup)) {
        st->rready = false;               /* an edge already came: go read */
        return weft__check(op_deadline, op_err);
    }
    int rc = claim(st, l->cur, events);
    if (rc || (rc = park_on(l, fd, events, op_deadline, op_err)) < 0)
        return rc;
    return 0;
}

bool weft__fd_read_edge(int fd)
{
    weft__loop *l = weft__cur_loop;
    if (!l || fd < 0 || fd >= l->nfds || l->fds[fd].mode != FD_OWNED)
        return true;
    return l->fds[fd].rready || l->fds[fd].rhup;
}

void weft__fd_close(int fd)
{
    if (fd < 0)
        return;
    weft_fd_forget(fd);
    close(fd);
}

void weft__fds_free(weft__loop *l)
{
    weft__free(l->fds);
    l->fds = NULL;
    l->nfds = 0;
}
