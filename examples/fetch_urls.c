/*
 * fetch_all with the real HTTP client: the README's example, built so it
 * stays true. Usage: fetch_urls URL...
 */
#include <errno.h>
#include <stdio.h>
#include "weft.h"

struct job { weft_http_client *http; weft_sem *limit; const char *url; };

static int fetch(void *arg)                     /* holds a permit of limit */
{
    struct job *j = arg;
    weft_http_response r;
    weft_http_request req = { .url = j->url, .timeout = 5 * WEFT_SEC };
    int rc = weft_http_do(j->http, &req, &r);   /* pooled keep-alive connection */
    if (rc == 0)
        printf("%s %d %zu bytes\n", j->url, r.status, r.body_len);
    else                                        /* "read timeout", "pool timeout", ... */
        printf("%s error: %s\n", j->url, weft_strerror(rc));
    weft_http_response_free(&r);
    weft_sem_release(j->limit);
    return 0;                                   /* a failed URL is data, not a crash */
}

static int fetch_all(void *arg)
{
    static struct job jobs[10000];
    const char **urls = arg;
    weft_http_client *http = weft_http_client_new(NULL);  /* shared by all tasks */
    if (!http)
        return -errno;
    weft_group *g = weft_group_new();
    if (!g) {
        int rc = -errno;
        weft_http_client_free(http, 0);
        return rc;
    }
    weft_sem limit;
    weft_sem_init(&limit, 50);                  /* at most 50 in flight */
    int rc = 0;
    for (int i = 0; i < 10000 && urls[i]; i++) {
        if ((rc = weft_sem_acquire(&limit)))    /* only 50 tasks exist at a time; */
            break;                              /* -ECANCELED, -ETIMEDOUT: stop */
        jobs[i] = (struct job){ http, &limit, urls[i] };
        if ((rc = weft_spawn(g, fetch, &jobs[i], "fetch"))) {
            weft_sem_release(&limit);           /* fetch will not run to release it */
            break;
        }
    }
    if (rc)
        weft_group_cancel(g);                   /* stopping early: cancel those in flight */
    int wrc = weft_group_wait(g);               /* joins all; a real failure cancels the rest */
    weft_http_client_free(http, WEFT_SEC);
    return rc ? rc : wrc;
}

int main(int argc, char **argv) { return argc > 1 && weft_main(fetch_all, argv + 1) ? 1 : 0; }
