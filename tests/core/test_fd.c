/* weft_fd_wait / weft_fd_forget, weft_signal_wait, edge-triggered owned fds. */
#include <fcntl.h>
#include <sys/socket.h>
#include <time.h>

#include "test.h"
#include "../src/core/internal.h"

static int waiter_rc;
static int fd_waiter(void *arg)
{
    waiter_rc = weft_fd_wait(*(int *)arg, WEFT_READ);
    return 0;
}

static int levels(void *unused)
{
    (void)unused;
    int p[2];
    EXPECT_EQ(pipe2(p, O_NONBLOCK), 0);
    EXPECT_EQ(weft_fd_wait(p[1], WEFT_WRITE), 0);        /* already writable */
    EXPECT_EQ(weft_fd_wait(p[1], WEFT_WRITE), 0);
    /* readable from another task's write */
    weft_group *g = weft_group_new();
    weft_spawn(g, fd_waiter, &p[0], "reader");
    weft_yield();
    EXPECT_EQ(weft_fd_wait(p[0], WEFT_READ), -EBUSY);    /* one reader per fd */
    EXPECT_EQ(write(p[1], "x", 1), 1);
    EXPECT_EQ(weft_group_wait(g), 0);
    EXPECT_EQ(waiter_rc, 0);
    /* level semantics: data still unread, so ready again at once */
    EXPECT_EQ(weft_fd_wait(p[0], WEFT_READ), 0);
    EXPECT_EQ(weft_fd_wait(p[0], WEFT_READ | WEFT_WRITE), 0);
    char c;
    EXPECT_EQ(read(p[0], &c, 1), 1);
    weft_scope sc;
    weft_scope_enter(&sc, 5 * WEFT_MS);
    EXPECT_EQ(weft_fd_wait(p[0], WEFT_READ), -ETIMEDOUT);
    EXPECT(weft_scope_exit(&sc));
    /* cancel while waiting */
    g = weft_group_new();
    weft_spawn(g, fd_waiter, &p[0], "reader");
    weft_yield();
    weft_group_cancel(g);
    EXPECT_EQ(weft_group_wait(g), 0);
    EXPECT_EQ(waiter_rc, -ECANCELED);
    /* forget wakes the waiter with -EBADF */
    g = weft_group_new();
    weft_spawn(g, fd_waiter, &p[0], "reader");
    weft_yield();
    weft_fd_forget(p[0]);
    EXPECT_EQ(weft_group_wait(g), 0);
    EXPECT_EQ(waiter_rc, -EBADF);
    /* hang-up counts as readable */
    close(p[1]);
    EXPECT_EQ(weft_fd_wait(p[0], WEFT_READ), 0);
    weft_fd_forget(p[0]);
    close(p[0]);
    /* the same fd number reused after a close without forget still works */
    EXPECT_EQ(pipe2(p, O_NONBLOCK), 0);
    EXPECT_EQ(write(p[1], "y", 1), 1);
    EXPECT_EQ(weft_fd_wait(p[0], WEFT_READ), 0);
    close(p[0]);
    close(p[1]);
    EXPECT_EQ(pipe2(p, O_NONBLOCK), 0);
    EXPECT_EQ(write(p[1], "y", 1), 1);
    EXPECT_EQ(weft_fd_wait(p[0], WEFT_READ), 0);
    weft_fd_forget(p[0]);
    weft_fd_forget(p[1]);
    close(p[0]);
    close(p[1]);
    /* a bad fd and a regular file */
    EXPECT_EQ(weft_fd_wait(1000, WEFT_READ), -EBADF);
    int f = open("/proc/self/status", O_RDONLY);
    EXPECT_EQ(weft_fd_wait(f, WEFT_READ), 0);
    close(f);
    return 0;
}
static void test_fd_levels(void **s) { (void)s; RUN(levels, NULL); }

static int both_ways(void *unused)
{
    (void)unused;
    int sv[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    /* a reader and a writer on one fd at once */
    weft_group *g = weft_group_new();
    weft_spawn(g, fd_waiter, &sv[0], "reader");
    weft_yield();
    EXPECT_EQ(weft_fd_wait(sv[0], WEFT_WRITE), 0);
    EXPECT_EQ(write(sv[1], "z", 1), 1);
    EXPECT_EQ(weft_group_wait(g), 0);
    EXPECT_EQ(waiter_rc, 0);
    weft_fd_forget(sv[0]);
    close(sv[0]);
    close(sv[1]);
    return 0;
}
static void test_fd_reader_and_writer(void **s) { (void)s; RUN(both_ways, NULL); }

/* owned fds: registered once, edge-triggered, readiness cached */
static int owned(void *unused)
{
    (void)unused;
    int sv[2];
    char buf[4096];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    EXPECT_EQ(weft__fd_own(sv[0]), 0);
    EXPECT_EQ(weft_fd_wait(sv[0], WEFT_READ), -EBUSY);   /* not a foreign fd */
    EXPECT_EQ(read(sv[0], buf, sizeof buf), -1);
    weft_scope sc;
    weft_scope_enter(&sc, 5 * WEFT_MS);
    EXPECT_EQ(weft__fd_wait_io(sv[0], WEFT_READ, WEFT_FOREVER, 0), -ETIMEDOUT);
    weft_scope_exit(&sc);
    EXPECT_EQ(weft__fd_wait_io(sv[0], WEFT_READ, weft_now() + 2 * WEFT_MS,
                               -WEFT_EREAD_TIMEOUT), -WEFT_EREAD_TIMEOUT);
    EXPECT_EQ(write(sv[1], "abc", 3), 3);
    EXPECT_EQ(weft__fd_wait_io(sv[0], WEFT_READ, WEFT_FOREVER, 0), 0);
    EXPECT_EQ(read(sv[0], buf, sizeof buf), 3);
    weft_fd_forget(sv[0]);
    close(sv[0]);
    close(sv[1]);
    return 0;
}
static void test_owned_edge_triggered(void **s) { (void)s; RUN(owned, NULL); }

static int raiser(void *unused)
{
    (void)unused;
    usleep(5000);
    kill(getpid(), SIGUSR1);
    return 0;
}

static int signals(void *unused)
{
    (void)unused;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    /* a signal from another thread while this task waits */
    EXPECT_EQ(weft_run_blocking_detached(raiser, NULL, NULL), 0);
    EXPECT_EQ(weft_signal_wait(&set), SIGUSR1);
    /* one that arrived while nobody waited stays pending */
    raise(SIGUSR2);
    EXPECT_EQ(weft_signal_wait(&set), SIGUSR2);
    weft_scope sc;
    weft_scope_enter(&sc, 5 * WEFT_MS);
    EXPECT_EQ(weft_signal_wait(&set), -ETIMEDOUT);
    weft_scope_exit(&sc);
    sigemptyset(&set);
    EXPECT_EQ(weft_signal_wait(&set), -EINVAL);
    return 0;
}
static void test_signal_wait(void **s) { (void)s; RUN(signals, NULL); }

static int sig_result;
static int sig_waiter(void *unused)
{
    (void)unused;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    sig_result = weft_signal_wait(&set);
    return 0;
}

static int signal_cancel(void *unused)
{
    (void)unused;
    weft_group *g = weft_group_new();
    weft_spawn(g, sig_waiter, NULL, "sig");
    weft_sleep(2 * WEFT_MS);
    weft_group_cancel(g);
    EXPECT_EQ(weft_group_wait(g), 0);
    EXPECT_EQ(sig_result, -ECANCELED);
    return 0;
}
static void test_signal_wait_cancel(void **s) { (void)s; RUN(signal_cancel, NULL); }

/* weft_fd_wait_for: its own timeout and error, and which events fired */
static int wait_for(void *unused)
{
    (void)unused;
    int sp[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sp), 0);
    EXPECT_EQ(weft_fd_wait_for(sp[0], WEFT_READ | WEFT_WRITE, WEFT_SEC, -WEFT_EREAD_TIMEOUT),
              WEFT_WRITE);                              /* writable, nothing to read */
    weft_time t0 = weft_now();
    EXPECT_EQ(weft_fd_wait_for(sp[0], WEFT_READ, 10 * WEFT_MS, -WEFT_EREAD_TIMEOUT),
              -WEFT_EREAD_TIMEOUT);
    EXPECT(weft_now() - t0 >= 10 * WEFT_MS);
    EXPECT_EQ(write(sp[1], "x", 1), 1);
    EXPECT_EQ(weft_fd_wait_for(sp[0], WEFT_READ | WEFT_WRITE, WEFT_SEC, -WEFT_EREAD_TIMEOUT),
              WEFT_READ | WEFT_WRITE);
    EXPECT_EQ(weft_fd_wait_for(sp[0], WEFT_READ, WEFT_FOREVER, -ETIMEDOUT), WEFT_READ);
    /* the scope still wins when it is earlier */
    weft_scope sc;
    char c;
    EXPECT_EQ(read(sp[0], &c, 1), 1);
    weft_scope_enter(&sc, 5 * WEFT_MS);
    EXPECT_EQ(weft_fd_wait_for(sp[0], WEFT_READ, WEFT_SEC, -WEFT_EREAD_TIMEOUT), -ETIMEDOUT);
    EXPECT(weft_scope_exit(&sc));
    /* timeout 0 looks without waiting */
    EXPECT_EQ(weft_fd_wait_for(sp[0], WEFT_READ, 0, -WEFT_EREAD_TIMEOUT), -WEFT_EREAD_TIMEOUT);
    EXPECT_EQ(weft_fd_wait_for(sp[0], WEFT_READ | WEFT_WRITE, 0, -ETIMEDOUT), WEFT_WRITE);
    /* a hang-up ends a wait for either direction */
    close(sp[1]);
    EXPECT(weft_fd_wait_for(sp[0], WEFT_READ, WEFT_SEC, -WEFT_EREAD_TIMEOUT) & WEFT_READ);
    EXPECT_EQ(weft_fd_wait_for(sp[0], WEFT_READ, 0, -ETIMEDOUT), WEFT_READ);
    EXPECT_EQ(weft_fd_wait_for(sp[0], WEFT_READ, WEFT_SEC, 0), -EINVAL);   /* not an error */
    EXPECT_EQ(weft_fd_wait_for(sp[0], WEFT_READ, -1, -ETIMEDOUT), -EINVAL);
    weft_fd_forget(sp[0]);
    close(sp[0]);
    return 0;
}
static void test_fd_wait_for(void **s) { (void)s; RUN(wait_for, NULL); }

/* Issue 10.12: an fd number closed without weft_fd_forget and reused for
 * a socket weft owns: the old hang-up must not survive (a read spun, never
 * yielding, until its timeout, so the task that would send never ran). */
static int send_later(void *arg)
{
    weft_sleep(5 * WEFT_MS);
    return weft_conn_write_all(arg, "x", 1);
}

static int reused(void *unused)
{
    (void)unused;
    weft_listener *l;
    EXPECT_EQ(weft_tcp_listen(&l, "127.0.0.1", 0, 0, 0), 0);
    int sp[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sp), 0);
    close(sp[1]);
    EXPECT_EQ(weft_fd_wait(sp[0], WEFT_READ), 0);      /* the hang-up is seen */
    int stale = sp[0];
    close(stale);                                      /* misuse: not forgotten */
    weft_net_opts o = { .read_timeout = 2 * WEFT_SEC };
    weft_conn *a, *b;
    EXPECT_EQ(weft_tcp_connect(&a, "127.0.0.1", weft_listener_port(l), &o), 0);
    EXPECT_EQ(weft_accept(l, &b, NULL), 0);
    EXPECT(weft_conn_fd(a) == stale || weft_conn_fd(b) == stale);
    weft_conn *reader = weft_conn_fd(a) == stale ? a : b, *peer = reader == a ? b : a;
    weft_group *g = weft_group_new();
    weft_spawn(g, send_later, peer, "sender");
    char c;
    EXPECT_EQ(weft_conn_read_some(reader, &c, 1), 1);
    EXPECT_EQ(weft_group_wait(g), 0);
    weft_conn_close(a);
    weft_conn_close(b);
    weft_listener_close(l);
    return 0;
}
static void test_fd_number_reused(void **s) { (void)s; RUN(reused, NULL); }

/* weft_set_poll_spin: while a task waits on an fd that stays quiet, the
 * spinning loop still runs a timer when it is due, still takes another
 * thread's wake-up (the blocking pool's), and an fd's readiness, all well
 * within the (1 s) window it would otherwise poll through */
static int quiet_reader(void *arg)
{
    return weft_fd_wait(*(int *)arg, WEFT_READ) == -ECANCELED ? 0 : -1;
}
static int short_job(void *unused)
{
    (void)unused;
    usleep(1000);
    return 7;
}
static int write_later(void *arg)
{
    weft_sleep(5 * WEFT_MS);
    return write(*(int *)arg, "x", 1) == 1 ? 0 : -1;
}
static int spins(void *unused)
{
    (void)unused;
    int quiet[2], p[2];
    EXPECT_EQ(pipe2(quiet, O_NONBLOCK), 0);
    EXPECT_EQ(pipe2(p, O_NONBLOCK), 0);
    weft_group *g = weft_group_new();
    weft_spawn(g, quiet_reader, &quiet[0], "quiet");
    weft_yield();
    weft__loop *l = weft__cur_loop;
    EXPECT_EQ(l->spin, WEFT_SEC);
    EXPECT(l->fd_waits > 0);
    weft_time t0 = weft_now();
    weft_sleep(10 * WEFT_MS);                          /* a timer inside the window */
    EXPECT(weft_now() - t0 < 500 * WEFT_MS);
    t0 = weft_now();
    EXPECT_EQ(weft_run_blocking(short_job, NULL), 7);  /* a wake-up from another thread */
    EXPECT(weft_now() - t0 < 500 * WEFT_MS);
    weft_spawn(g, write_later, &p[1], "writer");
    t0 = weft_now();
    EXPECT_EQ(weft_fd_wait(p[0], WEFT_READ), 0);       /* readiness */
    EXPECT(weft_now() - t0 < 500 * WEFT_MS);
    weft_group_cancel(g);
    EXPECT_EQ(weft_group_wait(g), 0);
    for (int i = 0; i < 2; i++) {
        close(quiet[i]);
        close(p[i]);
    }
    return 0;
}
static void test_poll_spin(void **s)
{
    (void)s;
    weft_set_poll_spin(WEFT_SEC);
    RUN(spins, NULL);
    weft_set_poll_spin(0);
}

/* it spins while waits end within the window (short sleeps), and stops
 * after a spin that found nothing (long sleeps) */
static int busy(void *unused)
{
    (void)unused;
    int quiet[2];
    EXPECT_EQ(pipe2(quiet, O_NONBLOCK), 0);
    weft_group *g = weft_group_new();
    weft_spawn(g, quiet_reader, &quiet[0], "quiet");
    weft_yield();
    weft__loop *l = weft__cur_loop;
    uint64_t s0 = l->spins;
    for (int i = 0; i < 100; i++)
        weft_sleep(100 * WEFT_US);
    if (l->spins - s0 < 50)
        fail_msg("spin on, 100 short sleeps: spun %llu times", (unsigned long long)(l->spins - s0));
    s0 = l->spins;
    for (int i = 0; i < 5; i++)
        weft_sleep(30 * WEFT_MS);
    if (l->spins - s0 > 1)
        fail_msg("spin on, 5 long sleeps: spun %llu times", (unsigned long long)(l->spins - s0));
    weft_group_cancel(g);
    EXPECT_EQ(weft_group_wait(g), 0);
    close(quiet[0]);
    close(quiet[1]);
    return 0;
}
static void test_poll_spin_spins(void **s)
{
    (void)s;
    weft_set_poll_spin(5 * WEFT_MS);
    RUN(busy, NULL);
    weft_set_poll_spin(0);
}

/* a loop spinning on a quiet fd still hears that another loop of its
 * weft_run failed (a cancel request is a flag and a poke: the spin must
 * end on the poke, not spin on and then sleep forever) */
static int one_fails(void *arg)
{
    int *quiet = arg;
    if (weft_loop_index() == 1) {
        weft_sleep(20 * WEFT_MS);
        return -EIO;
    }
    weft_group *g = weft_group_new();     /* a task on the quiet fd: the loop may spin */
    weft_spawn(g, quiet_reader, &quiet[0], "quiet");
    for (int i = 0; i < 20; i++)          /* short waits: it spins from now on */
        weft_sleep(100 * WEFT_US);
    return weft_group_wait(g);
}
static void test_poll_spin_run_cancel(void **s)
{
    (void)s;
    int quiet[2];
    assert_int_equal(pipe2(quiet, O_NONBLOCK), 0);
    weft_set_poll_spin(WEFT_SEC);
    alarm(30);                            /* it hung for ever */
    for (int i = 0; i < 20; i++)
        assert_int_equal(weft_run(2, one_fails, quiet), -EIO);
    alarm(0);
    weft_set_poll_spin(0);
    close(quiet[0]);
    close(quiet[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fd_levels),
        cmocka_unit_test(test_fd_reader_and_writer),
        cmocka_unit_test(test_owned_edge_triggered),
        cmocka_unit_test(test_signal_wait),
        cmocka_unit_test(test_signal_wait_cancel),
        cmocka_unit_test(test_fd_wait_for),
        cmocka_unit_test(test_fd_number_reused),
        cmocka_unit_test(test_poll_spin),
        cmocka_unit_test(test_poll_spin_spins),
        cmocka_unit_test(test_poll_spin_run_cancel),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
