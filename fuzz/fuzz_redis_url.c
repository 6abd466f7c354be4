/* libFuzzer target: weft__redis_url_parse against a reference written
 * separately from the grammar (POSIX regular expressions for the shape,
 * then the value rules), on the same C string. Both must accept or refuse
 * alike and agree on every field; an accepted URL must come back the same
 * from its canonical form (user and password percent-encoded in full),
 * and a refusal must say why. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis/internal.h"

static regex_t tcp_re, unix_re;

static void init(void)
{
    static int done;
    if (done++)
        return;
    /* 1 userinfo, 2 host, 3 ":port", 4 port, 5 "/db", 6 db */
    if (regcomp(&tcp_re,
                "^rediss?://(([^/?#]*)@)?(\\[[^]/?#]*\\]|[A-Za-z0-9._-]*)(:([0-9]*))?(/([0-9]*))?$",
                REG_EXTENDED) ||
        regcomp(&unix_re, "^unix://(([^/]*)@)?(/[^?#]*)(\\?db=([0-9]*))?$", REG_EXTENDED))
        abort();
}

static int num(const char *s, size_t n, size_t maxlen, long max, long *v)
{
    if (n == 0 || n > maxlen)
        return -1;
    long x = strtol(s, NULL, 10);     /* digits only: the regex said so */
    if (x > max)
        return -1;
    *v = x;
    return 0;
}

static int unhex(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned c = (unsigned char)s[i];
        if (c <= 32 || c == 127)
            return -1;
        if (c == '%') {
            unsigned v;
            char h[3] = { 0 };
            if (n - i < 3 || !isxdigit((unsigned char)s[i + 1]) || !isxdigit((unsigned char)s[i + 2]))
                return -1;
            memcpy(h, s + i + 1, 2);
            sscanf(h, "%x", &v);
            if (v == 0)
                return -1;
            c = v;
            i += 2;
        }
        if (o + 1 >= cap)
            return -1;
        out[o++] = (char)c;
    }
    out[o] = 0;
    return 0;
}

static int ref_userinfo(const char *s, size_t n, struct weft__redis_url *u)
{
    if (n == 0)
        return -1;
    u->has_pass = true;
    const char *colon = memchr(s, ':', n);
    if (!colon)
        return unhex(s, n, u->pass, sizeof u->pass);
    if (unhex(s, (size_t)(colon - s), u->user, sizeof u->user))
        return -1;
    return unhex(colon + 1, n - (size_t)(colon - s) - 1, u->pass, sizeof u->pass);
}

#define GROUP(m, i) (m[i].rm_so >= 0)
#define AT(s, m, i) ((s) + (m)[i].rm_so)
#define LEN(m, i) ((size_t)((m)[i].rm_eo - (m)[i].rm_so))

static int reference(const char *in, struct weft__redis_url *u)
{
    memset(u, 0, sizeof *u);
    char *s = strdup(in);
    char *sep = strstr(s, "://");
    for (char *c = s; sep && c < sep; c++)
        *c = (char)tolower((unsigned char)*c);
    regmatch_t m[8];
    int rc = -1;
    long v;
    if (regexec(&tcp_re, s, 8, m, 0) == 0) {
        u->kind = s[5] == 's' ? WEFT__REDIS_TLS : WEFT__REDIS_TCP;
        u->port = 6379;
        if (GROUP(m, 1) && ref_userinfo(AT(s, m, 2), LEN(m, 2), u))
            goto out;
        const char *h = AT(s, m, 3);
        size_t hn = LEN(m, 3);
        if (hn && *h == '[') {
            char tmp[300];
            struct in6_addr a;
            h++;
            hn -= 2;
            if (hn >= sizeof tmp)
                goto out;
            memcpy(tmp, h, hn);
            tmp[hn] = 0;
            if (inet_pton(AF_INET6, tmp, &a) != 1)
                goto out;
        }
        if (hn == 0 || hn > 255)
            goto out;
        memcpy(u->host, h, hn);
        if (GROUP(m, 4)) {
            if (num(AT(s, m, 5), LEN(m, 5), 5, 65535, &v) || v == 0)
                goto out;
            u->port = (int)v;
        }
        if (GROUP(m, 6) && LEN(m, 7)) {
            if (num(AT(s, m, 7), LEN(m, 7), 10, INT_MAX, &v))
                goto out;
            u->db = (int)v;
        }
        rc = 0;
    } else if (regexec(&unix_re, s, 8, m, 0) == 0) {
        u->kind = WEFT__REDIS_UNIX;
        if (GROUP(m, 1) && ref_userinfo(AT(s, m, 2), LEN(m, 2), u))
            goto out;
        if (LEN(m, 3) < 2 || LEN(m, 3) > 107)
            goto out;
        memcpy(u->path, AT(s, m, 3), LEN(m, 3));
        if (GROUP(m, 4)) {
            if (num(AT(s, m, 5), LEN(m, 5), 10, INT_MAX, &v))
                goto out;
            u->db = (int)v;
        }
        rc = 0;
    }
out:
    free(s);
    return rc;
}

static int same(const struct weft__redis_url *a, const struct weft__redis_url *b)
{
    return a->kind == b->kind && !strcmp(a->host, b->host) && a->port == b->port &&
           !strcmp(a->path, b->path) && !strcmp(a->user, b->user) && !strcmp(a->pass, b->pass) &&
           a->has_pass == b->has_pass && a->db == b->db;
}

static size_t enc(char *o, const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += (size_t)sprintf(o + n, "%%%02X", (unsigned char)*s);
    return n;
}

/* the URL that says u, in the canonical form */
static void canonical(const struct weft__redis_url *u, char *o)
{
    static const char *schemes[] = { "redis", "rediss", "unix" };
    size_t n = (size_t)sprintf(o, "%s://", schemes[u->kind]);
    if (u->has_pass) {
        n += enc(o + n, u->user);
        o[n++] = ':';
        n += enc(o + n, u->pass);
        o[n++] = '@';
    }
    if (u->kind == WEFT__REDIS_UNIX)
        sprintf(o + n, "%s?db=%d", u->path, u->db);
    else if (strchr(u->host, ':'))
        sprintf(o + n, "[%s]:%d/%d", u->host, u->port, u->db);
    else
        sprintf(o + n, "%s:%d/%d", u->host, u->port, u->db);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init();
    char *in = malloc(size + 1);
    memcpy(in, data, size);
    in[size] = 0;                     /* the URL is the C string up to any NUL */
    struct weft__redis_url got, want;
    char err[128] = "unset";
    int rc = weft__redis_url_parse(in, &got, err, sizeof err);
    int ref = reference(in, &want);
    if (rc != 0 && rc != -EINVAL)
        abort();
    if ((rc == 0) != (ref == 0)) {
        fprintf(stderr, "'%s': weft %d (%s), reference %d\n", in, rc, rc ? err : "", ref);
        abort();
    }
    if (rc) {
        if (!err[0] || !strcmp(err, "unset"))
            abort();                  /* a refusal says why */
    } else {
        if (!same(&got, &want))
            abort();
        char canon[2048];
        struct weft__redis_url again;
        canonical(&got, canon);
        if (weft__redis_url_parse(canon, &again, err, sizeof err) || !same(&got, &again)) {
            fprintf(stderr, "'%s' -> '%s': %s\n", in, canon, err);
            abort();
        }
    }
    free(in);
    return 0;
}
