"""One test (at least) per row of docs/ABI.md: every kernel function and every host-provided function.

Kernel rows run the matching export of ``tests/plugins/kernel.wat``; host rows run
``tests/plugins/host.wat``. A few allocator properties that no wasm export can observe precisely
are checked from a host function through ``CurrentPlugin`` (the same kernel memory).
Error paths with swept bad offsets live in test_errors.py.
"""

from __future__ import annotations

import http.server
import json
import logging
import random
import struct
import threading

import pytest

import extism_fast as ef
from conftest import q, u64, u64s
from extism_fast import Function, ValType
from extism_fast.logs import TRACE

INT32_MAX = 0x7FFFFFFF  # i32::MAX, what get_log_level answers for "off"


def u32(b: bytes) -> int:
    assert len(b) == 4, b
    return struct.unpack("<I", b)[0]


# ------------------------------------------------------------------------------------------------
# fixtures
# ------------------------------------------------------------------------------------------------


def test_first_block_offset(first):
    assert first > 0  # offset 0 means "none"
    assert first % 8 == 0


@pytest.fixture(scope="module")
def host_wasm(plugin_wasm):
    return plugin_wasm("host")


@pytest.fixture
def host(host_wasm):
    with ef.Plugin(host_wasm, functions=[]) as plugin:
        yield plugin


def user_functions(nothing=None, hello=None):
    """The four imports of host_user.wat; `nothing(current_plugin)` runs arbitrary host code."""

    def _hello(cp, params, results):
        if hello is None:
            cp.return_string(results[0], "Hello, " + cp.input_string(params[0]) + "!")
        else:
            hello(cp, params, results)

    def _add(cp, params, results):
        results[0].value = params[0].value + params[1].value

    def _mul(cp, params, results):
        results[0].value = params[0].value * params[1].value

    def _nothing(cp, params, results):
        if nothing is not None:
            nothing(cp)

    return [
        Function("extism:host/user", "hello_world", [ValType.I64], [ValType.I64], _hello),
        Function("extism:host/user", "add_i32", [ValType.I32, ValType.I32], [ValType.I32], _add),
        Function("extism:host/user", "mul_f64", [ValType.F64, ValType.F64], [ValType.F64], _mul),
        Function("extism:host/user", "nothing", [], [], _nothing),
    ]


def run_in_host(plugin_wasm, fn):
    """Run fn(current_plugin) inside a host function during a call; return what it returned."""
    box = {}

    def body(cp):
        box["result"] = fn(cp)

    with ef.Plugin(plugin_wasm("host_user"), functions=user_functions(nothing=body)) as plugin:
        assert plugin.call("call_nothing") == b"ok"
    return box["result"]


# ------------------------------------------------------------------------------------------------
# The import table itself: every ABI function exists with its exact type, and only those
# ------------------------------------------------------------------------------------------------

# name -> (params, results), "I" = i64, "i" = i32 (docs/ABI.md, "Kernel functions" and "Host functions")
ABI_FUNCTIONS = {
    "alloc": ("I", "I"),
    "free": ("I", ""),
    "length": ("I", "I"),
    "length_unsafe": ("I", "I"),
    "load_u8": ("I", "i"),
    "load_u64": ("I", "I"),
    "store_u8": ("Ii", ""),
    "store_u64": ("II", ""),
    "input_length": ("", "I"),
    "input_offset": ("", "I"),
    "input_load_u8": ("I", "i"),
    "input_load_u64": ("I", "I"),
    "input_set": ("II", ""),
    "output_set": ("II", ""),
    "output_length": ("", "I"),
    "output_offset": ("", "I"),
    "error_set": ("I", ""),
    "error_get": ("", "I"),
    "reset": ("", ""),
    "memory_bytes": ("", "I"),
    "config_get": ("I", "I"),
    "var_get": ("I", "I"),
    "var_set": ("II", ""),
    "http_request": ("II", "I"),
    "http_status_code": ("", "i"),
    "http_headers": ("", "I"),
    "log_trace": ("I", ""),
    "log_debug": ("I", ""),
    "log_info": ("I", ""),
    "log_warn": ("I", ""),
    "log_error": ("I", ""),
    "get_log_level": ("", "i"),
}
_WAT_TYPE = {"I": "i64", "i": "i32"}


def _functype_wat(params: str, results: str) -> str:
    p = " ".join(_WAT_TYPE[c] for c in params)
    r = " ".join(_WAT_TYPE[c] for c in results)
    return (f"(param {p})" if p else "") + (f" (result {r})" if r else "")


def _sig_text(params: str, results: str) -> str:
    return f"({', '.join(_WAT_TYPE[c] for c in params)}) -> ({', '.join(_WAT_TYPE[c] for c in results)})"


def test_import_table_covers_every_abi_row():
    """One module importing all 32 ABI functions with their exact types loads and runs."""
    imports = "\n".join(
        f'(import "extism:host/env" "{name}" (func {_functype_wat(*sig)}))'
        for name, sig in ABI_FUNCTIONS.items()
    )
    wat = f'(module {imports} (func (export "run") (result i32) (i32.const 0)))'
    with ef.Plugin(wat, functions=[]) as plugin:
        assert plugin.call("run") == b""


@pytest.mark.parametrize("name", sorted(ABI_FUNCTIONS))
def test_import_with_wrong_type_is_rejected(name):
    params, results = ABI_FUNCTIONS[name]
    # Flip every i64 to i32 and vice versa; for () -> () add a parameter.
    flip = {"I": "i", "i": "I"}
    bad_params = "".join(flip[c] for c in params) or "i"
    bad_results = "".join(flip[c] for c in results)
    wat = (
        f'(module (import "extism:host/env" "{name}" (func {_functype_wat(bad_params, bad_results)}))'
        f' (func (export "run") (result i32) (i32.const 0)))'
    )
    with pytest.raises(ef.LinkError) as info:
        ef.Plugin(wat, functions=[])
    message = str(info.value)
    assert f"extism:host/env::{name}" in message
    assert _sig_text(bad_params, bad_results) in message
    assert _sig_text(params, results) in message


# ------------------------------------------------------------------------------------------------
# alloc
# ------------------------------------------------------------------------------------------------


def test_alloc_takes_fresh_space_before_a_freed_block(kernel):
    """As the official kernel: alloc(50) after free(alloc(100)) is a new block, not the freed one."""
    a, b = u64s(kernel.call("alloc_free_reuse"))
    assert a != 0 and b > a
    a, b, c, length_b = u64s(kernel.call("alloc_split"))
    assert a < b < c
    assert length_b == 16


def _fill_committed(cp, last_offset, last_size):
    """Allocate what is left of the first 64 KiB page (the kernel memory a plugin starts with),
    so the next alloc has to reuse a freed block or grow the memory."""
    end = last_offset + (last_size + 7) // 8 * 8
    return cp.alloc(65536 - end).offset


def test_alloc_reuses_a_freed_block_once_committed_memory_is_full(plugin_wasm):
    def body(cp):
        a = cp.alloc(4096).offset
        cp.free(a)
        offsets = [cp.alloc(4096).offset for _ in range(20)]
        return a, offsets

    a, offsets = run_in_host(plugin_wasm, body)
    assert a not in offsets[:10]  # fresh space first: 64 KiB holds ~15 such blocks
    assert a in offsets          # then the freed block, before the memory grows
    assert len(set(offsets)) == len(offsets)


def test_alloc_splits_a_much_larger_free_block(plugin_wasm):
    def body(cp):
        a = cp.alloc(4096).offset
        pin = cp.alloc(16).offset  # keeps a from merging with the filler
        cp.free(a)
        filler = _fill_committed(cp, pin, 16)
        b = cp.alloc(16).offset
        c = cp.alloc(16).offset
        d = cp.alloc(4000).offset  # fits in what is left of a
        e = cp.alloc(4096).offset  # does not: the memory grows
        lengths = [cp.memory_at_offset(x).length for x in (b, c, d, e, pin)]
        return a, pin, filler, b, c, d, e, lengths

    a, pin, filler, b, c, d, e, lengths = run_in_host(plugin_wasm, body)
    assert filler > pin
    assert b == a
    assert a < c < a + 4096
    assert c < d < pin
    assert d + 4000 <= pin
    assert e > filler
    assert lengths == [16, 16, 4000, 4096, 16]


def test_alloc_free_merges_neighbours(plugin_wasm):
    def body(cp):
        a = cp.alloc(100).offset
        b = cp.alloc(100).offset
        pin = cp.alloc(8).offset
        cp.free(a)
        cp.free(b)
        _fill_committed(cp, pin, 8)
        return a, b, cp.alloc(200).offset

    a, b, merged = run_in_host(plugin_wasm, body)
    assert a < b
    assert merged == a


def test_double_free_of_a_block_the_host_took_does_not_free_a_later_block(plugin_wasm):
    """The Haskell PDK frees a config_get key the host already freed; a block allocated after it
    (here: the config value the host returned) must survive that second free."""
    with ef.Plugin({"wasm": [{"data": plugin_wasm("pdk_habits")}], "config": {"k": "VALUE"}},
                   functions=[]) as plugin:
        assert plugin.call("double_free") == b"VALUE"


def test_alloc_zero_returns_0(kernel):
    assert u64(kernel.call("alloc_zero")) == 0


@pytest.mark.parametrize("n", [1, 7, 8, 9, 4096, 1 << 20])
def test_alloc_n_returns_a_fresh_aligned_nonzero_block(kernel, first, n):
    offset = u64(kernel.call("alloc_n", q(n)))
    assert offset != 0
    assert offset % 8 == 0
    # The input (8 bytes) is the first block; the new one must not overlap it.
    assert offset >= first + 8


@pytest.mark.parametrize("n", [2**40 + 1, 2**63 - 1, 2**64 - 1])
def test_alloc_huge_returns_0(kernel, n):
    assert u64(kernel.call("alloc_n", q(n))) == 0
    assert kernel.call("echo", b"still alive") == b"still alive"


def test_alloc_respects_memory_limit(plugin_wasm):
    # max_pages is the budget for the growth of all the memories (the kernel's here), as the
    # official runtime: an alloc past it fails the call (the official limiter traps, "oom").
    manifest = {"wasm": [{"data": plugin_wasm("kernel")}], "memory": {"max_pages": 3}}
    with ef.Plugin(manifest, functions=[]) as plugin:
        assert u64(plugin.call("alloc_n", q(1000))) != 0
        assert u64(plugin.call("alloc_n", q(2 * 65536))) != 0  # the kernel grows 1 -> 3 pages: 1 left
        for n in (4 * 65536, 30 * 65536):  # 5 pages and more
            with pytest.raises(ef.MemoryLimitError, match=r"alloc: cannot allocate .*max_pages = 3 pages.*, 1 left"):
                plugin.call("alloc_n", q(n))
        assert u64(plugin.call("alloc_n", q(65536))) != 0  # fits the kernel's 3 pages
        assert plugin.call("echo", b"ok") == b"ok"


def test_allocator_random_ops_never_overlap_or_corrupt(plugin_wasm):
    def body(cp):
        rng = random.Random(20240601)
        live = {}
        for step in range(3000):
            if live and rng.random() < 0.45:
                off = rng.choice(sorted(live))
                n, byte = live.pop(off)
                assert bytes(cp.memory(ef.Memory(off, n))) == bytes([byte]) * n, step
                cp.free(off)
                assert cp.memory_at_offset(off).length == 0
            else:
                n = rng.choice([1, 7, 8, 9, 63, 64, 65, 100, 1000, 4096, 10000])
                off = cp.alloc(n).offset
                assert off != 0 and off % 8 == 0
                for o, (m, _) in live.items():
                    assert off + n <= o or o + m <= off, ("overlap", step, off, n, o, m)
                assert cp.memory_at_offset(off).length == n
                byte = rng.randrange(256)
                cp.memory(ef.Memory(off, n))[:] = bytes([byte]) * n
                live[off] = (n, byte)
        for off, (n, byte) in live.items():
            assert bytes(cp.memory(ef.Memory(off, n))) == bytes([byte]) * n
        return len(live)

    assert run_in_host(plugin_wasm, body) > 0


# ------------------------------------------------------------------------------------------------
# free
# ------------------------------------------------------------------------------------------------


def test_free_input_block_zeroes_input_length(kernel):
    assert u64(kernel.call("free_input", b"some input")) == 0


def test_free_unknown_offsets_are_ignored(plugin_wasm):
    def body(cp):
        a = cp.alloc(64).offset
        cp.memory(ef.Memory(a, 64))[:] = b"x" * 64
        for bad in (0, 1, 7, a + 1, a + 8, a + 64, 2**32, 2**63 - 1, 2**64 - 1):
            cp.free(bad)
        still = cp.memory_at_offset(a).length, bytes(cp.memory(ef.Memory(a, 64)))
        cp.free(a)
        cp.free(a)  # double free: ignored
        return still, cp.memory_at_offset(a).length

    (length, data), after = run_in_host(plugin_wasm, body)
    assert length == 64 and data == b"x" * 64
    assert after == 0


def test_free_and_length_of_the_newest_blocks_and_of_blocks_merged_away(plugin_wasm):
    """A PDK's var::set: a value and a key, the newest two blocks, asked about and freed (merged
    into one free block), then freed again after a later alloc: those frees name no active block
    any more and free nothing (kernel.c's fast paths for the newest blocks)."""
    def body(cp):
        value = cp.alloc(24).offset
        key = cp.alloc(5).offset
        lengths = [cp.memory_at_offset(x).length for x in (value, key, key + 4, key + 64)]
        cp.free(key)
        cp.free(value)
        later = cp.alloc(16).offset
        for again in (key, value, key + 4, later + 8):
            cp.free(again)
        return value, key, later, lengths, [cp.memory_at_offset(x).length for x in (value, key, later)]

    value, key, later, lengths, after = run_in_host(plugin_wasm, body)
    assert value < key < later
    assert lengths == [24, 5, 0, 0]
    assert after == [0, 0, 16]


def test_free_via_probe(kernel, first):
    # free(input block) through the plugin import; the call keeps working.
    assert kernel.call("probe_free", q(first)) == b"ok"


# ------------------------------------------------------------------------------------------------
# length / length_unsafe
# ------------------------------------------------------------------------------------------------


def test_length_of_block(kernel):
    assert u64(kernel.call("length_of_block")) == 37


def test_length_invalid_offsets_are_0(kernel):
    assert u64s(kernel.call("length_invalid")) == (0, 0, 0, 0)


@pytest.mark.parametrize("export", ["probe_length", "probe_length_unsafe"])
def test_length_probe(kernel, first, export):
    # The probe input (16 bytes) is the first block.
    assert u64(kernel.call(export, q(first, 0))) == 16
    for bad in (0, 1, 7, first + 1, first + 7, first + 8, first + 16, 2**32, 2**63 - 1, 2**64 - 1):
        assert u64(kernel.call(export, q(bad, 0))) == 0, bad


def test_length_unsafe_of_block(kernel):
    assert u64(kernel.call("length_unsafe")) == 37


# ------------------------------------------------------------------------------------------------
# load / store
# ------------------------------------------------------------------------------------------------


def test_load_store_u8(kernel):
    out = kernel.call("load_store_u8")
    assert out == b"\x11\x22\x33\xff" + q(255)


def test_load_store_u64(kernel):
    p = struct.pack("<QQ", 0x0123456789ABCDEF, 0xFEDCBA9876543210)
    assert kernel.call("load_store_u64") == p + p[4:12]


MARK = 0x1122334455667788


def test_load_u8_in_range(kernel, first):
    # input = q(offset, MARK) lives at [first, first + 16)
    assert u64(kernel.call("probe_load_u8", q(first, MARK))) == first & 0xFF
    assert u64(kernel.call("probe_load_u8", q(first + 8, MARK))) == 0x88
    assert u64(kernel.call("probe_load_u8", q(first + 15, MARK))) == 0x11


def test_load_u64_in_range(kernel, first):
    assert u64(kernel.call("probe_load_u64", q(first, MARK))) == first
    assert u64(kernel.call("probe_load_u64", q(first + 8, MARK))) == MARK
    assert u64(kernel.call("probe_load_u64", q(first + 4, MARK))) == (MARK & 0xFFFFFFFF) << 32


@pytest.mark.parametrize("export", ["probe_store_u8", "probe_store_u64"])
def test_store_in_range(kernel, first, export):
    assert kernel.call(export, q(first, 0)) == b"ok"
    assert kernel.call(export, q(first + 8, 0)) == b"ok"



# ------------------------------------------------------------------------------------------------
# input
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 1000, 65536])
def test_input_length(kernel, n):
    assert u64(kernel.call("input_length", b"\xab" * n)) == n


@pytest.mark.parametrize("n", [0, 1, 5, 8, 17, 4097])
def test_input_offset_roundtrip(kernel, n):
    data = bytes(random.Random(n).randrange(256) for _ in range(n))
    assert kernel.call("input_offset_roundtrip", data) == data


@pytest.mark.parametrize("export", ["input_load_u8", "input_load_u64"])
@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 15, 16, 17, 1000])
def test_input_load(kernel, export, n):
    data = bytes(random.Random(n).randrange(256) for _ in range(n))
    assert kernel.call(export, data) == data


def test_input_load_u8_and_u64_at_the_last_valid_index(kernel):
    # The probe input is q(index, MARK): 16 bytes.
    assert u64(kernel.call("probe_input_load_u8", q(15, MARK))) == 0x11
    assert u64(kernel.call("probe_input_load_u8", q(8, MARK))) == 0x88
    assert u64(kernel.call("probe_input_load_u8", q(0, MARK))) == 0
    assert u64(kernel.call("probe_input_load_u64", q(8, MARK))) == MARK
    assert u64(kernel.call("probe_input_load_u64", q(4, MARK))) == (MARK & 0xFFFFFFFF) << 32  # bytes 4..8 of the index are 0


def test_input_set(kernel):
    assert kernel.call("input_set", b"old") == b"new input"


@pytest.mark.parametrize("strict", [False, True])
def test_input_set_out_of_range(plugin_wasm, first, strict):
    """Ignored as by the official kernel (the input stays), or a trap naming input_set (strict)."""
    with ef.Plugin(plugin_wasm("host_probes"), functions=[], strict=strict) as plugin:
        # In range: the input block itself, shortened.
        assert u64(plugin.call("probe_input_set", q(first, 3))) == 3
        if strict:
            with pytest.raises(ef.TrapError, match="input_set"):
                plugin.call("probe_input_set", q(first, 2**64 - 1))
        else:
            assert u64(plugin.call("probe_input_set", q(first, 2**64 - 1))) == 16
        assert plugin.call("ok") == b"ok"


# ------------------------------------------------------------------------------------------------
# output
# ------------------------------------------------------------------------------------------------


def test_output_set(kernel):
    assert kernel.call("output_set") == b"hello"


def test_output_set_on_input_block(kernel, first):
    data = q(first, 16)
    assert kernel.call("probe_output_set", data) == data
    assert kernel.call("probe_output_set", q(first + 8, 8)) == q(8)
    assert kernel.call("probe_output_set", q(first, 0)) == b""


def test_output_length(kernel):
    assert u64s(kernel.call("output_length")) == (0, 5)


def test_output_offset(kernel):
    assert u64s(kernel.call("output_offset")) == (0, 1)


def test_no_output_set_gives_empty_output(plugin_wasm):
    with ef.Plugin(plugin_wasm("bad/bad_export_types"), functions=[]) as plugin:
        assert plugin.call("good") == b""


def test_void_export_returns_output(kernel):
    assert kernel.call("void_fn") == b"ok"


# ------------------------------------------------------------------------------------------------
# error
# ------------------------------------------------------------------------------------------------


def test_error_set_return_0_fails_with_text(kernel):
    with pytest.raises(ef.PluginError) as info:
        kernel.call("error_set_return0")
    assert str(info.value) == "boom from plugin"
    assert kernel.call("echo", b"x") == b"x"


def test_error_set_return_1_fails_with_text(kernel):
    with pytest.raises(ef.PluginError) as info:
        kernel.call("error_set_return1")
    assert str(info.value) == "failed with 1"


def test_error_get(kernel):
    assert u64s(kernel.call("error_get")) == (0, 1)


def test_error_set_0_clears(kernel):
    assert kernel.call("error_clear") == b"ok"


def test_error_does_not_leak_into_next_call(kernel):
    with pytest.raises(ef.PluginError):
        kernel.call("error_set_return0")
    assert u64s(kernel.call("error_get")) == (0, 1)


# ------------------------------------------------------------------------------------------------
# reset / memory_bytes
# ------------------------------------------------------------------------------------------------


def test_reset(kernel):
    assert u64s(kernel.call("reset", b"some input")) == (0, 0, 0, 1)


def test_memory_bytes(kernel):
    before, after = u64s(kernel.call("memory_bytes", b"abc"))
    assert before >= 3
    assert after >= before + (1 << 20)


def test_each_call_starts_with_a_reset_kernel(kernel):
    before1, _ = u64s(kernel.call("memory_bytes", b"abc"))
    before2, _ = u64s(kernel.call("memory_bytes", b"abc"))
    assert before1 == before2  # the 1 MiB block of the first call is gone


# ------------------------------------------------------------------------------------------------
# Host functions: config
# ------------------------------------------------------------------------------------------------


def test_config_get(host_wasm):
    config = {"greeting": "hi", "unicode": "ünï ✓", "big": "v" * 10000}
    with ef.Plugin(host_wasm, functions=[], config=config) as plugin:
        assert plugin.call("config_get", "greeting") == b"hi"
        assert plugin.call("config_get", "unicode") == "ünï ✓".encode()
        assert plugin.call("config_get", "big") == b"v" * 10000
        assert plugin.call("config_get", "missing") == b"<none>"
        assert plugin.call("config_get", "greetin") == b"<none>"
        assert plugin.call("config_get", "greeting!") == b"<none>"


def test_config_get_without_config(host):
    assert host.call("config_get", "greeting") == b"<none>"


# ------------------------------------------------------------------------------------------------
# Host functions: vars
# ------------------------------------------------------------------------------------------------


def test_var_get_absent(host):
    assert host.call("var_get", "nope") == b"<none>"


def test_var_set_then_get(host):
    assert host.call("var_set_from_input", "a=1") == b"ok"
    assert host.call("var_set_from_input", "b=two=2") == b"ok"
    assert host.call("var_get", "a") == b"1"
    assert host.call("var_get", "b") == b"two=2"
    assert host.call("var_set_from_input", "a=replaced") == b"ok"
    assert host.call("var_get", "a") == b"replaced"


def test_var_set_binary_value(host):
    value = bytes(range(256))
    assert host.call("var_set_from_input", b"bin=" + value) == b"ok"
    assert host.call("var_get", "bin") == value


def test_var_set_0_deletes(host):
    host.call("var_set_from_input", "a=1")
    assert host.call("var_delete", "a") == b"ok"
    assert host.call("var_get", "a") == b"<none>"
    host.call("var_set_from_input", "a=1")
    assert host.call("var_set_from_input", "a=") == b"ok"  # empty value passes 0
    assert host.call("var_get", "a") == b"<none>"
    assert host.call("var_delete", "never-set") == b"ok"


def test_vars_survive_between_calls_of_one_instance(host_wasm):
    with ef.Plugin(host_wasm, functions=[]) as p1, ef.Plugin(host_wasm, functions=[]) as p2:
        assert [u64(p1.call("var_roundtrip")) for _ in range(3)] == [1, 2, 3]
        assert u64(p2.call("var_roundtrip")) == 1
        assert u64(p1.call("var_roundtrip")) == 4


def test_var_set_without_equals_fails(host):
    with pytest.raises(ef.PluginError, match="expected key=value"):
        host.call("var_set_from_input", "novalue")


def test_var_store_cap_is_exact(host_wasm):
    # As the official runtime: a var costs key + value + 48 bytes, and the old value of a key being
    # rewritten still counts when the new one is checked.
    manifest = {"wasm": [{"data": host_wasm}], "memory": {"max_var_bytes": 64}}
    with ef.Plugin(manifest, functions=[]) as plugin:
        assert plugin.call("var_set_from_input", b"abc=" + b"v" * 13) == b"ok"  # 3 + 13 + 48 == 64
        with pytest.raises(ef.MemoryLimitError, match="variable store is full"):
            plugin.call("var_set_from_input", b"abc=w")  # 64 + 52 > 64
        assert plugin.call("var_get", "abc") == b"v" * 13  # unchanged
        with pytest.raises(ef.MemoryLimitError, match="variable store is full"):
            plugin.call("var_set_from_input", b"d=e")
        assert plugin.call("var_delete", "abc") == b"ok"
        assert plugin.call("var_set_from_input", b"d=e") == b"ok"


def test_var_default_cap_is_1_mib(host_wasm):
    with ef.Plugin(host_wasm, functions=[]) as plugin:
        assert plugin.call("var_set_from_input", b"j=" + b"x" * ((1 << 20) - 49)) == b"ok"  # 1 MiB with key + 48
        assert plugin.call("var_delete", "j") == b"ok"
        with pytest.raises(ef.MemoryLimitError, match="variable store is full"):
            plugin.call("var_set_from_input", b"k=" + b"x" * ((1 << 20) - 48))


# ------------------------------------------------------------------------------------------------
# Host functions: HTTP
# ------------------------------------------------------------------------------------------------


STATUS_WAT = """
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "extism:host/env" "http_status_code" (func $status (result i32)))
  (import "extism:host/env" "http_headers" (func $headers (result i64)))
  ;; u64[2]: http_status_code(), http_headers() with no request made
  (func (export "run") (result i32)
    (local $o i64)
    (local.set $o (call $alloc (i64.const 16)))
    (call $store_u64 (local.get $o) (i64.extend_i32_u (call $status)))
    (call $store_u64 (i64.add (local.get $o) (i64.const 8)) (call $headers))
    (call $output_set (local.get $o) (i64.const 16))
    (i32.const 0)))
"""


def test_http_status_code_and_headers_without_request():
    with ef.Plugin(STATUS_WAT, functions=[]) as plugin:
        assert u64s(plugin.call("run")) == (0, 0)


def test_http_request_denied_by_default(host):
    with pytest.raises(ef.CapabilityError) as info:
        host.call("http_denied")
    assert "HTTP is not allowed" in str(info.value)
    assert "http_request" in str(info.value)
    assert host.call("config_get", "x") == b"<none>"


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        body = b"hello from 127.0.0.1"
        self.send_response(201)
        self.send_header("X-Test", "yes")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):  # noqa: N802
        data = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[::-1])

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def http_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _http_input(url: str, method: str = "GET", body: bytes = b"") -> bytes:
    req = json.dumps({"url": url, "method": method, "headers": {}}).encode()
    return q(len(req)) + req + body


def _parse_http_output(out: bytes):
    status = struct.unpack("<I", out[:4])[0]
    n = struct.unpack("<Q", out[4:12])[0]
    return status, out[12 : 12 + n], out[12 + n :]


def test_http_request_allowed_host(host_wasm, http_server):
    manifest = {"wasm": [{"data": host_wasm}], "allowed_hosts": ["127.0.0.1"]}
    with ef.Plugin(manifest, functions=[]) as plugin:
        status, body, headers = _parse_http_output(plugin.call("http_request", _http_input(http_server + "/x")))
        assert status == 201
        assert body == b"hello from 127.0.0.1"
        assert headers == b""  # http_headers() is 0 unless Plugin(..., http_response_headers=True)
        status, body, _ = _parse_http_output(
            plugin.call("http_request", _http_input(http_server + "/p", "POST", b"abc")))
        assert (status, body) == (200, b"cba")


def test_http_request_denied_names_the_host(host):
    with pytest.raises(ef.CapabilityError, match=r"host '127\.0\.0\.1'.*manifest\.allowed_hosts"):
        host.call("http_denied")


def test_http_response_headers_when_asked(host_wasm, http_server):
    manifest = {"wasm": [{"data": host_wasm}], "allowed_hosts": ["127.0.0.1"]}
    with ef.Plugin(manifest, functions=[], http_response_headers=True) as plugin:
        status, body, headers = _parse_http_output(plugin.call("http_request", _http_input(http_server + "/x")))
        assert (status, body) == (201, b"hello from 127.0.0.1")
        assert json.loads(headers)["x-test"] == "yes"  # names are lower-case, as in the Extism runtime


def test_http_response_body_cap(host_wasm, http_server):
    manifest = {
        "wasm": [{"data": host_wasm}],
        "allowed_hosts": ["127.0.0.*"],
        "memory": {"max_http_response_bytes": 4},
    }
    with ef.Plugin(manifest, functions=[]) as plugin:
        with pytest.raises(ef.MemoryLimitError, match="memory.max_http_response_bytes = 4"):
            plugin.call("http_request", _http_input(http_server + "/x"))


# ------------------------------------------------------------------------------------------------
# Host functions: logging
# ------------------------------------------------------------------------------------------------


def test_log_each_level(host, caplog):
    caplog.set_level(TRACE, logger="extism_fast")
    out = host.call("log_all")
    assert u32(out) == 0
    records = [r for r in caplog.records if r.name == "extism_fast"]
    assert [(r.levelno, r.getMessage()) for r in records] == [
        (TRACE, "trace msg"),
        (logging.DEBUG, "debug msg"),
        (logging.INFO, "info msg"),
        (logging.WARNING, "warn msg"),
        (logging.ERROR, "error msg"),
    ]
    assert all(r.plugin_id == str(host.id) for r in records)


@pytest.mark.parametrize(
    "py_level, abi_level, kept",
    [
        (TRACE, 0, 5),
        (logging.DEBUG, 1, 4),
        (logging.INFO, 2, 3),
        (logging.WARNING, 3, 2),
        (logging.ERROR, 4, 1),
        (logging.CRITICAL, INT32_MAX, 0),
    ],
)
def test_get_log_level_follows_logger(host, caplog, py_level, abi_level, kept):
    caplog.set_level(py_level, logger="extism_fast")
    assert u32(host.call("get_log_level")) == abi_level
    caplog.clear()
    assert u32(host.call("log_all")) == abi_level
    assert len([r for r in caplog.records if r.name == "extism_fast"]) == kept


def test_log_utf8_text(host, caplog):
    caplog.set_level(logging.INFO, logger="extism_fast")
    assert host.call("log_input", "héllo ✓") == b"ok"
    assert host.call("log_input", b"bad \xff byte") == b"ok"
    messages = [r.getMessage() for r in caplog.records if r.name == "extism_fast"]
    assert messages == ["héllo ✓", "bad \ufffd byte"]


# ------------------------------------------------------------------------------------------------
# User host functions
# ------------------------------------------------------------------------------------------------


def test_user_functions_default_namespace(plugin_wasm):
    def shout(cp, params, results):
        cp.return_string(results[0], cp.input_string(params[0]).upper())

    f = Function(None, "hello_world", [ValType.I64], [ValType.I64], shout)
    assert f.namespace == "extism:host/user"
    rest = [fn for fn in user_functions() if fn.name != "hello_world"]
    with ef.Plugin(plugin_wasm("host_user"), functions=[f, *rest]) as plugin:
        assert plugin.call("call_hello", "abc") == b"ABC"


def test_user_function_custom_namespace(plugin_wasm):
    def shout(cp, params, results):
        cp.return_bytes(results[0], cp.input_bytes(params[0]).upper() + b"!")

    f = Function("my:namespace", "shout", [ValType.PTR], [ValType.PTR], shout)
    with ef.Plugin(plugin_wasm("host_ns"), functions=[f]) as plugin:
        assert plugin.call("call", "hey") == b"HEY!"
