/*
 * LISTEN/NOTIFY. A listener has a connection of its own, made with the
 * pool's settings but outside it (a session that LISTENs cannot go back
 * to the pool: its LISTENs would follow it), taken out of pipeline mode,
 * and a task in the pool's supervisor that reads it. The shape is Redis
 * pub/sub's (src/redis/sub.c): notifications go into a queue the receiver
 * drains with weft_pg_listener_recv, each one allocation the receiver
 * owns; a receiver that falls behind by more than LISTEN_MAX of them (or
 * LISTEN_MAX_BYTES) has the newest dropped, counted, and is told once
 * (-ENOBUFS). When the connection is lost the task connects again with
 * backoff (100 ms doubling to 5 s) and LISTENs again; what was sent
 * meanwhile is lost (the server queues notifications only for sessions
 * that listen), so once the LISTENs are back a marker in the queue makes
 * recv say -ECONNRESET, in order, and the receiver can read again what it
 * may have missed. A quiet connection is asked an empty query every
 * LISTEN_PING and connected again when no answer comes by the next.
 *
 * weft_pg_listen makes the first connection and LISTENs itself, so its
 * caller learns a refusal and knows that every NOTIFY committed after it
 * returns will come.
 *
 * Lifetimes: the listener is counted (its holder, its task, each receiver
 * inside recv) and the last one out frees it; it holds the pool (the task
 * connects with its settings), so a listener outlives weft_pg_close.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "weft/log.h"
#include "weft/metrics.h"

#define LISTEN_MAX 10000
#define LISTEN_MAX_BYTES (64u << 20)          /* and at most this much of them */
#define LISTEN_PING (30 * WEFT_SEC)
#define CHANNEL_MAX 63                        /* NAMEDATALEN - 1: longer names are cut */

struct note {
    struct note *next;
    weft_pg_notify m;                         /* channel NULL: reconnected (-ECONNRESET) */
    size_t size;
};

struct weft_pg_listener {
    weft_pg *db;
    char *sql;                                /* LISTEN "a"; LISTEN "b" ... */
    bool closed;                              /* by weft_pg_listener_close or the pool's */
    bool dropped;                             /* some dropped since the last recv */
    struct note *head, *tail;
    unsigned count;                           /* notifications queued (markers aside) */
    size_t bytes;
    uint64_t ndropped;
    weft_metric *m_drops;
    weft__wq wait;                            /* receivers */
    weft_task *task;
    unsigned refs;                            /* the holder, the task, receivers */
    struct weft_pg_conn *c;                   /* the task's, while connected */
    struct weft_pg_listener *next, **prev;    /* the pool's open listeners */
};

void weft_pg_notify_free(weft_pg_notify *m)
{
    if (m) {
        weft__free(m->channel);               /* one block with the payload */
        memset(m, 0, sizeof *m);
    }
}

static void drop_queue(struct weft_pg_listener *l)
{
    for (struct note *q = l->head, *next; q; q = next) {
        next = q->next;
        weft_pg_notify_free(&q->m);
        weft__free(q);
    }
    l->head = l->tail = NULL;
    l->count = 0;
    l->bytes = 0;
}

static void unref(struct weft_pg_listener *l)
{
    if (--l->refs)
        return;
    drop_queue(l);
    weft__free(l->sql);
    weft__pg_unref(l->db);
    weft__free(l);
}

/* ---- the queue --------------------------------------------------------------------- */

static void append(struct weft_pg_listener *l, struct note *q)
{
    if (l->tail)
        l->tail->next = q;
    else
        l->head = q;
    l->tail = q;
    weft__wq_wake_one(&l->wait, 0);
}

static void drop(struct weft_pg_listener *l)
{
    l->dropped = true;
    l->ndropped++;
    weft_metric_add(l->m_drops, 1);
}

static void deliver(struct weft_pg_listener *l, const PGnotify *n)
{
    size_t cl = strlen(n->relname), pl = strlen(n->extra);
    if (l->count >= LISTEN_MAX || l->bytes + cl + pl > LISTEN_MAX_BYTES) {
        drop(l);
        return;
    }
    struct note *q = weft__calloc(1, sizeof *q);
    char *block = q ? weft__malloc(cl + 1 + pl + 1) : NULL;
    if (!block) {
        weft__free(q);
        drop(l);                              /* out of memory: said as a drop */
        return;
    }
    memcpy(block, n->relname, cl + 1);
    memcpy(block + cl + 1, n->extra, pl + 1);
    q->m = (weft_pg_notify){ .channel = block, .payload = block + cl + 1, .pid = n->be_pid };
    q->size = cl + pl;
    l->count++;
    l->bytes += q->size;
    append(l, q);
}

/* the LISTENs are back after a loss: recv says so in its turn. Not
 * counted against the bound: at most one between two notifications. */
static void mark_reconnected(struct weft_pg_listener *l)
{
    if (l->tail && !l->tail->m.channel)
        return;                               /* one already says it */
    struct note *q = weft__calloc(1, sizeof *q);
    if (!q) {
        drop(l);                              /* still a sign that some may be missing */
        weft__wq_wake_one(&l->wait, 0);
        return;
    }
    append(l, q);
}

/* ---- the connection ----------------------------------------------------------------- */

/* connects and LISTENs (one simple query for all channels: the first
 * refusal ends it), within the connect and query timeouts and the scope */
static int connect_listen(struct weft_pg_listener *l)
{
    struct weft_pg_conn *c;
    int rc = weft__pg_connect(l->db, &c);
    if (rc)
        return rc;
    if (!PQexitPipelineMode(c->pg) || !PQsendQuery(c->pg, l->sql))
        rc = weft__pg_conn_lost(c);
    weft_time deadline = weft__after(l->db->o.query_timeout);
    int code = 0;
    while (!rc) {
        PGresult *res;
        if ((rc = weft__pg_plain_next(c, deadline, -WEFT_EQUERY_TIMEOUT, &res)) || !res)
            break;
        if (PQresultStatus(res) != PGRES_COMMAND_OK && !code) {
            const char *m = PQresultErrorMessage(res);
            size_t n = strlen(m);
            weft_log(WEFT_LOG_ERROR, "pg: LISTEN refused: %.*s",
                     (int)(n && m[n - 1] == '\n' ? n - 1 : n), m);
            code = PQstatus(c->pg) == CONNECTION_BAD ? -ECONNRESET : -WEFT_EPG;
        }
        PQclear(res);
    }
    if (!rc)
        rc = code;
    if (rc) {
        weft__pg_conn_free(c);
        return rc;
    }
    l->c = c;
    return 0;
}

/* reads notifications until the connection is lost (or the task is
 * cancelled); a ping keeps a quiet link honest */
static int read_on(struct weft_pg_listener *l)
{
    struct weft_pg_conn *c = l->c;
    bool ping_out = false;
    int f = 0;                                /* PQflush: 1 while output waits */
    for (;;) {
        PGnotify *n;
        while ((n = PQnotifies(c->pg))) {
            deliver(l, n);
            PQfreemem(n);
        }
        while (ping_out && !PQisBusy(c->pg)) {    /* the ping's answer, to its end */
            PGresult *res = PQgetResult(c->pg);
            if (!res)
                ping_out = false;
            PQclear(res);
        }
        int rc = weft_fd_wait_for(c->fd, WEFT_READ | (f ? WEFT_WRITE : 0), LISTEN_PING, -EAGAIN);
        if (rc == -EAGAIN) {
            if (ping_out)
                return -WEFT_EQUERY_TIMEOUT;  /* no answer in a whole period: dead */
            if (!PQsendQuery(c->pg, ""))
                return weft__pg_conn_lost(c);
            ping_out = true;
        } else if (rc < 0) {
            return rc;
        } else if ((rc & WEFT_READ) && !PQconsumeInput(c->pg)) {
            return weft__pg_conn_lost(c);
        }
        if ((f = PQflush(c->pg)) < 0)
            return weft__pg_conn_lost(c);
    }
}

static int listener_task(void *arg)
{
    struct weft_pg_listener *l = arg;
    l->task = weft_self();
    weft_time backoff = 100 * WEFT_MS;
    while (!l->closed) {
        int rc = 0;
        if (!l->c && !(rc = connect_listen(l))) {
            backoff = 100 * WEFT_MS;
            mark_reconnected(l);
        }
        if (!rc) {
            rc = read_on(l);
            weft__pg_conn_free(l->c);
            l->c = NULL;
        }
        if (l->closed || rc == -ECANCELED)
            break;
        weft_log(WEFT_LOG_WARN, "pg: listener lost its connection (%s), again in %lld ms",
                 weft_strerror(rc), (long long)(backoff / WEFT_MS));
        if (weft_sleep(backoff))
            break;
        backoff = backoff * 2 > 5 * WEFT_SEC ? 5 * WEFT_SEC : backoff * 2;
    }
    weft__pg_conn_free(l->c);                 /* closed before the task first ran */
    l->c = NULL;
    l->task = NULL;
    l->closed = true;
    weft__wq_wake_all(&l->wait, -EPIPE);
    unref(l);
    return 0;
}

/* ---- the API ------------------------------------------------------------------------- */

/* LISTEN "a"; LISTEN "b" ...: each name quoted (a '"' doubled), so it is
 * taken as it is; NULL with -EINVAL or -ENOMEM in *rc */
static char *listen_sql(const char *const *channels, int n, int *rc)
{
    size_t len = 1;
    for (int i = 0; i < n; i++) {
        size_t cl = channels[i] ? strlen(channels[i]) : 0;
        if (cl < 1 || cl > CHANNEL_MAX) {
            *rc = -EINVAL;
            return NULL;
        }
        len += sizeof "LISTEN \"\"; " + 2 * cl;
    }
    char *sql = weft__malloc(len), *p = sql;
    if (!sql) {
        *rc = -ENOMEM;
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        p += sprintf(p, "%sLISTEN \"", i ? "; " : "");
        for (const char *s = channels[i]; *s; s++) {
            if (*s == '"')
                *p++ = '"';
            *p++ = *s;
        }
        *p++ = '"';
    }
    *p = 0;
    return sql;
}

int weft_pg_listen(weft_pg *db, const char *const *channels, int n, weft_pg_listener **out)
{
    if (out)
        *out = NULL;
    if (!db || !channels || n < 1 || !out)
        return -EINVAL;
    int rc = weft__enter(db->loop, &(weft_task *){ NULL });
    if (rc)
        return rc;
    if (db->closing)
        return -WEFT_ECLOSED;
    char *sql = listen_sql(channels, n, &rc);
    if (!sql)
        return rc;
    struct weft_pg_listener *l = weft__calloc(1, sizeof *l);
    if (!l) {
        weft__free(sql);
        return -ENOMEM;
    }
    l->db = db;
    db->refs++;
    l->refs = 1;
    l->sql = sql;
    char name[160];
    snprintf(name, sizeof name, "weft_pg_listen_dropped_total{pool=\"%s\"}", db->o.name);
    l->m_drops = weft_counter(name, "Notifications dropped: the receiver fell behind");
    rc = connect_listen(l);
    if (!rc && db->closing)
        rc = -WEFT_ECLOSED;                   /* closed while we connected */
    if (!rc) {
        l->refs++;                            /* the task's */
        if ((rc = weft_spawn(db->bg, listener_task, l, "pg listener")))
            l->refs--;
    }
    if (rc) {
        weft__pg_conn_free(l->c);
        l->c = NULL;
        unref(l);
        return rc;
    }
    l->next = db->listeners;
    if (l->next)
        l->next->prev = &l->next;
    l->prev = &db->listeners;
    db->listeners = l;
    *out = l;
    return 0;
}

int weft_pg_listener_recv(weft_pg_listener *l, weft_pg_notify *m)
{
    if (!l || !m)
        return -EINVAL;
    memset(m, 0, sizeof *m);
    int rc = weft__owner_check(l->db->loop);
    if (rc)
        return rc;
    l->refs++;                                /* a close while we wait frees nothing under us */
    while (!l->head && !l->dropped && !l->closed) {
        struct weft__waiter w = { 0 };
        if ((rc = weft__wq_wait(&l->wait, &w, NULL, WEFT_FOREVER, -ETIMEDOUT, "pg listener")))
            break;
    }
    if (rc && rc != -EPIPE) {
        /* deadline or cancel */
    } else if (l->dropped) {
        l->dropped = false;
        rc = -ENOBUFS;                        /* said once; the queue is still there */
    } else if (l->head) {
        struct note *q = l->head;
        l->head = q->next;
        if (!l->head)
            l->tail = NULL;
        if (q->m.channel) {
            l->count--;
            l->bytes -= q->size;
            *m = q->m;
            rc = 0;
        } else {
            rc = -ECONNRESET;                 /* reconnected: some may be missing */
        }
        weft__free(q);
    } else {
        rc = -EPIPE;
    }
    unref(l);
    return rc;
}

uint64_t weft_pg_listener_dropped(const weft_pg_listener *l)
{
    return l ? l->ndropped : 0;
}

static void stop(struct weft_pg_listener *l)
{
    l->closed = true;
    if (l->prev) {
        *l->prev = l->next;
        if (l->next)
            l->next->prev = l->prev;
        l->prev = NULL;
    }
    if (l->task)
        weft_task_cancel(l->task);
    weft__wq_wake_all(&l->wait, -EPIPE);
}

void weft_pg_listener_close(weft_pg_listener *l)
{
    if (!l || weft__owner_check(l->db->loop) != 0)
        return;                               /* another loop's: logged, left alone */
    stop(l);
    unref(l);
}

void weft__pg_listeners_stop(weft_pg *db)
{
    while (db->listeners)
        stop(db->listeners);
}
