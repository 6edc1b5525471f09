"""bench/breakdown.py's charging of perf samples (the profiling itself runs in
`python -m bench.breakdown`, never in the tests: it needs perf and minutes)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import breakdown  # noqa: E402

#: A perf map as wasmtime writes it: a kernel module (it has function 0), then a plugin whose
#: functions are numbered after its imports, at another address.
PERF_MAP = """\
7f0000001000 c2 wasm[0]::function[0]
7f00000010e0 c2 wasm[0]::function[1]
7f00000011c0 be wasm[0]::array_to_wasm_trampoline[0]
7f0000001280 6b signatures[0]::wasm_to_array_trampoline
7f0000001300 61 wasmtime_builtin_new_epoch
7f0000900000 588 wasm[0]::function[13]
7f00009005a0 2ca wasm[0]::function[14]
7f0000900870 b8 wasm[0]::array_to_wasm_trampoline[14]
7f0000900930 2b wasmtime_builtin_memory_fill
"""
KERNEL_FN, PLUGIN_FN, TRAMPOLINE = 0x7F0000001010, 0x7F0000900010, 0x7F0000001290
BUILTIN_FILL = 0x7F0000900940
WASMTIME = "/x/wasmtime/linux-x86_64/_libwasmtime.so"
RUNTIME = "/x/extism_fast/_runtime.cpython-311-x86_64-linux-gnu.so"
LIBC = "/usr/lib/x86_64-linux-gnu/libc.so.6"


def segments():
    return breakdown.jit_segments(breakdown.read_perf_map(PERF_MAP))


def test_a_perf_map_splits_into_modules_and_the_one_with_function_0_is_the_kernel():
    kernel, plugin = segments()
    assert (kernel.start, kernel.end, kernel.kernel) == (0x7F0000001000, 0x7F0000001361, True)
    assert (plugin.start, plugin.end, plugin.kernel) == (0x7F0000900000, 0x7F000090095B, False)


def classify(*frames):
    return breakdown.classify(list(frames), segments())


def test_wasm_code_is_charged_to_its_module():
    assert classify((PLUGIN_FN, "wasm[0]::function[13]", "[JIT] tid 1")) == "plugin"
    assert classify((KERNEL_FN, "wasm[0]::function[0]", "[JIT] tid 1"),
                    (PLUGIN_FN, "wasm[0]::function[13]", "[JIT] tid 1")) == "kernel (wasm)"
    assert classify((TRAMPOLINE, "signatures[0]::wasm_to_array_trampoline", "[JIT] tid 1"),
                    (PLUGIN_FN, "wasm[0]::function[13]", "[JIT] tid 1")) == "wasmtime"


def test_a_libcall_and_the_libc_it_runs_are_charged_to_the_wasm_that_made_it():
    """memory.fill in the plugin: memset <- libcalls::memory_fill <- builtin stub <- plugin code."""
    assert classify((1, "__memset_avx512_unaligned_erms", LIBC),
                    (2, "wasmtime::runtime::vm::libcalls::raw::memory_fill", WASMTIME),
                    (BUILTIN_FILL, "wasmtime_builtin_memory_fill", "[JIT] tid 1"),
                    (PLUGIN_FN, "wasm[0]::function[13]", "[JIT] tid 1")) == "plugin"


def test_host_code_is_charged_by_its_library_and_libc_to_its_caller():
    assert classify((1, "kernel_alloc", RUNTIME), (TRAMPOLINE, "x", "[JIT] tid 1")) == "SDK"
    assert classify((1, "malloc", LIBC), (2, "vars_set", RUNTIME)) == "SDK"
    assert classify((1, "call_unchecked_raw", WASMTIME)) == "wasmtime"
    assert classify((1, "_PyEval_EvalFrameDefault", "/py/lib/libpython3.11.so.1.0")) == "Python"
    assert classify((1, "extism_plugin_call", "/py/site-packages/extism_sys/libextism_sys.so")) == "SDK"
    assert classify((1, "finish_task_switch", "[kernel.kallsyms]"), (PLUGIN_FN, "f", "[JIT]")) == "OS"
    assert classify((1, "malloc", LIBC)) == "OS"  # libc with no known caller


def test_perf_script_output_parses_into_stacks_leaf_first():
    text = ("\t    7f0000900010 wasm[0]::function[13] (/tmp/perf-1.map)\n"
            "\t         103578b call_unchecked_raw (/x/_libwasmtime.so)\n\n"
            "\tffffffff813aecd3 finish_task_switch.isra.0 ([kernel.kallsyms])\n")
    assert breakdown.parse_perf_script(text) == [
        [(0x7F0000900010, "wasm[0]::function[13]", "/tmp/perf-1.map"), (0x103578B, "call_unchecked_raw", "/x/_libwasmtime.so")],
        [(0xFFFFFFFF813AECD3, "finish_task_switch.isra.0", "[kernel.kallsyms]")],
    ]
    shares = breakdown.shares(breakdown.parse_perf_script(text), segments())
    assert (shares["plugin"], shares["OS"], shares["samples"]) == (0.5, 0.5, 2)


def test_the_summary_states_each_sdks_plugin_time_and_host_time():
    fast = {"us": 4.0, "plugin": 0.75} | {c: 0.0 for c in breakdown.CATEGORIES[1:]}
    official = {"us": 30.0, "plugin": 0.1} | {c: 0.0 for c in breakdown.CATEGORIES[1:]}
    line = breakdown.plugin_summary("P", [("small call 14 B", "extism_fast", fast), ("small call 14 B", "extism", official)])
    assert line == ("- P: small call 14 B: plugin code 3.00 µs (extism_fast) and 3.00 µs (extism), host and kernel "
                    "1.00 µs against 27.00 µs: 7.5x in all.")


def test_without_perf_it_says_what_is_missing(monkeypatch):
    monkeypatch.setattr(breakdown.shutil, "which", lambda name: None)
    with pytest.raises(SystemExit, match="needs `perf`"):
        breakdown.main([])
