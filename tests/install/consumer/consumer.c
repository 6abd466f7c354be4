/* A program outside weft's tree: built against an installed weft (pkg-config
 * or find_package), as strict C11 or (consumer.cpp) C++. */
#include <stdio.h>
#include <string.h>

#include <weft.h>

static int child(void *arg)
{
    int *n = arg;
    int rc = weft_sleep(WEFT_MS);
    if (rc == 0)
        (*n)++;
    return rc;
}

static int root(void *arg)
{
    int *n = arg;
    weft_group *g = weft_group_new();
    if (!g)
        return -ENOMEM;
    for (int i = 0; i < 3; i++) {
        int rc = weft_spawn(g, child, n, "child");
        if (rc)
            return rc;
    }
    return weft_group_wait(g);
}

int main(void)
{
    int n = 0;
    int rc = weft_main(root, &n);
    printf("weft %s: %d tasks, %s\n", WEFT_VERSION, n, rc ? weft_strerror(rc) : "ok");
    if (strcmp(weft_strerror(-WEFT_ENOTFOUND), "name not found") != 0)
        return 1;
    return rc || n != 3;
}
