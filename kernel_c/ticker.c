/* ticker.c - the epoch ticker thread and the stores' epoch deadline callback; contracts in ticker.h. */
#define _POSIX_C_SOURCE 200809L
#include "ticker.h"

#include <pthread.h>
#include <time.h>

#include "running.h"
#include "sigint.h"

static pthread_mutex_t ticker_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ticker_wake = PTHREAD_COND_INITIALIZER;
static int ticker_started;   /* under ticker_lock */
static int ticker_idle = 1;  /* atomic; set under ticker_lock */
static long active_calls;    /* atomic */
/* Every engine a call has run on: each tick advances them all (engines live as long as the
 * process). Appended under ticker_lock; the count is published after the slot is written. */
static wasm_engine_t *ticker_engines[TICKER_MAX_ENGINES];
static int ticker_engine_count; /* atomic */

uint64_t ticker_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec;
}

/* Going idle and a call beginning race: both sides use seq_cst accesses (Dekker), so either the
 * ticker sees the call's increment after setting idle, or the call sees idle and wakes it. */
static int go_idle(void) {
    pthread_mutex_lock(&ticker_lock);
    __atomic_store_n(&ticker_idle, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&active_calls, __ATOMIC_SEQ_CST) > 0) {
        __atomic_store_n(&ticker_idle, 0, __ATOMIC_SEQ_CST);
        pthread_mutex_unlock(&ticker_lock);
        return 0;
    }
    while (__atomic_load_n(&ticker_idle, __ATOMIC_SEQ_CST)) pthread_cond_wait(&ticker_wake, &ticker_lock);
    pthread_mutex_unlock(&ticker_lock);
    return 1;
}

static void *ticker_main(void *unused) {
    (void)unused;
    int quiet_ticks = 0;
    for (;;) {
        struct timespec period = {0, (long)TICKER_PERIOD_NS};
        nanosleep(&period, NULL);
        int engines = __atomic_load_n(&ticker_engine_count, __ATOMIC_ACQUIRE);
        for (int i = 0; i < engines; i++) wt.wasmtime_engine_increment_epoch(ticker_engines[i]);
        if (__atomic_load_n(&active_calls, __ATOMIC_SEQ_CST) > 0) quiet_ticks = 0;
        else if (++quiet_ticks >= TICKER_IDLE_TICKS && go_idle()) quiet_ticks = 0;
    }
    return NULL;
}

static int known_engine(wasm_engine_t *engine) {
    int engines = __atomic_load_n(&ticker_engine_count, __ATOMIC_ACQUIRE);
    for (int i = 0; i < engines; i++)
        if (ticker_engines[i] == engine) return 1;
    return 0;
}

static int add_engine(wasm_engine_t *engine) {
    int result = 0;
    pthread_mutex_lock(&ticker_lock);
    if (!known_engine(engine)) {
        int engines = __atomic_load_n(&ticker_engine_count, __ATOMIC_RELAXED);
        if (engines < TICKER_MAX_ENGINES) {
            ticker_engines[engines] = engine;
            __atomic_store_n(&ticker_engine_count, engines + 1, __ATOMIC_RELEASE);
        } else {
            result = -1;
        }
    }
    pthread_mutex_unlock(&ticker_lock);
    return result;
}

/* A forked child has no ticker thread (only the forking thread survives fork): the next call
 * starts one. The lock may have been held by another thread at the fork: make a fresh one. */
static void forget_thread_after_fork(void) {
    pthread_mutex_t fresh_lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t fresh_wake = PTHREAD_COND_INITIALIZER;
    ticker_lock = fresh_lock;
    ticker_wake = fresh_wake;
    ticker_started = 0;
    __atomic_store_n(&ticker_idle, 1, __ATOMIC_SEQ_CST);
    __atomic_store_n(&active_calls, 0, __ATOMIC_SEQ_CST);
}

static int wake_ticker(void) {
    int result = 0;
    static int fork_handler_installed; /* under ticker_lock */
    pthread_mutex_lock(&ticker_lock);
    if (!fork_handler_installed && pthread_atfork(NULL, NULL, forget_thread_after_fork) == 0)
        fork_handler_installed = 1;
    if (!ticker_started) {
        pthread_t thread;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&thread, &attr, ticker_main, NULL) == 0) ticker_started = 1;
        else result = -1;
        pthread_attr_destroy(&attr);
    }
    if (result == 0) {
        __atomic_store_n(&ticker_idle, 0, __ATOMIC_SEQ_CST);
        pthread_cond_signal(&ticker_wake);
    }
    pthread_mutex_unlock(&ticker_lock);
    return result;
}

int ticker_call_begin(wasm_engine_t *engine) {
    if (!known_engine(engine) && add_engine(engine) != 0) return -1;
    __atomic_add_fetch(&active_calls, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&ticker_idle, __ATOMIC_SEQ_CST) && wake_ticker() != 0) {
        __atomic_sub_fetch(&active_calls, 1, __ATOMIC_SEQ_CST);
        return -1;
    }
    return 0;
}

void ticker_call_end(void) { __atomic_sub_fetch(&active_calls, 1, __ATOMIC_SEQ_CST); }

/* Ctrl-C during p's call, on Python's main thread (decided at its first tick: sigint_watch makes
 * sure SIGINT is counted)? Compared with the count at the call's start (call_begin). */
static int stopped_by_sigint(struct plugin_instance *p) {
    running_call *run = running_state(p);
    if (run->sigint_watched < 0)
        run->sigint_watched = running_hooks.on_signal_thread != NULL && running_hooks.on_signal_thread() && sigint_watch();
    return run->sigint_watched && sigint_count() != run->sigint_seen;
}

wasmtime_error_t *ticker_on_epoch_deadline(wasmtime_context_t *ctx, void *data, uint64_t *delta,
                                           wasmtime_update_deadline_kind_t *kind) {
    (void)ctx;
    const char *reason = running_tick(data, ticker_now_ns());
    if (reason == NULL && stopped_by_sigint(data)) {
        running_interrupted(data, INTERRUPT_CANCEL);
        reason = "plugin call cancelled";
    }
    if (reason != NULL) return wt.wasmtime_error_new(reason);
    *delta = 1;
    *kind = WASMTIME_UPDATE_DEADLINE_CONTINUE;
    return NULL;
}
