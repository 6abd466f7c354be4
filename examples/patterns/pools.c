/*
 * Pools: connections are made once and lent, never one per request.
 *
 * asyncio teaches: one httpx.AsyncClient (or aiohttp.ClientSession) for
 * the whole program, never one per request (each would open a connection,
 * do a TLS handshake, and leave sockets behind); asyncpg.create_pool with
 * min/max sizes; a timeout on waiting for a pooled connection; a health
 * check so a connection the server dropped while it idled is not handed
 * out.
 *
 * The weft way: weft_pool is the one generic pool (the HTTP, PostgreSQL
 * and Redis clients are built on it). You give it create/destroy and,
 * optionally, a health check and a reset; it keeps min_size..max_size,
 * lends with weft_pool_acquire (waiters in FIFO order, an acquire timeout
 * with its own code, -WEFT_EPOOL_TIMEOUT, and a message naming who holds
 * what), checks a resource that idled past check_idle before lending it,
 * and creates in the background, so an acquirer that gives up never leaks
 * a half-made connection. Part 1 pools a made-up database connection.
 *
 * Part 2 is the everyday case: ONE weft_http_client shared by every task;
 * its per-origin pools reuse keep-alive connections, as its stats show.
 */
#include <stdlib.h>

#include "example.h"

/* ---- part 1: a pool of a made-up resource ----------------------------------- */

struct fake_conn {
    int id;
    bool dead;                        /* "the server closed it while it idled" */
};

struct fakedb {
    int made, open;                   /* connections made so far, open now */
};

static int fake_connect(void *ctx, void **res)
{
    struct fakedb *db = ctx;
    int rc = weft_sleep(2 * WEFT_MS); /* the handshake: creates may block */
    if (rc)
        return rc;
    struct fake_conn *c = malloc(sizeof *c);
    if (!c)
        return -ENOMEM;
    *c = (struct fake_conn){ .id = ++db->made };
    db->open++;
    *res = c;
    return 0;
}

static void fake_close(void *ctx, void *res)   /* must not block */
{
    struct fakedb *db = ctx;
    db->open--;
    free(res);
}

static int fake_ping(void *ctx, void *res)     /* the health check: < 0 discards it */
{
    (void)ctx;
    const struct fake_conn *c = res;
    return c->dead ? -ECONNRESET : 0;
}

enum { MAX = 2 };
static int using_now, using_max;               /* tasks holding a connection */

static int query(void *arg)
{
    weft_pool *p = arg;
    weft_pooled *h;
    int rc = weft_pool_acquire(p, &h);         /* waits its turn: at most MAX lent */
    if (rc)
        return rc;
    if (++using_now > using_max)
        using_max = using_now;
    rc = weft_sleep(5 * WEFT_MS);              /* "run a query" on weft_pooled_get(h) */
    using_now--;
    if (rc)
        weft_pool_release_broken(p, h);        /* interrupted midway: never reused */
    else
        weft_pool_release(p, h);
    return rc;
}

struct holder {
    weft_pool *p;
    weft_event holding;
};

static int hold_both(void *arg)                /* a task that keeps the whole pool */
{
    struct holder *ho = arg;
    weft_pooled *a, *b;
    int rc = weft_pool_acquire(ho->p, &a);
    if (rc)
        return rc;
    if ((rc = weft_pool_acquire(ho->p, &b)) != 0) {
        weft_pool_release(ho->p, a);
        return rc;
    }
    weft_event_set(&ho->holding);
    rc = weft_sleep(WEFT_SEC);                 /* until cancelled */
    weft_pool_release(ho->p, b);
    weft_pool_release(ho->p, a);
    return rc == -ECANCELED ? 0 : rc;
}

/* Every resource idle at once: acquire them all, mark them dead, give back. */
static int kill_idle(weft_pool *p)
{
    weft_pooled *h[MAX];
    for (int i = 0; i < MAX; i++) {
        int rc = weft_pool_acquire(p, &h[i]);
        if (rc) {
            while (i--)
                weft_pool_release(p, h[i]);
            return rc;
        }
    }
    for (int i = 0; i < MAX; i++) {
        ((struct fake_conn *)weft_pooled_get(h[i]))->dead = true;
        weft_pool_release(p, h[i]);
    }
    return 0;
}

static int spawn_and_wait(weft_fn fn, void *arg, int n, const char *name)
{
    weft_group *g = weft_group_new();
    if (!g)
        return -errno;
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++)
        rc = weft_spawn(g, fn, arg, name);
    if (rc)
        weft_group_cancel(g);
    int wrc = weft_group_wait(g);
    return rc ? rc : wrc;
}

static int resource_pool(void)
{
    static struct fakedb db;
    static const weft_pool_ops ops = {
        .create = fake_connect, .destroy = fake_close, .check = fake_ping,
    };
    weft_pool_config cfg = {
        .name = "fakedb",
        .min_size = 1, .max_size = MAX,        /* one kept warm, two at most */
        .acquire_timeout = 50 * WEFT_MS,       /* -WEFT_EPOOL_TIMEOUT past it */
        .check_idle = WEFT_MS,                 /* ping what idled over 1 ms (default 1 s) */
    };
    weft_pool *p = weft_pool_new(&cfg, &ops, &db);
    if (!p)
        return -errno;
    weft_pool_stats st;

    /* min_size: made in the background, without anyone asking. */
    for (int i = 0; i < 100 && db.made < 1; i++)
        weft_sleep(WEFT_MS);
    expect(db.made == 1, "min_size 1: one connection made before any acquire");

    /* Six tasks share two connections. */
    int rc = spawn_and_wait(query, p, 6, "query");
    weft_pool_stats_get(p, &st);
    printf("  6 queries: at most %d at once, %d connections made, %llu acquires\n",
           using_max, db.made, (unsigned long long)st.acquires);
    expect(rc == 0, "every query got a connection (%s)", weft_strerror(rc));
    expect(using_max <= MAX && db.made <= MAX, "never more than max_size %d", MAX);

    /* The acquire deadline: another task holds both. */
    struct holder ho = { .p = p };
    weft_event_init(&ho.holding);
    weft_group *g = weft_group_new();
    if (!g) {
        weft_pool_close(p, 0);
        return -errno;
    }
    if ((rc = weft_spawn(g, hold_both, &ho, "holder")) == 0)
        rc = weft_event_wait(&ho.holding);
    weft_pooled *h = NULL;
    int acq = rc ? rc : weft_pool_acquire(p, &h);
    printf("  acquire while both are held: %s\n    (%s)\n", weft_strerror(acq),
           weft_pool_last_error(p));
    if (acq == 0)
        weft_pool_release(p, h);
    weft_group_cancel(g);                      /* the holder gives them back */
    int wrc = weft_group_wait(g);
    expect(acq == -WEFT_EPOOL_TIMEOUT, "the acquire gave up after 50 ms with "
           "-WEFT_EPOOL_TIMEOUT (got %s)", weft_errname(acq));
    expect(wrc == 0, "the holder returned both (%s)", weft_strerror(wrc));

    /* The health check: the "server" drops both idle connections. */
    int made = db.made;
    if ((rc = kill_idle(p)) == 0)
        rc = weft_sleep(5 * WEFT_MS);          /* idle past check_idle */
    if (rc == 0)
        rc = weft_pool_acquire(p, &h);
    if (rc == 0) {
        const struct fake_conn *c = weft_pooled_get(h);
        weft_pool_stats_get(p, &st);
        printf("  after the drop: lent connection #%d (%llu discarded by the check)\n",
               c->id, (unsigned long long)st.discarded);
        expect(!c->dead && c->id > made, "the dead ones were not lent: a new one was made");
        expect(st.discarded >= MAX, "the health check discarded both dead connections");
        weft_pool_release(p, h);
    }
    int crc = weft_pool_close(p, WEFT_SEC);    /* everything is back: destroys all */
    expect(db.open == 0, "closing the pool closed every connection (%d open)", db.open);
    return rc ? rc : crc;
}

/* ---- part 2: one HTTP client for every task ---------------------------------- */

static int hello(weft_http_req *q, weft_http_res *r, void *ctx)
{
    (void)q, (void)ctx;
    return weft_http_res_body(r, "hello\n", 6);
}

enum { TASKS = 4, EACH = 5 };

struct getter {
    weft_http_client *http;           /* the shared one */
    const char *url;
    int ok;
};

static int get_some(void *arg)
{
    struct getter *gt = arg;
    for (int i = 0; i < EACH; i++) {
        weft_http_response resp;
        int rc = weft_http_get(gt->http, gt->url, &resp);
        gt->ok += rc == 0 && resp.status == 200;
        weft_http_response_free(&resp);
        if (rc)
            return rc;
    }
    return 0;
}

static int shared_client(const struct local_server *ls)
{
    weft_http_client *http = weft_http_client_new(NULL);   /* one for the whole loop */
    if (!http)
        return -errno;
    char url[64];
    local_url(ls, url, sizeof url, "/hello");
    struct getter gt = { .http = http, .url = url };
    int rc = spawn_and_wait(get_some, &gt, TASKS, "get");
    weft_http_client_stats st;
    weft_http_client_stats_get(http, &st);
    weft_http_client_free(http, WEFT_SEC);
    printf("  %d tasks x %d GETs through one client: %lu requests on %lu connections\n",
           TASKS, EACH, st.requests, st.connections);
    expect(rc == 0 && gt.ok == TASKS * EACH, "all %d answered 200 (%d)", TASKS * EACH, gt.ok);
    expect(st.connections <= TASKS && st.connections < st.requests,
           "keep-alive connections were reused (a client per request would open %d)",
           TASKS * EACH);
    return rc;
}

static int run(void *unused)
{
    (void)unused;
    printf(" part 1: a weft_pool of made-up database connections\n");
    int rc = resource_pool();
    if (rc)
        return rc;

    printf(" part 2: one shared weft_http_client\n");
    weft_http_server *srv = weft_http_server_new(NULL);
    if (!srv)
        return -errno;
    struct local_server ls;
    if ((rc = weft_http_server_route(srv, "GET", "/hello", hello, NULL)) == 0)
        rc = local_server_start(&ls, srv);
    if (rc) {
        weft_http_server_free(srv);
        return rc;
    }
    rc = shared_client(&ls);
    int stop_rc = local_server_stop(&ls);
    return rc ? rc : stop_rc;
}

int main(void)
{
    example_begin("pools: lend connections, never make one per request");
    return example_exit("pools", weft_main(run, NULL));
}
