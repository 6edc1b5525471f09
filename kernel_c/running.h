/*
 * running.h - the call in progress on this thread, as import callbacks and the epoch callback see it.
 *
 * Owns: the running call's state (running_call: its deadline, cancel request, interruption, the
 * failure an import callback recorded, the GIL it holds or released, the HTTP status and response
 * headers kept for it), `current_instance`, the host hooks (running_hooks), what happens at an
 * epoch tick (running_tick: the GIL released, timeouts, cancel) and the GIL hand-off.
 *
 * A leaf: it includes only libc headers, so every unit can use it. plugin_instance
 * (instance_state.h) is opaque here: its first member is its running_call, which running_state
 * reaches (instance_state.h checks the offset at compile time). What needs wasmtime is above:
 * failing an import with a trap is env_imports_fail (env_imports.h), the store's epoch callback
 * ticker_on_epoch_deadline (ticker.h), cancelling through an epoch bump call_cancel (call.h).
 *
 * Import callbacks find the instance of the running call through `current_instance`, a
 * thread-local set around every entry into wasm: the linker's callbacks can then be shared by every
 * instance, and the lookup costs less than going through the store's data.
 */
#ifndef EXTISM_FAST_RUNNING_H
#define EXTISM_FAST_RUNNING_H

#include <stddef.h>
#include <stdint.h>

struct plugin_instance;   /* instance_state.h */
struct wasm_trap_t;       /* wasmtime's (wasmtime_api.h), only passed through here */
struct wasmtime_store_t;

/* Why an import callback failed a call: lets the host raise the matching exception class. */
typedef enum failure_kind {
    FAILURE_NONE = 0,
    FAILURE_TRAP = 1,          /* bad offset or bad argument from the plugin */
    FAILURE_LIMIT = 2,         /* a memory, var or HTTP limit */
    FAILURE_HOST_FUNCTION = 3, /* a Python host function raised */
    FAILURE_DENIED = 4,        /* a capability the host did not grant */
    FAILURE_HOST_CALL = 5,     /* a host service failed (network error, bad request) */
} failure_kind;

typedef enum interrupt_reason { INTERRUPT_NONE = 0, INTERRUPT_TIMEOUT = 1, INTERRUPT_CANCEL = 2 } interrupt_reason;

/* The state of an instance's call in progress (the first member of plugin_instance). */
typedef struct running_call {
    /* Interruption: written by other threads (cancel) and by the epoch callback. */
    uint64_t deadline_ns;            /* monotonic (ticker_now_ns); 0 = no timeout for this call */
    int cancel_requested;            /* atomic (running_cancel_requested / running_request_cancel) */
    int in_call;                     /* atomic */
    interrupt_reason interrupt;
    /* Ctrl-C: the call's first epoch tick decides whether SIGINT stops it (-1: not yet; 1: a call
     * on Python's main thread with SIGINT counted, sigint.h); it does once sigint_count() has
     * moved past sigint_seen, the count at the call's start (call.c, ticker.c). */
    int sigint_watched;
    uint64_t sigint_seen;

    /* The GIL: a call may start holding it (cheap for short calls); the first epoch tick of the
     * call releases it (running_release_gil; without epochs: the call's start), and the caller
     * takes it back with the saved thread state after call_run returns. */
    int holds_gil;
    void *saved_thread;

    /* A failure an import callback recorded before trapping (so it can be reported precisely). */
    int host_failure;                /* failure_kind; 0 = none */
    char *host_failure_message;      /* malloc'ed; the caller that reports it takes it */

    int32_t http_status;             /* status of the last http_request of this call */
    uint8_t *http_headers;           /* JSON of its response headers (malloc'ed) or NULL */
    uint64_t http_headers_length;
} running_call;

typedef struct host_hooks {
    /* Log `msg` at level 0..4 (trace..error) for the plugin `owner`. Called without the GIL. */
    void (*log)(void *owner, int level, const uint8_t *msg, size_t len);
    /* The lowest level (0..4) that is logged for `owner`, or INT32_MAX when logging is off. */
    int32_t (*log_level)(void *owner);
    /* Release the GIL this thread holds; returns the thread state to restore it with. */
    void *(*release_gil)(void);
    /* Take the GIL back with the thread state release_gil returned. */
    void (*restore_gil)(void *thread_state);
    /* Perform http_request: owns (frees) the request and body blocks, sets the status and the
     * headers (running_set_http_status / _headers), stores the response block in *response.
     * NULL -> every request is refused. Returns NULL or a trap (made with env_imports_fail). */
    struct wasm_trap_t *(*http_request)(void *owner, uint64_t request, uint64_t body, uint64_t *response);
    /* store_drop is about to free `store` of `owner`, whose Python views may point into it:
     * return 1 to take it (the host deletes it with store_delete_detached once no view is left),
     * 0 to let it be deleted now. Called without or with the GIL. */
    int (*keep_store)(void *owner, struct wasmtime_store_t *store);
    /* 1 when the calling thread is the one Python runs signal handlers on (its main thread): only
     * calls there stop at Ctrl-C. Called without the GIL, at a call's first epoch tick. */
    int (*on_signal_thread)(void);
    /* 1 when another thread could want the GIL while a call runs (another Python thread or
     * interpreter exists), 0 when none can. Called with the GIL held. NULL -> always 1. */
    int (*gil_wanted)(void);
} host_hooks;

/* Set once by the Python layer at import. */
extern host_hooks running_hooks;

/* The instance whose call is running on this thread, or NULL. initial-exec: a plain %fs-relative
 * load instead of a __tls_get_addr call in this shared object (read on every kernel call). */
extern __thread struct plugin_instance *current_instance __attribute__((tls_model("initial-exec")));

/* running_state: p's running_call (its first member). */
static inline running_call *running_state(struct plugin_instance *p) { return (running_call *)(void *)p; }

/* running_begin: p's call (or preparation) begins on this thread; holds_gil: it holds the GIL.
 * No deadline until running_set_timeout. Inline, as the two below: on every call's path. */
static inline void running_begin(struct plugin_instance *p, int holds_gil) {
    running_call *run = running_state(p);
    __atomic_store_n(&run->cancel_requested, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&run->in_call, 1, __ATOMIC_RELEASE);
    run->holds_gil = holds_gil;
    run->saved_thread = NULL;
    run->deadline_ns = 0;
}

/* running_set_timeout: the call ends as timed out at the first tick `timeout_ns` after `now_ns`
 * (saturating: a timeout of centuries must not wrap round to a deadline in the past). */
static inline void running_set_timeout(struct plugin_instance *p, uint64_t now_ns, uint64_t timeout_ns) {
    running_state(p)->deadline_ns = timeout_ns > UINT64_MAX - now_ns ? UINT64_MAX : now_ns + timeout_ns;
}

/* running_end: the call has ended (the caller retakes the GIL it released: running_restore_gil). */
static inline void running_end(struct plugin_instance *p) {
    running_call *run = running_state(p);
    run->holds_gil = 0;
    __atomic_store_n(&run->in_call, 0, __ATOMIC_RELEASE);
}

/* running_clear_outcome: before each export run of the call: no interruption, no failure yet. */
static inline void running_clear_outcome(struct plugin_instance *p) {
    running_state(p)->interrupt = INTERRUPT_NONE;
    running_state(p)->host_failure = 0;
}

/* running_set_http_headers: keep a copy of `json` for http_headers (NULL / 0 forgets it).
 * Returns 0, or -1 when out of host memory. */
int running_set_http_headers(struct plugin_instance *p, const uint8_t *json, uint64_t length);

/* running_request_cancel: when p has a call running, ask it to end as cancelled (its next epoch
 * tick ends it) and return 1; else 0. Any thread, but p must stay alive meanwhile. */
int running_request_cancel(struct plugin_instance *p);

/* running_cancel_requested: has cancelling been requested during the running call? */
int running_cancel_requested(struct plugin_instance *p);

/* running_record_failure: for import callbacks: record `message` and its kind as the reason of
 * the failure of the running call (the first failure of a call wins). */
void running_record_failure(struct plugin_instance *p, failure_kind kind, const char *message);

/* The GIL hand-off, the one place it is written. A call may start holding the GIL (cheap for short
 * calls: holds_gil); it is released at the call's first epoch tick (running_tick), or without
 * epochs at its start, or after a host function, once another thread could want it (call.c), and
 * its thread state kept in saved_thread. A host function takes it back for its run and releases
 * it again; the caller takes it back after the call. */

/* running_release_gil: when this thread holds the GIL for p's call, release it (running_hooks)
 * and keep the thread state. Inline: on every call's path. */
static inline void running_release_gil(struct plugin_instance *p) {
    running_call *run = running_state(p);
    if (!run->holds_gil || running_hooks.release_gil == NULL) return;
    run->saved_thread = running_hooks.release_gil();
    run->holds_gil = 0;
}

/* running_restore_gil: when p's call released the GIL on this thread, take it back with the saved
 * state and return 1 (the thread holds it for the call again: running_release_gil gives it back);
 * else 0 (held already, or released by someone else, who takes it back). Inline, as above. */
static inline int running_restore_gil(struct plugin_instance *p) {
    running_call *run = running_state(p);
    if (run->saved_thread == NULL || run->holds_gil || running_hooks.restore_gil == NULL) return 0;
    running_hooks.restore_gil(run->saved_thread);
    run->saved_thread = NULL;
    run->holds_gil = 1;
    return 1;
}

/* running_deadline_ns: the running call's deadline (monotonic ns, ticker_now_ns), 0 = none. */
uint64_t running_deadline_ns(const struct plugin_instance *p);

/* running_set_http_status: the status of the call's last http_request (http_status_code). */
void running_set_http_status(struct plugin_instance *p, int32_t status);

/* running_interrupted: the running call ends as interrupted by `reason` (a host service gave up:
 * the call's deadline passed, or it was cancelled), not as a host failure. */
void running_interrupted(struct plugin_instance *p, interrupt_reason reason);

/* running_tick: an epoch tick at `now_ns` during p's call: releases the GIL the call holds (a long
 * call lets other threads run), then returns why the call must end ("plugin call cancelled" /
 * "plugin call timed out", its interrupt set), or NULL to go on. */
const char *running_tick(struct plugin_instance *p, uint64_t now_ns);

/* running_free: free what p's running state holds (the instance is being deleted). */
void running_free(struct plugin_instance *p);

#endif
