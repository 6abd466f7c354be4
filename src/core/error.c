/*
 * Error names and messages, generated from WEFT_ERROR_MAP (weft/error.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "weft/error.h"

static int magnitude(int err) { return err < 0 ? -err : err; }

const char *weft_strerror(int err)
{
    int e = magnitude(err);
    switch (e) {
    case 0: return "success";
    case ETIMEDOUT: return "deadline exceeded";
    case ECANCELED: return "cancelled";
#define WEFT__ERR_MSG(name, off, msg, tmo) case WEFT_##name: return msg;
    WEFT_ERROR_MAP(WEFT__ERR_MSG)
#undef WEFT__ERR_MSG
    }
    if (e < WEFT_ERR_BASE)
        return strerrordesc_np(e) ? strerrordesc_np(e) : "unknown error";
    return "unknown weft error";
}

const char *weft_errname(int err)
{
    int e = magnitude(err);
    switch (e) {
#define WEFT__ERR_NAME(name, off, msg, tmo) case WEFT_##name: return "WEFT_" #name;
    WEFT_ERROR_MAP(WEFT__ERR_NAME)
#undef WEFT__ERR_NAME
    }
    const char *n = e < WEFT_ERR_BASE ? strerrorname_np(e) : NULL;
    return n ? n : "E?";
}

bool weft_is_timeout(int err)
{
    switch (magnitude(err)) {
    case ETIMEDOUT: return true;
#define WEFT__ERR_TMO(name, off, msg, tmo) case WEFT_##name: return tmo;
    WEFT_ERROR_MAP(WEFT__ERR_TMO)
#undef WEFT__ERR_TMO
    }
    return false;
}
