/*
 * /users/{id} cache-aside on Redis (--redis URL / WEFT_REDIS_URL): a hit
 * answers from Redis, a miss reads the database and keeps the answer for
 * 60 s; a write (PUT /users/{id}) deletes the entry once the database has
 * the change, or may have it (a PUT past its deadline). The cache is an
 * optimisation, never a dependency: Redis failing or away means reading
 * the database (logged at most once a minute per loop).
 *
 * A read that missed may have read the row before a write committed and
 * fill the cache after that write's delete (its answer slow to come, on
 * this instance or another): the write also leaves a tombstone, for
 * longer than a request may last (--timeout + 5 s), and a fill is one
 * small Lua script that sets the entry only where no tombstone is. A user
 * just written is read from the database until its tombstone expires.
 * Instances sharing the cache are taken to share --timeout.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "service.h"

#define TTL_S 60

/* the entry set only where no write's tombstone is */
static const char fill_script[] =
    "if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end\n"
    "redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])\n"
    "return 1";
/* a write: the tombstone first, then the entry deleted, at once */
static const char invalidate_script[] =
    "redis.call('SET', KEYS[2], '1', 'PX', ARGV[1])\n"
    "return redis.call('DEL', KEYS[1])";

static long long tomb_ms;                 /* a tombstone's life: --timeout + 5 s */
static __thread weft_redis *cache;
static __thread weft_time warned;         /* the last failure logged */
static weft_metric *hits, *misses;

void svc_cache_metrics(void)            /* once, before the loops */
{
    hits = weft_counter("weft_example_cache_total{result=\"hit\"}", "/users/{id} answered by Redis");
    misses = weft_counter("weft_example_cache_total{result=\"miss\"}", NULL);
}

int svc_cache_loop_start(const struct service *sv)
{
    if (!sv->redis_url)
        return 0;
    tomb_ms = (long long)((sv->timeout + 5 * WEFT_SEC) / WEFT_MS);
    weft_redis_opts o = { .name = "cache", .acquire_timeout = 500 * WEFT_MS,
                          .connect_timeout = 2 * WEFT_SEC, .command_timeout = WEFT_SEC };
    if (!(cache = weft_redis_new(sv->redis_url, &o)))
        return -errno;
    return 0;
}

void svc_cache_loop_stop(void)
{
    if (cache)
        weft_redis_close(cache, WEFT_SEC);
    cache = NULL;
}

bool svc_cache_on(void)
{
    return cache != NULL;
}

static void failed(const char *what, int rc)
{
    weft_time now = weft_now();
    if (!warned || now - warned > 60 * WEFT_SEC) {
        warned = now;
        weft_log(WEFT_LOG_WARN, "serve: cache %s failed (reading the database): %s", what,
                 weft_strerror(rc));
    }
}

/* the entry's key and its tombstone's */
static void keys(int64_t id, char key[48], char tomb[48])
{
    snprintf(key, 48, "weft:serve:user:%lld", (long long)id);
    if (tomb)
        snprintf(tomb, 48, "weft:serve:user:%lld:written", (long long)id);
}

int svc_cache_get(int64_t id, char *buf, size_t size)
{
    if (!cache)
        return 0;
    char key[48];
    keys(id, key, NULL);
    weft_redis_reply *rep = NULL;
    int rc = weft_redis_command(cache, &rep, 2, (const char *[]){ "GET", key }, NULL);
    int n = 0;
    if (rc)
        failed("GET", rc);
    else if (rep->type == WEFT_REDIS_STRING && rep->len < size) {
        memcpy(buf, rep->str, rep->len);
        buf[rep->len] = 0;
        n = (int)rep->len;
    }
    weft_redis_reply_free(rep);
    weft_metric_add(n ? hits : misses, 1);
    return n;
}

void svc_cache_put(int64_t id, const char *json)
{
    if (!cache)
        return;
    char key[48], tomb[48], ttl[16];
    keys(id, key, tomb);
    snprintf(ttl, sizeof ttl, "%d", TTL_S);
    weft_redis_reply *rep = NULL;
    int rc = weft_redis_command(cache, &rep, 7,
                                (const char *[]){ "EVAL", fill_script, "2", key, tomb, json, ttl },
                                NULL);
    if (rc)
        failed("fill", rc);
    weft_redis_reply_free(rep);
}

int svc_cache_del(int64_t id)
{
    if (!cache)
        return 0;
    char key[48], tomb[48], ms[24];
    keys(id, key, tomb);
    snprintf(ms, sizeof ms, "%lld", tomb_ms);
    weft_redis_reply *rep = NULL;
    /* past the request's deadline or cancelled, the change may be in the
     * database all the same: the delete still goes, bounded by its own 1 s */
    weft_scope sc;
    weft_scope_enter_shielded(&sc, WEFT_SEC);
    int rc = weft_redis_command(cache, &rep, 6,
                                (const char *[]){ "EVAL", invalidate_script, "2", key, tomb, ms },
                                NULL);
    weft_scope_exit(&sc);
    if (rc)
        weft_log(WEFT_LOG_ERROR, "serve: cache delete of user %lld failed: %s (stale for up to %d s)",
                 (long long)id, weft_strerror(rc), TTL_S);
    weft_redis_reply_free(rep);
    return rc;
}
