/*
 * The other side of the idle-connections test, in its own process (a
 * process may hold 20,000 descriptors here; the server needs 10,000 of
 * its own). Plain blocking sockets, no weft.
 *
 *   idle_client PORT N     opens N connections, sends one keep-alive
 *                          request on each, reads each answer, prints
 *                          "ready OK" (OK: answers that were 200) and
 *                          holds the connections until stdin closes,
 *                          then resets them all.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

static const char req[] = "GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n";

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    int port = atoi(argv[1]), n = atoi(argv[2]);
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    int *fds = calloc((size_t)n, sizeof *fds);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    int opened = 0, ok = 0;
    struct timeval tv = { 10, 0 };
    for (; opened < n; opened++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
            perror("idle_client: connect");
            if (fd >= 0)
                close(fd);
            break;
        }
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        if (write(fd, req, sizeof req - 1) != (ssize_t)(sizeof req - 1))
            perror("idle_client: write");
        fds[opened] = fd;
    }
    for (int i = 0; i < opened; i++) {
        char buf[512];
        ssize_t got = 0, r;
        /* the answer is small: read until its 13-byte body is in */
        while ((r = read(fds[i], buf + got, sizeof buf - 1 - (size_t)got)) > 0) {
            got += r;
            buf[got] = 0;
            if (strstr(buf, "Hello, World!"))
                break;
        }
        ok += strncmp(buf, "HTTP/1.1 200 ", 13) == 0 && strstr(buf, "Hello, World!") != NULL;
    }
    printf("ready %d %d\n", opened, ok);
    fflush(stdout);
    char c;
    while (read(0, &c, 1) > 0) {
    }
    /* an abortive close (RST): no TIME_WAIT left on 10,000 ports, where it
     * would keep later tests from binding (these sockets lack SO_REUSEADDR) */
    struct linger lg = { 1, 0 };
    for (int i = 0; i < opened; i++) {
        setsockopt(fds[i], SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        close(fds[i]);
    }
    free(fds);
    return 0;
}
