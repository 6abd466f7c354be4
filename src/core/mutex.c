/*
 * Mutex: a FIFO semaphore of one permit that remembers its owner, so
 * unlocking from the wrong task is caught and relocking is -EDEADLK.
 */
#include <errno.h>

#include "internal.h"

void weft_mutex_init(weft_mutex *m)
{
    weft_sem_init(&m->sem_, 1);
    m->owner_ = NULL;
}

int weft_mutex_lock(weft_mutex *m)
{
    if (!m)
        return -EINVAL;
    weft_task *self = weft__self();
    if (self && m->owner_ == self)
        return -EDEADLK;
    int rc = weft_sem_acquire(&m->sem_);
    if (rc == 0)
        m->owner_ = self;
    return rc;
}

int weft_mutex_trylock(weft_mutex *m)
{
    if (!m)
        return -EINVAL;
    int rc = weft_sem_try_acquire(&m->sem_);
    if (rc == 0)
        m->owner_ = weft__self();
    return rc == -EAGAIN ? -EBUSY : rc;
}

void weft_mutex_unlock(weft_mutex *m)
{
    if (!m || m->owner_ != weft__self() || !m->owner_)
        weft__panic("weft_mutex_unlock: task '%s' does not hold this mutex",
                    weft__self() ? weft__self()->name : "(none)");
    m->owner_ = NULL;
    weft_sem_release(&m->sem_);
}
