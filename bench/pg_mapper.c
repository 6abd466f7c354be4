/*
 * The data mapper's decode cost per row beside the raw getters, on one
 * 10,000-row result fetched once: the timed part is pure CPU, no round
 * trip. Three ways to fill the same struct from every row:
 *   getters   the hand-written loop the mapper replaces: columns looked up
 *             by name once, then weft_pg_get_* per cell, lengths checked,
 *             text copied into the char arrays;
 *   rows_to   weft_pg_rows_to into an array of structs;
 *   row_to    weft_pg_row_to row by row (the binding kept in the result).
 *
 *   pg_mapper_decode URL [ROUNDS=100]      (the binary of bench/pg_mapper.c)
 *
 * Prints one JSON line: rows, rounds, and ns per row for each way (the
 * best round of each, the ways interleaved round by round).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "weft.h"
#include "weft/pg.h"

enum { ROWS = 10000 };

typedef struct user {
    int64_t id;
    char name[64];
    char email[128];
    int64_t created_at;
    bool active;
    double score;
} user;

static const weft_pg_field user_fields[] = {
    WEFT_PG_FIELD(user, id, "id", WEFT_PG_T_INT | WEFT_PG_GENERATED),
    WEFT_PG_FIELD(user, name, "name", WEFT_PG_T_TEXT),
    WEFT_PG_FIELD(user, email, "email", WEFT_PG_T_TEXT),
    WEFT_PG_FIELD(user, created_at, "created_at", WEFT_PG_T_TIME),
    WEFT_PG_FIELD(user, active, "active", WEFT_PG_T_BOOL),
    WEFT_PG_FIELD(user, score, "score", WEFT_PG_T_FLOAT),
};
static const weft_pg_map user_map = WEFT_PG_MAP("users", "id", user_fields);

static const char *url;
static int rounds = 100;
static user *out;
static double best[3] = { 1e30, 1e30, 1e30 };

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static int copy_text(const weft_pg_result *r, int row, int col, char *dst, size_t size)
{
    const char *s;
    size_t len;
    int rc = weft_pg_get_text(r, row, col, &s, &len);
    if (rc)
        return rc;
    if (len >= size)
        return -ERANGE;
    memcpy(dst, s, len + 1);
    return 0;
}

static int by_getters(const weft_pg_result *r)
{
    int id = weft_pg_col(r, "id"), name = weft_pg_col(r, "name"), email = weft_pg_col(r, "email"),
        at = weft_pg_col(r, "created_at"), active = weft_pg_col(r, "active"),
        score = weft_pg_col(r, "score");
    if ((id | name | email | at | active | score) < 0)
        return -ENOENT;
    for (int i = 0; i < r->nrows; i++) {
        user *u = &out[i];
        int rc = weft_pg_get_int(r, i, id, &u->id);
        if (!rc)
            rc = copy_text(r, i, name, u->name, sizeof u->name);
        if (!rc)
            rc = copy_text(r, i, email, u->email, sizeof u->email);
        if (!rc)
            rc = weft_pg_get_time(r, i, at, &u->created_at);
        if (!rc)
            rc = weft_pg_get_bool(r, i, active, &u->active);
        if (!rc)
            rc = weft_pg_get_double(r, i, score, &u->score);
        if (rc)
            return rc;
    }
    return 0;
}

static int by_rows_to(const weft_pg_result *r)
{
    int n = weft_pg_rows_to(r, &user_map, out, sizeof *out, ROWS);
    return n == r->nrows ? 0 : n < 0 ? n : -EIO;
}

static int by_row_to(const weft_pg_result *r)
{
    for (int i = 0; i < r->nrows; i++) {
        int rc = weft_pg_row_to(r, i, &user_map, &out[i]);
        if (rc)
            return rc;
    }
    return 0;
}

static int run(void *unused)
{
    (void)unused;
    weft_pg *db = weft_pg_new(url, &(weft_pg_opts){ .min_size = 1, .max_size = 1 });
    if (!db)
        return -errno;
    weft_pg_result r;
    int rc = weft_pg_query(db, &r,
                           "SELECT g::int8 AS id, 'user ' || g AS name,"
                           " 'user' || g || '@example.com' AS email,"
                           " now() - g * interval '1 minute' AS created_at,"
                           " g % 3 = 0 AS active, g / 7.0::float8 AS score"
                           " FROM generate_series(1, 10000) g", 0, NULL);
    if (rc) {
        fprintf(stderr, "pg_mapper: %s\n", r.error);
        weft_pg_result_free(&r);
        weft_pg_close(db, WEFT_SEC);
        return rc;
    }
    int (*const ways[3])(const weft_pg_result *) = { by_getters, by_rows_to, by_row_to };
    for (int k = 0; k < rounds && !rc; k++)
        for (int w = 0; w < 3 && !rc; w++) {
            double t0 = now_ns();
            rc = ways[w](&r);
            double ns = (now_ns() - t0) / r.nrows;
            if (ns < best[w])
                best[w] = ns;
        }
    if (rc)
        fprintf(stderr, "pg_mapper: decode failed: %s (%s)\n", weft_strerror(rc), r.error);
    else if (out[ROWS - 1].id != ROWS || strcmp(out[ROWS - 1].email, "user10000@example.com") != 0)
        rc = -EIO;
    weft_pg_result_free(&r);
    weft_pg_close(db, WEFT_SEC);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: pg_mapper_decode URL [ROUNDS=100]\n");
        return 2;
    }
    url = argv[1];
    if (argc > 2)
        rounds = atoi(argv[2]) > 0 ? atoi(argv[2]) : 1;
    out = calloc(ROWS, sizeof *out);
    if (!out || weft_main(run, NULL))
        return 1;
    printf("{\"rows\": %d, \"rounds\": %d, \"getters_ns_row\": %.1f, \"rows_to_ns_row\": %.1f, "
           "\"row_to_ns_row\": %.1f}\n",
           ROWS, rounds, best[0], best[1], best[2]);
    free(out);
    return 0;
}
