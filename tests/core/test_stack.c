/* Task stacks: overflow detection (guard page and canary), a million
 * sleeping tasks on default settings, stacks reused and trimmed. */
#include <dlfcn.h>
#include <execinfo.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include "test.h"
#include "procstat.h"

static int recurse(int depth)
{
    volatile char buf[1024];
    buf[0] = (char)depth;
    buf[sizeof buf - 1] = 1;
    return depth > 0 ? recurse(depth - 1) + buf[0] - (char)depth + buf[sizeof buf - 1] - 1
                     : weft_yield();
}

static int overflower(void *unused)
{
    (void)unused;
    return recurse(1 << 20);                   /* far past 256 KiB */
}

int overflow_root(void *unused);
int overflow_root(void *unused)
{
    (void)unused;
    weft_group *g = weft_group_new();
    weft_spawn(g, overflower, NULL, "overflower");
    return weft_group_wait(g);
}

static void run_overflow(void *unused)
{
    (void)unused;
    weft_main(overflow_root, NULL);
}

/* The report gives the spawn site as backtrace(3) does, "module(+offset)
 * [address]" (the handler may not symbolize: dladdr is not
 * async-signal-safe). The child is a fork, so the address means the same
 * here: check that it lies in overflow_root. */
static void check_overflow_report(const char *out)
{
    const char *at = strstr(out, "weft: stack overflow in task 'overflower' (spawned at ");
    assert_non_null(at);
    at += strlen("weft: stack overflow in task 'overflower' (spawned at ");
    assert_true(strncmp(at, "core_stack(+0x", 14) == 0);
    const char *bracket = strchr(at, '[');
    assert_non_null(bracket);
    void *site = NULL;
    assert_int_equal(sscanf(bracket, "[%p]", &site), 1);
    Dl_info di;
    assert_true(dladdr(site, &di) != 0);
    assert_non_null(di.dli_sname);
    assert_string_equal(di.dli_sname, "overflow_root");
    assert_non_null(strstr(at, "; stack of "));
    assert_non_null(strstr(at, " bytes; fault at 0x"));
}

static void test_guard_page_overflow(void **s)
{
    (void)s;
    char out[4096];
    int st = run_in_child(run_overflow, NULL, out, sizeof out);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGSEGV);
    check_overflow_report(out);
}

/* The same while another thread is inside dlopen (a constructor that
 * holds the loader lock): a handler that waited for the loader would
 * never report, and the alarm would end the child. */
static int ready_pipe[2], hold_pipe[2];

static void *load_holdctor(void *unused)
{
    (void)unused;
    dlopen(HOLDCTOR, RTLD_NOW);
    return NULL;
}

static void run_overflow_loader_busy(void *unused)
{
    (void)unused;
    char fd[16];
    void *warm[2];
    backtrace(warm, 2);                        /* libgcc_s loaded before the lock is held */
    setenv("WEFT_STALL_MS", "0", 1);
    if (pipe(ready_pipe) < 0 || pipe(hold_pipe) < 0)
        abort();
    snprintf(fd, sizeof fd, "%d", ready_pipe[1]);
    setenv("HOLDCTOR_READY", fd, 1);
    snprintf(fd, sizeof fd, "%d", hold_pipe[0]);
    setenv("HOLDCTOR_WAIT", fd, 1);
    pthread_t th;
    char c;
    if (pthread_create(&th, NULL, load_holdctor, NULL) != 0 || read(ready_pipe[0], &c, 1) != 1)
        abort();
    alarm(10);                                 /* bound: a stuck handler ends here */
    weft_main(overflow_root, NULL);
}

static void test_overflow_report_while_loader_busy(void **s)
{
    (void)s;
    char out[4096];
    int st = run_in_child(run_overflow_loader_busy, NULL, out, sizeof out);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGSEGV);   /* not SIGALRM */
    check_overflow_report(out);
}

/* Unguarded stacks: the overflow runs into the neighbour slot's memory
 * (mapped, so no fault) and is caught by the canary at the next switch. */
static int shallow_overflow(void *unused)
{
    (void)unused;
    return recurse(256 + 8);                   /* just past the slot, then back */
}

int canary_root(void *unused);
int canary_root(void *unused)
{
    (void)unused;
    weft_group *g = weft_group_new();
    weft_spawn(g, shallow_overflow, NULL, "smasher");
    return weft_group_wait(g);
}

static void run_canary(void *unused)
{
    (void)unused;
    setenv("WEFT_STACK_GUARDS", "0", 1);
    weft_main(canary_root, NULL);
}

static void test_canary_overflow(void **s)
{
    (void)s;
    char out[4096];
    int st = run_in_child(run_canary, NULL, out, sizeof out);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGABRT);
    assert_non_null(strstr(out, "weft: stack overflow in task 'smasher'"));
}

/* The guard budget is given back when a guard could not be made. Run in
 * a fresh process (the budget is read once per process) with a budget of
 * 2: the root's stack takes one; with the map count full, the next stack's
 * guard fails (mprotect: ENOMEM); once maps are free again, a third stack
 * must still get the guard that was not made. */
static bool guarded_below(const void *p)
{
    FILE *f = fopen("/proc/self/maps", "re");
    char line[512];
    unsigned long prev_end = 0, start, end;
    char perms[8], prev_perms[8] = "";
    bool guarded = false;
    while (f && fgets(line, sizeof line, f)) {
        if (sscanf(line, "%lx-%lx %7s", &start, &end, perms) != 3)
            continue;
        if ((uintptr_t)p >= start && (uintptr_t)p < end) {
            /* the task's stack is [guard][stack]: the mapping holding p
             * starts within the stack, right above a PROT_NONE page */
            guarded = prev_end == start && strcmp(prev_perms, "---p") == 0 &&
                      (uintptr_t)p - start < 256 * 1024;
            break;
        }
        prev_end = end;
        memcpy(prev_perms, perms, sizeof perms);
    }
    if (f)
        fclose(f);
    return guarded;
}

static int probe(void *guarded)
{
    volatile char here = 0;
    *(bool *)guarded = guarded_below((const void *)&here);
    return here;
}

static int wait_on(void *ev)
{
    return weft_event_wait(ev);
}

static int budget_root(void *unused)
{
    (void)unused;
    long max = 65530;
    FILE *f = fopen("/proc/sys/vm/max_map_count", "re");
    if (!f || fscanf(f, "%ld", &max) != 1)
        max = 65530;
    if (f)
        fclose(f);
    size_t page = (size_t)sysconf(_SC_PAGESIZE), n = 0, cap = (size_t)max + 1000;
    void **fill = malloc(cap * sizeof *fill);
    if (!fill)
        return -ENOMEM;
    weft_event ev;
    weft_event_init(&ev);
    weft_group *g = weft_group_new();
    /* fill the map count: alternate protections so no two merge */
    for (; n < cap; n++) {
        fill[n] = mmap(NULL, page, n & 1 ? PROT_READ : PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (fill[n] == MAP_FAILED)
            break;
    }
    weft_spawn(g, wait_on, &ev, "unguarded");  /* stays alive: its stack is not reused */
    weft_yield();
    while (n)
        munmap(fill[--n], page);
    free(fill);
    bool guarded = false;
    weft_spawn(g, probe, &guarded, "probe");
    weft_yield();
    weft_event_set(&ev);
    int rc = weft_group_wait(g);
    return rc ? rc : guarded ? 0 : -ENOEXEC;
}

static void test_guard_budget_given_back(void **s)
{
    (void)s;
    long max = 0;
    FILE *f = fopen("/proc/sys/vm/max_map_count", "re");
    if (f && fscanf(f, "%ld", &max) != 1)
        max = 0;
    if (f)
        fclose(f);
    if (max <= 0 || max > 262144)
        skip();                                /* filling the map count would take long */
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "WEFT_STACK_GUARDS=2 WEFT_STACK_KB=256 WEFT_STALL_MS=0 /proc/%d/exe guard-budget",
             (int)getpid());
    int st = system(cmd);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

static int uses_stack(void *unused)
{
    (void)unused;
    return recurse(150);                       /* 150 KiB: fine in 256 KiB */
}

static int deep_ok(void *unused)
{
    (void)unused;
    weft_group *g = weft_group_new();
    for (int i = 0; i < 200; i++)              /* more than the hot pool keeps */
        weft_spawn(g, uses_stack, NULL, "deep");
    EXPECT_EQ(weft_group_wait(g), 0);
    g = weft_group_new();
    for (int i = 0; i < 200; i++)              /* reuses the trimmed ones */
        weft_spawn(g, uses_stack, NULL, "deep");
    EXPECT_EQ(weft_group_wait(g), 0);
    return 0;
}
static void test_deep_stacks_reused(void **s) { (void)s; RUN(deep_ok, NULL); }

static int sleepy(void *unused)
{
    (void)unused;
    return weft_sleep(60 * WEFT_SEC) == -ECANCELED ? 0 : -EBADMSG;
}

static int million(void *arg)
{
    int n = *(int *)arg;
    long before = vm_kb("VmRSS:") + vm_kb("VmPTE:");
    weft_group *g = weft_group_new();
    weft_time t0 = weft_now();
    for (int i = 0; i < n; i++)
        if (weft_spawn(g, sleepy, NULL, "sleepy") != 0) {
            EXPECT(!"spawn failed");
            break;
        }
    weft_sleep(WEFT_MS);                       /* every task is asleep now */
    weft_yield();
    long after = vm_kb("VmRSS:") + vm_kb("VmPTE:");
    weft_time dt = weft_now() - t0;
    EXPECT_EQ(weft_group_size(g), n);
    printf("%d sleeping tasks: %.2f KB each (VmRSS + VmPTE), %.0f ns to spawn and start each\n",
           n, (after - before) * 1024.0 / n / 1000.0, (double)dt / n);
    weft_group_cancel(g);
    EXPECT_EQ(weft_group_wait(g), 0);
    return 0;
}

static void test_million_sleeping_tasks(void **s)
{
    (void)s;
    int n = test_scale(1000000);
    RUN(million, &n);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "guard-budget") == 0) {
        int rc = weft_main(budget_root, NULL);
        if (rc)
            fprintf(stderr, "guard-budget: %s\n", weft_strerror(rc));
        return rc ? 1 : 0;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_guard_page_overflow),
        cmocka_unit_test(test_overflow_report_while_loader_busy),
        cmocka_unit_test(test_canary_overflow),
        cmocka_unit_test(test_guard_budget_given_back),
        cmocka_unit_test(test_deep_stacks_reused),
        cmocka_unit_test(test_million_sleeping_tasks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
