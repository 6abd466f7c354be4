/*
 * Sockets: TCP and Unix connect, listen and accept.
 *
 * Every socket is created non-blocking and close-on-exec and registered
 * with the calling loop once, edge-triggered (weft__fd_own). A connect
 * tries each resolved address in turn under one deadline: the earliest of
 * the scope's and the connect timeout.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "internal.h"

/* Closing follows the one close rule: weft_listener_close marks the
 * listener closed and forgets its fd (a parked acceptor wakes with
 * -EBADF); the memory goes when the last task inside weft_accept has left,
 * since an acceptor already woken by a connection may not have run yet. */
struct weft_listener {
    int fd;
    uint64_t loop;
    int port;
    int acceptors;                        /* tasks inside weft_accept */
    bool closed;
};

/* A fresh non-blocking fd (or -1 with errno set) registered with the loop:
 * the fd, or the error (the fd closed). */
static int owned(int fd)
{
    if (fd < 0)
        return -errno;
    int rc = weft__fd_own(fd);
    if (rc) {
        close(fd);
        return rc;
    }
    return fd;
}

static int new_socket(int family, int type)
{
    return owned(socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
}

/* One connect attempt; on success the fd is returned. */
static int connect_one(const struct sockaddr *sa, socklen_t len, weft_time deadline,
                       bool nodelay)
{
    int fd = new_socket(sa->sa_family, SOCK_STREAM);
    if (fd < 0)
        return fd;
    int rc = 0;
    if (connect(fd, sa, len) < 0) {
        if (errno != EINPROGRESS) {
            rc = -errno;
        } else if (!(rc = weft__fd_wait_io(fd, WEFT_WRITE, deadline, -WEFT_ECONNECT_TIMEOUT))) {
            int err = 0;
            socklen_t el = sizeof err;
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
            rc = -err;
        }
    }
    if (rc) {
        weft__fd_close(fd);
        return rc;
    }
    if (nodelay && sa->sa_family != AF_UNIX) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    return fd;
}

static int finish(weft_conn **out, int fd, const weft_net_opts *o)
{
    int rc = weft__conn_new(out, fd, o);
    if (rc)
        weft__fd_close(fd);
    return rc;
}

int weft_tcp_connect(weft_conn **out, const char *host, int port, const weft_net_opts *o)
{
    if (!weft_self())
        return -EPERM;
    if (!out || !host || !*host || port <= 0 || port > 65535)
        return -EINVAL;
    weft_time timeout = o && o->connect_timeout ? o->connect_timeout : WEFT__CONNECT_TIMEOUT;
    weft_time deadline = weft__after(timeout);
    weft_addr addrs[WEFT_DNS_MAX_ADDRS];
    int n = weft_dns_resolve(host, port, addrs, WEFT_DNS_MAX_ADDRS, timeout);
    if (n == -ETIMEDOUT && weft_deadline() > deadline)
        return -WEFT_ECONNECT_TIMEOUT;    /* our timeout, not the scope's */
    if (n < 0)
        return n;
    int rc = -WEFT_ENOADDR;
    for (int i = 0; i < n; i++) {
        rc = connect_one((struct sockaddr *)&addrs[i].ss, addrs[i].len, deadline,
                         !(o && o->no_nodelay));
        if (rc >= 0 || rc == -ECANCELED || rc == -ETIMEDOUT || rc == -WEFT_ECONNECT_TIMEOUT)
            break;                        /* connected, or out of time */
    }
    return rc < 0 ? rc : finish(out, rc, o);
}

static int unix_addr(struct sockaddr_un *sun, const char *path)
{
    if (!path || !*path || strlen(path) >= sizeof sun->sun_path)
        return -EINVAL;
    memset(sun, 0, sizeof *sun);
    sun->sun_family = AF_UNIX;
    strcpy(sun->sun_path, path);
    return 0;
}

int weft_unix_connect(weft_conn **out, const char *path, const weft_net_opts *o)
{
    struct sockaddr_un sun;
    if (!weft_self())
        return -EPERM;
    int rc = out ? unix_addr(&sun, path) : -EINVAL;
    if (rc)
        return rc;
    weft_time deadline = weft__after(o && o->connect_timeout ? o->connect_timeout
                                                             : WEFT__CONNECT_TIMEOUT);
    rc = connect_one((struct sockaddr *)&sun, sizeof sun, deadline, false);
    return rc < 0 ? rc : finish(out, rc, o);
}

/* ---- listening ---------------------------------------------------------- */

static int listener_new(weft_listener **out, int fd, int backlog)
{
    if (listen(fd, backlog > 0 ? backlog : 511) < 0) {
        int rc = -errno;
        weft__fd_close(fd);
        return rc;
    }
    weft_listener *l = weft__calloc(1, sizeof *l);
    if (!l) {
        weft__fd_close(fd);
        return -ENOMEM;
    }
    l->fd = fd;
    l->loop = weft__loop_id();
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET)
            l->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        else if (ss.ss_family == AF_INET6)
            l->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    *out = l;
    return 0;
}

/* A TCP socket bound to host:port (not yet listening): its fd, or an
 * error. own: registered with the calling loop (else a plain socket). */
static int tcp_bind(const char *host, int port, int flags, bool own)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE | AI_NUMERICSERV }, *ai;
    char svc[8];
    snprintf(svc, sizeof svc, "%d", port);
    bool any = !host || !*host;
    if (any)
        hints.ai_family = AF_INET6;       /* dual-stack: IPv4 and IPv6 */
    else
        hints.ai_flags |= AI_NUMERICHOST;
    int g = getaddrinfo(any ? NULL : host, svc, &hints, &ai);
    if (g)
        return g == EAI_MEMORY ? -ENOMEM : -EINVAL;
    int fd = own ? new_socket(ai->ai_family, SOCK_STREAM)
                 : socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        freeaddrinfo(ai);
        return own ? fd : -errno;
    }
    int one = 1, zero = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (flags & WEFT_REUSEPORT)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (any)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    int rc = bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 ? -errno : 0;
    freeaddrinfo(ai);
    if (rc) {
        if (own)
            weft__fd_close(fd);
        else
            close(fd);
        return rc;
    }
    return fd;
}

int weft_tcp_listen(weft_listener **out, const char *host, int port, int backlog, int flags)
{
    if (!weft_self())
        return -EPERM;
    if (!out || port < 0 || port > 65535 || (flags & ~WEFT_REUSEPORT))
        return -EINVAL;
    int fd = tcp_bind(host, port, flags, true);
    return fd < 0 ? fd : listener_new(out, fd, backlog);
}

int weft_tcp_port_check(const char *host, int port)
{
    if (port < 1 || port > 65535)
        return -EINVAL;
    int fd = tcp_bind(host, port, 0, false);   /* without SO_REUSEPORT: fails if any */
    if (fd < 0)                                /* socket holds the port, even a sharer */
        return fd;
    close(fd);
    return 0;
}

/* Removes the socket file at sun's path if it is left over from an
 * earlier run: a socket that refuses connections. A live listener's
 * socket, or any other kind of file, stays (bind then says -EADDRINUSE).
 * The probe's connection to a live listener is accepted there and reads
 * as an empty stream. */
static void remove_stale_socket(const struct sockaddr_un *sun)
{
    struct stat st;
    if (lstat(sun->sun_path, &st) < 0 || !S_ISSOCK(st.st_mode))
        return;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    if (connect(fd, (const struct sockaddr *)sun, sizeof *sun) < 0 && errno == ECONNREFUSED)
        unlink(sun->sun_path);
    close(fd);
}

int weft_unix_listen(weft_listener **out, const char *path, int backlog)
{
    struct sockaddr_un sun;
    if (!weft_self())
        return -EPERM;
    int rc = out ? unix_addr(&sun, path) : -EINVAL;
    if (rc)
        return rc;
    int fd = new_socket(AF_UNIX, SOCK_STREAM);
    if (fd < 0)
        return fd;
    remove_stale_socket(&sun);
    if (bind(fd, (struct sockaddr *)&sun, sizeof sun) < 0) {
        rc = -errno;
        weft__fd_close(fd);
        return rc;
    }
    return listener_new(out, fd, backlog);
}

/* Accepts one connection into *out (0), or says to wait (-EAGAIN), or fails. */
static int accept_one(weft_listener *l, const weft_net_opts *o, weft_conn **out)
{
    int fd;
    do
        fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    while (fd < 0 && (errno == EINTR || errno == ECONNABORTED));   /* the next one */
    if ((fd = owned(fd)) < 0)
        return fd;
    if (!(o && o->no_nodelay)) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    return finish(out, fd, o);
}

int weft_accept(weft_listener *l, weft_conn **out, const weft_net_opts *o)
{
    if (!weft_self())
        return -EPERM;
    if (!l || !out)
        return -EINVAL;
    if (weft__owner_check(l->loop))
        return -EXDEV;
    if (l->closed)
        return -EBADF;
    int rc;
    while ((rc = accept_one(l, o, out)) == -EAGAIN) {
        l->acceptors++;
        rc = weft__fd_wait_io(l->fd, WEFT_READ, WEFT_FOREVER, 0);
        l->acceptors--;
        if (l->closed) {                  /* closed while we waited: l is ours to free */
            if (!l->acceptors)
                weft__free(l);
            return -EBADF;
        }
        if (rc)
            return rc;
    }
    return rc;
}

int weft_listener_port(const weft_listener *l) { return l ? l->port : -EINVAL; }
int weft_listener_fd(const weft_listener *l) { return l ? l->fd : -EINVAL; }

void weft_listener_close(weft_listener *l)
{
    if (!l || l->closed)
        return;
    l->closed = true;
    if (weft__loop_id() == l->loop)
        weft__fd_close(l->fd);            /* wakes a parked acceptor with -EBADF */
    else
        close(l->fd);                     /* its loop is gone: nothing registered */
    if (!l->acceptors)
        weft__free(l);                    /* else the last acceptor frees it */
}
