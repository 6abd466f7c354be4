/*
 * weft tls: TLS over a weft_conn with OpenSSL 3, driven by the loop.
 *
 * After the handshake the connection is used with the same weft_conn_*
 * calls as plain TCP; timeouts, cancellation and "broken" work the same.
 * Clients verify the peer's certificate against the system CA store and
 * its host name by default (opting out is explicit:
 * weft_tls_ctx_set_verify(ctx, false)). Failures name OpenSSL's reason
 * (weft_tls_error). A weft_tls_ctx is immutable once in use and may be
 * shared by every loop.
 */
#ifndef WEFT_TLS_H
#define WEFT_TLS_H

#include <stdbool.h>

#include "net.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_tls_ctx weft_tls_ctx;

/* A client context: TLS 1.2+, system CA store, verification on. NULL with
 * errno ENOMEM. */
weft_tls_ctx *weft_tls_client_new(void);

/* A server context with a certificate chain and key (PEM files). NULL
 * with errno ENOENT (unreadable file), EINVAL (bad or mismatched
 * certificate and key) or ENOMEM. */
weft_tls_ctx *weft_tls_server_new(const char *cert_file, const char *key_file);

/* Trusts the CAs in this PEM file too (a private CA). -EINVAL, -ENOENT. */
int weft_tls_ctx_load_ca(weft_tls_ctx *ctx, const char *ca_file);

/* verify false turns certificate and host name checks off (testing only). */
int weft_tls_ctx_set_verify(weft_tls_ctx *ctx, bool verify);

/* ALPN protocols to offer (client) or accept (server), in preference
 * order, e.g. {"h2", "http/1.1"}. -EINVAL for an empty or too long list. */
int weft_tls_ctx_set_alpn(weft_tls_ctx *ctx, const char *const *protos, int n);

void weft_tls_ctx_free(weft_tls_ctx *ctx);

/* Runs the client handshake on c, sending server_name as SNI and checking
 * it against the certificate (a name or an IP literal). 0, or
 * -WEFT_ETLS_VERIFY (the certificate was not trusted or not for that
 * name), -WEFT_ETLS (another TLS failure), -WEFT_EREAD_TIMEOUT, -ETIMEDOUT,
 * -ECANCELED, -ECONNRESET, -WEFT_EEOF, -ENOMEM, -EPROTO (bytes are still
 * buffered in c: plaintext read after a STARTTLS-style reply, or queued
 * writes, must not pass as protected; nothing is sent then, and c stays
 * as it was), -EBADF (c was closed meanwhile). Any other failure breaks c. */
int weft_tls_connect(weft_conn *c, weft_tls_ctx *ctx, const char *server_name);

/* Runs the server handshake on an accepted connection. Errors as above. */
int weft_tls_accept(weft_conn *c, weft_tls_ctx *ctx);

/* The negotiated ALPN protocol ("" if none). */
const char *weft_tls_alpn(const weft_conn *c);

/* OpenSSL's reason for the last TLS failure on c ("" if none). */
const char *weft_tls_error(const weft_conn *c);

#ifdef __cplusplus
}
#endif

#endif
