/*
 * wasm_sections.h - the memories a module defines, read from its binary's memory section. wasmtime's
 * C API lists only the memories a module imports or exports (and does not tell a defined memory from
 * a re-exported import); the store checks the memories main defines, together, against max_pages
 * before instantiating (store.c), and the budget caps no memory below the largest (memory_budget.c).
 * Read here, in the extension, before every compile (cache hit or miss): a Python parser was a module
 * a fresh process loaded for its first plugin.
 *
 * Owns: nothing (a pure function over the caller's bytes).
 *
 * The bytes are untrusted (read before wasmtime validates them, or a cache entry's): every read is
 * bounds-checked, and a binary that cannot be read is answered with WASM_SECTIONS_MALFORMED
 * (nothing known), never a guess. Only the header, the section headers and the memory section are
 * read: the header is the magic and any 4 version bytes; the first section with id 5 is the memory
 * section, its contents a count then that many limits: a flags byte (bit 0: a maximum follows,
 * bit 1: shared, bit 2: 64-bit, bit 3: a page size follows, as log2, after the maximum: the
 * custom-page-sizes proposal; any other bit: malformed), the minimum, the maximum if any, the page
 * size's log2 if any (more than 64: malformed; without one, 16: 64 KiB pages). Every number is an
 * unsigned LEB128 of at most 10 bytes whose value fits 64 bits (valid wasm's are u32 or u64); a longer
 * one, or one with bits past the 64th, is malformed. A limits entry must end inside the section.
 */
#ifndef EXTISM_FAST_WASM_SECTIONS_H
#define EXTISM_FAST_WASM_SECTIONS_H

#include <stddef.h>
#include <stdint.h>

/* The memory section's id. */
#define WASM_MEMORY_SECTION 5

/* What wasm_sections_defined_memories returns for a binary it cannot read. */
#define WASM_SECTIONS_MALFORMED ((size_t)-1)

/* One memory a module defines: its minimum is minimum_pages << page_log2 bytes (which may not fit
 * 64 bits: a memory64 minimum of 2^48 pages of 64 KiB is 2^64 bytes; the caller range-checks it). */
typedef struct wasm_sections_memory {
    uint64_t minimum_pages;
    unsigned page_log2; /* 0..64 */
} wasm_sections_memory;

/* wasm_sections_defined_memories: the memories the module in the `length` bytes at `wasm` defines
 * (NULL allowed when length is 0), in order. Returns their number (0 when the module has no memory
 * section), or WASM_SECTIONS_MALFORMED when the binary cannot be read (see above). The first
 * min(number, capacity) are written to `out` (NULL allowed when capacity is 0): a caller whose buffer
 * was too small calls again with one of the number returned. Reads nothing outside
 * [wasm, wasm + length); a number returned is at most length / 2 (a memory takes 2 bytes at least). */
size_t wasm_sections_defined_memories(const uint8_t *wasm, size_t length, wasm_sections_memory *out,
                                      size_t capacity);

#endif
