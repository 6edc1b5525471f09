/*
 * kernel.h - the Extism kernel memory: blocks, input, output and error (ABI.md, "Offsets and blocks").
 *
 * The kernel memory is a host-owned region, separate from the plugin's linear memory. Plugins see
 * 64-bit offsets into it; offset 0 means "none", so the first block starts at KERNEL_FIRST_OFFSET.
 * Block metadata (status, capacity, used length) lives outside the region, in a host array sorted
 * by offset: a plugin can write anywhere in the data region with store_u8/u64 and still cannot
 * corrupt the allocator, and validating an offset never trusts bytes the plugin wrote.
 *
 * The region's address range is reserved once (PROT_NONE) and committed as it grows, so host
 * pointers into it stay valid for the kernel's whole life (memoryviews can point into it).
 *
 * Thread-safety: none. A kernel belongs to one plugin instance, used by one thread at a time.
 */
#ifndef EXTISM_FAST_KERNEL_H
#define EXTISM_FAST_KERNEL_H

#include <stddef.h>
#include <stdint.h>

/* First data offset. 0 stays invalid; 8 keeps every block 8-byte aligned. */
#define KERNEL_FIRST_OFFSET 8u

typedef enum kernel_block_status { KERNEL_BLOCK_FREE = 1, KERNEL_BLOCK_ACTIVE = 2 } kernel_block_status;

typedef struct kernel_block {
    uint64_t offset;   /* first data byte */
    uint64_t capacity; /* bytes reserved for this block (multiple of 8) */
    uint64_t length;   /* bytes in use (what `length` answers); <= capacity */
    uint8_t status;    /* kernel_block_status */
} kernel_block;

typedef struct kernel {
    uint8_t *base;       /* start of the reserved region; offset o is base + o */
    uint64_t limit;      /* bytes the kernel may use: alloc fails past it */
    uint64_t committed;  /* bytes of the region that are readable/writable */
    uint64_t end;        /* end of the last block: offsets in [FIRST, end) are addressable */
    kernel_block *blocks;
    size_t block_count;
    size_t block_capacity;
    size_t free_count;   /* blocks with status FREE, so alloc skips the scan when 0 */
    uint64_t input_offset, input_length;
    uint64_t output_offset, output_length;
    uint64_t error_offset;
} kernel;

/* kernel_new: reserve a region of `limit` bytes (rounded up to the page size; 0 -> 4 GiB).
 * Returns NULL when the address space cannot be reserved. */
kernel *kernel_new(uint64_t limit);

/* kernel_delete: release the region and the metadata. NULL is ignored. */
void kernel_delete(kernel *k);

/* kernel_alloc: a new active block of n bytes, reusing the first free block large enough (split
 * when much larger), else appended. Returns its offset, or 0 when n == 0, when the limit would be
 * passed, or when memory cannot be committed. */
uint64_t kernel_alloc(kernel *k, uint64_t n);

/* kernel_free: mark the active block starting at `offset` free; merges free neighbours and gives
 * trailing free space back. Unknown offsets and 0 are ignored. Freeing the input block zeroes
 * input_length. */
void kernel_free(kernel *k, uint64_t offset);

/* kernel_length: used length of the active block starting exactly at `offset`, else 0. */
uint64_t kernel_length(const kernel *k, uint64_t offset);

/* kernel_find_active: index of the active block starting at `offset`, or -1. */
ptrdiff_t kernel_find_active(const kernel *k, uint64_t offset);

/* kernel_ptr: host pointer to bytes [offset, offset + n) when the whole range lies inside the
 * addressable region [KERNEL_FIRST_OFFSET, end), else NULL. Overflow-safe for any inputs. */
uint8_t *kernel_ptr(const kernel *k, uint64_t offset, uint64_t n);

/* kernel_reset: forget every block, the input, the output and the error. Large regions are
 * returned to the OS (their pages are dropped) so one huge call does not pin memory forever. */
void kernel_reset(kernel *k);

/* kernel_write_input: reset-free helper for the host: allocate a block, copy `len` bytes of
 * `data` into it and mark it as the input. Returns 0 on success, -1 when the limit is hit.
 * An empty input sets input offset and length to 0. */
int kernel_write_input(kernel *k, const uint8_t *data, uint64_t len);

/* kernel_alloc_bytes: allocate a block holding a copy of data (len may be 0 -> returns 0). */
uint64_t kernel_alloc_bytes(kernel *k, const uint8_t *data, uint64_t len);

/* kernel_memory_bytes: bytes the kernel currently manages (end of the last block). */
uint64_t kernel_memory_bytes(const kernel *k);

#endif
