/*
 * PostgreSQL point selects through weft_pg, as the anchors run them
 * (../shared/bench/anchors/pg/py_pg.py): W tasks each doing
 *   SELECT abalance FROM pgbench_accounts WHERE aid = $1   (random aid, scale 10)
 * for D seconds after a 1 s warm-up, through a pool of 5..20 connections.
 *
 *   pg_select URL [D=10] [W=20] [PIPELINE=8] [QUERY_TIMEOUT s, 0: none]
 *   (PIPELINE 1: exclusive connections)
 *
 * Prints one JSON line: ops, secs, ops_s, cpu_s (getrusage over the measured
 * window), p50_ms, p99_ms per query.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "measure.h"
#include "weft.h"
#include "weft/pg.h"

#define MAXLAT (1 << 22)

static const char *url;
static double dur = 10;
static int workers = 20;
static unsigned pipeline = 8;
static weft_time qtimeout;                        /* 0: the default (30 s) */
static weft_pg *db;
static bool measuring, stopping;
static long ops, errors;
static float *lat;
static long nlat;
static double result_secs, result_cpu;   /* printed after the loop: sorting is no loop work */

static int worker(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg * 2654435761u + 1;
    while (!stopping) {
        seed = seed * 1103515245 + 12345;
        weft_pg_val p[] = { WEFT_PG_INT(1 + (seed >> 8) % 1000000) };
        weft_pg_result r;
        weft_time t0 = weft_now();
        int rc = weft_pg_query(db, &r, "SELECT abalance FROM pgbench_accounts WHERE aid = $1", 1, p);
        int64_t v;
        if (rc || weft_pg_get_int(&r, 0, 0, &v)) {
            if (errors++ < 3)
                fprintf(stderr, "pg_select: %s\n", r.error);
        } else if (measuring) {
            ops++;
            if (nlat < MAXLAT)
                lat[nlat++] = (float)(weft_now() - t0) / 1e6f;
        }
        weft_pg_result_free(&r);
    }
    return 0;
}

static int run(void *unused)
{
    (void)unused;
    db = weft_pg_new(url, &(weft_pg_opts){ .min_size = 5, .max_size = 20, .pipeline = pipeline,
                                            .query_timeout = qtimeout });
    if (!db)
        return -errno;
    weft_group *g = weft_group_new();
    for (int i = 0; i < workers; i++)
        weft_spawn(g, worker, (void *)(uintptr_t)i, "worker");
    weft_sleep(WEFT_SEC);                         /* warm-up */
    measuring = true;
    double c0 = measure_cpu();
    weft_time t0 = weft_now();
    weft_sleep((weft_time)(dur * WEFT_SEC));
    measuring = false;
    double secs = (double)(weft_now() - t0) / WEFT_SEC, cpu_s = measure_cpu() - c0;
    stopping = true;
    weft_group_wait(g);
    weft_pg_close(db, WEFT_SEC);
    result_secs = secs;
    result_cpu = cpu_s;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: pg_select URL [D=10] [W=20] [PIPELINE=8]\n");
        return 2;
    }
    url = argv[1];
    if (argc > 2)
        dur = atof(argv[2]);
    if (argc > 3)
        workers = atoi(argv[3]);
    if (argc > 4)
        pipeline = (unsigned)atoi(argv[4]);
    if (argc > 5)                                 /* query_timeout in s, 0: none */
        qtimeout = atof(argv[5]) > 0 ? (weft_time)(atof(argv[5]) * WEFT_SEC) : WEFT_FOREVER;
    lat = malloc(MAXLAT * sizeof *lat);
    if (weft_main(run, NULL))
        return 1;
    measure_print(ops, result_secs, result_cpu, lat, nlat, errors);
    return errors ? 1 : 0;
}
