/*
 * Fail fast: several tasks that only make sense together; the first real
 * failure cancels the others and is the group's result.
 *
 * asyncio teaches: use asyncio.TaskGroup, not gather(): when one task
 * raises, the group cancels its siblings and re-raises (gather leaves the
 * others running, their results and errors unobserved).
 *
 * The weft way is weft_group: weft_spawn the children, weft_group_wait
 * them. The first child to return a negative code cancels the rest (their
 * next blocking call returns -ECANCELED), and the wait returns that first
 * code once every child has finished: nothing keeps running behind the
 * caller's back, and the -ECANCELED the group caused is not reported as a
 * failure of its own. A cancelled child that must still clean up (say, a
 * polite goodbye on the network) does it inside a shielded scope.
 *
 * Here: "profile" and "orders" load slowly, "prices" fails after 20 ms.
 */
#include "example.h"

struct child {
    const char *name;
    weft_time work;                   /* how long its job takes */
    int fail_with;                    /* 0, or the code it fails with when done */
    int seen;                         /* what its blocking call returned */
    bool cleaned_up;                  /* its shielded cleanup ran to the end */
};

static int child(void *arg)
{
    struct child *c = arg;
    c->seen = weft_sleep(c->work);    /* stands in for a request, a query */
    if (c->seen == 0 && c->fail_with) {
        printf("  %-7s fails: %s\n", c->name, weft_strerror(c->fail_with));
        return c->fail_with;          /* the first failure: the group cancels the rest */
    }
    if (c->seen == -ECANCELED) {
        printf("  %-7s cancelled after its sibling failed; cleaning up\n", c->name);
        /* Every blocking call of a cancelled task returns -ECANCELED at
         * once, except inside a shielded scope (keep its deadline short). */
        weft_scope shield;
        weft_scope_enter_shielded(&shield, 100 * WEFT_MS);
        c->cleaned_up = weft_sleep(2 * WEFT_MS) == 0;   /* "send the goodbye" */
        weft_scope_exit(&shield);
    }
    return c->seen;                   /* -ECANCELED here is the group's doing: not a failure */
}

static struct child children[] = {
    { "profile", 300 * WEFT_MS, 0, 1, false },
    { "prices",  20 * WEFT_MS, -EIO, 1, false },
    { "orders",  500 * WEFT_MS, 0, 1, false },
};
enum { N = sizeof children / sizeof children[0] };

static int load_page(void *unused)
{
    (void)unused;
    weft_group *g = weft_group_new();
    if (!g)
        return -errno;
    for (int i = 0; i < N; i++) {
        int rc = weft_spawn(g, child, &children[i], children[i].name);
        if (rc) {                     /* -ENOMEM, say: no page without every part */
            weft_group_cancel(g);
            weft_group_wait(g);       /* still join the ones already started */
            return rc;
        }
    }
    weft_time t0 = weft_now();
    int rc = weft_group_wait(g);      /* joins all three, frees g */
    printf("  weft_group_wait: %s after %.0f ms (the slow ones would have taken 500)\n",
           weft_strerror(rc), (double)(weft_now() - t0) / WEFT_MS);

    expect(rc == -EIO, "the group's result is the first failure (-EIO), got %s",
           weft_errname(rc));
    for (int i = 0; i < N; i++) {
        if (children[i].fail_with)
            continue;
        expect(children[i].seen == -ECANCELED, "%s was cancelled (its sleep returned %s)",
               children[i].name, weft_errname(children[i].seen));
        expect(children[i].cleaned_up, "%s's shielded cleanup ran although cancelled",
               children[i].name);
    }
    return 0;                         /* the failure was the demonstration */
}

int main(void)
{
    example_begin("fail fast: three parts of a page, one fails, the others are cancelled");
    return example_exit("failfast", weft_main(load_page, NULL));
}
