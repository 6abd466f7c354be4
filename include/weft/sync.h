/*
 * Synchronisation between tasks: semaphore, mutex, event, channel.
 *
 * weft_sem, weft_mutex and weft_event are complete types in caller-owned
 * memory (stack, struct); their fields are private. They are loop-local:
 * the first loop that uses one owns it and any other loop gets -EXDEV (a
 * void call aborts with a message naming the call). Waiters are served in
 * FIFO order and hand-offs are direct: a released permit or lock goes to
 * the first waiter and cannot be stolen by a task that arrives later.
 * Every blocking call returns 0, -ETIMEDOUT (deadline in force),
 * -ECANCELED, or -EPERM outside a task; none allocates.
 *
 * weft_chan is opaque and comes in two kinds: weft_chan_new (loop-local,
 * no locks) and weft_chan_new_shared (thread-safe: the one way for tasks
 * of different loops to talk; try_send/try_recv also work from threads
 * that run no loop).
 */
#ifndef WEFT_SYNC_H
#define WEFT_SYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct weft__waiter;
typedef struct weft__wq {
    struct weft__waiter *head, *tail;
} weft__wq;

/* ---- semaphore ---------------------------------------------------------- */

typedef struct weft_sem {
    unsigned permits_;
    weft__wq wq_;
    uint64_t loop_;                       /* id of the owning loop, 0 = unbound */
} weft_sem;

void weft_sem_init(weft_sem *s, unsigned permits);
int  weft_sem_acquire(weft_sem *s);       /* 0, -ETIMEDOUT, -ECANCELED; FIFO */
int  weft_sem_try_acquire(weft_sem *s);   /* 0 or -EAGAIN; never blocks */
void weft_sem_release(weft_sem *s);       /* wakes the first waiter, if any */
unsigned weft_sem_available(const weft_sem *s);

/* ---- mutex -------------------------------------------------------------- */

typedef struct weft_mutex {
    weft_sem sem_;
    void *owner_;
} weft_mutex;

void weft_mutex_init(weft_mutex *m);
int  weft_mutex_lock(weft_mutex *m);      /* 0, -ETIMEDOUT, -ECANCELED, -EDEADLK (own) */
int  weft_mutex_trylock(weft_mutex *m);   /* 0 or -EBUSY */
void weft_mutex_unlock(weft_mutex *m);    /* aborts if the caller is not the owner */

/* ---- event -------------------------------------------------------------- */

/* A flag tasks can wait for (asyncio.Event): set wakes every waiter and
 * stays set until cleared. */
typedef struct weft_event {
    bool set_;
    weft__wq wq_;
    uint64_t loop_;                       /* id of the owning loop, 0 = unbound */
} weft_event;

void weft_event_init(weft_event *e);
void weft_event_set(weft_event *e);
void weft_event_clear(weft_event *e);
bool weft_event_is_set(const weft_event *e);
int  weft_event_wait(weft_event *e);      /* 0 at once if set, else waits */

/* ---- channel ------------------------------------------------------------ */

typedef struct weft_chan weft_chan;

/* A bounded FIFO of fixed-size elements, copied in and out. capacity 0 is
 * a rendezvous channel (send waits for a receiver). NULL with errno EINVAL
 * (elem_size 0) or ENOMEM. The caller frees it with weft_chan_free. */
weft_chan *weft_chan_new(size_t elem_size, size_t capacity);

/* The same, safe to use from tasks of any loop (mutex inside); try_send,
 * try_recv, close and free may also be called from plain threads. */
weft_chan *weft_chan_new_shared(size_t elem_size, size_t capacity);

int  weft_chan_send(weft_chan *c, const void *elem); /* 0, -EPIPE if closed, timeouts */
int  weft_chan_recv(weft_chan *c, void *elem);       /* 0, -EPIPE once closed and empty */
int  weft_chan_try_send(weft_chan *c, const void *elem); /* -EAGAIN when full, -EPIPE */
int  weft_chan_try_recv(weft_chan *c, void *elem);       /* -EAGAIN when empty, -EPIPE */

/* Closes: later sends fail with -EPIPE, blocked senders wake with -EPIPE,
 * receivers drain what is buffered and then get -EPIPE. Idempotent. */
void weft_chan_close(weft_chan *c);

/* Closes (every blocked task gets -EPIPE) and frees: c must not be used
 * after this call. By the one close rule a shared channel is freed when
 * the last task of another loop that was blocked on it has left. */
void weft_chan_free(weft_chan *c);

size_t weft_chan_len(weft_chan *c);      /* elements buffered now */

#ifdef __cplusplus
}
#endif

#endif
