/* The router, as data: routes, then requests and what they must match. */
#include "test.h"
#include "weft/router.h"

static const struct { const char *method, *pattern; } routes[] = {
    { "GET", "/" },
    { "GET", "/users" },
    { "POST", "/users" },
    { "GET", "/users/me" },
    { "GET", "/users/{id}" },
    { "DELETE", "/users/{id}" },
    { "GET", "/users/{id}/posts/{post}" },
    { "GET", "/files/" },
    { "PUT", "/items/{id}" },
    { "HEAD", "/only-head" },
};

struct want {
    const char *method, *path;
    int rc;                                /* 0, -ENOENT, -EPERM */
    int route;                             /* index in routes when 0 */
    const char *params;                    /* "id=42,post=7" */
    const char *allow;                     /* for -EPERM */
};
static const struct want wants[] = {
    { "GET", "/", 0, 0, "", NULL },
    { "GET", "/users", 0, 1, "", NULL },
    { "POST", "/users", 0, 2, "", NULL },
    { "GET", "/users/me", 0, 3, "", NULL },          /* literal beats parameter */
    { "GET", "/users/42", 0, 4, "id=42", NULL },
    { "DELETE", "/users/42", 0, 5, "id=42", NULL },
    { "GET", "/users/42/posts/7", 0, 6, "id=42,post=7", NULL },
    { "GET", "/users/me/posts/7", 0, 6, "id=me,post=7", NULL },   /* backtracks */
    { "HEAD", "/users/42", 0, 4, "id=42", NULL },    /* HEAD served by GET */
    { "GET", "/files/", 0, 7, "", NULL },
    { "GET", "/files", -ENOENT, 0, "", NULL },
    { "GET", "/nope", -ENOENT, 0, "", NULL },
    { "GET", "/users/42/posts", -ENOENT, 0, "", NULL },
    { "GET", "/users//posts/7", -ENOENT, 0, "", NULL },
    { "PUT", "/users/42", -EPERM, 0, "", "GET, HEAD, DELETE" },
    { "GET", "/items/3", -EPERM, 0, "", "PUT" },
    { "POST", "/", -EPERM, 0, "", "GET, HEAD" },
    { "GET", "/only-head", -EPERM, 0, "", "HEAD" },
    { "GET", "", -ENOENT, 0, "", NULL },
};

static void test_matching(void **s)
{
    (void)s;
    weft_router *r = weft_router_new();
    int ids[sizeof routes / sizeof *routes];
    for (size_t i = 0; i < sizeof routes / sizeof *routes; i++) {
        ids[i] = (int)i;
        assert_int_equal(weft_router_add(r, routes[i].method, routes[i].pattern, &ids[i], NULL), 0);
    }
    for (size_t i = 0; i < sizeof wants / sizeof *wants; i++) {
        const struct want *w = &wants[i];
        weft_route_match m;
        char allow[64];
        int rc = weft_router_match(r, w->method, w->path, strlen(w->path), &m, allow, sizeof allow);
        if (rc != w->rc)
            fail_msg("%s %s: got %d, want %d", w->method, w->path, rc, w->rc);
        if (rc == -EPERM && strcmp(allow, w->allow) != 0)
            fail_msg("%s %s: Allow '%s', want '%s'", w->method, w->path, allow, w->allow);
        if (rc)
            continue;
        if (*(int *)m.handler != w->route)
            fail_msg("%s %s: route %d, want %d", w->method, w->path, *(int *)m.handler, w->route);
        if (!m.pattern || strcmp(m.pattern, routes[w->route].pattern) != 0)
            fail_msg("%s %s: pattern '%s', want '%s'", w->method, w->path,
                     m.pattern ? m.pattern : "(null)", routes[w->route].pattern);
        char got[128] = "";
        for (int k = 0; k < m.nparams; k++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%s=%.*s", k ? "," : "",
                     m.params[k].name, (int)m.params[k].len, m.params[k].value);
        if (strcmp(got, w->params) != 0)
            fail_msg("%s %s: params '%s', want '%s'", w->method, w->path, got, w->params);
    }
    weft_router_free(r);
}

static void test_bad_routes(void **s)
{
    (void)s;
    weft_router *r = weft_router_new();
    int h;
    assert_int_equal(weft_router_add(r, "GET", "/a/{id}", &h, NULL), 0);
    assert_int_equal(weft_router_add(r, "GET", "/a/{id}", &h, NULL), -EEXIST);
    assert_int_equal(weft_router_add(r, "GET", "/a/{other}/x", &h, NULL), -EINVAL);
    assert_int_equal(weft_router_add(r, "GET", "no-slash", &h, NULL), -EINVAL);
    assert_int_equal(weft_router_add(r, "GET", "/a/{}", &h, NULL), -EINVAL);
    assert_int_equal(weft_router_add(r, "GET", "/a/{id", &h, NULL), -EINVAL);
    assert_int_equal(weft_router_add(r, "GET", "/a/x{id}", &h, NULL), -EINVAL);
    assert_int_equal(weft_router_add(r, "GET", "/a//b", &h, NULL), -EINVAL);
    assert_int_equal(weft_router_add(r, "G T", "/x", &h, NULL), -EINVAL);
    assert_int_equal(weft_router_add(r, "GET", "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}", &h, NULL),
                     -EINVAL);
    assert_int_equal(weft_router_add(NULL, "GET", "/", &h, NULL), -EINVAL);
    weft_router_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matching),
        cmocka_unit_test(test_bad_routes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
