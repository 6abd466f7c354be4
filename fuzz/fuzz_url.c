/* libFuzzer target: weft_url_parse on arbitrary bytes, with invariants. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "weft/url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static weft_url u;
    char *s = malloc(size + 1);
    memcpy(s, data, size);
    s[size] = 0;
    if (weft_url_parse(&u, s) == 0) {
        if (!*u.host || u.port < 1 || u.port > 65535 || u.path[0] != '/')
            abort();
        char auth[300];
        if (weft_url_authority(&u, auth, sizeof auth) <= 0)
            abort();
    } else if (!u.error[0]) {
        abort();                          /* every failure says why */
    }
    free(s);
    return 0;
}
