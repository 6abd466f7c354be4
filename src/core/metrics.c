/*
 * The metrics registry and its Prometheus text rendering.
 *
 * Metrics are created under a mutex and never freed (process lifetime, so
 * a pointer handed out is always valid); updates are relaxed atomics.
 * Histogram sums are doubles updated with a compare-and-swap on their bits.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

enum { COUNTER, GAUGE, HISTOGRAM };
static const char *type_names[] = { "counter", "gauge", "histogram" };

struct weft_metric {
    struct weft_metric *next;
    int type;
    char *name, *help;
    size_t family_len;                    /* name up to '{' */
    _Atomic int64_t value;                /* counter, gauge; histogram count */
    size_t nb;
    double *bounds;
    _Atomic uint64_t *buckets;            /* nb + 1, not cumulative */
    _Atomic uint64_t sum_bits;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static weft_metric *head, **tail = &head;

/* family name [a-zA-Z_:][a-zA-Z0-9_:]*, then optionally {labels} */
static bool valid_name(const char *n, size_t *family_len)
{
    size_t i = 0;
    if (!n || !(isalpha((unsigned char)n[0]) || n[0] == '_' || n[0] == ':'))
        return false;
    while (isalnum((unsigned char)n[i]) || n[i] == '_' || n[i] == ':')
        i++;
    *family_len = i;
    if (!n[i])
        return true;
    size_t len = strlen(n);
    return n[i] == '{' && len > i + 1 && n[len - 1] == '}';
}

static weft_metric *lookup(const char *name)
{
    for (weft_metric *m = head; m; m = m->next)
        if (strcmp(m->name, name) == 0)
            return m;
    return NULL;
}

static weft_metric *get(int type, const char *name, const char *help, const double *bounds,
                        size_t nb)
{
    size_t flen;
    if (!valid_name(name, &flen)) {
        errno = EINVAL;
        return NULL;
    }
    pthread_mutex_lock(&mu);
    weft_metric *m = lookup(name);
    if (m) {
        pthread_mutex_unlock(&mu);
        if (m->type != type)
            errno = EINVAL;
        return m->type == type ? m : NULL;
    }
    m = weft__calloc(1, sizeof *m);
    if (!m || !(m->name = weft__strdup(name)) || (help && !(m->help = weft__strdup(help))))
        goto nomem;
    m->type = type;
    m->family_len = flen;
    if (type == HISTOGRAM) {
        m->nb = nb;
        m->bounds = weft__malloc(nb * sizeof *bounds + 1);
        m->buckets = weft__calloc(nb + 1, sizeof *m->buckets);
        if (!m->bounds || !m->buckets)
            goto nomem;
        memcpy(m->bounds, bounds, nb * sizeof *bounds);
    }
    *tail = m;
    tail = &m->next;
    pthread_mutex_unlock(&mu);
    return m;
nomem:
    pthread_mutex_unlock(&mu);
    if (m) {
        weft__free(m->name);
        weft__free(m->help);
        weft__free(m->bounds);
        weft__free((void *)m->buckets);
        weft__free(m);
    }
    errno = ENOMEM;
    return NULL;
}

weft_metric *weft_counter(const char *name, const char *help)
{
    return get(COUNTER, name, help, NULL, 0);
}

weft_metric *weft_gauge(const char *name, const char *help)
{
    return get(GAUGE, name, help, NULL, 0);
}

weft_metric *weft_histogram(const char *name, const char *help, const double *bounds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!bounds || isnan(bounds[i]) || (i && bounds[i] <= bounds[i - 1])) {
            errno = EINVAL;
            return NULL;
        }
    return get(HISTOGRAM, name, help, bounds, n);
}

void weft_metric_add(weft_metric *m, int64_t delta)
{
    if (m && m->type != HISTOGRAM)
        atomic_fetch_add_explicit(&m->value, delta, memory_order_relaxed);
}

void weft_metric_set(weft_metric *m, int64_t v)
{
    if (m && m->type == GAUGE)
        atomic_store_explicit(&m->value, v, memory_order_relaxed);
}

void weft_metric_observe(weft_metric *m, double v) { weft_metric_observe_n(m, v, 1); }

void weft_metric_observe_n(weft_metric *m, double v, uint64_t n)
{
    if (!m || m->type != HISTOGRAM || !n)
        return;
    size_t i = 0;
    while (i < m->nb && v > m->bounds[i])
        i++;
    atomic_fetch_add_explicit(&m->buckets[i], n, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->value, n, memory_order_relaxed);
    v *= (double)n;
    uint64_t old = atomic_load_explicit(&m->sum_bits, memory_order_relaxed), nw;
    do {
        double d;
        memcpy(&d, &old, sizeof d);
        d += v;
        memcpy(&nw, &d, sizeof nw);
    } while (!atomic_compare_exchange_weak_explicit(&m->sum_bits, &old, nw,
                                                    memory_order_relaxed, memory_order_relaxed));
}

int64_t weft_metric_value(const weft_metric *m)
{
    return m ? atomic_load_explicit(&((weft_metric *)m)->value, memory_order_relaxed) : 0;
}

struct out { char *buf; size_t size, len; };

/* the shortest of %.15g..%.17g that reads back as the same double */
static void fmt_double(char *buf, size_t size, double v)
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, size, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->len < o->size ? o->buf + o->len : NULL,
                      o->len < o->size ? o->size - o->len : 0, fmt, ap);
    va_end(ap);
    if (n > 0)
        o->len += (size_t)n;
}

/* name_suffix{labels,extra} with either part optional */
static void series(struct out *o, const weft_metric *m, const char *suffix, const char *extra)
{
    const char *labels = m->name + m->family_len;   /* "" or "{...}" */
    size_t ll = *labels ? strlen(labels) - 2 : 0;
    put(o, "%.*s%s", (int)m->family_len, m->name, suffix);
    if (ll || extra)
        put(o, "{%.*s%s%s}", (int)ll, *labels ? labels + 1 : "", ll && extra ? "," : "",
            extra ? extra : "");
}

static void render_one(struct out *o, const weft_metric *m)
{
    if (m->type != HISTOGRAM) {
        series(o, m, "", NULL);
        put(o, " %lld\n", (long long)weft_metric_value(m));
        return;
    }
    uint64_t cum = 0;
    char le[64];
    for (size_t i = 0; i <= m->nb; i++) {
        cum += atomic_load_explicit(&m->buckets[i], memory_order_relaxed);
        if (i < m->nb) {
            char num[32];
            fmt_double(num, sizeof num, m->bounds[i]);
            snprintf(le, sizeof le, "le=\"%s\"", num);
        } else
            snprintf(le, sizeof le, "le=\"+Inf\"");
        series(o, m, "_bucket", le);
        put(o, " %llu\n", (unsigned long long)cum);
    }
    uint64_t bits = atomic_load_explicit(&((weft_metric *)m)->sum_bits, memory_order_relaxed);
    double sum;
    memcpy(&sum, &bits, sizeof sum);
    char num[32];
    fmt_double(num, sizeof num, sum);
    series(o, m, "_sum", NULL);
    put(o, " %s\n", num);
    series(o, m, "_count", NULL);
    put(o, " %lld\n", (long long)weft_metric_value(m));
}

static bool same_family(const weft_metric *a, const weft_metric *b)
{
    return a->family_len == b->family_len && memcmp(a->name, b->name, a->family_len) == 0;
}

size_t weft_metrics_render(char *buf, size_t size)
{
    struct out o = { buf, size, 0 };
    pthread_mutex_lock(&mu);
    for (weft_metric *m = head; m; m = m->next) {
        weft_metric *first = head;
        while (!same_family(first, m))
            first = first->next;
        if (first != m)
            continue;                     /* family already rendered */
        const char *help = NULL;
        for (weft_metric *k = m; k; k = k->next)
            if (same_family(k, m) && k->help && !help)
                help = k->help;
        if (help)
            put(&o, "# HELP %.*s %s\n", (int)m->family_len, m->name, help);
        put(&o, "# TYPE %.*s %s\n", (int)m->family_len, m->name, type_names[m->type]);
        for (weft_metric *k = m; k; k = k->next)
            if (same_family(k, m))
                render_one(&o, k);
    }
    pthread_mutex_unlock(&mu);
    if (size)
        buf[o.len < size ? o.len : size - 1] = 0;
    return o.len;
}
