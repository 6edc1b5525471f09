"""extism_fast/runtime/wasm_sections.py: the memories a module defines, read from its binary (the store
checks main's against max_pages before wasmtime sees them; test_capabilities.py has the
behaviour, these the reading of every limits encoding)."""

from __future__ import annotations

import pytest
import wasmtime
from conftest import leb128

from extism_fast.wasm_sections import defined_memory_sizes

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
])
def test_a_binary_that_cannot_be_read_says_nothing(wasm):
    assert defined_memory_sizes(wasm) is None


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
