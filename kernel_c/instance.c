/* instance.c - compiled plugins, instances, calls; contracts in instance.h. */
#include "instance.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "kernel_access.h"
#include "ticker.h"

host_hooks instance_hooks;
__thread plugin_instance *current_instance __attribute__((tls_model("initial-exec")));

/* ---- messages ---- */

wasm_trap_t *instance_fail(plugin_instance *p, failure_kind kind, const char *message) {
    if (!p->host_failure) {
        p->host_failure = (int)kind;
        free(p->host_failure_message);
        p->host_failure_message = wt_copy_text(message, strlen(message));
    }
    return wt.wasmtime_trap_new(message, strlen(message));
}

/* ---- engine and compiled plugins ---- */

/* The virtual memory every engine reserves per linear memory. Set explicitly (they are wasmtime's
 * 64-bit defaults) so that pooled and on-demand engines agree: a module serialized on one then
 * loads on the other (see CompiledPlugin's on-demand fallback). */
#define MEMORY_RESERVATION (UINT64_C(4) << 30)
#define MEMORY_GUARD (UINT64_C(32) << 20)
#define POOL_TABLE_ELEMENTS 1048576
#define POOL_INSTANCE_SIZE (UINT64_C(1) << 20)

/* Slots per plugin instance: the accessor and main, and room for dependencies on average. */
static uint32_t pool_memories(uint32_t n) { return 2 * n + n / 4; }
static uint32_t pool_instances(uint32_t n) { return 2 * n + n / 2; }
static uint32_t pool_tables(uint32_t n) { return n + n / 4; }

/* Can the pool's address space be reserved? wasmtime aborts the process when engine creation
 * fails, so try the same reservation first (PROT_NONE: no memory is committed). */
static int pool_fits(uint32_t n) {
    uint64_t bytes = (uint64_t)pool_memories(n) * (MEMORY_RESERVATION + 2 * MEMORY_GUARD) +
                     (uint64_t)pool_tables(n) * POOL_TABLE_ELEMENTS * 8 +
                     (uint64_t)pool_instances(n) * POOL_INSTANCE_SIZE;
    if (bytes > SIZE_MAX / 2) return 0;
    void *probe = mmap(NULL, (size_t)bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (probe == MAP_FAILED) return 0;
    munmap(probe, (size_t)bytes);
    return 1;
}

static void configure_pool(wasm_config_t *config, uint32_t n) {
    wasmtime_pooling_allocation_config_t *pool = wt.wasmtime_pooling_allocation_config_new();
    wt.wasmtime_pooling_allocation_config_total_memories_set(pool, pool_memories(n));
    wt.wasmtime_pooling_allocation_config_total_core_instances_set(pool, pool_instances(n));
    wt.wasmtime_pooling_allocation_config_total_tables_set(pool, pool_tables(n));
    /* Stacks are for async calls, which are not used; a pool of them costs ~2 ms to create. */
    wt.wasmtime_pooling_allocation_config_total_stacks_set(pool, 0);
    wt.wasmtime_pooling_allocation_config_max_memory_size_set(pool, (size_t)MEMORY_RESERVATION);
    wt.wasmtime_pooling_allocation_config_table_elements_set(pool, POOL_TABLE_ELEMENTS);
    wt.wasmtime_pooling_allocation_config_max_core_instance_size_set(pool, (size_t)POOL_INSTANCE_SIZE);
    /* A freed slot's first page is zeroed in place; the rest is given back with madvise, in
     * batches (one lock round per batch). Keeping more resident makes reuse no faster than this
     * but keeps every page it zeroes: 128 KiB cost 170 MiB after closing 900 instances. */
    wt.wasmtime_pooling_allocation_config_linear_memory_keep_resident_set(pool, 4096);
    wt.wasmtime_pooling_allocation_config_decommit_batch_size_set(pool, 32);
    wt.wasmtime_pooling_allocation_strategy_set(config, pool); /* copies it */
    wt.wasmtime_pooling_allocation_config_delete(pool);
}

/* Is this instantiation error the pooling allocator's "no free slot" (then the same plugin can
 * be instantiated on the on-demand twin engine)? */
static int pool_exhausted(const char *message) {
    return message != NULL && strstr(message, "maximum concurrent") != NULL;
}

int instance_engine_new(int flags, uint32_t pool_instances_wanted, engine_bundle *out, char **error) {
    memset(out, 0, sizeof *out);
    if (pool_instances_wanted > 0 && !pool_fits(pool_instances_wanted)) {
        *error = WT_TEXT("cannot reserve address space for the instance pool");
        return -1;
    }
    wasm_config_t *config = wt.wasm_config_new();
    if (config == NULL) {
        *error = WT_TEXT("cannot create a wasmtime configuration");
        return -1;
    }
    wt.wasmtime_config_epoch_interruption_set(config, (flags & ENGINE_EPOCH) != 0);
    wt.wasmtime_config_consume_fuel_set(config, (flags & ENGINE_FUEL) != 0);
    wt.wasmtime_config_memory_may_move_set(config, false);
    wt.wasmtime_config_memory_reservation_set(config, MEMORY_RESERVATION);
    wt.wasmtime_config_memory_guard_size_set(config, MEMORY_GUARD);
    if (flags & ENGINE_DEBUG) wt.wasmtime_config_debug_info_set(config, true);
    wasmtime_profiling_strategy_t profiler = (wasmtime_profiling_strategy_t)((flags & ENGINE_PROFILER_MASK) >> ENGINE_PROFILER_SHIFT);
    if (profiler != WASMTIME_PROFILING_STRATEGY_NONE) wt.wasmtime_config_profiler_set(config, profiler);
    if (pool_instances_wanted > 0) configure_pool(config, pool_instances_wanted);
    out->engine = wt.wasm_engine_new_with_config(config); /* consumes config */
    if (out->engine == NULL) {
        *error = WT_TEXT("cannot create the wasmtime engine");
        return -1;
    }
    out->flags = flags;
    out->pool_instances = pool_instances_wanted;
    size_t wat_length;
    const char *wat = kernel_access_wat(&wat_length);
    wasm_byte_vec_t wasm;
    wasmtime_error_t *e = wt.wasmtime_wat2wasm(wat, wat_length, &wasm);
    if (e == NULL) {
        e = wt.wasmtime_module_new(out->engine, wasm.data, wasm.size, &out->access_module);
        wt.wasm_byte_vec_delete(&wasm);
    }
    if (e != NULL) {
        *error = wt_take_error_message(e);
        wt.wasm_engine_delete(out->engine);
        out->engine = NULL;
        return -1;
    }
    return 0;
}

static void free_strings(char **strings, size_t count) {
    if (strings == NULL) return;
    for (size_t i = 0; i < count; i++) free(strings[i]);
    free(strings);
}

void compiled_plugin_delete(compiled_plugin *c) {
    if (c == NULL) return;
    if (c->main) wt.wasmtime_module_delete(c->main);
    for (size_t i = 0; i < c->dep_count; i++)
        if (c->deps && c->deps[i]) wt.wasmtime_module_delete(c->deps[i]);
    free(c->deps);
    free_strings(c->dep_names, c->dep_count);
    free_strings(c->export_names, c->export_count);
    free(c->export_positions);
    free(c->export_shapes);
    free(c->export_slots);
    if (c->plans != NULL)
        for (size_t i = 0; i <= c->dep_count; i++) import_plan_free(&c->plans[i]);
    free(c->plans);
    free(c->instantiation_order);
    if (c->linker) wt.wasmtime_linker_delete(c->linker);
    free(c);
}

static export_shape shape_of(const wasm_functype_t *type) {
    const wasm_valtype_vec_t *params = wt.wasm_functype_params(type);
    const wasm_valtype_vec_t *results = wt.wasm_functype_results(type);
    if (params->size != 0) return EXPORT_OTHER;
    if (results->size == 0) return EXPORT_RETURNS_NOTHING;
    if (results->size == 1 && wt.wasm_valtype_kind(results->data[0]) == WASM_I32) return EXPORT_RETURNS_I32;
    return EXPORT_OTHER;
}

static ptrdiff_t export_index(const compiled_plugin *c, const char *name) {
    for (size_t i = 0; i < c->export_count; i++)
        if (strcmp(c->export_names[i], name) == 0) return (ptrdiff_t)i;
    return -1;
}

static int list_exports(compiled_plugin *c) {
    wasm_exporttype_vec_t exports;
    wt.wasmtime_module_exports(c->main, &exports);
    c->export_names = calloc(exports.size + 1, sizeof(char *));
    c->export_positions = calloc(exports.size + 1, sizeof(size_t));
    c->export_shapes = calloc(exports.size + 1, 1);
    c->export_slots = calloc(exports.size + 1, 1);
    c->memory_export = -1;
    int ok = c->export_names && c->export_positions && c->export_shapes && c->export_slots;
    for (size_t i = 0; ok && i < exports.size; i++) {
        const wasm_externtype_t *type = wt.wasm_exporttype_type(exports.data[i]);
        wasm_externkind_t kind = wt.wasm_externtype_kind(type);
        if (kind == WASM_EXTERN_MEMORY && c->memory_export < 0 &&
            wt.wasm_exporttype_name(exports.data[i])->size == 6 &&
            memcmp(wt.wasm_exporttype_name(exports.data[i])->data, "memory", 6) == 0)
            c->memory_export = (ptrdiff_t)i;
        if (kind != WASM_EXTERN_FUNC) continue;
        const wasm_functype_t *ftype = wt.wasm_externtype_as_functype_const(type);
        const wasm_name_t *name = wt.wasm_exporttype_name(exports.data[i]);
        char *copy = wt_copy_text((const char *)name->data, name->size);
        if (copy == NULL) { ok = 0; break; }
        size_t params = wt.wasm_functype_params(ftype)->size, results = wt.wasm_functype_results(ftype)->size;
        size_t slots = params > results ? params : results;
        c->export_names[c->export_count] = copy;
        c->export_positions[c->export_count] = i;
        c->export_shapes[c->export_count] = (uint8_t)shape_of(ftype);
        c->export_slots[c->export_count] = (uint8_t)(slots > 255 ? 255 : slots);
        c->export_count++;
    }
    wt.wasm_exporttype_vec_delete(&exports);
    return ok ? 0 : -1;
}

/* Startup exports run with a 2-slot raw buffer and zeroed arguments (hs_init(0, 0)): refuse
 * any other type at load time instead of calling it with the wrong layout. */
static int check_startup_export(const compiled_plugin *c, ptrdiff_t index, char **error) {
    if (index < 0) return 0;
    if (c->export_shapes[index] != EXPORT_OTHER) return 0;
    if (index == c->hs_init_index && c->export_slots[index] <= 2) return 0;
    char message[300];
    snprintf(message, sizeof message,
             "startup export '%s' has an unsupported type: it must take no parameters (hs_init: at most two) "
             "and return nothing",
             c->export_names[index]);
    *error = wt_copy_text(message, strlen(message));
    return -1;
}

/* The module at `position`: the dependencies in manifest order, then main. */
static const wasmtime_module_t *module_at(const compiled_plugin *c, size_t position) {
    return position < c->dep_count ? c->deps[position] : c->main;
}

/* The name module `position` is linked under (error messages). */
static const char *module_label(const compiled_plugin *c, size_t position) {
    return position < c->dep_count ? c->dep_names[position] : "main";
}

/* One import plan per module (deps in order, then main) and their order; see import_plan.h. */
static int build_import_plans(compiled_plugin *c, link_problem *problem, char **error) {
    ptrdiff_t memory = import_plan_export_index(c->bundle->access_module, "memory");
    if (memory < 0) {
        *error = WT_TEXT("kernel accessor memory missing");
        return -1;
    }
    c->access_memory_export = (size_t)memory;
    size_t count = c->dep_count + 1;
    c->plans = calloc(count, sizeof *c->plans);
    c->instantiation_order = calloc(count, sizeof *c->instantiation_order);
    const wasmtime_module_t **modules = calloc(count, sizeof *modules);
    const char **names = calloc(count, sizeof *names);
    int status = -1;
    if (c->plans == NULL || c->instantiation_order == NULL || modules == NULL || names == NULL) {
        *error = WT_TEXT("out of memory");
    } else {
        for (size_t i = 0; i < count; i++) {
            modules[i] = module_at(c, i);
            names[i] = i < c->dep_count ? c->dep_names[i] : NULL; /* nothing imports from main */
        }
        status = import_plans_build(c->plans, count, modules, names, c->bundle->access_module,
                                    c->instantiation_order, &c->forward_count, problem);
    }
    free(modules);
    free(names);
    return status;
}

import_source compiled_plugin_import_source(const compiled_plugin *c, size_t position, size_t index) {
    return c->plans[position].slots[index].source;
}

int compiled_plugin_link(compiled_plugin *c, link_problem *problem, char **error) {
    if (list_exports(c) != 0) {
        *error = WT_TEXT("out of memory");
        return -1;
    }
    /* As the official runtime: Haskell plugins get `_initialize` then `hs_init(0, 0)`; others get
     * `__wasm_call_ctors`, else `_initialize` (a reactor's `_initialize` runs the ctors itself). */
    c->hs_init_index = export_index(c, "hs_init");
    ptrdiff_t initialize = export_index(c, "_initialize"), ctors = export_index(c, "__wasm_call_ctors");
    if (c->hs_init_index >= 0) c->initialize_index = initialize;
    else c->initialize_index = ctors >= 0 ? ctors : initialize;
    c->start_index = export_index(c, "_start");
    if (check_startup_export(c, c->initialize_index, error) != 0) return -1;
    if (check_startup_export(c, c->hs_init_index, error) != 0) return -1;
    return build_import_plans(c, problem, error);
}

/* ---- stores ---- */

static wasmtime_error_t *on_epoch_deadline(wasmtime_context_t *ctx, void *data, uint64_t *delta,
                                           wasmtime_update_deadline_kind_t *kind) {
    (void)ctx;
    plugin_instance *p = data;
    if (p->holds_gil && instance_hooks.release_gil != NULL) {
        p->saved_thread = instance_hooks.release_gil(); /* a long call: let other threads run */
        p->holds_gil = 0;
    }
    if (instance_cancel_requested(p)) {
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

/* Append to the stream's buffer, up to INSTANCE_WASI_OUTPUT_MAX per call (the rest is dropped). */
static ptrdiff_t keep_wasi_output(plugin_instance *p, int stream, const unsigned char *bytes, size_t len) {
    size_t room = INSTANCE_WASI_OUTPUT_MAX - p->wasi_output_length[stream];
    size_t n = len < room ? len : room;
    size_t needed = p->wasi_output_length[stream] + n;
    if (needed > p->wasi_output_capacity[stream]) {
        size_t capacity = needed < 4096 ? 4096 : needed * 2;
        uint8_t *grown = realloc(p->wasi_output[stream], capacity);
        if (grown == NULL) return (ptrdiff_t)len;
        p->wasi_output[stream] = grown;
        p->wasi_output_capacity[stream] = capacity;
    }
    if (n) memcpy(p->wasi_output[stream] + p->wasi_output_length[stream], bytes, n);
    p->wasi_output_length[stream] = needed;
    return (ptrdiff_t)len;
}

static ptrdiff_t wasi_stdout(void *data, const unsigned char *bytes, size_t len) {
    return keep_wasi_output(data, 0, bytes, len);
}

static ptrdiff_t wasi_stderr(void *data, const unsigned char *bytes, size_t len) {
    return keep_wasi_output(data, 1, bytes, len);
}

const uint8_t *instance_take_wasi_output(plugin_instance *p, int stream, size_t *length) {
    *length = p->wasi_output_length[stream];
    p->wasi_output_length[stream] = 0;
    return p->wasi_output[stream];
}

static wasi_config_t *make_wasi_config(plugin_instance *p, char **error) {
    wasi_config_t *config = wt.wasi_config_new();
    if (config == NULL) {
        *error = WT_TEXT("cannot create a WASI configuration");
        return NULL;
    }
    if (p->wasi_stdio == WASI_STDIO_INHERIT) {
        wt.wasi_config_inherit_stdout(config);
        wt.wasi_config_inherit_stderr(config);
    } else if (p->wasi_stdio == WASI_STDIO_LOG) {
        wt.wasi_config_set_stdout_custom(config, wasi_stdout, p, NULL);
        wt.wasi_config_set_stderr_custom(config, wasi_stderr, p, NULL);
    } /* else: WASI_STDIO_DISCARD, wasmtime's default sink */
    /* Deny by default: wasmtime gives no arguments and an empty environment unless set. */
    if (p->wasi_arg_count && !wt.wasi_config_set_argv(config, p->wasi_arg_count, (const char **)p->wasi_args)) {
        *error = wt_copy_text("wasi_args: wasmtime refused the arguments", 41);
        wt.wasi_config_delete(config);
        return NULL;
    }
    if (p->wasi_env_count) {
        const char **names = malloc(p->wasi_env_count * sizeof *names);
        const char **values = malloc(p->wasi_env_count * sizeof *values);
        int ok = names != NULL && values != NULL;
        for (size_t i = 0; ok && i < p->wasi_env_count; i++) {
            names[i] = p->wasi_env[2 * i];
            values[i] = p->wasi_env[2 * i + 1];
        }
        ok = ok && wt.wasi_config_set_env(config, p->wasi_env_count, names, values);
        free(names);
        free(values);
        if (!ok) {
            *error = wt_copy_text("wasi_env: wasmtime refused the environment", 42);
            wt.wasi_config_delete(config);
            return NULL;
        }
    }
    for (size_t i = 0; i < p->preopen_count; i++) {
        const wasi_preopen *po = &p->preopens[i];
        if (!wt.wasi_config_preopen_dir(config, po->host_path, po->guest_path, !po->read_only)) {
            char message[600];
            snprintf(message, sizeof message, "manifest.allowed_paths: cannot mount host directory '%s' at '%s'",
                     po->host_path, po->guest_path);
            *error = wt_copy_text(message, strlen(message));
            wt.wasi_config_delete(config);
            return NULL;
        }
    }
    return config;
}

static void drop_store(plugin_instance *p) {
    if (p->store != NULL) wt.wasmtime_store_delete(p->store);
    p->store = NULL;
    p->ctx = NULL;
    p->initialized = 0;
}

/* Grow the kernel memory (kernel_grow_fn): the accessor instance's wasm memory. The store limiter
 * bounds it like every other memory of the store (max_pages each, as the official runtime). */
static int grow_kernel_memory(void *data, uint64_t new_size, uint8_t **base, uint64_t *size) {
    plugin_instance *p = data;
    uint64_t current = wt.wasmtime_memory_data_size(p->ctx, &p->kernel_memory);
    if (new_size > current) {
        uint64_t previous, pages = (new_size - current + 65535) / 65536;
        wasmtime_error_t *e = wt.wasmtime_memory_grow(p->ctx, &p->kernel_memory, pages, &previous);
        if (e != NULL) {
            wt.wasmtime_error_delete(e);
            return -1;
        }
    }
    *base = wt.wasmtime_memory_data(p->ctx, &p->kernel_memory);
    *size = wt.wasmtime_memory_data_size(p->ctx, &p->kernel_memory);
    return 0;
}

/* The kernel accessors, then the plugin's modules in dependency order, all in this store, each
 * with the imports its plan names. `instances` has room for dep_count + 1 instances, by position
 * (main is the last). */
static int instantiate_modules(plugin_instance *p, wasmtime_instance_t *instances, char **error) {
    const compiled_plugin *c = p->compiled;
    wasm_trap_t *trap = NULL;
    wasmtime_instance_t access;
    wasmtime_extern_t memory;
    char *name;
    size_t name_length;
    struct forwarder *forwarder_room[8];
    forward_list forwards = {forwarder_room, 0};
    if (c->forward_count > sizeof forwarder_room / sizeof forwarder_room[0]) {
        forwards.items = malloc(c->forward_count * sizeof *forwards.items);
        if (forwards.items == NULL) {
            *error = WT_TEXT("out of host memory");
            return -1;
        }
    }
    plugin_instance *saved = current_instance;
    current_instance = p; /* a start function may call imports */
    wasmtime_error_t *e = wt.wasmtime_instance_new(p->ctx, c->bundle->access_module, NULL, 0, &access, &trap);
    if (e == NULL && trap == NULL) {
        wt.wasmtime_instance_export_nth(p->ctx, &access, c->access_memory_export, &name, &name_length, &memory);
        p->kernel_memory = memory.of.memory;
        kernel_attach(p->kernel, wt.wasmtime_memory_data(p->ctx, &p->kernel_memory),
                      wt.wasmtime_memory_data_size(p->ctx, &p->kernel_memory));
    }
    for (size_t k = 0; e == NULL && trap == NULL && k <= c->dep_count; k++) {
        size_t i = c->instantiation_order[k];
        e = import_plan_instantiate(&c->plans[i], p->ctx, module_at(c, i), i, module_label(c, i), c->linker,
                                    &access, instances, c->forward_count ? &forwards : NULL, &trap);
    }
    current_instance = saved;
    if (forwards.items != forwarder_room) free(forwards.items);
    if (e != NULL) {
        *error = wt_take_error_message(e);
        return -1;
    }
    if (trap != NULL) {
        *error = wt_take_trap_message(trap);
        return -1;
    }
    return 0;
}

/* Main's memory and function exports, by their index among main's exports. */
static void lookup_exports(plugin_instance *p, const wasmtime_instance_t *main) {
    const compiled_plugin *c = p->compiled;
    wasmtime_extern_t item;
    char *name;
    size_t name_length;
    p->has_main_memory = c->memory_export >= 0 &&
                         wt.wasmtime_instance_export_nth(p->ctx, main, (size_t)c->memory_export, &name,
                                                         &name_length, &item);
    if (p->has_main_memory) p->main_memory = item.of.memory;
    for (size_t i = 0; i < c->export_count; i++) {
        wt.wasmtime_instance_export_nth(p->ctx, main, c->export_positions[i], &name, &name_length, &item);
        p->exports[i] = item.of.func;
    }
}

/* A fresh store with the modules instantiated and the exports looked up. */
static int new_store(plugin_instance *p, char **error) {
    const compiled_plugin *c = p->compiled;
    drop_store(p);
    p->store = wt.wasmtime_store_new(c->bundle->engine, p, NULL);
    if (p->store == NULL) {
        *error = WT_TEXT("cannot create a wasmtime store");
        return -1;
    }
    p->ctx = wt.wasmtime_store_context(p->store);
    wt.wasmtime_store_limiter(p->store, p->max_memory_bytes, p->max_table_elements, -1, -1, -1);
    if (c->bundle->flags & ENGINE_EPOCH) {
        wt.wasmtime_store_epoch_deadline_callback(p->store, on_epoch_deadline, p, NULL);
        wt.wasmtime_context_set_epoch_deadline(p->ctx, 1);
    }
    if (p->fuel != 0) { /* a fresh store has no fuel: the start function would trap at once */
        wasmtime_error_t *fuel_error = wt.wasmtime_context_set_fuel(p->ctx, p->fuel);
        if (fuel_error != NULL) wt.wasmtime_error_delete(fuel_error);
    }
    if (p->wasi) {
        wasi_config_t *config = make_wasi_config(p, error);
        if (config == NULL) return -1;
        wasmtime_error_t *e = wt.wasmtime_context_set_wasi(p->ctx, config); /* consumes config */
        if (e != NULL) {
            *error = wt_take_error_message(e);
            return -1;
        }
    }
    wasmtime_instance_t on_stack[8];
    wasmtime_instance_t *instances = on_stack;
    if (c->dep_count + 1 > sizeof on_stack / sizeof on_stack[0]) {
        instances = calloc(c->dep_count + 1, sizeof *instances);
        if (instances == NULL) {
            *error = WT_TEXT("out of host memory");
            return -1;
        }
    }
    int status = instantiate_modules(p, instances, error);
    if (status == 0) lookup_exports(p, &instances[c->dep_count]);
    if (instances != on_stack) free(instances);
    if (status != 0) return -1;
    p->needs_store = 0;
    return 0;
}

static int copy_config(plugin_instance *p, const kv_entry *config, size_t count) {
    p->config = calloc(count + 1, sizeof *p->config);
    if (p->config == NULL) return -1;
    for (size_t i = 0; i < count; i++) {
        kv_entry *e = &p->config[i];
        e->key = malloc(config[i].key_len + 1);
        e->value = malloc(config[i].value_len + 1);
        p->config_count = i + 1;
        if (e->key == NULL || e->value == NULL) return -1;
        memcpy(e->key, config[i].key, (size_t)config[i].key_len);
        memcpy(e->value, config[i].value, (size_t)config[i].value_len);
        e->key_len = config[i].key_len;
        e->value_len = config[i].value_len;
    }
    return 0;
}

static int copy_preopens(plugin_instance *p, const wasi_preopen *preopens, size_t count) {
    p->preopens = calloc(count + 1, sizeof *p->preopens);
    if (p->preopens == NULL) return -1;
    for (size_t i = 0; i < count; i++) {
        wasi_preopen *po = &p->preopens[i];
        po->host_path = wt_copy_text(preopens[i].host_path, strlen(preopens[i].host_path));
        po->guest_path = wt_copy_text(preopens[i].guest_path, strlen(preopens[i].guest_path));
        po->read_only = preopens[i].read_only;
        p->preopen_count = i + 1;
        if (po->host_path == NULL || po->guest_path == NULL) return -1;
    }
    return 0;
}

/* A malloc'ed array of `count` copies of NUL-terminated strings (NULL when out of memory). */
static char **copy_strings(const char *const *strings, size_t count) {
    char **copies = calloc(count + 1, sizeof *copies);
    for (size_t i = 0; copies != NULL && i < count; i++) {
        copies[i] = wt_copy_text(strings[i], strlen(strings[i]));
        if (copies[i] == NULL) {
            free_strings(copies, i);
            return NULL;
        }
    }
    return copies;
}

plugin_instance *instance_new(const compiled_plugin *compiled, void *owner, const instance_options *options,
                              char **error) {
    plugin_instance *p = calloc(1, sizeof *p);
    if (p == NULL) {
        *error = WT_TEXT("out of memory");
        return NULL;
    }
    p->compiled = compiled;
    p->owner = owner;
    p->max_memory_bytes = options->max_memory_bytes;
    p->max_table_elements = options->max_table_elements;
    p->fuel = options->fuel;
    p->wasi = options->wasi;
    p->wasi_stdio = options->wasi_stdio;
    p->wasi_args = copy_strings(options->wasi_args, options->wasi_arg_count);
    p->wasi_arg_count = p->wasi_args != NULL ? options->wasi_arg_count : 0;
    p->wasi_env = copy_strings(options->wasi_env, 2 * options->wasi_env_count);
    p->wasi_env_count = p->wasi_env != NULL ? options->wasi_env_count : 0;
    vars_init(&p->vars, options->max_var_bytes);
    p->kernel = kernel_new(options->kernel_limit, grow_kernel_memory, p);
    p->exports = calloc(compiled->export_count + 1, sizeof *p->exports);
    if (p->kernel == NULL || p->exports == NULL || p->wasi_args == NULL || p->wasi_env == NULL || copy_config(p, options->config, options->config_count) != 0 ||
        copy_preopens(p, options->preopens, options->preopen_count) != 0) {
        *error = WT_TEXT("cannot reserve memory for the plugin instance (kernel memory or host memory)");
        instance_delete(p);
        return NULL;
    }
    p->kernel->strict = options->strict != 0; /* the header follows when the region is attached */
    p->needs_store = 1; /* instantiated by the first call (instance_prepare) */
    return p;
}

wasmtime_store_t *instance_detach_store(plugin_instance *p) {
    wasmtime_store_t *store = p->store;
    p->store = NULL; /* drop_store then has nothing to delete */
    drop_store(p);
    p->needs_store = 1;
    return store;
}

int instance_use_compiled(plugin_instance *p, const compiled_plugin *compiled) {
    if (p->store != NULL || compiled->export_count != p->compiled->export_count) return -1;
    p->compiled = compiled;
    return 0;
}

void instance_reset_kernel(plugin_instance *p) {
    if (p->store != NULL) kernel_reset(p->kernel);
}

const uint8_t *instance_kernel_memory(plugin_instance *p, size_t *length) {
    *length = 0;
    if (p->store == NULL) return NULL;
    *length = wt.wasmtime_memory_data_size(p->ctx, &p->kernel_memory);
    return wt.wasmtime_memory_data(p->ctx, &p->kernel_memory);
}

const uint8_t *instance_main_memory(plugin_instance *p, size_t *length) {
    *length = 0;
    if (p->store == NULL || !p->has_main_memory) return NULL;
    *length = wt.wasmtime_memory_data_size(p->ctx, &p->main_memory);
    return wt.wasmtime_memory_data(p->ctx, &p->main_memory);
}

void instance_delete(plugin_instance *p) {
    if (p == NULL) return;
    drop_store(p);
    kernel_delete(p->kernel);
    vars_clear(&p->vars);
    for (size_t i = 0; i < p->config_count; i++) {
        free(p->config[i].key);
        free(p->config[i].value);
    }
    free(p->config);
    for (size_t i = 0; i < p->preopen_count; i++) {
        free(p->preopens[i].host_path);
        free(p->preopens[i].guest_path);
    }
    free(p->preopens);
    free_strings(p->wasi_args, p->wasi_arg_count);
    free_strings(p->wasi_env, 2 * p->wasi_env_count);
    free(p->exports);
    free(p->wasi_output[0]);
    free(p->wasi_output[1]);
    free(p->http_headers);
    free(p->host_failure_message);
    free(p);
}

/* ---- calls ---- */

int instance_set_http_headers(plugin_instance *p, const uint8_t *json, uint64_t length) {
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

int instance_cancel_requested(plugin_instance *p) {
    return __atomic_load_n(&p->cancel_requested, __ATOMIC_ACQUIRE);
}

void instance_cancel(plugin_instance *p) {
    if (!__atomic_load_n(&p->in_call, __ATOMIC_ACQUIRE) || !(p->compiled->bundle->flags & ENGINE_EPOCH)) return;
    __atomic_store_n(&p->cancel_requested, 1, __ATOMIC_RELEASE);
    wt.wasmtime_engine_increment_epoch(p->compiled->bundle->engine);
}

static void set_message(call_result *r, char *message) {
    free(r->message);
    r->message = message;
}

/* Run one export with the kernel as is. Classifies traps, interrupts and exit codes into r. */
static void run_export(plugin_instance *p, size_t index, call_result *r) {
    wasmtime_val_raw_t raw[2];
    memset(raw, 0, sizeof raw);
    wasm_trap_t *trap = NULL;
    p->interrupt = INTERRUPT_NONE;
    p->host_failure = 0;
    if (p->compiled->bundle->flags & ENGINE_EPOCH) wt.wasmtime_context_set_epoch_deadline(p->ctx, 1);
    if (p->fuel != 0) {
        wasmtime_error_t *fuel_error = wt.wasmtime_context_set_fuel(p->ctx, p->fuel);
        if (fuel_error != NULL) wt.wasmtime_error_delete(fuel_error);
    }
    plugin_instance *saved = current_instance;
    current_instance = p;
    wasmtime_error_t *e = wt.wasmtime_func_call_unchecked(p->ctx, &p->exports[index], raw, 2, &trap);
    current_instance = saved;
    if (p->fuel != 0) {
        uint64_t left = 0;
        wasmtime_error_t *fuel_error = wt.wasmtime_context_get_fuel(p->ctx, &left);
        if (fuel_error != NULL) wt.wasmtime_error_delete(fuel_error);
        p->fuel_consumed = left <= p->fuel ? p->fuel - left : 0;
    }
    r->rc = p->compiled->export_shapes[index] == EXPORT_RETURNS_I32 ? raw[0].i32 : 0;
    if (e == NULL && trap == NULL) return;
    if (p->interrupt != INTERRUPT_NONE) {
        r->status = p->interrupt == INTERRUPT_TIMEOUT ? CALL_TIMEOUT : CALL_CANCELLED;
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
    if (p->host_failure) {
        r->status = CALL_HOST_FAILURE;
        r->failure = (failure_kind)p->host_failure;
        set_message(r, p->host_failure_message);
        p->host_failure_message = NULL;
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

/* Startup functions, once per store, before the first call (docs/ABI.md, "A call"). A failure
 * is reported as CALL_INSTANTIATE with a message naming the startup export. */
static int run_startup(plugin_instance *p, call_result *r) {
    const compiled_plugin *c = p->compiled;
    ptrdiff_t order[2] = {c->initialize_index, c->hs_init_index};
    for (size_t i = 0; i < 2; i++) {
        if (order[i] < 0) continue;
        run_export(p, (size_t)order[i], r);
        if (r->status == CALL_OK && r->rc == 0) continue;
        if (r->status == CALL_TIMEOUT || r->status == CALL_CANCELLED || r->status == CALL_OUT_OF_FUEL) return -1;
        const char *name = c->export_names[order[i]];
        const char *reason = r->message != NULL ? r->message : "it returned a non-zero code";
        size_t length = strlen(name) + strlen(reason) + 64;
        char *message = malloc(length);
        if (message != NULL) snprintf(message, length, "startup function '%s' failed: %s", name, reason);
        set_message(r, message);
        r->status = CALL_INSTANTIATE;
        return -1;
    }
    p->initialized = 1;
    return 0;
}

/* A call or a preparation begins: the ticker for epoch engines, else the GIL released now
 * (nothing could release it later). Returns whether the ticker was started. */
static int call_begin(plugin_instance *p, uint64_t timeout_ns, int holds_gil, call_result *r) {
    memset(r, 0, sizeof *r);
    __atomic_store_n(&p->cancel_requested, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&p->in_call, 1, __ATOMIC_RELEASE);
    p->holds_gil = holds_gil;
    p->saved_thread = NULL;
    int ticking = 0;
    if (p->compiled->bundle->flags & ENGINE_EPOCH) {
        ticking = ticker_call_begin(p->compiled->bundle->engine) == 0;
    } else if (holds_gil && instance_hooks.release_gil != NULL) {
        p->saved_thread = instance_hooks.release_gil();
        p->holds_gil = 0;
    }
    p->deadline_ns = 0;
    if (ticking && timeout_ns != 0) {
        uint64_t now = ticker_now_ns();
        /* Saturating: a timeout of centuries must not wrap round to a deadline in the past. */
        p->deadline_ns = timeout_ns > UINT64_MAX - now ? UINT64_MAX : now + timeout_ns;
    }
    return ticking;
}

static void call_end(plugin_instance *p, int ticking) {
    if (ticking) ticker_call_end();
    p->holds_gil = 0;
    __atomic_store_n(&p->in_call, 0, __ATOMIC_RELEASE);
}

/* The store the next call runs in, made now if needed. */
static int ensure_store(plugin_instance *p, call_result *r) {
    char *error = NULL;
    if (!p->needs_store || new_store(p, &error) == 0) return 0;
    drop_store(p);
    p->needs_store = 1;
    r->status = p->compiled->bundle->pool_instances && pool_exhausted(error) ? CALL_POOL_EXHAUSTED
                                                                                      : CALL_INSTANTIATE;
    set_message(r, error);
    return -1;
}

void instance_prepare(plugin_instance *p, uint64_t timeout_ns, int holds_gil, call_result *r) {
    int ticking = call_begin(p, timeout_ns, holds_gil, r);
    ensure_store(p, r);
    call_end(p, ticking);
}

void instance_call(plugin_instance *p, size_t export_index, const uint8_t *input, uint64_t input_length,
                   uint64_t timeout_ns, int holds_gil, call_result *r) {
    int ticking = call_begin(p, timeout_ns, holds_gil, r);
    if (ensure_store(p, r) != 0) goto done;
    kernel_reset(p->kernel);
    if (!p->initialized && run_startup(p, r) != 0) goto done;
    kernel_reset(p->kernel);
    p->http_status = 0;
    instance_set_http_headers(p, NULL, 0);
    if (kernel_write_input(p->kernel, input, input_length) != 0) {
        r->status = CALL_INPUT_TOO_LARGE;
        goto done;
    }
    run_export(p, export_index, r);
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
    call_end(p, ticking);
}
