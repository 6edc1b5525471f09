"""The Plugin API end to end: sources, inputs and outputs, instances and their state, startup
functions, timeouts and cancellation, threads, host functions and the C PDK kitchen sink.
Multi-module manifests are tested in test_linking.py, WASI and its files in test_capabilities.py,
logging in test_logging.py."""

from __future__ import annotations

import base64
import json
import logging
import pathlib
import re
import struct
import threading
import time
import uuid

import pytest
from conftest import PLUGINS_DIR, host_user_functions, q, u64, u64s

import extism_fast as ef
from extism_fast import Function, Manifest, ValType, WasmData, WasmFile
from extism_fast.logs import TRACE


def assert_echo(plugin, data=b"round trip \x00\xff"):
    assert plugin.call("echo", data) == data


# ------------------------------------------------------------------------------------------------
# Sources of every kind
# ------------------------------------------------------------------------------------------------

KERNEL_WAT_PATH = PLUGINS_DIR / "kernel.wat"


def _sources(plugin_wasm, wasm_path):
    data = plugin_wasm("kernel")
    path = wasm_path("kernel")
    b64 = base64.b64encode(data).decode()
    wat_text = KERNEL_WAT_PATH.read_text()
    return {
        "wasm bytes": data,
        "wasm bytearray": bytearray(data),
        "wasm memoryview": memoryview(data),
        "WAT str": wat_text,
        "WAT bytes": wat_text.encode(),
        ".wasm path str": str(path),
        ".wasm pathlib": pathlib.Path(path),
        ".wat path str": str(KERNEL_WAT_PATH),
        ".wat pathlib": KERNEL_WAT_PATH,
        "JSON str (data)": json.dumps({"wasm": [{"data": b64}]}),
        "JSON bytes (data)": json.dumps({"wasm": [{"data": b64}]}).encode(),
        "JSON str (path)": json.dumps({"wasm": [{"path": str(path)}]}),
        "dict (bytes data)": {"wasm": [{"data": data}]},
        "dict (base64 data)": {"wasm": [{"data": b64}]},
        "dict (path)": {"wasm": [{"path": str(path)}]},
        "Manifest (WasmData)": Manifest([WasmData(data)]),
        "Manifest (WasmFile)": Manifest([WasmFile(path)]),
        "WasmData": WasmData(data),
        "CompiledPlugin": ef.CompiledPlugin(data, functions=[]),
    }


SOURCE_KINDS = [
    "wasm bytes", "wasm bytearray", "wasm memoryview", "WAT str", "WAT bytes", ".wasm path str",
    ".wasm pathlib", ".wat path str", ".wat pathlib", "JSON str (data)", "JSON bytes (data)",
    "JSON str (path)", "dict (bytes data)", "dict (base64 data)", "dict (path)",
    "Manifest (WasmData)", "Manifest (WasmFile)", "WasmData", "CompiledPlugin",
]


@pytest.mark.parametrize("kind", SOURCE_KINDS)
def test_every_source_kind(plugin_wasm, wasm_path, kind):
    source = _sources(plugin_wasm, wasm_path)[kind]
    with ef.Plugin(source, functions=[]) as plugin:
        assert_echo(plugin)
        assert plugin.call("output_set") == b"hello"
        assert plugin.function_exists("load_store_u64")


def test_url_source(plugin_wasm):
    """A {"url": ...} source, served from 127.0.0.1, with its hash checked."""
    import hashlib

    from conftest import serve_bytes

    data = plugin_wasm("kernel")
    requests = []
    with serve_bytes(data, requests) as base:
        url = f"{base}/kernel.wasm"
        source = {"url": url, "headers": {"X-Token": "t0k"}, "hash": hashlib.sha256(data).hexdigest()}
        with ef.Plugin({"wasm": [source]}, functions=[]) as plugin:
            assert_echo(plugin)
        assert requests == [("/kernel.wasm", "t0k")]
        with pytest.raises(ef.HashMismatchError):
            ef.Plugin({"wasm": [{"url": url, "hash": "0" * 64}]}, functions=[])


def test_compiled_plugin_makes_independent_instances(plugin_wasm):
    compiled = ef.CompiledPlugin(plugin_wasm("host"), functions=[])
    assert compiled.function_exists("var_roundtrip")
    assert not compiled.function_exists("nope")
    with ef.Plugin(compiled) as a, ef.Plugin(compiled) as b:
        assert a.compiled_plugin is compiled and b.compiled_plugin is compiled
        assert [u64(a.call("var_roundtrip")) for _ in range(2)] == [1, 2]
        assert u64(b.call("var_roundtrip")) == 1
        assert a.id != b.id


# ------------------------------------------------------------------------------------------------
# Inputs and outputs
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data, expected",
    [
        ("héllo wörld ✓", "héllo wörld ✓".encode()),
        ("", b""),
        (b"bytes\x00\xff", b"bytes\x00\xff"),
        (bytearray(b"a bytearray"), b"a bytearray"),
        (memoryview(b"xxa memoryviewxx")[2:-2], b"a memoryview"),
        (memoryview(bytearray(b"writable")), b"writable"),
        (b"", b""),
    ],
)
def test_input_types(kernel, data, expected):
    assert kernel.call("echo", data) == expected
    assert kernel.call("input_load_u64", data) == expected
    assert u64(kernel.call("input_length", data)) == len(expected)


def test_default_input_is_empty(kernel):
    assert u64(kernel.call("input_length")) == 0


def test_parse_default_is_bytes(kernel):
    out = kernel.call("echo", "x")
    assert type(out) is bytes and out == b"x"


def test_parse_none_gives_a_kernel_buffer(kernel):
    out = kernel.call("echo", b"view me", parse=None)
    assert isinstance(out, ef.KernelBuffer)
    assert out.tobytes() == b"view me"
    assert out.readonly
    kernel.call("echo", b"another call")
    with pytest.raises(ValueError):  # a view is valid until the plugin's next call
        out.tobytes()


def test_parse_callable(kernel):
    assert kernel.call("echo", '{"a": [1, 2]}', parse=json.loads) == {"a": [1, 2]}
    assert kernel.call("echo", "abc", parse=lambda b: b.decode().upper()) == "ABC"
    assert kernel.call("echo", "", parse=len) == 0


def test_function_exists(kernel, plugin_wasm):
    for name in ("echo", "void_fn", "trap", "probe_load_u8"):
        assert kernel.function_exists(name), name
    for name in ("nope", "", "memory", "ECHO"):
        assert not kernel.function_exists(name), name
    with ef.Plugin(plugin_wasm("bad/bad_export_types"), functions=[]) as plugin:
        # as the official SDK: only exports that can be called as plugin functions
        assert not plugin.function_exists("takes_param")
        assert plugin.function_exists("good")


def test_context_manager_and_close(kernel_compiled):
    with ef.Plugin(kernel_compiled) as plugin:
        assert_echo(plugin)
    with pytest.raises(ef.Error, match="closed"):
        plugin.call("echo", b"x")
    other = ef.Plugin(kernel_compiled)
    other.close()
    with pytest.raises(ef.Error, match="closed"):
        other.call("echo", b"x")


def test_context_manager_closes_on_exception(kernel_compiled):
    with pytest.raises(RuntimeError):
        with ef.Plugin(kernel_compiled) as plugin:
            raise RuntimeError("boom")
    with pytest.raises(ef.Error, match="closed"):
        plugin.call("echo", b"x")


def test_id_is_a_uuid(kernel_compiled):
    with ef.Plugin(kernel_compiled) as a, ef.Plugin(kernel_compiled) as b:
        assert isinstance(a.id, uuid.UUID)
        assert a.id.version == 4
        assert a.id == a.id
        assert a.id != b.id
        a.call("echo", b"x")
        assert a.id == uuid.UUID(str(a.id))


def test_host_context(plugin_wasm):
    seen = []

    def hello(cp, params, results):
        seen.append(cp.host_context())
        cp.return_string(results[0], "ctx")

    with ef.Plugin(plugin_wasm("host_user"), functions=host_user_functions(hello)) as plugin:
        marker = object()
        assert plugin.call("call_hello", "x", host_context=marker) == b"ctx"
        plugin.call("call_hello", "x")
    assert seen == [marker, None]


# ------------------------------------------------------------------------------------------------
# config and vars
# ------------------------------------------------------------------------------------------------


def test_config_is_merged_over_the_manifest(plugin_wasm):
    manifest = {"wasm": [{"data": plugin_wasm("host")}], "config": {"a": "1", "b": "2"}}
    with ef.Plugin(manifest, functions=[], config={"b": "3", "c": "4"}) as plugin:
        assert plugin.call("config_get", "a") == b"1"
        assert plugin.call("config_get", "b") == b"3"
        assert plugin.call("config_get", "c") == b"4"
    with ef.Plugin(manifest, functions=[]) as plugin:
        assert plugin.call("config_get", "b") == b"2"
        assert plugin.call("config_get", "c") == b"<none>"


def test_config_with_compiled_plugin(plugin_wasm):
    compiled = ef.CompiledPlugin({"wasm": [{"data": plugin_wasm("host")}], "config": {"a": "1"}}, functions=[])
    with ef.Plugin(compiled, config={"a": "override", "z": "26"}) as plugin:
        assert plugin.call("config_get", "a") == b"override"
        assert plugin.call("config_get", "z") == b"26"
    with ef.Plugin(compiled) as plugin:
        assert plugin.call("config_get", "a") == b"1"
        assert plugin.call("config_get", "z") == b"<none>"


def test_config_on_compiled_plugin(plugin_wasm):
    compiled = ef.CompiledPlugin(plugin_wasm("host"), functions=[], config={"k": "v"})
    with ef.Plugin(compiled) as plugin:
        assert plugin.call("config_get", "k") == b"v"


def test_vars_persist_per_instance(plugin_wasm):
    host = plugin_wasm("host")
    with ef.Plugin(host, functions=[]) as a:
        assert [u64(a.call("var_roundtrip")) for _ in range(3)] == [1, 2, 3]
        assert a.call("var_set_from_input", "name=value") == b"ok"
        assert a.call("var_get", "name") == b"value"
        with ef.Plugin(host, functions=[]) as b:
            assert b.call("var_get", "name") == b"<none>"
            assert u64(b.call("var_roundtrip")) == 1
        assert u64(a.call("var_roundtrip")) == 4
        # A failed call does not lose vars either.
        with pytest.raises(ef.PluginError):
            a.call("var_set_from_input", "no equals sign")
        assert a.call("var_get", "name") == b"value"


# ------------------------------------------------------------------------------------------------
# Startup functions and _start
# ------------------------------------------------------------------------------------------------


def test_initialize_runs_once_per_instance(plugin_wasm):
    compiled = ef.CompiledPlugin(plugin_wasm("init"), functions=[])
    with ef.Plugin(compiled) as plugin:
        assert u64s(plugin.call("get")) == (42, 1)
        assert [u64(plugin.call("bump")) for _ in range(3)] == [43, 44, 45]
        assert u64s(plugin.call("get")) == (45, 1)
    with ef.Plugin(compiled) as plugin:
        assert u64(plugin.call("bump")) == 43  # its own _initialize, before its first call
        assert u64s(plugin.call("get")) == (43, 1)


def test_initialize_not_rerun_after_a_failed_call():
    wat = (PLUGINS_DIR / "init.wat").read_text().rstrip()
    wat = wat[:-1] + '(func (export "trap") (result i32) unreachable))'
    with ef.Plugin(wat, functions=[]) as plugin:
        with pytest.raises(ef.TrapError):
            plugin.call("trap")  # the first call: _initialize runs, then the export traps
        assert u64s(plugin.call("get")) == (42, 1)
        with pytest.raises(ef.FunctionNotFoundError):
            plugin.call("missing")
        assert u64s(plugin.call("get")) == (42, 1)


def test_wasm_call_ctors_runs_once(plugin_wasm):
    with ef.Plugin(plugin_wasm("ctors"), functions=[]) as plugin:
        assert u64s(plugin.call("get")) == (7, 1)
        assert [u64(plugin.call("bump")) for _ in range(2)] == [8, 9]
        assert u64s(plugin.call("get")) == (9, 1)


def test_initialize_and_ctors_only_ctors_run(plugin_wasm):
    with ef.Plugin(plugin_wasm("init_both"), functions=[]) as plugin:
        assert u64s(plugin.call("get")) == (0, 1)  # official runtime: __wasm_call_ctors only
        assert u64s(plugin.call("get")) == (0, 1)


def test_hs_init_after_initialize(plugin_wasm):
    with ef.Plugin(plugin_wasm("hs_init"), functions=[]) as plugin:
        for _ in range(3):
            assert u64s(plugin.call("get")) == (1, 2, 1, 1, 0)


def test_start_reinstantiates(plugin_wasm):
    with ef.Plugin(plugin_wasm("start"), functions=[]) as plugin:
        assert [u64(plugin.call("_start")) for _ in range(3)] == [1, 1, 1]
        assert [u64(plugin.call("count")) for _ in range(3)] == [1, 2, 3]
        assert u64(plugin.call("_start")) == 4
        assert u64(plugin.call("count")) == 1
        assert u64(plugin.call("count")) == 2


def test_start_keeps_vars(plugin_wasm):
    # Re-instantiation makes a new store; vars belong to the plugin instance and survive it.
    wat = (PLUGINS_DIR / "host.wat").read_text().rstrip()
    assert wat.endswith(")")
    wat = wat[:-1] + '(func (export "_start")))'
    with ef.Plugin(wat, functions=[]) as plugin:
        assert u64(plugin.call("var_roundtrip")) == 1
        plugin.call("_start")
        assert u64(plugin.call("var_roundtrip")) == 2


# ------------------------------------------------------------------------------------------------
# Timeouts and cancellation
# ------------------------------------------------------------------------------------------------


def test_timeout(plugin_wasm):
    with ef.Plugin({"wasm": [{"data": plugin_wasm("misc")}], "timeout_ms": 100}, functions=[]) as plugin:
        start = time.monotonic()
        with pytest.raises(ef.TimeoutError) as info:
            plugin.call("forever")
        elapsed = time.monotonic() - start
        assert 0.09 <= elapsed < 5
        assert "'forever'" in str(info.value)
        assert "timed out after 100 ms" in str(info.value)
        assert plugin.call("ok") == b"ok"
        assert plugin.call("busy", q(1000)) == b"done"
        # A second timeout on the same plugin behaves the same.
        with pytest.raises(ef.TimeoutError):
            plugin.call("forever")
        assert plugin.call("ok") == b"ok"


def test_timeout_error_is_a_builtin_timeout_error(plugin_wasm):
    """A call's TimeoutError is also the builtin one (as PoolTimeoutError is), so code that
    catches the builtin catches it; its message, pickling and the plugin are unchanged by that."""
    import builtins
    import pickle

    with ef.Plugin({"wasm": [{"data": plugin_wasm("misc")}], "timeout_ms": 50}, functions=[]) as plugin:
        try:
            plugin.call("forever")
        except builtins.TimeoutError as exc:  # what asyncio.wait_for and socket users catch
            error = exc
        assert isinstance(error, ef.TimeoutError) and isinstance(error, ef.CallError)
        assert str(error).startswith("plugin function 'forever' timed out after 50 ms")
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is ef.TimeoutError and str(copy) == str(error)
        assert plugin.call("ok") == b"ok"
    assert issubclass(ef.TimeoutError, builtins.TimeoutError)


def test_timeout_ms_zero_means_no_limit(plugin_wasm):
    """timeout_ms 0 in any manifest form: calls run past the ticker's ~1 ms tick to the end."""
    wasm = plugin_wasm("misc")
    b64 = base64.b64encode(wasm).decode()
    sources = [ef.Manifest([ef.WasmData(wasm)], timeout_ms=0),
               {"wasm": [{"data": wasm}], "timeout_ms": 0},
               json.dumps({"wasm": [{"data": b64}], "timeout_ms": 0}),
               f'timeout_ms = 0\n[[wasm]]\ndata = "{b64}"\n']
    for source in sources:
        with ef.Plugin(source, functions=[]) as plugin:
            start = time.monotonic()
            assert plugin.call("busy", q(50_000_000)) == b"done"
            assert time.monotonic() - start > 0.005  # long enough to have met a 0 ms deadline


def test_timeout_from_compiled_plugin(plugin_wasm):
    compiled = ef.CompiledPlugin({"wasm": [{"data": plugin_wasm("misc")}], "timeout_ms": 50}, functions=[])
    with ef.Plugin(compiled) as plugin:
        with pytest.raises(ef.TimeoutError):
            plugin.call("forever")
        assert plugin.call("ok") == b"ok"


def _cancel_until_done(plugin, function_name):
    handle = plugin.cancel_handle()
    box = {}

    def run():
        try:
            box["out"] = plugin.call(function_name)
        except BaseException as exc:  # noqa: BLE001 - reported to the test thread
            box["exc"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 10
    # The call may not have started yet: keep cancelling until it ends.
    while thread.is_alive() and time.monotonic() < deadline:
        assert handle.cancel() is True
        thread.join(0.005)
    thread.join(5)
    assert not thread.is_alive(), "cancel did not stop the call"
    return box


def test_cancel_from_another_thread(plugin_wasm):
    with ef.Plugin(plugin_wasm("misc"), functions=[]) as plugin:
        box = _cancel_until_done(plugin, "forever")
        assert isinstance(box.get("exc"), ef.CancelledError), box
        assert "'forever'" in str(box["exc"]) and "cancelled" in str(box["exc"])
        assert plugin.call("ok") == b"ok"
        box = _cancel_until_done(plugin, "forever")
        assert isinstance(box.get("exc"), ef.CancelledError), box
        assert plugin.call("ok") == b"ok"


def test_cancel_without_a_running_call_has_no_effect(plugin_wasm):
    with ef.Plugin(plugin_wasm("misc"), functions=[]) as plugin:
        handle = plugin.cancel_handle()
        assert handle.cancel() is True
        assert plugin.call("ok") == b"ok"
        assert plugin.call("busy", q(100000)) == b"done"
    assert handle.cancel() is True  # closed plugin: harmless


def test_timeout_bounds_a_slow_host_function(plugin_wasm):
    def slow(cp, params, results):
        time.sleep(0.3)

    manifest = {"wasm": [{"data": plugin_wasm("host_user")}], "timeout_ms": 100}
    fns = host_user_functions(_greet, nothing=slow)
    with ef.Plugin(manifest, functions=fns) as plugin:
        with pytest.raises(ef.TimeoutError, match="timed out after 100 ms"):
            plugin.call("call_nothing")
        assert plugin.call("call_hello", "x") == b"Hello, x!"


def _run_in_thread(fn):
    box = {}

    def run():
        try:
            box["out"] = fn()
        except BaseException as exc:  # noqa: BLE001
            box["exc"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread, box


def test_cancel_and_timeout_only_stop_their_own_plugin(plugin_wasm):
    misc = ef.CompiledPlugin(plugin_wasm("misc"), functions=[])
    timed = ef.CompiledPlugin({"wasm": [{"data": plugin_wasm("misc")}], "timeout_ms": 30}, functions=[])
    with ef.Plugin(misc) as worker, ef.Plugin(misc) as victim, ef.Plugin(timed) as sleeper:
        work, work_box = _run_in_thread(lambda: worker.call("busy", q(100_000_000)))
        cancelled = _cancel_until_done(victim, "forever")
        timed_out, timed_box = _run_in_thread(lambda: sleeper.call("forever"))
        timed_out.join(10)
        work.join(30)
        assert isinstance(cancelled.get("exc"), ef.CancelledError), cancelled
        assert isinstance(timed_box.get("exc"), ef.TimeoutError), timed_box
        assert work_box == {"out": b"done"}


# ------------------------------------------------------------------------------------------------
# Threads
# ------------------------------------------------------------------------------------------------


def test_one_plugin_per_thread(kernel_compiled):
    errors = []

    def worker(i):
        try:
            with ef.Plugin(kernel_compiled) as plugin:
                for j in range(200):
                    data = f"thread {i} call {j}".encode() * (j % 7 + 1)
                    assert plugin.call("echo_copy", data) == data
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []


# ------------------------------------------------------------------------------------------------
# Host functions: host_user.wat
# ------------------------------------------------------------------------------------------------


def _greet(cp, params, results):
    cp.return_string(results[0], "Hello, " + cp.input_string(params[0]) + "!")


def test_host_user_i32(plugin_wasm):
    seen = []

    def add(cp, params, results):
        seen.append([(p.t, p.value) for p in params])
        results[0].value = params[0].value + params[1].value

    with ef.Plugin(plugin_wasm("host_user"), functions=host_user_functions(_greet, add=add)) as plugin:
        for a, b in [(1, 2), (1000, 2000), (0, 0), (-5, 7), (2**30, 2**30 - 1)]:
            out = plugin.call("call_add", struct.pack("<ii", a, b))
            assert struct.unpack("<i", out)[0] == a + b
    assert seen[0] == [(ValType.I32, 1), (ValType.I32, 2)]
    assert seen[3] == [(ValType.I32, -5), (ValType.I32, 7)]


def test_host_user_f64(plugin_wasm):
    with ef.Plugin(plugin_wasm("host_user"), functions=host_user_functions(_greet)) as plugin:
        for a, b in [(1.5, -4.0), (0.1, 3.0), (1e300, 1e10), (-0.0, 5.0)]:
            out = plugin.call("call_mul", struct.pack("<dd", a, b))
            assert struct.unpack("<d", out)[0] == a * b


def test_host_user_nothing(plugin_wasm):
    count = []

    def nothing(cp, params, results):
        assert params == [] and results == []
        count.append(1)

    with ef.Plugin(plugin_wasm("host_user"), functions=host_user_functions(_greet, nothing=nothing)) as plugin:
        assert plugin.call("call_nothing") == b"ok"
        assert plugin.call("call_nothing") == b"ok"
    assert len(count) == 2


def test_host_user_hello_world(plugin_wasm):
    with ef.Plugin(plugin_wasm("host_user"), functions=host_user_functions(_greet)) as plugin:
        assert plugin.call("call_hello", "Bob") == b"Hello, Bob!"
        assert plugin.call("call_hello", "wörld") == "Hello, wörld!".encode()


def test_host_user_returning_0(plugin_wasm):
    def none(cp, params, results):
        results[0].value = 0

    with ef.Plugin(plugin_wasm("host_user"), functions=host_user_functions(none)) as plugin:
        assert plugin.call("call_hello", "Bob") == b"<none>"


def test_host_function_user_data(plugin_wasm):
    def hello(cp, params, results, prefix, suffix):
        cp.return_string(results[0], prefix + cp.input_string(params[0]) + suffix)

    fns = host_user_functions(_greet)
    fns[0] = Function("extism:host/user", "hello_world", [ValType.I64], [ValType.I64], hello, "<", ">")
    with ef.Plugin(plugin_wasm("host_user"), functions=fns) as plugin:
        assert plugin.call("call_hello", "x") == b"<x>"


def test_host_function_calls_another_plugin(plugin_wasm, kernel_compiled):
    with ef.Plugin(kernel_compiled) as inner:
        def hello(cp, params, results):
            text = cp.input_bytes(params[0])
            cp.return_bytes(results[0], inner.call("echo_copy", text[::-1]))

        with ef.Plugin(plugin_wasm("host_user"), functions=host_user_functions(hello)) as outer:
            assert outer.call("call_hello", "abc") == b"cba"
            assert outer.call("call_hello", "hello") == b"olleh"
        assert_echo(inner)


# ------------------------------------------------------------------------------------------------
# The C PDK kitchen sink
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kitchen_sink(plugin_wasm):
    return plugin_wasm("kitchen_sink")


def _hello_world():
    def f(current_plugin, params, results):
        current_plugin.return_string(results[0], "Hello, " + current_plugin.input_string(params[0]) + "!")

    return ef.Function("extism:host/user", "hello_world", [ValType.I64], [ValType.I64], f)


def test_kitchen_sink_greet(kitchen_sink):
    with ef.Plugin(kitchen_sink, functions=[_hello_world()], config={"greeting": "Howdy"}) as plugin:
        assert plugin.call("greet", "Bob") == b"Howdy, Bob!"
        assert plugin.call("greet", "") == b"Howdy, !"
    with ef.Plugin(kitchen_sink, functions=[_hello_world()]) as plugin:
        assert plugin.call("greet", "Ann") == b"Hello, Ann!"


def test_kitchen_sink_count_calls(kitchen_sink):
    compiled = ef.CompiledPlugin(kitchen_sink, functions=[_hello_world()])
    with ef.Plugin(compiled) as a:
        assert [a.call("count_calls") for _ in range(3)] == [b"1", b"2", b"3"]
        with ef.Plugin(compiled) as b:
            assert b.call("count_calls") == b"1"
        assert a.call("count_calls") == b"4"


def test_kitchen_sink_log_levels(kitchen_sink, caplog):
    caplog.set_level(logging.INFO, logger="extism_fast")
    with ef.Plugin(kitchen_sink, functions=[_hello_world()]) as plugin:
        assert plugin.call("log_levels", "msg") == b"2"
        records = [(r.levelno, r.getMessage(), r.plugin_id) for r in caplog.records if r.name == "extism_fast"]
        pid = str(plugin.id)
        assert records == [
            (logging.INFO, "info: msg", pid),
            (logging.WARNING, "warn: msg", pid),
            (logging.ERROR, "error: msg", pid),
        ]
        caplog.clear()
        caplog.set_level(TRACE, logger="extism_fast")
        assert plugin.call("log_levels", "all") == b"0"
        assert [r.getMessage() for r in caplog.records if r.name == "extism_fast"] == [
            "trace: all", "debug: all", "info: all", "warn: all", "error: all",
        ]
        caplog.clear()
        caplog.set_level(logging.CRITICAL, logger="extism_fast")
        assert plugin.call("log_levels", "none") == b"2147483647"
        assert [r for r in caplog.records if r.name == "extism_fast"] == []


def test_kitchen_sink_fail(kitchen_sink):
    with ef.Plugin(kitchen_sink, functions=[_hello_world()]) as plugin:
        with pytest.raises(ef.PluginError) as info:
            plugin.call("fail", "bad input")
        assert str(info.value) == "kitchen sink failed: bad input"
        assert plugin.call("greet", "again") == b"Hello, again!"


def test_kitchen_sink_call_host(kitchen_sink):
    with ef.Plugin(kitchen_sink, functions=[_hello_world()]) as plugin:
        assert plugin.call("call_host", "world") == b"Hello, world!"
        assert plugin.call("call_host", "ünï") == "Hello, ünï!".encode()


def test_kitchen_sink_echo_dup_and_vars(kitchen_sink):
    with ef.Plugin(kitchen_sink, functions=[_hello_world()]) as plugin:
        big = bytes(range(256)) * 1000
        assert plugin.call("echo_dup", big) == big
        assert plugin.call("var_bytes", "k=value") == b"value"
        assert plugin.call("var_bytes", "k=other") == b"other"
        assert plugin.call("var_bytes", "k=") == b"<none>"
        with pytest.raises(ef.PluginError, match="expected key=value"):
            plugin.call("var_bytes", "no equals")


def test_kitchen_sink_needs_its_host_function(kitchen_sink):
    with pytest.raises(ef.LinkError, match="hello_world"):
        ef.Plugin(kitchen_sink, functions=[])


# ---- reset, fuel_consumed, per-plugin logger ----

def test_reset_frees_kernel_memory_and_keeps_vars(plugin_wasm):
    """As the official Plugin::reset: the kernel's blocks go (an output view expires), vars and
    the instance stay."""
    with ef.Plugin(plugin_wasm("runtime_features")) as plugin:
        assert plugin.reset() is True  # before any call: nothing to free
        view = plugin.call("out", b"hello", parse=None)
        assert bytes(view) == b"hello"
        assert plugin.reset() is True
        with pytest.raises(ValueError):
            bytes(view)
        assert plugin.call("out", b"again") == b"again"
    with ef.Plugin(plugin_wasm("host")) as plugin:
        plugin.call("var_set_from_input", b"k=kept")
        plugin.reset()
        assert plugin.call("var_get", b"k") == b"kept"
        assert plugin.reset(vars=True) is True  # and the vars too, when asked
        assert plugin.call("var_get", b"k") == b"<none>"
        plugin.call("var_set_from_input", b"k=again")  # the store still works
        assert plugin.call("var_get", b"k") == b"again"


def test_reset_refused_while_closed_or_in_a_call(plugin_wasm):
    seen = []

    def during(current_plugin, params, results, *user_data):
        try:
            plugin.reset()
        except ef.Error as exc:
            seen.append(str(exc))

    plugin = ef.Plugin(plugin_wasm("host_user"), functions=host_user_functions(during))
    plugin.call("call_hello", b"x")
    plugin.close()
    assert seen == ["cannot reset a plugin while one of its calls is running"]
    with pytest.raises(ef.Error, match="plugin is closed"):
        plugin.reset()


def test_fuel_consumed_follows_each_call(plugin_wasm):
    with ef.Plugin(plugin_wasm("runtime_features"), fuel=10**9) as plugin:
        assert plugin.fuel_consumed is None  # no call yet
        plugin.call("spin", b"x" * 10)
        small = plugin.fuel_consumed
        plugin.call("spin", b"x" * 1000)
        large = plugin.fuel_consumed
        plugin.call("spin", b"x" * 10)
        assert 0 < small < large and plugin.fuel_consumed == small
        assert large - small >= 990  # at least one instruction per loop round
    with ef.Plugin(plugin_wasm("runtime_features"), fuel=50) as plugin:
        with pytest.raises(ef.FuelExhaustedError):
            plugin.call("spin", b"x" * 1000)
        assert plugin.fuel_consumed == 50  # the whole budget
    with ef.Plugin(plugin_wasm("runtime_features")) as plugin:
        plugin.call("spin", b"x")
        assert plugin.fuel_consumed is None  # unmetered




# ------------------------------------------------------------------------------------------------
# repr and signatures
# ------------------------------------------------------------------------------------------------


def test_reprs_say_what_and_which_state_without_secrets(tmp_path):
    """Plugin, CompiledPlugin, CancelHandle and PluginPool reprs name the main module and the
    state; no config value, URL password, query or header value appears in them."""
    wat = tmp_path / "count.wat"
    wat.write_text('(module (func (export "run") (result i32) i32.const 0))')
    manifest = {"wasm": [{"path": str(wat)}], "config": {"api_key": "s3cr3t-config"}}
    compiled = ef.CompiledPlugin(manifest, functions=[], config={"token": "s3cr3t-override"})
    plugin = ef.Plugin(compiled, config={"other": "s3cr3t-plugin"})
    handle = plugin.cancel_handle()
    pool = ef.PluginPool(compiled, size=2, config={"k": "s3cr3t-pool"})
    with pool.get():
        busy_pool = repr(pool)
    texts = [repr(compiled), repr(plugin), repr(handle), repr(pool), busy_pool]
    assert repr(compiled) == f"<extism_fast.CompiledPlugin main={str(wat)!r} modules=1 wasi=False>"
    assert repr(plugin) == f"<extism_fast.Plugin main={str(wat)!r} open>"
    assert repr(handle) == f"<extism_fast.CancelHandle of {plugin!r}>"
    assert busy_pool.endswith("size=2 max_size=2 in_use=1 open>") and repr(pool).endswith("in_use=0 open>")
    plugin.close()
    pool.close()
    assert repr(plugin).endswith(" closed>") and repr(pool).endswith(" closed>") and repr(handle).endswith(" closed>>")
    texts += [repr(plugin), repr(pool)]
    assert not [t for t in texts if "s3cr3t" in t or "api_key" in t]

    url = "https://user:p4ssw0rd@example.com/plugins/p.wasm?sig=qu3ry#frag"
    source = ef.Manifest(wasm=[ef.WasmData(data=wat.read_bytes(), name="lib"),
                               ef.WasmUrl(url=url, headers={"Authorization": "h3ader"}, name="main")])
    assert source.describe_main() == "'https://example.com/plugins/p.wasm'"
    data = ef.Manifest(wasm=[ef.WasmData(data=b"\0asm\1\0\0\0", name="core")])
    assert data.describe_main() == "core=<8 bytes>"
    text = repr(ef.CompiledPlugin(data, functions=[]))
    assert text == "<extism_fast.CompiledPlugin main=core=<8 bytes> modules=1 wasi=False>"


def test_inspect_signature_shows_the_real_parameters():
    """inspect.signature works on the cdef classes (their __init__ is a slot it cannot read) and
    matches the parameters __init__ takes: names, order, keyword-only ones, defaults."""
    import inspect

    sig = inspect.signature(ef.Plugin)
    params = sig.parameters
    assert list(params)[:4] == ["plugin", "wasi", "config", "functions"]
    assert params["wasi"].default is False and params["config"].default is None
    keyword_only = [n for n, p in params.items() if p.kind is p.KEYWORD_ONLY]
    assert keyword_only == ["http_response_headers", "fuel", "wasi_stdio", "interruptible", "strict",
                            "wasi_env", "wasi_args", "logger"]
    for cls, positional in ((ef.Plugin, 4), (ef.CompiledPlugin, 3)):
        # The real __init__'s names in order, as Cython embeds them in the docstring (where it
        # misplaces the `*` after typed keyword-only ones), and as many positional parameters.
        embedded = re.match(r"\w+\((.*)\)$", cls.__doc__.splitlines()[0]).group(1)
        names = [re.sub(r"^bool ", "", p.strip()).split("=")[0] for p in embedded.split(",")]
        assert list(inspect.signature(cls).parameters) == [n for n in names if n != "*"]
        with pytest.raises(TypeError, match=f"at most {positional} positional"):
            cls(b"", *[None] * positional)

    compiled = inspect.signature(ef.CompiledPlugin).parameters
    assert list(compiled) == ["plugin", "wasi", "functions", "config", "fuel", "cache", "interruptible"]
    assert [n for n, p in compiled.items() if p.kind is p.KEYWORD_ONLY] == ["config", "fuel", "cache", "interruptible"]
    assert str(inspect.signature(ef.PluginPool)).startswith("(source")
