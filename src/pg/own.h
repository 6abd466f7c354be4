/*
 * Migrations compiled into weft, for the tables of weft's own parts (the
 * queue's PostgreSQL backend): what they need of src/pg without libpq.
 */
#ifndef WEFT_PG_OWN_H
#define WEFT_PG_OWN_H

#include <stdint.h>

#include "weft/pg.h"

/* one migration compiled into weft: NNNN is version, sql its text */
struct weft__pg_migration_src {
    int64_t version;
    const char *name, *sql;
};
/* as weft_pg_migrate, the files given, recorded in table (not the
 * application's schema_migrations) under advisory lock `lock`; setup runs
 * under the lock before the table is made (CREATE SCHEMA ...). */
int weft__pg_migrate_embedded(weft_pg *db, const char *table, int64_t lock, const char *setup,
                              const struct weft__pg_migration_src *src, int n, weft_pg_result *r);

#endif
