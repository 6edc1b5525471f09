/* call.c - one call: the GIL, the ticker, startup functions, running an export, its result; contracts in call.h. */
#include "call.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "kernel_access.h"
#include "sigint.h"
#include "store.h"
#include "ticker.h"

static void set_message(call_result *r, char *message) {
    free(r->message);
    r->message = message;
}

/* Run one export (of that shape) with the kernel as is. Classifies traps, interrupts and exit
 * codes into r. */
static void run_export(plugin_instance *p, const wasmtime_func_t *func, export_shape shape, call_result *r) {
    wasmtime_val_raw_t raw[2];
    memset(raw, 0, sizeof raw);
    wasm_trap_t *trap = NULL;
    running_call *run = running_state(p);
    running_clear_outcome(p);
    if (p->compiled->bundle->flags & ENGINE_EPOCH) wt.wasmtime_context_set_epoch_deadline(p->ctx, 1);
    if (p->settings.fuel != 0) {
        wasmtime_error_t *fuel_error = wt.wasmtime_context_set_fuel(p->ctx, p->settings.fuel);
        if (fuel_error != NULL) wt.wasmtime_error_delete(fuel_error);
    }
    plugin_instance *saved = current_instance;
    current_instance = p;
    wasmtime_error_t *e = wt.wasmtime_func_call_unchecked(p->ctx, func, raw, 2, &trap);
    current_instance = saved;
    if (p->settings.fuel != 0) {
        uint64_t left = 0;
        wasmtime_error_t *fuel_error = wt.wasmtime_context_get_fuel(p->ctx, &left);
        if (fuel_error != NULL) wt.wasmtime_error_delete(fuel_error);
        p->fuel_consumed = left <= p->settings.fuel ? p->settings.fuel - left : 0;
    }
    r->rc = shape == EXPORT_RETURNS_I32 ? raw[0].i32 : 0;
    if (e == NULL && trap == NULL) return;
    if (run->interrupt != INTERRUPT_NONE) {
        r->status = run->interrupt == INTERRUPT_TIMEOUT ? CALL_TIMEOUT : CALL_CANCELLED;
        if (e) wt.wasmtime_error_delete(e);
        if (trap) wt.wasm_trap_delete(trap);
        return;
    }
    int exit_code;
    if (e != NULL && wt.wasmtime_error_exit_status(e, &exit_code)) {
        wt.wasmtime_error_delete(e);
        r->rc = exit_code;
        r->status = exit_code == 0 ? CALL_OK : CALL_EXIT;
        return;
    }
    if (run->host_failure) {
        r->status = CALL_HOST_FAILURE;
        r->failure = (failure_kind)run->host_failure;
        set_message(r, run->host_failure_message);
        run->host_failure_message = NULL;
        if (e) wt.wasmtime_error_delete(e);
        if (trap) wt.wasm_trap_delete(trap);
        return;
    }
    char *fault = kernel_access_fault_message(p->kernel);
    if (fault != NULL) { /* a failed accessor check: name the function and the offset */
        r->status = CALL_HOST_FAILURE;
        r->failure = FAILURE_TRAP;
        set_message(r, fault);
        if (e) wt.wasmtime_error_delete(e);
        if (trap) wt.wasm_trap_delete(trap);
        return;
    }
    wasmtime_trap_code_t code;
    if (trap != NULL && wt.wasmtime_trap_code(trap, &code) && code == WASMTIME_TRAP_CODE_OUT_OF_FUEL) {
        wt.wasm_trap_delete(trap);
        r->status = CALL_OUT_OF_FUEL;
        return;
    }
    r->status = CALL_TRAP;
    set_message(r, e != NULL ? wt_take_error_message(e) : wt_take_trap_message(trap));
}

/* Startup functions of every module, once per store, before the first call (docs/ABI.md, "A
 * call"). A failure is reported as CALL_INSTANTIATE with a message naming the startup export and
 * its module; the next call starts again from fresh instances (these ones are half started). */
static int run_startup(plugin_instance *p, call_result *r) {
    const compiled_plugin *c = p->compiled;
    for (size_t k = 0; k < c->startup_count; k++) {
        const startup_function *s = &c->startups[k];
        run_export(p, &p->startups[k], (export_shape)s->shape, r);
        if (r->status == CALL_OK && r->rc == 0) continue;
        p->needs_store = 1;
        if (r->status == CALL_TIMEOUT || r->status == CALL_CANCELLED || r->status == CALL_OUT_OF_FUEL) return -1;
        const char *module = compiled_plugin_module_label(c, s->position);
        const char *reason = r->message != NULL ? r->message : "it returned a non-zero code";
        size_t length = strlen(s->name) + strlen(module) + strlen(reason) + 64;
        char *message = malloc(length);
        if (message != NULL)
            snprintf(message, length, "startup function '%s' of module '%s' failed: %s", s->name, module, reason);
        set_message(r, message);
        r->status = CALL_INSTANTIATE;
        return -1;
    }
    p->initialized = 1;
    return 0;
}

/* Without epochs no tick can release the GIL once the plugin runs: release it now, unless no other
 * thread could want it meanwhile (the process's only Python thread keeps it: releasing and taking
 * it back costs more than a small call). */
static void release_gil_if_wanted(plugin_instance *p) {
    if (running_state(p)->holds_gil && (running_hooks.gil_wanted == NULL || running_hooks.gil_wanted()))
        running_release_gil(p);
}

/* A call or a preparation begins: the ticker for epoch engines, else the GIL released now if
 * wanted (nothing could release it later). Returns whether the ticker was started. */
static int call_begin(plugin_instance *p, int holds_gil, call_result *r) {
    memset(r, 0, sizeof *r);
    running_begin(p, holds_gil);
    running_state(p)->sigint_watched = -1; /* decided at the first epoch tick, if any (ticker.c) */
    running_state(p)->sigint_seen = sigint_count();
    int ticking = 0;
    if (p->compiled->bundle->flags & ENGINE_EPOCH) {
        ticking = ticker_call_begin(p->compiled->bundle->engine) == 0;
    } else {
        release_gil_if_wanted(p);
    }
    if (ticking && p->settings.timeout_ns != 0) running_set_timeout(p, ticker_now_ns(), p->settings.timeout_ns);
    return ticking;
}

static void call_end(plugin_instance *p, int ticking) {
    if (ticking) ticker_call_end();
    running_end(p);
}

/* The memories grew past the max_pages budget together during the call (memory_budget.h): the
 * call fails as in the official runtime, where the growth that passed it would have trapped. */
static void fail_over_budget(plugin_instance *p, call_result *r) {
    char budget[160], message[300];
    memory_budget_describe(&p->budget, budget, sizeof budget);
    snprintf(message, sizeof message, "the plugin's memories grew past their budget during the call (%s)", budget);
    r->status = CALL_HOST_FAILURE;
    r->failure = FAILURE_LIMIT;
    r->output = NULL;
    r->output_length = 0;
    set_message(r, wt_copy_text(message, strlen(message)));
}

/* The store the next call runs in, made now if needed. */
static int ensure_store(plugin_instance *p, call_result *r) {
    char *error = NULL;
    int failure = p->needs_store ? store_new(p, &error) : 0;
    if (failure == 0) return 0;
    store_drop(p);
    p->needs_store = 1;
    r->status = failure == STORE_POOL_EXHAUSTED ? CALL_POOL_EXHAUSTED : CALL_INSTANTIATE;
    if (failure == STORE_MEMORY_LIMIT) r->failure = FAILURE_LIMIT;
    set_message(r, error);
    return -1;
}

void call_prepare(plugin_instance *p, int holds_gil, call_result *r) {
    int ticking = call_begin(p, holds_gil, r);
    ensure_store(p, r);
    call_end(p, ticking);
}

void call_run(plugin_instance *p, size_t export_index, const uint8_t *input, uint64_t input_length,
              int holds_gil, call_result *r) {
    int ticking = call_begin(p, holds_gil, r);
    if (ensure_store(p, r) != 0) goto done;
    if (p->budget.started) memory_budget_begin_call(&p->budget);
    if (!p->initialized) {
        kernel_reset(p->kernel);
        if (run_startup(p, r) != 0) goto done;
    }
    kernel_reset(p->kernel);
    running_state(p)->http_status = 0;
    if (running_state(p)->http_headers != NULL) running_set_http_headers(p, NULL, 0); /* the last call's */
    if (kernel_write_input(p->kernel, input, input_length) != 0) {
        r->status = CALL_INPUT_TOO_LARGE;
        goto done;
    }
    run_export(p, &p->exports[export_index], (export_shape)p->compiled->export_shapes[export_index], r);
    if ((ptrdiff_t)export_index == p->compiled->start_index) p->needs_store = 1;
    /* The plugin's own error text wins over its return code and over a trap it raised after
     * error_set (AssemblyScript's abort does that); not over an interrupt or a host failure. */
    if (r->status != CALL_OK && r->status != CALL_TRAP) goto done;
    kernel *k = p->kernel;
    uint64_t error_length;
    const uint8_t *error_text = kernel_error_text(k, &error_length);
    if (error_text != NULL) {
        r->status = CALL_PLUGIN_ERROR;
        set_message(r, wt_copy_text((const char *)error_text, (size_t)error_length));
        goto done;
    }
    if (r->status != CALL_OK) goto done;
    if (r->rc != 0) {
        r->status = CALL_NONZERO;
        goto done;
    }
    r->output = kernel_ptr(k, k->output_offset, k->output_length);
    r->output_length = r->output != NULL ? k->output_length : 0;
done:
    if (p->budget.started && memory_budget_end_call(&p->budget) && r->status != CALL_TIMEOUT &&
        r->status != CALL_CANCELLED && r->status != CALL_OUT_OF_FUEL)
        fail_over_budget(p, r);
    call_end(p, ticking);
}

void call_host_function_returned(plugin_instance *p) {
    if (!(p->compiled->bundle->flags & ENGINE_EPOCH)) release_gil_if_wanted(p);
}

void call_cancel(plugin_instance *p) {
    const engine_bundle *bundle = p->compiled->bundle;
    /* The epoch bump runs every store's deadline callback at once: the cancelled call ends now. */
    if ((bundle->flags & ENGINE_EPOCH) && running_request_cancel(p)) wt.wasmtime_engine_increment_epoch(bundle->engine);
}
