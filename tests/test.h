/*
 * Shared helpers for weft's cmocka tests.
 *
 * cmocka's assert_* longjmp out on failure, which must never happen from a
 * task's stack; inside tasks use EXPECT*, which record the failure and go
 * on, and let RUN() (on the main stack) assert that none was recorded.
 */
#ifndef WEFT_TEST_H
#define WEFT_TEST_H

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "weft.h"

static int test_failures __attribute__((unused));

#define EXPECT(c)                                                                  \
    do {                                                                           \
        if (!(c)) {                                                                \
            test_failures++;                                                       \
            fprintf(stderr, "%s:%d: expected %s\n", __FILE__, __LINE__, #c);       \
        }                                                                          \
    } while (0)

#define EXPECT_EQ(a, b)                                                            \
    do {                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                        \
        if (a_ != b_) {                                                            \
            test_failures++;                                                       \
            fprintf(stderr, "%s:%d: expected %s == %s, got %lld vs %lld\n",        \
                    __FILE__, __LINE__, #a, #b, a_, b_);                           \
        }                                                                          \
    } while (0)

/* Runs fn as the root task of a fresh loop; fails the cmocka test if the
 * root failed or any EXPECT inside did. */
#define RUN(fn, arg)                                                               \
    do {                                                                           \
        test_failures = 0;                                                         \
        assert_int_equal(weft_main((fn), (arg)), 0);                               \
        assert_int_equal(test_failures, 0);                                        \
    } while (0)

/* Polls cond every millisecond, for at most 10 s: waits for something the
 * loop does in the background without guessing how long it takes. */
#define WAIT_UNTIL(cond)                                                           \
    for (int wu_ = 0; !(cond) && wu_ < 10000; wu_++)                               \
        weft_sleep(WEFT_MS)

/* Scale factor for big tests: smaller under sanitizers and qemu. */
static inline int test_scale(int n)
{
    return getenv("WEFT_UNDER_SANITIZER") || getenv("WEFT_SMALL") ? n / 20 + 1 : n;
}

/* A log sink that keeps everything, for tests that check what was logged. */
static char test_log[65536];
static size_t test_log_len;
static pthread_mutex_t test_log_mu = PTHREAD_MUTEX_INITIALIZER;
static void test_log_sink(int level, const char *msg, void *ctx)
{
    (void)ctx;
    pthread_mutex_lock(&test_log_mu);
    int n = snprintf(test_log + test_log_len, sizeof test_log - test_log_len, "%s: %s\n",
                     weft_log_level_name(level), msg);
    if (n > 0 && test_log_len + n < sizeof test_log)
        test_log_len += n;
    pthread_mutex_unlock(&test_log_mu);
}

/* for logs written by other threads while the test runs */
static inline bool test_log_has(const char *s)
{
    pthread_mutex_lock(&test_log_mu);
    bool found = strstr(test_log, s) != NULL;
    pthread_mutex_unlock(&test_log_mu);
    return found;
}
static inline void test_log_capture(void)
{
    pthread_mutex_lock(&test_log_mu);
    test_log_len = 0;
    test_log[0] = 0;
    pthread_mutex_unlock(&test_log_mu);
    weft_log_set(test_log_sink, NULL, WEFT_LOG_DEBUG);
}

/* Runs fn(arg) in a child process whose stderr is captured; returns the
 * child's wait status and puts its stderr in out (NUL-terminated). */
static inline int run_in_child(void (*fn)(void *), void *arg, char *out, size_t size)
{
    int p[2];
    if (pipe(p) < 0)
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        dup2(p[1], 2);
        signal(SIGABRT, SIG_DFL);
        fn(arg);
        _exit(0);
    }
    close(p[1]);
    size_t len = 0;
    ssize_t n;
    while (len + 1 < size && (n = read(p[0], out + len, size - 1 - len)) > 0)
        len += (size_t)n;
    out[len] = 0;
    close(p[0]);
    int status;
    waitpid(pid, &status, 0);
    return status;
}

#endif
