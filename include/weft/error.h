/*
 * Error codes.
 *
 * Every fallible weft function returns an int: 0 (or a documented count)
 * on success, a negative code on failure. Codes are negative errno values
 * (-ETIMEDOUT, -ECANCELED, -ECONNREFUSED, ...) or the negation of one of
 * weft's own codes below, which sit above the errno range (WEFT_ERR_BASE).
 *
 *     int rc = weft_sleep(WEFT_SEC);
 *     if (rc == -ECANCELED) ...
 *     if (weft_is_timeout(rc)) ...       (true for -ETIMEDOUT and every
 *                                         per-operation timeout below)
 *     log("%s", weft_strerror(rc));
 *
 * weft_strerror() and weft_is_timeout() accept a code with either sign.
 */
#ifndef WEFT_ERROR_H
#define WEFT_ERROR_H

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WEFT_ERR_BASE 10000

/* X(name, offset, message, is_timeout) — the one list every table is built from. */
#define WEFT_ERROR_MAP(X)                                               \
    X(ECONNECT_TIMEOUT, 1, "connect timeout", 1)                        \
    X(EREAD_TIMEOUT,    2, "read timeout", 1)                           \
    X(EWRITE_TIMEOUT,   3, "write timeout", 1)                          \
    X(EPOOL_TIMEOUT,    4, "pool timeout", 1)                           \
    X(EACQUIRE_TIMEOUT, 5, "acquire timeout", 1)                        \
    X(EBROKEN,          6, "connection broken by an earlier failure", 0) \
    X(ECLOSED,          7, "object closed", 0)                        \
    X(EEOF,             8, "unexpected end of stream", 0)               \
    X(ETLS,             9, "TLS error", 0)                              \
    X(ETLS_VERIFY,     10, "TLS certificate verification failed", 0)  \
    X(EREDIRECT,       11, "redirect refused", 0)                      \
    X(ENOTFOUND,       12, "name not found", 0)                        \
    X(ENOADDR,         13, "no DNS answer", 0)                         \
    X(EDNS,            14, "DNS server failure", 0)                    \
    X(EPG,             15, "PostgreSQL error", 0)                      \
    X(EQUERY_TIMEOUT,  16, "query timeout", 1)                         \
    X(EREDIS,          17, "Redis error reply", 0)                     \
    X(ECOMMAND_TIMEOUT, 18, "command timeout", 1)                      \
    X(ETYPE,           19, "type mismatch", 0)                         \
    X(EJOB_DEAD,       20, "job dead", 0)

enum {
#define WEFT__ERR_ENUM(name, off, msg, tmo) WEFT_##name = WEFT_ERR_BASE + (off),
    WEFT_ERROR_MAP(WEFT__ERR_ENUM)
#undef WEFT__ERR_ENUM
    WEFT_ERR_END
};

/* A static, human-readable message for any code (either sign). Never NULL.
 * -ETIMEDOUT reads "deadline exceeded", -ECANCELED reads "cancelled". */
const char *weft_strerror(int err);

/* The code's symbolic name ("ETIMEDOUT", "WEFT_EPOOL_TIMEOUT"), or "E?" */
const char *weft_errname(int err);

/* True for -ETIMEDOUT and for every weft timeout code (either sign). */
bool weft_is_timeout(int err);

#ifdef __cplusplus
}
#endif

#endif
