/* Private helpers shared by the files of src/http. */
#ifndef WEFT_HTTP_INTERNAL_H
#define WEFT_HTTP_INTERNAL_H

#include <stddef.h>

/* Appends n bytes to a growable buffer (doubling from 1 KiB), keeping one
 * spare byte for a terminating NUL. 0 or -ENOMEM (the buffer is kept). */
int weft__buf_append(char **buf, size_t *len, size_t *cap, const void *data, size_t n);

#endif
