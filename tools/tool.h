/*
 * What the weft command's subcommands share.
 */
#ifndef WEFT_TOOL_H
#define WEFT_TOOL_H

#include <stddef.h>

/* Writes n bytes of p to stdout, all of them, from a task: on the blocking
 * pool (a slow reader of stdout must not stall the loop). 0 or -errno. */
int tool_write_stdout(const char *p, size_t n);

#endif
