/*
 * kernel.h - the Extism kernel memory: blocks, input, output and error (docs/ABI.md, "Kernel memory, offsets and blocks").
 *
 * The kernel memory is a region separate from the plugin's linear memory. Plugins see 64-bit
 * offsets into it; offset 0 means "none", so the first block starts at KERNEL_FIRST_OFFSET.
 * Block metadata (status, capacity, used length) lives outside the region, in a host array sorted
 * by offset: a plugin can write anywhere in the data region with store_u8/u64 and still cannot
 * corrupt the allocator, and validating an offset never trusts bytes the plugin wrote. That array
 * is host memory a plugin makes the process hold (32 bytes per block, however small), so past a
 * small allowance it counts against the same limit as the region (kernel.c, region_room), and
 * against the embedder's budget when the kernel shares one (kernel_share_budget).
 *
 * The region's bytes are provided by the embedder through a grow callback (store.c backs it with
 * a wasm memory, so the hottest ABI functions can run as wasm; see kernel_access.c). The first
 * KERNEL_FIRST_OFFSET bytes are a header mirroring input offset/length and `end` for that wasm code;
 * plugins can read it but no store may write it.
 *
 * Thread-safety: none. A kernel belongs to one plugin instance, used by one thread at a time.
 *
 * Owns: the kernel struct (the region's bounds, the block table, input/output/error offsets) and
 * every block operation; not the region's bytes (the embedder's grow callback provides them).
 */
#ifndef EXTISM_FAST_KERNEL_H
#define EXTISM_FAST_KERNEL_H

#include <stddef.h>
#include <stdint.h>

/* First data offset: 0 stays invalid, [0, 64) is the header, blocks stay 8-byte aligned. */
#define KERNEL_FIRST_OFFSET 64u
/* Header fields (little-endian u64) kept equal to the kernel's state by kernel_sync_header. */
#define KERNEL_HEADER_INPUT_OFFSET 8u
#define KERNEL_HEADER_INPUT_LENGTH 16u
#define KERNEL_HEADER_END 24u
/* Written by the wasm accessors when a check fails in strict mode (kernel_access.c), cleared by
 * kernel_reset. */
#define KERNEL_HEADER_FAULT 32u
#define KERNEL_HEADER_FAULT_OFFSET 40u
/* Non-zero when the kernel is strict (kernel.strict): failed accessor checks trap. */
#define KERNEL_HEADER_STRICT 48u

/* Grow the region to at least new_size bytes (never shrinks). On success stores the (possibly
 * moved) base address and the new size and returns 0; returns -1 when it cannot. */
typedef int (*kernel_grow_fn)(void *ctx, uint64_t new_size, uint8_t **base, uint64_t *size);

/* The block table's host bytes past its allowance become `charged` (more or fewer than before).
 * Returns 0 when the embedder's budget allows it (always, for fewer), -1 when it refuses. */
typedef int (*kernel_charge_fn)(void *ctx, uint64_t charged);

typedef enum kernel_block_status { KERNEL_BLOCK_FREE = 1, KERNEL_BLOCK_ACTIVE = 2 } kernel_block_status;

typedef struct kernel_block {
    uint64_t offset;   /* first data byte */
    uint64_t capacity; /* bytes reserved for this block (multiple of 8) */
    uint64_t length;   /* bytes in use (what `length` answers); <= capacity */
    uint8_t status;    /* kernel_block_status */
} kernel_block;

typedef struct kernel {
    uint8_t *base;       /* start of the region; offset o is base + o */
    uint64_t limit;      /* bytes the kernel may use (region + block table past its allowance) */
    uint64_t committed;  /* bytes of the region that exist */
    kernel_grow_fn grow;
    void *grow_ctx;
    uint64_t end;        /* end of the last block: offsets in [FIRST, end) are addressable */
    kernel_block *blocks;
    size_t block_count;
    size_t block_capacity;
    size_t free_count;   /* blocks with status FREE, so alloc skips the scan when 0 */
    uint64_t input_offset, input_length;
    uint64_t output_offset, output_length;
    uint64_t error_offset;
    uint64_t error_length; /* the error block's length when error_set named it */
    int strict;            /* out-of-range accesses trap instead of the official lenient answers */
    kernel_charge_fn charge_table; /* a shared budget (kernel_share_budget), or NULL; its ctx is grow_ctx */
} kernel;

/* kernel_new: an empty kernel that may grow to `limit` bytes (0 -> 4 GiB) through `grow`.
 * It has no region until kernel_attach. Returns NULL when out of host memory. */
kernel *kernel_new(uint64_t limit, kernel_grow_fn grow, void *grow_ctx);

/* kernel_attach: use the region [base, base + size) from now on (size >= KERNEL_FIRST_OFFSET,
 * e.g. a fresh wasm memory after re-instantiation) and forget every block, as kernel_reset. */
void kernel_attach(kernel *k, uint8_t *base, uint64_t size);

/* kernel_delete: free the metadata (the region belongs to the embedder). NULL is ignored. */
void kernel_delete(kernel *k);

/* kernel_alloc: a new active block of n bytes. As the official kernel, fresh space comes first:
 * a block is appended while it fits the committed region, so the next alloc never returns a block
 * just freed (PDKs free blocks twice, or free one the host already took); only when the committed
 * region is full is the first free block large enough reused (split when much larger), and only
 * when none is the region grown. Returns its offset, or 0 when n == 0, when the limit would be
 * passed (by the region, or by the block table past its allowance: see kernel_table_charged), or
 * when memory cannot be committed. */
uint64_t kernel_alloc(kernel *k, uint64_t n);

/* kernel_table_charged: non-zero when the block table has grown past its allowance, so that it
 * takes from the limit: an alloc refused then is the plugin's block bookkeeping meeting the limit,
 * and fails the call (env_imports.c) as the official runtime's failed growth does. */
int kernel_table_charged(const kernel *k);

/* kernel_free: mark the active block starting at `offset` free and merge free neighbours (`end`
 * never moves back: see kernel_alloc). Unknown offsets and 0 are ignored. Freeing the input block
 * zeroes input_length. */
void kernel_free(kernel *k, uint64_t offset);

/* kernel_length: used length of the active block starting exactly at `offset`, else 0. */
uint64_t kernel_length(const kernel *k, uint64_t offset);

/* kernel_find_active: index of the active block starting at `offset`, or -1. */
ptrdiff_t kernel_find_active(const kernel *k, uint64_t offset);

/* kernel_ptr: host pointer to bytes [offset, offset + n) when the whole range lies inside the
 * addressable region [KERNEL_FIRST_OFFSET, end), else NULL. Overflow-safe for any inputs. */
uint8_t *kernel_ptr(const kernel *k, uint64_t offset, uint64_t n);

/* kernel_describe_out_of_bounds: the message for a bad offset given to ABI function `function`
 * (it names the function, the range and the addressable region), written into out. */
void kernel_describe_out_of_bounds(const kernel *k, const char *function, uint64_t offset, uint64_t n,
                                   char *out, size_t out_len);

/* kernel_set_strict: choose strict (traps) or the official lenient answers for bad accesses. */
void kernel_set_strict(kernel *k, int strict);

/* kernel_share_budget: the region and the block table take from a budget the embedder keeps with
 * other memories (memory.max_pages): the region grows by the pages an allocation needs, as the
 * official kernel, instead of doubling (a doubling would take what the plugin's memory needs; the
 * grow callback asks the budget), and the table's bytes past its allowance are charged through
 * `charge_table` (with grow_ctx) whenever they change. */
void kernel_share_budget(kernel *k, kernel_charge_fn charge_table);

/* kernel_error_text: the error message named by error_set (*length its byte count), or NULL when
 * there is none. The block's bytes while it is active; after the plugin freed it, the bytes it held
 * when error_set named it (the call still fails, as in the official runtime). */
const uint8_t *kernel_error_text(const kernel *k, uint64_t *length);

/* kernel_reset: forget every block, the input, the output and the error; a block table grown past
 * its allowance shrinks back to it. */
void kernel_reset(kernel *k);

/* kernel_set_input: mark [offset, offset + length) as the input and update the header. */
void kernel_set_input(kernel *k, uint64_t offset, uint64_t length);

/* kernel_write_input: reset-free helper for the host: allocate a block, copy `len` bytes of
 * `data` into it and mark it as the input. Returns 0 on success, -1 when the limit is hit.
 * An empty input sets input offset and length to 0. */
int kernel_write_input(kernel *k, const uint8_t *data, uint64_t len);

/* kernel_alloc_bytes: allocate a block holding a copy of data (len may be 0 -> returns 0). */
uint64_t kernel_alloc_bytes(kernel *k, const uint8_t *data, uint64_t len);

/* kernel_memory_bytes: bytes the kernel currently manages (end of the last block). */
uint64_t kernel_memory_bytes(const kernel *k);

#endif
