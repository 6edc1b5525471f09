/*
 * compiled.h - a compiled plugin: the engine-level, store-independent part every instance shares.
 *
 * Owns: compiled_plugin (the linker with kernel callbacks, host imports, user host functions and
 * WASI when enabled; the modules; their import plans (import_plan.h) and instantiation order; the
 * table of main's function exports and their shapes; the startup functions; what the memory
 * budget needs to know of the modules' memories) and freeing it. compile.h makes one. A plugin may
 * be compiled for several engines (pooled / on-demand, with / without epoch interruption).
 */
#ifndef EXTISM_FAST_COMPILED_H
#define EXTISM_FAST_COMPILED_H

#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "import_plan.h"
#include "wasmtime_api.h"

/* The shape of a function export. Only () -> i32 and () -> () can be called as plugin functions. */
typedef enum export_shape { EXPORT_RETURNS_NOTHING = 0, EXPORT_RETURNS_I32 = 1, EXPORT_OTHER = 2 } export_shape;

/* A startup function: run once per store, before its first call (docs/ABI.md, "A call"). */
typedef struct startup_function {
    size_t position;  /* the module that exports it (module_at) */
    const char *name; /* its export name (a string literal) */
    uint8_t shape;    /* export_shape; EXPORT_OTHER only for hs_init, which gets zeroed arguments */
} startup_function;

typedef struct compiled_plugin {
    const engine_bundle *bundle;     /* borrowed: one of the process-wide engines */
    wasmtime_linker_t *linker;       /* owned */
    wasmtime_module_t *main;         /* owned */
    size_t dep_count;                /* modules linked by name besides main */
    wasmtime_module_t **deps;        /* owned, dep_count entries */
    char **dep_names;                /* owned, NUL-terminated */
    import_plan *plans;              /* owned: deps in order, then main (link.h) */
    size_t *instantiation_order;     /* owned: positions (deps, then main) in dependency order */
    size_t forward_count;            /* forwarding imports (cycles between modules); 0 = none */
    int exports_memory;              /* main exports a memory named "memory" */
    size_t export_count;             /* function exports of main */
    char **export_names;             /* owned, NUL-terminated (each store finds them by name) */
    uint8_t *export_shapes;          /* export_shape per export */
    startup_function *startups;      /* owned: every module's, in the order they run (see
                                      * compile_plugin) */
    size_t startup_count;
    ptrdiff_t start_index;           /* `_start`, -1 if absent */
    uint64_t memory_minimum;         /* the largest minimum size in bytes of a memory of any module
                                      * (the accessor's included, and those the modules define:
                                      * compile_request.defined_memories; saturating;
                                      * memory_budget.c caps no memory below it) */
    uint64_t main_memory_total;      /* the minimum sizes of the memories main defines, added
                                      * (bytes, saturating; from compile_request.defined_memories):
                                      * what must fit max_pages at instantiation */
    size_t memory_export_count;      /* memory exports of all modules (memory_budget.c tracks them) */
    size_t *memory_export_positions; /* owned: the exporting module's position (deps, then main) */
    char **memory_export_names;      /* owned, NUL-terminated */
} compiled_plugin;

/* compiled_plugin_delete: free everything compiled_plugin owns, and the struct. NULL is ignored. */
void compiled_plugin_delete(compiled_plugin *c);

/* compiled_plugin_module_at: the module at `position`: the dependencies in manifest order, then main. */
const wasmtime_module_t *compiled_plugin_module_at(const compiled_plugin *c, size_t position);

/* compiled_plugin_module_label: the name module `position` is linked under ("main" for main). */
const char *compiled_plugin_module_label(const compiled_plugin *c, size_t position);

/* compiled_free_strings: free `count` malloc'ed strings and their array. NULL is ignored. */
void compiled_free_strings(char **strings, size_t count);

#endif
