/*
 * The poller backend: the one file that knows the OS readiness API
 * (epoll). The loop and the fd table speak in WEFT__POLL_* bits; io_uring
 * (DESIGN.md) would be another file behind the same five functions.
 *
 * Each loop has an epoll instance and an eventfd through which other
 * threads wake its poll (weft__poller_poke).
 */
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define MAX_EVENTS 256

int weft__poller_open(weft__loop *l)
{
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    l->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.fd = l->evfd };
    if (l->epfd >= 0 && l->evfd >= 0 && epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->evfd, &ev) == 0)
        return 0;
    int rc = -(errno ? errno : ENOMEM);
    weft__poller_close(l);
    return rc;
}

void weft__poller_close(weft__loop *l)
{
    if (l->epfd >= 0)
        close(l->epfd);
    if (l->evfd >= 0)
        close(l->evfd);
    l->epfd = l->evfd = -1;
}

static uint32_t to_epoll(unsigned how)
{
    return (how & WEFT__POLL_IN ? EPOLLIN | EPOLLRDHUP : 0) | (how & WEFT__POLL_OUT ? EPOLLOUT : 0) |
           (how & WEFT__POLL_EDGE ? EPOLLET : 0) | (how & WEFT__POLL_ONESHOT ? EPOLLONESHOT : 0);
}

int weft__poller_arm(weft__loop *l, int fd, unsigned how, bool registered)
{
    struct epoll_event ev = { .events = to_epoll(how), .data.fd = fd };
    int rc = epoll_ctl(l->epfd, registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev);
    if (rc < 0 && errno == ENOENT)        /* closed and reopened behind our back */
        rc = epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev);
    else if (rc < 0 && errno == EEXIST)
        rc = epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev);
    return rc < 0 ? -errno : 0;
}

void weft__poller_forget(weft__loop *l, int fd) { epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL); }

void weft__poller_poke(weft__loop *l)
{
    uint64_t one = 1;
    while (write(l->evfd, &one, sizeof one) < 0 && errno == EINTR)
        ;
}

static unsigned from_epoll(uint32_t e)
{
    return (e & (EPOLLIN | EPOLLRDHUP) ? WEFT__POLL_IN : 0) | (e & EPOLLOUT ? WEFT__POLL_OUT : 0) |
           (e & (EPOLLRDHUP | EPOLLHUP | EPOLLERR) ? WEFT__POLL_HUP : 0) |
           (e & (EPOLLHUP | EPOLLERR) ? WEFT__POLL_ERR : 0);
}

/* Waits up to timeout (WEFT_FOREVER: no limit, 0: just look) and hands
 * each event to the fd table, and a poke to the loop's inbox; the count
 * of events. */
int weft__poller_wait(weft__loop *l, weft_time timeout)
{
    struct epoll_event ev[MAX_EVENTS];
    struct timespec ts, *tsp = NULL;
    if (timeout != WEFT_FOREVER) {
        if (timeout < 0)
            timeout = 0;
        ts.tv_sec = timeout / WEFT_SEC;
        ts.tv_nsec = timeout % WEFT_SEC;
        tsp = &ts;
    }
    int n = epoll_pwait2(l->epfd, ev, MAX_EVENTS, tsp, NULL);
    if (n < 0 && errno == ENOSYS) {
        /* kernels before 5.11: round up so a deadline is never early */
        weft_time ms = tsp ? timeout / WEFT_MS + (timeout % WEFT_MS != 0) : -1;
        if (ms > INT32_MAX)
            ms = INT32_MAX;
        n = epoll_wait(l->epfd, ev, MAX_EVENTS, (int)ms);
    }
    for (int i = 0; i < n; i++) {
        if (ev[i].data.fd == l->evfd) {
            uint64_t v;
            while (read(l->evfd, &v, sizeof v) < 0 && errno == EINTR)
                ;
            weft__inbox_drain(l);
        } else {
            weft__fd_event(l, ev[i].data.fd, from_epoll(ev[i].events));
        }
    }
    return n > 0 ? n : 0;
}
