/*
 * link_problem.h - what is wrong with an import, as a structure (the Python layer words it).
 *
 * Owns: link_problem (its kinds, names, types and positions) and the helpers that fill it. The
 * first problem found while linking a plugin (link.h) is reported with one of these.
 */
#ifndef EXTISM_FAST_LINK_PROBLEM_H
#define EXTISM_FAST_LINK_PROBLEM_H

#include <stddef.h>
#include <stdint.h>

#include "wasmtime_api.h"

/* link_problem.provider when no module of the plugin has the import's module name. */
#define LINK_NO_PROVIDER SIZE_MAX

/* Each kind says which link_problem fields it sets; module, name, import_kind and importer are
 * always set (except for LINK_PROBLEM_MEMORY, which sets nothing reliable). `expected` and
 * `found` are owned copies; function types are those of the wasm_functype_t as an externtype. */
typedef enum link_problem_kind {
    LINK_PROBLEM_NONE = 0,
    LINK_PROBLEM_TYPE = 1,         /* the module `provider` exports the field with another type:
                                    * expected = the import's type, found = the export's */
    LINK_PROBLEM_CYCLE = 2,        /* modules import non-functions from each other in a cycle:
                                    * provider, cycle, cycle_length */
    LINK_PROBLEM_MEMORY = 3,       /* out of host memory */
    LINK_PROBLEM_NOT_FUNCTION = 4, /* a global, table or memory no module provides (the host only
                                    * defines functions): provider = the module of that name, which
                                    * lacks the field, or LINK_NO_PROVIDER */
    LINK_PROBLEM_ABI_UNKNOWN = 5,  /* an `extism:host/env` function the ABI does not have */
    LINK_PROBLEM_ABI_TYPE = 6,     /* an ABI function imported with another type: expected = the
                                    * ABI's type, found = the import's */
    LINK_PROBLEM_WASI_DISABLED = 7, /* a WASI import while WASI is not enabled */
    LINK_PROBLEM_HOST_TYPE = 8,    /* a user host function imported with another type: expected =
                                    * the host function's type, found = the import's */
    LINK_PROBLEM_HOST_MISSING = 9, /* a function nothing defines: found = the import's type;
                                    * provider as for LINK_PROBLEM_NOT_FUNCTION */
    LINK_PROBLEM_NUL_NAME = 10,    /* the import's module or field name holds a NUL byte, which
                                    * no definition can have: module and name show it as "\0" */
} link_problem_kind;

/* What is wrong with an import. Positions are the plugin's modules: deps in manifest order, then
 * main (link.h). */
typedef struct link_problem {
    link_problem_kind kind;
    size_t importer;             /* the importing module */
    size_t provider;             /* the module it imports from (see each kind) */
    char *module;                /* owned: the import's module and field names */
    char *name;
    wasm_externkind_t import_kind;
    wasm_externtype_t *expected; /* owned (see each kind) */
    wasm_externtype_t *found;    /* owned (see each kind) */
    size_t *cycle;               /* owned, LINK_PROBLEM_CYCLE: importer, provider, ... each imports */
    size_t cycle_length;         /* from the next, the last from the first */
} link_problem;

/* link_problem_free: free what the problem owns and empty it. */
void link_problem_free(link_problem *problem);

/* link_problem_out_of_memory: the problem becomes LINK_PROBLEM_MEMORY. Returns -1. */
int link_problem_out_of_memory(link_problem *problem);

/* The import a problem is about: module::name (NUL-terminated) of that kind, imported by module
 * `importer` from `provider`. */
typedef struct link_import {
    size_t importer;
    size_t provider;
    const char *module;
    const char *name;
    wasm_externkind_t kind;
} link_import;

/* link_problem_set: the problem becomes `kind` for `import` (its names copied). Returns -1
 * (LINK_PROBLEM_MEMORY when the names cannot be copied). */
int link_problem_set(link_problem *problem, link_problem_kind kind, link_import import);

/* link_problem_nul_name: the problem becomes LINK_PROBLEM_NUL_NAME for an import whose module or
 * field name holds a NUL byte (wasm allows it; no definition has it): the names are copied with
 * each NUL written "\0". Returns -1. */
int link_problem_nul_name(link_problem *problem, size_t importer, const wasm_name_t *module,
                          const wasm_name_t *name, wasm_externkind_t import_kind);

#endif
