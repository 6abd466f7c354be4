/*
 * The HTTP/1.1 client (weft/http.h).
 *
 * Connections live in one weft_pool per origin; a client-wide semaphore
 * holds one permit per open connection, so the total stays under
 * max_connections (this loop's share of it under weft_run, as each pool
 * takes its loop's share of max_per_origin). A request takes a connection,
 * writes the request head and body with one writev, and feeds what
 * arrives to llhttp straight from the connection's read buffer (no copy of
 * the head; the body is copied once into the response). The parser pauses
 * at the end of the response; bytes after it were sent unasked (requests
 * are not pipelined), so such a connection is closed rather than reused,
 * and every reuse checks that nothing came meanwhile (conn_stale): they
 * would be taken for the next request's response. Anything that
 * interrupts a request breaks the connection (weft_conn) and it is
 * released as broken, never reused.
 *
 * Origins and the client are reference counted (client_internal.h): a
 * connection or stream still lent when the client is freed keeps its
 * origin, its pool and the client's memory until it comes back.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "client_internal.h"

/* ---- lifetimes ------------------------------------------------------------ */

void weft__client_hold(weft_http_client *cl) { cl->refs++; }

void weft__client_put(weft_http_client *cl)
{
    if (--cl->refs)
        return;
    if (cl->own_tls)                      /* no connection uses it any more */
        weft_tls_ctx_free(cl->tls);
    weft__free(cl);
}

static void origin_put(struct origin *o)
{
    if (--o->refs) {
        if (o->refs == 1)
            o->idle_since = weft_now();   /* (only the list, if on it, holds it) */
        return;
    }
    weft_http_client *cl = o->cl;
    weft__free(o);
    weft__client_put(cl);
}

/* ---- connections ---------------------------------------------------------- */

static int conn_connect(struct origin *o, void **res);

/* Runs in the pool's creator task, which outlives the request that asked
 * for it: it holds its own reference to the origin (kept by the new
 * connection, dropped on failure), so neither the janitor nor
 * weft_http_client_free can free the origin under it. */
static int conn_create(void *ctx, void **res)
{
    struct origin *o = ctx;
    o->refs++;
    int rc = conn_connect(o, res);
    if (rc)
        origin_put(o);                    /* may be the last user of o and the client */
    return rc;
}

static int conn_connect(struct origin *o, void **res)
{
    weft_http_client *cl = o->cl;
    int rc = weft_sem_try_acquire(&cl->total);  /* the total bound */
    if (rc) {
        /* at the bound: an idle connection of another origin gives way
         * rather than hold its permit until it idles out */
        for (struct origin *x = cl->origins; x; x = x->next)
            if (x != o && weft_pool_trim(x->pool, 1) == 1)
                break;
        weft_scope sc;
        weft_scope_enter(&sc, cl->o.pool_timeout);
        rc = weft_sem_acquire(&cl->total);
        bool ours = weft_scope_exit(&sc);
        if (rc)
            return rc == -ETIMEDOUT && ours ? -WEFT_EPOOL_TIMEOUT : rc;
    }
    struct hconn *h = weft__calloc(1, sizeof *h);
    weft_net_opts no = { .connect_timeout = cl->o.connect_timeout,
                         .read_timeout = cl->o.read_timeout,
                         .write_timeout = cl->o.write_timeout };
    rc = h ? weft_tcp_connect(&h->c, o->host, o->port, &no) : -ENOMEM;
    if (rc == 0 && o->tls) {
        /* the handshake belongs to connecting: its timeout is the connect one */
        weft_scope hs;
        weft_scope_enter(&hs, cl->o.connect_timeout);
        rc = weft_tls_connect(h->c, cl->tls, o->host);
        if (weft_scope_exit(&hs) && rc == -ETIMEDOUT)
            rc = -WEFT_ECONNECT_TIMEOUT;
    }
    if (rc) {
        const char *why = h && h->c && o->tls ? weft_tls_error(h->c) : NULL;
        snprintf(o->connect_error, sizeof o->connect_error, "%s", why && *why ? why
                                                                   : weft_strerror(rc));
        if (h)
            weft_conn_close(h->c);
        weft__free(h);
        weft_sem_release(&cl->total);
        return rc;
    }
    o->connect_error[0] = 0;
    h->o = o;                             /* with conn_create's reference */
    cl->stats.connections++;
    cl->stats.open++;
    *res = h;
    return 0;
}

static void conn_destroy(void *ctx, void *res)
{
    struct origin *o = ctx;
    struct hconn *h = res;
    weft_conn_close(h->c);
    weft__free(h);
    o->cl->stats.open--;
    weft_sem_release(&o->cl->total);
    origin_put(o);                        /* may be the last user of o and the client */
}

/* A connection the server closed, or sent bytes on that nobody asked for,
 * is not reused: they would be read as the next request's response. Run
 * on every reuse, however short the idle time; mostly without a syscall
 * (weft_conn_pending). */
static bool conn_stale(struct hconn *h) { return h->used && weft_conn_pending(h->c) != 0; }

/* u's origin, with a reference for the caller (origin_put). */
static int origin_get(weft_http_client *cl, const weft_url *u, struct origin **out)
{
    if (cl->closing)
        return -WEFT_ECLOSED;
    char key[300];
    snprintf(key, sizeof key, "%s://%s:%d", u->scheme, u->host, u->port);
    for (struct origin *o = cl->origins; o; o = o->next)
        if (strcmp(o->key, key) == 0) {
            o->refs++;
            *out = o;
            return 0;
        }
    if (u->tls && !cl->tls) {             /* OpenSSL contexts cost milliseconds */
        if (!(cl->tls = weft_tls_client_new()))
            return -ENOMEM;
        cl->own_tls = true;
    }
    struct origin *o = weft__calloc(1, sizeof *o);
    if (!o)
        return -ENOMEM;
    memcpy(o->key, key, sizeof key);
    snprintf(o->host, sizeof o->host, "%s", u->host);
    o->port = u->port;
    o->tls = u->tls;
    o->cl = cl;
    /* no pool check: the pool's runs only after check_idle (a coarse
     * clock's millisecond at best), conn_stale on every reuse */
    static const weft_pool_ops ops = { conn_create, conn_destroy, NULL, NULL };
    weft_pool_config pc = { .name = "http", .max_size = cl->o.max_per_origin,
                            .max_idle = cl->o.max_idle_per_origin,
                            .acquire_timeout = cl->o.pool_timeout,
                            .idle_timeout = cl->o.idle_timeout, .supervisor = cl->bg };
    if (!(o->pool = weft_pool_new(&pc, &ops, o))) {
        int rc = errno ? -errno : -ENOMEM;
        weft__free(o);
        return rc;
    }
    o->refs = 2;                          /* the list's and the caller's */
    cl->refs++;
    o->next = cl->origins;
    cl->origins = o;
    weft_event_set(&cl->has_origins);
    *out = o;
    return 0;
}

/* ---- idle origins ---------------------------------------------------------- */

/* Drops the origins that had no connection and no request for idle_timeout,
 * with their pools and maintenance tasks: a crawler over many hosts keeps
 * only the ones it uses. They leave the list before their pools close (a
 * close may wait), so a request meanwhile makes a fresh origin. */
static void drop_idle(weft_http_client *cl)
{
    weft_time now = weft_now();
    struct origin *idle = NULL, **pp = &cl->origins, *o;
    while ((o = *pp)) {
        if (o->refs == 1 && now - o->idle_since >= cl->o.idle_timeout) {
            *pp = o->next;
            o->next = idle;
            idle = o;
        } else {
            pp = &o->next;
        }
    }
    while ((o = idle)) {
        idle = o->next;
        weft_pool_close(o->pool, 0);      /* nothing is lent: nothing to wait for */
        origin_put(o);
    }
}

/* The client's one background task of its own: sweeps idle origins while
 * there are any, sleeps on an event while there are none. */
static int janitor(void *arg)
{
    weft_http_client *cl = arg;
    weft_time period = cl->o.idle_timeout < WEFT_SEC ? cl->o.idle_timeout : WEFT_SEC;
    if (period < 10 * WEFT_MS)
        period = 10 * WEFT_MS;            /* an origin may outlive its timeout by this */
    for (;;) {
        int rc = cl->origins ? weft_sleep(period) : weft_event_wait(&cl->has_origins);
        if (rc == -ECANCELED)
            return 0;                     /* the client is being freed */
        weft_event_clear(&cl->has_origins);
        drop_idle(cl);
    }
}

/* ---- the client ----------------------------------------------------------- */

static void bg_error(const char *task, int err, void *ctx)
{
    (void)ctx;
    weft_log(WEFT_LOG_ERROR, "http client: background task '%s' failed: %s", task,
             weft_strerror(err));
}

weft_http_client *weft_http_client_new(const weft_http_client_opts *opts)
{
    if (!weft_self()) {
        errno = EPERM;
        return NULL;
    }
    weft_http_client *cl = weft__calloc(1, sizeof *cl);
    if (!cl)
        return NULL;
    if (opts)
        cl->o = *opts;
    weft_http_client_opts *o = &cl->o;
    if (!o->max_connections)
        o->max_connections = 100;
    if (!o->max_per_origin || o->max_per_origin > o->max_connections)
        o->max_per_origin = o->max_connections;
    if (!o->max_idle_per_origin)
        o->max_idle_per_origin = o->max_per_origin < 20 ? o->max_per_origin : 20;
    if (!o->idle_timeout)
        o->idle_timeout = 5 * WEFT_SEC;
    if (!o->connect_timeout)
        o->connect_timeout = 10 * WEFT_SEC;
    if (!o->read_timeout)
        o->read_timeout = 30 * WEFT_SEC;
    if (!o->write_timeout)
        o->write_timeout = 30 * WEFT_SEC;
    if (!o->pool_timeout)
        o->pool_timeout = 30 * WEFT_SEC;
    if (!o->max_body)
        o->max_body = 16 << 20;
    if (!o->max_header_bytes)
        o->max_header_bytes = 64 << 10;
    if (!o->user_agent)
        o->user_agent = "weft/0.1";
    cl->tls = o->tls;                     /* else made for the first https origin */
    weft_sem_init(&cl->total, weft__loop_share(o->max_connections, 1));  /* a client per loop */
    weft_event_init(&cl->has_origins);
    if (!(cl->bg = weft_supervisor_new(bg_error, cl))) {
        weft__free(cl);
        return NULL;
    }
    int rc = weft_spawn(cl->bg, janitor, cl, "http client janitor");
    if (rc) {
        weft_supervisor_close(cl->bg, 0);
        weft__free(cl);
        errno = -rc;
        return NULL;
    }
    cl->refs = 1;                         /* the caller's, dropped by free */
    return cl;
}

void weft_http_client_free(weft_http_client *cl, weft_time grace)
{
    if (!cl || cl->closing)
        return;
    cl->closing = true;                   /* no new origins, no new requests */
    weft_time until = weft_now() + (grace > 0 ? grace : 0);
    struct origin *o;
    while ((o = cl->origins)) {
        cl->origins = o->next;
        weft_time left = until - weft_now();   /* one grace for all, not one each */
        weft_pool_close(o->pool, left > 0 ? left : 0);  /* past it, a lent one keeps o */
        origin_put(o);
    }
    weft_supervisor_close(cl->bg, 0);
    weft__client_put(cl);                 /* the rest goes with the last stream */
}

void weft_http_client_stats_get(const weft_http_client *cl, weft_http_client_stats *s)
{
    if (cl && s)
        *s = cl->stats;
}

/* ---- requests ------------------------------------------------------------- */

static bool token(const char *s)
{
    if (!s || !*s)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("!#$%&'*+-.^_`|~", *s))
            return false;
    return true;
}

static bool field_value(const char *s)
{
    for (; s && *s; s++)
        if ((unsigned char)*s < 0x20 && *s != '\t')
            return false;                 /* no CR/LF: no header injection */
    return s != NULL;
}

static bool idempotent(const char *m)
{
    static const char *const ok[] = { "GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE" };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
        if (strcmp(m, ok[i]) == 0)
            return true;
    return false;
}

/* Builds the request head into a heap buffer. */
static int build_head(weft_http_client *cl, const weft_url *u, const weft_http_request *req,
                      const char *method, weft_http_response *r, char **out, size_t *len)
{
    if (!token(method)) {
        snprintf(r->error, sizeof r->error, "bad method");
        return -EINVAL;
    }
    char auth[300];
    weft_url_authority(u, auth, sizeof auth);
    size_t need = 200 + strlen(method) + strlen(u->path) + strlen(u->query) + strlen(auth) +
                  strlen(cl->o.user_agent);       /* 200: the fixed text and a length */
    for (int i = 0; i < req->nheaders; i++) {
        if (!token(req->headers[i].name) || !field_value(req->headers[i].value)) {
            snprintf(r->error, sizeof r->error, "bad request header '%.60s'",
                     req->headers[i].name ? req->headers[i].name : "(null)");
            return -EINVAL;
        }
        need += strlen(req->headers[i].name) + strlen(req->headers[i].value) + 4;
    }
    char *b = weft__malloc(need);
    if (!b)
        return -ENOMEM;
    char *p = weft__put_str(b, method);      /* no printf: it showed per request */
    *p++ = ' ';
    p = weft__put_str(p, u->path);
    if (*u->query) {
        *p++ = '?';
        p = weft__put_str(p, u->query);
    }
    p = weft__put_str(p, " HTTP/1.1\r\nHost: ");
    p = weft__put_str(p, auth);
    p = weft__put_str(p, "\r\nUser-Agent: ");
    p = weft__put_str(p, cl->o.user_agent);
    p = weft__put_str(p, "\r\n");
    if (!cl->o.no_decompress)
        p = weft__put_str(p, "Accept-Encoding: gzip, deflate\r\n");
    if (req->body_read) {
        p = weft__put_str(p, "Transfer-Encoding: chunked\r\n");
    } else if (req->body_len || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0) {
        p = weft__put_str(p, "Content-Length: ");
        p = weft__put_uint(p, req->body_len);
        p = weft__put_str(p, "\r\n");
    }
    for (int i = 0; i < req->nheaders; i++) {
        p = weft__put_str(p, req->headers[i].name);
        p = weft__put_str(p, ": ");
        p = weft__put_str(p, req->headers[i].value);
        p = weft__put_str(p, "\r\n");
    }
    p = weft__put_str(p, "\r\n");
    size_t n = (size_t)(p - b);
    *out = b;
    *len = n;
    return 0;
}

/* Sends the head and the body, buffered or streamed as chunks. */
static int send_request(weft_conn *c, char *head, size_t hlen, const weft_http_request *req,
                        weft_http_response *r)
{
    struct iovec iov[3] = { { head, hlen }, { (void *)req->body, req->body_len } };
    if (!req->body_read)
        return weft_conn_writev(c, iov, req->body_len ? 2 : 1);
    int rc = weft_conn_write(c, head, hlen);
    char *chunk = rc ? NULL : weft__malloc(16384);
    if (!rc && !chunk)
        rc = -ENOMEM;
    while (!rc) {
        int n = req->body_read(req->body_ctx, chunk, 16384);
        if (n < 0 || n > 16384) {
            rc = n < 0 ? n : -EINVAL;
            snprintf(r->error, sizeof r->error, "request body: %s", weft_strerror(rc));
            break;
        }
        char size[24];
        int sl = snprintf(size, sizeof size, "%x\r\n", n);
        iov[0] = (struct iovec){ size, (size_t)sl };
        iov[1] = (struct iovec){ chunk, (size_t)n };
        iov[2] = (struct iovec){ "\r\n", 2 };    /* n == 0 ends with "0\r\n\r\n" */
        rc = weft_conn_writev(c, iov, 3);
        if (n == 0)
            break;
    }
    weft__free(chunk);
    return rc;
}

/* A connection of o's pool that is fit for a request: stale idle ones are
 * closed (each once, so this ends). */
static int acquire(struct origin *o, weft_pooled **ph, weft_http_response *r)
{
    int rc;
    while ((rc = weft_pool_acquire(o->pool, ph)) == 0 && conn_stale(weft_pooled_get(*ph))) {
        weft_pool_release_broken(o->pool, *ph);
        *ph = NULL;
    }
    if (rc == -WEFT_EPOOL_TIMEOUT)
        snprintf(r->error, sizeof r->error, "%s", weft_pool_last_error(o->pool));
    else if (rc && rc != -ECANCELED && rc != -ETIMEDOUT && o->connect_error[0])
        snprintf(r->error, sizeof r->error, "%s", o->connect_error);   /* the connect's own */
    return rc;
}

int weft__send_pooled(weft_http_client *cl, const weft_url *u, const weft_http_request *req,
                       const char *method, weft_http_response *r, struct origin **o,
                       weft_pooled **ph)
{
    *o = NULL;
    *ph = NULL;
    struct origin *og;
    int rc = origin_get(cl, u, &og);
    if (rc)
        return rc;
    char *head = NULL;
    size_t hlen;
    rc = build_head(cl, u, req, method, r, &head, &hlen);
    if (!rc)
        rc = acquire(og, ph, r);
    if (*ph) {
        *o = og;
        cl->stats.requests++;
        rc = send_request(((struct hconn *)weft_pooled_get(*ph))->c, head, hlen, req, r);
    } else {
        origin_put(og);
    }
    weft__free(head);
    return rc;
}

void weft__conn_done(struct origin *o, weft_pooled *ph, bool keep)
{
    if (!o)
        return;
    const char *extra;                    /* bytes after the complete response */
    if (keep && weft_conn_peek(((struct hconn *)weft_pooled_get(ph))->c, &extra) == 0)
        weft_pool_release(o->pool, ph);
    else
        weft_pool_release_broken(o->pool, ph);
    origin_put(o);
}

/* One exchange on one pooled connection. *retry: it failed in a way that
 * says the reused connection had been closed by the server. */
static int exchange(weft_http_client *cl, const weft_url *u, const weft_http_request *req,
                    const char *method, weft_http_response *r, bool *retry)
{
    struct origin *o;
    weft_pooled *ph;
    int rc = weft__send_pooled(cl, u, req, method, r, &o, &ph);
    if (!ph)
        return rc;
    struct hconn *h = weft_pooled_get(ph);
    bool reused = h->used, keep = false, any = false;
    h->used = true;
    if (rc == 0)
        rc = weft__read_response(cl, h->c, strcmp(method, "HEAD") == 0, r, &keep, &any);
    weft__conn_done(o, ph, rc == 0 && keep);
    *retry = rc && reused && !any && !req->body_read &&
             (rc == -EPIPE || rc == -ECONNRESET || rc == -WEFT_EEOF);
    return rc;
}

static int resolve_location(weft_url *next, const weft_url *cur, const char *loc)
{
    if (strstr(loc, "://"))
        return weft_url_parse(next, loc);
    if (loc[0] != '/')
        return -EINVAL;                   /* relative paths: not followed */
    char abs[WEFT_URL_MAX + 400], auth[300];
    weft_url_authority(cur, auth, sizeof auth);
    snprintf(abs, sizeof abs, "%s://%s%s", cur->scheme, auth, loc);
    return weft_url_parse(next, abs);
}

static bool same_origin(const weft_url *a, const weft_url *b)
{
    return strcmp(a->scheme, b->scheme) == 0 && strcmp(a->host, b->host) == 0 &&
           a->port == b->port;
}

static bool credential(const char *name)
{
    return strcasecmp(name, "Authorization") == 0 || strcasecmp(name, "Cookie") == 0 ||
           strcasecmp(name, "Proxy-Authorization") == 0;
}

/* The caller's headers without the credentials, for a redirect to another
 * origin: a copy of the array (the strings stay the caller's) in *kept. */
static int drop_credentials(weft_http_request *cur, weft_http_header **kept)
{
    if (*kept)
        return 0;                         /* dropped already: they stay dropped */
    weft_http_header *h = weft__calloc((size_t)cur->nheaders + 1, sizeof *h);
    if (!h)
        return -ENOMEM;
    int n = 0;
    for (int i = 0; i < cur->nheaders; i++)
        if (!credential(cur->headers[i].name))
            h[n++] = cur->headers[i];
    cur->headers = *kept = h;
    cur->nheaders = n;
    return 0;
}

/* May the request go on from cur to next? 0, -WEFT_EREDIRECT (an https to
 * http downgrade the caller did not allow), -ENOMEM. */
static int redirect_to(weft_http_client *cl, const weft_url *cur, const weft_url *next,
                       weft_http_request *req, weft_http_header **kept, weft_http_response *r)
{
    if (cur->tls && !next->tls && !cl->o.allow_downgrade) {
        snprintf(r->error, sizeof r->error, "redirect from https to http refused: %s://%s:%d",
                 next->scheme, next->host, next->port);
        return -WEFT_EREDIRECT;
    }
    return same_origin(cur, next) ? 0 : drop_credentials(req, kept);
}

int weft__url_new(const char *url, weft_http_response *r, weft_url **out)
{
    weft_url *u = weft__malloc(sizeof *u);
    if (!u)
        return -ENOMEM;
    int rc = weft_url_parse(u, url);
    if (rc) {
        snprintf(r->error, sizeof r->error, "bad URL: %s", u->error);
        weft__free(u);
        return rc;
    }
    *out = u;
    return 0;
}

/* The request and the redirects it is sent on to. */
static int request(weft_http_client *cl, const weft_http_request *req, weft_http_response *r)
{
    weft_url *u;
    int rc = weft__url_new(req->url, r, &u);
    if (rc)
        return rc;
    weft_scope sc;
    weft_time total = req->timeout ? req->timeout : cl->o.timeout;
    weft_scope_enter(&sc, total ? total : WEFT_FOREVER);
    weft_http_request cur = *req;
    weft_http_header *kept = NULL;        /* cur's headers once credentials went */
    const char *method = req->method ? req->method : "GET";
    bool retried = false;
    for (;;) {
        if (!(r->priv_ = weft__resp_store())) {
            rc = -ENOMEM;
            break;
        }
        bool retry = false;
        rc = exchange(cl, u, &cur, method, r, &retry);
        if (rc && retry && !retried && idempotent(method)) {
            retried = true;               /* once, on a fresh connection */
            cl->stats.retries++;
            int redirects = r->redirects;
            weft_http_response_free(r);
            r->error[0] = 0;
            r->redirects = redirects;
            continue;
        }
        const char *loc = rc == 0 ? weft_http_header_get(r, "Location") : NULL;
        bool redirect = loc && (r->status == 301 || r->status == 302 || r->status == 303 ||
                                r->status == 307 || r->status == 308);
        if (!redirect || r->redirects >= cl->o.max_redirects)
            break;
        weft_url *next = weft__malloc(sizeof *next);
        if (!next) {
            rc = -ENOMEM;
            break;
        }
        if (resolve_location(next, u, loc)) {
            weft__free(next);
            break;                        /* not followable: returned as is */
        }
        if ((rc = redirect_to(cl, u, next, &cur, &kept, r))) {
            weft__free(next);
            break;                        /* the 3xx stays in r */
        }
        if (r->status == 303 || ((r->status == 301 || r->status == 302) &&
                                 strcmp(method, "POST") == 0)) {
            method = "GET";
            cur.body = NULL;
            cur.body_len = 0;
        }
        int redirects = r->redirects + 1;
        weft_http_response_free(r);
        r->redirects = redirects;
        weft__free(u);
        u = next;
        cur.url = NULL;
    }
    weft_scope_exit(&sc);
    weft__free(u);
    weft__free(kept);
    if (rc && !r->error[0])
        snprintf(r->error, sizeof r->error, "%s", weft_strerror(rc));
    return rc;
}

int weft_http_do(weft_http_client *cl, const weft_http_request *req, weft_http_response *r)
{
    if (!r)
        return -EINVAL;
    memset(r, 0, sizeof *r);
    if (!cl || !req || !req->url) {
        snprintf(r->error, sizeof r->error, "no client, request or URL");
        return -EINVAL;
    }
    if (!weft_self())
        return -EPERM;
    weft__client_hold(cl);                /* a free meanwhile leaves it to us */
    int rc = request(cl, req, r);
    weft__client_put(cl);
    return rc;
}

int weft_http_get(weft_http_client *cl, const char *url, weft_http_response *r)
{
    weft_http_request req = { .method = "GET", .url = url };
    return weft_http_do(cl, &req, r);
}
