/*
 * call.h - one call into a plugin (docs/ABI.md, "A call").
 *
 * Owns: call_begin/call_end (the ticker, the GIL), ensure_store, the startup functions, running an
 * export and classifying its outcome into call_result, cancelling a call (call_cancel). The running
 * call's state (`current_instance`, the host hooks, failures, the cancel request) is running.h's.
 */
#ifndef EXTISM_FAST_CALL_H
#define EXTISM_FAST_CALL_H

#include <stddef.h>
#include <stdint.h>

#include "instance.h"
#include "running.h"
#include "wasmtime_api.h"

typedef enum call_status {
    CALL_OK = 0,
    CALL_PLUGIN_ERROR,   /* error_set; message = the plugin's text */
    CALL_NONZERO,        /* returned non-zero without error_set; rc holds it */
    CALL_TRAP,           /* message = the trap's text */
    CALL_TIMEOUT,
    CALL_CANCELLED,
    CALL_OUT_OF_FUEL,    /* the call used up its fuel budget */
    CALL_INPUT_TOO_LARGE,/* the input does not fit under the kernel memory limit */
    CALL_HOST_FAILURE,   /* an import callback recorded a failure; failure holds its kind */
    CALL_EXIT,           /* WASI proc_exit with a non-zero code; rc holds it */
    CALL_INSTANTIATE,    /* instantiation or a startup function failed; failure = FAILURE_LIMIT
                          * when main's memories start over max_pages */
    CALL_POOL_EXHAUSTED, /* the engine's instance pool is full (nothing ran: switch to the on-demand
                          * compilation with instance_use_compiled and call again) */
} call_status;

typedef struct call_result {
    call_status status;
    int32_t rc;
    failure_kind failure;
    const uint8_t *output;  /* into kernel memory; valid until the next call on the instance */
    uint64_t output_length;
    char *message;          /* malloc'ed, NUL-terminated, or NULL; free with free() */
} call_result;

/* call_prepare: make the store and instantiate the modules now if the next call would (see
 * instance_new); r->status is CALL_OK, CALL_INSTANTIATE or CALL_POOL_EXHAUSTED. holds_gil as
 * for call_run (wasm start functions run here, under the call's time limit). */
void call_prepare(plugin_instance *p, int holds_gil, call_result *r);

/* call_run: run the export `export_index` with `input` (docs/ABI.md, "A call"), within
 * p->settings.timeout_ns (instance_settings; 0 = none, and ignored on an engine without ENGINE_EPOCH).
 * Fills *r; free r->message afterwards.
 * holds_gil: the caller holds the GIL; the call releases it once it has run for a tick (~1 ms),
 * or on an engine without ENGINE_EPOCH at once, unless no other thread could want it
 * (running_hooks.gil_wanted; see call_host_function_returned), and leaves the thread state in the
 * running state's saved_thread, which the caller must restore (running_restore_gil). Hooks take
 * the GIL when they need it. */
void call_run(plugin_instance *p, size_t export_index, const uint8_t *input, uint64_t input_length,
              int holds_gil, call_result *r);

/* call_host_function_returned: a host function ran on this thread during p's call, which held the
 * GIL throughout (running_restore_gil answered 0): without ENGINE_EPOCH, release it now if another
 * thread could want it (the function may have started one), as the call's start would have. */
void call_host_function_returned(plugin_instance *p);

/* call_cancel: make the running call (if any) on p fail as cancelled, at once (an epoch bump runs
 * its deadline callback); nothing on an engine without ENGINE_EPOCH. Any thread, but p must stay
 * alive meanwhile: the Python side calls it holding the GIL, which close() needs too. */
void call_cancel(plugin_instance *p);

#endif
