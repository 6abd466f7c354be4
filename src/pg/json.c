/* json and jsonb cells through jansson (weft/pg_json.h). */
#include <errno.h>

#include "internal.h"
#include "weft/pg_json.h"

enum { JSONOID = 114, JSONBOID = 3802 };

int weft_pg_get_json(const weft_pg_result *r, int row, int col, json_t **v)
{
    const char *s;
    size_t len;
    int rc = weft_pg_get_text(r, row, col, &s, &len);
    if (rc)
        return rc;
    unsigned t = weft_pg_col_type(r, col);
    if (t != JSONOID && t != JSONBOID)
        return -WEFT_ETYPE;
    json_error_t err;
    /* a scalar is JSON too ("5", "\"x\""); duplicate keys as the server kept them */
    json_t *j = json_loadb(s, len, JSON_DECODE_ANY, &err);
    if (!j)
        return json_error_code(&err) == json_error_out_of_memory ? -ENOMEM : -ERANGE;
    *v = j;
    return 0;
}
