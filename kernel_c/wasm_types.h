/*
 * wasm_types.h - wasm import and export types: matching, lookup, making and describing them.
 *
 * Owns: the rules an export must meet to satisfy an import, checked on declared types (link time,
 * import_plan.c and link.c), the lookup of a module's export by name, function types made from
 * value kinds (host functions), and their text for messages (the Python layer words link problems
 * with it). Pure functions of their arguments: no state.
 */
#ifndef EXTISM_FAST_WASM_TYPES_H
#define EXTISM_FAST_WASM_TYPES_H

#include <stddef.h>
#include <stdint.h>

#include "wasmtime_api.h"

/* wasm_types_name_equals: whether the wasm name holds exactly the NUL-terminated `text`. */
int wasm_types_name_equals(const wasm_name_t *name, const char *text);

/* wasm_types_same_func: the same parameter and result kinds, in order. */
int wasm_types_same_func(const wasm_functype_t *a, const wasm_functype_t *b);

/* wasm_types_fit: can an export of type `have` satisfy an import of type `want`? The rules wasmtime
 * applies at instantiation, on the declared types (a memory is instantiated at its minimum). */
int wasm_types_fit(const wasm_externtype_t *want, const wasm_externtype_t *have);

/* wasm_types_export_index: the index of the export `name` of `module`, or -1; when found and `type`
 * is not NULL, *type gets a copy of its type (the caller deletes it with wasm_externtype_delete). */
ptrdiff_t wasm_types_export_index(const wasmtime_module_t *module, const char *name, wasm_externtype_t **type);

/* wasm_types_functype: a new function type of these value kinds (wasm_valkind_t), owned by the
 * caller (wasm_functype_delete); NULL when out of memory. */
wasm_functype_t *wasm_types_functype(const uint8_t *params, size_t param_count, const uint8_t *results,
                                     size_t result_count);

/* wasm_types_describe: `type` as text into out (truncated to out_len, NUL-terminated): a function's
 * "func (i32, i64) -> (i32)" ("(i32, i64) -> (i32)" when signature_only), a global's "global i32
 * (mutable)", a table's "table funcref (min 1, max 2)", a memory's "memory (min 1 pages, no max,
 * 64-bit, shared)". */
void wasm_types_describe(const wasm_externtype_t *type, int signature_only, char *out, size_t out_len);

#endif
