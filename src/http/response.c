/*
 * The HTTP server's responses: what handlers set (status, headers, a
 * body, JSON, a streamed body) and how it goes out: the status line and
 * fixed headers built without printf, the Date cached per second, answers
 * to pipelined requests queued to leave in one write.
 */
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

#include "server_internal.h"
#include "weft/http_json.h"

/* ---- responses --------------------------------------------------------------- */

const char *weft__http_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 508: return "Loop Detected";
    }
    return "Status";
}

/* "Date:" value, formatted once per second per thread */
static const char *http_date(void)
{
    static __thread char buf[40];
    static __thread time_t at;
    time_t now = time(NULL);
    if (now != at) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        at = now;
    }
    return buf;
}

/* The status line and the headers every response has, without printf
 * (formatting was a tenth of the server's user time per request). */
static size_t status_head(char *line, int status)
{
    char *p = weft__put_str(line, "HTTP/1.1 ");
    p = weft__put_uint(p, (size_t)status);
    *p++ = ' ';
    p = weft__put_str(p, weft__http_reason(status));
    p = weft__put_str(p, "\r\nDate: ");
    p = weft__put_str(p, http_date());
    p = weft__put_str(p, "\r\n");
    return (size_t)(p - line);
}

int weft__send_response(weft_conn *c, struct weft_http_res *r, bool head, bool close)
{
    char line[256];
    bool nobody = r->status == 204 || r->status == 304 || r->status < 200;
    char *p = line + status_head(line, r->status);
    if (!nobody) {
        p = weft__put_str(p, "Content-Length: ");
        p = weft__put_uint(p, r->blen);
        p = weft__put_str(p, "\r\n");
    }
    if (close)
        p = weft__put_str(p, "Connection: close\r\n");
    else if (r->http10)                   /* 1.0 clients close unless told */
        p = weft__put_str(p, "Connection: keep-alive\r\n");
    if (!close && r->keepalive_hdr)       /* so clients do not race the idle close */
        p = weft__put_str(p, r->keepalive_hdr);
    size_t n = (size_t)(p - line);
    struct iovec iov[4] = { { line, n }, { r->hbuf, r->hlen }, { "\r\n", 2 },
                            { r->body, head || nobody ? 0 : r->blen } };
    const char *next;
    if (close || weft_conn_peek(c, &next) <= 0)
        return weft_conn_writev(c, iov, 4);
    /* a pipelined request is waiting: queue this response, so a burst of
     * requests is answered with one send (read_request flushes before it
     * waits for more) */
    int rc = 0;
    for (int i = 0; i < 4 && !rc; i++)
        rc = weft_conn_write(c, iov[i].iov_base, iov[i].iov_len);
    return rc;
}

void weft__res_shed(struct weft_http_res *r)
{
    weft__mem_released(r->hcap + r->bcap);
    weft__free(r->hbuf);
    weft__free(r->body);
    r->hbuf = r->body = NULL;
    r->hcap = r->bcap = 0;
}

void weft__res_reset(struct weft_http_res *r)
{
    if (r->bcap > WEFT__HTTP_RETAIN) {    /* as weft__req_reset: not the largest answer's */
        weft__mem_released(r->bcap);
        weft__free(r->body);
        r->body = NULL;
        r->bcap = 0;
    }
    if (r->hcap > WEFT__HTTP_RETAIN) {
        weft__free(r->hbuf);
        r->hbuf = NULL;
        r->hcap = 0;
    }
    r->status = 200;
    r->hlen = r->blen = 0;
    r->streaming = false;
    r->stream_err = 0;
}

int weft_http_res_get_status(const weft_http_res *r) { return r ? r->status : 0; }

int weft_http_res_status(weft_http_res *r, int status)
{
    if (!r || status < 200 || status > 999)
        return -EINVAL;                   /* a 1xx is never final (101 would switch protocols) */
    r->status = status;
    return 0;
}

int weft_http_res_header(weft_http_res *r, const char *name, const char *value)
{
    if (!r || !name || !*name || !value)
        return -EINVAL;
    for (const char *p = name; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("!#$%&'*+-.^_`|~", *p))
            return -EINVAL;
    for (const char *p = value; *p; p++)
        if ((unsigned char)*p < 0x20 && *p != '\t')
            return -EINVAL;               /* no response splitting */
    int rc = weft__buf_append(&r->hbuf, &r->hlen, &r->hcap, name, strlen(name));
    if (!rc)
        rc = weft__buf_append(&r->hbuf, &r->hlen, &r->hcap, ": ", 2);
    if (!rc)
        rc = weft__buf_append(&r->hbuf, &r->hlen, &r->hcap, value, strlen(value));
    if (!rc)
        rc = weft__buf_append(&r->hbuf, &r->hlen, &r->hcap, "\r\n", 2);
    return rc;
}

int weft_http_res_body(weft_http_res *r, const void *data, size_t len)
{
    if (!r || (!data && len) || r->streaming)
        return -EINVAL;
    r->blen = 0;
    return weft__buf_append(&r->body, &r->blen, &r->bcap, data, len);
}

static int json_append(const char *data, size_t len, void *arg)
{
    weft_http_res *r = arg;
    return weft__buf_append(&r->body, &r->blen, &r->bcap, data, len) ? -1 : 0;
}

int weft_http_res_json(weft_http_res *r, const json_t *json)
{
    if (!r || !json || r->streaming)
        return -EINVAL;
    int rc = weft_http_res_header(r, "Content-Type", "application/json");
    if (rc)
        return rc;
    r->blen = 0;                          /* serialized into the body, no copy */
    if (json_dump_callback((const json_t *)json, json_append, r, JSON_COMPACT)) {
        r->blen = 0;
        return -ENOMEM;
    }
    return 0;
}

int weft_http_res_write(weft_http_res *r, const void *data, size_t len)
{
    if (!r || (!data && len))
        return -EINVAL;
    if (r->stream_err)
        return r->stream_err;
    int rc = 0;
    if (!r->streaming) {                  /* HTTP/1.0 has no chunks: the close ends it */
        char line[256];
        size_t n = status_head(line, r->status);
        n = (size_t)(weft__put_str(line + n, r->http10 ? "Connection: close\r\n"
                                                        : "Transfer-Encoding: chunked\r\n") - line);
        struct iovec iov[3] = { { line, n }, { r->hbuf, r->hlen }, { "\r\n", 2 } };
        rc = weft_conn_writev(r->c, iov, 3);
        r->streaming = true;
    }
    if (!rc && len && !r->head && r->http10) {
        rc = weft_conn_write_all(r->c, data, len);
    } else if (!rc && len && !r->head) {
        char size[24];
        int n = snprintf(size, sizeof size, "%zx\r\n", len);
        struct iovec iov[3] = { { size, (size_t)n }, { (void *)data, len }, { "\r\n", 2 } };
        rc = weft_conn_writev(r->c, iov, 3);
    }
    return r->stream_err = rc;
}

void weft__res_free(struct weft_http_res *r)
{
    if (r) {
        weft__mem_released(r->hcap + r->bcap);   /* as weft__req_free */
        weft__free(r->hbuf);
        weft__free(r->body);
        weft__free(r);
    }
}
