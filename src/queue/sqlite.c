/*
 * The SQLite backend: "sqlite:PATH", the embedded default.
 *
 * One store per file per process (handles of every loop share it): one
 * writer connection owned by one writer thread, and one reader connection
 * for get, list and stats. Tasks hand their writes (enqueues, claims with
 * the acks before them, extends, retries, purges) to the writer as ops on
 * their stacks and wait on the store's wait queue; the writer takes every
 * op waiting, runs them in one transaction (each in a savepoint, so one
 * failing op fails alone) and commits once: a group commit, one fsync for
 * all of them. While it commits, the next group gathers. SQLite's busy
 * waits (another process holds the write lock) and fsyncs happen on the
 * writer thread, never on a loop.
 *
 * The file is in WAL mode with synchronous=FULL: a committed job survives
 * kill -9 and power loss. Several processes share it through SQLite's own
 * locking (busy_timeout on the writer thread). An idle worker is woken by
 * inotify on the file's directory when any process writes the WAL, not by
 * polling.
 *
 * Row states: 0 waiting (queued, or scheduled while run_at is ahead),
 * 2 running (leased until lease_until, to the holder of token), 3 done,
 * 4 dead. A running row whose lease passed reads as queued.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../core/kernel.h"
#include "internal.h"

#define BUSY_TIMEOUT_MS 10000
#define WAL_LIMIT (64 << 20)             /* past it the writer forces a checkpoint */
#define GROUP_MAX 512                    /* ops in one commit */

enum { OP_ENQUEUE, OP_CLAIM, OP_EXTEND, OP_RETRY, OP_PURGE };
enum { PENDING, FLIGHT, DONE };

struct op {
    struct op *next;
    int kind, state, rc;
    bool wrote_jobs;                     /* an enqueue or retry: wake workers */
    struct weft__waiter w;
    int64_t now;
    union {
        struct { const weft_job_spec *jobs; int n; weft_job_id *ids; bool *dup; } enq;
        struct {
            const char *queue;
            const struct weft__outcome *o;
            int no, max, def_max;
            int64_t lease_until, next;
            struct weft__claim *out;
        } claim;
        struct { const weft_job_id *ids; const uint64_t *tokens; int n; int64_t until; bool *lost; } ext;
        struct { weft_job_id id; } retry;
        struct { const char *queue; int state; } purge;
    } u;
};

enum {
    S_INSERT, S_BY_KEY, S_EXPIRED, S_REQUEUE, S_EXPIRE_DEAD, S_DUE, S_TAKE, S_NEXT,
    S_DONE, S_RETRY, S_DEAD, S_RELEASE, S_EXTEND, S_REVIVE, S_EXISTS, S_PURGE, S_NSTMT
};

static const char *const sql[S_NSTMT] = {
    [S_INSERT] = "INSERT INTO weft_jobs(queue,type,payload,priority,run_at,max_attempts,created,ikey)"
                 " VALUES(?1,?2,?3,?4,?5,?6,?7,?8) RETURNING id",
    [S_BY_KEY] = "SELECT id FROM weft_jobs WHERE queue=?1 AND ikey=?2",
    [S_EXPIRED] = "SELECT id, attempts, max_attempts FROM weft_jobs"
                  " WHERE queue=?1 AND state=2 AND lease_until<=?2 LIMIT 256",
    [S_REQUEUE] = "UPDATE weft_jobs SET state=0, lease_until=NULL, token=NULL WHERE id=?1",
    [S_EXPIRE_DEAD] = "UPDATE weft_jobs SET state=4, lease_until=NULL, token=NULL, finished=?2,"
                      " last_error=?3 WHERE id=?1",
    /* per priority, 9 to 0: a seek each, however many jobs wait for later */
    [S_DUE] = "SELECT id FROM weft_jobs WHERE queue=?1 AND state=0 AND priority=?4 AND"
              " run_at<=?2 ORDER BY run_at, id LIMIT ?3",
    [S_TAKE] = "UPDATE weft_jobs SET state=2, attempts=attempts+1, lease_until=?2, token=?3,"
               " max_attempts=CASE WHEN max_attempts>0 THEN max_attempts ELSE ?4 END"
               " WHERE id=?1 RETURNING type, payload, attempts, max_attempts, run_at",
    /* min() as an aggregate skips a NULL side (the two-argument min() would be NULL) */
    [S_NEXT] = "SELECT min(t) FROM (SELECT min(run_at) AS t FROM weft_jobs WHERE queue=?1 AND"
               " state=0 UNION ALL SELECT min(lease_until) FROM weft_jobs WHERE queue=?1 AND state=2)",
    [S_DONE] = "UPDATE weft_jobs SET state=3, finished=?3, result=?4, lease_until=NULL, token=NULL"
               " WHERE id=?1 AND token=?2 AND state=2",
    [S_RETRY] = "UPDATE weft_jobs SET state=0, run_at=?3, last_error=?4, lease_until=NULL,"
                " token=NULL WHERE id=?1 AND token=?2 AND state=2",
    [S_DEAD] = "UPDATE weft_jobs SET state=4, finished=?3, last_error=?4, lease_until=NULL,"
               " token=NULL WHERE id=?1 AND token=?2 AND state=2",
    [S_RELEASE] = "UPDATE weft_jobs SET state=0, attempts=max(attempts-1,0), lease_until=NULL,"
                  " token=NULL WHERE id=?1 AND token=?2 AND state=2",
    [S_EXTEND] = "UPDATE weft_jobs SET lease_until=?3 WHERE id=?1 AND token=?2 AND state=2",
    [S_REVIVE] = "UPDATE weft_jobs SET state=0, attempts=0, run_at=?2, finished=NULL"
                 " WHERE id=?1 AND state=4",
    [S_EXISTS] = "SELECT 1 FROM weft_jobs WHERE id=?1",
    [S_PURGE] = "DELETE FROM weft_jobs WHERE (?1 IS NULL OR queue=?1) AND"
                " (state=?2 OR (?2<0 AND state IN (3,4)))",
};

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS weft_jobs("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " queue TEXT NOT NULL, type TEXT NOT NULL, payload TEXT NOT NULL,"
    " state INTEGER NOT NULL DEFAULT 0,"
    " priority INTEGER NOT NULL DEFAULT 0,"
    " run_at INTEGER NOT NULL,"
    " attempts INTEGER NOT NULL DEFAULT 0, max_attempts INTEGER NOT NULL,"
    " lease_until INTEGER, token INTEGER,"
    " created INTEGER NOT NULL, finished INTEGER,"
    " ikey TEXT, result TEXT, last_error TEXT);"
    "CREATE INDEX IF NOT EXISTS weft_jobs_due ON weft_jobs(queue, priority DESC, run_at, id)"
    " WHERE state=0;"
    "CREATE INDEX IF NOT EXISTS weft_jobs_next ON weft_jobs(queue, run_at) WHERE state=0;"
    "CREATE INDEX IF NOT EXISTS weft_jobs_leased ON weft_jobs(queue, lease_until) WHERE state=2;"
    "CREATE UNIQUE INDEX IF NOT EXISTS weft_jobs_key ON weft_jobs(queue, ikey)"
    " WHERE ikey IS NOT NULL;";

struct store {
    struct store *next;                  /* the process's stores */
    dev_t dev;
    ino_t ino;
    int refs;
    char *path, *dir, *wal_name;         /* wal_name: the WAL's file name in dir */
    sqlite3 *w, *r;
    sqlite3_stmt *st[S_NSTMT];
    pthread_mutex_t rlock;               /* the reader connection */
    /* the writer: ops in, results handed back on wq */
    pthread_mutex_t m;
    pthread_cond_t cv;
    struct op *head, *tail;
    weft__wq wq;
    bool quit;
    pthread_t thread;
    uint64_t token;                      /* the next lease token */
    unsigned commits;
};

struct handle {
    struct store *s;
};

static pthread_mutex_t stores_lock = PTHREAD_MUTEX_INITIALIZER;
static struct store *stores;

/* ---- errors ------------------------------------------------------------ */

static bool telling(int e)
{
    return e == ENOSPC || e == EFBIG || e == EDQUOT || e == EROFS;
}

/* SQLite's sqlite3_system_errno is the thread's errno when the error came
 * up, often overwritten by then; the files keep the one that failed them */
static int file_errno(sqlite3 *db)
{
    int e = 0;
    sqlite3_file *f = NULL;
    if (db && sqlite3_file_control(db, "main", SQLITE_FCNTL_LAST_ERRNO, &e) == SQLITE_OK &&
        telling(e))
        return e;
    e = 0;
    if (db && sqlite3_file_control(db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &f) == SQLITE_OK &&
        f && f->pMethods)
        f->pMethods->xFileControl(f, SQLITE_FCNTL_LAST_ERRNO, &e);
    return e;
}

static int sq_errno(sqlite3 *db, int rc)
{
    int sys = db ? sqlite3_system_errno(db) : 0;
    switch (rc & 0xff) {
    case SQLITE_OK: case SQLITE_ROW: case SQLITE_DONE: return 0;
    case SQLITE_FULL: return -ENOSPC;
    case SQLITE_READONLY: case SQLITE_PERM: case SQLITE_AUTH: return -EACCES;
    case SQLITE_BUSY: case SQLITE_LOCKED: return -EBUSY;
    case SQLITE_NOMEM: return -ENOMEM;
    case SQLITE_TOOBIG: return -EMSGSIZE;
    case SQLITE_CANTOPEN:
        return sys == ENOENT || sys == EACCES || sys == EISDIR || sys == ENOTDIR ||
                       sys == EROFS ? -sys : sys == EPERM ? -EACCES : -EIO;
    case SQLITE_IOERR:
        if (!telling(sys))
            sys = file_errno(db);
        return telling(sys) ? -sys : -EIO;
    default: return -EIO;               /* corrupt, not a database, ... */
    }
}

/* the code for rc, logged with SQLite's words and the file */
static int sq_fail(struct store *s, sqlite3 *db, int rc, const char *what)
{
    int err = sq_errno(db, rc);
    weft_log(WEFT_LOG_WARN, "queue sqlite:%s: %s: %s (%s)", s->path, what,
             db ? sqlite3_errmsg(db) : sqlite3_errstr(rc), weft_strerror(err));
    return err;
}

/* ---- opening ----------------------------------------------------------- */

static int exec(struct store *s, sqlite3 *db, const char *q, const char *what)
{
    int rc = sqlite3_exec(db, q, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : sq_fail(s, db, rc, what);
}

static int connect_db(struct store *s, sqlite3 **out)
{
    int rc = sqlite3_open_v2(s->path, out, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                             SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK)
        return sq_fail(s, *out, rc, "cannot open");
    if (sqlite3_db_readonly(*out, "main") == 1) {
        weft_log(WEFT_LOG_WARN, "queue sqlite:%s: the file is read-only", s->path);
        return -EACCES;
    }
    sqlite3_busy_timeout(*out, BUSY_TIMEOUT_MS);
    sqlite3_extended_result_codes(*out, 1);
    return exec(s, *out, "PRAGMA synchronous=FULL; PRAGMA secure_delete=OFF;"
                         "PRAGMA journal_size_limit=67108864;", "settings");
}

static int store_setup(struct store *s)
{
    int rc = connect_db(s, &s->w);
    if (rc)
        return rc;
    /* WAL is a property of the file; the first opener sets it */
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->w, "PRAGMA journal_mode=WAL", -1, &st, NULL) != SQLITE_OK)
        return sq_fail(s, s->w, sqlite3_errcode(s->w), "not a database");
    int step = sqlite3_step(st);
    bool wal = step == SQLITE_ROW && strcmp((const char *)sqlite3_column_text(st, 0), "wal") == 0;
    sqlite3_finalize(st);
    if (step != SQLITE_ROW)
        return sq_fail(s, s->w, step, "cannot use the file");
    if (!wal) {
        weft_log(WEFT_LOG_WARN, "queue sqlite:%s: WAL mode refused (a network file system?)",
                 s->path);
        return -EIO;
    }
    if ((rc = exec(s, s->w, "BEGIN IMMEDIATE", "cannot lock")) ||
        (rc = exec(s, s->w, schema, "cannot create the schema")) ||
        (rc = exec(s, s->w, "COMMIT", "cannot create the schema"))) {
        sqlite3_exec(s->w, "ROLLBACK", NULL, NULL, NULL);
        return rc;
    }
    for (int i = 0; i < S_NSTMT; i++)
        if (sqlite3_prepare_v3(s->w, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL))
            return sq_fail(s, s->w, sqlite3_errcode(s->w), "cannot prepare");
    return connect_db(s, &s->r);
}

static void *writer_main(void *arg);

static void store_free(struct store *s)
{
    for (int i = 0; i < S_NSTMT; i++)
        sqlite3_finalize(s->st[i]);
    sqlite3_close(s->w);
    sqlite3_close(s->r);
    pthread_mutex_destroy(&s->m);
    pthread_mutex_destroy(&s->rlock);
    pthread_cond_destroy(&s->cv);
    free(s->path);
    free(s->dir);
    free(s->wal_name);
    weft__free(s);
}

/* where the WAL is, for inotify: beside the real file, symlinks resolved
 * (SQLite resolves them too) */
static int watch_names(struct store *s)
{
    char *real = realpath(s->path, NULL);
    if (!real)
        return -errno;
    char *slash = strrchr(real, '/');
    s->dir = strndup(real, slash == real ? 1 : (size_t)(slash - real));
    if (asprintf(&s->wal_name, "%s-wal", slash + 1) < 0)
        s->wal_name = NULL;
    free(real);
    return s->dir && s->wal_name ? 0 : -ENOMEM;
}

static int store_new(const char *path, struct store **out)
{
    struct store *s = weft__calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    pthread_mutex_init(&s->m, NULL);
    pthread_mutex_init(&s->rlock, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->refs = 1;
    if (!(s->path = strdup(path))) {
        store_free(s);
        return -ENOMEM;
    }
    if (getrandom(&s->token, sizeof s->token, 0) != sizeof s->token)
        s->token = (uint64_t)getpid() << 32 ^ (uint64_t)time(NULL);
    s->token &= INT64_MAX >> 1;          /* a positive int64 for long, long after */
    int rc = store_setup(s);
    struct stat sb;
    if (!rc && stat(path, &sb) < 0)
        rc = -errno;
    if (!rc)
        rc = watch_names(s);
    if (!rc && pthread_create(&s->thread, NULL, writer_main, s))
        rc = -EAGAIN;
    if (rc) {
        store_free(s);
        return rc;
    }
    s->dev = sb.st_dev;
    s->ino = sb.st_ino;
    *out = s;
    return 0;
}

struct open_args {
    const char *path;
    struct store *s;
};

/* on the blocking pool: the file's store, shared by the process */
static int open_blocking(void *arg)
{
    struct open_args *a = arg;
    struct stat sb;
    pthread_mutex_lock(&stores_lock);
    if (stat(a->path, &sb) == 0) {
        if (S_ISDIR(sb.st_mode)) {
            pthread_mutex_unlock(&stores_lock);
            weft_log(WEFT_LOG_WARN, "queue sqlite:%s: is a directory", a->path);
            return -EISDIR;
        }
        for (struct store *s = stores; s; s = s->next)
            if (s->dev == sb.st_dev && s->ino == sb.st_ino) {
                s->refs++;
                a->s = s;
                pthread_mutex_unlock(&stores_lock);
                return 0;
            }
    }
    int rc = store_new(a->path, &a->s);
    if (!rc) {
        a->s->next = stores;
        stores = a->s;
    }
    pthread_mutex_unlock(&stores_lock);
    return rc;
}

static int close_blocking(void *arg)
{
    struct store *s = arg;
    pthread_mutex_lock(&stores_lock);
    bool last = --s->refs == 0;
    if (last)
        for (struct store **p = &stores; *p; p = &(*p)->next)
            if (*p == s) {
                *p = s->next;
                break;
            }
    pthread_mutex_unlock(&stores_lock);
    if (!last)
        return 0;
    pthread_mutex_lock(&s->m);
    s->quit = true;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->m);
    pthread_join(s->thread, NULL);
    store_free(s);
    return 0;
}

static int sq_open(weft_queue *q, const char *path)
{
    if (!*path) {
        weft_log(WEFT_LOG_WARN, "queue url %s: no file after sqlite:", q->shown);
        return -EINVAL;
    }
    if (strcmp(path, ":memory:") == 0 || strncmp(path, "file:", 5) == 0) {
        weft_log(WEFT_LOG_WARN, "queue url %s: a queue is a file (in memory is neither durable"
                 " nor shared)", q->shown);
        return -EINVAL;
    }
    struct handle *h = weft__calloc(1, sizeof *h);
    if (!h)
        return -ENOMEM;
    struct open_args a = { path, NULL };
    weft_scope sc;                       /* the store must not be left half-counted */
    weft_scope_enter_shielded(&sc, 60 * WEFT_SEC);
    int rc = weft_run_blocking(open_blocking, &a);
    weft_scope_exit(&sc);
    if (rc) {
        weft__free(h);
        return rc;
    }
    h->s = a.s;
    q->impl = h;
    return 0;
}

/* nothing of this handle is in flight (queue.c sees to it): the store's
 * last close joins its writer and frees it off the loop */
static void sq_close(weft_queue *q)
{
    struct handle *h = q->impl;
    weft_run_blocking_detached(close_blocking, h->s, NULL);
    weft__free(h);
}

/* ---- the writer thread -------------------------------------------------- */

static int step_done(struct store *s, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : sq_fail(s, s->w, rc, what);
}

static void bind_text(sqlite3_stmt *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

/* the id of queue's job with key, 0 if none, or < 0 */
static int64_t by_key(struct store *s, const char *queue, const char *key)
{
    sqlite3_stmt *st = s->st[S_BY_KEY];
    sqlite3_bind_text(st, 1, queue, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int64_t id = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? id : sq_fail(s, s->w, rc, "enqueue");
}

static int run_enqueue(struct store *s, struct op *op)
{
    sqlite3_stmt *ins = s->st[S_INSERT];
    for (int i = 0; i < op->u.enq.n; i++) {
        const weft_job_spec *j = &op->u.enq.jobs[i];
        const weft_job_opts *o = &j->opts;
        /* a known key is looked up first: an insert that conflicts would
         * still use up an id */
        int64_t id = o->key ? by_key(s, j->queue, o->key) : 0;
        if (id < 0)
            return (int)id;
        op->u.enq.dup[i] = id > 0;
        if (id == 0) {
            int64_t at = op->now + o->delay / WEFT_MS;
            if (o->run_at_ms > at)
                at = o->run_at_ms;
            sqlite3_bind_text(ins, 1, j->queue, -1, SQLITE_STATIC);
            sqlite3_bind_text(ins, 2, j->type, -1, SQLITE_STATIC);
            sqlite3_bind_text(ins, 3, j->payload, -1, SQLITE_STATIC);
            sqlite3_bind_int(ins, 4, o->priority);
            sqlite3_bind_int64(ins, 5, at);
            sqlite3_bind_int(ins, 6, o->max_attempts);
            sqlite3_bind_int64(ins, 7, op->now);
            bind_text(ins, 8, o->key);
            int rc = sqlite3_step(ins);
            id = rc == SQLITE_ROW ? sqlite3_column_int64(ins, 0) : 0;
            sqlite3_reset(ins);
            if (rc != SQLITE_ROW)
                return rc == SQLITE_DONE ? -EIO : sq_fail(s, s->w, rc, "enqueue");
            op->wrote_jobs = true;
        }
        if (op->u.enq.ids)
            op->u.enq.ids[i] = id;
    }
    return 0;
}

static int write_outcome(struct store *s, const struct weft__outcome *o)
{
    static const int stmt[] = { [WEFT__DONE] = S_DONE, [WEFT__RETRY] = S_RETRY,
                                [WEFT__DEAD] = S_DEAD, [WEFT__RELEASE] = S_RELEASE };
    sqlite3_stmt *st = s->st[stmt[o->kind]];
    sqlite3_bind_int64(st, 1, o->id);
    sqlite3_bind_int64(st, 2, (int64_t)o->token);
    if (o->kind != WEFT__RELEASE) {
        sqlite3_bind_int64(st, 3, o->at_ms);
        bind_text(st, 4, o->text);
    }
    int rc = step_done(s, st, "write a job's outcome");
    if (!rc && sqlite3_changes(s->w) == 0)
        weft_log(WEFT_LOG_INFO, "queue: job %lld was no longer leased to this worker"
                 " (lease expired): its outcome is dropped", (long long)o->id);
    return rc;
}

/* leases of queue that expired: due again, or dead when attempts are spent */
static int take_back(struct store *s, const char *queue, int64_t now, int def_max)
{
    sqlite3_stmt *st = s->st[S_EXPIRED];
    struct { int64_t id; int att, max; } x[256];
    int n = 0, rc;
    sqlite3_bind_text(st, 1, queue, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && n < 256) {
        x[n].id = sqlite3_column_int64(st, 0);
        x[n].att = sqlite3_column_int(st, 1);
        x[n++].max = sqlite3_column_int(st, 2) > 0 ? sqlite3_column_int(st, 2) : def_max;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return sq_fail(s, s->w, rc, "find expired leases");
    rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        if (x[i].att < x[i].max) {
            sqlite3_bind_int64(s->st[S_REQUEUE], 1, x[i].id);
            rc = step_done(s, s->st[S_REQUEUE], "take back a lease");
            continue;
        }
        char why[160];
        snprintf(why, sizeof why, "lease expired on attempt %d of %d: the worker died or"
                 " stopped heartbeating", x[i].att, x[i].max);
        st = s->st[S_EXPIRE_DEAD];
        sqlite3_bind_int64(st, 1, x[i].id);
        sqlite3_bind_int64(st, 2, now);
        sqlite3_bind_text(st, 3, why, -1, SQLITE_TRANSIENT);
        rc = step_done(s, st, "dead-letter an expired job");
    }
    return rc;
}

static int take_one(struct store *s, struct op *op, int64_t id, struct weft__claim *c)
{
    sqlite3_stmt *st = s->st[S_TAKE];
    uint64_t token = ++s->token;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, op->u.claim.lease_until);
    sqlite3_bind_int64(st, 3, (int64_t)token);
    sqlite3_bind_int(st, 4, op->u.claim.def_max);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        return sq_fail(s, s->w, rc, "claim");
    }
    *c = (struct weft__claim){ .id = id, .token = token };
    /* a row another program wrote may hold NULLs or blobs: the worker
     * dead-letters what it cannot read, it never trusts the file */
    const char *type = (const char *)sqlite3_column_text(st, 0);
    const char *payload = (const char *)sqlite3_column_text(st, 1);
    c->type = strdup(type ? type : "");
    c->payload = strdup(payload ? payload : "");
    c->queue = strdup(op->u.claim.queue);
    c->attempt = sqlite3_column_int(st, 2);
    c->max_attempts = sqlite3_column_int(st, 3);
    if (c->max_attempts <= 0)             /* the enqueuer left it to the worker */
        c->max_attempts = op->u.claim.def_max;
    c->due_ms = sqlite3_column_int64(st, 4);
    sqlite3_reset(st);
    if (!c->type || !c->payload || !c->queue) {
        weft__claim_clear(c);
        return -ENOMEM;
    }
    return 0;
}

static int run_claim(struct store *s, struct op *op)
{
    int rc = 0, n = 0;
    for (int i = 0; i < op->u.claim.no && !rc; i++)
        rc = write_outcome(s, &op->u.claim.o[i]);
    if (rc || op->u.claim.max == 0)
        return rc;
    const char *queue = op->u.claim.queue;
    if ((rc = take_back(s, queue, op->now, op->u.claim.def_max)))
        return rc;
    int64_t ids[256];
    sqlite3_stmt *st = s->st[S_DUE];
    sqlite3_bind_text(st, 1, queue, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, op->now);
    for (int prio = 9; prio >= 0 && n < op->u.claim.max; prio--) {
        sqlite3_bind_int(st, 3, op->u.claim.max - n);
        sqlite3_bind_int(st, 4, prio);
        while (n < op->u.claim.max && (rc = sqlite3_step(st)) == SQLITE_ROW)
            ids[n++] = sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
            return sq_fail(s, s->w, rc, "find due jobs");
    }
    for (int i = 0; i < n; i++)
        if ((rc = take_one(s, op, ids[i], &op->u.claim.out[i]))) {
            while (i--)
                weft__claim_clear(&op->u.claim.out[i]);
            return rc;
        }
    op->u.claim.next = INT64_MAX;
    if (n < op->u.claim.max) {
        st = s->st[S_NEXT];
        sqlite3_bind_text(st, 1, queue, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
            op->u.claim.next = sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
    }
    return n;
}

static int run_extend(struct store *s, struct op *op)
{
    sqlite3_stmt *st = s->st[S_EXTEND];
    for (int i = 0; i < op->u.ext.n; i++) {
        sqlite3_bind_int64(st, 1, op->u.ext.ids[i]);
        sqlite3_bind_int64(st, 2, (int64_t)op->u.ext.tokens[i]);
        sqlite3_bind_int64(st, 3, op->u.ext.until);
        int rc = step_done(s, st, "extend a lease");
        if (rc)
            return rc;
        op->u.ext.lost[i] = sqlite3_changes(s->w) == 0;
    }
    return 0;
}

static int run_retry(struct store *s, struct op *op)
{
    sqlite3_stmt *st = s->st[S_REVIVE];
    sqlite3_bind_int64(st, 1, op->u.retry.id);
    sqlite3_bind_int64(st, 2, op->now);
    int rc = step_done(s, st, "retry");
    if (rc || sqlite3_changes(s->w) == 1) {
        op->wrote_jobs = !rc;
        return rc;
    }
    st = s->st[S_EXISTS];
    sqlite3_bind_int64(st, 1, op->u.retry.id);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? -EINVAL : rc == SQLITE_DONE ? -ENOENT : sq_fail(s, s->w, rc, "retry");
}

static int run_purge(struct store *s, struct op *op)
{
    sqlite3_stmt *st = s->st[S_PURGE];
    bind_text(st, 1, op->u.purge.queue);
    sqlite3_bind_int(st, 2, op->u.purge.state);
    int rc = step_done(s, st, "purge");
    return rc ? rc : sqlite3_changes(s->w);
}

static int run_op(struct store *s, struct op *op)
{
    switch (op->kind) {
    case OP_ENQUEUE: return run_enqueue(s, op);
    case OP_CLAIM: return run_claim(s, op);
    case OP_EXTEND: return run_extend(s, op);
    case OP_RETRY: return run_retry(s, op);
    default: return run_purge(s, op);
    }
}

/* claims made in a group that then failed to commit are not handed out */
static void undo_results(struct op *op)
{
    if (op->kind == OP_CLAIM && op->rc > 0)
        for (int i = 0; i < op->rc; i++)
            weft__claim_clear(&op->u.claim.out[i]);
}

/* one group: every op in a savepoint of one transaction, one commit */
static void run_group(struct store *s, struct op *group)
{
    int rc = exec(s, s->w, "BEGIN IMMEDIATE", "cannot take the write lock");
    for (struct op *op = group; op && !rc; op = op->next) {
        sqlite3_exec(s->w, "SAVEPOINT op", NULL, NULL, NULL);
        op->rc = run_op(s, op);
        if (sqlite3_get_autocommit(s->w)) {
            /* SQLite rolled the whole transaction back by itself (I/O error,
             * disk full): nothing of the group stands, stop before a
             * savepoint opens a transaction of its own */
            rc = op->rc < 0 ? op->rc : -EIO;
            break;
        }
        if (op->rc < 0) {
            sqlite3_exec(s->w, "ROLLBACK TO op", NULL, NULL, NULL);
            op->wrote_jobs = false;
        }
        sqlite3_exec(s->w, "RELEASE op", NULL, NULL, NULL);
    }
    if (!rc && (rc = exec(s, s->w, "COMMIT", "cannot commit")) != 0)
        sqlite3_exec(s->w, "ROLLBACK", NULL, NULL, NULL);
    if (rc) {
        if (!sqlite3_get_autocommit(s->w))
            sqlite3_exec(s->w, "ROLLBACK", NULL, NULL, NULL);
        for (struct op *op = group; op; op = op->next) {
            undo_results(op);
            op->rc = rc;
            op->wrote_jobs = false;
        }
    }
    /* keep the WAL from growing without end under steady readers */
    struct stat sb;
    char wal[PATH_MAX];
    if (++s->commits % 64 == 0 && snprintf(wal, sizeof wal, "%s-wal", s->path) < (int)sizeof wal &&
        stat(wal, &sb) == 0 && sb.st_size > WAL_LIMIT)
        sqlite3_wal_checkpoint_v2(s->w, NULL, SQLITE_CHECKPOINT_RESTART, NULL, NULL);
}

static void *writer_main(void *arg)
{
    struct store *s = arg;
    pthread_mutex_lock(&s->m);
    for (;;) {
        while (!s->head && !s->quit)
            pthread_cond_wait(&s->cv, &s->m);
        if (!s->head)
            break;
        struct op *group = s->head, *last = group;
        int n = 1;
        group->state = FLIGHT;
        while (last->next && n < GROUP_MAX) {
            last = last->next;
            last->state = FLIGHT;
            n++;
        }
        s->head = last->next;
        if (!s->head)
            s->tail = NULL;
        last->next = NULL;
        pthread_mutex_unlock(&s->m);
        run_group(s, group);
        pthread_mutex_lock(&s->m);
        for (struct op *op = group, *next; op; op = next) {
            next = op->next;
            op->state = DONE;
            if (op->w.linked)
                weft__wq_handoff(&s->wq, &op->w, op->rc);
        }
    }
    pthread_mutex_unlock(&s->m);
    return NULL;
}

/* hands op to the writer and waits for its result. Cancelled before the
 * writer took it: -ECANCELED (-ETIMEDOUT), nothing done. Once taken the
 * result is awaited whatever happens: it is on this stack. */
static int submit(struct handle *h, struct op *op)
{
    struct store *s = h->s;
    op->now = weft__unix_ms();
    op->state = PENDING;
    op->next = NULL;
    op->w.data = op;
    pthread_mutex_lock(&s->m);
    if (s->tail)
        s->tail->next = op;
    else
        s->head = op;
    s->tail = op;
    pthread_cond_signal(&s->cv);
    int rc = weft__wq_wait(&s->wq, &op->w, &s->m, WEFT_FOREVER, 0, "queue commit");
    pthread_mutex_lock(&s->m);
    if (op->state == PENDING) {          /* not taken: unlink it */
        struct op **p = &s->head, *prev = NULL;
        while (*p != op) {
            prev = *p;
            p = &(*p)->next;
        }
        *p = op->next;
        if (s->tail == op)
            s->tail = prev;
        pthread_mutex_unlock(&s->m);
        return rc;
    }
    if (op->state == FLIGHT)
        return weft__wq_wait_uncancellable(&s->wq, &op->w, &s->m, "queue commit");
    pthread_mutex_unlock(&s->m);
    return op->rc;
}

/* ---- the backend's write calls ------------------------------------------ */

static int sq_enqueue(weft_queue *q, const weft_job_spec *jobs, int n, int64_t now,
                      weft_job_id *ids, bool *dup)
{
    (void)now;
    struct op op = { .kind = OP_ENQUEUE, .u.enq = { jobs, n, ids, dup } };
    return submit(q->impl, &op);
}

static int sq_claim(weft_queue *q, const char *queue, const struct weft__outcome *o, int no,
                    int max, int64_t now, int64_t lease_until, struct weft__claim *out,
                    int64_t *next)
{
    (void)now;
    struct op op = { .kind = OP_CLAIM };
    op.u.claim.queue = queue;
    op.u.claim.o = o;
    op.u.claim.no = no;
    op.u.claim.max = max > 256 ? 256 : max;
    op.u.claim.lease_until = lease_until;
    op.u.claim.def_max = q->o.max_attempts;
    op.u.claim.out = out;
    int rc = submit(q->impl, &op);
    *next = rc >= 0 ? op.u.claim.next : INT64_MAX;
    return rc;
}

static int sq_extend(weft_queue *q, const weft_job_id *ids, const uint64_t *tokens, int n,
                     int64_t until, bool *lost)
{
    struct op op = { .kind = OP_EXTEND, .u.ext = { ids, tokens, n, until, lost } };
    return submit(q->impl, &op);
}

static int sq_retry(weft_queue *q, weft_job_id id, int64_t now)
{
    (void)now;
    struct op op = { .kind = OP_RETRY, .u.retry = { id } };
    return submit(q->impl, &op);
}

static int sq_purge(weft_queue *q, const char *queue, int state)
{
    struct op op = { .kind = OP_PURGE, .u.purge = { queue, state } };
    return submit(q->impl, &op);
}

/* ---- reads, on the blocking pool through the reader connection ---------- */

#define STATE_SQL                                                                          \
    "CASE WHEN state=0 AND run_at>?9 THEN 1 WHEN state=2 AND lease_until<=?9 THEN 0"       \
    " ELSE state END"
#define INFO_SQL                                                                           \
    "SELECT id, " STATE_SQL " AS st, attempts, max_attempts, priority, created, run_at,"         \
    " coalesce(finished,0), queue, type, payload, result, last_error FROM weft_jobs "

struct read {
    struct store *s;
    int kind;                            /* 0 get, 1 list, 2 stats */
    int64_t now, id;
    const char *queue;
    int state, max, def_max;
    weft_job_info *out;
    weft_queue_stats *stats;
};

/* column i as a string: NULL for SQL NULL unless always (then "") */
static char *col_dup(sqlite3_stmt *st, int i, bool always)
{
    if (sqlite3_column_type(st, i) == SQLITE_NULL && !always)
        return NULL;
    const char *t = (const char *)sqlite3_column_text(st, i);
    size_t n = t ? (size_t)sqlite3_column_bytes(st, i) : 0;
    char *c = weft__malloc(n + 1);
    if (c) {
        memcpy(c, t ? t : "", n);
        c[n] = 0;
    }
    return c;
}

static int row_info(sqlite3_stmt *st, weft_job_info *o, int def_max)
{
    *o = (weft_job_info){
        .id = sqlite3_column_int64(st, 0), .state = sqlite3_column_int(st, 1),
        .attempts = sqlite3_column_int(st, 2), .max_attempts = sqlite3_column_int(st, 3),
        .priority = sqlite3_column_int(st, 4), .created_ms = sqlite3_column_int64(st, 5),
        .run_at_ms = sqlite3_column_int64(st, 6), .finished_ms = sqlite3_column_int64(st, 7),
    };
    if (o->max_attempts <= 0)
        o->max_attempts = def_max;
    o->queue = col_dup(st, 8, true);
    o->type = col_dup(st, 9, true);
    o->payload = col_dup(st, 10, true);
    o->result = col_dup(st, 11, false);
    o->last_error = col_dup(st, 12, false);
    bool oom = !o->queue || !o->type || !o->payload ||
               (!o->result && sqlite3_column_type(st, 11) != SQLITE_NULL) ||
               (!o->last_error && sqlite3_column_type(st, 12) != SQLITE_NULL);
    if (oom)
        weft_job_info_free(o);
    return oom ? -ENOMEM : 0;
}

static int read_rows(struct read *a, sqlite3_stmt *st)
{
    int n = 0, rc;
    while (n < a->max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if ((rc = row_info(st, &a->out[n], a->def_max)) < 0)
            goto fail;
        n++;
    }
    if (rc == SQLITE_OK || rc == SQLITE_DONE)  /* max rows read (row_info's 0), or all */
        return n;
    rc = sq_fail(a->s, a->s->r, rc, "read jobs");
fail:
    while (n--)
        weft_job_info_free(&a->out[n]);
    return rc;
}

static int read_stats(struct read *a, sqlite3_stmt *st)
{
    uint64_t *by[5] = { &a->stats->queued, &a->stats->scheduled, &a->stats->running,
                        &a->stats->done, &a->stats->dead };
    int rc;
    int64_t oldest = INT64_MAX;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int state = sqlite3_column_int(st, 0);
        if (state >= 0 && state < 5)
            *by[state] += (uint64_t)sqlite3_column_int64(st, 1);
        if (state == 0 && sqlite3_column_type(st, 2) != SQLITE_NULL)
            oldest = sqlite3_column_int64(st, 2);
    }
    if (oldest < a->now)
        a->stats->lag_s = ((double)a->now - (double)oldest) / 1e3;
    return rc == SQLITE_DONE ? 0 : sq_fail(a->s, a->s->r, rc, "read stats");
}

static int read_blocking(void *arg)
{
    struct read *a = arg;
    static const char *const q[] = {
        INFO_SQL "WHERE id=?1",
        "SELECT * FROM (" INFO_SQL "WHERE (?2 IS NULL OR queue=?2) AND id>?1)"
        " WHERE ?3<0 OR st=?3 ORDER BY id LIMIT ?4",
        "SELECT st, count(*), min(due) FROM (SELECT " STATE_SQL " AS st,"
        " CASE WHEN state=0 THEN run_at ELSE lease_until END AS due FROM weft_jobs"
        " WHERE ?2 IS NULL OR queue=?2) GROUP BY st",
    };
    struct store *s = a->s;
    pthread_mutex_lock(&s->rlock);
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(s->r, q[a->kind], -1, &st, NULL);
    if (rc != SQLITE_OK) {
        rc = sq_fail(s, s->r, rc, "read");
        pthread_mutex_unlock(&s->rlock);
        return rc;
    }
    sqlite3_bind_int64(st, 1, a->id);
    bind_text(st, 2, a->queue);
    sqlite3_bind_int(st, 3, a->state);
    sqlite3_bind_int(st, 4, a->max);
    sqlite3_bind_int64(st, 9, a->now);
    rc = a->kind == 2 ? read_stats(a, st) : read_rows(a, st);
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->rlock);
    return rc;
}

static int sq_get(weft_queue *q, weft_job_id id, int64_t now, weft_job_info *out)
{
    struct handle *h = q->impl;
    struct read a = { .s = h->s, .def_max = q->o.max_attempts, .kind = 0, .now = now, .id = id, .max = 1, .out = out };
    int rc = weft_run_blocking(read_blocking, &a);
    return rc == 0 ? -ENOENT : rc < 0 ? rc : 0;
}

static int sq_list(weft_queue *q, const char *queue, int state, weft_job_id after, int64_t now,
                   weft_job_info *out, int max)
{
    struct handle *h = q->impl;
    struct read a = { .s = h->s, .def_max = q->o.max_attempts, .kind = 1, .now = now, .id = after, .queue = queue,
                      .state = state, .max = max, .out = out };
    return weft_run_blocking(read_blocking, &a);
}

static int sq_stats(weft_queue *q, const char *queue, int64_t now, weft_queue_stats *s)
{
    struct handle *h = q->impl;
    struct read a = { .s = h->s, .kind = 2, .now = now, .queue = queue, .stats = s };
    return weft_run_blocking(read_blocking, &a);
}

/* ---- waking idle workers ------------------------------------------------- */

struct watch {
    struct store *s;
    int fd;                              /* inotify on the file's directory, -1: poll */
};

static void *sq_watch_new(weft_queue *q, const char *queue)
{
    (void)queue;                         /* any commit to the file wakes */
    struct handle *h = q->impl;
    struct watch *w = weft__malloc(sizeof *w);
    if (!w)
        return NULL;
    w->s = h->s;
    w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (w->fd >= 0 && (inotify_add_watch(w->fd, h->s->dir, IN_MODIFY | IN_CREATE) < 0 ||
                       weft__fd_own(w->fd) < 0)) {
        close(w->fd);
        w->fd = -1;
    }
    if (w->fd < 0)
        weft_log(WEFT_LOG_WARN, "queue sqlite:%s: no inotify (%s): idle workers poll every"
                 " 100 ms", h->s->path, strerror(errno));
    return w;
}

static void sq_watch_free(void *arg)
{
    struct watch *w = arg;
    if (w->fd >= 0)
        weft__fd_close(w->fd);
    weft__free(w);
}

/* returns once a write to the WAL was seen */
static int sq_watch(void *arg)
{
    struct watch *w = arg;
    if (w->fd < 0)
        return weft_sleep(100 * WEFT_MS);
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    bool seen = false;
    for (;;) {
        ssize_t n = read(w->fd, buf, sizeof buf);
        if (n < 0 && errno == EAGAIN) {
            if (seen)
                return 0;
            int rc = weft__fd_wait_io(w->fd, WEFT_READ, WEFT_FOREVER, 0);
            if (rc)
                return rc;
            continue;
        }
        if (n <= 0)
            return n < 0 ? -errno : -EIO;
        for (char *p = buf; p < buf + n;) {
            struct inotify_event *e = (struct inotify_event *)p;
            if ((e->mask & IN_Q_OVERFLOW) || (e->len && strcmp(e->name, w->s->wal_name) == 0))
                seen = true;
            p += sizeof *e + e->len;
        }
    }
}

const struct weft__qbackend weft__qsqlite = {
    .name = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .enqueue = sq_enqueue,
    .claim = sq_claim,
    .extend = sq_extend,
    .watch_new = sq_watch_new,
    .watch = sq_watch,
    .watch_free = sq_watch_free,
    .get = sq_get,
    .list = sq_list,
    .retry = sq_retry,
    .purge = sq_purge,
    .stats = sq_stats,
};
