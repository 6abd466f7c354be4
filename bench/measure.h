/*
 * What the client benchmarks (pg_select, redis_getset) measure, as the
 * anchors' harness.py reads it: the process's CPU over the measured
 * window, and one JSON line with ops, secs, ops/s, cpu_s and the p50/p99
 * latency of one operation (sorted after the loop ended: no loop work).
 */
#ifndef WEFT_BENCH_MEASURE_H
#define WEFT_BENCH_MEASURE_H

#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

static inline double measure_cpu(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

static inline int measure_cmp(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* lat: n latencies in ms, sorted here */
static inline void measure_print(long ops, double secs, double cpu_s, float *lat, long n, long errors)
{
    qsort(lat, (size_t)n, sizeof *lat, measure_cmp);
    printf("{\"ops\": %ld, \"secs\": %.3f, \"ops_s\": %.1f, \"cpu_s\": %.3f, \"p50_ms\": %.3f, "
           "\"p99_ms\": %.3f, \"errors\": %ld}\n",
           ops, secs, ops / secs, cpu_s, n ? lat[n / 2] : 0.0, n ? lat[n * 99 / 100] : 0.0, errors);
}

#endif
