/* The pool with each allocation failing in turn: creating the pool (its
 * metrics, its background task), lending new and idle resources, a waiter
 * handed a released one, broken releases, trim and close. Every failure is
 * an error for its caller, and no resource is lost: each one made is
 * destroyed by the end. */
#include "alloc.h"

struct ctx { int open; };

static int r_create(void *arg, void **out)
{
    struct ctx *c = arg;
    int rc = weft_yield();                /* creating takes a turn, like a connect */
    if (rc)
        return rc;
    c->open++;
    *out = c;                             /* (the resource needs no memory) */
    return 0;
}

static void r_destroy(void *arg, void *res)
{
    (void)res;
    ((struct ctx *)arg)->open--;
}

static const weft_pool_ops ops = { r_create, r_destroy, NULL, NULL };

/* takes the pool's one resource, once it is handed over */
static int waiter(void *arg)
{
    weft_pool *p = arg;
    weft_pooled *h;
    int rc = weft_pool_acquire(p, &h);
    if (!rc)
        weft_pool_release(p, h);
    return rc;
}

static int use(weft_pool *p)
{
    weft_pooled *a, *b;
    int rc = weft_pool_acquire(p, &a);
    if (rc)
        return rc;
    if ((rc = weft_pool_acquire(p, &b))) {
        weft_pool_release(p, a);
        return rc;
    }
    weft_group *g = weft_group_new();
    rc = g ? weft_spawn(g, waiter, p, "waiter") : -errno;
    weft_yield();                         /* it waits: both are lent */
    weft_pool_release(p, b);              /* handed to the waiter, then idle */
    int grc = g ? weft_group_wait(g) : 0;
    if (!rc)
        rc = grc;
    weft_pool_release_broken(p, a);       /* destroyed */
    if (!rc && !(rc = weft_pool_acquire(p, &a)))  /* the idle one */
        weft_pool_release(p, a);
    if (!rc && weft_pool_trim(p, 1) != 1)
        rc = -EBADMSG;
    return rc;
}

static int workload(void *unused)
{
    (void)unused;
    struct ctx c = { 0 };
    weft_pool_config cfg = { .name = "alloc", .max_size = 2 };
    weft_pool *p = weft_pool_new(&cfg, &ops, &c);
    if (!p)
        return -errno;
    int rc = use(p);
    int crc = weft_pool_close(p, WEFT_SEC);
    if (c.open != 0)
        return -EBADMSG;                  /* a resource was lost */
    return rc ? rc : crc;
}

static bool clean(int rc) { return rc == 0 || rc == -ENOMEM; }

static void test_pool_alloc_failures(void **s)
{
    (void)s;
    long n = alloc_sweep(workload, NULL, clean);
    fprintf(stderr, "%ld allocations swept\n", n);
    assert_true(n > 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
