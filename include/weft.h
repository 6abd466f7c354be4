/*
 * weft — production async patterns made the default in C.
 *
 * One include for the whole public API. Each layer documents itself in its
 * own header under weft/; start with weft/core.h.
 */
#ifndef WEFT_H
#define WEFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "weft/config.h"
#include "weft/error.h"
#include "weft/core.h"
#include "weft/sync.h"
#include "weft/log.h"
#include "weft/metrics.h"
#include "weft/dns.h"
#include "weft/net.h"
#include "weft/pool.h"
#include "weft/tls.h"
#include "weft/url.h"
#include "weft/http.h"
#include "weft/router.h"
#if WEFT_HAVE_PG
#include "weft/pg.h"
#endif
#if WEFT_HAVE_REDIS
#include "weft/redis.h"
#endif
#if WEFT_HAVE_SQLITE
#include "weft/queue.h"
#endif

#endif
