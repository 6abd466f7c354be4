// The same from C++: the headers are extern "C" and their macros expand in C++.
#include <cstdio>

#include <weft.h>

static int root(void *arg)
{
    int *ran = static_cast<int *>(arg);
    weft_scope s;
    weft_scope_enter(&s, 50 * WEFT_MS);
    int rc = weft_sleep(WEFT_MS);
    weft_scope_exit(&s);
#if WEFT_HAVE_PG
    weft_pg_val v[] = { WEFT_PG_INT(1), WEFT_PG_TEXT("x"), WEFT_PG_NULL };
    (void)v;
#endif
    *ran = rc == 0;
    return rc;
}

int main()
{
    int ran = 0;
    int rc = weft_main(root, &ran);
    std::printf("weft %s from C++: %s\n", WEFT_VERSION, rc ? weft_strerror(rc) : "ok");
    return rc || !ran;
}
