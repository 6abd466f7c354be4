/*
 * The chunked transfer coding, read strictly (RFC 9112 7.1), for request
 * bodies (src/http/internal.h).
 *
 * llhttp 8 reads chunks leniently: it skips the two bytes after a chunk's
 * data and the one after a chunk line's CR without looking at them. A
 * front end that reads the same bytes another way then sees one request
 * where the server sees two (request smuggling). The server hands llhttp
 * only the head and reads a chunked body with this reader, which takes
 * nothing but the grammar:
 *
 *   chunked-body = *chunk last-chunk trailer-section CRLF
 *   chunk        = 1*HEXDIG [ chunk-ext ] CRLF chunk-data CRLF
 *   last-chunk   = 1*"0" [ chunk-ext ] CRLF
 *   chunk-ext    = *( BWS ";" BWS token [ BWS "=" BWS ( token / quoted-string ) ] )
 *   trailer-section = *( token ":" *( VCHAR / obs-text / SP / HTAB ) CRLF )
 *
 * Trailer fields are checked and dropped, never merged into the headers.
 * A pure feed module: resumable at any byte, allocates nothing, zero-copy
 * (body data is handed back as spans of the input).
 */
#include <errno.h>

#include "internal.h"

enum {
    SIZE0,          /* the first hex digit of a chunk size */
    SIZE,           /* more digits, or what ends the size */
    EXT_WS,         /* BWS after the size or a value: ';' must follow */
    EXT_SEMI,       /* after ';': BWS, then a name */
    EXT_NAME,
    EXT_NAME_WS,    /* BWS after a name: '=' or ';' must follow */
    EXT_EQ,         /* after '=': BWS, then a value */
    EXT_TOKEN,      /* a token value */
    EXT_QUOTED,     /* in a quoted-string */
    EXT_QPAIR,      /* after a backslash in it */
    EXT_QEND,       /* after its closing quote */
    LINE_LF,        /* CR seen at the end of a chunk line */
    DATA,
    DATA_CR,        /* the CRLF after a chunk's data */
    DATA_LF,
    TRAILER,        /* the start of a trailer line, or the final CRLF */
    TR_NAME,
    TR_VALUE,
    TR_LF,
    END_LF,
    DONE,
};

static bool is_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int hexval(unsigned char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static bool is_ws(unsigned char c) { return c == ' ' || c == '\t'; }

/* qdtext and the second byte of a quoted-pair share: HTAB, SP, VCHAR,
 * obs-text (the pair may also hold '"' and '\\', qdtext may not) */
static bool is_text(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

void weft__chunked_init(struct weft__chunked *k, uint64_t max_body, size_t max_line)
{
    *k = (struct weft__chunked){ .max_body = max_body, .max_line = max_line, .state = SIZE0 };
}

bool weft__chunked_done(const struct weft__chunked *k) { return k->state == DONE; }

static int fail(struct weft__chunked *k, int err, const char *why)
{
    k->why = why;
    return err;
}

/* the end of a chunk line: its size is now known to be final */
static int line_end(struct weft__chunked *k)
{
    if (k->size > k->max_body - k->total)
        return fail(k, -EMSGSIZE, "request body too large");
    k->total += k->size;
    k->line = 0;
    k->state = k->size ? DATA : TRAILER;
    return 0;
}

/* after a size or an extension value: BWS and then ';', or the line's CR */
static int after_value(struct weft__chunked *k, unsigned char c)
{
    if (c == ';')
        k->state = EXT_SEMI;
    else if (is_ws(c))
        k->state = EXT_WS;
    else if (c == '\r' && k->state != EXT_WS)
        k->state = LINE_LF;
    else
        return fail(k, -EPROTO, "invalid chunk line");
    return 0;
}

/* after an extension's name: BWS and then '=' or ';', or the line's CR */
static int after_name(struct weft__chunked *k, unsigned char c)
{
    if (c == ';')
        k->state = EXT_SEMI;
    else if (c == '=')
        k->state = EXT_EQ;
    else if (is_ws(c))
        k->state = EXT_NAME_WS;
    else if (c == '\r' && k->state == EXT_NAME)
        k->state = LINE_LF;
    else
        return fail(k, -EPROTO, "invalid chunk extension");
    return 0;
}

/* one byte of a chunk line (size and extensions, up to its CR), or -EPROTO */
static int line_byte(struct weft__chunked *k, unsigned char c)
{
    int h = hexval(c);
    switch (k->state) {
    case SIZE0:
        if (h < 0)
            return fail(k, -EPROTO, "invalid chunk size");
        k->size = (uint64_t)h;
        k->state = SIZE;
        return 0;
    case SIZE:
        if (h < 0)
            return after_value(k, c);
        if (k->size >> 60)
            return fail(k, -EPROTO, "chunk size overflows");
        k->size = k->size << 4 | (uint64_t)h;
        return 0;
    case EXT_TOKEN:
        return is_tchar(c) ? 0 : after_value(k, c);
    case EXT_QEND:
    case EXT_WS:
        return after_value(k, c);
    case EXT_NAME:
        return is_tchar(c) ? 0 : after_name(k, c);
    case EXT_NAME_WS:
        return after_name(k, c);
    case EXT_SEMI:
        if (is_tchar(c))
            k->state = EXT_NAME;
        else if (!is_ws(c))
            return fail(k, -EPROTO, "invalid chunk extension");
        return 0;
    case EXT_EQ:
        if (c == '"')
            k->state = EXT_QUOTED;
        else if (is_tchar(c))
            k->state = EXT_TOKEN;
        else if (!is_ws(c))
            return fail(k, -EPROTO, "invalid chunk extension");
        return 0;
    case EXT_QUOTED:
        if (c == '"')
            k->state = EXT_QEND;
        else if (c == '\\')
            k->state = EXT_QPAIR;
        else if (!is_text(c))
            return fail(k, -EPROTO, "invalid chunk extension");
        return 0;
    case EXT_QPAIR:
        if (!is_text(c))
            return fail(k, -EPROTO, "invalid chunk extension");
        k->state = EXT_QUOTED;
        return 0;
    }
    return fail(k, -EPROTO, "invalid chunk line");   /* not reached */
}

/* one byte of the trailer section, or -EPROTO */
static int trailer_byte(struct weft__chunked *k, unsigned char c)
{
    switch (k->state) {
    case TRAILER:
        if (c == '\r')
            k->state = END_LF;
        else if (is_tchar(c))
            k->state = TR_NAME;
        else
            return fail(k, -EPROTO, "invalid trailer field");
        return 0;
    case TR_NAME:
        if (c == ':')
            k->state = TR_VALUE;
        else if (!is_tchar(c))
            return fail(k, -EPROTO, "invalid trailer field");
        return 0;
    case TR_VALUE:
        if (c == '\r')
            k->state = TR_LF;
        else if (!is_text(c))
            return fail(k, -EPROTO, "invalid trailer field");
        return 0;
    case TR_LF:
    case END_LF:
        if (c != '\n')
            return fail(k, -EPROTO, "CR without LF in the trailer section");
        k->state = k->state == TR_LF ? TRAILER : DONE;
        return 0;
    }
    return fail(k, -EPROTO, "invalid trailer field");   /* not reached */
}

long weft__chunked_feed(struct weft__chunked *k, const char *in, size_t n, const char **data,
                        size_t *dlen)
{
    *data = NULL;
    *dlen = 0;
    size_t i = 0;
    while (i < n && k->state != DONE) {
        unsigned char c = (unsigned char)in[i];
        int rc = 0;
        if (k->state == DATA) {
            size_t span = n - i < k->size ? n - i : (size_t)k->size;
            *data = in + i;
            *dlen = span;
            k->size -= span;
            if (!k->size)
                k->state = DATA_CR;
            return (long)(i + span);      /* one span per call */
        } else if (k->state == DATA_CR || k->state == DATA_LF) {
            if (c != (k->state == DATA_CR ? '\r' : '\n'))
                return fail(k, -EPROTO, "chunk data not followed by CRLF");
            k->state = k->state == DATA_CR ? DATA_LF : SIZE0;
        } else if (k->state == LINE_LF) {
            if (c != '\n')
                return fail(k, -EPROTO, "CR without LF in a chunk line");
            rc = line_end(k);
        } else if (k->state >= TRAILER) {   /* every byte of the section counts */
            rc = trailer_byte(k, c);
            if (!rc && ++k->line > k->max_line)
                rc = fail(k, -E2BIG, "trailer section too large");
        } else {                            /* a chunk line's bytes but its CR count */
            rc = line_byte(k, c);
            if (!rc && c != '\r' && ++k->line > k->max_line)
                rc = fail(k, -EPROTO, "chunk line too long");
            /* and all lines together: extensions cannot carry gigabytes
             * around a small body (CVE-2024-22019) */
            else if (!rc && c != '\r' && ++k->framing > k->max_body + k->max_line)
                rc = fail(k, -EMSGSIZE, "chunk framing too large");
        }
        if (rc)
            return rc;
        i++;
    }
    return (long)i;
}
