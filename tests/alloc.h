/*
 * Fault injection for tests: fail each allocation weft makes in turn
 * (curl's torture mode), through weft_set_allocator.
 *
 * alloc_sweep(fn, arg, clean) runs fn as the root task of a fresh loop
 * with every allocation succeeding (twice: the first run makes what lives
 * on, such as metrics), counts the allocations of the second, then runs
 * once more for each k of them with the k-th one failing; clean(rc)
 * decides whether each result is an honest error. A crash fails the test
 * by itself, and leaks are reported by the ASan build (LeakSanitizer at
 * exit). ALLOC_DEBUG=1 in the environment prints each result and the
 * stack of each failed allocation.
 */
#ifndef WEFT_TEST_ALLOC_H
#define WEFT_TEST_ALLOC_H

#include <execinfo.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#include "test.h"

static _Atomic long alloc_fail_at = -1;   /* the allocation to fail, -1: none */
static _Atomic long alloc_seen;

static bool alloc_fails_now(void)
{
    if (atomic_fetch_add(&alloc_seen, 1) != atomic_load(&alloc_fail_at))
        return false;
    if (getenv("ALLOC_DEBUG")) {          /* where it failed */
        void *at[24];
        backtrace_symbols_fd(at, backtrace(at, 24), 2);
    }
    return true;
}

static void *failing_malloc(size_t n) { return alloc_fails_now() ? NULL : malloc(n); }

static void *failing_realloc(void *p, size_t n)
{
    return alloc_fails_now() ? NULL : realloc(p, n);
}

static const weft_allocator alloc_failing = { failing_malloc, failing_realloc, free };

/* Returns how many allocations were swept. */
static inline long alloc_sweep(weft_fn fn, void *arg, bool (*clean)(int rc))
{
    weft_set_allocator(&alloc_failing);
    atomic_store(&alloc_fail_at, -1);
    test_failures = 0;
    int rc = weft_main(fn, arg);          /* warms up what lives on (metrics) */
    atomic_store(&alloc_seen, 0);
    if (rc == 0)
        rc = weft_main(fn, arg);
    long total = atomic_load(&alloc_seen);
    if (rc != 0 || test_failures) {
        weft_set_allocator(NULL);
        fail_msg("the run without failures gave %d (%s)", rc, weft_strerror(rc));
    }
    for (long k = 0; k < total; k++) {
        atomic_store(&alloc_seen, 0);
        atomic_store(&alloc_fail_at, k);
        rc = weft_main(fn, arg);
        if (getenv("ALLOC_DEBUG"))
            fprintf(stderr, "allocation %ld of %ld failing: %d (%s)\n", k, total, rc,
                    weft_strerror(rc));
        if (!clean(rc) || test_failures) {
            weft_set_allocator(NULL);
            fail_msg("allocation %ld of %ld failing gave %d (%s)", k, total, rc,
                     weft_strerror(rc));
        }
    }
    weft_set_allocator(NULL);
    return total;
}

#endif
