/*
 * weft_signal_wait: signals as readable fds (signalfd), so a task can wait
 * for SIGTERM like for any other event and shut down gracefully.
 */
#include <errno.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "internal.h"

int weft_signal_wait(const sigset_t *set)
{
    if (!weft__self())
        return -EPERM;
    if (!set || sigisemptyset(set))
        return -EINVAL;
    int rc = weft__check(WEFT_FOREVER, 0);
    if (rc)
        return rc;
    /* blocked first, so a signal that arrives from now on stays pending
     * for the fd instead of running its default action */
    pthread_sigmask(SIG_BLOCK, set, NULL);
    int fd = signalfd(-1, set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    for (;;) {
        struct signalfd_siginfo si;
        ssize_t n = read(fd, &si, sizeof si);
        if (n == (ssize_t)sizeof si) {
            rc = (int)si.ssi_signo;
            break;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            rc = -errno;
            break;
        }
        if ((rc = weft_fd_wait(fd, WEFT_READ)) < 0)
            break;
    }
    weft_fd_forget(fd);
    close(fd);
    return rc;
}
