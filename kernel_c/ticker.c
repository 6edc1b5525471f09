/* ticker.c - the epoch ticker thread; contract in ticker.h. */
#define _POSIX_C_SOURCE 200809L
#include "ticker.h"

#include <pthread.h>
#include <time.h>

static pthread_mutex_t ticker_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ticker_wake = PTHREAD_COND_INITIALIZER;
static int ticker_running;
static long ticker_active_calls;
static wasm_engine_t *ticker_engine;

uint64_t ticker_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec;
}

static void *ticker_main(void *unused) {
    (void)unused;
    pthread_mutex_lock(&ticker_lock);
    for (;;) {
        while (ticker_active_calls == 0) pthread_cond_wait(&ticker_wake, &ticker_lock);
        wasm_engine_t *engine = ticker_engine;
        pthread_mutex_unlock(&ticker_lock);
        struct timespec period = {0, (long)TICKER_PERIOD_NS};
        nanosleep(&period, NULL);
        wt.wasmtime_engine_increment_epoch(engine);
        pthread_mutex_lock(&ticker_lock);
    }
    return NULL;
}

int ticker_start_call(wasm_engine_t *engine) {
    int result = 0;
    pthread_mutex_lock(&ticker_lock);
    ticker_engine = engine;
    if (!ticker_running) {
        pthread_t thread;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&thread, &attr, ticker_main, NULL) == 0) ticker_running = 1;
        else result = -1;
        pthread_attr_destroy(&attr);
    }
    if (result == 0 && ticker_active_calls++ == 0) pthread_cond_signal(&ticker_wake);
    pthread_mutex_unlock(&ticker_lock);
    return result;
}

void ticker_end_call(void) {
    pthread_mutex_lock(&ticker_lock);
    ticker_active_calls--;
    pthread_mutex_unlock(&ticker_lock);
}
