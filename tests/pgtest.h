/*
 * What the tests that talk to the throwaway PostgreSQL (services.h) share:
 * its URL, a pool on it, a statement that must succeed, one integer.
 */
#ifndef WEFT_TEST_PGTEST_H
#define WEFT_TEST_PGTEST_H

#include "services.h"
#include "test.h"
#include "weft/pg.h"

static inline const char *pgt_url(void)
{
    const char *u = weft_test_service_url("pg");
    return u ? u : "postgresql://unset";
}

static inline weft_pg *pgt_open(const weft_pg_opts *o)
{
    weft_pg *db = weft_pg_new(pgt_url(), o);
    EXPECT(db != NULL);
    return db;
}

/* sql on db, which must succeed (its error printed if not) */
static inline void pgt_exec(weft_pg *db, const char *sql)
{
    weft_pg_result r;
    int rc = weft_pg_query(db, &r, sql, 0, NULL);
    if (rc)
        fprintf(stderr, "%s: %s\n", sql, r.error);
    EXPECT_EQ(rc, 0);
    weft_pg_result_free(&r);
}

/* the integer in row 0, column 0 of sql, which must succeed; -1 for no
 * row or NULL. db NULL: on a pool of its own, closed after. */
static inline int64_t pgt_int(weft_pg *db, const char *sql)
{
    weft_pg *own = db ? NULL : pgt_open(NULL);
    weft_pg_result r;
    int64_t v = -1;
    int rc = weft_pg_query(db ? db : own, &r, sql, 0, NULL);
    if (rc)
        fprintf(stderr, "%s: %s\n", sql, r.error);
    EXPECT_EQ(rc, 0);
    if (rc == 0 && r.nrows && !weft_pg_is_null(&r, 0, 0))
        EXPECT_EQ(weft_pg_get_int(&r, 0, 0, &v), 0);
    weft_pg_result_free(&r);
    if (own)
        weft_pg_close(own, WEFT_SEC);
    return v;
}

#endif
