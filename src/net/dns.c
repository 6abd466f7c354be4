/*
 * Name resolution with c-ares (weft/dns.h).
 *
 * A lookup owns a fresh channel (so /etc/hosts and resolv.conf changes
 * apply, and no driver task is shared between lookups): it starts
 * ares_getaddrinfo, then waits on the channel's sockets (registered as
 * foreign fds, forgotten through the socket-state callback before c-ares
 * closes them) until the answer arrives, c-ares' own retry timer says to
 * process timeouts, or the deadline passes. Answers are cached per loop.
 */
#include <arpa/inet.h>
#include <ares.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "weft/dns.h"

#define CACHE_SIZE 64
#define MAX_SOCKS 4

struct cache_entry {
    char host[256];
    weft_time expires;
    int n;
    weft_addr a[WEFT_DNS_MAX_ADDRS];      /* port 0 */
};

struct weft__dns_cache {
    uint64_t loop;
    struct cache_entry e[CACHE_SIZE];
    unsigned next;
};

static __thread struct weft__dns_cache *cache;   /* per loop thread */
static pthread_key_t cache_key;                   /* frees it when the thread ends */
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

static void cache_key_init(void) { pthread_key_create(&cache_key, free); }
static pthread_mutex_t servers_mu = PTHREAD_MUTEX_INITIALIZER;
static char *servers;                             /* NULL: resolv.conf */
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_rc;

static void lib_init(void) { init_rc = ares_library_init(ARES_LIB_INIT_ALL); }

int weft_dns_set_servers(const char *csv)
{
    char *copy = NULL;
    if (csv) {
        /* validate on a scratch channel */
        ares_channel ch;
        pthread_once(&init_once, lib_init);
        if (ares_init(&ch) != ARES_SUCCESS)
            return -ENOMEM;
        int rc = ares_set_servers_ports_csv(ch, csv);
        ares_destroy(ch);
        if (rc != ARES_SUCCESS || !(copy = strdup(csv)))
            return rc == ARES_ENOMEM ? -ENOMEM : -EINVAL;
    }
    pthread_mutex_lock(&servers_mu);
    free(servers);
    servers = copy;
    pthread_mutex_unlock(&servers_mu);
    return 0;
}

void weft_dns_cache_clear(void)
{
    if (cache)
        memset(cache->e, 0, sizeof cache->e);
}

static struct cache_entry *cache_find(const char *host)
{
    if (!cache || cache->loop != weft__loop_id())
        return NULL;
    for (int i = 0; i < CACHE_SIZE; i++)
        if (cache->e[i].n && strcmp(cache->e[i].host, host) == 0)
            return &cache->e[i];
    return NULL;
}

static void cache_put(const char *host, const weft_addr *a, int n, int ttl)
{
    if (!cache || cache->loop != weft__loop_id()) {
        if (!cache) {
            if (!(cache = calloc(1, sizeof *cache)))
                return;                   /* no cache is only slower */
            pthread_once(&cache_once, cache_key_init);
            pthread_setspecific(cache_key, cache);
        }
        memset(cache, 0, sizeof *cache);
        cache->loop = weft__loop_id();
    }
    struct cache_entry *e = cache_find(host);
    if (!e)
        e = &cache->e[cache->next++ % CACHE_SIZE];
    if (ttl < 1)
        ttl = 1;
    if (ttl > 300)
        ttl = 300;
    snprintf(e->host, sizeof e->host, "%s", host);
    e->expires = weft_now() + ttl * WEFT_SEC;
    e->n = n;
    memcpy(e->a, a, (size_t)n * sizeof *a);
}

static void set_port(weft_addr *a, int port)
{
    if (a->ss.ss_family == AF_INET)
        ((struct sockaddr_in *)&a->ss)->sin_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in6 *)&a->ss)->sin6_port = htons((uint16_t)port);
}

/* ---- one lookup ----------------------------------------------------------- */

struct lookup {
    bool done;
    int status, ttl, n;
    weft_addr a[WEFT_DNS_MAX_ADDRS];
    int socks[MAX_SOCKS];
    int nsocks;
};

static void on_sock(void *arg, ares_socket_t fd, int readable, int writable)
{
    struct lookup *q = arg;
    if (readable || writable) {
        for (int i = 0; i < q->nsocks; i++)
            if (q->socks[i] == fd)
                return;
        if (q->nsocks < MAX_SOCKS)
            q->socks[q->nsocks++] = fd;
        return;
    }
    weft_fd_forget(fd);                   /* c-ares closes it next */
    for (int i = 0; i < q->nsocks; i++)
        if (q->socks[i] == fd)
            q->socks[i] = q->socks[--q->nsocks];
}

static void on_answer(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
    (void)timeouts;
    struct lookup *q = arg;
    q->done = true;
    q->status = status;
    q->ttl = 300;
    for (struct ares_addrinfo_node *n = res ? res->nodes : NULL;
         n && q->n < WEFT_DNS_MAX_ADDRS; n = n->ai_next) {
        if ((n->ai_family != AF_INET && n->ai_family != AF_INET6) ||
            n->ai_addrlen > sizeof q->a[0].ss)
            continue;
        memcpy(&q->a[q->n].ss, n->ai_addr, n->ai_addrlen);
        q->a[q->n].len = n->ai_addrlen;
        if (n->ai_ttl < q->ttl)
            q->ttl = n->ai_ttl;
        q->n++;
    }
    if (res)
        ares_freeaddrinfo(res);
}

static int status_code(int st)
{
    switch (st) {
    case ARES_SUCCESS: return 0;
    case ARES_ENOTFOUND: case ARES_ENODATA: case ARES_ENONAME: return -ENOENT;
    case ARES_ENOMEM: return -ENOMEM;
    case ARES_ETIMEOUT: return -ETIMEDOUT;
    case ARES_ECANCELLED: case ARES_EDESTRUCTION: return -ECANCELED;
    case ARES_EBADNAME: case ARES_EBADFAMILY: return -EINVAL;
    }
    return -EAGAIN;                       /* server failure, refused, bad reply */
}

/* Drives the channel until the answer, an error, or the end of the scope. */
static int drive(ares_channel ch, struct lookup *q)
{
    while (!q->done) {
        struct timeval tv, *tvp = ares_timeout(ch, NULL, &tv);
        weft_time slice = tvp ? tv.tv_sec * WEFT_SEC + tv.tv_usec * WEFT_US : WEFT_SEC;
        if (q->nsocks > 1 && slice > 20 * WEFT_MS)
            slice = 20 * WEFT_MS;         /* several sockets: look at each often */
        int rc = 0, fd = q->nsocks ? q->socks[0] : -1;
        weft_scope sc;
        weft_scope_enter(&sc, slice);
        if (fd >= 0)
            rc = weft_fd_wait(fd, WEFT_READ);
        else
            rc = weft_sleep(slice);
        bool slice_over = weft_scope_exit(&sc);
        if (rc && !(rc == -ETIMEDOUT && slice_over))
            return rc;                    /* cancelled, or the outer deadline */
        if (rc == 0 && fd >= 0)
            ares_process_fd(ch, fd, ARES_SOCKET_BAD);
        else
            ares_process_fd(ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);   /* timeouts */
        for (int i = 1; i < q->nsocks && !q->done; i++)
            ares_process_fd(ch, q->socks[i], ARES_SOCKET_BAD);
    }
    return status_code(q->status);
}

static int literal(const char *host, weft_addr *a)
{
    memset(a, 0, sizeof *a);
    struct sockaddr_in *s4 = (struct sockaddr_in *)&a->ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a->ss;
    if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        a->len = sizeof *s4;
        return 1;
    }
    if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        a->len = sizeof *s6;
        return 1;
    }
    return 0;
}

int weft_dns_resolve(const char *host, int port, weft_addr *out, int max, weft_time timeout)
{
    if (!weft_self())
        return -EPERM;
    if (!host || !out || max < 1 || port < 0 || port > 65535)
        return -EINVAL;
    size_t hl = strlen(host);
    char name[256];
    if (hl == 0 || hl >= sizeof name)
        return -EINVAL;
    if (host[0] == '[' && hl > 2 && host[hl - 1] == ']')
        hl -= 2, host++;
    memcpy(name, host, hl);
    name[hl] = 0;

    int n = literal(name, &out[0]);
    if (!n) {
        struct cache_entry *e = cache_find(name);
        if (e && e->expires > weft_now()) {
            n = e->n < max ? e->n : max;
            memcpy(out, e->a, (size_t)n * sizeof *out);
        }
    }
    if (!n) {
        int rc = weft__interrupted(WEFT_FOREVER, 0);
        if (rc)
            return rc;
        pthread_once(&init_once, lib_init);
        if (init_rc != ARES_SUCCESS)
            return -ENOMEM;
        struct lookup q = { 0 };
        struct ares_options opts = { .sock_state_cb = on_sock, .sock_state_cb_data = &q };
        ares_channel ch;
        if (ares_init_options(&ch, &opts, ARES_OPT_SOCK_STATE_CB) != ARES_SUCCESS)
            return -ENOMEM;
        pthread_mutex_lock(&servers_mu);
        if (servers)
            ares_set_servers_ports_csv(ch, servers);
        pthread_mutex_unlock(&servers_mu);
        struct ares_addrinfo_hints hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
        ares_getaddrinfo(ch, name, NULL, &hints, on_answer, &q);
        weft_scope sc;
        weft_scope_enter(&sc, timeout > 0 ? timeout : 10 * WEFT_SEC);
        rc = drive(ch, &q);
        weft_scope_exit(&sc);
        q.done = true;
        ares_destroy(ch);                 /* forgets and closes its sockets */
        if (rc)
            return rc;
        if (!q.n)
            return -ENOENT;
        cache_put(name, q.a, q.n, q.ttl);
        n = q.n < max ? q.n : max;
        memcpy(out, q.a, (size_t)n * sizeof *out);
    }
    for (int i = 0; i < n; i++)
        set_port(&out[i], port);
    return n;
}
