"""Every error path: the exception class, a message that names the cause, and (where a plugin
exists) that the same plugin still serves a good call afterwards."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import struct
import subprocess
import sys
import textwrap

import pytest

import extism_fast as ef
from conftest import host_user_functions, q, u64
from extism_fast import Function, ValType

# Offsets a buggy or hostile plugin may hand to the kernel.
SWEEP = [0, 1, 7, 2**32, 2**32 + 8, 2**40, 2**63 - 1, 2**63, 2**64 - 8, 2**64 - 1]


def raises(exc_type, fn, *args, **kwargs) -> str:
    with pytest.raises(exc_type) as info:
        fn(*args, **kwargs)
    assert isinstance(info.value, ef.Error)
    return str(info.value)


@pytest.fixture(scope="module")
def end(first):
    """End of kernel memory during a probe: its 16-byte input is the only block."""
    return first + 16


def assert_alive(plugin):
    assert plugin.call("echo", b"alive") == b"alive"


def greet(cp, params, results):
    cp.return_string(results[0], "Hello, " + cp.input_string(params[0]) + "!")


# ------------------------------------------------------------------------------------------------
# Loading: bytes, WAT, files, manifests, hashes
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("garbage", [b"\x01\x02garbage bytes", b"hello world", b"\x00\x00\x00\x00"])
def test_garbage_bytes(garbage):
    message = raises(ef.CompileError, ef.Plugin, garbage)
    assert "not WebAssembly" in message
    assert repr(garbage[:8]) in message


def test_truncated_wasm(plugin_wasm):
    data = plugin_wasm("kernel")
    # data[:8] alone is a valid empty module; every longer cut ends inside a section.
    for cut in (9, 10, len(data) // 2, len(data) - 1):
        message = raises(ef.CompileError, ef.Plugin, data[:cut])
        assert "invalid wasm module 'main'" in message


def test_wasm_magic_with_wrong_version():
    message = raises(ef.CompileError, ef.Plugin, b"\0asm\x02\0\0\0")
    assert "version" in message
    assert "invalid wasm module" in message


def test_invalid_wat():
    message = raises(ef.CompileError, ef.Plugin, "(module (func (export \"f\") (result i32) (i64.const 0)))")
    assert "invalid wasm module" in message or "invalid WebAssembly text" in message
    message = raises(ef.CompileError, ef.Plugin, "(module (func $f (unknown_instr)))")
    assert "invalid WebAssembly text" in message
    assert "unknown_instr" in message


def test_wrong_hash(plugin_wasm):
    data = plugin_wasm("kernel")
    good = hashlib.sha256(data).hexdigest()
    wrong = hashlib.sha256(b"something else").hexdigest()
    message = raises(ef.HashMismatchError, ef.Plugin, {"wasm": [{"data": data, "hash": wrong}]})
    assert "manifest.wasm[0]" in message
    assert "sha256 mismatch" in message
    assert wrong in message and good in message
    assert issubclass(ef.HashMismatchError, ef.ManifestError)
    # The right hash, in any case, loads.
    with ef.Plugin({"wasm": [{"data": data, "hash": good.upper()}]}, functions=[]) as plugin:
        assert_alive(plugin)


def test_wrong_hash_on_file(wasm_path):
    wrong = "0" * 64
    message = raises(ef.HashMismatchError, ef.Plugin, {"wasm": [{"path": str(wasm_path("kernel")), "hash": wrong}]})
    assert wrong in message


@pytest.mark.parametrize(
    "manifest, where",
    [
        ({"wasm": [{"data": b"\0asm\1\0\0\0"}], "bogus_key": 1}, "bogus_key"),
        ({"wasm": [{"data": b"\0asm\1\0\0\0"}], "memory": {"max_pagez": 1}}, "max_pagez"),
        ({"wasm": [{"data": b"\0asm\1\0\0\0", "nmae": "x"}]}, "nmae"),
        ({"wasm": [{"path": "x.wasm", "url": "http://127.0.0.1/x"}]}, "exactly one of"),
    ],
)
def test_unknown_manifest_key(manifest, where):
    message = raises(ef.ManifestError, ef.Plugin, manifest)
    assert where in message


def test_unknown_manifest_key_in_json():
    message = raises(ef.ManifestError, ef.Plugin, '{"wasm": [{"data": "AGFzbQEAAAA="}], "timeout": 5}')
    assert "'timeout'" in message
    assert "timeout_ms" in message  # the allowed keys are listed


def test_invalid_json_manifest():
    message = raises(ef.ManifestError, ef.Plugin, '{"wasm": [}')
    assert "invalid JSON" in message


def test_missing_file(tmp_path):
    missing = tmp_path / "nope.wasm"
    message = raises(ef.ManifestError, ef.Plugin, str(missing))
    assert "no such file" in message and "nope.wasm" in message
    message = raises(ef.ManifestError, ef.Plugin, {"wasm": [{"path": str(missing)}]})
    assert "manifest.wasm[0].path" in message and "nope.wasm" in message


def test_unsupported_source_type():
    message = raises(ef.ManifestError, ef.Plugin, 12345)
    assert "int" in message


def test_bad_manifest_values():
    data = b"\0asm\1\0\0\0"
    message = raises(ef.ManifestError, ef.Plugin, {"wasm": [{"data": data}], "timeout_ms": -1})
    assert "manifest.timeout_ms" in message
    message = raises(ef.ManifestError, ef.Plugin, {"wasm": [{"data": data}], "memory": {"max_pages": -1}})
    assert "max_pages" in message
    message = raises(ef.ManifestError, ef.Plugin, {"wasm": [{"data": data}], "config": {"a": 1}})
    assert "manifest.config" in message
    message = raises(ef.ManifestError, ef.Plugin, {"wasm": []})
    assert "manifest.wasm" in message


# ------------------------------------------------------------------------------------------------
# Linking
# ------------------------------------------------------------------------------------------------


def test_unknown_env_import(plugin_wasm):
    message = raises(ef.LinkError, ef.Plugin, plugin_wasm("bad/unknown_import"), functions=[])
    assert "extism:host/env" in message
    assert "does_not_exist" in message


def test_unknown_module(plugin_wasm):
    message = raises(ef.LinkError, ef.Plugin, plugin_wasm("bad/unknown_module"), functions=[])
    assert "nope::f" in message
    assert "no host function" in message


def test_wrong_import_signature(plugin_wasm):
    message = raises(ef.LinkError, ef.Plugin, plugin_wasm("bad/wrong_signature"), functions=[])
    assert "extism:host/env::alloc" in message
    assert "(i32) -> (i32)" in message
    assert "(i64) -> (i64)" in message


def test_wasi_import_without_wasi(plugin_wasm):
    message = raises(ef.LinkError, ef.Plugin, plugin_wasm("bad/wasi_needed"), functions=[])
    assert "wasi_snapshot_preview1::fd_write" in message
    assert "WASI is not enabled" in message


def test_missing_user_host_function(plugin_wasm):
    message = raises(ef.LinkError, ef.Plugin, plugin_wasm("host_user"), functions=[])
    assert "extism:host/user::" in message
    assert "no host function" in message


def test_user_host_function_wrong_signature(plugin_wasm):
    fns = host_user_functions(greet)
    fns[1] = Function("extism:host/user", "add_i32", [ValType.I64, ValType.I64], [ValType.I64], lambda *a: None)
    message = raises(ef.LinkError, ef.Plugin, plugin_wasm("host_user"), functions=fns)
    assert "extism:host/user::add_i32" in message
    assert "(i32, i32) -> (i32)" in message
    assert "(i64, i64) -> (i64)" in message


def test_user_host_function_wrong_namespace(plugin_wasm):
    f = Function("other:ns", "shout", [ValType.I64], [ValType.I64], greet)
    message = raises(ef.LinkError, ef.Plugin, plugin_wasm("host_ns"), functions=[f])
    assert "my:namespace::shout" in message


def test_host_function_in_reserved_namespace(plugin_wasm):
    f = Function("extism:host/env", "alloc", [ValType.I64], [ValType.I64], greet)
    message = raises(ef.LinkError, ef.Plugin, plugin_wasm("kernel"), functions=[f])
    assert "extism:host/env" in message and "reserved" in message


def test_host_function_unsupported_type(plugin_wasm):
    f = Function(None, "v", [ValType.V128], [], greet)
    message = raises(ef.LinkError, ef.Plugin, plugin_wasm("kernel"), functions=[f])
    assert "V128" in message


def test_non_function_import():
    wat = '(module (import "extism:host/env" "memory" (memory 1)))'
    message = raises(ef.LinkError, ef.Plugin, wat, functions=[])
    assert "extism:host/env::memory" in message
    assert "not a function" in message


LIB_WAT = '(module (func (export "add42") (param i64) (result i64) (i64.add (local.get 0) (i64.const 42))))'
MAIN_IMPORTS_MISSING = """
(module
  (import "lib" "does_not_exist" (func $f (param i64) (result i64)))
  (func (export "run") (result i32) (drop (call $f (i64.const 0))) (i32.const 0)))
"""


def test_import_missing_from_dependency_module():
    # Regression: this used to be a plain Error from Plugin() at instantiation time.
    manifest = {"wasm": [{"data": LIB_WAT.encode(), "name": "lib"}, {"data": MAIN_IMPORTS_MISSING.encode()}]}
    message = raises(ef.LinkError, ef.Plugin, manifest, functions=[])
    assert "lib" in message and "does_not_exist" in message


def test_allowed_paths_without_wasi_is_ignored_with_a_warning(plugin_wasm, tmp_path, caplog):
    """As in the official runtime, allowed_paths without WASI is ignored (nothing to mount into),
    even a host directory that does not exist; extism_fast says so on its logger."""
    manifest = {"wasm": [{"data": plugin_wasm("misc")}],
                "allowed_paths": {str(tmp_path): "/data", str(tmp_path / "missing"): "/m"}}
    with caplog.at_level(logging.WARNING, logger="extism_fast"):
        with ef.Plugin(manifest, functions=[]) as plugin:
            assert plugin.call("ok") == b"ok"
    warnings = [r.getMessage() for r in caplog.records if r.name == "extism_fast"]
    assert warnings == ["manifest.allowed_paths is ignored: WASI is not enabled (pass wasi=True "
                        "to mount directories)"]


def test_allowed_paths_missing_host_dir(plugin_wasm, tmp_path):
    missing = tmp_path / "missing"
    manifest = {"wasm": [{"data": plugin_wasm("wasi_files")}], "allowed_paths": {str(missing): "/data"}}
    message = raises(ef.ManifestError, ef.Plugin, manifest, wasi=True, functions=[])
    assert str(missing) in message


# ------------------------------------------------------------------------------------------------
# Calls: missing or wrongly typed exports, traps, return codes, plugin errors
# ------------------------------------------------------------------------------------------------


def test_missing_function(kernel):
    message = raises(ef.FunctionNotFoundError, kernel.call, "does_not_exist")
    assert "'does_not_exist'" in message
    assert isinstance(ef.FunctionNotFoundError("x"), LookupError)
    assert kernel.function_exists("does_not_exist") is False
    assert_alive(kernel)


def test_missing_function_lists_callable_exports_and_the_closest(kernel):
    message = raises(ef.FunctionNotFoundError, kernel.call, "echoo")
    assert message.startswith("plugin has no function named 'echoo'; did you mean 'echo'?")
    assert "its callable exports: " in message and "'echo'" in message
    assert "\n" not in message  # one line: the CLI prints the first
    message = raises(ef.FunctionNotFoundError, kernel.call_many, "ech", [b"x"])
    assert "did you mean 'echo'?" in message
    message = raises(ef.FunctionNotFoundError, kernel.call, "zzzzzzzz")
    assert "did you mean" not in message and "its callable exports: " in message
    assert_alive(kernel)


def test_missing_function_message_caps_the_list():
    names = [f"fn_{i:02}" for i in range(25)]
    message = str(ef.errors.function_not_found("fn_1", names))
    assert "'fn_00'" in message and "'fn_19'" in message and "'fn_20'" not in message
    assert message.endswith("and 5 more)")
    assert "(it exports no callable function)" in str(ef.errors.function_not_found("f", []))


def test_function_name_not_a_str(kernel):
    with pytest.raises(TypeError):
        kernel.call(b"echo")
    assert_alive(kernel)


@pytest.mark.parametrize("export, signature", [("takes_param", "(i32) -> i32"), ("returns_i64", "() -> i64")])
def test_export_with_wrong_type(plugin_wasm, export, signature):
    with ef.Plugin(plugin_wasm("bad/bad_export_types"), functions=[]) as plugin:
        message = raises(ef.CallError, plugin.call, export)
        assert f"'{export}'" in message
        assert "take no parameters and return i32 or nothing" in message
        assert plugin.call("good") == b""


def test_trap(kernel):
    with pytest.raises(ef.TrapError) as info:
        kernel.call("trap")
    message = str(info.value)
    assert "'trap'" in message
    assert "unreachable" in message
    assert message.index("unreachable") < message.index("backtrace")  # the cause leads
    assert_alive(kernel)
    with pytest.raises(ef.TrapError):
        kernel.call("trap")
    assert_alive(kernel)


def test_wasm_out_of_bounds_memory_access_traps():
    wat = '(module (memory 1) (func (export "oob") (result i32) (i32.load (i32.const 70000))))'
    with ef.Plugin(wat, functions=[]) as plugin:
        message = raises(ef.TrapError, plugin.call, "oob")
        assert "out of bounds" in message
        message = raises(ef.TrapError, plugin.call, "oob")


def test_return_1(kernel):
    with pytest.raises(ef.CallError) as info:
        kernel.call("return_1")
    assert type(info.value) is ef.CallError
    assert "exit code 1" in str(info.value)
    assert "'return_1'" in str(info.value)
    assert_alive(kernel)


def test_error_set_then_return_0(kernel):
    message = raises(ef.PluginError, kernel.call, "error_set_return0")
    assert message == "boom from plugin"
    assert_alive(kernel)


def test_error_set_then_return_1(kernel):
    message = raises(ef.PluginError, kernel.call, "error_set_return1")
    assert message == "failed with 1"
    assert_alive(kernel)


# ------------------------------------------------------------------------------------------------
# Bad offsets: never crash, trap with the function named, or answer 0 / ignore
# ------------------------------------------------------------------------------------------------

LOADS_AND_STORES = [("load_u8", 1), ("load_u64", 8), ("store_u8", 1), ("store_u64", 8)]
BAD_INPUT_INDEXES = [
    ("input_load_u8", [16, 17, 2**32, 2**63 - 1, 2**64 - 1]),
    ("input_load_u64", [9, 15, 16, 2**32, 2**63 - 1, 2**64 - 8, 2**64 - 1]),
]
BAD_OUTPUT_RANGES = [
    (0, 1), (1, 1), (7, 2), ("first", 17), ("end", 1), (2**32, 8), (2**63 - 1, 1),
    (2**64 - 1, 2), ("first", 2**64 - 1), (2**64 - 8, 16), ("first+8", 2**63),
]


def _bad_offsets(end, width):
    """Every offset whose `width` bytes are not all inside kernel memory."""
    return SWEEP + [end - width + 1, end, end + 1, end + 4096]


@pytest.mark.parametrize("function, width", LOADS_AND_STORES)
def test_bad_offsets_answer_as_the_official_kernel(kernel, end, function, width):
    """Loads outside kernel memory give 0 and stores do nothing (the official kernel is built with
    bounds checking); nothing outside kernel memory is touched."""
    for offset in _bad_offsets(end, width):
        out = kernel.call(f"probe_{function}", q(offset, 0xFF))
        assert out == (q(0) if function.startswith("load") else b"ok"), (offset, out)
    assert_alive(kernel)


@pytest.mark.parametrize("function, width", LOADS_AND_STORES)
def test_strict_bad_offsets_trap(strict_kernel, end, function, width):
    for offset in _bad_offsets(end, width):
        with pytest.raises(ef.TrapError) as info:
            strict_kernel.call(f"probe_{function}", q(offset, 0))
        rest = str(info.value).replace(f"probe_{function}", "")
        assert function in rest, (offset, str(info.value))
        assert str(offset) in rest
        assert "outside kernel memory" in rest
    assert_alive(strict_kernel)


@pytest.mark.parametrize("function, bad", BAD_INPUT_INDEXES)
def test_input_reads_past_the_end_give_0(kernel, function, bad):
    for index in bad:
        assert kernel.call(f"probe_{function}", q(index, 0)) == q(0), index
    assert kernel.call("probe_input_load_u8", b"") == q(0)  # no input at all
    assert_alive(kernel)


@pytest.mark.parametrize("function, bad", BAD_INPUT_INDEXES)
def test_strict_bad_input_indexes_trap(strict_kernel, function, bad):
    for index in bad:
        with pytest.raises(ef.TrapError) as info:
            strict_kernel.call(f"probe_{function}", q(index, 0))
        rest = str(info.value).replace(f"probe_{function}", "")
        assert function in rest, (index, str(info.value))
        assert str(index) in rest
    assert_alive(strict_kernel)


def test_strict_input_load_with_empty_input_traps(strict_kernel):
    # no input at all: index 0 is already past it (the probe reads its argument first -> trap)
    with pytest.raises(ef.TrapError, match="input_load_u64"):
        strict_kernel.call("probe_input_load_u8", b"")
    assert_alive(strict_kernel)


def _output_range(first, end, offset):
    return {"first": first, "end": end, "first+8": first + 8}.get(offset, offset)


@pytest.mark.parametrize("offset, length", BAD_OUTPUT_RANGES)
def test_bad_output_set_is_ignored(kernel, first, end, offset, length):
    assert kernel.call("probe_output_set", q(_output_range(first, end, offset), length)) == b""
    assert_alive(kernel)


@pytest.mark.parametrize("offset, length", BAD_OUTPUT_RANGES)
def test_strict_bad_output_set_traps(strict_kernel, first, end, offset, length):
    offset = _output_range(first, end, offset)
    with pytest.raises(ef.TrapError) as info:
        strict_kernel.call("probe_output_set", q(offset, length))
    rest = str(info.value).replace("probe_output_set", "")
    assert "output_set" in rest
    assert str(offset) in rest
    assert_alive(strict_kernel)


@pytest.mark.parametrize("export", ["probe_length", "probe_length_unsafe"])
def test_bad_offsets_length_is_0(kernel, first, end, export):
    for offset in SWEEP + [first + 1, first + 8, end, end + 8]:
        assert u64(kernel.call(export, q(offset, 0))) == 0, offset
    assert_alive(kernel)


def test_bad_offsets_free_is_ignored(kernel, first, end):
    for offset in SWEEP + [first + 1, first + 8, end, end + 8]:
        assert kernel.call("probe_free", q(offset, 0)) == b"ok", offset
    assert_alive(kernel)


@pytest.mark.parametrize(
    "export, function",
    [
        ("probe_error_set", "error_set"),
        ("probe_config_get", "config_get"),
        ("probe_var_get", "var_get"),
        ("probe_var_set", "var_set"),
        ("probe_log_info", "log"),
        ("probe_http_request", "http_request"),
    ],
)
@pytest.mark.parametrize("strict", [False, True])
def test_bad_offsets_to_host_functions(plugin_wasm, first, end, export, function, strict):
    """A non-block offset traps naming the function, yields 0, or (error_set inside kernel memory,
    not strict) fails the call as the official runtime does; never a crash."""
    with ef.Plugin(plugin_wasm("host_probes"), functions=[], config={"k": "v"}, strict=strict) as plugin:
        for offset in SWEEP + [first + 1, first + 8, end, end + 8]:
            try:
                out = plugin.call(export, q(offset, offset))
            except ef.CapabilityError as exc:  # http_request is refused before looking at offsets
                assert function == "http_request" and "not allowed" in str(exc)
            except ef.PluginError:
                assert function == "error_set" and not strict and first <= offset < end, offset
            except ef.TrapError as exc:
                rest = str(exc).replace(export, "")
                assert function in rest, (offset, str(exc))
                assert str(offset) in rest
            else:
                assert out in (b"ok", q(0)), (offset, out)
            assert plugin.call("ok") == b"ok"


def test_var_set_with_bad_value_offset_keeps_store(plugin_wasm, first):
    with ef.Plugin(plugin_wasm("host_probes"), functions=[]) as plugin:
        # key = the input block itself (16 bytes), value = garbage
        with pytest.raises(ef.TrapError, match="var_set"):
            plugin.call("probe_var_set", q(first, 2**40))
        assert plugin.call("ok") == b"ok"


# ------------------------------------------------------------------------------------------------
# Memory limits
# ------------------------------------------------------------------------------------------------


def test_alloc_past_the_memory_budget_fails_the_call(plugin_wasm):
    # The kernel memory may grow by max_pages (2) pages, the plugin's memory not growing.
    manifest = {"wasm": [{"data": plugin_wasm("kernel")}], "memory": {"max_pages": 2}}
    with ef.Plugin(manifest, functions=[]) as plugin:
        message = raises(ef.MemoryLimitError, plugin.call, "alloc_n", q(3 * 65536))
        assert "alloc: cannot allocate 196608 bytes" in message and "max_pages = 2 pages" in message
        assert u64(plugin.call("alloc_n", q(2 * 65536))) != 0  # 1 -> 3 pages
        assert u64(plugin.call("alloc_n", q(2**64 - 1))) == 0  # past any kernel: the official null
        assert u64(plugin.call("alloc_n", q(1024))) != 0
        assert_alive(plugin)


BIG = 64 << 20


@pytest.fixture(scope="module")
def big_input():
    return bytes(range(256)) * (BIG // 256)


@pytest.mark.parametrize("export", ["echo", "echo_copy"])
def test_64_mib_input_round_trip(kernel, big_input, export):
    out = kernel.call(export, big_input)
    assert len(out) == BIG
    assert out == big_input
    assert_alive(kernel)


def test_64_mib_input_over_the_limit(plugin_wasm, big_input):
    manifest = {"wasm": [{"data": plugin_wasm("kernel")}], "memory": {"max_pages": 16}}
    with ef.Plugin(manifest, functions=[]) as plugin:
        message = raises(ef.MemoryLimitError, plugin.call, "echo", big_input)
        assert "'echo'" in message
        assert "max_pages = 16 pages" in message
        assert_alive(plugin)
        # Half the budget fits.
        half = big_input[: 16 * 65536 // 2 - 64]
        assert plugin.call("echo", half) == half


@pytest.mark.parametrize("strict", [False, True])
def test_echo_copy_over_the_limit(plugin_wasm, strict):
    # The input fits in the budget (the kernel grows 1 -> 3 pages) but its copy does not: the
    # alloc fails the call, as the official limiter's "oom", strict or not.
    manifest = {"wasm": [{"data": plugin_wasm("kernel")}], "memory": {"max_pages": 3}}
    data = b"z" * 150_000
    with ef.Plugin(manifest, functions=[], strict=strict) as plugin:
        message = raises(ef.MemoryLimitError, plugin.call, "echo_copy", data)
        assert "alloc: cannot allocate 150000 bytes" in message and "max_pages = 3 pages" in message
        assert_alive(plugin)


def test_wasm_memory_grow_past_max_pages_is_refused(plugin_wasm):
    # 3 pages of growth after instantiation, over the calls (the initial page is not counted).
    manifest = {"wasm": [{"data": plugin_wasm("misc")}], "memory": {"max_pages": 3}}
    with ef.Plugin(manifest, functions=[]) as plugin:
        assert u64(plugin.call("grow", q(2))) == 1  # 1 -> 3 pages: 1 left
        assert u64(plugin.call("grow", q(2))) == 2**64 - 1  # past the budget: memory.grow answers -1
        assert u64(plugin.call("grow", q(1))) == 3
        assert u64(plugin.call("grow", q(1))) == 2**64 - 1
        assert u64(plugin.call("pages")) == 4
        assert plugin.call("ok") == b"ok"


def test_max_pages_equal_to_the_initial_memory_runs():
    """As the official runtime: main's memories must start within max_pages; a plugin whose memory
    starts at exactly max_pages runs; one page less fails at the first call (instantiation), every time."""
    wat = '(module (memory 2) (func (export "run") (result i32) (i32.const 0)))'
    with ef.Plugin({"wasm": [{"data": wat.encode()}], "memory": {"max_pages": 2}}, functions=[]) as plugin:
        assert plugin.call("run") == b""
    with ef.Plugin({"wasm": [{"data": wat.encode()}], "memory": {"max_pages": 1}}, functions=[]) as plugin:
        for _ in range(2):
            with pytest.raises(ef.MemoryLimitError, match=r"manifest.memory.max_pages = 1"):
                plugin.call("run")


def test_module_memory_min_over_max_pages():
    wat = '(module (memory 4) (func (export "run") (result i32) (i32.const 0)))'
    plugin = ef.Plugin({"wasm": [{"data": wat.encode()}], "memory": {"max_pages": 2}}, functions=[])
    message = raises(ef.MemoryLimitError, plugin.call, "run")
    assert "memory" in message and "max_pages = 2" in message
    assert raises(ef.MemoryLimitError, plugin.call_many, "run", [b""])


def test_config_value_larger_than_kernel_memory(plugin_wasm):
    manifest = {
        "wasm": [{"data": plugin_wasm("host")}],
        "memory": {"max_pages": 2},  # two kernel pages
        "config": {"big": "x" * 200_000, "small": "ok"},
    }
    with ef.Plugin(manifest, functions=[]) as plugin:
        message = raises(ef.MemoryLimitError, plugin.call, "config_get", "big")
        assert "config_get" in message
        assert "200000" in message  # the size that did not fit
        assert plugin.call("config_get", "small") == b"ok"


# A child process: kernel.wat's alloc_blocks(count, 1) under max_pages = 256 (16 MiB), with the
# peak resident memory (VmHWM) before and after, then a small call on the same plugin.
TINY_BLOCKS_CHILD = """
import json, struct, sys
import extism_fast as ef

def peak():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))

def blocks(count):
    return struct.pack("<QQ", count, 1)

manifest = {"wasm": [{"path": sys.argv[1]}], "memory": {"max_pages": 256}}
with ef.Plugin(manifest, functions=[]) as plugin:
    plugin.call("alloc_blocks", blocks(1000))
    before = peak()
    try:
        outcome = ["returned", plugin.call("alloc_blocks", blocks(4 << 20)).hex()]
    except ef.Error as exc:
        outcome = [type(exc).__name__, str(exc)]
    grown = peak() - before
    after = struct.unpack("<Q", plugin.call("alloc_blocks", blocks(1000)))[0]
print(json.dumps({"outcome": outcome, "grown": grown, "after": after}))
"""


def test_tiny_blocks_are_bounded_by_max_pages(plugin_wasm, tmp_path):
    """Issue 18: each kernel block's bookkeeping is host memory, so it counts against max_pages.
    Millions of 1-byte blocks under a 16 MiB cap fail the call with the limit's error (the official
    runtime keeps block headers in kernel memory, and its limiter fails the growth), the process
    grows by about the cap at most (it grew by 64 MiB here), and the plugin serves the next call
    with its block table back to its allowance."""
    path = tmp_path / "kernel.wasm"
    path.write_bytes(plugin_wasm("kernel"))
    # Under AddressSanitizer (tests/test_sanitizers.py), freed memory waits in its quarantine: off.
    env = dict(os.environ, ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=0")
    proc = subprocess.run([sys.executable, "-c", TINY_BLOCKS_CHILD, str(path)], capture_output=True, text=True,
                          timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    kind, message = result["outcome"]
    assert kind == "MemoryLimitError", result
    assert "'alloc_blocks'" in message and "alloc" in message and "memory.max_pages" in message
    # The cap, and room for a realloc's copy of the table while it grows (a sanitized build's
    # realloc cannot move pages): 12 MiB here, 26 MiB sanitized.
    assert result["grown"] < 2 * (16 << 20), result
    assert result["after"] == 1000  # the next call starts afresh, its table back to its allowance


def test_many_blocks_fit_the_default_limit(kernel):
    """Block bookkeeping counts against the limit only past a small allowance: a modest number of
    blocks works at the default limit, call after call."""
    for _ in range(3):
        assert u64(kernel.call("alloc_blocks", q(200_000, 8))) == 200_000
    assert_alive(kernel)


ERROR_THEN_TRAP = """
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "error_set" (func $error_set (param i64)))
  ;; error_set("E!") then unreachable (what AssemblyScript's abort does)
  (func (export "abort") (result i32) (local $o i64)
    (local.set $o (call $alloc (i64.const 2)))
    (call $store_u8 (local.get $o) (i32.const 0x45))
    (call $store_u8 (i64.add (local.get $o) (i64.const 1)) (i32.const 0x21))
    (call $error_set (local.get $o))
    unreachable)
  (func (export "ok") (result i32) (i32.const 0)))
"""


def test_error_set_then_trap_reports_the_plugin_text():
    with ef.Plugin(ERROR_THEN_TRAP, functions=[]) as plugin:
        assert raises(ef.PluginError, plugin.call, "abort") == "E!"
        assert plugin.call("ok") == b""


# ------------------------------------------------------------------------------------------------
# Vars and capabilities
# ------------------------------------------------------------------------------------------------


def test_var_set_past_max_var_bytes(plugin_wasm):
    manifest = {"wasm": [{"data": plugin_wasm("host")}], "memory": {"max_var_bytes": 100}}
    with ef.Plugin(manifest, functions=[]) as plugin:
        assert plugin.call("var_set_from_input", "keep=me") == b"ok"
        message = raises(ef.MemoryLimitError, plugin.call, "var_set_from_input", b"k=" + b"x" * 200)
        assert "variable store is full" in message
        assert "max_var_bytes" in message and "100" in message
        assert "'var_set_from_input'" in message
        assert plugin.call("var_get", "keep") == b"me"
        assert plugin.call("var_get", "k") == b"<none>"


def test_vars_disabled(plugin_wasm):
    manifest = {"wasm": [{"data": plugin_wasm("host")}], "memory": {"max_var_bytes": 0}}
    with ef.Plugin(manifest, functions=[]) as plugin:
        message = raises(ef.CapabilityError, plugin.call, "var_set_from_input", "a=1")
        assert "vars are disabled" in message
        assert "max_var_bytes" in message
        assert plugin.call("var_get", "a") == b"<none>"
        # Deleting is refused too, as the official runtime (its var_set checks the cap first).
        assert "vars are disabled" in raises(ef.CapabilityError, plugin.call, "var_delete", "a")
        assert plugin.call("var_get", "a") == b"<none>"


def test_http_denied(plugin_wasm):
    with ef.Plugin(plugin_wasm("host"), functions=[]) as plugin:
        message = raises(ef.CapabilityError, plugin.call, "http_denied")
        assert "HTTP is not allowed" in message
        assert "host '127.0.0.1'" in message  # names the refused host...
        assert "manifest.allowed_hosts" in message  # ...and how to grant it
        assert plugin.call("var_get", "x") == b"<none>"


# ------------------------------------------------------------------------------------------------
# Host functions that fail
# ------------------------------------------------------------------------------------------------


def test_host_function_raises(plugin_wasm):
    calls = []

    def hello(cp, params, results):
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("no greeting today")
        greet(cp, params, results)

    with ef.Plugin(plugin_wasm("host_user"), functions=host_user_functions(hello)) as plugin:
        message = raises(ef.HostFunctionError, plugin.call, "call_hello", "Bob")
        assert "ValueError" in message
        assert "no greeting today" in message
        assert "hello_world" in message
        assert plugin.call("call_hello", "Bob") == b"Hello, Bob!"


def test_host_function_leaves_result_unset(plugin_wasm):
    """A result left unset passes 0, as the official SDK does (tests/test_compat.py)."""
    def hello(cp, params, results):
        pass

    with ef.Plugin(plugin_wasm("host_user"), functions=host_user_functions(hello)) as plugin:
        assert plugin.call("call_hello", "Bob") == b"<none>"
        assert plugin.call("call_nothing") == b"ok"


class _Unprintable(Exception):
    def __str__(self):
        raise RuntimeError("no text")


def test_host_function_exception_whose_str_raises_still_fails_the_call(plugin_wasm):
    def hello(cp, params, results):
        raise _Unprintable()

    with ef.Plugin(plugin_wasm("host_user"), functions=host_user_functions(hello)) as plugin:
        message = raises(ef.HostFunctionError, plugin.call, "call_hello", "Bob")
        assert "_Unprintable" in message and "could not be formatted" in message
        assert plugin.call("call_nothing") == b"ok"


def test_host_function_keyboard_interrupt_reaches_the_caller(plugin_wasm):
    # Ctrl-C inside a host function stops the call and is re-raised to the caller as itself
    # (not turned into an Error), and the plugin stays usable.
    def hello(cp, params, results):
        raise KeyboardInterrupt("stop")

    with ef.Plugin(plugin_wasm("host_user"), functions=host_user_functions(hello)) as plugin:
        with pytest.raises(KeyboardInterrupt, match="stop"):
            plugin.call("call_hello", "Bob")
        with pytest.raises(KeyboardInterrupt, match="stop"):
            plugin.call_many("call_hello", ["Bob"])
        assert plugin.call("call_nothing") == b"ok"


@pytest.mark.parametrize("a, b, expected", [(-5, 2, -3), (2**31 - 1, 1, -(2**31)), (-1, 0, -1)])
def test_host_function_negative_i32_result(plugin_wasm, a, b, expected):
    # Regression: `<int>(value & 0xFFFFFFFF)` raised OverflowError for negative results.
    with ef.Plugin(plugin_wasm("host_user"), functions=host_user_functions(greet)) as plugin:
        out = plugin.call("call_add", struct.pack("<ii", a, b))
        assert struct.unpack("<i", out)[0] == expected


def test_host_function_negative_i64_result(plugin_wasm):
    # Regression: `<int64_t>(value & 0xFFFF_FFFF_FFFF_FFFF)` raised OverflowError for -1.
    def hello(cp, params, results):
        results[0].value = -1  # not a block: the plugin sees length 0 and outputs nothing

    with ef.Plugin(plugin_wasm("host_user"), functions=host_user_functions(hello)) as plugin:
        assert plugin.call("call_hello", "x") == b""


# ------------------------------------------------------------------------------------------------
# Closed plugins and re-entrant calls
# ------------------------------------------------------------------------------------------------


def test_closed_plugin(kernel_compiled):
    plugin = ef.Plugin(kernel_compiled)
    assert_alive(plugin)
    plugin.close()
    message = raises(ef.Error, plugin.call, "echo", b"x")
    assert "closed" in message
    plugin.close()  # closing twice is harmless
    # A missing function is still reported as such.
    raises(ef.FunctionNotFoundError, plugin.call, "nope")
    # The compiled plugin is unaffected.
    with ef.Plugin(kernel_compiled) as other:
        assert_alive(other)


def test_closed_by_context_manager(kernel_compiled):
    with ef.Plugin(kernel_compiled) as plugin:
        assert_alive(plugin)
    assert "closed" in raises(ef.Error, plugin.call, "echo", b"x")


def test_reentrant_call(plugin_wasm):
    box = {}

    def hello(cp, params, results):
        try:
            box["plugin"].call("call_nothing")
        except ef.Error as exc:
            box["inner"] = exc
            raise
        greet(cp, params, results)

    with ef.Plugin(plugin_wasm("host_user"), functions=host_user_functions(hello)) as plugin:
        box["plugin"] = plugin
        message = raises(ef.HostFunctionError, plugin.call, "call_hello", "x")
        assert "already running a call" in message
        assert type(box["inner"]) is ef.Error
        assert plugin.call("call_nothing") == b"ok"


def test_close_during_call_is_refused(plugin_wasm):
    box = {}

    def hello(cp, params, results):
        box["plugin"].close()

    with ef.Plugin(plugin_wasm("host_user"), functions=host_user_functions(hello)) as plugin:
        box["plugin"] = plugin
        message = raises(ef.HostFunctionError, plugin.call, "call_hello", "x")
        assert "cannot close a plugin while one of its calls is running" in message
        assert plugin.call("call_nothing") == b"ok"


def test_input_of_wrong_type(kernel):
    with pytest.raises(TypeError):
        kernel.call("echo", 12345)
    assert_alive(kernel)


def test_parse_error_propagates(kernel):
    with pytest.raises(UnicodeDecodeError):
        kernel.call("echo", b"\xff", parse=lambda b: b.decode("utf-8"))
    assert_alive(kernel)


# ------------------------------------------------------------------------------------------------
# Startup functions and WASI exits
# ------------------------------------------------------------------------------------------------

TRAPPING_INIT = """
(module
  (func (export "_initialize") unreachable)
  (func (export "run") (result i32) (i32.const 0)))
"""


def test_trapping_initialize_fails_the_call():
    with ef.Plugin(TRAPPING_INIT, functions=[]) as plugin:
        with pytest.raises(ef.CallError) as info:
            plugin.call("run")
        assert "unreachable" in str(info.value)


def test_trapping_initialize_is_named():
    # Regression: the message used to say "plugin function 'run' trapped" only.
    with ef.Plugin(TRAPPING_INIT, functions=[]) as plugin:
        with pytest.raises(ef.CallError, match="_initialize"):
            plugin.call("run")


WRONG_TYPE_INIT = """
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (global $n (mut i64) (i64.const 0))
  (func (export "_initialize") (param i64 i64 i64 i64)
    (global.set $n (i64.add (global.get $n) (i64.const 1))))
  (func (export "get") (result i32) (local $o i64)
    (local.set $o (call $alloc (i64.const 8)))
    (call $store_u64 (local.get $o) (global.get $n))
    (call $output_set (local.get $o) (i64.const 8))
    (i32.const 0)))
"""


def test_initialize_with_wrong_type_does_not_crash_the_host():
    # Regression: `_initialize` was called whatever its type; 3+ parameters aborted the process.
    # Run in a child process: the bug aborts the interpreter.
    script = textwrap.dedent(
        f"""
        import extism_fast as ef
        try:
            p = ef.Plugin({WRONG_TYPE_INIT!r}, functions=[])
            print("OUT", p.call("get").hex())
        except ef.Error as exc:
            print("ERR", type(exc).__name__, exc)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    # docs/ABI.md ("A call", step 3): only an `_initialize` of type () -> () is a startup function;
    # skipping it, or refusing the plugin / the call with an Error naming it, is acceptable;
    # crashing is not.
    out = proc.stdout.strip()
    assert out == "OUT 0000000000000000" or (out.startswith("ERR ") and "_initialize" in out), out


PROC_EXIT = """
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "extism:host/env" "input_load_u8" (func $in (param i64) (result i32)))
  (memory (export "memory") 1)
  ;; exits with the code in input[0] after setting the output "x"
  (func (export "run") (result i32) (local $o i64)
    (local.set $o (call $alloc (i64.const 1)))
    (call $store_u8 (local.get $o) (i32.const 0x78))
    (call $output_set (local.get $o) (i64.const 1))
    (call $exit (call $in (i64.const 0)))
    (i32.const 0)))
"""


def test_wasi_proc_exit_nonzero():
    with ef.Plugin(PROC_EXIT, wasi=True, functions=[]) as plugin:
        message = raises(ef.CallError, plugin.call, "run", b"\x03")
        assert "exited with code 3" in message
        assert "'run'" in message
        # proc_exit(0) is a success with the output set before it.
        assert plugin.call("run", b"\x00") == b"x"


def test_every_error_class_is_an_error():
    for name in ef.errors.__all__:
        assert issubclass(getattr(ef, name), ef.Error)
    assert issubclass(ef.TimeoutError, ef.CallError)
    assert issubclass(ef.CancelledError, ef.CallError)
    assert issubclass(ef.MemoryLimitError, ef.CallError)


def test_recursion_error_from_deep_host_plugin_nesting_fails_every_call(plugin_wasm):
    """Host function -> another plugin's call -> its host function -> ... until Python's recursion
    limit: the innermost host function fails with RecursionError, and every call on the way out
    fails with HostFunctionError; none is reported as a success."""
    wasm = plugin_wasm("host_user")
    plugins = []

    def hello(cp, params, results):
        depth = len(nesting)
        nesting.append(depth)
        try:
            inner = plugins[depth + 1].call("call_hello", "x")
        finally:
            nesting.pop()
        cp.return_string(results[0], inner.decode())

    nesting = []
    plugins.extend(ef.Plugin(wasm, functions=host_user_functions(hello)) for _ in range(400))
    old_limit = sys.getrecursionlimit()
    sys.setrecursionlimit(200)
    try:
        with pytest.raises(ef.HostFunctionError) as info:
            plugins[0].call("call_hello", "x")
    finally:
        sys.setrecursionlimit(old_limit)
    assert "RecursionError" in str(info.value)  # the innermost failure, carried out by every level
    assert plugins[0].call("call_nothing") == b"ok"


# ------------------------------------------------------------------------------------------------
# A config value that is not a string: the key is named, the value never shown
# ------------------------------------------------------------------------------------------------

_WAT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples", "count_vowels.wat")


@pytest.mark.parametrize("make, where", [
    (lambda wat, v: ef.Manifest([ef.WasmData(wat)], config={"api_key": v}), "manifest.config['api_key']"),
    (lambda wat, v: ef.Plugin({"wasm": [{"data": wat}], "config": {"api_key": v}}), "manifest.config['api_key']"),
    (lambda wat, v: ef.Plugin(json.dumps({"wasm": [{"path": _WAT}], "config": {"api_key": v}})),
     "manifest.config['api_key']"),
    (lambda wat, v: ef.Plugin(wat, config={"api_key": v}), "config['api_key']"),
    (lambda wat, v: ef.CompiledPlugin(wat, config={"api_key": v}), "config['api_key']"),
])
@pytest.mark.parametrize("value, kind", [(31337, "int"), (["s3cr3t"], "list"), ({"s3cr3t": "x"}, "dict")])
def test_config_value_not_a_string_names_the_key_not_the_value(make, where, value, kind):
    wat = open(_WAT, "rb").read()
    message = raises(ef.ManifestError, make, wat, value)
    assert message == f"{where} must be a string, got a value of type {kind}"
    assert "31337" not in message and "s3cr3t" not in message
