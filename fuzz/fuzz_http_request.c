/* libFuzzer target: the server's request path (limits, llhttp glue,
 * header collector, obs-fold scan, router, param and query decoding,
 * responses) on arbitrary bytes from a client. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../src/net/internal.h"
#include "weft/http.h"

struct input { const uint8_t *data; size_t size; int fd; };

static int ok(weft_http_req *q, weft_http_res *r, void *ctx)
{
    (void)ctx;
    const char *id = weft_http_req_param(q, "id");
    size_t len;
    weft_http_req_body(q, &len);
    weft_http_req_header(q, "Host");
    weft_http_req_query_param(q, "a");        /* decoding of untrusted escapes */
    weft_http_req_query_param(q, "b");
    weft_http_req_route(q);
    return weft_http_res_body(r, id ? id : "x", id ? strlen(id) : 1);
}

/* the client side: send everything, then read all answers */
static int client(void *arg)
{
    struct input *in = arg;
    size_t off = 0;
    while (off < in->size) {
        ssize_t n = write(in->fd, in->data + off, in->size - off);
        if (n > 0)
            off += (size_t)n;
        else if (weft_fd_wait(in->fd, WEFT_WRITE))
            break;
    }
    shutdown(in->fd, SHUT_WR);
    char buf[4096];
    for (;;) {
        ssize_t n = read(in->fd, buf, sizeof buf);
        if (n == 0 || (n < 0 && weft_fd_wait(in->fd, WEFT_READ)))
            break;
    }
    weft_fd_forget(in->fd);
    return 0;
}

static int one(void *arg)
{
    struct input *in = arg;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
        abort();
    in->fd = sv[1];
    weft_http_server_opts o = { .header_timeout = 200 * WEFT_MS, .handler_timeout = 100 * WEFT_MS,
                                .keepalive_timeout = 100 * WEFT_MS, .max_body = 4096 };
    weft_http_server *s = weft_http_server_new(&o);
    weft_http_server_route(s, "GET", "/users/{id}", ok, NULL);
    weft_http_server_route(s, "POST", "/echo", ok, NULL);
    weft_group *g = weft_group_new();
    weft_spawn(g, client, in, "client");
    weft_conn *c;
    weft_net_opts no = { .read_timeout = 200 * WEFT_MS, .write_timeout = 200 * WEFT_MS };
    if (weft__fd_own(sv[0]) || weft__conn_new(&c, sv[0], &no))
        abort();
    weft_http_serve_conn(s, c);
    weft_group_wait(g);
    close(sv[1]);
    weft_http_server_free(s);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    setenv("WEFT_STALL_MS", "0", 0);
    struct input in = { data, size, -1 };
    if (weft_main(one, &in) != 0)
        abort();
    return 0;
}
