/*
 * Supervised background work: tasks that run beside the main work, whose
 * failures are never lost and never take down the rest.
 *
 * asyncio teaches: asyncio.create_task() and forget is a trap (the event
 * loop keeps only a weak reference, so the task may vanish mid-flight, and
 * an exception nobody awaits is only printed, maybe, at exit). Keep a
 * reference, add a done-callback that logs and counts the failure, and on
 * shutdown cancel the stragglers after a grace period.
 *
 * The weft way is weft_supervisor_new(on_error, ctx): a group for
 * background work. A child that fails is reported to on_error (on the loop
 * thread, as it exits) and does NOT cancel its siblings. Children start
 * without the spawner's deadline (background work outlives the request
 * that started it: bound it with a scope of its own).
 * weft_supervisor_close(s, grace) stops new spawns, waits up to grace for
 * the children, cancels the rest (not counted as errors) and returns
 * -ETIMEDOUT when it had to. A supervisor its owner forgot is closed with
 * grace 0 when the owner returns: no background task outlives its owner.
 *
 * Work that must survive a crash is not background work: put it in the
 * durable queue (weft/queue.h).
 */
#include "example.h"

struct stats {
    int failures;                     /* counted by on_error */
    int heartbeats;                   /* done by the long-running child */
    int beats_at_failure;             /* heartbeats when the failure was reported */
    int sent;                         /* emails sent */
};

/* Runs on the loop thread as a failed child exits: log it, count it (in a
 * service, bump a metric: weft_counter). It must not block. */
static void on_error(const char *task, int err, void *ctx)
{
    struct stats *st = ctx;
    st->failures++;
    st->beats_at_failure = st->heartbeats;
    printf("  on_error: background task '%s' failed: %s\n", task, weft_strerror(err));
}

static struct stats st;

static int send_email(void *arg)
{
    const char *to = arg;
    int rc = weft_sleep(5 * WEFT_MS); /* "talk to the mail server" */
    if (rc)
        return rc;
    if (to[0] == '\0')
        return -EINVAL;               /* fails: reported, siblings unaffected */
    st.sent++;
    return 0;
}

/* Would run forever: the close's grace ends it. */
static int heartbeat(void *unused)
{
    (void)unused;
    int rc;
    while ((rc = weft_sleep(10 * WEFT_MS)) == 0)
        st.heartbeats++;
    return rc;                        /* -ECANCELED from the close: not an error */
}

static int service(void *unused)
{
    (void)unused;
    weft_group *bg = weft_supervisor_new(on_error, &st);
    if (!bg)
        return -errno;
    static const char *to[] = { "ada@example.com", "", "grace@example.com" };
    int rc = weft_spawn(bg, heartbeat, NULL, "heartbeat");
    for (int i = 0; rc == 0 && i < 3; i++)
        rc = weft_spawn(bg, send_email, (void *)to[i], "email");
    if (rc) {
        weft_supervisor_close(bg, 0);
        return rc;
    }

    /* The foreground goes on with its own work meanwhile. */
    if ((rc = weft_sleep(50 * WEFT_MS)) != 0) {
        weft_supervisor_close(bg, 0);
        return rc;
    }
    printf("  after 50 ms: %d emails sent, %d failure(s), heartbeat still running (%d beats)\n",
           st.sent, st.failures, st.heartbeats);

    /* Shutting down: up to 20 ms for the children to finish, then cancel. */
    rc = weft_supervisor_close(bg, 20 * WEFT_MS);
    printf("  weft_supervisor_close: %s\n", rc ? weft_strerror(rc) : "all done in the grace");

    expect(st.failures == 1, "the failing email reached on_error, once (%d)", st.failures);
    expect(st.sent == 2, "its siblings were not cancelled: 2 emails sent (%d)", st.sent);
    expect(st.heartbeats > st.beats_at_failure, "the heartbeat kept running after the "
           "failure (%d beats then, %d at the close)", st.beats_at_failure, st.heartbeats);
    expect(rc == -ETIMEDOUT, "the close cancelled the heartbeat past its grace (-ETIMEDOUT)");
    return 0;
}

int main(void)
{
    example_begin("supervised background work: failures reported and counted, never lost");
    return example_exit("supervised", weft_main(service, NULL));
}
