/* Reads a "Field:  123 kB" line of /proc/self/status (tests, benchmarks). */
#ifndef WEFT_PROCSTAT_H
#define WEFT_PROCSTAT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline long vm_kb(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = 0;
    size_t n = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0)
            v = atol(line + n + 1);
    if (f)
        fclose(f);
    return v;
}

#endif
