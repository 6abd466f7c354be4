/*
 * weft serve: the example service (in progress: the endpoints that need no
 * database yet). One loop per thread, each with its own SO_REUSEPORT
 * listener on the same port; SIGTERM or SIGINT shuts every loop down
 * gracefully.
 *
 *   GET /plaintext   "Hello, World!" (the TechEmpower plaintext test)
 *   GET /json        {"message":"Hello, World!"}
 *   GET /healthz     ok
 *   GET /metrics     Prometheus text: requests by route and status, and
 *                    everything weft registers (pools, loop stalls)
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "weft.h"

static const char usage_text[] =
    "usage: weft serve [--host HOST] [--port PORT] [--threads N]\n"
    "  --host HOST    address to listen on (default 127.0.0.1)\n"
    "  --port PORT    default 8080\n"
    "  --threads N    loops, one per thread (default: one per core)\n";

struct service {
    const char *host;
    int port, threads;
    weft_http_server *server;
};

static int plaintext(weft_http_req *q, weft_http_res *r, void *ctx)
{
    (void)q;
    (void)ctx;
    weft_http_res_header(r, "Content-Type", "text/plain");
    return weft_http_res_body(r, "Hello, World!", 13);
}

static int json(weft_http_req *q, weft_http_res *r, void *ctx)
{
    (void)q;
    (void)ctx;
    json_t *j = json_pack("{s:s}", "message", "Hello, World!");
    int rc = weft_http_res_json(r, j);
    json_decref(j);
    return rc;
}

static int healthz(weft_http_req *q, weft_http_res *r, void *ctx)
{
    (void)q;
    (void)ctx;
    weft_http_res_header(r, "Content-Type", "text/plain");
    return weft_http_res_body(r, "ok\n", 3);
}

static int metrics(weft_http_req *q, weft_http_res *r, void *ctx)
{
    (void)q;
    (void)ctx;
    size_t need = weft_metrics_render(NULL, 0) + 1;
    char *buf = malloc(need);
    if (!buf)
        return -ENOMEM;
    weft_metrics_render(buf, need);
    weft_http_res_header(r, "Content-Type", "text/plain; version=0.0.4");
    int rc = weft_http_res_body(r, buf, strlen(buf));
    free(buf);
    return rc;
}

/* requests by route and status, after every response is ready */
static void count(weft_http_req *q, weft_http_res *r, void *ctx)
{
    (void)ctx;
    const char *path = weft_http_req_path(q);
    const char *route = !strcmp(path, "/plaintext") || !strcmp(path, "/json") ||
                        !strcmp(path, "/healthz") || !strcmp(path, "/metrics") ? path : "other";
    char name[160];
    snprintf(name, sizeof name, "weft_http_requests_total{route=\"%s\",status=\"%d\"}", route,
             weft_http_res_get_status(r));
    weft_metric_add(weft_counter(name, "HTTP requests by route and status"), 1);
}

static int on_signal(void *arg)
{
    struct service *sv = arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    int sig = weft_signal_wait(&set);
    if (sig > 0) {
        weft_log(WEFT_LOG_INFO, "serve: %s, shutting down gracefully",
                 sig == SIGTERM ? "SIGTERM" : "SIGINT");
        weft_http_server_shutdown(sv->server);
    }
    return 0;
}

static int loop_main(void *arg)
{
    struct service *sv = arg;
    weft_listener *l;
    int rc = weft_tcp_listen(&l, sv->host, sv->port, 4096, WEFT_REUSEPORT);
    if (rc) {
        weft_log(WEFT_LOG_ERROR, "serve: cannot listen on %s:%d: %s", sv->host, sv->port,
                 weft_strerror(rc));
        return rc;
    }
    weft_group *g = NULL;
    if (weft_loop_index() == 0) {
        printf("weft serve: listening on http://%s:%d/ with %d loop%s; try\n"
               "  curl http://%s:%d/plaintext\n  curl http://%s:%d/json\n"
               "  curl http://%s:%d/healthz\n  curl http://%s:%d/metrics\n",
               sv->host, sv->port, weft_loop_count(), weft_loop_count() > 1 ? "s" : "",
               sv->host, sv->port, sv->host, sv->port, sv->host, sv->port, sv->host, sv->port);
        fflush(stdout);
        g = weft_group_new();
        weft_spawn(g, on_signal, sv, "signals");
    }
    rc = weft_http_serve(sv->server, l);
    if (g) {
        weft_group_cancel(g);
        weft_group_wait(g);
    }
    return rc;
}

int weft_cmd_serve(int argc, char **argv)
{
    struct service sv = { .host = "127.0.0.1", .port = 8080, .threads = 0 };
    static const struct option longopts[] = {
        { "host", required_argument, NULL, 'H' },
        { "port", required_argument, NULL, 'p' },
        { "threads", required_argument, NULL, 't' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c;
    char *end;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'H':
            sv.host = optarg;
            break;
        case 'p':
            sv.port = (int)strtol(optarg, &end, 10);
            if (*end || sv.port < 1 || sv.port > 65535) {
                fprintf(stderr, "weft serve: --port needs a number from 1 to 65535\n%s", usage_text);
                return 2;
            }
            break;
        case 't':
            sv.threads = (int)strtol(optarg, &end, 10);
            if (*end || sv.threads < 1 || sv.threads > 1024) {
                fprintf(stderr, "weft serve: --threads needs a number from 1 to 1024\n%s", usage_text);
                return 2;
            }
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        default:
            fprintf(stderr, "weft serve: unknown or incomplete option\n%s", usage_text);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "weft serve: unexpected argument '%s'\n%s", argv[optind], usage_text);
        return 2;
    }
    /* the signals go to the signalfd of loop 0, whichever thread gets them */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    if (!(sv.server = weft_http_server_new(NULL)))
        return 1;
    weft_http_server_route(sv.server, "GET", "/plaintext", plaintext, NULL);
    weft_http_server_route(sv.server, "GET", "/json", json, NULL);
    weft_http_server_route(sv.server, "GET", "/healthz", healthz, NULL);
    weft_http_server_route(sv.server, "GET", "/metrics", metrics, NULL);
    weft_http_server_use(sv.server, NULL, count, NULL);
    int rc = weft_run(sv.threads, loop_main, &sv);
    weft_http_server_free(sv.server);
    if (rc)
        fprintf(stderr, "weft serve: %s\n", weft_strerror(rc));
    return rc ? 1 : 0;
}
