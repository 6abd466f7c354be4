/*
 * The parts of the kernel interface (kernel.h) that need core's private
 * state: loop ownership and the interruption check, out of line for the
 * layers above core.
 */
#include <dlfcn.h>
#include <stdio.h>

#include "internal.h"

__thread uint64_t weft__tls_loop_id __attribute__((tls_model("initial-exec")));

/* A misuse, not a condition to handle: said plainly, the first times. */
int weft__cross_loop(uint64_t owner, const char *fn, const void *caller)
{
    static _Atomic int told;
    if (atomic_fetch_add(&told, 1) >= 20)
        return -EXDEV;
    weft__loop *l = weft__cur_loop;
    int index = -1, tid = 0;
    bool alive = weft__loop_find(owner, &index, &tid);
    Dl_info di;
    if (!fn)
        fn = caller && dladdr(caller, &di) && di.dli_sname ? di.dli_sname : "a weft call";
    char whose[64];
    if (alive)
        snprintf(whose, sizeof whose, "loop %d (thread %d)", index, tid);
    else
        snprintf(whose, sizeof whose, "a loop that has ended");
    weft_log(WEFT_LOG_ERROR, "%s: an object of %s used from loop %d (thread %d), task '%s':"
             " weft objects are loop-local, make one per loop (or use a shared channel);"
             " -EXDEV", fn, whose, l->index, (int)l->tid, l->cur ? l->cur->name : "?");
    return -EXDEV;
}

static inline int owner_check(uint64_t owner, const void *caller)
{
    weft__loop *l = weft__cur_loop;
    if (unlikely(!l || !l->cur))
        return -EPERM;
    return likely(l->id == owner) ? 0 : weft__cross_loop(owner, NULL, caller);
}

int weft__owner_check(uint64_t owner)
{
    return owner_check(owner, __builtin_return_address(0));
}

int weft__enter(uint64_t owner, weft_task **self)
{
    int rc = owner_check(owner, __builtin_return_address(0));
    if (rc)
        return rc;
    *self = weft__cur_loop->cur;
    return weft__check(WEFT_FOREVER, 0);
}

weft_time weft__after(weft_time timeout)
{
    if (timeout == WEFT_FOREVER)
        return WEFT_FOREVER;
    return weft__deadline_add(weft_now(), timeout < 0 ? 0 : timeout);
}

int weft__interrupted(weft_time op_deadline, int op_err)
{
    return weft__cur_loop && weft__cur_loop->cur ? weft__check(op_deadline, op_err) : -EPERM;
}

/* per loop, not per task: only the running task can be inside the
 * stretch, and it may not leave it by suspending */
void weft__suspend_forbid(const char *what)
{
    if (weft__cur_loop)
        weft__cur_loop->nosuspend = what;
}

void weft__suspend_allow(void)
{
    if (weft__cur_loop)
        weft__cur_loop->nosuspend = NULL;
}

unsigned weft__loop_share(unsigned v, unsigned floor)
{
    weft__loop *l = weft__cur_loop;
    if (!l || l->count <= 1 || !v)
        return v;
    unsigned n = (unsigned)l->count, s = v / n + ((unsigned)l->index < v % n);
    return s > floor ? s : floor;
}
