"""Pickling CompiledPlugin (extism_fast/runtime/pickling.py): manifest as bytes, host functions by reference,
one compilation per process.

The official SDK's CompiledPlugin does not pickle at all, so these test extism_fast only.
"""

from __future__ import annotations

import gc
import hashlib
import multiprocessing
import pickle
import struct
import threading

import pytest

import extism_fast as ef
from extism_fast import ExplicitFunction, Function, TypeInferredFunction, ValType, host_fn
from extism_fast.functions import HOST_FN_REGISTRY
from extism_fast.manifest import WasmData, WasmUrl


# ---- the host functions of tests/plugins/host_user.wat, importable by name ----------------------

def hello(current_plugin, params, results, greeting):
    """Explicit signature, with user data."""
    name = current_plugin.input_string(params[0])
    current_plugin.return_string(results[0], f"{greeting}, {name}!")


def multiply(a: float, b: float) -> float:
    """Signature inferred from the annotations."""
    return a * b


def nothing(current_plugin, params, results):
    pass


@host_fn(name="add_i32", signature=([ValType.I32, ValType.I32], [ValType.I32]))
def add_i32(current_plugin, params, results):
    """A module-level @host_fn: pickled as the Function object itself, by name."""
    results[0].value = params[0].value + params[1].value


HOST_FN_REGISTRY.remove(add_i32)  # only these tests use it: keep it out of other tests' default


def host_functions():
    return [
        Function("extism:host/user", "hello_world", [ValType.I64], [ValType.I64], hello, "Hi"),
        add_i32,
        TypeInferredFunction("extism:host/user", "mul_f64", multiply),
        ExplicitFunction("extism:host/user", "nothing", [], [], nothing),
    ]


def run_host_user(compiled) -> list:
    with ef.Plugin(compiled) as plugin:
        return [
            plugin.call("call_hello", "Bob"),
            struct.unpack("<i", plugin.call("call_add", struct.pack("<ii", 40, 2)))[0],
            struct.unpack("<d", plugin.call("call_mul", struct.pack("<dd", 1.5, 4.0)))[0],
            plugin.call("call_nothing"),
        ]


def _child(data: bytes) -> tuple:
    """In a spawned process: unpickle twice, report whether that compiled once, run the plugin."""
    first = pickle.loads(data)
    second = pickle.loads(data)
    return first is second, run_host_user(first), first.interruptible


# ---- tests -----------------------------------------------------------------------------------------

def test_round_trip_in_process_is_the_same_compilation(plugin_wasm):
    compiled = ef.CompiledPlugin(plugin_wasm("host_user"), functions=host_functions())
    restored = pickle.loads(pickle.dumps(compiled))
    assert restored is compiled
    assert run_host_user(restored) == [b"Hi, Bob!", 42, 6.0, b"ok"]


def test_unpickling_compiles_once_per_process(plugin_wasm):
    compiled = ef.CompiledPlugin(plugin_wasm("misc"), functions=[], interruptible=False)
    data = pickle.dumps(compiled)
    other_options = pickle.dumps(ef.CompiledPlugin(plugin_wasm("misc"), functions=[]))
    del compiled
    gc.collect()  # the registry holds compiled plugins weakly: the next load compiles again
    first = pickle.loads(data)
    assert pickle.loads(data) is first
    assert first.interruptible is False
    assert pickle.loads(other_options) is not first  # another option, another compilation
    with ef.Plugin(first) as plugin:
        assert plugin.call("ok") == b"ok"


def test_spawned_process_gets_the_same_results(plugin_wasm):
    compiled = ef.CompiledPlugin(plugin_wasm("host_user"), functions=host_functions())
    expected = run_host_user(compiled)
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        shared, results, interruptible = pool.apply(_child, (pickle.dumps(compiled),))
    assert shared is True
    assert results == expected == [b"Hi, Bob!", 42, 6.0, b"ok"]
    assert interruptible is True


def test_file_sources_travel_as_bytes_with_options_and_config(plugin_wasm, tmp_path):
    path = tmp_path / "misc.wasm"
    path.write_bytes(plugin_wasm("misc"))
    compiled = ef.CompiledPlugin(str(path), functions=[], config={"k": "v"}, fuel=10**9)
    data = pickle.dumps(compiled)
    del compiled
    gc.collect()
    path.unlink()  # the other process may not have the file: the bytes are in the pickle
    restored = pickle.loads(data)
    wasm = plugin_wasm("misc")
    assert restored.manifest.wasm == [WasmData(wasm, hash=hashlib.sha256(wasm).hexdigest())]
    assert restored.manifest.config == {"k": "v"}
    assert restored.fuel == 10**9
    with ef.Plugin(restored) as plugin:
        assert plugin.call("busy", struct.pack("<Q", 10)) == b"done"


def test_url_with_hash_stays_a_url(plugin_wasm):
    from conftest import serve_bytes

    wasm = plugin_wasm("misc")
    with serve_bytes(wasm) as base:
        url = f"{base}/misc.wasm"
        digest = hashlib.sha256(wasm).hexdigest()
        pinned = ef.CompiledPlugin({"wasm": [{"url": url, "hash": digest}]}, functions=[])
        unpinned = ef.CompiledPlugin({"wasm": [{"url": url}]}, functions=[])
        assert pickle.loads(pickle.dumps(pinned)) is pinned
        pinned_manifest = pinned.__reduce__()[1][1]
        assert pinned_manifest.wasm == [WasmUrl(url, hash=digest)]
        # Without a hash the code could change on the server: the bytes compiled here travel.
        assert unpinned.__reduce__()[1][1].wasm == [WasmData(wasm, hash=digest)]
        del pinned
        gc.collect()
        with ef.Plugin(pickle.loads(pickle.dumps(unpinned))) as plugin:
            assert plugin.call("ok") == b"ok"


def test_lambda_host_function_is_refused_at_pickling_naming_it(plugin_wasm):
    functions = host_functions()
    functions[0] = Function("extism:host/user", "hello_world", [ValType.I64], [ValType.I64],
                            lambda cp, params, results: None)
    compiled = ef.CompiledPlugin(plugin_wasm("host_user"), functions=functions)
    with pytest.raises(pickle.PicklingError) as info:
        pickle.dumps(compiled)
    message = str(info.value)
    assert "extism:host/user::hello_world" in message
    assert "<lambda>" in message
    assert "top level of an importable module" in message


def test_unpicklable_user_data_is_refused_naming_the_function(plugin_wasm):
    functions = host_functions()
    functions[0] = Function("extism:host/user", "hello_world", [ValType.I64], [ValType.I64], hello,
                            threading.Lock())
    compiled = ef.CompiledPlugin(plugin_wasm("host_user"), functions=functions)
    with pytest.raises(pickle.PicklingError,
                       match=r"host function extism:host/user::hello_world: its user data: TypeError: .*lock"):
        pickle.dumps(compiled)


def test_closure_and_local_bound_method_are_refused():
    def closure(cp, params, results):
        pass

    class Local:
        def method(self, cp, params, results):
            pass

    for f in (closure, Local().method):
        with pytest.raises(pickle.PicklingError, match=r"extism:host/user::f: its callable .*<locals>"):
            pickle.dumps(Function("extism:host/user", "f", [], [], f))


def test_function_pickles_by_reference():
    f = Function("extism:host/user", "hello_world", [ValType.I64], [ValType.I64], hello, "Hi")
    g = pickle.loads(pickle.dumps(f))
    assert (g.namespace, g.name, g.args, g.returns, g.f, g.user_data) == (
        "extism:host/user", "hello_world", [ValType.I64.value], [ValType.I64.value], hello, ("Hi",))
    assert pickle.loads(pickle.dumps(add_i32)) is add_i32
    inferred = pickle.loads(pickle.dumps(TypeInferredFunction(None, "mul_f64", multiply)))
    assert (inferred.func, inferred.args, inferred.returns) == (multiply, [ValType.F64.value] * 2, [ValType.F64.value])


def test_plugin_does_not_pickle_and_says_what_to_do(plugin_wasm):
    with ef.Plugin(plugin_wasm("misc"), functions=[]) as plugin:
        with pytest.raises(TypeError, match="pickle the CompiledPlugin .* and create Plugins from it"):
            pickle.dumps(plugin)


MAIN_SCRIPT = r'''
import json, pickle, sys
import extism_fast as ef
from extism_fast import Function, TypeInferredFunction, ValType, host_fn

WAT = """(module (import "extism:host/user" "hello_world" (func (param i64) (result i64)))
  (func (export "ok") (result i32) i32.const 0))"""


def hello(current_plugin, params, results):
    results[0].value = params[0].value


@host_fn(name="hello_world", signature=([ValType.I64], [ValType.I64]))
def decorated(current_plugin, params, results):
    results[0].value = params[0].value


def inferred(n: int) -> int:
    return n


class MyFunction(Function):
    pass


explicit = Function("extism:host/user", "hello_world", [ValType.I64], [ValType.I64], hello)
cases = {
    "Function": explicit,
    "@host_fn": decorated,
    "TypeInferredFunction": TypeInferredFunction("extism:host/user", "hello_world", inferred),
    "a subclass": MyFunction("extism:host/user", "hello_world", [ValType.I64], [ValType.I64], json.dumps),
    "CompiledPlugin": ef.CompiledPlugin(WAT, functions=[explicit]),
    "CompiledPlugin with @host_fn": ef.CompiledPlugin(WAT, functions=[decorated]),
}
for what, obj in cases.items():
    try:
        pickle.dumps(obj)
    except pickle.PicklingError as exc:
        print(f"{what}: {exc}")
    else:
        print(f"{what}: pickled")
try:
    pickle.dumps(ef.Plugin(WAT, functions=[explicit]))
except TypeError as exc:
    print(f"Plugin: TypeError: {exc}")
with ef.Plugin(cases["CompiledPlugin"]) as plugin:  # refusing left it working
    print("call:", plugin.call("ok"))
'''


def test_a_host_function_of_the_main_script_is_refused_at_pickling(tmp_path):
    """Another process resolves `__main__.hello` in its own main module (a Dask/Ray worker's: an
    AttributeError there, or another function of that name): refused when pickling, saying what
    to do, for the function itself, a @host_fn, a subclass, and a CompiledPlugin using them."""
    import os
    import subprocess
    import sys

    from conftest import REPO_ROOT

    script = tmp_path / "main_script.py"
    script.write_text(MAIN_SCRIPT)
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), EXTISM_FAST_CACHE="0")
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = dict(line.split(": ", 1) for line in proc.stdout.splitlines())
    advice = ("is defined in the script being run (__main__), which another process cannot import by that "
              "name; move it into a module of its own (e.g. host_functions.py beside the script) and import "
              "it from there")
    for what, name in [("Function", "its callable __main__.hello"), ("@host_fn", "its callable __main__.decorated"),
                       ("TypeInferredFunction", "its callable __main__.inferred"),
                       ("a subclass", "its class MyFunction"), ("CompiledPlugin", "its callable __main__.hello"),
                       ("CompiledPlugin with @host_fn", "its callable __main__.decorated")]:
        assert lines[what] == f"cannot pickle host function extism:host/user::hello_world: {name} {advice}", what
    assert lines["Plugin"].startswith("TypeError: cannot pickle a Plugin")
    assert lines["call"] == "b''"
