/*
 * The weft command: subcommands over the library.
 *
 *   weft fetch [options] [URL...]    fetch URLs, N at a time (tools/fetch.c)
 *   weft queue [--url URL] CMD ...   the durable job queue (tools/queue.c)
 *   weft migrate [--url URL] ...     PostgreSQL migrations (tools/migrate.c)
 */
#include <stdio.h>
#include <string.h>

int weft_cmd_fetch(int argc, char **argv);
int weft_cmd_serve(int argc, char **argv);
int weft_cmd_queue(int argc, char **argv);
int weft_cmd_migrate(int argc, char **argv);

static int usage(void)
{
    fprintf(stderr, "usage: weft <command> [options]\n\n"
                    "commands:\n"
                    "  fetch    fetch URLs concurrently through one pooled client\n"
                    "  serve    the example HTTP service\n"
                    "  queue    the durable job queue: enqueue, work, stats, list, show, retry, purge\n"
                    "  migrate  apply a folder of PostgreSQL migrations (or --status)\n\n"
                    "weft <command> --help shows a command's options.\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage();
    if (strcmp(argv[1], "fetch") == 0)
        return weft_cmd_fetch(argc - 1, argv + 1);
    if (strcmp(argv[1], "serve") == 0)
        return weft_cmd_serve(argc - 1, argv + 1);
    if (strcmp(argv[1], "queue") == 0)
        return weft_cmd_queue(argc - 1, argv + 1);
    if (strcmp(argv[1], "migrate") == 0)
        return weft_cmd_migrate(argc - 1, argv + 1);
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage();
        return 0;
    }
    fprintf(stderr, "weft: unknown command '%s'\n", argv[1]);
    return usage();
}
