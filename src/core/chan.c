/*
 * Channels: bounded FIFOs of fixed-size elements.
 *
 * A ring buffer plus two wait queues. Hand-offs are direct: a sender that
 * finds a waiting receiver copies into the receiver's buffer and wakes it;
 * a receiver that frees a slot pulls the first blocked sender's element in.
 * So an element is never in limbo, and a cancel that comes after the
 * hand-off cannot lose it (the woken call returns 0).
 *
 * The shared kind takes a mutex around the same code and wakes waiters
 * through their loop's inbox (weft__wake_remote), so tasks of different
 * loops, and plain threads using try_send/try_recv, can share it.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "internal.h"

struct weft_chan {
    size_t esz, cap, head, len;
    bool closed, shared;
    uint64_t loop;                        /* owning loop id (local kind) */
    pthread_mutex_t mu;
    weft__wq senders, recvers;
    char *buf;
};

static weft_chan *chan_new(size_t esz, size_t cap, bool shared)
{
    if (esz == 0 || (cap && esz > SIZE_MAX / cap)) {
        errno = EINVAL;
        return NULL;
    }
    weft_chan *c = weft__calloc(1, sizeof *c);
    if (!c)
        return NULL;
    if (cap && !(c->buf = weft__malloc(esz * cap))) {
        weft__free(c);
        return NULL;
    }
    c->esz = esz;
    c->cap = cap;
    c->shared = shared;
    if (shared)
        pthread_mutex_init(&c->mu, NULL);
    return c;
}

weft_chan *weft_chan_new(size_t esz, size_t cap) { return chan_new(esz, cap, false); }
weft_chan *weft_chan_new_shared(size_t esz, size_t cap) { return chan_new(esz, cap, true); }

static void lock(weft_chan *c)
{
    if (c->shared)
        pthread_mutex_lock(&c->mu);
}

static void unlock(weft_chan *c)
{
    if (c->shared)
        pthread_mutex_unlock(&c->mu);
}

/* Completes the first waiter of q with result. Everything is read from
 * the waiter before it is unlinked: from then on its task may see the
 * hand-off, return, and its stack frame (where w lives) is gone. */
static void hand_off(weft_chan *c, weft__wq *q, int result)
{
    struct weft__waiter *w = q->head;
    weft_task *t = w->task;
    uint32_t seq = w->seq;
    w->result = result;
    weft__wq_remove(q, w);
    if (c->shared)
        weft__wake_remote(t->loop, t, seq, result);
    else
        weft__wake(t, result);
}

/* -EXDEV/-EPERM for a caller that may not block on c */
static int may_block(weft_chan *c)
{
    if (!c)
        return -EINVAL;
    if (c->shared)
        return weft__self() ? 0 : -EPERM;
    return weft__bind(&c->loop);
}

static int may_try(weft_chan *c)
{
    if (!c)
        return -EINVAL;
    return c->shared ? 0 : weft__bind(&c->loop);
}

static void ring_put(weft_chan *c, const void *e)
{
    size_t i = c->head + c->len;
    if (i >= c->cap)
        i -= c->cap;
    memcpy(c->buf + i * c->esz, e, c->esz);
    c->len++;
}

static void ring_take(weft_chan *c, void *e)
{
    memcpy(e, c->buf + c->head * c->esz, c->esz);
    if (++c->head == c->cap)
        c->head = 0;
    c->len--;
}

/* 1 if sent, 0 if it would block, -EPIPE; called locked */
static int send_now(weft_chan *c, const void *e)
{
    if (c->closed)
        return -EPIPE;
    if (c->recvers.head) {
        memcpy(c->recvers.head->data, e, c->esz);
        hand_off(c, &c->recvers, 0);
        return 1;
    }
    if (c->len < c->cap) {
        ring_put(c, e);
        return 1;
    }
    return 0;
}

/* 1 if received, 0 if it would block, -EPIPE; called locked */
static int recv_now(weft_chan *c, void *e)
{
    if (c->len) {
        ring_take(c, e);
        if (c->senders.head) {
            ring_put(c, c->senders.head->data);
            hand_off(c, &c->senders, 0);
        }
        return 1;
    }
    if (c->senders.head) {                /* rendezvous */
        memcpy(e, c->senders.head->data, c->esz);
        hand_off(c, &c->senders, 0);
        return 1;
    }
    return c->closed ? -EPIPE : 0;
}

/* Queues the caller on q and parks; returns the hand-off's result or the
 * wait's error. Called locked, returns unlocked. */
static int block_on(weft_chan *c, weft__wq *q, void *data, const char *reason)
{
    weft_task *t = weft__self();
    struct weft__waiter w = { .task = t, .seq = t->seq, .data = data };
    bool shared = c->shared;              /* c may be freed once we are woken */
    weft__wq_push(q, &w);
    unlock(c);
    t->loop->remote_waits += shared;      /* another loop may wake us */
    int rc = weft__wait(WEFT_FOREVER, 0, reason);
    t->loop->remote_waits -= shared;
    if (!__atomic_load_n(&w.linked, __ATOMIC_ACQUIRE))
        return w.result;                  /* handed off: that wins */
    lock(c);
    if (w.linked)
        weft__wq_remove(q, &w);
    else
        rc = w.result;
    unlock(c);
    return rc;
}

int weft_chan_send(weft_chan *c, const void *elem)
{
    int rc = may_block(c);
    if (rc || (rc = weft__check(WEFT_FOREVER, 0)))
        return rc;
    lock(c);
    rc = send_now(c, elem);
    if (rc) {
        unlock(c);
        return rc < 0 ? rc : 0;
    }
    return block_on(c, &c->senders, (void *)elem, "chan send");
}

int weft_chan_recv(weft_chan *c, void *elem)
{
    int rc = may_block(c);
    if (rc || (rc = weft__check(WEFT_FOREVER, 0)))
        return rc;
    lock(c);
    rc = recv_now(c, elem);
    if (rc) {
        unlock(c);
        return rc < 0 ? rc : 0;
    }
    return block_on(c, &c->recvers, elem, "chan recv");
}

int weft_chan_try_send(weft_chan *c, const void *elem)
{
    int rc = may_try(c);
    if (rc)
        return rc;
    lock(c);
    rc = send_now(c, elem);
    unlock(c);
    return rc < 0 ? rc : rc ? 0 : -EAGAIN;
}

int weft_chan_try_recv(weft_chan *c, void *elem)
{
    int rc = may_try(c);
    if (rc)
        return rc;
    lock(c);
    rc = recv_now(c, elem);
    unlock(c);
    return rc < 0 ? rc : rc ? 0 : -EAGAIN;
}

void weft_chan_close(weft_chan *c)
{
    if (!c)
        return;
    if (!c->shared && weft__cur_loop && weft__foreign(&c->loop))
        weft__panic("weft_chan_close: channel belongs to another loop");
    lock(c);
    c->closed = true;
    while (c->senders.head)
        hand_off(c, &c->senders, -EPIPE);
    while (c->recvers.head)
        hand_off(c, &c->recvers, -EPIPE);
    unlock(c);
}

void weft_chan_free(weft_chan *c)
{
    if (!c)
        return;
    weft_chan_close(c);
    if (c->shared)
        pthread_mutex_destroy(&c->mu);
    weft__free(c->buf);
    weft__free(c);
}

size_t weft_chan_len(weft_chan *c)
{
    if (!c)
        return 0;
    lock(c);
    size_t n = c->len;
    unlock(c);
    return n;
}
