/*
 * memory_budget.h - manifest.memory.max_pages as the official runtime keeps it: one budget of bytes
 * for the growth of all the memories of an instance (docs/ABI.md, "The manifest").
 *
 * The official runtime's limiter (MemoryLimiter, current_plugin.rs) is reset after instantiation;
 * from then on every growth of any memory of the instance (the plugin's, a linked module's, the
 * kernel's) takes from max_pages, for the life of the store, and a growth past what is left fails.
 * The initial sizes are checked apart, before instantiation (store.c: main's memories together).
 *
 * wasmtime's C API has no limiter callback, only a per-memory cap (wasmtime_store_limiter), so:
 * - the kernel memory grows through our C (store.c, store_grow_kernel_memory), which asks the budget
 *   first (memory_budget_allow) and is charged at once (memory_budget_settle);
 * - the wasm memories are capped at (the largest of them + what is left) during a call, which is
 *   exact for the memory that grows when it is the largest one (main's, mostly); their growth is
 *   measured after each call (and before each kernel growth) and charged; a call whose memories
 *   grew past the budget together fails afterwards (memory_budget_end_call).
 * Tracked: the kernel memory and every distinct memory a module exports. A memory that no module
 * exports is only capped, not charged (its size cannot be read through the C API).
 *
 * Host memory the plugin makes the process hold besides (the kernel's block table past its
 * allowance, kernel.h) is charged too (memory_budget_charge_host), while it is held: it is given
 * back when the table shrinks. Thread-safety: that of its instance (one thread at a time).
 *
 * Owns: memory_budget (the limit, the charges, the tracked memories, the cap given to the store's
 * limiter, which also carries the table limit). It knows the store it is attached to, not the
 * instance: store.c and call.c drive it.
 */
#ifndef EXTISM_FAST_MEMORY_BUDGET_H
#define EXTISM_FAST_MEMORY_BUDGET_H

#include <stddef.h>
#include <stdint.h>

#include "wasmtime_api.h"

typedef struct memory_budget {
    int64_t limit;               /* bytes all memories may grow by after instantiation; -1 = no budget */
    int64_t table_limit;         /* elements per wasm table (max_table_elements); -1 = unlimited */
    wasmtime_store_t *store;     /* borrowed: the store attached (memory_budget_attach), or NULL */
    wasmtime_context_t *ctx;
    uint64_t memory_minimum;     /* no wasm memory is capped below it (compiled_plugin.memory_minimum) */
    uint64_t spent;              /* bytes grown since memory_budget_start (may pass limit: see above) */
    uint64_t host_charged;       /* host bytes held for the plugin besides (the kernel's block table) */
    int started;                 /* the store's memories are tracked (after instantiation) */
    int refused;                 /* the last kernel growth asked for was refused */
    uint64_t spent_before_call;  /* spent at memory_budget_begin_call */
    size_t count;                /* tracked memories: [0] the kernel's, then the exported ones */
    size_t capacity;
    wasmtime_memory_t *memories; /* owned */
    uint64_t *sizes;             /* owned: each one's size at the last charge */
    int64_t cap;                 /* the per-memory cap last given to wasmtime_store_limiter; -2 = none yet */
} memory_budget;

/* memory_budget_init: a budget of limit bytes (-1: none) for stores whose tables hold at most
 * table_limit elements each (-1: unlimited); nothing attached or tracked yet. */
void memory_budget_init(memory_budget *b, int64_t limit, int64_t table_limit);

/* memory_budget_free: detach the store, forget the tracked memories and free their arrays (the
 * limits stay). */
void memory_budget_free(memory_budget *b);

/* memory_budget_attach: a new store, before instantiation: no cap on its wasm memories (the
 * official limiter does not count linked modules and the kernel, and main's memories were checked
 * before), its table limit set; memory_minimum as compiled_plugin.memory_minimum. */
void memory_budget_attach(memory_budget *b, wasmtime_store_t *store, uint64_t memory_minimum);

/* memory_budget_start: after instantiation, track the kernel memory and the distinct memories the
 * instances export (`instances` by module position; export i of module positions[i] is named
 * names[i], as compiled_plugin.memory_export_* list them), take their sizes as the start, spend
 * nothing yet, and cap the wasm memories. Returns 0, or -1 when out of host memory (then nothing
 * is charged, and the cap stays). */
int memory_budget_start(memory_budget *b, const wasmtime_memory_t *kernel_memory, const wasmtime_instance_t *instances,
                        const size_t *positions, char *const *names, size_t count);

/* memory_budget_left: the bytes the memories may still grow by (INT64_MAX without a budget). */
int64_t memory_budget_left(const memory_budget *b);

/* memory_budget_begin_call: a call begins (nothing grew since the last one ended: its charges and
 * cap hold). */
void memory_budget_begin_call(memory_budget *b);

/* memory_budget_end_call: charge what the call grew (a size read per tracked wasm memory) and,
 * when it grew, cap the wasm memories again for what is left. Returns 1 when the call grew the
 * memories and they are now past the budget (the call fails: several memories grew, or a smaller
 * one grew past what was left), else 0. */
int memory_budget_end_call(memory_budget *b);

/* memory_budget_allow: may the kernel memory (current_bytes now) grow by `bytes`? Charges what the
 * wasm memories grew so far, then answers 0 and lifts the cap to let the kernel memory grow, or
 * -1 (and marks the budget refused). Always 0 before memory_budget_start or without a budget. */
int memory_budget_allow(memory_budget *b, uint64_t current_bytes, uint64_t bytes);

/* memory_budget_charge_host: the host bytes charged besides the memories become `bytes`. Returns
 * 0 (fewer bytes are always allowed; always 0 before memory_budget_start or without a budget), or
 * -1 when more than is left was asked for (then nothing changes and the budget is marked refused).
 * Re-caps the wasm memories for what is left. */
int memory_budget_charge_host(memory_budget *b, uint64_t bytes);

/* memory_budget_settle: after a kernel growth asked for with memory_budget_allow (done or not),
 * charge it and cap the wasm memories again for what is left. */
void memory_budget_settle(memory_budget *b);

/* memory_budget_describe: "memory.max_pages = N pages of growth for all the plugin's memories, M
 * left" into out (pages rounded down). Without a budget, an empty string. */
void memory_budget_describe(const memory_budget *b, char *out, size_t out_len);

#endif
