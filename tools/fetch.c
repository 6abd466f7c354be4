/*
 * weft fetch: the seed's fetch_all, done right. Every URL through one
 * shared pooled client, at most N in flight (a weft_sem), each under its
 * own whole-request deadline; one JSON line per URL on stdout as it
 * finishes, a live progress bar on stderr when it is a terminal, and a
 * summary at the end.
 *
 * stdout may be a pipe whose reader is slow: a write to it could block
 * the loop (and every request with it). Lines go to a bounded queue that
 * one writer task empties with write(2) on the blocking pool; fetches
 * wait for room in the queue, never for the reader.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tool.h"
#include "weft.h"

static const char usage_text[] =
    "usage: weft fetch [-c N] [--timeout SEC] [--connect-timeout SEC] [-i FILE|-] [--fail]\n"
    "                  [-o DIR] [URL...]\n"
    "  -c N                  requests in flight at once (default 50)\n"
    "  --timeout SEC         whole-request deadline per URL (default 30)\n"
    "  --connect-timeout SEC connect timeout (default 10)\n"
    "  -i FILE|-             read URLs from FILE (one per line), - for stdin\n"
    "  --fail                count HTTP statuses >= 400 as failures\n"
    "  -o DIR                save each body in DIR\n"
    "Prints one JSON line per URL; exit 0 when every URL got a response, 1 if any\n"
    "failed, 2 on bad arguments.\n";

/* stdout's queue: lines waiting for the writer task */
#define OUT_BOUND (1 << 20)               /* bytes queued before fetches wait */
struct out {
    char *buf;
    size_t len, cap;
    weft_event ready;                     /* lines are waiting */
    weft_event room;                      /* the queue went below OUT_BOUND */
    bool done;                            /* no more lines will come */
    int err;                              /* stdout failed: lines are dropped */
};

struct fetch {
    char **urls;
    int n, concurrency;
    weft_time timeout, connect_timeout;
    bool fail_status, tty;
    const char *outdir;
    /* progress */
    int done, failed, started;
    weft_time t0;
    double *ms;                           /* latency per URL */
    weft_http_client *client;
    weft_sem limit;
    struct out out;
    /* summary tallies: statuses and error messages */
    int status_count[600];
    struct { char msg[192]; int count; } errs[32];
    int nerrs;
};

static int bad_args(const char *why)
{
    if (why)
        fprintf(stderr, "weft fetch: %s\n", why);
    fputs(usage_text, stderr);
    return 2;
}

static bool parse_seconds(const char *s, weft_time *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v > 0) || v > 86400 * 365)
        return false;
    *out = (weft_time)(v * WEFT_SEC);
    return true;
}

static int add_url(struct fetch *f, const char *u, int *cap)
{
    if (f->n == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        char **v = realloc(f->urls, (size_t)*cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        f->urls = v;
    }
    if (!(f->urls[f->n] = strdup(u)))
        return -ENOMEM;
    f->n++;
    return 0;
}

static int read_urls(struct fetch *f, const char *path, int *cap)
{
    FILE *in = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (!in)
        return -errno;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    int rc = 0;
    while (!rc && (len = getline(&line, &lcap, in)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r' ||
                           line[len - 1] == ' ' || line[len - 1] == '\t'))
            line[--len] = 0;
        char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p && *p != '#')
            rc = add_url(f, p, cap);
    }
    if (!rc && ferror(in))
        rc = -(errno ? errno : EIO);      /* a directory: "Is a directory", not "no URLs" */
    free(line);
    if (in != stdin)
        fclose(in);
    return rc;
}

/* The URL as the JSON line shows it: as given when it is UTF-8 (jansson
 * takes nothing else), else with its bytes >= 0x80 percent-encoded, so
 * every input gets its line. buf: at least 3 * strlen(url) + 1. */
static const char *url_for_json(const char *url, char *buf)
{
    json_t *probe = json_string(url);
    json_decref(probe);
    if (probe)
        return url;
    char *p = buf;
    for (const unsigned char *u = (const unsigned char *)url; *u; u++)
        p += *u < 0x80 ? sprintf(p, "%c", *u) : sprintf(p, "%%%02X", *u);
    return buf;
}

static void tally_error(struct fetch *f, const char *msg)
{
    for (int i = 0; i < f->nerrs; i++)
        if (strcmp(f->errs[i].msg, msg) == 0) {
            f->errs[i].count++;
            return;
        }
    if (f->nerrs < 32) {
        snprintf(f->errs[f->nerrs].msg, sizeof f->errs[0].msg, "%s", msg);
        f->errs[f->nerrs++].count = 1;
    }
}

static void save_body(struct fetch *f, int i, const weft_http_response *r)
{
    char name[512], clean[200];
    size_t k = 0;
    for (const char *p = strstr(f->urls[i], "://"); p && *p && k < sizeof clean - 1; p++)
        clean[k++] = (char)((p[0] >= 'a' && p[0] <= 'z') || (p[0] >= 'A' && p[0] <= 'Z') ||
                            (p[0] >= '0' && p[0] <= '9') || p[0] == '.' || p[0] == '-'
                                ? p[0] : '_');
    clean[k] = 0;
    snprintf(name, sizeof name, "%s/%06d-%s", f->outdir, i, clean);
    FILE *out = fopen(name, "w");
    if (!out) {
        fprintf(stderr, "weft fetch: cannot write %s: %s\n", name, strerror(errno));
        return;
    }
    if (r->body_len)
        fwrite(r->body, 1, r->body_len, out);
    fclose(out);
}

/* ---- stdout, off the loop ------------------------------------------------- */

/* Queues one line (and its newline); waits while the queue is full. */
static int emit(struct out *o, const char *line)
{
    size_t n = strlen(line);
    while (o->len >= OUT_BOUND && !o->err) {
        weft_event_clear(&o->room);
        int rc = weft_event_wait(&o->room);
        if (rc)
            return rc;
    }
    if (o->err)
        return o->err;
    if (o->len + n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap : 4096;
        while (cap < o->len + n + 1)
            cap *= 2;
        char *b = realloc(o->buf, cap);
        if (!b)
            return -ENOMEM;
        o->buf = b;
        o->cap = cap;
    }
    memcpy(o->buf + o->len, line, n);
    o->buf[o->len + n] = '\n';
    o->len += n + 1;
    weft_event_set(&o->ready);
    return 0;
}

/* The writer task: takes the whole queue at a time (fetches refill a fresh
 * one meanwhile) until done and empty. */
static int writer(void *arg)
{
    struct out *o = arg;
    for (;;) {
        if (!o->len) {
            if (o->done)
                return 0;
            weft_event_clear(&o->ready);
            if (weft_event_wait(&o->ready))
                return 0;
            continue;
        }
        char *buf = o->buf;
        size_t len = o->len;
        o->buf = NULL;
        o->len = o->cap = 0;
        weft_event_set(&o->room);
        int rc = tool_write_stdout(buf, len);
        free(buf);
        if (rc) {
            o->err = rc;
            weft_event_set(&o->room);     /* waiters see the error */
            return rc;
        }
    }
}

struct job { struct fetch *f; int i; };

/* Runs with a permit of f->limit, taken by the spawner (so only N tasks
 * exist at a time, however many URLs there are); gives it back. */
static int fetch_one(void *arg)
{
    struct job *j = arg;
    struct fetch *f = j->f;
    int rc;
    weft_time t0 = weft_now();
    weft_http_request req = { .method = "GET", .url = f->urls[j->i], .timeout = f->timeout };
    weft_http_response r;
    rc = weft_http_do(f->client, &req, &r);
    double ms = (double)(weft_now() - t0) / WEFT_MS;
    weft_sem_release(&f->limit);
    f->ms[j->i] = ms;
    json_t *o;
    char *ubuf = malloc(3 * strlen(f->urls[j->i]) + 1);
    const char *shown = ubuf ? url_for_json(f->urls[j->i], ubuf) : f->urls[j->i];
    if (rc == 0) {
        o = json_pack("{s:s, s:i, s:I, s:f}", "url", shown, "status", r.status, "bytes",
                      (json_int_t)r.body_len, "ms", round(ms * 100) / 100);
        if (r.status >= 0 && r.status < 600)
            f->status_count[r.status]++;
        if (f->fail_status && r.status >= 400)
            f->failed++;
        if (f->outdir)
            save_body(f, j->i, &r);
    } else {
        /* what the client says went wrong ("truncated response"), else the code's name */
        const char *msg = r.error[0] ? r.error : weft_strerror(rc);
        o = json_pack("{s:s, s:s, s:f}", "url", shown, "error", msg, "ms",
                      round(ms * 100) / 100);
        tally_error(f, msg);
        f->failed++;
    }
    weft_http_response_free(&r);
    free(ubuf);
    char *line = o ? json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(6)) : NULL;
    json_decref(o);
    f->done++;
    rc = line ? emit(&f->out, line) : -ENOMEM;
    free(line);
    return rc;                            /* (stdout failing ends the run) */
}

static void draw_progress(struct fetch *f, bool final)
{
    double secs = (double)(weft_now() - f->t0) / WEFT_SEC;
    double rate = secs > 0 ? f->done / secs : 0;
    int width = 30, fill = f->n ? f->done * width / f->n : width;
    char bar[64];
    for (int i = 0; i < width; i++)
        bar[i] = i < fill ? '=' : i == fill ? '>' : ' ';
    bar[width] = 0;
    double eta = rate > 0 ? (f->n - f->done) / rate : 0;
    fprintf(stderr, "\r[%s] %d/%d  %.1f req/s  %d failed  ETA %.0fs ", bar, f->done, f->n, rate,
            f->failed, eta);
    if (final)
        fputc('\n', stderr);
    fflush(stderr);
}

static int progress(void *arg)
{
    struct fetch *f = arg;
    while (weft_sleep(100 * WEFT_MS) == 0)
        draw_progress(f, false);
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void summary(struct fetch *f)
{
    double secs = (double)(weft_now() - f->t0) / WEFT_SEC;
    qsort(f->ms, (size_t)f->n, sizeof *f->ms, cmp_double);
    double p50 = f->n ? f->ms[(f->n - 1) * 50 / 100] : 0;
    double p90 = f->n ? f->ms[(f->n - 1) * 90 / 100] : 0;
    double p99 = f->n ? f->ms[(f->n - 1) * 99 / 100] : 0;
    fprintf(stderr, "fetched %d URLs in %.2f s: %.1f req/s, latency p50 %.2f ms, p90 %.2f ms, "
                    "p99 %.2f ms\n", f->n, secs, secs > 0 ? f->n / secs : 0, p50, p90, p99);
    for (int s = 0; s < 600; s++)
        if (f->status_count[s])
            fprintf(stderr, "  status %d: %d\n", s, f->status_count[s]);
    for (int i = 0; i < f->nerrs; i++)
        fprintf(stderr, "  error \"%s\": %d\n", f->errs[i].msg, f->errs[i].count);
}

static int run(void *arg)
{
    struct fetch *f = arg;
    weft_http_client_opts o = { .connect_timeout = f->connect_timeout,
                                .max_connections = (unsigned)f->concurrency,
                                .max_idle_per_origin = (unsigned)f->concurrency,
                                .pool_timeout = f->timeout };
    if (!(f->client = weft_http_client_new(&o)))
        return -errno;
    weft_sem_init(&f->limit, (unsigned)f->concurrency);
    weft_event_init(&f->out.ready);
    weft_event_init(&f->out.room);
    struct job *jobs = calloc((size_t)f->n, sizeof *jobs);
    weft_group *g = weft_group_new(), *bar = f->tty ? weft_group_new() : NULL;
    weft_group *out = weft_group_new();
    if (!jobs || !g || !out || weft_spawn(out, writer, &f->out, "stdout"))
        return -ENOMEM;
    f->t0 = weft_now();
    if (bar)
        weft_spawn(bar, progress, f, "progress");
    int rc = 0;
    for (int i = 0; i < f->n && rc == 0; i++) {
        jobs[i] = (struct job){ f, i };
        if ((rc = weft_sem_acquire(&f->limit)))
            break;
        if ((rc = weft_spawn(g, fetch_one, &jobs[i], "fetch")))
            weft_sem_release(&f->limit);
    }
    int wrc = weft_group_wait(g);
    f->out.done = true;                   /* the writer empties the queue and ends */
    weft_event_set(&f->out.ready);
    int orc = weft_group_wait(out);
    free(f->out.buf);
    if (bar) {
        weft_group_cancel(bar);
        weft_group_wait(bar);
        draw_progress(f, true);
    }
    summary(f);
    weft_http_client_free(f->client, WEFT_SEC);
    free(jobs);
    return orc ? orc : wrc ? wrc : rc;    /* the cause, before the cancellations */
}

int weft_cmd_fetch(int argc, char **argv)
{
    struct fetch f = { .concurrency = 50, .timeout = 30 * WEFT_SEC,
                       .connect_timeout = 10 * WEFT_SEC };
    int cap = 0;
    enum { OPT_TIMEOUT = 256, OPT_CONNECT, OPT_FAIL, OPT_HELP };
    static const struct option longopts[] = {
        { "timeout", required_argument, NULL, OPT_TIMEOUT },
        { "connect-timeout", required_argument, NULL, OPT_CONNECT },
        { "fail", no_argument, NULL, OPT_FAIL },
        { "help", no_argument, NULL, OPT_HELP },
        { NULL, 0, NULL, 0 },
    };
    const char *input = NULL;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "c:i:o:h", longopts, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'c':
            f.concurrency = (int)strtol(optarg, &end, 10);
            if (*end || f.concurrency < 1 || f.concurrency > 100000)
                return bad_args("-c needs a number from 1 to 100000");
            break;
        case OPT_TIMEOUT:
            if (!parse_seconds(optarg, &f.timeout))
                return bad_args("--timeout needs a positive number of seconds");
            break;
        case OPT_CONNECT:
            if (!parse_seconds(optarg, &f.connect_timeout))
                return bad_args("--connect-timeout needs a positive number of seconds");
            break;
        case 'i':
            input = optarg;
            break;
        case 'o':
            f.outdir = optarg;
            break;
        case OPT_FAIL:
            f.fail_status = true;
            break;
        case 'h':
        case OPT_HELP:
            fputs(usage_text, stdout);
            return 0;
        default:
            return bad_args(optopt ? "missing or unknown option" : "unknown option");
        }
    }
    int status = 0, rc = 0;
    char why[300];
    struct stat st;
    if (input && (rc = read_urls(&f, input, &cap))) {
        snprintf(why, sizeof why, "cannot read %s: %s", input, strerror(-rc));
        status = bad_args(why);
    }
    for (int i = optind; !status && i < argc; i++)
        if (add_url(&f, argv[i], &cap))
            status = bad_args("out of memory");
    if (!status && f.n == 0)
        status = bad_args("no URLs given");
    if (!status && f.outdir && (stat(f.outdir, &st) != 0 || !S_ISDIR(st.st_mode)))
        status = bad_args("-o needs an existing directory");
    if (!status) {
        f.ms = calloc((size_t)f.n, sizeof *f.ms);
        f.tty = isatty(2);
        rc = f.ms ? weft_main(run, &f) : -ENOMEM;
        if (rc && rc != -EPIPE)           /* a reader that left needs no message */
            fprintf(stderr, "weft fetch: %s\n", weft_strerror(rc));
        status = rc || f.failed ? 1 : 0;
    }
    for (int i = 0; i < f.n; i++)
        free(f.urls[i]);
    free(f.urls);
    free(f.ms);
    return status;
}
