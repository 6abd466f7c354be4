/*
 * The migration splitter sees whatever a migration file holds: it must
 * stay inside the text, hand out statements in order with lines that only
 * grow, and never end one inside a quote or a comment it opened. The
 * pool's reading of a statement's words (weft__sql_words, weft__pg_scan)
 * sees whatever SQL an application passes: it must stay inside the text
 * too, and hand out words in order.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pg/internal.h"

struct walk {
    const char *text, *last_end;
    size_t len;
    int last_line;
};

static int check(void *ctx, const char *stmt, size_t len, int line)
{
    struct walk *w = ctx;
    if (stmt < w->last_end || stmt + len > w->text + w->len || line < w->last_line || len == 0)
        abort();
    int nl = 1;
    for (const char *p = w->text; p < stmt; p++)
        nl += *p == '\n';
    if (nl != line)                        /* the line really is where it starts */
        abort();
    w->last_end = stmt + len;
    w->last_line = line;
    return 0;
}

static int word(void *ctx, int kind, const char *s, size_t len, char next)
{
    struct walk *w = ctx;
    (void)next;
    if ((kind & WEFT__SQL_WORD) && len > 63)
        abort();
    if (kind & WEFT__SQL_STRING) {        /* strings point into the text, in order */
        if (s < w->last_end || s + len > w->text + w->len)
            abort();
        w->last_end = s + len;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = 0;
    struct walk w = { text, text, size, 1 };
    if (weft__sql_split(text, size, check, &w) < 0)
        abort();
    if (strlen(text) == size) {            /* the words walk reads a C string */
        struct walk ww = { text, text, size, 1 };
        if (weft__sql_words(text, size, word, &ww) != 0)
            abort();
        struct weft__pg_sql q;
        weft__pg_scan(text, &q);
        if (weft__pg_kind(&q) < 0 || weft__pg_kind(&q) > 2)
            abort();
    }
    free(text);
    return 0;
}
