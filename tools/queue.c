/*
 * weft queue: the durable job queue (include/weft/queue.h) from the shell.
 *
 *   weft queue [--url URL] enqueue|work|stats|list|show|retry|purge ...
 *
 * Each subcommand parses its arguments strictly (bad usage: a message on
 * stderr and exit 2), then runs as the root task of one loop: it opens the
 * queue, does its one thing and closes it (failure: exit 1). Results are
 * JSON lines on stdout, written through the blocking pool so a slow reader
 * of the pipe never stalls the loop and the queue's group commit with it;
 * stdin is read there too.
 *
 * `work` runs the built-in job types (noop, sleep, fail, append), which
 * exist so the queue can be used and tested from the shell, until SIGTERM
 * or SIGINT stops it gracefully.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tool.h"
#include "weft.h"

#define BATCH 256                          /* jobs per commit for --count and stdin */
#define LIST_PAGE 256                      /* jobs read per weft_queue_list call */

static const char usage_text[] =
    "usage: weft queue [--url URL] <command> [options]\n"
    "  --url URL   the queue (default $WEFT_QUEUE_URL, else sqlite:weft-queue.db)\n\n"
    "commands:\n"
    "  enqueue QUEUE TYPE [JSON | -]   add jobs; prints {\"id\":N,\"duplicate\":false} each\n"
    "  work QUEUE                      run the built-in job types until SIGTERM/SIGINT\n"
    "  stats [QUEUE]                   counts by state and the lag\n"
    "  list                            jobs as JSON lines\n"
    "  show ID                         one job as JSON\n"
    "  retry ID                        a dead job back to queued\n"
    "  purge                           remove done and dead jobs\n\n"
    "weft queue <command> --help shows a command's options. Exit 0 on success, 1 on\n"
    "failure, 2 on bad arguments.\n";

static const char enqueue_usage[] =
    "usage: weft queue enqueue QUEUE TYPE [JSON | -] [--count N] [--delay S] [--key K]\n"
    "                          [--priority N] [--max-attempts N]\n"
    "  JSON              the payload (default {}); - reads one payload per line from stdin\n"
    "  --count N         N copies; an object payload gets \"n\": 0..N-1\n"
    "  --delay S         run no earlier than S seconds from now (fractions allowed)\n"
    "  --key K           idempotency key: no second job with it until the first is purged\n"
    "                    (one job: not with --count or -)\n"
    "  --priority N      0..9, higher first (default 0)\n"
    "  --max-attempts N  attempts before the job is dead (default: the worker's, 5)\n"
    "Prints {\"id\":N,\"duplicate\":false|true} per job, in order.\n";

static const char work_usage[] =
    "usage: weft queue work QUEUE [-c N] [--lease S] [--max-attempts N]\n"
    "  -c N              jobs run at once (default 64)\n"
    "  --lease S         seconds a claimed job stays leased without a heartbeat (default 30)\n"
    "  --max-attempts N  attempts for jobs enqueued without their own (default 5)\n"
    "Job types: noop; sleep {\"ms\":N}; fail {\"times\":N} (fails its first N attempts);\n"
    "append {\"path\":P} (appends \"ID ATTEMPT\" to P). Other types go to dead letter.\n"
    "Runs until SIGTERM or SIGINT, then lets running jobs finish (10 s grace) and\n"
    "exits 0.\n";

static const char stats_usage[] =
    "usage: weft queue stats [QUEUE]\n"
    "Prints {\"queued\":N,\"scheduled\":N,\"running\":N,\"done\":N,\"dead\":N,\"lag_s\":X}\n"
    "for QUEUE, or for all queues.\n";

static const char list_usage[] =
    "usage: weft queue list [--state S] [--queue Q] [--limit N]\n"
    "  --state S   queued, scheduled, running, done or dead (default: any)\n"
    "  --queue Q   only jobs of queue Q (default: all)\n"
    "  --limit N   at most N jobs (default: all)\n"
    "Prints one JSON line per job, oldest first, as `show` does.\n";

static const char show_usage[] =
    "usage: weft queue show ID\n"
    "Prints the job as one JSON line: id, queue, type, payload, state, attempts,\n"
    "max_attempts, priority, created_ms, run_at_ms, finished_ms, result, last_error.\n"
    "Exit 1 if there is no such job.\n";

static const char retry_usage[] =
    "usage: weft queue retry ID\n"
    "Puts a dead job back to queued with fresh attempts; prints {\"id\":N,\"state\":\"queued\"}.\n"
    "Exit 1 if there is no such job or it is not dead.\n";

static const char purge_usage[] =
    "usage: weft queue purge [--state done|dead] [--queue Q]\n"
    "Removes done and dead jobs (default: both, of all queues), forgetting their keys;\n"
    "prints {\"purged\":N}.\n";

struct cmd {
    const char *url, *name, *usage;        /* name: the subcommand */
    int status;                            /* the exit status */
    /* enqueue */
    const char *queue, *type, *payload;    /* payload NULL: {} */
    bool from_stdin, count_given;
    long long count;
    weft_job_opts jo;
    /* work */
    int concurrency;
    weft_queue_opts qo;
    /* list, purge, show, retry */
    int state;                             /* -1: any */
    long long limit;
    weft_job_id id;
    /* stdout, written off the loop */
    char *out;
    size_t out_len, out_cap;
};

/* ---- arguments -------------------------------------------------------------- */

static int bad_usage(struct cmd *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad_usage(struct cmd *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "weft queue%s%s: ", c->name ? " " : "", c->name ? c->name : "");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fputs(c->usage, stderr);
    return 2;
}

/* A whole decimal integer in [min, max]: no sign but '-', no blanks, no
 * trailing bytes. */
static bool parse_int(const char *s, long long min, long long max, long long *out)
{
    char *end;
    if (!isdigit((unsigned char)s[0]) && !(s[0] == '-' && isdigit((unsigned char)s[1])))
        return false;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end || errno || v < min || v > max)
        return false;
    *out = v;
    return true;
}

static int int_opt(struct cmd *c, const char *flag, const char *s, long long min, long long max,
                   long long *out)
{
    if (parse_int(s, min, max, out))
        return 0;
    return bad_usage(c, "%s: bad value '%s' (an integer from %lld to %lld)", flag, s, min, max);
}

/* Seconds in decimal, fractions allowed; zero only when allow_zero. At
 * most ten years, so the nanoseconds fit. */
static int seconds_opt(struct cmd *c, const char *flag, const char *s, bool allow_zero,
                       weft_time *out)
{
    char *end = (char *)s;
    /* decimal only: strtod would also take hex, "inf", "nan" and blanks */
    bool decimal = (isdigit((unsigned char)s[0]) || s[0] == '.') &&
                   strspn(s, "0123456789.eE+-") == strlen(s);
    double v = decimal ? strtod(s, &end) : NAN;
    if (isnan(v) || *end || v > 10 * 365 * 86400.0 || (v == 0 && !allow_zero))
        return bad_usage(c, "%s: bad value '%s' (%s number of seconds)", flag, s,
                         allow_zero ? "a" : "a positive");
    *out = (weft_time)llround(v * WEFT_SEC);
    if (*out == 0 && !allow_zero)
        *out = 1;                          /* below a nanosecond, still positive */
    return 0;
}

static int id_arg(struct cmd *c, const char *s)
{
    long long v;
    if (!parse_int(s, 1, INT64_MAX, &v))
        return bad_usage(c, "bad job id '%s' (a positive integer)", s);
    c->id = v;
    return 0;
}

static int state_opt(struct cmd *c, const char *s, bool finished_only)
{
    int st = weft_job_state_parse(s);
    if (st < 0 || (finished_only && st != WEFT_JOB_DONE && st != WEFT_JOB_DEAD))
        return bad_usage(c, "--state: bad value '%s' (%s)", s,
                         finished_only ? "done or dead" : "queued, scheduled, running, done or dead");
    c->state = st;
    return 0;
}

enum { OPT_HELP = 'h', OPT_URL = 256, OPT_COUNT, OPT_DELAY, OPT_KEY, OPT_PRIORITY,
       OPT_MAX_ATTEMPTS, OPT_LEASE, OPT_STATE, OPT_QUEUE, OPT_LIMIT };

/* every subcommand takes these */
#define COMMON_OPTS { "help", no_argument, NULL, OPT_HELP }, { "url", required_argument, NULL, OPT_URL }

/* The next option of a subcommand: its code, -1 after the last, or 2 (the
 * exit status) after reporting an unknown option or a missing value. --url
 * is taken here; --help returns OPT_HELP. */
static int next_opt(struct cmd *c, int argc, char **argv, const char *shortopts,
                    const struct option *longopts)
{
    for (;;) {
        int o = getopt_long(argc, argv, shortopts, longopts, NULL);
        if (o == OPT_URL) {
            c->url = optarg;
            continue;
        }
        if (o == ':')
            return bad_usage(c, "option '%s' needs a value", argv[optind - 1]);
        if (o == '?') {
            if (optopt)
                return bad_usage(c, "unknown option '-%c'", optopt);
            return bad_usage(c, "unknown option '%s'", argv[optind - 1]);
        }
        return o;
    }
}

/* Ends the option loop of a subcommand on --help (exit 0) or bad usage. */
#define OPT_END(c, o)                                  \
    case OPT_HELP:                                     \
        fputs((c)->usage, stdout);                     \
        return 0;                                      \
    default:                                           \
        return (o) == 2 ? 2 : bad_usage((c), "unexpected option")

/* Positional arguments: between min and max of them. */
static int positionals(struct cmd *c, int argc, int min, int max)
{
    int n = argc - optind;
    if (n < min)
        return bad_usage(c, "missing arguments");
    if (n > max)
        return bad_usage(c, "unexpected argument");
    return 0;
}

/* Each parser returns -1 to run the command, else the exit status. */

static int parse_enqueue(struct cmd *c, int argc, char **argv)
{
    static const struct option lo[] = {
        COMMON_OPTS,
        { "count", required_argument, NULL, OPT_COUNT },
        { "delay", required_argument, NULL, OPT_DELAY },
        { "key", required_argument, NULL, OPT_KEY },
        { "priority", required_argument, NULL, OPT_PRIORITY },
        { "max-attempts", required_argument, NULL, OPT_MAX_ATTEMPTS },
        { NULL, 0, NULL, 0 },
    };
    long long v;
    int o, rc;
    c->count = 1;
    while ((o = next_opt(c, argc, argv, ":h", lo)) != -1) {
        switch (o) {
        case OPT_COUNT:
            if ((rc = int_opt(c, "--count", optarg, 1, 1000000000, &c->count)))
                return rc;
            c->count_given = true;
            break;
        case OPT_DELAY:
            if ((rc = seconds_opt(c, "--delay", optarg, true, &c->jo.delay)))
                return rc;
            break;
        case OPT_KEY:
            if (!*optarg)
                return bad_usage(c, "--key: empty key");
            c->jo.key = optarg;
            break;
        case OPT_PRIORITY:
            if ((rc = int_opt(c, "--priority", optarg, 0, 9, &v)))
                return rc;
            c->jo.priority = (int)v;
            break;
        case OPT_MAX_ATTEMPTS:
            if ((rc = int_opt(c, "--max-attempts", optarg, 1, 1000000, &v)))
                return rc;
            c->jo.max_attempts = (int)v;
            break;
        OPT_END(c, o);
        }
    }
    if ((rc = positionals(c, argc, 2, 3)))
        return rc;
    c->queue = argv[optind];
    c->type = argv[optind + 1];
    c->payload = optind + 2 < argc ? argv[optind + 2] : NULL;
    if (!*c->queue || !*c->type)
        return bad_usage(c, "empty %s name", *c->queue ? "type" : "queue");
    if (c->payload && strcmp(c->payload, "-") == 0) {
        c->from_stdin = true;
        c->payload = NULL;
        if (c->count_given)
            return bad_usage(c, "--count does not go with - (one job per line of stdin)");
    }
    if (c->jo.key && (c->from_stdin || c->count > 1))
        return bad_usage(c, "--key names one job: not with --count or -");
    json_error_t err;
    json_t *j = c->payload ? json_loads(c->payload, JSON_DECODE_ANY, &err) : NULL;
    if (c->payload && !j)
        return bad_usage(c, "the payload is not JSON: %s", err.text);
    json_decref(j);
    return -1;
}

static int parse_work(struct cmd *c, int argc, char **argv)
{
    static const struct option lo[] = {
        COMMON_OPTS,
        { "lease", required_argument, NULL, OPT_LEASE },
        { "max-attempts", required_argument, NULL, OPT_MAX_ATTEMPTS },
        { NULL, 0, NULL, 0 },
    };
    long long v;
    int o, rc;
    c->concurrency = 64;
    while ((o = next_opt(c, argc, argv, ":hc:", lo)) != -1) {
        switch (o) {
        case 'c':
            if ((rc = int_opt(c, "-c", optarg, 1, 100000, &v)))
                return rc;
            c->concurrency = (int)v;
            break;
        case OPT_LEASE:
            if ((rc = seconds_opt(c, "--lease", optarg, false, &c->qo.lease)))
                return rc;
            break;
        case OPT_MAX_ATTEMPTS:
            if ((rc = int_opt(c, "--max-attempts", optarg, 1, 1000000, &v)))
                return rc;
            c->qo.max_attempts = (int)v;
            break;
        OPT_END(c, o);
        }
    }
    if ((rc = positionals(c, argc, 1, 1)))
        return rc;
    c->queue = argv[optind];
    return *c->queue ? -1 : bad_usage(c, "empty queue name");
}

static int parse_stats(struct cmd *c, int argc, char **argv)
{
    static const struct option lo[] = { COMMON_OPTS, { NULL, 0, NULL, 0 } };
    int o, rc;
    while ((o = next_opt(c, argc, argv, ":h", lo)) != -1) {
        switch (o) {
        OPT_END(c, o);
        }
    }
    if ((rc = positionals(c, argc, 0, 1)))
        return rc;
    c->queue = optind < argc ? argv[optind] : NULL;
    return -1;
}

/* list and purge: --state, --queue and (list) --limit */
static int parse_filter(struct cmd *c, int argc, char **argv)
{
    static const struct option lo[] = {
        COMMON_OPTS,
        { "state", required_argument, NULL, OPT_STATE },
        { "queue", required_argument, NULL, OPT_QUEUE },
        { "limit", required_argument, NULL, OPT_LIMIT },
        { NULL, 0, NULL, 0 },
    };
    bool purge = strcmp(c->name, "purge") == 0;
    int o, rc;
    c->state = -1;
    c->limit = INT64_MAX;
    while ((o = next_opt(c, argc, argv, ":h", lo)) != -1) {
        switch (o) {
        case OPT_STATE:
            if ((rc = state_opt(c, optarg, purge)))
                return rc;
            break;
        case OPT_QUEUE:
            if (!*optarg)
                return bad_usage(c, "--queue: empty queue name");
            c->queue = optarg;
            break;
        case OPT_LIMIT:
            if (purge)
                return bad_usage(c, "unknown option '--limit'");
            if ((rc = int_opt(c, "--limit", optarg, 0, INT64_MAX, &c->limit)))
                return rc;
            break;
        OPT_END(c, o);
        }
    }
    return (rc = positionals(c, argc, 0, 0)) ? rc : -1;
}

/* show and retry: one job id */
static int parse_id(struct cmd *c, int argc, char **argv)
{
    static const struct option lo[] = { COMMON_OPTS, { NULL, 0, NULL, 0 } };
    int o, rc;
    while ((o = next_opt(c, argc, argv, ":h", lo)) != -1) {
        switch (o) {
        OPT_END(c, o);
        }
    }
    if ((rc = positionals(c, argc, 1, 1)))
        return rc;
    return (rc = id_arg(c, argv[optind])) ? rc : -1;
}

/* ---- output --------------------------------------------------------------- */

/* Adds o (taken) as one line to the pending output. */
static int out_json(struct cmd *c, json_t *o)
{
    char *line = o ? json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(6)) : NULL;
    json_decref(o);
    if (!line)
        return -ENOMEM;
    size_t n = strlen(line);
    if (c->out_len + n + 1 > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 4096;
        while (cap < c->out_len + n + 1)
            cap *= 2;
        char *b = realloc(c->out, cap);
        if (!b) {
            free(line);
            return -ENOMEM;
        }
        c->out = b;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, line, n);
    c->out[c->out_len + n] = '\n';
    c->out_len += n + 1;
    free(line);
    return 0;
}

/* Writes the pending output to stdout, off the loop. */
static int out_flush(struct cmd *c)
{
    int rc = tool_write_stdout(c->out, c->out_len);
    c->out_len = 0;
    return rc;
}

/* A failure of the command: its message, exit 1. Returns 0 for the root task. */
static int fail(struct cmd *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct cmd *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "weft queue %s: ", c->name);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    if (!c->status)
        c->status = 1;
    return 0;
}

/* A string as JSON: jansson takes UTF-8 only, so other bytes become '?'
 * rather than losing the field. NULL gives null. */
static json_t *text_json(const char *s)
{
    if (!s)
        return json_null();
    json_t *j = json_string(s);
    if (j)
        return j;
    char *t = strdup(s);
    if (!t)
        return NULL;
    for (char *p = t; *p; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    j = json_string(t);
    free(t);
    return j;
}

/* Stored JSON (payload, result) as itself when it parses, else as a string. */
static json_t *stored_json(const char *s)
{
    json_t *j = s ? json_loads(s, JSON_DECODE_ANY, NULL) : NULL;
    return j ? j : text_json(s);
}

static json_t *job_json(const weft_job_info *i)
{
    return json_pack("{s:I, s:o, s:o, s:o, s:s, s:i, s:i, s:i, s:I, s:I, s:I, s:o, s:o}",
                     "id", (json_int_t)i->id, "queue", text_json(i->queue),
                     "type", text_json(i->type), "payload", stored_json(i->payload),
                     "state", weft_job_state_name(i->state) ? weft_job_state_name(i->state) : "?",
                     "attempts", i->attempts, "max_attempts", i->max_attempts,
                     "priority", i->priority, "created_ms", (json_int_t)i->created_ms,
                     "run_at_ms", (json_int_t)i->run_at_ms,
                     "finished_ms", (json_int_t)i->finished_ms,
                     "result", stored_json(i->result), "last_error", text_json(i->last_error));
}

static int open_queue(struct cmd *c, const weft_queue_opts *o, weft_queue **q)
{
    int rc = weft_queue_open(q, c->url, o);
    if (rc) {
        char shown[512];
        weft_url_redact(c->url, shown, sizeof shown);
        fail(c, "cannot open %s: %s", shown, weft_strerror(rc));
        if (rc == -EINVAL)
            c->status = 2;                 /* the URL given is wrong */
    }
    return rc;
}

/* Closes q, reporting a failure to make the work durable. */
static void close_queue(struct cmd *c, weft_queue *q)
{
    int rc = weft_queue_close(q);
    if (rc)
        fail(c, "closing the queue: %s", weft_strerror(rc));
}

/* ---- enqueue ---------------------------------------------------------------- */

static int print_ids(struct cmd *c, const weft_job_id *ids, int n, bool duplicate)
{
    for (int i = 0; i < n; i++)
        if (out_json(c, json_pack("{s:I, s:b}", "id", (json_int_t)ids[i], "duplicate", duplicate)))
            return -ENOMEM;
    return out_flush(c);
}

/* Enqueues n specs in one commit and prints their ids. */
static int enqueue_specs(struct cmd *c, weft_queue *q, weft_job_spec *specs, int n)
{
    weft_job_id ids[BATCH];
    int rc = weft_queue_enqueue_batch(q, specs, n, ids);
    if (rc) {
        fail(c, "%s", weft_strerror(rc));
        return rc;
    }
    if ((rc = print_ids(c, ids, n, false)))
        fail(c, "writing stdout: %s", weft_strerror(rc));
    return rc;
}

static int enqueue_one(struct cmd *c, weft_queue *q)
{
    weft_job_id id;
    int rc = weft_queue_enqueue(q, c->queue, c->type, c->payload, &c->jo, &id);
    if (rc < 0)
        return fail(c, "%s", weft_strerror(rc));
    if ((rc = print_ids(c, &id, 1, rc == 1)))
        return fail(c, "writing stdout: %s", weft_strerror(rc));
    return 0;
}

/* --count N: copies in batches; an object payload gets "n": its index. */
static int enqueue_copies(struct cmd *c, weft_queue *q)
{
    json_t *tmpl = c->payload ? json_loads(c->payload, JSON_DECODE_ANY, NULL) : json_object();
    bool numbered = c->count_given && json_is_object(tmpl);
    weft_job_spec specs[BATCH];
    char *texts[BATCH] = { 0 };
    int rc = tmpl ? 0 : -ENOMEM;
    for (long long done = 0; !rc && done < c->count;) {
        int n = c->count - done < BATCH ? (int)(c->count - done) : BATCH;
        for (int i = 0; i < n && !rc; i++) {
            if (numbered && (json_object_set_new(tmpl, "n", json_integer(done + i)) ||
                             !(texts[i] = json_dumps(tmpl, JSON_COMPACT))))
                rc = -ENOMEM;
            specs[i] = (weft_job_spec){ c->queue, c->type, numbered ? texts[i] : c->payload,
                                        c->jo };
        }
        if (rc)
            fail(c, "%s", weft_strerror(rc));
        else
            rc = enqueue_specs(c, q, specs, n);
        for (int i = 0; i < n; i++) {
            free(texts[i]);
            texts[i] = NULL;
        }
        done += n;
    }
    json_decref(tmpl);
    return 0;
}

/* Up to BATCH non-blank lines of stdin, read on the blocking pool. */
struct lines {
    char *line[BATCH];
    long long lineno[BATCH];               /* each one's line number, for messages */
    int n;
    long long read;                        /* lines read so far */
    bool eof;
};

static int read_lines(void *arg)
{
    struct lines *l = arg;
    l->n = 0;
    while (l->n < BATCH) {
        char *s = NULL;
        size_t cap = 0;
        ssize_t len = getline(&s, &cap, stdin);
        if (len < 0) {
            free(s);
            l->eof = true;
            return ferror(stdin) ? -EIO : 0;
        }
        l->read++;
        while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r'))
            s[--len] = 0;
        if (strspn(s, " \t") == (size_t)len) {
            free(s);
            continue;
        }
        l->lineno[l->n] = l->read;
        l->line[l->n++] = s;
    }
    return 0;
}

static void lines_free(struct lines *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->line[i]);
    l->n = 0;
}

/* -: one payload per line, BATCH per commit; a line that is not JSON
 * stops the run before its batch is enqueued (the batches before it are). */
static int enqueue_stdin(struct cmd *c, weft_queue *q)
{
    struct lines l = { .n = 0 };
    weft_job_spec specs[BATCH];
    int rc = 0;
    while (!rc && !l.eof) {
        if ((rc = weft_run_blocking(read_lines, &l))) {
            fail(c, "reading stdin: %s", weft_strerror(rc));
            break;
        }
        for (int i = 0; i < l.n && !rc; i++) {
            json_error_t err;
            json_t *j = json_loads(l.line[i], JSON_DECODE_ANY, &err);
            if (!j) {
                fail(c, "stdin line %lld is not JSON: %s", l.lineno[i], err.text);
                rc = -EINVAL;
            }
            json_decref(j);
            specs[i] = (weft_job_spec){ c->queue, c->type, l.line[i], c->jo };
        }
        if (!rc && l.n)
            rc = enqueue_specs(c, q, specs, l.n);
        lines_free(&l);
    }
    return 0;
}

static int run_enqueue(void *arg)
{
    struct cmd *c = arg;
    weft_queue *q;
    if (open_queue(c, NULL, &q))
        return 0;
    if (c->from_stdin)
        enqueue_stdin(c, q);
    else if (c->jo.key)
        enqueue_one(c, q);
    else
        enqueue_copies(c, q);
    close_queue(c, q);
    return 0;
}

/* ---- work ------------------------------------------------------------------- */

/* The payload's integer field key, at least 0; def when absent. Else dead. */
static int payload_count(const weft_job *job, const char *key, long long def, long long *out)
{
    json_t *p = json_loads(job->payload, JSON_DECODE_ANY, NULL);
    json_t *v = json_is_object(p) ? json_object_get(p, key) : NULL;
    bool ok = json_is_object(p) && (!v || (json_is_integer(v) && json_integer_value(v) >= 0));
    *out = v && ok ? json_integer_value(v) : def;
    json_decref(p);
    if (ok)
        return 0;
    char msg[128];
    snprintf(msg, sizeof msg, "%s needs {\"%s\":N} with N >= 0", job->type, key);
    weft_job_set_error(job, msg);
    return -WEFT_EJOB_DEAD;
}

static int job_noop(const weft_job *job, void *ctx)
{
    (void)job, (void)ctx;
    return 0;
}

static int job_sleep(const weft_job *job, void *ctx)
{
    (void)ctx;
    long long ms;
    int rc = payload_count(job, "ms", 0, &ms);
    if (rc)
        return rc;
    return weft_sleep(ms > INT64_MAX / WEFT_MS ? WEFT_FOREVER : ms * WEFT_MS);
}

static int job_fail(const weft_job *job, void *ctx)
{
    (void)ctx;
    long long times;
    int rc = payload_count(job, "times", 0, &times);
    if (rc || job->attempt > times)
        return rc;
    char msg[96];
    snprintf(msg, sizeof msg, "fail: attempt %d of the %lld that fail", job->attempt, times);
    weft_job_set_error(job, msg);
    return -EAGAIN;
}

struct append {
    const char *path;
    char line[64];
};

/* on the blocking pool: one write with O_APPEND, so lines of concurrent
 * jobs and processes never interleave */
static int append_line(void *arg)
{
    struct append *a = arg;
    int fd = open(a->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    size_t n = strlen(a->line);
    ssize_t w = write(fd, a->line, n);
    int rc = w < 0 ? -errno : (size_t)w < n ? -EIO : 0;
    if (close(fd) && !rc)
        rc = -errno;
    return rc;
}

static int job_append(const weft_job *job, void *ctx)
{
    (void)ctx;
    json_t *p = json_loads(job->payload, JSON_DECODE_ANY, NULL);
    json_t *path = json_object_get(p, "path");
    if (!json_is_string(path) || !*json_string_value(path)) {
        json_decref(p);
        weft_job_set_error(job, "append needs {\"path\":P} with a non-empty path");
        return -WEFT_EJOB_DEAD;
    }
    struct append a = { .path = json_string_value(path) };
    snprintf(a.line, sizeof a.line, "%" PRId64 " %d\n", job->id, job->attempt);
    int rc = weft_run_blocking(append_line, &a);
    if (rc) {
        char msg[512];
        snprintf(msg, sizeof msg, "append to %s: %s", a.path, weft_strerror(rc));
        weft_job_set_error(job, msg);
    }
    json_decref(p);
    return rc;
}

static const weft_job_handler builtin[] = {
    { "noop", job_noop, NULL },
    { "sleep", job_sleep, NULL },
    { "fail", job_fail, NULL },
    { "append", job_append, NULL },
};

/* SIGTERM and SIGINT, blocked on every thread from the start (weft_cmd_queue)
 * so one that comes before the wait is kept for it */
static void stop_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
}

/* The first SIGTERM or SIGINT stops the worker gracefully. */
static int on_signal(void *arg)
{
    sigset_t set;
    stop_signals(&set);
    int sig = weft_signal_wait(&set);
    if (sig > 0)
        weft_queue_stop(arg);
    return sig > 0 || sig == -ECANCELED ? 0 : sig;
}

static int run_work(void *arg)
{
    struct cmd *c = arg;
    weft_queue *q;
    if (open_queue(c, &c->qo, &q))
        return 0;
    weft_group *g = weft_group_new();
    int rc = g ? weft_spawn(g, on_signal, q, "signals") : -ENOMEM;
    if (!rc)
        rc = weft_queue_work(q, c->queue, builtin, (int)(sizeof builtin / sizeof *builtin),
                             c->concurrency);
    if (rc)
        fail(c, "%s", weft_strerror(rc));
    if (g) {
        weft_group_cancel(g);
        weft_group_wait(g);
    }
    close_queue(c, q);
    return 0;
}

/* ---- stats, list, show, retry, purge ----------------------------------------- */

static int run_stats(void *arg)
{
    struct cmd *c = arg;
    weft_queue *q;
    weft_queue_stats s;
    if (open_queue(c, NULL, &q))
        return 0;
    int rc = weft_queue_stats_get(q, c->queue, &s);
    if (rc)
        fail(c, "%s", weft_strerror(rc));
    else if ((rc = out_json(c, json_pack("{s:I, s:I, s:I, s:I, s:I, s:f}",
                                         "queued", (json_int_t)s.queued,
                                         "scheduled", (json_int_t)s.scheduled,
                                         "running", (json_int_t)s.running,
                                         "done", (json_int_t)s.done, "dead", (json_int_t)s.dead,
                                         "lag_s", round(s.lag_s * 1000) / 1000))) ||
             (rc = out_flush(c)))
        fail(c, "writing stdout: %s", weft_strerror(rc));
    close_queue(c, q);
    return 0;
}

static int run_list(void *arg)
{
    struct cmd *c = arg;
    weft_queue *q;
    if (open_queue(c, NULL, &q))
        return 0;
    weft_job_info page[LIST_PAGE];
    weft_job_id after = 0;
    long long left = c->limit;
    int n = LIST_PAGE, rc = 0;
    while (!rc && left > 0 && n == LIST_PAGE) {
        n = weft_queue_list(q, c->queue, c->state, after, page,
                            left < LIST_PAGE ? (int)left : LIST_PAGE);
        if (n < 0) {
            fail(c, "%s", weft_strerror(n));
            break;
        }
        for (int i = 0; i < n; i++) {
            if (!rc)
                rc = out_json(c, job_json(&page[i]));
            after = page[i].id;
            weft_job_info_free(&page[i]);
        }
        left -= n;
        if (!rc)
            rc = out_flush(c);
        if (rc)
            fail(c, "writing stdout: %s", weft_strerror(rc));
    }
    close_queue(c, q);
    return 0;
}

static int run_show(void *arg)
{
    struct cmd *c = arg;
    weft_queue *q;
    weft_job_info info;
    if (open_queue(c, NULL, &q))
        return 0;
    int rc = weft_queue_get(q, c->id, &info);
    if (rc == -ENOENT)
        fail(c, "no job %" PRId64, c->id);
    else if (rc)
        fail(c, "%s", weft_strerror(rc));
    else if ((rc = out_json(c, job_json(&info))) || (rc = out_flush(c)))
        fail(c, "writing stdout: %s", weft_strerror(rc));
    weft_job_info_free(&info);
    close_queue(c, q);
    return 0;
}

static int run_retry(void *arg)
{
    struct cmd *c = arg;
    weft_queue *q;
    if (open_queue(c, NULL, &q))
        return 0;
    int rc = weft_queue_retry(q, c->id);
    if (rc == -ENOENT)
        fail(c, "no job %" PRId64, c->id);
    else if (rc == -EINVAL)
        fail(c, "job %" PRId64 " is not dead", c->id);
    else if (rc)
        fail(c, "%s", weft_strerror(rc));
    else if ((rc = out_json(c, json_pack("{s:I, s:s}", "id", (json_int_t)c->id, "state",
                                         "queued"))) || (rc = out_flush(c)))
        fail(c, "writing stdout: %s", weft_strerror(rc));
    close_queue(c, q);
    return 0;
}

static int run_purge(void *arg)
{
    struct cmd *c = arg;
    weft_queue *q;
    if (open_queue(c, NULL, &q))
        return 0;
    int n = weft_queue_purge(q, c->queue, c->state), rc;
    if (n < 0)
        fail(c, "%s", weft_strerror(n));
    else if ((rc = out_json(c, json_pack("{s:i}", "purged", n))) || (rc = out_flush(c)))
        fail(c, "writing stdout: %s", weft_strerror(rc));
    close_queue(c, q);
    return 0;
}

/* ---- dispatch ---------------------------------------------------------------- */

static const struct sub {
    const char *name, *usage;
    int (*parse)(struct cmd *c, int argc, char **argv);
    weft_fn run;
} subs[] = {
    { "enqueue", enqueue_usage, parse_enqueue, run_enqueue },
    { "work", work_usage, parse_work, run_work },
    { "stats", stats_usage, parse_stats, run_stats },
    { "list", list_usage, parse_filter, run_list },
    { "show", show_usage, parse_id, run_show },
    { "retry", retry_usage, parse_id, run_retry },
    { "purge", purge_usage, parse_filter, run_purge },
};

int weft_cmd_queue(int argc, char **argv)
{
    static const struct option lo[] = { COMMON_OPTS, { NULL, 0, NULL, 0 } };
    const char *env = getenv("WEFT_QUEUE_URL");
    struct cmd c = { .url = env && *env ? env : "sqlite:weft-queue.db", .usage = usage_text };
    int o, rc;
    optind = 0;                            /* "+": the options before the subcommand only */
    opterr = 0;
    while ((o = next_opt(&c, argc, argv, "+:h", lo)) != -1) {
        switch (o) {
        OPT_END(&c, o);
        }
    }
    if (optind >= argc)
        return bad_usage(&c, "no command given");
    const struct sub *s = NULL;
    for (size_t i = 0; i < sizeof subs / sizeof *subs; i++)
        if (strcmp(argv[optind], subs[i].name) == 0)
            s = &subs[i];
    if (!s)
        return bad_usage(&c, "unknown command '%s'", argv[optind]);
    c.name = s->name;
    c.usage = s->usage;
    argc -= optind;
    argv += optind;
    optind = 0;                            /* a fresh scan, options anywhere */
    if ((rc = s->parse(&c, argc, argv)) >= 0)
        return rc;
    if (!*c.url)
        return bad_usage(&c, "--url: empty URL");
    if (s->run == run_work) {
        sigset_t set;
        stop_signals(&set);
        pthread_sigmask(SIG_BLOCK, &set, NULL);
    }
    rc = weft_main(s->run, &c);
    if (rc)
        fail(&c, "%s", weft_strerror(rc));
    free(c.out);
    return c.status;
}
