/* libFuzzer target: the HTTP client's response path (llhttp glue, header
 * and body limits, 1xx handling, gzip/deflate decoding) on arbitrary bytes
 * that a hostile server sends, then closes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../src/net/internal.h"
#include "weft/http.h"

int weft__http_read_response(weft_http_client *cl, weft_conn *c, bool head_request,
                             weft_http_response *r, bool *keep);

struct input { const uint8_t *data; size_t size; };

static int one(void *arg)
{
    struct input *in = arg;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
        abort();
    /* the whole response is in the socket before the client reads */
    size_t off = 0;
    while (off < in->size) {
        ssize_t n = write(sv[1], in->data + off, in->size - off);
        if (n <= 0)
            abort();
        off += (size_t)n;
    }
    shutdown(sv[1], SHUT_WR);
    weft_conn *c;
    weft_net_opts o = { .read_timeout = 100 * WEFT_MS };
    if (weft__fd_own(sv[0]) || weft__conn_new(&c, sv[0], &o))
        abort();
    static weft_tls_ctx *tls;             /* made once: OpenSSL contexts are slow to make */
    if (!tls)
        tls = weft_tls_client_new();
    weft_http_client_opts co = { .max_body = 1 << 20, .max_header_bytes = 16 << 10, .tls = tls };
    weft_http_client *cl = weft_http_client_new(&co);
    weft_http_response r;
    bool keep = false;
    int rc = weft__http_read_response(cl, c, in->size & 1, &r, &keep);
    if (rc == 0) {
        if (r.status < 100 || r.status > 999 || r.body_len > (1 << 20))
            abort();
        if (r.body_len && r.body[r.body_len] != 0)
            abort();                      /* bodies are NUL-terminated */
        for (int i = 0; i < r.nheaders; i++)
            if (!r.headers[i].name || !r.headers[i].value)
                abort();
    }
    weft_http_response_free(&r);
    weft_conn_close(c);
    close(sv[1]);
    weft_http_client_free(cl, 0);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    setenv("WEFT_STALL_MS", "0", 0);
    struct input in = { data, size };
    if (weft_main(one, &in) != 0)
        abort();
    return 0;
}
