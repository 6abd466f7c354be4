/*
 * The seed's observability without writing it: /metrics as a handler, and
 * per-route request counters and latency histograms as middleware.
 *
 * Labels are the matched route's pattern ("/users/{id}"), never the path:
 * a path is the client's to choose, and each label value is a series the
 * registry keeps for ever. Each loop keeps its own small cache of
 * (route, status) → counter, so a request costs no registry lookup.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server_internal.h"

int weft_http_metrics_handler(weft_http_req *req, weft_http_res *res, void *ctx)
{
    (void)req, (void)ctx;
    size_t need = weft_metrics_render(NULL, 0) + 1, len;
    char *buf = NULL;
    for (;;) {                            /* a metric born meanwhile: render again, whole */
        weft__free(buf);
        if (!(buf = weft__malloc(need)))
            return -ENOMEM;
        if ((len = weft_metrics_render(buf, need)) < need)
            break;
        need = len + 4096;
    }
    int rc = weft_http_res_header(res, "Content-Type", "text/plain; version=0.0.4");
    if (!rc)
        rc = weft_http_res_body(res, buf, len);
    weft__free(buf);
    return rc;
}

#define SEEN 128

struct seen {
    char route[128];                      /* a copy: a freed server's may be reused */
    int status;
    weft_metric *count, *latency;
};

static __thread struct seen seen[SEEN];
static __thread int nseen;

static const double bounds[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                 0.1,    0.25,  0.5,    1,     2.5,  5,     10 };

static void label(char *out, size_t size, const char *v)
{
    size_t n = 0;
    for (; *v && n + 3 < size; v++) {
        if (*v == '"' || *v == '\\')
            out[n++] = '\\';
        out[n++] = *v == '\n' ? ' ' : *v;
    }
    out[n] = 0;
}

static struct seen *series(const char *route, int status)
{
    for (int i = 0; i < nseen; i++)
        if (seen[i].status == status &&
            strcmp(seen[i].route, route) == 0)
            return &seen[i];
    char r[256], name[400];
    label(r, sizeof r, route);
    struct seen s = { .status = status };
    snprintf(s.route, sizeof s.route, "%s", route);
    snprintf(name, sizeof name, "weft_http_requests_total{route=\"%s\",status=\"%d\"}", r, status);
    s.count = weft_counter(name, "HTTP requests answered, by route and status");
    snprintf(name, sizeof name, "weft_http_request_duration_seconds{route=\"%s\"}", r);
    s.latency = weft_histogram(name, "From the request's head read to its response ready",
                               bounds, sizeof bounds / sizeof *bounds);
    if (nseen == SEEN)
        nseen = 0;                        /* more shapes than that: start over, still counted */
    seen[nseen] = s;
    return &seen[nseen++];
}

static void after(weft_http_req *req, weft_http_res *res, void *ctx)
{
    (void)ctx;
    const char *route = weft_http_req_route(req);
    struct seen *s = series(route ? route : "unrouted", weft_http_res_get_status(res));
    if (s->count)
        weft_metric_add(s->count, 1);
    weft_time t0 = weft_http_req_started(req);
    if (s->latency && t0)
        weft_metric_observe(s->latency, (double)(weft_now() - t0) / WEFT_SEC);
}

int weft_http_server_use_metrics(weft_http_server *s)
{
    return weft_http_server_use(s, NULL, after, NULL);
}
