/* import_plan.c - per-module import plans; contracts in import_plan.h. */
#include "import_plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char ENV_MODULE[] = "extism:host/env";

/* Imports of up to this many entries are gathered on the stack. */
#define IMPORTS_ON_STACK 64

static int name_equals(const wasm_name_t *name, const char *text) {
    size_t n = strlen(text);
    return name->size == n && memcmp(name->data, text, n) == 0;
}

/* The index of the export `name` of `module` and its kind, or -1. */
static ptrdiff_t find_export(const wasmtime_module_t *module, const char *name, wasm_externkind_t *kind) {
    wasm_exporttype_vec_t exports;
    wt.wasmtime_module_exports(module, &exports);
    ptrdiff_t found = -1;
    for (size_t i = 0; found < 0 && i < exports.size; i++) {
        if (!name_equals(wt.wasm_exporttype_name(exports.data[i]), name)) continue;
        found = (ptrdiff_t)i;
        *kind = wt.wasm_externtype_kind(wt.wasm_exporttype_type(exports.data[i]));
    }
    wt.wasm_exporttype_vec_delete(&exports);
    return found;
}

ptrdiff_t import_plan_export_index(const wasmtime_module_t *module, const char *name) {
    wasm_externkind_t kind;
    return find_export(module, name, &kind);
}

/* A function export of the accessor module with this name, or -1. */
static ptrdiff_t accessor_function(const wasmtime_module_t *accessor, const char *name) {
    wasm_externkind_t kind;
    ptrdiff_t index = find_export(accessor, name, &kind);
    return index >= 0 && kind == WASM_EXTERN_FUNC ? index : -1;
}

static int fail(char **error, const char *message) {
    *error = wt_copy_text(message, strlen(message));
    return -1;
}

/* Where the import module::name of the module at `position` comes from. */
static int resolve(import_slot *slot, size_t position, char *const *names, size_t module_count,
                   const wasmtime_module_t *const *modules, const wasmtime_module_t *accessor,
                   const char *module_label, char **error) {
    for (size_t i = 0; i < module_count; i++) {
        if (strcmp(names[i], slot->module) != 0) continue;
        if (i >= position) {
            char message[600];
            snprintf(message, sizeof message,
                     "module '%s' imports %s::%s, but module '%s' comes after it in manifest.wasm: "
                     "list the modules a module imports from before it",
                     module_label, slot->module, slot->name, names[i]);
            return fail(error, message);
        }
        ptrdiff_t index = import_plan_export_index(modules[i], slot->name);
        if (index < 0) return fail(error, "import plan: an import checked earlier has no export");
        slot->source = IMPORT_FROM_MODULE;
        slot->module_index = i;
        slot->export_index = (size_t)index;
        return 0;
    }
    ptrdiff_t index = strcmp(slot->module, ENV_MODULE) == 0 ? accessor_function(accessor, slot->name) : -1;
    slot->source = index >= 0 ? IMPORT_FROM_ACCESSOR : IMPORT_FROM_LINKER;
    slot->export_index = index >= 0 ? (size_t)index : 0;
    return 0;
}

int import_plan_build(import_plan *plan, const wasmtime_module_t *module, size_t position, char *const *names,
                      size_t module_count, const wasmtime_module_t *const *modules,
                      const wasmtime_module_t *accessor, const char *module_label, char **error) {
    wasm_importtype_vec_t imports;
    wt.wasmtime_module_imports(module, &imports);
    plan->count = 0;
    plan->slots = calloc(imports.size + 1, sizeof *plan->slots);
    int status = plan->slots == NULL ? fail(error, "out of memory") : 0;
    for (size_t i = 0; status == 0 && i < imports.size; i++) {
        import_slot *slot = &plan->slots[i];
        const wasm_name_t *mod = wt.wasm_importtype_module(imports.data[i]);
        const wasm_name_t *name = wt.wasm_importtype_name(imports.data[i]);
        slot->module = wt_copy_text((const char *)mod->data, mod->size);
        slot->name = wt_copy_text((const char *)name->data, name->size);
        plan->count = i + 1;
        if (slot->module == NULL || slot->name == NULL) status = fail(error, "out of memory");
        else status = resolve(slot, position, names, module_count, modules, accessor, module_label, error);
    }
    wt.wasm_importtype_vec_delete(&imports);
    return status;
}

void import_plan_free(import_plan *plan) {
    if (plan == NULL || plan->slots == NULL) return;
    for (size_t i = 0; i < plan->count; i++) {
        free(plan->slots[i].module);
        free(plan->slots[i].name);
    }
    free(plan->slots);
    plan->slots = NULL;
    plan->count = 0;
}

static int gather(const import_slot *slot, wasmtime_context_t *ctx, const wasmtime_linker_t *linker,
                  const wasmtime_instance_t *accessor, const wasmtime_instance_t *instances,
                  wasmtime_extern_t *item) {
    char *name;
    size_t name_length;
    switch (slot->source) {
    case IMPORT_FROM_ACCESSOR:
        return wt.wasmtime_instance_export_nth(ctx, accessor, slot->export_index, &name, &name_length, item);
    case IMPORT_FROM_MODULE:
        return wt.wasmtime_instance_export_nth(ctx, &instances[slot->module_index], slot->export_index, &name,
                                               &name_length, item);
    default:
        return wt.wasmtime_linker_get(linker, ctx, slot->module, strlen(slot->module), slot->name,
                                      strlen(slot->name), item);
    }
}

wasmtime_error_t *import_plan_instantiate(const import_plan *plan, wasmtime_context_t *ctx,
                                          const wasmtime_module_t *module, const wasmtime_linker_t *linker,
                                          const wasmtime_instance_t *accessor,
                                          const wasmtime_instance_t *instances, wasmtime_instance_t *out,
                                          wasm_trap_t **trap) {
    wasmtime_extern_t on_stack[IMPORTS_ON_STACK];
    wasmtime_extern_t *items = on_stack;
    if (plan->count > IMPORTS_ON_STACK) {
        items = malloc(plan->count * sizeof *items);
        if (items == NULL) return wt.wasmtime_error_new("out of host memory gathering a module's imports");
    }
    wasmtime_error_t *e = NULL;
    for (size_t i = 0; e == NULL && i < plan->count; i++) {
        if (!gather(&plan->slots[i], ctx, linker, accessor, instances, &items[i])) {
            char message[600];
            snprintf(message, sizeof message, "import %s::%s is not defined", plan->slots[i].module,
                     plan->slots[i].name);
            e = wt.wasmtime_error_new(message);
        }
    }
    if (e == NULL) e = wt.wasmtime_instance_new(ctx, module, items, plan->count, out, trap);
    if (items != on_stack) free(items);
    return e;
}
