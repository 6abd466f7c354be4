/*
 * Header fields as llhttp hands them over, for the client's response
 * parser and the server's request parser alike (src/http/internal.h).
 *
 * llhttp may deliver a name or a value in pieces: a piece continues the
 * current one until the other kind starts. Names and values are stored
 * NUL-terminated in one growable buffer and indexed by offset, so the
 * buffer may move while it grows.
 */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

int weft__head_count(struct weft__head *hd, size_t n)
{
    hd->bytes += n;
    return hd->bytes > hd->max_bytes ? -EMSGSIZE : 0;
}

int weft__head_put(struct weft__head *hd, const char *at, size_t n)
{
    int rc = weft__head_count(hd, n);
    return rc ? rc : weft__buf_append(&hd->buf, &hd->len, &hd->cap, at, n);
}

static int end_value(struct weft__head *hd)
{
    struct weft__hdr *h = &hd->idx[hd->n - 1];
    /* llhttp keeps the trailing whitespace, which is not part of the value
     * (RFC 9112 5: "Host: x " names x, "chunked " is chunked) */
    while (hd->len > h->value && (hd->buf[hd->len - 1] == ' ' || hd->buf[hd->len - 1] == '\t'))
        hd->len--;
    int rc = weft__head_put(hd, "", 1);
    if (!rc) {
        h->vlen = (uint32_t)(hd->len - 1 - h->value);
        hd->in_value = false;
    }
    return rc;
}

int weft__head_field(struct weft__head *hd, const char *at, size_t n)
{
    int rc;
    if (hd->in_value && (rc = end_value(hd)))
        return rc;
    if (!hd->in_name) {
        if (hd->n == hd->max)
            return -E2BIG;
        hd->idx[hd->n++].name = (uint32_t)hd->len;
        hd->in_name = true;
    }
    return weft__head_put(hd, at, n);
}

int weft__head_value(struct weft__head *hd, const char *at, size_t n)
{
    if (hd->in_name) {
        struct weft__hdr *h = &hd->idx[hd->n - 1];
        int rc = weft__head_put(hd, "", 1);       /* end the name */
        if (rc)
            return rc;
        h->nlen = (uint32_t)(hd->len - 1 - h->name);
        h->value = (uint32_t)hd->len;
        hd->in_name = false;
        hd->in_value = true;
    }
    return weft__head_put(hd, at, n);
}

int weft__head_done(struct weft__head *hd)
{
    if (hd->in_name)
        return -EPROTO;                   /* a name without a value */
    return hd->in_value ? end_value(hd) : 0;
}

const char *weft__head_get(const struct weft__head *hd, const char *name)
{
    for (int i = 0; i < hd->n; i++)
        if (strcasecmp(hd->buf + hd->idx[i].name, name) == 0)
            return hd->buf + hd->idx[i].value;
    return NULL;
}

void weft__head_reset(struct weft__head *hd)
{
    hd->len = hd->bytes = 0;
    hd->n = 0;
    hd->in_name = hd->in_value = false;
}
