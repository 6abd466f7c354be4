/*
 * weft url: parsing of http:// and https:// URLs for the HTTP client.
 *
 * A parsed URL keeps its own copy of the text; its fields point into it.
 * Parsing is strict where being lenient is dangerous: user information
 * ("user:pass@host") is rejected (it leaks credentials into logs and
 * proxies), so are control characters, spaces, malformed percent escapes
 * and out-of-range ports. A bad URL gives -EINVAL and weft_url.error says
 * what is wrong ("port out of range: 70000").
 */
#ifndef WEFT_URL_H
#define WEFT_URL_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WEFT_URL_MAX 8192              /* longer URLs are rejected */

typedef struct weft_url {
    const char *scheme;                /* "http" or "https" (lower case) */
    const char *host;                  /* lower case; an IPv6 literal without brackets */
    const char *path;                  /* "/..." (percent escapes kept as sent) */
    const char *query;                 /* without '?', "" if none */
    int port;                          /* explicit, or 80 / 443 */
    bool tls, ipv6, default_port;
    char error[96];                    /* why parsing failed */
    char host_[256];
    char buf_[WEFT_URL_MAX + 16];
} weft_url;

/* Parses s into u. 0, or -EINVAL with u->error set. The fragment
 * ("#...") is dropped, as clients never send it. */
int weft_url_parse(weft_url *u, const char *s);

/* "host:port" for the Host header and the pool key ("[::1]:8080"); the
 * port is left out when it is the scheme's default. Returns the length
 * written (truncated to size - 1), like snprintf. */
int weft_url_authority(const weft_url *u, char *buf, size_t size);

/* Any URL ("postgres://user:secret@host/db", "redis://:secret@host") as it
 * may be logged: the password between the user and '@' of the authority
 * becomes "***"; the rest is kept. Returns the length written (truncated
 * to size - 1), like snprintf. */
int weft_url_redact(const char *url, char *buf, size_t size);

#ifdef __cplusplus
}
#endif

#endif
