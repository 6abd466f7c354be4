/*
 * SQL text into statements, at the semicolons PostgreSQL itself would end
 * them on: not inside '...' (and E'...' with backslash escapes), "...",
 * $tag$...$tag$ bodies, -- comments or nested block comments. Used where a
 * migration must run statement by statement (outside a transaction) and to
 * name the line of the statement that failed. A statement of nothing but
 * blanks and comments is skipped, as the server skips it. BEGIN ATOMIC
 * function bodies (semicolons outside any quote) are not understood.
 */
#include <ctype.h>
#include <string.h>

#include "internal.h"

/* the end of a $tag$ opening at s (s[0] == '$'), or NULL if none opens here */
static const char *dollar_tag(const char *s, const char *end)
{
    const char *p = s + 1;
    if (p < end && (isdigit((unsigned char)*p)))
        return NULL;                       /* $1: a parameter */
    while (p < end && (isalnum((unsigned char)*p) || *p == '_' || (unsigned char)*p >= 0x80))
        p++;
    return p < end && *p == '$' ? p + 1 : NULL;
}

static const char *skip_quoted(const char *p, const char *end, char q, bool backslash)
{
    for (p++; p < end; p++) {
        if (backslash && *p == '\\' && p + 1 < end)
            p++;
        else if (*p == q) {
            if (p + 1 < end && p[1] == q)
                p++;                       /* '' or "" inside */
            else
                return p + 1;
        }
    }
    return end;
}

static const char *skip_block_comment(const char *p, const char *end)
{
    int depth = 0;
    while (p < end) {
        if (p + 1 < end && p[0] == '/' && p[1] == '*') {
            depth++;
            p += 2;
        } else if (p + 1 < end && p[0] == '*' && p[1] == '/') {
            p += 2;
            if (--depth == 0)
                return p;
        } else {
            p++;
        }
    }
    return end;
}

static int lines_in(const char *p, const char *end)
{
    int n = 0;
    for (; p < end; p++)
        n += *p == '\n';
    return n;
}

int weft__sql_split(const char *sql, size_t len, weft__sql_stmt_fn fn, void *ctx)
{
    const char *p = sql, *end = sql + len, *start = sql, *first = NULL;
    int line = 1, count = 0;
    while (p <= end) {
        if (p == end || *p == ';') {
            if (first) {
                int rc = fn(ctx, first, (size_t)(p - first), line + lines_in(start, first));
                if (rc)
                    return rc;
                count++;
            }
            line += lines_in(start, p < end ? p + 1 : p);
            start = p < end ? p + 1 : p;
            first = NULL;
            p++;
            continue;
        }
        const char *next = p + 1;
        bool blank = false;
        if (*p == '-' && p + 1 < end && p[1] == '-') {
            next = memchr(p, '\n', (size_t)(end - p));
            next = next ? next : end;
            blank = true;
        } else if (*p == '/' && p + 1 < end && p[1] == '*') {
            next = skip_block_comment(p, end);
            blank = true;
        } else if (*p == '\'') {
            bool e = p > sql && (p[-1] == 'E' || p[-1] == 'e') &&
                     (p - 1 == sql || !(isalnum((unsigned char)p[-2]) || p[-2] == '_'));
            next = skip_quoted(p, end, '\'', e);
        } else if (*p == '"') {
            next = skip_quoted(p, end, '"', false);
        } else if (*p == '$' && (p == sql || !(isalnum((unsigned char)p[-1]) || p[-1] == '_' ||
                                               p[-1] == '$' || (unsigned char)p[-1] >= 0x80))) {
            const char *t = dollar_tag(p, end);
            if (t) {
                size_t tl = (size_t)(t - p);
                const char *q = t;
                next = end;
                while (q + tl <= end && (q = memchr(q, '$', (size_t)(end - q))) != NULL) {
                    if (q + tl <= end && memcmp(q, p, tl) == 0) {
                        next = q + tl;
                        break;
                    }
                    q++;
                }
            }
        } else if (isspace((unsigned char)*p)) {
            blank = true;
        }
        if (!blank && !first)
            first = p;
        p = next;
    }
    return count;
}
