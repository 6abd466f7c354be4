/*
 * Metrics registry: counters, gauges and histograms, rendered in the
 * Prometheus text format. Updates are lock-free atomics, cheap enough to be
 * always on, and safe from any thread. Metrics live for the whole process:
 * asking for a name that exists returns the same metric (so every loop's
 * pool can share one), and a name registered with another type is -EINVAL.
 *
 * A name may carry labels: "http_requests_total{route=\"/x\",code=\"200\"}";
 * series of one family are rendered under one HELP/TYPE header.
 */
#ifndef WEFT_METRICS_H
#define WEFT_METRICS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_metric weft_metric;

/* NULL with errno EINVAL (bad name, type clash) or ENOMEM. help may be NULL. */
weft_metric *weft_counter(const char *name, const char *help);
weft_metric *weft_gauge(const char *name, const char *help);

/* bounds: n strictly increasing upper bounds (the +Inf bucket is implied). */
weft_metric *weft_histogram(const char *name, const char *help,
                            const double *bounds, size_t n);

void weft_metric_add(weft_metric *m, int64_t delta);   /* counter, gauge */
void weft_metric_set(weft_metric *m, int64_t value);   /* gauge */
void weft_metric_observe(weft_metric *m, double value); /* histogram */
/* n observations of the same value at once (a batch of fast paths) */
void weft_metric_observe_n(weft_metric *m, double value, uint64_t n);
int64_t weft_metric_value(const weft_metric *m);       /* counter/gauge value, histogram count */

/* Prometheus text of every metric into buf (NUL-terminated); returns the
 * length the full text needs (snprintf-like). */
size_t weft_metrics_render(char *buf, size_t size);

#ifdef __cplusplus
}
#endif

#endif
