/*
 * Timeouts: a deadline around a piece of work, and a timeout on every
 * single operation, told apart by their codes.
 *
 * asyncio teaches: `async with asyncio.timeout(1):` around the work, so
 * that no await waits forever, and a client whose every phase has its own
 * timeout (httpx's connect/read/write/pool), each raising its own
 * exception.
 *
 * The weft way:
 *  - weft_scope_enter(&s, d) ... weft_scope_exit(&s) is asyncio.timeout(d)
 *    around any number of calls. Once d has passed, every blocking call
 *    inside returns -ETIMEDOUT ("deadline exceeded"), at once (it stays
 *    expired). weft_scope_exit says whether THIS scope's deadline
 *    interrupted a call. Scopes nest; the earliest deadline wins.
 *  - each operation also has a timeout of its own, with its own code:
 *    -WEFT_EREAD_TIMEOUT ("read timeout": the peer went quiet for one
 *    read), -WEFT_ECONNECT_TIMEOUT, -WEFT_EPOOL_TIMEOUT, ... so a call
 *    never waits forever even where nobody set a scope.
 *  - weft_is_timeout(rc) is true for all of them: "try again later"
 *    logic tests that; -ETIMEDOUT vs an operation's code says whose limit
 *    it was (our budget for the whole work, or that peer being slow).
 *
 * The slow peer here is a local weft HTTP server whose /slow handler takes
 * 300 ms to answer.
 */
#include "example.h"

static int slow(weft_http_req *q, weft_http_res *r, void *ctx)
{
    (void)q, (void)ctx;
    int rc = weft_sleep(300 * WEFT_MS);
    return rc ? rc : weft_http_res_body(r, "finally\n", 8);
}

/* One step of a multi-step job (a query, a call to a service). */
static int step(int n)
{
    int rc = weft_sleep(40 * WEFT_MS);
    printf("    step %d: %s\n", n, rc ? weft_strerror(rc) : "done");
    return rc;
}

/* 1. One deadline for the whole job: 100 ms for three steps of 40 ms. */
static void scope_around_several_calls(void)
{
    printf("  a 100 ms scope around three 40 ms steps:\n");
    weft_scope s;
    weft_scope_enter(&s, 100 * WEFT_MS);      /* async with asyncio.timeout(0.1): */
    int rc = 0;
    for (int n = 1; n <= 3 && rc == 0; n++)
        rc = step(n);
    int again = weft_sleep(WEFT_MS);          /* still inside: expired is expired */
    bool expired = weft_scope_exit(&s);       /* true: our deadline cut the job short */
    expect(rc == -ETIMEDOUT, "the third step got -ETIMEDOUT (got %s)", weft_errname(rc));
    expect(again == -ETIMEDOUT, "a later call in the expired scope fails at once");
    expect(expired, "weft_scope_exit says its deadline interrupted a call");
    expect(weft_sleep(WEFT_MS) == 0, "outside the scope calls work again");
}

/* 2. The operation's own timeout: a client whose read timeout is 50 ms,
 *    and no scope at all: no call waits forever even so. */
static void per_operation_timeout(const char *url)
{
    weft_http_client_opts o = { .read_timeout = 50 * WEFT_MS };
    weft_http_client *http = weft_http_client_new(&o);
    if (!http) {
        expect(false, "weft_http_client_new: %s", weft_strerror(-errno));
        return;
    }
    weft_http_response resp;
    int rc = weft_http_get(http, url, &resp);  /* no scope: the read timeout still ends it */
    printf("  read timeout 50 ms, server needs 300: %s (%s)\n", weft_strerror(rc),
           resp.error);
    weft_http_response_free(&resp);
    weft_http_client_free(http, WEFT_SEC);
    expect(rc == -WEFT_EREAD_TIMEOUT, "the request failed with the read's own code (got %s)",
           weft_errname(rc));
    expect(weft_is_timeout(rc), "weft_is_timeout(-WEFT_EREAD_TIMEOUT) is true");
}

/* 3. The same request with the default read timeout (30 s), under a
 *    50 ms scope: now our budget is what runs out. */
static void deadline_on_a_request(const char *url)
{
    weft_http_client *http = weft_http_client_new(NULL);
    if (!http) {
        expect(false, "weft_http_client_new: %s", weft_strerror(-errno));
        return;
    }
    weft_scope s;
    weft_scope_enter(&s, 50 * WEFT_MS);
    weft_http_response resp;
    int rc = weft_http_get(http, url, &resp);  /* (or request.timeout for this one call) */
    bool expired = weft_scope_exit(&s);
    printf("  50 ms scope, server needs 300: %s\n", weft_strerror(rc));
    weft_http_response_free(&resp);
    weft_http_client_free(http, WEFT_SEC);
    expect(rc == -ETIMEDOUT, "the request failed with -ETIMEDOUT (got %s)", weft_errname(rc));
    expect(weft_is_timeout(rc), "weft_is_timeout(-ETIMEDOUT) is true");
    expect(expired, "weft_scope_exit says it was the scope's deadline");
}

static int run(void *unused)
{
    (void)unused;
    scope_around_several_calls();

    weft_http_server_opts so = { .shutdown_grace = WEFT_SEC };
    weft_http_server *srv = weft_http_server_new(&so);
    if (!srv)
        return -errno;
    struct local_server ls;
    int rc = weft_http_server_route(srv, "GET", "/slow", slow, NULL);
    if (rc == 0)
        rc = local_server_start(&ls, srv);
    if (rc) {
        weft_http_server_free(srv);
        return rc;
    }
    char url[64];
    local_url(&ls, url, sizeof url, "/slow");
    per_operation_timeout(url);
    deadline_on_a_request(url);
    return local_server_stop(&ls);
}

int main(void)
{
    example_begin("timeouts: a deadline around the work, a timeout on each operation");
    return example_exit("timeouts", weft_main(run, NULL));
}
