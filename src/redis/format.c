/*
 * Commands in RESP (an array of bulk strings), appended to a caller's
 * buffer: the connection's output buffer, so a command costs no
 * allocation of its own once that buffer has grown to its working size.
 *
 * weft__redis_format_argv takes the arguments ready-made (binary-safe).
 * weft__redis_format_v reads a format with hiredis's rules
 * (redisvFormatCommand), written anew:
 *  - spaces split arguments (runs of them count as one; leading and
 *    trailing ones make nothing);
 *  - %s (a C string) and %b (a pointer and a size_t) are one argument each
 *    even with spaces inside, and glue to the text around them: "key:%s"
 *    is one argument; an empty %s or %b is still an argument;
 *  - %d (int), %lld (long long) and %% (a '%') glue the same way.
 * Any other conversion (hiredis passes %f, %x, %u... to printf; weft does
 * not, so a format means the same everywhere), a '%' ending the format, a
 * NULL %s, a NULL %b with a length, or a format with no argument is
 * -EINVAL, and nothing is appended.
 *
 * A format is walked three times: once to count and measure the
 * arguments (and validate, before anything is written), then per argument
 * once to measure it for its "$<len>" header and once to copy it. The
 * va_list is copied for each walk.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* room for len more bytes in buf, the capacity doubled as needed */
static int reserve(char **buf, size_t len, size_t *cap, size_t more)
{
    size_t need;
    if (__builtin_add_overflow(len, more, &need))
        return -ENOMEM;
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 64;
    while (c < need)
        if (__builtin_mul_overflow(c, 2, &c))
            return -ENOMEM;
    char *nb = weft__realloc(*buf, c);
    if (!nb)
        return -ENOMEM;
    *buf = nb;
    *cap = c;
    return 0;
}

static size_t ndigits(size_t v)
{
    size_t n = 1;
    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

/* "<c><v>\r\n" at p; returns the end */
static char *header(char *p, char c, size_t v)
{
    *p++ = c;
    size_t n = ndigits(v);
    for (size_t i = n; i-- > 0; v /= 10)
        p[i] = (char)('0' + v % 10);
    p += n;
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

static size_t bulk_size(size_t len)
{
    return 1 + ndigits(len) + 2 + len + 2;
}

int weft__redis_format_argv(char **buf, size_t *len, size_t *cap, int argc,
                            const char *const *argv, const size_t *argvlen)
{
    if (argc < 1 || !argv)
        return -EINVAL;
    size_t total = 1 + ndigits((size_t)argc) + 2;
    for (int i = 0; i < argc; i++) {
        if (!argv[i] && (!argvlen || argvlen[i]))
            return -EINVAL;
        size_t n = argvlen ? argvlen[i] : strlen(argv[i]);
        if (n > SIZE_MAX / 2 || __builtin_add_overflow(total, bulk_size(n), &total))
            return -ENOMEM;
    }
    int rc = reserve(buf, *len, cap, total);
    if (rc)
        return rc;
    char *p = header(*buf + *len, '*', (size_t)argc);
    for (int i = 0; i < argc; i++) {
        size_t n = argvlen ? argvlen[i] : strlen(argv[i]);
        p = header(p, '$', n);
        if (n)
            memcpy(p, argv[i], n);
        p += n;
        *p++ = '\r';
        *p++ = '\n';
    }
    *len += total;
    return 0;
}

/* Appends n bytes to out (when not NULL); counts them. */
static void put(char **out, size_t *len, const void *s, size_t n)
{
    if (*out && n) {
        memcpy(*out, s, n);
        *out += n;
    }
    *len += n;
}

/* Walks one argument from *f (not a space): its bytes go to *out when it
 * is not NULL, its length to *arglen. *f is left at the space or NUL
 * ending it. 0 or -EINVAL. */
static int walk_arg(const char **f, va_list *ap, char **out, size_t *arglen)
{
    const char *p = *f;
    size_t n = 0;
    char num[32];
    while (*p && *p != ' ') {
        const char *lit = p;
        while (*p && *p != ' ' && *p != '%')
            p++;
        put(out, &n, lit, (size_t)(p - lit));
        if (*p != '%')
            break;
        p++;
        if (*p == 's') {
            const char *s = va_arg(*ap, const char *);
            if (!s)
                return -EINVAL;
            put(out, &n, s, strlen(s));
        } else if (*p == 'b') {
            const void *b = va_arg(*ap, const void *);
            size_t bl = va_arg(*ap, size_t);
            if (!b && bl)
                return -EINVAL;
            put(out, &n, b, bl);
        } else if (*p == 'd') {
            put(out, &n, num, (size_t)snprintf(num, sizeof num, "%d", va_arg(*ap, int)));
        } else if (p[0] == 'l' && p[1] == 'l' && p[2] == 'd') {
            put(out, &n, num,
                (size_t)snprintf(num, sizeof num, "%lld", va_arg(*ap, long long)));
            p += 2;
        } else if (*p == '%') {
            put(out, &n, "%", 1);
        } else {
            return -EINVAL;               /* unknown, or '%' at the end */
        }
        p++;
    }
    *f = p;
    *arglen = n;
    return 0;
}

static const char *skip_spaces(const char *f)
{
    while (*f == ' ')
        f++;
    return f;
}

/* The number of arguments and the bytes of the whole command. */
static int measure(const char *fmt, va_list ap, size_t *argc, size_t *total)
{
    va_list a;
    va_copy(a, ap);
    size_t n = 0, bytes = 0, len;
    int rc = 0;
    char *none = NULL;
    for (const char *f = skip_spaces(fmt); *f && !rc; f = skip_spaces(f)) {
        rc = walk_arg(&f, &a, &none, &len);
        if (!rc && (len > SIZE_MAX / 2 || __builtin_add_overflow(bytes, bulk_size(len), &bytes)))
            rc = -ENOMEM;
        n++;
    }
    va_end(a);
    if (!rc && n == 0)
        rc = -EINVAL;
    *argc = n;
    *total = bytes + 1 + ndigits(n) + 2;
    return rc;
}

int weft__redis_format_v(char **buf, size_t *len, size_t *cap, const char *fmt, va_list ap)
{
    if (!fmt)
        return -EINVAL;
    size_t argc, total;
    int rc = measure(fmt, ap, &argc, &total);
    if (!rc)
        rc = reserve(buf, *len, cap, total);
    if (rc)
        return rc;
    va_list a;
    va_copy(a, ap);
    char *p = header(*buf + *len, '*', argc);
    for (const char *f = skip_spaces(fmt); *f; f = skip_spaces(f)) {
        /* measured before it is copied: the header comes first */
        va_list m;
        va_copy(m, a);
        const char *g = f;
        char *none = NULL;
        size_t n;
        walk_arg(&g, &m, &none, &n);
        va_end(m);
        p = header(p, '$', n);
        walk_arg(&f, &a, &p, &n);
        *p++ = '\r';
        *p++ = '\n';
    }
    va_end(a);
    *len += total;
    return 0;
}
