/*
 * The stall detector: names the task that holds a loop too long.
 *
 * A watchdog thread (one per process) samples each loop's switch counter
 * every threshold/4. The loop thread never reads the clock for this: it
 * only bumps the counter and publishes the running task at each switch.
 * When the counter has not moved for the threshold while a task runs, the
 * watchdog reports that task — its name, spawn site, how long it has held
 * the loop, and its stack. The stack is captured by a signal sent to the
 * loop thread, unless /proc says the thread sits in a blocking syscall:
 * then the syscall is reported instead and no signal is sent, so no call
 * of the program ever sees EINTR because of us. (A thread that enters a
 * syscall in the microseconds between the check and the signal can still
 * see one; SA_RESTART covers most calls.) When the task finally yields,
 * the loop thread itself logs the total (weft__stall_yielded): the
 * watchdog hands it the stall (which run, since when, whose) before its
 * slow report, and the loop checks by the switch count that the switch it
 * is making ends that run, so the total names the task that stalled even
 * when the stall ends while the watchdog is still reporting it.
 *
 * Registry of loops: also used by the SIGQUIT dump (dump.c).
 */
#include <errno.h>
#include <execinfo.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define MAX_FRAMES 48

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static weft__loop *loops;
static bool watchdog_started;
static weft_time threshold = -1;
static weft_metric *stalls_metric;

/* stack capture hand-off between the watchdog and a loop thread's handler */
static void *frames[MAX_FRAMES];
static _Atomic int nframes;
static int capture_sig;

static void on_capture(int sig)
{
    (void)sig;
    int saved = errno;
    int n = backtrace(frames, MAX_FRAMES);
    atomic_store(&nframes, n > 0 ? n : 1);
    errno = saved;
}

static weft_time stall_threshold(void)
{
    const char *e = getenv("WEFT_STALL_MS");
    if (!e || !*e)
        return 100 * WEFT_MS;
    double ms = atof(e);
    return ms > 0 ? (weft_time)(ms * WEFT_MS) : 0;
}

/* "nanosleep" etc. for the calls a stalled thread is likely to sit in */
static const char *syscall_name(long nr)
{
    switch (nr) {
#ifdef __x86_64__
    case 0: return "read";
    case 1: return "write";
    case 7: return "poll";
    case 23: return "select";
    case 35: return "nanosleep";
    case 202: return "futex";
    case 232: return "epoll_wait";
    case 230: return "clock_nanosleep";
    case 43: return "accept";
    case 42: return "connect";
    case 61: return "wait4";
    case 270: return "pselect6";
    case 271: return "ppoll";
    case 17: return "pread64";
    case 45: return "recvfrom";
    case 44: return "sendto";
#elif defined(__aarch64__)
    case 63: return "read";
    case 64: return "write";
    case 101: return "nanosleep";
    case 115: return "clock_nanosleep";
    case 98: return "futex";
    case 73: return "ppoll";
    case 72: return "pselect6";
    case 22: return "epoll_pwait";
    case 203: return "connect";
    case 202: return "accept";
    case 260: return "wait4";
#endif
    }
    return "syscall";
}

/* -1 when the thread runs user code, else the syscall it is blocked in */
static long blocked_syscall(pid_t tid)
{
    char path[64], buf[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)tid);
    FILE *f = fopen(path, "re");
    long nr = -1;
    if (!f)
        return -1;
    if (fgets(buf, sizeof buf, f) && strncmp(buf, "running", 7) != 0)
        nr = strtol(buf, NULL, 10);
    fclose(f);
    return nr;
}

static void append(char *buf, size_t size, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void append(char *buf, size_t size, size_t *len, const char *fmt, ...)
{
    if (*len >= size)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *len, size - *len, fmt, ap);
    va_end(ap);
    if (n > 0)
        *len += (size_t)n;
}

struct lines {
    char *msg;
    size_t size, *len;
};

static void stack_line(void *ctx, int i, const char *s)
{
    struct lines *o = ctx;
    append(o->msg, o->size, o->len, "\n    #%d %s", i, s);
}

struct one {
    char *buf;
    size_t size;
};

static void one_name(void *ctx, int i, const char *s)
{
    struct one *o = ctx;
    if (i == 1)
        snprintf(o->buf, o->size, "%s", s);
}

/* What a stall's report needs, taken under the registry's lock (the loop
 * cannot go away meanwhile); named and logged after it (symbolize is slow:
 * loops starting or ending must not wait for it). */
struct stall {
    char name[sizeof ((weft_task *)0)->name];
    void *site;
    int index;
    weft_time held;
    long syscall;                         /* >= 0: blocked in it, no stack */
    int n;
    void *frames[MAX_FRAMES];
};

static void capture(weft__loop *l, weft_task *t, weft_time held, struct stall *st)
{
    memcpy(st->name, t->name, sizeof st->name);
    st->site = t->spawn_site;
    st->index = l->index;
    st->held = held;
    st->n = 0;
    st->syscall = blocked_syscall(l->tid);
    if (st->syscall >= 0)
        return;
    atomic_store(&nframes, 0);
    if (pthread_kill(l->thread, capture_sig) == 0) {
        struct timespec ms = { 0, 1000000 };
        for (int i = 0; i < 200 && !atomic_load(&nframes); i++)
            nanosleep(&ms, NULL);
    }
    st->n = atomic_load(&nframes);
    memcpy(st->frames, frames, sizeof st->frames);
}

static void report(const struct stall *st)
{
    char site[160], msg[3800];
    size_t len = 0;
    void *spawn[2] = { NULL, st->site };  /* a return address: second place */
    struct one o = { site, sizeof site };
    weft__symbolize(spawn, 2, one_name, &o);
    append(msg, sizeof msg, &len,
           "stall: task '%.*s' (spawned at %s) has held loop %d for %.1f ms without yielding",
           (int)sizeof st->name, st->name, site, st->index, (double)st->held / WEFT_MS);
    if (st->syscall >= 0) {
        append(msg, sizeof msg, &len, "; blocked in syscall %s (%ld)", syscall_name(st->syscall),
               st->syscall);
    } else {
        append(msg, sizeof msg, &len, "; stack:");
        /* frames 0-1 are the handler and the signal trampoline; frame 2 is
         * where the signal caught the task (not a return address) */
        struct lines out = { msg, sizeof msg, &len };
        if (st->n > 2)
            weft__symbolize((void *const *)st->frames + 2, st->n - 2, stack_line, &out);
        else
            append(msg, sizeof msg, &len, " (not captured)");
    }
    weft_log(WEFT_LOG_WARN, "%s", msg);
}

/* Hands a stall to the loop thread, before the slow report (the run may
 * end meanwhile). The fields are the watchdog's while stall_reported is 0
 * and the loop's while it is 1: a stall whose total the loop has not
 * logged yet keeps them (its run ended just as the watchdog looked, and
 * the loop logs it at its next switch). */
static void hand_over(weft__loop *l, weft_task *t, uint64_t s, weft_time held)
{
    if (atomic_load_explicit(&l->stall_reported, memory_order_acquire))
        return;
    l->stall_switch = s;
    l->stall_held = held;
    memcpy(l->stall_name, t->name, sizeof l->stall_name);
    atomic_store_explicit(&l->stall_since, l->wd_since, memory_order_relaxed);
    atomic_store_explicit(&l->stall_reported, 1, memory_order_release);
}

/* One look at one loop, under reg_mu. */
/* true when l stalls: its report's material is in st */
static bool watch(weft__loop *l, weft_time now, struct stall *st)
{
    uint64_t s = atomic_load_explicit(&l->switches, memory_order_acquire);
    weft_task *t = atomic_load_explicit(&l->running, memory_order_acquire);
    /* t ran during run s only if no switch came between the two loads */
    if (s != l->wd_seen || atomic_load_explicit(&l->switches, memory_order_relaxed) != s) {
        l->wd_seen = atomic_load_explicit(&l->switches, memory_order_relaxed);
        l->wd_since = now;
        return false;
    }
    if (!t || l->wd_reported == s + 1 || now - l->wd_since < threshold)
        return false;
    l->wd_reported = s + 1;
    if (stalls_metric)
        weft_metric_add(stalls_metric, 1);
    hand_over(l, t, s, now - l->wd_since);
    capture(l, t, now - l->wd_since, st);
    return true;
}

static void *watchdog(void *unused)
{
    (void)unused;
    weft_time tick = threshold / 4;
    if (tick < WEFT_MS)
        tick = WEFT_MS;
    if (tick > 50 * WEFT_MS)
        tick = 50 * WEFT_MS;
    struct timespec ts = { tick / WEFT_SEC, tick % WEFT_SEC };
    static struct stall found[4];         /* this thread's alone */
    for (;;) {
        nanosleep(&ts, NULL);
        int n = 0;
        pthread_mutex_lock(&reg_mu);
        weft_time now = weft_now();
        for (weft__loop *l = loops; l && n < 4; l = l->reg_next)
            n += watch(l, now, &found[n]);
        pthread_mutex_unlock(&reg_mu);
        for (int i = 0; i < n; i++)
            report(&found[i]);
    }
    return NULL;
}

void weft__stall_register(weft__loop *l)
{
    pthread_mutex_lock(&reg_mu);
    if (threshold < 0) {
        threshold = stall_threshold();
        stalls_metric = weft_counter("weft_loop_stalls_total",
                                     "Times a task held a loop past WEFT_STALL_MS");
        void *warm[2];
        backtrace(warm, 2);               /* loads libgcc_s now, not in a handler */
        capture_sig = SIGRTMAX - 3;
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_capture;
        sa.sa_flags = SA_RESTART;
        sigemptyset(&sa.sa_mask);
        sigaction(capture_sig, &sa, NULL);
    }
    l->wd_seen = atomic_load(&l->switches);
    l->wd_since = weft_now();
    l->wd_reported = 0;
    l->reg_next = loops;
    loops = l;
    if (threshold > 0 && !watchdog_started && weft__thread_spawn(watchdog, NULL) == 0)
        watchdog_started = true;
    pthread_mutex_unlock(&reg_mu);
}

void weft__stall_unregister(weft__loop *l)
{
    pthread_mutex_lock(&reg_mu);
    weft__loop **pp = &loops;
    while (*pp && *pp != l)
        pp = &(*pp)->reg_next;
    if (*pp)
        *pp = l->reg_next;
    pthread_mutex_unlock(&reg_mu);
}

/* On the loop thread, at the first switch after a stall was handed over,
 * before the switch counts. */
void weft__stall_yielded(weft__loop *l)
{
    weft_time since = atomic_load_explicit(&l->stall_since, memory_order_relaxed);
    if (atomic_load_explicit(&l->switches, memory_order_relaxed) == l->stall_switch && l->cur)
        weft_log(WEFT_LOG_WARN, "stall: task '%s' held loop %d for %.1f ms in total before "
                 "yielding", l->cur->name, l->index, (double)(weft_now() - since) / WEFT_MS);
    else                                  /* it ended as the watchdog looked */
        weft_log(WEFT_LOG_WARN, "stall: task '%s' held loop %d for at least %.1f ms before "
                 "yielding", l->stall_name, l->index, (double)l->stall_held / WEFT_MS);
    atomic_store_explicit(&l->stall_reported, 0, memory_order_release);
}

bool weft__loop_find(uint64_t id, int *index, int *tid)
{
    bool found = false;
    pthread_mutex_lock(&reg_mu);
    for (weft__loop *l = loops; l && !found; l = l->reg_next)
        if (l->id == id) {
            *index = l->index;
            *tid = (int)l->tid;
            found = true;
        }
    pthread_mutex_unlock(&reg_mu);
    return found;
}

/* Asks every loop to log its task dump at its next turn (SIGQUIT). */
void weft__loops_request_dump(void)
{
    pthread_mutex_lock(&reg_mu);
    for (weft__loop *l = loops; l; l = l->reg_next) {
        atomic_store(&l->dump_requested, true);
        weft__loop_poke(l);
    }
    pthread_mutex_unlock(&reg_mu);
}
