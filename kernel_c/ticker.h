/*
 * ticker.h - the thread that advances the engines' epochs while plugin calls are running.
 *
 * Every store's epoch deadline is "the next epoch", so each tick runs the store's deadline callback
 * (ticker_on_epoch_deadline, over running_tick in running.c) in every running call: it enforces
 * timeouts and cancel, and lets a long call that still holds the GIL release it. The ticker bumps the epoch every
 * TICKER_PERIOD_NS while calls are in progress, keeps going for TICKER_IDLE_TICKS ticks after the
 * last one ended (a tight loop of small calls never restarts it), then sleeps until a call
 * begins: an idle process pays nothing.
 *
 * Owns: the ticker thread, its start and stop around calls, the stores' epoch deadline callback
 * and the monotonic clock calls read.
 */
#ifndef EXTISM_FAST_TICKER_H
#define EXTISM_FAST_TICKER_H

#include <stdint.h>

#include "wasmtime_api.h"

#define TICKER_PERIOD_NS UINT64_C(1000000)
#define TICKER_IDLE_TICKS 100
#define TICKER_MAX_ENGINES 16

/* ticker_call_begin: a call begins on `engine`, which the ticker advances from now on with every
 * other engine calls have run on (starts or wakes the thread when needed). Returns 0, or -1 when
 * the thread cannot be started or TICKER_MAX_ENGINES engines are known (the call then has no
 * timeout). */
int ticker_call_begin(wasm_engine_t *engine);

/* ticker_call_end: the call announced by a successful ticker_call_begin has ended. */
void ticker_call_end(void);

/* ticker_now_ns: CLOCK_MONOTONIC in nanoseconds. */
uint64_t ticker_now_ns(void);

/* ticker_on_epoch_deadline: the store's epoch deadline callback (data: the plugin_instance), at
 * every tick of a call on an ENGINE_EPOCH engine: running_tick (the GIL released; cancel and the
 * deadline checked), then, at the first tick on Python's main thread, makes sure SIGINT is counted
 * (sigint_watch) and ends the call as cancelled once a Ctrl-C arrived since its start; ends the call
 * with an error, else it continues for a tick. */
wasmtime_error_t *ticker_on_epoch_deadline(wasmtime_context_t *ctx, void *data, uint64_t *delta,
                                           wasmtime_update_deadline_kind_t *kind);

#endif
