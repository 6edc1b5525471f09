/*
 * kernel_access.c - the hottest kernel functions as a tiny wasm module ("kernel accessors").
 *
 * Why: a wasm -> host call through wasmtime costs ~5 ns, a wasm -> wasm call ~1-2 ns, and PDKs call
 * input_load_u64 once per 8 input bytes and store_u8/u64 per output byte or word. So the kernel
 * memory is this module's exported memory, and the functions that only read or write it run here,
 * in wasm; everything that needs the allocator's metadata (alloc, free, length, ...) stays in C.
 *
 * The C kernel keeps the header [0, 64) of the memory equal to its state (kernel.h): input offset
 * at 8, input length at 16, `end` (one past the last block) at 24. Every access is checked against
 * them. A bad one gets the official kernel's answer (loads return 0, stores do nothing), unless
 * the instance is strict (header flag at 48): then it records which function (code + 1) at 32 and
 * the offset at 40 and traps with `unreachable`. Every function stays a leaf (no call, no frame: as
 * cheap as the official runtime's wasm kernel); the host turns the record into a message naming
 * the function and the offset (kernel_access_fault_message). Plugins cannot write the header:
 * stores below 64 are out of range.
 */
#include <stdio.h>
#include <string.h>

#include "kernel_access.h"
#include "wasmtime_api.h"

/* A failed check: strict mode (header flag at 48, kernel.h) records which function and the
 * offset, then traps; otherwise the official kernel's answer: loads give 0, stores do nothing. */
#define ON_FAULT(code, lenient) \
    "      (then (if (i64.eqz (i64.load (i32.const 48))) (then " lenient "))\n" \
    "            (i64.store (i32.const 40) (local.get $o)) (i64.store (i32.const 32) (i64.const " code "))" \
    " (unreachable)))\n"

/* A byte offset outside [64, end), in one unsigned compare (the byte accessors are called once per
 * byte by some PDKs): o - 64 wraps to a huge value below 64, and end >= 64 always. */
#define BYTE_OUTSIDE "(i64.ge_u (i64.sub (local.get $o) (i64.const 64)) (i64.sub (i64.load (i32.const 24)) (i64.const 64)))"

static const char KERNEL_ACCESS_WAT[] =
    "(module\n"
    "  (memory (export \"memory\") 1)\n"
    /* Checks are written out in every function: Cranelift does not inline calls. An offset is valid
     * when [o, o + n) lies in [64, end); end >= 64 always, so end - n cannot wrap for n <= 8. */
    "  (func (export \"load_u8\") (param $o i64) (result i32)\n"
    "    (if " BYTE_OUTSIDE "\n"
    ON_FAULT("1", "(return (i32.const 0))")
    "    (i32.load8_u (i32.wrap_i64 (local.get $o))))\n"
    "  (func (export \"load_u64\") (param $o i64) (result i64)\n"
    "    (if (i32.or (i64.lt_u (local.get $o) (i64.const 64))\n"
    "                (i64.gt_u (local.get $o) (i64.sub (i64.load (i32.const 24)) (i64.const 8))))\n"
    ON_FAULT("2", "(return (i64.const 0))")
    "    (i64.load (i32.wrap_i64 (local.get $o))))\n"
    "  (func (export \"store_u8\") (param $o i64) (param $v i32)\n"
    "    (if " BYTE_OUTSIDE "\n"
    ON_FAULT("3", "(return)")
    "    (i32.store8 (i32.wrap_i64 (local.get $o)) (local.get $v)))\n"
    "  (func (export \"store_u64\") (param $o i64) (param $v i64)\n"
    "    (if (i32.or (i64.lt_u (local.get $o) (i64.const 64))\n"
    "                (i64.gt_u (local.get $o) (i64.sub (i64.load (i32.const 24)) (i64.const 8))))\n"
    ON_FAULT("4", "(return)")
    "    (i64.store (i32.wrap_i64 (local.get $o)) (local.get $v)))\n"
    /* An input index is valid when i + n <= input length (PDKs read one unit past a short input);
     * for n = 1 that is i < length, one compare. */
    "  (func (export \"input_load_u8\") (param $o i64) (result i32) (local $len i64)\n"
    "    (local.set $len (i64.load (i32.const 16)))\n"
    "    (if (i64.ge_u (local.get $o) (local.get $len))\n"
    ON_FAULT("5", "(return (i32.const 0))")
    "    (i32.load8_u (i32.wrap_i64 (i64.add (i64.load (i32.const 8)) (local.get $o)))))\n"
    "  (func (export \"input_load_u64\") (param $o i64) (result i64) (local $len i64)\n"
    "    (local.set $len (i64.load (i32.const 16)))\n"
    "    (if (i32.or (i64.lt_u (local.get $len) (i64.const 8))\n"
    "                (i64.gt_u (local.get $o) (i64.sub (local.get $len) (i64.const 8))))\n"
    ON_FAULT("6", "(return (i64.const 0))")
    "    (i64.load (i32.wrap_i64 (i64.add (i64.load (i32.const 8)) (local.get $o)))))\n"
    "  (func (export \"input_length\") (result i64) (i64.load (i32.const 16)))\n"
    "  (func (export \"input_offset\") (result i64) (i64.load (i32.const 8)))\n"
    ")\n";

const char *kernel_access_wat(size_t *length) {
    *length = sizeof KERNEL_ACCESS_WAT - 1;
    return KERNEL_ACCESS_WAT;
}

static const char *fault_function(uint64_t which) {
    /* The order of the `which` codes in the module above. */
    static const char *const names[] = {"load_u8", "load_u64", "store_u8", "store_u64",
                                        "input_load_u8", "input_load_u64"};
    return which < 6 ? names[which] : "kernel access";
}

char *kernel_access_fault_message(kernel *k) {
    if (k->base == NULL || k->committed < KERNEL_FIRST_OFFSET) return NULL;
    uint64_t code, offset;
    memcpy(&code, k->base + KERNEL_HEADER_FAULT, 8);
    memcpy(&offset, k->base + KERNEL_HEADER_FAULT_OFFSET, 8);
    if (code == 0) return NULL;
    memset(k->base + KERNEL_HEADER_FAULT, 0, 8);
    uint64_t which = code - 1, n = (which == 1 || which == 3 || which == 5) ? 8 : 1;
    char message[200];
    if (which >= 4)
        snprintf(message, sizeof message, "extism:host/env %s: index %llu (+%llu bytes) is past the input (%llu bytes)",
                 fault_function(which), (unsigned long long)offset, (unsigned long long)n,
                 (unsigned long long)k->input_length);
    else
        kernel_describe_out_of_bounds(k, fault_function(which), offset, n, message, sizeof message);
    return wt_copy_text(message, strlen(message));
}
