/*
 * Task dump: every task of a loop with its name, spawn site, state and
 * wait reason, like Go's goroutine dump. By API (weft_task_dump) for the
 * calling loop, and on SIGQUIT for every loop: the signal handler only
 * posts a semaphore; a helper thread asks each loop to log its own dump at
 * its next turn, so no loop's tasks are read from another thread.
 */
#include <dlfcn.h>
#include <errno.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* "symbol+0xoff", else "file+0xoff", else the bare address. Not in a
 * signal handler: dladdr takes the loader's lock. */
void weft__site_name(void *addr, char *buf, size_t size)
{
    Dl_info di;
    if (!addr || !dladdr(addr, &di))      /* di is undefined when dladdr fails */
        snprintf(buf, size, "%p", addr);
    else if (di.dli_sname)
        snprintf(buf, size, "%s+0x%lx", di.dli_sname,
                 (unsigned long)((char *)addr - (char *)di.dli_saddr));
    else if (di.dli_fname)
        snprintf(buf, size, "%s+0x%lx", strrchr(di.dli_fname, '/') ?
                 strrchr(di.dli_fname, '/') + 1 : di.dli_fname,
                 (unsigned long)((char *)addr - (char *)di.dli_fbase));
    else
        snprintf(buf, size, "%p", addr);
}

static const char *state_name(int s)
{
    switch (s) {
    case WEFT__READY: return "ready";
    case WEFT__RUNNING: return "running";
    case WEFT__WAITING: return "waiting";
    case WEFT__DEAD: return "done";
    }
    return "?";
}

/* One task's line, snprintf-like. */
static int task_line(const weft_task *t, char *buf, size_t size)
{
    char site[128];
    weft__site_name(t->spawn_site, site, sizeof site);
    return snprintf(buf, size, "task '%s' %s%s%s%s, spawned at %s\n", t->name,
                    state_name(t->state), t->reason ? " on " : "", t->reason ? t->reason : "",
                    t->cancelled ? " (cancelled)" : "", site);
}

static size_t dump(weft__loop *l, char *buf, size_t size)
{
    size_t len = 0;
    for (weft_task *t = l->all; t; t = t->all_next) {
        int n = task_line(t, len < size ? buf + len : NULL, len < size ? size - len : 0);
        if (n > 0)
            len += (size_t)n;
    }
    if (size)
        buf[len < size ? len : size - 1] = 0;
    return len;
}

size_t weft_task_dump(char *buf, size_t size)
{
    weft__loop *l = weft__cur_loop;
    if (!l) {
        if (size)
            buf[0] = 0;
        return 0;
    }
    return dump(l, buf, size);
}

/* A log message holds at most 4 KiB (weft_log), so a dump goes out in
 * messages of whole lines, each under that: every task is in the log
 * however many there are, and nothing is allocated (the deadlock report
 * may come when memory is short). */
#define CHUNK 3072
#define LINE 512                          /* a 31-byte name, a short reason, a site */

static void flush(char *chunk, size_t len)
{
    weft_log(WEFT_LOG_INFO, "%.*s", (int)len - 1, chunk);   /* the sink adds the \n */
}

void weft__dump_log(weft__loop *l)
{
    char chunk[CHUNK], line[LINE];
    size_t len = (size_t)snprintf(chunk, sizeof chunk, "task dump of loop %d (%zu tasks):\n",
                                  l->index, l->ntasks);
    for (weft_task *t = l->all; t; t = t->all_next) {
        int n = task_line(t, line, sizeof line);
        if (n <= 0)
            continue;
        if ((size_t)n >= sizeof line) {   /* clipped, still one line */
            n = sizeof line - 1;
            line[n - 1] = '\n';
        }
        if (len + (size_t)n > sizeof chunk) {
            flush(chunk, len);
            len = (size_t)snprintf(chunk, sizeof chunk, "task dump of loop %d, continued:\n",
                                   l->index);
        }
        memcpy(chunk + len, line, (size_t)n);
        len += (size_t)n;
    }
    flush(chunk, len);
}

static sem_t quit_sem;

static void on_quit(int sig)
{
    (void)sig;
    sem_post(&quit_sem);
}

static void *dumper(void *unused)
{
    (void)unused;
    for (;;) {
        while (sem_wait(&quit_sem) < 0 && errno == EINTR)
            ;
        weft__loops_request_dump();
    }
    return NULL;
}

static void install(void)
{
    struct sigaction old;
    if (getenv("WEFT_NO_SIGQUIT") || sigaction(SIGQUIT, NULL, &old) < 0 ||
        old.sa_handler != SIG_DFL || (old.sa_flags & SA_SIGINFO))
        return;                           /* the program has its own plans */
    sem_init(&quit_sem, 0, 0);
    if (weft__thread_spawn(dumper, NULL) < 0)
        return;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_quit;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGQUIT, &sa, NULL);
}

void weft__dump_install(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, install);
}
