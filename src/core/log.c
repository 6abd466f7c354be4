/*
 * The log hook: one sink for every report weft makes (stall detector,
 * supervisors, orphaned groups, servers). Messages are formatted into a
 * stack buffer and handed to the sink whole, so lines from several threads
 * never interleave.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

static struct {
    _Atomic(weft_log_fn) sink;            /* NULL: the default sink */
    _Atomic(void *) ctx;
    _Atomic int min;
} logger = { .min = WEFT_LOG_INFO };

const char *weft_log_level_name(int level)
{
    static const char *names[] = { "debug", "info", "warn", "error" };
    return level >= 0 && level <= WEFT_LOG_ERROR ? names[level] : "?";
}

static void default_sink(int level, const char *msg, void *ctx)
{
    (void)ctx;
    char buf[4200];
    int n = snprintf(buf, sizeof buf, "weft: %s: %s\n", weft_log_level_name(level), msg);
    if (n > (int)sizeof buf - 1) {
        n = sizeof buf - 1;
        buf[n - 1] = '\n';
    }
    if (write(2, buf, n) < 0) {
        /* stderr is gone: nowhere to report */
    }
}

void weft_log_set(weft_log_fn sink, void *ctx, int min_level)
{
    atomic_store(&logger.ctx, ctx);
    atomic_store(&logger.sink, sink);
    atomic_store(&logger.min, min_level);
}

void weft_log(int level, const char *fmt, ...)
{
    if (level < atomic_load_explicit(&logger.min, memory_order_relaxed))
        return;
    char msg[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    weft_log_fn sink = atomic_load(&logger.sink);
    if (sink)
        sink(level, msg, atomic_load(&logger.ctx));
    else
        default_sink(level, msg, NULL);
}
