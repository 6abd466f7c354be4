/*
 * Name resolution with c-ares (weft/dns.h).
 *
 * A lookup owns a fresh channel (so /etc/hosts and resolv.conf changes
 * apply, and no driver task is shared between lookups): it starts
 * ares_getaddrinfo, and watcher tasks wait on every socket of the channel
 * in each direction c-ares wants (registered as foreign fds, forgotten
 * through the socket-state callback before c-ares closes them), while the
 * lookup's task waits until the answer arrives, c-ares' own retry timer
 * says to process timeouts, or the deadline passes. Answers are cached per
 * loop.
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

/*
 * c-ares says through the socket-state callback which of its sockets it
 * wants to read (all of them, while open) and write (a TCP socket with a
 * query queued, or still connecting). Each wanted direction of each
 * socket gets a watcher task that waits on it as a foreign fd and hands
 * the readiness to ares_process_fd, so an answer on any socket is seen as
 * soon as it arrives and a TCP query goes out as soon as the socket can
 * take it. The lookup's own task waits for the answer, waking only when
 * c-ares' retry timer is due. c-ares calls never suspend, so the tasks
 * never interleave inside one.
 */
struct sock {
    int fd;
    bool closed;                          /* c-ares closed it: its watchers leave */
    bool want_write;
    bool reading, writing;                /* a watcher runs for that direction */
    struct lookup *q;
    struct sock *next;
};

struct lookup {
    ares_channel ch;
    bool done;                            /* the answer (or c-ares' error) is in */
    bool over;                            /* the channel is gone: no more c-ares calls */
    int status, ttl, n, err;
    weft_addr a[WEFT_DNS_MAX_ADDRS];
    weft_event wake;                      /* done, or err set */
    weft_group *watchers;
    struct sock *socks;                   /* every socket of the lookup, freed at its end */
};

static void fail(struct lookup *q, int err)
{
    if (!q->err)
        q->err = err;
    weft_event_set(&q->wake);
}

/* Waits on one direction of k and lets c-ares handle it, while c-ares
 * still wants that direction. */
static int watch(struct sock *k, int events)
{
    struct lookup *q = k->q;
    bool rd = events == WEFT_READ;
    while (!k->closed && !q->over && (rd || k->want_write)) {
        int rc = weft_fd_wait(k->fd, events);
        if (k->closed || q->over)
            break;                        /* -EBADF from the forget, or the end */
        if (rc) {
            fail(q, rc);
            break;
        }
        ares_process_fd(q->ch, rd ? k->fd : ARES_SOCKET_BAD, rd ? ARES_SOCKET_BAD : k->fd);
    }
    if (rd)
        k->reading = false;
    else
        k->writing = false;
    return 0;
}

static int watch_read(void *arg) { return watch(arg, WEFT_READ); }
static int watch_write(void *arg) { return watch(arg, WEFT_WRITE); }

static struct sock *sock_find(struct lookup *q, int fd)
{
    for (struct sock *k = q->socks; k; k = k->next)
        if (k->fd == fd && !k->closed)
            return k;
    return NULL;
}

/* Starts the watcher for one direction of k unless it runs already. */
static void watch_start(struct sock *k, bool *running, weft_fn fn, const char *name)
{
    if (*running)
        return;
    int rc = weft_spawn(k->q->watchers, fn, k, name);
    if (rc)
        fail(k->q, rc);
    *running = rc == 0;
}

/* c-ares' socket-state callback: what it wants of fd now. */
static void on_sock(void *arg, ares_socket_t fd, int readable, int writable)
{
    struct lookup *q = arg;
    struct sock *k = sock_find(q, fd);
    if (!readable && !writable) {
        if (k) {
            k->closed = true;
            weft_fd_forget(fd);           /* c-ares closes it next; its watchers wake */
        }
        return;
    }
    if (!k) {
        if (!(k = weft__calloc(1, sizeof *k))) {
            fail(q, -ENOMEM);
            return;
        }
        *k = (struct sock){ .fd = fd, .q = q, .next = q->socks };
        q->socks = k;
    }
    k->want_write = writable;
    if (readable)
        watch_start(k, &k->reading, watch_read, "dns-read");
    if (writable)
        watch_start(k, &k->writing, watch_write, "dns-write");
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
    weft_event_set(&q->wake);
}

static int status_code(int st)
{
    switch (st) {
    case ARES_SUCCESS: return 0;
    case ARES_ENOTFOUND: case ARES_ENONAME: return -WEFT_ENOTFOUND;   /* NXDOMAIN */
    case ARES_ENODATA: return -WEFT_ENOADDR;                         /* the name, no address */
    case ARES_ENOMEM: return -ENOMEM;
    case ARES_ETIMEOUT: return -ETIMEDOUT;
    case ARES_ECANCELLED: case ARES_EDESTRUCTION: return -ECANCELED;
    case ARES_EBADNAME: case ARES_EBADFAMILY: return -EINVAL;
    }
    return -WEFT_EDNS;                    /* server failure, refused, bad reply */
}

/* Waits for the answer, an error, or the end of the scope, letting c-ares
 * retry when its timer says so (the watchers do the rest). */
static int drive(struct lookup *q)
{
    while (!q->done && !q->err) {
        struct timeval tv, *tvp = ares_timeout(q->ch, NULL, &tv);
        weft_scope sc;
        weft_scope_enter(&sc, tvp ? tv.tv_sec * WEFT_SEC + tv.tv_usec * WEFT_US : WEFT_FOREVER);
        int rc = weft_event_wait(&q->wake);
        bool retry_due = weft_scope_exit(&sc);
        if (rc == -ETIMEDOUT && retry_due)
            ares_process_fd(q->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
        else if (rc)
            return rc;                    /* cancelled, or the outer deadline */
    }
    return q->err ? q->err : status_code(q->status);
}

/* Runs one lookup of name on a fresh channel into q. */
static int run_lookup(struct lookup *q, const char *name, weft_time timeout)
{
    weft_event_init(&q->wake);
    if (!(q->watchers = weft_group_new()))
        return -ENOMEM;
    struct ares_options opts = { .sock_state_cb = on_sock, .sock_state_cb_data = q };
    int rc = -ENOMEM;
    if (ares_init_options(&q->ch, &opts, ARES_OPT_SOCK_STATE_CB) == ARES_SUCCESS) {
        pthread_mutex_lock(&servers_mu);
        if (servers)
            ares_set_servers_ports_csv(q->ch, servers);
        pthread_mutex_unlock(&servers_mu);
        struct ares_addrinfo_hints hints = { .ai_family = AF_UNSPEC,
                                             .ai_socktype = SOCK_STREAM };
        weft_scope sc;
        weft_scope_enter(&sc, timeout > 0 ? timeout : 10 * WEFT_SEC);
        ares_getaddrinfo(q->ch, name, NULL, &hints, on_answer, q);
        rc = drive(q);
        weft_scope_exit(&sc);
        ares_destroy(q->ch);              /* forgets and closes its sockets */
    }
    q->over = true;
    weft_group_cancel(q->watchers);       /* any left waiting leave now */
    weft_group_wait(q->watchers);
    while (q->socks) {
        struct sock *k = q->socks;
        q->socks = k->next;
        weft__free(k);
    }
    return rc;
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
        rc = run_lookup(&q, name, timeout);
        if (rc)
            return rc;
        if (!q.n)
            return -WEFT_ENOADDR;
        cache_put(name, q.a, q.n, q.ttl);
        n = q.n < max ? q.n : max;
        memcpy(out, q.a, (size_t)n * sizeof *out);
    }
    for (int i = 0; i < n; i++)
        set_port(&out[i], port);
    return n;
}
