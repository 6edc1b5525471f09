/* link.c - one pass per compiled plugin: import plans, order, every import checked; contracts in link.h. */
#include "link.h"

#include <string.h>

#include "env_imports.h"
#include "module_order.h"
#include "wasm_types.h"

static const char ENV_MODULE[] = "extism:host/env";
static const char *const WASI_MODULES[] = {"wasi_snapshot_preview1", "wasi_unstable"};

/* The position of the module named like the import's module (it lacks the field: the import
 * would otherwise come from it), or LINK_NO_PROVIDER. */
static size_t module_named(const link_context *l, const char *module) {
    for (size_t i = 0; i < l->modules.count; i++)
        if (l->modules.names[i] != NULL && strcmp(l->modules.names[i], module) == 0) return i;
    return LINK_NO_PROVIDER;
}

static const host_function *host_function_named(const host_definitions *host, const wasm_name_t *module,
                                                const wasm_name_t *name) {
    for (size_t i = 0; i < host->function_count; i++) {
        const host_function *f = &host->functions[i];
        if (f->module_length == module->size && f->name_length == name->size &&
            memcmp(f->module, module->data, module->size) == 0 && memcmp(f->name, name->data, name->size) == 0)
            return f;
    }
    return NULL;
}

static int is_wasi(const wasm_name_t *module) {
    for (size_t i = 0; i < sizeof WASI_MODULES / sizeof WASI_MODULES[0]; i++)
        if (wasm_types_name_equals(module, WASI_MODULES[i])) return 1;
    return 0;
}

/* The host import being checked: import `slot` (its type `import`) of module `position`. */
typedef struct host_import {
    const link_context *l;
    const import_slot *slot;
    const wasm_importtype_t *import;
    size_t position;
} host_import;

/* Report a problem with the host import `h`: copies of `expected` (a function type, may be NULL)
 * and `found` (may be NULL) go into the problem. */
static int host_problem(const host_import *h, link_problem_kind kind, size_t provider, const wasm_functype_t *expected,
                        const wasm_externtype_t *found) {
    link_problem *problem = h->l->problem;
    const import_slot *slot = h->slot;
    link_problem_set(problem, kind, (link_import){h->position, provider, slot->module, slot->name, slot->kind});
    if (expected != NULL) problem->expected = wt.wasm_externtype_copy(wt.wasm_functype_as_externtype_const(expected));
    if (found != NULL) problem->found = wt.wasm_externtype_copy(found);
    if ((expected != NULL && problem->expected == NULL) || (found != NULL && problem->found == NULL))
        problem->kind = LINK_PROBLEM_MEMORY;
    return -1;
}

/* An `extism:host/env` import: an ABI function of the ABI's type. */
static int check_abi_import(const host_import *h) {
    const wasm_name_t *name = wt.wasm_importtype_name(h->import);
    const wasm_externtype_t *type = wt.wasm_importtype_type(h->import);
    wasm_functype_t *abi = NULL;
    if (!env_import_type((const char *)name->data, name->size, &abi))
        return host_problem(h, LINK_PROBLEM_ABI_UNKNOWN, LINK_NO_PROVIDER, NULL, NULL);
    if (abi == NULL) return link_problem_out_of_memory(h->l->problem);
    int status = 0;
    if (!wasm_types_same_func(abi, wt.wasm_externtype_as_functype_const(type)))
        status = host_problem(h, LINK_PROBLEM_ABI_TYPE, LINK_NO_PROVIDER, abi, type);
    wt.wasm_functype_delete(abi);
    return status;
}

/* An import the plan takes from the accessor or the linker: a function the ABI, WASI or the
 * user's host functions define, of the same type (as the official SDK checks them). */
static int check_host_import(const host_import *h) {
    const wasm_name_t *module = wt.wasm_importtype_module(h->import);
    const wasm_externtype_t *type = wt.wasm_importtype_type(h->import);
    size_t provider = module_named(h->l, h->slot->module);
    if (h->slot->kind != WASM_EXTERN_FUNC) return host_problem(h, LINK_PROBLEM_NOT_FUNCTION, provider, NULL, type);
    if (wasm_types_name_equals(module, ENV_MODULE)) return check_abi_import(h);
    if (is_wasi(module))
        return h->l->host->wasi ? 0 : host_problem(h, LINK_PROBLEM_WASI_DISABLED, LINK_NO_PROVIDER, NULL, NULL);
    const host_function *f = host_function_named(h->l->host, module, wt.wasm_importtype_name(h->import));
    if (f == NULL) return host_problem(h, LINK_PROBLEM_HOST_MISSING, provider, NULL, type);
    if (wasm_types_same_func(f->type, wt.wasm_externtype_as_functype_const(type))) return 0;
    return host_problem(h, LINK_PROBLEM_HOST_TYPE, LINK_NO_PROVIDER, f->type, type);
}

static int check_host_imports(const link_context *l, size_t position) {
    const import_plan *plan = &l->plans[position];
    wasm_importtype_vec_t imports;
    wt.wasmtime_module_imports(l->modules.modules[position], &imports);
    int status = 0;
    for (size_t i = 0; status == 0 && i < imports.size && i < plan->count; i++) {
        import_source source = plan->slots[i].source;
        host_import h = {l, &plan->slots[i], imports.data[i], position};
        if (source == IMPORT_FROM_ACCESSOR || source == IMPORT_FROM_LINKER) status = check_host_import(&h);
    }
    wt.wasm_importtype_vec_delete(&imports);
    return status;
}

int link_build(link_context *l) {
    memset(l->problem, 0, sizeof *l->problem);
    l->forward_count = 0;
    for (size_t i = 0; i < l->modules.count; i++)
        if (import_plan_build(&l->plans[i], i, &l->modules, l->problem) != 0) return -1;
    int status = module_order_build(l->plans, l->modules.count, l->order, &l->forward_count, l->problem);
    for (size_t i = 0; status == 0 && i < l->modules.count; i++) status = check_host_imports(l, i);
    return status;
}
