/*
 * SQL text into statements, at the semicolons PostgreSQL itself would end
 * them on: not inside '...' (and E'...' with backslash escapes), "...",
 * $tag$...$tag$ bodies, -- comments or nested block comments. Used where a
 * migration must run statement by statement (outside a transaction) and to
 * name the line of the statement that failed. A statement of nothing but
 * blanks and comments is skipped, as the server skips it. BEGIN ATOMIC
 * function bodies (semicolons outside any quote) are not understood.
 *
 * The same lexing gives a statement's words (weft__sql_words), which the
 * pool reads to know what a statement does to its session and its
 * transaction.
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

/* the end of the $tag$...$tag$ body opening at p, or NULL if no tag opens */
static const char *skip_dollar(const char *p, const char *end)
{
    const char *t = dollar_tag(p, end);
    if (!t)
        return NULL;
    size_t tl = (size_t)(t - p);
    for (const char *q = t; q + tl <= end && (q = memchr(q, '$', (size_t)(end - q))) != NULL; q++)
        if (q + tl <= end && memcmp(q, p, tl) == 0)
            return q + tl;
    return end;
}

static bool ident_char(unsigned char c) { return isalnum(c) || c == '_' || c == '$' || c >= 0x80; }

/* the first character at or after p that is no blank or comment, 0 at the end */
static char next_char(const char *p, const char *end)
{
    while (p < end) {
        if (isspace((unsigned char)*p))
            p++;
        else if (*p == '-' && p + 1 < end && p[1] == '-')
            p += strcspn(p, "\n");
        else if (*p == '/' && p + 1 < end && p[1] == '*')
            p = skip_block_comment(p, end);
        else
            return *p;
    }
    return 0;
}

int weft__sql_words(const char *sql, weft__sql_word_fn fn, void *ctx)
{
    const char *p = sql, *end = sql + strlen(sql);
    char w[64];                            /* the server truncates names to 63 bytes too */
    while (p < end) {
        unsigned char c = (unsigned char)*p;
        const char *next;
        int rc = 0;
        if (c == '-' && p + 1 < end && p[1] == '-') {
            next = memchr(p, '\n', (size_t)(end - p));
            next = next ? next : end;
        } else if (c == '/' && p + 1 < end && p[1] == '*') {
            next = skip_block_comment(p, end);
        } else if (c == '\'' || c == '"') {
            next = skip_quoted(p, end, (char)c, false);
            size_t n = (size_t)(next - p) - 1 - (next[-1] == (char)c && next - p >= 2);
            if (c == '"' && n > sizeof w - 1)
                n = sizeof w - 1;          /* a name, cut as the server cuts it */
            rc = fn(ctx, c == '"' ? WEFT__SQL_WORD : WEFT__SQL_STRING, p + 1, n, next_char(next, end));
        } else if (c == '$' && (next = skip_dollar(p, end)) != NULL) {
            const char *body = dollar_tag(p, end);
            size_t tl = (size_t)(body - p);
            rc = fn(ctx, WEFT__SQL_STRING, body,
                    next - body >= (ptrdiff_t)tl ? (size_t)(next - body) - tl : 0, 0);
        } else if (isalpha(c) || c == '_' || c >= 0x80) {
            next = p;
            size_t n = 0;
            for (; next < end && ident_char((unsigned char)*next); next++)
                if (n + 1 < sizeof w)
                    w[n++] = (char)tolower((unsigned char)*next);
            w[n] = 0;
            if (next - p == 1 && next < end && *next == '\'') {    /* E'...', B'', X'', N'' */
                const char *q = skip_quoted(next, end, '\'', w[0] == 'e');
                size_t m = (size_t)(q - next) - 1 - (q[-1] == '\'' && q - next >= 2);
                rc = fn(ctx, WEFT__SQL_STRING, next + 1, m, 0);
                next = q;
            } else {
                rc = fn(ctx, WEFT__SQL_WORD, w, n, next_char(next, end));
            }
        } else if (isdigit(c) || (c == '$' && p + 1 < end && isdigit((unsigned char)p[1]))) {
            for (next = p + 1; next < end && (ident_char((unsigned char)*next) || *next == '.'); next++)
                ;                          /* numbers, $1 */
        } else {
            next = p + 1;
        }
        if (rc)
            return rc;
        p = next;
    }
    return 0;
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
        } else if (*p == '$' && (p == sql || !ident_char((unsigned char)p[-1]))) {
            const char *t = skip_dollar(p, end);
            if (t)
                next = t;
        } else if (isspace((unsigned char)*p)) {
            blank = true;
        }
        if (!blank && !first)
            first = p;
        p = next;
    }
    return count;
}
