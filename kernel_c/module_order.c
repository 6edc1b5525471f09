/* module_order.c - the instantiation order of a plugin's modules (Tarjan's components, cycles,
 * forwarded imports); contracts in module_order.h. */
#include "module_order.h"

#include <stdlib.h>
#include <string.h>

#define UNVISITED SIZE_MAX

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
        return link_problem_out_of_memory(g->problem);
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
    const import_slot *first = edges[start];
    link_problem_set(g->problem, LINK_PROBLEM_CYCLE,
                     (link_import){path[start], first->module_index, first->module, first->name, first->kind});
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

int module_order_build(import_plan *plans, size_t count, size_t *order, size_t *forward_count, link_problem *problem) {
    graph g = {.plans = plans, .count = count, .order = order, .problem = problem};
    size_t *scratch = malloc(5 * (count + 1) * sizeof *scratch);
    g.on_stack = calloc(count + 1, 1);
    if (scratch == NULL || g.on_stack == NULL) {
        free(scratch);
        free(g.on_stack);
        return link_problem_out_of_memory(problem);
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
    drop_unused_forward_types(plans, count);
    return status;
}
