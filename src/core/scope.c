/*
 * Deadline scopes: the C form of `async with asyncio.timeout(s)`.
 *
 * A scope lives in caller memory and links to the one outside it, so the
 * task's innermost scope knows everything: the deadline in force inside it
 * (the earliest of its own and the enclosing ones, or only its own when
 * shielded) and whether a shield is in force. Both are computed once at
 * enter, so a blocking call reads one field, never walks the chain.
 */
#include <errno.h>

#include "internal.h"

static weft_task *need_task(const char *call)
{
    weft_task *t = weft__self();
    if (!t)
        weft__panic("%s called outside a weft task", call);
    return t;
}

weft_time weft_deadline(void)
{
    weft_task *t = weft__self();
    return t ? weft__deadline_of(t) : WEFT_FOREVER;
}

static void enter(weft_task *t, weft_scope *s, weft_time deadline, bool shielded)
{
    weft_time outer = weft__deadline_of(t);
    s->deadline_ = deadline;
    s->in_force_ = shielded || deadline < outer ? deadline : outer;
    s->shielded_ = shielded;
    s->shield_in_force_ = shielded || weft__shielded(t);
    s->caught_ = false;
    s->task_ = t;
    s->prev_ = t->scope;
    t->scope = s;
}

void weft_scope_enter(weft_scope *s, weft_time timeout)
{
    weft_task *t = need_task("weft_scope_enter");
    enter(t, s, weft__after(timeout), false);
}

void weft_scope_enter_at(weft_scope *s, weft_time deadline)
{
    weft_task *t = need_task("weft_scope_enter_at");
    enter(t, s, deadline, false);
}

void weft_scope_enter_shielded(weft_scope *s, weft_time timeout)
{
    weft_task *t = need_task("weft_scope_enter_shielded");
    enter(t, s, weft__after(timeout), true);
}

bool weft_scope_exit(weft_scope *s)
{
    weft_task *t = need_task("weft_scope_exit");
    if (t->scope != s)
        weft__panic("weft_scope_exit: scope %p is not the innermost scope of task '%s' "
                    "(scopes are strictly LIFO)", (void *)s, t->name);
    t->scope = s->prev_;
    return s->caught_;
}

/* A deadline in force just interrupted a call: credit the scope that set
 * it. Inside a shield only the shield's own chain counts. */
void weft__scope_timeout_caught(weft_task *t)
{
    weft_time dl = weft__deadline_of(t);
    weft_scope *owner = NULL;
    for (weft_scope *s = t->scope; s; s = s->prev_) {
        if (s->deadline_ == dl)
            owner = s;                    /* outermost scope with that deadline */
        if (s->shielded_)
            break;
    }
    if (owner)
        owner->caught_ = true;
}
