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
#include <stddef.h>
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

/* ASCII classes: the server's lexer does not follow the process's locale */
static bool is_alpha(unsigned char c) { return (c | 0x20) >= 'a' && (c | 0x20) <= 'z'; }
static bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static bool is_space(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }
static bool ident_char(unsigned char c) { return is_alpha(c) || is_digit(c) || c == '_' || c == '$' || c >= 0x80; }

/* the first character at or after p that is no blank or comment, 0 at the end */
static char next_char(const char *p, const char *end)
{
    while (p < end) {
        if (is_space((unsigned char)*p))
            p++;
        else if (*p == '-' && p + 1 < end && p[1] == '-')
            p = (p = memchr(p, '\n', (size_t)(end - p))) ? p : end;
        else if (*p == '/' && p + 1 < end && p[1] == '*')
            p = skip_block_comment(p, end);
        else
            return *p;
    }
    return 0;
}

/* the length of the quoted token's contents from its opening quote at p
 * to next (past its closing quote, or the end) */
static size_t inside(const char *p, const char *next, char q)
{
    return (size_t)(next - p) - 1 - (next - p >= 2 && next[-1] == q);
}

/* a number (digits, '.', '_', an exponent) or a parameter ($1) */
static const char *skip_number(const char *p, const char *end)
{
    for (p++; p < end && (is_digit((unsigned char)*p) || *p == '.' || *p == '_'); p++)
        ;
    if (p < end && (*p | 0x20) == 'e') {
        const char *e = p + 1 + (p + 1 < end && (p[1] == '+' || p[1] == '-'));
        if (e < end && is_digit((unsigned char)*e))
            for (p = e; p < end && is_digit((unsigned char)*p); p++)
                ;
    }
    return p;
}

int weft__sql_words(const char *sql, size_t len, weft__sql_word_fn fn, void *ctx)
{
    const char *p = sql, *end = sql + len;
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
            size_t n = inside(p, next, (char)c);
            if (c == '"' && n > sizeof w - 1)
                n = sizeof w - 1;          /* a name, cut as the server cuts it */
            rc = fn(ctx, c == '"' ? WEFT__SQL_WORD : WEFT__SQL_STRING, p + 1, n, next_char(next, end));
        } else if (c == '$' && (next = skip_dollar(p, end)) != NULL) {
            const char *body = dollar_tag(p, end);
            size_t tl = (size_t)(body - p);
            rc = fn(ctx, WEFT__SQL_STRING, body,
                    next - body >= (ptrdiff_t)tl ? (size_t)(next - body) - tl : 0, 0);
        } else if (is_alpha(c) || c == '_' || c >= 0x80) {
            next = p;
            size_t n = 0;
            for (; next < end && ident_char((unsigned char)*next); next++)
                if (n + 1 < sizeof w)
                    w[n++] = (char)(is_alpha((unsigned char)*next) ? *next | 0x20 : *next);
            w[n] = 0;
            if (n == 1 && w[0] == 'u' && next + 1 < end && *next == '&' &&
                (next[1] == '\'' || next[1] == '"')) {
                /* U&'...', U&"...": escapes this walk does not decode */
                char q = next[1];
                const char *e = skip_quoted(next + 1, end, q, false);
                size_t m = inside(next + 1, e, q);
                if (q == '"' && m > sizeof w - 1)
                    m = sizeof w - 1;
                rc = fn(ctx, (q == '"' ? WEFT__SQL_WORD : WEFT__SQL_STRING) | WEFT__SQL_ESCAPED,
                        next + 2, m, next_char(e, end));
                next = e;
            } else if (next - p == 1 && next < end && *next == '\'') {    /* E'', B'', X'', N'' */
                const char *e = skip_quoted(next, end, '\'', w[0] == 'e');
                size_t m = inside(next, e, '\'');
                bool esc = w[0] == 'e' && memchr(next + 1, '\\', m);
                rc = fn(ctx, WEFT__SQL_STRING | (esc ? WEFT__SQL_ESCAPED : 0), next + 1, m, 0);
                next = e;
            } else {
                rc = fn(ctx, WEFT__SQL_WORD, w, n, next_char(next, end));
            }
        } else if (is_digit(c) || (c == '$' && p + 1 < end && is_digit((unsigned char)p[1]))) {
            next = skip_number(p, end);
        } else if (c == ';') {
            next = p + 1;
            rc = fn(ctx, WEFT__SQL_END, p, 1, next_char(next, end));
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
