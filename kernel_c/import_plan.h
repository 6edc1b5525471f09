/*
 * import_plan.h - how each import of a module is satisfied in a new store, worked out once per
 * compiled plugin so that instantiating it costs no name resolution and no per-store linker.
 *
 * Owns: import_plan (one slot per import: where it comes from) and the instantiation of a module
 * from its plan, with the forwarding functions cycles need. link.h builds the plans of a plugin
 * and checks every import; module_order.h orders the modules.
 *
 * A plugin's modules are instantiated after the kernel accessor instance (kernel_access.c), in
 * dependency order (a module after the modules it imports from), whatever their manifest order.
 * Each import comes from one of:
 *   - the accessor instance: the hot `extism:host/env` functions (loads, stores, input reads);
 *   - a module of the plugin, by the manifest name it was given, when it exports that field (as
 *     the official runtime, a module shadows a host function of the same module and field name);
 *   - the compiled plugin's linker: the other ABI functions, WASI and the host functions, which
 *     wasmtime instantiates into the store on lookup;
 *   - a forwarding function, for a function import from a module instantiated later: modules that
 *     import functions from each other in a cycle. wasmtime needs every import at instantiation,
 *     so the module instantiated first gets a host function in the store that calls the real
 *     export once it exists. Only cycles pay for it.
 * Accessor and module exports are found by the import's field name (wasmtime_instance_export_get:
 * one hash lookup, where export_nth walked the exports up to the one asked for).
 */
#ifndef EXTISM_FAST_IMPORT_PLAN_H
#define EXTISM_FAST_IMPORT_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "link_problem.h"
#include "wasmtime_api.h"

typedef enum import_source {
    IMPORT_FROM_ACCESSOR = 0, /* the accessor instance's export `name` */
    IMPORT_FROM_MODULE = 1,   /* the export `name` of the plugin's module `module_index` */
    IMPORT_FROM_LINKER = 2,   /* the linker's definition of module::name */
    IMPORT_FROM_FORWARD = 3,  /* a forwarding function to the export `name` of module `module_index`,
                               * which is instantiated later (a cycle) */
} import_source;

typedef struct import_slot {
    import_source source;
    size_t module_index;
    wasm_externkind_t kind;          /* the import's kind */
    wasm_functype_t *forward_type;   /* owned, IMPORT_FROM_FORWARD only: the function's type */
    char *module; /* owned, NUL-terminated: the import's module name */
    char *name;   /* owned, NUL-terminated: the import's field name */
} import_slot;

typedef struct import_plan {
    size_t count;       /* the module's imports, in its import order */
    import_slot *slots; /* owned */
} import_plan;

/* The modules of a plugin by position (the dependencies in manifest order, then main), and the
 * kernel accessor module they may import from. */
typedef struct plugin_modules {
    size_t count;
    const wasmtime_module_t *const *modules;
    const char *const *names;          /* link names; NULL for one nothing imports from (main) */
    const wasmtime_module_t *accessor;
} plugin_modules;

/* import_plan_build: the plan of module `position`: each import from the module named like its
 * module that exports the field (checked to fit its type: LINK_PROBLEM_TYPE), else from the
 * accessor (an `extism:host/env` function it exports), else from the linker. A function import
 * from a module keeps its type in forward_type, in case it must be forwarded (module_order.h
 * drops the others). A name with a NUL byte is LINK_PROBLEM_NUL_NAME. Returns 0, or -1 and fills
 * *problem; either way the plan owns what it holds (import_plan_free). */
int import_plan_build(import_plan *plan, size_t position, const plugin_modules *modules, link_problem *problem);

/* import_plan_free: free what the plan owns (the struct itself is the caller's). */
void import_plan_free(import_plan *plan);

/* The forwarding functions made in one store, waiting for their targets (instantiation only). */
typedef struct forward_list {
    struct forwarder **items;
    size_t count;
} forward_list;

/* One store's instantiation of a plugin's modules, module by module in dependency order. */
typedef struct instantiation {
    wasmtime_context_t *ctx;
    const wasmtime_linker_t *linker;     /* the compiled plugin's */
    const wasmtime_instance_t *accessor; /* the kernel accessor instance in ctx */
    wasmtime_instance_t *instances;      /* by position; filled as modules are instantiated */
    forward_list *forwards;              /* room for every forwarding slot; NULL when there are none */
    wasm_trap_t *trap;                   /* a start function's trap, when one trapped */
} instantiation;

/* import_plan_instantiate: instantiate `module` (the plugin's module `position`, linked under
 * `label`) in in->ctx with the imports its plan names: from the accessor, from the modules
 * instantiated so far, from the linker, or forwarding functions appended to in->forwards. Then
 * points the forwarders that wait for this module at its exports. Returns what
 * wasmtime_instance_new returns (an error, or a trap in in->trap). */
wasmtime_error_t *import_plan_instantiate(const import_plan *plan, instantiation *in, const wasmtime_module_t *module,
                                          size_t position, const char *label);

#endif
