/*
 * The data mapper: a struct described by a table of fields (weft_pg_map),
 * read from results and written by INSERT and UPDATE.
 *
 * Reading: the first time a map decodes a row of a result, the map is
 * checked, its fields are matched to the result's columns by name and each
 * column's type is checked against its field. That binding (the column of
 * each field) is kept in the result and freed with it, so the rows of a
 * large result are matched once. Each value then goes through the result's
 * getters (result.c), which check it as they do for any caller, and the
 * mapper checks that it fits the member: too long, too large, NULL where no
 * flag can say so are errors naming the column, never truncation.
 *
 * Writing: a map's INSERT and UPDATE are built once, after its identifiers
 * are checked, and kept for the process in a table keyed by the map's
 * address that every loop reads without a lock (an entry is published
 * with a release store and never changed or freed; writers take a mutex).
 * A call then only turns the fields into parameters and runs the statement
 * through weft_pg_query or weft_pg_conn_query, whose statement cache
 * prepares it once per connection.
 */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

enum {
    BOOLOID = 16, BYTEAOID = 17, CHAROID = 18, NAMEOID = 19, INT8OID = 20, INT2OID = 21,
    INT4OID = 23, TEXTOID = 25, OIDOID = 26, JSONOID = 114, FLOAT4OID = 700, FLOAT8OID = 701,
    UNKNOWNOID = 705, BPCHAROID = 1042, VARCHAROID = 1043, DATEOID = 1082, TIMESTAMPOID = 1114,
    TIMESTAMPTZOID = 1184, NUMERICOID = 1700, UUIDOID = 2950, JSONBOID = 3802,
    FIRST_USER_OID = 16384,           /* enums, composite and other types made by users */
};

#define TYPE(f) ((f)->type & 0xff)
#define FLAGS (WEFT_PG_PTR | WEFT_PG_GENERATED | WEFT_PG_NULLABLE)
#define IDENT_MAX 63                  /* NAMEDATALEN - 1: longer names the server cuts */

static atomic_uint_fast64_t nbinds, nbuilds;

uint64_t weft__pg_map_binds(void) { return atomic_load(&nbinds); }
uint64_t weft__pg_map_builds(void) { return atomic_load(&nbuilds); }

/* code, with the words that name what failed in r->error; r is the
 * caller's (row_to takes it const for its values only) */
__attribute__((format(printf, 3, 4)))
static int fail(const weft_pg_result *r, int code, const char *fmt, ...)
{
    char why[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return weft__pg_fail((weft_pg_result *)r, code, why);
}

/* ---- maps ------------------------------------------------------------------------ */

static const char *type_name(int t)
{
    static const char *const names[] = { "?", "BOOL", "INT", "FLOAT", "TEXT", "JSON",
                                         "NUMERIC", "BYTES", "TIME", "UUID" };
    return t > 0 && t <= WEFT_PG_T_UUID ? names[t] : "?";
}

static bool is_texty(int t)
{
    return t == WEFT_PG_T_TEXT || t == WEFT_PG_T_JSON || t == WEFT_PG_T_NUMERIC;
}

/* NULL, or why f cannot be a field: the member's size is checked against
 * its type, the one thing about the member C lets us see */
static const char *bad_field(const weft_pg_field *f)
{
    int t = TYPE(f);
    size_t n = f->size;
    if (!f->column || !*f->column)
        return "no column name";
    if (f->type & ~(0xff | FLAGS) || t < WEFT_PG_T_BOOL || t > WEFT_PG_T_UUID)
        return "unknown type";
    if (f->type & WEFT_PG_PTR)
        return !is_texty(t) ? "WEFT_PG_PTR on a type that is not text"
             : n != sizeof(char *) ? "WEFT_PG_PTR on a member that is no pointer" : NULL;
    bool ok = t == WEFT_PG_T_BOOL    ? n == sizeof(bool)
            : t == WEFT_PG_T_INT     ? n == 2 || n == 4 || n == 8
            : t == WEFT_PG_T_FLOAT   ? n == sizeof(float) || n == sizeof(double)
            : t == WEFT_PG_T_BYTES   ? n == sizeof(weft_pg_bytes)
            : t == WEFT_PG_T_TIME    ? n == sizeof(int64_t)
            : t == WEFT_PG_T_UUID    ? n == 16
            : n >= 1;                 /* char arrays */
    return ok ? NULL : "the member's size is not one its type takes";
}

static int check_map(const weft_pg_result *r, const weft_pg_map *m)
{
    if (!m || m->n < 0 || m->n > 65535 || (m->n && !m->fields))
        return fail(r, -EINVAL, "bad map");
    for (int i = 0; i < m->n; i++) {
        const char *why = bad_field(&m->fields[i]);
        if (why)
            return fail(r, -EINVAL, "field %d (column \"%s\"): %s", i,
                        m->fields[i].column ? m->fields[i].column : "", why);
    }
    return 0;
}

/* ---- reading: the binding of a result's columns to a map's fields ----------------- */

struct binding {
    struct binding *next;
    const weft_pg_map *m;
    const weft_pg_field *fields;      /* m's, when bound: a map changed since is bound again */
    int n;
    int col[];                        /* the column of each field */
};

void weft__pg_binds_free(struct weft__pg_res *p)
{
    for (struct binding *b = p->binds, *next; b; b = next) {
        next = b->next;
        weft__free(b);
    }
    p->binds = NULL;
}

static bool fits(int t, unsigned oid)
{
    switch (t) {
    case WEFT_PG_T_BOOL: return oid == BOOLOID;
    case WEFT_PG_T_INT: return oid == INT2OID || oid == INT4OID || oid == INT8OID || oid == OIDOID;
    case WEFT_PG_T_FLOAT:
        return oid == FLOAT4OID || oid == FLOAT8OID || oid == NUMERICOID || oid == INT2OID ||
               oid == INT4OID || oid == INT8OID;
    case WEFT_PG_T_TEXT:
        return oid == TEXTOID || oid == VARCHAROID || oid == BPCHAROID || oid == NAMEOID ||
               oid == CHAROID || oid == UNKNOWNOID || oid >= FIRST_USER_OID;
    case WEFT_PG_T_JSON: return oid == JSONOID || oid == JSONBOID;
    case WEFT_PG_T_NUMERIC: return oid == NUMERICOID;
    case WEFT_PG_T_BYTES: return oid == BYTEAOID;
    case WEFT_PG_T_TIME: return oid == TIMESTAMPTZOID || oid == TIMESTAMPOID || oid == DATEOID;
    case WEFT_PG_T_UUID: return oid == UUIDOID;
    }
    return false;
}

/* the server's name of a type a field may meet, for errors */
static const char *oid_name(unsigned oid, char *buf, size_t len)
{
    static const struct { unsigned oid; const char *name; } names[] = {
        { BOOLOID, "bool" }, { BYTEAOID, "bytea" }, { CHAROID, "char" }, { NAMEOID, "name" },
        { INT8OID, "int8" }, { INT2OID, "int2" }, { INT4OID, "int4" }, { TEXTOID, "text" },
        { OIDOID, "oid" }, { JSONOID, "json" }, { FLOAT4OID, "float4" }, { FLOAT8OID, "float8" },
        { UNKNOWNOID, "unknown" }, { BPCHAROID, "bpchar" }, { VARCHAROID, "varchar" },
        { DATEOID, "date" }, { TIMESTAMPOID, "timestamp" }, { TIMESTAMPTZOID, "timestamptz" },
        { NUMERICOID, "numeric" }, { UUIDOID, "uuid" }, { JSONBOID, "jsonb" },
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].oid == oid)
            return names[i].name;
    snprintf(buf, len, "type %u", oid);
    return buf;
}

/* m's binding to r's columns: kept in r, made on first use. 0 or the
 * error, named in r->error. */
static int bound(const weft_pg_result *r, const weft_pg_map *m, const struct binding **out)
{
    struct weft__pg_res *p = r ? r->priv_ : NULL;
    if (!p || !p->res || p->has_err)
        return fail(r, -EINVAL, "no rows to read: the statement failed or never ran");
    for (struct binding *b = p->binds; m && b; b = b->next)
        if (b->m == m && b->fields == m->fields && b->n == m->n) {
            *out = b;
            return 0;
        }
    int rc = check_map(r, m);
    if (rc)
        return rc;
    atomic_fetch_add(&nbinds, 1);
    struct binding *b = weft__malloc(sizeof *b + (size_t)m->n * sizeof b->col[0]);
    if (!b)
        return fail(r, -ENOMEM, "binding map to columns");
    *b = (struct binding){ .m = m, .fields = m->fields, .n = m->n };
    for (int i = 0; i < m->n; i++) {
        const weft_pg_field *f = &m->fields[i];
        int col = weft_pg_col(r, f->column);
        unsigned oid = col >= 0 ? weft_pg_col_type(r, col) : 0;
        char buf[24];
        if (col < 0)
            rc = fail(r, -ENOENT, "column \"%s\" is not in the result", f->column);
        else if (!fits(TYPE(f), oid))
            rc = fail(r, -WEFT_ETYPE, "column \"%s\" is %s, which a %s field does not take",
                      f->column, oid_name(oid, buf, sizeof buf), type_name(TYPE(f)));
        if (rc) {
            weft__free(b);
            return rc;
        }
        b->col[i] = col;
    }
    b->next = p->binds;
    p->binds = b;
    *out = b;
    return 0;
}

static int store_int(char *p, size_t size, int64_t v)
{
    if (size == 2 && v >= INT16_MIN && v <= INT16_MAX)
        memcpy(p, &(int16_t){ (int16_t)v }, 2);
    else if (size == 4 && v >= INT32_MIN && v <= INT32_MAX)
        memcpy(p, &(int32_t){ (int32_t)v }, 4);
    else if (size == 8)
        memcpy(p, &v, 8);
    else
        return -ERANGE;
    return 0;
}

static int store_float(char *p, size_t size, double v)
{
    if (size == sizeof(double)) {
        memcpy(p, &v, sizeof v);
        return 0;
    }
    if (isfinite(v) && (v > FLT_MAX || v < -FLT_MAX))
        return -ERANGE;
    memcpy(p, &(float){ (float)v }, sizeof(float));
    return 0;
}

/* one value of row into its member; why says what did not fit */
static int decode(const weft_pg_result *r, int row, int col, const weft_pg_field *f, char *obj,
                  char *why, size_t wlen)
{
    char *p = obj + f->offset;
    int rc;
    switch (TYPE(f)) {
    case WEFT_PG_T_BOOL: {
        bool v;
        if (!(rc = weft_pg_get_bool(r, row, col, &v)))
            memcpy(p, &v, sizeof v);
        break;
    }
    case WEFT_PG_T_INT: {
        int64_t v;
        if (!(rc = weft_pg_get_int(r, row, col, &v)) && (rc = store_int(p, f->size, v)))
            snprintf(why, wlen, "%lld does not fit int%zu_t", (long long)v, f->size * 8);
        break;
    }
    case WEFT_PG_T_FLOAT: {
        double v;
        if (!(rc = weft_pg_get_double(r, row, col, &v)) && (rc = store_float(p, f->size, v)))
            snprintf(why, wlen, "%g does not fit float", v);
        break;
    }
    case WEFT_PG_T_BYTES: {
        weft_pg_bytes v;
        if (!(rc = weft_pg_get_bytes(r, row, col, &v.data, &v.len)))
            memcpy(p, &v, sizeof v);
        break;
    }
    case WEFT_PG_T_TIME: {
        int64_t v;
        if (!(rc = weft_pg_get_time(r, row, col, &v)))
            memcpy(p, &v, sizeof v);
        break;
    }
    case WEFT_PG_T_UUID:
        rc = weft_pg_get_uuid(r, row, col, (uint8_t *)p);
        break;
    default: {                        /* text, json, numeric */
        const char *s;
        size_t len;
        if ((rc = weft_pg_get_text(r, row, col, &s, &len)))
            break;
        if (f->type & WEFT_PG_PTR)
            memcpy(p, &s, sizeof s);
        else if (len < f->size)
            memcpy(p, s, len + 1);    /* with its NUL */
        else {
            rc = -ERANGE;
            snprintf(why, wlen, "%zu bytes do not fit char[%zu]", len, f->size);
        }
    }
    }
    bool null = rc == -ENODATA;
    if (null && (f->type & (WEFT_PG_NULLABLE | WEFT_PG_PTR) || TYPE(f) == WEFT_PG_T_BYTES)) {
        memset(p, 0, f->size);
        rc = 0;
    } else if (null)
        snprintf(why, wlen, "NULL into a field without a NULL flag");
    if (!rc && f->type & WEFT_PG_NULLABLE)
        memcpy(obj + f->null_offset, &null, sizeof null);
    return rc;
}

static int decode_row(const weft_pg_result *r, int row, const weft_pg_map *m,
                      const struct binding *b, void *out)
{
    for (int i = 0; i < m->n; i++) {
        char why[96] = "";            /* else the code's words say it (a time out of range) */
        int rc = decode(r, row, b->col[i], &m->fields[i], out, why, sizeof why);
        if (rc)
            return fail(r, rc, "column \"%s\" row %d%s%s", m->fields[i].column, row,
                        *why ? ": " : "", why);
    }
    return 0;
}

int weft_pg_row_to(const weft_pg_result *r, int row, const weft_pg_map *m, void *out)
{
    const struct binding *b;
    int rc = bound(r, m, &b);
    if (rc)
        return rc;
    if (!out || row < 0 || row >= r->nrows)
        return fail(r, -EINVAL, "no row %d (of %d)", row, r->nrows);
    return decode_row(r, row, m, b, out);
}

int weft_pg_rows_to(const weft_pg_result *r, const weft_pg_map *m, void *out, size_t stride, int max)
{
    const struct binding *b;
    int rc = bound(r, m, &b);
    if (rc)
        return rc;
    if (!out || !stride || max < 0)
        return fail(r, -EINVAL, "no array to fill");
    int n = r->nrows < max ? r->nrows : max;
    for (int i = 0; i < n; i++)
        if ((rc = decode_row(r, i, m, b, (char *)out + (size_t)i * stride)))
            return rc;
    return n;
}

/* ---- writing: the SQL of a map, built once ------------------------------------------- */

struct sqls {
    struct sqls *next;
    const weft_pg_map *m;             /* the map as built: a map changed at the same */
    const char *table, *key;          /* address is built again (and not kept) */
    const weft_pg_field *fields;
    int n;
    int key_field;                    /* the key's field, or -1 */
    char *insert, *update;            /* update NULL: no_update says why */
    const char *no_update;
};

static bool ident_ok(const char *s, size_t n)
{
    if (n == 0 || n > IDENT_MAX || !(s[0] == '_' || ((s[0] | 0x20) >= 'a' && (s[0] | 0x20) <= 'z')))
        return false;
    for (size_t i = 1; i < n; i++) {
        char c = s[i];
        if (!(c == '_' || c == '$' || (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')))
            return false;
    }
    return true;
}

/* identifier, or schema.identifier */
static bool table_ok(const char *t)
{
    if (!t)
        return false;
    const char *dot = strchr(t, '.');
    return dot ? ident_ok(t, (size_t)(dot - t)) && ident_ok(dot + 1, strlen(dot + 1))
               : ident_ok(t, strlen(t));
}

struct sb {
    char *p;
    size_t len, cap;
    bool oom;
};

static void put(struct sb *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap && !b->oom) {
        size_t cap = (b->len + n + 1) * 2;
        char *p = realloc(b->p, cap);     /* kept for the process: libc's, see sql_of */
        if (!p)
            b->oom = true;
        else {
            b->p = p;
            b->cap = cap;
        }
    }
    if (b->oom)
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void puts_(struct sb *b, const char *s) { put(b, s, strlen(s)); }

/* a checked identifier, quoted; a table as "schema"."name" */
static void put_ident(struct sb *b, const char *s)
{
    const char *dot = strchr(s, '.');
    put(b, "\"", 1);
    if (dot) {
        put(b, s, (size_t)(dot - s));
        put(b, "\".\"", 3);
        s = dot + 1;
    }
    puts_(b, s);
    put(b, "\"", 1);
}

static void put_param(struct sb *b, int i)
{
    char num[16];
    put(b, num, (size_t)snprintf(num, sizeof num, "$%d", i));
}

static bool in_insert(const weft_pg_field *f) { return !(f->type & WEFT_PG_GENERATED); }

static bool in_set(const struct sqls *q, int i)
{
    return in_insert(&q->fields[i]) && i != q->key_field;
}

static char *build_insert(const struct sqls *q)
{
    struct sb b = { 0 };
    puts_(&b, "INSERT INTO ");
    put_ident(&b, q->table);
    int np = 0;
    for (int i = 0; i < q->n; i++)
        if (in_insert(&q->fields[i])) {
            puts_(&b, np++ ? ", " : " (");
            put_ident(&b, q->fields[i].column);
        }
    if (np) {
        puts_(&b, ") VALUES (");
        for (int i = 1; i <= np; i++) {
            if (i > 1)
                puts_(&b, ", ");
            put_param(&b, i);
        }
        puts_(&b, ")");
    } else
        puts_(&b, " DEFAULT VALUES");
    puts_(&b, " RETURNING *");
    if (b.oom)
        free(b.p);
    return b.oom ? NULL : b.p;
}

static char *build_update(const struct sqls *q)
{
    struct sb b = { 0 };
    puts_(&b, "UPDATE ");
    put_ident(&b, q->table);
    int np = 0;
    for (int i = 0; i < q->n; i++)
        if (in_set(q, i)) {
            puts_(&b, np++ ? ", " : " SET ");
            put_ident(&b, q->fields[i].column);
            puts_(&b, " = ");
            put_param(&b, np);
        }
    puts_(&b, " WHERE ");
    put_ident(&b, q->fields[q->key_field].column);
    puts_(&b, " = ");
    put_param(&b, np + 1);
    puts_(&b, " RETURNING *");
    if (b.oom)
        free(b.p);
    return b.oom ? NULL : b.p;
}

static void sqls_free(struct sqls *q)
{
    if (q) {
        free(q->insert);
        free(q->update);
        free(q);
    }
}

/* checks m's names and builds its statements into a new entry (libc's) */
static int build(weft_pg_result *r, const weft_pg_map *m, struct sqls **out)
{
    int rc = check_map(r, m);
    if (rc)
        return rc;
    if (!table_ok(m->table))
        return fail(r, -EINVAL, "table \"%s\" is not an identifier", m->table ? m->table : "");
    if (m->key && !ident_ok(m->key, strlen(m->key)))
        return fail(r, -EINVAL, "key \"%s\" is not an identifier", m->key);
    for (int i = 0; i < m->n; i++)
        if (!ident_ok(m->fields[i].column, strlen(m->fields[i].column)))
            return fail(r, -EINVAL, "column \"%s\" is not an identifier", m->fields[i].column);
    struct sqls *q = calloc(1, sizeof *q);
    if (!q)
        return fail(r, -ENOMEM, "building SQL for table \"%s\"", m->table);
    *q = (struct sqls){ .m = m, .table = m->table, .key = m->key, .fields = m->fields, .n = m->n,
                        .key_field = -1 };
    for (int i = 0; m->key && i < m->n; i++)
        if (strcmp(m->fields[i].column, m->key) == 0)
            q->key_field = i;
    int nset = 0;
    for (int i = 0; i < m->n; i++)
        nset += in_set(q, i);
    q->no_update = !m->key ? "the map has no key"
                 : q->key_field < 0 ? "the key is no field's column"
                 : !nset ? "nothing to set but the key and generated columns" : NULL;
    q->insert = build_insert(q);
    q->update = q->no_update ? NULL : build_update(q);
    if (!q->insert || (!q->no_update && !q->update)) {
        sqls_free(q);
        return fail(r, -ENOMEM, "building SQL for table \"%s\"", m->table);
    }
    atomic_fetch_add(&nbuilds, 1);
    *out = q;
    return 0;
}

/* The kept statements, by map address: lock-free reads, a mutex for
 * writers. Entries live as long as the process (callers on other loops may
 * be using them at any time), so they come from libc, not the allocator
 * hook: a counting allocator must not see them as leaks, and a later
 * weft_set_allocator must not free them. Past SQL_MAX maps (maps made at
 * run time, not static tables) statements are built per call. */
#define SQL_BUCKETS 64
#define SQL_MAX 4096

static _Atomic(struct sqls *) kept[SQL_BUCKETS];
static pthread_mutex_t kept_mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned nkept;

static _Atomic(struct sqls *) *bucket(const weft_pg_map *m)
{
    uint64_t x = (uint64_t)(uintptr_t)m * 0x9E3779B97F4A7C15ull;   /* Fibonacci hashing */
    return &kept[x >> 58];
}

static struct sqls *find(const weft_pg_map *m)
{
    for (struct sqls *q = atomic_load_explicit(bucket(m), memory_order_acquire); q; q = q->next)
        if (q->m == m && q->table == m->table && q->key == m->key && q->fields == m->fields &&
            q->n == m->n)
            return q;
    return NULL;
}

/* m's statements: kept, or built for this call only into *own (the
 * caller frees it) when the table is full */
static int sql_of(weft_pg_result *r, const weft_pg_map *m, const struct sqls **out, struct sqls **own)
{
    *own = NULL;
    if ((*out = find(m)))
        return 0;
    struct sqls *q = NULL;
    int rc = build(r, m, &q);
    if (rc)
        return rc;
    pthread_mutex_lock(&kept_mu);
    struct sqls *had = find(m);       /* another loop built it meanwhile */
    if (!had && nkept < SQL_MAX) {
        _Atomic(struct sqls *) *head = bucket(m);
        q->next = atomic_load_explicit(head, memory_order_relaxed);
        atomic_store_explicit(head, q, memory_order_release);
        nkept++;
        had = q;
    }
    pthread_mutex_unlock(&kept_mu);
    if (!had)
        *own = q;                     /* not kept: the caller frees it */
    else if (had != q)
        sqls_free(q);
    *out = had ? had : q;
    return 0;
}

/* ---- writing: an object's fields as parameters ---------------------------------------- */

#define TEXT_MAX 64                   /* a time (any int64 year, " BC") or a uuid */

/* year, month, day of a day count from 1970-01-01 (Howard Hinnant's
 * civil_from_days; result.c has the inverse) */
static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* Unix µs as the ISO text the server reads into timestamptz, timestamp or
 * date: "YYYY-MM-DD HH:MM:SS.ffffff+00[ BC]" */
static void format_time(int64_t us, char *buf)
{
    int64_t secs = us / 1000000, frac = us % 1000000;
    if (frac < 0) {
        frac += 1000000;
        secs--;
    }
    int64_t days = secs / 86400, sod = secs % 86400;
    if (sod < 0) {
        sod += 86400;
        days--;
    }
    int64_t y;
    int m, d;
    civil_from_days(days, &y, &m, &d);
    bool bc = y <= 0;                 /* year 0 is 1 BC */
    snprintf(buf, TEXT_MAX, "%04lld-%02d-%02d %02d:%02d:%02d.%06d+00%s",
             (long long)(bc ? 1 - y : y), m, d, (int)(sod / 3600), (int)(sod / 60 % 60),
             (int)(sod % 60), (int)frac, bc ? " BC" : "");
}

static void format_uuid(const uint8_t *u, char *buf)
{
    static const char hex[] = "0123456789abcdef";
    char *p = buf;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *p++ = '-';
        *p++ = hex[u[i] >> 4];
        *p++ = hex[u[i] & 15];
    }
    *p = 0;
}

/* field f of obj as a parameter; text it needs goes into buf */
static int param(weft_pg_result *r, const weft_pg_field *f, const char *obj, char *buf,
                 weft_pg_val *v)
{
    const char *p = obj + f->offset;
    bool null = false;
    if (f->type & WEFT_PG_NULLABLE)
        memcpy(&null, obj + f->null_offset, sizeof null);
    if (null) {
        *v = WEFT_PG_NULL;
        return 0;
    }
    switch (TYPE(f)) {
    case WEFT_PG_T_BOOL: {
        bool b;
        memcpy(&b, p, sizeof b);
        *v = WEFT_PG_BOOL(b);
        return 0;
    }
    case WEFT_PG_T_INT: {
        int16_t i2;
        int32_t i4;
        int64_t i8;
        if (f->size == 2)
            memcpy(&i2, p, 2), i8 = i2;
        else if (f->size == 4)
            memcpy(&i4, p, 4), i8 = i4;
        else
            memcpy(&i8, p, 8);
        *v = WEFT_PG_INT(i8);
        return 0;
    }
    case WEFT_PG_T_FLOAT: {
        float f4;
        double f8;
        if (f->size == sizeof f4)
            memcpy(&f4, p, sizeof f4), f8 = f4;
        else
            memcpy(&f8, p, sizeof f8);
        *v = WEFT_PG_FLOAT(f8);
        return 0;
    }
    case WEFT_PG_T_BYTES: {
        weft_pg_bytes b;
        memcpy(&b, p, sizeof b);
        *v = b.data ? WEFT_PG_BYTES(b.data, b.len) : WEFT_PG_NULL;
        return 0;
    }
    case WEFT_PG_T_TIME: {
        int64_t us;
        memcpy(&us, p, sizeof us);
        format_time(us, buf);
        *v = WEFT_PG_TEXT(buf);
        return 0;
    }
    case WEFT_PG_T_UUID:
        format_uuid((const uint8_t *)p, buf);
        *v = WEFT_PG_TEXT(buf);
        return 0;
    }
    if (f->type & WEFT_PG_PTR) {      /* text, json, numeric; NULL is SQL NULL */
        const char *s;
        memcpy(&s, p, sizeof s);
        *v = WEFT_PG_TEXT(s);
    } else if (!memchr(p, 0, f->size))
        return fail(r, -ERANGE, "column \"%s\": char[%zu] holds no NUL", f->column, f->size);
    else
        *v = WEFT_PG_TEXT(p);
    return 0;
}

/* INSERT (the fields not generated) or UPDATE (the fields to set, then the
 * key) of obj, on the pool or on c */
static int write_obj(weft_pg *db, weft_pg_conn *c, const weft_pg_map *m, const void *obj,
                     weft_pg_result *r, bool update)
{
    if (!r)
        return -EINVAL;
    memset(r, 0, sizeof *r);
    const struct sqls *q = NULL;
    struct sqls *own = NULL;
    int rc = obj ? sql_of(r, m, &q, &own) : fail(r, -EINVAL, "no object to write");
    if (rc)
        return rc;
    enum { SMALL = 16 };
    weft_pg_val small_v[SMALL], *vals = small_v;
    char small_t[SMALL][TEXT_MAX], (*texts)[TEXT_MAX] = small_t;
    if (update && q->no_update) {
        rc = fail(r, -EINVAL, "no UPDATE for table \"%s\": %s", q->table, q->no_update);
        goto out;
    }
    if (q->n > SMALL) {
        vals = weft__malloc((size_t)q->n * (sizeof *vals + TEXT_MAX));
        if (!vals) {
            rc = fail(r, -ENOMEM, "parameters");
            goto out;
        }
        texts = (char (*)[TEXT_MAX])(vals + q->n);
    }
    int np = 0;
    for (int i = 0; i < q->n && !rc; i++)
        if (update ? in_set(q, i) : in_insert(&q->fields[i]))
            rc = param(r, &q->fields[i], obj, texts[np], &vals[np]), np++;
    if (!rc && update) {
        rc = param(r, &q->fields[q->key_field], obj, texts[np], &vals[np]), np++;
        if (!rc && vals[np - 1].kind_ == WEFT__PG_NULL)   /* WHERE key = NULL matches nothing */
            rc = fail(r, -EINVAL, "the key is NULL: there is no row to update");
    }
    if (!rc) {
        const char *sql = update ? q->update : q->insert;
        rc = c ? weft_pg_conn_query(c, r, sql, np, vals) : weft_pg_query(db, r, sql, np, vals);
    }
    if (vals != small_v)
        weft__free(vals);
out:
    sqls_free(own);
    return rc;
}

int weft_pg_insert(weft_pg *db, const weft_pg_map *m, const void *obj, weft_pg_result *r)
{
    return write_obj(db, NULL, m, obj, r, false);
}

int weft_pg_update(weft_pg *db, const weft_pg_map *m, const void *obj, weft_pg_result *r)
{
    return write_obj(db, NULL, m, obj, r, true);
}

/* weft_pg_conn_query's answer to a NULL connection, the same here */
static int no_conn(weft_pg_result *r)
{
    return weft_pg_conn_query(NULL, r, NULL, 0, NULL);
}

int weft_pg_conn_insert(weft_pg_conn *c, const weft_pg_map *m, const void *obj, weft_pg_result *r)
{
    return c ? write_obj(NULL, c, m, obj, r, false) : no_conn(r);
}

int weft_pg_conn_update(weft_pg_conn *c, const weft_pg_map *m, const void *obj, weft_pg_result *r)
{
    return c ? write_obj(NULL, c, m, obj, r, true) : no_conn(r);
}
