/*
 * Event: a flag tasks wait for (asyncio.Event). Setting it wakes every
 * waiter; it stays set until cleared.
 */
#include <errno.h>

#include "internal.h"

void weft_event_init(weft_event *e)
{
    e->set_ = false;
    e->wq_.head = e->wq_.tail = NULL;
    e->loop_ = 0;
}

void weft_event_set(weft_event *e)
{
    if (!e)
        weft__panic("weft_event_set: NULL event");
    if (weft__foreign(&e->loop_))
        weft__panic("weft_event_set: event belongs to another loop");
    e->set_ = true;
    weft__wq_wake_all(&e->wq_, 0);
}

void weft_event_clear(weft_event *e)
{
    if (e)
        e->set_ = false;
}

bool weft_event_is_set(const weft_event *e) { return e && e->set_; }

int weft_event_wait(weft_event *e)
{
    if (!e)
        return -EINVAL;
    int rc = weft__bind(&e->loop_);
    if (rc || (rc = weft__check(WEFT_FOREVER, 0)))
        return rc;
    if (e->set_)
        return 0;
    struct weft__waiter w;
    return weft__wq_wait_fast(&e->wq_, &w, NULL, WEFT_FOREVER, 0, "event wait", false);
}
