/*
 * COPY FROM STDIN through weft_pg_copy_in, as bench/pg_copy.sh runs it
 * beside psql's \copy: the rows of FILE (COPY text format) into TABLE,
 * read from the file in 64 KiB pieces by the read callback.
 *
 *   pg_copy URL FILE TABLE
 *
 * Prints one JSON line: rows, secs (the COPY alone, not connecting),
 * rows_s, cpu_s.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "measure.h"
#include "weft.h"
#include "weft/pg.h"

static const char *url, *path, *table;

static int file_read(void *ctx, void *buf, size_t len)
{
    ssize_t n = read(*(int *)ctx, buf, len);
    return n < 0 ? -errno : (int)n;
}

static int run(void *unused)
{
    (void)unused;
    weft_pg_opts o = { .min_size = 1, .max_size = 2, .query_timeout = 3600 * WEFT_SEC };
    weft_pg *db = weft_pg_new(url, &o);
    if (!db)
        return -errno;
    int fd = open(path, O_RDONLY);
    weft_pg_conn *c;
    int rc = fd < 0 ? -errno : weft_pg_acquire(db, &c);
    if (!rc) {
        char sql[256];
        snprintf(sql, sizeof sql, "COPY %s FROM STDIN", table);
        int64_t rows = 0;
        double cpu0 = measure_cpu();
        weft_time t0 = weft_now();
        rc = weft_pg_copy_in(c, sql, file_read, &fd, &rows);
        double secs = (double)(weft_now() - t0) / 1e9;
        if (rc)
            fprintf(stderr, "pg_copy: %s%s%s\n", weft_strerror(rc), weft_pg_copy_error(c) ? ": " : "",
                    weft_pg_copy_error(c) ? weft_pg_copy_error(c)->message : "");
        else
            printf("{\"rows\": %lld, \"secs\": %.4f, \"rows_s\": %.0f, \"cpu_s\": %.4f}\n",
                   (long long)rows, secs, rows / secs, measure_cpu() - cpu0);
        weft_pg_release(db, c);
    }
    if (fd >= 0)
        close(fd);
    weft_pg_close(db, WEFT_SEC);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: pg_copy URL FILE TABLE\n");
        return 2;
    }
    url = argv[1];
    path = argv[2];
    table = argv[3];
    int rc = weft_main(run, NULL);
    if (rc)
        fprintf(stderr, "pg_copy: %s\n", weft_strerror(rc));
    return rc ? 1 : 0;
}
