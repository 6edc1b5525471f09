/* import_plan.c - per-module import plans, the instantiation order, forwarding functions;
 * contracts in import_plan.h. */
#include "import_plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "env_imports.h"

static const char ENV_MODULE[] = "extism:host/env";
static const char *const WASI_MODULES[] = {"wasi_snapshot_preview1", "wasi_unstable"};

/* Imports of up to this many entries are gathered on the stack. */
#define IMPORTS_ON_STACK 64

#define UNVISITED SIZE_MAX

static int name_equals(const wasm_name_t *name, const char *text) {
    size_t n = strlen(text);
    return name->size == n && memcmp(name->data, text, n) == 0;
}

/* ---- types ---- */

static int same_kinds(const wasm_valtype_vec_t *a, const wasm_valtype_vec_t *b) {
    if (a->size != b->size) return 0;
    for (size_t i = 0; i < a->size; i++)
        if (wt.wasm_valtype_kind(a->data[i]) != wt.wasm_valtype_kind(b->data[i])) return 0;
    return 1;
}

static int same_functypes(const wasm_functype_t *a, const wasm_functype_t *b) {
    return same_kinds(wt.wasm_functype_params(a), wt.wasm_functype_params(b)) &&
           same_kinds(wt.wasm_functype_results(a), wt.wasm_functype_results(b));
}

/* wasm import matching: the export is at least as big, and bounded at least as tightly. */
static int limits_fit(uint64_t want_min, int want_bounded, uint64_t want_max, uint64_t have_min,
                      int have_bounded, uint64_t have_max) {
    if (have_min < want_min) return 0;
    return !want_bounded || (have_bounded && have_max <= want_max);
}

static int tables_fit(const wasm_tabletype_t *want, const wasm_tabletype_t *have) {
    if (wt.wasm_valtype_kind(wt.wasm_tabletype_element(want)) != wt.wasm_valtype_kind(wt.wasm_tabletype_element(have)))
        return 0;
    const wasm_limits_t *w = wt.wasm_tabletype_limits(want), *h = wt.wasm_tabletype_limits(have);
    return limits_fit(w->min, w->max != UINT32_MAX, w->max, h->min, h->max != UINT32_MAX, h->max);
}

static int memories_fit(const wasm_memorytype_t *want, const wasm_memorytype_t *have) {
    if (wt.wasmtime_memorytype_is64(want) != wt.wasmtime_memorytype_is64(have) ||
        wt.wasmtime_memorytype_isshared(want) != wt.wasmtime_memorytype_isshared(have) ||
        wt.wasmtime_memorytype_page_size_log2(want) != wt.wasmtime_memorytype_page_size_log2(have))
        return 0;
    uint64_t want_max = 0, have_max = 0;
    int want_bounded = wt.wasmtime_memorytype_maximum(want, &want_max);
    int have_bounded = wt.wasmtime_memorytype_maximum(have, &have_max);
    return limits_fit(wt.wasmtime_memorytype_minimum(want), want_bounded, want_max,
                      wt.wasmtime_memorytype_minimum(have), have_bounded, have_max);
}

/* Can an export of type `have` satisfy an import of type `want`? The rules wasmtime applies at
 * instantiation, checked on the declared types (a memory is instantiated at its minimum). */
static int extern_fits(const wasm_externtype_t *want, const wasm_externtype_t *have) {
    wasm_externkind_t kind = wt.wasm_externtype_kind(want);
    if (kind != wt.wasm_externtype_kind(have)) return 0;
    switch (kind) {
    case WASM_EXTERN_FUNC:
        return same_functypes(wt.wasm_externtype_as_functype_const(want), wt.wasm_externtype_as_functype_const(have));
    case WASM_EXTERN_GLOBAL: {
        const wasm_globaltype_t *w = wt.wasm_externtype_as_globaltype_const(want);
        const wasm_globaltype_t *h = wt.wasm_externtype_as_globaltype_const(have);
        return wt.wasm_valtype_kind(wt.wasm_globaltype_content(w)) == wt.wasm_valtype_kind(wt.wasm_globaltype_content(h)) &&
               wt.wasm_globaltype_mutability(w) == wt.wasm_globaltype_mutability(h);
    }
    case WASM_EXTERN_TABLE:
        return tables_fit(wt.wasm_externtype_as_tabletype_const(want), wt.wasm_externtype_as_tabletype_const(have));
    case WASM_EXTERN_MEMORY:
        return memories_fit(wt.wasm_externtype_as_memorytype_const(want),
                            wt.wasm_externtype_as_memorytype_const(have));
    default:
        return 0;
    }
}

/* ---- exports ---- */

/* The index of the export `name` of `module`, or -1; *type gets a copy of its type if wanted. */
static ptrdiff_t find_export(const wasmtime_module_t *module, const char *name, wasm_externtype_t **type) {
    wasm_exporttype_vec_t exports;
    wt.wasmtime_module_exports(module, &exports);
    ptrdiff_t found = -1;
    for (size_t i = 0; found < 0 && i < exports.size; i++) {
        if (!name_equals(wt.wasm_exporttype_name(exports.data[i]), name)) continue;
        found = (ptrdiff_t)i;
        if (type != NULL) *type = wt.wasm_externtype_copy(wt.wasm_exporttype_type(exports.data[i]));
    }
    wt.wasm_exporttype_vec_delete(&exports);
    return found;
}

ptrdiff_t import_plan_export_index(const wasmtime_module_t *module, const char *name, wasm_externtype_t **type) {
    return find_export(module, name, type);
}

/* A function export of the accessor module with this name, or -1. */
static ptrdiff_t accessor_function(const wasmtime_module_t *accessor, const char *name) {
    wasm_externtype_t *type = NULL;
    ptrdiff_t index = find_export(accessor, name, &type);
    int is_function = type != NULL && wt.wasm_externtype_kind(type) == WASM_EXTERN_FUNC;
    if (type != NULL) wt.wasm_externtype_delete(type);
    return is_function ? index : -1;
}

/* ---- problems ---- */

static int out_of_memory(link_problem *problem) {
    problem->kind = LINK_PROBLEM_MEMORY;
    return -1;
}

void link_problem_free(link_problem *problem) {
    free(problem->module);
    free(problem->name);
    if (problem->expected != NULL) wt.wasm_externtype_delete(problem->expected);
    if (problem->found != NULL) wt.wasm_externtype_delete(problem->found);
    free(problem->cycle);
    memset(problem, 0, sizeof *problem);
}

/* Name the import `slot` of module `importer` in the problem. */
static int describe(link_problem *problem, link_problem_kind kind, size_t importer, const import_slot *slot) {
    problem->kind = kind;
    problem->importer = importer;
    problem->provider = slot->module_index;
    problem->import_kind = slot->kind;
    problem->module = wt_copy_text(slot->module, strlen(slot->module));
    problem->name = wt_copy_text(slot->name, strlen(slot->name));
    if (problem->module == NULL || problem->name == NULL) problem->kind = LINK_PROBLEM_MEMORY;
    return -1;
}

/* A copy of the `size` bytes at `data`, NUL-terminated, each NUL byte in them written "\\0". */
static char *copy_showing_nul(const char *data, size_t size) {
    size_t nuls = 0;
    for (size_t i = 0; i < size; i++) nuls += data[i] == '\0';
    char *copy = malloc(size + nuls + 1);
    if (copy == NULL) return NULL;
    size_t j = 0;
    for (size_t i = 0; i < size; i++) {
        if (data[i] == '\0') {
            copy[j++] = '\\';
            copy[j++] = '0';
        } else {
            copy[j++] = data[i];
        }
    }
    copy[j] = '\0';
    return copy;
}

/* A module or field name with a NUL byte: wasm allows it, but no definition has it, and the
 * slots keep names as C strings. Refused before anything looks it up. */
static int refuse_nul_name(link_problem *problem, size_t importer, const wasm_name_t *mod,
                           const wasm_name_t *name, wasm_externkind_t kind) {
    problem->kind = LINK_PROBLEM_NUL_NAME;
    problem->importer = importer;
    problem->provider = LINK_NO_PROVIDER;
    problem->import_kind = kind;
    problem->module = copy_showing_nul((const char *)mod->data, mod->size);
    problem->name = copy_showing_nul((const char *)name->data, name->size);
    if (problem->module == NULL || problem->name == NULL) problem->kind = LINK_PROBLEM_MEMORY;
    return -1;
}

/* ---- plans ---- */

/* Where the import `slot` (of type `type`) of module `position` comes from. */
static int resolve(import_slot *slot, const wasm_externtype_t *type, size_t position, size_t count,
                   const wasmtime_module_t *const *modules, const char *const *names,
                   const wasmtime_module_t *accessor, link_problem *problem) {
    for (size_t i = 0; i < count; i++) {
        if (names[i] == NULL || strcmp(names[i], slot->module) != 0) continue;
        wasm_externtype_t *found = NULL;
        ptrdiff_t index = find_export(modules[i], slot->name, &found);
        if (index < 0) break; /* not exported: the linker's definition, if any (as the official runtime) */
        slot->module_index = i;
        if (!extern_fits(type, found)) {
            describe(problem, LINK_PROBLEM_TYPE, position, slot);
            problem->expected = wt.wasm_externtype_copy(type);
            problem->found = found;
            return -1;
        }
        wt.wasm_externtype_delete(found);
        slot->source = IMPORT_FROM_MODULE;
        if (slot->kind == WASM_EXTERN_FUNC) { /* kept in case the import turns out to need forwarding */
            slot->forward_type = wt.wasm_functype_copy(wt.wasm_externtype_as_functype_const(type));
            if (slot->forward_type == NULL) return out_of_memory(problem);
        }
        return 0;
    }
    ptrdiff_t index = strcmp(slot->module, ENV_MODULE) == 0 ? accessor_function(accessor, slot->name) : -1;
    slot->source = index >= 0 ? IMPORT_FROM_ACCESSOR : IMPORT_FROM_LINKER;
    return 0;
}

static int build_one(import_plan *plan, size_t position, size_t count, const wasmtime_module_t *const *modules,
                     const char *const *names, const wasmtime_module_t *accessor, link_problem *problem) {
    wasm_importtype_vec_t imports;
    wt.wasmtime_module_imports(modules[position], &imports);
    plan->count = 0;
    plan->slots = calloc(imports.size + 1, sizeof *plan->slots);
    int status = plan->slots == NULL ? out_of_memory(problem) : 0;
    for (size_t i = 0; status == 0 && i < imports.size; i++) {
        import_slot *slot = &plan->slots[i];
        const wasm_name_t *mod = wt.wasm_importtype_module(imports.data[i]);
        const wasm_name_t *name = wt.wasm_importtype_name(imports.data[i]);
        const wasm_externtype_t *type = wt.wasm_importtype_type(imports.data[i]);
        if (memchr(mod->data, 0, mod->size) != NULL || memchr(name->data, 0, name->size) != NULL) {
            status = refuse_nul_name(problem, position, mod, name, wt.wasm_externtype_kind(type));
            break;
        }
        slot->module = wt_copy_text((const char *)mod->data, mod->size);
        slot->name = wt_copy_text((const char *)name->data, name->size);
        slot->kind = wt.wasm_externtype_kind(type);
        plan->count = i + 1;
        if (slot->module == NULL || slot->name == NULL) status = out_of_memory(problem);
        else status = resolve(slot, type, position, count, modules, names, accessor, problem);
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

/* ---- the instantiation order ----
 *
 * Modules are nodes, a module import an edge from importer to provider. Tarjan's algorithm finds
 * the strongly connected components, providers first; visiting modules in manifest order keeps
 * that order when it is already valid. A component of several modules (or one importing from
 * itself) is a cycle: it is ordered so that every non-function import comes from an earlier
 * module (impossible when the non-function imports alone form a cycle: a problem), and its
 * function imports from a module that comes later, or from itself, are forwarded. */

typedef struct graph {
    import_plan *plans;
    size_t count;
    size_t *index, *low, *stack, *component, *rank;
    unsigned char *on_stack;
    size_t next_index, depth, components;
    size_t *order;
    size_t ordered;
    size_t forward_count;
    link_problem *problem;
} graph;

static void place(graph *g, size_t v) {
    g->rank[v] = g->ordered;
    g->order[g->ordered++] = v;
}

/* In the component `id`, a module whose non-function imports from the component all come from
 * modules already placed, the first in manifest order; or SIZE_MAX. */
static size_t next_ready(graph *g, const size_t *members, size_t n, size_t id) {
    size_t best = SIZE_MAX;
    for (size_t m = 0; m < n; m++) {
        size_t v = members[m];
        if (g->rank[v] != UNVISITED || v >= best) continue;
        int ready = 1;
        for (size_t s = 0; ready && s < g->plans[v].count; s++) {
            const import_slot *slot = &g->plans[v].slots[s];
            size_t w = slot->module_index;
            ready = slot->source != IMPORT_FROM_MODULE || slot->kind == WASM_EXTERN_FUNC ||
                    g->component[w] != id || g->rank[w] != UNVISITED;
        }
        if (ready) best = v;
    }
    return best;
}

/* The non-function imports among the unplaced modules of component `id` form a cycle: walk it
 * from one of them and report it. */
static int report_cycle(graph *g, const size_t *members, size_t n, size_t id) {
    size_t v = SIZE_MAX;
    for (size_t m = 0; m < n && v == SIZE_MAX; m++)
        if (g->rank[members[m]] == UNVISITED) v = members[m];
    size_t *path = calloc(g->count + 1, sizeof *path);
    const import_slot **edges = calloc(g->count + 1, sizeof *edges);
    if (path == NULL || edges == NULL) {
        free(path);
        free(edges);
        return out_of_memory(g->problem);
    }
    size_t length = 0, start = SIZE_MAX;
    while (start == SIZE_MAX) {
        for (size_t k = 0; k < length; k++)
            if (path[k] == v) start = k;
        if (start != SIZE_MAX) break;
        path[length] = v;
        const import_slot *edge = NULL; /* unplaced modules each have such an import */
        for (size_t s = 0; edge == NULL && s < g->plans[v].count; s++) {
            const import_slot *slot = &g->plans[v].slots[s];
            if (slot->source == IMPORT_FROM_MODULE && slot->kind != WASM_EXTERN_FUNC &&
                g->component[slot->module_index] == id && g->rank[slot->module_index] == UNVISITED)
                edge = slot;
        }
        edges[length++] = edge;
        v = edge->module_index;
    }
    describe(g->problem, LINK_PROBLEM_CYCLE, path[start], edges[start]);
    g->problem->cycle_length = length - start;
    memmove(path, path + start, g->problem->cycle_length * sizeof *path);
    g->problem->cycle = path;
    free(edges);
    return -1;
}

/* Place the members of component `id` (a cycle) and mark the imports to forward. */
static int order_cycle(graph *g, const size_t *members, size_t n, size_t id) {
    for (size_t placed = 0; placed < n; placed++) {
        size_t v = next_ready(g, members, n, id);
        if (v == SIZE_MAX) return report_cycle(g, members, n, id);
        place(g, v);
    }
    for (size_t m = 0; m < n; m++) {
        size_t v = members[m];
        for (size_t s = 0; s < g->plans[v].count; s++) {
            import_slot *slot = &g->plans[v].slots[s];
            if (slot->source != IMPORT_FROM_MODULE || g->component[slot->module_index] != id ||
                g->rank[slot->module_index] < g->rank[v])
                continue;
            slot->source = IMPORT_FROM_FORWARD;
            g->forward_count++;
        }
    }
    return 0;
}

static int connect(graph *g, size_t v) {
    g->index[v] = g->low[v] = g->next_index++;
    g->stack[g->depth++] = v;
    g->on_stack[v] = 1;
    int self_import = 0;
    for (size_t s = 0; s < g->plans[v].count; s++) {
        const import_slot *slot = &g->plans[v].slots[s];
        if (slot->source != IMPORT_FROM_MODULE) continue;
        size_t w = slot->module_index;
        self_import |= w == v;
        if (g->index[w] == UNVISITED) {
            if (connect(g, w) != 0) return -1;
            if (g->low[w] < g->low[v]) g->low[v] = g->low[w];
        } else if (g->on_stack[w] && g->index[w] < g->low[v]) {
            g->low[v] = g->index[w];
        }
    }
    if (g->low[v] != g->index[v]) return 0;
    size_t id = g->components++, top = g->depth;
    do {
        size_t w = g->stack[--g->depth];
        g->on_stack[w] = 0;
        g->component[w] = id;
    } while (g->stack[g->depth] != v);
    size_t n = top - g->depth;
    if (n == 1 && !self_import) {
        place(g, v);
        return 0;
    }
    return order_cycle(g, &g->stack[g->depth], n, id);
}

/* Forwarding types are only kept for the imports that are forwarded. */
static void drop_unused_forward_types(import_plan *plans, size_t count) {
    for (size_t i = 0; i < count; i++)
        for (size_t s = 0; s < plans[i].count; s++) {
            import_slot *slot = &plans[i].slots[s];
            if (slot->source == IMPORT_FROM_FORWARD || slot->forward_type == NULL) continue;
            wt.wasm_functype_delete(slot->forward_type);
            slot->forward_type = NULL;
        }
}

static int order_modules(import_plan *plans, size_t count, size_t *order, size_t *forward_count,
                         link_problem *problem) {
    graph g = {.plans = plans, .count = count, .order = order, .problem = problem};
    size_t *scratch = malloc(5 * (count + 1) * sizeof *scratch);
    g.on_stack = calloc(count + 1, 1);
    if (scratch == NULL || g.on_stack == NULL) {
        free(scratch);
        free(g.on_stack);
        return out_of_memory(problem);
    }
    g.index = scratch;
    g.low = scratch + (count + 1);
    g.stack = scratch + 2 * (count + 1);
    g.component = scratch + 3 * (count + 1);
    g.rank = scratch + 4 * (count + 1);
    for (size_t i = 0; i < count; i++) g.index[i] = g.rank[i] = UNVISITED;
    int status = 0;
    for (size_t i = 0; status == 0 && i < count; i++)
        if (g.index[i] == UNVISITED) status = connect(&g, i);
    *forward_count = g.forward_count;
    free(scratch);
    free(g.on_stack);
    return status;
}

/* ---- imports from the host ---- */

/* The position of the module named like the import's module (it lacks the field: the import
 * would otherwise come from it), or LINK_NO_PROVIDER. */
static size_t module_named(const char *module, size_t count, const char *const *names) {
    for (size_t i = 0; i < count; i++)
        if (names[i] != NULL && strcmp(names[i], module) == 0) return i;
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
        if (name_equals(module, WASI_MODULES[i])) return 1;
    return 0;
}

/* Report a problem with the host import `slot` of module `importer`: copies of `expected` (a
 * function type, may be NULL) and `found` (may be NULL) go into the problem. */
static int host_problem(link_problem *problem, link_problem_kind kind, size_t importer, const import_slot *slot,
                        size_t provider, const wasm_functype_t *expected, const wasm_externtype_t *found) {
    describe(problem, kind, importer, slot);
    problem->provider = provider;
    if (expected != NULL) problem->expected = wt.wasm_externtype_copy(wt.wasm_functype_as_externtype_const(expected));
    if (found != NULL) problem->found = wt.wasm_externtype_copy(found);
    if ((expected != NULL && problem->expected == NULL) || (found != NULL && problem->found == NULL))
        problem->kind = LINK_PROBLEM_MEMORY;
    return -1;
}

/* An `extism:host/env` import: an ABI function of the ABI's type. */
static int check_abi_import(const import_slot *slot, const wasm_importtype_t *import, size_t position,
                            link_problem *problem) {
    const wasm_name_t *name = wt.wasm_importtype_name(import);
    const wasm_externtype_t *type = wt.wasm_importtype_type(import);
    wasm_functype_t *abi = NULL;
    if (!env_import_type((const char *)name->data, name->size, &abi))
        return host_problem(problem, LINK_PROBLEM_ABI_UNKNOWN, position, slot, LINK_NO_PROVIDER, NULL, NULL);
    if (abi == NULL) return out_of_memory(problem);
    int status = 0;
    if (!same_functypes(abi, wt.wasm_externtype_as_functype_const(type)))
        status = host_problem(problem, LINK_PROBLEM_ABI_TYPE, position, slot, LINK_NO_PROVIDER, abi, type);
    wt.wasm_functype_delete(abi);
    return status;
}

/* An import the plan takes from the accessor or the linker: a function the ABI, WASI or the
 * user's host functions define, of the same type (as the official SDK checks them). */
static int check_host_import(const import_slot *slot, const wasm_importtype_t *import, size_t position,
                             size_t count, const char *const *names, const host_definitions *host,
                             link_problem *problem) {
    const wasm_name_t *module = wt.wasm_importtype_module(import);
    const wasm_externtype_t *type = wt.wasm_importtype_type(import);
    size_t provider = module_named(slot->module, count, names);
    if (slot->kind != WASM_EXTERN_FUNC)
        return host_problem(problem, LINK_PROBLEM_NOT_FUNCTION, position, slot, provider, NULL, type);
    if (name_equals(module, ENV_MODULE)) return check_abi_import(slot, import, position, problem);
    if (is_wasi(module))
        return host->wasi ? 0 : host_problem(problem, LINK_PROBLEM_WASI_DISABLED, position, slot, LINK_NO_PROVIDER,
                                             NULL, NULL);
    const host_function *f = host_function_named(host, module, wt.wasm_importtype_name(import));
    if (f == NULL) return host_problem(problem, LINK_PROBLEM_HOST_MISSING, position, slot, provider, NULL, type);
    if (same_functypes(f->type, wt.wasm_externtype_as_functype_const(type))) return 0;
    return host_problem(problem, LINK_PROBLEM_HOST_TYPE, position, slot, LINK_NO_PROVIDER, f->type, type);
}

static int check_host_imports(const import_plan *plan, size_t position, size_t count,
                              const wasmtime_module_t *const *modules, const char *const *names,
                              const host_definitions *host, link_problem *problem) {
    wasm_importtype_vec_t imports;
    wt.wasmtime_module_imports(modules[position], &imports);
    int status = 0;
    for (size_t i = 0; status == 0 && i < imports.size && i < plan->count; i++) {
        import_source source = plan->slots[i].source;
        if (source == IMPORT_FROM_ACCESSOR || source == IMPORT_FROM_LINKER)
            status = check_host_import(&plan->slots[i], imports.data[i], position, count, names, host, problem);
    }
    wt.wasm_importtype_vec_delete(&imports);
    return status;
}

int import_plans_build(import_plan *plans, size_t count, const wasmtime_module_t *const *modules,
                       const char *const *names, const wasmtime_module_t *accessor,
                       const host_definitions *host, size_t *order, size_t *forward_count,
                       link_problem *problem) {
    memset(problem, 0, sizeof *problem);
    *forward_count = 0;
    for (size_t i = 0; i < count; i++)
        if (build_one(&plans[i], i, count, modules, names, accessor, problem) != 0) return -1;
    int status = order_modules(plans, count, order, forward_count, problem);
    drop_unused_forward_types(plans, count);
    for (size_t i = 0; status == 0 && i < count; i++)
        status = check_host_imports(&plans[i], i, count, modules, names, host, problem);
    return status;
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

static int gather(const import_slot *slot, wasmtime_context_t *ctx, const char *label, const wasmtime_linker_t *linker,
                  const wasmtime_instance_t *accessor, const wasmtime_instance_t *instances,
                  forward_list *forwards, wasmtime_extern_t *item) {
    switch (slot->source) {
    case IMPORT_FROM_ACCESSOR:
        return wt.wasmtime_instance_export_get(ctx, accessor, slot->name, strlen(slot->name), item);
    case IMPORT_FROM_MODULE:
        return wt.wasmtime_instance_export_get(ctx, &instances[slot->module_index], slot->name, strlen(slot->name), item);
    case IMPORT_FROM_FORWARD:
        return forwards != NULL && make_forwarder(slot, ctx, label, forwards, item);
    default:
        return wt.wasmtime_linker_get(linker, ctx, slot->module, strlen(slot->module), slot->name,
                                      strlen(slot->name), item);
    }
}

wasmtime_error_t *import_plan_instantiate(const import_plan *plan, wasmtime_context_t *ctx,
                                          const wasmtime_module_t *module, size_t position,
                                          const char *label, const wasmtime_linker_t *linker,
                                          const wasmtime_instance_t *accessor,
                                          wasmtime_instance_t *instances, forward_list *forwards,
                                          wasm_trap_t **trap) {
    wasmtime_extern_t on_stack[IMPORTS_ON_STACK];
    wasmtime_extern_t *items = on_stack;
    if (plan->count > IMPORTS_ON_STACK) {
        items = malloc(plan->count * sizeof *items);
        if (items == NULL) return wt.wasmtime_error_new("out of host memory gathering a module's imports");
    }
    wasmtime_error_t *e = NULL;
    for (size_t i = 0; e == NULL && i < plan->count; i++) {
        if (!gather(&plan->slots[i], ctx, label, linker, accessor, instances, forwards, &items[i])) {
            char message[600];
            snprintf(message, sizeof message, "import %s::%s is not defined", plan->slots[i].module,
                     plan->slots[i].name);
            e = wt.wasmtime_error_new(message);
        }
    }
    if (e == NULL) e = wt.wasmtime_instance_new(ctx, module, items, plan->count, &instances[position], trap);
    if (items != on_stack) free(items);
    if (e == NULL && *trap == NULL && forwards != NULL && forwards->count > 0)
        resolve_forwards(forwards, ctx, position, &instances[position]);
    return e;
}
