/*
 * import_plan.h - how each import of a module is satisfied in a new store, worked out once per
 * compiled plugin so that instantiating it costs no name resolution and no per-store linker.
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
 *
 * The same pass checks every import against what satisfies it: a module's export, the ABI
 * (env_imports.h), WASI, the user's host functions (host_definitions). The first problem is
 * reported as a link_problem (structured: kind, names, types, positions), which the Python layer
 * formats. Problems between modules come first (all modules), then host imports, module by
 * module in position order, import by import.
 */
#ifndef EXTISM_FAST_IMPORT_PLAN_H
#define EXTISM_FAST_IMPORT_PLAN_H

#include <stddef.h>
#include <stdint.h>

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

/* A host function the plugin's linker defines (names are not NUL-terminated). */
typedef struct host_function {
    const char *module;          /* borrowed: its namespace */
    size_t module_length;
    const char *name;            /* borrowed */
    size_t name_length;
    const wasm_functype_t *type; /* borrowed */
} host_function;

/* What the linker defines besides the ABI functions: WASI or not, and the user's host functions
 * (distinct module::name pairs). Imports from the host are checked against it. */
typedef struct host_definitions {
    int wasi;                        /* wasi_snapshot_preview1 and wasi_unstable are defined */
    const host_function *functions;  /* borrowed, function_count entries */
    size_t function_count;
} host_definitions;

/* link_problem.provider when no module of the plugin has the import's module name. */
#define LINK_NO_PROVIDER SIZE_MAX

/* Each kind says which link_problem fields it sets; module, name, import_kind and importer are
 * always set (except for LINK_PROBLEM_MEMORY, which sets nothing reliable). `expected` and
 * `found` are owned copies; function types are those of the wasm_functype_t as an externtype. */
typedef enum link_problem_kind {
    LINK_PROBLEM_NONE = 0,
    LINK_PROBLEM_TYPE = 1,         /* the module `provider` exports the field with another type:
                                    * expected = the import's type, found = the export's */
    LINK_PROBLEM_CYCLE = 2,        /* modules import non-functions from each other in a cycle:
                                    * provider, cycle, cycle_length */
    LINK_PROBLEM_MEMORY = 3,       /* out of host memory */
    LINK_PROBLEM_NOT_FUNCTION = 4, /* a global, table or memory no module provides (the host only
                                    * defines functions): provider = the module of that name, which
                                    * lacks the field, or LINK_NO_PROVIDER */
    LINK_PROBLEM_ABI_UNKNOWN = 5,  /* an `extism:host/env` function the ABI does not have */
    LINK_PROBLEM_ABI_TYPE = 6,     /* an ABI function imported with another type: expected = the
                                    * ABI's type, found = the import's */
    LINK_PROBLEM_WASI_DISABLED = 7, /* a WASI import while WASI is not enabled */
    LINK_PROBLEM_HOST_TYPE = 8,    /* a user host function imported with another type: expected =
                                    * the host function's type, found = the import's */
    LINK_PROBLEM_HOST_MISSING = 9, /* a function nothing defines: found = the import's type;
                                    * provider as for LINK_PROBLEM_NOT_FUNCTION */
    LINK_PROBLEM_NUL_NAME = 10,    /* the import's module or field name holds a NUL byte, which
                                    * no definition can have: module and name show it as "\0" */
} link_problem_kind;

/* What is wrong with an import. Positions are those of import_plans_build. */
typedef struct link_problem {
    link_problem_kind kind;
    size_t importer;             /* the importing module */
    size_t provider;             /* the module it imports from (see each kind) */
    char *module;                /* owned: the import's module and field names */
    char *name;
    wasm_externkind_t import_kind;
    wasm_externtype_t *expected; /* owned (see each kind) */
    wasm_externtype_t *found;    /* owned (see each kind) */
    size_t *cycle;               /* owned, LINK_PROBLEM_CYCLE: importer, provider, ... each imports */
    size_t cycle_length;         /* from the next, the last from the first */
} link_problem;

/* import_plans_build: the plans of the `count` modules of a plugin (plans[i] for modules[i]);
 * names[i] is the link name of module i, or NULL for one nothing imports from (main). order gets
 * the instantiation order (count positions), *forward_count the number of forwarding slots.
 * Every import is checked: those from modules against the export, the others against the ABI
 * and `host` (a WASI import is not checked further when WASI is on: the linker has it or
 * instantiation names it). Returns 0 (*problem left empty), or -1 and fills *problem with the
 * first problem (free it with link_problem_free). */
int import_plans_build(import_plan *plans, size_t count, const wasmtime_module_t *const *modules,
                       const char *const *names, const wasmtime_module_t *accessor,
                       const host_definitions *host, size_t *order, size_t *forward_count,
                       link_problem *problem);

/* import_plan_free: free what the plan owns (the struct itself is the caller's). */
void import_plan_free(import_plan *plan);

/* link_problem_free: free what the problem owns. */
void link_problem_free(link_problem *problem);

/* The forwarding functions made in one store, waiting for their targets (instantiation only). */
typedef struct forward_list {
    struct forwarder **items;
    size_t count;
} forward_list;

/* import_plan_instantiate: instantiate `module` (the plugin's module `position`, linked under
 * `label`) in ctx with the imports its plan names: from `accessor`, from `instances` (the
 * plugin's modules instantiated so far, by position), from `linker`, or forwarding functions,
 * appended to `forwards` (room for every forwarding slot of the plugin; NULL when there are
 * none). Then points the forwarders that wait for this module at its exports. Returns what
 * wasmtime_instance_new returns (an error, or a trap in *trap). */
wasmtime_error_t *import_plan_instantiate(const import_plan *plan, wasmtime_context_t *ctx,
                                          const wasmtime_module_t *module, size_t position,
                                          const char *label, const wasmtime_linker_t *linker,
                                          const wasmtime_instance_t *accessor,
                                          wasmtime_instance_t *instances, forward_list *forwards,
                                          wasm_trap_t **trap);

/* import_plan_export_index: the index of the export `name` of `module`, or -1; when found and
 * `type` is not NULL, *type gets a copy of its type (the caller deletes it). */
ptrdiff_t import_plan_export_index(const wasmtime_module_t *module, const char *name, wasm_externtype_t **type);

#endif
