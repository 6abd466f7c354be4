/*
 * Bounded fan-out: fetch many URLs, at most IN_FLIGHT at a time.
 *
 * asyncio teaches: asyncio.gather() over 10,000 fetches opens 10,000
 * sockets at once and knocks over the server (or runs out of fds); wrap
 * each fetch in `async with sem:` with sem = asyncio.Semaphore(N).
 *
 * The weft way goes one step further: the spawner takes a permit BEFORE it
 * spawns, and the task gives it back when it is done, so at most N tasks
 * even exist (not 10,000 tasks parked on the semaphore, each holding a
 * stack and a request). All fetches share one weft_http_client, whose
 * keep-alive pool means N connections, not one per URL, and each request
 * has a deadline of its own.
 *
 * The server is a weft HTTP server in this same loop (example.h); its
 * handler counts how many requests it is serving at once, so the program
 * can check that the bound held.
 */
#include "example.h"

enum { URLS = 60, IN_FLIGHT = 8 };

/* ---- the server side: a slow backend that counts its concurrency -------- */

static int serving, serving_max;   /* requests in the handler now, and at most */

static int item(weft_http_req *q, weft_http_res *r, void *ctx)
{
    (void)ctx;
    if (++serving > serving_max)      /* one loop: no lock needed */
        serving_max = serving;
    int rc = weft_sleep(5 * WEFT_MS); /* the backend takes its time */
    serving--;
    if (rc)
        return rc;
    char body[64];
    int n = snprintf(body, sizeof body, "item %s\n", weft_http_req_param(q, "id"));
    return weft_http_res_body(r, body, (size_t)n);
}

/* ---- the client side: the pattern -------------------------------------- */

struct fetch_job {
    weft_http_client *http;           /* shared by every job */
    weft_sem *limit;                  /* the job holds one permit of it */
    char url[64];
    int rc, status;                   /* the outcome, read after the group */
};

static int fetch(void *arg)
{
    struct fetch_job *j = arg;
    weft_http_request req = { .url = j->url, .timeout = 2 * WEFT_SEC };  /* this URL's deadline */
    weft_http_response resp;
    j->rc = weft_http_do(j->http, &req, &resp);
    j->status = j->rc == 0 ? resp.status : 0;
    weft_http_response_free(&resp);   /* also after a failure */
    weft_sem_release(j->limit);       /* the permit the spawner took for us */
    return 0;                         /* a failed URL is a result, not a reason to
                                         cancel the others (see failfast.c for that) */
}

static int fan_out(const struct local_server *ls)
{
    static struct fetch_job jobs[URLS];
    weft_http_client *http = weft_http_client_new(NULL);   /* one for all: pooled */
    if (!http)
        return -errno;
    weft_group *g = weft_group_new();
    if (!g) {
        int rc = -errno;
        weft_http_client_free(http, 0);
        return rc;
    }
    weft_sem limit;
    weft_sem_init(&limit, IN_FLIGHT);

    int rc = 0;
    for (int i = 0; i < URLS; i++) {
        /* Waits while IN_FLIGHT fetches run: -ECANCELED or -ETIMEDOUT if
         * this task is cancelled or its deadline passes meanwhile. */
        if ((rc = weft_sem_acquire(&limit)) != 0)
            break;
        jobs[i] = (struct fetch_job){ .http = http, .limit = &limit };
        char path[32];
        snprintf(path, sizeof path, "/items/%d", i);
        local_url(ls, jobs[i].url, sizeof jobs[i].url, path);
        if ((rc = weft_spawn(g, fetch, &jobs[i], "fetch")) != 0) {
            weft_sem_release(&limit); /* fetch will not run to give it back */
            break;
        }
    }
    if (rc)
        weft_group_cancel(g);         /* we stop early: so do the fetches in flight */
    int wrc = weft_group_wait(g);     /* joins every fetch; no task outlives this */
    weft_http_client_stats st;
    weft_http_client_stats_get(http, &st);
    weft_http_client_free(http, WEFT_SEC);
    if (rc || wrc)
        return rc ? rc : wrc;

    int ok = 0;
    for (int i = 0; i < URLS; i++) {
        if (jobs[i].rc == 0 && jobs[i].status == 200)
            ok++;
        else
            printf("  %s: %s, status %d\n", jobs[i].url, weft_strerror(jobs[i].rc),
                   jobs[i].status);
    }
    printf("  %d URLs fetched over %lu connections; the server saw at most %d at once\n",
           URLS, st.connections, serving_max);
    expect(ok == URLS, "every URL answered 200 (%d of %d)", ok, URLS);
    expect(serving_max <= IN_FLIGHT, "never more than %d requests in flight (saw %d)",
           IN_FLIGHT, serving_max);
    expect(st.connections <= IN_FLIGHT, "at most %d connections, reused (opened %lu for %lu "
           "requests)", IN_FLIGHT, st.connections, st.requests);
    return 0;
}

static int run(void *unused)
{
    (void)unused;
    weft_http_server *srv = weft_http_server_new(NULL);
    if (!srv)
        return -errno;
    struct local_server ls;
    int rc = weft_http_server_route(srv, "GET", "/items/{id}", item, NULL);
    if (rc == 0)
        rc = local_server_start(&ls, srv);
    if (rc) {
        weft_http_server_free(srv);
        return rc;
    }
    rc = fan_out(&ls);
    int stop_rc = local_server_stop(&ls);
    return rc ? rc : stop_rc;
}

int main(void)
{
    example_begin("bounded fan-out: 60 URLs, 8 at a time, one shared client");
    return example_exit("bounded_fanout", weft_main(run, NULL));
}
