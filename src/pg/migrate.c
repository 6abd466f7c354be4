/*
 * Migrations: the files NNNN_name.sql of a folder applied in numeric
 * order, each once, recorded in schema_migrations with its SHA-256.
 *
 * All of it runs on one exclusive connection under a session advisory
 * lock, so that two instances starting together apply each file once: the
 * second waits, then finds the files applied. A file runs with the
 * simple-query protocol (the server parses it: any number of statements,
 * dollar quotes, DO blocks) inside BEGIN ... COMMIT together with its
 * schema_migrations row, so a failing file leaves nothing behind. A file
 * whose first line is "-- weft:no-transaction" (CREATE INDEX
 * CONCURRENTLY cannot run in a transaction) runs statement by statement,
 * split at top-level semicolons (split.c), and is recorded after its last
 * statement; if one fails, those before it stay done.
 *
 * Libpq's pipeline mode, on for every weft connection, has no simple-query
 * protocol: the connection leaves it for the run and enters it again
 * before it goes back to the pool.
 */
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "internal.h"

#define LOCK_KEY 2004116852LL              /* 'weft' as a number: pg_advisory_lock's key */
#define FILE_MAX (64 << 20)
#define NO_TX "-- weft:no-transaction"

struct mfile {
    int64_t version;
    char *file, *name, *sql;
    size_t len;
    char sum[65];
    bool notx;
};

struct scan {
    const char *dir;
    struct mfile *f;
    int n;
    char err[256];
};

/* where a set of migrations is recorded: the application's folder, or a
 * part of weft itself (the queue's tables) that must not share its table */
struct mset {
    const char *table;
    int64_t lock;
    const char *setup;                     /* run under the lock first, or NULL */
};

static const struct mset app_set = { "schema_migrations", LOCK_KEY, NULL };

static void files_free(struct mfile *f, int n)
{
    for (int i = 0; i < n; i++) {
        free(f[i].file);
        free(f[i].name);
        free(f[i].sql);
    }
    free(f);
}

/* NNNN_name.sql: the version, the name, or false */
static bool parse_name(const char *fn, int64_t *version, char **name)
{
    const char *p = fn;
    int64_t v = 0;
    while (*p >= '0' && *p <= '9') {
        if (v > (INT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (*p++ - '0');
    }
    size_t len = strlen(fn);
    if (p == fn || *p != '_' || len < 5 || strcmp(fn + len - 4, ".sql") != 0 ||
        p + 1 >= fn + len - 4)
        return false;
    *version = v;
    *name = strndup(p + 1, (size_t)(fn + len - 4 - (p + 1)));
    return *name != NULL;
}

static void sha256_hex(const char *data, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned mdlen = 0;
    EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* true for well-formed UTF-8 (a name goes into JSON and SQL literals) */
static bool utf8_ok(const char *p)
{
    size_t n;
    for (const unsigned char *u = (const unsigned char *)p; *u; u += n)
        if (!(n = weft__utf8_len(u)))
            return false;
    return true;
}

static int refuse(struct scan *s, const char *path, int err, const char *why)
{
    snprintf(s->err, sizeof s->err, "%.200s: %.50s", path, why ? why : strerror(-err));
    return err;
}

/* A regular file (through symlinks), read whole: a directory, a FIFO, a
 * device or a file that changes under us is an error naming it. */
static int read_file(struct scan *s, const char *dir, struct mfile *m)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s", dir, m->file) >= (int)sizeof path)
        return refuse(s, m->file, -ENAMETOOLONG, NULL);
    if (!utf8_ok(m->file))
        return refuse(s, path, -EINVAL, "the file name is not UTF-8");
    if (strlen(m->name) >= sizeof(((weft_pg_migration *)0)->name))
        return refuse(s, path, -EINVAL, "the name is too long");
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat sb;
    if (fd < 0)
        return refuse(s, path, -errno, NULL);
    int bad = fstat(fd, &sb) < 0 ? -errno : !S_ISREG(sb.st_mode) ? -EINVAL
                                          : sb.st_size > FILE_MAX ? -EFBIG : 0;
    if (bad) {
        close(fd);
        return refuse(s, path, bad, bad == -EINVAL ? "not a regular file"
                                    : bad == -EFBIG ? "over 64 MiB" : NULL);
    }
    m->sql = malloc((size_t)sb.st_size + 1);
    size_t got = 0;
    ssize_t n = 1;
    while (m->sql && got < (size_t)sb.st_size &&
           ((n = read(fd, m->sql + got, (size_t)sb.st_size - got)) > 0 || (n < 0 && errno == EINTR)))
        got += n > 0 ? (size_t)n : 0;
    char extra;
    bool grew = m->sql && n >= 0 && read(fd, &extra, 1) > 0;
    close(fd);
    if (!m->sql)
        return -ENOMEM;
    if (n < 0 || got != (size_t)sb.st_size || grew)
        return refuse(s, path, -EIO, "changed while read");
    m->len = got;
    m->sql[m->len] = 0;
    if (strlen(m->sql) != m->len)
        return refuse(s, path, -EINVAL, "a NUL byte in the file");
    sha256_hex(m->sql, m->len, m->sum);
    size_t nl = strlen(NO_TX);
    m->notx = strncmp(m->sql, NO_TX, nl) == 0 && strspn(m->sql + nl, " \t\r") ==
                                                   strcspn(m->sql + nl, "\n");
    return 0;
}

static int by_version(const void *a, const void *b)
{
    const struct mfile *x = a, *y = b;
    return (x->version > y->version) - (x->version < y->version);
}

/* on the blocking pool: the folder's files, read whole, in order */
static int scan_blocking(void *arg)
{
    struct scan *s = arg;
    DIR *d = opendir(s->dir);
    if (!d) {
        snprintf(s->err, sizeof s->err, "migrations folder %s: %s", s->dir, strerror(errno));
        return -errno;
    }
    int cap = 0, rc = 0;
    struct dirent *e;
    while (!rc && (e = readdir(d))) {
        int64_t v;
        char *name;
        if (!parse_name(e->d_name, &v, &name))
            continue;                      /* README, editor files ... */
        if (s->n == cap) {
            cap = cap ? 2 * cap : 16;
            void *p = realloc(s->f, (size_t)cap * sizeof *s->f);
            if (!p) {
                free(name);
                rc = -ENOMEM;
                break;
            }
            s->f = p;
        }
        struct mfile *m = &s->f[s->n++];
        *m = (struct mfile){ .version = v, .name = name, .file = strdup(e->d_name) };
        rc = m->file ? read_file(s, s->dir, m) : -ENOMEM;
    }
    closedir(d);
    if (rc)
        return rc;
    qsort(s->f, (size_t)s->n, sizeof *s->f, by_version);
    for (int i = 1; i < s->n; i++)
        if (s->f[i].version == s->f[i - 1].version) {
            snprintf(s->err, sizeof s->err, "two migrations numbered %lld: %s and %s",
                     (long long)s->f[i].version, s->f[i - 1].file, s->f[i].file);
            return -EINVAL;
        }
    return 0;
}

static int scan(const char *dir, struct scan *s, weft_pg_result *r)
{
    *s = (struct scan){ .dir = dir };
    int rc = weft_run_blocking(scan_blocking, s);
    if (rc) {
        weft__pg_fail(r, rc, s->err[0] ? s->err : NULL);
        if (s->err[0])
            snprintf(r->error, sizeof r->error, "%s", s->err);
        files_free(s->f, s->n);
        s->f = NULL;
        s->n = 0;
    }
    return rc;
}

/* ---- the simple-query protocol, out of pipeline mode --------------------- */

/* sql (any number of statements); the last rows into r, or the first
 * error; *done: commands that completed before it. Interrupted: a cancel
 * request goes out and c is closed on release. */
static int simple(struct weft_pg_conn *c, const char *sql, weft_pg_result *r, int *done)
{
    weft_pg_result_free(r);
    int n = 0, err = 0;
    if (done)
        *done = 0;
    if (c->broken)
        return weft__pg_fail(r, -WEFT_EBROKEN, NULL);
    struct call k;
    weft__pg_call_init(&k, c->db, NULL, 0);
    k.deadline = weft_deadline();          /* the scope alone: a migration may take long */
    k.timeout_err = -ETIMEDOUT;
    if (!PQsendQuery(c->pg, sql)) {
        c->broken = true;
        return weft__pg_fail(r, -ECONNRESET, PQerrorMessage(c->pg));
    }
    int rc = weft__pg_flush(c, &k);
    while (!rc) {
        PGresult *res;
        if ((rc = weft__pg_plain_next(c, k.deadline, k.timeout_err, &res)) != 0) {
            if (rc != -ECONNRESET && rc != -WEFT_EEOF)
                weft__pg_cancel_and_break(c);
            break;
        }
        if (!res)
            break;                         /* the query's results are over */
        switch (PQresultStatus(res)) {
        case PGRES_COMMAND_OK:
            n += !err;
            PQclear(res);
            break;
        case PGRES_TUPLES_OK:
            n += !err;
            if (err || (weft_pg_result_free(r), weft__pg_result_set(r, res)) < 0)
                PQclear(res);
            break;
        case PGRES_COPY_IN:
            PQputCopyEnd(c->pg, "COPY FROM STDIN cannot run here");
            PQclear(res);
            break;
        case PGRES_COPY_OUT:
        case PGRES_COPY_BOTH:
            /* its data would come forever to nobody: stop it, drop c */
            PQclear(res);
            weft__pg_cancel_and_break(c);
            weft_pg_result_free(r);
            return weft__pg_fail(r, -EINVAL, "COPY ... TO STDOUT cannot run here");
        case PGRES_FATAL_ERROR:
            if (!err) {
                weft_pg_result_free(r);
                err = weft__pg_result_error(r, res);
            } else {
                PQclear(res);
            }
            break;
        default:
            PQclear(res);
        }
    }
    if (done)
        *done = n;
    if (rc) {
        c->broken = true;
        return weft__pg_fail(r, rc, rc == -ECONNRESET ? PQerrorMessage(c->pg) : NULL);
    }
    return err;
}

/* ---- applying files ------------------------------------------------------ */

/* the line of character pos (1-based, as the server counts) in text */
static int line_at(const char *text, long pos)
{
    int line = 1;
    for (const unsigned char *p = (const unsigned char *)text; *p && pos > 1; p++) {
        if ((*p & 0xc0) != 0x80)
            pos--;                         /* a character starts here */
        line += *p == '\n';
    }
    return line;
}

static long error_pos(const weft_pg_result *r)
{
    const char *p = r->priv_ && r->priv_->res
                        ? PQresultErrorField(r->priv_->res, PG_DIAG_STATEMENT_POSITION)
                        : NULL;
    return p ? atol(p) : 0;
}

struct nth {
    int want, line;
    const char *stmt;
    size_t len;
};

static int nth_stmt(void *ctx, const char *stmt, size_t len, int line)
{
    struct nth *t = ctx;
    if (t->want-- > 0)
        return 0;
    t->stmt = stmt;
    t->len = len;
    t->line = line;
    return 1;
}

/* r's error, prefixed with the file and the line where it failed */
static void name_failure(weft_pg_result *r, const struct mfile *m, int line)
{
    const weft_pg_error_info *e = weft_pg_error(r);
    char msg[256];
    snprintf(msg, sizeof msg, "%s", e && e->message ? e->message : r->error);
    snprintf(r->error, sizeof r->error, "%.80s line %d: %.150s", m->file, line, msg);
}

static int record(struct weft_pg_conn *c, const struct mset *set, const struct mfile *m,
                  weft_pg_result *r)
{
    char *name = PQescapeLiteral(c->pg, m->name, strlen(m->name));
    char *sql = NULL;
    int rc = -ENOMEM;
    if (name && asprintf(&sql, "INSERT INTO %s(version, name, checksum) VALUES (%lld, %s, '%s')",
                         set->table, (long long)m->version, name, m->sum) >= 0)
        rc = simple(c, sql, r, NULL);
    PQfreemem(name);
    free(sql);
    return rc;
}

struct txctl {
    int line;
    char word[16];
};

/* a statement that would end the file's transaction (or start another) */
static int find_txctl(void *ctx, const char *stmt, size_t len, int line)
{
    (void)len;
    struct txctl *t = ctx;
    char w[16];
    weft__pg_first_word(stmt, w, sizeof w);
    static const char *const ends[] = { "begin", "start", "commit", "end", "rollback", "abort",
                                        NULL };
    for (int i = 0; ends[i]; i++)
        if (strcmp(w, ends[i]) == 0 && !(i == 4 && strncasecmp(stmt + 8, " to", 3) == 0)) {
            t->line = line;
            snprintf(t->word, sizeof t->word, "%s", w);
            return 1;
        }
    return 0;
}

static int apply_in_tx(struct weft_pg_conn *c, const struct mset *set, const struct mfile *m,
                       weft_pg_result *r)
{
    struct txctl t = { 0 };
    weft__sql_split(m->sql, m->len, find_txctl, &t);
    if (t.line) {
        weft_pg_result_free(r);
        weft__pg_fail(r, -EINVAL, NULL);
        snprintf(r->error, sizeof r->error, "%.80s line %d: %s in a migration: each file is its"
                 " own transaction (or starts \"-- weft:no-transaction\")", m->file, t.line,
                 t.word);
        return -EINVAL;
    }
    int done, rc = simple(c, "BEGIN", r, NULL);
    if (!rc && (rc = simple(c, m->sql, r, &done)) != 0) {
        long pos = error_pos(r);
        struct nth t = { .want = done, .line = 0 };
        weft__sql_split(m->sql, m->len, nth_stmt, &t);
        name_failure(r, m, pos ? line_at(m->sql, pos) : t.line ? t.line : 1);
    }
    if (!rc && PQtransactionStatus(c->pg) != PQTRANS_INTRANS) {
        weft_pg_result_free(r);            /* the file ended its transaction somehow */
        rc = weft__pg_fail(r, -EINVAL, NULL);
        snprintf(r->error, sizeof r->error, "%.80s: the file ended its transaction", m->file);
    }
    if (!rc)
        rc = record(c, set, m, r);
    if (!rc)
        rc = simple(c, "COMMIT", r, NULL);
    if (rc && !c->broken) {
        weft_pg_result keep = *r;          /* the failure, not the rollback's answer */
        weft_pg_result scratch = { 0 };
        simple(c, "ROLLBACK", &scratch, NULL);
        weft_pg_result_free(&scratch);
        *r = keep;
    }
    return rc;
}

struct each {
    struct weft_pg_conn *c;
    const struct mfile *m;
    weft_pg_result *r;
};

static int run_one(void *ctx, const char *stmt, size_t len, int line)
{
    struct each *x = ctx;
    char *sql = strndup(stmt, len);
    if (!sql)
        return -ENOMEM;
    int rc = simple(x->c, sql, x->r, NULL);
    if (rc) {
        long pos = error_pos(x->r);
        name_failure(x->r, x->m, line + (pos ? line_at(sql, pos) - 1 : 0));
    }
    free(sql);
    return rc;
}

static int apply_alone(struct weft_pg_conn *c, const struct mset *set, const struct mfile *m,
                       weft_pg_result *r)
{
    struct each x = { c, m, r };
    int rc = weft__sql_split(m->sql, m->len, run_one, &x);
    return rc < 0 ? rc : record(c, set, m, r);
}

/* ---- the run --------------------------------------------------------------- */

struct done_row {
    int64_t version;
    char sum[65];
};

/* the set's table as it is (r holds the rows) */
static int applied_rows(struct weft_pg_conn *c, const struct mset *set, weft_pg_result *r,
                        struct done_row **out, int *n)
{
    *out = NULL;
    *n = 0;
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT version, checksum FROM %s ORDER BY version", set->table);
    int rc = simple(c, sql, r, NULL);
    if (rc)
        return rc;
    if (r->nrows && !(*out = calloc((size_t)r->nrows, sizeof **out)))
        return -ENOMEM;
    for (int i = 0; i < r->nrows; i++) {
        const char *sum;
        size_t len;
        weft_pg_get_int(r, i, 0, &(*out)[i].version);
        if (weft_pg_get_text(r, i, 1, &sum, &len) == 0)
            snprintf((*out)[i].sum, sizeof (*out)[i].sum, "%s", sum);
    }
    *n = r->nrows;
    return 0;
}

static const struct done_row *find_row(const struct done_row *d, int n, int64_t version)
{
    for (int i = 0; i < n; i++)
        if (d[i].version == version)
            return &d[i];
    return NULL;
}

static int migrate_on(struct weft_pg_conn *c, const struct mset *set, const struct scan *s,
                      weft_pg_result *r,
                      void (*applied)(const weft_pg_migration *m, void *ctx), void *ctx)
{
    char lock[256];
    snprintf(lock, sizeof lock, "SET statement_timeout = 0; SET client_min_messages = warning;"
             " SELECT pg_advisory_lock(%lld)", (long long)set->lock);
    c->dirty = true;                        /* the lock and the setting: DISCARD ALL on release */
    c->timeout_ms = -1;
    int rc = simple(c, lock, r, NULL);
    if (!rc && set->setup)
        rc = simple(c, set->setup, r, NULL);
    if (!rc) {
        snprintf(lock, sizeof lock, "CREATE TABLE IF NOT EXISTS %s(version bigint PRIMARY KEY,"
                 " name text NOT NULL, checksum text NOT NULL,"
                 " applied_at timestamptz NOT NULL DEFAULT now())", set->table);
        rc = simple(c, lock, r, NULL);
    }
    struct done_row *rows = NULL;
    int nrows = 0, count = 0;
    if (!rc)
        rc = applied_rows(c, set, r, &rows, &nrows);
    /* every applied file checked before anything is applied, and nothing
     * numbered below what is applied already */
    int64_t top = nrows ? rows[nrows - 1].version : INT64_MIN;
    for (int i = 0; !rc && i < s->n; i++) {
        const struct mfile *m = &s->f[i];
        const struct done_row *d = find_row(rows, nrows, m->version);
        if (d && strcmp(d->sum, m->sum) != 0) {
            weft_pg_result_free(r);
            rc = weft__pg_fail(r, -EINVAL, NULL);
            snprintf(r->error, sizeof r->error, "%s was changed after it was applied"
                     " (checksum %.12s..., applied %.12s...)", m->file, m->sum, d->sum);
        } else if (!d && m->version < top) {
            weft_pg_result_free(r);
            rc = weft__pg_fail(r, -EINVAL, NULL);
            snprintf(r->error, sizeof r->error, "%.100s is numbered below %lld, applied already:"
                     " migrations apply in order (renumber it)", m->file, (long long)top);
        }
    }
    for (int i = 0; !rc && i < s->n; i++) {
        const struct mfile *m = &s->f[i];
        if (find_row(rows, nrows, m->version))
            continue;
        rc = m->notx ? apply_alone(c, set, m, r) : apply_in_tx(c, set, m, r);
        if (!rc) {                         /* what a file SET does not reach the next */
            weft_pg_result scratch = { 0 };
            rc = simple(c, "RESET ALL; SET statement_timeout = 0;"
                           " SET client_min_messages = warning", &scratch, NULL);
            weft_pg_result_free(&scratch);
        }
        if (!rc) {
            count++;
            weft_pg_migration info = { .version = m->version, .applied = true };
            snprintf(info.name, sizeof info.name, "%s", m->name);
            snprintf(info.file, sizeof info.file, "%s", m->file);
            memcpy(info.checksum, m->sum, sizeof info.checksum);
            if (applied)
                applied(&info, ctx);
        }
    }
    free(rows);
    weft_pg_result scratch = { 0 };
    snprintf(lock, sizeof lock, "SELECT pg_advisory_unlock(%lld)", (long long)set->lock);
    if (!c->broken)
        simple(c, lock, &scratch, NULL);
    weft_pg_result_free(&scratch);
    if (!rc)
        weft_pg_result_free(r);
    return rc ? rc : count;
}

/* the scanned files on an exclusive connection, out of pipeline mode */
static int migrate_set(weft_pg *db, const struct mset *set, const struct scan *s,
                       weft_pg_result *r,
                       void (*applied)(const weft_pg_migration *m, void *ctx), void *ctx)
{
    weft_pg_conn *c = NULL;
    int rc = weft_pg_acquire(db, &c);
    if (rc)
        return weft__pg_fail(r, rc, NULL);
    if (PQpipelineStatus(c->pg) != PQ_PIPELINE_OFF && !PQexitPipelineMode(c->pg)) {
        c->broken = true;
        rc = weft__pg_fail(r, -EIO, PQerrorMessage(c->pg));
    }
    if (!rc)
        rc = migrate_on(c, set, s, r, applied, ctx);
    if (!c->broken && !PQenterPipelineMode(c->pg))
        c->broken = true;
    weft_pg_release(db, c);
    return rc;
}

int weft_pg_migrate_cb(weft_pg *db, const char *dir, weft_pg_result *r,
                       void (*applied)(const weft_pg_migration *m, void *ctx), void *ctx)
{
    weft_pg_result scratch = { 0 };
    r = r ? r : &scratch;
    memset(r, 0, sizeof *r);
    if (!db || !dir)
        return weft__pg_fail(r, -EINVAL, NULL);
    struct scan s;
    int rc = scan(dir, &s, r);
    if (!rc)
        rc = migrate_set(db, &app_set, &s, r, applied, ctx);
    files_free(s.f, s.n);
    if (r == &scratch)
        weft_pg_result_free(&scratch);
    return rc;
}

int weft__pg_migrate_embedded(weft_pg *db, const char *table, int64_t lock, const char *setup,
                              const struct weft__pg_migration_src *src, int n, weft_pg_result *r)
{
    struct mset set = { table, lock, setup };
    struct scan s = { .dir = table, .n = n };
    if (!(s.f = calloc((size_t)n, sizeof *s.f)))
        return weft__pg_fail(r, -ENOMEM, NULL);
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        struct mfile *m = &s.f[i];
        m->version = src[i].version;
        m->len = strlen(src[i].sql);
        if (!(m->name = strdup(src[i].name)) || !(m->file = strdup(src[i].name)) ||
            !(m->sql = strdup(src[i].sql)))
            rc = weft__pg_fail(r, -ENOMEM, NULL);
        else
            sha256_hex(m->sql, m->len, m->sum);
    }
    if (!rc)
        rc = migrate_set(db, &set, &s, r, NULL, NULL);
    files_free(s.f, s.n);
    return rc;
}

int weft_pg_migrate(weft_pg *db, const char *dir, weft_pg_result *r)
{
    return weft_pg_migrate_cb(db, dir, r, NULL, NULL);
}

/* ---- status ---------------------------------------------------------------- */

static int by_version_m(const void *a, const void *b)
{
    const weft_pg_migration *x = a, *y = b;
    return (x->version > y->version) - (x->version < y->version);
}

int weft_pg_migrations(weft_pg *db, const char *dir, weft_pg_migration **out, weft_pg_result *r)
{
    weft_pg_result scratch = { 0 };
    r = r ? r : &scratch;
    memset(r, 0, sizeof *r);
    if (!out)
        return weft__pg_fail(r, -EINVAL, NULL);
    *out = NULL;
    if (!db || !dir)
        return weft__pg_fail(r, -EINVAL, NULL);
    struct scan s;
    int rc = scan(dir, &s, r);
    if (!rc) {
        rc = weft_pg_query(db, r, "SELECT version, checksum, name,"
                                  " (extract(epoch from applied_at) * 1000000)::int8"
                                  " FROM schema_migrations ORDER BY version", 0, NULL);
        const weft_pg_error_info *e = weft_pg_error(r);
        if (rc == -WEFT_EPG && e && e->sqlstate && strcmp(e->sqlstate, "42P01") == 0) {
            weft_pg_result_free(r);        /* no table yet: nothing applied */
            memset(r, 0, sizeof *r);
            rc = 0;
        }
    }
    int n = 0;
    weft_pg_migration *list = NULL;
    if (!rc && !(list = calloc((size_t)(s.n + r->nrows) + 1, sizeof *list)))
        rc = -ENOMEM;
    for (int i = 0; !rc && i < s.n; i++) {
        weft_pg_migration *m = &list[n++];
        m->version = s.f[i].version;
        snprintf(m->name, sizeof m->name, "%s", s.f[i].name);
        snprintf(m->file, sizeof m->file, "%s", s.f[i].file);
        memcpy(m->checksum, s.f[i].sum, sizeof m->checksum);
    }
    for (int row = 0; !rc && row < r->nrows; row++) {
        int64_t v = 0;
        const char *sum = "", *name = "";
        size_t len;
        weft_pg_get_int(r, row, 0, &v);
        weft_pg_get_text(r, row, 1, &sum, &len);
        weft_pg_get_text(r, row, 2, &name, &len);
        weft_pg_migration *m = NULL;
        for (int i = 0; i < s.n && !m; i++)
            if (list[i].version == v)
                m = &list[i];
        if (!m) {                          /* applied, its file gone */
            m = &list[n++];
            m->version = v;
            m->file_missing = true;
            snprintf(m->name, sizeof m->name, "%s", name);
        }
        m->applied = true;
        m->changed = !m->file_missing && strcmp(m->checksum, sum) != 0;
        weft_pg_get_int(r, row, 3, &m->applied_at_us);
    }
    files_free(s.f, s.n);
    if (!rc) {
        qsort(list, (size_t)n, sizeof *list, by_version_m);
        weft_pg_result_free(r);
        *out = list;
    } else {
        free(list);
    }
    if (r == &scratch)
        weft_pg_result_free(&scratch);
    return rc ? rc : n;
}

void weft_pg_migrations_free(weft_pg_migration *list)
{
    free(list);
}
