/*
 * The test servers themselves (scripts/services, cmake/Services.cmake):
 * PostgreSQL and Redis are up at the URLs the fixtures wrote, a wrong
 * password is refused as such, and a restart keeps the URL. Plain
 * synchronous libpq and hiredis, so a failure here is the wiring's, not
 * weft's clients'.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>
#include <libpq-fe.h>

#include "services.h"

/* url with its "weft:weft@" credentials replaced by "weft:<password>@". */
static void with_password(char *out, size_t n, const char *url, const char *password)
{
    const char *at = strstr(url, "weft:weft@");
    assert_non_null(at);
    snprintf(out, n, "%.*sweft:%s@%s", (int)(at - url), url, password, at + strlen("weft:weft@"));
}

static PGconn *pg_connect(const char *url)
{
    PGconn *c = PQconnectdb(url);
    assert_non_null(c);
    if (PQstatus(c) != CONNECTION_OK)
        fprintf(stderr, "%s: %s", url, PQerrorMessage(c));
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    return c;
}

/* The one value of a one-row query, or NULL if it failed. Static. */
static const char *pg_value(PGconn *c, const char *sql)
{
    static char v[256];
    PGresult *r = PQexec(c, sql);
    const char *out = NULL;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
        snprintf(v, sizeof v, "%s", PQgetvalue(r, 0, 0));
        out = v;
    }
    PQclear(r);
    return out;
}

static void pg_select(void **state)
{
    (void)state;
    const char *url = weft_test_service_url("pg");
    assert_non_null(url);
    PGconn *c = pg_connect(url);
    assert_string_equal(pg_value(c, "SELECT 1"), "1");
    assert_string_equal(pg_value(c, "SELECT current_user || '@' || current_database()"), "weft@weft");
    assert_string_equal(pg_value(c, "SELECT inet_server_addr()"), "127.0.0.1");
    assert_string_equal(pg_value(c, "SHOW max_connections"), "300");
    assert_string_equal(pg_value(c, "SHOW fsync"), "on");
    PQfinish(c);
}

static void pg_wrong_password(void **state)
{
    (void)state;
    const char *url = weft_test_service_url("pg");
    char bad[600];
    assert_non_null(url);
    with_password(bad, sizeof bad, url, "wrong");
    PGconn *c = PQconnectdb(bad);
    assert_int_equal(PQstatus(c), CONNECTION_BAD);
    assert_non_null(strstr(PQerrorMessage(c), "password authentication failed for user \"weft\""));
    PQfinish(c);
}

/* redis://127.0.0.1:PORT: a connection to it. */
static redisContext *redis_connect(const char *url)
{
    char host[64];
    int port;
    struct timeval tv = { 5, 0 };
    assert_int_equal(sscanf(url, "redis://%63[^:]:%d", host, &port), 2);
    redisContext *c = redisConnectWithTimeout(host, port, tv);
    assert_non_null(c);
    if (c->err)
        fprintf(stderr, "%s: %s\n", url, c->errstr);
    assert_int_equal(c->err, 0);
    return c;
}

/* Sends a command; asserts the reply is of type `type` with text `str`. */
static void redis_expect(redisContext *c, int type, const char *str, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    assert_non_null(r);
    assert_int_equal(r->type, type);
    assert_non_null(strstr(r->str, str));
    freeReplyObject(r);
}

static void redis_ping(void **state)
{
    (void)state;
    const char *url = weft_test_service_url("redis");
    assert_non_null(url);
    redisContext *c = redis_connect(url);
    redis_expect(c, REDIS_REPLY_STATUS, "PONG", "PING");
    redis_expect(c, REDIS_REPLY_STATUS, "OK", "SET %s %b", "services_smoke", "a\0b", (size_t)3);
    redisFree(c);
}

/* The URL's default user needs no password; user weft has one. */
static void redis_wrong_password(void **state)
{
    (void)state;
    const char *url = weft_test_service_url("redis");
    assert_non_null(url);
    redisContext *c = redis_connect(url);
    redis_expect(c, REDIS_REPLY_ERROR, "WRONGPASS", "AUTH weft wrong");
    redis_expect(c, REDIS_REPLY_STATUS, "OK", "AUTH weft weft");
    redisFree(c);
}

static void pg_restart_keeps_url(void **state)
{
    (void)state;
    char before[512];
    const char *url = weft_test_service_url("pg");
    assert_non_null(url);
    snprintf(before, sizeof before, "%s", url);
    PGconn *old = pg_connect(before);
    assert_int_equal(weft_test_service_restart("pg"), 0);
    url = weft_test_service_url("pg");
    assert_non_null(url);
    assert_string_equal(url, before);
    /* really restarted: the old session was ended by the server */
    assert_null(pg_value(old, "SELECT 1"));
    PQfinish(old);
    PGconn *c = pg_connect(url);
    assert_string_equal(pg_value(c, "SELECT 1"), "1");
    PQfinish(c);
}

static void redis_restart_keeps_url(void **state)
{
    (void)state;
    char before[512];
    const char *url = weft_test_service_url("redis");
    assert_non_null(url);
    snprintf(before, sizeof before, "%s", url);
    redisContext *old = redis_connect(before);
    assert_int_equal(weft_test_service_restart("redis"), 0);
    url = weft_test_service_url("redis");
    assert_non_null(url);
    assert_string_equal(url, before);
    redisReply *r = redisCommand(old, "PING");     /* closed by the restart */
    assert_null(r);
    redisFree(old);
    redisContext *c = redis_connect(url);
    redis_expect(c, REDIS_REPLY_STATUS, "PONG", "PING");
    redisFree(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pg_select),
        cmocka_unit_test(pg_wrong_password),
        cmocka_unit_test(redis_ping),
        cmocka_unit_test(redis_wrong_password),
        cmocka_unit_test(pg_restart_keeps_url),
        cmocka_unit_test(redis_restart_keeps_url),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
