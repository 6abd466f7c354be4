/*
 * Stack overflow reporting.
 *
 * A task that runs into its guard page faults; this SIGSEGV handler runs
 * on a per-loop alternate signal stack (the task's own stack is exhausted),
 * recognises a fault just below the running task's stack, names the task,
 * then restores the previous handler and returns, so the fault repeats and
 * the process dies the usual way (core dump, sanitizer report). Faults that
 * are not stack overflows go straight to the previous handler.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define ALTSTACK_SIZE (64 * 1024)
#define NEAR (64 * 1024)                  /* how far below lo still counts */

static struct sigaction old_segv;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void on_segv(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    weft__loop *l = weft__cur_loop;
    weft_task *t = l ? l->cur : NULL;
    char *a = si->si_addr;
    if (t && t->stack && a < t->stack->lo && a >= t->stack->lo - NEAR) {
        char site[128], msg[384];
        weft__site_name(t->spawn_site, site, sizeof site);
        int n = snprintf(msg, sizeof msg,
                         "weft: stack overflow in task '%s' (spawned at %s; stack of %zu "
                         "bytes; fault at %p)\n",
                         t->name, site, (size_t)(t->stack->hi - t->stack->lo), (void *)a);
        if (write(2, msg, n > 0 ? (size_t)n : 0) < 0) {
            /* dying anyway */
        }
    }
    sigaction(sig, &old_segv, NULL);      /* the fault repeats into it */
}

static void install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &old_segv);
}

int weft__overflow_init(weft__loop *l)
{
    stack_t ss = { .ss_size = ALTSTACK_SIZE };
    if (!(l->altstack = ss.ss_sp = weft__malloc(ALTSTACK_SIZE)))
        return -ENOMEM;
    if (sigaltstack(&ss, NULL) < 0) {
        weft__free(l->altstack);
        l->altstack = NULL;
        return -errno;
    }
    pthread_once(&once, install);
    return 0;
}

void weft__overflow_fini(weft__loop *l)
{
    stack_t ss = { .ss_flags = SS_DISABLE };
    sigaltstack(&ss, NULL);
    weft__free(l->altstack);
    l->altstack = NULL;
}

void weft__overflow_abort(weft_task *t, const char *how)
{
    char site[128];
    weft__site_name(t->spawn_site, site, sizeof site);
    weft__panic("stack overflow in task '%s' (spawned at %s; %s)", t->name, site, how);
}
