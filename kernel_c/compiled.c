/* compiled.c - compiled plugins: export tables, startup exports, import plans; contracts in compiled.h. */
#include "compiled.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void free_strings(char **strings, size_t count) {
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
    free(c->export_shapes);
    free(c->startups);
    if (c->plans != NULL)
        for (size_t i = 0; i <= c->dep_count; i++) import_plan_free(&c->plans[i]);
    free(c->plans);
    free(c->instantiation_order);
    free(c->memory_export_positions);
    free_strings(c->memory_export_names, c->memory_export_count);
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
    c->export_shapes = calloc(exports.size + 1, 1);
    int ok = c->export_names && c->export_shapes;
    for (size_t i = 0; ok && i < exports.size; i++) {
        const wasm_externtype_t *type = wt.wasm_exporttype_type(exports.data[i]);
        wasm_externkind_t kind = wt.wasm_externtype_kind(type);
        if (kind == WASM_EXTERN_MEMORY && wt.wasm_exporttype_name(exports.data[i])->size == 6 &&
            memcmp(wt.wasm_exporttype_name(exports.data[i])->data, "memory", 6) == 0)
            c->exports_memory = 1;
        if (kind != WASM_EXTERN_FUNC) continue;
        const wasm_functype_t *ftype = wt.wasm_externtype_as_functype_const(type);
        const wasm_name_t *name = wt.wasm_exporttype_name(exports.data[i]);
        /* Names are kept as C strings: one with a NUL byte would answer to its prefix. No caller
         * can name it anyway (function names cross the official C API as C strings too). */
        if (memchr(name->data, 0, name->size) != NULL) continue;
        char *copy = wt_copy_text((const char *)name->data, name->size);
        if (copy == NULL) { ok = 0; break; }
        c->export_names[c->export_count] = copy;
        c->export_shapes[c->export_count] = (uint8_t)shape_of(ftype);
        c->export_count++;
    }
    wt.wasm_exporttype_vec_delete(&exports);
    return ok ? 0 : -1;
}

/* Whether module `position` has a function export `name`; *shape and *slots (max(parameters,
 * results)) get its type's. */
static int function_export(const compiled_plugin *c, size_t position, const char *name, export_shape *shape,
                           size_t *slots) {
    wasm_externtype_t *type = NULL;
    if (import_plan_export_index(module_at(c, position), name, &type) < 0) return 0;
    int found = wt.wasm_externtype_kind(type) == WASM_EXTERN_FUNC;
    if (found) {
        const wasm_functype_t *ftype = wt.wasm_externtype_as_functype_const(type);
        size_t params = wt.wasm_functype_params(ftype)->size, results = wt.wasm_functype_results(ftype)->size;
        *shape = shape_of(ftype);
        *slots = params > results ? params : results;
    }
    wt.wasm_externtype_delete(type);
    return found;
}

/* Append module `position`'s export `name` to the startup functions, if it has one. Startup
 * functions run with a 2-slot raw buffer and zeroed arguments (hs_init(0, 0)): any other type is
 * refused at load time instead of called with the wrong layout. */
static int add_startup(compiled_plugin *c, size_t position, const char *name, char **error) {
    export_shape shape;
    size_t slots;
    if (!function_export(c, position, name, &shape, &slots)) return 0;
    if (shape == EXPORT_OTHER && !(strcmp(name, "hs_init") == 0 && slots <= 2)) {
        char message[400];
        snprintf(message, sizeof message,
                 "startup export '%s' of module '%s' has an unsupported type: it must take no parameters "
                 "(hs_init: at most two) and return nothing",
                 name, module_label(c, position));
        *error = wt_copy_text(message, strlen(message));
        return -1;
    }
    c->startups[c->startup_count++] = (startup_function){position, name, (uint8_t)shape};
    return 0;
}

/* The startup functions, in the order they run (contract in compiled.h). The linked modules'
 * come first: a module's initialiser may call its dependencies, never main. */
static int find_startups(compiled_plugin *c, char **error) {
    c->startups = calloc(c->dep_count + 3, sizeof *c->startups);
    if (c->startups == NULL) {
        *error = WT_TEXT("out of memory");
        return -1;
    }
    for (size_t k = 0; k <= c->dep_count; k++) {
        size_t position = c->instantiation_order[k];
        if (position != c->dep_count && add_startup(c, position, "_initialize", error) != 0) return -1;
    }
    size_t main = c->dep_count;
    if (export_index(c, "hs_init") >= 0) {
        if (add_startup(c, main, "_initialize", error) != 0) return -1;
        return add_startup(c, main, "hs_init", error);
    }
    /* A reactor's `_initialize` runs the constructors itself: only one of the two. */
    return add_startup(c, main, export_index(c, "__wasm_call_ctors") >= 0 ? "__wasm_call_ctors" : "_initialize",
                       error);
}

/* The module at `position`: the dependencies in manifest order, then main. */
const wasmtime_module_t *module_at(const compiled_plugin *c, size_t position) {
    return position < c->dep_count ? c->deps[position] : c->main;
}

/* The name module `position` is linked under (error messages). */
const char *module_label(const compiled_plugin *c, size_t position) {
    return position < c->dep_count ? c->dep_names[position] : "main";
}

/* One import plan per module (deps in order, then main) and their order; see import_plan.h. */
static int build_import_plans(compiled_plugin *c, const host_definitions *host, link_problem *problem,
                              char **error) {
    if (import_plan_export_index(c->bundle->access_module, "memory", NULL) < 0) {
        *error = WT_TEXT("kernel accessor memory missing");
        return -1;
    }
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
        status = import_plans_build(c->plans, count, modules, names, c->bundle->access_module, host,
                                    c->instantiation_order, &c->forward_count, problem);
    }
    free(modules);
    free(names);
    return status;
}

/* A memory type's minimum size in bytes (saturating). */
static uint64_t memory_minimum_bytes(const wasm_externtype_t *type) {
    const wasm_memorytype_t *memory = wt.wasm_externtype_as_memorytype_const(type);
    uint64_t pages = wt.wasmtime_memorytype_minimum(memory);
    unsigned shift = wt.wasmtime_memorytype_page_size_log2(memory);
    return pages > (UINT64_MAX >> shift) ? UINT64_MAX : pages << shift;
}

/* Take the memory's minimum as memory_minimum when larger than every memory so far. */
static void note_memory(compiled_plugin *c, const wasm_externtype_t *type) {
    if (wt.wasm_externtype_kind(type) == WASM_EXTERN_MEMORY) compiled_plugin_note_memory(c, memory_minimum_bytes(type));
}

/* Remember that module `position` exports a memory as `name` (the budget tracks it). Returns -1
 * when out of memory. */
static int note_memory_export(compiled_plugin *c, size_t position, const wasm_name_t *name) {
    size_t n = c->memory_export_count;
    size_t *positions = realloc(c->memory_export_positions, (n + 1) * sizeof *positions);
    if (positions != NULL) c->memory_export_positions = positions;
    char **names = realloc(c->memory_export_names, (n + 1) * sizeof *names);
    if (names != NULL) c->memory_export_names = names;
    char *copy = positions != NULL && names != NULL ? wt_copy_text((const char *)name->data, name->size) : NULL;
    if (copy == NULL) return -1;
    positions[n] = position;
    names[n] = copy;
    c->memory_export_count = n + 1;
    return 0;
}

/* memory_minimum over the memories each module imports or exports (the kernel's accessor
 * included; the ones a module defines without exporting are added from the binaries:
 * compiled_plugin_note_memory), and the list of the modules' memory exports. */
static int find_memories(compiled_plugin *c) {
    int status = 0;
    for (size_t position = 0; status == 0 && position <= c->dep_count + 1; position++) {
        int is_module = position <= c->dep_count;
        const wasmtime_module_t *module = is_module ? module_at(c, position) : c->bundle->access_module;
        wasm_importtype_vec_t imports;
        wt.wasmtime_module_imports(module, &imports);
        for (size_t i = 0; i < imports.size; i++) note_memory(c, wt.wasm_importtype_type(imports.data[i]));
        wt.wasm_importtype_vec_delete(&imports);
        wasm_exporttype_vec_t exports;
        wt.wasmtime_module_exports(module, &exports);
        for (size_t i = 0; status == 0 && i < exports.size; i++) {
            const wasm_externtype_t *type = wt.wasm_exporttype_type(exports.data[i]);
            note_memory(c, type);
            const wasm_name_t *name = wt.wasm_exporttype_name(exports.data[i]);
            /* The accessor's memory is the kernel's, tracked apart; a name with a NUL cannot be asked for. */
            if (is_module && wt.wasm_externtype_kind(type) == WASM_EXTERN_MEMORY && memchr(name->data, 0, name->size) == NULL)
                status = note_memory_export(c, position, name);
        }
        wt.wasm_exporttype_vec_delete(&exports);
    }
    return status;
}

void compiled_plugin_note_memory(compiled_plugin *c, uint64_t bytes) {
    if (bytes > c->memory_minimum) c->memory_minimum = bytes;
}

void compiled_plugin_note_main_memories(compiled_plugin *c, uint64_t bytes) {
    c->main_memory_total = bytes > UINT64_MAX - c->main_memory_total ? UINT64_MAX : c->main_memory_total + bytes;
}

int compiled_plugin_link(compiled_plugin *c, const host_definitions *host, link_problem *problem, char **error) {
    if (list_exports(c) != 0) {
        *error = WT_TEXT("out of memory");
        return -1;
    }
    c->start_index = export_index(c, "_start");
    if (find_memories(c) != 0) {
        *error = WT_TEXT("out of memory");
        return -1;
    }
    if (build_import_plans(c, host, problem, error) != 0) return -1;
    return find_startups(c, error);
}
