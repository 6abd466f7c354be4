/*
 * Durable no-op jobs end to end, as the queue anchors measure them
 * (../shared/bench/anchors/queue/qbench.py): a producer process enqueues N
 * jobs while a worker process runs them; the rate is N over the time from
 * the first enqueue to the last job acknowledged (the worker stops after
 * its N-th job and commits every ack before it exits).
 *
 *   queue_jobs URL N [TASKS [BATCH [CONCURRENCY]]]
 *
 * The producer is this process: TASKS tasks (64) each enqueueing BATCH jobs
 * per call (1: one durable call per job, group-committed across the tasks).
 * The worker is this program again (queue_jobs --worker URL N CONCURRENCY),
 * started first and warmed with one job, like the anchors' workers. Pin
 * them with WORKER_CPUS / taskset. WORKERS=K starts K worker processes (as
 * if on K hosts; the curve of a server backend) sharing the count of jobs
 * run through a memfd, each stopping once all N ran. One JSON line: e2e
 * rate, enqueue rate, CPU per job of the producer and of the workers.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "weft.h"

static const char *url;
static long n_jobs, per_task, done_jobs;
static int tasks = 64, batch = 1, concurrency = 256;
static weft_queue *q;
static _Atomic long *shared_done;          /* all workers' count, in a memfd */

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu(int who)
{
    struct rusage u;
    getrusage(who, &u);
    return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

/* ---- the worker process ------------------------------------------------ */

static int noop(const weft_job *job, void *ctx)
{
    (void)ctx;
    if (strcmp(job->payload, "{\"warm\":1}") == 0) {
        fputs("ready\n", stdout);           /* the parent starts the clock after this */
        fflush(stdout);
        return 0;
    }
    if (shared_done)
        atomic_fetch_add(shared_done, 1);
    else if (++done_jobs == n_jobs)
        weft_queue_stop(q);
    return 0;
}

/* with several workers: stops this one once they all ran N */
static int all_done(void *arg)
{
    (void)arg;
    while (atomic_load(shared_done) < n_jobs)
        if (weft_sleep(WEFT_MS) < 0)
            return 0;
    weft_queue_stop(q);
    return 0;
}

static int worker(void *arg)
{
    (void)arg;
    int rc = weft_queue_open(&q, url, NULL);
    if (rc)
        return rc;
    weft_job_handler h[] = { { "noop", noop, NULL } };
    weft_group *g = shared_done ? weft_group_new() : NULL;
    if (g)
        weft_spawn(g, all_done, NULL, "all done");
    rc = weft_queue_work(q, "bench", h, 1, concurrency);
    if (g) {
        weft_group_cancel(g);
        weft_group_wait(g);
    }
    int rc2 = weft_queue_close(q);
    return rc ? rc : rc2;
}

/* ---- the producer ------------------------------------------------------ */

static int produce(void *arg)
{
    (void)arg;
    weft_job_spec *s = calloc((size_t)batch, sizeof *s);
    if (!s)
        return -ENOMEM;
    for (int i = 0; i < batch; i++)
        s[i] = (weft_job_spec){ "bench", "noop", "{}", { 0 } };
    int rc = 0;
    for (long left = per_task; left > 0 && !rc; left -= batch)
        rc = weft_queue_enqueue_batch(q, s, left < batch ? (int)left : batch, NULL);
    free(s);
    return rc;
}

static int producer(void *arg)
{
    double *t = arg;
    int rc = weft_queue_open(&q, url, NULL);
    if (rc)
        return rc;
    weft_group *g = weft_group_new();
    per_task = n_jobs / tasks;
    t[0] = mono();
    t[2] = cpu(RUSAGE_SELF);
    for (int i = 0; i < tasks && g; i++)
        weft_spawn(g, produce, NULL, "producer");
    rc = g ? weft_group_wait(g) : -ENOMEM;
    t[1] = mono();
    t[3] = cpu(RUSAGE_SELF);
    int rc2 = weft_queue_close(q);
    return rc ? rc : rc2;
}

static int warm(void *arg)
{
    (void)arg;
    int rc = weft_queue_open(&q, url, NULL);
    if (!rc)
        rc = weft_queue_enqueue(q, "bench", "noop", "{\"warm\":1}", NULL, NULL);
    weft_queue_close(q);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc >= 5 && strcmp(argv[1], "--worker") == 0) {
        url = argv[2];
        n_jobs = atol(argv[3]);
        concurrency = atoi(argv[4]);
        if (argc >= 6) {
            shared_done = mmap(NULL, sizeof *shared_done, PROT_READ | PROT_WRITE, MAP_SHARED,
                               atoi(argv[5]), 0);
            if (shared_done == MAP_FAILED)
                return 1;
        }
        return weft_main(worker, NULL) ? 1 : 0;
    }
    if (argc < 3) {
        fprintf(stderr, "usage: queue_jobs URL N [TASKS [BATCH [CONCURRENCY]]]\n");
        return 2;
    }
    url = argv[1];
    n_jobs = atol(argv[2]);
    if (argc > 3)
        tasks = atoi(argv[3]);
    if (argc > 4)
        batch = atoi(argv[4]);
    if (argc > 5)
        concurrency = atoi(argv[5]);
    if (n_jobs < tasks || tasks < 1 || batch < 1 || concurrency < 1)
        return 2;
    n_jobs = n_jobs / tasks * tasks;

    int workers = getenv("WORKERS") ? atoi(getenv("WORKERS")) : 1;
    if (workers < 1 || workers > 64)
        return 2;
    char nbuf[32], cbuf[16], fdbuf[16] = "";
    snprintf(nbuf, sizeof nbuf, "%ld", n_jobs);
    snprintf(cbuf, sizeof cbuf, "%d", concurrency);
    if (workers > 1) {                    /* the shared count: inherited across exec */
        int fd = memfd_create("queue_jobs", 0);
        if (fd < 0 || ftruncate(fd, sizeof(long)) < 0)
            return 1;
        snprintf(fdbuf, sizeof fdbuf, "%d", fd);
    }
    int out[2];
    if (pipe(out) < 0)
        return 1;
    const char *cpus = getenv("WORKER_CPUS");
    pid_t pids[64];
    for (int w = 0; w < workers; w++) {
        if ((pids[w] = fork()) != 0)
            continue;
        dup2(out[1], 1);
        close(out[0]);
        const char *fd = workers > 1 ? fdbuf : NULL;
        if (cpus)
            execlp("taskset", "taskset", "-c", cpus, argv[0], "--worker", url, nbuf, cbuf, fd,
                   (char *)NULL);
        else
            execl(argv[0], argv[0], "--worker", url, nbuf, cbuf, fd, (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    FILE *rd = fdopen(out[0], "r");
    char line[16] = { 0 };
    for (int w = 0; w < workers; w++) {
        if (weft_main(warm, NULL))
            return 1;
        if (!fgets(line, sizeof line, rd) || strncmp(line, "ready", 5) != 0) {
            fprintf(stderr, "queue_jobs: a worker did not start\n");
            return 1;
        }
    }
    double t[4];
    int rc = weft_main(producer, t);
    int bad = 0;
    for (int w = 0; w < workers; w++) {
        int status;
        waitpid(pids[w], &status, 0);
        bad += !WIFEXITED(status) || WEXITSTATUS(status);
    }
    double t_end = mono();
    if (rc || bad) {
        fprintf(stderr, "queue_jobs: producer %d, %d workers failed\n", rc, bad);
        return 1;
    }
    double wcpu = cpu(RUSAGE_CHILDREN);
    printf("{\"n\": %ld, \"workers\": %d, \"tasks\": %d, \"batch\": %d, \"concurrency\": %d, \"e2e_s\": %.3f, "
           "\"e2e_rate\": %.0f, \"enqueue_rate\": %.0f, \"producer_us_job\": %.2f, "
           "\"worker_us_job\": %.2f}\n",
           n_jobs, workers, tasks, batch, concurrency, t_end - t[0], n_jobs / (t_end - t[0]),
           n_jobs / (t[1] - t[0]), (t[3] - t[2]) / n_jobs * 1e6, wcpu / n_jobs * 1e6);
    return 0;
}
