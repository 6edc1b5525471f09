/*
 * link.h - linking a plugin's modules, once per compiled plugin.
 *
 * Owns: the one pass that makes every module's import plan (import_plan.h), orders the modules
 * (module_order.h) and checks every import against what satisfies it: a module's export, the ABI
 * (env_imports.h), WASI, the user's host functions (host_definitions). The first problem is
 * reported as a link_problem (link_problem.h), which the Python layer words. Problems between
 * modules come first (all modules), then host imports, module by module in position order,
 * import by import.
 */
#ifndef EXTISM_FAST_LINK_H
#define EXTISM_FAST_LINK_H

#include <stddef.h>

#include "import_plan.h"
#include "link_problem.h"
#include "wasmtime_api.h"

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

/* One linking pass: what it reads, what it fills. */
typedef struct link_context {
    plugin_modules modules;         /* the modules by position (deps, then main) and the accessor */
    const host_definitions *host;
    import_plan *plans;             /* out: modules.count plans (the caller frees them: import_plan_free) */
    size_t *order;                  /* out: the instantiation order, modules.count positions */
    size_t forward_count;           /* out: forwarding slots */
    link_problem *problem;          /* out: the first problem */
} link_context;

/* link_build: fill l->plans, l->order and l->forward_count. Every import is checked: those from
 * modules against the export, the others against the ABI and l->host (a WASI import is not
 * checked further when WASI is on: the linker has it or instantiation names it). Returns 0
 * (*l->problem left empty), or -1 and fills *l->problem with the first problem (free it with
 * link_problem_free). */
int link_build(link_context *l);

#endif
