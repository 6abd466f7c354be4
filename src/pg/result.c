/*
 * Results: a PGresult held by the caller's weft_pg_result, its server
 * error broken into fields, and the getters. Values arrive in text form
 * (the session's DateStyle is ISO and its TimeZone UTC, so the forms are
 * fixed) and are read in place; each getter checks the column's type and
 * that the value fits, so a mismatch is an error, never a garbage value.
 * bytea is decoded from hex once per cell asked, into memory the result
 * owns.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

enum {
    BOOLOID = 16, BYTEAOID = 17, INT8OID = 20, INT2OID = 21, INT4OID = 23, OIDOID = 26,
    FLOAT4OID = 700, FLOAT8OID = 701, DATEOID = 1082, TIMESTAMPOID = 1114,
    TIMESTAMPTZOID = 1184, NUMERICOID = 1700, UUIDOID = 2950,
};

struct bytes_cache {
    struct bytes_cache *next;
    int row, col;
    size_t len;
    unsigned char data[];
};

void weft_pg_result_free(weft_pg_result *r)
{
    if (!r || !r->priv_)
        return;
    PQclear(r->priv_->res);
    weft__pg_binds_free(r->priv_);
    for (struct bytes_cache *b = r->priv_->bytes, *next; b; b = next) {
        next = b->next;
        weft__free(b);
    }
    weft__free(r->priv_);
    r->priv_ = NULL;
}

static struct weft__pg_res *priv(weft_pg_result *r, PGresult *res)
{
    if (!r->priv_ && !(r->priv_ = weft__calloc(1, sizeof *r->priv_))) {
        PQclear(res);
        return NULL;
    }
    PQclear(r->priv_->res);
    weft__pg_binds_free(r->priv_);
    r->priv_->res = res;
    return r->priv_;
}

int weft__pg_result_set(weft_pg_result *r, PGresult *res)
{
    if (!priv(r, res))
        return weft__pg_fail(r, -ENOMEM, NULL);
    r->nrows = PQntuples(res);
    r->ncols = PQnfields(res);
    const char *n = PQcmdTuples(res);
    r->affected = *n ? strtoll(n, NULL, 10) : -1;
    return 0;
}

int weft__pg_result_error(weft_pg_result *r, PGresult *res)
{
    struct weft__pg_res *p = priv(r, res);
    if (!p)
        return weft__pg_fail(r, -ENOMEM, NULL);
    weft_pg_error_info *e = &p->err;
    e->sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    e->severity = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    e->message = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    e->detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
    e->hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);
    e->constraint = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME);
    e->table = PQresultErrorField(res, PG_DIAG_TABLE_NAME);
    e->column = PQresultErrorField(res, PG_DIAG_COLUMN_NAME);
    p->has_err = true;
    r->nrows = r->ncols = 0;
    r->affected = -1;
    const char *msg = e->message ? e->message : PQresultErrorMessage(res);
    snprintf(r->error, sizeof r->error, "%s (SQLSTATE %s)", msg,
             e->sqlstate ? e->sqlstate : "none");
    return -WEFT_EPG;
}

int weft__pg_fail(weft_pg_result *r, int code, const char *detail)
{
    if (r) {
        if (detail && *detail)
            snprintf(r->error, sizeof r->error, "%s: %s", weft_strerror(code), detail);
        else
            snprintf(r->error, sizeof r->error, "%s", weft_strerror(code));
        char *nl = strchr(r->error, '\n');    /* libpq's messages end in one */
        if (nl)
            *nl = 0;
    }
    return code;
}

const weft_pg_error_info *weft_pg_error(const weft_pg_result *r)
{
    return r && r->priv_ && r->priv_->has_err ? &r->priv_->err : NULL;
}

/* ---- columns ------------------------------------------------------------------ */

static PGresult *res_of(const weft_pg_result *r)
{
    return r && r->priv_ && !r->priv_->has_err ? r->priv_->res : NULL;
}

int weft_pg_col(const weft_pg_result *r, const char *name)
{
    PGresult *res = res_of(r);
    if (!res || !name)
        return -ENOENT;
    for (int i = 0; i < r->ncols; i++)            /* exact: PQfnumber folds case */
        if (strcmp(PQfname(res, i), name) == 0)
            return i;
    return -ENOENT;
}

const char *weft_pg_col_name(const weft_pg_result *r, int col)
{
    PGresult *res = res_of(r);
    return res && col >= 0 && col < r->ncols ? PQfname(res, col) : NULL;
}

unsigned weft_pg_col_type(const weft_pg_result *r, int col)
{
    PGresult *res = res_of(r);
    return res && col >= 0 && col < r->ncols ? PQftype(res, col) : 0;
}

/* the cell's text, or the getter's error */
static int cell(const weft_pg_result *r, int row, int col, const char **s, Oid *type)
{
    PGresult *res = res_of(r);
    if (!res || row < 0 || row >= r->nrows || col < 0 || col >= r->ncols)
        return -EINVAL;
    if (PQgetisnull(res, row, col))
        return -ENODATA;
    *s = PQgetvalue(res, row, col);
    *type = PQftype(res, col);
    return 0;
}

bool weft_pg_is_null(const weft_pg_result *r, int row, int col)
{
    PGresult *res = res_of(r);
    return res && row >= 0 && row < r->nrows && col >= 0 && col < r->ncols &&
           PQgetisnull(res, row, col);
}

int weft_pg_get_text(const weft_pg_result *r, int row, int col, const char **s, size_t *len)
{
    Oid t;
    const char *v;
    int rc = cell(r, row, col, &v, &t);
    if (rc)
        return rc;
    *s = v;
    if (len)
        *len = (size_t)PQgetlength(r->priv_->res, row, col);
    return 0;
}

int weft_pg_get_bool(const weft_pg_result *r, int row, int col, bool *v)
{
    Oid t;
    const char *s;
    int rc = cell(r, row, col, &s, &t);
    if (rc)
        return rc;
    if (t != BOOLOID)
        return -WEFT_ETYPE;
    *v = s[0] == 't';
    return 0;
}

int weft_pg_get_int(const weft_pg_result *r, int row, int col, int64_t *v)
{
    Oid t;
    const char *s;
    int rc = cell(r, row, col, &s, &t);
    if (rc)
        return rc;
    if (t != INT2OID && t != INT4OID && t != INT8OID && t != OIDOID)
        return -WEFT_ETYPE;
    if (*s != '-' && (*s < '0' || *s > '9'))
        return -ERANGE;                       /* the server's form: strtoll takes " 5", "+5" */
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (errno || end == s || *end)
        return -ERANGE;
    *v = x;
    return 0;
}

int weft_pg_get_double(const weft_pg_result *r, int row, int col, double *v)
{
    Oid t;
    const char *s;
    int rc = cell(r, row, col, &s, &t);
    if (rc)
        return rc;
    if (t != FLOAT4OID && t != FLOAT8OID && t != NUMERICOID && t != INT2OID &&
        t != INT4OID && t != INT8OID)
        return -WEFT_ETYPE;
    char *end;
    errno = 0;
    double x = strtod(s, &end);                   /* NaN, Infinity, -Infinity too */
    if (end == s || *end)
        return -ERANGE;
    if (errno == ERANGE && isinf(x))
        return -ERANGE;                           /* a numeric past double's range */
    *v = x;
    return 0;
}

/* ---- time ------------------------------------------------------------------------ */

/* days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's) */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static const char *digits(const char *s, int n, int64_t *v)
{
    *v = 0;
    for (int i = 0; i < n; i++, s++) {
        if (*s < '0' || *s > '9')
            return NULL;
        *v = *v * 10 + (*s - '0');
    }
    return s;
}

/* ISO forms: "YYYY-MM-DD", "YYYY-MM-DD HH:MM:SS[.ffffff][+HH[:MM[:SS]]]",
 * each possibly with " BC"; years may have more than 4 digits */
static int parse_time(const char *s, bool with_time, int64_t *us)
{
    if (strcmp(s, "infinity") == 0 || strcmp(s, "-infinity") == 0)
        return -ERANGE;
    int64_t y = 0, mo, d, h = 0, mi = 0, sec = 0, frac = 0, off = 0;
    int yd = 0;
    while (s[yd] >= '0' && s[yd] <= '9')
        yd++;
    if (yd < 4 || yd > 9 || !digits(s, yd, &y))
        return -ERANGE;
    s += yd;
    if (*s++ != '-' || !(s = digits(s, 2, &mo)) || *s++ != '-' || !(s = digits(s, 2, &d)))
        return -ERANGE;
    if (with_time) {
        if (*s++ != ' ' || !(s = digits(s, 2, &h)) || *s++ != ':' || !(s = digits(s, 2, &mi)) ||
            *s++ != ':' || !(s = digits(s, 2, &sec)))
            return -ERANGE;
        if (*s == '.') {
            int n = 0;
            for (s++; *s >= '0' && *s <= '9'; s++, n++)
                if (n < 6)
                    frac = frac * 10 + (*s - '0');
            for (; n < 6; n++)
                frac *= 10;
        }
        if (*s == '+' || *s == '-') {
            int sign = *s++ == '-' ? -1 : 1;
            int64_t oh, om = 0, os = 0;
            if (!(s = digits(s, 2, &oh)))
                return -ERANGE;
            if (*s == ':' && !(s = digits(s + 1, 2, &om)))
                return -ERANGE;
            if (*s == ':' && !(s = digits(s + 1, 2, &os)))
                return -ERANGE;
            off = sign * (oh * 3600 + om * 60 + os);
        }
    }
    if (strcmp(s, " BC") == 0) {
        y = 1 - y;                                /* 1 BC is year 0 */
        s += 3;
    }
    if (*s || mo < 1 || mo > 12 || d < 1 || d > 31)
        return -ERANGE;
    int64_t secs = days_from_civil(y, (int)mo, (int)d) * 86400 + h * 3600 + mi * 60 + sec - off;
    if (secs > INT64_MAX / 1000000 - 1 || secs < INT64_MIN / 1000000 + 1)
        return -ERANGE;
    *us = secs * 1000000 + frac;
    return 0;
}

int weft_pg_get_time(const weft_pg_result *r, int row, int col, int64_t *unix_us)
{
    Oid t;
    const char *s;
    int rc = cell(r, row, col, &s, &t);
    if (rc)
        return rc;
    if (t != TIMESTAMPTZOID && t != TIMESTAMPOID && t != DATEOID)
        return -WEFT_ETYPE;
    return parse_time(s, t != DATEOID, unix_us);
}

/* ---- bytea and uuid -------------------------------------------------------------- */

static int hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

int weft_pg_get_bytes(const weft_pg_result *r, int row, int col, const void **p, size_t *len)
{
    Oid t;
    const char *s;
    int rc = cell(r, row, col, &s, &t);
    if (rc)
        return rc;
    if (t != BYTEAOID)
        return -WEFT_ETYPE;
    for (struct bytes_cache *b = r->priv_->bytes; b; b = b->next)
        if (b->row == row && b->col == col) {
            *p = b->data;
            *len = b->len;
            return 0;
        }
    size_t n = (size_t)PQgetlength(r->priv_->res, row, col);
    if (n < 2 || s[0] != '\\' || s[1] != 'x' || n % 2)
        return -ERANGE;                           /* bytea_output is hex since 9.0 */
    struct bytes_cache *b = weft__malloc(sizeof *b + (n - 2) / 2 + 1);
    if (!b)
        return -ENOMEM;
    for (size_t i = 2; i < n; i += 2) {
        int hi = hexval(s[i]), lo = hexval(s[i + 1]);
        if (hi < 0 || lo < 0) {
            weft__free(b);
            return -ERANGE;
        }
        b->data[(i - 2) / 2] = (unsigned char)(hi << 4 | lo);
    }
    b->row = row;
    b->col = col;
    b->len = (n - 2) / 2;
    b->data[b->len] = 0;
    b->next = r->priv_->bytes;
    r->priv_->bytes = b;
    *p = b->data;
    *len = b->len;
    return 0;
}

int weft_pg_get_uuid(const weft_pg_result *r, int row, int col, uint8_t out[16])
{
    Oid t;
    const char *s;
    int rc = cell(r, row, col, &s, &t);
    if (rc)
        return rc;
    if (t != UUIDOID)
        return -WEFT_ETYPE;
    uint8_t u[16];
    int n = 0;
    for (; *s && n < 32; s++) {
        if (*s == '-')
            continue;
        int v = hexval(*s);
        if (v < 0)
            return -ERANGE;
        u[n / 2] = (uint8_t)(n % 2 ? u[n / 2] | v : v << 4);
        n++;
    }
    if (n != 32 || *s)
        return -ERANGE;
    memcpy(out, u, 16);
    return 0;
}
