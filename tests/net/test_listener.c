/* Listeners: closing one under a blocked weft_accept (-EBADF, and no
 * touch of freed memory: ASan), and what a Unix listener may remove at
 * its path (only a socket file nobody listens on). */
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

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

/* ---- what a Unix listener may replace ------------------------------------ */

static void sock_path(char *path, size_t size, const char *what)
{
    snprintf(path, size, "/tmp/weft-listener-%d-%s", (int)getpid(), what);
    unlink(path);
}

/* a file that is not a socket is never removed */
static int unix_regular_file(void *unused)
{
    (void)unused;
    char path[108];
    sock_path(path, sizeof path, "file");
    FILE *f = fopen(path, "w");
    EXPECT(f != NULL);
    fputs("precious", f);
    fclose(f);
    weft_listener *l = NULL;
    EXPECT_EQ(weft_unix_listen(&l, path, 0), -EADDRINUSE);
    struct stat st;
    EXPECT_EQ(stat(path, &st), 0);
    EXPECT(S_ISREG(st.st_mode));
    EXPECT_EQ(st.st_size, 8);
    unlink(path);
    /* nor is a directory */
    EXPECT_EQ(mkdir(path, 0700), 0);
    EXPECT_EQ(weft_unix_listen(&l, path, 0), -EADDRINUSE);
    EXPECT_EQ(stat(path, &st), 0);
    EXPECT(S_ISDIR(st.st_mode));
    rmdir(path);
    return 0;
}
static void test_unix_keeps_regular_file(void **s) { (void)s; RUN(unix_regular_file, NULL); }

/* a socket file left by an earlier run (bound, closed, never unlinked) is
 * replaced */
static int unix_stale_socket(void *unused)
{
    (void)unused;
    char path[108];
    sock_path(path, sizeof path, "stale");
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    EXPECT_EQ(bind(fd, (struct sockaddr *)&sun, sizeof sun), 0);
    EXPECT_EQ(listen(fd, 1), 0);
    close(fd);                            /* the file stays, nobody listens */
    weft_listener *l = NULL;
    EXPECT_EQ(weft_unix_listen(&l, path, 0), 0);
    weft_conn *c, *s;
    EXPECT_EQ(weft_unix_connect(&c, path, NULL), 0);
    EXPECT_EQ(weft_accept(l, &s, NULL), 0);
    weft_conn_close(s);
    weft_conn_close(c);
    weft_listener_close(l);
    unlink(path);
    return 0;
}
static void test_unix_replaces_stale_socket(void **s) { (void)s; RUN(unix_stale_socket, NULL); }

/* a path a live listener holds is -EADDRINUSE, and the path stays that
 * listener's: a connect still reaches it */
static int unix_live_listener(void *unused)
{
    (void)unused;
    char path[108];
    sock_path(path, sizeof path, "live");
    weft_listener *l = NULL, *l2 = NULL;
    EXPECT_EQ(weft_unix_listen(&l, path, 0), 0);
    EXPECT_EQ(weft_unix_listen(&l2, path, 0), -EADDRINUSE);
    weft_listener_close(l2);              /* NULL unless it took the path from l */
    weft_conn *c = NULL, *s;
    EXPECT_EQ(weft_unix_connect(&c, path, NULL), 0);
    if (c) {
        EXPECT_EQ(weft_conn_write_all(c, "ok", 2), 0);
        /* the probe's connection comes first: closed without data */
        char b[2] = "";
        int rc = -WEFT_EEOF;
        for (int i = 0; i < 2 && rc == -WEFT_EEOF; i++) {
            EXPECT_EQ(weft_accept(l, &s, NULL), 0);
            rc = weft_conn_read_exact(s, b, 2);
            weft_conn_close(s);
        }
        EXPECT_EQ(rc, 0);
        EXPECT(memcmp(b, "ok", 2) == 0);
        weft_conn_close(c);
    }
    weft_listener_close(l);
    unlink(path);
    return 0;
}
static void test_unix_live_listener_in_use(void **s) { (void)s; RUN(unix_live_listener, NULL); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_close_wakes_accept),
        cmocka_unit_test(test_close_after_wake),
        cmocka_unit_test(test_unix_keeps_regular_file),
        cmocka_unit_test(test_unix_replaces_stale_socket),
        cmocka_unit_test(test_unix_live_listener_in_use),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
