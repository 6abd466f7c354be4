/*
 * weft migrate: the migrations of a folder applied to PostgreSQL
 * (weft_pg_migrate), or their status.
 *
 *   weft migrate [--url URL] [--dir DIR] [--status]
 *
 * One JSON line per file applied, {"version":N,"name":"...","applied":true};
 * with --status one line per file and applied version. Exit 0, 1 when a
 * file failed or an applied one was changed (stderr names it), 2 for bad
 * usage.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weft.h"

static const char usage_text[] =
    "usage: weft migrate [--url URL] [--dir DIR] [--status]\n"
    "  --url URL   the database (default $WEFT_PG_URL)\n"
    "  --dir DIR   the folder of NNNN_name.sql files (default ./migrations)\n"
    "  --status    list applied and pending files instead of applying\n"
    "Applies each file not yet applied, in numeric order, each in its own transaction\n"
    "(a first line \"-- weft:no-transaction\" runs it outside one), recorded in\n"
    "schema_migrations. Prints one JSON line per file applied. Exit 0; 1 when a file\n"
    "failed or an applied file was changed; 2 on bad arguments.\n";

struct run {
    const char *url, *dir;
    bool status;
    int exit;
};

static void print_json(json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (s)
        puts(s);
    free(s);
    json_decref(j);
    fflush(stdout);
}

static void applied(const weft_pg_migration *m, void *ctx)
{
    (void)ctx;
    print_json(json_pack("{s:I, s:s, s:b}", "version", (json_int_t)m->version, "name", m->name,
                         "applied", 1));
}

static int status(struct run *r, weft_pg *db)
{
    weft_pg_migration *list;
    weft_pg_result res;
    int n = weft_pg_migrations(db, r->dir, &list, &res);
    if (n < 0) {
        fprintf(stderr, "weft migrate: %s\n", res.error[0] ? res.error : weft_strerror(n));
        weft_pg_result_free(&res);
        return 1;
    }
    int bad = 0;
    for (int i = 0; i < n; i++) {
        const weft_pg_migration *m = &list[i];
        json_t *j = json_pack("{s:I, s:s, s:b}", "version", (json_int_t)m->version, "name",
                              m->name, "applied", m->applied);
        if (m->file[0])
            json_object_set_new(j, "file", json_string(m->file));
        if (m->applied)
            json_object_set_new(j, "applied_at_us", json_integer(m->applied_at_us));
        if (m->changed)
            json_object_set_new(j, "changed", json_true());
        if (m->file_missing)
            json_object_set_new(j, "file_missing", json_true());
        print_json(j);
        if (m->changed) {
            fprintf(stderr, "weft migrate: %s was changed after it was applied\n", m->file);
            bad = 1;
        }
    }
    weft_pg_migrations_free(list);
    weft_pg_result_free(&res);
    return bad;
}

static int run_main(void *arg)
{
    struct run *r = arg;
    weft_pg_opts o = { .name = "migrate", .min_size = 1, .max_size = 2 };
    weft_pg *db = weft_pg_new(r->url, &o);
    if (!db) {
        fprintf(stderr, "weft migrate: bad --url: %s\n", strerror(errno));
        r->exit = 2;
        return 0;
    }
    if (r->status) {
        r->exit = status(r, db);
    } else {
        weft_pg_result res;
        int rc = weft_pg_migrate_cb(db, r->dir, &res, applied, NULL);
        if (rc < 0) {
            fprintf(stderr, "weft migrate: %s\n", res.error[0] ? res.error : weft_strerror(rc));
            r->exit = 1;
        }
        weft_pg_result_free(&res);
    }
    weft_pg_close(db, 5 * WEFT_SEC);
    return 0;
}

int weft_cmd_migrate(int argc, char **argv)
{
    static const struct option opts[] = {
        { "url", required_argument, NULL, 'u' },
        { "dir", required_argument, NULL, 'd' },
        { "status", no_argument, NULL, 's' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct run r = { .url = getenv("WEFT_PG_URL"), .dir = "migrations" };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'u': r.url = optarg; break;
        case 'd': r.dir = optarg; break;
        case 's': r.status = true; break;
        case 'h': fputs(usage_text, stdout); return 0;
        default: fputs(usage_text, stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "weft migrate: unexpected argument '%s'\n%s", argv[optind], usage_text);
        return 2;
    }
    if (!r.url || !*r.url) {
        fprintf(stderr, "weft migrate: no database: give --url or set WEFT_PG_URL\n");
        return 2;
    }
    int rc = weft_main(run_main, &r);
    if (rc) {
        fprintf(stderr, "weft migrate: %s\n", weft_strerror(rc));
        return 1;
    }
    return r.exit;
}
