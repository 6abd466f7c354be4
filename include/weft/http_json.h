/*
 * weft http with jansson: a json_t as a response body. A header of its own
 * so that weft/http.h names no third-party type.
 */
#ifndef WEFT_HTTP_JSON_H
#define WEFT_HTTP_JSON_H

#include <jansson.h>

#include "http.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A JSON body (serialized compactly) with Content-Type application/json.
 * -EINVAL for NULL, -ENOMEM. */
int weft_http_res_json(weft_http_res *r, const json_t *json);

#ifdef __cplusplus
}
#endif

#endif
