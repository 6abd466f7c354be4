/* A self-signed certificate for localhost and 127.0.0.1, made at test
 * time with the openssl command (tests only). */
#ifndef WEFT_TEST_CERTS_H
#define WEFT_TEST_CERTS_H

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char cert_dir[64], cert_file[128], key_file[128], other_key_file[128];

static void make_certs(void)
{
    snprintf(cert_dir, sizeof cert_dir, "/tmp/weft-certs-%d", (int)getpid());
    mkdir(cert_dir, 0700);
    snprintf(cert_file, sizeof cert_file, "%s/cert.pem", cert_dir);
    snprintf(key_file, sizeof key_file, "%s/key.pem", cert_dir);
    snprintf(other_key_file, sizeof other_key_file, "%s/other.pem", cert_dir);
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout %s -out %s -subj /CN=localhost -days 1 "
             "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null && "
             "openssl genpkey -algorithm ec -pkeyopt ec_paramgen_curve:prime256v1 -out %s 2>/dev/null",
             key_file, cert_file, other_key_file);
    if (system(cmd) != 0)
        abort();
}

static void remove_certs(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", cert_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", cert_dir);
}

/* `openssl s_server -www` with these certificates on port (quiet; it
 * answers "HTTP/1.0 200 ok" and closes); stop it with s_server_stop. */
static pid_t s_server_start(int port)
{
    pid_t pid = fork();
    if (pid == 0) {
        char p[16];
        snprintf(p, sizeof p, "%d", port);
        if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr))
            _exit(127);
        execlp("openssl", "openssl", "s_server", "-accept", p, "-cert", cert_file, "-key",
               key_file, "-www", "-quiet", (char *)NULL);
        _exit(127);
    }
    return pid;
}

static void s_server_stop(pid_t pid)
{
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
}

#endif
