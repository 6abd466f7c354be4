/*
 * Stack overflow reporting.
 *
 * A task that runs into its guard page faults; this SIGSEGV handler runs
 * on a per-loop alternate signal stack (the task's own stack is exhausted),
 * recognises a fault just below the running task's stack, names the task,
 * then restores the previous handler and returns, so the fault repeats and
 * the process dies the usual way (core dump, sanitizer report). Faults that
 * are not stack overflows go straight to the previous handler.
 *
 * The handler may only make async-signal-safe calls: the fault can come
 * while the thread, or another, holds a lock of malloc, stdio or the
 * dynamic loader (dladdr waits for a dlopen running in another thread). So
 * it formats by hand, writes with write(2), and does not symbolize: the
 * spawn site is printed as "module(+offset) [address]", as backtrace(3)
 * does, for addr2line -f -e module offset. The module table is read once,
 * when the first loop starts; a site in a library loaded later is printed
 * as its address alone.
 */
#include <errno.h>
#include <limits.h>
#include <link.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define ALTSTACK_SIZE (64 * 1024)
#define NEAR (64 * 1024)                  /* how far below lo still counts */
#define MAX_MODULES 64

static struct sigaction old_segv;
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* the loaded objects' address ranges, for spawn sites */
static struct module {
    uintptr_t lo, hi, base;
    char name[64];
} modules[MAX_MODULES];
static int nmodules;

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static int add_module(struct dl_phdr_info *info, size_t size, void *unused)
{
    (void)size;
    (void)unused;
    if (nmodules == MAX_MODULES)
        return 1;
    struct module *m = &modules[nmodules];
    m->lo = UINTPTR_MAX;
    m->hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        if (lo < m->lo)
            m->lo = lo;
        if (lo + ph->p_memsz > m->hi)
            m->hi = lo + ph->p_memsz;
    }
    if (m->lo >= m->hi)
        return 0;
    m->base = info->dlpi_addr;
    const char *name = info->dlpi_name;
    char exe[PATH_MAX];
    if (!name || !*name) {                /* the program itself */
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        exe[n > 0 ? n : 0] = 0;
        name = n > 0 ? exe : program_invocation_short_name;
    }
    snprintf(m->name, sizeof m->name, "%.*s", (int)sizeof m->name - 1, base_name(name));
    nmodules++;
    return 0;
}

/* Async-signal-safe formatting into a fixed buffer. */
typedef struct {
    char buf[512];
    size_t len;
} line;

static void put(line *o, const char *s, size_t max)
{
    for (size_t i = 0; i < max && s[i] && o->len < sizeof o->buf; i++)
        o->buf[o->len++] = s[i];
}

static void put_num(line *o, uintptr_t v, unsigned radix)
{
    char digits[2 * sizeof v + 1];
    size_t n = 0;
    do {
        digits[n++] = "0123456789abcdef"[v % radix];
        v /= radix;
    } while (v);
    if (radix == 16)
        put(o, "0x", 2);
    while (n && o->len < sizeof o->buf)
        o->buf[o->len++] = digits[--n];
}

static void put_site(line *o, void *site)
{
    uintptr_t a = (uintptr_t)site;
    for (int i = 0; i < nmodules; i++)
        if (a >= modules[i].lo && a < modules[i].hi) {
            put(o, modules[i].name, sizeof modules[i].name);
            put(o, "(+", 2);
            put_num(o, a - modules[i].base, 16);
            put(o, ") ", 2);
            break;
        }
    put(o, "[", 1);
    put_num(o, a, 16);
    put(o, "]", 1);
}

static void on_segv(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    int saved = errno;
    weft__loop *l = weft__cur_loop;
    weft_task *t = l ? l->cur : NULL;
    char *a = si->si_addr;
    if (t && t->stack && a < t->stack->lo && a >= t->stack->lo - NEAR) {
        line o = { .len = 0 };
        put(&o, "weft: stack overflow in task '", SIZE_MAX);
        put(&o, t->name, sizeof t->name);
        put(&o, "' (spawned at ", SIZE_MAX);
        put_site(&o, t->spawn_site);
        put(&o, "; stack of ", SIZE_MAX);
        put_num(&o, (uintptr_t)(t->stack->hi - t->stack->lo), 10);
        put(&o, " bytes; fault at ", SIZE_MAX);
        put_num(&o, (uintptr_t)a, 16);
        put(&o, ")\n", SIZE_MAX);
        if (write(2, o.buf, o.len) < 0) {
            /* dying anyway */
        }
    }
    sigaction(sig, &old_segv, NULL);      /* the fault repeats into it */
    errno = saved;
}

static void install(void)
{
    dl_iterate_phdr(add_module, NULL);
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
