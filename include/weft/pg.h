/*
 * weft pg: PostgreSQL on the loop, through libpq in non-blocking mode.
 *
 * A weft_pg is a pool of connections (weft_pool underneath: min_size 5,
 * max_size 20 for the whole process, split across weft_run loops) with a
 * statement cache per connection. It is loop-local: make one per loop.
 *
 * Two ways to use a connection, both from the one pool:
 *   - weft_pg_query on the pool: one statement, on a shared connection.
 *     With opts.pipeline > 1 (default 8) the statements of many tasks go
 *     out together in pipeline mode and their results come back in order.
 *     The reads tasks queue on one connection while its group
 *     before is on the wire share one Sync: one implicit transaction, at
 *     most opts.pipeline of them. Still a task's error (or its deadline)
 *     never touches another task's statement: results are handed out only
 *     after the group's Sync (0 means committed); when one statement
 *     fails, its task gets its error and every other statement of the
 *     group, rolled back or never run, runs again alone, with its own
 *     Sync (so a deadlock the grouping caused is retried, not reported).
 *     See weft_pg_query for which statements join a group.
 *   - weft_pg_acquire: an exclusive connection for transactions, session
 *     state and statements in sequence; weft_pg_release gives it back.
 *
 * Rules kept on both (../shared/API-data.md "Rules that hold for every
 * client"):
 *   - A task cancelled or timed out after its statement was sent never
 *     leaves its result for someone else: on a shared connection the
 *     result is still read and dropped in order; on an exclusive one a
 *     cancel request is sent (only when a statement is running) and the
 *     results are drained to ReadyForQuery within cancel_grace, or the
 *     connection is closed. Nothing dirty is handed out again.
 *   - A deadline reaches the server: the remaining budget (the task's
 *     scope, or query_timeout, whichever is earlier; rounded up to 1 ms)
 *     is the statement's statement_timeout, so the server stops it too.
 *     The call returns -ETIMEDOUT when the scope ran out, and
 *     -WEFT_EQUERY_TIMEOUT when query_timeout did, also when the
 *     server's "canceling statement due to statement timeout" (57014)
 *     comes first.
 *   - A transaction left open by a task that failed or was cancelled is
 *     rolled back on release (shielded, within cancel_grace) or the
 *     connection is closed. A COMMIT the server answers with ROLLBACK is
 *     -WEFT_EPG with sqlstate 25P02 (or the server's 40001).
 *   - Connections are made in the pool's background with backoff (100 ms
 *     doubling to 5 s); while the server is down acquirers fail at once
 *     with the last connect error (-ECONNREFUSED, -EACCES for a refused
 *     password, -WEFT_ECONNECT_TIMEOUT, -WEFT_EPG for another refusal).
 *   - A connection lost mid-call gives -ECONNRESET (or -WEFT_EEOF); the
 *     pool reconnects.
 *
 * Connecting: host names are resolved by weft's resolver (c-ares) and
 * given to libpq as hostaddr, so no libpq call blocks the loop; the
 * session gets client_encoding UTF8, TimeZone UTC, DateStyle ISO and
 * standard_conforming_strings on (what weft's reading of statements,
 * below, assumes: backslashes are plain in '...');
 * gssencmode is disable unless the conninfo says otherwise; NOTICEs go to
 * weft_log at INFO. TLS is libpq's (sslmode in the conninfo).
 *
 * Values: parameters are weft_pg_val (WEFT_PG_INT etc.), sent as int4
 * (int8 when the value does not fit), float8, bool, bytea, or as text of a
 * type the server infers (TEXT: also the way to pass numeric, uuid, json,
 * dates; WEFT_PG_TEXT(NULL) and WEFT_PG_NULL are SQL NULL). Results come in text form
 * and are read in place: getters point into the result, nothing is
 * copied, and a value that does not fit the getter is an error, never a
 * garbage value.
 */
#ifndef WEFT_PG_H
#define WEFT_PG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_pg weft_pg;
typedef struct weft_pg_conn weft_pg_conn;   /* an exclusive connection, held */

typedef struct weft_pg_opts {
    const char *name;              /* metrics label, default "pg" */
    unsigned min_size, max_size;   /* connections, process-wide: 5, 20 */
    weft_time connect_timeout;     /* default 10 s: -WEFT_ECONNECT_TIMEOUT */
    weft_time query_timeout;       /* default 30 s: -WEFT_EQUERY_TIMEOUT */
    weft_time acquire_timeout;     /* default 30 s: -WEFT_EPOOL_TIMEOUT */
    weft_time idle_timeout;        /* default 5 min */
    weft_time max_lifetime;        /* default 1 h */
    weft_time cancel_grace;        /* cancel + drain, or rollback: 2 s, else closed */
    unsigned pipeline;             /* tasks' statements in flight per shared
                                      connection, default 8 (so also the most
                                      that share one Sync); 1: none (each
                                      weft_pg_query holds a connection) */
    unsigned stmt_cache;           /* prepared statements per connection, 256 */
    size_t max_result;             /* bytes of one result, 64 MiB: -EMSGSIZE */
} weft_pg_opts;

/* A pool for conninfo (a postgresql:// URL or "key=value ..."), made on
 * the calling loop; connections come in the background (min_size of them
 * at once). NULL with errno EINVAL (conninfo libpq cannot parse: logged
 * with libpq's reason), EPERM (outside a task), ENOMEM. The calling task
 * owns the pool's background work: close it before that task returns. */
weft_pg *weft_pg_new(const char *conninfo, const weft_pg_opts *o);

/* Stops lending (waiters get -WEFT_ECLOSED), waits up to grace for lent
 * connections and statements in flight, closes everything and frees db.
 * 0, or -ETIMEDOUT when some were still out after grace (closed on their
 * release). */
int weft_pg_close(weft_pg *db, weft_time grace);

/* ---- values --------------------------------------------------------------- */

typedef struct weft_pg_val {
    int kind_;
    int64_t i_;
    double d_;
    const void *p_;
    size_t len_;
} weft_pg_val;

enum { WEFT__PG_NULL, WEFT__PG_INT, WEFT__PG_FLOAT, WEFT__PG_BOOL, WEFT__PG_TEXT, WEFT__PG_BYTES };

/* compound literals in C, aggregates in C++ (which has no compound literal) */
#ifdef __cplusplus
#define WEFT__PG_VAL(...) (weft_pg_val{ __VA_ARGS__ })
#else
#define WEFT__PG_VAL(...) ((weft_pg_val){ __VA_ARGS__ })
#endif
#define WEFT_PG_NULL WEFT__PG_VAL(WEFT__PG_NULL, 0, 0, 0, 0)
#define WEFT_PG_INT(v) WEFT__PG_VAL(WEFT__PG_INT, (int64_t)(v), 0, 0, 0)
#define WEFT_PG_FLOAT(v) WEFT__PG_VAL(WEFT__PG_FLOAT, 0, (double)(v), 0, 0)
#define WEFT_PG_BOOL(v) WEFT__PG_VAL(WEFT__PG_BOOL, (v) ? 1 : 0, 0, 0, 0)
#define WEFT_PG_TEXT(s) WEFT__PG_VAL(WEFT__PG_TEXT, 0, 0, (s), (size_t)-1)
#define WEFT_PG_BYTES(p, n) WEFT__PG_VAL(WEFT__PG_BYTES, 0, 0, (p), (n))

/* ---- results -------------------------------------------------------------- */

/* Caller-owned; zeroed on entry to every call that fills it, so it is
 * valid to free after any return. affected: rows of INSERT, UPDATE,
 * DELETE, MERGE, COPY, SELECT ... (the command tag's count), else -1.
 * error: what failed, in words, when a call returned an error. */
typedef struct weft_pg_result {
    int nrows, ncols;
    int64_t affected;
    char error[256];
    struct weft__pg_res *priv_;
} weft_pg_result;

void weft_pg_result_free(weft_pg_result *r);

typedef struct weft_pg_error_info {
    const char *sqlstate, *severity, *message, *detail, *hint, *constraint, *table, *column;
} weft_pg_error_info;

/* The server's error, field by field (absent fields are NULL): for
 * -WEFT_EPG, and for -ECONNRESET when the server said why it closed (a
 * restart's 57P01); NULL otherwise. Valid until r is freed. */
const weft_pg_error_info *weft_pg_error(const weft_pg_result *r);

/* Getters: 0, -ENODATA (SQL NULL; *v untouched), -WEFT_ETYPE (the column's
 * type is not one the getter reads), -ERANGE (the value does not fit),
 * -EINVAL (no such row or column). */
int weft_pg_col(const weft_pg_result *r, const char *name);    /* index, or -ENOENT */
const char *weft_pg_col_name(const weft_pg_result *r, int col); /* NULL if none */
unsigned weft_pg_col_type(const weft_pg_result *r, int col);    /* the type's OID, 0 if none */
bool weft_pg_is_null(const weft_pg_result *r, int row, int col);
int weft_pg_get_bool(const weft_pg_result *r, int row, int col, bool *v);
int weft_pg_get_int(const weft_pg_result *r, int row, int col, int64_t *v);      /* int2/4/8, oid */
int weft_pg_get_double(const weft_pg_result *r, int row, int col, double *v);    /* float4/8,
                                                              int2/4/8, numeric (may round) */
/* The text form of any column (numeric, uuid, json ... as the server
 * writes them), in place: valid until r is freed, NUL-terminated. */
int weft_pg_get_text(const weft_pg_result *r, int row, int col, const char **s, size_t *len);
int weft_pg_get_time(const weft_pg_result *r, int row, int col, int64_t *unix_us); /* timestamptz,
                                                              timestamp (as UTC), date */
int weft_pg_get_bytes(const weft_pg_result *r, int row, int col, const void **p,
                      size_t *len);                             /* bytea, decoded once, in r */
int weft_pg_get_uuid(const weft_pg_result *r, int row, int col, uint8_t out[16]);

/* ---- statements on the pool ----------------------------------------------- */

/* Runs one statement (sql with $1..$n) with params, on a shared
 * connection (opts.pipeline > 1) or one taken for the call. The statement
 * must leave nothing behind on the connection: transaction control (BEGIN,
 * COMMIT, SAVEPOINT ...), COPY and statements that change the session
 * (SET, RESET, DISCARD, LISTEN, PREPARE, LOCK, DO, cursors, temporary
 * tables, set_config, session advisory locks) are -EINVAL here: use
 * weft_pg_acquire for them. weft reads the statement's words as the
 * server's lexer does (any case and spacing; not in comments) and reads
 * its string constants as SQL too (a query_to_xml argument), taking what
 * they say at its word even if it is data: 'set_config' in a literal is
 * refused (pass such data as a parameter: parameters are never read).
 * Functions it calls are not looked into. 0 with r
 * filled; -WEFT_EPG (r->error and weft_pg_error say what; a multi-
 * statement string is the server's 42601), -ETIMEDOUT,
 * -WEFT_EQUERY_TIMEOUT, -WEFT_EPOOL_TIMEOUT, -ECANCELED, -ECONNRESET or
 * -WEFT_EEOF (connection lost), connect errors (above), -EMSGSIZE (result
 * over max_result, checked once libpq has it whole), -EINVAL (NULL sql,
 * n < 0, n > 65535, the statements above), -EXDEV (another loop's pool),
 * -EPERM, -ENOMEM.
 *
 * Groups (opts.pipeline > 1): reads (first word SELECT, WITH without
 * INSERT/UPDATE/DELETE/MERGE, VALUES or TABLE; no FOR UPDATE/SHARE) may
 * share one implicit transaction with other tasks'. The rest run alone,
 * with a Sync of their own: writes (grouped, the row locks of one group
 * would wait on another's and deadlock), DDL and the like, setval and
 * dblink (effects a rollback does not undo), and reads that show the
 * transaction itself: txid_current, pg_current_xact_id,
 * pg_current_snapshot, now(), current_time*, current_date,
 * transaction_timestamp, localtime*, age(x), 'now'/'today' literals,
 * xact_start, pg_*_xact_lock (each task sees a transaction of its own),
 * and any with a U&"..." name or a literal whose escapes it does not
 * decode. A function that does these things inside is not seen. What
 * grouping means for a read:
 *   - it may run twice on the server: once in a group another statement
 *     made fail (rolled back, so nothing of it stands), then alone. An
 *     effect a rollback does not undo happens twice: nextval in a called
 *     function takes a second value (a gap, as after any rollback); for a
 *     function with effects outside the transaction use weft_pg_acquire
 *     (or opts.pipeline 1).
 *   - its result comes when the whole group is done: a slow neighbour in
 *     the group delays it (a deadlock or serialization failure of the
 *     group itself is retried alone).
 *   - its own budget still applies to it alone: each statement of a
 *     group is sent with its own statement_timeout (set_config(...,
 *     true) when the value in force differs), and the server times each
 *     one from its start. */
int weft_pg_query(weft_pg *db, weft_pg_result *r, const char *sql, int n, const weft_pg_val *params);

typedef struct weft_pg_stmt {
    const char *sql;
    int n;
    const weft_pg_val *params;
} weft_pg_stmt;

/* n statements in one round trip and one implicit transaction: all or
 * nothing. rs[i] gets statement i's result. 0, or the first failing
 * statement's code with its error in its result; later statements are not
 * run and their results say -ECANCELED in error. A statement that
 * weft_pg_query refuses (transaction control, COPY, session changes) is
 * -EINVAL here too, before anything is sent. */
int weft_pg_batch(weft_pg *db, const weft_pg_stmt *s, int n, weft_pg_result *rs);

/* ---- exclusive connections ------------------------------------------------- */

/* 0 and *out, or the pool's errors (-WEFT_EPOOL_TIMEOUT, -ETIMEDOUT,
 * -ECANCELED, -WEFT_ECLOSED, connect errors, -EXDEV, -EPERM). */
int weft_pg_acquire(weft_pg *db, weft_pg_conn **out);

/* Gives c back. A transaction still open is rolled back first, and a
 * session changed by SET, LISTEN, PREPARE, a temporary table ... is reset
 * with DISCARD ALL (shielded, within cancel_grace; else the connection is
 * closed): the next holder gets the connection as it was made. Never
 * fails; c is gone after it. */
void weft_pg_release(weft_pg *db, weft_pg_conn *c);

/* weft_pg_query on c: the same codes; a cancel or deadline while the
 * statement runs sends a cancel request and drains (or closes c: later
 * calls give -WEFT_EBROKEN, release it). COPY is -EINVAL here: it streams
 * through weft_pg_copy_in and weft_pg_copy_out. */
int weft_pg_conn_query(weft_pg_conn *c, weft_pg_result *r, const char *sql, int n,
                       const weft_pg_val *params);

/* BEGIN [mode] ("ISOLATION LEVEL SERIALIZABLE", "READ ONLY", ... or
 * NULL). -EINVAL inside a transaction already, or a mode with ';'. */
int weft_pg_begin(weft_pg_conn *c, const char *mode);
/* COMMIT: 0; -WEFT_EPG when the server refused (a serialization failure,
 * 40001) or answered ROLLBACK because the transaction had failed (25P02,
 * set by weft). r (may be NULL) gets the error. */
int weft_pg_commit(weft_pg_conn *c, weft_pg_result *r);
int weft_pg_rollback(weft_pg_conn *c);
/* name: an SQL identifier ([A-Za-z_][A-Za-z0-9_]*), else -EINVAL. */
int weft_pg_savepoint(weft_pg_conn *c, const char *name);
int weft_pg_rollback_to(weft_pg_conn *c, const char *name);
int weft_pg_release_savepoint(weft_pg_conn *c, const char *name);
/* In a transaction (or a failed one) now. */
bool weft_pg_in_transaction(const weft_pg_conn *c);

/* ---- migrations ------------------------------------------------------------ */

/* The files NNNN_name.sql of dir (other files are ignored), applied in
 * numeric order, each once: each file with the simple-query protocol (any
 * number of statements) in its own transaction, together with its row in
 * schema_migrations(version bigint primary key, name text, checksum text
 * (SHA-256, hex), applied_at timestamptz), so a failing file leaves
 * nothing behind. A file whose first line is "-- weft:no-transaction"
 * (for CREATE INDEX CONCURRENTLY) runs statement by statement outside a
 * transaction (split at top-level semicolons; quotes, dollar quotes and
 * comments are understood, BEGIN ATOMIC bodies are not) and is recorded
 * after its last one: when one fails, those before it stay done. The run
 * holds a session advisory lock (key 2004116852) on one exclusive
 * connection: two instances starting together apply each file once. No
 * statement_timeout applies (a migration may take long); the task's scope
 * does (a cancel request stops the statement, the connection is closed).
 *
 * Returns how many files it applied (0: all were), or: -WEFT_EPG (r->error
 * is "FILE line N: the server's message", weft_pg_error has the rest),
 * -EINVAL (an applied file was changed since: r->error names it, nothing
 * after it is applied; two files with one number; a NUL byte in a file),
 * -ENOENT / -EACCES (the folder or a file), the pool's errors. */
int weft_pg_migrate(weft_pg *db, const char *dir, weft_pg_result *r);

typedef struct weft_pg_migration {
    int64_t version;
    char name[128];                /* "name" of NNNN_name.sql */
    char file[256];                /* the file's name, "" when it is gone */
    char checksum[65];             /* the file's SHA-256, hex */
    bool applied;
    bool changed;                  /* applied with another checksum */
    bool file_missing;             /* applied, and no file has its number now */
    int64_t applied_at_us;         /* Unix µs, when applied */
} weft_pg_migration;

/* The same, calling applied(m, ctx) after each file it applied. */
int weft_pg_migrate_cb(weft_pg *db, const char *dir, weft_pg_result *r,
                       void (*applied)(const weft_pg_migration *m, void *ctx), void *ctx);

/* The status: every file of dir and every applied version, by version, in
 * *out (free with weft_pg_migrations_free); returns how many, or < 0. */
int weft_pg_migrations(weft_pg *db, const char *dir, weft_pg_migration **out,
                       weft_pg_result *r);
void weft_pg_migrations_free(weft_pg_migration *list);

/* ---- LISTEN/NOTIFY and COPY ------------------------------------------------ */

typedef struct weft_pg_listener weft_pg_listener;

/* A notification: its channel and payload (NUL-terminated, one block the
 * receiver owns: free with weft_pg_notify_free) and the server process
 * (pg_backend_pid()) of the session that sent it. */
typedef struct weft_pg_notify {
    char *channel, *payload;
    int pid;
} weft_pg_notify;

/* LISTENs on n channels on a connection of the listener's own, made with
 * the pool's conninfo and settings but outside the pool: it does not count
 * toward max_size. A channel name is taken as it is, quoted (case, spaces
 * and quotes kept), as pg_notify(channel, payload) names it (NOTIFY in SQL
 * folds an unquoted name to lower case): 1 to 63 bytes, else -EINVAL.
 * Returns once the LISTENs are in effect: every notification committed
 * after it arrives. A task of the pool's background then reads them as
 * they come; when the connection is lost it connects again (backoff
 * 100 ms doubling to 5 s) and LISTENs again. Notifications sent while it
 * was away are lost (the server keeps none for a session that is gone):
 * weft_pg_listener_recv says -ECONNRESET once, after the LISTENs are back
 * in effect, so the receiver can read again what it may have missed. A
 * quiet connection is checked with an empty query every 30 s and
 * connected again when no answer comes by the next.
 * 0 and *out; connect errors (as weft_pg_acquire's), -WEFT_EPG (the server
 * refused a LISTEN: logged with its message), -ETIMEDOUT, -ECANCELED,
 * -EINVAL, -WEFT_ECLOSED, -EXDEV, -EPERM, -ENOMEM. */
int weft_pg_listen(weft_pg *db, const char *const *channels, int n, weft_pg_listener **out);

/* Waits for the next notification (the task's scope bounds the wait;
 * without one it waits until one comes): 0 and *m (zeroed on every other
 * return; free with weft_pg_notify_free). -ENOBUFS once when some were
 * dropped: a receiver that falls behind has at most 10,000 notifications
 * (and 64 MiB of them) kept, the newest beyond that are dropped and
 * counted (weft_pg_listener_dropped, weft_pg_listen_dropped_total); the
 * kept ones still come after. -ECONNRESET once after a reconnect (above),
 * in order: what arrived before the loss comes before it. -EPIPE once the
 * listener (or the pool) was closed and nothing is left; -ETIMEDOUT,
 * -ECANCELED, -EINVAL, -EXDEV, -EPERM. */
int weft_pg_listener_recv(weft_pg_listener *l, weft_pg_notify *m);
void weft_pg_notify_free(weft_pg_notify *m);

/* Notifications dropped so far because the receiver fell behind. */
uint64_t weft_pg_listener_dropped(const weft_pg_listener *l);

/* Stops listening (closes its connection) and frees l; a task waiting in
 * weft_pg_listener_recv gets -EPIPE. Valid also after weft_pg_close (which
 * stops every listener of the pool but frees none). l must not be used
 * after. */
void weft_pg_listener_close(weft_pg_listener *l);

/* COPY ... FROM STDIN on c (held with weft_pg_acquire), streamed: read
 * fills buf with up to len bytes of COPY data (any split of the rows) and
 * returns how many (> 0), 0 at the end, or a negative code to abort: the
 * COPY is then failed on the server (rolled back: no row stays) and that
 * code returned. At most 64 KiB of data is in memory at a time: the next
 * read comes once the last one is on its way. *rows (may be NULL): the
 * rows the server copied. The deadline (the task's scope or
 * query_timeout, whichever is earlier) bounds the whole COPY and reaches
 * the server as its statement_timeout, as for statements. A COPY cut
 * short (abort, deadline, cancel) is failed on the server and read to its
 * end within cancel_grace (a cancel request if that is slow), else c is
 * closed (later calls: -WEFT_EBROKEN): c is never left mid-COPY. A row the
 * server refuses fails the COPY at the end of the data (libpq reports it
 * only then). 0; -WEFT_EPG (weft_pg_copy_error says what), -ETIMEDOUT,
 * -WEFT_EQUERY_TIMEOUT, -ECANCELED, -ECONNRESET, -WEFT_EBROKEN, -EINVAL
 * (sql is not a COPY FROM STDIN, NULL arguments, read said more than
 * len), -EXDEV, -EPERM, -ENOMEM, or read's own code. Inside a transaction
 * a failed COPY fails the transaction, as any statement does. */
int weft_pg_copy_in(weft_pg_conn *c, const char *sql,
                    int (*read)(void *ctx, void *buf, size_t len), void *ctx, int64_t *rows);

/* COPY ... TO STDOUT on c, streamed: write gets the data as it comes, in
 * pieces of whole rows (up to 64 KiB, or one longer row) and returns 0,
 * or a negative code to abort: a cancel request stops the COPY on the
 * server and the rest is read and dropped within cancel_grace (else c is
 * closed), and that code is returned. *rows (may be NULL): the rows the
 * server copied. Deadlines, errors and the rest as weft_pg_copy_in
 * (-EINVAL: sql is not a COPY TO STDOUT). */
int weft_pg_copy_out(weft_pg_conn *c, const char *sql,
                     int (*write)(void *ctx, const void *buf, size_t len), void *ctx,
                     int64_t *rows);

/* The server's error of the last weft_pg_copy_in/out on c that returned
 * -WEFT_EPG (field by field, as weft_pg_error), else NULL. Valid until the
 * next COPY on c or its release. */
const weft_pg_error_info *weft_pg_copy_error(const weft_pg_conn *c);

/* ---- introspection --------------------------------------------------------- */

/* Metrics (weft/metrics.h), labelled pool="<opts.name>": the pool's own
 * (weft_pool_*: size, idle, in use, waiting, acquires, timeouts ...),
 * weft_pg_queries_total, weft_pg_errors_total{kind="server|connection|
 * timeout|cancelled|other"}, weft_pg_timeouts_total, weft_pg_cancels_total
 * (cancel requests sent: only while a statement of the task still runs,
 * and at most 4 at a time in the process, PQcancel blocking a thread). */

typedef struct weft_pg_stats {
    unsigned size, idle, in_use, creating, waiting;  /* the pool's */
    unsigned shared;               /* connections carrying pipelined statements */
    uint64_t queries, errors, timeouts, cancels;     /* cancels: cancel requests sent */
} weft_pg_stats;

void weft_pg_stats_get(const weft_pg *db, weft_pg_stats *s);

/* ---- data mapper ------------------------------------------------------------ */

/* A struct described once, field by field, is read from results and written
 * by INSERT and UPDATE with no hand-written decoding. There is no query
 * DSL: SELECTs are SQL you write, and their columns are matched to the
 * fields by name (exactly, as the server spells them: lower case unless the
 * column was created quoted). Columns the map does not name are ignored.
 *
 *   typedef struct user { int64_t id; char name[64]; const char *email;
 *                         int64_t created_at; } user;
 *   static const weft_pg_field user_fields[] = {
 *       WEFT_PG_FIELD(user, id, "id", WEFT_PG_T_INT | WEFT_PG_GENERATED),
 *       WEFT_PG_FIELD(user, name, "name", WEFT_PG_T_TEXT),
 *       WEFT_PG_FIELD(user, email, "email", WEFT_PG_T_STR),
 *       WEFT_PG_FIELD(user, created_at, "created_at", WEFT_PG_T_TIME | WEFT_PG_GENERATED),
 *   };
 *   static const weft_pg_map user_map = WEFT_PG_MAP("users", "id", user_fields);
 *
 * Field types and the member each one fills (a column fits a field when
 * its type is one listed; anything else is -WEFT_ETYPE naming the column):
 *   WEFT_PG_T_BOOL     bool                      bool
 *   WEFT_PG_T_INT      int16_t, int32_t, int64_t int2, int4, int8, oid; by
 *                      the member's size; a value that does not fit it is
 *                      -ERANGE (an int8 of 70000 into an int16_t)
 *   WEFT_PG_T_FLOAT    float, double             float4, float8, numeric,
 *                      int2/4/8 (as weft_pg_get_double); past float's range
 *                      -ERANGE
 *   WEFT_PG_T_TEXT     char[N], copied, NUL-terminated: text, varchar, char,
 *                      name, unknown and user-defined types (enums). A value
 *                      of N bytes or more is -ERANGE, never truncated.
 *   WEFT_PG_T_JSON     char[N]: json, jsonb, as the server writes them
 *   WEFT_PG_T_NUMERIC  char[N]: numeric, exact, as text
 *   WEFT_PG_T_STR      const char *: TEXT's columns, pointing into the
 *                      result (no copy; valid until weft_pg_result_free:
 *                      a struct read so must not be written back, by
 *                      weft_pg_update, after its result was freed).
 *                      WEFT_PG_T_STR is WEFT_PG_T_TEXT | WEFT_PG_PTR, and
 *                      WEFT_PG_PTR makes JSON and NUMERIC pointers likewise.
 *   WEFT_PG_T_BYTES    weft_pg_bytes (below), pointing into the result: bytea
 *   WEFT_PG_T_TIME     int64_t Unix µs: timestamptz, timestamp (as UTC), date;
 *                      written as UTC text, so a date column gets its day
 *   WEFT_PG_T_UUID     uint8_t[16]: uuid
 * A member whose size the type does not take (an INT of 3 bytes, a UUID
 * that is not 16) makes the map invalid: -EINVAL. A char * given as TEXT
 * cannot be told from a char[8]: use STR for pointers.
 *
 * NULL: a field made with WEFT_PG_FIELD_NULL has a bool member beside it,
 * true for SQL NULL: reading NULL sets it and zeroes the member, reading a
 * value clears it; writing sends NULL while it is true. Pointer fields
 * (STR, JSON|PTR, NUMERIC|PTR, BYTES) need no flag: NULL is a NULL pointer
 * both ways. NULL into any other field is -ENODATA naming the column.
 *
 * Keys and generated columns: WEFT_PG_GENERATED marks a field the database
 * fills (a serial or identity key, DEFAULT now(), a trigger's column): it
 * is left out of INSERT and out of UPDATE's SET, and comes back through
 * RETURNING * (weft_pg_row_to on the result gives the new key). A key that
 * is not generated is inserted like any field.
 *
 * Errors name what failed in r->error: the column (and the row, for a
 * value) after the code's words, e.g. "Numerical result out of range:
 * column "name" row 3: 40 bytes do not fit char[32]".
 * weft_pg_row_to takes r const for its values; r->error is the one thing
 * it writes. */

enum {
    WEFT_PG_T_BOOL = 1, WEFT_PG_T_INT, WEFT_PG_T_FLOAT, WEFT_PG_T_TEXT, WEFT_PG_T_JSON,
    WEFT_PG_T_NUMERIC, WEFT_PG_T_BYTES, WEFT_PG_T_TIME, WEFT_PG_T_UUID,
    WEFT_PG_PTR = 0x100,           /* TEXT, JSON, NUMERIC: a const char * into the result */
    WEFT_PG_GENERATED = 0x200,     /* filled by the database: not inserted, not updated */
    WEFT_PG_NULLABLE = 0x400,      /* set by WEFT_PG_FIELD_NULL: null_offset is a bool */
    WEFT_PG_T_STR = WEFT_PG_T_TEXT | WEFT_PG_PTR,
};

/* A bytea value in place: data points into the result (decoded once, owned
 * by it), NULL for SQL NULL; written as bytea, SQL NULL when data is NULL. */
typedef struct weft_pg_bytes {
    const void *data;
    size_t len;
} weft_pg_bytes;

typedef struct weft_pg_field {
    const char *column;
    int type;                      /* WEFT_PG_T_* | flags */
    size_t offset, size;           /* of the member */
    size_t null_offset;            /* of its bool NULL flag, with WEFT_PG_NULLABLE */
} weft_pg_field;

#define WEFT_PG_FIELD(T, m, col, ty) \
    { .column = (col), .type = (ty), .offset = offsetof(T, m), .size = sizeof(((T *)0)->m) }
/* isnull: a bool member of T, true when the column is NULL */
#define WEFT_PG_FIELD_NULL(T, m, col, ty, isnull)                                      \
    { .column = (col), .type = (ty) | WEFT_PG_NULLABLE, .offset = offsetof(T, m),      \
      .size = sizeof(((T *)0)->m), .null_offset = offsetof(T, isnull) }

/* table: an identifier or schema.identifier; key: a field's column (NULL
 * for a map never updated). Identifiers are [A-Za-z_][A-Za-z0-9_$]*, at
 * most 63 bytes, and quoted in the SQL built. A map and its fields must not
 * change after their first use: the SQL built from them is kept. */
typedef struct weft_pg_map {
    const char *table, *key;
    const weft_pg_field *fields;
    int n;
} weft_pg_map;

/* fields: an array (not a pointer) of weft_pg_field */
#define WEFT_PG_MAP(table, key, fields) \
    { (table), (key), (fields), (int)(sizeof(fields) / sizeof((fields)[0])) }

/* Decodes row of r into out. The result's columns are matched to m's fields
 * once per result and map (the binding is kept in r, so decoding the rows
 * of a large result matches names once). 0; -ENOENT (a field's column is
 * not in the result), -WEFT_ETYPE (a column's type does not fit its
 * field), -ERANGE (a value does not fit: a char array too short, an
 * integer too large for its member, a time out of range), -ENODATA (NULL
 * into a field without a NULL flag), -EINVAL (no such row, r holds no
 * rows, m invalid), -ENOMEM; r->error names the column. After a value
 * error the fields before the failing one have been written. */
int weft_pg_row_to(const weft_pg_result *r, int row, const weft_pg_map *m, void *out);

/* Rows 0 .. min(nrows, max) - 1 of r into out, stride bytes apart (an
 * array of structs: sizeof its element). The count decoded, or the first
 * error as weft_pg_row_to (r->error names the row and column; the rows
 * before it are decoded). -EINVAL for stride 0 or max < 0. */
int weft_pg_rows_to(const weft_pg_result *r, const weft_pg_map *m, void *out, size_t stride, int max);

/* INSERT INTO table (the fields not GENERATED) VALUES (...) RETURNING *
 * (DEFAULT VALUES when every field is generated), through weft_pg_query:
 * the SQL is built once per map (kept for the process, shared by every
 * loop) and prepared once per connection by the statement cache. r holds
 * the inserted row: weft_pg_row_to(r, 0, m, obj) reads back the generated
 * key. weft_pg_query's codes, and -EINVAL (m invalid: a bad identifier,
 * a bad field) or -ERANGE (a char array with no NUL) naming it in r->error
 * before anything is sent. */
int weft_pg_insert(weft_pg *db, const weft_pg_map *m, const void *obj, weft_pg_result *r);

/* UPDATE table SET (every field neither GENERATED nor the key) WHERE key =
 * the key field's value RETURNING *: r->affected is 1, or 0 when no row has
 * that key (not an error). As weft_pg_insert, and -EINVAL when m has no
 * key, its key is no field's column, or nothing is left to set. */
int weft_pg_update(weft_pg *db, const weft_pg_map *m, const void *obj, weft_pg_result *r);

/* The same on an exclusive connection (inside a transaction), through
 * weft_pg_conn_query. */
int weft_pg_conn_insert(weft_pg_conn *c, const weft_pg_map *m, const void *obj, weft_pg_result *r);
int weft_pg_conn_update(weft_pg_conn *c, const weft_pg_map *m, const void *obj, weft_pg_result *r);

#ifdef __cplusplus
}
#endif

#endif
