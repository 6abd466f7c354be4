/* libFuzzer target: weft pg's result getters on arbitrary cell text, as a
 * hostile or broken server could send it. The first byte picks the
 * column's type (an OID weft reads, or another), the rest is the value.
 * Every getter runs on it; a getter that says 0 must have read what a
 * strict reader of the server's text form reads (integers, bytea), and
 * nothing may crash or read past the cell. */
#include <errno.h>
#include <libpq-fe.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg/internal.h"

static const Oid types[] = { 16, 17, 20, 21, 23, 26, 700, 701, 1082, 1114, 1184, 1700, 2950, 25 };

/* a strict int8 text: -?[0-9]+ within range */
static int ref_int(const char *s, int64_t *v)
{
    const char *p = s + (*s == '-');
    if (!*p || strspn(p, "0123456789") != strlen(p))
        return -ERANGE;
    __int128 x = 0;
    for (; *p; p++) {
        x = x * 10 + (*p - '0');
        if (x > (__int128)INT64_MAX + 1)
            return -ERANGE;
    }
    if (*s == '-')
        x = -x;
    if (x > INT64_MAX || x < INT64_MIN)
        return -ERANGE;
    *v = (int64_t)x;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    Oid type = types[data[0] % (sizeof types / sizeof types[0])];
    char *text = malloc(size);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = 0;
    size_t len = strlen(text);                /* a cell's text has no NUL */
    PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
    PGresAttDesc att = { .name = "c", .typid = type, .typlen = -1, .atttypmod = -1 };
    if (!res || !PQsetResultAttrs(res, 1, &att) || !PQsetvalue(res, 0, 0, text, (int)len))
        abort();
    weft_pg_result r = { 0 };
    if (weft__pg_result_set(&r, res))
        abort();
    int64_t i, want;
    double d;
    bool b;
    const char *s;
    size_t n;
    int rc = weft_pg_get_int(&r, 0, 0, &i);
    if (rc == 0 && (ref_int(text, &want) || want != i))
        abort();                              /* a garbage value */
    if (rc == -ERANGE && (type == 20 || type == 21 || type == 23 || type == 26) &&
        ref_int(text, &want) == 0)
        abort();                              /* refused a good one */
    weft_pg_get_double(&r, 0, 0, &d);
    weft_pg_get_bool(&r, 0, 0, &b);
    if (weft_pg_get_text(&r, 0, 0, &s, &n) != 0 || n != len || memcmp(s, text, len))
        abort();
    weft_pg_get_time(&r, 0, 0, &i);
    uint8_t u[16];
    weft_pg_get_uuid(&r, 0, 0, u);
    const void *p;
    if (weft_pg_get_bytes(&r, 0, 0, &p, &n) == 0) {
        /* \x then the bytes in hex: the decoded length, and the bytes again */
        if (len != 2 + 2 * n)
            abort();
        for (size_t k = 0; k < n; k++) {
            char hex[3];
            snprintf(hex, sizeof hex, "%02x", ((const uint8_t *)p)[k]);
            if (strncasecmp(hex, text + 2 + 2 * k, 2))
                abort();
        }
        const void *again;
        size_t n2;
        if (weft_pg_get_bytes(&r, 0, 0, &again, &n2) || again != p || n2 != n)
            abort();                          /* decoded once, kept in r */
    }
    weft_pg_result_free(&r);
    free(text);
    return 0;
}
