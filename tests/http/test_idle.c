/* 10,000 idle keep-alive connections, opened by another process
 * (idle_client), held by one server loop: every one answered, the server
 * still answers new requests promptly, memory stays flat while they idle,
 * and every descriptor is let go when the peers close. */
#include <fcntl.h>
#include <spawn.h>
#include <sys/resource.h>

#include "procstat.h"
#include "test.h"

#define N 10000

extern char **environ;

static int hello(weft_http_req *q, weft_http_res *r, void *ctx)
{
    (void)q;
    (void)ctx;
    return weft_http_res_body(r, "Hello, World!", 13);
}

struct child { pid_t pid; int in, out; char line[128]; int status; };

static int read_line(void *arg)
{
    struct child *c = arg;
    size_t n = 0;
    char ch;
    while (n < sizeof c->line - 1 && read(c->out, &ch, 1) == 1 && ch != '\n')
        c->line[n++] = ch;
    c->line[n] = 0;
    return 0;
}

static int reap(void *arg)
{
    struct child *c = arg;
    return waitpid(c->pid, &c->status, 0) == c->pid ? 0 : -errno;
}

static int spawn_client(struct child *c, int port)
{
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC))
        return -errno;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    char p[16], n[16];
    snprintf(p, sizeof p, "%d", port);
    snprintf(n, sizeof n, "%d", N);
    char *argv[] = { IDLE_CLIENT, p, n, NULL };
    int rc = posix_spawn(&c->pid, IDLE_CLIENT, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(out[1]);
    c->in = in[1];
    c->out = out[0];
    return -rc;
}

static weft_http_server *srv;

static int serve_task(void *arg)
{
    return weft_http_serve(srv, arg);
}

static int get_ok(int port)
{
    weft_http_client *cl = weft_http_client_new(NULL);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/plaintext", port);
    weft_http_response r;
    int rc = weft_http_get(cl, url, &r);
    int status = rc ? rc : r.status;
    if (!rc)
        weft_http_response_free(&r);
    weft_http_client_free(cl, WEFT_SEC);
    return status;
}

static int idle(void *unused)
{
    (void)unused;
    weft_http_server_opts o = { .keepalive_timeout = 60 * WEFT_SEC, .max_connections = 2 * N };
    srv = weft_http_server_new(&o);
    weft_http_server_route(srv, "GET", "/plaintext", hello, NULL);
    weft_listener *l;
    EXPECT_EQ(weft_tcp_listen(&l, "127.0.0.1", 0, 4096, 0), 0);
    int port = weft_listener_port(l);
    weft_group *g = weft_group_new();
    weft_spawn(g, serve_task, l, "serve");
    EXPECT_EQ(get_ok(port), 200);                 /* warm: code paths, pools */

    long rss0 = vm_kb("VmRSS:");
    int fd0 = open_fds();
    struct child c = { 0 };
    EXPECT_EQ(spawn_client(&c, port), 0);
    EXPECT_EQ(weft_run_blocking(read_line, &c), 0);
    int opened = 0, ok = 0;
    EXPECT_EQ(sscanf(c.line, "ready %d %d", &opened, &ok), 2);
    EXPECT_EQ(opened, N);
    EXPECT_EQ(ok, N);                             /* every one answered */
    EXPECT(open_fds() - fd0 >= N);                /* and held, not closed */

    long rss1 = vm_kb("VmRSS:");
    weft_sleep(2 * WEFT_SEC);                     /* idle */
    EXPECT_EQ(get_ok(port), 200);                 /* still serving */
    long rss2 = vm_kb("VmRSS:");
    long per_conn = (rss1 - rss0) * 1024 / N;
    fprintf(stderr, "idle: %d connections, %ld B of RSS each, %+ld kB while idle\n", N,
            per_conn, rss2 - rss1);
    EXPECT(per_conn < (getenv("WEFT_UNDER_SANITIZER") ? 64 : 20) * 1024);   /* 14 KB now */
    EXPECT(rss2 - rss1 < 1024);                   /* flat */

    close(c.in);                                  /* the client resets them all */
    EXPECT_EQ(weft_run_blocking(reap, &c), 0);
    EXPECT(WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0);
    close(c.out);
    for (int i = 0; i < 500 && open_fds() > fd0 + 2; i++)
        weft_sleep(10 * WEFT_MS);
    EXPECT(open_fds() <= fd0 + 2);                /* every connection let go */
    weft_http_server_shutdown(srv);
    EXPECT_EQ(weft_group_wait(g), 0);
    weft_http_server_free(srv);
    return 0;
}

static void test_idle_connections(void **s)
{
    (void)s;
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < N + 200) {
        fprintf(stderr, "idle: the descriptor limit %lu is below %d\n",
                (unsigned long)rl.rlim_cur, N + 200);
        fail();
    }
    RUN(idle, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idle_connections),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
