/* engine.c - process engines, the pooling allocator and its address-space probe; contracts in engine.h. */
#include "engine.h"

#include <string.h>
#include <sys/mman.h>

#include "kernel_access.h"
#include "signals.h"

/* The virtual memory every engine reserves per linear memory. Set explicitly (they are wasmtime's
 * 64-bit defaults) so that pooled and on-demand engines agree: a module serialized on one then
 * loads on the other (see CompiledPlugin's on-demand fallback). */
#define MEMORY_RESERVATION (UINT64_C(4) << 30)
#define MEMORY_GUARD (UINT64_C(32) << 20)
#define POOL_TABLE_ELEMENTS 1048576
#define POOL_INSTANCE_SIZE (UINT64_C(1) << 20)

/* Slots per plugin instance: the accessor and main, and room for dependencies on average. */
static uint32_t pool_memories(uint32_t n) { return 2 * n + n / 4; }
static uint32_t pool_instances(uint32_t n) { return 2 * n + n / 2; }
static uint32_t pool_tables(uint32_t n) { return n + n / 4; }

/* Can the pool's address space be reserved? wasmtime aborts the process when engine creation
 * fails, so try the same reservation first (PROT_NONE: no memory is committed). */
static int pool_fits(uint32_t n) {
    uint64_t bytes = (uint64_t)pool_memories(n) * (MEMORY_RESERVATION + 2 * MEMORY_GUARD) +
                     (uint64_t)pool_tables(n) * POOL_TABLE_ELEMENTS * 8 +
                     (uint64_t)pool_instances(n) * POOL_INSTANCE_SIZE;
    if (bytes > SIZE_MAX / 2) return 0;
    void *probe = mmap(NULL, (size_t)bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (probe == MAP_FAILED) return 0;
    munmap(probe, (size_t)bytes);
    return 1;
}

static void configure_pool(wasm_config_t *config, uint32_t n) {
    wasmtime_pooling_allocation_config_t *pool = wt.wasmtime_pooling_allocation_config_new();
    wt.wasmtime_pooling_allocation_config_total_memories_set(pool, pool_memories(n));
    wt.wasmtime_pooling_allocation_config_total_core_instances_set(pool, pool_instances(n));
    wt.wasmtime_pooling_allocation_config_total_tables_set(pool, pool_tables(n));
    /* Stacks are for async calls, which are not used; a pool of them costs ~2 ms to create. */
    wt.wasmtime_pooling_allocation_config_total_stacks_set(pool, 0);
    wt.wasmtime_pooling_allocation_config_max_memory_size_set(pool, (size_t)MEMORY_RESERVATION);
    wt.wasmtime_pooling_allocation_config_table_elements_set(pool, POOL_TABLE_ELEMENTS);
    wt.wasmtime_pooling_allocation_config_max_core_instance_size_set(pool, (size_t)POOL_INSTANCE_SIZE);
    /* A freed slot's first page is zeroed in place; the rest is given back with madvise, in
     * batches (one lock round per batch). Keeping more resident makes reuse no faster than this
     * but keeps every page it zeroes: 128 KiB cost 170 MiB after closing 900 instances. */
    wt.wasmtime_pooling_allocation_config_linear_memory_keep_resident_set(pool, 4096);
    wt.wasmtime_pooling_allocation_config_decommit_batch_size_set(pool, 32);
    wt.wasmtime_pooling_allocation_strategy_set(config, pool); /* copies it */
    wt.wasmtime_pooling_allocation_config_delete(pool);
}

/* The kernel accessor module for `out`'s engine: loaded from access->cached when wasmtime takes
 * it, else compiled (and serialized into access->serialized when access->serialize). */
static wasmtime_error_t *access_module(engine_bundle *out, engine_access_cache *access) {
    if (access != NULL && access->cached != NULL) {
        wasmtime_error_t *refused =
            wt.wasmtime_module_deserialize(out->engine, access->cached, access->cached_length, &out->access_module);
        if (refused == NULL) return NULL;
        wt.wasmtime_error_delete(refused); /* compiled instead, and the entry replaced */
    }
    size_t wat_length;
    const char *wat = kernel_access_wat(&wat_length);
    wasm_byte_vec_t wasm;
    wasmtime_error_t *e = wt.wasmtime_wat2wasm(wat, wat_length, &wasm);
    if (e == NULL) {
        e = wt.wasmtime_module_new(out->engine, wasm.data, wasm.size, &out->access_module);
        wt.wasm_byte_vec_delete(&wasm);
    }
    if (e == NULL && access != NULL && access->serialize) {
        wasm_byte_vec_t serialized;
        wasmtime_error_t *not_serialized = wt.wasmtime_module_serialize(out->access_module, &serialized);
        if (not_serialized == NULL) access->serialized = wt_take_bytes(&serialized, &access->serialized_length);
        else wt.wasmtime_error_delete(not_serialized); /* not cacheable: still usable */
    }
    return e;
}

int engine_new(int flags, uint32_t pool_instances_wanted, engine_access_cache *access, engine_bundle *out,
               char **error) {
    memset(out, 0, sizeof *out);
    if (pool_instances_wanted > 0 && !pool_fits(pool_instances_wanted)) {
        *error = WT_TEXT("cannot reserve address space for the instance pool");
        return -1;
    }
    wasm_config_t *config = wt.wasm_config_new();
    if (config == NULL) {
        *error = WT_TEXT("cannot create a wasmtime configuration");
        return -1;
    }
    wt.wasmtime_config_epoch_interruption_set(config, (flags & ENGINE_EPOCH) != 0);
    wt.wasmtime_config_consume_fuel_set(config, (flags & ENGINE_FUEL) != 0);
    wt.wasmtime_config_memory_may_move_set(config, false);
    wt.wasmtime_config_memory_reservation_set(config, MEMORY_RESERVATION);
    wt.wasmtime_config_memory_guard_size_set(config, MEMORY_GUARD);
    if (flags & ENGINE_DEBUG) wt.wasmtime_config_debug_info_set(config, true);
    wasmtime_profiling_strategy_t profiler = (wasmtime_profiling_strategy_t)((flags & ENGINE_PROFILER_MASK) >> ENGINE_PROFILER_SHIFT);
    if (profiler != WASMTIME_PROFILING_STRATEGY_NONE) wt.wasmtime_config_profiler_set(config, profiler);
    if (pool_instances_wanted > 0) configure_pool(config, pool_instances_wanted);
    signals_engine_begin(); /* wasmtime installs its trap handlers with the first engine */
    out->engine = wt.wasm_engine_new_with_config(config); /* consumes config */
    signals_engine_end();
    if (out->engine == NULL) {
        *error = WT_TEXT("cannot create the wasmtime engine");
        return -1;
    }
    out->flags = flags;
    out->pool_instances = pool_instances_wanted;
    wasmtime_error_t *e = access_module(out, access);
    if (e != NULL) {
        *error = wt_take_error_message(e);
        wt.wasm_engine_delete(out->engine);
        out->engine = NULL;
        return -1;
    }
    return 0;
}
