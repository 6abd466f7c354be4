/*
 * URL parsing (weft/url.h): scheme "://" authority [path] ["?" query]
 * ["#" fragment], checked piece by piece so the error can name the piece.
 * The text is copied once into the weft_url and cut in place with NULs.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "weft/url.h"

static int fail(weft_url *u, const char *fmt, const char *what)
{
    snprintf(u->error, sizeof u->error, fmt, what);
    return -EINVAL;
}

/* bytes allowed in a path or query (RFC 3986 pchar, "/", "?"), plus the
 * ones browsers send unescaped; escapes are checked separately */
static bool path_char(unsigned char c)
{
    return c > 0x20 && c < 0x7f && c != '"' && c != '<' && c != '>' && c != '\\' &&
           c != '^' && c != '`' && c != '{' && c != '|' && c != '}';
}

static int check_escapes(weft_url *u, const char *s, const char *what)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '%') {
            if (!isxdigit((unsigned char)s[1]) || !isxdigit((unsigned char)s[2]))
                return fail(u, "bad percent escape in %s", what);
            s += 2;
        } else if (!path_char(c)) {
            return fail(u, c <= 0x20 || c >= 0x7f ? "control or non-ASCII byte in %s"
                                                  : "character not allowed in %s", what);
        }
    }
    return 0;
}

static int parse_port(weft_url *u, const char *p)
{
    if (!*p)
        return fail(u, "%s", "empty port");
    long v = 0;
    for (const char *q = p; *q; q++) {
        if (!isdigit((unsigned char)*q))
            return fail(u, "port is not a number: %.40s", p);
        v = v * 10 + (*q - '0');
        if (v > 65535)
            return fail(u, "port out of range: %.40s", p);
    }
    if (v == 0)
        return fail(u, "port out of range: %.40s", p);
    u->port = (int)v;
    u->default_port = v == (u->tls ? 443 : 80);
    return 0;
}

static int parse_host(weft_url *u, char *h)
{
    if (!*h)
        return fail(u, "%s", "missing host");
    if (*h == '[') {
        char *end = strchr(h, ']');
        if (!end)
            return fail(u, "%s", "unterminated IPv6 literal");
        *end = 0;
        for (char *p = h + 1; *p; p++)
            if (!isxdigit((unsigned char)*p) && *p != ':' && *p != '.')
                return fail(u, "%s", "bad IPv6 literal");
        if (!strchr(h + 1, ':') || strlen(h + 1) >= sizeof u->host_)
            return fail(u, "%s", "bad IPv6 literal");
        strcpy(u->host_, h + 1);
        u->host = u->host_;
        u->ipv6 = true;
        if (end[1] == ':')
            return parse_port(u, end + 2);
        if (end[1])
            return fail(u, "%s", "junk after IPv6 literal");
        return 0;
    }
    char *colon = strchr(h, ':');
    if (colon) {
        *colon = 0;
        int rc = parse_port(u, colon + 1);
        if (rc)
            return rc;
    }
    if (!*h)
        return fail(u, "%s", "missing host");
    if (strlen(h) >= sizeof u->host_)
        return fail(u, "%s", "host name too long");
    for (size_t i = 0; h[i]; i++) {
        unsigned char c = (unsigned char)h[i];
        if (!isalnum(c) && c != '-' && c != '.' && c != '_')
            return fail(u, "character not allowed in host: %.40s", h);
        u->host_[i] = (char)tolower(c);
        u->host_[i + 1] = 0;
    }
    u->host = u->host_;
    return 0;
}

int weft_url_parse(weft_url *u, const char *s)
{
    if (!u)
        return -EINVAL;
    memset(u, 0, offsetof(weft_url, buf_));
    if (!s || !*s)
        return fail(u, "%s", "empty URL");
    size_t n = strlen(s);
    if (n > WEFT_URL_MAX)
        return fail(u, "%s", "URL too long");
    memcpy(u->buf_, s, n + 1);
    char *p = u->buf_;

    char *sep = strstr(p, "://");
    if (!sep)
        return fail(u, "%s", "missing scheme (http:// or https://)");
    *sep = 0;
    for (char *q = p; *q; q++)
        *q = (char)tolower((unsigned char)*q);
    if (strcmp(p, "http") == 0)
        u->tls = false;
    else if (strcmp(p, "https") == 0)
        u->tls = true;
    else
        return fail(u, "unsupported scheme: %.40s", p);
    u->scheme = p;
    u->port = u->tls ? 443 : 80;
    u->default_port = true;

    /* authority ends at the first '/', '?' or '#' */
    char *auth = sep + 3;
    char *end = auth + strcspn(auth, "/?#");
    char after = *end;
    char *rest = end + (after != 0);
    *end = 0;
    if (strchr(auth, '@'))
        return fail(u, "%s", "user information (user@host) is not allowed");
    int rc = parse_host(u, auth);
    if (rc)
        return rc;

    /* path and query live in the rest; the authority's terminator was cut,
     * so the path is rebuilt with its leading '/' in the spare tail */
    char *hash = after == '#' ? rest : strchr(rest, '#');
    if (after == '#')
        *rest = 0;
    else if (hash)
        *hash = 0;
    char *query = NULL, *path = NULL;
    if (after == '/') {
        path = rest - 1;
        *path = '/';                      /* restore the slash we cut */
        query = strchr(path, '?');
    } else if (after == '?') {
        query = rest - 1;
        path = NULL;
    }
    if (query) {
        *query = 0;
        query++;
    }
    u->path = path ? path : "/";
    u->query = query ? query : "";
    if ((rc = check_escapes(u, u->path, "path")) || (rc = check_escapes(u, u->query, "query")))
        return rc;
    return 0;
}

int weft_url_authority(const weft_url *u, char *buf, size_t size)
{
    const char *l = u->ipv6 ? "[" : "", *r = u->ipv6 ? "]" : "";
    if (u->default_port)
        return snprintf(buf, size, "%s%s%s", l, u->host, r);
    return snprintf(buf, size, "%s%s%s:%d", l, u->host, r, u->port);
}

/* the end of the value of query parameter `name` in url, or NULL */
static const char *param_value(const char *url, const char *name, const char **end)
{
    size_t n = strlen(name);
    for (const char *p = strchr(url, '?'); p; p = strpbrk(p + 1, "&")) {
        if (strncasecmp(p + 1, name, n) == 0 && p[1 + n] == '=') {
            *end = p + 1 + n + 1 + strcspn(p + 1 + n + 1, "&#");
            return p + 1 + n + 1;
        }
    }
    return NULL;
}

int weft_url_redact(const char *url, char *buf, size_t size)
{
    /* libpq reads the user information up to '@' before the first '/', so
     * '?' and '#' may be in a password: the authority ends at '/' only */
    const char *auth = strstr(url, "://");
    auth = auth ? auth + 3 : url;
    size_t alen = strcspn(auth, "/");
    const char *at = NULL;
    for (const char *p = auth; p < auth + alen; p++)
        if (*p == '@')
            at = p;
    const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    char *tmp = NULL;
    if (colon && asprintf(&tmp, "%.*s***%s", (int)(colon + 1 - url), url, at) < 0)
        return snprintf(buf, size, "%s", "(no memory)");
    const char *s = tmp ? tmp : url;
    /* and libpq's password=... parameters */
    size_t len = strlen(s);
    char *out = malloc(len + 8);          /* each "***" may be longer than what it hides */
    if (!out) {
        free(tmp);
        return snprintf(buf, size, "%s", "(no memory)");
    }
    memcpy(out, s, len + 1);
    static const char *const names[] = { "password", "sslpassword" };
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        const char *end, *v = param_value(out, names[i], &end);
        if (v && end > v) {
            size_t at_v = (size_t)(v - out);
            memmove(out + at_v + 3, end, strlen(end) + 1);
            memcpy(out + at_v, "***", 3);
        }
    }
    int rc = snprintf(buf, size, "%s", out);
    free(out);
    free(tmp);
    return rc;
}
