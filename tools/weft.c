/*
 * The weft command: subcommands over the library.
 *
 *   weft fetch [options] [URL...]    fetch URLs, N at a time (tools/fetch.c)
 *   weft serve [options]             the example service (examples/service/)
 *   weft queue [--url URL] CMD ...   the durable job queue (tools/queue.c)
 *   weft migrate [--url URL] ...     PostgreSQL migrations (tools/migrate.c)
 *
 * A subcommand whose part of weft was left out at configure time
 * (WEFT_WITH_PG, WEFT_WITH_SQLITE) is not listed.
 */
#include <stdio.h>
#include <string.h>

#include "weft/config.h"

int weft_cmd_fetch(int argc, char **argv);
int weft_cmd_serve(int argc, char **argv);
int weft_cmd_queue(int argc, char **argv);
int weft_cmd_migrate(int argc, char **argv);

static const struct command {
    const char *name, *what;
    int (*run)(int argc, char **argv);
} commands[] = {
    { "fetch", "fetch URLs concurrently through one pooled client", weft_cmd_fetch },
#if WEFT_HAVE_SQLITE
    { "serve", "the example HTTP service", weft_cmd_serve },
    { "queue", "the durable job queue: enqueue, work, stats, list, show, retry, purge",
      weft_cmd_queue },
#endif
#if WEFT_HAVE_PG
    { "migrate", "apply a folder of PostgreSQL migrations (or --status)", weft_cmd_migrate },
#endif
};
#define NCOMMANDS (sizeof commands / sizeof *commands)

static void usage(FILE *out)
{
    fprintf(out, "usage: weft <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].what);
    fprintf(out, "\nweft <command> --help shows a command's options; weft --version.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("weft %s\n", WEFT_VERSION);
        return 0;
    }
    fprintf(stderr, "weft: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
