/* running.c - the call in progress on this thread: its state, failing, cancelling, ticks; contracts in running.h. */
#include "running.h"

#include <stdlib.h>
#include <string.h>

host_hooks running_hooks;
__thread struct plugin_instance *current_instance __attribute__((tls_model("initial-exec")));

void running_record_failure(struct plugin_instance *p, failure_kind kind, const char *message) {
    running_call *run = running_state(p);
    if (run->host_failure) return;
    run->host_failure = (int)kind;
    free(run->host_failure_message);
    size_t length = strlen(message);
    run->host_failure_message = malloc(length + 1); /* NULL when out of memory: the kind still says it */
    if (run->host_failure_message != NULL) memcpy(run->host_failure_message, message, length + 1);
}

int running_set_http_headers(struct plugin_instance *p, const uint8_t *json, uint64_t length) {
    running_call *run = running_state(p);
    free(run->http_headers);
    run->http_headers = NULL;
    run->http_headers_length = 0;
    if (json == NULL) return 0;
    run->http_headers = malloc(length ? (size_t)length : 1);
    if (run->http_headers == NULL) return -1;
    memcpy(run->http_headers, json, (size_t)length);
    run->http_headers_length = length;
    return 0;
}

int running_cancel_requested(struct plugin_instance *p) {
    return __atomic_load_n(&running_state(p)->cancel_requested, __ATOMIC_ACQUIRE);
}

int running_request_cancel(struct plugin_instance *p) {
    running_call *run = running_state(p);
    if (!__atomic_load_n(&run->in_call, __ATOMIC_ACQUIRE)) return 0;
    __atomic_store_n(&run->cancel_requested, 1, __ATOMIC_RELEASE);
    return 1;
}

uint64_t running_deadline_ns(const struct plugin_instance *p) {
    return ((const running_call *)(const void *)p)->deadline_ns; /* its first member, as running_state */
}

void running_set_http_status(struct plugin_instance *p, int32_t status) { running_state(p)->http_status = status; }

void running_interrupted(struct plugin_instance *p, interrupt_reason reason) { running_state(p)->interrupt = reason; }

const char *running_tick(struct plugin_instance *p, uint64_t now_ns) {
    running_call *run = running_state(p);
    running_release_gil(p); /* a long call: let other threads run */
    if (running_cancel_requested(p)) {
        run->interrupt = INTERRUPT_CANCEL;
        return "plugin call cancelled";
    }
    if (run->deadline_ns != 0 && now_ns >= run->deadline_ns) {
        run->interrupt = INTERRUPT_TIMEOUT;
        return "plugin call timed out";
    }
    return NULL;
}

void running_free(struct plugin_instance *p) {
    running_call *run = running_state(p);
    free(run->http_headers);
    free(run->host_failure_message);
    run->http_headers = NULL;
    run->host_failure_message = NULL;
}
