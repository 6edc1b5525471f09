/* kernel.c - the kernel memory allocator; contracts in kernel.h. */
#include "kernel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KERNEL_DEFAULT_LIMIT (UINT64_C(4) << 30)
/* Grow in steps of at least this much, doubling, so growth costs few calls. */
#define KERNEL_GROW_STEP (UINT64_C(64) << 10)
/* Block-table bytes held free of the memory limit: 2,048 blocks, more than ordinary plugins use. */
#define KERNEL_TABLE_ALLOWANCE (UINT64_C(64) << 10)
/* A free block is split when at least this much would be left over. */
#define KERNEL_SPLIT_MIN UINT64_C(64)

static uint64_t round_up(uint64_t n, uint64_t to) { return (n + to - 1) / to * to; }

static void put_u64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

/* Mirror the state the wasm accessors read (kernel.h, "Header fields"). */
static void sync_header(kernel *k) {
    if (k->base == NULL) return;
    put_u64(k->base + KERNEL_HEADER_INPUT_OFFSET, k->input_offset);
    put_u64(k->base + KERNEL_HEADER_INPUT_LENGTH, k->input_length);
    put_u64(k->base + KERNEL_HEADER_END, k->end);
    put_u64(k->base + KERNEL_HEADER_FAULT, 0);
    put_u64(k->base + KERNEL_HEADER_STRICT, (uint64_t)(k->strict != 0));
}

kernel *kernel_new(uint64_t limit, kernel_grow_fn grow, void *grow_ctx) {
    kernel *k = calloc(1, sizeof *k);
    if (k == NULL) return NULL;
    k->limit = limit == 0 || limit > KERNEL_DEFAULT_LIMIT ? KERNEL_DEFAULT_LIMIT : limit;
    k->grow = grow;
    k->grow_ctx = grow_ctx;
    k->end = KERNEL_FIRST_OFFSET;
    return k;
}

void kernel_delete(kernel *k) {
    if (k == NULL) return;
    free(k->blocks);
    free(k);
}

void kernel_attach(kernel *k, uint8_t *base, uint64_t size) {
    k->base = base;
    k->committed = size;
    kernel_reset(k);
}

/* Block-table bytes past KERNEL_TABLE_ALLOWANCE with `slots` entries: host memory the plugin makes
 * the process hold, so they count against the limits as region bytes do (the official kernel keeps
 * its block headers inside its memory). */
static uint64_t table_charge(size_t slots) {
    uint64_t bytes = (uint64_t)slots * sizeof(kernel_block);
    return bytes > KERNEL_TABLE_ALLOWANCE ? bytes - KERNEL_TABLE_ALLOWANCE : 0;
}

/* The largest region the kernel may commit while its block table has `slots` entries: region +
 * charged table <= limit. (A shared budget, kernel_share_budget, is asked through its callbacks.) */
static uint64_t region_room(const kernel *k, size_t slots) {
    uint64_t charged = table_charge(slots);
    return charged < k->limit ? k->limit - charged : 0;
}

int kernel_table_charged(const kernel *k) { return table_charge(k->block_capacity) > 0; }

/* Make [0, needed) exist: grow geometrically (not under a shared budget), or only as needed when
 * doubling would pass the limit (what is left stays for the block table) or the embedder refuses it. */
static int commit(kernel *k, uint64_t needed) {
    if (needed <= k->committed) return 0;
    uint64_t room = region_room(k, k->block_capacity);
    if (needed > room) return -1;
    uint64_t exact = round_up(needed, KERNEL_GROW_STEP) <= room ? round_up(needed, KERNEL_GROW_STEP) : needed;
    uint64_t doubled = round_up(k->committed * 2, KERNEL_GROW_STEP);
    if (!k->charge_table && doubled > exact && doubled <= room && k->grow(k->grow_ctx, doubled, &k->base, &k->committed) == 0) return 0;
    return k->grow(k->grow_ctx, exact, &k->base, &k->committed);
}

/* Grow the table to at least `count` slots: it doubles, or grows by the largest power-of-two step
 * the budget allows (few reallocations near the limit); -1 when even `count` does not fit or
 * malloc fails. Out of line: reserve_block_slots's check is the hot path. */
static int grow_block_table(kernel *k, size_t count) {
    size_t cap = k->block_capacity ? k->block_capacity * 2 : 4; /* a call's input and output, mostly */
    while (cap < count) cap *= 2;
    size_t needed = count - k->block_capacity, step = cap - k->block_capacity;
    while (step > needed && region_room(k, k->block_capacity + step) < k->committed) step /= 2;
    /* A shared budget is asked for the charged bytes the same way: the largest step it allows. */
    while (step > needed && k->charge_table != NULL && table_charge(k->block_capacity + step) > table_charge(k->block_capacity) &&
           k->charge_table(k->grow_ctx, table_charge(k->block_capacity + step)) != 0)
        step /= 2;
    cap = k->block_capacity + (step > needed ? step : needed);
    if (region_room(k, cap) < k->committed) return -1;
    if (k->charge_table != NULL && table_charge(cap) > table_charge(k->block_capacity) &&
        k->charge_table(k->grow_ctx, table_charge(cap)) != 0)
        return -1;
    kernel_block *blocks = realloc(k->blocks, cap * sizeof *blocks);
    if (blocks == NULL) {
        if (k->charge_table != NULL) k->charge_table(k->grow_ctx, table_charge(k->block_capacity)); /* give it back */
        return -1;
    }
    k->blocks = blocks;
    k->block_capacity = cap;
    return 0;
}

static int reserve_block_slots(kernel *k, size_t count) {
    return count <= k->block_capacity ? 0 : grow_block_table(k, count);
}

/* Binary search: index of the block starting at offset (any status), or -1. */
static ptrdiff_t find_block(const kernel *k, uint64_t offset) {
    size_t lo = 0, hi = k->block_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint64_t start = k->blocks[mid].offset;
        if (start == offset) return (ptrdiff_t)mid;
        if (start < offset) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}

/* kernel_find_active's body, inlined into this unit's callers (free, length). */
static inline ptrdiff_t find_active(const kernel *k, uint64_t offset) {
    /* Fast paths: the newest two blocks are the ones most often asked about (a key and its value),
     * and past the newest one's start (blocks are sorted by offset) is no block: a PDK frees again
     * what the host freed and merged. */
    ptrdiff_t n = (ptrdiff_t)k->block_count, i;
    if (n == 0 || offset > k->blocks[n - 1].offset) return -1;
    if (offset == k->blocks[n - 1].offset) i = n - 1;
    else if (n > 1 && offset == k->blocks[n - 2].offset) i = n - 2;
    else i = find_block(k, offset);
    return i >= 0 && k->blocks[i].status == KERNEL_BLOCK_ACTIVE ? i : -1;
}

ptrdiff_t kernel_find_active(const kernel *k, uint64_t offset) { return find_active(k, offset); }

static uint64_t reuse_free_block(kernel *k, uint64_t n, uint64_t capacity) {
    for (size_t i = 0; i < k->block_count; i++) {
        kernel_block *b = &k->blocks[i];
        if (b->status != KERNEL_BLOCK_FREE || b->capacity < capacity) continue;
        uint64_t rest = b->capacity - capacity;
        if (rest >= KERNEL_SPLIT_MIN && reserve_block_slots(k, k->block_count + 1) == 0) {
            b = &k->blocks[i]; /* realloc may have moved the array */
            memmove(&k->blocks[i + 2], &k->blocks[i + 1], (k->block_count - i - 1) * sizeof *b);
            k->blocks[i + 1] = (kernel_block){b->offset + capacity, rest, 0, KERNEL_BLOCK_FREE};
            k->block_count++;
            b->capacity = capacity;
        } else {
            k->free_count--;
        }
        b->status = KERNEL_BLOCK_ACTIVE;
        b->length = n;
        return b->offset;
    }
    return 0;
}

static uint64_t append_block(kernel *k, uint64_t n, uint64_t capacity) {
    uint64_t offset = k->end;
    if (commit(k, offset + capacity) != 0) return 0;
    if (reserve_block_slots(k, k->block_count + 1) != 0) return 0;
    k->blocks[k->block_count++] = (kernel_block){offset, capacity, n, KERNEL_BLOCK_ACTIVE};
    k->end = offset + capacity;
    put_u64(k->base + KERNEL_HEADER_END, k->end);
    return offset;
}

/* kernel_alloc when the fast path cannot: committing, growing the table, reusing a free block.
 * Out of line, so the fast path saves no registers. */
__attribute__((noinline)) static uint64_t alloc_slow(kernel *k, uint64_t n, uint64_t capacity) {
    int fits_limit = capacity <= k->limit - k->end;
    if (fits_limit && k->end + capacity <= k->committed) return append_block(k, n, capacity);
    if (k->free_count > 0) {
        uint64_t reused = reuse_free_block(k, n, capacity);
        if (reused != 0) return reused;
    }
    return fits_limit ? append_block(k, n, capacity) : 0;
}

uint64_t kernel_alloc(kernel *k, uint64_t n) {
    if (n == 0 || n > k->limit) return 0;
    uint64_t capacity = round_up(n, 8), offset = k->end;
    /* Fast path: append_block's work when nothing needs committing or growing (no overflow:
     * end and n are at most the limit, 4 GiB). */
    if (offset + capacity <= k->committed && offset + capacity <= k->limit && k->block_count < k->block_capacity) {
        k->blocks[k->block_count++] = (kernel_block){offset, capacity, n, KERNEL_BLOCK_ACTIVE};
        k->end = offset + capacity;
        put_u64(k->base + KERNEL_HEADER_END, k->end);
        return offset;
    }
    return alloc_slow(k, n, capacity);
}

static void remove_block(kernel *k, size_t i) {
    if (i + 1 < k->block_count) /* the last block (the common case) moves nothing */
        memmove(&k->blocks[i], &k->blocks[i + 1], (k->block_count - i - 1) * sizeof k->blocks[0]);
    k->block_count--;
}

/* kernel_free of any block; kernel_free's fast path handles the newest one. */
__attribute__((noinline)) static void free_block(kernel *k, uint64_t offset) {
    ptrdiff_t found = find_active(k, offset);
    if (found < 0) return;
    size_t i = (size_t)found;
    if (offset == k->input_offset) kernel_set_input(k, k->input_offset, 0);
    k->blocks[i].status = KERNEL_BLOCK_FREE;
    k->blocks[i].length = 0;
    k->free_count++;
    /* Merge with a free successor, then with a free predecessor. */
    if (i + 1 < k->block_count && k->blocks[i + 1].status == KERNEL_BLOCK_FREE) {
        k->blocks[i].capacity += k->blocks[i + 1].capacity;
        remove_block(k, i + 1);
        k->free_count--;
    }
    if (i > 0 && k->blocks[i - 1].status == KERNEL_BLOCK_FREE) {
        k->blocks[i - 1].capacity += k->blocks[i].capacity;
        remove_block(k, i);
        k->free_count--;
    }
}

void kernel_free(kernel *k, uint64_t offset) {
    /* Fast paths: the newest block (not the input), freed and merged as free_block would; no
     * block past its start (find_active). */
    size_t count = k->block_count;
    kernel_block *last = count > 0 ? &k->blocks[count - 1] : NULL;
    if (last != NULL && offset > last->offset) return;
    if (last == NULL || last->offset != offset || offset == k->input_offset) {
        free_block(k, offset);
    } else if (last->status == KERNEL_BLOCK_ACTIVE) {
        if (count > 1 && last[-1].status == KERNEL_BLOCK_FREE) {
            last[-1].capacity += last->capacity; /* merged into the free predecessor */
            k->block_count--;
        } else {
            last->status = KERNEL_BLOCK_FREE;
            last->length = 0;
            k->free_count++;
        }
    }
}

uint64_t kernel_length(const kernel *k, uint64_t offset) {
    ptrdiff_t i = find_active(k, offset);
    return i < 0 ? 0 : k->blocks[i].length;
}

uint8_t *kernel_ptr(const kernel *k, uint64_t offset, uint64_t n) {
    if (offset < KERNEL_FIRST_OFFSET || offset > k->end || n > k->end - offset) return NULL;
    return k->base + offset;
}

void kernel_reset(kernel *k) {
    /* A table past its allowance gives its memory back: it takes from the limit only while a call
     * needs that many blocks. */
    if (k->block_capacity > KERNEL_TABLE_ALLOWANCE / sizeof *k->blocks) {
        kernel_block *blocks = realloc(k->blocks, KERNEL_TABLE_ALLOWANCE);
        if (blocks != NULL) {
            k->blocks = blocks;
            k->block_capacity = KERNEL_TABLE_ALLOWANCE / sizeof *blocks;
            if (k->charge_table != NULL) k->charge_table(k->grow_ctx, 0);
        }
    }
    k->block_count = 0;
    k->free_count = 0;
    k->end = KERNEL_FIRST_OFFSET;
    k->input_offset = k->input_length = 0;
    k->output_offset = k->output_length = 0;
    k->error_offset = k->error_length = 0;
    sync_header(k);
}

void kernel_share_budget(kernel *k, kernel_charge_fn charge_table) { k->charge_table = charge_table; }

void kernel_set_strict(kernel *k, int strict) {
    k->strict = strict != 0;
    sync_header(k);
}

const uint8_t *kernel_error_text(const kernel *k, uint64_t *length) {
    if (k->error_offset == 0) return NULL;
    ptrdiff_t i = kernel_find_active(k, k->error_offset);
    *length = i >= 0 ? k->blocks[i].length : k->error_length;
    const uint8_t *text = kernel_ptr(k, k->error_offset, *length);
    if (text == NULL) *length = 0;
    return text != NULL ? text : k->base + KERNEL_FIRST_OFFSET;
}

void kernel_set_input(kernel *k, uint64_t offset, uint64_t length) {
    k->input_offset = offset;
    k->input_length = length;
    sync_header(k);
}

uint64_t kernel_alloc_bytes(kernel *k, const uint8_t *data, uint64_t len) {
    if (len == 0) return 0;
    uint64_t offset = kernel_alloc(k, len);
    if (offset != 0) memcpy(k->base + offset, data, (size_t)len);
    return offset;
}

int kernel_write_input(kernel *k, const uint8_t *data, uint64_t len) {
    uint64_t offset = kernel_alloc_bytes(k, data, len);
    if (offset == 0 && len != 0) return -1;
    kernel_set_input(k, offset, len);
    return 0;
}

uint64_t kernel_memory_bytes(const kernel *k) { return k->end; }

void kernel_describe_out_of_bounds(const kernel *k, const char *function, uint64_t offset, uint64_t n,
                                   char *out, size_t out_len) {
    snprintf(out, out_len, "extism:host/env %s: offset %llu (+%llu bytes) is outside kernel memory [%u, %llu)",
             function, (unsigned long long)offset, (unsigned long long)n, KERNEL_FIRST_OFFSET,
             (unsigned long long)k->end);
}
