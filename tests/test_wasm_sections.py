"""The memories a module defines, read from its binary by the extension (kernel_c/wasm_sections.c,
``_runtime._defined_memory_sizes``): the store checks main's against max_pages before wasmtime
sees them; test_capabilities.py has the behaviour, these the reading of every limits encoding, and
of untrusted bytes that cannot be read (nothing known, never a crash; the file runs under ASan and
UBSan in test_sanitizers.py)."""

from __future__ import annotations

import random

import pytest
import wasmtime
from conftest import leb128

from extism_fast._runtime import _defined_memory_sizes as defined_memory_sizes

HEADER = b"\0asm\1\0\0\0"


leb = leb128


def memory_section(*memtypes: bytes) -> bytes:
    body = leb(len(memtypes)) + b"".join(memtypes)
    return bytes([5]) + leb(len(body)) + body


@pytest.mark.parametrize("memtypes, expected", [
    ([b"\x00" + leb(3)], [3 << 16]),                                 # min only
    ([b"\x01" + leb(3) + leb(10)], [3 << 16]),                       # min and max
    ([b"\x03" + leb(2) + leb(4)], [2 << 16]),                        # shared (threads)
    ([b"\x04" + leb(70000)], [70000 << 16]),                         # memory64: a u64 minimum
    ([b"\x08" + leb(5) + leb(0)], [5]),                              # custom page size 2^0
    ([b"\x09" + leb(5) + leb(9) + leb(0)], [5]),                     # ... with a maximum
    ([b"\x00" + leb(1), b"\x00" + leb(7), b"\x00" + leb(2)], [1 << 16, 7 << 16, 2 << 16]),  # each, in order
    ([b"\x00" + leb(n) for n in range(9)], [n << 16 for n in range(9)]),  # more than the first buffer holds
    ([b"\x0f" + leb(3) + leb(4) + leb(16)], [3 << 16]),              # every flag: max, shared, 64-bit, page size
    ([b"\x05" + leb(2**64 - 1) + leb(2**64 - 1)], [(2**64 - 1) << 16]),  # the largest u64 minimum and maximum
    ([b"\x08" + leb(1) + leb(64)], [1 << 64]),                       # the largest page size read (2^64)
    ([b"\x08" + leb(3) + b"\x90\x80\x00"], [3 << 16]),               # a page size in a padded LEB128
    ([b"\x00" + b"\x83\x80\x80\x80\x80\x80\x80\x80\x80\x00"], [3 << 16]),  # a 10-byte minimum
    ([], []),                                                        # a section of no memory
])
def test_every_limits_encoding(memtypes, expected):
    assert defined_memory_sizes(HEADER + memory_section(*memtypes)) == expected


def test_other_sections_are_skipped_and_wat_compiles_to_what_is_read():
    wasm = bytes(wasmtime.wat2wasm('(module (import "m" "f" (func)) (memory (export "mem") 2 5) (memory 9) '
                                   '(func (export "run") (result i32) i32.const 0))'))
    assert defined_memory_sizes(wasm) == [2 << 16, 9 << 16]


@pytest.mark.parametrize("wasm", [
    HEADER,                                                   # no sections
    bytes(wasmtime.wat2wasm('(module (import "env" "m" (memory 4)))')),  # an imported memory only
])
def test_no_defined_memory(wasm):
    assert defined_memory_sizes(wasm) == []


@pytest.mark.parametrize("wasm", [
    b"",                                                      # not even a header
    HEADER + b"\x05\x10\x01",                                 # a section longer than the module
    HEADER + memory_section(b"\x00"),                         # a minimum cut short
    HEADER + bytes([5, 3, 2, 0, 1]),                          # two memories announced, one present
    HEADER + memory_section(b"\x10" + leb(1)),                # an unknown limits flag
    HEADER + memory_section(b"\x00" + b"\xff" * 11),          # a LEB128 that never ends
    # untrusted bytes (read before wasmtime validates them): none of these is read past its end
    b"\0asm",                                                 # a header cut short
    b"\0asn\1\0\0\0",                                          # not the magic
    HEADER + b"\x01",                                          # a section id and no size
    HEADER + b"\x01\x80",                                      # a section size cut short
    HEADER + b"\x05\x00",                                      # a memory section with no count
    HEADER + b"\x05\x01\x80",                                  # a count cut short
    HEADER + b"\x05\x02\x01\x00",                              # a limits entry with no minimum
    HEADER + memory_section(b"\x01" + leb(1)),                # a maximum announced, none present
    HEADER + memory_section(b"\x08" + leb(1)),                # a page size announced, none present
    HEADER + memory_section(b"\x08" + leb(1) + leb(65)),      # a page size past 2^64
    HEADER + memory_section(b"\x08" + leb(1) + leb(2**64 - 1)),  # ... by far
    HEADER + memory_section(b"\x80" + leb(1)),                # the top flag bit
    HEADER + memory_section(b"\x04" + b"\x80" * 9 + b"\x02"),  # a minimum of 2^64: past a u64 LEB128
    HEADER + memory_section(b"\x01" + leb(1) + b"\xff" * 9 + b"\x7f"),  # a maximum past 64 bits
    HEADER + memory_section(b"\x08" + leb(1) + b"\x80" * 9 + b"\x01"),  # a page size of 2^63 (log2)
    HEADER + b"\x05" + b"\x80" * 9 + b"\x02" + b"\x01\x00\x01",   # a section size past 64 bits
    HEADER + b"\x05" + b"\xff" * 9 + b"\x01" + b"\x01\x00\x01",   # a section of 2^64 - 1 bytes
    HEADER + b"\x05\x0b" + b"\xff" * 9 + b"\x01" + b"\x00\x01",   # a count of 2^64 - 1, one memory present
    HEADER + b"\x05\x07" + b"\xff\xff\xff\xff\x0f" + b"\x00\x01",  # a count of 2^32 - 1
    HEADER + bytes([5, 3, 1, 1, 1]) + bytes([0, 1, 9]),        # a maximum that ends past the section
    HEADER + bytes([5, 2, 1, 0]) + bytes([1]),                 # a minimum in the next section's bytes
])
def test_a_binary_that_cannot_be_read_says_nothing(wasm):
    assert defined_memory_sizes(wasm) is None


def test_any_bytes_like_is_read_and_only_the_first_memory_section():
    wasm = HEADER + memory_section(b"\x00" + leb(3)) + memory_section(b"\x00" + leb(4)) + b"\x05\xff"
    for data in (wasm, bytearray(wasm), memoryview(wasm)):
        assert defined_memory_sizes(data) == [3 << 16]
    with pytest.raises(TypeError):
        defined_memory_sizes("\0asm")


def reference(wasm: bytes):
    """The contract of kernel_c/wasm_sections.h in Python (what runtime/wasm_sections.py read before
    it moved to C, its LEB128s now bounded to 64 bits as wasm's are): the oracle of the fuzz test."""
    def number(offset):
        value = 0
        for shift in range(0, 64, 7):
            if offset >= end or (shift == 63 and wasm[offset] > 1):
                return None, offset
            value |= (wasm[offset] & 0x7F) << shift
            offset += 1
            if not wasm[offset - 1] & 0x80:
                return value, offset
        return None, offset

    if len(wasm) < 8 or wasm[:4] != b"\0asm":
        return None
    offset, end = 8, len(wasm)
    while offset < len(wasm):
        section, (size, offset) = wasm[offset], number(offset + 1)
        if size is None or offset + size > len(wasm):
            return None
        if section == 5:
            end = offset + size
            break
        offset += size
    else:
        return []
    count, offset = number(offset)
    sizes = []
    for _ in range(count if count is not None else 1):
        if count is None or offset >= end:
            return None
        flags, (minimum, offset) = wasm[offset], number(offset + 1)
        maximum = page_log2 = 16
        if flags & 1 and minimum is not None:
            maximum, offset = number(offset)
        if flags & 8 and None not in (minimum, maximum):
            page_log2, offset = number(offset)
        if None in (minimum, maximum, page_log2) or flags & ~0x0F or page_log2 > 64:
            return None
        sizes.append(minimum << page_log2)
    return sizes


def test_random_damage_reads_as_the_contract_says():
    """Valid modules with random bytes changed, cut or added (a few thousand of them, seeded): the
    C reader returns what the contract's Python reading does, and never fails otherwise."""
    rng = random.Random(22)
    seeds = [HEADER + memory_section(b"\x0f" + leb(3) + leb(4) + leb(16), b"\x04" + leb(2**40)),
             bytes(wasmtime.wat2wasm('(module (memory (export "m") 2 5) (memory 9) (func (export "f")))'))]
    for _ in range(4000):
        wasm = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(wasm) + 1)
            action = rng.randrange(4)
            if action == 0 and at < len(wasm):
                wasm[at] = rng.choice((0x00, 0x01, 0x05, 0x08, 0x40, 0x7f, 0x80, 0xff, rng.randrange(256)))
            elif action == 1:
                del wasm[at:]
            elif action == 2:
                wasm[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 12)))
            else:
                wasm[at:at] = b"\xff" * rng.randint(1, 11)
        assert defined_memory_sizes(bytes(wasm)) == reference(bytes(wasm)), bytes(wasm).hex()


@pytest.mark.parametrize("modules", ["main", "linked"])
def test_a_memory64_minimum_past_64_bits_is_a_memory_limit_error(modules):
    """A valid memory64 module whose minimum (2^48 pages of 64 KiB) is 2^64 bytes: read as a
    Python int, it does not fit the store's u64 check; an Error naming the module and the memory,
    not a raw OverflowError, and the process goes on."""
    import extism_fast as ef

    huge = bytes(wasmtime.wat2wasm("(module (memory i64 281474976710656) (func (export \"run\") (result i32) "
                                   "i32.const 0))"))
    assert defined_memory_sizes(huge) == [1 << 64]
    ok = bytes(wasmtime.wat2wasm('(module (func (export "run") (result i32) i32.const 0))'))
    if modules == "main":
        manifest, name = {"wasm": [{"data": huge}]}, "main"
    else:
        manifest, name = {"wasm": [{"data": huge, "name": "big"}, {"data": ok, "name": "main"}]}, "big"
    with pytest.raises(ef.MemoryLimitError, match=rf"^memory 0 defined by module '{name}' has a minimum size of "
                                                  rf"18446744073709551616 bytes, more than a 64-bit address space"):
        ef.Plugin(manifest, functions=[])
    with ef.Plugin(ok, functions=[]) as plugin:
        assert plugin.call("run") == b""


def test_a_minimum_past_a_u64_leb128_is_wasmtimes_compile_error():
    """An invalid module (a minimum LEB128 of 2^64: past u64) says nothing to the reading, so
    wasmtime reports it, naming what it could not parse; the process goes on."""
    import extism_fast as ef

    invalid = HEADER + memory_section(b"\x04" + b"\x80" * 9 + b"\x02")
    with pytest.raises(ef.CompileError, match=r"(?s)^invalid wasm module 'main': .*integer too large"):
        ef.Plugin(invalid, functions=[])
    with ef.Plugin(bytes(wasmtime.wat2wasm('(module (func (export "run")))')), functions=[]) as plugin:
        assert plugin.call("run") == b""
