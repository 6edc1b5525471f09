"""Capabilities and limits: WASI and its files (allowed_paths), stdio, environment and arguments,
fuel budgets, max_pages over kernel + plugin memory, and no secrets (config values, host paths)
in error messages."""

from __future__ import annotations

import logging
import os
import struct
import subprocess
import sys
import textwrap

import pytest
import wasmtime

import extism_fast as ef

SPIN = """
(module
  (import "extism:host/env" "input_load_u64" (func $load (param i64) (result i64)))
  (func (export "spin") (result i32) (local $i i64) (local $n i64)
    (local.set $n (call $load (i64.const 0)))
    (loop $l
      (local.set $i (i64.add (local.get $i) (i64.const 1)))
      (br_if $l (i64.lt_u (local.get $i) (local.get $n))))
    (i32.const 0))
  (func (export "ok") (result i32) (i32.const 0)))
"""


def q(n: int) -> bytes:
    return struct.pack("<Q", n)


# ---- fuel ----

def test_fuel_budget_is_enforced_and_the_plugin_recovers():
    with ef.Plugin(SPIN, fuel=50_000) as plugin:
        plugin.call("spin", q(10))  # well within the budget
        with pytest.raises(ef.FuelExhaustedError, match=r"ran out of fuel .*50000 instructions per call"):
            plugin.call("spin", q(1_000_000))
        assert plugin.call("ok") == b""
        plugin.call("spin", q(10))  # the budget is per call: refilled


def test_fuel_is_per_call_not_per_plugin():
    with ef.Plugin(SPIN, fuel=200_000) as plugin:
        for _ in range(20):  # 20 calls of ~40k instructions each: 800k in all
            plugin.call("spin", q(10_000))


def test_no_fuel_means_unmetered():
    with ef.Plugin(SPIN) as plugin:
        plugin.call("spin", q(5_000_000))


@pytest.mark.parametrize("fuel", [0, -1, 1.5, True, "10", 1 << 64])
def test_invalid_fuel_is_refused(fuel):
    with pytest.raises(ef.ManifestError, match="fuel must be an integer from 1 to 18446744073709551615"):
        ef.Plugin(SPIN, fuel=fuel)


def test_largest_limits_reach_c_without_overflow():
    """The top of every integer range the manifest accepts converts into C and runs: u64 fuel,
    u64 timeout_ms (clamped in ns, saturating deadline), u32 max_pages, u64 byte caps."""
    top = (1 << 64) - 1
    with ef.Plugin(SPIN, fuel=top) as plugin:
        plugin.call("spin", q(1000))
    manifest = {"wasm": [{"data": SPIN.encode()}], "timeout_ms": top,
                "memory": {"max_pages": (1 << 32) - 1, "max_var_bytes": top, "max_http_response_bytes": top}}
    with ef.Plugin(manifest, functions=[]) as plugin:
        plugin.call("spin", q(20_000_000))  # ~20 ms, epoch ticks every 1 ms: a wrapped deadline would time it out
        assert plugin.call("ok") == b""


@pytest.mark.parametrize("memory, field", [({"max_pages": 1 << 47}, "max_pages"),
                                           ({"max_var_bytes": 1 << 64}, "max_var_bytes"),
                                           ({"max_http_response_bytes": 1 << 64}, "max_http_response_bytes")])
def test_out_of_range_limits_are_manifest_errors_not_overflow(memory, field):
    with pytest.raises(ef.ManifestError, match=rf"manifest\.memory\.{field} must be an integer from 0 to "):
        ef.Plugin({"wasm": [{"data": SPIN.encode()}], "memory": memory}, functions=[])
    with pytest.raises(ef.ManifestError, match=r"manifest\.timeout_ms must be at most 18446744073709551615"):
        ef.Plugin({"wasm": [{"data": SPIN.encode()}], "timeout_ms": 1 << 64}, functions=[])


def test_compiled_plugin_carries_its_fuel_budget():
    compiled = ef.CompiledPlugin(SPIN, functions=[], fuel=30_000)
    with ef.Plugin(compiled) as plugin:
        with pytest.raises(ef.FuelExhaustedError):
            plugin.call("spin", q(1_000_000))


# ---- WASI stdio ----

def test_wasi_stdio_log_captures_stdout_to_the_logger(plugin_wasm, caplog):
    with caplog.at_level(logging.INFO, logger="extism_fast"):
        with ef.Plugin(plugin_wasm("bad/wasi_needed"), wasi=True, wasi_stdio="log") as plugin:
            assert plugin.call("run") == b"ok"
            plugin_id = str(plugin.id)
    records = [r for r in caplog.records if getattr(r, "wasi_stream", None) == "stdout"]
    assert [r.getMessage() for r in records] == ["hello from wasi"]
    assert records[0].plugin_id == plugin_id
    assert records[0].levelno == logging.INFO


def _run_child(code: str, **env: str) -> subprocess.CompletedProcess:
    child_env = {k: v for k, v in os.environ.items() if k != "EXTISM_ENABLE_WASI_OUTPUT"}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          timeout=60, env={**child_env, **env})


@pytest.mark.parametrize("env, shown", [({}, False), ({"EXTISM_ENABLE_WASI_OUTPUT": "1"}, True),
                                        ({"EXTISM_ENABLE_WASI_OUTPUT": ""}, True)])
def test_wasi_stdio_default_follows_EXTISM_ENABLE_WASI_OUTPUT(wasm_path, env, shown):
    """As in every official host: WASI output is discarded unless the variable is set (to any
    value, even empty); wasi_stdio="inherit" / "discard" still choose explicitly."""
    child = _run_child(f"""
        import extism_fast as ef
        p = ef.Plugin({str(wasm_path("bad/wasi_needed"))!r}, wasi=True)
        assert p.call("run") == b"ok"
    """, **env)
    assert child.returncode == 0, child.stderr
    assert child.stdout == (b"hello from wasi\n" if shown else b"")


def test_wasi_stdio_inherit_writes_to_stdout(wasm_path):
    child = _run_child(f"""
        import extism_fast as ef
        p = ef.Plugin({str(wasm_path("bad/wasi_needed"))!r}, wasi=True, wasi_stdio="inherit")
        assert p.call("run") == b"ok"
    """)
    assert child.returncode == 0, child.stderr
    assert child.stdout == b"hello from wasi\n"


def test_wasi_stdio_discard_writes_nothing(wasm_path):
    child = _run_child(f"""
        import extism_fast as ef
        p = ef.Plugin({str(wasm_path("bad/wasi_needed"))!r}, wasi=True, wasi_stdio="discard")
        assert p.call("run") == b"ok"
    """, EXTISM_ENABLE_WASI_OUTPUT="1")
    assert child.returncode == 0, child.stderr
    assert child.stdout == b""


def test_unknown_wasi_stdio_mode_is_refused(plugin_wasm):
    with pytest.raises(ef.ManifestError, match="wasi_stdio must be one of inherit, log, discard"):
        ef.Plugin(plugin_wasm("bad/wasi_needed"), wasi=True, wasi_stdio="file")


# ---- memory: max_pages is one budget for the growth of all the memories (the plugin's and the kernel's) ----

def test_kernel_and_plugin_memory_growth_share_the_budget(plugin_wasm):
    # The kernel grows by a page for a big input; the plugin's memory may then grow by 3, no more.
    manifest = {"wasm": [{"data": plugin_wasm("misc")}], "memory": {"max_pages": 4}}
    with ef.Plugin(manifest, functions=[]) as plugin:
        assert plugin.call("ok", b"x" * 70_000) == b"ok"
        assert struct.unpack("<q", plugin.call("grow", q(3)))[0] == 1   # 1 -> 4 pages: the 3 left
        assert struct.unpack("<q", plugin.call("grow", q(1)))[0] == -1  # nothing left: refused
        assert struct.unpack("<q", plugin.call("pages"))[0] == 4
        assert plugin.call("ok", b"x" * 70_000) == b"ok"  # the kernel has the room already
        with pytest.raises(ef.MemoryLimitError, match=r"max_pages = 4 pages of growth .*, 0 left"):
            plugin.call("ok", b"x" * 140_000)  # the kernel would have to grow
        assert plugin.call("ok", b"x" * 1000) == b"ok"


def test_kernel_growth_past_the_wasm_memories_cap(plugin_wasm):
    """The kernel memory, larger than the plugin's, grows while the wasm memories are capped at
    the plugin's size + what is left (memory_budget.c lifts the cap for it), and is charged."""
    manifest = {"wasm": [{"data": plugin_wasm("misc")}], "memory": {"max_pages": 10}}
    with ef.Plugin(manifest, functions=[]) as plugin:
        assert plugin.call("ok", b"x" * 400_000) == b"ok"  # kernel 1 -> 7 pages: 4 left
        assert plugin.call("ok", b"x" * 500_000) == b"ok"  # 7 -> 8: 3 left
        assert struct.unpack("<q", plugin.call("grow", q(4)))[0] == -1
        assert struct.unpack("<q", plugin.call("grow", q(3)))[0] == 1
        assert struct.unpack("<q", plugin.call("grow", q(1)))[0] == -1
    # The same from inside a call: the plugin's alloc grows the kernel memory past the cap.
    manifest = {"wasm": [{"data": plugin_wasm("kernel")}], "memory": {"max_pages": 10}}
    with ef.Plugin(manifest, functions=[]) as plugin:
        assert struct.unpack("<Q", plugin.call("alloc_n", q(5 * 65536)))[0] != 0  # 1 -> 6 pages: 5 left
        assert struct.unpack("<Q", plugin.call("alloc_n", q(7 * 65536)))[0] != 0  # 6 -> 8: 3 left
        with pytest.raises(ef.MemoryLimitError, match=r"alloc: cannot allocate .*max_pages = 10 pages.*, 3 left"):
            plugin.call("alloc_n", q(11 * 65536))


def test_a_smaller_memory_growing_past_the_budget_fails_the_call_after_it():
    """Only the largest memory is capped exactly during a call: a smaller one (a linked module's)
    that grows past the budget fails the call when it ends, and what it grew stays charged.
    (The official runtime traps at the growth instead: README, Differences.)"""
    manifest = {"wasm": [{"data": LIB_GROWS, "name": "lib"}, {"data": MAIN_CALLS_LIB}], "memory": {"max_pages": 2}}
    with ef.Plugin(manifest, functions=[]) as plugin:
        with pytest.raises(ef.MemoryLimitError, match=r"grew past their budget .*max_pages = 2 pages.*, 0 left"):
            plugin.call("lib3")
        assert plugin.call("nothing") == b""
        assert plugin.call("lib1") == b""  # lib's memory is the largest now, capped at its size: -1


def test_host_function_alloc_past_the_budget_names_it(plugin_wasm):
    """CurrentPlugin.alloc and return_bytes take from the same budget, and say so when refused."""
    from test_abi import user_functions
    seen = []

    def body(cp):
        cp.alloc(65536)  # the kernel grows 1 -> 2 pages: 1 left
        for attempt in (lambda: cp.alloc(3 * 65536), lambda: cp.return_bytes(ef.Val(ef.ValType.I64, 0), b"x" * 3 * 65536)):
            with pytest.raises(ef.MemoryLimitError) as info:
                attempt()
            seen.append(str(info.value))

    manifest = {"wasm": [{"data": plugin_wasm("host_user")}], "memory": {"max_pages": 2}}
    with ef.Plugin(manifest, functions=user_functions(nothing=body)) as plugin:
        assert plugin.call("call_nothing") == b"ok"
    assert len(seen) == 2
    for message in seen:
        assert message.startswith("cannot allocate 196608 bytes: memory.max_pages = 2 pages of growth"), message
        assert message.endswith(", 1 left"), message


@pytest.mark.parametrize("memory, body", [("1 2", "(if (i32.eq (memory.grow (i32.const 1)) (i32.const -1)) (then unreachable))"),
                                          ("2 2", "")])
def test_a_memory_reaches_its_declared_maximum_under_a_budget(memory, body):
    """The official limiter refuses a memory its own declared maximum ("oom": growing 1 -> 2 of
    (memory 1 2), or starting (memory 2 2)) whenever max_pages is set; here both run (README,
    Differences)."""
    wat = f'(module (memory (export "memory") {memory}) (func (export "run") (result i32) {body} (i32.const 0)))'
    with ef.Plugin({"wasm": [{"data": wat.encode()}], "memory": {"max_pages": 10}}, functions=[]) as plugin:
        assert plugin.call("run") == b""


LIB_GROWS = b'''(module (memory (export "memory") 1)
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))'''
MAIN_CALLS_LIB = b'''(module (import "lib" "grow" (func $grow (param i32) (result i32)))
  (memory (export "memory") 2)
  (func (export "lib3") (result i32) (drop (call $grow (i32.const 3))) (i32.const 0))
  (func (export "lib1") (result i32) (drop (call $grow (i32.const 1))) (i32.const 0))
  (func (export "nothing") (result i32) (i32.const 0)))'''


def _one_memory_plugin(memory: str) -> bytes:
    return f'(module {memory} (func (export "f") (result i32) i32.const 0))'.encode()


@pytest.mark.parametrize("memories", ['(memory (export "memory") 5)', "(memory 5)",
                                      '(memory (export "memory") 2) (memory 3)'])
def test_main_memories_over_max_pages_are_refused_before_instantiation(memories):
    """The memories main defines, together, exported or not (those read from its memory section,
    kernel_c/wasm_sections.c), are checked against max_pages before anything is instantiated.
    The message is ours (the official SDK says "oom"; test_compat.py has the outcome)."""
    manifest = {"wasm": [{"data": _one_memory_plugin(memories)}], "memory": {"max_pages": 4}}
    with ef.Plugin(manifest, functions=[]) as plugin:
        for _ in range(2):
            with pytest.raises(ef.MemoryLimitError, match=r"the memories module 'main' defines start at 327680 bytes "
                                                          r"together, over the limit of 262144 bytes.*max_pages = 4"):
                plugin.call("f")


@pytest.mark.parametrize("lib", ['(module (memory (export "memory") 5))', "(module (memory (export \"small\") 1) (memory 6))"])
def test_linked_module_memories_do_not_count_at_instantiation(lib):
    """As the official runtime, which makes the linked modules before it sets its limiter: their
    memories (and main's import of one) start whatever their size."""
    manifest = {"wasm": [{"data": bytes(wasmtime.wat2wasm(lib)), "name": "lib"},
                         {"data": _one_memory_plugin('(import "lib" "memory" (memory 5))' if "5" in lib else "")}],
                "memory": {"max_pages": 4}}
    with ef.Plugin(manifest, functions=[]) as plugin:
        assert plugin.call("f") == b""


def test_memory_minimum_at_max_pages_starts():
    manifest = {"wasm": [{"data": _one_memory_plugin('(memory (export "memory") 4)')}], "memory": {"max_pages": 4}}
    with ef.Plugin(manifest, functions=[]) as plugin:
        assert plugin.call("f") == b""


# ---- no secrets in messages ----

def test_config_values_do_not_appear_in_errors(plugin_wasm):
    secret = "s3cr3t-value-123"
    manifest = {"wasm": [{"data": plugin_wasm("kernel")}], "config": {"api_key": secret}}
    with ef.Plugin(manifest, functions=[], strict=True) as plugin:
        for call in (lambda: plugin.call("trap"), lambda: plugin.call("nope"),
                     lambda: plugin.call("probe_load_u64", q(2**40))):
            with pytest.raises(ef.Error) as info:
                call()
            assert secret not in str(info.value)


def test_missing_mount_names_the_path_but_not_config(tmp_path, plugin_wasm):
    missing = tmp_path / "does-not-exist"
    manifest = {"wasm": [{"data": plugin_wasm("bad/wasi_needed")}], "config": {"token": "tok-999"},
                "allowed_paths": {str(missing): "/data"}}
    with pytest.raises(ef.ManifestError) as info:
        ef.Plugin(manifest, wasi=True)
    assert str(missing) in str(info.value)
    assert "tok-999" not in str(info.value)


# ---- WASI environment and arguments (Plugin(wasi_env=..., wasi_args=...), as the Go SDK) ----

def test_wasi_env_and_args_reach_the_plugin(plugin_wasm):
    with ef.Plugin(plugin_wasm("wasi_env"), wasi=True, wasi_env={"K": "V", "SPACE": "a b"},
                   wasi_args=["prog", "x"]) as plugin:
        assert plugin.call("environ") == b"K=V\x00SPACE=a b\x00"
        assert plugin.call("args") == b"prog\x00x\x00"


def test_wasi_env_and_args_are_empty_by_default(plugin_wasm, monkeypatch):
    """Deny by default: nothing of the host's environment (nor the manifest config) reaches WASI."""
    monkeypatch.setenv("HOST_SECRET", "s3cret")
    with ef.Plugin({"wasm": [{"data": plugin_wasm("wasi_env")}], "config": {"c": "1"}}, wasi=True) as plugin:
        assert plugin.call("environ") == b""
        assert plugin.call("args") == b""


def test_wasi_env_from_a_compiled_plugin(plugin_wasm):
    compiled = ef.CompiledPlugin(plugin_wasm("wasi_env"), wasi=True)
    with ef.Plugin(compiled, wasi_env={"A": "1"}) as plugin:
        assert plugin.call("environ") == b"A=1\x00"


def test_wasi_env_without_wasi_is_ignored_with_a_warning(plugin_wasm, caplog):
    with caplog.at_level(logging.WARNING, logger="extism_fast"):
        ef.Plugin(plugin_wasm("kernel"), wasi_env={"K": "V"}, wasi_args=["p"]).close()
    assert any("wasi_env/wasi_args are ignored" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("kwargs, error, text", [
    ({"wasi_env": {"": "v"}}, ef.ManifestError, "invalid variable name ''"),
    ({"wasi_env": {"A=B": "v"}}, ef.ManifestError, "invalid variable name 'A=B'"),
    ({"wasi_env": {"K": "sec\x00ret"}}, ef.ManifestError, "wasi_env['K']"),
    ({"wasi_env": {"K": 5}}, ef.ManifestError, "got int"),
    ({"wasi_env": {"K": "\ud800secret"}}, ef.ManifestError, "lone surrogate"),
    ({"wasi_env": [("K", "V")]}, TypeError, "wasi_env must be a dict"),
    ({"wasi_args": "prog"}, TypeError, "wasi_args must be a list"),
    ({"wasi_args": ["ok", b"x"]}, ef.ManifestError, "wasi_args[1]"),
])
def test_bad_wasi_env_and_args_are_refused_without_showing_values(plugin_wasm, kwargs, error, text):
    with pytest.raises(error) as info:
        ef.Plugin(plugin_wasm("wasi_env"), wasi=True, **kwargs)
    assert text in str(info.value)
    assert "secret" not in str(info.value)


# ---- WASI itself, and files (allowed_paths) ----

def test_wasi_needed(plugin_wasm, capfd):
    data = plugin_wasm("bad/wasi_needed")
    with pytest.raises(ef.LinkError, match="fd_write"):
        ef.Plugin(data, functions=[])
    with ef.Plugin(data, wasi=True, functions=[], wasi_stdio="inherit") as plugin:
        assert plugin.call("run") == b"ok"
    assert "hello from wasi" in capfd.readouterr().out


@pytest.fixture
def dirs(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_bytes(b"hello file")
    (tmp_path / "secret.txt").write_bytes(b"top secret")
    return tmp_path, data


def _wasi_files(plugin_wasm, allowed_paths, file="a.txt", dir="/data"):
    manifest = {"wasm": [{"data": plugin_wasm("wasi_files")}], "config": {"dir": dir, "file": file}}
    if allowed_paths is not None:
        manifest["allowed_paths"] = allowed_paths
    return ef.Plugin(manifest, wasi=True, functions=[])


def test_allowed_paths_read_and_write(plugin_wasm, dirs):
    _, data = dirs
    with _wasi_files(plugin_wasm, {str(data): "/data"}) as plugin:
        assert plugin.call("read") == b"hello file"
        assert plugin.call("write", b"new content \x00\xff") == b"ok"
        assert (data / "a.txt").read_bytes() == b"new content \x00\xff"
        assert plugin.call("read") == b"new content \x00\xff"
    with _wasi_files(plugin_wasm, {str(data): "/data"}, file="created.txt") as plugin:
        assert plugin.call("write", b"brand new") == b"ok"
    assert (data / "created.txt").read_bytes() == b"brand new"


def test_allowed_paths_read_only(plugin_wasm, dirs):
    _, data = dirs
    with _wasi_files(plugin_wasm, {"ro:" + str(data): "/data"}) as plugin:
        assert plugin.call("read") == b"hello file"
        with pytest.raises(ef.PluginError, match="open failed"):
            plugin.call("write", b"overwritten")
        assert (data / "a.txt").read_bytes() == b"hello file"
        assert plugin.call("read") == b"hello file"
    with _wasi_files(plugin_wasm, {"ro:" + str(data): "/data"}, file="new.txt") as plugin:
        with pytest.raises(ef.PluginError, match="open failed"):
            plugin.call("write", b"x")
    assert not (data / "new.txt").exists()


def test_no_mapping_no_file(plugin_wasm, dirs):
    _, data = dirs
    with _wasi_files(plugin_wasm, None) as plugin:
        with pytest.raises(ef.PluginError, match="no preopened directory /data"):
            plugin.call("read")
        with pytest.raises(ef.PluginError, match="no preopened directory /data"):
            plugin.call("write", b"x")
    assert (data / "a.txt").read_bytes() == b"hello file"


def test_mapping_does_not_expose_the_parent(plugin_wasm, dirs):
    root, data = dirs
    with _wasi_files(plugin_wasm, {str(data): "/data"}, file="../secret.txt") as plugin:
        with pytest.raises(ef.PluginError, match="open failed"):
            plugin.call("read")
    with _wasi_files(plugin_wasm, {str(data): "/data"}, file="/etc/passwd") as plugin:
        with pytest.raises(ef.PluginError, match="open failed"):
            plugin.call("read")
    # Mapped explicitly, the same file is visible.
    with _wasi_files(plugin_wasm, {str(data): "/data", str(root): "/root"}, file="secret.txt", dir="/root") as plugin:
        assert plugin.call("read") == b"top secret"


def test_missing_file_in_mapping(plugin_wasm, dirs):
    _, data = dirs
    with _wasi_files(plugin_wasm, {str(data): "/data"}, file="missing.txt") as plugin:
        with pytest.raises(ef.PluginError, match=r"open failed: errno 44$"):  # WASI ENOENT
            plugin.call("read")
