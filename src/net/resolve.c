/*
 * Name resolution for connect.
 *
 * Literal addresses are parsed in place. Names are looked up with
 * getaddrinfo on the blocking pool (so /etc/hosts and resolv.conf apply and
 * the loop never blocks), under the connect deadline: a lookup that does
 * not answer in time gives the timeout and the pool thread finishes alone.
 * (Interim: the c-ares resolver of DESIGN.md, with its cache, replaces
 * this; see the net issue.)
 */
#include <errno.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct lookup {
    char host[256], svc[8];
    struct addrinfo *res;
    int rc;
    weft_chan *done;                      /* shared: the pool thread signals here */
    _Atomic int refs;                     /* the task and the pool job */
};

static int gai_code(int g)
{
    switch (g) {
    case EAI_NONAME: case EAI_NODATA: return -ENOENT;
    case EAI_AGAIN: return -EAGAIN;
    case EAI_MEMORY: return -ENOMEM;
    case EAI_SYSTEM: return -errno;
    }
    return -EINVAL;
}

static void unref(void *arg)
{
    struct lookup *q = arg;
    if (atomic_fetch_sub(&q->refs, 1) != 1)
        return;
    if (q->res)
        freeaddrinfo(q->res);
    weft_chan_free(q->done);
    free(q);
}

static int do_lookup(void *arg)
{
    struct lookup *q = arg;
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_ADDRCONFIG | AI_NUMERICSERV };
    int g = getaddrinfo(q->host, q->svc, &hints, &q->res);
    q->rc = g ? gai_code(g) : 0;
    char one = 1;
    weft_chan_try_send(q->done, &one);    /* the chan publishes q->res and q->rc */
    return 0;
}

int weft__resolve(const char *host, int port, weft_time deadline, struct addrinfo **out)
{
    char svc[8];
    snprintf(svc, sizeof svc, "%d", port);
    size_t hl = strlen(host);
    if (hl >= 256)
        return -EINVAL;
    /* "[::1]" as in URLs */
    char lit[256];
    if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
        memcpy(lit, host + 1, hl - 2);
        lit[hl - 2] = 0;
        host = lit;
    }
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV };
    if (getaddrinfo(host, svc, &hints, out) == 0)
        return 0;
    /* A name: looked up on the pool by a detached job, which shares the
     * query with this task; whoever finishes last frees it, so a deadline
     * here never waits for a slow resolver. */
    struct lookup *q = calloc(1, sizeof *q);
    if (!q || !(q->done = weft_chan_new_shared(1, 1))) {
        free(q);
        return -ENOMEM;
    }
    snprintf(q->host, sizeof q->host, "%s", host);
    memcpy(q->svc, svc, sizeof svc);
    atomic_store(&q->refs, 2);
    int rc = weft_run_blocking_detached(do_lookup, q, unref);
    if (rc) {
        unref(q);                         /* the detached call dropped its ref */
        return rc;
    }
    weft_scope sc;
    weft_scope_enter_at(&sc, deadline);
    char one;
    rc = weft_chan_recv(q->done, &one);
    bool expired = weft_scope_exit(&sc);
    if (rc == 0 && (rc = q->rc) == 0) {
        *out = q->res;
        q->res = NULL;
    } else if (rc == -ETIMEDOUT && expired) {
        rc = -WEFT_ECONNECT_TIMEOUT;
    }
    unref(q);
    return rc;
}
