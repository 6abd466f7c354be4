/*
 * The event loop: run queue, task switching, waiting and waking, polling
 * (through the poller backend, epoll.c).
 *
 * Ready tasks run in FIFO order. A task that suspends switches directly to
 * the next ready task (one context switch, no trip through a scheduler);
 * only when the run queue is empty, or after BUDGET dispatches in a row,
 * does control go back to the scheduler on the thread's own stack, which
 * polls epoll (blocking until the nearest timer only when nothing is
 * ready), fires due timers and drains cross-thread wake-ups. So a switch
 * costs no syscall, and I/O and timers wait for at most BUDGET task runs.
 *
 * Waiting: a blocking call queues a waiter where its waker will find it,
 * then weft__wait() arms one timer (the earliest of the scope deadline in
 * force and the operation's own deadline) and parks. Whoever wakes the task
 * first decides the result; the woken call unlinks its waiter if it is
 * still queued. Cross-thread wakers name (task, wait sequence) so a late
 * wake-up for a wait that already ended is dropped.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#ifdef WEFT_ASAN
#include <sanitizer/asan_interface.h>
#endif
#ifdef WEFT_TSAN
#include <sanitizer/tsan_interface.h>
#endif

/* Dispatches between two polls: bounds how long I/O and timers can be
 * starved by a busy run queue, while keeping the poll syscall off most
 * switches (1 poll per 128 switches). */
#define BUDGET 128

__thread weft__loop *weft__cur_loop __attribute__((tls_model("initial-exec")));

static size_t stack_size_setting;

void weft_set_stack_size(size_t bytes) { stack_size_setting = bytes; }

static size_t stack_size(void)
{
    if (stack_size_setting)
        return stack_size_setting;
    const char *e = getenv("WEFT_STACK_KB");
    long kb = e ? atol(e) : 0;
    return kb > 0 ? (size_t)kb * 1024 : 256 * 1024;
}

/* weft_set_poll_spin's, -1: not set (the environment's) */
static _Atomic weft_time spin_setting = -1;

void weft_set_poll_spin(weft_time ns)
{
    atomic_store_explicit(&spin_setting, ns <= 0 ? 0 : ns > WEFT_SEC ? WEFT_SEC : ns,
                          memory_order_relaxed);
}

static weft_time poll_spin(void)
{
    weft_time set = atomic_load_explicit(&spin_setting, memory_order_relaxed);
    if (set >= 0)
        return set;
    const char *e = getenv("WEFT_POLL_SPIN_US");
    if (!e || !*e)
        return 0;
    char *end;
    errno = 0;
    long long us = strtoll(e, &end, 10);
    if (errno || *end || us < 0 || us > 1000000) {
        weft_log(WEFT_LOG_WARN, "WEFT_POLL_SPIN_US=%s ignored: microseconds, 0 to 1000000", e);
        return 0;
    }
    return (weft_time)us * WEFT_US;
}

weft_time weft_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (weft_time)ts.tv_sec * WEFT_SEC + ts.tv_nsec;
}

/* ---- run queue ---------------------------------------------------------- */

static inline weft_task *runq_pop(weft__loop *l)
{
    weft_task *t = l->runq_head;
    if (t) {
        l->runq_head = t->next;
        if (!t->next)
            l->runq_tail = NULL;
    }
    return t;
}

/* ---- switching ---------------------------------------------------------- */

static void start_task(weft__loop *l, weft_task *t)
{
    l->unstarted--;
    t->stack = weft__stack_get(&l->stacks);
    t->sp = weft__ctx_init(t->stack->hi, t);
#ifdef WEFT_TSAN
    t->tsan_fiber = __tsan_create_fiber(0);
#endif
}

/* Switches from `from` (NULL: the scheduler) to `to` (NULL: the scheduler).
 * A dying task never comes back; its stack is released by whoever runs
 * next (weft__task_reap). */
static inline void jump(weft__loop *l, weft_task *from, weft_task *to, bool dying)
{
    void **save = from ? &from->sp : &l->sched_sp;

    (void)dying;                          /* only ASan needs to know */
    if (to) {
        if (unlikely(!to->stack))
            start_task(l, to);
        to->state = WEFT__RUNNING;
    }
    if (unlikely(atomic_load_explicit(&l->stall_reported, memory_order_acquire)))
        weft__stall_yielded(l);
    l->cur = to;
    atomic_store_explicit(&l->switches,
                          atomic_load_explicit(&l->switches, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    atomic_store_explicit(&l->running, to, memory_order_release);

#ifdef WEFT_ASAN
    const void *lo = to ? (const void *)to->stack->lo : l->sched_stack_lo;
    size_t sz = to ? (size_t)(to->stack->hi - to->stack->lo) : l->sched_stack_size;
    void **fake = from ? &from->asan_fake : &l->asan_fake;
    __sanitizer_start_switch_fiber(dying ? NULL : fake, lo, sz);
#endif
#ifdef WEFT_TSAN
    __tsan_switch_to_fiber(to ? to->tsan_fiber : l->tsan_fiber, 0);
#endif
    weft__ctx_switch(save, to ? to->sp : l->sched_sp);
#ifdef WEFT_ASAN
    __sanitizer_finish_switch_fiber(*fake, NULL, NULL);
#endif
    if (unlikely(l->dead))
        weft__task_reap(l);
}

/* Best-effort overflow check for stacks without a guard page, at every
 * suspension and at exit (see core.h). */
static inline void check_stack(weft_task *t)
{
    if (unlikely(!weft__stack_canary_ok(t->stack)))
        weft__overflow_abort(t, "canary below the stack smashed");
    if (unlikely((char *)__builtin_frame_address(0) < t->stack->lo))
        weft__overflow_abort(t, "stack pointer below the stack");
}

void weft__task_entry(void *p)
{
    weft_task *t = p;
    weft__loop *l = t->loop;
#ifdef WEFT_ASAN
    __sanitizer_finish_switch_fiber(NULL, NULL, NULL);
#endif
    if (l->dead)
        weft__task_reap(l);
    int rc = t->fn(t->arg);
    check_stack(t);
    if (unlikely(rc > 0)) {
        /* read as an errno it would say something false ("Input/output
         * error" for a count of 5): say what it is, and fail with it */
        weft_log(WEFT_LOG_WARN, "task '%s' returned %d: a task returns 0 or a negative code;"
                 " reported as a failure (-EINVAL)", t->name, rc);
        rc = -EINVAL;
    }
    rc = weft__groups_orphaned(t, rc);
    if (t->scope)
        weft__panic("task '%s' returned inside a weft_scope (scopes must be exited "
                    "before the task returns)", t->name);
    t->result = rc;
    t->state = WEFT__DEAD;
    if (t->group)
        weft__group_child_done(t, rc);
    l->dead = t;
    weft_task *next = NULL;
    if (l->budget) {
        l->budget--;
        next = runq_pop(l);
    }
    jump(l, t, next, true);
    __builtin_unreachable();
}

void weft__park(weft__loop *l)
{
    weft_task *self = l->cur, *next = NULL;
    check_stack(self);
    if (likely(l->budget)) {
        l->budget--;
        next = runq_pop(l);
    }
    if (next == self) {
        self->state = WEFT__RUNNING;
        return;
    }
    jump(l, self, next, false);
}

/* ---- waiting and waking ------------------------------------------------- */

static int timed_out(weft_task *t, weft_time op_deadline, int op_err)
{
    if (op_deadline < weft__deadline_of(t))
        return op_err;
    weft__scope_timeout_caught(t);
    return -ETIMEDOUT;
}

int weft__check_slow(weft_time op_deadline, int op_err)
{
    weft_task *t = weft__self();
    if (unlikely(t->cancelled) && !weft__shielded(t))
        return -ECANCELED;
    weft_time sdl = weft__deadline_of(t);
    weft_time dl = op_deadline < sdl ? op_deadline : sdl;
    if (likely(dl == WEFT_FOREVER) || weft_now() < dl)
        return 0;
    return timed_out(t, op_deadline, op_err);
}

static void timer_fired(weft__timer *tm)
{
    weft_task *t = (weft_task *)((char *)tm - offsetof(weft_task, timer));
    if (t->state == WEFT__WAITING)
        weft__wake(t, WEFT__WAKE_TIMER);
}

static int do_wait(weft__loop *l, weft_task *t, const char *reason)
{
    if (unlikely(l->nosuspend))           /* kernel.h: weft__suspend_forbid */
        weft__panic("task '%s' blocked inside %s, which must not suspend", t->name,
                    l->nosuspend);
    t->state = WEFT__WAITING;
    t->reason = reason;
    t->wake = 0;
    weft__park(l);
    t->reason = NULL;
    t->seq++;                             /* late remote wake-ups now miss */
    return t->wake;
}

int weft__wait(weft_time op_deadline, int op_err, const char *reason)
{
    weft__loop *l = weft__cur_loop;
    weft_task *t = l->cur;
    int rc = weft__check(op_deadline, op_err);
    weft_time sdl = weft__deadline_of(t);
    weft_time dl = op_deadline < sdl ? op_deadline : sdl;
    if (!rc && dl != WEFT_FOREVER) {
        t->timer.fire = timer_fired;
        rc = weft__timer_arm(&l->timers, &t->timer, dl);
    }
    if (rc) {
        t->seq++;                         /* this wait is over: see do_wait */
        return rc;
    }
    rc = do_wait(l, t, reason);
    if (t->timer.idx != WEFT__TIMER_IDLE)
        weft__timer_cancel(&l->timers, &t->timer);
    if (rc == WEFT__WAKE_TIMER)
        rc = t->cancelled && !weft__shielded(t) ? -ECANCELED
                                                : timed_out(t, op_deadline, op_err);
    return rc;
}

int weft__wait_uncancellable(const char *reason)
{
    weft__loop *l = weft__cur_loop;
    weft_task *t = l->cur;
    t->nocancel = true;
    int rc = do_wait(l, t, reason);
    t->nocancel = false;
    return rc;
}

void weft__cancel(weft_task *t, bool by_group)
{
    if (t->state == WEFT__DEAD)
        return;
    t->cancelled = true;
    if (by_group)
        t->group_cancelled = true;
    if (t->state == WEFT__WAITING && !t->nocancel && !weft__shielded(t))
        weft__wake(t, -ECANCELED);
}

void weft__wake_remote(weft__loop *l, weft_task *t, uint32_t seq, int result)
{
    if (l == weft__cur_loop) {
        if (t->seq == seq)
            weft__wake(t, result);
        return;
    }
    pthread_mutex_lock(&l->inbox_lock);
    t->rseq = seq;
    t->rresult = result;
    if (!t->rqueued) {
        t->rqueued = true;
        t->rnext = l->inbox;
        l->inbox = t;
    }
    pthread_mutex_unlock(&l->inbox_lock);
    weft__loop_poke(l);
}

void weft__inbox_drain(weft__loop *l)
{
    atomic_store(&l->inbox_pending, false);
    pthread_mutex_lock(&l->inbox_lock);
    weft_task *list = l->inbox;
    l->inbox = NULL;
    /* reverse into arrival order while marking the nodes free */
    weft_task *fifo = NULL;
    while (list) {
        weft_task *n = list->rnext;
        list->rqueued = false;
        list->rnext = fifo;
        fifo = list;
        list = n;
    }
    /* results are read under the lock: a waker may be rewriting them */
    for (weft_task *t = fifo; t; t = t->rnext)
        if (t->rseq == t->seq)
            weft__wake(t, t->rresult);
    pthread_mutex_unlock(&l->inbox_lock);
}

/* Every task waits and nothing can ever wake one: no timer, no fd, no
 * other thread. Go panics here; weft logs the dump and cancels every task
 * so the program unwinds (weft_main then returns -EDEADLK). If that does
 * not get anything moving (tasks in shields without deadlines), abort. */
static bool deadlocked(weft__loop *l)
{
    if (l->runq_head || l->timers.n || l->fd_waits || l->remote_waits ||
        atomic_load(&l->inbox_pending) || atomic_load(&l->cancel_requested))
        return false;
    if (l->count > 1) {
        /* under weft_run another loop's failure may still cancel ours:
         * report once, keep waiting */
        if (!l->deadlocks++) {
            weft_log(WEFT_LOG_WARN, "deadlock? all %zu tasks of loop %d are waiting and only "
                     "another loop's failure can wake them", l->ntasks, l->index);
            weft__dump_log(l);
        }
        return false;
    }
    l->deadlocks++;
    weft_log(WEFT_LOG_ERROR, "deadlock: all %zu tasks of loop %d are waiting and nothing "
             "can wake them (no timer, fd or other thread); cancelling them all", l->ntasks,
             l->index);
    weft__dump_log(l);
    if (l->deadlocks > 1)
        weft__panic("deadlock in loop %d persists after cancelling every task", l->index);
    for (weft_task *t = l->all; t; t = t->all_next)
        weft__cancel(t, false);
    return true;
}

/* how long the loop may sleep: 0 with work at hand, else until its
 * next timer */
static weft_time sleep_for(weft__loop *l)
{
    if (l->runq_head)
        return 0;
    weft_time next = weft__timer_next(&l->timers);
    return next == WEFT_FOREVER ? WEFT_FOREVER : next - weft_now();
}

/* weft_set_poll_spin: polls without sleeping for up to l->spin, or until
 * the next timer; true when anything came (an fd's readiness, another
 * thread's poke: a wake-up, a cancel or a dump request) or the timer is
 * due, false when the loop should sleep now */
static bool spin(weft__loop *l, weft_time timeout)
{
    bool timer = timeout < l->spin;
    weft_time end = weft_now() + (timer ? timeout : l->spin);
    l->spins++;
    do {
        if (weft__poller_wait(l, 0))
            return true;
    } while (weft_now() < end);
    return timer;
}

/* The loop's wait for events. With a spin set and tasks waiting on fds
 * it polls first, as long as polling pays: a spin that found nothing
 * turns it off, a sleep shorter than the window back on. So a loop whose
 * replies come within the window never sleeps, and an idle one spins
 * once per lull, not at every timer. */
static void await_events(weft__loop *l, weft_time timeout)
{
    if (timeout <= 0 || !l->spin || !l->fd_waits) {
        weft__poller_wait(l, timeout);
        return;
    }
    if (l->spinning) {
        if (spin(l, timeout))
            return;
        l->spinning = false;
        timeout = sleep_for(l);
    }
    weft_time t0 = weft_now();
    weft__poller_wait(l, timeout);
    l->spinning = weft_now() - t0 < l->spin;
}

static void scheduler(weft__loop *l)
{
    while (l->root->state != WEFT__DEAD) {
        if (!l->runq_head && deadlocked(l))
            continue;
        await_events(l, sleep_for(l));
        if (l->timers.n)
            weft__timer_run(&l->timers, weft_now());
        if (unlikely(atomic_load_explicit(&l->cancel_requested, memory_order_relaxed)))
            weft__cancel(l->root, false);
        if (unlikely(atomic_load_explicit(&l->dump_requested, memory_order_relaxed))) {
            atomic_store(&l->dump_requested, false);
            weft__dump_log(l);
        }
        l->budget = BUDGET;
        weft_task *t = runq_pop(l);
        if (t)
            jump(l, NULL, t, false);
    }
}

/* ---- loop lifetime ------------------------------------------------------ */

static int loop_init(weft__loop *l, int index, int count)
{
    static _Atomic uint64_t next_id = 1;
    memset(l, 0, sizeof *l);
    l->id = atomic_fetch_add(&next_id, 1);
    l->index = index;
    l->count = count;
    int rc = weft__poller_open(l);
    if (rc)
        return rc;
    pthread_mutex_init(&l->inbox_lock, NULL);
    weft__stacks_init(&l->stacks, stack_size());
    l->spin = poll_spin();
    l->tid = gettid();
    l->thread = pthread_self();
#ifdef WEFT_ASAN
    pthread_attr_t attr;
    void *lo;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        pthread_attr_getstack(&attr, &lo, &l->sched_stack_size);
        l->sched_stack_lo = lo;
        pthread_attr_destroy(&attr);
    }
#endif
#ifdef WEFT_TSAN
    l->tsan_fiber = __tsan_get_current_fiber();
#endif
    if (weft__overflow_init(l) < 0) {
        rc = -(errno ? errno : ENOMEM);
        weft__stacks_free(&l->stacks);
        pthread_mutex_destroy(&l->inbox_lock);
        weft__poller_close(l);
        return rc;
    }
    return 0;
}

static void loop_fini(weft__loop *l)
{
    weft__stall_unregister(l);
    weft__overflow_fini(l);
    weft__tasks_free(l);
    weft__stacks_free(&l->stacks);
    weft__heap_free(&l->timers);
    weft__fds_free(l);
    pthread_mutex_destroy(&l->inbox_lock);
    weft__poller_close(l);
}

/* Runs a whole loop on this thread. *out (under out_mu) names the loop
 * while it can take weft__loop_request_cancel (for weft_run). */
static void publish(weft__loop **out, pthread_mutex_t *mu, weft__loop *l)
{
    if (!out)
        return;
    pthread_mutex_lock(mu);
    *out = l;
    pthread_mutex_unlock(mu);
}

int weft__loop_main(int index, int count, weft__loop **out, pthread_mutex_t *out_mu,
                    weft_fn fn, void *arg, void *site)
{
    if (weft__cur_loop)
        return -EBUSY;
    weft__loop *l = weft__malloc(sizeof *l);
    if (!l)
        return -ENOMEM;
    int rc = loop_init(l, index, count);
    if (rc < 0) {
        weft__free(l);
        return rc;
    }
    weft__cur_loop = l;
    weft__tls_loop_id = l->id;
    l->root = weft__task_new(l, fn, arg, "main", site);
    if (!l->root) {
        weft__cur_loop = NULL;
        weft__tls_loop_id = 0;
        loop_fini(l);
        weft__free(l);
        return -ENOMEM;
    }
    weft__ready(l, l->root);
    weft__stall_register(l);
    weft__dump_install();
    publish(out, out_mu, l);
    scheduler(l);
    rc = l->root->result;
    if (l->deadlocks && rc == -ECANCELED)
        rc = -EDEADLK;
    publish(out, out_mu, NULL);
    weft__cur_loop = NULL;
    weft__tls_loop_id = 0;
    loop_fini(l);
    weft__free(l);
    return rc;
}

void weft__loop_poke(weft__loop *l)
{
    if (!atomic_exchange(&l->inbox_pending, true))
        weft__poller_poke(l);
}

void weft__loop_request_cancel(weft__loop *l)
{
    atomic_store(&l->cancel_requested, true);
    weft__loop_poke(l);
}

int weft_main(weft_fn fn, void *arg)
{
    if (!fn)
        return -EINVAL;
    weft__stop_reset(-1);                 /* a stop belongs to the run it was made in */
    return weft__loop_main(0, 1, NULL, NULL, fn, arg, __builtin_return_address(0));
}

int weft_loop_index(void)
{
    return weft__cur_loop ? weft__cur_loop->index : -EPERM;
}

int weft_loop_count(void)
{
    return weft__cur_loop ? weft__cur_loop->count : -EPERM;
}

/* ---- the simplest blocking calls ---------------------------------------- */

int weft_yield(void)
{
    weft__loop *l = weft__cur_loop;
    weft_task *t = l ? l->cur : NULL;
    if (unlikely(!t))
        return -EPERM;
    if (unlikely(t->cancelled) && !weft__shielded(t))
        return -ECANCELED;
    weft__ready(l, t);
    weft__park(l);
    return 0;
}

int weft_sleep(weft_time duration)
{
    weft__loop *l = weft__cur_loop;
    if (unlikely(!l || !l->cur))
        return -EPERM;
    if (duration <= 0) {
        int rc = weft__check(WEFT_FOREVER, 0);
        return rc ? rc : weft_yield();
    }
    /* the sleep's own deadline "fails" with 0: only a scope, or a cancel,
     * ends a sleep with an error */
    return weft__wait(weft__after(duration), 0, "sleep");
}
