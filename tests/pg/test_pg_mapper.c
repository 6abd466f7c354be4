/*
 * The data mapper against a real PostgreSQL (the fixture's): every field
 * type both ways, NULLs, every mismatch named, arrays of rows, generated
 * keys, UPDATE by key, identifiers refused, and the caches (a result's
 * columns matched once per map; a map's SQL built once, across loops).
 */
#include <stdatomic.h>

#include "pg/internal.h"              /* weft__pg_map_binds/builds: the caches' counters */
#include "pgtest.h"

static void select_(weft_pg *db, weft_pg_result *r, const char *sql)
{
    int rc = weft_pg_query(db, r, sql, 0, NULL);
    if (rc)
        fprintf(stderr, "%s: %s\n", sql, r->error);
    EXPECT_EQ(rc, 0);
}

/* r->error names what it should */
#define EXPECT_ERROR(r, s)                                                         \
    do {                                                                           \
        if (!strstr((r)->error, (s))) {                                            \
            test_failures++;                                                       \
            fprintf(stderr, "%s:%d: error \"%s\" does not say %s\n", __FILE__,     \
                    __LINE__, (r)->error, (s));                                    \
        }                                                                          \
    } while (0)

/* ---- one row of every type ------------------------------------------------------------ */

typedef struct rec {
    int64_t id;
    bool flag;
    int16_t small;
    int32_t mid;
    int64_t big;
    float f4;
    double f8;
    char name[16];
    const char *bio;
    weft_pg_bytes data;
    int64_t at, day;
    uint8_t uid[16];
    char doc[64];
    char price[32];
    const char *docp, *pricep;
    int32_t maybe;
    bool maybe_null;
    const char *note;
    int64_t created;
} rec;

static const weft_pg_field rec_fields[] = {
    WEFT_PG_FIELD(rec, id, "id", WEFT_PG_T_INT | WEFT_PG_GENERATED),
    WEFT_PG_FIELD(rec, flag, "flag", WEFT_PG_T_BOOL),
    WEFT_PG_FIELD(rec, small, "small", WEFT_PG_T_INT),
    WEFT_PG_FIELD(rec, mid, "mid", WEFT_PG_T_INT),
    WEFT_PG_FIELD(rec, big, "big", WEFT_PG_T_INT),
    WEFT_PG_FIELD(rec, f4, "f4", WEFT_PG_T_FLOAT),
    WEFT_PG_FIELD(rec, f8, "f8", WEFT_PG_T_FLOAT),
    WEFT_PG_FIELD(rec, name, "name", WEFT_PG_T_TEXT),
    WEFT_PG_FIELD(rec, bio, "bio", WEFT_PG_T_STR),
    WEFT_PG_FIELD(rec, data, "data", WEFT_PG_T_BYTES),
    WEFT_PG_FIELD(rec, at, "at", WEFT_PG_T_TIME),
    WEFT_PG_FIELD(rec, day, "day", WEFT_PG_T_TIME),
    WEFT_PG_FIELD(rec, uid, "uid", WEFT_PG_T_UUID),
    WEFT_PG_FIELD(rec, doc, "doc", WEFT_PG_T_JSON),
    WEFT_PG_FIELD(rec, price, "price", WEFT_PG_T_NUMERIC),
    WEFT_PG_FIELD(rec, docp, "docp", WEFT_PG_T_JSON | WEFT_PG_PTR),
    WEFT_PG_FIELD(rec, pricep, "pricep", WEFT_PG_T_NUMERIC | WEFT_PG_PTR),
    WEFT_PG_FIELD_NULL(rec, maybe, "maybe", WEFT_PG_T_INT, maybe_null),
    WEFT_PG_FIELD(rec, note, "note", WEFT_PG_T_STR),
    WEFT_PG_FIELD(rec, created, "created", WEFT_PG_T_TIME | WEFT_PG_GENERATED),
};
static const weft_pg_map rec_map = WEFT_PG_MAP("weft_t_map", "id", rec_fields);

static const uint8_t blob[] = { 0, 1, 2, 0xff, 0x80, '\\', 'x' };

/* a row the server takes: json and numeric need valid text */
static rec plain(const char *name)
{
    rec a = { .doc = "{}", .price = "0" };
    snprintf(a.name, sizeof a.name, "%s", name);
    return a;
}

static weft_pg *open_with_table(void)
{
    weft_pg *db = weft_pg_new(pgt_url(), &(weft_pg_opts){ .min_size = 1, .max_size = 4 });
    EXPECT(db != NULL);
    pgt_exec(db, "DROP TABLE IF EXISTS weft_t_map");
    pgt_exec(db, "CREATE TABLE weft_t_map (id bigserial PRIMARY KEY, flag bool NOT NULL, small int2,"
             " mid int4, big int8, f4 float4, f8 float8, name text, bio varchar(200), data bytea,"
             " at timestamptz, day date, uid uuid, doc jsonb, price numeric, docp json,"
             " pricep numeric, maybe int4, note text, created timestamptz NOT NULL DEFAULT now())");
    return db;
}

static bool same_str(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

static void expect_same(const rec *a, const rec *b)
{
    EXPECT(a->flag == b->flag);
    EXPECT_EQ(a->small, b->small);
    EXPECT_EQ(a->mid, b->mid);
    EXPECT(a->big == b->big);
    EXPECT(a->f4 == b->f4);
    EXPECT(a->f8 == b->f8);
    EXPECT(strcmp(a->name, b->name) == 0);
    EXPECT(same_str(a->bio, b->bio));
    EXPECT(a->data.len == b->data.len &&
           (a->data.data == b->data.data || memcmp(a->data.data, b->data.data, a->data.len) == 0));
    EXPECT(a->at == b->at);
    EXPECT(a->day == b->day);
    EXPECT(memcmp(a->uid, b->uid, 16) == 0);
    EXPECT(strcmp(a->doc, b->doc) == 0);
    EXPECT(strcmp(a->price, b->price) == 0);
    EXPECT(same_str(a->docp, b->docp));
    EXPECT(same_str(a->pricep, b->pricep));
    EXPECT(a->maybe_null == b->maybe_null);
    EXPECT_EQ(a->maybe, b->maybe);
    EXPECT(same_str(a->note, b->note));
}

/* inserts a, checks RETURNING and a fresh SELECT of it both read back as a */
static int64_t round_trip(weft_pg *db, const rec *a)
{
    weft_pg_result r;
    int rc = weft_pg_insert(db, &rec_map, a, &r);
    if (rc)
        fprintf(stderr, "insert: %s\n", r.error);
    EXPECT_EQ(rc, 0);
    EXPECT_EQ(r.nrows, 1);
    EXPECT_EQ(r.affected, 1);
    rec b;
    memset(&b, 0x55, sizeof b);
    rc = weft_pg_row_to(&r, 0, &rec_map, &b);
    if (rc)
        fprintf(stderr, "row_to: %s\n", r.error);
    EXPECT_EQ(rc, 0);
    expect_same(a, &b);
    EXPECT(b.id > 0);
    EXPECT(b.created > 1700000000LL * 1000000);       /* the server's now() came back */
    int64_t id = b.id;
    weft_pg_result_free(&r);
    weft_pg_val p[] = { WEFT_PG_INT(id) };
    EXPECT_EQ(weft_pg_query(db, &r, "SELECT * FROM weft_t_map WHERE id = $1", 1, p), 0);
    memset(&b, 0x55, sizeof b);
    EXPECT_EQ(weft_pg_row_to(&r, 0, &rec_map, &b), 0);
    expect_same(a, &b);
    EXPECT(b.id == id);
    weft_pg_result_free(&r);
    return id;
}

static int types(void *unused)
{
    (void)unused;
    weft_pg *db = open_with_table();
    rec a = { .flag = true, .small = -32768, .mid = INT32_MIN, .big = INT64_MAX, .f4 = 1.5f,
              .f8 = 0.1, .name = "héllo 'q'", .bio = "a \"bio\"",
              .data = { blob, sizeof blob }, .at = 1709212455123456LL,
              .day = -86400LL * 1000000, .doc = "{\"a\": [1, 2]}",
              .price = "12345678901234567890.5", .docp = "[true,  null]",
              .pricep = "-0.000001", .maybe = 42, .note = "" };
    for (int i = 0; i < 16; i++)
        a.uid[i] = (uint8_t)(0xa0 + i);
    round_trip(db, &a);
    /* the other extremes: BC, a µs before midnight, the other ends of the ranges */
    rec z = { .small = 32767, .mid = INT32_MAX, .big = INT64_MIN, .f4 = -3.25f, .f8 = -1e300,
              .name = "0123456789abcde", .bio = "", .data = { "", 0 },
              .at = -62135596800000001LL,     /* 0001-12-31 23:59:59.999999 BC */
              .day = 253402214400LL * 1000000, /* 9999-12-31 */
              .doc = "null", .price = "0", .docp = "{}", .pricep = "NaN", .note = "x" };
    round_trip(db, &z);
    /* the text the server got is the one written: a timestamp in UTC, a uuid */
    weft_pg_result r;
    select_(db, &r, "SELECT at::text, uid::text, day::text FROM weft_t_map ORDER BY id");
    const char *s;
    EXPECT_EQ(weft_pg_get_text(&r, 0, 0, &s, NULL), 0);
    EXPECT(strcmp(s, "2024-02-29 13:14:15.123456+00") == 0);
    EXPECT_EQ(weft_pg_get_text(&r, 0, 1, &s, NULL), 0);
    EXPECT(strcmp(s, "a0a1a2a3-a4a5-a6a7-a8a9-aaabacadaeaf") == 0);
    EXPECT_EQ(weft_pg_get_text(&r, 1, 0, &s, NULL), 0);
    EXPECT(strcmp(s, "0001-12-31 23:59:59.999999+00 BC") == 0);
    EXPECT_EQ(weft_pg_get_text(&r, 1, 2, &s, NULL), 0);
    EXPECT(strcmp(s, "9999-12-31") == 0);
    weft_pg_result_free(&r);
    pgt_exec(db, "DROP TABLE weft_t_map");
    EXPECT_EQ(weft_pg_close(db, WEFT_SEC), 0);
    return 0;
}
static void test_types(void **s) { (void)s; RUN(types, NULL); }

/* ---- NULL ------------------------------------------------------------------------------ */

typedef struct just_mid { int32_t mid; } just_mid;
static const weft_pg_field just_mid_fields[] = { WEFT_PG_FIELD(just_mid, mid, "mid", WEFT_PG_T_INT) };
static const weft_pg_map just_mid_map = WEFT_PG_MAP("weft_t_map", NULL, just_mid_fields);

static int nulls(void *unused)
{
    (void)unused;
    weft_pg *db = open_with_table();
    /* flagged and pointer fields write NULL ... */
    rec a = plain("n");
    a.maybe = 99;
    a.maybe_null = true;
    weft_pg_result r;
    EXPECT_EQ(weft_pg_insert(db, &rec_map, &a, &r), 0);
    weft_pg_result_free(&r);
    select_(db, &r, "SELECT maybe IS NULL AND bio IS NULL AND data IS NULL AND docp IS NULL"
                    " AND pricep IS NULL AND note IS NULL, small IS NULL FROM weft_t_map");
    bool b;
    EXPECT_EQ(weft_pg_get_bool(&r, 0, 0, &b), 0);
    EXPECT(b);
    EXPECT_EQ(weft_pg_get_bool(&r, 0, 1, &b), 0);
    EXPECT(!b);                                       /* an int without a flag: 0, not NULL */
    weft_pg_result_free(&r);
    /* ... and read it back: the flag set, the member zeroed, pointers NULL */
    select_(db, &r, "SELECT * FROM weft_t_map");
    rec c;
    memset(&c, 0x55, sizeof c);
    EXPECT_EQ(weft_pg_row_to(&r, 0, &rec_map, &c), 0);
    EXPECT(c.maybe_null);
    EXPECT_EQ(c.maybe, 0);
    EXPECT(!c.bio && !c.data.data && !c.docp && !c.pricep && !c.note);
    weft_pg_result_free(&r);
    /* a value clears the flag */
    weft_pg_val p[] = { WEFT_PG_INT(7) };
    EXPECT_EQ(weft_pg_query(db, &r, "UPDATE weft_t_map SET maybe = $1 RETURNING *", 1, p), 0);
    EXPECT_EQ(weft_pg_row_to(&r, 0, &rec_map, &c), 0);
    EXPECT(!c.maybe_null);
    EXPECT_EQ(c.maybe, 7);
    weft_pg_result_free(&r);
    /* NULL into a field with no flag is an error naming the column */
    select_(db, &r, "SELECT NULL::int4 AS mid");
    just_mid m = { 5 };
    EXPECT_EQ(weft_pg_row_to(&r, 0, &just_mid_map, &m), -ENODATA);
    EXPECT_ERROR(&r, "column \"mid\" row 0: NULL");
    weft_pg_result_free(&r);
    pgt_exec(db, "DROP TABLE weft_t_map");
    EXPECT_EQ(weft_pg_close(db, WEFT_SEC), 0);
    return 0;
}
static void test_nulls(void **s) { (void)s; RUN(nulls, NULL); }

/* ---- mismatches --------------------------------------------------------------------------- */

typedef struct tiny {
    int16_t s;
    char name[4];
    float f;
    char doc[8];
} tiny;

static const weft_pg_field tiny_fields[] = {
    WEFT_PG_FIELD(tiny, s, "s", WEFT_PG_T_INT),
    WEFT_PG_FIELD(tiny, name, "name", WEFT_PG_T_TEXT),
    WEFT_PG_FIELD(tiny, f, "f", WEFT_PG_T_FLOAT),
    WEFT_PG_FIELD(tiny, doc, "doc", WEFT_PG_T_JSON),
};
static const weft_pg_map tiny_map = WEFT_PG_MAP("tiny", NULL, tiny_fields);

/* decodes the one row of sql into a tiny: the code, r's error in err */
static int tiny_of(weft_pg *db, const char *sql, tiny *t, char *err)
{
    weft_pg_result r;
    select_(db, &r, sql);
    int rc = weft_pg_row_to(&r, 0, &tiny_map, t);
    snprintf(err, sizeof r.error, "%s", r.error);
    weft_pg_result_free(&r);
    return rc;
}

static int mismatches(void *unused)
{
    (void)unused;
    weft_pg *db = weft_pg_new(pgt_url(), &(weft_pg_opts){ .min_size = 1, .max_size = 2 });
    EXPECT(db != NULL);
    tiny t;
    weft_pg_result e;                                 /* its error, for EXPECT_ERROR */
    /* fits */
    EXPECT_EQ(tiny_of(db, "SELECT -32768::int8 AS s, 'abc' AS name, 1.5::float8 AS f,"
                          " '[1]'::json AS doc", &t, e.error), 0);
    EXPECT(t.s == -32768 && strcmp(t.name, "abc") == 0 && t.f == 1.5f && strcmp(t.doc, "[1]") == 0);
    /* a missing column */
    EXPECT_EQ(tiny_of(db, "SELECT 1::int2 AS s, 'a' AS name, 1.5 AS f", &t, e.error), -ENOENT);
    EXPECT_ERROR(&e, "column \"doc\" is not in the result");
    /* a type that does not fit */
    EXPECT_EQ(tiny_of(db, "SELECT 'x'::text AS s, 'a' AS name, 1 AS f, '1'::json AS doc", &t, e.error),
              -WEFT_ETYPE);
    EXPECT_ERROR(&e, "column \"s\" is text");
    EXPECT_EQ(tiny_of(db, "SELECT 1::int2 AS s, 7 AS name, 1 AS f, '1'::json AS doc", &t, e.error),
              -WEFT_ETYPE);
    EXPECT_ERROR(&e, "column \"name\" is int4");
    EXPECT_EQ(tiny_of(db, "SELECT 1::int2 AS s, 'a' AS name, 1 AS f, '1'::text AS doc", &t, e.error),
              -WEFT_ETYPE);
    EXPECT_ERROR(&e, "column \"doc\" is text, which a JSON field");
    /* a char array too short: never truncated */
    memset(&t, 0, sizeof t);
    EXPECT_EQ(tiny_of(db, "SELECT 1::int2 AS s, 'abcd' AS name, 1 AS f, '1'::json AS doc", &t, e.error),
              -ERANGE);
    EXPECT_ERROR(&e, "column \"name\" row 0: 4 bytes do not fit char[4]");
    EXPECT_EQ(t.name[0], 0);
    /* an integer too large for its member: int8 into int16 */
    EXPECT_EQ(tiny_of(db, "SELECT 70000::int8 AS s, 'a' AS name, 1 AS f, '1'::json AS doc", &t, e.error),
              -ERANGE);
    EXPECT_ERROR(&e, "column \"s\" row 0: 70000 does not fit int16_t");
    EXPECT_EQ(tiny_of(db, "SELECT 1 AS s, 'a' AS name, 1e300::float8 AS f, '1'::json AS doc", &t, e.error),
              -ERANGE);
    EXPECT_ERROR(&e, "column \"f\" row 0");
    /* a value the getter finds out of range: the column named, the code's words */
    typedef struct when { int64_t at; } when;
    static const weft_pg_field when_fields[] = { WEFT_PG_FIELD(when, at, "at", WEFT_PG_T_TIME) };
    static const weft_pg_map when_map = WEFT_PG_MAP("when", NULL, when_fields);
    when w;
    select_(db, &e, "SELECT 'infinity'::timestamptz AS at");
    EXPECT_EQ(weft_pg_row_to(&e, 0, &when_map, &w), -ERANGE);
    EXPECT_ERROR(&e, "out of range: column \"at\" row 0");
    weft_pg_result_free(&e);
    /* an invalid map, a missing row, a failed statement */
    static const weft_pg_field odd[] = { { .column = "s", .type = WEFT_PG_T_INT, .size = 3 } };
    static const weft_pg_map odd_map = WEFT_PG_MAP("tiny", NULL, odd);
    weft_pg_result r;
    select_(db, &r, "SELECT 1::int2 AS s");
    EXPECT_EQ(weft_pg_row_to(&r, 0, &odd_map, &t), -EINVAL);
    EXPECT_ERROR(&r, "column \"s\"): the member's size");
    EXPECT_EQ(weft_pg_row_to(&r, 1, &tiny_map, &t), -ENOENT);  /* the binding comes first */
    weft_pg_result_free(&r);
    select_(db, &r, "SELECT 1::int2 AS s, 'a' AS name, 1 AS f, '1'::json AS doc");
    EXPECT_EQ(weft_pg_row_to(&r, 1, &tiny_map, &t), -EINVAL);
    EXPECT_ERROR(&r, "no row 1");
    weft_pg_result_free(&r);
    EXPECT_EQ(weft_pg_query(db, &r, "SELECT nope", 0, NULL), -WEFT_EPG);
    EXPECT_EQ(weft_pg_row_to(&r, 0, &tiny_map, &t), -EINVAL);
    weft_pg_result_free(&r);
    EXPECT_EQ(weft_pg_close(db, WEFT_SEC), 0);
    return 0;
}
static void test_mismatches(void **s) { (void)s; RUN(mismatches, NULL); }

/* ---- arrays of rows, and the binding made once per result --------------------------------- */

typedef struct item {
    int64_t id;
    char name[12];
} item;
static const weft_pg_field item_fields[] = {
    WEFT_PG_FIELD(item, id, "id", WEFT_PG_T_INT),
    WEFT_PG_FIELD(item, name, "name", WEFT_PG_T_TEXT),
};
static const weft_pg_map item_map = WEFT_PG_MAP("items", "id", item_fields);

static int rows(void *unused)
{
    (void)unused;
    weft_pg *db = weft_pg_new(pgt_url(), &(weft_pg_opts){ .min_size = 1, .max_size = 2 });
    EXPECT(db != NULL);
    enum { N = 5000 };
    item *arr = calloc(N, sizeof *arr);
    weft_pg_result r;
    select_(db, &r, "SELECT g::int8 AS id, 'n' || g AS name, g % 2 = 0 AS even"
                    " FROM generate_series(1, 5000) g");
    uint64_t b0 = weft__pg_map_binds();
    EXPECT_EQ(weft_pg_rows_to(&r, &item_map, arr, sizeof *arr, N), N);
    EXPECT_EQ(weft__pg_map_binds() - b0, 1);          /* matched by name once, not per row */
    for (int i = 0; i < N; i++) {
        char want[12];
        snprintf(want, sizeof want, "n%d", i + 1);
        if (arr[i].id != i + 1 || strcmp(arr[i].name, want) != 0) {
            EXPECT(!"row decoded wrong");
            break;
        }
    }
    /* again, and row by row: the binding kept in the result is used */
    EXPECT_EQ(weft_pg_rows_to(&r, &item_map, arr, sizeof *arr, 10), 10);
    item one;
    for (int i = 0; i < N; i++)
        EXPECT_EQ(weft_pg_row_to(&r, i, &item_map, &one), 0);
    EXPECT_EQ(weft__pg_map_binds() - b0, 1);
    /* another map on the same result binds once more */
    static const weft_pg_field id_only[] = { WEFT_PG_FIELD(item, id, "id", WEFT_PG_T_INT) };
    static const weft_pg_map id_map = WEFT_PG_MAP("items", "id", id_only);
    EXPECT_EQ(weft_pg_row_to(&r, 0, &id_map, &one), 0);
    EXPECT_EQ(weft_pg_row_to(&r, 1, &id_map, &one), 0);
    EXPECT_EQ(weft__pg_map_binds() - b0, 2);
    EXPECT_EQ(weft_pg_rows_to(&r, &item_map, arr, 0, N), -EINVAL);
    EXPECT_EQ(weft_pg_rows_to(&r, &item_map, arr, sizeof *arr, -1), -EINVAL);
    weft_pg_result_free(&r);
    /* a value that does not fit stops the array there, naming row and column */
    select_(db, &r, "SELECT g::int8 AS id, repeat('x', g) AS name FROM generate_series(1, 20) g");
    EXPECT_EQ(weft_pg_rows_to(&r, &item_map, arr, sizeof *arr, N), -ERANGE);
    EXPECT_ERROR(&r, "column \"name\" row 11: 12 bytes do not fit char[12]");
    EXPECT_EQ(arr[10].id, 11);
    EXPECT(strcmp(arr[10].name, "xxxxxxxxxxx") == 0);
    EXPECT_EQ(weft__pg_map_binds() - b0, 3);          /* a new result binds again */
    weft_pg_result_free(&r);
    /* no rows: 0 */
    select_(db, &r, "SELECT 1::int8 AS id, 'a' AS name WHERE false");
    EXPECT_EQ(weft_pg_rows_to(&r, &item_map, arr, sizeof *arr, N), 0);
    weft_pg_result_free(&r);
    free(arr);
    EXPECT_EQ(weft_pg_close(db, WEFT_SEC), 0);
    return 0;
}
static void test_rows(void **s) { (void)s; RUN(rows, NULL); }

/* ---- INSERT and UPDATE --------------------------------------------------------------------- */

typedef struct kv {
    char k[16];
    int32_t v;
} kv;
static const weft_pg_field kv_fields[] = {
    WEFT_PG_FIELD(kv, k, "k", WEFT_PG_T_TEXT),       /* a key the caller gives */
    WEFT_PG_FIELD(kv, v, "v", WEFT_PG_T_INT),
};
static const weft_pg_map kv_map = WEFT_PG_MAP("public.weft_t_map_kv", "k", kv_fields);

typedef struct only_id { int64_t id; } only_id;
static const weft_pg_field only_id_fields[] = {
    WEFT_PG_FIELD(only_id, id, "id", WEFT_PG_T_INT | WEFT_PG_GENERATED),
};
static const weft_pg_map only_id_map = WEFT_PG_MAP("weft_t_map_ids", "id", only_id_fields);

static int64_t kv_value(weft_pg *db, const char *k)
{
    weft_pg_result r;
    weft_pg_val p[] = { WEFT_PG_TEXT(k) };
    EXPECT_EQ(weft_pg_query(db, &r, "SELECT v FROM weft_t_map_kv WHERE k = $1", 1, p), 0);
    int64_t v = -1;
    EXPECT_EQ(weft_pg_get_int(&r, 0, 0, &v), 0);
    weft_pg_result_free(&r);
    return v;
}

static int writes(void *unused)
{
    (void)unused;
    weft_pg *db = open_with_table();
    pgt_exec(db, "DROP TABLE IF EXISTS weft_t_map_kv, weft_t_map_ids");
    pgt_exec(db, "CREATE TABLE weft_t_map_kv (k text PRIMARY KEY, v int4 NOT NULL)");
    pgt_exec(db, "CREATE TABLE weft_t_map_ids (id bigserial PRIMARY KEY, at timestamptz DEFAULT now())");
    weft_pg_result r;
    /* generated keys come back through RETURNING *, in order */
    rec a = plain("first"), b;
    EXPECT_EQ(weft_pg_insert(db, &rec_map, &a, &r), 0);
    EXPECT_EQ(weft_pg_row_to(&r, 0, &rec_map, &a), 0);
    weft_pg_result_free(&r);
    EXPECT_EQ(weft_pg_insert(db, &rec_map, &a, &r), 0);   /* a's id is generated, not sent */
    EXPECT_EQ(weft_pg_row_to(&r, 0, &rec_map, &b), 0);
    weft_pg_result_free(&r);
    EXPECT(a.id > 0 && b.id == a.id + 1);
    /* every field generated: DEFAULT VALUES */
    only_id o = { 0 };
    EXPECT_EQ(weft_pg_insert(db, &only_id_map, &o, &r), 0);
    EXPECT_EQ(weft_pg_row_to(&r, 0, &only_id_map, &o), 0);
    EXPECT_EQ(r.ncols, 2);                            /* RETURNING *: at too */
    EXPECT_EQ(o.id, 1);
    weft_pg_result_free(&r);
    /* UPDATE ... WHERE key: 1 row, then 0 for a key no row has */
    a.maybe = 5;
    snprintf(a.name, sizeof a.name, "renamed");
    int64_t created = a.created;
    EXPECT_EQ(weft_pg_update(db, &rec_map, &a, &r), 0);
    EXPECT_EQ(r.affected, 1);
    EXPECT_EQ(weft_pg_row_to(&r, 0, &rec_map, &b), 0);
    EXPECT(b.id == a.id && strcmp(b.name, "renamed") == 0 && b.maybe == 5);
    EXPECT(b.created == created);                     /* generated: not in SET */
    weft_pg_result_free(&r);
    a.id = 1000000;
    EXPECT_EQ(weft_pg_update(db, &rec_map, &a, &r), 0);
    EXPECT_EQ(r.affected, 0);
    EXPECT_EQ(r.nrows, 0);
    weft_pg_result_free(&r);
    /* a key the caller gives is inserted, and found by UPDATE */
    uint64_t built = weft__pg_map_builds();
    kv x = { "alpha", 1 };
    EXPECT_EQ(weft_pg_insert(db, &kv_map, &x, &r), 0);
    weft_pg_result_free(&r);
    x.v = 2;
    EXPECT_EQ(weft_pg_update(db, &kv_map, &x, &r), 0);
    EXPECT_EQ(r.affected, 1);
    weft_pg_result_free(&r);
    EXPECT_EQ(kv_value(db, "alpha"), 2);
    kv y = { "beta", 9 };
    EXPECT_EQ(weft_pg_update(db, &kv_map, &y, &r), 0);
    EXPECT_EQ(r.affected, 0);
    weft_pg_result_free(&r);
    /* the server's refusal is the server's error */
    EXPECT_EQ(weft_pg_insert(db, &kv_map, &x, &r), -WEFT_EPG);
    EXPECT(weft_pg_error(&r) && strcmp(weft_pg_error(&r)->sqlstate, "23505") == 0);
    weft_pg_result_free(&r);
    /* the map's SQL was built once, for INSERT and UPDATE together */
    EXPECT_EQ(weft__pg_map_builds() - built, 1);
    /* inside a transaction, on an exclusive connection */
    weft_pg_conn *c;
    EXPECT_EQ(weft_pg_acquire(db, &c), 0);
    EXPECT_EQ(weft_pg_begin(c, NULL), 0);
    x.v = 3;
    EXPECT_EQ(weft_pg_conn_update(c, &kv_map, &x, &r), 0);
    EXPECT_EQ(r.affected, 1);
    weft_pg_result_free(&r);
    EXPECT_EQ(weft_pg_conn_insert(c, &kv_map, &y, &r), 0);
    weft_pg_result_free(&r);
    EXPECT_EQ(weft_pg_rollback(c), 0);
    weft_pg_release(db, c);
    EXPECT_EQ(kv_value(db, "alpha"), 2);
    EXPECT_EQ(weft_pg_conn_insert(NULL, &kv_map, &y, &r), -EINVAL);
    /* a char array with no NUL is refused before anything is sent */
    kv full;
    memset(full.k, 'z', sizeof full.k);
    full.v = 1;
    EXPECT_EQ(weft_pg_insert(db, &kv_map, &full, &r), -ERANGE);
    EXPECT_ERROR(&r, "column \"k\": char[16] holds no NUL");
    /* no UPDATE without a key that is a field, or with nothing to set */
    static const weft_pg_map no_key = WEFT_PG_MAP("weft_t_map_kv", NULL, kv_fields);
    static const weft_pg_map bad_key = WEFT_PG_MAP("weft_t_map_kv", "nope", kv_fields);
    EXPECT_EQ(weft_pg_update(db, &no_key, &x, &r), -EINVAL);
    EXPECT_ERROR(&r, "no key");
    EXPECT_EQ(weft_pg_update(db, &bad_key, &x, &r), -EINVAL);
    EXPECT_ERROR(&r, "no field's column");
    EXPECT_EQ(weft_pg_update(db, &only_id_map, &o, &r), -EINVAL);
    EXPECT_ERROR(&r, "nothing to set");
    EXPECT_EQ(weft_pg_insert(db, &kv_map, NULL, &r), -EINVAL);
    EXPECT_EQ(weft_pg_insert(db, NULL, &x, &r), -EINVAL);
    pgt_exec(db, "DROP TABLE weft_t_map, weft_t_map_kv, weft_t_map_ids");
    EXPECT_EQ(weft_pg_close(db, WEFT_SEC), 0);
    return 0;
}
static void test_writes(void **s) { (void)s; RUN(writes, NULL); }

/* ---- identifiers ------------------------------------------------------------------------- */

static int identifiers(void *unused)
{
    (void)unused;
    weft_pg *db = weft_pg_new(pgt_url(), &(weft_pg_opts){ .min_size = 1, .max_size = 2 });
    EXPECT(db != NULL);
    pgt_exec(db, "DROP TABLE IF EXISTS weft_t_map_kv");
    pgt_exec(db, "CREATE TABLE weft_t_map_kv (k text PRIMARY KEY, v int4 NOT NULL)");
    static const char *const tables[] = {
        "weft_t_map_kv; DROP TABLE weft_t_map_kv", "weft_t_map_kv\"", "a.b.c", "", ".t", "t.",
        "1t", "t-1", "tëst", "a234567890123456789012345678901234567890123456789012345678901234",
    };
    kv x = { "k", 1 };
    weft_pg_result r;
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
        weft_pg_map m = { tables[i], "k", kv_fields, 2 };
        EXPECT_EQ(weft_pg_insert(db, &m, &x, &r), -EINVAL);
        EXPECT_ERROR(&r, "is not an identifier");
        EXPECT_EQ(weft_pg_update(db, &m, &x, &r), -EINVAL);
    }
    weft_pg_map nul = { NULL, "k", kv_fields, 2 };
    EXPECT_EQ(weft_pg_insert(db, &nul, &x, &r), -EINVAL);
    static const weft_pg_field bad_cols[] = {
        WEFT_PG_FIELD(kv, k, "k\" text); --", WEFT_PG_T_TEXT),
        WEFT_PG_FIELD(kv, v, "v", WEFT_PG_T_INT),
    };
    static const weft_pg_map bad_col_map = WEFT_PG_MAP("weft_t_map_kv", "v", bad_cols);
    EXPECT_EQ(weft_pg_insert(db, &bad_col_map, &x, &r), -EINVAL);
    EXPECT_ERROR(&r, "column \"k\" text); --\" is not an identifier");
    static const weft_pg_map bad_key = WEFT_PG_MAP("weft_t_map_kv", "k k", kv_fields);
    EXPECT_EQ(weft_pg_update(db, &bad_key, &x, &r), -EINVAL);
    EXPECT_ERROR(&r, "key \"k k\" is not an identifier");
    /* names are quoted: exact, and a reserved word is a name */
    pgt_exec(db, "DROP TABLE IF EXISTS \"Select\"");
    pgt_exec(db, "CREATE TABLE \"Select\" (\"User\" int4, \"from\" text)");
    typedef struct sel { int32_t user; char from[8]; } sel;
    static const weft_pg_field sel_fields[] = {
        WEFT_PG_FIELD(sel, user, "User", WEFT_PG_T_INT),
        WEFT_PG_FIELD(sel, from, "from", WEFT_PG_T_TEXT),
    };
    static const weft_pg_map sel_map = WEFT_PG_MAP("public.Select", "User", sel_fields);
    sel s = { 3, "here" };
    EXPECT_EQ(weft_pg_insert(db, &sel_map, &s, &r), 0);
    memset(&s, 0, sizeof s);
    EXPECT_EQ(weft_pg_row_to(&r, 0, &sel_map, &s), 0);
    EXPECT(s.user == 3 && strcmp(s.from, "here") == 0);
    weft_pg_result_free(&r);
    /* nothing reached the server: the table is there, empty */
    select_(db, &r, "SELECT count(*) FROM weft_t_map_kv");
    int64_t n = -1;
    EXPECT_EQ(weft_pg_get_int(&r, 0, 0, &n), 0);
    EXPECT_EQ(n, 0);
    weft_pg_result_free(&r);
    pgt_exec(db, "DROP TABLE weft_t_map_kv, \"Select\"");
    EXPECT_EQ(weft_pg_close(db, WEFT_SEC), 0);
    return 0;
}
static void test_identifiers(void **s) { (void)s; RUN(identifiers, NULL); }

/* ---- one map's SQL shared by loops on other threads ------------------------------------------ */

static const weft_pg_field loop_fields[] = {
    WEFT_PG_FIELD(kv, k, "k", WEFT_PG_T_TEXT),
    WEFT_PG_FIELD(kv, v, "v", WEFT_PG_T_INT),
};
static const weft_pg_map loop_map = WEFT_PG_MAP("weft_t_map_loops", "k", loop_fields);
static atomic_int loop_errors;
static char loop_url[512];            /* pgt_url()'s helper keeps static buffers: read it once */

static int loop_inserts(void *arg)
{
    int run = *(const int *)arg;
    weft_pg *db = weft_pg_new(loop_url, &(weft_pg_opts){ .min_size = 1, .max_size = 8 });
    if (!db)
        return -errno;
    for (int i = 0; i < 50; i++) {
        kv x = { .v = i };
        snprintf(x.k, sizeof x.k, "%d-%d-%d", run, weft_loop_index(), i);
        weft_pg_result r;
        if (weft_pg_insert(db, &loop_map, &x, &r)) {
            fprintf(stderr, "loop insert: %s\n", r.error);
            atomic_fetch_add(&loop_errors, 1);
        }
        weft_pg_result_free(&r);
    }
    return weft_pg_close(db, WEFT_SEC);
}

static int setup_loops(void *unused)
{
    (void)unused;
    weft_pg *db = weft_pg_new(pgt_url(), &(weft_pg_opts){ .min_size = 1, .max_size = 2 });
    EXPECT(db != NULL);
    pgt_exec(db, "DROP TABLE IF EXISTS weft_t_map_loops");
    pgt_exec(db, "CREATE TABLE weft_t_map_loops (k text PRIMARY KEY, v int4 NOT NULL)");
    EXPECT_EQ(weft_pg_close(db, WEFT_SEC), 0);
    return 0;
}

static int count_loops(void *unused)
{
    (void)unused;
    weft_pg *db = weft_pg_new(pgt_url(), &(weft_pg_opts){ .min_size = 1, .max_size = 2 });
    EXPECT(db != NULL);
    weft_pg_result r;
    select_(db, &r, "SELECT count(*) FROM weft_t_map_loops");
    int64_t n = -1;
    EXPECT_EQ(weft_pg_get_int(&r, 0, 0, &n), 0);
    EXPECT_EQ(n, 2 * 4 * 50);
    weft_pg_result_free(&r);
    pgt_exec(db, "DROP TABLE weft_t_map_loops");
    EXPECT_EQ(weft_pg_close(db, WEFT_SEC), 0);
    return 0;
}

static void test_loops(void **s)
{
    (void)s;
    RUN(setup_loops, NULL);
    snprintf(loop_url, sizeof loop_url, "%s", pgt_url());
    uint64_t built = weft__pg_map_builds();
    int run = 0;
    assert_int_equal(weft_run(4, loop_inserts, &run), 0);
    uint64_t first = weft__pg_map_builds() - built;
    assert_true(first >= 1 && first <= 4);        /* loops racing may each build; one is kept */
    run = 1;
    assert_int_equal(weft_run(4, loop_inserts, &run), 0);
    assert_int_equal(atomic_load(&loop_errors), 0);
    assert_int_equal(weft__pg_map_builds() - built, first);   /* kept: not built again */
    RUN(count_loops, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_types),
        cmocka_unit_test(test_nulls),
        cmocka_unit_test(test_mismatches),
        cmocka_unit_test(test_rows),
        cmocka_unit_test(test_writes),
        cmocka_unit_test(test_identifiers),
        cmocka_unit_test(test_loops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
