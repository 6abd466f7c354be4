/*
 * The allocator hook: every allocation weft makes goes through here, so
 * tests can fail each one in turn (curl's torture mode) and check that
 * weft returns -ENOMEM and leaks nothing.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

static weft_allocator cur = { malloc, realloc, free };

void weft_set_allocator(const weft_allocator *a)
{
    if (a && a->malloc && a->realloc && a->free)
        cur = *a;
    else
        cur = (weft_allocator){ malloc, realloc, free };
}

void *weft__malloc(size_t n)
{
    void *p = cur.malloc(n);
    if (!p)
        errno = ENOMEM;
    return p;
}

void *weft__calloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = weft__malloc(n * size);
    if (p)
        memset(p, 0, n * size);
    return p;
}

void *weft__realloc(void *p, size_t n)
{
    void *q = cur.realloc(p, n);
    if (!q)
        errno = ENOMEM;
    return q;
}

void weft__free(void *p) { cur.free(p); }

char *weft__strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = weft__malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

void weft__panic(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if (n > (int)sizeof buf - 2)
        n = sizeof buf - 2;
    buf[n++] = '\n';
    if (write(2, "weft: ", 6) < 0 || write(2, buf, n) < 0) {
        /* nothing left to report with */
    }
    abort();
}
