/*
 * Redis SET and GET through weft_redis, as the anchors run them
 * (../shared/bench/anchors/redis/py_redis.py): W tasks each looping
 * SET k v; GET k (3-byte value) for D seconds after a 1 s warm-up.
 *
 *   redis_getset URL [D=10] [W=50] [MAX_IN_FLIGHT=1024] [MAX_SIZE=16]
 *   (MAX_IN_FLIGHT 1: one command per connection, no auto-pipelining)
 *
 * Prints one JSON line: ops (commands), secs, ops_s, cpu_s (getrusage over
 * the measured window), p50_ms, p99_ms per command.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "measure.h"
#include "weft.h"
#include "weft/redis.h"

#define MAXLAT (1 << 23)

static const char *url;
static double dur = 10;
static int workers = 50;
static unsigned in_flight = 1024, max_size = 16;
static weft_redis *rd;
static bool measuring, stopping;
static long ops, errors;
static float *lat;
static long nlat;
static double result_secs, result_cpu;   /* printed after the loop: sorting is no loop work */

static void one(const char *const *argv, int argc)
{
    weft_redis_reply *rep;
    weft_time t0 = weft_now();
    int rc = weft_redis_command(rd, &rep, argc, argv, NULL);
    if (rc) {
        if (errors++ < 3)
            fprintf(stderr, "redis_getset: %s\n", weft_strerror(rc));
    } else if (measuring) {
        ops++;
        if (nlat < MAXLAT)
            lat[nlat++] = (float)(weft_now() - t0) / 1e6f;
    }
    weft_redis_reply_free(rep);
}

static int worker(void *arg)
{
    char key[32];
    snprintf(key, sizeof key, "key:%d", (int)(uintptr_t)arg);
    while (!stopping) {
        one((const char *[]){ "SET", key, "xxx" }, 3);
        one((const char *[]){ "GET", key }, 2);
    }
    return 0;
}

static int run(void *unused)
{
    (void)unused;
    rd = weft_redis_new(url, &(weft_redis_opts){ .max_in_flight = in_flight, .max_size = max_size });
    if (!rd)
        return -errno;
    weft_group *g = weft_group_new();
    for (int i = 0; i < workers; i++)
        weft_spawn(g, worker, (void *)(uintptr_t)i, "worker");
    weft_sleep(WEFT_SEC);
    measuring = true;
    double c0 = measure_cpu();
    weft_time t0 = weft_now();
    weft_sleep((weft_time)(dur * WEFT_SEC));
    measuring = false;
    double secs = (double)(weft_now() - t0) / WEFT_SEC, cpu_s = measure_cpu() - c0;
    stopping = true;
    weft_group_wait(g);
    weft_redis_close(rd, WEFT_SEC);
    result_secs = secs;
    result_cpu = cpu_s;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: redis_getset URL [D=10] [W=50] [MAX_IN_FLIGHT=1024] [MAX_SIZE=16]\n");
        return 2;
    }
    url = argv[1];
    if (argc > 2)
        dur = atof(argv[2]);
    if (argc > 3)
        workers = atoi(argv[3]);
    if (argc > 4)
        in_flight = (unsigned)atoi(argv[4]);
    if (argc > 5)
        max_size = (unsigned)atoi(argv[5]);
    lat = malloc(MAXLAT * sizeof *lat);
    if (weft_main(run, NULL))
        return 1;
    measure_print(ops, result_secs, result_cpu, lat, nlat, errors);
    return errors ? 1 : 0;
}
