/* weft_http_server_run: the whole server in one call, stopped by
 * weft_http_server_shutdown from another thread or by SIGTERM; a port in
 * use is an error, not a hang. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <sys/socket.h>

#include "netutil.h"
#include "test.h"

static int hello(weft_http_req *q, weft_http_res *r, void *ctx)
{
    (void)q;
    (void)ctx;
    return weft_http_res_body(r, "Hello, World!", 13);
}

struct client { weft_http_server *s; int port, ok; bool by_signal; };

/* a plain thread: waits for the server, asks once, then stops it */
static void *client(void *arg)
{
    struct client *c = arg;
    sigset_t set;                         /* as weft asks of other threads */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)c->port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    for (int i = 0; i < 200 && !c->ok; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
            const char req[] = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
            char buf[256] = "";
            if (write(fd, req, sizeof req - 1) > 0 && read(fd, buf, sizeof buf - 1) > 0)
                c->ok = strstr(buf, "Hello, World!") != NULL;
        }
        close(fd);
        if (!c->ok)
            usleep(10000);
    }
    if (c->by_signal)
        kill(getpid(), SIGTERM);
    else
        weft_http_server_shutdown(c->s);
    return NULL;
}

static void run_until(bool by_signal)
{
    weft_http_server *s = weft_http_server_new(NULL);
    weft_http_server_route(s, "GET", "/hello", hello, NULL);
    struct client c = { s, free_port(), 0, by_signal };
    pthread_t t;
    pthread_create(&t, NULL, client, &c);
    assert_int_equal(weft_http_server_run(s, "127.0.0.1", c.port, 2), 0);
    pthread_join(t, NULL);
    assert_true(c.ok);
    weft_http_server_free(s);
}

static void test_shutdown_from_a_thread(void **st) { (void)st; run_until(false); }
static void test_sigterm(void **st) { (void)st; run_until(true); }

static void test_port_in_use(void **st)
{
    (void)st;
    for (int share = 0; share < 2; share++) {
        /* a stranger's listener, plain or one that would share the port
         * (SO_REUSEPORT): half our connections would go to it */
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        int one = 1;
        if (share)
            setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof sa;
        assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
        assert_int_equal(listen(fd, 1), 0);
        getsockname(fd, (struct sockaddr *)&sa, &len);
        weft_http_server *s = weft_http_server_new(NULL);
        assert_int_equal(weft_tcp_port_check("127.0.0.1", ntohs(sa.sin_port)), -EADDRINUSE);
        assert_int_equal(weft_http_server_run(s, "127.0.0.1", ntohs(sa.sin_port), 2), -EADDRINUSE);
        assert_int_equal(weft_http_server_run(s, "127.0.0.1", 0, 1), -EINVAL);
        weft_http_server_free(s);
        close(fd);
    }
}

/* ---- per-loop hooks (weft_http_server_run_with) ---- */

static __thread int loop_ready, in_flight;   /* this loop's */
static atomic_int starts, stops, stopped_early, fail_on;

static int on_start(void *ctx)
{
    (void)ctx;
    atomic_fetch_add(&starts, 1);
    if (atomic_load(&fail_on) == weft_loop_index() + 1)
        return -ENOTCONN;
    weft_sleep(WEFT_MS);                  /* a hook may block on weft calls */
    loop_ready = 1;
    return 0;
}

static void on_stop(void *ctx)
{
    (void)ctx;
    if (in_flight || !loop_ready)
        atomic_fetch_add(&stopped_early, 1);
    loop_ready = 0;
    atomic_fetch_add(&stops, 1);
}

/* answers whether its loop was started; /slow shuts the server down and
 * is still running while the loops drain */
static int ready(weft_http_req *q, weft_http_res *r, void *ctx)
{
    weft_http_server *s = ctx;
    in_flight++;
    if (strcmp(weft_http_req_path(q), "/slow") == 0) {
        weft_http_server_shutdown(s);
        weft_sleep(50 * WEFT_MS);
    }
    in_flight--;
    return weft_http_res_body(r, loop_ready ? "Hello, World!" : "not ready", loop_ready ? 13 : 9);
}

struct hook_client { int port, ok; };

static void *hook_client(void *arg)
{
    struct hook_client *c = arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)c->port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    /* many connections, so both loops (SO_REUSEPORT) answer some */
    for (int i = 0, tries = 0; i < 20 && tries < 500; tries++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
            const char *req = i < 19 ? "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
                                     : "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n";
            char buf[256] = "";
            if (write(fd, req, strlen(req)) > 0 && read(fd, buf, sizeof buf - 1) > 0)
                c->ok += strstr(buf, "Hello, World!") != NULL;
            i++;
        } else {
            usleep(10000);
        }
        close(fd);
    }
    return NULL;
}

static void test_hooks_around_serving(void **st)
{
    (void)st;
    atomic_store(&starts, 0);
    atomic_store(&stops, 0);
    atomic_store(&stopped_early, 0);
    atomic_store(&fail_on, 0);
    weft_http_server *s = weft_http_server_new(NULL);
    weft_http_server_route(s, "GET", "/hello", ready, s);
    weft_http_server_route(s, "GET", "/slow", ready, s);
    struct hook_client c = { free_port(), 0 };
    pthread_t t;
    pthread_create(&t, NULL, hook_client, &c);
    weft_http_run_hooks h = { on_start, on_stop, NULL };
    assert_int_equal(weft_http_server_run_with(s, "127.0.0.1", c.port, 2, &h), 0);
    pthread_join(t, NULL);
    assert_int_equal(c.ok, 20);           /* every answer came from a started loop */
    assert_int_equal(atomic_load(&starts), 2);
    assert_int_equal(atomic_load(&stops), 2);
    assert_int_equal(atomic_load(&stopped_early), 0);   /* after the drain, never during */
    weft_http_server_free(s);
}

/* one loop's start hook fails: the run stops (the other loop drains and
 * runs its stop hook) and returns that loop's code, not a hang */
static void test_start_hook_fails(void **st)
{
    (void)st;
    for (int loop = 1; loop <= 2; loop++) {
        atomic_store(&starts, 0);
        atomic_store(&stops, 0);
        atomic_store(&stopped_early, 0);
        atomic_store(&fail_on, loop);
        weft_http_server *s = weft_http_server_new(NULL);
        weft_http_server_route(s, "GET", "/hello", ready, s);
        weft_http_run_hooks h = { on_start, on_stop, NULL };
        assert_int_equal(weft_http_server_run_with(s, "127.0.0.1", free_port(), 2, &h),
                         -ENOTCONN);
        assert_int_equal(atomic_load(&starts), 2);
        assert_int_equal(atomic_load(&stops), 1);   /* the loop that started */
        assert_int_equal(atomic_load(&stopped_early), 0);
        weft_http_server_free(s);
    }
}

/* hooks with a port in use: refused before any loop starts */
static void test_hooks_port_in_use(void **st)
{
    (void)st;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof sa;
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(fd, 1), 0);
    getsockname(fd, (struct sockaddr *)&sa, &len);
    atomic_store(&starts, 0);
    atomic_store(&fail_on, 0);
    weft_http_server *s = weft_http_server_new(NULL);
    weft_http_run_hooks h = { on_start, on_stop, NULL };
    assert_int_equal(weft_http_server_run_with(s, "127.0.0.1", ntohs(sa.sin_port), 2, &h),
                     -EADDRINUSE);
    assert_int_equal(atomic_load(&starts), 0);
    weft_http_server_free(s);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shutdown_from_a_thread),
        cmocka_unit_test(test_sigterm),
        cmocka_unit_test(test_port_in_use),
        cmocka_unit_test(test_hooks_around_serving),
        cmocka_unit_test(test_start_hook_fails),
        cmocka_unit_test(test_hooks_port_in_use),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
