/*
 * Structured concurrency: groups and supervisors.
 *
 * A group is owned by the task that created it and keeps its children on
 * an intrusive list. A child reports to its group as it dies (from
 * weft__task_entry, still on its own stack): in a plain group the first
 * failure is recorded and cancels the siblings; in a supervisor it goes to
 * the error handler and nothing else happens. The owner's wait parks until
 * the child count drops to zero. Groups the owner forgot are found on its
 * `owned` list when it returns, cancelled and joined there, so no task
 * outlives its group and no error is lost.
 */
#include <errno.h>

#include "internal.h"

struct weft_group {
    weft__loop *loop;
    weft_task *owner;
    weft_group *owned_next;               /* owner's list of unwaited groups */
    weft_task *children;
    int n;
    int err;                              /* first failure */
    bool cancelled, closing, supervisor;
    weft_task *waiter;
    void (*on_error)(const char *task, int err, void *ctx);
    void *ctx;
};

static weft_group *group_new(bool supervisor)
{
    weft_task *t = weft__self();
    if (!t) {
        errno = EPERM;
        return NULL;
    }
    weft_group *g = weft__calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->loop = t->loop;
    g->owner = t;
    g->supervisor = supervisor;
    g->owned_next = t->owned;
    t->owned = g;
    return g;
}

weft_group *weft_group_new(void) { return group_new(false); }

weft_group *weft_supervisor_new(void (*on_error)(const char *, int, void *), void *ctx)
{
    if (!on_error) {
        errno = EINVAL;
        return NULL;
    }
    weft_group *g = group_new(true);
    if (g) {
        g->on_error = on_error;
        g->ctx = ctx;
    }
    return g;
}

int weft_spawn(weft_group *g, weft_fn fn, void *arg, const char *name)
{
    weft__loop *l = weft__cur_loop;
    weft_task *self = l ? l->cur : NULL;
    if (!self)
        return -EPERM;
    if (!g || !fn)
        return -EINVAL;
    if (g->loop != l)
        return -EXDEV;
    if (g->cancelled || g->closing)
        return -ECANCELED;
    weft_task *t = weft__task_new(l, fn, arg, name, __builtin_return_address(0));
    if (!t)
        return -ENOMEM;
    /* background work outlives the request that spawned it */
    t->base_deadline = g->supervisor ? WEFT_FOREVER : weft__deadline_of(self);
    t->group = g;
    t->sib_next = g->children;
    if (g->children)
        g->children->sib_prev = t;
    g->children = t;
    g->n++;
    weft__ready(l, t);
    return 0;
}

static void cancel_children(weft_group *g)
{
    g->cancelled = true;
    for (weft_task *c = g->children; c; c = c->sib_next)
        weft__cancel(c, true);
}

void weft__group_child_done(weft_task *t, int rc)
{
    weft_group *g = t->group;
    bool failed = rc != 0 && !(rc == -ECANCELED && t->group_cancelled);
    if (failed) {
        if (g->supervisor) {
            g->on_error(t->name, rc, g->ctx);
        } else if (!g->err) {
            g->err = rc;
            cancel_children(g);
        }
    }
    if (t->sib_prev)
        t->sib_prev->sib_next = t->sib_next;
    else
        g->children = t->sib_next;
    if (t->sib_next)
        t->sib_next->sib_prev = t->sib_prev;
    t->group = NULL;
    if (--g->n == 0 && g->waiter)
        weft__wake(g->waiter, 0);
}

/* Parks until every child is gone; nothing interrupts it. */
static void join_all(weft_group *g, weft_task *self)
{
    while (g->n > 0) {
        g->waiter = self;
        weft__wait_uncancellable("group join");
        g->waiter = NULL;
    }
}

/* Parks until every child is gone or the wait is interrupted (rc < 0). */
static int wait_children(weft_group *g, weft_task *self, const char *reason)
{
    while (g->n > 0) {
        g->waiter = self;
        int rc = weft__wait(WEFT_FOREVER, 0, reason);
        g->waiter = NULL;
        if (rc < 0)
            return rc;
    }
    return 0;
}

static void group_free(weft_group *g)
{
    weft_group **pp = &g->owner->owned;
    while (*pp && *pp != g)
        pp = &(*pp)->owned_next;
    if (*pp)
        *pp = g->owned_next;
    weft__free(g);
}

static int check_owner(weft_group *g, weft_task **self)
{
    weft__loop *l = weft__cur_loop;
    *self = l ? l->cur : NULL;
    if (!*self)
        return -EPERM;
    if (!g)
        return -EINVAL;
    if (g->loop != l)
        return -EXDEV;
    if (g->owner != *self)
        return -EPERM;
    return 0;
}

static int close_supervisor(weft_group *s, weft_task *self, weft_time grace)
{
    int rc = 0;
    s->closing = true;
    if (s->n) {
        weft_scope sc;
        weft_scope_enter(&sc, grace);
        rc = wait_children(s, self, "supervisor close");
        weft_scope_exit(&sc);
        if (s->n) {
            cancel_children(s);
            join_all(s, self);
        }
    }
    group_free(s);
    return rc;
}

int weft_group_wait(weft_group *g)
{
    weft_task *self;
    int rc = check_owner(g, &self);
    if (rc)
        return rc;
    if (g->supervisor)
        return close_supervisor(g, self, WEFT_FOREVER);
    rc = wait_children(g, self, "group wait");
    if (rc < 0) {
        cancel_children(g);
        join_all(g, self);
    } else {
        rc = g->err;
    }
    group_free(g);
    return rc;
}

int weft_supervisor_close(weft_group *s, weft_time grace)
{
    weft_task *self;
    int rc = check_owner(s, &self);
    if (rc)
        return rc;
    if (!s->supervisor)
        return -EPERM;
    return close_supervisor(s, self, grace);
}

void weft_group_cancel(weft_group *g)
{
    if (!g)
        return;
    if (g->loop != weft__cur_loop)
        weft__panic("weft_group_cancel: group belongs to another loop");
    cancel_children(g);
}

int weft_group_size(const weft_group *g) { return g ? g->n : 0; }

/* The task is returning: cancel and join the groups it never waited for,
 * keep their errors, close its supervisors with grace 0. */
int weft__groups_orphaned(weft_task *t, int rc)
{
    weft_group *g;
    while ((g = t->owned)) {
        if (g->supervisor) {
            g->closing = true;
            cancel_children(g);
            join_all(g, t);
            group_free(g);
            continue;
        }
        weft_log(WEFT_LOG_WARN, "task '%s' returned without waiting for its group "
                 "(%d children still running): cancelling them", t->name, g->n);
        cancel_children(g);
        join_all(g, t);
        if (rc == 0)
            rc = g->err;
        group_free(g);
    }
    return rc;
}
