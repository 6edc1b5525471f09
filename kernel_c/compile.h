/*
 * compile.h - making a compiled plugin (compiled.h): the one entry that creates its wasmtime objects.
 *
 * Owns: compile_plugin (each module compiled from its bytes, loaded from a compile cache entry or
 * moved over from the same plugin on another engine, and serialized for the cache; the linker with
 * the ABI, WASI and the user's host functions, their function types made here; the link
 * (link.h); main's export table, the startup functions, the memories the budget tracks) and WAT
 * conversion. The Python layer keeps the cache's files and policy, and words the failures.
 */
#ifndef EXTISM_FAST_COMPILE_H
#define EXTISM_FAST_COMPILE_H

#include <stddef.h>
#include <stdint.h>

#include "compiled.h"
#include "engine.h"
#include "link_problem.h"
#include "wasmtime_api.h"

/* What a module's bytes are. */
typedef enum module_format { MODULE_BINARY = 0, MODULE_TEXT = 1, MODULE_UNKNOWN = 2 } module_format;

/* One module of the plugin: what the caller gives, and what compile_plugin tells back. */
typedef struct module_source {
    const char *name;              /* its link name ("main" for main); NUL-terminated, copied */
    const uint8_t *bytes;          /* the module as given (a wasm binary or WAT text) */
    size_t length;
    int format;                    /* module_format; MODULE_UNKNOWN fails the compile when it is needed */
    const uint8_t *cached;         /* its compile cache entry for this engine, or NULL */
    size_t cached_length;
    const char *cached_path;       /* or that entry as a file of exactly wasmtime's serialization
                                    * (cached_length bytes), which wasmtime maps: no read, no copy, and
                                    * wasmtime keeps a descriptor of it while the module lives; the file
                                    * must not change meanwhile (wasmtime's rule). NUL-terminated, or NULL */
    int cached_fd;                 /* with cached_path: the same file, open; read whole and loaded from
                                    * memory when the path does not open (no descriptor left) */
    /* Filled by compile_plugin (each malloc'ed or NULL; the caller frees them with free()): */
    char *cache_refusal;           /* wasmtime refused `cached` or `cached_path` (then it was compiled): why */
    uint8_t *serialized;           /* compiled afresh and compile_request.serialize: the cache entry */
    size_t serialized_length;
    char *serialize_failure;       /* compiled afresh, but could not be serialized: why */
    char *transfer_failure;        /* could not be moved over from compile_request.source: why */
} module_source;

/* A host function to define on the linker (names are not NUL-terminated; all borrowed). */
typedef struct host_function_source {
    const char *module;
    size_t module_length;
    const char *name;
    size_t name_length;
    const uint8_t *params;         /* wasm_valkind_t each; at most 64 */
    size_t param_count;
    const uint8_t *results;        /* at most 64 */
    size_t result_count;
    void *env;                     /* handed to compile_request.callback; outlives the compiled plugin */
} host_function_source;

typedef struct compile_request {
    const engine_bundle *bundle;       /* the engine to compile for (borrowed, process-wide) */
    module_source *modules;            /* the dependencies in manifest order, then main */
    size_t module_count;               /* at least 1 */
    const compiled_plugin *source;     /* or NULL: the same plugin compiled for an engine with the
                                        * same code settings, whose modules are moved over first */
    int serialize;                     /* serialize the modules compiled afresh (for the cache) */
    int wasi;                          /* define WASI on the linker */
    const host_function_source *functions;
    size_t function_count;
    wasmtime_func_unchecked_callback_t callback; /* every host function's (with its env) */
    const uint64_t *defined_memories;  /* minimum size in bytes of each memory a module defines (read
                                        * from the binaries: the C API does not show unexported ones) */
    const uint8_t *defined_by_main;    /* per defined memory: main defines it */
    size_t defined_memory_count;
} compile_request;

typedef enum compile_failure_kind {
    COMPILE_OK = 0,
    COMPILE_NOT_WASM,       /* module `module` is neither a wasm binary nor WAT */
    COMPILE_INVALID_TEXT,   /* module `module`'s WAT did not convert: message */
    COMPILE_INVALID_MODULE, /* wasmtime refused module `module`: message */
    COMPILE_CACHE_TOO_BIG,  /* on a pooled engine, module `module`'s cache entry did not load (a
                             * module too big for the pool: compile for the on-demand engine) */
    COMPILE_ABI,            /* the ABI functions could not be defined: message */
    COMPILE_WASI,           /* WASI could not be defined: message */
    COMPILE_HOST_RESERVED,  /* host function `function` is in the ABI's namespace extism:host/env */
    COMPILE_HOST_ARITY,     /* host function `function` has over 64 parameters or results */
    COMPILE_HOST_DEFINE,    /* host function `function` could not be defined: message */
    COMPILE_LINK,           /* an import does not link: problem (LINK_PROBLEM_MEMORY: out of host memory) */
    COMPILE_FAILED,         /* message: out of host memory, a startup export of an unusable type */
} compile_failure_kind;

typedef struct compile_failure {
    compile_failure_kind kind;
    size_t module;          /* position in compile_request.modules */
    size_t function;        /* position in compile_request.functions */
    char *message;          /* malloc'ed or NULL */
    link_problem problem;   /* COMPILE_LINK (free with link_problem_free) */
} compile_failure;

/* compile_plugin: the plugin of `request` compiled and linked, ready for instances; or NULL and
 * *failure says why (the caller frees failure->message and failure->problem). Modules are done
 * in order, each: moved over from request->source when given, else loaded from its cache entry
 * (`cached_path` when given, else `cached`; on refusal compiled instead, except on a pooled engine: COMPILE_CACHE_TOO_BIG), else compiled
 * (WAT converted first) and, when asked, serialized. Then the linker is made (the ABI, WASI,
 * host functions, in that order) and the plugin linked (compiled.h, link.h): main's function
 * exports listed, the startup functions picked (each linked module's `_initialize` in
 * instantiation order, a linked module's `_start` never; then main's, as the official runtime
 * picks them: for a Haskell plugin `_initialize` then `hs_init`, else `__wasm_call_ctors`, else
 * `_initialize`; any of another type than () -> () (hs_init: at most two parameters) is refused).
 * The module outputs (module_source) are filled whether it succeeds or not. No Python runs:
 * callable without the GIL. */
compiled_plugin *compile_plugin(compile_request *request, compile_failure *failure);

/* compile_wat2wasm: WAT text to a wasm binary in *out (malloc'ed, *out_length bytes). Returns 0,
 * or -1 and sets *error (malloc'ed). */
int compile_wat2wasm(const uint8_t *text, size_t length, uint8_t **out, size_t *out_length, char **error);

#endif
