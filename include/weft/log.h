/*
 * Logging hook. weft reports through it (stall detector, supervisors,
 * orphaned groups, servers); the default sink writes one line per message
 * to stderr as "weft: LEVEL: message". Thread-safe.
 */
#ifndef WEFT_LOG_H
#define WEFT_LOG_H

#ifdef __cplusplus
extern "C" {
#endif

enum weft_log_level { WEFT_LOG_DEBUG, WEFT_LOG_INFO, WEFT_LOG_WARN, WEFT_LOG_ERROR };

/* sink(level, message without newline, ctx); NULL restores the default.
 * Messages below min_level are dropped before formatting. */
typedef void (*weft_log_fn)(int level, const char *msg, void *ctx);
void weft_log_set(weft_log_fn sink, void *ctx, int min_level);

void weft_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

const char *weft_log_level_name(int level);   /* "debug", "info", "warn", "error" */

#ifdef __cplusplus
}
#endif

#endif
