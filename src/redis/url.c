/*
 * Redis URLs, parsed strictly: a URL that is not exactly one of
 *
 *   redis://[[user]:password@]host[:port][/db]     TCP, port 6379, db 0
 *   rediss://[[user]:password@]host[:port][/db]    the same over TLS
 *   unix://[[user]:password@]/path[?db=N]          a Unix socket
 *
 * is -EINVAL, with err naming the piece that is wrong. A mistyped URL must
 * fail at weft_redis_new, not reach a server as a different port, database
 * or password.
 *
 * Where the grammar is silent:
 *  - the scheme is case-insensitive (RFC 3986), nothing else is folded;
 *  - the user information ends at the last '@' of the authority (as
 *    Python's urllib, which redis-py uses), user and password are split at
 *    the first ':' and percent-decoded (%XX, a decoded NUL is refused);
 *  - "user@host" (no colon) is a password, as redis-cli reads it: the
 *    grammar makes the user optional and the password not, and redis-py's
 *    reading (a user without password) gives an AUTH it cannot send;
 *  - "redis://:@host" is an empty password (has_pass, AUTH ""); an empty
 *    "@host" is refused;
 *  - redis:// takes no query and no fragment (redis-py's ?db= and its
 *    other options are not accepted: the db goes in the path);
 *  - unix:// takes user information too (AUTH over a socket), then an
 *    absolute path, not percent-decoded, shorter than sun_path, and
 *    db=N as its only query key.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

/* what the error quotes of the input, at most */
#define QUOTE 64
#define Q(n) (int)((size_t)(n) < QUOTE ? (size_t)(n) : QUOTE)

static int bad(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int bad(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decodes s[0..n) into out (size cap, NUL-terminated). 0, or the
 * error's text in err. */
static int decode(const char *s, size_t n, char *out, size_t cap, const char *what, char *err,
                  size_t errlen)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c == 0x7f)
            return bad(err, errlen, "control character or space in the %s (percent-encode it)",
                       what);
        if (c == '%') {
            int hi = i + 2 < n ? hexval(s[i + 1]) : -1;
            int lo = hi >= 0 ? hexval(s[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return bad(err, errlen, "bad percent escape in the %s", what);
            c = (unsigned char)(hi << 4 | lo);
            if (c == 0)
                return bad(err, errlen, "%%00 (NUL) in the %s", what);
            i += 2;
        }
        if (o + 1 >= cap)
            return bad(err, errlen, "%s too long (at most %zu bytes)", what, cap - 1);
        out[o++] = (char)c;
    }
    out[o] = 0;
    return 0;
}

/* A non-negative decimal of digits only, at most max: 0 and *v, or -1. */
static int digits(const char *s, size_t n, long max, long *v)
{
    if (n == 0 || n > 10)
        return -1;
    long x = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        x = x * 10 + (s[i] - '0');
    }
    if (x > max)
        return -1;
    *v = x;
    return 0;
}

static int userinfo(const char *s, size_t n, struct weft__redis_url *u, char *err, size_t errlen)
{
    if (n == 0)
        return bad(err, errlen, "empty user information before '@'");
    const char *colon = memchr(s, ':', n);
    u->has_pass = true;
    if (!colon)                       /* "secret@host": a password, as redis-cli reads it */
        return decode(s, n, u->pass, sizeof u->pass, "password", err, errlen);
    int rc = decode(s, (size_t)(colon - s), u->user, sizeof u->user, "user", err, errlen);
    if (rc)
        return rc;
    return decode(colon + 1, n - (size_t)(colon - s) - 1, u->pass, sizeof u->pass, "password",
                  err, errlen);
}

static bool host_char(char c)
{
    return isalnum((unsigned char)c) || c == '-' || c == '.' || c == '_';
}

/* host[:port] or [v6][:port] in s[0..n) */
static int hostport(const char *s, size_t n, struct weft__redis_url *u, char *err, size_t errlen)
{
    const char *end = s + n, *h = s, *hend, *p;
    if (n && *s == '[') {
        const char *close = memchr(s, ']', n);
        if (!close)
            return bad(err, errlen, "unterminated IPv6 literal '%.*s'", Q(n), s);
        h = s + 1;
        hend = close;
        p = close + 1;
        if (p < end && *p != ':')
            return bad(err, errlen, "junk after IPv6 literal '%.*s'", Q(end - s), s);
        struct in6_addr a;
        char tmp[64];
        if ((size_t)(hend - h) >= sizeof tmp)
            return bad(err, errlen, "bad IPv6 literal '%.*s'", Q(n), s);
        memcpy(tmp, h, (size_t)(hend - h));
        tmp[hend - h] = 0;
        if (inet_pton(AF_INET6, tmp, &a) != 1)
            return bad(err, errlen, "bad IPv6 literal '%s'", tmp);
    } else {
        hend = memchr(s, ':', n);
        if (!hend)
            hend = end;
        p = hend;
        for (const char *c = h; c < hend; c++)
            if (!host_char(*c))
                return bad(err, errlen, "bad character in host '%.*s'", Q(hend - h), h);
    }
    if (hend == h)
        return bad(err, errlen, "missing host");
    if ((size_t)(hend - h) >= sizeof u->host)
        return bad(err, errlen, "host too long (at most %zu bytes)", sizeof u->host - 1);
    memcpy(u->host, h, (size_t)(hend - h));
    u->host[hend - h] = 0;
    if (p == end)
        return 0;
    p++;                              /* the ':' */
    long port;
    if (p == end)
        return bad(err, errlen, "empty port");
    if (digits(p, (size_t)(end - p), 65535, &port) || port == 0 || end - p > 5)
        return bad(err, errlen, "bad port '%.*s'", Q(end - p), p);
    u->port = (int)port;
    return 0;
}

static int db_of(const char *s, size_t n, struct weft__redis_url *u, char *err, size_t errlen)
{
    long db;
    if (digits(s, n, INT_MAX, &db))
        return bad(err, errlen, "bad db '%.*s'", Q(n), s);
    u->db = (int)db;
    return 0;
}

/* after "redis://" or "rediss://" */
static int tcp(const char *s, struct weft__redis_url *u, char *err, size_t errlen)
{
    size_t alen = strcspn(s, "/?#");
    const char *at = NULL;
    for (const char *c = s; c < s + alen; c++)
        if (*c == '@')
            at = c;
    const char *hp = s;
    if (at) {
        int rc = userinfo(s, (size_t)(at - s), u, err, errlen);
        if (rc)
            return rc;
        hp = at + 1;
    }
    int rc = hostport(hp, (size_t)(s + alen - hp), u, err, errlen);
    if (rc)
        return rc;
    const char *rest = s + alen;
    if (*rest == '?')
        return bad(err, errlen, "redis:// URLs take no query ('%.*s'): the db goes in the path",
                   QUOTE, rest);
    if (*rest == '#')
        return bad(err, errlen, "fragment in URL ('%.*s')", QUOTE, rest);
    if (!*rest || !rest[1])
        return 0;                     /* nothing, or a lone "/" */
    rest++;
    size_t n = strcspn(rest, "/?#");
    if (rest[n] == '?')
        return bad(err, errlen, "redis:// URLs take no query ('%.*s'): the db goes in the path",
                   QUOTE, rest + n);
    if (rest[n])
        return bad(err, errlen, "junk after the db '%.*s'", QUOTE, rest + n);
    return db_of(rest, n, u, err, errlen);
}

/* after "unix://" */
static int unix_sock(const char *s, struct weft__redis_url *u, char *err, size_t errlen)
{
    const char *slash = strchr(s, '/');
    const char *at = NULL;
    for (const char *c = s; slash && c < slash; c++)
        if (*c == '@')
            at = c;
    if (!slash || (at ? at + 1 : s) != slash)
        return bad(err, errlen, "unix:// takes no host: unix:///absolute/path");
    if (at) {
        int rc = userinfo(s, (size_t)(at - s), u, err, errlen);
        if (rc)
            return rc;
    }
    size_t n = strcspn(slash, "?#");
    if (n == 1)
        return bad(err, errlen, "missing socket path");
    if (n >= sizeof u->path)
        return bad(err, errlen, "socket path too long (at most %zu bytes)", sizeof u->path - 1);
    memcpy(u->path, slash, n);
    u->path[n] = 0;
    const char *q = slash + n;
    if (*q == '#')
        return bad(err, errlen, "fragment in URL ('%.*s')", QUOTE, q);
    if (!*q)
        return 0;
    q++;
    if (strncmp(q, "db=", 3) != 0)
        return bad(err, errlen, "unknown query '%.*s' (db=N is the only key)", QUOTE, q);
    q += 3;
    return db_of(q, strlen(q), u, err, errlen);
}

int weft__redis_url_parse(const char *url, struct weft__redis_url *u, char *err, size_t errlen)
{
    memset(u, 0, sizeof *u);
    if (err && errlen)
        err[0] = 0;
    if (!url || !*url)
        return bad(err, errlen, "empty URL");
    const char *sep = strstr(url, "://");
    size_t slen = sep ? (size_t)(sep - url) : 0;
    for (size_t i = 0; i < slen; i++)
        if (!isalpha((unsigned char)url[i]))
            sep = NULL;               /* "host:1/x://": no scheme at all */
    if (!sep || slen == 0)
        return bad(err, errlen, "missing scheme (redis://, rediss:// or unix://) in '%.*s'",
                   QUOTE, url);
    const char *rest = sep + 3;
    if (slen == 5 && strncasecmp(url, "redis", 5) == 0) {
        u->kind = WEFT__REDIS_TCP;
        u->port = 6379;
        return tcp(rest, u, err, errlen);
    }
    if (slen == 6 && strncasecmp(url, "rediss", 6) == 0) {
        u->kind = WEFT__REDIS_TLS;
        u->port = 6379;
        return tcp(rest, u, err, errlen);
    }
    if (slen == 4 && strncasecmp(url, "unix", 4) == 0) {
        u->kind = WEFT__REDIS_UNIX;
        return unix_sock(rest, u, err, errlen);
    }
    return bad(err, errlen, "unknown scheme '%.*s'", Q(slen), url);
}
