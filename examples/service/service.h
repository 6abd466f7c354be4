/*
 * weft serve's parts (examples/service/): service.c is the command line,
 * the routes every configuration has and the SQLite data; pg.c the
 * PostgreSQL data and the TechEmpower tests; events.c POST /events on the
 * durable queue. What they share is here.
 */
#ifndef WEFT_SERVICE_H
#define WEFT_SERVICE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "weft.h"

#define MAX_ALLOW 64

/* an upstream /proxy may fetch from: host as weft_url has it, port 0 = any */
struct upstream { char host[256]; int port; };

struct service {
    const char *host, *db_path;
    const char *pg_url;                   /* NULL: the SQLite data */
    const char *queue_url;                /* the events' queue */
    const char *redis_url;                /* NULL: no cache */
    char queue_default[4096];             /* sqlite: beside db_path */
    int port, threads;
    int workers;                          /* jobs at once per loop */
    int attempts;                         /* runs of an event's job before it is dead */
    weft_time timeout;                    /* each request's deadline */
    weft_http_server *server;
    struct upstream allow[MAX_ALLOW];     /* for /proxy */
    int nallow;
};

/* A user as both data stores give it. */
typedef struct svc_user {
    int64_t id;
    char name[128], email[128];
} svc_user;

/* ---- service.c ---- */
/* answers status with j as JSON (and drops j) */
int svc_json(weft_http_res *r, int status, json_t *j);
/* answers {"error": why} */
int svc_error(weft_http_res *r, int status, const char *why);
/* A data call's failure as the client should see it: 504 past the
 * deadline, 503 + Retry-After when the database is busy or away; any
 * other code is returned (a 500). */
int svc_data_error(weft_http_res *r, int rc);
/* answers 503 + Retry-After, saying rc */
int svc_unavailable(weft_http_res *r, int rc);
/* weft_http_server_route with the handler under the request's deadline
 * (sv->timeout, which reaches PostgreSQL: its statement stops there too) */
int svc_route(struct service *sv, const char *method, const char *pattern, weft_http_handler h,
              void *ctx);
/* the request's Content-Type is application/json (parameters allowed) */
bool svc_is_json(weft_http_req *q);
/* a positive decimal integer, digits only, or 0 */
long long svc_parse_id(const char *s);

/* the user's record: 0 (*found says whether there is one) or an error */
int svc_user_find(int64_t id, svc_user *u, bool *found);
/* Sets u's name and email: 0 (*found: whether the user exists), or an error. */
int svc_user_update(const svc_user *u, bool *found);
/* Records an event once per event_id (its job run again records nothing
 * more; job_id is kept beside it, unique only within its queue): 0
 * (*found: whether its user exists; nothing is recorded when not), or an
 * error. data is JSON text or NULL. */
int svc_event_record(const char *event_id, int64_t job_id, const char *type, int64_t user_id,
                     const char *data, bool *found);

/* ---- pg.c (WEFT_HAVE_PG) ---- */
int svc_pg_migrate(const char *url);      /* before the loops; 0 or 1 (said on stderr) */
int svc_pg_loop_start(const struct service *sv);
void svc_pg_loop_stop(void);
int svc_pg_routes(struct service *sv);
int svc_pg_user_find(int64_t id, svc_user *u, bool *found);
int svc_pg_user_update(const svc_user *u, bool *found);
int svc_pg_event_record(const char *event_id, int64_t job_id, const char *type, int64_t user_id,
                        const char *data, bool *found);

/* ---- events.c ---- */
void svc_events_metrics(void);            /* once, before the loops */
int svc_events_loop_start(const struct service *sv);
void svc_events_loop_stop(void);          /* running jobs finish within the grace */
int svc_events_routes(struct service *sv);

/* ---- cache.c (WEFT_HAVE_REDIS): /users/{id} cache-aside ---- */
void svc_cache_metrics(void);
int svc_cache_loop_start(const struct service *sv);
void svc_cache_loop_stop(void);
/* the cached answer into buf: its length, or 0 (a miss, or no cache) */
int svc_cache_get(int64_t id, char *buf, size_t size);
/* the answer cached, unless a write's tombstone is there (it may be older
 * than that write) */
void svc_cache_put(int64_t id, const char *json);
/* After a write: the cached answer deleted and a tombstone left that
 * stops fills for --timeout + 5 s; shielded (within 1 s of its own, past
 * the request's deadline or cancellation): 0 or the Redis error (logged) */
int svc_cache_del(int64_t id);

#endif
