/* wasm_types.c - import/export type matching, export lookup, function types, their text; contracts in wasm_types.h. */
#include "wasm_types.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int wasm_types_name_equals(const wasm_name_t *name, const char *text) {
    size_t n = strlen(text);
    return name->size == n && memcmp(name->data, text, n) == 0;
}

static int same_kinds(const wasm_valtype_vec_t *a, const wasm_valtype_vec_t *b) {
    if (a->size != b->size) return 0;
    for (size_t i = 0; i < a->size; i++)
        if (wt.wasm_valtype_kind(a->data[i]) != wt.wasm_valtype_kind(b->data[i])) return 0;
    return 1;
}

int wasm_types_same_func(const wasm_functype_t *a, const wasm_functype_t *b) {
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

int wasm_types_fit(const wasm_externtype_t *want, const wasm_externtype_t *have) {
    wasm_externkind_t kind = wt.wasm_externtype_kind(want);
    if (kind != wt.wasm_externtype_kind(have)) return 0;
    switch (kind) {
    case WASM_EXTERN_FUNC:
        return wasm_types_same_func(wt.wasm_externtype_as_functype_const(want),
                                    wt.wasm_externtype_as_functype_const(have));
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

ptrdiff_t wasm_types_export_index(const wasmtime_module_t *module, const char *name, wasm_externtype_t **type) {
    wasm_exporttype_vec_t exports;
    wt.wasmtime_module_exports(module, &exports);
    ptrdiff_t found = -1;
    for (size_t i = 0; found < 0 && i < exports.size; i++) {
        if (!wasm_types_name_equals(wt.wasm_exporttype_name(exports.data[i]), name)) continue;
        found = (ptrdiff_t)i;
        if (type != NULL) *type = wt.wasm_externtype_copy(wt.wasm_exporttype_type(exports.data[i]));
    }
    wt.wasm_exporttype_vec_delete(&exports);
    return found;
}

/* A vector of new value types of these kinds (empty for none); 0 when out of memory. */
static int valtypes(const uint8_t *kinds, size_t count, wasm_valtype_vec_t *out) {
    wasm_valtype_t *types[64];
    if (count == 0 || count > 64) {
        wt.wasm_valtype_vec_new_empty(out);
        return count == 0;
    }
    for (size_t i = 0; i < count; i++) types[i] = wt.wasm_valtype_new(kinds[i]);
    wt.wasm_valtype_vec_new(out, count, types);
    return 1;
}

wasm_functype_t *wasm_types_functype(const uint8_t *params, size_t param_count, const uint8_t *results,
                                     size_t result_count) {
    wasm_valtype_vec_t p, r;
    if (!valtypes(params, param_count, &p)) return NULL;
    if (!valtypes(results, result_count, &r)) {
        wt.wasm_valtype_vec_delete(&p);
        return NULL;
    }
    return wt.wasm_functype_new(&p, &r); /* takes both vectors */
}

/* ---- text ---- */

/* Appends to a fixed buffer, truncating. */
typedef struct text {
    char *out;
    size_t size, used;
} text;

static void add(text *t, const char *format, ...) {
    if (t->used + 1 >= t->size) return;
    va_list args;
    va_start(args, format);
    int n = vsnprintf(t->out + t->used, t->size - t->used, format, args);
    va_end(args);
    if (n > 0) t->used = t->used + (size_t)n < t->size ? t->used + (size_t)n : t->size - 1;
}

static const char *kind_name(wasm_valkind_t kind) {
    switch (kind) {
    case WASM_I32: return "i32";
    case WASM_I64: return "i64";
    case WASM_F32: return "f32";
    case WASM_F64: return "f64";
    case WASM_V128: return "v128";
    case WASM_FUNCREF: return "funcref";
    case WASM_EXTERNREF: return "externref";
    default: return "?";
    }
}

static void add_kinds(text *t, const wasm_valtype_vec_t *vec) {
    for (size_t i = 0; i < vec->size; i++) add(t, "%s%s", i ? ", " : "", kind_name(wt.wasm_valtype_kind(vec->data[i])));
}

static void add_signature(text *t, const wasm_functype_t *f) {
    add(t, "(");
    add_kinds(t, wt.wasm_functype_params(f));
    add(t, ") -> (");
    add_kinds(t, wt.wasm_functype_results(f));
    add(t, ")");
}

static void add_limits(text *t, uint64_t minimum, int bounded, uint64_t maximum, const char *unit) {
    add(t, "min %llu%s, ", (unsigned long long)minimum, unit);
    if (bounded) add(t, "max %llu", (unsigned long long)maximum);
    else add(t, "no max");
}

void wasm_types_describe(const wasm_externtype_t *type, int signature_only, char *out, size_t out_len) {
    text t = {out, out_len, 0};
    if (out_len == 0) return;
    out[0] = '\0';
    switch (wt.wasm_externtype_kind(type)) {
    case WASM_EXTERN_FUNC:
        if (!signature_only) add(&t, "func ");
        add_signature(&t, wt.wasm_externtype_as_functype_const(type));
        return;
    case WASM_EXTERN_GLOBAL: {
        const wasm_globaltype_t *g = wt.wasm_externtype_as_globaltype_const(type);
        add(&t, "global %s (%s)", kind_name(wt.wasm_valtype_kind(wt.wasm_globaltype_content(g))),
            wt.wasm_globaltype_mutability(g) == WASM_VAR ? "mutable" : "immutable");
        return;
    }
    case WASM_EXTERN_TABLE: {
        const wasm_tabletype_t *table = wt.wasm_externtype_as_tabletype_const(type);
        const wasm_limits_t *limits = wt.wasm_tabletype_limits(table);
        add(&t, "table %s (", kind_name(wt.wasm_valtype_kind(wt.wasm_tabletype_element(table))));
        add_limits(&t, limits->min, limits->max != UINT32_MAX, limits->max, "");
        add(&t, ")");
        return;
    }
    case WASM_EXTERN_MEMORY: {
        const wasm_memorytype_t *memory = wt.wasm_externtype_as_memorytype_const(type);
        uint64_t maximum = 0;
        int bounded = wt.wasmtime_memorytype_maximum(memory, &maximum);
        add(&t, "memory (");
        add_limits(&t, wt.wasmtime_memorytype_minimum(memory), bounded, maximum, " pages");
        add(&t, "%s%s)", wt.wasmtime_memorytype_is64(memory) ? ", 64-bit" : "",
            wt.wasmtime_memorytype_isshared(memory) ? ", shared" : "");
        return;
    }
    default:
        add(&t, "extern");
    }
}
