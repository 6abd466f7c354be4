/* Listeners: closing one under a blocked weft_accept (-EBADF, and no
 * touch of freed memory: ASan). */
#include <fcntl.h>
#include <sys/socket.h>

#include "netutil.h"
#include "test.h"

/* ---- closing a listener under its acceptor ------------------------------- */

struct acceptor { weft_listener *l; int rc; bool done; };

static int acceptor(void *arg)
{
    struct acceptor *a = arg;
    weft_conn *c = NULL;
    a->rc = weft_accept(a->l, &c, NULL);
    if (a->rc == 0)
        weft_conn_close(c);
    a->done = true;
    return 0;
}

/* a task blocked in weft_accept when another task closes the listener */
static int close_under_accept(void *unused)
{
    (void)unused;
    struct acceptor a = { .rc = 1 };
    EXPECT_EQ(weft_tcp_listen(&a.l, "127.0.0.1", 0, 0, 0), 0);
    weft_group *g = weft_group_new();
    weft_spawn(g, acceptor, &a, "acceptor");
    EXPECT_EQ(weft_yield(), 0);           /* it runs and blocks */
    EXPECT(!a.done);
    weft_listener_close(a.l);
    EXPECT_EQ(weft_group_wait(g), 0);
    EXPECT_EQ(a.rc, -EBADF);
    return 0;
}
static void test_close_wakes_accept(void **s) { (void)s; RUN(close_under_accept, NULL); }

/* The acceptor has already been woken by a connection when the listener
 * is closed, before it runs: it must still get -EBADF, and must not touch
 * the listener's memory or its (closed, maybe reused) fd. To get that
 * order, the closer waits on a pipe that becomes ready before the
 * listener does, so one epoll poll wakes the closer first, then the
 * acceptor, and the closer runs first. */
struct closer { weft_listener *l; int fd; };

static int closer(void *arg)
{
    struct closer *c = arg;
    EXPECT_EQ(weft_fd_wait(c->fd, WEFT_READ), 0);
    weft_listener_close(c->l);
    return 0;
}

static int close_after_wake(void *unused)
{
    (void)unused;
    struct acceptor a = { .rc = 1 };
    EXPECT_EQ(weft_tcp_listen(&a.l, "127.0.0.1", 0, 0, 0), 0);
    int pfd[2];
    EXPECT_EQ(pipe2(pfd, O_NONBLOCK | O_CLOEXEC), 0);
    struct closer cl = { a.l, pfd[0] };
    weft_group *g = weft_group_new();
    weft_spawn(g, closer, &cl, "closer");
    weft_spawn(g, acceptor, &a, "acceptor");
    EXPECT_EQ(weft_yield(), 0);           /* both run and block */
    EXPECT(!a.done);
    /* one epoll poll now, so that the readiness order below is the one
     * the next poll reports (the listener's registration left it on
     * epoll's ready list) */
    int pfd2[2];
    EXPECT_EQ(pipe2(pfd2, O_NONBLOCK | O_CLOEXEC), 0);
    EXPECT_EQ(write(pfd2[1], "x", 1), 1);
    EXPECT_EQ(weft_fd_wait(pfd2[0], WEFT_READ), 0);
    weft_fd_forget(pfd2[0]);
    close(pfd2[0]);
    close(pfd2[1]);
    /* no suspension from here to the group wait: both become ready first */
    EXPECT_EQ(write(pfd[1], "x", 1), 1);
    struct sockaddr_in sa = { .sin_family = AF_INET,
                              .sin_port = htons((uint16_t)weft_listener_port(a.l)),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int peer = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    EXPECT_EQ(connect(peer, (struct sockaddr *)&sa, sizeof sa), 0);
    EXPECT_EQ(weft_group_wait(g), 0);
    EXPECT_EQ(a.rc, -EBADF);
    close(peer);
    weft_fd_forget(pfd[0]);
    close(pfd[0]);
    close(pfd[1]);
    return 0;
}
static void test_close_after_wake(void **s) { (void)s; RUN(close_after_wake, NULL); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_close_wakes_accept),
        cmocka_unit_test(test_close_after_wake),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
