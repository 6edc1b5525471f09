/*
 * env_imports.c - the `extism:host/env` functions of docs/ABI.md as unchecked wasmtime callbacks, except
 * the loads, stores and input reads, which run as wasm (kernel_access.c).
 *
 * Each callback finds its instance through `current_instance` (see running.h) and fails the call with
 * env_imports_fail. Arguments and
 * results share one raw array (unchecked API): args[0..] in, args[0] out. Every offset a plugin
 * passes is bounds-checked against the kernel region and never touches memory outside it.
 * Offset 0 is the null handle: an empty string wherever a string is read (docs/ABI.md). What a bad
 * offset does is the official runtime's: ignored where its kernel ignores it (input_set,
 * output_set, error_set out of range), an error naming the function and the offset where its host
 * fails the call (a key, value or message that is not a block). A strict kernel (kernel.strict)
 * traps on the ignored ones too, with the same kind of message.
 */
#include <stdio.h>
#include <string.h>

#include "env_imports.h"
#include "instance_state.h"
#include "kernel_access.h"
#include "wasm_types.h"

#define ARGS wasmtime_val_raw_t *args
#define UNUSED_CALLBACK_ARGS (void)env; (void)caller; (void)nargs
#define CALLBACK(name) static wasm_trap_t *name(void *env, wasmtime_caller_t *caller, ARGS, size_t nargs)

wasm_trap_t *env_imports_fail(struct plugin_instance *p, failure_kind kind, const char *message) {
    running_record_failure(p, kind, message);
    return wt.wasmtime_trap_new(message, strlen(message));
}

static wasm_trap_t *out_of_bounds(const char *function, uint64_t offset, uint64_t n) {
    char message[200];
    kernel_describe_out_of_bounds(current_instance->kernel, function, offset, n, message, sizeof message);
    return env_imports_fail(current_instance, FAILURE_TRAP, message);
}

/* ---- kernel: blocks ---- */

/* An allocation of n bytes failed the call: the max_pages budget refused the kernel memory's
 * growth or its block table's, or the block table took from the kernel's own limit. */
static wasm_trap_t *kernel_full(const char *function, uint64_t n) {
    char message[300], budget[160];
    plugin_instance *p = current_instance;
    if (p->budget.refused) {
        memory_budget_describe(&p->budget, budget, sizeof budget);
        snprintf(message, sizeof message,
                 "extism:host/env %s: cannot allocate %llu bytes: the kernel memory cannot grow (%s, block "
                 "bookkeeping included)", function, (unsigned long long)n, budget);
    } else {
        snprintf(message, sizeof message,
                 "extism:host/env %s: cannot allocate %llu bytes: kernel memory limit reached (%llu bytes, "
                 "block bookkeeping included)", function, (unsigned long long)n, (unsigned long long)p->kernel->limit);
    }
    return env_imports_fail(p, FAILURE_LIMIT, message);
}

/* A failed allocation answers 0 (the official kernel's null), except when the max_pages budget
 * refused it, or the block table (the plugin's bookkeeping) took from the kernel's limit: the
 * official runtime's refused memory growth then fails the call. */
CALLBACK(k_alloc) {
    UNUSED_CALLBACK_ARGS;
    plugin_instance *p = current_instance;
    uint64_t n = (uint64_t)args[0].i64, offset = kernel_alloc(p->kernel, n);
    args[0].i64 = (int64_t)offset;
    if (offset == 0 && n != 0 && (p->budget.refused || (n <= p->kernel->limit && kernel_table_charged(p->kernel))))
        return kernel_full("alloc", n);
    return NULL;
}

CALLBACK(k_free) {
    UNUSED_CALLBACK_ARGS;
    kernel_free(current_instance->kernel, (uint64_t)args[0].i64);
    return NULL;
}

CALLBACK(k_length) {
    UNUSED_CALLBACK_ARGS;
    args[0].i64 = (int64_t)kernel_length(current_instance->kernel, (uint64_t)args[0].i64);
    return NULL;
}

CALLBACK(k_memory_bytes) {
    UNUSED_CALLBACK_ARGS;
    args[0].i64 = (int64_t)kernel_memory_bytes(current_instance->kernel);
    return NULL;
}

CALLBACK(k_reset) {
    UNUSED_CALLBACK_ARGS;
    (void)args;
    kernel_reset(current_instance->kernel);
    return NULL;
}

/* May [offset, offset + length) be named as the input or output? The official kernel ignores a
 * range outside its blocks (offset 0 included); strict kernels trap on a non-empty one. */
static int range_usable(const char *function, uint64_t offset, uint64_t length, wasm_trap_t **trap) {
    kernel *k = current_instance->kernel;
    *trap = NULL;
    if (offset != 0 && kernel_ptr(k, offset, length) != NULL) return 1;
    if (k->strict && length != 0) *trap = out_of_bounds(function, offset, length);
    return k->strict && length == 0;
}

CALLBACK(k_input_set) {
    UNUSED_CALLBACK_ARGS;
    uint64_t offset = (uint64_t)args[0].i64, length = (uint64_t)args[1].i64;
    wasm_trap_t *trap;
    if (range_usable("input_set", offset, length, &trap)) kernel_set_input(current_instance->kernel, offset, length);
    return trap;
}

/* ---- kernel: output and error ---- */

CALLBACK(k_output_set) {
    UNUSED_CALLBACK_ARGS;
    kernel *k = current_instance->kernel;
    uint64_t offset = (uint64_t)args[0].i64, length = (uint64_t)args[1].i64;
    wasm_trap_t *trap;
    if (range_usable("output_set", offset, length, &trap)) {
        k->output_offset = offset;
        k->output_length = length;
    }
    return trap;
}

CALLBACK(k_output_length) {
    UNUSED_CALLBACK_ARGS;
    args[0].i64 = (int64_t)current_instance->kernel->output_length;
    return NULL;
}

CALLBACK(k_output_offset) {
    UNUSED_CALLBACK_ARGS;
    args[0].i64 = (int64_t)current_instance->kernel->output_offset;
    return NULL;
}

CALLBACK(k_error_set) {
    UNUSED_CALLBACK_ARGS;
    kernel *k = current_instance->kernel;
    uint64_t offset = (uint64_t)args[0].i64;
    ptrdiff_t block = offset != 0 ? kernel_find_active(k, offset) : -1;
    if (offset != 0 && block < 0) {
        if (k->strict) {
            char message[160];
            snprintf(message, sizeof message, "extism:host/env error_set: offset %llu is not an allocated block",
                     (unsigned long long)offset);
            return env_imports_fail(current_instance, FAILURE_TRAP, message);
        }
        if (kernel_ptr(k, offset, 1) == NULL) return NULL; /* the official kernel ignores it */
    }
    k->error_offset = offset;
    k->error_length = block >= 0 ? k->blocks[block].length : 0;
    return NULL;
}

CALLBACK(k_error_get) {
    UNUSED_CALLBACK_ARGS;
    args[0].i64 = (int64_t)current_instance->kernel->error_offset;
    return NULL;
}

/* ---- host: config and vars ---- */

/* The bytes of the active block at offset (length may be 0), or NULL when it is not a block.
 * Offset 0, the null handle, is the empty string. */
static const uint8_t *block_bytes(const kernel *k, uint64_t offset, uint64_t *length) {
    static const uint8_t empty[1];
    if (offset == 0) {
        *length = 0;
        return empty;
    }
    ptrdiff_t i = kernel_find_active(k, offset);
    if (i < 0) return NULL;
    *length = k->blocks[i].length;
    return k->base + offset;
}

static wasm_trap_t *not_a_block(const char *function, const char *what, uint64_t offset) {
    char message[160];
    snprintf(message, sizeof message, "extism:host/env %s: %s offset %llu is not an allocated block",
             function, what, (unsigned long long)offset);
    return env_imports_fail(current_instance, FAILURE_TRAP, message);
}

CALLBACK(h_config_get) {
    UNUSED_CALLBACK_ARGS;
    plugin_instance *p = current_instance;
    uint64_t key_offset = (uint64_t)args[0].i64, key_len;
    const uint8_t *key = block_bytes(p->kernel, key_offset, &key_len);
    if (key == NULL) return not_a_block("config_get", "key", key_offset);
    uint64_t result = 0;
    for (size_t i = 0; i < p->config_count; i++) {
        const kv_entry *e = &p->config[i];
        if (e->key_len != key_len || memcmp(e->key, key, (size_t)key_len) != 0) continue;
        kernel_free(p->kernel, key_offset);
        result = kernel_alloc_bytes(p->kernel, e->value, e->value_len);
        if (result == 0 && e->value_len != 0) return kernel_full("config_get", e->value_len);
        args[0].i64 = (int64_t)result;
        return NULL;
    }
    kernel_free(p->kernel, key_offset);
    args[0].i64 = 0;
    return NULL;
}

CALLBACK(h_var_get) {
    UNUSED_CALLBACK_ARGS;
    plugin_instance *p = current_instance;
    uint64_t key_offset = (uint64_t)args[0].i64, key_len;
    const uint8_t *key = block_bytes(p->kernel, key_offset, &key_len);
    if (key == NULL) return not_a_block("var_get", "key", key_offset);
    const kv_entry *e = vars_get(&p->vars, key, key_len);
    kernel_free(p->kernel, key_offset);
    uint64_t result = 0;
    if (e != NULL) {
        result = kernel_alloc_bytes(p->kernel, e->value, e->value_len);
        if (result == 0 && e->value_len != 0) return kernel_full("var_get", e->value_len);
    }
    args[0].i64 = (int64_t)result;
    return NULL;
}

CALLBACK(h_var_set) {
    UNUSED_CALLBACK_ARGS;
    plugin_instance *p = current_instance;
    uint64_t key_offset = (uint64_t)args[0].i64, value_offset = (uint64_t)args[1].i64;
    uint64_t key_len, value_len = 0;
    const uint8_t *key = block_bytes(p->kernel, key_offset, &key_len);
    if (key == NULL) return not_a_block("var_set", "key", key_offset);
    const uint8_t *value = NULL;
    if (value_offset != 0) {
        value = block_bytes(p->kernel, value_offset, &value_len);
        if (value == NULL) return not_a_block("var_set", "value", value_offset);
    }
    var_status status = vars_set(&p->vars, key, key_len, value, value_len);
    kernel_free(p->kernel, key_offset);
    if (value_offset != 0) kernel_free(p->kernel, value_offset);
    if (status == VAR_OK) return NULL;
    char message[200];
    if (status == VAR_DISABLED)
        snprintf(message, sizeof message, "extism:host/env var_set: vars are disabled (memory.max_var_bytes is 0)");
    else if (status == VAR_FULL)
        snprintf(message, sizeof message,
                 "extism:host/env var_set: variable store is full (memory.max_var_bytes is %llu; each var "
                 "counts its key, its value and %llu bytes)",
                 (unsigned long long)p->vars.max_bytes, (unsigned long long)VAR_ENTRY_OVERHEAD);
    else
        snprintf(message, sizeof message, "extism:host/env var_set: out of host memory");
    return env_imports_fail(p, status == VAR_DISABLED ? FAILURE_DENIED : FAILURE_LIMIT, message);
}

/* ---- host: logging ---- */

static wasm_trap_t *log_at(int level, ARGS) {
    plugin_instance *p = current_instance;
    uint64_t offset = (uint64_t)args[0].i64, len;
    if (running_hooks.log_level == NULL || level < running_hooks.log_level(p->owner)) {
        kernel_free(p->kernel, offset); /* filtered out: whatever the offset, as the official host */
        return NULL;
    }
    const uint8_t *msg = block_bytes(p->kernel, offset, &len);
    if (msg == NULL) return not_a_block("log", "message", offset);
    if (running_hooks.log != NULL) running_hooks.log(p->owner, level, msg, (size_t)len);
    kernel_free(p->kernel, offset);
    return NULL;
}

CALLBACK(h_log_trace) { UNUSED_CALLBACK_ARGS; return log_at(0, args); }
CALLBACK(h_log_debug) { UNUSED_CALLBACK_ARGS; return log_at(1, args); }
CALLBACK(h_log_info) { UNUSED_CALLBACK_ARGS; return log_at(2, args); }
CALLBACK(h_log_warn) { UNUSED_CALLBACK_ARGS; return log_at(3, args); }
CALLBACK(h_log_error) { UNUSED_CALLBACK_ARGS; return log_at(4, args); }

CALLBACK(h_get_log_level) {
    UNUSED_CALLBACK_ARGS;
    args[0].i32 = running_hooks.log_level != NULL ? running_hooks.log_level(current_instance->owner) : INT32_MAX;
    return NULL;
}

/* ---- host: HTTP ---- */

CALLBACK(h_http_request) {
    UNUSED_CALLBACK_ARGS;
    plugin_instance *p = current_instance;
    uint64_t request = (uint64_t)args[0].i64, body = (uint64_t)args[1].i64, response = 0;
    if (running_hooks.http_request == NULL) {
        kernel_free(p->kernel, request);
        kernel_free(p->kernel, body);
        return env_imports_fail(p, FAILURE_DENIED, "extism:host/env http_request: HTTP is not available in this host");
    }
    wasm_trap_t *trap = running_hooks.http_request(p->owner, request, body, &response);
    args[0].i64 = (int64_t)response;
    return trap;
}

CALLBACK(h_http_status_code) {
    UNUSED_CALLBACK_ARGS;
    args[0].i32 = running_state(current_instance)->http_status;
    return NULL;
}

CALLBACK(h_http_headers) {
    UNUSED_CALLBACK_ARGS;
    plugin_instance *p = current_instance;
    uint64_t offset = 0;
    const running_call *run = running_state(p);
    if (run->http_headers != NULL) {
        offset = kernel_alloc_bytes(p->kernel, run->http_headers, run->http_headers_length);
        if (offset == 0 && run->http_headers_length != 0) return kernel_full("http_headers", run->http_headers_length);
    }
    args[0].i64 = (int64_t)offset;
    return NULL;
}

/* ---- the table ---- */

typedef struct env_import {
    const char *name;
    const char *params;  /* I = i64, i = i32 */
    const char *results;
    wasmtime_func_unchecked_callback_t callback; /* NULL: provided by the kernel accessor module */
} env_import;

static const env_import ENV_IMPORTS[] = {
    {"alloc", "I", "I", k_alloc},
    {"free", "I", "", k_free},
    {"length", "I", "I", k_length},
    {"length_unsafe", "I", "I", k_length},
    {"load_u8", "I", "i", NULL},
    {"load_u64", "I", "I", NULL},
    {"store_u8", "Ii", "", NULL},
    {"store_u64", "II", "", NULL},
    {"input_length", "", "I", NULL},
    {"input_offset", "", "I", NULL},
    {"input_load_u8", "I", "i", NULL},
    {"input_load_u64", "I", "I", NULL},
    {"input_set", "II", "", k_input_set},
    {"output_set", "II", "", k_output_set},
    {"output_length", "", "I", k_output_length},
    {"output_offset", "", "I", k_output_offset},
    {"error_set", "I", "", k_error_set},
    {"error_get", "", "I", k_error_get},
    {"reset", "", "", k_reset},
    {"memory_bytes", "", "I", k_memory_bytes},
    {"config_get", "I", "I", h_config_get},
    {"var_get", "I", "I", h_var_get},
    {"var_set", "II", "", h_var_set},
    {"http_request", "II", "I", h_http_request},
    {"http_status_code", "", "i", h_http_status_code},
    {"http_headers", "", "I", h_http_headers},
    {"log_trace", "I", "", h_log_trace},
    {"log_debug", "I", "", h_log_debug},
    {"log_info", "I", "", h_log_info},
    {"log_warn", "I", "", h_log_warn},
    {"log_error", "I", "", h_log_error},
    {"get_log_level", "", "i", h_get_log_level},
};
#define ENV_IMPORT_COUNT (sizeof ENV_IMPORTS / sizeof ENV_IMPORTS[0])
static const char ENV_MODULE[] = "extism:host/env";

/* The import's type: its kinds are written "I" (i64) and "i" (i32). NULL when out of memory. */
static wasm_functype_t *functype(const env_import *imp) {
    uint8_t params[4], results[4];
    size_t param_count = strlen(imp->params), result_count = strlen(imp->results);
    for (size_t i = 0; i < param_count; i++) params[i] = imp->params[i] == 'I' ? WASM_I64 : WASM_I32;
    for (size_t i = 0; i < result_count; i++) results[i] = imp->results[i] == 'I' ? WASM_I64 : WASM_I32;
    return wasm_types_functype(params, param_count, results, result_count);
}

static int define(wasmtime_linker_t *linker, const env_import *imp, char **error) {
    wasm_functype_t *type = functype(imp);
    if (type == NULL) {
        *error = WT_TEXT("out of memory");
        return -1;
    }
    wasmtime_error_t *e = wt.wasmtime_linker_define_func_unchecked(linker, ENV_MODULE, sizeof ENV_MODULE - 1, imp->name,
                                                                   strlen(imp->name), type, imp->callback, NULL, NULL);
    wt.wasm_functype_delete(type);
    if (e == NULL) return 0;
    *error = wt_take_error_message(e);
    return -1;
}

int env_imports_define(wasmtime_linker_t *linker, char **error) {
    for (size_t i = 0; i < ENV_IMPORT_COUNT; i++) {
        const env_import *imp = &ENV_IMPORTS[i];
        if (imp->callback == NULL) continue;
        if (define(linker, imp, error) != 0) return -1;
    }
    return 0;
}

int env_import_type(const char *name, size_t name_len, wasm_functype_t **type) {
    for (size_t i = 0; i < ENV_IMPORT_COUNT; i++) {
        if (strlen(ENV_IMPORTS[i].name) == name_len && memcmp(ENV_IMPORTS[i].name, name, name_len) == 0) {
            *type = functype(&ENV_IMPORTS[i]);
            return 1;
        }
    }
    return 0;
}
