/* store.c - an instance's wasmtime store: limits, WASI, instantiation, exports; contracts in store.h. */
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "running.h"
#include "signals.h"
#include "ticker.h"

/* Append to the stream's buffer, up to INSTANCE_WASI_OUTPUT_MAX per call (the rest is dropped). */
static ptrdiff_t keep_wasi_output(instance_wasi *w, int stream, const unsigned char *bytes, size_t len) {
    size_t room = INSTANCE_WASI_OUTPUT_MAX - w->output_length[stream];
    size_t n = len < room ? len : room;
    size_t needed = w->output_length[stream] + n;
    if (needed > w->output_capacity[stream]) {
        size_t capacity = needed < 4096 ? 4096 : needed * 2;
        uint8_t *grown = realloc(w->output[stream], capacity);
        if (grown == NULL) return (ptrdiff_t)len;
        w->output[stream] = grown;
        w->output_capacity[stream] = capacity;
    }
    if (n) memcpy(w->output[stream] + w->output_length[stream], bytes, n);
    w->output_length[stream] = needed;
    return (ptrdiff_t)len;
}

static ptrdiff_t wasi_stdout(void *data, const unsigned char *bytes, size_t len) {
    return keep_wasi_output(data, 0, bytes, len);
}

static ptrdiff_t wasi_stderr(void *data, const unsigned char *bytes, size_t len) {
    return keep_wasi_output(data, 1, bytes, len);
}

const uint8_t *store_take_wasi_output(plugin_instance *p, int stream, size_t *length) {
    *length = 0;
    if (p->wasi_state == NULL) return NULL;
    *length = p->wasi_state->output_length[stream];
    p->wasi_state->output_length[stream] = 0;
    return p->wasi_state->output[stream];
}

static wasi_config_t *make_wasi_config(plugin_instance *p, char **error) {
    instance_wasi *w = p->wasi_state; /* made with the instance, as settings.wasi is set */
    wasi_config_t *config = wt.wasi_config_new();
    if (config == NULL) {
        *error = WT_TEXT("cannot create a WASI configuration");
        return NULL;
    }
    if (p->settings.wasi_stdio == WASI_STDIO_INHERIT) {
        wt.wasi_config_inherit_stdout(config);
        wt.wasi_config_inherit_stderr(config);
    } else if (p->settings.wasi_stdio == WASI_STDIO_LOG) {
        wt.wasi_config_set_stdout_custom(config, wasi_stdout, w, NULL);
        wt.wasi_config_set_stderr_custom(config, wasi_stderr, w, NULL);
    } /* else: WASI_STDIO_DISCARD, wasmtime's default sink */
    /* Deny by default: wasmtime gives no arguments and an empty environment unless set. */
    if (w->arg_count && !wt.wasi_config_set_argv(config, w->arg_count, (const char **)w->args)) {
        *error = wt_copy_text("wasi_args: wasmtime refused the arguments", 41);
        wt.wasi_config_delete(config);
        return NULL;
    }
    if (w->env_count) {
        const char **names = malloc(w->env_count * sizeof *names);
        const char **values = malloc(w->env_count * sizeof *values);
        int ok = names != NULL && values != NULL;
        for (size_t i = 0; ok && i < w->env_count; i++) {
            names[i] = w->env[2 * i];
            values[i] = w->env[2 * i + 1];
        }
        ok = ok && wt.wasi_config_set_env(config, w->env_count, names, values);
        free(names);
        free(values);
        if (!ok) {
            *error = wt_copy_text("wasi_env: wasmtime refused the environment", 42);
            wt.wasi_config_delete(config);
            return NULL;
        }
    }
    for (size_t i = 0; i < w->preopen_count; i++) {
        const wasi_preopen *po = &w->preopens[i];
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

void store_drop(plugin_instance *p) {
    memory_budget_free(&p->budget);
    wasmtime_store_t *store = p->store;
    p->store = NULL;
    p->ctx = NULL;
    p->initialized = 0;
    if (store == NULL) return;
    /* Python may still view its memories: the hook hands the store to those views (it is
     * deleted with the last of them); otherwise nothing points into it any more. */
    int kept = p->views_exposed && running_hooks.keep_store != NULL && running_hooks.keep_store(p->owner, store);
    p->views_exposed = 0;
    if (!kept) wt.wasmtime_store_delete(store);
}

/* Grow the kernel memory (kernel_grow_fn): the accessor instance's wasm memory. Its growth takes
 * from the max_pages budget like every other memory's (memory_budget.h). */
int store_grow_kernel_memory(void *data, uint64_t new_size, uint8_t **base, uint64_t *size) {
    plugin_instance *p = data;
    uint64_t current = wt.wasmtime_memory_data_size(p->ctx, &p->kernel_memory);
    if (new_size > current) {
        uint64_t previous, pages = (new_size - current + 65535) / 65536;
        if (memory_budget_allow(&p->budget, current, pages * 65536) != 0) return -1;
        wasmtime_error_t *e = wt.wasmtime_memory_grow(p->ctx, &p->kernel_memory, pages, &previous);
        memory_budget_settle(&p->budget);
        if (e != NULL) {
            wt.wasmtime_error_delete(e);
            return -1;
        }
    }
    *base = wt.wasmtime_memory_data(p->ctx, &p->kernel_memory);
    *size = wt.wasmtime_memory_data_size(p->ctx, &p->kernel_memory);
    return 0;
}

int store_charge_kernel_table(void *data, uint64_t charged) {
    return memory_budget_charge_host(&((plugin_instance *)data)->budget, charged);
}

/* The kernel accessors, then the plugin's modules in dependency order, all in this store, each
 * with the imports its plan names. `instances` has room for dep_count + 1 instances, by position
 * (main is the last). */
/* How instantiation failed: a start function trapped (a trap, which wasmtime gives apart from
 * errors) or the host ran out of memory; or wasmtime refused to allocate the store's instances,
 * memories or tables (an error: the imports were all checked at link time). */
enum { INSTANTIATE_FAILED = -1, INSTANTIATE_REFUSED = -2 };

static int instantiate_modules(plugin_instance *p, wasmtime_instance_t *instances, char **error) {
    const compiled_plugin *c = p->compiled;
    wasmtime_instance_t access;
    wasmtime_extern_t memory;
    struct forwarder *forwarder_room[8];
    forward_list forwards = {forwarder_room, 0};
    if (c->forward_count > sizeof forwarder_room / sizeof forwarder_room[0]) {
        forwards.items = malloc(c->forward_count * sizeof *forwards.items);
        if (forwards.items == NULL) {
            *error = WT_TEXT("out of host memory");
            return INSTANTIATE_FAILED;
        }
    }
    instantiation in = {p->ctx, c->linker, &access, instances, c->forward_count ? &forwards : NULL, NULL};
    plugin_instance *saved = current_instance;
    current_instance = p; /* a start function may call imports */
    wasmtime_error_t *e = wt.wasmtime_instance_new(p->ctx, c->bundle->access_module, NULL, 0, &access, &in.trap);
    if (e == NULL && in.trap == NULL) {
        wt.wasmtime_instance_export_get(p->ctx, &access, "memory", 6, &memory); /* checked at compile time */
        p->kernel_memory = memory.of.memory;
        kernel_attach(p->kernel, wt.wasmtime_memory_data(p->ctx, &p->kernel_memory),
                      wt.wasmtime_memory_data_size(p->ctx, &p->kernel_memory));
    }
    for (size_t k = 0; e == NULL && in.trap == NULL && k <= c->dep_count; k++) {
        size_t i = c->instantiation_order[k];
        e = import_plan_instantiate(&c->plans[i], &in, compiled_plugin_module_at(c, i), i,
                                    compiled_plugin_module_label(c, i));
    }
    current_instance = saved;
    if (forwards.items != forwarder_room) free(forwards.items);
    if (e != NULL) {
        *error = wt_take_error_message(e);
        return INSTANTIATE_REFUSED;
    }
    if (in.trap != NULL) {
        *error = wt_take_trap_message(in.trap);
        return INSTANTIATE_FAILED;
    }
    return 0;
}

/* Main's memory and function exports, and every module's startup functions, by name: one hash
 * lookup each (export_nth would walk the exports up to the one asked for). The names were read
 * from the modules at compile time. */
static void lookup_exports(plugin_instance *p, const wasmtime_instance_t *instances) {
    const compiled_plugin *c = p->compiled;
    const wasmtime_instance_t *main = &instances[c->dep_count];
    wasmtime_extern_t item;
    for (size_t k = 0; k < c->startup_count; k++) {
        const startup_function *s = &c->startups[k];
        wt.wasmtime_instance_export_get(p->ctx, &instances[s->position], s->name, strlen(s->name), &item);
        p->startups[k] = item.of.func;
    }
    p->has_main_memory = c->exports_memory && wt.wasmtime_instance_export_get(p->ctx, main, "memory", 6, &item);
    if (p->has_main_memory) p->main_memory = item.of.memory;
    for (size_t i = 0; i < c->export_count; i++) {
        wt.wasmtime_instance_export_get(p->ctx, main, c->export_names[i], strlen(c->export_names[i]), &item);
        p->exports[i] = item.of.func;
    }
}

/* Why a store could not be made, from how instantiation failed (no message text is read):
 * - a refusal on a pooled engine is the pool (no free slot, or a slot too small for one of the
 *   modules' memories or tables): the caller tries the on-demand engine;
 * - main's memories over max_pages never reach wasmtime: memory_minimum_fits refuses them first,
 *   and no other memory is capped during instantiation (memory_budget_attach);
 * - anything else (a trap in a start function, a table over max_table_elements, no host memory)
 *   fails the store with wasmtime's message. */
static store_failure classify_instantiation_error(const plugin_instance *p, int how) {
    if (how == INSTANTIATE_REFUSED && p->compiled->bundle->pool_instances) return STORE_POOL_EXHAUSTED;
    return STORE_FAILED;
}

/* Refuse a store whose main module's memories could not start under max_pages, before any
 * instantiation. As the official limiter: main's memories together; the kernel's and the linked
 * modules' are not counted (the official runtime makes them before it sets its limiter). */
static int memory_minimum_fits(const plugin_instance *p, char **error) {
    const compiled_plugin *c = p->compiled;
    int64_t limit = p->budget.limit;
    if (limit < 0 || c->main_memory_total <= (uint64_t)limit) return 1;
    char message[300];
    snprintf(message, sizeof message,
             "the memories module 'main' defines start at %llu bytes together, over the limit of %llu bytes",
             (unsigned long long)c->main_memory_total, (unsigned long long)limit);
    *error = wt_copy_text(message, strlen(message));
    return 0;
}

/* A fresh store with the modules instantiated and the exports looked up (contract in store.h). */
int store_new(plugin_instance *p, char **error) {
    const compiled_plugin *c = p->compiled;
    store_drop(p);
    signals_restore();
    if (!memory_minimum_fits(p, error)) return STORE_MEMORY_LIMIT;
    p->store = wt.wasmtime_store_new(c->bundle->engine, p, NULL);
    if (p->store == NULL) {
        *error = WT_TEXT("cannot create a wasmtime store");
        return -1;
    }
    p->ctx = wt.wasmtime_store_context(p->store);
    memory_budget_attach(&p->budget, p->store, c->memory_minimum); /* uncapped; the table limit */
    if (c->bundle->flags & ENGINE_EPOCH) {
        wt.wasmtime_store_epoch_deadline_callback(p->store, ticker_on_epoch_deadline, p, NULL);
        wt.wasmtime_context_set_epoch_deadline(p->ctx, 1);
    }
    if (p->settings.fuel != 0) { /* a fresh store has no fuel: the start function would trap at once */
        wasmtime_error_t *fuel_error = wt.wasmtime_context_set_fuel(p->ctx, p->settings.fuel);
        if (fuel_error != NULL) wt.wasmtime_error_delete(fuel_error);
    }
    if (p->settings.wasi) {
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
    if (status == 0) lookup_exports(p, instances);
    if (status == 0 && memory_budget_start(&p->budget, &p->kernel_memory, instances, c->memory_export_positions,
                                               c->memory_export_names, c->memory_export_count) != 0) {
        *error = WT_TEXT("out of host memory");
        status = INSTANTIATE_FAILED;
    }
    if (instances != on_stack) free(instances);
    if (status != 0) return classify_instantiation_error(p, status);
    p->needs_store = 0;
    return 0;
}

void store_delete_detached(wasmtime_store_t *store) {
    if (store != NULL) wt.wasmtime_store_delete(store);
}

void store_reset_kernel(plugin_instance *p) {
    if (p->store != NULL) kernel_reset(p->kernel);
}

const uint8_t *store_kernel_memory(plugin_instance *p, size_t *length) {
    *length = 0;
    if (p->store == NULL) return NULL;
    *length = wt.wasmtime_memory_data_size(p->ctx, &p->kernel_memory);
    return wt.wasmtime_memory_data(p->ctx, &p->kernel_memory);
}

const uint8_t *store_main_memory(plugin_instance *p, size_t *length) {
    *length = 0;
    if (p->store == NULL || !p->has_main_memory) return NULL;
    *length = wt.wasmtime_memory_data_size(p->ctx, &p->main_memory);
    return wt.wasmtime_memory_data(p->ctx, &p->main_memory);
}
