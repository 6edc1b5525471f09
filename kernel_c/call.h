/*
 * call.h - one call into a plugin (docs/ABI.md, "A call") and what import callbacks use during it.
 *
 * Owns: call_begin/call_end (the ticker, the GIL), ensure_store, the startup functions, running an
 * export and classifying its outcome into call_result, cancel, instance_fail, the host hooks and
 * `current_instance`.
 *
 * Import callbacks find the instance of the running call through `current_instance`, a
 * thread-local set around every entry into wasm: the linker's callbacks can then be shared by every
 * instance, and the lookup costs less than going through the store's data.
 */
#ifndef EXTISM_FAST_CALL_H
#define EXTISM_FAST_CALL_H

#include <stddef.h>
#include <stdint.h>

#include "instance.h"
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

typedef struct host_hooks {
    /* Log `msg` at level 0..4 (trace..error) for the plugin `owner`. Called without the GIL. */
    void (*log)(void *owner, int level, const uint8_t *msg, size_t len);
    /* The lowest level (0..4) that is logged for `owner`, or INT32_MAX when logging is off. */
    int32_t (*log_level)(void *owner);
    /* Release the GIL this thread holds; returns the thread state to restore it with. */
    void *(*release_gil)(void);
    /* Perform http_request: owns (frees) the request and body blocks, sets p->http_status and the
     * headers, stores the response block in *response. NULL -> every request is refused.
     * Returns NULL or a trap (made with instance_fail). */
    wasm_trap_t *(*http_request)(void *owner, uint64_t request, uint64_t body, uint64_t *response);
    /* drop_store is about to free `store` of `owner`, whose Python views may point into it:
     * return 1 to take it (the host deletes it with wasmtime_store_delete once no view is left),
     * 0 to let it be deleted now. Called without or with the GIL. */
    int (*keep_store)(void *owner, wasmtime_store_t *store);
} host_hooks;

/* Set once by the Python layer at import. */
extern host_hooks instance_hooks;

/* The instance whose call is running on this thread, or NULL. initial-exec: a plain %fs-relative
 * load instead of a __tls_get_addr call in this shared object (read on every kernel call). */
extern __thread plugin_instance *current_instance __attribute__((tls_model("initial-exec")));

/* instance_prepare: make the store and instantiate the modules now if the next call would (see
 * instance_new); r->status is CALL_OK, CALL_INSTANTIATE or CALL_POOL_EXHAUSTED. holds_gil as
 * for instance_call (wasm start functions run here, under the call's time limit). */
void instance_prepare(plugin_instance *p, int holds_gil, call_result *r);

/* instance_call: run the export `export_index` with `input` (docs/ABI.md, "A call"), within
 * p->timeout_ns (instance_options; ignored on an engine without ENGINE_EPOCH). Fills *r; free r->message afterwards.
 * holds_gil: the caller holds the GIL; the call releases it once it has run for a tick (~1 ms),
 * or at once on an engine without ENGINE_EPOCH, and leaves the thread state in p->saved_thread,
 * which the caller must restore. Hooks take the GIL when they need it. */
void instance_call(plugin_instance *p, size_t export_index, const uint8_t *input, uint64_t input_length,
                   int holds_gil, call_result *r);

/* instance_set_http_headers: keep a copy of `json` for http_headers (NULL / 0 forgets it).
 * Returns 0, or -1 when out of host memory. */
int instance_set_http_headers(plugin_instance *p, const uint8_t *json, uint64_t length);

/* instance_cancel: make the running call (if any) on p fail as cancelled. Any thread, but p must
 * stay alive meanwhile: the Python side calls it holding the GIL, which close() needs too. */
void instance_cancel(plugin_instance *p);

/* instance_cancel_requested: has instance_cancel been called during the running call? */
int instance_cancel_requested(plugin_instance *p);

/* instance_fail: for import callbacks: record `message` and its kind as the reason of the failure
 * and return a trap carrying it. The first failure of a call wins. */
wasm_trap_t *instance_fail(plugin_instance *p, failure_kind kind, const char *message);

#endif
