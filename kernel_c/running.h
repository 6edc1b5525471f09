/*
 * running.h - the call in progress on this thread, as import callbacks and the epoch callback see it.
 *
 * Owns: `current_instance`, the host hooks (running_hooks), failing the running call from an
 * import callback (running_fail), cancelling it (running_cancel), the epoch deadline callback
 * (running_on_epoch_deadline: the GIL released after a tick, timeouts, cancel, Ctrl-C), the GIL hand-off
 * and the HTTP response headers kept for the call.
 *
 * Import callbacks find the instance of the running call through `current_instance`, a
 * thread-local set around every entry into wasm: the linker's callbacks can then be shared by every
 * instance, and the lookup costs less than going through the store's data.
 */
#ifndef EXTISM_FAST_RUNNING_H
#define EXTISM_FAST_RUNNING_H

#include <stddef.h>
#include <stdint.h>

#include "instance_state.h"
#include "wasmtime_api.h"

typedef struct host_hooks {
    /* Log `msg` at level 0..4 (trace..error) for the plugin `owner`. Called without the GIL. */
    void (*log)(void *owner, int level, const uint8_t *msg, size_t len);
    /* The lowest level (0..4) that is logged for `owner`, or INT32_MAX when logging is off. */
    int32_t (*log_level)(void *owner);
    /* Release the GIL this thread holds; returns the thread state to restore it with. */
    void *(*release_gil)(void);
    /* Take the GIL back with the thread state release_gil returned. */
    void (*restore_gil)(void *thread_state);
    /* Perform http_request: owns (frees) the request and body blocks, sets p->http_status and the
     * headers, stores the response block in *response. NULL -> every request is refused.
     * Returns NULL or a trap (made with running_fail). */
    wasm_trap_t *(*http_request)(void *owner, uint64_t request, uint64_t body, uint64_t *response);
    /* store_drop is about to free `store` of `owner`, whose Python views may point into it:
     * return 1 to take it (the host deletes it with store_delete_detached once no view is left),
     * 0 to let it be deleted now. Called without or with the GIL. */
    int (*keep_store)(void *owner, wasmtime_store_t *store);
    /* 1 when the calling thread is the one Python runs signal handlers on (its main thread): only
     * calls there stop at Ctrl-C. Called without the GIL, at a call's first epoch tick. */
    int (*on_signal_thread)(void);
} host_hooks;

/* Set once by the Python layer at import. */
extern host_hooks running_hooks;

/* The instance whose call is running on this thread, or NULL. initial-exec: a plain %fs-relative
 * load instead of a __tls_get_addr call in this shared object (read on every kernel call). */
extern __thread plugin_instance *current_instance __attribute__((tls_model("initial-exec")));

/* running_set_http_headers: keep a copy of `json` for http_headers (NULL / 0 forgets it).
 * Returns 0, or -1 when out of host memory. */
int running_set_http_headers(plugin_instance *p, const uint8_t *json, uint64_t length);

/* running_cancel: make the running call (if any) on p fail as cancelled. Any thread, but p must
 * stay alive meanwhile: the Python side calls it holding the GIL, which close() needs too. */
void running_cancel(plugin_instance *p);

/* running_cancel_requested: has running_cancel been called during the running call? */
int running_cancel_requested(plugin_instance *p);

/* running_fail: for import callbacks: record `message` and its kind as the reason of the failure
 * and return a trap carrying it. The first failure of a call wins. */
wasm_trap_t *running_fail(plugin_instance *p, failure_kind kind, const char *message);

/* The GIL hand-off, the one place it is written. A call may start holding the GIL (cheap for short
 * calls: p->holds_gil); it is released at the call's first epoch tick (running_on_epoch_deadline),
 * or at its start without epochs (call.c), and its thread state kept in p->saved_thread. A host function
 * takes it back for its run and releases it again; the caller takes it back after the call. */

/* running_release_gil: when this thread holds the GIL for p's call, release it (running_hooks)
 * and keep the thread state in p->saved_thread. Inline: on every call's path. */
static inline void running_release_gil(plugin_instance *p) {
    if (!p->holds_gil || running_hooks.release_gil == NULL) return;
    p->saved_thread = running_hooks.release_gil();
    p->holds_gil = 0;
}

/* running_restore_gil: when p's call released the GIL on this thread, take it back with the saved
 * state and return 1 (the thread holds it for the call again: running_release_gil gives it back);
 * else 0 (held already, or released by someone else, who takes it back). Inline, as above. */
static inline int running_restore_gil(plugin_instance *p) {
    if (p->saved_thread == NULL || p->holds_gil || running_hooks.restore_gil == NULL) return 0;
    running_hooks.restore_gil(p->saved_thread);
    p->saved_thread = NULL;
    p->holds_gil = 1;
    return 1;
}

/* running_deadline_ns: the running call's deadline (monotonic ns, ticker_now_ns), 0 = none. */
uint64_t running_deadline_ns(const plugin_instance *p);

/* running_set_http_status: the status of the call's last http_request (http_status_code). */
void running_set_http_status(plugin_instance *p, int32_t status);

/* running_interrupted: the running call ends as interrupted by `reason` (a host service gave up:
 * the call's deadline passed, or it was cancelled), not as a host failure. */
void running_interrupted(plugin_instance *p, interrupt_reason reason);

/* running_on_epoch_deadline: the store's epoch deadline callback (data: the plugin_instance), at
 * every tick of a call on an ENGINE_EPOCH engine: releases the GIL the call holds (a long call lets other
 * threads run); at the first tick, on Python's main thread, makes sure SIGINT is counted
 * (sigint_watch); then ends the call when cancelled, interrupted by SIGINT (as cancelled) or past
 * its deadline, else continues for a tick. */
wasmtime_error_t *running_on_epoch_deadline(wasmtime_context_t *ctx, void *data, uint64_t *delta,
                                            wasmtime_update_deadline_kind_t *kind);

#endif
