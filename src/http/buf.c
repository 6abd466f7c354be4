/* The growable buffer of the HTTP client and server (heads, bodies). */
#include <errno.h>
#include <string.h>

#include "../core/kernel.h"
#include "internal.h"

int weft__buf_append(char **buf, size_t *len, size_t *cap, const void *data, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t c = *cap ? *cap * 2 : 1024;
        while (c < *len + n + 1)
            c *= 2;
        char *b = weft__realloc(*buf, c);
        if (!b)
            return -ENOMEM;
        *buf = b;
        *cap = c;
    }
    if (n)
        memcpy(*buf + *len, data, n);
    *len += n;
    return 0;
}
