/*
 * env_imports.h - the `extism:host/env` imports of docs/ABI.md (env_imports.c).
 *
 * Owns: the kernel callbacks defined on every plugin's linker and the table of their signatures,
 * and failing the running call from an import callback with a trap (env_imports_fail: the ABI's
 * callbacks here, the runtime's host-function trampoline and http_request hook).
 */
#ifndef EXTISM_FAST_ENV_IMPORTS_H
#define EXTISM_FAST_ENV_IMPORTS_H

#include <stddef.h>

#include "running.h"
#include "wasmtime_api.h"

/* env_imports_define: define every `extism:host/env` import of docs/ABI.md on the linker. */
int env_imports_define(wasmtime_linker_t *linker, char **error);

/* env_imports_fail: record `message` and its kind as the reason of the running call's failure
 * (running_record_failure: the first one wins) and return a trap carrying it, for the import
 * callback to return. */
wasm_trap_t *env_imports_fail(struct plugin_instance *p, failure_kind kind, const char *message);

/* env_import_type: for an `extism:host/env` name, its type in *type (owned by the caller; NULL
 * when out of memory). Returns 0 when the name is not an ABI function (*type untouched). */
int env_import_type(const char *name, size_t name_len, wasm_functype_t **type);

#endif
