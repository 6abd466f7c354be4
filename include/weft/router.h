/*
 * weft router: method + path patterns for the HTTP server.
 *
 * Patterns are absolute paths whose segments are literals or parameters:
 * "/users/{id}/posts/{post}". A literal segment wins over a parameter at
 * the same place ("/users/me" before "/users/{id}"). Matching allocates
 * nothing: parameter values point into the path being matched. A path
 * with no route is 404; a path whose routes have other methods is 405 with
 * the Allow list; HEAD is served by the GET route when there is no HEAD
 * route. Build the router before serving; matching is then read-only and
 * safe from every loop.
 */
#ifndef WEFT_ROUTER_H
#define WEFT_ROUTER_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WEFT_ROUTE_MAX_PARAMS 8

typedef struct weft_router weft_router;

typedef struct weft_route_match {
    void *handler;                         /* what weft_router_add stored */
    void *ctx;
    const char *pattern;                   /* the route's pattern, owned by the router */
    int nparams;
    struct {
        const char *name;                  /* from the pattern, NUL-terminated */
        const char *value;                 /* into the matched path, not terminated */
        size_t len;
    } params[WEFT_ROUTE_MAX_PARAMS];
} weft_route_match;

/* NULL with errno ENOMEM. */
weft_router *weft_router_new(void);
void weft_router_free(weft_router *r);

/* Adds a route. -EINVAL (method not a token, pattern not starting with
 * '/', an empty or unclosed "{}", a parameter not alone in its segment,
 * more than WEFT_ROUTE_MAX_PARAMS parameters, two names for one parameter
 * position), -EEXIST (the same method and pattern again), -ENOMEM. */
int weft_router_add(weft_router *r, const char *method, const char *pattern, void *handler,
                    void *ctx);

/* Matches method and path (path_len bytes, no query string). 0 with m
 * filled; -ENOENT (404); -EPERM (405: allow gets the methods the path has,
 * "GET, HEAD, POST", NUL-terminated, truncated to allow_size). */
int weft_router_match(const weft_router *r, const char *method, const char *path,
                      size_t path_len, weft_route_match *m, char *allow, size_t allow_size);

#ifdef __cplusplus
}
#endif

#endif
