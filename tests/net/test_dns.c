/* DNS through c-ares against a real DNS server written here (UDP and TCP
 * on 127.0.0.1), one that never answers, several of them, and
 * /etc/hosts. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "test.h"

/* How a server answers: as a name server should, not at all, with
 * SERVFAIL, or (over UDP) with only a truncated header that sends the
 * client to TCP. */
enum { ANSWER, SILENT, SERVFAIL, TRUNCATE };

struct dns_server {
    int fd, port, queries, mode;
    weft_listener *tcp;                   /* the same port over TCP, when set */
    int tcp_queries;
};

static int udp_socket(int *port)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof sa;
    bind(fd, (struct sockaddr *)&sa, sizeof sa);
    getsockname(fd, (struct sockaddr *)&sa, &len);
    *port = ntohs(sa.sin_port);
    return fd;
}

/* The reply to query q (n bytes) in r, its length returned (0: no reply).
 * A queries for *.weft.test get 127.0.0.1 (TTL 60), AAAA no data (A
 * neither for nodata.weft.test), anything else NXDOMAIN. */
static size_t reply(const unsigned char *q, size_t n, unsigned char *r, int mode)
{
    if (mode == SILENT || n < 17)
        return 0;
    /* the question: labels, then type and class */
    size_t p = 12;
    char name[256] = "";
    while (p < n && q[p]) {
        strncat(name, (char *)q + p + 1, q[p]);
        strcat(name, ".");
        p += q[p] + 1;
    }
    size_t qend = p + 5;
    int qtype = q[p + 1] << 8 | q[p + 2];
    bool ours = strlen(name) > 10 && strcmp(name + strlen(name) - 10, "weft.test.") == 0;
    bool answer = ours && qtype == 1 && mode == ANSWER && strcmp(name, "nodata.weft.test.");
    /* multi.weft.test: first an address nobody listens on, then ours */
    bool multi = answer && strcmp(name, "multi.weft.test.") == 0;
    memcpy(r, q, qend);
    r[2] = mode == TRUNCATE ? 0x83 : 0x81;  /* a response; TC for TRUNCATE */
    r[3] = mode == SERVFAIL ? 0x82 : ours ? 0x80 : 0x83;   /* NXDOMAIN for other names */
    r[4] = 0, r[5] = 1;                      /* one question */
    r[6] = 0, r[7] = (unsigned char)(answer + multi);   /* answers */
    memset(r + 8, 0, 4);
    size_t len = qend;
    for (int k = 0; answer && k < 1 + multi; k++) {
        unsigned char rr[] = { 0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1 };
        if (multi && k == 0)
            rr[15] = 2;                      /* 127.0.0.2: refused */
        memcpy(r + len, rr, sizeof rr);
        len += sizeof rr;
    }
    return len;
}

static int serve_dns(void *arg)
{
    struct dns_server *s = arg;
    unsigned char q[512], r[600];
    for (;;) {
        struct sockaddr_storage from;
        socklen_t fl = sizeof from;
        ssize_t n = recvfrom(s->fd, q, sizeof q, 0, (struct sockaddr *)&from, &fl);
        if (n < 0) {
            int rc = weft_fd_wait(s->fd, WEFT_READ);
            if (rc)
                return 0;
            continue;
        }
        s->queries++;
        size_t len = reply(q, (size_t)n, r, s->mode);
        if (len)
            sendto(s->fd, r, len, 0, (struct sockaddr *)&from, fl);
    }
}

/* DNS over TCP: each message has a two-byte length in front; the whole
 * answer, never truncated. One connection at a time, as c-ares uses. */
static int serve_dns_tcp(void *arg)
{
    struct dns_server *s = arg;
    weft_conn *c;
    while (weft_accept(s->tcp, &c, NULL) == 0) {
        unsigned char len[2], q[512], r[602];
        while (weft_conn_read_exact(c, len, 2) == 0) {
            size_t n = (size_t)(len[0] << 8 | len[1]);
            if (n > sizeof q || weft_conn_read_exact(c, q, n) != 0)
                break;
            s->tcp_queries++;
            size_t rl = reply(q, n, r + 2, s->mode == TRUNCATE ? ANSWER : s->mode);
            r[0] = (unsigned char)(rl >> 8), r[1] = (unsigned char)rl;
            if (rl && weft_conn_write_all(c, r, rl + 2) != 0)
                break;
        }
        weft_conn_close(c);
    }
    return 0;
}

static int resolve_cases(void *unused)
{
    (void)unused;
    struct dns_server s = { 0 };
    s.fd = udp_socket(&s.port);
    char csv[64];
    snprintf(csv, sizeof csv, "127.0.0.1:%d", s.port);
    EXPECT_EQ(weft_dns_set_servers(csv), 0);
    weft_dns_cache_clear();
    weft_group *g = weft_group_new();
    weft_spawn(g, serve_dns, &s, "dns");

    weft_addr a[4];
    EXPECT_EQ(weft_dns_resolve("svc.weft.test", 8080, a, 4, 0), 1);
    struct sockaddr_in *sin = (struct sockaddr_in *)&a[0].ss;
    EXPECT_EQ(sin->sin_family, AF_INET);
    EXPECT_EQ(ntohl(sin->sin_addr.s_addr), INADDR_LOOPBACK);
    EXPECT_EQ(ntohs(sin->sin_port), 8080);
    int asked = s.queries;
    EXPECT(asked >= 1);
    EXPECT_EQ(weft_dns_resolve("svc.weft.test", 9, a, 4, 0), 1);   /* from the cache */
    EXPECT_EQ(s.queries, asked);
    EXPECT_EQ(ntohs(((struct sockaddr_in *)&a[0].ss)->sin_port), 9);
    /* what failed, said: before, both were -ENOENT, "No such file or directory" */
    EXPECT_EQ(weft_dns_resolve("nowhere.example", 80, a, 4, 0), -WEFT_ENOTFOUND);
    EXPECT(strcmp(weft_strerror(-WEFT_ENOTFOUND), "name not found") == 0);
    EXPECT_EQ(weft_dns_resolve("nodata.weft.test", 80, a, 4, 0), -WEFT_ENOADDR);
    EXPECT(strcmp(weft_strerror(-WEFT_ENOADDR), "no DNS answer") == 0);
    /* literals never ask */
    asked = s.queries;
    EXPECT_EQ(weft_dns_resolve("10.1.2.3", 80, a, 4, 0), 1);
    EXPECT_EQ(weft_dns_resolve("[::1]", 80, a, 4, 0), 1);
    EXPECT_EQ(a[0].ss.ss_family, AF_INET6);
    EXPECT_EQ(s.queries, asked);
    /* bad input */
    EXPECT_EQ(weft_dns_resolve("", 80, a, 4, 0), -EINVAL);
    EXPECT_EQ(weft_dns_resolve("x", 80, a, 0, 0), -EINVAL);
    EXPECT_EQ(weft_dns_set_servers("not a server list"), -EINVAL);

    /* a connect by name through this server */
    weft_listener *l;
    EXPECT_EQ(weft_tcp_listen(&l, "127.0.0.1", 0, 0, 0), 0);
    weft_conn *c;
    weft_dns_cache_clear();
    EXPECT_EQ(weft_tcp_connect(&c, "api.weft.test", weft_listener_port(l), NULL), 0);
    weft_conn_close(c);
    /* every address is tried in turn: 127.0.0.2 refuses, 127.0.0.1 answers */
    EXPECT_EQ(weft_dns_resolve("multi.weft.test", 1, a, 4, 0), 2);
    EXPECT_EQ(weft_tcp_connect(&c, "multi.weft.test", weft_listener_port(l), NULL), 0);
    weft_conn_close(c);
    weft_listener_close(l);

    /* a server that never answers: the deadline holds */
    s.mode = SILENT;
    weft_dns_cache_clear();
    weft_scope sc;
    weft_time t0 = weft_now();
    weft_scope_enter(&sc, 200 * WEFT_MS);
    EXPECT_EQ(weft_dns_resolve("late.weft.test", 80, a, 4, 0), -ETIMEDOUT);
    EXPECT(weft_scope_exit(&sc));
    weft_time dt = weft_now() - t0;
    EXPECT(dt >= 200 * WEFT_MS && dt < 1500 * WEFT_MS);
    t0 = weft_now();
    EXPECT_EQ(weft_dns_resolve("late.weft.test", 80, a, 4, 150 * WEFT_MS), -ETIMEDOUT);
    EXPECT(weft_now() - t0 < 1500 * WEFT_MS);
    weft_net_opts o = { .connect_timeout = 100 * WEFT_MS };
    EXPECT_EQ(weft_tcp_connect(&c, "late.weft.test", 80, &o), -WEFT_ECONNECT_TIMEOUT);

    weft_group_cancel(g);
    EXPECT_EQ(weft_group_wait(g), 0);
    weft_fd_forget(s.fd);
    close(s.fd);
    EXPECT_EQ(weft_dns_set_servers(NULL), 0);
    return 0;
}
static void test_resolve(void **s) { (void)s; RUN(resolve_cases, NULL); }

/* Points lookups at these servers, in this order. */
static void use_servers(const struct dns_server *s, int n)
{
    char csv[512] = "";
    for (int i = 0; i < n; i++)
        snprintf(csv + strlen(csv), sizeof csv - strlen(csv), "%s127.0.0.1:%d", i ? "," : "",
                 s[i].port);
    EXPECT_EQ(weft_dns_set_servers(csv), 0);
    weft_dns_cache_clear();
}

static void stop_servers(weft_group *g, struct dns_server *s, int n)
{
    weft_group_cancel(g);
    EXPECT_EQ(weft_group_wait(g), 0);
    for (int i = 0; i < n; i++) {
        weft_fd_forget(s[i].fd);
        close(s[i].fd);
        weft_listener_close(s[i].tcp);
    }
    EXPECT_EQ(weft_dns_set_servers(NULL), 0);
}

/* A truncated UDP answer sends the lookup to TCP, where c-ares must be
 * able to write its query (it waits for the socket to be writable). */
static int over_tcp(void *unused)
{
    (void)unused;
    struct dns_server s = { .mode = TRUNCATE };
    /* the same port for both: a free UDP port may be taken for TCP */
    for (int tries = 0; tries < 100 && !s.tcp; tries++) {
        s.fd = udp_socket(&s.port);
        if (weft_tcp_listen(&s.tcp, "127.0.0.1", s.port, 0, 0) != 0)
            close(s.fd);
    }
    EXPECT(s.tcp != NULL);
    use_servers(&s, 1);
    weft_group *g = weft_group_new();
    weft_spawn(g, serve_dns, &s, "dns-udp");
    weft_spawn(g, serve_dns_tcp, &s, "dns-tcp");
    weft_addr a[4];
    /* 5 s: before the fix the TCP query was never sent, and this ran out */
    EXPECT_EQ(weft_dns_resolve("big.weft.test", 443, a, 4, 5 * WEFT_SEC), 1);
    EXPECT_EQ(ntohl(((struct sockaddr_in *)&a[0].ss)->sin_addr.s_addr), INADDR_LOOPBACK);
    EXPECT(s.queries >= 1);
    EXPECT(s.tcp_queries >= 1);
    stop_servers(g, &s, 1);
    return 0;
}
static void test_truncated_answer_over_tcp(void **s) { (void)s; RUN(over_tcp, NULL); }

/* Every socket of the lookup is watched, not only the first: with five
 * servers the lookup ends up with a socket to each, the first four fail
 * it at once (SERVFAIL sends c-ares to the next server), and only the
 * fifth answers, on the lookup's fifth socket. */
#define NSERVERS 5
static int many_servers(void *unused)
{
    (void)unused;
    struct dns_server s[NSERVERS];
    weft_group *g = weft_group_new();
    for (int i = 0; i < NSERVERS; i++) {
        s[i] = (struct dns_server){ .mode = i < NSERVERS - 1 ? SERVFAIL : ANSWER };
        s[i].fd = udp_socket(&s[i].port);
        weft_spawn(g, serve_dns, &s[i], "dns");
    }
    use_servers(s, NSERVERS);
    weft_addr a[4];
    EXPECT_EQ(weft_dns_resolve("fifth.weft.test", 80, a, 4, 5 * WEFT_SEC), 1);
    for (int i = 0; i < NSERVERS; i++)
        EXPECT(s[i].queries >= 1);
    stop_servers(g, s, NSERVERS);
    return 0;
}
static void test_answer_on_any_socket(void **s) { (void)s; RUN(many_servers, NULL); }

static int lookup_rc;
static int lookup(void *unused)
{
    (void)unused;
    weft_addr a[2];
    lookup_rc = weft_dns_resolve("cancel.weft.test", 80, a, 2, 0);
    return 0;
}

static int cancel_lookup(void *unused)
{
    (void)unused;
    struct dns_server s = { .mode = SILENT };
    s.fd = udp_socket(&s.port);
    char csv[64];
    snprintf(csv, sizeof csv, "127.0.0.1:%d", s.port);
    EXPECT_EQ(weft_dns_set_servers(csv), 0);
    weft_group *srv = weft_group_new();
    weft_spawn(srv, serve_dns, &s, "dns");
    weft_group *g = weft_group_new();
    weft_spawn(g, lookup, NULL, "lookup");
    weft_sleep(20 * WEFT_MS);
    weft_group_cancel(g);
    EXPECT_EQ(weft_group_wait(g), 0);
    EXPECT_EQ(lookup_rc, -ECANCELED);
    weft_group_cancel(srv);
    weft_group_wait(srv);
    weft_fd_forget(s.fd);
    close(s.fd);
    EXPECT_EQ(weft_dns_set_servers(NULL), 0);
    return 0;
}
static void test_cancel(void **s) { (void)s; RUN(cancel_lookup, NULL); }

static int hosts_file(void *unused)
{
    (void)unused;
    weft_addr a[4];
    int n = weft_dns_resolve("localhost", 80, a, 4, 0);   /* /etc/hosts, no server */
    EXPECT(n >= 1);
    return 0;
}
static void test_hosts_file(void **s) { (void)s; RUN(hosts_file, NULL); }

/* lookups on weft_run's threads: each thread's cache is freed with it
 * (LeakSanitizer checks this in the ASan build) */
static int per_thread(void *unused)
{
    (void)unused;
    weft_addr a[4];
    return weft_dns_resolve("localhost", 80, a, 4, 0) >= 1 ? 0 : -ENOENT;
}

static void test_threads_free_their_cache(void **s)
{
    (void)s;
    assert_int_equal(weft_run(2, per_thread, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resolve),
        cmocka_unit_test(test_truncated_answer_over_tcp),
        cmocka_unit_test(test_answer_on_any_socket),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_hosts_file),
        cmocka_unit_test(test_threads_free_their_cache),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
