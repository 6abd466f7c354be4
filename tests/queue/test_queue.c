/* The durable queue's public API: open errors, enqueue and its validation,
 * idempotency keys, batches, order (priority, FIFO, delays), retries with
 * backoff, dead letters and retry, results, unknown types and broken
 * payloads, job timeouts, heartbeats, lease expiry after a kill -9,
 * graceful stop, bounded concurrency, stats, list/purge/get, a read-only
 * file and a full disk, and the metrics.
 *
 * On every backend (qbackend.h: $WEFT_TEST_QUEUE_BACKEND): each test gets
 * its own temp directory and either one queue file in it or a server whose
 * queue state was wiped. The tests of files (read-only, full disk, size
 * limit) are SQLite's only. Work that needs another process (a worker
 * killed with SIGKILL, a producer waking an idle worker, a file-size
 * limit, another uid) re-executes this binary with "--child MODE URL", so
 * the child starts fresh instead of inheriting a forked copy of this
 * process's loops and thread pool. */
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <sqlite3.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "qbackend.h"

/* ---- fixture: one temp directory and queue URL per test ------------------ */

struct tmpdb {
    char dir[64];
    char path[128];                 /* DIR/q.db (SQLite's file) */
    char url[600];                  /* sqlite:DIR/q.db, or the server's */
};

static int db_teardown(void **state);

static int db_setup(void **state)
{
    struct tmpdb *d = calloc(1, sizeof *d);
    strcpy(d->dir, "/tmp/weft-qtest-XXXXXX");
    if (!mkdtemp(d->dir)) {
        free(d);
        return -1;
    }
    snprintf(d->path, sizeof d->path, "%s/q.db", d->dir);
    *state = d;
    if (qbackend_url(d->dir, d->url, sizeof d->url) == 0)
        return 0;
    db_teardown(state);             /* cmocka runs none after a failed setup */
    return -1;
}

static int db_teardown(void **state)
{
    struct tmpdb *d = *state;
    DIR *dir = opendir(d->dir);
    struct dirent *e;
    while (dir && (e = readdir(dir))) {
        char p[PATH_MAX];
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(p, sizeof p, "%s/%s", d->dir, e->d_name);
            unlink(p);
        }
    }
    if (dir)
        closedir(dir);
    rmdir(d->dir);
    free(d);
    return 0;
}

/* ---- helpers ------------------------------------------------------------- */

/* WAIT_UNTIL with a bound in seconds, for waits that include lease expiry */
#define WAIT_S(cond, secs)                                                         \
    for (weft_time ws_ = weft_now() + (secs) * WEFT_SEC; !(cond) && weft_now() < ws_;) \
        weft_sleep(WEFT_MS)

static int64_t unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static weft_queue *qopen(const char *url, const weft_queue_opts *o)
{
    weft_queue *q = NULL;
    int rc = weft_queue_open(&q, url, o);
    if (rc)
        fprintf(stderr, "weft_queue_open(%s): %s\n", url, weft_strerror(rc));
    EXPECT_EQ(rc, 0);
    return rc ? NULL : q;
}

static weft_job_id enqueue(weft_queue *q, const char *queue, const char *type,
                           const char *payload, const weft_job_opts *o)
{
    weft_job_id id = -1;
    int rc = weft_queue_enqueue(q, queue, type, payload, o, &id);
    if (rc)
        fprintf(stderr, "enqueue %s/%s: %s\n", queue, type, weft_strerror(rc));
    EXPECT_EQ(rc, 0);
    return id;
}

/* the job's state, or a negative code */
static int job_state(weft_queue *q, weft_job_id id)
{
    weft_job_info i;
    int rc = weft_queue_get(q, id, &i);
    int st = rc < 0 ? rc : i.state;
    weft_job_info_free(&i);
    return st;
}

static weft_job_info job_get(weft_queue *q, weft_job_id id)
{
    weft_job_info i;
    EXPECT_EQ(weft_queue_get(q, id, &i), 0);
    return i;
}

static weft_queue_stats stats(weft_queue *q, const char *queue)
{
    weft_queue_stats s;
    memset(&s, 0, sizeof s);
    EXPECT_EQ(weft_queue_stats_get(q, queue, &s), 0);
    return s;
}

static bool has(const char *s, const char *part)
{
    return s && strcasestr(s, part);
}

/* A weft_queue_work on a task of its own, stopped with weft_queue_stop. */
struct worker {
    weft_queue *q;
    const char *queue;
    const weft_job_handler *h;
    int nh, concurrency;
    int rc;
    bool returned;
    weft_task *task;
    weft_group *g;
};

static int worker_main(void *arg)
{
    struct worker *w = arg;
    w->task = weft_self();
    w->rc = weft_queue_work(w->q, w->queue, w->h, w->nh, w->concurrency);
    w->returned = true;
    return 0;
}

static void worker_start(struct worker *w)
{
    w->rc = 1;
    w->returned = false;
    w->g = weft_group_new();
    EXPECT(w->g != NULL);
    EXPECT_EQ(weft_spawn(w->g, worker_main, w, "worker"), 0);
    WAIT_UNTIL(w->task != NULL);
}

/* waits for the worker to return after a stop or cancellation */
static void worker_join(struct worker *w)
{
    EXPECT_EQ(weft_group_wait(w->g), 0);
    EXPECT(w->returned);
    if (w->rc)
        fprintf(stderr, "weft_queue_work: %s\n", weft_strerror(w->rc));
    EXPECT_EQ(w->rc, 0);
}

static void worker_stop(struct worker *w)
{
    weft_queue_stop(w->q);
    worker_join(w);
}

/* handlers most tests share: count and succeed, or fail for good */
struct counts {
    int calls, running, max_running;
    weft_job_id last;
};

static int ok_fn(const weft_job *job, void *ctx)
{
    struct counts *c = ctx;
    c->calls++;
    c->last = job->id;
    return 0;
}

static int dead_fn(const weft_job *job, void *ctx)
{
    struct counts *c = ctx;
    c->calls++;
    weft_job_set_error(job, "gave up");
    return -WEFT_EJOB_DEAD;
}

/* ---- child processes ----------------------------------------------------- */

enum child_setup { CHILD_PLAIN, CHILD_FSIZE, CHILD_NOBODY, CHILD_TMPFS };
static const char *self_exe = "/proc/self/exe";

/* the directory of the file of a sqlite: url, in buf */
static const char *dirname_of(const char *url, char *buf)
{
    snprintf(buf, 256, "%s", url + strlen("sqlite:"));
    char *slash = strrchr(buf, '/');
    if (slash)
        *slash = 0;
    return buf;
}

/* Starts this binary as "--child mode url" with its stdout on *out_fd. Only
 * async-signal-safe calls between fork and exec (this process has threads). */
static pid_t child_start(const char *mode, const char *url, enum child_setup setup, int *out_fd)
{
    char path_buf[256];
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], 1);
        if (setup == CHILD_FSIZE) {
            struct rlimit rl = { 1 << 20, 1 << 20 };   /* each file at most 1 MiB */
            signal(SIGXFSZ, SIG_IGN);                  /* write() fails with EFBIG */
            setrlimit(RLIMIT_FSIZE, &rl);
        } else if (setup == CHILD_TMPFS) {
            /* a 1 MiB file system over the queue's directory, in a mount
             * namespace of the child's own */
            if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
                mount("tmpfs", dirname_of(url, path_buf), "tmpfs", 0, "size=1m") < 0) {
                static const char msg[] = "cannot mount a small tmpfs\n";
                if (write(1, msg, sizeof msg - 1) < 0)
                    _exit(4);
                _exit(3);
            }
        } else if (setup == CHILD_NOBODY) {
            if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0) {
                static const char msg[] = "cannot setuid to nobody\n";
                if (write(1, msg, sizeof msg - 1) < 0)
                    _exit(4);
                _exit(3);
            }
        }
        char *argv[] = { (char *)"test_queue", (char *)"--child", (char *)mode, (char *)url, NULL };
        execv(self_exe, argv);
        _exit(127);
    }
    close(p[1]);
    if (pid < 0) {
        close(p[0]);
        return -1;
    }
    *out_fd = p[0];
    return pid;
}

/* Reads up to size-1 bytes (NUL-terminated) from fd, waiting at most secs
 * for each read: for the main stack, outside any loop. */
static size_t read_bounded(int fd, char *buf, size_t size, size_t want, int secs)
{
    size_t len = 0;
    while (len < want && len + 1 < size) {
        struct pollfd pfd = { fd, POLLIN, 0 };
        if (poll(&pfd, 1, secs * 1000) <= 0)
            break;
        ssize_t n = read(fd, buf + len, size - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    buf[len] = 0;
    return len;
}

/* Runs a child to its end (killed after 60 s); its stdout into out.
 * Returns the wait status. */
static int child_run(const char *mode, const char *url, enum child_setup setup, char *out,
                     size_t size)
{
    int fd;
    pid_t pid = child_start(mode, url, setup, &fd);
    assert_true(pid > 0);
    read_bounded(fd, out, size, size, 60);
    close(fd);
    int status;
    if (waitpid(pid, &status, WNOHANG) == 0) {
        sleep(1);
        kill(pid, SIGKILL);
    }
    waitpid(pid, &status, 0);
    return status;
}

/* ---- open ---------------------------------------------------------------- */

/* SQLite's: a missing directory, a directory, a file that is not a database */
static void open_file_errors(struct tmpdb *d)
{
    weft_queue *q = NULL;
    char url[300], path[256];

    /* a missing directory is not created */
    snprintf(path, sizeof path, "%s/missing", d->dir);
    snprintf(url, sizeof url, "sqlite:%s/q.db", path);
    EXPECT_EQ(weft_queue_open(&q, url, NULL), -ENOENT);
    EXPECT(access(path, F_OK) < 0);

    /* a directory where the file should be */
    snprintf(url, sizeof url, "sqlite:%s", d->dir);
    EXPECT_EQ(weft_queue_open(&q, url, NULL), -EISDIR);

    /* a file that is not a database is refused and left alone */
    snprintf(path, sizeof path, "%s/notes.txt", d->dir);
    FILE *f = fopen(path, "w");
    for (int i = 0; i < 200; i++)
        fprintf(f, "line %d of a text file that is not an SQLite database\n", i);
    fclose(f);
    struct stat before, after;
    stat(path, &before);
    snprintf(url, sizeof url, "sqlite:%s", path);
    int rc = weft_queue_open(&q, url, NULL);
    if (rc != -EIO)
        fprintf(stderr, "open of a text file: %d %s\n", rc, weft_strerror(rc));
    EXPECT_EQ(rc, -EIO);
    stat(path, &after);
    EXPECT_EQ(after.st_size, before.st_size);
}

/* A server's: nothing listens at the address (port 1 of this host). The
 * open fails, with the connection's error, and does not hang. */
static void open_server_errors(void)
{
    static const char *const nobody[] = {
        [QB_REDIS] = "redis://127.0.0.1:1",
        [QB_PG] = "postgresql://weft:weft@127.0.0.1:1/weft",
    };
    weft_queue *q = NULL;
    weft_scope sc;
    weft_scope_enter(&sc, 60 * WEFT_SEC);
    int rc = weft_queue_open(&q, nobody[qbackend()], NULL);
    weft_scope_exit(&sc);
    if (rc >= 0 || rc == -EINVAL || rc == -ETIMEDOUT)
        fprintf(stderr, "open of %s: %d %s\n", nobody[qbackend()], rc, weft_strerror(rc));
    EXPECT(rc < 0 && rc != -EINVAL && rc != -ETIMEDOUT);
    if (rc == 0)
        weft_queue_close(q);
}

static int open_errors(void *arg)
{
    struct tmpdb *d = arg;
    weft_queue *q = NULL;

    EXPECT_EQ(weft_queue_open(&q, "", NULL), -EINVAL);
    EXPECT_EQ(weft_queue_open(&q, "sqlite:", NULL), -EINVAL);
    EXPECT_EQ(weft_queue_open(&q, "bogus:x", NULL), -EINVAL);
    EXPECT_EQ(weft_queue_open(&q, NULL, NULL), -EINVAL);
    EXPECT_EQ(weft_queue_open(NULL, d->url, NULL), -EINVAL);

    /* bad options */
    weft_queue_opts o = { .max_attempts = -1 };
    EXPECT_EQ(weft_queue_open(&q, d->url, &o), -EINVAL);
    o = (weft_queue_opts){ .lease = -WEFT_SEC };
    EXPECT_EQ(weft_queue_open(&q, d->url, &o), -EINVAL);

    if (qbackend() == QB_SQLITE)
        open_file_errors(d);
    else
        open_server_errors();

    /* and a good one; close of NULL is a no-op */
    q = qopen(d->url, NULL);
    EXPECT(q != NULL);
    EXPECT_EQ(weft_queue_close(q), 0);
    EXPECT_EQ(weft_queue_close(NULL), 0);
    return 0;
}

static void test_open_errors(void **state)
{
    RUN(open_errors, *state);
}

struct seen {
    weft_job_id ids[64];
    int runs[64];
    int n, total;
};

static int seen_fn(const weft_job *job, void *ctx)
{
    struct seen *s = ctx;
    s->total++;
    for (int i = 0; i < s->n; i++)
        if (s->ids[i] == job->id) {
            s->runs[i]++;
            return weft_yield();
        }
    EXPECT(!"a job the test did not enqueue");
    return 0;
}

static int reopen_two_handles(void *arg)
{
    struct tmpdb *d = arg;
    weft_queue *q = qopen(d->url, NULL);
    if (!q)
        return -1;
    weft_job_id a = enqueue(q, "q", "t", "{\"n\":1}", NULL);
    weft_job_opts hi = { .priority = 7 };
    weft_job_id b = enqueue(q, "q", "t", "{\"n\":2}", &hi);
    EXPECT(a > 0 && b > 0 && a != b);
    EXPECT_EQ(weft_queue_close(q), 0);

    /* a new handle sees what the old one enqueued */
    q = qopen(d->url, NULL);
    if (!q)
        return -1;
    weft_job_info i = job_get(q, b);
    EXPECT_EQ(i.state, WEFT_JOB_QUEUED);
    EXPECT_EQ(i.priority, 7);
    EXPECT(i.payload && !strcmp(i.payload, "{\"n\":2}"));
    weft_job_info_free(&i);
    EXPECT_EQ(stats(q, "q").queued, 2);

    /* two handles on one file in one loop: each sees the other's jobs */
    weft_queue *q2 = qopen(d->url, NULL);
    if (!q2)
        return -1;
    weft_job_id c = enqueue(q2, "q", "t", NULL, NULL);
    EXPECT_EQ(job_state(q, c), WEFT_JOB_QUEUED);
    EXPECT_EQ(stats(q2, "q").queued, 3);

    /* and a worker on each runs every job once */
    struct seen s = { .ids = { a, b, c }, .n = 3 };
    for (int k = 0; k < 30; k++)
        s.ids[s.n++] = enqueue(k % 2 ? q : q2, "q", "t", NULL, NULL);
    weft_job_handler h = { "t", seen_fn, &s };
    struct worker w1 = { .q = q, .queue = "q", .h = &h, .nh = 1, .concurrency = 2 };
    struct worker w2 = { .q = q2, .queue = "q", .h = &h, .nh = 1, .concurrency = 2 };
    worker_start(&w1);
    worker_start(&w2);
    WAIT_UNTIL(s.total >= s.n);
    worker_stop(&w1);
    worker_stop(&w2);
    EXPECT_EQ(s.total, s.n);
    for (int k = 0; k < s.n; k++)
        EXPECT_EQ(s.runs[k], 1);
    EXPECT_EQ(stats(q, "q").done, (uint64_t)s.n);
    EXPECT_EQ(weft_queue_close(q2), 0);
    EXPECT_EQ(weft_queue_close(q), 0);
    return 0;
}

static void test_reopen_two_handles(void **state)
{
    RUN(reopen_two_handles, *state);
}

/* ---- enqueue ------------------------------------------------------------- */

static int enqueue_validation(void *arg)
{
    struct tmpdb *d = arg;
    weft_queue *q = qopen(d->url, NULL);
    if (!q)
        return -1;
    int64_t t0 = unix_ms();
    weft_job_id id = -1, id2 = -1;
    EXPECT_EQ(weft_queue_enqueue(q, "q", "t", "{\"a\":[1,2,{\"b\":null}]}", NULL, &id), 0);
    EXPECT_EQ(weft_queue_enqueue(q, "q", "t", "[1,2,3]", NULL, &id2), 0);
    EXPECT(id > 0);
    EXPECT(id2 > id);

    /* the record */
    weft_job_info i = job_get(q, id);
    EXPECT_EQ(i.id, id);
    EXPECT_EQ(i.state, WEFT_JOB_QUEUED);
    EXPECT_EQ(i.attempts, 0);
    EXPECT_EQ(i.max_attempts, 5);
    EXPECT_EQ(i.priority, 0);
    EXPECT(i.created_ms >= t0 - 1000 && i.created_ms <= unix_ms() + 1000);
    EXPECT(i.run_at_ms >= i.created_ms - 1);
    EXPECT_EQ(i.finished_ms, 0);
    EXPECT(i.queue && !strcmp(i.queue, "q"));
    EXPECT(i.type && !strcmp(i.type, "t"));
    EXPECT(i.payload && !strcmp(i.payload, "{\"a\":[1,2,{\"b\":null}]}"));
    EXPECT(i.result == NULL);
    EXPECT(i.last_error == NULL);
    weft_job_info_free(&i);

    /* NULL payload is {}; options are stored */
    weft_job_opts o = { .priority = 9, .max_attempts = 2 };
    id = enqueue(q, "q", "t", NULL, &o);
    i = job_get(q, id);
    EXPECT(i.payload && !strcmp(i.payload, "{}"));
    EXPECT_EQ(i.priority, 9);
    EXPECT_EQ(i.max_attempts, 2);
    weft_job_info_free(&i);
    o = (weft_job_opts){ .priority = 0 };
    enqueue(q, "q", "t", "\"just a string\"", &o);
    enqueue(q, "q", "t", "{\"utf8\":\"\xc3\xa9t\xc3\xa9\"}", NULL);

    /* invalid: nothing enqueued */
    static const char *bad_json[] = { "{not json", "", "{\"a\":1", "[1,]", "{} trailing" };
    for (size_t k = 0; k < sizeof bad_json / sizeof *bad_json; k++)
        EXPECT_EQ(weft_queue_enqueue(q, "q", "t", bad_json[k], NULL, &id), -EINVAL);
    EXPECT_EQ(weft_queue_enqueue(q, "", "t", NULL, NULL, &id), -EINVAL);
    EXPECT_EQ(weft_queue_enqueue(q, "q", "", NULL, NULL, &id), -EINVAL);
    EXPECT_EQ(weft_queue_enqueue(q, NULL, "t", NULL, NULL, &id), -EINVAL);
    EXPECT_EQ(weft_queue_enqueue(q, "q", NULL, NULL, NULL, &id), -EINVAL);
    EXPECT_EQ(weft_queue_enqueue(NULL, "q", "t", NULL, NULL, &id), -EINVAL);
    size_t big = 1024;
    char *longname = malloc(big + 1);
    memset(longname, 'x', big);
    longname[big] = 0;
    EXPECT_EQ(weft_queue_enqueue(q, longname, "t", NULL, NULL, &id), -EINVAL);
    EXPECT_EQ(weft_queue_enqueue(q, "q", longname, NULL, NULL, &id), -EINVAL);
    free(longname);
    o = (weft_job_opts){ .priority = -1 };
    EXPECT_EQ(weft_queue_enqueue(q, "q", "t", NULL, &o, &id), -EINVAL);
    o = (weft_job_opts){ .priority = 10 };
    EXPECT_EQ(weft_queue_enqueue(q, "q", "t", NULL, &o, &id), -EINVAL);
    o = (weft_job_opts){ .max_attempts = -1 };
    EXPECT_EQ(weft_queue_enqueue(q, "q", "t", NULL, &o, &id), -EINVAL);
    o = (weft_job_opts){ .delay = -WEFT_SEC };
    EXPECT_EQ(weft_queue_enqueue(q, "q", "t", NULL, &o, &id), -EINVAL);

    weft_queue_stats s = stats(q, NULL);
    EXPECT_EQ(s.queued + s.scheduled + s.running + s.done + s.dead, 5);
    EXPECT_EQ(weft_queue_close(q), 0);
    return 0;
}

static void test_enqueue_validation(void **state)
{
    RUN(enqueue_validation, *state);
}

static int idempotency(void *arg)
{
    struct tmpdb *d = arg;
    weft_queue *q = qopen(d->url, NULL);
    if (!q)
        return -1;
    weft_job_opts k1 = { .key = "order-17" };
    weft_job_id id = enqueue(q, "q", "t", "{\"v\":1}", &k1), again = -1;
    EXPECT_EQ(weft_queue_enqueue(q, "q", "t", "{\"v\":2}", &k1, &again), 1);
    EXPECT_EQ(again, id);
    weft_job_info i = job_get(q, id);
    EXPECT(i.payload && !strcmp(i.payload, "{\"v\":1}"));      /* the first one's */
    weft_job_info_free(&i);
    EXPECT_EQ(stats(q, "q").queued, 1);

    /* a key belongs to its queue */
    weft_job_id other = enqueue(q, "other", "t", NULL, &k1);
    EXPECT(other != id);

    /* in a batch, a matching key gives the existing id and adds nothing */
    weft_job_spec specs[] = {
        { "q", "t", "{\"v\":3}", { .key = "order-17" } },
        { "q", "t", "{\"v\":4}", { .key = "order-18" } },
    };
    weft_job_id ids[2] = { -1, -1 };
    EXPECT_EQ(weft_queue_enqueue_batch(q, specs, 2, ids), 0);
    EXPECT_EQ(ids[0], id);
    EXPECT(ids[1] > 0 && ids[1] != id);
    EXPECT_EQ(stats(q, "q").queued, 2);

    /* still remembered once the job is done */
    struct counts c = { 0 };
    weft_job_handler h = { "t", ok_fn, &c };
    struct worker w = { .q = q, .queue = "q", .h = &h, .nh = 1, .concurrency = 1 };
    worker_start(&w);
    WAIT_UNTIL(c.calls == 2);
    worker_stop(&w);
    EXPECT_EQ(job_state(q, id), WEFT_JOB_DONE);
    EXPECT_EQ(weft_queue_enqueue(q, "q", "t", NULL, &k1, &again), 1);
    EXPECT_EQ(again, id);
    EXPECT_EQ(c.calls, 2);

    /* forgotten once purged */
    EXPECT_EQ(weft_queue_purge(q, "q", WEFT_JOB_DONE), 2);
    EXPECT_EQ(weft_queue_enqueue(q, "q", "t", NULL, &k1, &again), 0);
    EXPECT(again != id && again > 0);
    EXPECT_EQ(job_state(q, other), WEFT_JOB_QUEUED);        /* the other queue's is kept */
    EXPECT_EQ(weft_queue_close(q), 0);
    return 0;
}

static void test_idempotency(void **state)
{
    RUN(idempotency, *state);
}

static int batch(void *arg)
{
    struct tmpdb *d = arg;
    weft_queue *q = qopen(d->url, NULL);
    if (!q)
        return -1;
    weft_job_spec specs[5];
    for (int k = 0; k < 5; k++)
        specs[k] = (weft_job_spec){ "q", "t", "{\"k\":0}", { .priority = k } };
    weft_job_id ids[5] = { 0 };
    EXPECT_EQ(weft_queue_enqueue_batch(q, specs, 5, ids), 0);
    for (int k = 0; k < 5; k++) {
        EXPECT(ids[k] > 0);
        if (k)
            EXPECT(ids[k] > ids[k - 1]);
        weft_job_info i = job_get(q, ids[k]);
        EXPECT_EQ(i.priority, k);
        weft_job_info_free(&i);
    }
    EXPECT_EQ(weft_queue_enqueue_batch(q, specs, 5, NULL), 0);     /* ids may be NULL */
    EXPECT_EQ(stats(q, "q").queued, 10);

    /* all or nothing: one invalid spec anywhere enqueues none */
    weft_job_spec bad[3] = { specs[0], specs[1], specs[2] };
    bad[1].payload = "{oops";
    EXPECT_EQ(weft_queue_enqueue_batch(q, bad, 3, ids), -EINVAL);
    bad[1].payload = "{}";
    bad[2].opts.priority = 10;
    EXPECT_EQ(weft_queue_enqueue_batch(q, bad, 3, NULL), -EINVAL);
    bad[2].opts.priority = 0;
    bad[2].type = "";
    EXPECT_EQ(weft_queue_enqueue_batch(q, bad, 3, NULL), -EINVAL);
    bad[2].type = "t";
    bad[0].opts.key = "k-in-bad-batch";
    bad[1].queue = NULL;
    EXPECT_EQ(weft_queue_enqueue_batch(q, bad, 3, NULL), -EINVAL);
    EXPECT_EQ(stats(q, NULL).queued, 10);
    /* the invalid batch's key was not remembered */
    weft_job_id id;
    EXPECT_EQ(weft_queue_enqueue(q, "q", "t", NULL, &(weft_job_opts){ .key = "k-in-bad-batch" },
                                 &id), 0);
    EXPECT_EQ(weft_queue_enqueue_batch(q, specs, -1, NULL), -EINVAL);
    EXPECT_EQ(weft_queue_close(q), 0);
    return 0;
}

static void test_batch(void **state)
{
    RUN(batch, *state);
}

/* ---- order --------------------------------------------------------------- */

struct order {
    weft_job_id ran[32];
    weft_time at[32];
    int n;
};

static int order_fn(const weft_job *job, void *ctx)
{
    struct order *o = ctx;
    if (o->n < 32) {
        o->at[o->n] = weft_now();
        o->ran[o->n] = job->id;
    }
    o->n++;
    return 0;
}

static int index_of(const struct order *o, weft_job_id id)
{
    for (int k = 0; k < o->n && k < 32; k++)
        if (o->ran[k] == id)
            return k;
    return -1;
}

static int ordering(void *arg)
{
    struct tmpdb *d = arg;
    weft_queue *q = qopen(d->url, NULL);
    if (!q)
        return -1;
    weft_job_id other = enqueue(q, "other", "t", NULL, NULL);
    static const int prio[] = { 0, 5, 9, 5, 0, 9, 1 };
    weft_job_id ids[7];
    for (int k = 0; k < 7; k++)
        ids[k] = enqueue(q, "q", "t", NULL, &(weft_job_opts){ .priority = prio[k] });
    /* due a minute ago: first of its priority (FIFO is by due time) */
    weft_job_id past = enqueue(q, "q", "t", NULL,
                               &(weft_job_opts){ .priority = 5, .run_at_ms = unix_ms() - 60000 });
    /* later: 200 ms from now; at a Unix time 300 ms from now; a delay that
     * wins over a run_at in the past */
    weft_time t_enq = weft_now();
    weft_job_id delayed = enqueue(q, "q", "t", NULL, &(weft_job_opts){ .delay = 200 * WEFT_MS });
    weft_job_id at = enqueue(q, "q", "t", NULL, &(weft_job_opts){ .run_at_ms = unix_ms() + 300 });
    weft_job_id both = enqueue(q, "q", "t", NULL,
                               &(weft_job_opts){ .delay = 300 * WEFT_MS, .run_at_ms = 1000 });

    EXPECT_EQ(job_state(q, past), WEFT_JOB_QUEUED);
    EXPECT_EQ(job_state(q, delayed), WEFT_JOB_SCHEDULED);
    EXPECT_EQ(job_state(q, at), WEFT_JOB_SCHEDULED);
    EXPECT_EQ(job_state(q, both), WEFT_JOB_SCHEDULED);
    weft_job_info i = job_get(q, both);
    EXPECT(i.run_at_ms >= i.created_ms + 299);
    weft_job_info_free(&i);
    weft_queue_stats s = stats(q, "q");
    EXPECT_EQ(s.queued, 8);
    EXPECT_EQ(s.scheduled, 3);
    EXPECT_EQ(s.running, 0);

    struct order o = { 0 };
    weft_job_handler h = { "t", order_fn, &o };
    struct worker w = { .q = q, .queue = "q", .h = &h, .nh = 1, .concurrency = 1 };
    worker_start(&w);
    WAIT_UNTIL(o.n >= 11);
    worker_stop(&w);
    EXPECT_EQ(o.n, 11);
    /* the job due in the past runs among its priority; whether first (due
     * earliest) or last (due at its enqueue: "the later of the two wins")
     * the header leaves open */
    int kp = index_of(&o, past);
    EXPECT(kp >= 2 && kp <= 4);
    weft_job_id want[] = { ids[2], ids[5], ids[1], ids[3], ids[6], ids[0], ids[4], delayed };
    for (int k = 0, r = 0; k < 8 && r < 11; r++) {
        if (r == kp)
            continue;
        if (o.ran[r] != want[k])
            fprintf(stderr, "run %d: job %lld, expected %lld\n", r, (long long)o.ran[r],
                    (long long)want[k]);
        EXPECT_EQ(o.ran[r], want[k]);
        k++;
    }
    /* not early (2 ms for the stored times' millisecond rounding) */
    int kd = index_of(&o, delayed), ka = index_of(&o, at), kb = index_of(&o, both);
    EXPECT(kd >= 0 && ka > kd && kb > kd);
    if (kd >= 0)
        EXPECT(o.at[kd] - t_enq >= 198 * WEFT_MS);
    if (ka >= 0)
        EXPECT(o.at[ka] - t_enq >= 298 * WEFT_MS);
    if (kb >= 0)
        EXPECT(o.at[kb] - t_enq >= 298 * WEFT_MS);
    EXPECT_EQ(job_state(q, other), WEFT_JOB_QUEUED);        /* another queue's job */
    s = stats(q, "q");
    EXPECT_EQ(s.done, 11);
    EXPECT_EQ(s.queued + s.scheduled + s.running + s.dead, 0);
    EXPECT_EQ(weft_queue_close(q), 0);
    return 0;
}

static void test_ordering(void **state)
{
    RUN(ordering, *state);
}

/* An idle worker sleeps until the earliest scheduled job is due, not until
 * its next look around (it does not poll): ten jobs, each delayed 100 ms
 * and enqueued once the previous one ran, take about a second. The bound
 * is five times that; a worker that found them only by looking every
 * second would take ten. */
static int idle_worker_wakes_when_due(void *arg)
{
    struct tmpdb *d = arg;
    weft_queue *q = qopen(d->url, NULL);
    if (!q)
        return -1;
    struct order o = { 0 };
    weft_job_handler h = { "t", order_fn, &o };
    struct worker w = { .q = q, .queue = "q", .h = &h, .nh = 1, .concurrency = 1 };
    worker_start(&w);
    weft_time t0 = weft_now();
    for (int k = 0; k < 10; k++) {
        weft_time t = weft_now();
        enqueue(q, "q", "t", NULL, &(weft_job_opts){ .delay = 100 * WEFT_MS });
        WAIT_UNTIL(o.n == k + 1);
        EXPECT_EQ(o.n, k + 1);
        EXPECT(o.at[k] - t >= 98 * WEFT_MS);
    }
    weft_time took = weft_now() - t0;
    worker_stop(&w);
    if (took >= 5 * WEFT_SEC)
        fprintf(stderr, "ten jobs delayed 100 ms one after the other took %.1f s\n",
                (double)took / WEFT_SEC);
    /* under a sanitizer (TSan: 6.4 s once in CI) time says nothing; the
     * plain build keeps the bound */
    if (!getenv("WEFT_UNDER_SANITIZER"))
        EXPECT(took < 5 * WEFT_SEC);
    return weft_queue_close(q);
}

static void test_idle_worker_wakes_when_due(void **state)
{
    RUN(idle_worker_wakes_when_due, *state);
}

/* ---- failures ------------------------------------------------------------ */

struct flaky {
    weft_queue *q;
    int fail_first;                 /* runs that fail before one succeeds */
    int calls, attempts[16];
    weft_time at[16];
    int seen_attempts, seen_state;  /* get() from inside the second run */
    char seen_error[64];
};

static int flaky_fn(const weft_job *job, void *ctx)
{
    struct flaky *f = ctx;
    if (f->calls < 16) {
        f->attempts[f->calls] = job->attempt;
        f->at[f->calls] = weft_now();
    }
    f->calls++;
    EXPECT_EQ(job->max_attempts, 5);
    if (job->attempt == 2) {
        weft_job_info i;
        EXPECT_EQ(weft_queue_get(f->q, job->id, &i), 0);
        f->seen_attempts = i.attempts;
        f->seen_state = i.state;
        snprintf(f->seen_error, sizeof f->seen_error, "%s", i.last_error ? i.last_error : "");
        weft_job_info_free(&i);
    }
    if (f->calls <= f->fail_first) {
        char msg[32];
        snprintf(msg, sizeof msg, "boom %d", job->attempt);
        EXPECT_EQ(weft_job_set_error(job, msg), 0);
        return -EIO;
    }
    return 0;
}

struct always {
    int calls, max_seen;
    bool heal;                      /* succeed from now on */
    int healed_attempt;
};

static int always_fn(const weft_job *job, void *ctx)
{
    struct always *a = ctx;
    a->calls++;
    a->max_seen = job->max_attempts;
    if (a->heal) {
        a->healed_attempt = job->attempt;
        return 0;
    }
    char msg[48];
    snprintf(msg, sizeof msg, "always fails: attempt %d", job->attempt);
    weft_job_set_error(job, msg);
    return -ECONNREFUSED;
}

static int plain_fn(const weft_job *job, void *ctx)
{
    (void)job;
    ((struct counts *)ctx)->calls++;
    return -EIO;
}

static int retries(void *arg)
{
    struct tmpdb *d = arg;
    weft_queue_opts qo = { .backoff = 50 * WEFT_MS, .backoff_max = WEFT_SEC };
    weft_queue *q = qopen(d->url, &qo);
    if (!q)
        return -1;
    struct flaky f = { .q = q, .fail_first = 2 };
    struct always a = { 0 };
    struct counts plain = { 0 }, fatal = { 0 };
    weft_job_handler h[] = {
        { "flaky", flaky_fn, &f },
        { "always", always_fn, &a },
        { "plain", plain_fn, &plain },
        { "fatal", dead_fn, &fatal },
    };
    weft_job_id fid = enqueue(q, "q", "flaky", NULL, NULL);
    weft_job_id aid = enqueue(q, "q", "always", NULL, &(weft_job_opts){ .max_attempts = 3 });
    weft_job_id pid = enqueue(q, "q", "plain", NULL, &(weft_job_opts){ .max_attempts = 1 });
    weft_job_id did = enqueue(q, "q", "fatal", NULL, NULL);
    weft_job_id idle = enqueue(q, "elsewhere", "flaky", NULL, NULL);
    struct worker w = { .q = q, .queue = "q", .h = h, .nh = 4, .concurrency = 4 };
    worker_start(&w);
    WAIT_UNTIL(job_state(q, fid) == WEFT_JOB_DONE && job_state(q, aid) == WEFT_JOB_DEAD &&
               job_state(q, pid) == WEFT_JOB_DEAD && job_state(q, did) == WEFT_JOB_DEAD);

    /* failed twice, then done; attempts counted, backoff doubled (±25 %) */
    EXPECT_EQ(f.calls, 3);
    for (int k = 0; k < 3; k++)
        EXPECT_EQ(f.attempts[k], k + 1);
    EXPECT(f.at[1] - f.at[0] >= 37 * WEFT_MS);
    EXPECT(f.at[2] - f.at[1] >= 75 * WEFT_MS);
    EXPECT_EQ(f.seen_attempts, 2);
    EXPECT_EQ(f.seen_state, WEFT_JOB_RUNNING);
    EXPECT(!strcmp(f.seen_error, "boom 1"));
    weft_job_info i = job_get(q, fid);
    EXPECT_EQ(i.state, WEFT_JOB_DONE);
    EXPECT_EQ(i.attempts, 3);
    EXPECT(i.finished_ms >= i.created_ms);
    weft_job_info_free(&i);

    /* dead after its max_attempts, with the last run's error */
    EXPECT_EQ(a.calls, 3);
    EXPECT_EQ(a.max_seen, 3);
    i = job_get(q, aid);
    EXPECT_EQ(i.attempts, 3);
    EXPECT(i.last_error && !strcmp(i.last_error, "always fails: attempt 3"));
    EXPECT(i.finished_ms > 0);
    EXPECT(i.result == NULL);
    weft_job_info_free(&i);

    /* no weft_job_set_error: the code's message */
    EXPECT_EQ(plain.calls, 1);
    i = job_get(q, pid);
    EXPECT_EQ(i.attempts, 1);
    if (!has(i.last_error, weft_strerror(-EIO)))
        fprintf(stderr, "last_error of -EIO: %s\n", i.last_error ? i.last_error : "(null)");
    EXPECT(has(i.last_error, weft_strerror(-EIO)));
    weft_job_info_free(&i);

    /* -WEFT_EJOB_DEAD: dead at the first run */
    EXPECT_EQ(fatal.calls, 1);
    i = job_get(q, did);
    EXPECT_EQ(i.attempts, 1);
    EXPECT(has(i.last_error, "gave up"));
    weft_job_info_free(&i);

    /* retry: a dead job runs again with fresh attempts (the worker is idle) */
    a.heal = true;
    EXPECT_EQ(weft_queue_retry(q, aid), 0);
    i = job_get(q, aid);
    EXPECT(i.state == WEFT_JOB_QUEUED || i.state == WEFT_JOB_RUNNING || i.state == WEFT_JOB_DONE);
    EXPECT(i.state != WEFT_JOB_QUEUED || i.attempts == 0);
    weft_job_info_free(&i);
    WAIT_UNTIL(job_state(q, aid) == WEFT_JOB_DONE);
    EXPECT_EQ(a.calls, 4);
    EXPECT_EQ(a.healed_attempt, 1);
    worker_stop(&w);
    i = job_get(q, aid);
    EXPECT_EQ(i.state, WEFT_JOB_DONE);
    EXPECT_EQ(i.attempts, 1);
    weft_job_info_free(&i);

    /* retry of what is not dead */
    EXPECT_EQ(weft_queue_retry(q, aid), -EINVAL);         /* done */
    EXPECT_EQ(weft_queue_retry(q, idle), -EINVAL);        /* queued */
    EXPECT_EQ(weft_queue_retry(q, 1000000), -ENOENT);
    EXPECT_EQ(job_state(q, idle), WEFT_JOB_QUEUED);
    EXPECT_EQ(weft_queue_close(q), 0);
    return 0;
}

static void test_retries(void **state)
{
    RUN(retries, *state);
}

/* ---- results ------------------------------------------------------------- */

struct result_ctx {
    int calls, bad_rc;
    char payload[64], queue[16], type[16];
};

static int result_fn(const weft_job *job, void *ctx)
{
    struct result_ctx *r = ctx;
    r->calls++;
    snprintf(r->payload, sizeof r->payload, "%s", job->payload);
    snprintf(r->queue, sizeof r->queue, "%s", job->queue);
    snprintf(r->type, sizeof r->type, "%s", job->type);
    r->bad_rc = weft_job_set_result(job, "{nope");
    return weft_job_set_result(job, "{\"sum\":3,\"items\":[1,2]}");
}

static int result_then_fail_fn(const weft_job *job, void *ctx)
{
    ((struct result_ctx *)ctx)->calls++;
    EXPECT_EQ(weft_job_set_result(job, "{\"partial\":true}"), 0);
    return -WEFT_EJOB_DEAD;
}

static int results(void *arg)
{
    struct tmpdb *d = arg;
    weft_queue *q = qopen(d->url, NULL);
    if (!q)
        return -1;
    struct result_ctx r = { 0 }, r2 = { 0 };
    weft_job_handler h[] = { { "sum", result_fn, &r }, { "half", result_then_fail_fn, &r2 } };
    weft_job_id id = enqueue(q, "rq", "sum", "{\"a\":1,\"b\":2}", NULL);
    weft_job_id id2 = enqueue(q, "rq", "half", NULL, NULL);
    struct worker w = { .q = q, .queue = "rq", .h = h, .nh = 2, .concurrency = 2 };
    worker_start(&w);
    WAIT_UNTIL(r.calls == 1 && r2.calls == 1);
    worker_stop(&w);
    EXPECT(!strcmp(r.payload, "{\"a\":1,\"b\":2}"));
    EXPECT(!strcmp(r.queue, "rq"));
    EXPECT(!strcmp(r.type, "sum"));
    EXPECT_EQ(r.bad_rc, -EINVAL);
    weft_job_info i = job_get(q, id);
    EXPECT_EQ(i.state, WEFT_JOB_DONE);
    EXPECT(i.result && !strcmp(i.result, "{\"sum\":3,\"items\":[1,2]}"));
    EXPECT(i.last_error == NULL);
    weft_job_info_free(&i);
    /* a result is kept only when the job succeeds */
    i = job_get(q, id2);
    EXPECT_EQ(i.state, WEFT_JOB_DEAD);
    EXPECT(i.result == NULL);
    weft_job_info_free(&i);
    EXPECT_EQ(weft_queue_close(q), 0);
    return 0;
}

static void test_results(void **state)
{
    RUN(results, *state);
}

/* ---- what no handler can run --------------------------------------------- */

/* SQLite: finds the table with a payload column, the job by its rowid. */
static int corrupt_sqlite(const char *path, weft_job_id id)
{
    sqlite3 *db;
    if (sqlite3_open(path, &db) != SQLITE_OK)
        return -1;
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt *st;
    int done = -1;
    sqlite3_prepare_v2(db,
                       "SELECT m.name FROM sqlite_master m, pragma_table_info(m.name) c "
                       "WHERE m.type = 'table' AND c.name = 'payload'",
                       -1, &st, NULL);
    while (done < 0 && sqlite3_step(st) == SQLITE_ROW) {
        char *sql = sqlite3_mprintf("UPDATE \"%w\" SET payload = '{\"broken' WHERE rowid = %lld",
                                    (const char *)sqlite3_column_text(st, 0), (long long)id);
        int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
        sqlite3_free(sql);
        if (rc == SQLITE_CONSTRAINT)
            done = 0;
        else if (rc == SQLITE_OK && sqlite3_changes(db) == 1)
            done = 1;
        else if (rc != SQLITE_OK)
            fprintf(stderr, "corrupt_payload: %s\n", sqlite3_errmsg(db));
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return done;
}

/* Redis: the hash of the job is the one key "weft:..." whose field payload
 * holds the job's (unique) payload was. */
static int corrupt_redis(const char *url, const char *was)
{
#if WEFT_HAVE_REDIS
    weft_redis *r = weft_redis_new(url, NULL);
    char cursor[32] = "0";
    int found = 0;
    if (!r)
        return -1;
    do {
        weft_redis_reply *keys = NULL;
        int rc = weft_redis_commandf(r, &keys, "SCAN %s MATCH weft:* COUNT 1000", cursor);
        if (rc || keys->type != WEFT_REDIS_ARRAY || keys->elements != 2) {
            fprintf(stderr, "corrupt_payload: SCAN: %s\n", weft_strerror(rc));
            weft_redis_reply_free(keys);
            found = -1;
            break;
        }
        snprintf(cursor, sizeof cursor, "%s", keys->element[0].str);
        for (size_t k = 0; k < keys->element[1].elements; k++) {
            const char *key = keys->element[1].element[k].str;
            weft_redis_reply *v = NULL;
            if (weft_redis_commandf(r, &v, "HGET %s payload", key) == 0 &&
                v->type == WEFT_REDIS_STRING && !strcmp(v->str, was)) {
                weft_redis_reply *set = NULL;
                if (weft_redis_commandf(r, &set, "HSET %s payload %s", key, "{\"broken") == 0)
                    found++;
                weft_redis_reply_free(set);
            }
            weft_redis_reply_free(v);
        }
        weft_redis_reply_free(keys);
    } while (strcmp(cursor, "0") != 0);
    weft_redis_close(r, WEFT_SEC);
    if (found != 1)
        fprintf(stderr, "corrupt_payload: %d hashes hold the payload %s\n", found, was);
    return found == 1 ? 1 : -1;
#else
    (void)url;
    (void)was;
    return -1;
#endif
}

/* PostgreSQL: the table of schema weft_queue with columns id and payload;
 * a json or jsonb column (22P02) or a CHECK (23514) refuses it. */
static int corrupt_pg(const char *url, weft_job_id id)
{
#if WEFT_HAVE_PG
    weft_pg *db = weft_pg_new(url, &(weft_pg_opts){ .min_size = 1, .max_size = 1 });
    weft_pg_result r;
    int done = -1;
    if (!db)
        return -1;
    int rc = weft_pg_query(db, &r,
                           "SELECT c.table_name FROM information_schema.columns c "
                           "JOIN information_schema.columns i USING (table_schema, table_name) "
                           "WHERE c.table_schema = 'weft_queue' AND c.column_name = 'payload' "
                           "AND i.column_name = 'id'",
                           0, NULL);
    if (rc)
        fprintf(stderr, "corrupt_payload: %s\n", r.error);
    for (int row = 0; rc == 0 && row < r.nrows && done < 0; row++) {
        const char *table = NULL;
        char sql[300];
        weft_pg_result u;
        weft_pg_get_text(&r, row, 0, &table, NULL);
        snprintf(sql, sizeof sql,
                 "UPDATE weft_queue.\"%s\" SET payload = '{\"broken' WHERE id = $1", table);
        int urc = weft_pg_query(db, &u, sql, 1, (weft_pg_val[]){ WEFT_PG_INT(id) });
        const weft_pg_error_info *e = weft_pg_error(&u);
        if (urc == 0 && u.affected == 1)
            done = 1;
        else if (urc == -WEFT_EPG && e && e->sqlstate &&
                 (!strcmp(e->sqlstate, "22P02") || !strcmp(e->sqlstate, "23514")))
            done = 0;
        else if (urc)
            fprintf(stderr, "corrupt_payload: %s\n", u.error);
        weft_pg_result_free(&u);
    }
    weft_pg_result_free(&r);
    weft_pg_close(db, WEFT_SEC);
    return done;
#else
    (void)url;
    (void)id;
    return -1;
#endif
}

/* Overwrites a stored job's payload behind the API's back with text that is
 * not JSON, as another program writing the store could (was: its payload
 * now, unique among the stored ones). 1 done, 0 when the store refuses it,
 * -1 on failure. */
static int corrupt_payload(const struct tmpdb *d, weft_job_id id, const char *was)
{
    switch (qbackend()) {
    case QB_REDIS:
        return corrupt_redis(d->url, was);
    case QB_PG:
        return corrupt_pg(d->url, id);
    default:
        return corrupt_sqlite(d->path, id);
    }
}

static int unknown_and_invalid(void *arg)
{
    struct tmpdb *d = arg;
    weft_queue *q = qopen(d->url, NULL);
    if (!q)
        return -1;
    weft_job_id a = enqueue(q, "q", "known", NULL, NULL);
    weft_job_id mystery = enqueue(q, "q", "mystery-type", "{\"x\":1}", NULL);
    weft_job_id broken = enqueue(q, "q", "known", "{\"fine\":true}", NULL);
    weft_job_id b = enqueue(q, "q", "known", NULL, NULL);
    int corrupted = corrupt_payload(d, broken, "{\"fine\":true}");
    EXPECT(corrupted >= 0);
    if (corrupted == 0)
        fprintf(stderr, "skipped the invalid payload: the schema refuses it\n");

    struct counts c = { 0 };
    weft_job_handler h = { "known", ok_fn, &c };
    struct worker w = { .q = q, .queue = "q", .h = &h, .nh = 1, .concurrency = 2 };
    worker_start(&w);
    WAIT_UNTIL(job_state(q, a) == WEFT_JOB_DONE && job_state(q, b) == WEFT_JOB_DONE &&
               job_state(q, mystery) == WEFT_JOB_DEAD &&
               (corrupted != 1 || job_state(q, broken) == WEFT_JOB_DEAD));
    /* the worker goes on */
    weft_job_id after = enqueue(q, "q", "known", NULL, NULL);
    WAIT_UNTIL(job_state(q, after) == WEFT_JOB_DONE);
    EXPECT(!w.returned);
    worker_stop(&w);

    weft_job_info i = job_get(q, mystery);
    EXPECT_EQ(i.state, WEFT_JOB_DEAD);
    if (!has(i.last_error, "mystery-type"))
        fprintf(stderr, "unknown type's last_error: %s\n", i.last_error ? i.last_error : "(null)");
    EXPECT(has(i.last_error, "mystery-type"));
    EXPECT(i.finished_ms > 0);
    weft_job_info_free(&i);
    if (corrupted == 1) {
        i = job_get(q, broken);
        EXPECT_EQ(i.state, WEFT_JOB_DEAD);
        if (!has(i.last_error, "json") && !has(i.last_error, "payload"))
            fprintf(stderr, "broken payload's last_error: %s\n",
                    i.last_error ? i.last_error : "(null)");
        EXPECT(has(i.last_error, "json") || has(i.last_error, "payload"));
        weft_job_info_free(&i);
        EXPECT_EQ(c.calls, 3);                          /* never handed to the handler */
    }
    EXPECT_EQ(job_state(q, a), WEFT_JOB_DONE);
    EXPECT_EQ(weft_queue_close(q), 0);
    return 0;
}

static void test_unknown_type_and_invalid_payload(void **state)
{
    RUN(unknown_and_invalid, *state);
}

/* ---- job timeout --------------------------------------------------------- */

struct sleepy {
    int calls, rcs[4];
    weft_time took[4];
};

static int sleepy_fn(const weft_job *job, void *ctx)
{
    (void)job;
    struct sleepy *s = ctx;
    weft_time t = weft_now();
    int rc = weft_sleep(10 * WEFT_SEC);
    if (s->calls < 4) {
        s->rcs[s->calls] = rc;
        s->took[s->calls] = weft_now() - t;
    }
    s->calls++;
    return 0;                       /* still a failure: it ran past job_timeout */
}

static int quick_fn(const weft_job *job, void *ctx)
{
    (void)job;
    ((struct counts *)ctx)->calls++;
    return weft_sleep(10 * WEFT_MS);
}

static int job_timeout(void *arg)
{
    struct tmpdb *d = arg;
    weft_queue_opts qo = { .job_timeout = 100 * WEFT_MS, .backoff = 10 * WEFT_MS,
                           .max_attempts = 2 };
    weft_queue *q = qopen(d->url, &qo);
    if (!q)
        return -1;
    struct sleepy s = { 0 };
    struct counts c = { 0 };
    weft_job_handler h[] = { { "sleepy", sleepy_fn, &s }, { "quick", quick_fn, &c } };
    weft_job_id id = enqueue(q, "q", "sleepy", NULL, NULL);
    weft_job_id ok = enqueue(q, "q", "quick", NULL, NULL);
    struct worker w = { .q = q, .queue = "q", .h = h, .nh = 2, .concurrency = 2 };
    worker_start(&w);
    WAIT_UNTIL(job_state(q, id) == WEFT_JOB_DEAD && job_state(q, ok) == WEFT_JOB_DONE);
    worker_stop(&w);
    EXPECT_EQ(s.calls, 2);
    for (int k = 0; k < 2; k++) {
        EXPECT_EQ(s.rcs[k], -ETIMEDOUT);
        EXPECT(s.took[k] >= 50 * WEFT_MS);     /* not cut short (the timeout may run from the claim) */
    }
    weft_job_info i = job_get(q, id);
    EXPECT_EQ(i.state, WEFT_JOB_DEAD);
    EXPECT_EQ(i.attempts, 2);
    EXPECT(i.last_error != NULL);
    weft_job_info_free(&i);
    EXPECT_EQ(c.calls, 1);
    EXPECT_EQ(weft_queue_close(q), 0);
    return 0;
}

static void test_job_timeout(void **state)
{
    RUN(job_timeout, *state);
}

/* ---- heartbeats ---------------------------------------------------------- */

struct longrun {
    weft_queue *q;
    int calls, running, finished;
    int mid_state, mid_attempts;
};

static int long_fn(const weft_job *job, void *ctx)
{
    struct longrun *l = ctx;
    l->calls++;
    l->running++;
    EXPECT_EQ(l->running, 1);
    /* 1.5 s, five times the lease */
    for (int k = 0; k < 15; k++)
        EXPECT_EQ(weft_sleep(100 * WEFT_MS), 0);
    weft_job_info i;
    EXPECT_EQ(weft_queue_get(l->q, job->id, &i), 0);
    l->mid_state = i.state;         /* still leased: RUNNING, not QUEUED */
    l->mid_attempts = i.attempts;
    weft_job_info_free(&i);
    l->running--;
    l->finished++;
    return 0;
}

static int heartbeats(void *arg)
{
    struct tmpdb *d = arg;
    weft_queue_opts qo = { .lease = 300 * WEFT_MS };
    weft_queue *q1 = qopen(d->url, &qo), *q2 = qopen(d->url, &qo);
    if (!q1 || !q2)
        return -1;
    struct longrun l = { .q = q1 };
    weft_job_handler h = { "long", long_fn, &l };
    weft_job_id id = enqueue(q1, "q", "long", NULL, NULL);
    /* two workers on two handles: a lapsed lease would hand the job to the other */
    struct worker w1 = { .q = q1, .queue = "q", .h = &h, .nh = 1, .concurrency = 2 };
    struct worker w2 = { .q = q2, .queue = "q", .h = &h, .nh = 1, .concurrency = 2 };
    worker_start(&w1);
    worker_start(&w2);
    WAIT_S(l.finished == 1, 30);
    worker_stop(&w1);
    worker_stop(&w2);
    EXPECT_EQ(l.calls, 1);
    EXPECT_EQ(l.finished, 1);
    EXPECT_EQ(l.mid_state, WEFT_JOB_RUNNING);
    EXPECT_EQ(l.mid_attempts, 1);
    weft_job_info i = job_get(q1, id);
    EXPECT_EQ(i.state, WEFT_JOB_DONE);
    EXPECT_EQ(i.attempts, 1);
    weft_job_info_free(&i);
    EXPECT_EQ(weft_queue_close(q1), 0);
    EXPECT_EQ(weft_queue_close(q2), 0);
    return 0;
}

static void test_heartbeats(void **state)
{
    RUN(heartbeats, *state);
}

/* ---- lease expiry after kill -9 ------------------------------------------ */

struct lease_ids {
    const char *url;
    weft_job_id again, once;        /* max_attempts 5 and 1 */
};

static int lease_enqueue(void *arg)
{
    struct lease_ids *l = arg;
    weft_queue *q = qopen(l->url, NULL);
    if (!q)
        return -1;
    l->again = enqueue(q, "q", "block", NULL, NULL);
    l->once = enqueue(q, "q", "block", NULL, &(weft_job_opts){ .max_attempts = 1 });
    return weft_queue_close(q);
}

struct redo {
    int calls, attempt;
    weft_job_id id;
};

static int redo_fn(const weft_job *job, void *ctx)
{
    struct redo *r = ctx;
    r->calls++;
    r->attempt = job->attempt;
    r->id = job->id;
    return 0;
}

static int lease_recover(void *arg)
{
    struct lease_ids *l = arg;
    weft_queue_opts qo = { .lease = 400 * WEFT_MS };
    weft_queue *q = qopen(l->url, &qo);
    if (!q)
        return -1;
    /* leased by the dead worker until its lease runs out */
    int st = job_state(q, l->again);
    EXPECT(st == WEFT_JOB_RUNNING || st == WEFT_JOB_QUEUED);
    WAIT_S(job_state(q, l->again) == WEFT_JOB_QUEUED, 10);
    EXPECT_EQ(job_state(q, l->again), WEFT_JOB_QUEUED);

    struct redo r = { 0 };
    weft_job_handler h = { "block", redo_fn, &r };
    struct worker w = { .q = q, .queue = "q", .h = &h, .nh = 1, .concurrency = 2 };
    worker_start(&w);
    WAIT_S(job_state(q, l->again) == WEFT_JOB_DONE && job_state(q, l->once) == WEFT_JOB_DEAD, 20);
    worker_stop(&w);
    /* run again as its second attempt; the max_attempts 1 job not at all */
    EXPECT_EQ(r.calls, 1);
    EXPECT_EQ(r.id, l->again);
    EXPECT_EQ(r.attempt, 2);
    weft_job_info i = job_get(q, l->again);
    EXPECT_EQ(i.state, WEFT_JOB_DONE);
    EXPECT_EQ(i.attempts, 2);
    weft_job_info_free(&i);
    i = job_get(q, l->once);
    EXPECT_EQ(i.state, WEFT_JOB_DEAD);
    EXPECT_EQ(i.attempts, 1);
    if (!has(i.last_error, "lease"))
        fprintf(stderr, "expired lease's last_error: %s\n", i.last_error ? i.last_error : "(null)");
    EXPECT(has(i.last_error, "lease"));
    weft_job_info_free(&i);
    return weft_queue_close(q);
}

static void test_lease_expiry(void **state)
{
    struct tmpdb *d = *state;
    struct lease_ids l = { .url = d->url };
    RUN(lease_enqueue, &l);
    /* a worker in another process claims both jobs, then dies */
    int fd;
    pid_t pid = child_start("lease", d->url, CHILD_PLAIN, &fd);
    assert_true(pid > 0);
    char buf[8];
    size_t n = read_bounded(fd, buf, sizeof buf, 2, 30);
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    close(fd);
    assert_int_equal(n, 2);                     /* both handlers had started */
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    RUN(lease_recover, &l);
}

/* ---- graceful stop ------------------------------------------------------- */

struct stopper {
    weft_event gate;                /* lets the short jobs finish */
    int started, short_done, long_rc, long_calls;
    weft_time long_end;
};

static int short_fn(const weft_job *job, void *ctx)
{
    (void)job;
    struct stopper *s = ctx;
    s->started++;
    int rc = weft_event_wait(&s->gate);
    if (rc == 0)
        s->short_done++;
    return rc;
}

static int long_sleep_fn(const weft_job *job, void *ctx)
{
    (void)job;
    struct stopper *s = ctx;
    s->started++;
    s->long_calls++;
    s->long_rc = weft_sleep(30 * WEFT_SEC);
    s->long_end = weft_now();
    return s->long_rc;
}

static void *stop_thread(void *q)
{
    weft_queue_stop(q);
    return NULL;
}

/* with_late: one more job waits for a slot, which must not be filled once
 * weft_queue_stop has returned */
static int graceful_stop_case(struct tmpdb *d, bool with_late)
{
    weft_queue_opts qo = { .shutdown_grace = 300 * WEFT_MS };
    weft_queue *q = qopen(d->url, &qo);
    if (!q)
        return -1;
    struct stopper s = { .long_rc = 1 };
    weft_event_init(&s.gate);
    weft_job_handler h[] = { { "short", short_fn, &s }, { "long", long_sleep_fn, &s } };
    weft_job_id shorts[3], lid;
    for (int k = 0; k < 3; k++)
        shorts[k] = enqueue(q, "q", "short", NULL, NULL);
    lid = enqueue(q, "q", "long", NULL, NULL);
    struct worker w = { .q = q, .queue = "q", .h = h, .nh = 2, .concurrency = 4 };
    worker_start(&w);
    WAIT_UNTIL(s.started == 4);
    EXPECT_EQ(s.started, 4);
    EXPECT_EQ(weft_queue_close(q), -EBUSY);
    weft_queue_stats st = stats(q, "q");
    EXPECT_EQ(st.running, 4);
    weft_job_id late = with_late ? enqueue(q, "q", "short", NULL, NULL) : 0;

    pthread_t t;
    weft_time t_stop = weft_now();
    EXPECT_EQ(pthread_create(&t, NULL, stop_thread, q), 0);
    pthread_join(t, NULL);
    weft_event_set(&s.gate);
    worker_join(&w);

    EXPECT_EQ(s.short_done, 3);
    for (int k = 0; k < 3; k++) {
        weft_job_info i = job_get(q, shorts[k]);
        EXPECT_EQ(i.state, WEFT_JOB_DONE);
        EXPECT_EQ(i.attempts, 1);
        weft_job_info_free(&i);
    }
    /* the long job: cancelled after the grace, its lease released, its run not counted */
    EXPECT_EQ(s.long_calls, 1);
    EXPECT_EQ(s.long_rc, -ECANCELED);
    EXPECT(s.long_end - t_stop >= 299 * WEFT_MS);
    weft_job_info i = job_get(q, lid);
    EXPECT_EQ(i.state, WEFT_JOB_QUEUED);
    EXPECT_EQ(i.attempts, 0);
    weft_job_info_free(&i);
    if (with_late) {
        i = job_get(q, late);
        EXPECT_EQ(i.state, WEFT_JOB_QUEUED);
        EXPECT_EQ(i.attempts, 0);
        weft_job_info_free(&i);
    }
    EXPECT_EQ(s.started, 4);
    st = stats(q, "q");
    EXPECT_EQ(st.running, 0);
    EXPECT_EQ(st.queued, with_late ? 2 : 1);
    EXPECT_EQ(st.done, 3);
    EXPECT_EQ(weft_queue_close(q), 0);
    return 0;
}

static int graceful_stop(void *arg)
{
    return graceful_stop_case(arg, false);
}

static void test_graceful_stop(void **state)
{
    RUN(graceful_stop, *state);
}

static int no_claim_after_stop(void *arg)
{
    return graceful_stop_case(arg, true);
}

static void test_no_claim_after_stop(void **state)
{
    RUN(no_claim_after_stop, *state);
}

/* weft_queue_work on the calling task, for calls that must return at once:
 * a scope keeps a wrong one from hanging the test */
static int work_bounded(weft_queue *q, const weft_job_handler *h, int nh, int concurrency)
{
    weft_scope sc;
    weft_scope_enter(&sc, 5 * WEFT_SEC);
    int rc = weft_queue_work(q, "q", h, nh, concurrency);
    weft_scope_exit(&sc);
    return rc;
}

static int stop_before_work_and_cancel(void *arg)
{
    struct tmpdb *d = arg;
    weft_queue *q = qopen(d->url, NULL);
    if (!q)
        return -1;
    struct stopper s = { 0 };
    weft_event_init(&s.gate);
    weft_job_handler h = { "short", short_fn, &s };
    weft_job_id a = enqueue(q, "q", "short", NULL, NULL);

    /* a stop with no worker makes the next one return at once, running nothing */
    weft_queue_stop(q);
    EXPECT_EQ(work_bounded(q, &h, 1, 1), 0);
    EXPECT_EQ(s.started, 0);
    EXPECT_EQ(job_state(q, a), WEFT_JOB_QUEUED);

    /* only the next one: this one works, until its task is cancelled */
    struct worker w = { .q = q, .queue = "q", .h = &h, .nh = 1, .concurrency = 1 };
    worker_start(&w);
    WAIT_UNTIL(s.started == 1);
    EXPECT_EQ(s.started, 1);
    EXPECT_EQ(weft_task_cancel(w.task), 0);
    weft_event_set(&s.gate);        /* the running job finishes within the grace */
    worker_join(&w);
    EXPECT_EQ(s.short_done, 1);
    EXPECT_EQ(job_state(q, a), WEFT_JOB_DONE);

    /* an idle worker is stopped from another thread */
    w.task = NULL;
    worker_start(&w);
    weft_sleep(20 * WEFT_MS);       /* let it find nothing to do */
    pthread_t t;
    EXPECT_EQ(pthread_create(&t, NULL, stop_thread, q), 0);
    worker_join(&w);
    pthread_join(t, NULL);
    EXPECT_EQ(s.started, 1);

    /* bad arguments */
    EXPECT_EQ(work_bounded(q, NULL, 0, 1), -EINVAL);
    EXPECT_EQ(work_bounded(q, &h, 1, 0), -EINVAL);
    EXPECT_EQ(work_bounded(q, &h, 0, 1), -EINVAL);
    EXPECT_EQ(weft_queue_close(q), 0);
    return 0;
}

static void test_stop_before_work_and_cancel(void **state)
{
    RUN(stop_before_work_and_cancel, *state);
}

/* ---- concurrency and stats ----------------------------------------------- */

struct conc {
    weft_event gate;
    int running, max_running, done;
};

static int gated_fn(const weft_job *job, void *ctx)
{
    (void)job;
    struct conc *c = ctx;
    c->running++;
    if (c->running > c->max_running)
        c->max_running = c->running;
    int rc = weft_event_wait(&c->gate);
    c->running--;
    c->done++;
    return rc;
}

static int noop_fn(const weft_job *job, void *ctx)
{
    (void)job;
    struct conc *c = ctx;
    c->running++;
    if (c->running > c->max_running)
        c->max_running = c->running;
    int rc = weft_yield();
    c->running--;
    c->done++;
    return rc;
}

static int concurrency(void *arg)
{
    struct tmpdb *d = arg;
    weft_queue *q = qopen(d->url, NULL);
    if (!q)
        return -1;
    struct conc c = { 0 };
    weft_event_init(&c.gate);
    weft_job_handler h[] = { { "gated", gated_fn, &c }, { "noop", noop_fn, &c } };
    for (int k = 0; k < 8; k++)
        enqueue(q, "q", "gated", NULL, NULL);
    enqueue(q, "q", "noop", NULL, &(weft_job_opts){ .delay = 3600 * WEFT_SEC });
    enqueue(q, "other", "noop", NULL, NULL);

    weft_sleep(20 * WEFT_MS);       /* let the queue's oldest job age */
    weft_queue_stats s = stats(q, "q");
    EXPECT_EQ(s.queued, 8);
    EXPECT_EQ(s.scheduled, 1);
    EXPECT_EQ(s.running + s.done + s.dead, 0);
    EXPECT(s.lag_s >= 0.015);
    s = stats(q, NULL);
    EXPECT_EQ(s.queued, 9);

    /* at most 4 at once, and 4 indeed */
    struct worker w = { .q = q, .queue = "q", .h = h, .nh = 2, .concurrency = 4 };
    worker_start(&w);
    WAIT_UNTIL(c.running == 4);
    EXPECT_EQ(c.running, 4);
    for (int k = 0; k < 20; k++)
        weft_yield();
    EXPECT_EQ(c.max_running, 4);
    s = stats(q, "q");
    EXPECT_EQ(s.running, 4);
    EXPECT_EQ(s.queued, 4);
    weft_event_set(&c.gate);
    WAIT_UNTIL(c.done == 8);

    /* many small jobs */
    int n = test_scale(2000);
    weft_job_spec specs[100];
    for (int k = 0; k < 100; k++)
        specs[k] = (weft_job_spec){ "q", "noop", NULL, { 0 } };
    for (int left = n; left > 0; left -= 100)
        EXPECT_EQ(weft_queue_enqueue_batch(q, specs, left < 100 ? left : 100, NULL), 0);
    WAIT_S(c.done == 8 + n, 60);
    worker_stop(&w);
    EXPECT_EQ(c.done, 8 + n);
    EXPECT(c.max_running <= 4);
    s = stats(q, "q");
    EXPECT_EQ(s.done, (uint64_t)(8 + n));
    EXPECT_EQ(s.queued, 0);
    EXPECT_EQ(s.running, 0);
    EXPECT_EQ(s.dead, 0);
    EXPECT_EQ(s.scheduled, 1);
    EXPECT(s.lag_s == 0);           /* nothing due */
    s = stats(q, "other");
    EXPECT_EQ(s.queued, 1);
    EXPECT_EQ(s.done, 0);
    EXPECT_EQ(weft_queue_close(q), 0);
    return 0;
}

static void test_concurrency_and_stats(void **state)
{
    RUN(concurrency, *state);
}

/* ---- list, purge, get ---------------------------------------------------- */

static void free_infos(weft_job_info *out, int n)
{
    for (int k = 0; k < n; k++)
        weft_job_info_free(&out[k]);
}

static int list_purge_get(void *arg)
{
    struct tmpdb *d = arg;
    weft_queue *q = qopen(d->url, NULL);
    if (!q)
        return -1;
    /* queue q: 3 done, 2 dead, 2 queued, 1 scheduled; queue other: 1 done */
    struct counts ok = { 0 }, bad = { 0 };
    weft_job_handler h[] = { { "ok", ok_fn, &ok }, { "bad", dead_fn, &bad } };
    weft_job_id ids[8];
    static const char *types[] = { "ok", "bad", "ok", "bad", "ok" };
    for (int k = 0; k < 5; k++)
        ids[k] = enqueue(q, "q", types[k], NULL, NULL);
    weft_job_id od = enqueue(q, "other", "ok", NULL, NULL);
    struct worker w = { .q = q, .queue = "q", .h = h, .nh = 2, .concurrency = 2 };
    worker_start(&w);
    WAIT_UNTIL(ok.calls == 3 && bad.calls == 2);
    worker_stop(&w);
    struct worker w2 = { .q = q, .queue = "other", .h = h, .nh = 2, .concurrency = 1 };
    worker_start(&w2);
    WAIT_UNTIL(ok.calls == 4);
    worker_stop(&w2);
    ids[5] = enqueue(q, "q", "x", NULL, NULL);
    ids[6] = enqueue(q, "q", "x", NULL, NULL);
    ids[7] = enqueue(q, "q", "x", NULL, &(weft_job_opts){ .delay = 3600 * WEFT_SEC });

    weft_job_info out[16];
    int n = weft_queue_list(q, "q", -1, 0, out, 16);
    EXPECT_EQ(n, 8);
    for (int k = 0; k < n && k < 8; k++)
        EXPECT_EQ(out[k].id, ids[k]);                   /* oldest first */
    if (n == 8) {
        EXPECT_EQ(out[0].state, WEFT_JOB_DONE);
        EXPECT_EQ(out[1].state, WEFT_JOB_DEAD);
        EXPECT(has(out[1].last_error, "gave up"));
        EXPECT_EQ(out[5].state, WEFT_JOB_QUEUED);
        EXPECT_EQ(out[7].state, WEFT_JOB_SCHEDULED);
        EXPECT(out[7].type && !strcmp(out[7].type, "x"));
    }
    free_infos(out, n);
    n = weft_queue_list(q, "q", WEFT_JOB_DONE, 0, out, 16);
    EXPECT_EQ(n, 3);
    for (int k = 0; k < n; k++)
        EXPECT_EQ(out[k].state, WEFT_JOB_DONE);
    free_infos(out, n);
    n = weft_queue_list(q, "q", WEFT_JOB_SCHEDULED, 0, out, 16);
    EXPECT_EQ(n, 1);
    free_infos(out, n);
    EXPECT_EQ(weft_queue_list(q, "q", WEFT_JOB_RUNNING, 0, out, 16), 0);
    n = weft_queue_list(q, "q", -1, ids[2], out, 16);   /* after */
    EXPECT_EQ(n, 5);
    if (n > 0)
        EXPECT_EQ(out[0].id, ids[3]);
    free_infos(out, n);
    n = weft_queue_list(q, "q", -1, ids[2], out, 2);    /* max */
    EXPECT_EQ(n, 2);
    if (n == 2)
        EXPECT_EQ(out[1].id, ids[4]);
    free_infos(out, n);
    n = weft_queue_list(q, NULL, -1, 0, out, 16);       /* every queue */
    EXPECT_EQ(n, 9);
    free_infos(out, n);
    EXPECT_EQ(weft_queue_list(q, "nope", -1, 0, out, 16), 0);
    EXPECT_EQ(weft_queue_list(q, "q", -1, 0, out, 0), 0);

    /* purge: only done and dead */
    EXPECT_EQ(weft_queue_purge(q, "q", WEFT_JOB_QUEUED), -EINVAL);
    EXPECT_EQ(weft_queue_purge(q, "q", WEFT_JOB_RUNNING), -EINVAL);
    EXPECT_EQ(weft_queue_purge(q, "q", WEFT_JOB_SCHEDULED), -EINVAL);
    EXPECT_EQ(weft_queue_purge(q, "q", 42), -EINVAL);
    EXPECT_EQ(weft_queue_purge(q, "q", WEFT_JOB_DONE), 3);
    EXPECT_EQ(weft_queue_purge(q, "q", WEFT_JOB_DONE), 0);
    EXPECT_EQ(weft_queue_purge(q, "q", -1), 2);
    EXPECT_EQ(job_state(q, ids[0]), -ENOENT);
    EXPECT_EQ(job_state(q, ids[1]), -ENOENT);
    EXPECT_EQ(job_state(q, ids[5]), WEFT_JOB_QUEUED);
    EXPECT_EQ(job_state(q, od), WEFT_JOB_DONE);
    EXPECT_EQ(weft_queue_purge(q, NULL, -1), 1);
    weft_queue_stats s = stats(q, NULL);
    EXPECT_EQ(s.queued, 2);
    EXPECT_EQ(s.scheduled, 1);
    EXPECT_EQ(s.done + s.dead, 0);

    /* get of a missing id zeroes out, so freeing it is safe */
    weft_job_info i;
    memset(&i, 0x5a, sizeof i);
    EXPECT_EQ(weft_queue_get(q, ids[0], &i), -ENOENT);
    EXPECT(i.queue == NULL && i.type == NULL && i.payload == NULL && i.result == NULL &&
           i.last_error == NULL);
    if (!i.queue && !i.type && !i.payload && !i.result && !i.last_error)
        weft_job_info_free(&i);
    weft_job_info zero = { 0 };
    weft_job_info_free(&zero);

    /* state names */
    for (int st = WEFT_JOB_QUEUED; st <= WEFT_JOB_DEAD; st++)
        EXPECT_EQ(weft_job_state_parse(weft_job_state_name(st)), st);
    EXPECT(!strcmp(weft_job_state_name(WEFT_JOB_SCHEDULED), "scheduled"));
    EXPECT(weft_job_state_name(5) == NULL);
    EXPECT(weft_job_state_name(-1) == NULL);
    EXPECT_EQ(weft_job_state_parse("bogus"), -EINVAL);
    EXPECT_EQ(weft_job_state_parse(NULL), -EINVAL);
    EXPECT_EQ(weft_queue_close(q), 0);
    return 0;
}

static void test_list_purge_get(void **state)
{
    RUN(list_purge_get, *state);
}

/* ---- storage errors ------------------------------------------------------ */

static int make_db(void *arg)
{
    weft_queue *q = qopen(arg, NULL);
    if (!q)
        return -1;
    enqueue(q, "q", "t", NULL, NULL);
    return weft_queue_close(q);
}

static int read_only_in_process(void *arg)
{
    weft_queue *q = NULL;
    EXPECT_EQ(weft_queue_open(&q, arg, NULL), -EACCES);
    return 0;
}

/* A read-only file is refused at open with -EACCES, both in a directory
 * where the user may create the -wal and -shm files and in one where it
 * may not. Root writes any file, so the opens run as nobody. */
static void test_read_only_file(void **state)
{
    struct tmpdb *d = *state;
    SQLITE_ONLY("file permissions");
    RUN(make_db, d->url);
    assert_int_equal(chmod(d->path, 0444), 0);
    if (geteuid() != 0) {
        assert_int_equal(chmod(d->dir, 0555), 0);
        RUN(read_only_in_process, d->url);
        assert_int_equal(chmod(d->dir, 0777), 0);
        RUN(read_only_in_process, d->url);
        chmod(d->dir, 0700);
        return;
    }
    static const mode_t dir_modes[] = { 0755, 0777 };
    for (int k = 0; k < 2; k++) {
        assert_int_equal(chmod(d->dir, dir_modes[k]), 0);
        char out[256];
        int status = child_run("ro", d->url, CHILD_NOBODY, out, sizeof out);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 3) {
            print_message("skipped: %s", out);
            break;
        }
        if (!strstr(out, "rc=-13\n"))
            fprintf(stderr, "read-only open, directory %o: %s (status %#x)\n", dir_modes[k], out,
                    status);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        assert_non_null(strstr(out, "rc=-13\n"));       /* -EACCES */
    }
    chmod(d->dir, 0700);
}

struct full_check {
    const char *url;
    long ok;
};

static int full_after(void *arg)
{
    struct full_check *f = arg;
    weft_queue *q = qopen(f->url, NULL);
    if (!q)
        return -1;
    /* every enqueue that returned 0 is there; the file works again */
    weft_queue_stats s = stats(q, "q");
    EXPECT(s.queued >= (uint64_t)f->ok);
    EXPECT(s.queued <= (uint64_t)f->ok + 1);
    weft_job_id id = enqueue(q, "q", "t", NULL, NULL);
    EXPECT_EQ(job_state(q, id), WEFT_JOB_QUEUED);
    return weft_queue_close(q);
}

/* Runs the "full" child (enqueues big payloads until one fails) and checks
 * that it ended well, with one of the codes allowed; *ok is how many
 * enqueues succeeded. Returns false when the setup was not possible. */
static bool run_full_child(const char *url, enum child_setup setup, int code1, int code2,
                           long *ok)
{
    char out[256];
    int status = child_run("full", url, setup, out, sizeof out);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 3) {
        print_message("skipped: %s", out);
        return false;
    }
    long rc = 0, queued = -1;
    int got = sscanf(out, "ok=%ld rc=%ld queued=%ld", ok, &rc, &queued);
    if (got != 3 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fprintf(stderr, "full child: status %#x, output: %s\n", status, out);
    assert_true(WIFEXITED(status));                 /* not a crash */
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(got, 3);
    assert_true(*ok >= 1);
    if (rc != code1 && rc != code2)
        fprintf(stderr, "enqueue on a full disk: %ld %s\n", rc, weft_strerror((int)rc));
    assert_true(rc == code1 || rc == code2);
    /* what was acknowledged is there (read by the child, which still sees the file) */
    assert_true(queued >= *ok && queued <= *ok + 1);
    return true;
}

/* A full disk: a 1 MiB tmpfs over the queue's directory; the child
 * enqueues big payloads until one fails with -ENOSPC, not a crash. */
static void test_full_disk(void **state)
{
    struct tmpdb *d = *state;
    SQLITE_ONLY("a file system that fills up");
    char dir[128], url[160];
    snprintf(dir, sizeof dir, "%s/small", d->dir);
    snprintf(url, sizeof url, "sqlite:%s/q.db", dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    long ok;
    run_full_child(url, CHILD_TMPFS, -ENOSPC, -ENOSPC, &ok);
    rmdir(dir);
}

/* A file-size limit (RLIMIT_FSIZE, SIGXFSZ ignored): writes fail with
 * EFBIG; the enqueue must say so (-EFBIG), and the file must work again
 * once the limit is gone. */
static void test_file_size_limit(void **state)
{
    struct tmpdb *d = *state;
    SQLITE_ONLY("a file-size limit (RLIMIT_FSIZE) on the queue's file");
    long ok;
    if (run_full_child(d->url, CHILD_FSIZE, -EFBIG, -EFBIG, &ok)) {
        struct full_check f = { d->url, ok };
        RUN(full_after, &f);
    }
}

/* ---- cross-process wake-up ----------------------------------------------- */

static int cross_process_wake(void *arg)
{
    struct tmpdb *d = arg;
    weft_queue *q = qopen(d->url, NULL);
    if (!q)
        return -1;
    struct counts c = { 0 };
    weft_job_handler h = { "wake", ok_fn, &c };
    struct worker w = { .q = q, .queue = "q", .h = &h, .nh = 1, .concurrency = 1 };
    worker_start(&w);
    weft_sleep(50 * WEFT_MS);       /* let the worker find the queue empty and go idle */
    int fd, status = -1;
    pid_t pid = child_start("enqueue", d->url, CHILD_PLAIN, &fd);
    EXPECT(pid > 0);
    WAIT_S(waitpid(pid, &status, WNOHANG) == pid, 30);
    EXPECT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    char out[64] = "";
    ssize_t n = read(fd, out, sizeof out - 1);
    out[n > 0 ? n : 0] = 0;
    close(fd);
    long long id = 0;
    EXPECT_EQ(sscanf(out, "id=%lld", &id), 1);
    /* the idle worker is woken by the other process's commit: it does not poll */
    WAIT_UNTIL(c.calls == 1);
    worker_stop(&w);
    EXPECT_EQ(c.calls, 1);
    EXPECT_EQ(c.last, id);
    EXPECT_EQ(job_state(q, id), WEFT_JOB_DONE);
    return weft_queue_close(q);
}

static void test_cross_process_wake(void **state)
{
    RUN(cross_process_wake, *state);
}

/* ---- loops and handlers -------------------------------------------------- */

/* Two loops (threads), a handle each on one file: one enqueues from many
 * tasks while the other works; every job runs once. A handle used from the
 * other loop is -EXDEV. */
struct two_loops {
    const char *url;
    _Atomic(weft_queue *) q0;
    atomic_int ran, checked;
    int n;
};

static int count_atomic_fn(const weft_job *job, void *ctx)
{
    (void)job;
    atomic_fetch_add(&((struct two_loops *)ctx)->ran, 1);
    return 0;
}

struct producer {
    weft_queue *q;
    int n;
};

static int produce(void *arg)
{
    struct producer *p = arg;
    for (int k = 0; k < p->n; k++)
        enqueue(p->q, "q", "t", NULL, NULL);
    return 0;
}

static int two_loops_fn(void *arg)
{
    struct two_loops *t = arg;
    weft_queue *q = qopen(t->url, NULL);
    if (!q)
        return -1;
    if (weft_loop_index() == 0) {
        atomic_store(&t->q0, q);
        weft_job_handler h = { "t", count_atomic_fn, t };
        struct worker w = { .q = q, .queue = "q", .h = &h, .nh = 1, .concurrency = 4 };
        worker_start(&w);
        WAIT_S(atomic_load(&t->ran) >= t->n && atomic_load(&t->checked), 60);
        worker_stop(&w);
        EXPECT_EQ(atomic_load(&t->ran), t->n);
        EXPECT_EQ(stats(q, "q").done, (uint64_t)t->n);
    } else {
        WAIT_S(atomic_load(&t->q0) != NULL, 10);
        weft_queue *q0 = atomic_load(&t->q0);
        weft_job_id id;
        EXPECT_EQ(weft_queue_enqueue(q0, "q", "t", NULL, NULL, &id), -EXDEV);
        EXPECT_EQ(weft_queue_close(q0), -EXDEV);
        atomic_store(&t->checked, 1);
        struct producer p = { q, t->n / 10 };
        weft_group *g = weft_group_new();
        for (int k = 0; k < 10; k++)
            weft_spawn(g, produce, &p, "producer");
        EXPECT_EQ(weft_group_wait(g), 0);
    }
    return weft_queue_close(q);
}

static void test_two_loops(void **state)
{
    struct tmpdb *d = *state;
    struct two_loops t = { .url = d->url, .n = test_scale(1000) / 10 * 10 };
    if (t.n == 0)
        t.n = 50;
    test_failures = 0;
    assert_int_equal(weft_run(2, two_loops_fn, &t), 0);
    assert_int_equal(test_failures, 0);
}

/* a handler that enqueues its follow-up on the worker's own handle */
struct chain {
    weft_queue *q;
    int parents, children;
};

static int parent_fn(const weft_job *job, void *ctx)
{
    struct chain *c = ctx;
    c->parents++;
    weft_job_id id;
    int rc = weft_queue_enqueue(c->q, job->queue, "child", job->payload, NULL, &id);
    EXPECT_EQ(rc, 0);
    return rc;
}

static int child_fn(const weft_job *job, void *ctx)
{
    (void)job;
    ((struct chain *)ctx)->children++;
    return 0;
}

static int enqueue_from_handler(void *arg)
{
    struct tmpdb *d = arg;
    weft_queue *q = qopen(d->url, NULL);
    if (!q)
        return -1;
    struct chain c = { .q = q };
    weft_job_handler h[] = { { "parent", parent_fn, &c }, { "child", child_fn, &c } };
    for (int k = 0; k < 20; k++)
        enqueue(q, "q", "parent", NULL, NULL);
    struct worker w = { .q = q, .queue = "q", .h = h, .nh = 2, .concurrency = 4 };
    worker_start(&w);
    WAIT_UNTIL(c.children == 20);
    worker_stop(&w);
    EXPECT_EQ(c.parents, 20);
    EXPECT_EQ(c.children, 20);
    weft_queue_stats s = stats(q, "q");
    EXPECT_EQ(s.done, 40);
    EXPECT_EQ(s.queued + s.running + s.dead, 0);
    return weft_queue_close(q);
}

static void test_enqueue_from_handler(void **state)
{
    RUN(enqueue_from_handler, *state);
}

/* ---- metrics ------------------------------------------------------------- */

struct once_flaky {
    int calls;
};

static int fails_once_fn(const weft_job *job, void *ctx)
{
    ((struct once_flaky *)ctx)->calls++;
    return job->attempt == 1 ? -EAGAIN : 0;
}

static bool metrics_have(const char *line)
{
    size_t n = weft_metrics_render(NULL, 0) + 1;
    char *buf = malloc(n);
    weft_metrics_render(buf, n);
    bool found = strstr(buf, line) != NULL;
    if (!found)
        fprintf(stderr, "metrics lack \"%s\":\n%s\n", line, buf);
    free(buf);
    return found;
}

static int metrics(void *arg)
{
    struct tmpdb *d = arg;
    weft_queue_opts qo = { .backoff = 10 * WEFT_MS };
    weft_queue *q = qopen(d->url, &qo);
    if (!q)
        return -1;
    struct counts ok = { 0 }, bad = { 0 };
    struct once_flaky fl = { 0 };
    weft_job_handler h[] = {
        { "ok", ok_fn, &ok }, { "bad", dead_fn, &bad }, { "flaky", fails_once_fn, &fl },
    };
    enqueue(q, "mq", "ok", NULL, NULL);
    enqueue(q, "mq", "ok", NULL, NULL);
    enqueue(q, "mq", "flaky", NULL, NULL);
    enqueue(q, "mq", "bad", NULL, NULL);
    struct worker w = { .q = q, .queue = "mq", .h = h, .nh = 3, .concurrency = 2 };
    worker_start(&w);
    WAIT_UNTIL(ok.calls == 2 && bad.calls == 1 && fl.calls == 2);
    worker_stop(&w);
    stats(q, "mq");
    EXPECT(metrics_have("weft_queue_jobs_total{queue=\"mq\",result=\"enqueued\"} 4\n"));
    EXPECT(metrics_have("weft_queue_jobs_total{queue=\"mq\",result=\"succeeded\"} 3\n"));
    EXPECT(metrics_have("weft_queue_jobs_total{queue=\"mq\",result=\"retried\"} 1\n"));
    EXPECT(metrics_have("weft_queue_jobs_total{queue=\"mq\",result=\"dead\"} 1\n"));
    EXPECT(metrics_have("weft_queue_running{queue=\"mq\"} 0\n"));
    EXPECT(metrics_have("weft_queue_lag_seconds{queue=\"mq\"}"));
    return weft_queue_close(q);
}

static void test_metrics(void **state)
{
    RUN(metrics, *state);
}

/* ---- the child side ------------------------------------------------------ */

static int block_fn(const weft_job *job, void *ctx)
{
    (void)job;
    (void)ctx;
    ssize_t n = write(1, "S", 1);   /* tells the parent this job is claimed */
    (void)n;
    weft_sleep(WEFT_FOREVER);       /* until SIGKILL */
    return 0;
}

static int child_lease(void *url)
{
    weft_queue_opts qo = { .lease = 400 * WEFT_MS };
    weft_queue *q = qopen(url, &qo);
    if (!q)
        return -1;
    weft_job_handler h = { "block", block_fn, NULL };
    return weft_queue_work(q, "q", &h, 1, 2);
}

static int child_full(void *url)
{
    weft_queue *q = qopen(url, NULL);
    if (!q)
        return -1;
    size_t big = 64 * 1024;
    char *payload = malloc(big + 16);
    strcpy(payload, "{\"x\":\"");
    memset(payload + 6, 'a', big);
    strcpy(payload + 6 + big, "\"}");
    long ok = 0;
    int rc = 0;
    for (int k = 0; k < 200 && rc == 0; k++) {
        weft_job_id id;
        rc = weft_queue_enqueue(q, "q", "t", payload, NULL, &id);
        if (rc == 0)
            ok++;
    }
    free(payload);
    weft_queue_stats s = { 0 };
    int src = weft_queue_stats_get(q, "q", &s);     /* reads still work */
    printf("ok=%ld rc=%d queued=%lld\n", ok, rc, src ? -1LL : (long long)s.queued);
    fflush(stdout);
    weft_queue_close(q);
    return 0;
}

static int child_ro(void *url)
{
    weft_queue *q = NULL;
    int rc = weft_queue_open(&q, url, NULL);
    printf("rc=%d\n", rc);
    fflush(stdout);
    if (rc == 0)
        weft_queue_close(q);
    return 0;
}

static int child_enqueue(void *url)
{
    weft_queue *q = qopen(url, NULL);
    if (!q)
        return -1;
    weft_job_id id = enqueue(q, "q", "wake", "{\"from\":\"child\"}", NULL);
    printf("id=%lld\n", (long long)id);
    fflush(stdout);
    return weft_queue_close(q);
}

static int child_main(const char *mode, char *url)
{
    static const struct {
        const char *mode;
        weft_fn fn;
    } modes[] = {
        { "lease", child_lease }, { "full", child_full }, { "ro", child_ro },
        { "enqueue", child_enqueue },
    };
    for (size_t k = 0; k < sizeof modes / sizeof *modes; k++)
        if (!strcmp(mode, modes[k].mode)) {
            int rc = weft_main(modes[k].fn, url);
            return rc || test_failures ? 1 : 0;
        }
    return 2;
}

int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "--child"))
        return child_main(argv[2], argv[3]);
#define T(name) cmocka_unit_test_setup_teardown(name, db_setup, db_teardown)
    const struct CMUnitTest tests[] = {
        T(test_open_errors),
        T(test_reopen_two_handles),
        T(test_enqueue_validation),
        T(test_idempotency),
        T(test_batch),
        T(test_ordering),
        T(test_idle_worker_wakes_when_due),
        T(test_retries),
        T(test_results),
        T(test_unknown_type_and_invalid_payload),
        T(test_job_timeout),
        T(test_heartbeats),
        T(test_lease_expiry),
        T(test_graceful_stop),
        T(test_no_claim_after_stop),
        T(test_stop_before_work_and_cancel),
        T(test_concurrency_and_stats),
        T(test_list_purge_get),
        T(test_read_only_file),
        T(test_full_disk),
        T(test_file_size_limit),
        T(test_cross_process_wake),
        T(test_two_loops),
        T(test_enqueue_from_handler),
        T(test_metrics),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
