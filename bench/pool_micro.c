/*
 * Pool acquire + release, uncontended (one idle resource, one task):
 * prints "pool_acquire_release_ns N".
 */
#include <stdio.h>
#include <stdlib.h>

#include "weft.h"

static int make(void *ctx, void **res)
{
    (void)ctx;
    *res = malloc(1);
    return 0;
}
static void drop(void *ctx, void *res)
{
    (void)ctx;
    free(res);
}

static int root(void *arg)
{
    int n = *(int *)arg;
    weft_pool_ops ops = { make, drop, NULL, NULL };
    weft_pool *p = weft_pool_new(NULL, &ops, NULL);
    weft_pooled *h;
    weft_pool_acquire(p, &h);
    weft_pool_release(p, h);
    weft_time t0 = weft_now();
    for (int i = 0; i < n; i++) {
        weft_pool_acquire(p, &h);
        weft_pool_release(p, h);
    }
    printf("pool_acquire_release_ns %.1f\n", (double)(weft_now() - t0) / n);
    return weft_pool_close(p, WEFT_SEC);
}

int main(int argc, char **argv)
{
    int n = (int)((argc > 1 ? atof(argv[1]) : 1.0) * 10000000);
    setenv("WEFT_STALL_MS", "0", 0);
    return weft_main(root, &n) ? 1 : 0;
}
