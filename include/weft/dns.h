/*
 * weft dns: asynchronous name resolution with c-ares, driven by the loop.
 *
 * No thread per lookup: each lookup drives its own c-ares channel from the
 * calling task, with a small task per resolver socket (and direction) that
 * waits on it like any other fd, under the task's deadline scope and the
 * lookup timeout, and cancellable. A truncated UDP answer is asked again
 * over TCP. It reads /etc/hosts and /etc/resolv.conf (c-ares does, on
 * every channel).
 * Answers are kept in a small per-loop cache for their TTL (at least 1 s,
 * at most 5 min; 64 names), so a pool that reconnects does not ask again.
 */
#ifndef WEFT_DNS_H
#define WEFT_DNS_H

#include <sys/socket.h>

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_addr {
    struct sockaddr_storage ss;
    socklen_t len;
} weft_addr;

#define WEFT_DNS_MAX_ADDRS 8

/* Resolves host (a name, or an IPv4/IPv6 literal, "[::1]" accepted) for
 * TCP on port into at most max addresses (IPv4 and IPv6, in the resolver's
 * order). Returns the count (> 0), or -WEFT_ENOTFOUND ("name not found":
 * no such name), -WEFT_ENOADDR ("no DNS answer": the name has no address),
 * -ETIMEDOUT (the scope's deadline, or timeout when no scope is set;
 * 0 = 10 s), -WEFT_EDNS ("DNS server failure": failed, refused or a bad
 * reply), -ECANCELED, -EINVAL (bad host, port or max), -EPERM outside a
 * task, -ENOMEM. */
int weft_dns_resolve(const char *host, int port, weft_addr *out, int max, weft_time timeout);

/* Uses these servers ("127.0.0.1:5353,[::1]:53"; each port for UDP and
 * TCP alike), tried in this order, for lookups started later, instead of
 * /etc/resolv.conf's; NULL goes back to resolv.conf. Process-wide.
 * -EINVAL for a malformed list, -ENOMEM. */
int weft_dns_set_servers(const char *csv);

/* Forgets the calling loop's cached answers. */
void weft_dns_cache_clear(void);

#ifdef __cplusplus
}
#endif

#endif
