/*
 * Redis pub/sub: a subscription has a connection of its own (not the
 * pool's: a subscribed connection can do nothing else) and a task in the
 * client's supervisor that reads it. Messages go into a queue the
 * receiver drains with weft_redis_sub_recv; each is one allocation the
 * receiver owns. When the connection is lost the task connects again with
 * backoff (100 ms doubling to 5 s) and subscribes again: messages
 * published meanwhile are lost (Redis keeps none). A receiver that falls
 * behind by more than SUB_MAX messages (or SUB_MAX_BYTES of them) has the
 * newest dropped, counted (weft_redis_sub_dropped_total), and gets
 * -ENOBUFS once. A quiet link is asked a PING every 30 s and connected again
 * when no answer comes by the next; a subscription the server refuses
 * (ACL) ends, and sub_recv says -EACCES.
 */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "internal.h"
#include "weft/log.h"

#define SUB_MAX 10000
#define SUB_MAX_BYTES (64u << 20)         /* and at most this much of them */
#define SUB_PING (30 * WEFT_SEC)

struct msg {
    struct msg *next;
    weft_redis_msg m;
};

struct weft_redis_sub {
    weft_redis *r;
    char **chans;
    int n;
    bool patterns;
    bool closed;                          /* by weft_redis_sub_close or the client's close */
    bool dropped;                         /* messages dropped since the last recv */
    bool refused;                         /* the server refused the subscription */
    struct msg *head, *tail;
    unsigned count;
    size_t bytes;
    weft__wq wait;                        /* receivers */
    weft_task *task;
    unsigned refs;                        /* the holder and the task */
    struct weft_redis_conn *k;
    struct weft_redis_sub *next, **prev;
};

void weft_redis_msg_free(weft_redis_msg *m)
{
    if (m) {
        weft__free(m->channel);           /* one block with the other fields */
        memset(m, 0, sizeof *m);
    }
}

static void drop_queue(struct weft_redis_sub *s)
{
    for (struct msg *q = s->head, *next; q; q = next) {
        next = q->next;
        weft_redis_msg_free(&q->m);
        weft__free(q);
    }
    s->head = s->tail = NULL;
    s->count = 0;
    s->bytes = 0;
}

static void sub_unref(struct weft_redis_sub *s)
{
    if (--s->refs)
        return;
    drop_queue(s);
    for (int i = 0; i < s->n; i++)
        weft__free(s->chans[i]);
    weft__free(s->chans);
    weft__redis_unref(s->r);
    weft__free(s);
}

/* a "message" or "pmessage" reply into the queue */
static void deliver(struct weft_redis_sub *s, const weft_redis_reply *rep)
{
    bool p = rep->elements == 4;
    const weft_redis_reply *pat = p ? &rep->element[1] : NULL;
    const weft_redis_reply *ch = &rep->element[p ? 2 : 1], *data = &rep->element[p ? 3 : 2];
    if (s->count >= SUB_MAX || s->bytes + ch->len + data->len > SUB_MAX_BYTES) {
        s->dropped = true;
        weft_metric_add(s->r->m_sub_drops, 1);
        return;
    }
    struct msg *q = weft__calloc(1, sizeof *q);
    size_t plen = pat ? pat->len + 1 : 0;
    char *block = q ? weft__malloc(ch->len + 1 + plen + data->len + 1) : NULL;
    if (!block) {
        weft__free(q);
        s->dropped = true;                /* out of memory: said as a drop */
        weft_metric_add(s->r->m_sub_drops, 1);
        return;
    }
    q->m.channel = block;
    memcpy(block, ch->str, ch->len);
    block[ch->len] = 0;
    char *d = block + ch->len + 1;
    if (pat) {
        q->m.pattern = d;
        memcpy(d, pat->str, pat->len);
        d[pat->len] = 0;
        d += plen;
    }
    q->m.data = d;
    memcpy(d, data->str, data->len);
    d[data->len] = 0;
    q->m.len = data->len;
    if (s->tail)
        s->tail->next = q;
    else
        s->head = q;
    s->tail = q;
    s->count++;
    s->bytes += ch->len + data->len;
    weft__wq_wake_one(&s->wait, 0);
}

static bool is_message(const weft_redis_reply *rep)
{
    if (rep->type != WEFT_REDIS_ARRAY || rep->elements < 3 ||
        rep->element[0].type != WEFT_REDIS_STRING)
        return false;
    for (size_t i = 1; i < rep->elements; i++)
        if (rep->element[i].type != WEFT_REDIS_STRING)
            return false;                 /* a hostile server's shape: not a message */
    const char *kind = rep->element[0].str;
    return (rep->elements == 3 && strcmp(kind, "message") == 0) ||
           (rep->elements == 4 && strcmp(kind, "pmessage") == 0);
}

/* a reply to our PING in subscribed mode: ["pong", ""] */
static bool is_pong(const weft_redis_reply *rep)
{
    return rep->type == WEFT_REDIS_ARRAY && rep->elements >= 1 &&
           rep->element[0].type == WEFT_REDIS_STRING && strcasecmp(rep->element[0].str, "pong") == 0;
}

/* connected: subscribe, then read until the connection breaks. A quiet
 * link is asked a PING every SUB_PING; no answer by the next one means it
 * is dead (a partition, a server gone without a reset): connect again. */
static int listen_on(struct weft_redis_sub *s)
{
    struct weft_redis_conn *k = s->k;
    const char **argv = weft__malloc((size_t)(s->n + 1) * sizeof *argv);
    if (!argv)
        return -ENOMEM;
    argv[0] = s->patterns ? "PSUBSCRIBE" : "SUBSCRIBE";
    for (int i = 0; i < s->n; i++)
        argv[i + 1] = s->chans[i];
    int rc = weft__redis_put(k, s->n + 1, argv, NULL);
    weft__free(argv);
    if (!rc)
        rc = weft_conn_flush(k->c);
    bool ping_out = false;
    while (!rc) {
        weft_redis_reply *rep;
        int got = weft__redis_reader_get(k->rd, &rep);
        if (got < 0)
            return got;
        if (got == 0) {                   /* nothing complete: wait for bytes, or ping */
            int ready = weft_conn_wait_readable(k->c, SUB_PING);
            if (ready < 0)
                return ready;
            if (ready == 0) {
                if (ping_out)
                    return -WEFT_ECOMMAND_TIMEOUT;   /* no PONG in a whole period */
                if ((rc = weft__redis_put(k, 1, (const char *[]){ "PING" }, NULL)) ||
                    (rc = weft_conn_flush(k->c)))
                    return rc;
                ping_out = true;
                continue;
            }
            char buf[16384];
            int n = weft_conn_read_some(k->c, buf, sizeof buf);
            if (n <= 0)
                return n == 0 ? -WEFT_EEOF : n;
            if ((rc = weft__redis_reader_feed(k->rd, buf, (size_t)n)))
                return rc;
            continue;
        }
        if (is_message(rep)) {
            deliver(s, rep);
        } else if (is_pong(rep)) {
            ping_out = false;
        } else if (rep->type == WEFT_REDIS_ERROR) {
            /* refused (an ACL's NOPERM ...): no retry will change it */
            weft_log(WEFT_LOG_ERROR, "redis: subscription refused: %s", rep->str);
            s->refused = true;
            weft_redis_reply_free(rep);
            return -EACCES;
        }                                 /* (subscribe confirmations are dropped) */
        weft_redis_reply_free(rep);
    }
    return rc;
}

static int sub_task(void *arg)
{
    struct weft_redis_sub *s = arg;
    s->task = weft_self();
    weft_time backoff = 100 * WEFT_MS;
    while (!s->closed) {
        int rc = weft__redis_connect(s->r, &s->k);
        if (!rc) {
            backoff = 100 * WEFT_MS;
            rc = listen_on(s);
            weft__redis_conn_free(s->k);
            s->k = NULL;
        }
        if (s->closed || rc == -ECANCELED || s->refused)
            break;
        weft_log(WEFT_LOG_WARN, "redis: subscription lost (%s), again in %lld ms",
                 weft_strerror(rc), (long long)(backoff / WEFT_MS));
        if (weft_sleep(backoff))
            break;
        backoff = backoff * 2 > 5 * WEFT_SEC ? 5 * WEFT_SEC : backoff * 2;
    }
    s->task = NULL;
    s->closed = true;
    weft__wq_wake_all(&s->wait, -EPIPE);
    sub_unref(s);
    return 0;
}

int weft_redis_subscribe(weft_redis *r, const char *const *chans, int n, bool patterns,
                         weft_redis_sub **out)
{
    if (!r || !chans || n < 1 || !out)
        return -EINVAL;
    int rc = weft__owner_check(r->loop);
    if (rc)
        return rc;
    if (r->closing)
        return -WEFT_ECLOSED;
    struct weft_redis_sub *s = weft__calloc(1, sizeof *s);
    if (!s || !(s->chans = weft__calloc((size_t)n, sizeof *s->chans))) {
        weft__free(s);
        return -ENOMEM;
    }
    s->r = r;
    r->refs++;
    s->refs = 1;
    s->patterns = patterns;
    for (; s->n < n; s->n++) {
        if (!chans[s->n] || !(s->chans[s->n] = weft__malloc(strlen(chans[s->n]) + 1))) {
            rc = chans[s->n] ? -ENOMEM : -EINVAL;
            sub_unref(s);
            return rc;
        }
        strcpy(s->chans[s->n], chans[s->n]);
    }
    s->refs++;                            /* the task's */
    if ((rc = weft_spawn(r->bg, sub_task, s, "redis subscription"))) {
        s->refs--;
        sub_unref(s);
        return rc;
    }
    s->next = r->subs;
    if (s->next)
        s->next->prev = &s->next;
    s->prev = &r->subs;
    r->subs = s;
    *out = s;
    return 0;
}

int weft_redis_sub_recv(weft_redis_sub *s, weft_redis_msg *m)
{
    if (!s || !m)
        return -EINVAL;
    memset(m, 0, sizeof *m);
    int rc = weft__owner_check(s->r->loop);
    if (rc)
        return rc;
    s->refs++;                            /* a close while we wait frees nothing under us */
    while (!s->head && !s->dropped && !s->closed) {
        struct weft__waiter w = { 0 };
        if ((rc = weft__wq_wait(&s->wait, &w, NULL, WEFT_FOREVER, -ETIMEDOUT,
                                "redis subscription")))
            break;
    }
    if (rc && rc != -EPIPE) {
        /* deadline or cancel */
    } else if (s->dropped) {
        s->dropped = false;
        rc = -ENOBUFS;                    /* said once; the queue is still there */
    } else if (s->head) {
        struct msg *q = s->head;
        s->head = q->next;
        if (!s->head)
            s->tail = NULL;
        s->count--;
        s->bytes -= strlen(q->m.channel) + q->m.len;
        *m = q->m;
        weft__free(q);
        rc = 0;
    } else {
        rc = s->refused ? -EACCES : -EPIPE;
    }
    sub_unref(s);
    return rc;
}

static void stop(struct weft_redis_sub *s)
{
    s->closed = true;
    if (s->prev) {
        *s->prev = s->next;
        if (s->next)
            s->next->prev = s->prev;
        s->prev = NULL;
    }
    if (s->task)
        weft_task_cancel(s->task);
    weft__wq_wake_all(&s->wait, -EPIPE);
}

void weft_redis_sub_close(weft_redis_sub *s)
{
    if (!s)
        return;
    stop(s);
    sub_unref(s);
}

void weft__redis_subs_stop(weft_redis *r)
{
    while (r->subs)
        stop(r->subs);
}
