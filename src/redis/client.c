/*
 * The Redis client: connections from weft_pool, lent two ways, as the
 * PostgreSQL pool does (src/pg/pg.c).
 *
 * Shared: weft_redis_command takes the next slot of a connection's ring,
 * then formats its command into the connection's write buffer under the
 * connection's write lock (weft_conn_write: queued, not sent). The first
 * task to queue in a loop turn yields once and then sends everything
 * queued meanwhile: the commands many tasks issue in one loop turn go out
 * in one write. Only writers write (the reader never flushes: a flush
 * racing a big command's send would send its bytes twice). A reader task
 * per shared connection reads the replies in order and hands each to its
 * task, or drops it if the task gave up (deadline, cancel): a reply is
 * never someone else's. The reader gives the connection back only when no
 * command is in flight and no task is writing to it. Commands that change
 * the connection's state or block (MULTI, WATCH, SELECT, SUBSCRIBE,
 * CLIENT, BLPOP ...) are refused there: they need an exclusive one.
 * The reader waits no longer than the head command's budget plus
 * resync_grace; past that, or when the connection breaks, every command
 * on it fails and the connection is closed. With no command left it gives
 * the connection back to the pool. Redis runs one command at a time, so a
 * connection takes up to max_in_flight commands before another is used.
 *
 * Exclusive: weft_redis_acquire lends a connection to one task (MULTI,
 * WATCH, blocking commands, explicit pipelines); it counts the replies it
 * still owes, and release reads them (and DISCARDs an open MULTI) within
 * resync_grace, or closes the connection.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"
#include "weft/dns.h"
#include "weft/log.h"
#include "weft/metrics.h"
#include "weft/net.h"
#include "weft/pool.h"
#include "weft/sync.h"

/* ---- connecting ------------------------------------------------------------------ */

void weft__redis_conn_free(struct weft_redis_conn *k)
{
    if (!k)
        return;
    weft_conn_close(k->c);
    weft__redis_reader_free(k->rd);
    weft__free(k->fbuf);
    weft__free(k->ring);
    weft__free(k);
}

/* one command written and flushed, its reply read, on a connection no one
 * else uses yet (the handshake) or held exclusively */
static int roundtrip(struct weft_redis_conn *k, weft_redis_reply **out, int argc,
                     const char *const *argv, const size_t *argvlen);

static int handshake(weft_redis *r, struct weft_redis_conn *k)
{
    weft_redis_reply *rep = NULL;
    int rc = 0;
    if (r->url.has_pass) {
        const char *auth[3] = { "AUTH", r->url.user, r->url.pass };
        rc = *r->url.user ? roundtrip(k, &rep, 3, auth, NULL)
                          : roundtrip(k, &rep, 2, (const char *[]){ "AUTH", r->url.pass }, NULL);
        if (rc == -WEFT_EREDIS)
            rc = -EACCES;                 /* WRONGPASS, NOAUTH ... */
        weft_redis_reply_free(rep);
        rep = NULL;
    }
    if (!rc && r->url.db) {
        char db[16];
        snprintf(db, sizeof db, "%d", r->url.db);
        rc = roundtrip(k, &rep, 2, (const char *[]){ "SELECT", db }, NULL);
        weft_redis_reply_free(rep);
        rep = NULL;
    }
    if (!rc) {
        rc = roundtrip(k, &rep, 3, (const char *[]){ "CLIENT", "SETNAME", r->o.name }, NULL);
        weft_redis_reply_free(rep);
    }
    return rc;
}

static int redis_create(void *ctx, void **res)
{
    return weft__redis_connect(ctx, (struct weft_redis_conn **)res);
}

int weft__redis_connect(weft_redis *r, struct weft_redis_conn **res)
{
    r->refs++;
    struct weft_redis_conn *k = weft__calloc(1, sizeof *k);
    int rc = k ? 0 : -ENOMEM;
    weft_net_opts no = { .connect_timeout = r->o.connect_timeout,
                         .read_timeout = r->o.command_timeout,
                         .write_timeout = r->o.command_timeout };
    if (!rc) {
        k->r = r;
        weft_mutex_init(&k->wlock);
        if (!(k->rd = weft__redis_reader_new(r->o.max_reply, 1u << 24)))
            rc = -ENOMEM;
    }
    if (!rc)
        rc = r->url.kind == WEFT__REDIS_UNIX ? weft_unix_connect(&k->c, r->url.path, &no)
                                             : weft_tcp_connect(&k->c, r->url.host, r->url.port, &no);
    if (!rc && r->url.kind == WEFT__REDIS_TLS)
        rc = weft_tls_connect(k->c, r->tls, r->url.host);
    if (!rc)
        rc = handshake(r, k);
    if (rc) {
        snprintf(r->connect_error, sizeof r->connect_error, "%s", weft_strerror(rc));
        weft__redis_conn_free(k);
    } else {
        *res = k;
    }
    if (--r->refs == 0)
        weft__free(r);                    /* closed while connecting */
    return rc;
}

static void redis_destroy(void *ctx, void *res)
{
    (void)ctx;
    weft__redis_conn_free(res);
}

static int redis_reset(void *ctx, void *res)
{
    (void)ctx;
    struct weft_redis_conn *k = res;
    if (k->broken || k->owed || k->rcount || k->in_multi || k->watching || k->dirty ||
        weft_conn_broken(k->c) || weft_conn_pending(k->c) != 0)
        return -1;                        /* nothing dirty is lent again */
    k->exclusive = false;
    k->h = NULL;
    return 0;
}

/* an idle connection the server closed (timeout, restart) said so on its
 * socket: look, without a round trip */
static int redis_check(void *ctx, void *res)
{
    (void)ctx;
    struct weft_redis_conn *k = res;
    return weft_conn_pending(k->c) != 0 ? -ECONNRESET : 0;
}

static const weft_pool_ops pool_ops = { redis_create, redis_destroy, redis_check, redis_reset };

/* ---- writing and reading one connection ------------------------------------------------ */

/* the command into the connection's write buffer (not sent yet) */
int weft__redis_put(struct weft_redis_conn *k, int argc, const char *const *argv, const size_t *argvlen)
{
    int rc = weft_mutex_lock(&k->wlock);
    if (rc)
        return rc;
    k->flen = 0;
    rc = weft__redis_format_argv(&k->fbuf, &k->flen, &k->fcap, argc, argv, argvlen);
    if (!rc && (rc = weft_conn_write(k->c, k->fbuf, k->flen)))
        k->broken = true;                 /* maybe half a command on the wire */
    weft_mutex_unlock(&k->wlock);
    return rc;
}

/* the next reply: from what is buffered, else read (which flushes first) */
int weft__redis_next(struct weft_redis_conn *k, weft_redis_reply **out)
{
    char buf[16384];
    for (;;) {
        int rc = weft__redis_reader_get(k->rd, out);
        if (rc == 1)
            return 0;
        if (rc < 0) {
            k->broken = true;             /* the stream is lost */
            return rc;
        }
        int n = weft_conn_read_some(k->c, buf, sizeof buf);
        if (n <= 0) {
            k->broken = true;
            return n == 0 ? -WEFT_EEOF : n;
        }
        if ((rc = weft__redis_reader_feed(k->rd, buf, (size_t)n))) {
            k->broken = true;
            return rc;
        }
    }
}

int weft__redis_flush_next(struct weft_redis_conn *k, weft_redis_reply **out)
{
    int rc = weft_conn_flush(k->c);
    if (rc) {
        k->broken = true;
        return rc;
    }
    return weft__redis_next(k, out);
}

/* an error reply is the caller's -WEFT_EREDIS, with the reply */
static int reply_code(weft_redis_reply *rep)
{
    return rep && rep->type == WEFT_REDIS_ERROR ? -WEFT_EREDIS : 0;
}

static int roundtrip(struct weft_redis_conn *k, weft_redis_reply **out, int argc,
                     const char *const *argv, const size_t *argvlen)
{
    *out = NULL;
    int rc = weft__redis_put(k, argc, argv, argvlen);
    if (rc)
        return rc;
    k->owed++;
    if ((rc = weft__redis_flush_next(k, out)))
        return rc;                        /* still owed: release drains or closes */
    k->owed--;
    return reply_code(*out);
}

/* ---- the object ------------------------------------------------------------------------ */

void weft__redis_unref(weft_redis *r)
{
    if (--r->refs == 0)
        weft__free(r);
}

static void on_reader_error(const char *task, int err, void *ctx)
{
    (void)ctx;
    weft_log(WEFT_LOG_ERROR, "redis: %s failed: %s", task, weft_strerror(err));
}

static weft_metric *metric(const char *family, const char *name, bool gauge, const char *help)
{
    char full[160];
    snprintf(full, sizeof full, "%s{pool=\"%s\"}", family, name);
    return gauge ? weft_gauge(full, help) : weft_counter(full, help);
}

weft_redis *weft_redis_new(const char *url, const weft_redis_opts *o)
{
    if (!weft__loop_id()) {
        errno = EPERM;
        return NULL;
    }
    weft_redis *r = weft__calloc(1, sizeof *r);
    if (!r) {
        errno = ENOMEM;
        return NULL;
    }
    char err[128];
    if (!url || weft__redis_url_parse(url, &r->url, err, sizeof err)) {
        weft_log(WEFT_LOG_ERROR, "redis: bad URL: %s", url ? err : "none given");
        weft__free(r);
        errno = EINVAL;
        return NULL;
    }
    if (o)
        r->o = *o;
    if (!r->o.name)
        r->o.name = "redis";
    if (!r->o.max_size)
        r->o.max_size = 16;
    if (!r->o.min_size)
        r->o.min_size = 1;
    if (r->o.min_size > r->o.max_size)
        r->o.min_size = r->o.max_size;
    if (!r->o.max_in_flight)
        r->o.max_in_flight = 1024;
    if (!r->o.connect_timeout)
        r->o.connect_timeout = 10 * WEFT_SEC;
    if (!r->o.command_timeout)
        r->o.command_timeout = 30 * WEFT_SEC;
    if (!r->o.acquire_timeout)
        r->o.acquire_timeout = 30 * WEFT_SEC;
    if (!r->o.resync_grace)
        r->o.resync_grace = WEFT_SEC;
    if (!r->o.max_reply)
        r->o.max_reply = (size_t)512 << 20;
    r->refs = 1;
    r->loop = weft__loop_id();
    r->owner = weft_self();
    r->tls = r->o.tls;
    if (r->url.kind == WEFT__REDIS_TLS && !r->tls)
        r->tls = r->own_tls = weft_tls_client_new();
    weft_pool_config cfg = { .name = r->o.name, .min_size = r->o.min_size,
                             .max_size = r->o.max_size, .acquire_timeout = r->o.acquire_timeout };
    r->bg = (r->url.kind != WEFT__REDIS_TLS || r->tls) ? weft_supervisor_new(on_reader_error, NULL)
                                                        : NULL;
    r->pool = r->bg ? weft_pool_new(&cfg, &pool_ops, r) : NULL;
    if (!r->pool) {
        int e = errno ? errno : ENOMEM;
        if (r->bg)
            weft_supervisor_close(r->bg, 0);
        weft_tls_ctx_free(r->own_tls);
        weft__free(r);
        errno = e;
        return NULL;
    }
    r->m_commands = metric("weft_redis_commands_total", r->o.name, false, "Commands run");
    r->m_errors = metric("weft_redis_errors_total", r->o.name, false, "Commands that failed");
    r->m_timeouts = metric("weft_redis_timeouts_total", r->o.name, false,
                           "Commands past their deadline");
    r->m_depth = metric("weft_redis_pipeline_depth", r->o.name, true,
                        "Commands in flight on shared connections");
    r->m_sub_drops = metric("weft_redis_sub_dropped_total", r->o.name, false,
                            "Pub/sub messages dropped for subscribers that fell behind");
    return r;
}

int weft_redis_close(weft_redis *r, weft_time grace)
{
    if (!r)
        return -EINVAL;
    if (weft_self() != r->owner)
        return -EPERM;                    /* its background is its maker's */
    r->closing = true;
    weft__wq_wake_all(&r->slot_wq, -WEFT_ECLOSED);
    weft__redis_subs_stop(r);
    weft_time deadline = weft__after(grace);
    int rc = weft_supervisor_close(r->bg, grace);
    weft_time left = deadline - weft_now();
    int prc = weft_pool_close(r->pool, left > 0 ? left : 0);
    weft_tls_ctx_free(r->own_tls);
    r->own_tls = NULL;
    weft__redis_unref(r);
    return rc == -ETIMEDOUT ? rc : prc;
}

/* ---- exclusive connections -------------------------------------------------------------- */

static int take(weft_redis *r, struct weft_redis_conn **out)
{
    weft_pooled *h;
    int rc = weft_pool_acquire(r->pool, &h);
    if (rc)
        return rc;
    struct weft_redis_conn *k = weft_pooled_get(h);
    k->h = h;
    *out = k;
    return 0;
}

static void give_back(weft_redis *r, struct weft_redis_conn *k)
{
    weft_pooled *h = k->h;
    if (k->broken || weft_conn_broken(k->c))
        weft_pool_release_broken(r->pool, h);
    else
        weft_pool_release(r->pool, h);
}

int weft_redis_acquire(weft_redis *r, weft_redis_conn **out)
{
    if (!r || !out)
        return -EINVAL;
    int rc = weft__owner_check(r->loop);
    if (rc)
        return rc;
    if (r->closing)
        return -WEFT_ECLOSED;
    r->refs++;
    struct weft_redis_conn *k;
    if ((rc = take(r, &k))) {
        weft__redis_unref(r);
        return rc;
    }
    k->exclusive = true;
    *out = k;
    return 0;
}

/* a command that ends what the holder left open; its reply is owed */
static void undo(struct weft_redis_conn *k, const char *cmd)
{
    if (k->broken)
        return;
    if (weft__redis_put(k, 1, &cmd, NULL) == 0)
        k->owed++;
    else
        k->broken = true;
}

void weft_redis_release(weft_redis *r, weft_redis_conn *k)
{
    if (!r || !k)
        return;
    weft_scope sc;                        /* cleanup still runs for a cancelled task */
    weft_scope_enter_shielded(&sc, r->o.resync_grace);
    if (k->dirty)
        k->broken = true;                 /* SELECT, SUBSCRIBE ...: never lent again */
    if (k->in_multi)
        undo(k, "DISCARD");               /* ends a WATCH too */
    else if (k->watching)
        undo(k, "UNWATCH");
    k->in_multi = k->watching = false;
    while (!k->broken && k->owed) {       /* replies nobody will read */
        weft_redis_reply *rep;
        if (weft__redis_flush_next(k, &rep) == 0) {
            k->owed--;
            weft_redis_reply_free(rep);
        }
    }
    weft_scope_exit(&sc);
    give_back(r, k);
    weft__redis_unref(r);
}

/* blocking commands wait as long as the scope lets them, not command_timeout */
static bool blocking(const char *cmd, size_t len)
{
    static const char *const names[] = { "BLPOP", "BRPOP", "BLMOVE", "BRPOPLPUSH", "BZPOPMIN",
                                         "BZPOPMAX", "BLMPOP", "BZMPOP", "XREAD", "XREADGROUP",
                                         "WAIT", "WAITAOF", NULL };
    for (int i = 0; names[i]; i++)
        if (strlen(names[i]) == len && strncasecmp(cmd, names[i], len) == 0)
            return true;
    return false;
}

static size_t arglen(const char *const *argv, const size_t *argvlen, int i)
{
    return argvlen ? argvlen[i] : strlen(argv[i]);
}

/* What a command leaves on an exclusive connection for release to undo:
 * an open MULTI (DISCARD), a WATCH (UNWATCH), or state that cannot be
 * undone cheaply (SELECT, SUBSCRIBE, CLIENT REPLY ...: the connection is
 * closed instead of lent again). */
static void track_state(struct weft_redis_conn *k, int argc, const char *const *argv,
                        const size_t *argvlen)
{
    static const char *const dirty[] = { "SELECT", "SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE",
                                         "HELLO", "MONITOR", "RESET", "QUIT", "AUTH", NULL };
    char name[16] = "", sub[16] = "";
    size_t n = arglen(argv, argvlen, 0);
    if (n < sizeof name)
        memcpy(name, argv[0], n), name[n] = 0;
    if (argc > 1 && (n = arglen(argv, argvlen, 1)) < sizeof sub)
        memcpy(sub, argv[1], n), sub[n] = 0;
    if (strcasecmp(name, "MULTI") == 0) {
        k->in_multi = true;
    } else if (strcasecmp(name, "EXEC") == 0 || strcasecmp(name, "DISCARD") == 0) {
        k->in_multi = false;
        k->watching = false;              /* both end a WATCH */
    } else if (strcasecmp(name, "WATCH") == 0) {
        k->watching = true;
    } else if (strcasecmp(name, "UNWATCH") == 0) {
        k->watching = false;
    } else if (strcasecmp(name, "CLIENT") == 0) {
        if (strcasecmp(sub, "REPLY") == 0 || strcasecmp(sub, "TRACKING") == 0 ||
            strcasecmp(sub, "CACHING") == 0 || strcasecmp(sub, "NO-EVICT") == 0 ||
            strcasecmp(sub, "NO-TOUCH") == 0)
            k->dirty = true;
    } else {
        for (int i = 0; dirty[i]; i++)
            if (strcasecmp(name, dirty[i]) == 0)
                k->dirty = true;
    }
}

int weft_redis_append(weft_redis_conn *k, int argc, const char *const *argv, const size_t *argvlen)
{
    if (!k || argc < 1 || !argv)
        return -EINVAL;
    int rc = weft__enter(k->r->loop, &(weft_task *){ NULL });
    if (rc)
        return rc;
    if (k->broken)
        return -WEFT_EBROKEN;
    if ((rc = weft__redis_put(k, argc, argv, argvlen)))
        return rc;
    track_state(k, argc, argv, argvlen);
    k->owed++;
    return 0;
}

/* sends what is queued and reads the next owed reply, within
 * command_timeout; -WEFT_EREDIS with *out the ERROR reply */
static int read_owed(struct weft_redis_conn *k, weft_redis_reply **out)
{
    weft_scope sc;
    weft_scope_enter(&sc, k->r->o.command_timeout);
    int rc = weft__redis_flush_next(k, out);
    bool expired = weft_scope_exit(&sc);
    if (rc)
        return expired && rc == -ETIMEDOUT ? -WEFT_ECOMMAND_TIMEOUT : rc;
    k->owed--;
    return reply_code(*out);
}

int weft_redis_get_reply(weft_redis_conn *k, weft_redis_reply **out)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!k)
        return -EINVAL;
    int rc = weft__enter(k->r->loop, &(weft_task *){ NULL });
    if (rc)
        return rc;
    if (k->broken)
        return -WEFT_EBROKEN;
    if (!k->owed)
        return -EINVAL;                   /* nothing was appended */
    return read_owed(k, out);
}

int weft_redis_conn_command(weft_redis_conn *k, weft_redis_reply **out, int argc,
                            const char *const *argv, const size_t *argvlen)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    int rc = weft_redis_append(k, argc, argv, argvlen);
    if (rc)
        return rc;
    if (blocking(argv[0], arglen(argv, argvlen, 0))) {
        /* the scope bounds it: the connection's read timeout does not */
        weft_conn_set_timeouts(k->c, WEFT_FOREVER, 0);
        rc = weft__redis_flush_next(k, out);
        weft_conn_set_timeouts(k->c, k->r->o.command_timeout, 0);
        if (rc)
            return rc;
        k->owed--;
        return reply_code(*out);
    }
    return weft_redis_get_reply(k, out);
}

/* ---- shared connections: the reader ------------------------------------------------------ */

static void unlink_shared(struct weft_redis_conn *k)
{
    if (k->sprev) {
        *k->sprev = k->snext;
        if (k->snext)
            k->snext->sprev = k->sprev;
        k->sprev = NULL;
    }
}

/* the head command is done: its reply to its task, or dropped */
static void complete(weft_redis *r, struct weft_redis_conn *k, weft_redis_reply *rep, int rc)
{
    struct slot *s = &k->ring[k->rhead];
    struct pending *p = s->p;
    s->p = NULL;
    if (p) {
        p->reply = rep;
        p->rc = rc;
        p->done = true;
        weft__wq_wake_one(&p->wq, 0);     /* if it waits already */
    } else {
        weft_redis_reply_free(rep);
    }
    k->rhead = (k->rhead + 1) % r->o.max_in_flight;
    k->rcount--;
    weft_metric_add(r->m_depth, -1);
    weft__wq_wake_one(&r->slot_wq, 0);
}

static int reader(void *arg)
{
    struct weft_redis_conn *k = arg;
    weft_redis *r = k->r;
    for (;;) {
        if (k->broken) {
            int left = r->closing ? -WEFT_ECLOSED : -ECONNRESET;
            while (k->rcount)             /* what is left on a broken connection fails */
                complete(r, k, NULL, left);
        }
        if (!k->rcount) {
            if (!k->writers)
                break;                    /* nobody writes, nothing in flight: done */
            struct weft__waiter w = { 0 };   /* a writer is about to queue, or leave */
            weft__wq_wait_uncancellable(&k->rwq, &w, NULL, "redis writers");
            continue;
        }
        struct slot *s = &k->ring[k->rhead];
        /* the head's budget, and a little more for an answer already sent */
        weft_time left = weft__deadline_add(s->deadline, r->o.resync_grace) - weft_now();
        weft_scope sc;
        weft_scope_enter(&sc, left > 0 ? left : 0);
        weft_redis_reply *rep = NULL;
        int rc = weft__redis_next(k, &rep);
        weft_scope_exit(&sc);
        if (rc)
            k->broken = true;
        else
            complete(r, k, rep, reply_code(rep));
    }
    unlink_shared(k);
    k->reading = false;
    give_back(r, k);
    weft__redis_unref(r);
    return 0;
}

/* ---- shared connections: the command's side ------------------------------------------------- */

static struct weft_redis_conn *least_loaded(weft_redis *r)
{
    struct weft_redis_conn *best = NULL;
    for (struct weft_redis_conn *k = r->shared; k; k = k->snext)
        if (!k->broken && k->rcount < r->o.max_in_flight && (!best || k->rcount < best->rcount))
            best = k;
    return best;
}

static int share_new(weft_redis *r, struct weft_redis_conn **out)
{
    struct weft_redis_conn *k;
    int rc = take(r, &k);
    if (rc)
        return rc;
    if (r->closing) {
        give_back(r, k);
        return -WEFT_ECLOSED;
    }
    if (!k->ring && !(k->ring = weft__calloc(r->o.max_in_flight, sizeof *k->ring))) {
        give_back(r, k);
        return -ENOMEM;
    }
    k->rhead = k->rcount = 0;
    k->snext = r->shared;
    if (k->snext)
        k->snext->sprev = &k->snext;
    k->sprev = &r->shared;
    r->shared = k;
    *out = k;
    return 0;
}

/* Redis runs one command at a time: one connection takes commands until
 * it has max_in_flight; then another while the pool has one; then wait */
static int pick(weft_redis *r, struct weft_redis_conn **out, weft_time deadline)
{
    for (;;) {
        if (r->closing)
            return -WEFT_ECLOSED;
        struct weft_redis_conn *k = least_loaded(r);
        if (k) {
            *out = k;
            return 0;
        }
        weft_pool_stats ps;
        weft_pool_stats_get(r->pool, &ps);
        if (!r->shared || ps.idle > 0 || ps.size < weft__loop_share(r->o.max_size, 1)) {
            int rc = share_new(r, out);
            if (rc == 0 || !r->shared)
                return rc;
            continue;                     /* it suspended: look again */
        }
        struct weft__waiter w = { 0 };
        int rc = weft__wq_wait(&r->slot_wq, &w, NULL, deadline, -WEFT_EPOOL_TIMEOUT,
                               "redis pipeline slot");
        if (rc)
            return rc;
    }
}

static int count(weft_redis *r, int rc)
{
    weft_metric_add(r->m_commands, 1);
    if (rc && rc != -WEFT_EREDIS) {
        weft_metric_add(r->m_errors, 1);
        if (weft_is_timeout(rc))
            weft_metric_add(r->m_timeouts, 1);
    }
    return rc;
}

/* what a call asks for, formatted only once a connection's buffer is
 * ours: nothing can overwrite it between formatting and writing */
struct cmd {
    int argc;
    const char *const *argv;
    const size_t *argvlen;
    const char *fmt;
    va_list *ap;
};

static int format_cmd(struct weft_redis_conn *k, const struct cmd *c)
{
    k->flen = 0;
    if (!c->fmt)
        return weft__redis_format_argv(&k->fbuf, &k->flen, &k->fcap, c->argc, c->argv, c->argvlen);
    va_list ap;
    va_copy(ap, *c->ap);
    int rc = weft__redis_format_v(&k->fbuf, &k->flen, &k->fcap, c->fmt, ap);
    va_end(ap);
    return rc;
}

/* the name of the RESP command in buf, and whether an argument is "BLOCK" */
static void command_name(const char *buf, size_t len, char *name, size_t cap, bool *block)
{
    *name = 0;
    *block = false;
    const char *p = memchr(buf, '\n', len);      /* past "*N\r\n" */
    for (int i = 0; p && p + 1 < buf + len && p[1] == '$'; i++) {
        long n = strtol(p + 2, NULL, 10);
        const char *arg = memchr(p + 1, '\n', (size_t)(buf + len - p - 1));
        if (!arg || n < 0 || arg + 1 + n > buf + len)
            return;
        arg++;
        if (i == 0 && (size_t)n < cap) {
            memcpy(name, arg, (size_t)n);
            name[n] = 0;
        } else if (n == 5 && strncasecmp(arg, "BLOCK", 5) == 0) {
            *block = true;
        }
        p = arg + n + 1;                  /* at the "\n" after the argument */
    }
}

/* commands that would change the stream of replies a shared connection's
 * tasks read (or hold it): they need an exclusive connection */
static bool shared_ok(const char *buf, size_t len)
{
    static const char *const never[] = {
        "MULTI", "EXEC", "DISCARD", "WATCH", "UNWATCH", "SELECT", "SUBSCRIBE", "PSUBSCRIBE",
        "SSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE", "CLIENT", "HELLO",
        "MONITOR", "RESET", "QUIT", "AUTH", "BLPOP", "BRPOP", "BLMOVE", "BRPOPLPUSH",
        "BZPOPMIN", "BZPOPMAX", "BLMPOP", "BZMPOP", "WAIT", "WAITAOF", "SYNC", "PSYNC", NULL };
    char name[16];
    bool block;
    command_name(buf, len, name, sizeof name, &block);
    for (int i = 0; never[i]; i++)
        if (strcasecmp(name, never[i]) == 0)
            return false;
    return !(block && (strcasecmp(name, "XREAD") == 0 || strcasecmp(name, "XREADGROUP") == 0));
}

/* a writer leaves: the reader may be waiting for the last one */
static void writer_done(struct weft_redis_conn *k)
{
    k->writers--;
    weft__wq_wake_one(&k->rwq, 0);
}

static int shared_command(weft_redis *r, weft_redis_reply **out, const struct cmd *cmd)
{
    weft_time deadline = weft__after(r->o.command_timeout);
    int timeout_err = -WEFT_ECOMMAND_TIMEOUT;
    if (weft_deadline() <= deadline) {
        deadline = weft_deadline();
        timeout_err = -ETIMEDOUT;
    }
    weft_time acquire = weft__after(r->o.acquire_timeout);
    struct weft_redis_conn *k;
    int rc;
again:
    if ((rc = pick(r, &k, acquire)))
        return rc;
    /* a writer from here on: the connection stays ours (the reader waits
     * for us before it gives it back) */
    k->writers++;
    if (!k->reading) {
        k->reading = true;
        r->refs++;
        if ((rc = weft_spawn(r->bg, reader, k, "redis reader"))) {
            k->reading = false;
            r->refs--;
            k->writers--;
            unlink_shared(k);
            give_back(r, k);
            return rc;
        }
    }
    if ((rc = weft_mutex_lock(&k->wlock))) {
        writer_done(k);
        return rc;
    }
    if (k->broken || k->rcount >= r->o.max_in_flight) {
        weft_mutex_unlock(&k->wlock);     /* broken, or filled while we waited: another */
        writer_done(k);
        goto again;
    }
    if ((rc = format_cmd(k, cmd)) == 0 && !shared_ok(k->fbuf, k->flen))
        rc = -EINVAL;                     /* needs an exclusive connection */
    if (rc) {
        weft_mutex_unlock(&k->wlock);
        writer_done(k);
        return rc;
    }
    struct pending p = { 0 };
    struct slot *s = &k->ring[(k->rhead + k->rcount) % r->o.max_in_flight];
    *s = (struct slot){ .p = &p, .deadline = deadline };
    k->rcount++;
    weft_metric_add(r->m_depth, 1);
    weft__wq_wake_one(&k->rwq, 0);        /* the reader has a command to wait for */
    if ((rc = weft_conn_write(k->c, k->fbuf, k->flen)))
        k->broken = true;                 /* maybe half a command: the reader fails the rest */
    if (k->fcap > (64u << 10)) {          /* one big command does not pin its size */
        weft__free(k->fbuf);
        k->fbuf = NULL;
        k->fcap = 0;
    }
    bool flush = !rc && !k->flushing;
    if (flush)
        k->flushing = true;
    weft_mutex_unlock(&k->wlock);
    if (flush) {
        /* the rest of this loop turn's commands join ours, then one write;
         * shielded: others count on this flush even if we are cancelled */
        weft_scope sc;
        weft_scope_enter_shielded(&sc, r->o.command_timeout);
        weft_yield();
        if (weft_mutex_lock(&k->wlock) == 0) {
            if (weft_conn_flush(k->c))
                k->broken = true;
            k->flushing = false;
            weft_mutex_unlock(&k->wlock);
        } else {
            k->broken = true;
        }
        weft_scope_exit(&sc);
    }
    writer_done(k);
    rc = 0;
    while (!p.done && !rc) {
        struct weft__waiter w = { 0 };
        rc = weft__wq_wait(&p.wq, &w, NULL, deadline, timeout_err, "redis command");
    }
    if (p.done) {
        *out = p.reply;
        return p.rc;
    }
    s->p = NULL;                          /* gone: the reader drops its reply (s is ours
                                             until it completes) */
    return rc;
}

/* a command on a connection of its own (max_in_flight 1) */
static int exclusive_command(weft_redis *r, weft_redis_reply **out, const struct cmd *cmd)
{
    struct weft_redis_conn *k;
    int rc = take(r, &k);
    if (rc)
        return rc;
    if (!(rc = format_cmd(k, cmd)) && (rc = weft_conn_write(k->c, k->fbuf, k->flen)))
        k->broken = true;
    if (!rc) {
        k->owed++;
        rc = read_owed(k, out);
        if (k->owed)
            k->broken = true;             /* a reply left unread: not lent again */
    }
    give_back(r, k);
    return rc;
}

static int run(weft_redis *r, weft_redis_reply **out, const struct cmd *cmd)
{
    r->refs++;
    int rc = r->o.max_in_flight > 1 ? shared_command(r, out, cmd) : exclusive_command(r, out, cmd);
    count(r, rc);
    weft__redis_unref(r);
    return rc;
}

static int enter(weft_redis *r, weft_redis_reply **out)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!r)
        return -EINVAL;
    int rc = weft__enter(r->loop, &(weft_task *){ NULL });
    return rc ? rc : r->closing ? -WEFT_ECLOSED : 0;
}

int weft_redis_command(weft_redis *r, weft_redis_reply **out, int argc, const char *const *argv,
                       const size_t *argvlen)
{
    int rc = enter(r, out);
    if (rc || argc < 1 || !argv)
        return rc ? rc : -EINVAL;
    return run(r, out, &(struct cmd){ argc, argv, argvlen, NULL, NULL });
}

int weft_redis_commandf(weft_redis *r, weft_redis_reply **out, const char *fmt, ...)
{
    int rc = enter(r, out);
    if (rc || !fmt)
        return rc ? rc : -EINVAL;
    va_list ap;
    va_start(ap, fmt);
    rc = run(r, out, &(struct cmd){ 0, NULL, NULL, fmt, &ap });
    va_end(ap);
    return rc;
}
