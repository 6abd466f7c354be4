/*
 * Channels: bounded FIFOs of fixed-size elements.
 *
 * A ring buffer plus two wait queues. Hand-offs are direct: a sender that
 * finds a waiting receiver copies into the receiver's buffer and wakes it;
 * a receiver that frees a slot pulls the first blocked sender's element in.
 * So an element is never in limbo, and a cancel that comes after the
 * hand-off cannot lose it (the woken call returns 0).
 *
 * The shared kind takes a mutex around the same code (the wait queue
 * wakes a waiter of another loop through that loop's inbox), so tasks of
 * different loops, and plain threads using try_send/try_recv, can share
 * it. Its waiters may still take the lock after they wake, so it counts
 * them: weft_chan_free drops the owner's reference and the last one out
 * frees the channel (kernel.h, the close rule).
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "internal.h"

struct weft_chan {
    size_t esz, cap, head, len;
    bool closed, shared;
    uint64_t loop;                        /* owning loop id (local kind) */
    unsigned refs;                        /* shared: the owner + blocked tasks, under mu */
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
    c->refs = 1;
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
        weft__wq_wake_one_fast(&c->recvers, 0);
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
            weft__wq_wake_one_fast(&c->senders, 0);
        }
        return 1;
    }
    if (c->senders.head) {                /* rendezvous */
        memcpy(e, c->senders.head->data, c->esz);
        weft__wq_wake_one_fast(&c->senders, 0);
        return 1;
    }
    return c->closed ? -EPIPE : 0;
}

static void destroy(weft_chan *c)
{
    if (c->shared)
        pthread_mutex_destroy(&c->mu);
    weft__free(c->buf);
    weft__free(c);
}

/* Drops a reference to a shared channel; the last one frees it. */
static void put(weft_chan *c)
{
    lock(c);
    bool last = --c->refs == 0;
    unlock(c);
    if (last)
        destroy(c);
}

/* Queues the caller on q and parks; returns the hand-off's result or the
 * wait's error. Called locked, returns unlocked. */
static int block_on(weft_chan *c, weft__wq *q, void *data, const char *reason)
{
    struct weft__waiter w = { .data = data };
    if (!c->shared)
        return weft__wq_wait_fast(q, &w, NULL, WEFT_FOREVER, 0, reason, false);
    c->refs++;                            /* held until we no longer touch c */
    int rc = weft__wq_wait_fast(q, &w, &c->mu, WEFT_FOREVER, 0, reason, false);
    put(c);
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
    weft__wq_wake_all(&c->senders, -EPIPE);
    weft__wq_wake_all(&c->recvers, -EPIPE);
    unlock(c);
}

void weft_chan_free(weft_chan *c)
{
    if (!c)
        return;
    weft_chan_close(c);
    put(c);                               /* blocked tasks of other loops may hold it */
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
