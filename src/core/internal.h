/*
 * Private interfaces shared by the files of src/core. The layers above
 * core use kernel.h, never this header.
 */
#ifndef WEFT_CORE_INTERNAL_H
#define WEFT_CORE_INTERNAL_H

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>

#include "kernel.h"

#define weft__ct_assert(c) _Static_assert(c, #c)

/* ---- sanitizer detection ------------------------------------------------ */
#if defined(__SANITIZE_ADDRESS__)
#define WEFT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WEFT_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define WEFT_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define WEFT_TSAN 1
#endif
#endif

/* ---- timers (timer.c): a 4-ary min-heap, no allocation on arm/cancel ---- */
typedef struct weft__timer weft__timer;
struct weft__timer {
    weft_time when;
    uint32_t idx;                         /* heap slot; WEFT__TIMER_IDLE when idle */
    void (*fire)(weft__timer *t);
};
#define WEFT__TIMER_IDLE UINT32_MAX

typedef struct weft__heap {
    struct weft__hent { weft_time when; weft__timer *t; } *v;
    uint32_t n, cap;
} weft__heap;

int weft__timer_arm(weft__heap *h, weft__timer *t, weft_time when); /* 0 or -ENOMEM */
void weft__timer_cancel(weft__heap *h, weft__timer *t);
weft_time weft__timer_next(const weft__heap *h);   /* WEFT_FOREVER if none */
int weft__timer_run(weft__heap *h, weft_time now); /* fires due timers; count */
void weft__heap_free(weft__heap *h);

/* ---- stacks (stack.c) --------------------------------------------------- */
typedef struct weft__stack {
    char *lo, *hi;                        /* usable range; hi is the initial sp */
    uint64_t *canary;                     /* just below lo's slot */
    struct weft__stack *next;             /* pool link */
    unsigned vg_id;                       /* valgrind registration */
    bool guarded, dirty;
} weft__stack;

typedef struct weft__stacks {
    size_t size;                          /* bytes per stack slot */
    weft__stack *hot;                     /* LIFO of recently used stacks */
    weft__stack *cold;                    /* trimmed stacks */
    unsigned nhot;
    size_t avail;                         /* stacks obtainable without mmap */
    struct weft__slab *slabs;
} weft__stacks;

void weft__stacks_init(weft__stacks *s, size_t size);
int weft__stacks_reserve(weft__stacks *s, size_t n); /* ensure avail >= n; -ENOMEM */
weft__stack *weft__stack_get(weft__stacks *s);       /* after reserve: never NULL */
void weft__stack_put(weft__stacks *s, weft__stack *st);
void weft__stacks_free(weft__stacks *s);
#define WEFT__CANARY 0x5eed5eedfeedc0deULL
static inline bool weft__stack_canary_ok(const weft__stack *st)
{
    return *st->canary == WEFT__CANARY;
}

/* ---- context switch (switch_<arch>.S) ----------------------------------- */
void weft__ctx_switch(void **save_sp, void *load_sp);
void *weft__ctx_init(char *stack_top, void *task);   /* returns the initial sp */
void weft__task_entry(void *task);                   /* called on a fresh stack */

/* ---- tasks and loops ---------------------------------------------------- */
enum { WEFT__READY = 1, WEFT__RUNNING, WEFT__WAITING, WEFT__DEAD };

/* wake results above the error range, resolved by weft__wait */
#define WEFT__WAKE_TIMER 0x7fffffff         /* no hand-off passes it (a pool passes 1) */

struct weft_task {
    void *sp;
    struct weft__loop *loop;
    weft_task *next;                      /* run queue / free list */
    weft_task *all_prev, *all_next;       /* loop's list of live tasks */
    weft_task *sib_prev, *sib_next;       /* siblings in the group */
    weft_group *group;                    /* group it is a child of */
    weft_group *owned;                    /* groups it created, not yet waited */
    weft_fn fn;
    void *arg;
    weft__stack *stack;
    weft_scope *scope;                    /* innermost scope */
    weft_time base_deadline;              /* inherited from the spawner */
    weft_time op_deadline;                /* the running wait's own deadline */
    weft__timer timer;
    uint32_t seq;                         /* incremented by every wait */
    int wake;                             /* wake result */
    int op_err;                           /* code when op_deadline fires */
    int result;
    uint8_t state;
    bool cancelled;
    bool group_cancelled;                 /* cancelled by its group: not a failure */
    bool nocancel;                        /* in an uncancellable wait */
    const char *reason;                   /* wait reason for the dump */
    void *spawn_site;
    weft_time started;                    /* first run, for the dump */
#ifdef WEFT_ASAN
    void *asan_fake;
#endif
#ifdef WEFT_TSAN
    void *tsan_fiber;
#endif
    char name[32];
    /* Cross-thread wake-up node, guarded by the loop's inbox_lock. It stays
     * out of the memset that recycles a record: a stale wake-up for the
     * record's last task may still sit on the inbox (and be written by
     * another thread) when the record is reused. Keep it last. */
    weft_task *rnext;
    uint32_t rseq;
    int rresult;
    bool rqueued;
};

struct weft__fdstate;

typedef struct weft__loop {
    weft_task *cur;                       /* running task, NULL in the scheduler */
    const char *nosuspend;                /* weft__suspend_forbid: what cur must not block in */
    weft_task *runq_head, *runq_tail;
    unsigned budget;                      /* dispatches left before a poll */
    void *sched_sp;
    weft_task *dead;                      /* task whose stack awaits reuse */
    weft__heap timers;
    weft__stacks stacks;
    size_t unstarted;                     /* tasks spawned, stack not yet taken */
    weft_task *free_tasks;
    struct weft__arena *arenas;           /* where task records come from */
    char *arena_next;
    size_t arena_left;
    weft_task *all;                       /* live tasks */
    size_t ntasks;
    int epfd, evfd;
    bool evfd_armed;
    struct weft__fdstate *fds;
    int nfds;
    /* cross-thread wake-ups (blocking pool, shared channels, other loops) */
    pthread_mutex_t inbox_lock;
    weft_task *inbox;
    _Atomic bool inbox_pending;
    _Atomic bool cancel_requested;        /* weft_run: cancel the root */
    _Atomic bool dump_requested;          /* SIGQUIT */
    /* stall detector */
    _Atomic uint64_t switches;
    _Atomic(weft_task *) running;
    _Atomic int stall_reported;           /* set by the watchdog */
    _Atomic weft_time stall_since;        /* written by the watchdog */
    uint64_t stall_switch;                /* the stalled run (switch count), */
    weft_time stall_held;                 /* how long when reported, */
    char stall_name[32];                  /* and whose: see stall.c */
    uint64_t wd_seen, wd_reported;        /* watchdog-private */
    weft_time wd_since;
    pid_t tid;
    pthread_t thread;
    struct weft__loop *reg_next;          /* process-wide loop registry */
    weft_task *root;
    /* waits that an fd event or another thread can end: while any is
     * pending (or a timer is armed) an idle loop is not deadlocked */
    unsigned fd_waits, remote_waits;
    weft_time spin;                       /* weft_set_poll_spin's, 0: none */
    bool spinning;                        /* the last spin (or short sleep) paid */
    uint64_t spins;                       /* times it spun (tests read it) */
    int deadlocks;                        /* times detected */
    int index, count;
    uint64_t id;                          /* process-unique, never reused */
    void *altstack;
#ifdef WEFT_ASAN
    const void *sched_stack_lo;
    size_t sched_stack_size;
    void *asan_fake;
#endif
#ifdef WEFT_TSAN
    void *tsan_fiber;
#endif
} weft__loop;

extern __thread weft__loop *weft__cur_loop __attribute__((tls_model("initial-exec")));

static inline weft__loop *weft__loop_get(void) { return weft__cur_loop; }
static inline weft_task *weft__self(void)
{
    weft__loop *l = weft__cur_loop;
    return l ? l->cur : NULL;
}

/* Binds a loop-local object to the calling loop on first use. Loops are
 * named by a process-unique id, not their address, which a later loop may
 * reuse. */
/* -EXDEV, after logging which loop's object (the owner) was used from
 * which loop, and by which call (its name, else a return address in it) */
int weft__cross_loop(uint64_t owner, const char *fn, const void *caller);

#define weft__bind(owner) weft__bind_in((owner), __func__)
static inline int weft__bind_in(uint64_t *owner, const char *fn)
{
    weft__loop *l = weft__cur_loop;
    if (unlikely(!l || !l->cur))
        return -EPERM;
    /* atomic: a misusing second loop may race the first; one of them wins */
    uint64_t o = __atomic_load_n(owner, __ATOMIC_RELAXED);
    if (unlikely(o != l->id)) {
        if (o || !__atomic_compare_exchange_n(owner, &o, l->id, false, __ATOMIC_RELAXED,
                                              __ATOMIC_RELAXED))
            return weft__cross_loop(o, fn, NULL);
    }
    return 0;
}

/* true when a loop-local object bound to owner may not be used here */
static inline bool weft__foreign(const uint64_t *owner)
{
    uint64_t o = __atomic_load_n(owner, __ATOMIC_RELAXED);
    return o && (!weft__cur_loop || weft__cur_loop->id != o);
}

int weft__check_slow(weft_time op_deadline, int op_err);

/* the deadline in force for t, and whether a shield is in force */
static inline weft_time weft__deadline_of(const weft_task *t)
{
    return t->scope ? t->scope->in_force_ : t->base_deadline;
}

static inline bool weft__shielded(const weft_task *t)
{
    return t->scope && t->scope->shield_in_force_;
}

/* The error a blocking call would get right now without suspending (0 =
 * none): the fast path reads two fields and no clock. */
static inline int weft__check(weft_time op_deadline, int op_err)
{
    weft_task *t = weft__cur_loop->cur;
    if (likely(!t->cancelled && op_deadline == WEFT_FOREVER &&
               weft__deadline_of(t) == WEFT_FOREVER))
        return 0;
    return weft__check_slow(op_deadline, op_err);
}

static inline void weft__ready(weft__loop *l, weft_task *t)
{
    t->state = WEFT__READY;
    t->next = NULL;
    if (l->runq_tail)
        l->runq_tail->next = t;
    else
        l->runq_head = t;
    l->runq_tail = t;
}

/* wait for a wake-up, a deadline (min of scope and op_deadline) or a
 * cancellation. Returns the waker's result, -ECANCELED, -ETIMEDOUT or
 * op_err. The caller has queued itself where a waker will find it. */
int weft__wait(weft_time op_deadline, int op_err, const char *reason);
/* the same, ignoring cancellation and deadlines (joins that must finish) */
int weft__wait_uncancellable(const char *reason);
/* make a WAITING task of this loop READY with result */
static inline void weft__wake(weft_task *t, int result);
/* wake a task of any loop, from any thread; stale (task, seq) are ignored */
void weft__wake_remote(weft__loop *l, weft_task *t, uint32_t seq, int result);
void weft__cancel(weft_task *t, bool by_group);
void weft__park(weft__loop *l);

/* symbolize.c: line(ctx, i, "function (file:line)") for each of n code
 * addresses (return addresses after the first); not in a signal handler */
void weft__symbolize(void *const *frames, int n, void (*line)(void *ctx, int i, const char *s),
                     void *ctx);

/* stall.c: the index and thread of the loop with this id, false if gone */
bool weft__loop_find(uint64_t id, int *index, int *tid);

/* stop.c: a new run's stop state; fd hears of a stop (-1: none) */
void weft__stop_reset(int fd);

/* task.c */
weft_task *weft__task_new(weft__loop *l, weft_fn fn, void *arg, const char *name,
                          void *site);
void weft__task_reap(weft__loop *l);
void weft__tasks_free(weft__loop *l);

/* group.c: called when a task ends */
int weft__groups_orphaned(weft_task *t, int rc);
void weft__group_child_done(weft_task *t, int rc);

/* scope.c */
void weft__scope_timeout_caught(weft_task *t);

/* fd.c */
void weft__fd_event(weft__loop *l, int fd, unsigned events);  /* WEFT__POLL_* */
void weft__fds_free(weft__loop *l);
/* loop.c: cross-thread wake-ups that a poke announced */
void weft__inbox_drain(weft__loop *l);

/* epoll.c: the poller backend, the only code that knows epoll */
enum {
    WEFT__POLL_IN = 1,                    /* readable (or read side hung up) */
    WEFT__POLL_OUT = 2,
    WEFT__POLL_HUP = 4,                   /* events only: the read side ended (sticky) */
    WEFT__POLL_ERR = 32,                  /* events only: both sides hung up, or an error */
    WEFT__POLL_EDGE = 8,                  /* arm only: edge-triggered */
    WEFT__POLL_ONESHOT = 16,              /* arm only: one event, then re-arm */
};
int weft__poller_open(weft__loop *l);
void weft__poller_close(weft__loop *l);
int weft__poller_arm(weft__loop *l, int fd, unsigned how, bool registered);
void weft__poller_forget(weft__loop *l, int fd);
void weft__poller_poke(weft__loop *l);
int weft__poller_wait(weft__loop *l, weft_time timeout);   /* events handled */

/* overflow.c */
int weft__overflow_init(weft__loop *l);
void weft__overflow_fini(weft__loop *l);
_Noreturn void weft__overflow_abort(weft_task *t, const char *how);

/* stall.c */
void weft__stall_register(weft__loop *l);
void weft__stall_unregister(weft__loop *l);
void weft__stall_yielded(weft__loop *l);
void weft__loops_request_dump(void);

/* dump.c */
void weft__dump_install(void);
void weft__dump_log(weft__loop *l);
void weft__site_name(void *addr, char *buf, size_t size);

/* blocking.c: a detached helper thread with every signal blocked */
int weft__thread_spawn(void *(*fn)(void *), void *arg);

/* loop.c */
void weft__loop_request_cancel(weft__loop *l);
void weft__loop_poke(weft__loop *l);      /* wake its poll from any thread */
int weft__loop_main(int index, int count, weft__loop **out, pthread_mutex_t *out_mu,
                    weft_fn fn, void *arg, void *site);

static inline void weft__wake(weft_task *t, int result)
{
    if (t->state != WEFT__WAITING)
        return;
    t->wake = result;
    weft__ready(t->loop, t);
}

#include "wait.h"                         /* the wait queue, inline for core */

#endif
