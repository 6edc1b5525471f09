/* import_plan.c - per-module import plans, their instantiation, forwarding functions; contracts in
 * import_plan.h. */
#include "import_plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wasm_types.h"

static const char ENV_MODULE[] = "extism:host/env";

/* Imports of up to this many entries are gathered on the stack. */
#define IMPORTS_ON_STACK 64

/* A function export of the accessor module with this name, or -1. */
static ptrdiff_t accessor_function(const wasmtime_module_t *accessor, const char *name) {
    wasm_externtype_t *type = NULL;
    ptrdiff_t index = wasm_types_export_index(accessor, name, &type);
    int is_function = type != NULL && wt.wasm_externtype_kind(type) == WASM_EXTERN_FUNC;
    if (type != NULL) wt.wasm_externtype_delete(type);
    return is_function ? index : -1;
}

/* ---- plans ---- */

/* Where the import `slot` (of type `type`) of module `position` comes from. */
static int resolve(import_slot *slot, const wasm_externtype_t *type, size_t position, const plugin_modules *m,
                   link_problem *problem) {
    for (size_t i = 0; i < m->count; i++) {
        if (m->names[i] == NULL || strcmp(m->names[i], slot->module) != 0) continue;
        wasm_externtype_t *found = NULL;
        ptrdiff_t index = wasm_types_export_index(m->modules[i], slot->name, &found);
        if (index < 0) break; /* not exported: the linker's definition, if any (as the official runtime) */
        slot->module_index = i;
        if (!wasm_types_fit(type, found)) {
            link_import at = {position, i, slot->module, slot->name, slot->kind};
            link_problem_set(problem, LINK_PROBLEM_TYPE, at);
            problem->expected = wt.wasm_externtype_copy(type);
            problem->found = found;
            return -1;
        }
        wt.wasm_externtype_delete(found);
        slot->source = IMPORT_FROM_MODULE;
        if (slot->kind == WASM_EXTERN_FUNC) { /* kept in case the import turns out to need forwarding */
            slot->forward_type = wt.wasm_functype_copy(wt.wasm_externtype_as_functype_const(type));
            if (slot->forward_type == NULL) return link_problem_out_of_memory(problem);
        }
        return 0;
    }
    ptrdiff_t index = strcmp(slot->module, ENV_MODULE) == 0 ? accessor_function(m->accessor, slot->name) : -1;
    slot->source = index >= 0 ? IMPORT_FROM_ACCESSOR : IMPORT_FROM_LINKER;
    return 0;
}

int import_plan_build(import_plan *plan, size_t position, const plugin_modules *modules, link_problem *problem) {
    wasm_importtype_vec_t imports;
    wt.wasmtime_module_imports(modules->modules[position], &imports);
    plan->count = 0;
    plan->slots = calloc(imports.size + 1, sizeof *plan->slots);
    int status = plan->slots == NULL ? link_problem_out_of_memory(problem) : 0;
    for (size_t i = 0; status == 0 && i < imports.size; i++) {
        import_slot *slot = &plan->slots[i];
        const wasm_name_t *mod = wt.wasm_importtype_module(imports.data[i]);
        const wasm_name_t *name = wt.wasm_importtype_name(imports.data[i]);
        const wasm_externtype_t *type = wt.wasm_importtype_type(imports.data[i]);
        if (memchr(mod->data, 0, mod->size) != NULL || memchr(name->data, 0, name->size) != NULL) {
            status = link_problem_nul_name(problem, position, mod, name, wt.wasm_externtype_kind(type));
            break;
        }
        slot->module = wt_copy_text((const char *)mod->data, mod->size);
        slot->name = wt_copy_text((const char *)name->data, name->size);
        slot->kind = wt.wasm_externtype_kind(type);
        plan->count = i + 1;
        if (slot->module == NULL || slot->name == NULL) status = link_problem_out_of_memory(problem);
        else status = resolve(slot, type, position, modules, problem);
    }
    wt.wasm_importtype_vec_delete(&imports);
    return status;
}

void import_plan_free(import_plan *plan) {
    if (plan == NULL || plan->slots == NULL) return;
    for (size_t i = 0; i < plan->count; i++) {
        free(plan->slots[i].module);
        free(plan->slots[i].name);
        if (plan->slots[i].forward_type != NULL) wt.wasm_functype_delete(plan->slots[i].forward_type);
    }
    free(plan->slots);
    plan->slots = NULL;
    plan->count = 0;
}

/* ---- forwarding functions ---- */

/* A function import of a module instantiated before its provider: env of the host function
 * that stands for it, owned by the store (freed with it). */
typedef struct forwarder {
    wasmtime_func_t target;
    int ready;                 /* target is set: its module is instantiated */
    size_t provider;           /* the position of the module that exports it (as `name`) */
    const char *importer;      /* borrowed from the compiled plugin, which outlives its stores */
    const char *module;
    const char *name;
} forwarder;

static wasm_trap_t *forward_call(void *env, wasmtime_caller_t *caller, wasmtime_val_raw_t *args_and_results,
                                 size_t count) {
    const forwarder *f = env;
    if (!f->ready) {
        char message[700];
        snprintf(message, sizeof message,
                 "module '%s' called %s::%s before module '%s' was instantiated (a start function called "
                 "around a cycle of imports between modules)",
                 f->importer, f->module, f->name, f->module);
        return wt.wasmtime_trap_new(message, strlen(message));
    }
    wasm_trap_t *trap = NULL;
    wasmtime_error_t *e =
        wt.wasmtime_func_call_unchecked(wt.wasmtime_caller_context(caller), &f->target, args_and_results, count, &trap);
    if (e == NULL) return trap; /* a trap goes on unchanged (its code included) */
    /* An error that is not a trap (an interrupt, a host failure: both recorded on the instance
     * too, a WASI exit) can only leave a host function as a trap: keep its text. */
    char *text = wt_take_error_message(e);
    wasm_trap_t *out = wt.wasmtime_trap_new(text != NULL ? text : "error in a forwarded call",
                                            text != NULL ? strlen(text) : 25);
    free(text);
    return out;
}

static int make_forwarder(const import_slot *slot, wasmtime_context_t *ctx, const char *label,
                          forward_list *forwards, wasmtime_extern_t *item) {
    forwarder *f = calloc(1, sizeof *f);
    if (f == NULL) return 0;
    f->provider = slot->module_index;
    f->importer = label;
    f->module = slot->module;
    f->name = slot->name;
    item->kind = WASM_EXTERN_FUNC;
    wt.wasmtime_func_new_unchecked(ctx, slot->forward_type, forward_call, f, free, &item->of.func);
    forwards->items[forwards->count++] = f;
    return 1;
}

/* Point the forwarders waiting for module `position` at its exports. */
static void resolve_forwards(forward_list *forwards, wasmtime_context_t *ctx, size_t position,
                             const wasmtime_instance_t *instance) {
    for (size_t i = 0; i < forwards->count; i++) {
        forwarder *f = forwards->items[i];
        if (f->ready || f->provider != position) continue;
        wasmtime_extern_t item;
        if (wt.wasmtime_instance_export_get(ctx, instance, f->name, strlen(f->name), &item) &&
            item.kind == WASM_EXTERN_FUNC) {
            f->target = item.of.func;
            f->ready = 1;
        }
    }
}

/* ---- instantiation ---- */

static int gather(const import_slot *slot, instantiation *in, const char *label, wasmtime_extern_t *item) {
    switch (slot->source) {
    case IMPORT_FROM_ACCESSOR:
        return wt.wasmtime_instance_export_get(in->ctx, in->accessor, slot->name, strlen(slot->name), item);
    case IMPORT_FROM_MODULE:
        return wt.wasmtime_instance_export_get(in->ctx, &in->instances[slot->module_index], slot->name,
                                               strlen(slot->name), item);
    case IMPORT_FROM_FORWARD:
        return in->forwards != NULL && make_forwarder(slot, in->ctx, label, in->forwards, item);
    default:
        return wt.wasmtime_linker_get(in->linker, in->ctx, slot->module, strlen(slot->module), slot->name,
                                      strlen(slot->name), item);
    }
}

wasmtime_error_t *import_plan_instantiate(const import_plan *plan, instantiation *in, const wasmtime_module_t *module,
                                          size_t position, const char *label) {
    wasmtime_extern_t on_stack[IMPORTS_ON_STACK];
    wasmtime_extern_t *items = on_stack;
    if (plan->count > IMPORTS_ON_STACK) {
        items = malloc(plan->count * sizeof *items);
        if (items == NULL) return wt.wasmtime_error_new("out of host memory gathering a module's imports");
    }
    wasmtime_error_t *e = NULL;
    for (size_t i = 0; e == NULL && i < plan->count; i++) {
        if (!gather(&plan->slots[i], in, label, &items[i])) {
            char message[600];
            snprintf(message, sizeof message, "import %s::%s is not defined", plan->slots[i].module,
                     plan->slots[i].name);
            e = wt.wasmtime_error_new(message);
        }
    }
    if (e == NULL)
        e = wt.wasmtime_instance_new(in->ctx, module, items, plan->count, &in->instances[position], &in->trap);
    if (items != on_stack) free(items);
    if (e == NULL && in->trap == NULL && in->forwards != NULL && in->forwards->count > 0)
        resolve_forwards(in->forwards, in->ctx, position, &in->instances[position]);
    return e;
}
