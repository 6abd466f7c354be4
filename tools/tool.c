/*
 * What the weft command's subcommands share (tool.h).
 */
#include <errno.h>
#include <unistd.h>

#include "tool.h"
#include "weft.h"

struct chunk {
    const char *p;
    size_t n;
};

static int write_all(void *arg)
{
    struct chunk *c = arg;
    while (c->n) {
        ssize_t w = write(STDOUT_FILENO, c->p, c->n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        c->p += w;
        c->n -= (size_t)w;
    }
    return 0;
}

int tool_write_stdout(const char *p, size_t n)
{
    struct chunk c = { p, n };
    return n ? weft_run_blocking(write_all, &c) : 0;
}
