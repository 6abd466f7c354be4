/* The README's HTTP server example: GET /users/{id} on 127.0.0.1:8080,
 * one loop per core. */
#include <stdio.h>
#include "weft.h"

static int hello(weft_http_req *q, weft_http_res *r, void *ctx)
{
    (void)ctx;                                               /* from the route */
    const char *id = weft_http_req_param(q, "id");           /* "/users/{id}" */
    char body[64];
    int n = snprintf(body, sizeof body, "hello, user %s\n", id);
    weft_http_res_header(r, "Content-Type", "text/plain");
    return weft_http_res_body(r, body, (size_t)n);           /* < 0 would be a 500 */
}

int main(void)
{
    weft_http_server_opts o = { .handler_timeout = 5 * WEFT_SEC };   /* else 30 s */
    weft_http_server *s = weft_http_server_new(&o);
    weft_http_server_route(s, "GET", "/users/{id}", hello, NULL);
    /* a loop per core, each accepting on its own SO_REUSEPORT listener;
     * Ctrl-C or SIGTERM: stop accepting, finish what is in flight, return */
    int rc = weft_http_server_run(s, "127.0.0.1", 8080, 0);
    if (rc)
        fprintf(stderr, "hello_server: %s\n", weft_strerror(rc));
    weft_http_server_free(s);
    return rc ? 1 : 0;
}
