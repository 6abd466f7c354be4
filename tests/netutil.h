/* Socket helpers for tests. */
#ifndef WEFT_TEST_NETUTIL_H
#define WEFT_TEST_NETUTIL_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

/* A port nothing uses now, TIME_WAIT included (the kernel's own pick for
 * a bind without SO_REUSEADDR), for a server another process will start. */
static inline int free_port(void)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    socklen_t len = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    bind(fd, (struct sockaddr *)&sa, sizeof sa);
    getsockname(fd, (struct sockaddr *)&sa, &len);
    close(fd);
    return ntohs(sa.sin_port);
}

/* A TCP listener on 127.0.0.1 whose accept queue is full and which never
 * accepts: SYNs to it are dropped, so a connect can only time out. */
struct full_backlog { int lfd, fill[8], port; };

static inline void full_backlog_open(struct full_backlog *b)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof sa;
    b->lfd = socket(AF_INET, SOCK_STREAM, 0);
    bind(b->lfd, (struct sockaddr *)&sa, sizeof sa);
    listen(b->lfd, 0);
    getsockname(b->lfd, (struct sockaddr *)&sa, &len);
    b->port = ntohs(sa.sin_port);
    for (int i = 0; i < 8; i++) {         /* fill the accept queue */
        b->fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        connect(b->fill[i], (struct sockaddr *)&sa, sizeof sa);
    }
    usleep(50000);
}

static inline void full_backlog_close(struct full_backlog *b)
{
    for (int i = 0; i < 8; i++)
        close(b->fill[i]);
    close(b->lfd);
}

#endif
