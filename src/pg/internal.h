/* The PostgreSQL client's private parts, shared by its files:
 * conn.c (a libpq connection on the loop: connect, send, read, cancel),
 * stmt.c (the prepared statement cache), result.c (results and getters),
 * pg.c (the pool, statements on it, exclusive connections), listen.c
 * (LISTEN/NOTIFY on connections of their own), copy.c (COPY streams). */
#ifndef WEFT_PG_INTERNAL_H
#define WEFT_PG_INTERNAL_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "../core/kernel.h"
#include "weft/pg.h"
#include "own.h"
#include "weft/pool.h"

/* ---- results (result.c) ---- */
struct weft__pg_res {
    PGresult *res;
    weft_pg_error_info err;           /* points into res (or into msg) */
    bool has_err;
    struct bytes_cache *bytes;        /* decoded bytea, one per cell asked */
    struct binding *binds;            /* data mapper: columns of each map used (mapper.c) */
};

/* Takes res into r (nrows, ncols, affected). -ENOMEM (res freed). */
int weft__pg_result_set(weft_pg_result *r, PGresult *res);
/* Fills r's error from res (a server error) and keeps res; -WEFT_EPG. */
int weft__pg_result_error(weft_pg_result *r, PGresult *res);
/* Forgets the mapper's column bindings of p (its PGresult goes or changes). */
void weft__pg_binds_free(struct weft__pg_res *p);
/* How many times a result's columns were matched to a map by name, and how
 * many times a map's INSERT/UPDATE were built: the tests' view of the
 * mapper's caches. */
uint64_t weft__pg_map_binds(void);
uint64_t weft__pg_map_builds(void);
/* r->error = the message of code (and detail, if any); returns code. */
int weft__pg_fail(weft_pg_result *r, int code, const char *detail);

/* ---- statement cache (stmt.c) ---- */
struct stmt {
    char *key;                        /* SQL, then the parameter kinds */
    size_t klen;
    uint32_t hash;
    unsigned id;                      /* prepared as "w<id>" */
    bool ready;                       /* its Parse is queued or done */
    uint64_t used;                    /* LRU tick */
};

struct stmt_cache {
    struct stmt *slots;               /* open addressing, cap a power of 2 */
    unsigned cap, n, max, next_id;
    uint64_t tick;
};

int weft__stmt_init(struct stmt_cache *sc, unsigned max);
void weft__stmt_free(struct stmt_cache *sc);
/* The statement for key, or NULL. */
struct stmt *weft__stmt_find(struct stmt_cache *sc, const char *key, size_t klen);
/* Adds key; when full, *evicted gets the id of the least recently used one
 * (to DEALLOCATE), else 0. NULL on -ENOMEM. */
struct stmt *weft__stmt_add(struct stmt_cache *sc, const char *key, size_t klen, unsigned *evicted);
void weft__stmt_forget(struct stmt_cache *sc, struct stmt *s);

/* ---- a connection (conn.c) ---- */
struct weft_pg_conn {
    weft_pg *db;
    PGconn *pg;
    int fd;
    weft_pooled *h;                   /* its pool handle while lent */
    bool broken;                      /* closed on release */
    bool exclusive;                   /* lent by weft_pg_acquire */
    long long timeout_ms;             /* statement_timeout sent last, -1: unknown */
    struct stmt_cache stmts;
    /* shared (pipelined) use: a ring of the segments in flight, oldest at
     * rhead; the reader task reads them in order */
    struct seg *ring;
    unsigned rhead, rcount;
    bool reading;                     /* its reader task runs */
    bool parked;                      /* a task waits on fd in weft__pg_next */
    bool kicked;                      /* ... and was woken to look again */
    bool dirty;                       /* session state changed (SET, LISTEN ...) */
    /* shared use: the segments queued since the last Sync, the open group
     * (at the ring's tail), its last one, and the statement_timeout in
     * force in the group's transaction (its set_config(..., true)s) */
    unsigned nopen;
    struct call *open_tail;
    long long tx_timeout_ms;
    weft_pg_result copy_err;          /* the last COPY's server error (copy.c) */
    struct weft_pg_conn *snext, **sprev;
};

/* What one call sends, its segment of the pipeline: for each statement
 * [DEALLOCATE] [Parse] Bind/Execute, after one set_config of the
 * statement_timeout when it changed, then one Sync (one implicit
 * transaction). Results are counted as read so that an interrupted read
 * can be drained later. */
#define WEFT__PG_BATCH_MAX 1024

struct call {
    const weft_pg_stmt *stmts;
    int nstmt;
    bool simple;                      /* BEGIN, COMMIT ...: not prepared, no timeout */
    weft_time deadline;               /* the earlier of the scope's and query_timeout */
    int timeout_err;                  /* -ETIMEDOUT or -WEFT_EQUERY_TIMEOUT: which one */
    int steps;                        /* commands before the Sync */
    int read;                         /* results read so far (steps + 1: all) */
    int *mains;                       /* step of each statement's own result */
    unsigned *ids;                    /* the prepared statement each one used */
    unsigned *prepared;               /* what this segment prepares (0: nothing) */
    int *prepare_steps;
    bool local;                       /* its timeout for its own transaction only */
    bool unnamed;                     /* prepared in its own segment, outside the cache */
    bool open;                        /* no Sync of its own: it joins the open group, which
                                         weft__pg_sync ends (shared connections) */
    bool sync;                        /* a Sync ends it: its results end with PIPELINE_SYNC */
    int one_main, one_prep_step;      /* the storage for one statement */
    unsigned one_id, one_prepared;
};

/* k for n statements, its deadline from the task's scope and query_timeout */
void weft__pg_call_init(struct call *k, weft_pg *db, const weft_pg_stmt *s, int n);

long long weft__pg_timeout_ms(weft_time budget);
int weft__pg_connect(weft_pg *db, struct weft_pg_conn **out);
void weft__pg_conn_free(struct weft_pg_conn *c);
/* Queues c's commands for k (nothing is sent yet), ended by a Sync unless
 * k->open (then k joins c's open group; an open group is ended first
 * when k is not open). 0, -ENOMEM,
 * -EINVAL (r says which statement), -ECONNRESET; a failure after something
 * was queued marks c broken. */
int weft__pg_send(struct weft_pg_conn *c, struct call *k, weft_pg_result *r);
/* Ends c's open group with its Sync (sent at once). 0, or -ECONNRESET
 * (c broken). */
int weft__pg_sync(struct weft_pg_conn *c);
/* All of k's results were read (its Sync's too, if it has one). */
static inline bool weft__pg_call_done(const struct call *k)
{
    return k->read >= k->steps + (k->sync ? 1 : 0);
}
/* Sends what is queued. */
int weft__pg_flush(struct weft_pg_conn *c, const struct call *k);
/* The next result (not NULL; PGRES_PIPELINE_SYNC at the end of a call). */
int weft__pg_next(struct weft_pg_conn *c, const struct call *k, PGresult **out);
/* Reads the results of k: statement i's into rs[i]; the first error is
 * the call's code, statements after it get -ECANCELED. An interrupted
 * read returns its code and leaves the rest to weft__pg_recover. */
int weft__pg_read_call(struct weft_pg_conn *c, struct call *k, weft_pg_result *rs);
/* After an interrupted read of k on an exclusive connection: cancel the
 * statement if it runs and drain to the Sync, shielded, within
 * cancel_grace; else c->broken. */
void weft__pg_recover(struct weft_pg_conn *c, struct call *k);
/* A statement of c was interrupted where it cannot be drained (out of
 * pipeline mode): a cancel request goes out (the server stops it too) and
 * c is broken, closed on release. */
void weft__pg_cancel_and_break(struct weft_pg_conn *c);
/* Wakes the task parked in weft__pg_next on c (the reader), to look again:
 * libpq may have read its input while a task queued a segment. */
void weft__pg_kick(struct weft_pg_conn *c);
/* What a statement's words say (weft__pg_scan reads them once). */
struct weft__pg_sql {
    char first[16];               /* the first keyword, lower case */
    unsigned words;
    bool session;                 /* set_config, session advisory locks, temporary tables
                                     (also inside string constants: DO bodies,
                                     query_to_xml), names it cannot read (U&"...") */
    bool shows_tx;                /* shows its transaction (txid_current, now(), 'now',
                                     xact advisory locks) or reaches outside it (setval,
                                     dblink): never shares one */
    bool writes;                  /* INSERT, UPDATE, DELETE or MERGE anywhere */
    bool locks;                   /* FOR UPDATE / SHARE / NO KEY UPDATE / KEY SHARE */
    /* scanning */
    bool after_for, after_into, create_head;
    int depth;                    /* string constants read as SQL, to 2 levels */
    bool code;                    /* a DO body: statements in PL/pgSQL */
    bool stmt_start;              /* in code: the next word starts a statement */
    bool set_head;                /* in code: the word before was a statement's SET */
};
void weft__pg_scan(const char *sql, struct weft__pg_sql *out);
/* What a scanned statement does to the session: 0 nothing the pool must
 * know, 1 session state (SET, LISTEN, DO, set_config, temporary tables
 * ...), 2 transaction control or COPY (never on a shared connection). */
int weft__pg_kind(const struct weft__pg_sql *q);
/* res is the server's "canceling statement due to statement timeout". */
bool weft__pg_statement_timeout(const PGresult *res);
/* The first keyword of sql, past white space and comments, in lower case. */
void weft__pg_first_word(const char *sql, char *w, size_t cap);
/* c is lost (a read or write failed): marks it broken, forgets its fd if
 * libpq closed it; -ECONNRESET. */
int weft__pg_conn_lost(struct weft_pg_conn *c);
/* Outside pipeline mode (COPY, a listener): the next result of the command
 * sent, NULL at its end; waits until deadline (then err). 0, the wait's
 * error, -ECONNRESET (c lost). */
int weft__pg_plain_next(struct weft_pg_conn *c, weft_time deadline, int err, PGresult **out);
/* A cancel request for c's running statement, sent from the blocking pool;
 * NULL when none could be sent (too many at once, no memory). Then
 * weft__pg_cancel_wait: 0 once it was sent (the caller's scope bounds the
 * wait, else its error), and j is gone. */
struct cancel_job;
struct cancel_job *weft__pg_cancel_start(struct weft_pg_conn *c);
int weft__pg_cancel_wait(struct cancel_job *j);
/* A simple statement with no parameters and no result on c (BEGIN,
 * COMMIT ...): as weft_pg_conn_query, not cached. */
int weft__pg_simple(struct weft_pg_conn *c, const char *sql, weft_pg_result *r);

/* ---- SQL text into statements (split.c) ---- */
/* called per statement (without its ';'), with the line it starts on;
 * non-zero stops the split and is returned */
typedef int (*weft__sql_stmt_fn)(void *ctx, const char *stmt, size_t len, int line);
/* the count of statements, or fn's non-zero */
int weft__sql_split(const char *sql, size_t len, weft__sql_stmt_fn fn, void *ctx);
/* The words of sql (len bytes) as the server's lexer reads them (with
 * standard_conforming_strings on, as weft sets it), in order: keywords
 * and identifiers (WEFT__SQL_WORD: unquoted ones lower-cased, "quoted"
 * ones as written, both cut to 63 bytes) and string constants
 * (WEFT__SQL_STRING: the contents of '...', E'...', $tag$...$tag$);
 * comments, numbers, parameters and operators are skipped. A token whose
 * escapes the walk does not decode (U&"...", U&'...', E'...' with a
 * backslash) comes with WEFT__SQL_ESCAPED added; a ';' as WEFT__SQL_END
 * (in a function body: the end of a statement). A word comes with the
 * character after it, past blanks and comments ('(' for a call; 0 at the
 * end). fn's non-zero stops the walk and is returned; 0 at the end. */
enum { WEFT__SQL_WORD = 1, WEFT__SQL_STRING = 2, WEFT__SQL_ESCAPED = 4, WEFT__SQL_END = 8 };
typedef int (*weft__sql_word_fn)(void *ctx, int kind, const char *s, size_t len, char next);
int weft__sql_words(const char *sql, size_t len, weft__sql_word_fn fn, void *ctx);

/* ---- the pool (pg.c) ---- */
struct weft_pg {
    weft_pool *pool;
    weft_pg_opts o;
    char *conninfo;
    char *host;                       /* to resolve, or NULL (a socket, an address) */
    uint64_t loop;
    weft_group *bg;                   /* the shared connections' readers */
    struct weft_pg_conn *shared;      /* connections in shared use */
    unsigned nshared, max_here;       /* this loop's share of max_size */
    weft__wq slot_wq;                 /* tasks waiting for a pipeline slot */
    unsigned refs;                    /* the owner, calls, held connections */
    bool closing;
    char connect_error[256];          /* libpq's words for the last failure */
    weft_pg_stats st;
    weft_metric *m_queries, *m_timeouts, *m_cancels, *m_again;
    weft_metric *m_errors[5];         /* by kind: server, connection, timeout, cancelled, other */
    struct weft_pg_listener *listeners; /* open ones (listen.c) */
};

/* Drops a reference to db (pg.c): the last frees it. */
void weft__pg_unref(weft_pg *db);

/* ---- listeners (listen.c) ---- */
/* weft_pg_close: every listener of db stops (its receivers get -EPIPE). */
void weft__pg_listeners_stop(weft_pg *db);

#endif
