/*
 * The throwaway PostgreSQL and Redis servers of the tests.
 *
 * scripts/services runs them; the CTest fixtures "pg" and "redis"
 * (cmake/Services.cmake) start one of each per build directory, in
 * build/services/<service>, before the tests registered with
 * weft_service_test() and stop them after the last. The port is picked at
 * run time, so a test reads the URL from the file the script wrote.
 *
 * By hand: `scripts/services start pg build/services/pg` and run the test
 * binary; or point it at a server of your own with WEFT_TEST_PG_URL /
 * WEFT_TEST_REDIS_URL (then it cannot be restarted: -ENOTSUP).
 */
#ifndef WEFT_TEST_SERVICES_H
#define WEFT_TEST_SERVICES_H

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#ifndef WEFT_TEST_SERVICES_SCRIPT       /* compiled in by weft_service_test */
#define WEFT_TEST_SERVICES_SCRIPT "scripts/services"
#endif
#ifndef WEFT_TEST_SERVICES_DIR
#define WEFT_TEST_SERVICES_DIR "services"
#endif

extern char **environ;

/* Index of "pg" or "redis" in the per-service buffers, or -1. */
static inline int weft__test_service_index(const char *service)
{
    if (strcmp(service, "pg") == 0)
        return 0;
    if (strcmp(service, "redis") == 0)
        return 1;
    fprintf(stderr, "services.h: unknown service \"%s\" (pg or redis)\n", service);
    return -1;
}

/* getenv("WEFT_TEST_<SERVICE>_<what>"). */
static inline const char *weft__test_service_env(const char *service, const char *what)
{
    char name[64];
    int n = snprintf(name, sizeof name, "WEFT_TEST_%s_%s", service, what);
    for (int i = 0; i < n; i++)
        name[i] = (char)toupper((unsigned char)name[i]);
    return getenv(name);
}

/* The service's directory: $WEFT_TEST_<SERVICE>_DIR (set by CTest), else
 * build/services/<service> of the build the test was compiled in. Static. */
static inline const char *weft__test_service_dir(const char *service)
{
    static char dir[2][512];
    int i = weft__test_service_index(service);
    const char *env = weft__test_service_env(service, "DIR");
    if (i < 0)
        return NULL;
    if (env && *env)
        snprintf(dir[i], sizeof dir[i], "%s", env);
    else
        snprintf(dir[i], sizeof dir[i], "%s/%s", WEFT_TEST_SERVICES_DIR, service);
    return dir[i];
}

/* The URL of service ("pg" or "redis"): $WEFT_TEST_PG_URL / $WEFT_TEST_REDIS_URL
 * when set, else the one in DIR/url that `scripts/services start` wrote.
 * Read again at each call. Returns a static string, overwritten by the next
 * call for the same service, or NULL after printing why (not started). */
static inline const char *weft_test_service_url(const char *service)
{
    static char url[2][512];
    char path[1100];
    int i = weft__test_service_index(service);
    const char *env = weft__test_service_env(service, "URL");
    const char *dir = weft__test_service_dir(service);
    FILE *f;
    if (i < 0)
        return NULL;
    if (env && *env)
        return env;
    snprintf(path, sizeof path, "%s/url", dir);
    f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "services.h: %s: %s; start the server: %s start %s %s\n", path,
                strerror(errno), WEFT_TEST_SERVICES_SCRIPT, service, dir);
        return NULL;
    }
    if (!fgets(url[i], sizeof url[i], f))
        url[i][0] = 0;
    fclose(f);
    url[i][strcspn(url[i], "\r\n")] = 0;
    if (!url[i][0]) {
        fprintf(stderr, "services.h: %s is empty\n", path);
        return NULL;
    }
    return url[i];
}

/* Runs `scripts/services VERB SERVICE DIR` (start, stop, restart; its
 * stdout, the URL, discarded, its errors on stderr) and waits for it.
 * Blocks the calling thread for a second or two: from a task, call it
 * through weft_run_blocking so the loop keeps running. Returns 0, -ENOTSUP
 * for a server of your own (WEFT_TEST_<SERVICE>_URL), -EIO if the script
 * failed, or the error of posix_spawn or waitpid. */
static inline int weft_test_service(const char *verb, const char *service)
{
    const char *dir = weft__test_service_dir(service);
    const char *env = weft__test_service_env(service, "URL");
    char *argv[] = { (char *)WEFT_TEST_SERVICES_SCRIPT, (char *)verb, (char *)service,
                     (char *)dir, NULL };
    posix_spawn_file_actions_t fa;
    pid_t pid;
    int rc, status;
    if (!dir)
        return -EINVAL;
    if (env && *env)
        return -ENOTSUP;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        return -rc;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -errno;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

/* Restarts the server: the same port (the URL does not change) and the
 * same data; connections open to it are closed. Returns what
 * weft_test_service returns. */
static inline int weft_test_service_restart(const char *service)
{
    return weft_test_service("restart", service);
}

#endif
