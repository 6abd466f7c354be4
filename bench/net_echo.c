/*
 * TCP echo benchmark, weft on both sides.
 *
 *   net_echo server PORT
 *   net_echo client HOST PORT CONNS MSG_BYTES SECONDS
 *
 * The client keeps CONNS connections each doing write-then-read-back round
 * trips of MSG_BYTES for SECONDS, then prints "round_trips_per_sec N" and
 * "mb_per_sec N" (payload, one direction).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weft.h"

static int port, conns, msg, seconds;
static const char *host;

static int echo_conn(void *arg)
{
    weft_conn *c = arg;
    static __thread char buf[65536];
    int n;
    while ((n = weft_conn_read_some(c, buf, sizeof buf)) > 0)
        if (weft_conn_write_all(c, buf, (size_t)n))
            break;
    weft_conn_close(c);
    return 0;
}

static int server(void *unused)
{
    (void)unused;
    weft_listener *l;
    int rc = weft_tcp_listen(&l, "127.0.0.1", port, 1024, 0);
    if (rc)
        return rc;
    weft_group *g = weft_group_new();
    weft_net_opts o = { .read_timeout = WEFT_FOREVER, .rbuf_size = 65536 };
    for (;;) {
        weft_conn *c;
        if ((rc = weft_accept(l, &c, &o)))
            break;
        weft_spawn(g, echo_conn, c, "echo");
    }
    weft_group_cancel(g);
    weft_group_wait(g);
    weft_listener_close(l);
    return rc;
}

static long total_trips;
static weft_time end_at;

static int client_conn(void *unused)
{
    (void)unused;
    weft_conn *c;
    weft_net_opts o = { .rbuf_size = 65536 };
    int rc = weft_tcp_connect(&c, host, port, &o);
    if (rc)
        return rc;
    char *out = calloc(1, (size_t)msg), *in = malloc((size_t)msg);
    long trips = 0;
    while (weft_now() < end_at) {
        if ((rc = weft_conn_write_all(c, out, (size_t)msg)) ||
            (rc = weft_conn_read_exact(c, in, (size_t)msg)))
            break;
        trips++;
    }
    total_trips += trips;
    free(out);
    free(in);
    weft_conn_close(c);
    return rc;
}

static int client(void *unused)
{
    (void)unused;
    weft_group *g = weft_group_new();
    weft_time t0 = weft_now();
    end_at = t0 + seconds * WEFT_SEC;
    for (int i = 0; i < conns; i++)
        weft_spawn(g, client_conn, NULL, "client");
    int rc = weft_group_wait(g);
    double dt = (double)(weft_now() - t0) / WEFT_SEC;
    printf("round_trips_per_sec %.0f\n", total_trips / dt);
    printf("mb_per_sec %.1f\n", total_trips * (double)msg / dt / 1e6);
    return rc;
}

int main(int argc, char **argv)
{
    setenv("WEFT_STALL_MS", "0", 0);
    if (argc == 3 && strcmp(argv[1], "server") == 0) {
        port = atoi(argv[2]);
        return weft_main(server, NULL) ? 1 : 0;
    }
    if (argc == 7 && strcmp(argv[1], "client") == 0) {
        host = argv[2];
        port = atoi(argv[3]);
        conns = atoi(argv[4]);
        msg = atoi(argv[5]);
        seconds = atoi(argv[6]);
        int rc = weft_main(client, NULL);
        if (rc)
            fprintf(stderr, "net_echo: %s\n", weft_strerror(rc));
        return rc ? 1 : 0;
    }
    fprintf(stderr, "usage: net_echo server PORT | client HOST PORT CONNS MSG SECONDS\n");
    return 2;
}
