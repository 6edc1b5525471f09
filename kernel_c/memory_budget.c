/* memory_budget.c - max_pages as one budget for the growth of an instance's memories; contracts in memory_budget.h. */
#include "memory_budget.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUDGET_PAGE UINT64_C(65536)

void memory_budget_init(memory_budget *b, int64_t limit, int64_t table_limit) {
    memset(b, 0, sizeof *b);
    b->limit = limit;
    b->table_limit = table_limit;
    b->cap = -2;
}

/* Forget the tracked memories and the charges; the limits and the store attached stay. */
static void forget(memory_budget *b) {
    memory_budget kept = *b;
    free(b->memories);
    free(b->sizes);
    memory_budget_init(b, kept.limit, kept.table_limit);
    b->store = kept.store;
    b->ctx = kept.ctx;
    b->memory_minimum = kept.memory_minimum;
}

void memory_budget_free(memory_budget *b) {
    forget(b);
    b->store = NULL;
    b->ctx = NULL;
}

int64_t memory_budget_left(const memory_budget *b) {
    if (b->limit < 0) return INT64_MAX;
    uint64_t used = b->spent + b->host_charged;
    return used >= (uint64_t)b->limit ? 0 : (int64_t)((uint64_t)b->limit - used);
}

/* Give wasmtime the per-memory cap (bytes; -1 none), when it changed. The store's table limit
 * is set in the same call, so it is passed again. */
static void set_cap(memory_budget *b, int64_t cap) {
    if (cap == b->cap) return;
    wt.wasmtime_store_limiter(b->store, cap, b->table_limit, -1, -1, -1);
    b->cap = cap;
}

void memory_budget_attach(memory_budget *b, wasmtime_store_t *store, uint64_t memory_minimum) {
    b->store = store;
    b->ctx = wt.wasmtime_store_context(store);
    b->memory_minimum = memory_minimum;
    set_cap(b, -1);
}

/* Charge the growth of the tracked memories from `first` on since the last charge (the kernel's,
 * [0], grows only through memory_budget_allow / memory_budget_settle, which charge it). */
static void charge_from(memory_budget *b, size_t first) {
    for (size_t i = first; i < b->count; i++) {
        uint64_t size = wt.wasmtime_memory_data_size(b->ctx, &b->memories[i]);
        if (size > b->sizes[i]) b->spent += size - b->sizes[i];
        b->sizes[i] = size;
    }
}

/* Cap the wasm memories (not the kernel's, [0]: it asks first) at the largest of them + what is
 * left: exact for the largest one. No memory is capped below the largest minimum of any memory,
 * so that one no module exports (its size unknown) can grow too. */
static void cap_wasm_memories(memory_budget *b) {
    uint64_t largest = b->memory_minimum;
    for (size_t i = 1; i < b->count; i++)
        if (b->sizes[i] > largest) largest = b->sizes[i];
    uint64_t left = (uint64_t)memory_budget_left(b);
    set_cap(b, largest > (uint64_t)INT64_MAX - left ? INT64_MAX : (int64_t)(largest + left));
}

/* Track `memory` unless it is already (a memory exported by one module and imported by another). */
static int track(memory_budget *b, const wasmtime_context_t *ctx, const wasmtime_memory_t *memory) {
    const uint8_t *data = wt.wasmtime_memory_data(ctx, memory);
    for (size_t i = 0; i < b->count; i++) {
        const wasmtime_memory_t *m = &b->memories[i];
        if ((m->inner.store_id == memory->inner.store_id && m->inner.private1 == memory->inner.private1 &&
             m->private2 == memory->private2) || wt.wasmtime_memory_data(ctx, m) == data)
            return 0;
    }
    if (b->count == b->capacity) {
        size_t capacity = b->capacity ? 2 * b->capacity : 4;
        wasmtime_memory_t *memories = realloc(b->memories, capacity * sizeof *memories);
        if (memories != NULL) b->memories = memories;
        uint64_t *sizes = realloc(b->sizes, capacity * sizeof *sizes);
        if (sizes != NULL) b->sizes = sizes;
        if (memories == NULL || sizes == NULL) return -1;
        b->capacity = capacity;
    }
    b->memories[b->count] = *memory;
    b->sizes[b->count] = wt.wasmtime_memory_data_size(ctx, memory);
    b->count++;
    return 0;
}

int memory_budget_start(memory_budget *b, const wasmtime_memory_t *kernel_memory, const wasmtime_instance_t *instances,
                        const size_t *positions, char *const *names, size_t count) {
    forget(b);
    if (b->limit < 0) return 0;
    b->cap = -1; /* as left by instantiation (memory_budget_attach) */
    int status = track(b, b->ctx, kernel_memory);
    for (size_t i = 0; status == 0 && i < count; i++) {
        wasmtime_extern_t item;
        if (wt.wasmtime_instance_export_get(b->ctx, &instances[positions[i]], names[i], strlen(names[i]), &item) &&
            item.kind == WASM_EXTERN_MEMORY) /* wasmtime numbers its extern kinds the same */
            status = track(b, b->ctx, &item.of.memory);
    }
    if (status != 0) {
        forget(b);
        return -1;
    }
    b->started = 1;
    cap_wasm_memories(b);
    return 0;
}

/* Nothing grows between calls (no plugin code runs, and the host reaches the kernel only from a
 * host function): the charges and the cap left by the last call (or memory_budget_start) hold. */
void memory_budget_begin_call(memory_budget *b) {
    b->refused = 0;
    b->spent_before_call = b->spent;
}

int memory_budget_end_call(memory_budget *b) {
    if (!b->started) return 0;
    charge_from(b, 1);
    if (b->spent == b->spent_before_call) return 0;
    cap_wasm_memories(b);
    return b->spent + b->host_charged > (uint64_t)b->limit;
}

/* Is there room for `bytes` more, with what the wasm memories grew so far charged? Marks the
 * budget refused, or not: the kernel asks again for less after a refusal (kernel.c, commit). */
static int take_room(memory_budget *b, uint64_t bytes) {
    charge_from(b, 0);
    b->refused = bytes > (uint64_t)memory_budget_left(b);
    return b->refused ? -1 : 0;
}

int memory_budget_allow(memory_budget *b, uint64_t current_bytes, uint64_t bytes) {
    if (!b->started) return 0;
    if (take_room(b, bytes) != 0) return -1;
    if (current_bytes + bytes > (uint64_t)b->cap) set_cap(b, (int64_t)(current_bytes + bytes));
    return 0;
}

int memory_budget_charge_host(memory_budget *b, uint64_t bytes) {
    if (!b->started) return 0;
    if (bytes > b->host_charged && take_room(b, bytes - b->host_charged) != 0) return -1;
    b->refused = 0;
    b->host_charged = bytes;
    cap_wasm_memories(b);
    return 0;
}

void memory_budget_settle(memory_budget *b) {
    if (!b->started) return;
    charge_from(b, 0);
    cap_wasm_memories(b);
}

void memory_budget_describe(const memory_budget *b, char *out, size_t out_len) {
    if (out_len == 0) return;
    out[0] = '\0';
    if (b->limit < 0) return;
    snprintf(out, out_len, "memory.max_pages = %llu pages of growth for all the plugin's memories, %llu left",
             (unsigned long long)((uint64_t)b->limit / BUDGET_PAGE),
             (unsigned long long)((uint64_t)memory_budget_left(b) / BUDGET_PAGE));
}
