/* The Redis client's parts that need no server, as data: URLs (each
 * accepted form and each refused one with the words of its error), RESP2
 * replies fed whole and byte by byte (the same replies and the same error
 * either way, limits included), commands formatted from argv and from
 * hiredis-style formats (checked against hiredis's own formatter), and the
 * reader with each of its allocations failing in turn. */
#include <hiredis/hiredis.h>
#include <limits.h>

#include "alloc.h"
#include "redis/internal.h"

/* ---- URLs --------------------------------------------------------------- */

struct url_ok {
    const char *in;
    int kind;
    const char *host;
    int port;
    const char *path, *user, *pass;
    bool has_pass;
    int db;
};

enum { TCP = WEFT__REDIS_TCP, TLS = WEFT__REDIS_TLS, UNX = WEFT__REDIS_UNIX };

static const struct url_ok url_oks[] = {
    { "redis://localhost", TCP, "localhost", 6379, "", "", "", false, 0 },
    { "redis://localhost/", TCP, "localhost", 6379, "", "", "", false, 0 },
    { "REDIS://h:6380/3", TCP, "h", 6380, "", "", "", false, 3 },
    { "redis://127.0.0.1:65535/2147483647", TCP, "127.0.0.1", 65535, "", "", "", false, INT_MAX },
    { "redis://h:1/0", TCP, "h", 1, "", "", "", false, 0 },
    { "redis://h/007", TCP, "h", 6379, "", "", "", false, 7 },
    { "rediss://cache.example.com:6390/1", TLS, "cache.example.com", 6390, "", "", "", false, 1 },
    { "redis://:secret@h", TCP, "h", 6379, "", "", "secret", true, 0 },
    { "redis://secret@h", TCP, "h", 6379, "", "", "secret", true, 0 },   /* redis-cli's reading */
    { "redis://u:@h", TCP, "h", 6379, "", "u", "", true, 0 },
    { "redis://:@h", TCP, "h", 6379, "", "", "", true, 0 },
    { "redis://u:p%40ss%3a%2F@h:7/2", TCP, "h", 7, "", "u", "p@ss:/", true, 2 },
    { "redis://%75ser:p:q@h", TCP, "h", 6379, "", "user", "p:q", true, 0 },
    { "redis://:a@b@h", TCP, "h", 6379, "", "", "a@b", true, 0 },
    { "redis://[::1]:7000/2", TCP, "::1", 7000, "", "", "", false, 2 },
    { "rediss://[2001:db8::1]", TLS, "2001:db8::1", 6379, "", "", "", false, 0 },
    { "redis://my_host.local-1", TCP, "my_host.local-1", 6379, "", "", "", false, 0 },
    { "unix:///tmp/redis.sock", UNX, "", 0, "/tmp/redis.sock", "", "", false, 0 },
    { "unix:///tmp/redis.sock?db=5", UNX, "", 0, "/tmp/redis.sock", "", "", false, 5 },
    { "Unix://:pw@/run/r.sock", UNX, "", 0, "/run/r.sock", "", "pw", true, 0 },
    { "unix://u:pw@/run/r%20x", UNX, "", 0, "/run/r%20x", "u", "pw", true, 0 },
};

struct url_bad { const char *in, *error; };
static const struct url_bad url_bads[] = {
    { "", "empty URL" },
    { "localhost:6379", "missing scheme" },
    { "localhost", "missing scheme" },
    { "://h", "missing scheme" },
    { "re dis://h", "missing scheme" },
    { "http://h", "unknown scheme 'http'" },
    { "redis:/h", "missing scheme" },
    { "redis://", "missing host" },
    { "redis://:6379", "missing host" },
    { "redis://:pw@", "missing host" },
    { "redis:///0", "missing host" },
    { "redis://h:99999", "bad port '99999'" },
    { "redis://h:65536", "bad port '65536'" },
    { "redis://h:0", "bad port '0'" },
    { "redis://h:-1", "bad port '-1'" },
    { "redis://h:+80", "bad port '+80'" },
    { "redis://h: 80", "bad port ' 80'" },
    { "redis://h:80a", "bad port '80a'" },
    { "redis://h:006379", "bad port '006379'" },
    { "redis://h:1:2", "bad port '1:2'" },
    { "redis://h:", "empty port" },
    { "redis://h/-1", "bad db '-1'" },
    { "redis://h/+1", "bad db '+1'" },
    { "redis://h/ 1", "bad db ' 1'" },
    { "redis://h/1 ", "bad db '1 '" },
    { "redis://h/2147483648", "bad db '2147483648'" },
    { "redis://h/99999999999", "bad db '99999999999'" },
    { "redis://h/1x", "bad db '1x'" },
    { "redis://h/1/", "junk after the db" },
    { "redis://h//", "junk after the db" },
    { "redis://h/1?x=2", "take no query" },
    { "redis://h?db=1", "take no query" },
    { "rediss://h/?db=1", "take no query" },
    { "redis://h#f", "fragment" },
    { "redis://h/1#f", "junk after the db" },
    { "redis://:p%zz@h", "bad percent escape in the password" },
    { "redis://:p%4@h", "bad percent escape in the password" },
    { "redis://:p%@h", "bad percent escape in the password" },
    { "redis://:p%00@h", "%00 (NUL) in the password" },
    { "redis://u%00:p@h", "%00 (NUL) in the user" },
    { "redis://u%g0:p@h", "bad percent escape in the user" },
    { "redis://a b:pw@h", "space in the user" },
    { "redis://:p\tw@h", "control character or space in the password" },
    { "redis://@h", "empty user information" },
    { "redis://[::1", "unterminated IPv6 literal" },
    { "redis://[zz::1]", "bad IPv6 literal" },
    { "redis://[]", "bad IPv6 literal" },
    { "redis://[::1]x", "junk after IPv6 literal" },
    { "redis://[::1]:0", "bad port '0'" },
    { "redis://h o", "bad character in host" },
    { "redis://h%41", "bad character in host" },
    { "unix://", "unix:// takes no host" },
    { "unix://h/tmp/s", "unix:// takes no host" },
    { "unix://tmp/s", "unix:// takes no host" },
    { "unix:///", "missing socket path" },
    { "unix:///?db=1", "missing socket path" },
    { "unix:///tmp/s?db=x", "bad db 'x'" },
    { "unix:///tmp/s?db=", "bad db ''" },
    { "unix:///tmp/s?db=-1", "bad db '-1'" },
    { "unix:///tmp/s?db=1&x=2", "bad db '1&x=2'" },
    { "unix:///tmp/s?foo=1", "unknown query 'foo=1'" },
    { "unix:///tmp/s?", "unknown query ''" },
    { "unix:///tmp/s#x", "fragment" },
};

static void test_url_ok(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof url_oks / sizeof url_oks[0]; i++) {
        const struct url_ok *c = &url_oks[i];
        struct weft__redis_url u;
        char err[128];
        int rc = weft__redis_url_parse(c->in, &u, err, sizeof err);
        if (rc)
            fail_msg("%s: %d (%s)", c->in, rc, err);
        if (u.kind != c->kind || strcmp(u.host, c->host) || u.port != c->port ||
            strcmp(u.path, c->path) || strcmp(u.user, c->user) || strcmp(u.pass, c->pass) ||
            u.has_pass != c->has_pass || u.db != c->db)
            fail_msg("%s: kind %d host '%s' port %d path '%s' user '%s' pass '%s' has_pass %d "
                     "db %d", c->in, u.kind, u.host, u.port, u.path, u.user, u.pass, u.has_pass,
                     u.db);
    }
}

static void test_url_bad(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof url_bads / sizeof url_bads[0]; i++) {
        const struct url_bad *c = &url_bads[i];
        struct weft__redis_url u;
        char err[128];
        int rc = weft__redis_url_parse(c->in, &u, err, sizeof err);
        if (rc != -EINVAL || !strstr(err, c->error))
            fail_msg("'%s': %d '%s', want '%s'", c->in, rc, err, c->error);
    }
    /* the lengths the struct holds, and one more */
    struct weft__redis_url u;
    char url[1024], err[128];
    char host[300];
    memset(host, 'a', sizeof host);
    snprintf(url, sizeof url, "redis://%.255s", host);
    assert_int_equal(weft__redis_url_parse(url, &u, err, sizeof err), 0);
    snprintf(url, sizeof url, "redis://%.256s", host);
    assert_int_equal(weft__redis_url_parse(url, &u, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "host too long"));
    snprintf(url, sizeof url, "redis://:%.255s@h", host);
    assert_int_equal(weft__redis_url_parse(url, &u, err, sizeof err), 0);
    snprintf(url, sizeof url, "redis://:%.256s@h", host);
    assert_int_equal(weft__redis_url_parse(url, &u, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "password too long"));
    snprintf(url, sizeof url, "redis://%.127s:p@h", host);
    assert_int_equal(weft__redis_url_parse(url, &u, err, sizeof err), 0);
    snprintf(url, sizeof url, "redis://%.128s:p@h", host);
    assert_int_equal(weft__redis_url_parse(url, &u, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "user too long"));
    snprintf(url, sizeof url, "unix:///%.106s", host);     /* 107 bytes and a NUL */
    assert_int_equal(weft__redis_url_parse(url, &u, err, sizeof err), 0);
    snprintf(url, sizeof url, "unix:///%.107s", host);
    assert_int_equal(weft__redis_url_parse(url, &u, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "socket path too long"));
    /* no error buffer is fine */
    assert_int_equal(weft__redis_url_parse("redis://h:0", &u, NULL, 0), -EINVAL);
}

/* ---- replies ------------------------------------------------------------- */

/* A reply as text: +status -error :int 'bulk' nil [a,b]; \0 \r \n escaped. */
static void describe(const weft_redis_reply *r, char *out, size_t cap, size_t *o)
{
#define PUT(...) (*o += (size_t)snprintf(out + *o, *o < cap ? cap - *o : 0, __VA_ARGS__))
    switch (r->type) {
    case WEFT_REDIS_STATUS:
    case WEFT_REDIS_ERROR:
    case WEFT_REDIS_STRING:
        PUT("%s", r->type == WEFT_REDIS_STATUS ? "+" : r->type == WEFT_REDIS_ERROR ? "-" : "'");
        if (r->str[r->len] != 0)
            PUT("<not NUL-terminated>");
        for (size_t i = 0; i < r->len; i++) {
            char c = r->str[i];
            PUT("%s", c == 0 ? "\\0" : c == '\r' ? "\\r" : c == '\n' ? "\\n" : (char[]){ c, 0 });
        }
        if (r->type == WEFT_REDIS_STRING)
            PUT("'");
        break;
    case WEFT_REDIS_INTEGER:
        PUT(":%lld", r->integer);
        break;
    case WEFT_REDIS_NIL:
        PUT("nil");
        break;
    case WEFT_REDIS_ARRAY:
        PUT("[");
        for (size_t i = 0; i < r->elements; i++) {
            if (i)
                PUT(",");
            describe(&r->element[i], out, cap, o);
        }
        PUT("]");
        break;
    default:
        PUT("?%d", r->type);
    }
#undef PUT
}

/* Feeds in[0..n) chunk bytes at a time, taking replies after each feed;
 * their descriptions go to out, space-separated. The error that ended it
 * (-EPROTO...), else 0. */
static int read_all(const char *in, size_t n, size_t chunk, size_t max_reply, size_t max_el,
                    char *out, size_t cap, char *err, size_t errcap)
{
    struct weft__redis_reader *rd = weft__redis_reader_new(max_reply, max_el);
    if (!rd)
        return -ENOMEM;
    size_t o = 0;
    out[0] = 0;
    int rc = 0;
    for (size_t at = 0; at < n && rc == 0; at += chunk) {
        size_t k = n - at < chunk ? n - at : chunk;
        rc = weft__redis_reader_feed(rd, in + at, k);
        weft_redis_reply *r = NULL;
        while (rc == 0 && (rc = weft__redis_reader_get(rd, &r)) == 1) {
            if (o)
                o += (size_t)snprintf(out + o, o < cap ? cap - o : 0, " ");
            describe(r, out, cap, &o);
            weft_redis_reply_free(r);
            rc = 0;
        }
        EXPECT(r == NULL);
    }
    if (err)
        snprintf(err, errcap, "%s", weft__redis_reader_error(rd));
    weft__redis_reader_free(rd);
    return rc;
}

struct reply_case {
    const char *in;
    size_t len;                       /* 0: strlen */
    const char *want;                 /* the replies read before the end or the error */
    int err;
    size_t max_reply, max_el;         /* 0: 1 MiB, 1000 */
};

#define BIN(s) s, sizeof s - 1

static const struct reply_case replies[] = {
    { "+OK\r\n", 0, "+OK", 0, 0, 0 },
    { "+\r\n", 0, "+", 0, 0, 0 },
    { "-ERR wrong type\r\n", 0, "-ERR wrong type", 0, 0, 0 },
    { ":0\r\n:-5\r\n:42\r\n", 0, ":0 :-5 :42", 0, 0, 0 },
    { ":9223372036854775807\r\n:-9223372036854775808\r\n", 0,
      ":9223372036854775807 :-9223372036854775808", 0, 0, 0 },
    { "$3\r\nabc\r\n", 0, "'abc'", 0, 0, 0 },
    { "$0\r\n\r\n", 0, "''", 0, 0, 0 },
    { "$-1\r\n", 0, "nil", 0, 0, 0 },
    { "*-1\r\n", 0, "nil", 0, 0, 0 },
    { "*0\r\n", 0, "[]", 0, 0, 0 },
    { "*3\r\n$1\r\na\r\n:1\r\n$-1\r\n", 0, "['a',:1,nil]", 0, 0, 0 },
    { "*2\r\n*1\r\n+x\r\n*0\r\n", 0, "[[+x],[]]", 0, 0, 0 },
    { "*2\r\n-ERR a\r\n*-1\r\n", 0, "[-ERR a,nil]", 0, 0, 0 },
    { BIN("$6\r\na\0\r\nb\n\r\n"), "'a\\0\\r\\nb\\n'", 0, 0, 0 },
    { BIN("+a\0b\r\n"), "+a\\0b", 0, 0, 0 },
    { "+A\r\n:2\r\n$1\r\nx\r\n*1\r\n:3\r\n", 0, "+A :2 'x' [:3]", 0, 0, 0 },
    /* hiredis's nesting: 8 levels of arrays, not 9 */
    { "*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n", 0, "[[[[[[[[:1]]]]]]]]", 0, 0, 0 },
    { "*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n", 0, "", -EPROTO, 0, 0 },
    /* numbers hiredis 0.14 would take as something else */
    { ":99999999999999999999\r\n", 0, "", -EPROTO, 0, 0 },
    { ":9223372036854775808\r\n", 0, "", -EPROTO, 0, 0 },
    { ":-9223372036854775809\r\n", 0, "", -EPROTO, 0, 0 },
    { ":abc\r\n", 0, "", -EPROTO, 0, 0 },
    { "+A\r\n:1:2\r\n", 0, "+A", -EPROTO, 0, 0 },
    { ":\r\n", 0, "", -EPROTO, 0, 0 },
    { ":-\r\n", 0, "", -EPROTO, 0, 0 },
    { ":+1\r\n", 0, "", -EPROTO, 0, 0 },
    { ":01\r\n", 0, "", -EPROTO, 0, 0 },
    { ":-0\r\n", 0, "", -EPROTO, 0, 0 },
    { ":1 \r\n", 0, "", -EPROTO, 0, 0 },
    { ":-1\rx\r\n", 0, "", -EPROTO, 0, 0 },
    { ":1234567890123456789012345678901234567890", 0, "", -EPROTO, 0, 0 },  /* no CRLF yet */
    { "$-2\r\n", 0, "", -EPROTO, 0, 0 },
    { "$-1\rx\r\n", 0, "", -EPROTO, 0, 0 },
    { "$abc\r\n", 0, "", -EPROTO, 0, 0 },
    { "$+3\r\nabc\r\n", 0, "", -EPROTO, 0, 0 },
    { "$03\r\nabc\r\n", 0, "", -EPROTO, 0, 0 },
    { "$3\r\nabcXY", 0, "", -EPROTO, 0, 0 },
    { "$3\r\nabc\rX:1\r\n", 0, "", -EPROTO, 0, 0 },
    { "$11111111111111111111111111111111\r\n", 0, "", -EPROTO, 0, 0 },
    { "*-2\r\n", 0, "", -EPROTO, 0, 0 },
    { "*x\r\n", 0, "", -EPROTO, 0, 0 },
    { "*\r\n", 0, "", -EPROTO, 0, 0 },
    { "*1\r\n*01\r\n:1\r\n", 0, "", -EPROTO, 0, 0 },
    { "?x\r\n", 0, "", -EPROTO, 0, 0 },
    { "+OK\r\n\r\n", 0, "+OK", -EPROTO, 0, 0 },
    /* limits: refused as soon as the header says so */
    { "*4294967297\r\n", 0, "", -EPROTO, 0, 0 },          /* hiredis: out of range */
    { "*2147483647\r\n", 0, "", -EMSGSIZE, 0, 0 },
    { "$1000\r\n", 0, "", -EMSGSIZE, 100, 0 },
    { "$9223372036854775807\r\n", 0, "", -EMSGSIZE, 0, 0 },
    { "$10\r\n0123456789\r\n", 0, "", -EMSGSIZE, 5, 0 },
    { "$5\r\n01234\r\n", 0, "'01234'", 0, 5, 0 },
    { "*2\r\n$3\r\nabc\r\n$3\r\ndef\r\n", 0, "", -EMSGSIZE, 5, 0 },
    { "*2\r\n+abc\r\n-def\r\n", 0, "", -EMSGSIZE, 5, 0 },
    { "+0123456789", 0, "", -EMSGSIZE, 5, 0 },          /* no CRLF yet */
    { "$3\r\nabc\r\n$3\r\ndef\r\n", 0, "'abc' 'def'", 0, 5, 0 },  /* per reply */
    { "*3\r\n:1\r\n:2\r\n:3\r\n", 0, "", -EMSGSIZE, 0, 2 },
    { "*2\r\n*2\r\n:1\r\n:2\r\n:3\r\n", 0, "", -EMSGSIZE, 0, 3 },
    { "*2\r\n:1\r\n:2\r\n*1\r\n*1\r\n:3\r\n", 0, "[:1,:2] [[:3]]", 0, 0, 2 },
};

static void test_replies(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof replies / sizeof replies[0]; i++) {
        const struct reply_case *c = &replies[i];
        size_t n = c->len ? c->len : strlen(c->in);
        size_t mr = c->max_reply ? c->max_reply : 1 << 20, me = c->max_el ? c->max_el : 1000;
        char whole[512], bytes[512], err[128], err1[128];
        test_failures = 0;
        int rw = read_all(c->in, n, n, mr, me, whole, sizeof whole, err, sizeof err);
        int r1 = read_all(c->in, n, 1, mr, me, bytes, sizeof bytes, err1, sizeof err1);
        if (rw > 0)
            rw = 0;
        if (r1 > 0)
            r1 = 0;
        if (rw != c->err || strcmp(whole, c->want) || test_failures)
            fail_msg("case %zu whole: %d (%s) '%s', want %d '%s'", i, rw, err, whole, c->err,
                     c->want);
        if (r1 != c->err || strcmp(bytes, c->want))
            fail_msg("case %zu byte by byte: %d (%s) '%s', want %d '%s'", i, r1, err1, bytes,
                     c->err, c->want);
        if (c->err && !*err)
            fail_msg("case %zu: no error message", i);
    }
}

/* hiredis's messages come through; weft's own say what was wrong */
static void test_reply_messages(void **state)
{
    (void)state;
    char out[64], err[128];
    assert_int_equal(read_all("?x\r\n", 4, 4, 100, 100, out, sizeof out, err, sizeof err),
                     -EPROTO);
    assert_non_null(strstr(err, "Protocol error, got \"?\" as reply type byte"));
    const char *deep = "*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n";
    assert_int_equal(read_all(deep, strlen(deep), 3, 1000, 100, out, sizeof out, err, sizeof err),
                     -EPROTO);
    assert_non_null(strstr(err, "depth > 7"));
    assert_int_equal(read_all(":x\r\n", 4, 4, 100, 100, out, sizeof out, err, sizeof err),
                     -EPROTO);
    assert_non_null(strstr(err, "Bad integer value"));
    assert_int_equal(read_all("$1000\r\n", 7, 7, 100, 100, out, sizeof out, err, sizeof err),
                     -EMSGSIZE);
    assert_non_null(strstr(err, "max_reply"));
}

/* A big bulk arrives in pieces: one block, binary intact; and after an
 * error the reader stays in it. */
static void test_reply_big_and_sticky(void **state)
{
    (void)state;
    size_t n = 300000;
    char *in = malloc(n + 32);
    int h = sprintf(in, "*1\r\n$%zu\r\n", n);
    for (size_t i = 0; i < n; i++)
        in[h + i] = (char)(i * 7);
    memcpy(in + h + n, "\r\n", 2);
    size_t total = (size_t)h + n + 2;
    /* the bulk and the array's one element (its struct counts too) */
    struct weft__redis_reader *rd = weft__redis_reader_new(n + sizeof(weft_redis_reply), 10);
    assert_non_null(rd);
    weft_redis_reply *r = NULL;
    for (size_t at = 0; at < total; at += 4096) {
        assert_int_equal(weft__redis_reader_feed(rd, in + at, total - at < 4096 ? total - at : 4096),
                         0);
        int rc = weft__redis_reader_get(rd, &r);
        assert_int_equal(rc, at + 4096 >= total ? 1 : 0);
    }
    assert_int_equal(r->type, WEFT_REDIS_ARRAY);
    assert_int_equal(r->elements, 1);
    assert_int_equal(r->element[0].len, n);
    assert_memory_equal(r->element[0].str, in + h, n);
    assert_int_equal(r->element[0].str[n], 0);
    /* one block: the element and its string inside it */
    assert_true((const char *)r->element[0].str > (const char *)r);
    weft_redis_reply_free(r);
    assert_int_equal(weft__redis_reader_feed(rd, "?\r\n", 3), 0);
    assert_int_equal(weft__redis_reader_get(rd, &r), -EPROTO);
    assert_null(r);
    assert_int_equal(weft__redis_reader_feed(rd, "+OK\r\n", 5), -EPROTO);
    assert_int_equal(weft__redis_reader_get(rd, &r), -EPROTO);
    weft__redis_reader_free(rd);
    free(in);
    weft_redis_reply_free(NULL);
}

/* ---- commands ------------------------------------------------------------ */

static int fmt(char **b, size_t *l, size_t *c, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    int rc = weft__redis_format_v(b, l, c, f, ap);
    va_end(ap);
    return rc;
}

static void test_format_argv(void **state)
{
    (void)state;
    char *b = NULL;
    size_t len = 0, cap = 0;
    const char *argv[] = { "SET", "key", "value" };
    assert_int_equal(weft__redis_format_argv(&b, &len, &cap, 3, argv, NULL), 0);
    const char *want = "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n";
    assert_int_equal(len, strlen(want));
    assert_memory_equal(b, want, len);
    /* appended, binary-safe, argvlen given */
    const char *bin[] = { "SET", "k\0y", "a\r\nb", NULL };
    const size_t binlen[] = { 3, 3, 4, 0 };
    assert_int_equal(weft__redis_format_argv(&b, &len, &cap, 4, bin, binlen), 0);
    const char want2[] = "*4\r\n$3\r\nSET\r\n$3\r\nk\0y\r\n$4\r\na\r\nb\r\n$0\r\n\r\n";
    assert_int_equal(len, strlen(want) + sizeof want2 - 1);
    assert_memory_equal(b + strlen(want), want2, sizeof want2 - 1);
    assert_true(cap >= len);
    /* the same bytes as hiredis */
    char *hc;
    int hn = redisFormatCommandArgv(&hc, 4, bin, binlen);
    assert_int_equal((size_t)hn, sizeof want2 - 1);
    assert_memory_equal(hc, want2, (size_t)hn);
    redisFreeCommand(hc);
    /* refused, nothing appended */
    size_t before = len;
    assert_int_equal(weft__redis_format_argv(&b, &len, &cap, 0, argv, NULL), -EINVAL);
    const char *nul[] = { "GET", NULL };
    assert_int_equal(weft__redis_format_argv(&b, &len, &cap, 2, nul, NULL), -EINVAL);
    assert_int_equal(len, before);
    free(b);
    /* growth by doubling from a small buffer */
    b = malloc(8);
    len = 0;
    cap = 8;
    const char *big[] = { "x", "0123456789012345678901234567890123456789" };
    assert_int_equal(weft__redis_format_argv(&b, &len, &cap, 2, big, NULL), 0);
    assert_int_equal(cap, 64);
    free(b);
}

/* each format against hiredis's redisFormatCommand with the same arguments */
#define SAME_AS_HIREDIS(...)                                                        \
    do {                                                                            \
        char *b_ = NULL, *h_;                                                       \
        size_t l_ = 0, c_ = 0;                                                      \
        assert_int_equal(fmt(&b_, &l_, &c_, __VA_ARGS__), 0);                       \
        int n_ = redisFormatCommand(&h_, __VA_ARGS__);                              \
        assert_true(n_ > 0);                                                        \
        if ((size_t)n_ != l_ || memcmp(b_, h_, l_))                                 \
            fail_msg("%s: '%.*s' vs hiredis '%.*s'", #__VA_ARGS__, (int)l_, b_, n_, h_); \
        redisFreeCommand(h_);                                                       \
        free(b_);                                                                   \
    } while (0)

static void test_format_v(void **state)
{
    (void)state;
    SAME_AS_HIREDIS("GET k");
    SAME_AS_HIREDIS("  GET   k  ");
    SAME_AS_HIREDIS("SET key:%s %b", "a b", "x y\0z", (size_t)5);
    SAME_AS_HIREDIS("SET k %s", "");
    SAME_AS_HIREDIS("SET k %b", "", (size_t)0);
    SAME_AS_HIREDIS("INCRBY %s%s %d", "a", "b", -5);
    SAME_AS_HIREDIS("X %lld %d%%", 123456789012LL, 7);
    SAME_AS_HIREDIS("a%%b %% %%%s", "q");
    SAME_AS_HIREDIS("%s", "with spaces and\r\nCRLF");
    SAME_AS_HIREDIS("ZADD z %lld m", (long long)INT64_MIN);
    /* the exact bytes once */
    char *b = NULL;
    size_t len = 0, cap = 0;
    assert_int_equal(fmt(&b, &len, &cap, "SET key:%s %d", "a b", 42), 0);
    const char *want = "*3\r\n$3\r\nSET\r\n$7\r\nkey:a b\r\n$2\r\n42\r\n";
    assert_int_equal(len, strlen(want));
    assert_memory_equal(b, want, len);
    /* refused, nothing appended */
    const char *bad[] = { "", "   ", "GET %", "GET %f", "GET %x", "GET %l", "GET %ld", "GET %lx",
                          "GET %u", "GET %i", "GET %zu", "GET %5d" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = fmt(&b, &len, &cap, bad[i], 1, 2, 3);
        if (rc != -EINVAL || len != strlen(want))
            fail_msg("'%s': %d", bad[i], rc);
    }
    assert_int_equal(fmt(&b, &len, &cap, "GET %s", (char *)NULL), -EINVAL);
    assert_int_equal(fmt(&b, &len, &cap, "GET %b", (char *)NULL, (size_t)1), -EINVAL);
    assert_int_equal(fmt(&b, &len, &cap, "GET %b", (char *)NULL, (size_t)0), 0);
    assert_int_equal(fmt(&b, &len, &cap, NULL), -EINVAL);
    free(b);
}

/* ---- the reader with each allocation failing ----------------------------- */

static const char sweep_in[] = "*3\r\n$3\r\nabc\r\n*2\r\n:1\r\n+OK\r\n$-1\r\n"
                               "$5\r\nhello\r\n:7\r\n-ERR x\r\n*0\r\n*-1\r\n";
static const char *sweep_want = "['abc',[:1,+OK],nil] 'hello' :7 -ERR x [] nil";

static int sweep_once(void *arg)
{
    size_t chunk = *(size_t *)arg;
    char out[256];
    int rc = read_all(sweep_in, sizeof sweep_in - 1, chunk, 1 << 20, 100, out, sizeof out, NULL,
                      0);
    if (rc < 0)
        return rc;
    EXPECT(strcmp(out, sweep_want) == 0);
    return 0;
}

static bool clean(int rc)
{
    return rc == 0 || rc == -ENOMEM;
}

static void test_reader_alloc(void **state)
{
    (void)state;
    size_t whole = sizeof sweep_in, one = 1;
    assert_true(alloc_sweep(sweep_once, &whole, clean) > 0);
    assert_true(alloc_sweep(sweep_once, &one, clean) > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_ok),
        cmocka_unit_test(test_url_bad),
        cmocka_unit_test(test_replies),
        cmocka_unit_test(test_reply_messages),
        cmocka_unit_test(test_reply_big_and_sticky),
        cmocka_unit_test(test_format_argv),
        cmocka_unit_test(test_format_v),
        cmocka_unit_test(test_reader_alloc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
