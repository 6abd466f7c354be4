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

static int serve(void *arg)
{
    weft_http_server *s = arg;
    weft_listener *l;
    int rc = weft_tcp_listen(&l, "127.0.0.1", 8080, 0, WEFT_REUSEPORT);
    return rc ? rc : weft_http_serve(s, l);                  /* until shutdown */
}

int main(void)
{
    weft_http_server_opts o = { .handler_timeout = 5 * WEFT_SEC };   /* else 30 s */
    weft_http_server *s = weft_http_server_new(&o);
    weft_http_server_route(s, "GET", "/users/{id}", hello, NULL);
    int rc = weft_run(0, serve, s);                          /* a loop per core */
    weft_http_server_free(s);
    return rc ? 1 : 0;
}
