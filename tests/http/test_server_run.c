/* weft_http_server_run: the whole server in one call, stopped by
 * weft_http_server_shutdown from another thread or by SIGTERM; a port in
 * use is an error, not a hang. */
#include <arpa/inet.h>
#include <netinet/in.h>
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shutdown_from_a_thread),
        cmocka_unit_test(test_sigterm),
        cmocka_unit_test(test_port_in_use),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
