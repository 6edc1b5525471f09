/*
 * ticker.h - the thread that advances the engine's epoch while calls with a timeout are running.
 *
 * Timeouts use wasmtime's epoch interruption: every store's deadline is "the next epoch", and its
 * deadline callback (instance.c) decides whether the call ran out of time. The ticker bumps the
 * epoch every TICKER_PERIOD_NS while at least one timed call is active, and sleeps otherwise, so an
 * idle process pays nothing.
 */
#ifndef EXTISM_FAST_TICKER_H
#define EXTISM_FAST_TICKER_H

#include <stdint.h>

#include "wasmtime_api.h"

#define TICKER_PERIOD_NS UINT64_C(1000000)

/* ticker_start_call: a timed call begins on `engine` (starts the thread on first use).
 * Returns 0, or -1 when the thread cannot be started (the call then runs without a timeout). */
int ticker_start_call(wasm_engine_t *engine);

/* ticker_end_call: the timed call that ticker_start_call announced has ended. */
void ticker_end_call(void);

/* ticker_now_ns: CLOCK_MONOTONIC in nanoseconds. */
uint64_t ticker_now_ns(void);

#endif
