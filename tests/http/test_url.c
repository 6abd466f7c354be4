/* URL parsing, as data: input and expected pieces (or error) side by side. */
#include "test.h"
#include "weft/url.h"

struct ok_case { const char *in, *scheme, *host, *path, *query; int port; const char *auth; };
static const struct ok_case oks[] = {
    { "http://example.com", "http", "example.com", "/", "", 80, "example.com" },
    { "HTTP://Example.COM/", "http", "example.com", "/", "", 80, "example.com" },
    { "https://example.com/a/b?x=1&y=2", "https", "example.com", "/a/b", "x=1&y=2", 443, "example.com" },
    { "http://127.0.0.1:8080/p", "http", "127.0.0.1", "/p", "", 8080, "127.0.0.1:8080" },
    { "http://[::1]:8080/x", "http", "::1", "/x", "", 8080, "[::1]:8080" },
    { "https://[2001:db8::1]/", "https", "2001:db8::1", "/", "", 443, "[2001:db8::1]" },
    { "http://h?q", "http", "h", "/", "q", 80, "h" },
    { "http://h/p%20q?a=%41", "http", "h", "/p%20q", "a=%41", 80, "h" },
    { "http://h/p#frag", "http", "h", "/p", "", 80, "h" },
    { "http://h#frag", "http", "h", "/", "", 80, "h" },
    { "https://h:443/", "https", "h", "/", "", 443, "h" },
    { "http://h:443/", "http", "h", "/", "", 443, "h:443" },
    { "http://my_host.local-1/", "http", "my_host.local-1", "/", "", 80, "my_host.local-1" },
};

struct bad_case { const char *in, *error; };
static const struct bad_case bads[] = {
    { "", "empty URL" },
    { "example.com/x", "missing scheme" },
    { "ftp://h/", "unsupported scheme: ftp" },
    { "http://user:pw@h/", "user information" },
    { "http://@h/", "user information" },
    { "http:///path", "missing host" },
    { "http://:80/", "missing host" },
    { "http://h:0/", "port out of range" },
    { "http://h:70000/", "port out of range: 70000" },
    { "http://h:80a/", "port is not a number" },
    { "http://h:/", "empty port" },
    { "http://[::1/", "unterminated IPv6 literal" },
    { "http://[zz::1]/", "bad IPv6 literal" },
    { "http://[::1]x/", "junk after IPv6 literal" },
    { "http://h o/", "character not allowed in host" },
    { "http://h/a b", "control or non-ASCII byte in path" },
    { "http://h/a%2", "bad percent escape in path" },
    { "http://h/a%zz", "bad percent escape in path" },
    { "http://h/?q=%G1", "bad percent escape in query" },
    { "http://h/<x>", "character not allowed in path" },
    { "http://h/\x01", "control or non-ASCII byte in path" },
};

static void test_valid(void **s)
{
    (void)s;
    static weft_url u;
    for (size_t i = 0; i < sizeof oks / sizeof *oks; i++) {
        const struct ok_case *c = &oks[i];
        if (weft_url_parse(&u, c->in) != 0)
            fail_msg("%s: %s", c->in, u.error);
        assert_string_equal(u.scheme, c->scheme);
        assert_string_equal(u.host, c->host);
        assert_string_equal(u.path, c->path);
        assert_string_equal(u.query, c->query);
        assert_int_equal(u.port, c->port);
        char auth[300];
        weft_url_authority(&u, auth, sizeof auth);
        assert_string_equal(auth, c->auth);
    }
}

static void test_invalid(void **s)
{
    (void)s;
    static weft_url u;
    for (size_t i = 0; i < sizeof bads / sizeof *bads; i++) {
        const struct bad_case *c = &bads[i];
        int rc = weft_url_parse(&u, c->in);
        if (rc != -EINVAL || !strstr(u.error, c->error))
            fail_msg("%s: got %d '%s', want '%s'", c->in, rc, u.error, c->error);
    }
    assert_int_equal(weft_url_parse(&u, NULL), -EINVAL);
    assert_int_equal(weft_url_parse(NULL, "http://h/"), -EINVAL);
    static char longurl[WEFT_URL_MAX + 100];
    memset(longurl, 'a', sizeof longurl - 1);
    memcpy(longurl, "http://h/", 9);
    assert_int_equal(weft_url_parse(&u, longurl), -EINVAL);
    assert_non_null(strstr(u.error, "too long"));
}

/* a URL as logged: the password gone, everything else kept */
static void test_redact(void **s)
{
    (void)s;
    static const char *const cases[][2] = {
        { "postgres://weft:secret@127.0.0.1:5432/db", "postgres://weft:***@127.0.0.1:5432/db" },
        { "redis://:pw@host:6379/0", "redis://:***@host:6379/0" },
        { "rediss://user:p%40ss@h/1?x=y", "rediss://user:***@h/1?x=y" },
        { "postgresql://a:b@c@host/db", "postgresql://a:***@host/db" },
        { "postgres://weft@host/db", "postgres://weft@host/db" },
        { "postgres://host/db?user=a@b", "postgres://host/db?user=a@b" },
        { "postgresql://u:se?cret@h/db", "postgresql://u:***@h/db" },
        { "postgresql://h/db?user=u&password=secret&x=1", "postgresql://h/db?user=u&password=***&x=1" },
        { "postgresql://h/db?password=a", "postgresql://h/db?password=***" },
        { "sqlite:/tmp/q.db", "sqlite:/tmp/q.db" },
        { "", "" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char out[128];
        int n = weft_url_redact(cases[i][0], out, sizeof out);
        assert_string_equal(out, cases[i][1]);
        assert_int_equal(n, (int)strlen(cases[i][1]));
    }
    char small[12];
    weft_url_redact("redis://:pw@host:6379/0", small, sizeof small);
    assert_string_equal(small, "redis://:**");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_redact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
