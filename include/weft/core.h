/*
 * weft core: loops, tasks, deadlines, cancellation, structured concurrency.
 *
 * MODEL
 *   One event loop per thread. A task is a stackful coroutine: plain
 *   straight-line C that suspends only inside weft calls (sleep, sem, chan,
 *   fd waits, network I/O). Tasks of a loop never run in parallel, so they
 *   share loop-local data without locks. Every task belongs to a group that
 *   its creator must wait for (structured concurrency); no task outlives its
 *   group and no error is lost.
 *
 * ERRORS
 *   0 (or a documented count) on success, a negative code on failure; see
 *   weft/error.h. Every call that needs a running task returns -EPERM when
 *   made outside one; calls that cannot return an error abort with a
 *   message naming the call instead. NULL or invalid arguments give -EINVAL.
 *   Loop-local objects used from another loop give -EXDEV.
 *
 * DEADLINES
 *   weft_scope_enter(&s, 5 * WEFT_SEC) ... weft_scope_exit(&s) is the C form
 *   of `async with asyncio.timeout(5)`. Scopes nest, the earliest deadline
 *   in force wins (an inner scope can only shorten), and expiry is level
 *   triggered: once the deadline has passed, every blocking call inside the
 *   scope returns -ETIMEDOUT at once. Scopes are strictly LIFO (misuse
 *   aborts, naming the task) and must all be exited before the task
 *   returns. A child task inherits its spawner's deadline in force.
 *
 * CANCELLATION
 *   Delivered at suspension points: the blocked call returns -ECANCELED and
 *   so does every later blocking call of that task, until it returns. When
 *   a deadline and a cancellation both apply, -ECANCELED wins. A shielded
 *   scope ignores outer cancellation and outer deadlines (it has its own,
 *   short, deadline): use it for cleanup that must still do I/O. A wake-up
 *   that has already handed something over (a permit, a lock, a channel
 *   element) wins over a later cancel: the call returns success and the
 *   next blocking call reports the cancellation.
 *
 * STACKS
 *   Each task runs on its own stack: 256 KiB of address space by default
 *   (weft_set_stack_size), reserved with MAP_NORESERVE in slabs of 256
 *   stacks and committed by the kernel only as pages are touched, so an
 *   idle task costs the one or two pages it really used. A stack is taken
 *   when the task first runs (short-lived tasks reuse hot stacks), returned
 *   to a per-loop pool when it ends, and the pool is trimmed with
 *   MADV_DONTNEED beyond 256 hot stacks. Overflow detection:
 *     - a PROT_NONE guard page below each stack while the process has map
 *       count headroom: each guard costs two VMAs, and weft keeps at least
 *       half of vm.max_map_count free for malloc, threads and libraries
 *       (about 16,000 guarded stacks on a stock kernel; $WEFT_STACK_GUARDS
 *       caps it lower). An overflow into a guard dies with SIGSEGV after
 *       "weft: stack overflow in task 'NAME' (spawned at MODULE(+OFFSET)
 *       [ADDRESS]; ...)": the handler cannot symbolize (dladdr is not
 *       async-signal-safe); `addr2line -f -e MODULE OFFSET` does.
 *     - beyond that, best effort: a canary word just below each stack and a
 *       stack-pointer bound, both checked at every switch out of the task;
 *       a smashed canary aborts naming the task. A frame that jumps over
 *       the canary into a neighbour's stack without switching is not
 *       caught; keep large buffers off the stack.
 *   weft itself is built with -fstack-clash-protection. One million
 *   concurrently sleeping tasks work on a stock kernel
 *   (vm.overcommit_memory 0, vm.max_map_count 65530).
 */
#ifndef WEFT_CORE_H
#define WEFT_CORE_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef int64_t weft_time;                 /* nanoseconds, CLOCK_MONOTONIC */
#define WEFT_NS 1LL
#define WEFT_US 1000LL
#define WEFT_MS 1000000LL
#define WEFT_SEC 1000000000LL
#define WEFT_FOREVER INT64_MAX             /* "no deadline" */

typedef int (*weft_fn)(void *arg);         /* returns 0 or a negative code (a task
                                              returning > 0 is logged, fails -EINVAL) */

typedef struct weft_task weft_task;
typedef struct weft_group weft_group;

/* ---- loops -------------------------------------------------------------- */

/* Runs fn(arg) as the root task of a new loop on this thread and returns
 * its result once it and everything it started has finished.
 * -EBUSY if this thread already runs a loop, -ENOMEM.
 *
 * Deadlock: when every task waits and nothing can wake any of them (no
 * armed deadline, no fd wait, no wait another thread can end), the loop
 * logs an error with the task dump and cancels every task; weft_main then
 * returns -EDEADLK in place of the root's -ECANCELED. (Under weft_run, where
 * another loop's failure could still cancel it, a warning is logged.) */
int weft_main(weft_fn fn, void *arg);

/* Runs one loop per thread (threads 0 = one per core), each running
 * fn(arg) as its root task; weft_loop_index() tells them apart. The first
 * loop to fail cancels the others; its error is returned (0 if all
 * succeeded). -EINVAL for threads < 0. */
int weft_run(int threads, weft_fn fn, void *arg);

/* ---- graceful stop ------------------------------------------------------ */

typedef struct weft_run_opts {
    int threads;                  /* as weft_run's */
    bool stop_on_signals;         /* SIGTERM and SIGINT start a graceful stop */
    weft_time grace;              /* from the stop to cancelling the roots; 0: 10 s */
} weft_run_opts;

/* weft_run with options. Without stop_on_signals a SIGTERM kills the
 * process at once, as it would any program (weft installs no handler).
 * With it, SIGTERM and SIGINT are blocked in every thread for the run and
 * the first one starts a graceful stop: it is logged ("SIGTERM: stopping
 * gracefully"), weft_stopping() turns true and weft_stop_wait() returns in
 * every loop, so the program can stop taking work (close its listeners)
 * and finish what it has; when its roots return, weft_run_with returns
 * their result. If they have not returned when the grace is over (or at a
 * second signal), every root is cancelled and the result is -ECANCELED
 * (or a root's error); a third signal exits the process at once (128 +
 * the signal). weft_stop() starts the same stop from code. Signals left
 * pending at the end are dropped and the caller's mask restored. The mask
 * reaches the threads the run starts: block SIGTERM and SIGINT yourself in
 * threads you started before it, or the kernel may deliver the signal to
 * one of them and kill the process. A stop belongs to the run it was made
 * in: every weft_run and weft_run_with starts without one (one run at a
 * time uses it). (weft_http_server_run does all this for a server.) */
int weft_run_with(const weft_run_opts *o, weft_fn fn, void *arg);

/* Starts the graceful stop from code, from any thread (not from a signal
 * handler): weft_stop_wait returns everywhere; under weft_run_with the
 * grace starts too. */
void weft_stop(void);
bool weft_stopping(void);
/* Waits until a stop starts: 0 (at once if it has), -ECANCELED,
 * -ETIMEDOUT, -EPERM outside a task. */
int weft_stop_wait(void);

/* Index of the calling loop in weft_run (0 under weft_main), -EPERM outside. */
int weft_loop_index(void);

/* Number of loops of the weft_run that started the calling loop (1 under
 * weft_main), -EPERM outside a loop. */
int weft_loop_count(void);

/* Stack size for tasks of loops created after this call (rounded up to
 * pages, at least 16 KiB). Default 256 KiB or $WEFT_STACK_KB. */
void weft_set_stack_size(size_t bytes);

/* Busy polling, off by default: before a loop of those created after this
 * call sleeps while any task waits on an fd (an accept, a read, a
 * PostgreSQL reply), it polls without sleeping for up to ns (0: never; at
 * most 1 s; default $WEFT_POLL_SPIN_US microseconds, else 0). A reply
 * that comes within the window finds the loop awake, so its sender does
 * not pay for waking an idle core (against PostgreSQL on another core of
 * this VM that wake-up was ~10 % of the server's CPU per point select;
 * with a 50 us window: 12-30 % more point selects on exclusive
 * connections, 11-16 % pipelined). It adapts: a spin that found nothing
 * turns spinning off until a sleep ends within the window again, so an
 * idle loop spins once per lull. The price is CPU: a loop whose replies keep coming
 * within the window never sleeps. For a loop with a core of its own,
 * never where it shares one with the servers it waits on. */
void weft_set_poll_spin(weft_time ns);

/* ---- time --------------------------------------------------------------- */

weft_time weft_now(void);                  /* reads the clock on every call */

/* The deadline in force for the calling task (absolute, weft_now() base),
 * WEFT_FOREVER if none or outside a task. */
weft_time weft_deadline(void);

/* ---- tasks -------------------------------------------------------------- */

/* Lets every other ready task run once. 0, or -ECANCELED (-EPERM outside). */
int weft_yield(void);

/* Sleeps for duration (<= 0 just yields). 0 when the time has passed,
 * -ETIMEDOUT when a scope's deadline came first, -ECANCELED. */
int weft_sleep(weft_time duration);

/* The calling task, or NULL outside a task. */
weft_task *weft_self(void);

/* A task's name as given to weft_spawn ("main" for the root task). */
const char *weft_task_name(const weft_task *t);

/* Cancels a task of the calling loop (see CANCELLATION). A task may cancel
 * itself; its next blocking call returns -ECANCELED. -EXDEV, -EINVAL. */
int weft_task_cancel(weft_task *t);

/* True when the calling task has been cancelled (even inside a shield). */
bool weft_cancelled(void);

/* ---- groups and supervisors --------------------------------------------- */

/* A new group owned by the calling task. NULL with errno EPERM outside a
 * task, ENOMEM. The owner must weft_group_wait() it; if the owner returns
 * first, the group is cancelled and waited for, a warning names the task,
 * and a child's failure becomes the owner's result if it returned 0. */
weft_group *weft_group_new(void);

/* Starts fn(arg) as a child task; it first runs after the caller suspends.
 * name is copied (truncated to 31 bytes; NULL gives "task"). The child
 * inherits the caller's deadline in force, except in a supervisor: there
 * it starts without one (background work outlives the request that
 * started it; bound it with a scope of its own). Returns 0, -EINVAL (NULL g or
 * fn), -ECANCELED (group cancelled or closing), -EXDEV, -EPERM, -ENOMEM.
 * Once 0 is returned, fn will run: a child cancelled before it first ran
 * still runs (its first blocking call returns -ECANCELED), so arg is never
 * leaked. */
int weft_spawn(weft_group *g, weft_fn fn, void *arg, const char *name);

/* Waits for every child, frees g, and returns the first failure in
 * completion order (0 if none). Children's -ECANCELED caused by the group
 * itself (a sibling's failure, weft_group_cancel) is not a failure. If the
 * waiter is cancelled or its deadline passes while waiting, it cancels the
 * children, still joins them all, frees g and returns -ECANCELED or
 * -ETIMEDOUT. -EPERM when the caller is not the owner (g is not freed).
 * On a supervisor this is weft_supervisor_close(g, WEFT_FOREVER). */
int weft_group_wait(weft_group *g);

/* Cancels every child, now and spawned later (spawn returns -ECANCELED). */
void weft_group_cancel(weft_group *g);

/* Number of children still running. */
int weft_group_size(const weft_group *g);

/* A supervisor: a group for background work. A failing child is reported
 * to on_error(task name, code, ctx) on the loop thread as it exits, and
 * does not cancel its siblings. NULL with errno EINVAL for a NULL
 * on_error, EPERM outside a task, ENOMEM. */
weft_group *weft_supervisor_new(void (*on_error)(const char *task, int err, void *ctx),
                                void *ctx);

/* Stops new spawns (-ECANCELED), waits up to grace for the children,
 * cancels the rest (not reported as errors), joins them, frees s. Returns
 * 0, or -ETIMEDOUT when some had to be cancelled (-ECANCELED if the
 * closer itself was cancelled). Closed with grace 0 when its owner
 * returns without closing it. -EPERM for a non-owner or non-supervisor. */
int weft_supervisor_close(weft_group *s, weft_time grace);

/* ---- deadline scopes ---------------------------------------------------- */

/* Caller-owned; the fields are private. */
typedef struct weft_scope {
    weft_time deadline_;          /* own absolute deadline */
    weft_time in_force_;          /* earliest deadline in force inside */
    struct weft_scope *prev_;
    weft_task *task_;
    bool shielded_, shield_in_force_, caught_;
} weft_scope;

/* Enters a scope whose deadline is now + timeout (timeout <= 0: already
 * expired; WEFT_FOREVER: none). Aborts outside a task. */
void weft_scope_enter(weft_scope *s, weft_time timeout);

/* The same with an absolute deadline (weft_now() base). */
void weft_scope_enter_at(weft_scope *s, weft_time deadline);

/* A shielded scope: outer cancellation and outer deadlines do not apply
 * inside it, only its own deadline (keep it short). */
void weft_scope_enter_shielded(weft_scope *s, weft_time timeout);

/* Leaves s, which must be the innermost scope (else aborts naming the
 * task). True when a call inside s was interrupted by s's own deadline. */
bool weft_scope_exit(weft_scope *s);

/* ---- fds and signals ---------------------------------------------------- */

#define WEFT_READ 1
#define WEFT_WRITE 2

/* Waits until fd is readable and/or writable (level semantics: returns at
 * once if it already is). 0, -ETIMEDOUT, -ECANCELED, -EBADF (fd forgotten
 * while waiting), -EBUSY (another task already waits for that direction),
 * -EINVAL, -EPERM. Call weft_fd_forget(fd) before closing a waited-on fd. */
int weft_fd_wait(int fd, int events);

/* weft_fd_wait with a timeout of its own, as weft_conn's calls have (a
 * libpq or c-ares socket): waits until fd is ready for one of events, at
 * most timeout (WEFT_FOREVER: no limit, 0: only look, without waiting;
 * the scope and cancellation still apply). Returns which of events fired (WEFT_READ, WEFT_WRITE or both,
 * > 0; a hang-up or an error counts as both, so the next read or write
 * sees it), or timeout_err when the timeout passes (a negative code the
 * caller picks, e.g. -WEFT_EREAD_TIMEOUT), -ETIMEDOUT (scope),
 * -ECANCELED, -EBADF (forgotten while waiting), -EBUSY, -EINVAL (also for
 * timeout_err >= 0), -EPERM. */
int weft_fd_wait_for(int fd, int events, weft_time timeout, int timeout_err);

/* Drops weft's registration of fd; tasks waiting on it get -EBADF. */
void weft_fd_forget(int fd);

/* Blocks the signals in set on the calling thread (they stay blocked) and
 * waits for one through a signalfd. Returns the signal number, -ECANCELED,
 * -ETIMEDOUT, -EINVAL, -EPERM. Threads weft starts block all signals; other
 * threads of the program should block these signals too. sigset_t is
 * POSIX: in strict ISO C (-std=c11 without _POSIX_C_SOURCE) this one call
 * is not declared. */
#ifdef _POSIX_C_SOURCE
int weft_signal_wait(const sigset_t *set);
#endif

/* ---- blocking work ------------------------------------------------------ */

/* Runs fn(arg) on the blocking thread pool and returns fn's value
 * unchanged; the loop serves other tasks meanwhile. Cancelled (or past its
 * deadline) while queued: the job is dropped, -ECANCELED (-ETIMEDOUT) at
 * once. While running: waits for fn to finish (arg stays valid), then
 * -ECANCELED (-ETIMEDOUT). -EPERM outside a task. */
int weft_run_blocking(weft_fn fn, void *arg);

/* Fire-and-forget: runs fn(arg) on the pool and then dtor(arg) (NULL dtor:
 * nothing). The pool owns arg from this call on, even on failure (-ENOMEM
 * still calls dtor). A non-zero result is logged at WARN. Callable from any
 * thread. */
int weft_run_blocking_detached(weft_fn fn, void *arg, void (*dtor)(void *arg));

/* Maximum pool threads (default 16 or $WEFT_BLOCKING_THREADS); takes effect
 * for threads started later. -EINVAL for n < 1. */
int weft_blocking_set_threads(int n);

/* ---- introspection ------------------------------------------------------ */

/* THE STALL DETECTOR. A task that holds its loop (runs without reaching a
 * suspension point) past WEFT_STALL_MS milliseconds (default 100; 0 turns
 * the detector off) is named at once, while it still holds it, in one
 * WARN line:
 *
 *   stall: task 'import' (spawned at handle_upload (app.c:88)) has held
 *   loop 0 for 100.2 ms without yielding; stack:
 *       #0 parse_csv (app.c:41)
 *       #1 import_task (app.c:97) ...
 *
 * (or "; blocked in syscall read (0)" when the thread sits in a blocking
 * system call: then no signal is sent, so no call sees EINTR because of
 * it), and again when it yields: "stall: task 'import' held loop 0 for
 * 412.0 ms in total before yielding". Frames are named with file:line
 * through libdw where weft was built with it and the program has debug
 * information, else by the dynamic symbol table (link with -rdynamic to
 * see your own functions). The counter weft_loop_stalls_total counts them.
 * Cost: the loop only bumps a counter at each task switch (no clock read);
 * one watchdog thread per process wakes every threshold/4 to compare the
 * counters, and a stall costs one signal to the loop thread to capture its
 * stack. Move CPU-bound or blocking work to weft_run_blocking. */

/* Writes one line per task of the calling loop (name, spawn site, state,
 * wait reason) into buf, NUL-terminated; returns the length the full dump
 * needs (snprintf-like: weft_task_dump(NULL, 0) + 1 bytes hold it all).
 * SIGQUIT prints every loop's dump to the log (the process keeps running)
 * unless the program installed its own handler before the first loop
 * started. In the log (SIGQUIT, deadlock report) a dump is complete however
 * many tasks there are: it comes at INFO level as several messages of whole
 * lines, each under weft_log's 4 KiB, the first headed "task dump of loop
 * N (M tasks):", the others "task dump of loop N, continued:". */
size_t weft_task_dump(char *buf, size_t size);

/* ---- allocator hook ----------------------------------------------------- */

/* Every allocation weft makes goes through these (NULL restores malloc).
 * Tests use it to fail each allocation in turn; weft then returns -ENOMEM
 * and leaks nothing. Set it while no loop runs. */
typedef struct weft_allocator {
    void *(*malloc)(size_t size);
    void *(*realloc)(void *p, size_t size);
    void (*free)(void *p);
} weft_allocator;
void weft_set_allocator(const weft_allocator *a);

#ifdef __cplusplus
}
#endif

#endif
