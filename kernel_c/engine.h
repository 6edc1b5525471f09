/*
 * engine.h - the process-wide wasmtime engines (docs/ABI.md, "A call").
 *
 * Owns: engine_bundle (an engine and the kernel accessor module compiled for it), the engine
 * configuration (epoch interruption, fuel, debug info, profiler, memories that never move) and the
 * pooling allocator's configuration and address-space probe. Engines live as long as the process.
 */
#ifndef EXTISM_FAST_ENGINE_H
#define EXTISM_FAST_ENGINE_H

#include <stdint.h>

#include "wasmtime_api.h"

/* What an engine does besides running wasm (engine_new). */
typedef enum engine_flags {
    ENGINE_EPOCH = 1, /* epoch interruption: timeouts, cancel, and the GIL released after a tick */
    ENGINE_FUEL = 2,  /* fuel metering (instruction budgets) */
    ENGINE_DEBUG = 4, /* DWARF debug info for native debuggers (EXTISM_DEBUG) */
    /* Bits 3-4: the wasmtime profiler (wasmtime_profiling_strategy_t, EXTISM_PROFILE). */
    ENGINE_PROFILER_SHIFT = 3,
    ENGINE_PROFILER_MASK = 3 << 3,
} engine_flags;

/* The number of distinct engine_flags values (engine tables are indexed by them). */
#define ENGINE_FLAG_VALUES 32

/* An engine and the kernel accessor module compiled for it (modules belong to one engine). */
typedef struct engine_bundle {
    wasm_engine_t *engine;
    wasmtime_module_t *access_module;
    int flags;                 /* engine_flags */
    uint32_t pool_instances;   /* plugin instances the pooling allocator holds; 0 = on-demand */
} engine_bundle;

/* The kernel accessor module's compile cache entry, into and out of engine_new (the Python layer
 * keeps the cache's files, as for plugins' modules: compile.h). */
typedef struct engine_access_cache {
    const uint8_t *cached;     /* its entry for this engine's settings, or NULL */
    size_t cached_length;
    int serialize;             /* when compiled (no entry, or one wasmtime refused): serialize it */
    uint8_t *serialized;       /* set by engine_new then: malloc'ed (the caller frees it), or NULL */
    size_t serialized_length;
} engine_access_cache;

/* engine_new: a process engine with memories that never move (host pointers into the
 * kernel memory stay valid while it grows) and the `flags` (engine_flags): epoch interruption
 * costs every loop of a plugin a check, fuel metering more, so only plugins that need them use
 * engines that have them. pool_instances > 0: the pooling allocator, with room for that many
 * plugin instances (accessor + main + a few dependencies each), after checking that its address
 * space can be reserved (else -1: the caller uses an on-demand engine). Also makes the kernel
 * accessor module: from access->cached when given and wasmtime takes it (a warm process start
 * compiles nothing: Cranelift's start costs milliseconds), else compiled (`access` may be NULL).
 * The process's first engine also records wasmtime's trap handlers (signals.h). Returns 0, or -1
 * and sets *error (malloc'ed). */
int engine_new(int flags, uint32_t pool_instances, engine_access_cache *access, engine_bundle *out, char **error);

#endif
