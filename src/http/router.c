/*
 * The router (weft/router.h): a trie of path segments. Each node has its
 * literal children (a small array, searched linearly: routes per level are
 * few), at most one parameter child, and the handlers registered for the
 * path that ends at it, one per method. Matching walks the segments,
 * trying the literal child first and the parameter child on failure, so
 * "/users/me" beats "/users/{id}" and backtracking stays shallow.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/kernel.h"
#include "weft/router.h"

struct endpoint {
    char method[16];
    void *handler, *ctx;
    char *pattern;                        /* as added, for metrics and logs */
};

struct node {
    char *seg;                            /* literal text, or the parameter name */
    struct node **lits;
    int nlits;
    struct node *param;
    struct endpoint *eps;
    int neps;
};

struct weft_router {
    struct node root;
};

weft_router *weft_router_new(void) { return weft__calloc(1, sizeof(weft_router)); }

static void node_free(struct node *n)
{
    for (int i = 0; i < n->nlits; i++) {
        node_free(n->lits[i]);
        weft__free(n->lits[i]);
    }
    if (n->param) {
        node_free(n->param);
        weft__free(n->param);
    }
    weft__free(n->lits);
    for (int i = 0; i < n->neps; i++)
        weft__free(n->eps[i].pattern);
    weft__free(n->eps);
    weft__free(n->seg);
}

void weft_router_free(weft_router *r)
{
    if (!r)
        return;
    node_free(&r->root);
    weft__free(r);
}

static bool token(const char *s)
{
    if (!*s || strlen(s) >= sizeof ((struct endpoint *)0)->method)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("!#$%&'*+-.^_`|~", *s))
            return false;
    return true;
}

static char *dup_n(const char *s, size_t n)
{
    char *d = weft__malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

/* the child for one pattern segment, made if missing */
static struct node *child(struct node *n, const char *seg, size_t len, int *rc)
{
    if (len >= 2 && seg[0] == '{') {
        if (seg[len - 1] != '}' || len == 2 || memchr(seg + 1, '{', len - 2) ||
            memchr(seg + 1, '}', len - 2)) {
            *rc = -EINVAL;
            return NULL;
        }
        if (n->param) {
            if (strlen(n->param->seg) != len - 2 || memcmp(n->param->seg, seg + 1, len - 2)) {
                *rc = -EINVAL;            /* one position, two names */
                return NULL;
            }
            return n->param;
        }
        struct node *p = weft__calloc(1, sizeof *p);
        if (!p || !(p->seg = dup_n(seg + 1, len - 2))) {
            weft__free(p);
            *rc = -ENOMEM;
            return NULL;
        }
        return n->param = p;
    }
    if (memchr(seg, '{', len) || memchr(seg, '}', len)) {
        *rc = -EINVAL;                    /* a parameter must be a whole segment */
        return NULL;
    }
    for (int i = 0; i < n->nlits; i++)
        if (strlen(n->lits[i]->seg) == len && memcmp(n->lits[i]->seg, seg, len) == 0)
            return n->lits[i];
    struct node **v = weft__realloc(n->lits, (size_t)(n->nlits + 1) * sizeof *v);
    struct node *c = v ? weft__calloc(1, sizeof *c) : NULL;
    if (v)
        n->lits = v;
    if (!c || !(c->seg = dup_n(seg, len))) {
        weft__free(c);
        *rc = -ENOMEM;
        return NULL;
    }
    n->lits[n->nlits++] = c;
    return c;
}

int weft_router_add(weft_router *r, const char *method, const char *pattern, void *handler,
                    void *ctx)
{
    if (!r || !method || !token(method) || !pattern || pattern[0] != '/')
        return -EINVAL;
    struct node *n = &r->root;
    const char *p = pattern + 1;
    int rc = 0, params = 0;
    while (*p) {
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == 0 && end)
            return -EINVAL;               /* "//" */
        if (len && p[0] == '{' && ++params > WEFT_ROUTE_MAX_PARAMS)
            return -EINVAL;
        if (len && !(n = child(n, p, len, &rc)))
            return rc;
        p += len + (end != NULL);
        if (end && !*p) {                 /* trailing slash: its own node */
            if (!(n = child(n, "", 0, &rc)))
                return rc;
        }
    }
    for (int i = 0; i < n->neps; i++)
        if (strcmp(n->eps[i].method, method) == 0)
            return -EEXIST;
    size_t plen = strlen(pattern) + 1;
    char *copy = weft__malloc(plen);
    struct endpoint *e = copy ? weft__realloc(n->eps, (size_t)(n->neps + 1) * sizeof *e) : NULL;
    if (!e) {
        weft__free(copy);
        return -ENOMEM;
    }
    n->eps = e;
    e = &n->eps[n->neps++];
    snprintf(e->method, sizeof e->method, "%s", method);
    e->handler = handler;
    e->ctx = ctx;
    e->pattern = memcpy(copy, pattern, plen);
    return 0;
}

/* the node for path[at...], filling params; NULL if none */
static const struct node *walk(const struct node *n, const char *path, size_t at, size_t len,
                               weft_route_match *m)
{
    if (at == len)
        return n->neps ? n : NULL;
    size_t end = at;
    while (end < len && path[end] != '/')
        end++;
    size_t seg = end - at, next = end < len ? end + 1 : end;
    if (end < len && next == len) {       /* trailing slash */
        for (int i = 0; i < n->nlits; i++)
            if (seg == strlen(n->lits[i]->seg) && !memcmp(n->lits[i]->seg, path + at, seg)) {
                const struct node *c = n->lits[i];
                for (int k = 0; k < c->nlits; k++)
                    if (!c->lits[k]->seg[0] && c->lits[k]->neps)
                        return c->lits[k];
            }
        if (n->param && seg && m->nparams < WEFT_ROUTE_MAX_PARAMS) {
            for (int k = 0; k < n->param->nlits; k++)
                if (!n->param->lits[k]->seg[0] && n->param->lits[k]->neps) {
                    m->params[m->nparams].name = n->param->seg;
                    m->params[m->nparams].value = path + at;
                    m->params[m->nparams++].len = seg;
                    return n->param->lits[k];
                }
        }
        return NULL;
    }
    for (int i = 0; i < n->nlits; i++)
        if (seg == strlen(n->lits[i]->seg) && !memcmp(n->lits[i]->seg, path + at, seg)) {
            const struct node *f = walk(n->lits[i], path, next, len, m);
            if (f)
                return f;
        }
    if (n->param && seg && m->nparams < WEFT_ROUTE_MAX_PARAMS) {
        int saved = m->nparams;
        m->params[m->nparams].name = n->param->seg;
        m->params[m->nparams].value = path + at;
        m->params[m->nparams++].len = seg;
        const struct node *f = walk(n->param, path, next, len, m);
        if (f)
            return f;
        m->nparams = saved;
    }
    return NULL;
}

int weft_router_match(const weft_router *r, const char *method, const char *path,
                      size_t path_len, weft_route_match *m, char *allow, size_t allow_size)
{
    if (!r || !method || !path || !m)
        return -EINVAL;
    memset(m, 0, offsetof(weft_route_match, params));
    if (allow_size)
        allow[0] = 0;
    if (!path_len || path[0] != '/')
        return -ENOENT;
    const struct node *n = walk(&r->root, path, 1, path_len, m);
    if (!n)
        return -ENOENT;
    const struct endpoint *get = NULL;
    for (int i = 0; i < n->neps; i++) {
        if (strcmp(n->eps[i].method, method) == 0) {
            m->handler = n->eps[i].handler;
            m->ctx = n->eps[i].ctx;
            m->pattern = n->eps[i].pattern;
            return 0;
        }
        if (strcmp(n->eps[i].method, "GET") == 0)
            get = &n->eps[i];
    }
    if (get && strcmp(method, "HEAD") == 0) {
        m->handler = get->handler;        /* the server leaves the body out */
        m->ctx = get->ctx;
        m->pattern = get->pattern;
        return 0;
    }
    size_t used = 0;
    bool head = false;
    for (int i = 0; i < n->neps; i++)
        head |= !strcmp(n->eps[i].method, "HEAD");
    for (int i = 0; i < n->neps && allow_size; i++) {
        int k = snprintf(allow + used, allow_size - used, "%s%s", used ? ", " : "",
                         n->eps[i].method);
        used = used + (size_t)k < allow_size ? used + (size_t)k : allow_size - 1;
        if (get == &n->eps[i] && !head) {
            k = snprintf(allow + used, allow_size - used, ", HEAD");
            used = used + (size_t)k < allow_size ? used + (size_t)k : allow_size - 1;
        }
    }
    return -EPERM;
}
