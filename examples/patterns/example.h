/*
 * What the pattern examples share, so each file shows only its pattern:
 *
 *  - expect(): each example states what it demonstrates as checks, prints
 *    them, and exits non-zero when one did not hold (make test runs them);
 *  - a weft HTTP server inside the example's own loop, on 127.0.0.1 and a
 *    port the kernel picks, so the examples that fetch need no internet and
 *    no second process. It is also the shape of a server that shares its
 *    loop with other work: listen, run weft_http_serve as a task in a
 *    group, and to stop, weft_http_server_shutdown (graceful: requests in
 *    flight are answered) and wait for the group.
 */
#ifndef WEFT_EXAMPLE_H
#define WEFT_EXAMPLE_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

#include "weft.h"

/* ---- checks ---------------------------------------------------------------- */

static int example_failures;

/* Prints "  ok    what" or "  FAILED what" and counts the failures. */
__attribute__((format(printf, 2, 3)))
static inline void expect(bool ok, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("  %-6s ", ok ? "ok" : "FAILED");
    vprintf(fmt, ap);
    putchar('\n');
    va_end(ap);
    example_failures += !ok;
}

/* Prints what the example shows; stdout line by line, so its lines and
 * weft's log lines (stderr) come out in the order they happened. */
static inline void example_begin(const char *what)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("%s\n", what);
}

/* main's exit status: 1 when weft_main returned an error (printed) or a
 * check failed, else 0. */
static inline int example_exit(const char *name, int rc)
{
    if (rc)
        fprintf(stderr, "%s: %s (%s)\n", name, weft_strerror(rc), weft_errname(rc));
    if (example_failures)
        fprintf(stderr, "%s: %d check(s) failed\n", name, example_failures);
    fflush(stdout);
    return rc || example_failures ? 1 : 0;
}

/* ---- a local HTTP server --------------------------------------------------- */

struct local_server {
    weft_http_server *srv;        /* routes added by the example */
    weft_listener *listener;      /* owned by weft_http_serve once it runs */
    weft_group *group;            /* the serving task */
    int port;
};

static inline int local_server_task(void *arg)
{
    struct local_server *ls = arg;
    return weft_http_serve(ls->srv, ls->listener);   /* until shutdown; closes the listener */
}

/* Listens on 127.0.0.1:0 and starts serving srv; on success ls owns srv.
 * 0 or a negative code (srv is then still the caller's). */
static inline int local_server_start(struct local_server *ls, weft_http_server *srv)
{
    *ls = (struct local_server){ .srv = srv };
    int rc = weft_tcp_listen(&ls->listener, "127.0.0.1", 0, 0, 0);
    if (rc)
        return rc;
    ls->port = weft_listener_port(ls->listener);
    if (!(ls->group = weft_group_new())) {
        rc = -errno;
        weft_listener_close(ls->listener);
        return rc;
    }
    if ((rc = weft_spawn(ls->group, local_server_task, ls, "local server")) != 0) {
        weft_listener_close(ls->listener);
        weft_group_wait(ls->group);       /* empty: frees it */
        return rc;
    }
    return 0;
}

/* Shuts the server down gracefully, waits for it and frees it: 0 or the
 * serving task's error. Call from the task that started it. */
static inline int local_server_stop(struct local_server *ls)
{
    weft_http_server_shutdown(ls->srv);
    int rc = weft_group_wait(ls->group);
    weft_http_server_free(ls->srv);
    return rc;
}

/* "http://127.0.0.1:PORT" + path into buf. */
static inline void local_url(const struct local_server *ls, char *buf, size_t size,
                             const char *path)
{
    snprintf(buf, size, "http://127.0.0.1:%d%s", ls->port, path);
}

#endif
