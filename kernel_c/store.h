/*
 * store.h - an instance's wasmtime store and what lives in it.
 *
 * Owns: making a store (store_new: main's memories checked against max_pages, the table limit,
 * the epoch callback, fuel, WASI config with its stdio capture, instantiation of the accessor and
 * the modules in dependency order, the export lookup, the memory budget started: memory_budget.h),
 * dropping it (store_drop: the only way a store is freed or replaced), growing the kernel memory,
 * and views of its memories.
 */
#ifndef EXTISM_FAST_STORE_H
#define EXTISM_FAST_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "instance_state.h"
#include "wasmtime_api.h"

/* store_delete_detached: delete a store the keep_store hook took (store_drop), once no Python
 * view points into its memories any more. NULL is ignored. */
void store_delete_detached(wasmtime_store_t *store);

/* store_reset_kernel: forget every block of the kernel memory (the official Plugin::reset):
 * the last call's output, error and allocations. Vars stay. Only between calls. */
void store_reset_kernel(plugin_instance *p);

/* store_kernel_memory: the kernel memory's bytes (the official runtime's "Extism linear memory",
 * what EXTISM_MEMDUMP writes); NULL when the instance has no store. */
const uint8_t *store_kernel_memory(plugin_instance *p, size_t *length);

/* store_main_memory: the bytes of main's exported "memory" (EXTISM_COREDUMP); NULL when there
 * is none or no store. */
const uint8_t *store_main_memory(plugin_instance *p, size_t *length);

/* WASI output kept per stream (WASI_STDIO_LOG) is capped at this many bytes per call. */
#define INSTANCE_WASI_OUTPUT_MAX (UINT64_C(1) << 20)

/* store_take_wasi_output: the bytes written to stream (0 stdout, 1 stderr) since the last take;
 * *length gets their count. Valid until the next call; the stream is emptied. */
const uint8_t *store_take_wasi_output(plugin_instance *p, int stream, size_t *length);

/* How store_new failed (it sets the message in every case). */
typedef enum store_failure {
    STORE_FAILED = -1,         /* any other reason */
    STORE_MEMORY_LIMIT = -2,   /* main's memories start over the max_pages budget */
    STORE_POOL_EXHAUSTED = -3, /* the pooled engine refused (no free slot, or a module's memory or
                                * table larger than a slot): try the on-demand engine */
} store_failure;

/* Internal (call.c): a fresh store with the modules instantiated and the exports looked up
 * (drops the old store first). Also puts wasmtime's trap handlers back if other code replaced them
 * (signals_restore: a store is where traps can start; not per call). Returns 0, or a store_failure
 * and sets *error (malloc'ed). */
int store_new(plugin_instance *p, char **error);

/* Internal (store.c, call.c, instance.c): the one way a store leaves its instance (replaced after
 * `_start` or a refusal, failed instantiation, instance_delete). If p->views_exposed, the store
 * goes to running_hooks.keep_store first, which may take it (Python views still point into its
 * memories: it deletes the store with store_delete_detached after the last of them); otherwise it
 * is deleted now. Then the instance has no store and views_exposed is 0; the next call's startup
 * runs again. May take the GIL (through the hook): callers must not hold a lock the GIL holder
 * could wait for. */
void store_drop(plugin_instance *p);

/* Internal (instance.c, the kernel's kernel_grow_fn): grow the kernel memory, the accessor
 * instance's wasm memory. Its growth takes from the max_pages budget (memory_budget.h). */
int store_grow_kernel_memory(void *data, uint64_t new_size, uint8_t **base, uint64_t *size);

/* Internal (instance.c, the kernel's kernel_charge_fn under max_pages): the kernel's block table
 * past its allowance is host memory charged to the max_pages budget (memory_budget_charge_host). */
int store_charge_kernel_table(void *data, uint64_t charged);

#endif
