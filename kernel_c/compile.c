/* compile.c - compiling, loading and linking a plugin's modules; contracts in compile.h. */
#define _POSIX_C_SOURCE 200809L /* pread */
#include "compile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "env_imports.h"
#include "link.h"
#include "wasm_types.h"

static const char ENV_MODULE[] = "extism:host/env";

static int fail(compile_failure *failure, compile_failure_kind kind, char *message) {
    failure->kind = kind;
    free(failure->message);
    failure->message = message;
    return -1;
}

static int fail_error(compile_failure *failure, compile_failure_kind kind, wasmtime_error_t *error) {
    return fail(failure, kind, wt_take_error_message(error));
}

int compile_wat2wasm(const uint8_t *text, size_t length, uint8_t **out, size_t *out_length, char **error) {
    wasm_byte_vec_t binary;
    wasmtime_error_t *e = wt.wasmtime_wat2wasm((const char *)text, length, &binary);
    if (e != NULL) {
        *error = wt_take_error_message(e);
        return -1;
    }
    *out = wt_take_bytes(&binary, out_length);
    if (*out == NULL) {
        *error = WT_TEXT("out of host memory");
        return -1;
    }
    return 0;
}

/* ---- modules ---- */

/* `module` moved over to `bundle`'s engine (same code settings), or NULL (then *why is set). */
static wasmtime_module_t *transfer(wasmtime_module_t *module, const engine_bundle *bundle, char **why) {
    wasm_byte_vec_t serialized;
    wasmtime_module_t *copy = NULL;
    wasmtime_error_t *e = wt.wasmtime_module_serialize(module, &serialized);
    if (e == NULL) {
        e = wt.wasmtime_module_deserialize(bundle->engine, serialized.data, serialized.size, &copy);
        wt.wasm_byte_vec_delete(&serialized);
    }
    if (e != NULL) *why = wt_take_error_message(e);
    return e == NULL ? copy : NULL;
}

/* Whether `path` opens now (for reading). */
static int path_opens(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    close(fd);
    return 1;
}

/* The module from its cache entry's file (module_source.cached_path): mapped by wasmtime; or, when
 * wasmtime failed because the path does not open (no descriptor left for the one wasmtime keeps per
 * mapped module, say), read whole from cached_fd and loaded from memory, whose error is then the
 * one returned. A file wasmtime opened and refused is not read again (a pooled engine refuses a
 * module too big for its pool that way: the on-demand engine then maps it). */
static wasmtime_error_t *deserialize_file(const module_source *m, wasm_engine_t *engine, wasmtime_module_t **out) {
    wasmtime_error_t *e = wt.wasmtime_module_deserialize_file(engine, m->cached_path, out);
    if (e == NULL || path_opens(m->cached_path)) return e;
    uint8_t *bytes = malloc(m->cached_length > 0 ? m->cached_length : 1);
    size_t done = 0;
    while (bytes != NULL && done < m->cached_length) {
        ssize_t n = pread(m->cached_fd, bytes + done, m->cached_length - done, (off_t)done);
        if (n > 0) done += (size_t)n;
        else if (n < 0 && errno == EINTR) continue;
        else break; /* shorter than it was (changed since checked), or unreadable: refused as mapped */
    }
    if (bytes != NULL && done == m->cached_length) {
        wt.wasmtime_error_delete(e);
        e = wt.wasmtime_module_deserialize(engine, bytes, done, out);
    }
    free(bytes);
    return e;
}

/* The module from its cache entry, or NULL: refused (then compiled; on a pooled engine a failure). */
static wasmtime_module_t *load_cached(module_source *m, const engine_bundle *bundle, size_t position,
                                      compile_failure *failure) {
    wasmtime_module_t *module = NULL;
    wasmtime_error_t *e = m->cached_path != NULL
                              ? deserialize_file(m, bundle->engine, &module)
                              : wt.wasmtime_module_deserialize(bundle->engine, m->cached, m->cached_length, &module);
    if (e == NULL) return module;
    m->cache_refusal = wt_take_error_message(e);
    if (bundle->pool_instances) { /* keep the entry: the on-demand engine loads it */
        failure->module = position;
        fail(failure, COMPILE_CACHE_TOO_BIG, wt_copy_text(m->cache_refusal, strlen(m->cache_refusal)));
    }
    return NULL;
}

/* The module compiled from its bytes (WAT converted first), serialized when asked. */
static wasmtime_module_t *compile_module(module_source *m, const compile_request *r, size_t position,
                                         compile_failure *failure) {
    const uint8_t *bytes = m->bytes;
    size_t length = m->length;
    uint8_t *binary = NULL;
    char *error = NULL;
    failure->module = position;
    if (m->format == MODULE_UNKNOWN) {
        fail(failure, COMPILE_NOT_WASM, NULL);
        return NULL;
    }
    if (m->format == MODULE_TEXT) {
        if (compile_wat2wasm(bytes, length, &binary, &length, &error) != 0) {
            fail(failure, COMPILE_INVALID_TEXT, error);
            return NULL;
        }
        bytes = binary;
    }
    wasmtime_module_t *module = NULL;
    wasmtime_error_t *e = wt.wasmtime_module_new(r->bundle->engine, bytes, length, &module);
    free(binary);
    if (e != NULL) {
        fail_error(failure, COMPILE_INVALID_MODULE, e);
        return NULL;
    }
    if (r->serialize) {
        wasm_byte_vec_t serialized;
        e = wt.wasmtime_module_serialize(module, &serialized);
        if (e == NULL) m->serialized = wt_take_bytes(&serialized, &m->serialized_length);
        else m->serialize_failure = wt_take_error_message(e); /* not cacheable: still usable */
    }
    return module;
}

static wasmtime_module_t *load_module(const compile_request *r, size_t position, compile_failure *failure) {
    module_source *m = &r->modules[position];
    const compiled_plugin *source = r->source;
    if (source != NULL) {
        wasmtime_module_t *module = transfer((wasmtime_module_t *)compiled_plugin_module_at(source, position),
                                             r->bundle, &m->transfer_failure);
        if (module != NULL) return module;
    }
    if (m->cached != NULL || m->cached_path != NULL) {
        wasmtime_module_t *module = load_cached(m, r->bundle, position, failure);
        if (module != NULL || failure->kind != COMPILE_OK) return module;
    }
    return compile_module(m, r, position, failure);
}

/* The deps (with their names) and main, in request order. */
static int load_modules(compiled_plugin *c, const compile_request *r, compile_failure *failure) {
    size_t deps = r->module_count - 1;
    c->deps = calloc(deps + 1, sizeof *c->deps);
    c->dep_names = calloc(deps + 1, sizeof *c->dep_names);
    if (c->deps == NULL || c->dep_names == NULL) return fail(failure, COMPILE_FAILED, WT_TEXT("out of memory"));
    for (size_t i = 0; i < deps; i++) {
        c->dep_names[i] = wt_copy_text(r->modules[i].name, strlen(r->modules[i].name));
        c->dep_count = i + 1;
        if (c->dep_names[i] == NULL) return fail(failure, COMPILE_FAILED, WT_TEXT("out of memory"));
        c->deps[i] = load_module(r, i, failure);
        if (c->deps[i] == NULL) return -1;
    }
    c->main = load_module(r, deps, failure);
    return c->main != NULL ? 0 : -1;
}

/* ---- the linker ---- */

/* The ABI, WASI when asked, and the host functions, each with its type (made here; the link
 * checks imports against them: `types` gets them, the caller deletes them). */
static int define_linker(compiled_plugin *c, const compile_request *r, wasm_functype_t **types,
                         compile_failure *failure) {
    char *error = NULL;
    c->linker = wt.wasmtime_linker_new(c->bundle->engine);
    if (c->linker == NULL) return fail(failure, COMPILE_FAILED, WT_TEXT("cannot create a wasmtime linker"));
    if (env_imports_define(c->linker, &error) != 0) return fail(failure, COMPILE_ABI, error);
    wasmtime_error_t *e = r->wasi ? wt.wasmtime_linker_define_wasi(c->linker) : NULL;
    if (e != NULL) return fail_error(failure, COMPILE_WASI, e);
    for (size_t i = 0; i < r->function_count; i++) {
        const host_function_source *f = &r->functions[i];
        failure->function = i;
        if (f->module_length == sizeof ENV_MODULE - 1 && memcmp(f->module, ENV_MODULE, f->module_length) == 0)
            return fail(failure, COMPILE_HOST_RESERVED, NULL);
        if (f->param_count > 64 || f->result_count > 64) return fail(failure, COMPILE_HOST_ARITY, NULL);
        types[i] = wasm_types_functype(f->params, f->param_count, f->results, f->result_count);
        if (types[i] == NULL) return fail(failure, COMPILE_FAILED, WT_TEXT("out of memory"));
        e = wt.wasmtime_linker_define_func_unchecked(c->linker, f->module, f->module_length, f->name, f->name_length,
                                                     types[i], r->callback, f->env, NULL);
        if (e != NULL) return fail_error(failure, COMPILE_HOST_DEFINE, e);
    }
    return 0;
}

/* One import plan per module (deps in order, then main) and their order (link.h), every import
 * checked against the modules, the ABI and the linker's definitions (`types`: the host functions'). */
static int link_modules(compiled_plugin *c, const compile_request *r, wasm_functype_t *const *types,
                        compile_failure *failure) {
    if (wasm_types_export_index(c->bundle->access_module, "memory", NULL) < 0)
        return fail(failure, COMPILE_FAILED, WT_TEXT("kernel accessor memory missing"));
    size_t count = c->dep_count + 1;
    c->plans = calloc(count, sizeof *c->plans);
    c->instantiation_order = calloc(count, sizeof *c->instantiation_order);
    const wasmtime_module_t **modules = calloc(count, sizeof *modules);
    const char **names = calloc(count, sizeof *names);
    host_function *functions = calloc(r->function_count + 1, sizeof *functions);
    int status = -1;
    if (c->plans == NULL || c->instantiation_order == NULL || modules == NULL || names == NULL || functions == NULL) {
        fail(failure, COMPILE_FAILED, WT_TEXT("out of memory"));
    } else {
        for (size_t i = 0; i < count; i++) {
            modules[i] = compiled_plugin_module_at(c, i);
            names[i] = i < c->dep_count ? c->dep_names[i] : NULL; /* nothing imports from main */
        }
        for (size_t i = 0; i < r->function_count; i++) {
            const host_function_source *f = &r->functions[i];
            functions[i] = (host_function){f->module, f->module_length, f->name, f->name_length, types[i]};
        }
        host_definitions host = {r->wasi, functions, r->function_count};
        link_context l = {{count, modules, names, c->bundle->access_module}, &host, c->plans,
                          c->instantiation_order, 0, &failure->problem};
        status = link_build(&l);
        c->forward_count = l.forward_count;
        if (status != 0) failure->kind = COMPILE_LINK;
    }
    free(modules);
    free(names);
    free(functions);
    return status;
}

/* ---- exports, startup functions, memories ---- */

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
    if (wasm_types_export_index(compiled_plugin_module_at(c, position), name, &type) < 0) return 0;
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
                 name, compiled_plugin_module_label(c, position));
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

/* A memory type's minimum size in bytes (saturating). */
static uint64_t memory_minimum_bytes(const wasm_externtype_t *type) {
    const wasm_memorytype_t *memory = wt.wasm_externtype_as_memorytype_const(type);
    uint64_t pages = wt.wasmtime_memorytype_minimum(memory);
    unsigned shift = wt.wasmtime_memorytype_page_size_log2(memory);
    return pages > (UINT64_MAX >> shift) ? UINT64_MAX : pages << shift;
}

/* memory_minimum becomes `bytes` when larger than every memory so far. */
static void note_minimum(compiled_plugin *c, uint64_t bytes) {
    if (bytes > c->memory_minimum) c->memory_minimum = bytes;
}

/* Take the memory's minimum as memory_minimum when larger than every memory so far. */
static void note_memory(compiled_plugin *c, const wasm_externtype_t *type) {
    if (wt.wasm_externtype_kind(type) == WASM_EXTERN_MEMORY) note_minimum(c, memory_minimum_bytes(type));
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
 * note_defined_memories), and the list of the modules' memory exports. */
static int find_memories(compiled_plugin *c) {
    int status = 0;
    for (size_t position = 0; status == 0 && position <= c->dep_count + 1; position++) {
        int is_module = position <= c->dep_count;
        const wasmtime_module_t *module = is_module ? compiled_plugin_module_at(c, position) : c->bundle->access_module;
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

/* The memories the modules define, read from their binaries by the caller: each may be the
 * largest minimum, and main's add up to what must fit max_pages at instantiation. */
static void note_defined_memories(compiled_plugin *c, const compile_request *r) {
    for (size_t i = 0; i < r->defined_memory_count; i++) {
        uint64_t bytes = r->defined_memories[i];
        note_minimum(c, bytes);
        if (r->defined_by_main[i])
            c->main_memory_total = bytes > UINT64_MAX - c->main_memory_total ? UINT64_MAX : c->main_memory_total + bytes;
    }
}


/* ---- the entry ---- */

static int link_plugin(compiled_plugin *c, const compile_request *r, compile_failure *failure) {
    wasm_functype_t **types = calloc(r->function_count + 1, sizeof *types);
    if (types == NULL) return fail(failure, COMPILE_FAILED, WT_TEXT("out of memory"));
    int status = define_linker(c, r, types, failure);
    if (status == 0 && list_exports(c) != 0) status = fail(failure, COMPILE_FAILED, WT_TEXT("out of memory"));
    if (status == 0) c->start_index = export_index(c, "_start");
    if (status == 0 && find_memories(c) != 0) status = fail(failure, COMPILE_FAILED, WT_TEXT("out of memory"));
    if (status == 0) status = link_modules(c, r, types, failure);
    for (size_t i = 0; i < r->function_count; i++)
        if (types[i] != NULL) wt.wasm_functype_delete(types[i]);
    free(types);
    return status;
}

compiled_plugin *compile_plugin(compile_request *request, compile_failure *failure) {
    memset(failure, 0, sizeof *failure);
    compiled_plugin *c = calloc(1, sizeof *c);
    if (c == NULL) {
        fail(failure, COMPILE_FAILED, WT_TEXT("out of memory"));
        return NULL;
    }
    c->bundle = request->bundle;
    char *error = NULL;
    if (load_modules(c, request, failure) != 0 || link_plugin(c, request, failure) != 0 ||
        (find_startups(c, &error) != 0 && fail(failure, COMPILE_FAILED, error) != 0)) {
        compiled_plugin_delete(c);
        return NULL;
    }
    note_defined_memories(c, request);
    return c;
}
