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
 */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
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

static int ctl(weft__loop *l, struct weft__fdstate *st, int fd, uint32_t events)
{
    struct epoll_event ev = { .events = events, .data.fd = fd };
    int op = st->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    int rc = epoll_ctl(l->epfd, op, fd, &ev);
    if (rc < 0 && errno == ENOENT)        /* closed and reopened behind our back */
        rc = epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev);
    else if (rc < 0 && errno == EEXIST)
        rc = epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev);
    if (rc < 0)
        return -errno;
    st->registered = true;
    return 0;
}

static int arm_foreign(weft__loop *l, struct weft__fdstate *st, int fd)
{
    uint32_t ev = (st->reader ? EPOLLIN | EPOLLRDHUP : 0) | (st->writer ? EPOLLOUT : 0);
    return ev ? ctl(l, st, fd, ev | EPOLLONESHOT) : 0;
}

void weft__fd_event(weft__loop *l, int fd, uint32_t events)
{
    if (fd >= l->nfds)
        return;
    struct weft__fdstate *st = &l->fds[fd];
    bool rd = events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR);
    bool wr = events & (EPOLLOUT | EPOLLHUP | EPOLLERR);
    if (rd && !st->reader && st->mode == FD_OWNED)
        st->rready = true;                /* kept for a reader that skips its EAGAIN */
    if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        st->rhup = true;                  /* its one edge may come with the last data */
    if (rd && st->reader) {
        weft__wake(st->reader, 0);
        st->reader = NULL;
    }
    if (wr && st->writer) {
        weft__wake(st->writer, 0);
        st->writer = NULL;
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

int weft_fd_wait(int fd, int events)
{
    weft__loop *l = weft__cur_loop;
    if (!l || !l->cur)
        return -EPERM;
    if (fd < 0 || !events || (events & ~(WEFT_READ | WEFT_WRITE)))
        return -EINVAL;
    int rc = weft__check(WEFT_FOREVER, 0);
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
        return 0;
    }
    if (rc) {
        if (st->reader == l->cur)
            st->reader = NULL;
        if (st->writer == l->cur)
            st->writer = NULL;
        return rc;
    }
    return park_on(l, fd, events, WEFT_FOREVER, 0);
}

void weft_fd_forget(int fd)
{
    weft__loop *l = weft__cur_loop;
    if (!l || fd < 0 || fd >= l->nfds)
        return;
    struct weft__fdstate *st = &l->fds[fd];
    if (st->registered)
        epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
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
    int rc = ctl(l, st, fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET);
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
    return rc ? rc : park_on(l, fd, events, op_deadline, op_err);
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
