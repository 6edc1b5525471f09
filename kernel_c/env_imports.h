/*
 * env_imports.h - the `extism:host/env` imports of docs/ABI.md (env_imports.c).
 *
 * Owns: the kernel callbacks defined on every plugin's linker and the table of their signatures.
 */
#ifndef EXTISM_FAST_ENV_IMPORTS_H
#define EXTISM_FAST_ENV_IMPORTS_H

#include <stddef.h>

#include "wasmtime_api.h"

/* env_imports_define: define every `extism:host/env` import of docs/ABI.md on the linker. */
int env_imports_define(wasmtime_linker_t *linker, char **error);

/* env_import_type: for an `extism:host/env` name, its type in *type (owned by the caller; NULL
 * when out of memory). Returns 0 when the name is not an ABI function (*type untouched). */
int env_import_type(const char *name, size_t name_len, wasm_functype_t **type);

#endif
