/*
 * COPY FROM STDIN and COPY TO STDOUT on an exclusive connection, streamed
 * through the caller's callbacks with COPY_BUF of data in memory each way.
 *
 * libpq 15 runs no COPY in pipeline mode, so a COPY leaves it: the task's
 * budget goes out first as the session's statement_timeout (a segment of
 * its own, in pipeline mode, only when it differs from the session's),
 * then pipeline mode is left, the COPY sent with the extended protocol (one
 * statement; libpq adds the Sync after the data), its data streamed, its
 * results read to the end, and pipeline mode entered again.
 *
 * A COPY cut short (a callback's abort, the deadline, a cancel, the wrong
 * direction) is ended on the server, shielded, within cancel_grace: COPY
 * FROM by a CopyFail (PQputCopyEnd with a message; the server rolls the
 * COPY back), with a cancel request if the server is slow to answer it;
 * COPY TO by a cancel request while what still comes is read and dropped.
 * Past the grace the connection is marked broken and its release closes
 * it: it is never lent out mid-COPY. The state below says what is left.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define COPY_BUF (64 * 1024)
/* data moved between two yields: a COPY whose socket is always ready and
 * whose callback never waits would otherwise hold the loop to its end */
#define COPY_TURN (1 << 20)

enum state {
    PIPELINE,                                 /* not sent; still in pipeline mode */
    SENT,                                     /* sent, its first result not read */
    IN,                                       /* the server takes data */
    OUT,                                      /* the server sends data */
    ENDING,                                   /* data over, results to read */
    DONE,                                     /* read to the end */
};

struct copy {
    struct weft_pg_conn *c;
    struct call k;                            /* the budget: deadline and its error */
    weft_time deadline;                       /* of the waits: k's, or the shield's */
    int err;
    enum state state;
    size_t moved;                             /* since the last yield */
};

static int wait_fd(struct copy *x, int events)
{
    weft_time left = x->deadline - weft_now();
    return weft_fd_wait_for(x->c->fd, events, left > 0 ? left : 0, x->err);
}

/* bounded work per loop turn, and the deadline checked while nothing waits */
static int turn(struct copy *x, size_t n)
{
    int rc = weft__interrupted(x->deadline, x->err);
    if (rc || (x->moved += n) < COPY_TURN)
        return rc;
    x->moved = 0;
    return weft_yield();
}

/* all of libpq's output on its way (what the server says meanwhile is
 * read, so neither side waits on the other) */
static int flush(struct copy *x)
{
    int f;
    while ((f = PQflush(x->c->pg)) == 1) {
        int rc = wait_fd(x, WEFT_WRITE | WEFT_READ);
        if (rc < 0)
            return rc;
        if ((rc & WEFT_READ) && !PQconsumeInput(x->c->pg))
            return weft__pg_conn_lost(x->c);
    }
    return f < 0 ? weft__pg_conn_lost(x->c) : 0;
}

/* the end of the data: CopyDone, or CopyFail with msg */
static int put_end(struct copy *x, const char *msg)
{
    int rc;
    while ((rc = PQputCopyEnd(x->c->pg, msg)) == 0)
        if ((rc = wait_fd(x, WEFT_WRITE)) < 0)
            return rc;
    if (rc < 0)
        return weft__pg_conn_lost(x->c);
    x->state = ENDING;
    return flush(x);
}

/* a result of the COPY statement: its row count, or its error */
static int take(struct copy *x, PGresult *res, int64_t *rows)
{
    struct weft_pg_conn *c = x->c;
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_COMMAND_OK) {
        if (rows)
            *rows = strtoll(PQcmdTuples(res), NULL, 10);
        PQclear(res);
        return 0;
    }
    if (st != PGRES_FATAL_ERROR) {
        PQclear(res);
        return -EPROTO;
    }
    if (PQstatus(c->pg) == CONNECTION_BAD) {
        PQclear(res);
        return weft__pg_conn_lost(c);         /* a restart's FATAL, or the socket */
    }
    bool timeout = weft__pg_statement_timeout(res);
    int rc = weft__pg_result_error(&c->copy_err, res);
    return timeout ? x->k.timeout_err : rc;   /* the budget we sent ran out */
}

/* the results after the data, to the end; the first error is the code */
static int end(struct copy *x, int64_t *rows)
{
    int code = 0;
    x->state = ENDING;
    for (;;) {
        PGresult *res;
        int rc = weft__pg_plain_next(x->c, x->deadline, x->err, &res);
        if (rc)
            return rc;
        if (!res)
            break;
        rc = take(x, res, rows);
        if (!code)
            code = rc;
        if (x->c->broken)
            return code;
    }
    x->state = DONE;
    return code;
}

/* ---- starting and ending -------------------------------------------------------------- */

/* the task's budget as the session's statement_timeout, as a statement's
 * segment would send it, when it is not that already */
static int send_budget(struct copy *x)
{
    struct weft_pg_conn *c = x->c;
    if (weft__pg_timeout_ms(x->k.deadline - weft_now()) == c->timeout_ms)
        return 0;
    weft_pg_result r = { 0 };
    int rc = weft__pg_send(c, &x->k, &r);
    if (!rc)
        rc = weft__pg_flush(c, &x->k);
    if (!rc)
        rc = weft__pg_read_call(c, &x->k, &r);
    if (rc && !c->broken && x->k.read <= x->k.steps)
        weft__pg_recover(c, &x->k);
    if (rc == -WEFT_EPG) {
        c->copy_err = r;                      /* the server's reason, for weft_pg_copy_error */
        return rc;
    }
    weft_pg_result_free(&r);
    return rc;
}

/* checks, the budget, out of pipeline mode, the COPY sent and its first
 * result read: 0 with the data to move (state IN or OUT, as want says),
 * 1 when the statement ended at once (an error: its code instead), or an
 * error to recover from (done() does) */
static int start(struct copy *x, struct weft_pg_conn *c, const char *sql, ExecStatusType want,
                 int64_t *rows)
{
    *x = (struct copy){ .c = c, .state = PIPELINE };
    if (rows)
        *rows = 0;
    if (!c || !sql)
        return -EINVAL;
    int rc = weft__enter(c->db->loop, &(weft_task *){ NULL });
    if (rc)
        return rc;
    weft_pg_result_free(&c->copy_err);
    memset(&c->copy_err, 0, sizeof c->copy_err);
    if (c->broken)
        return -WEFT_EBROKEN;
    char w[8];
    weft__pg_first_word(sql, w, sizeof w);
    if (strcmp(w, "copy") != 0)
        return -EINVAL;
    weft__pg_call_init(&x->k, c->db, NULL, 0);
    x->deadline = x->k.deadline;
    x->err = x->k.timeout_err;
    if ((rc = send_budget(x)))
        return rc;
    if (!PQexitPipelineMode(c->pg)) {
        c->broken = true;                     /* results left: never, after a whole segment */
        return -WEFT_EBROKEN;
    }
    x->state = SENT;
    if (!PQsendQueryParams(c->pg, sql, 0, NULL, NULL, NULL, NULL, 0))
        return weft__pg_conn_lost(c);
    PGresult *res;
    if ((rc = weft__pg_plain_next(c, x->deadline, x->err, &res)))
        return rc;
    if (!res)
        return -EPROTO;
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT) {
        PQclear(res);
        x->state = st == PGRES_COPY_IN ? IN : OUT;
        return st == want ? 0 : -EINVAL;      /* the other way: ended by done() */
    }
    /* over at once: an error (syntax, no such table, no right), or a COPY
     * of a file on the server */
    int code = take(x, res, rows);
    if (c->broken)
        return code;
    rc = end(x, rows);
    return code ? code : rc ? rc : 1;
}

/* what write gets: whole rows gathered up to COPY_BUF */
struct out {
    char *buf;
    size_t fill;
    int (*write)(void *ctx, const void *buf, size_t len);
    void *ctx;
};

static int emit(struct out *o, const void *p, size_t n)
{
    int rc = o->write(o->ctx, p, n);
    return rc < 0 ? rc : 0;
}

/* COPY TO's rows, as they come, to o (NULL: dropped), until the data ends */
static int pass_rows(struct copy *x, struct out *o);

/* ends what is left of a COPY cut short and reads it to the end: 0 once
 * DONE (the server's error for the COPY it ended is expected then) */
static int drain(struct copy *x)
{
    int rc = 0;
    while (!rc && x->state != DONE) {
        if (x->state == IN) {
            rc = put_end(x, "COPY abandoned by the client");
        } else if (x->state == OUT) {
            rc = pass_rows(x, NULL);
        } else if (x->state == ENDING) {
            rc = end(x, NULL);
            if (x->state == DONE)
                rc = 0;
        } else {                              /* SENT: its first result says what started */
            PGresult *res;
            if (!(rc = weft__pg_plain_next(x->c, x->deadline, x->err, &res))) {
                ExecStatusType st = res ? PQresultStatus(res) : PGRES_EMPTY_QUERY;
                PQclear(res);
                x->state = !res                  ? DONE
                           : st == PGRES_COPY_IN  ? IN
                           : st == PGRES_COPY_OUT ? OUT
                                                  : ENDING;
            }
        }
    }
    return rc;
}

/* cut short: ended on the server and read to the end, shielded, within
 * cancel_grace; else c is broken */
static void recover(struct copy *x)
{
    struct weft_pg_conn *c = x->c;
    weft_scope sc;
    weft_scope_enter_shielded(&sc, c->db->o.cancel_grace);
    x->deadline = WEFT_FOREVER;               /* the shield bounds every wait */
    x->err = -ETIMEDOUT;
    int rc = -ETIMEDOUT;
    if (x->state == IN || x->state == ENDING) {
        /* COPY FROM ends at our CopyFail (or CopyDone), unless the server
         * is still busy with the data before it: a moment, then a cancel */
        weft_scope quick;
        weft_scope_enter(&quick, 100 * WEFT_MS);
        rc = drain(x);
        weft_scope_exit(&quick);
    }
    struct cancel_job *j = NULL;
    if (rc && !c->broken) {
        j = weft__pg_cancel_start(c);
        rc = drain(x);
    }
    if (j && weft__pg_cancel_wait(j))
        rc = -ETIMEDOUT;                      /* a late cancel could stop the next statement */
    weft_scope_exit(&sc);
    if (rc)
        c->broken = true;
}

/* the connection back to pipeline mode, clean, or broken */
static int done(struct copy *x, int rc)
{
    struct weft_pg_conn *c = x->c;
    if (!c || x->state == PIPELINE)
        return rc;
    if (rc) {
        c->timeout_ms = -1;                   /* a failed transaction undoes the budget */
        if (x->state != DONE && !c->broken)
            recover(x);
    }
    if (rc != -WEFT_EPG) {                    /* weft_pg_copy_error: only for -WEFT_EPG */
        weft_pg_result_free(&c->copy_err);
        memset(&c->copy_err, 0, sizeof c->copy_err);
    }
    if (!c->broken && !PQenterPipelineMode(c->pg))
        c->broken = true;
    return rc;
}

/* ---- the two directions ---------------------------------------------------------------- */

static int put(struct copy *x, const char *buf, int n)
{
    int rc;
    while ((rc = PQputCopyData(x->c->pg, buf, n)) == 0)
        if ((rc = wait_fd(x, WEFT_WRITE)) < 0)
            return rc;
    if (rc < 0)
        return weft__pg_conn_lost(x->c);
    return flush(x);                          /* the next read comes once this is out */
}

int weft_pg_copy_in(weft_pg_conn *c, const char *sql,
                    int (*read)(void *ctx, void *buf, size_t len), void *ctx, int64_t *rows)
{
    struct copy x;
    int rc = read ? start(&x, c, sql, PGRES_COPY_IN, rows) : -EINVAL;
    if (!read)
        x = (struct copy){ .state = PIPELINE };
    if (rc == 1)
        return done(&x, 0);
    char *buf = rc ? NULL : weft__malloc(COPY_BUF);
    if (!rc && !buf)
        rc = -ENOMEM;
    while (!rc) {
        int n = read(ctx, buf, COPY_BUF);
        if (n == 0)
            break;
        if (n < 0 || n > COPY_BUF) {
            rc = n < 0 ? n : -EINVAL;
            break;
        }
        if (!(rc = put(&x, buf, n)))
            rc = turn(&x, (size_t)n);
    }
    weft__free(buf);
    if (!rc)
        rc = put_end(&x, NULL);
    if (!rc)
        rc = end(&x, rows);
    return done(&x, rc);
}

static int gather(struct out *o, char *row, size_t n)
{
    int rc = 0;
    if (o && o->fill && o->fill + n > COPY_BUF) {
        rc = emit(o, o->buf, o->fill);
        o->fill = 0;
    }
    if (o && !rc && n > COPY_BUF) {
        rc = emit(o, row, n);
    } else if (o && !rc) {
        memcpy(o->buf + o->fill, row, n);
        o->fill += n;
    }
    PQfreemem(row);
    return rc;
}

static int pass_rows(struct copy *x, struct out *o)
{
    for (;;) {
        char *row;
        int n = PQgetCopyData(x->c->pg, &row, 1);
        int rc;
        if (n > 0) {
            if ((rc = gather(o, row, (size_t)n)) || (rc = turn(x, (size_t)n)))
                return rc;
            continue;
        }
        if (o && o->fill) {                   /* nothing more at hand: what came goes on */
            rc = emit(o, o->buf, o->fill);
            o->fill = 0;
            if (rc)
                return rc;
        }
        if (n == -1) {
            x->state = ENDING;
            return 0;
        }
        if (n == -2)
            return weft__pg_conn_lost(x->c);
        if ((rc = wait_fd(x, WEFT_READ)) < 0)
            return rc;
        if (!PQconsumeInput(x->c->pg))
            return weft__pg_conn_lost(x->c);
    }
}

int weft_pg_copy_out(weft_pg_conn *c, const char *sql,
                     int (*write)(void *ctx, const void *buf, size_t len), void *ctx,
                     int64_t *rows)
{
    struct copy x;
    int rc = write ? start(&x, c, sql, PGRES_COPY_OUT, rows) : -EINVAL;
    if (!write)
        x = (struct copy){ .state = PIPELINE };
    if (rc == 1)
        return done(&x, 0);
    struct out o = { .write = write, .ctx = ctx };
    if (!rc && !(o.buf = weft__malloc(COPY_BUF)))
        rc = -ENOMEM;
    if (!rc)
        rc = pass_rows(&x, &o);
    weft__free(o.buf);
    if (!rc)
        rc = end(&x, rows);
    return done(&x, rc);
}

const weft_pg_error_info *weft_pg_copy_error(const weft_pg_conn *c)
{
    return c ? weft_pg_error(&c->copy_err) : NULL;
}
