/* A library whose constructor holds the dynamic loader's lock (dlopen runs
 * constructors under it) until told to return: test_stack loads it from a
 * thread to check that the overflow report does not wait for the loader.
 * The fds come from the environment: HOLDCTOR_READY (written once the
 * constructor runs) and HOLDCTOR_WAIT (read until it closes). */
#include <stdlib.h>
#include <unistd.h>

__attribute__((constructor)) static void hold_loader(void)
{
    const char *ready = getenv("HOLDCTOR_READY"), *wait = getenv("HOLDCTOR_WAIT");
    char c = 1;
    if (!ready || !wait || write(atoi(ready), &c, 1) != 1)
        return;
    while (read(atoi(wait), &c, 1) > 0)
        ;
}
