/* libFuzzer target: the router's matching on arbitrary methods and paths,
 * and its pattern parser on arbitrary patterns. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "weft/router.h"

static weft_router *fixed(void)
{
    static weft_router *r;
    static int h[6];
    if (!r) {
        r = weft_router_new();
        weft_router_add(r, "GET", "/", &h[0], NULL);
        weft_router_add(r, "GET", "/users/{id}", &h[1], NULL);
        weft_router_add(r, "GET", "/users/me", &h[2], NULL);
        weft_router_add(r, "POST", "/users/{id}/posts/{post}", &h[3], NULL);
        weft_router_add(r, "GET", "/files/", &h[4], NULL);
        weft_router_add(r, "DELETE", "/{a}/{b}/{c}", &h[5], NULL);
    }
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* "METHOD path" */
    const uint8_t *sp = memchr(data, ' ', size);
    if (!sp)
        return 0;
    char method[32];
    size_t ml = (size_t)(sp - data) < sizeof method - 1 ? (size_t)(sp - data) : sizeof method - 1;
    memcpy(method, data, ml);
    method[ml] = 0;
    const char *path = (const char *)sp + 1;
    size_t plen = size - (size_t)(sp - data) - 1;
    weft_route_match m;
    char allow[64];
    int rc = weft_router_match(fixed(), method, path, plen, &m, allow, sizeof allow);
    if (rc != 0 && rc != -ENOENT && rc != -EPERM && rc != -EINVAL)
        abort();
    if (rc == 0) {
        if (!m.handler || m.nparams < 0 || m.nparams > WEFT_ROUTE_MAX_PARAMS)
            abort();
        for (int i = 0; i < m.nparams; i++)
            if (m.params[i].value < path || m.params[i].value + m.params[i].len > path + plen ||
                !m.params[i].len)
                abort();
    }
    if (rc == -EPERM && !memchr(allow, 0, sizeof allow))
        abort();
    /* the same bytes as a pattern */
    char *pat = malloc(plen + 1);
    memcpy(pat, path, plen);
    pat[plen] = 0;
    weft_router *r = weft_router_new();
    int h;
    weft_router_add(r, method[0] ? method : "GET", pat, &h, NULL);
    weft_router_free(r);
    free(pat);
    return 0;
}
