/*
 * import_plan.h - how each import of a module is satisfied in a new store, worked out once per
 * compiled plugin so that instantiating it costs no name resolution and no per-store linker.
 *
 * A plugin's modules are instantiated in order (the manifest's named modules, then main) after the
 * kernel accessor instance (kernel_access.c). Each import comes from one of:
 *   - the accessor instance: the hot `extism:host/env` functions (loads, stores, input reads);
 *   - an earlier module of the plugin, by the manifest name it was given;
 *   - the compiled plugin's linker: the other ABI functions, WASI and the host functions, which
 *     wasmtime instantiates into the store on lookup.
 * Accessor and module exports are found by index (wasmtime_instance_export_nth), never by name.
 */
#ifndef EXTISM_FAST_IMPORT_PLAN_H
#define EXTISM_FAST_IMPORT_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "wasmtime_api.h"

typedef enum import_source {
    IMPORT_FROM_ACCESSOR = 0, /* export `export_index` of the accessor instance */
    IMPORT_FROM_MODULE = 1,   /* export `export_index` of the plugin's module `module_index` */
    IMPORT_FROM_LINKER = 2,   /* the linker's definition of module::name */
} import_source;

typedef struct import_slot {
    import_source source;
    size_t module_index;
    size_t export_index;
    char *module; /* owned, NUL-terminated: the import's module name */
    char *name;   /* owned, NUL-terminated: the import's field name */
} import_slot;

typedef struct import_plan {
    size_t count;       /* the module's imports, in its import order */
    import_slot *slots; /* owned */
} import_plan;

/* import_plan_build: the plan for `module`, the module at `position` in the instantiation order;
 * `names[i]` is the manifest name of module i (the modules before `position` can be imported
 * from; a later one cannot: that is an error naming both). The caller has already checked that
 * every import exists with the right type. Returns 0, or -1 and sets *error (malloc'ed). */
int import_plan_build(import_plan *plan, const wasmtime_module_t *module, size_t position, char *const *names,
                      size_t module_count, const wasmtime_module_t *const *modules,
                      const wasmtime_module_t *accessor, const char *module_label, char **error);

/* import_plan_free: free what the plan owns (the struct itself is the caller's). */
void import_plan_free(import_plan *plan);

/* import_plan_instantiate: instantiate `module` in ctx with the imports its plan names: from
 * `accessor`, from `instances` (the plugin's modules instantiated so far, by position) or from
 * `linker`. Returns what wasmtime_instance_new returns (an error, or a trap in *trap). */
wasmtime_error_t *import_plan_instantiate(const import_plan *plan, wasmtime_context_t *ctx,
                                          const wasmtime_module_t *module, const wasmtime_linker_t *linker,
                                          const wasmtime_instance_t *accessor,
                                          const wasmtime_instance_t *instances, wasmtime_instance_t *out,
                                          wasm_trap_t **trap);

/* import_plan_export_index: the index of the export `name` of `module`, or -1. */
ptrdiff_t import_plan_export_index(const wasmtime_module_t *module, const char *name);

#endif
