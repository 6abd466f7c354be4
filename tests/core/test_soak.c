/*
 * Soak (make test-long): for SOAK_SECONDS (default 60), hundreds of tasks
 * pass tokens through a channel, hold semaphore permits and mutexes, sleep
 * in short deadline scopes and offload to the blocking pool, while a chaos
 * task cancels random ones. After every round the accounting must be exact:
 * every permit back, every token back, no task left.
 */
#include <stdatomic.h>

#include "test.h"

enum { WORKERS = 300, TOKENS = 64, PERMITS = 8 };

struct world {
    weft_sem sem;
    weft_mutex mu;
    weft_chan *tokens;
    weft_task *tasks[WORKERS];
    long ops, cancels, timeouts;
    int holders, max_holders;
    uint64_t rng;
};

static uint64_t next(struct world *w)
{
    w->rng ^= w->rng << 13;
    w->rng ^= w->rng >> 7;
    w->rng ^= w->rng << 17;
    return w->rng;
}

static int tiny_job(void *arg)
{
    (void)arg;
    return 3;
}

/* gives a token back even when cancelled: cleanup in a shield */
static void put_back(struct world *w, int token)
{
    weft_scope sh;
    weft_scope_enter_shielded(&sh, WEFT_SEC);
    int rc = weft_chan_send(w->tokens, &token);
    weft_scope_exit(&sh);
    EXPECT_EQ(rc, 0);
}

static int worker(void *arg)
{
    struct world *w = arg;
    for (;;) {
        int token, rc;
        weft_scope sc;
        weft_scope_enter(&sc, (weft_time)(next(w) % 3000) * WEFT_US);
        rc = weft_chan_recv(w->tokens, &token);
        weft_scope_exit(&sc);
        if (rc == -ECANCELED)
            return 0;
        if (rc == -ETIMEDOUT) {
            w->timeouts++;
            continue;
        }
        EXPECT_EQ(rc, 0);
        rc = weft_sem_acquire(&w->sem);
        if (rc == 0) {
            if (++w->holders > w->max_holders)
                w->max_holders = w->holders;
            switch (next(w) % 4) {
            case 0: rc = weft_sleep((weft_time)(next(w) % 500) * WEFT_US); break;
            case 1: rc = weft_yield(); break;
            case 2: rc = weft_run_blocking(tiny_job, NULL) == 3 ? 0 : -ECANCELED; break;
            case 3:
                if ((rc = weft_mutex_lock(&w->mu)) == 0) {
                    rc = weft_yield();
                    weft_mutex_unlock(&w->mu);
                }
                break;
            }
            w->holders--;
            weft_sem_release(&w->sem);
        }
        put_back(w, token);
        w->ops++;
        if (rc == -ECANCELED)
            return 0;
    }
}

struct slot { struct world *w; int i; };
static int worker_slot(void *arg)
{
    struct slot *s = arg;
    s->w->tasks[s->i] = weft_self();
    int rc = worker(s->w);
    s->w->tasks[s->i] = NULL;
    return rc;
}

static int chaos(void *arg)
{
    struct world *w = arg;
    while (weft_sleep((weft_time)(next(w) % 400) * WEFT_US) == 0) {
        weft_task *t = w->tasks[next(w) % WORKERS];
        if (t && weft_task_cancel(t) == 0)
            w->cancels++;
    }
    return 0;
}

static int round_(void *arg)
{
    struct world *w = arg;
    static struct slot slots[WORKERS];
    /* loop-local objects belong to one loop: fresh ones for each round */
    weft_sem_init(&w->sem, PERMITS);
    weft_mutex_init(&w->mu);
    w->tokens = weft_chan_new(sizeof(int), TOKENS);
    for (int i = 0; i < TOKENS; i++)
        EXPECT_EQ(weft_chan_try_send(w->tokens, &i), 0);
    weft_group *g = weft_group_new();
    for (int i = 0; i < WORKERS; i++) {
        slots[i] = (struct slot){ w, i };
        w->tasks[i] = NULL;
        EXPECT_EQ(weft_spawn(g, worker_slot, &slots[i], "worker"), 0);
    }
    EXPECT_EQ(weft_spawn(g, chaos, w, "chaos"), 0);
    weft_sleep(500 * WEFT_MS);
    weft_group_cancel(g);
    EXPECT_EQ(weft_group_wait(g), 0);
    /* exact accounting */
    EXPECT_EQ(weft_sem_available(&w->sem), PERMITS);
    EXPECT_EQ(weft_chan_len(w->tokens), TOKENS);
    EXPECT_EQ(w->holders, 0);
    EXPECT(w->max_holders <= PERMITS);
    EXPECT_EQ(weft_mutex_trylock(&w->mu), 0);
    weft_mutex_unlock(&w->mu);
    weft_chan_free(w->tokens);
    return 0;
}

static void test_soak(void **s)
{
    (void)s;
    const char *e = getenv("SOAK_SECONDS");
    int seconds = e ? atoi(e) : 60;
    struct world w = { .rng = 0x9e3779b97f4a7c15ULL };
    weft_time end = weft_now() + seconds * WEFT_SEC;
    int rounds = 0;
    while (weft_now() < end) {
        RUN(round_, &w);
        rounds++;
    }
    printf("soak: %d rounds, %ld operations, %ld cancellations, %ld timeouts; "
           "accounting exact after each\n", rounds, w.ops, w.cancels, w.timeouts);
}

/* across loops: tokens through a shared channel under timeouts and cancels */
static weft_chan *shared_tokens;
static _Atomic long shared_ops;

static int shared_worker(void *arg)
{
    uint64_t rng = (uintptr_t)arg * 2654435761u + 1;
    for (;;) {
        int token, rc;
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        weft_scope sc;
        weft_scope_enter(&sc, (weft_time)(rng % 2000) * WEFT_US);
        rc = weft_chan_recv(shared_tokens, &token);
        weft_scope_exit(&sc);
        if (rc == -ECANCELED)
            return 0;
        if (rc)
            continue;
        weft_yield();
        weft_scope sh;
        weft_scope_enter_shielded(&sh, WEFT_SEC);
        rc = weft_chan_send(shared_tokens, &token);
        weft_scope_exit(&sh);
        EXPECT_EQ(rc, 0);
        atomic_fetch_add(&shared_ops, 1);
    }
}

static int shared_loop(void *arg)
{
    weft_time end = *(weft_time *)arg;
    weft_group *g = weft_group_new();
    for (intptr_t i = 0; i < 50; i++)
        weft_spawn(g, shared_worker, (void *)(i + 100 * weft_loop_index()), "sw");
    weft_scope sc;
    weft_scope_enter_at(&sc, end);
    weft_sleep(WEFT_FOREVER);
    weft_scope_exit(&sc);
    weft_group_cancel(g);
    return weft_group_wait(g);
}

static void test_soak_shared(void **s)
{
    (void)s;
    const char *e = getenv("SOAK_SECONDS");
    int seconds = e ? atoi(e) / 3 + 1 : 20;
    shared_tokens = weft_chan_new_shared(sizeof(int), TOKENS);
    for (int i = 0; i < TOKENS; i++)
        assert_int_equal(weft_chan_try_send(shared_tokens, &i), 0);
    weft_time end = weft_now() + seconds * WEFT_SEC;
    test_failures = 0;
    assert_int_equal(weft_run(2, shared_loop, &end), 0);
    assert_int_equal(test_failures, 0);
    long sum = 0;
    int v, n = 0;
    while (weft_chan_try_recv(shared_tokens, &v) == 0) {
        sum += v;
        n++;
    }
    assert_int_equal(n, TOKENS);               /* none lost, none duplicated */
    assert_int_equal(sum, TOKENS * (TOKENS - 1) / 2);
    printf("soak across loops: %ld operations, tokens exact\n", atomic_load(&shared_ops));
    weft_chan_free(shared_tokens);
}

int main(void)
{
    const struct CMUnitTest tests[] = { cmocka_unit_test(test_soak),
                                        cmocka_unit_test(test_soak_shared) };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
