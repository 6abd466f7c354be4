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
#include "weft/pg.h"
#include "weft/redis.h"
#include "weft/queue.h"

#endif
