/* running.c - the call in progress on this thread: failing, cancelling, the epoch callback; contracts in running.h. */
#include "running.h"

#include <stdlib.h>
#include <string.h>

#include "sigint.h"
#include "ticker.h"

host_hooks running_hooks;
__thread plugin_instance *current_instance __attribute__((tls_model("initial-exec")));

wasm_trap_t *running_fail(plugin_instance *p, failure_kind kind, const char *message) {
    if (!p->host_failure) {
        p->host_failure = (int)kind;
        free(p->host_failure_message);
        p->host_failure_message = wt_copy_text(message, strlen(message));
    }
    return wt.wasmtime_trap_new(message, strlen(message));
}

int running_set_http_headers(plugin_instance *p, const uint8_t *json, uint64_t length) {
    free(p->http_headers);
    p->http_headers = NULL;
    p->http_headers_length = 0;
    if (json == NULL) return 0;
    p->http_headers = malloc(length ? (size_t)length : 1);
    if (p->http_headers == NULL) return -1;
    memcpy(p->http_headers, json, (size_t)length);
    p->http_headers_length = length;
    return 0;
}

int running_cancel_requested(plugin_instance *p) {
    return __atomic_load_n(&p->cancel_requested, __ATOMIC_ACQUIRE);
}

void running_cancel(plugin_instance *p) {
    if (!__atomic_load_n(&p->in_call, __ATOMIC_ACQUIRE) || !(p->compiled->bundle->flags & ENGINE_EPOCH)) return;
    __atomic_store_n(&p->cancel_requested, 1, __ATOMIC_RELEASE);
    wt.wasmtime_engine_increment_epoch(p->compiled->bundle->engine);
}

uint64_t running_deadline_ns(const plugin_instance *p) { return p->deadline_ns; }

void running_set_http_status(plugin_instance *p, int32_t status) { p->http_status = status; }

void running_interrupted(plugin_instance *p, interrupt_reason reason) { p->interrupt = reason; }

/* Ctrl-C during p's call, on Python's main thread (decided at its first tick: sigint_watch makes
 * sure SIGINT is counted)? Compared with the count at the call's start (call_begin). */
static int stopped_by_sigint(plugin_instance *p) {
    if (p->sigint_watched < 0)
        p->sigint_watched = running_hooks.on_signal_thread != NULL && running_hooks.on_signal_thread() && sigint_watch();
    return p->sigint_watched && sigint_count() != p->sigint_seen;
}

wasmtime_error_t *running_on_epoch_deadline(wasmtime_context_t *ctx, void *data, uint64_t *delta,
                                            wasmtime_update_deadline_kind_t *kind) {
    (void)ctx;
    plugin_instance *p = data;
    running_release_gil(p); /* a long call: let other threads run */
    if (running_cancel_requested(p) || stopped_by_sigint(p)) {
        p->interrupt = INTERRUPT_CANCEL;
        return wt.wasmtime_error_new("plugin call cancelled");
    }
    if (p->deadline_ns != 0 && ticker_now_ns() >= p->deadline_ns) {
        p->interrupt = INTERRUPT_TIMEOUT;
        return wt.wasmtime_error_new("plugin call timed out");
    }
    *delta = 1;
    *kind = WASMTIME_UPDATE_DEADLINE_CONTINUE;
    return NULL;
}
