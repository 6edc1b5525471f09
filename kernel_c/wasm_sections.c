/* wasm_sections.c - the memory section's limits read from a module's binary; contract in wasm_sections.h. */
#include "wasm_sections.h"

#include <string.h>

#define HEADER_BYTES 8
#define DEFAULT_PAGE_LOG2 16 /* 64 KiB pages */
#define LIMITS_HAS_MAXIMUM 0x01
#define LIMITS_HAS_PAGE_SIZE 0x08
#define LIMITS_KNOWN_FLAGS 0x0F /* maximum, shared, 64-bit, page size */
#define MAX_PAGE_LOG2 64

/* A cursor over [at, end): a read past end fails (returns 0) and leaves it unusable. */
typedef struct reader {
    const uint8_t *at;
    const uint8_t *end;
} reader;

/* An unsigned LEB128 of at most 10 bytes whose value fits 64 bits into *value: 1, or 0 when it runs
 * past the end, is longer, or has bits past the 64th (the 10th byte holds bit 63 only). */
static int read_leb(reader *r, uint64_t *value) {
    uint64_t result = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (r->at >= r->end)
            return 0;
        uint8_t byte = *r->at++;
        if (shift == 63 && byte > 1)
            return 0;
        result |= (uint64_t)(byte & 0x7F) << shift;
        if (!(byte & 0x80)) {
            *value = result;
            return 1;
        }
    }
    return 0;
}

static int read_byte(reader *r, uint8_t *value) {
    if (r->at >= r->end)
        return 0;
    *value = *r->at++;
    return 1;
}

/* The memory section's contents into *section (an empty reader when the module has none): 1, or 0
 * when the header or a section header cannot be read or a section runs past the module. */
static int find_memory_section(const uint8_t *wasm, size_t length, reader *section) {
    static const uint8_t magic[4] = {0x00, 'a', 's', 'm'};
    if (length < HEADER_BYTES || memcmp(wasm, magic, sizeof magic) != 0)
        return 0;
    reader r = {wasm + HEADER_BYTES, wasm + length};
    while (r.at < r.end) {
        uint8_t id;
        uint64_t size;
        if (!read_byte(&r, &id) || !read_leb(&r, &size) || size > (uint64_t)(r.end - r.at))
            return 0;
        if (id == WASM_MEMORY_SECTION) {
            section->at = r.at;
            section->end = r.at + size;
            return 1;
        }
        r.at += size;
    }
    section->at = section->end = NULL;
    return 1;
}

/* One limits entry: 1, or 0 when it is malformed or does not end inside the section. */
static int read_limits(reader *r, wasm_sections_memory *memory) {
    uint8_t flags;
    uint64_t maximum, page_log2 = DEFAULT_PAGE_LOG2;
    if (!read_byte(r, &flags) || (flags & ~LIMITS_KNOWN_FLAGS) || !read_leb(r, &memory->minimum_pages))
        return 0;
    if ((flags & LIMITS_HAS_MAXIMUM) && !read_leb(r, &maximum))
        return 0;
    if ((flags & LIMITS_HAS_PAGE_SIZE) && (!read_leb(r, &page_log2) || page_log2 > MAX_PAGE_LOG2))
        return 0;
    memory->page_log2 = (unsigned)page_log2;
    return 1;
}

size_t wasm_sections_defined_memories(const uint8_t *wasm, size_t length, wasm_sections_memory *out,
                                      size_t capacity) {
    reader section;
    uint64_t count;
    if (!find_memory_section(wasm, length, &section))
        return WASM_SECTIONS_MALFORMED;
    if (section.at == NULL)
        return 0;
    if (!read_leb(&section, &count))
        return WASM_SECTIONS_MALFORMED;
    /* A huge count fails on the bytes it lacks: the loop ends with the section. */
    for (uint64_t i = 0; i < count; i++) {
        wasm_sections_memory memory;
        if (!read_limits(&section, &memory))
            return WASM_SECTIONS_MALFORMED;
        if (i < capacity)
            out[i] = memory;
    }
    return (size_t)count;
}
