/*
 * weft pg with jansson: json and jsonb columns as json_t. A header of its
 * own so that weft/pg.h names no third-party type.
 */
#ifndef WEFT_PG_JSON_H
#define WEFT_PG_JSON_H

#include <jansson.h>

#include "pg.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A json or jsonb cell parsed into *v, a new reference (json_decref it).
 * 0, -ENODATA (SQL NULL), -WEFT_ETYPE (another type), -ERANGE (text
 * jansson cannot parse, or nested past its depth limit), -EINVAL (no such
 * row or column), -ENOMEM. */
int weft_pg_get_json(const weft_pg_result *r, int row, int col, json_t **v);

#ifdef __cplusplus
}
#endif

#endif
