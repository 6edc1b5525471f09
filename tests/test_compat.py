"""Drop-in compatibility: the same scenarios against extism_fast and the official `extism` SDK.

Every test takes the ``sdk`` fixture, which is the module ``extism_fast`` or ``extism`` (1.1.1),
used the way an application would after ``import extism_fast as extism``. Both must produce the
exact same expected values; failures must raise the module's own ``Error`` (messages may differ).

Known differences of the official SDK that are deliberately not exercised for both (its bugs,
not behaviour an application can rely on):

* inferred ``-> int`` / ``-> bool`` results come back as the offset of a block holding the value's
  bytes, and ``-> float`` / explicit F32 / F64 results come back as 0 (the callback raises);
* inferred ``Tuple[...]`` results pass the whole tuple to every slot (so they fail);
* an exception in a host function is printed and the call goes on with zero results, where
  extism_fast fails the call with HostFunctionError;
* a ``bool`` parameter arrives as the int 0/1 (extism_fast passes a bool: equal, but not
  identical when formatted);
* it does not reuse freed kernel blocks, so offsets are never compared here.
"""

import base64
import hashlib
import http.server
import importlib
import json
import os
import pickle
import re
import signal
import socket
import struct
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from typing import Annotated

import pytest

import extism
import extism_fast
import extism_fast.http
from conftest import REPO_ROOT, build_plugin, serve_bytes

SDKS = [extism_fast, extism]


@pytest.fixture(params=SDKS, ids=lambda m: m.__name__)
def sdk(request):
    module = request.param
    registry = _registry(module)
    n = len(registry)
    yield module
    # host_fn registers globally; the official SDK dispatches by registry index, so only ever
    # truncate (never remove from the middle).
    del registry[n:]


def _registry(module):
    return module.HOST_FN_REGISTRY if module is extism_fast else module.extism.HOST_FN_REGISTRY


def _compiled_plugin_class(module):
    return module.CompiledPlugin if module is extism_fast else module.extism.CompiledPlugin


class Gribble:
    def __init__(self, v):
        self.v = v

    def frobbitz(self):
        return f"gromble {self.v}"


def probe_call(probe, plugin, params, results, values):
    return probe.output(results, plugin.call("call", probe.input(params, values)))


# ---------------------------------------------------------------------------------------------
# Plugins, inputs and outputs
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["examples/count_vowels.wat", "examples/count_vowels.c"])
def test_count_vowels(sdk, plugin_wasm, wasm_path, source):
    wasm = plugin_wasm(source)
    for plugin_arg in (wasm, str(wasm_path(source)), {"wasm": [{"data": wasm}]}):
        with sdk.Plugin(plugin_arg, functions=[]) as plugin:
            assert plugin.call("count_vowels", "Hello World") == b'{"count": 3}'
            assert plugin.call("count_vowels", b"Hello World") == b'{"count": 3}'
            assert plugin.call("count_vowels", "") == b'{"count": 0}'
            assert plugin.call("count_vowels", "🌎hello🌎world🌎") == b'{"count": 3}'
            assert plugin.call("count_vowels", "AEIOU" * 1000) == b'{"count": 5000}'
            parsed = plugin.call("count_vowels", "this is a test", parse=lambda b: json.loads(bytes(b)))
            assert parsed == {"count": 4}
            assert bytes(plugin.call("count_vowels", "xyz", parse=lambda b: b)) == b'{"count": 0}'


def test_function_exists_id_and_cancel_handle(sdk, plugin_wasm):
    wasm = plugin_wasm("examples/count_vowels.c")
    a = sdk.Plugin(wasm, functions=[])
    b = sdk.Plugin(wasm, functions=[])
    assert a.function_exists("count_vowels") is True
    assert a.function_exists("nope") is False
    assert isinstance(a.id, uuid.UUID) and a.id.version == 4
    assert a.id == a.id and a.id != b.id
    handle = a.cancel_handle()
    assert callable(handle.cancel)
    assert handle.cancel() is True
    assert isinstance(sdk.extism_version(), str) and sdk.extism_version()


def test_cancel_a_running_call(sdk, plugin_wasm):
    """host_threads.wat `stuck` calls the host, then loops in wasm until cancelled.

    Cancelling only once the call is inside the plugin (the host function ran) keeps clear of
    a race in the official SDK: a cancel that arrives while its call is starting can be lost
    together with the call's timeout, and the call then never ends.
    """
    entered = threading.Event()

    @sdk.host_fn(signature=([], []))
    def rendezvous(plugin, params, results):
        entered.set()

    manifest = {"wasm": [{"data": plugin_wasm("host_threads")}], "timeout_ms": 5000}
    plugin = sdk.Plugin(manifest, functions=[rendezvous])
    handle = plugin.cancel_handle()
    done = threading.Event()

    def canceller():
        if entered.wait(5):
            while not done.is_set():
                time.sleep(0.01)
                handle.cancel()

    thread = threading.Thread(target=canceller, daemon=True)
    thread.start()
    start = time.monotonic()
    try:
        with pytest.raises(sdk.Error):
            plugin.call("stuck", b"")
    finally:
        done.set()
        thread.join(5)
    assert entered.is_set()
    assert time.monotonic() - start < 3  # cancelled, not timed out
    assert not thread.is_alive()


def test_timeout(sdk, plugin_wasm):
    plugin = sdk.Plugin({"wasm": [{"data": plugin_wasm("misc")}], "timeout_ms": 100}, functions=[])
    start = time.monotonic()
    with pytest.raises(sdk.Error):
        plugin.call("forever", b"")
    assert time.monotonic() - start < 2
    assert plugin.call("ok", b"") == b"ok"


def test_failing_calls_raise_the_module_error(sdk, plugin_wasm, probe):
    hello = _kitchen_functions(sdk)
    with sdk.Plugin(plugin_wasm("kitchen_sink.c"), functions=hello) as plugin:
        with pytest.raises(sdk.Error) as info:
            plugin.call("fail", "why")
        assert str(info.value) == "kitchen sink failed: why"  # error_set text, in both
        with pytest.raises(sdk.Error):
            plugin.call("i_dont_exist", "someinput")
        # still usable
        assert plugin.call("echo_dup", "again") == b"again"

    trap = extism_fast.wat2wasm('(module (func (export "trap") (result i32) unreachable))')
    with sdk.Plugin(trap, functions=[]) as plugin:
        with pytest.raises(sdk.Error):
            plugin.call("trap", b"")
        with pytest.raises(sdk.Error):
            plugin.call("trap", b"")


def test_load_failures_raise_the_module_error(sdk, plugin_wasm, probe):
    with pytest.raises(sdk.Error):
        sdk.Plugin(b"\x00asm garbage", functions=[])
    with pytest.raises(sdk.Error):
        sdk.Plugin({"invalid_manifest": True}, functions=[])
    with pytest.raises(sdk.Error):  # the host function is missing
        sdk.Plugin(plugin_wasm("kitchen_sink.c"), functions=[])
    with pytest.raises(sdk.Error):
        sdk.Plugin(plugin_wasm("bad/unknown_import"), functions=[])

    @sdk.host_fn(name="probe", signature=([sdk.ValType.I32], [sdk.ValType.I32]))
    def wrong_type(plugin, params, results):
        results[0].value = 0

    with pytest.raises(sdk.Error):  # the plugin imports (i64) -> (i64)
        sdk.Plugin(probe.wasm(["ptr"], ["ptr"]), functions=[wrong_type])


def test_a_function_holds_valtype_values_and_passes_valtype_members(sdk, plugin_wasm):
    """Function.args / returns hold the ValType members' values (ints), for an explicit signature
    and an inferred one alike; the Vals an explicit host function receives carry the members."""
    seen = []

    @sdk.host_fn(name="hello_world", signature=([sdk.ValType.PTR], [sdk.ValType.I64]))
    def explicit(plugin, params, results):
        seen.append((params[0].t, results[0].t))
        results[0].value = params[0].value

    @sdk.host_fn(name="hello_world")
    def inferred(text: str, factor: float, flag: bool) -> Annotated[dict, sdk.Json]:
        return {}

    assert (explicit.args, explicit.returns) == ([1], [1])
    assert (inferred.args, inferred.returns) == ([1, 3, 0], [1])
    assert all(type(value) is int for value in explicit.args + inferred.args + inferred.returns)
    with sdk.Plugin(plugin_wasm("kitchen_sink.c"), functions=[explicit]) as plugin:
        assert plugin.call("call_host", b"abc") == b"abc"
    assert seen == [(sdk.ValType.I64, sdk.ValType.I64)] and isinstance(seen[0][0], sdk.ValType)


def _kitchen_functions(sdk):
    @sdk.host_fn()
    def hello_world(text: str) -> str:
        return f"hello world: {text}"

    return [hello_world]


def test_a_manifest_naming_a_url_fetches_it_and_checks_its_hash(sdk, plugin_wasm, monkeypatch):
    """The official docs' first example, from a server on 127.0.0.1: both fetch the module, run it,
    and refuse a wrong hash and a missing module with their Error."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)  # a proxy would intercept the official SDK's requests
    wasm = plugin_wasm("examples/count_vowels.wat")
    good = hashlib.sha256(wasm).hexdigest()
    with serve_bytes(wasm) as base:
        for manifest in ({"wasm": [{"url": f"{base}/count_vowels.wasm"}]},
                         {"wasm": [{"url": f"{base}/count_vowels.wasm", "hash": good}], "config": {"k": "v"}}):
            with sdk.Plugin(manifest, functions=[]) as plugin:
                assert plugin.call("count_vowels", "Hello World") == b'{"count": 3}'
        with pytest.raises(sdk.Error):
            sdk.Plugin({"wasm": [{"url": f"{base}/count_vowels.wasm", "hash": "0" * 64}]}, functions=[])
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        refused = f"http://127.0.0.1:{s.getsockname()[1]}/m.wasm"
    with pytest.raises(sdk.Error):
        sdk.Plugin({"wasm": [{"url": refused}]}, functions=[])


def test_integer_limits_at_and_beyond_their_ranges(sdk, plugin_wasm):
    """Both take every limit up to the top of its range (u32 pages; u64 bytes and milliseconds)
    and refuse one more, a lone surrogate in config and a negative limit with their Error."""
    wasm = plugin_wasm("examples/count_vowels.wat")
    top = {"max_pages": 2**32 - 1, "max_var_bytes": 2**64 - 1, "max_http_response_bytes": 2**64 - 1}
    with sdk.Plugin({"wasm": [{"data": wasm}], "memory": top, "timeout_ms": 2**64 - 1}, functions=[]) as plugin:
        assert plugin.call("count_vowels", "Hello World") == b'{"count": 3}'
    for bad in ({"memory": {"max_pages": 2**32}}, {"memory": {"max_var_bytes": 2**64}},
                {"memory": {"max_http_response_bytes": 2**64}}, {"memory": {"max_pages": -1}},
                {"timeout_ms": 2**64}, {"config": {"k": "v\udcff"}}):
        with pytest.raises(sdk.Error):
            sdk.Plugin({"wasm": [{"data": wasm}], **bad}, functions=[])


def test_config(sdk, plugin_wasm, as_plugins):
    wasm = plugin_wasm("kitchen_sink.c")
    with sdk.Plugin(wasm, functions=_kitchen_functions(sdk)) as plugin:
        assert plugin.call("greet", "Bob") == b"Hello, Bob!"
    with sdk.Plugin(wasm, config={"greeting": "Hi"}, functions=_kitchen_functions(sdk)) as plugin:
        assert plugin.call("greet", "Bob") == b"Hi, Bob!"
    with sdk.Plugin({"wasm": [{"data": wasm}], "config": {"greeting": "Yo"}},
                    functions=_kitchen_functions(sdk)) as plugin:
        assert plugin.call("greet", "Bob") == b"Yo, Bob!"
    with sdk.Plugin(as_plugins["count_vowels"], config={"thing": "cfg value"}, functions=[]) as plugin:
        assert plugin.call("count_vowels", "Hello World") == (
            b'{"count": 3, "config": "cfg value", "a": "this is var a"}'
        )


def test_vars(sdk, plugin_wasm):
    wasm = plugin_wasm("kitchen_sink.c")
    a = sdk.Plugin(wasm, functions=_kitchen_functions(sdk))
    b = sdk.Plugin(wasm, functions=_kitchen_functions(sdk))
    assert [a.call("count_calls", "") for _ in range(3)] == [b"1", b"2", b"3"]
    assert b.call("count_calls", "") == b"1"  # vars are per instance
    assert a.call("var_bytes", "k=value") == b"value"
    assert a.call("var_bytes", "k=") == b"<none>"  # empty value deletes
    with pytest.raises(sdk.Error):
        a.call("var_bytes", "no equals sign")
    assert a.call("count_calls", "") == b"4"


def _bench_plugin(stem):
    """wasm bytes of bench/plugin_sources/<stem>.c, built by the bench's own builder."""
    from conftest import REPO_ROOT

    if str(REPO_ROOT) not in sys.path:  # `pytest` run without the repository on sys.path
        sys.path.insert(0, str(REPO_ROOT))
    from bench.plugins import build

    return build(f"bench/{stem}")


def test_bench_pdk_plugin(sdk):
    """The benchmark's headline plugin (bench/plugin_sources/count_vowels_pdk.c) gives the same bytes in
    both SDKs: the default and a configured `vowels`, the running `total` var, inputs around its
    8-byte read chunks, JSON escaping of the config value, and its error for an oversized config."""
    wasm = _bench_plugin("count_vowels_pdk")
    with sdk.Plugin(wasm, functions=[]) as plugin:
        outputs = [plugin.call("count_vowels", text) for text in (b"", b"aeiouAEI", b"Hello, World!!")]
    assert outputs == [
        b'{"count":0,"total":0,"vowels":"aeiouAEIOU"}',
        b'{"count":8,"total":8,"vowels":"aeiouAEIOU"}',
        b'{"count":3,"total":11,"vowels":"aeiouAEIOU"}',
    ]
    with sdk.Plugin({"wasm": [{"data": wasm}], "config": {"vowels": 'y"\\\n\x01'}}, functions=[]) as plugin:
        assert plugin.call("count_vowels", b'Hey, "you"\\\n!') == (
            b'{"count":6,"total":6,"vowels":"y\\"\\\\\\n\\u0001"}'
        )
    with sdk.Plugin(wasm, config={"vowels": "x" * 256}, functions=[]) as plugin:
        with pytest.raises(sdk.Error, match="config 'vowels' is longer than 255 bytes"):
            plugin.call("count_vowels", b"x")


def _var_outcomes(sdk, plugin, function, inputs, cap):
    """Each call's output, or None when it failed; extism_fast's failures name the var cap (the
    official SDK's message is only the wasm backtrace: it does not say why)."""
    outcomes = []
    for data in inputs:
        try:
            outcomes.append(plugin.call(function, data))
        except sdk.Error as exc:
            if sdk is extism_fast:
                assert isinstance(exc, (extism_fast.MemoryLimitError, extism_fast.CapabilityError)), exc
                assert f"memory.max_var_bytes is {cap}" in str(exc)
            outcomes.append(None)
    return outcomes


@pytest.mark.parametrize("cap, totals", [
    (53, [None, None, None, None]),
    (54, [1, None, None, None]),
    (107, [1, None, None, None]),
    (108, [1, 2, None, 3]),
    (109, [1, 2, 11, None]),
    (None, [1, 2, 11, 12]),
])
def test_max_var_bytes_is_counted_as_the_official_kernel_counts_it(sdk, cap, totals):
    """Issue 19: the PDK-like count_vowels rewrites var "total" (decimal text) on every call; with
    inputs of 1, 1, 9 and 1 vowels it holds "1", "2", "11", then "3" or "12". A var costs key + value
    + 48 bytes and the old value of the key being rewritten still counts: "total"="1" costs 54, so
    53 refuses the first call and a rewrite needs 108 (109 once the value is 2 digits). A refused
    call leaves the var as it was (cap 108: the fourth call adds to 2)."""
    memory = {} if cap is None else {"memory": {"max_var_bytes": cap}}
    with sdk.Plugin({"wasm": [{"data": _bench_plugin("count_vowels_pdk")}], **memory}, functions=[]) as plugin:
        outputs = _var_outcomes(sdk, plugin, "count_vowels", [b"a", b"a", b"aaaaaaaaa", b"a"], cap)
    assert [out and json.loads(out)["total"] for out in outputs] == totals


@pytest.mark.parametrize("cap, outputs", [
    (0, [None, None, None, None, None]),  # disabled: deleting is refused too
    (56, [b"<none>", b"v", None, b"<none>", b"v"]),  # "k"="v" costs 50; a rewrite needs 50 + 51
    (100, [b"<none>", b"v", None, b"<none>", b"v"]),
    (101, [b"<none>", b"v", b"vv", b"<none>", b"v"]),
])
def test_max_var_bytes_deleting_and_rewriting(sdk, plugin_wasm, cap, outputs):
    """Deleting (an empty value: PDKs pass offset 0) is never over the cap and frees the var's whole
    cost; with vars disabled (cap 0) it fails as every var_set does."""
    manifest = {"wasm": [{"data": plugin_wasm("kitchen_sink.c")}], "memory": {"max_var_bytes": cap}}
    with sdk.Plugin(manifest, functions=_kitchen_functions(sdk)) as plugin:
        assert _var_outcomes(sdk, plugin, "var_bytes", ["k=", "k=v", "k=vv", "k=", "k=v"], cap) == outputs


def test_compiled_plugin(sdk, plugin_wasm):
    CompiledPlugin = _compiled_plugin_class(sdk)
    compiled = CompiledPlugin(plugin_wasm("kitchen_sink.c"), functions=_kitchen_functions(sdk))
    first, second = sdk.Plugin(compiled), sdk.Plugin(compiled)
    assert first.call("call_host", "one") == b"hello world: one"
    assert [first.call("count_calls", "") for _ in range(2)] == [b"1", b"2"]
    assert second.call("count_calls", "") == b"1"
    assert first.id != second.id
    assert second.function_exists("greet") and not second.function_exists("nope")
    with sdk.Plugin(compiled) as third:
        assert third.call("greet", "C") == b"Hello, C!"


# ---------------------------------------------------------------------------------------------
# Linking several modules (cycles: test_linking.py, the official runtime crashes on them)
# ---------------------------------------------------------------------------------------------


def _linked(sdk, plugin_wasm, *modules, functions=()):
    """A plugin of the (link name, tests/plugins/link/ source) modules, in that manifest order."""
    wasm = [{"data": plugin_wasm(f"link/{source}"), "name": name} for name, source in modules]
    return sdk.Plugin({"wasm": wasm}, functions=list(functions))


def _run(plugin):
    return int.from_bytes(plugin.call("run", b""), "little", signed=True)


def _host_compute(sdk):
    @sdk.host_fn(name="compute", signature=([sdk.ValType.I32], [sdk.ValType.I32]))
    def compute(plugin, params, results):
        results[0].value = params[0].value + 1

    return compute


@pytest.mark.parametrize("main_first", [False, True])
def test_a_module_named_extism_host_user_provides_imports(sdk, plugin_wasm, main_first):
    modules = [("extism:host/user", "double"), ("main", "main_user")]
    if main_first:
        modules.reverse()
    assert _run(_linked(sdk, plugin_wasm, *modules)) == 42
    # A module and a host function both provide extism:host/user::compute: the module wins.
    assert _run(_linked(sdk, plugin_wasm, *modules, functions=[_host_compute(sdk)])) == 42


def test_a_named_module_without_the_field_leaves_it_to_the_host(sdk, plugin_wasm):
    modules = [("extism:host/user", "other_export"), ("main", "main_user")]
    assert _run(_linked(sdk, plugin_wasm, *modules, functions=[_host_compute(sdk)])) == 21
    with pytest.raises(sdk.Error):
        _linked(sdk, plugin_wasm, *modules)


def test_a_module_named_env_provides_imports(sdk, plugin_wasm):
    with _linked(sdk, plugin_wasm, ("env", "double"), ("main", "main_env")) as plugin:
        assert _run(plugin) == 42


def test_modules_listed_before_the_modules_they_import_from(sdk, plugin_wasm):
    plugin = _linked(sdk, plugin_wasm, ("lib", "lib_via_helper"), ("helper", "helper"), ("main", "main_lib"))
    assert _run(plugin) == 42
    assert _run(plugin) == 42


def test_a_global_of_another_type_fails_at_load(sdk, plugin_wasm):
    with pytest.raises(sdk.Error):
        _linked(sdk, plugin_wasm, ("lib", "global_i64"), ("main", "main_global"))


def test_a_linked_reactor_is_initialised_once(sdk, plugin_wasm):
    """lib's `_initialize` sets the global main imports (4200) and counts its runs (+1)."""
    with _linked(sdk, plugin_wasm, ("lib", "init_global"), ("main", "main_init_global")) as plugin:
        assert [_run(plugin) for _ in range(3)] == [4201] * 3


def test_a_linked_wasi_reactor_reads_a_mounted_file(sdk, plugin_wasm, tmp_path):
    (tmp_path / "greeting.txt").write_bytes(b"hello from a mounted file")
    manifest = {"wasm": [{"data": plugin_wasm("link/wasi_reader"), "name": "reader"},
                         {"data": plugin_wasm("link/main_reader"), "name": "main"}],
                "allowed_paths": {str(tmp_path): "/data"}}
    with sdk.Plugin(manifest, wasi=True, functions=[]) as plugin:
        assert plugin.call("run", b"") == b"hello from a mounted file"


def test_a_linked_module_exporting_start_and_initialize(sdk, plugin_wasm):
    """A documented difference (README): TinyGo's modules export both; the official runtime refuses
    such a linked module ("cannot be both a Command and a Reactor"), extism_fast runs its
    `_initialize` (and never its `_start`)."""
    modules = [("lib", "init_global_both"), ("main", "main_init_global")]
    if sdk is extism:
        with pytest.raises(sdk.Error):
            _linked(sdk, plugin_wasm, *modules)
    else:
        with _linked(sdk, plugin_wasm, *modules) as plugin:
            assert _run(plugin) == 4201


def test_a_linked_command_module(sdk, plugin_wasm):
    """A documented difference (README): neither SDK runs a linked command's `_start` (it would
    make compute return 120 and more); the official runtime makes a fresh instance of it for each
    call of its exports (21 each time), extism_fast keeps its one instance (21, 22, 23)."""
    with _linked(sdk, plugin_wasm, ("lib", "command_counter"), ("main", "main_lib")) as plugin:
        expected = [21, 21, 21] if sdk is extism else [21, 22, 23]
        assert [_run(plugin) for _ in range(3)] == expected


_RUN = '(func (export "run") (result i32) (i32.const 0))'


@pytest.mark.parametrize("imports", [
    '(import "extism:host/env" "memory" (memory 1))',
    '(import "env" "t" (table 1 funcref))',
    '(import "extism:host/env" "nope" (func))',
    '(import "extism:host/env" "alloc" (func (param i32) (result i32)))',
    '(import "extism:host/env" "load_u8" (func (param i64) (result i64)))',
    '(import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))',
    '(import "extism:host/user" "f" (func (param i64) (result i64)))',
], ids=["memory", "table", "unknown ABI", "ABI type", "ABI accessor type", "WASI off", "no host function"])
def test_imports_the_host_does_not_satisfy_fail_at_load(sdk, imports):
    """Link errors of imports from the host (extism_fast's exact messages: test_linking.py)."""
    with pytest.raises(sdk.Error):
        sdk.Plugin(f"(module {imports} {_RUN})".encode(), functions=[])


def test_a_host_function_of_another_type_fails_at_load(sdk):
    @sdk.host_fn(name="f", signature=([sdk.ValType.I32], [sdk.ValType.I32]))
    def f(plugin, params, results):
        results[0].value = params[0].value

    wat = f'(module (import "extism:host/user" "f" (func (param i64) (result i64))) {_RUN})'
    with pytest.raises(sdk.Error):
        sdk.Plugin(wat.encode(), functions=[f])


def test_assemblyscript_plugins(sdk, as_plugins):
    @sdk.host_fn()
    def greet(name: str) -> str:
        return f"Hello, {name}!"

    with sdk.Plugin(as_plugins["host_greet"], functions=[greet]) as plugin:
        assert plugin.call("greet_host", "wörld 🌍") == "Hello, wörld 🌍!".encode()
        assert [plugin.call("count_calls", "") for _ in range(3)] == [b"1", b"2", b"3"]
    with sdk.Plugin(as_plugins["error_set"], functions=[]) as plugin:
        with pytest.raises(sdk.Error) as info:
            plugin.call("fail", "x")
        assert str(info.value) == "failed: x"
        with pytest.raises(sdk.Error) as info:
            plugin.call("throws", "y")
        assert str(info.value) == "abort: thrown: y at error_set.ts:29:3"
        assert plugin.call("ok", "") == b"fine"


# ---------------------------------------------------------------------------------------------
# HTTP (tests/plugins/host.wat http_request; the server listens on 127.0.0.1 only)
# ---------------------------------------------------------------------------------------------


class _HttpHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's naming
        # /cookies?<n>: n Set-Cookie lines, then Server, Date, Content-Length (n + 3 fields)
        self.send_response(200)
        for i in range(int(self.path.split("?", 1)[1])):
            self.send_header("Set-Cookie", f"c{i}=v")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def do_POST(self):  # noqa: N802
        data = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with self.server.lock:
            self.server.seen.append((self.path, data))
        if self.path in ("/redirect-307", "/redirect-308"):
            self.send_response(int(self.path[-3:]))
            self.send_header("Location", "/echo")
            data = b""
        else:
            self.send_response(201)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def _http_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HttpHandler)
    server.daemon_threads = True
    server.lock = threading.Lock()
    server.seen = []
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def http_fetch(_http_server, plugin_wasm, monkeypatch):
    """fetch(sdk, path, method="GET", body=b"") -> (status, body) through host.wat."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    with _http_server.lock:
        _http_server.seen.clear()
    wasm = plugin_wasm("host")

    def fetch(sdk, path, method="GET", body=b""):
        request = json.dumps({"url": f"http://127.0.0.1:{_http_server.server_address[1]}{path}",
                              "method": method}).encode()
        manifest = {"wasm": [{"data": wasm}], "allowed_hosts": ["127.0.0.1"]}
        with sdk.Plugin(manifest, functions=[]) as plugin:
            out = plugin.call("http_request", len(request).to_bytes(8, "little") + request + body)
        n = int.from_bytes(out[4:12], "little")
        return int.from_bytes(out[:4], "little"), out[12 : 12 + n]

    fetch.seen = _http_server.seen
    return fetch


def test_http_response_with_110_set_cookie_lines(sdk, http_fetch):
    assert http_fetch(sdk, "/cookies?110") == (200, b"ok")  # 113 header lines


def test_http_response_header_fields_up_to_128(sdk, http_fetch):
    """The official runtime's HTTP client (ureq) takes 128 header fields and fails the call past
    them; extism_fast.http.MAX_RESPONSE_HEADER_FIELDS is that limit."""
    assert extism_fast.http.MAX_RESPONSE_HEADER_FIELDS == 128
    assert http_fetch(sdk, "/cookies?125") == (200, b"ok")
    with pytest.raises(sdk.Error):
        http_fetch(sdk, "/cookies?126")


@pytest.mark.parametrize("status", [307, 308])
def test_http_post_answered_307_308(sdk, http_fetch, status):
    """A documented difference (README): the official runtime fails the call, extism_fast re-sends
    the POST and its body to the new location, as RFC 9110 says."""
    if sdk is extism:
        with pytest.raises(sdk.Error):
            http_fetch(sdk, f"/redirect-{status}", "POST", b"again")
        assert http_fetch.seen == [(f"/redirect-{status}", b"again")]
    else:
        assert http_fetch(sdk, f"/redirect-{status}", "POST", b"again") == (201, b"again")
        assert http_fetch.seen == [(f"/redirect-{status}", b"again"), ("/echo", b"again")]


# ---------------------------------------------------------------------------------------------
# Host functions, inferred signatures
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["aaa", "", "wörld 🌍"])
def test_inferred_str(sdk, probe, text):
    @sdk.host_fn(name="probe", user_data=b"test")
    def hello_world(inp: str, *user_data) -> str:
        return "hello world: %s %s" % (inp, user_data[0].decode("utf-8"))

    with sdk.Plugin(probe.wasm(["ptr"], ["ptr"]), functions=[hello_world]) as plugin:
        assert probe_call(probe, plugin, ["ptr"], ["ptr"], [text]) == [
            f"hello world: {text} test".encode()
        ]


def test_inferred_bytes(sdk, probe):
    @sdk.host_fn(name="probe")
    def swap(data: bytes) -> bytes:
        return data[::-1] + bytes([len(data)])

    with sdk.Plugin(probe.wasm(["ptr"], ["ptr"]), functions=[swap]) as plugin:
        assert probe_call(probe, plugin, ["ptr"], ["ptr"], [b"\x00\x01\xff"]) == [b"\xff\x01\x00\x03"]


def test_inferred_json_param_and_pickle_return(sdk, probe):
    @sdk.host_fn(name="probe", user_data=b"test")
    def hello_world(inp: Annotated[dict, sdk.Json], *user_data) -> Annotated[Gribble, sdk.Pickle]:
        return Gribble(f"{inp['count']} {user_data[0].decode()}")

    with sdk.Plugin(probe.wasm(["ptr"], ["ptr"]), functions=[hello_world]) as plugin:
        [out] = probe_call(probe, plugin, ["ptr"], ["ptr"], ['{"count": 3}'])
    result = pickle.loads(out)
    assert isinstance(result, Gribble) and result.frobbitz() == "gromble 3 test"


def test_inferred_json_return_and_pickle_param(sdk, probe):
    @sdk.host_fn(name="probe")
    def describe(g: Annotated[Gribble, sdk.Pickle]) -> Annotated[dict, sdk.Json]:
        return {"frob": g.frobbitz(), "n": [1, 2.5, None]}

    with sdk.Plugin(probe.wasm(["ptr"], ["ptr"]), functions=[describe]) as plugin:
        out = probe_call(probe, plugin, ["ptr"], ["ptr"], [pickle.dumps(Gribble("x"))])
    assert out == [b'{"frob": "gromble x", "n": [1, 2.5, null]}']


def test_inferred_codecs(sdk, probe):
    @sdk.host_fn(name="probe", user_data=b"test")
    def hello_world(
        inp: Annotated[str, sdk.Codec(lambda xs: xs.decode().replace("o", "u"))], *user_data
    ) -> Annotated[str, sdk.Codec(lambda xs: xs.replace("u", "a").encode())]:
        return inp

    with sdk.Plugin(probe.wasm(["ptr"], ["ptr"]), functions=[hello_world]) as plugin:
        assert probe_call(probe, plugin, ["ptr"], ["ptr"], ['{"count": 3}']) == [b'{"caant": 3}']


def test_inferred_scalar_parameters(sdk, probe):
    @sdk.host_fn(name="probe")
    def show(a: int, b: float, c: bool, d: bool, e: str) -> str:
        return f"{a}|{b!r}|{'T' if c else 'F'}{'T' if d else 'F'}|{e}"

    params = ["i64", "f64", "i32", "i32", "ptr"]
    with sdk.Plugin(probe.wasm(params, ["ptr"]), functions=[show]) as plugin:
        out = probe_call(probe, plugin, params, ["ptr"], [-(2**63), 0.1, 1, 0, "é"])
    assert out == ["-9223372036854775808|0.1|TF|é".encode()]


def test_current_plugin_and_host_context(sdk, probe):
    @sdk.host_fn(name="probe", user_data=b"test")
    def hello_world(
        current_plugin: sdk.CurrentPlugin, inp: Annotated[dict, sdk.Json], *user_data
    ) -> Annotated[Gribble, sdk.Pickle]:
        ctx = current_plugin.host_context()
        ctx.x = 1000
        mem = current_plugin.alloc(3)
        current_plugin.memory(mem)[:] = b"abc"
        assert bytes(current_plugin.memory(current_plugin.memory_at_offset(mem.offset))) == b"abc"
        return Gribble(f"{inp['count']} {user_data[0].decode()}")

    class Foo:
        x = 100
        y = 200

    foo = Foo()
    with sdk.Plugin(probe.wasm(["ptr"], ["ptr"]), functions=[hello_world]) as plugin:
        out = plugin.call("call", probe.input(["ptr"], ['{"count": 1}']), host_context=foo)
    assert (foo.x, foo.y) == (1000, 200)
    assert pickle.loads(probe.output(["ptr"], out)[0]).frobbitz() == "gromble 1 test"


def test_host_context_defaults_to_none(sdk, probe):
    seen = []

    @sdk.host_fn(name="probe")
    def ctx(current_plugin: sdk.CurrentPlugin, x: int) -> str:
        seen.append(current_plugin.host_context())
        return "ok"

    marker = {"m": 1}
    with sdk.Plugin(probe.wasm(["i64"], ["ptr"]), functions=[ctx]) as plugin:
        plugin.call("call", probe.input(["i64"], [1]), host_context=marker)
        plugin.call("call", probe.input(["i64"], [2]))
    assert seen[0] is marker and seen[1] is None


def test_registry_is_the_default_function_list(sdk, probe):
    @sdk.host_fn(name="probe")
    def registered(inp: str) -> str:
        return inp * 2

    with sdk.Plugin(probe.wasm(["ptr"], ["ptr"])) as plugin:
        assert probe_call(probe, plugin, ["ptr"], ["ptr"], ["ab"]) == [b"abab"]


def test_registry_with_a_redefined_function(sdk, probe):
    """Re-running a @host_fn definition (a notebook cell, a reloaded module) shadows the old one:
    of several functions with one namespace and name, the last in the list wins."""

    @sdk.host_fn(name="probe")
    def first(inp: str) -> str:
        return "first"

    @sdk.host_fn(name="probe")
    def second(inp: str) -> str:
        return "second"

    with sdk.Plugin(probe.wasm(["ptr"], ["ptr"])) as plugin:
        assert probe_call(probe, plugin, ["ptr"], ["ptr"], ["x"]) == [b"second"]
    with sdk.Plugin(probe.wasm(["ptr"], ["ptr"]), functions=[second, first]) as plugin:
        assert probe_call(probe, plugin, ["ptr"], ["ptr"], ["x"]) == [b"first"]


# ---------------------------------------------------------------------------------------------
# Host functions, explicit signatures
# ---------------------------------------------------------------------------------------------


def test_explicit_block_with_user_data(sdk, probe):
    @sdk.host_fn(signature=([sdk.ValType.I64], [sdk.ValType.I64]), user_data=b"test", name="probe")
    def hello_world(plugin, params, results, user_data):
        offs = plugin.alloc(len(user_data) + 1)
        mem = plugin.memory(offs)
        mem[:] = user_data + plugin.input_bytes(params[0])[:1]
        results[0].value = offs.offset

    with sdk.Plugin(probe.wasm(["ptr"], ["ptr"]), functions=[hello_world]) as plugin:
        assert probe_call(probe, plugin, ["ptr"], ["ptr"], ["xyz"]) == [b"testx"]


def test_explicit_return_string_and_input_string(sdk, probe):
    V = sdk.ValType

    @sdk.host_fn(signature=([V.PTR, V.PTR], [V.PTR]), name="probe", user_data=[b"a", b"b"])
    def join(plugin, params, results, *user_data):
        plugin.return_string(
            results[0],
            plugin.input_string(params[0]) + "+" + plugin.input_string(params[1]) + repr(user_data),
        )

    with sdk.Plugin(probe.wasm(["ptr", "ptr"], ["ptr"]), functions=[join]) as plugin:
        assert probe_call(probe, plugin, ["ptr", "ptr"], ["ptr"], ["é", "z"]) == [
            "é+z(b'a', b'b')".encode()
        ]


def test_explicit_reads_of_an_empty_block(request, sdk, probe):
    @sdk.host_fn(signature=([sdk.ValType.I64], [sdk.ValType.I64]), name="probe")
    def read(plugin, params, results):
        text = plugin.input_string(params[0])
        plugin.return_string(results[0], f"[{text}|{plugin.input_bytes(params[0])!r}]")

    with sdk.Plugin(probe.wasm(["ptr"], ["ptr"]), functions=[read]) as plugin:
        assert probe_call(probe, plugin, ["ptr"], ["ptr"], [""]) == [b"[|b'']"]
        assert probe_call(probe, plugin, ["ptr"], ["ptr"], ["a"]) == [b"[a|b'a']"]


def test_explicit_scalars(sdk, probe):
    V = sdk.ValType
    seen = []

    @sdk.host_fn(signature=([V.I32, V.I64, V.F32, V.F64], [V.I64, V.I32]), name="probe")
    def scalars(plugin, params, results):
        seen.append([(p.t, p.value) for p in params])
        results[0].value = params[1].value // 2
        results[1].value = -params[0].value - 1

    params = ["i32", "i64", "f32", "f64"]
    with sdk.Plugin(probe.wasm(params, ["i64", "i32"]), functions=[scalars]) as plugin:
        out = probe_call(probe, plugin, params, ["i64", "i32"], [-(2**31), 2**62, -1.5, 2.0**-30])
    assert out == [2**61, 2**31 - 1]
    assert seen == [[(V.I32, -(2**31)), (V.I64, 2**62), (V.F32, -1.5), (V.F64, 2.0**-30)]]


@pytest.mark.parametrize(("kind", "valtype", "value"), [("i32", "I32", -7), ("i64", "I64", -(2**63))])
def test_explicit_negative_integer_results(sdk, probe, kind, valtype, value):
    t = getattr(sdk.ValType, valtype)

    @sdk.host_fn(signature=([], [t]), name="probe")
    def negative(plugin, params, results):
        results[0].value = value

    with sdk.Plugin(probe.wasm([], [kind]), functions=[negative]) as plugin:
        assert probe_call(probe, plugin, [], [kind], []) == [value]


@pytest.mark.parametrize("kind", ["i32", "i64"])
def test_explicit_result_left_unset_is_0(sdk, probe, kind):
    t = sdk.ValType.I32 if kind == "i32" else sdk.ValType.I64

    @sdk.host_fn(signature=([], [t]), name="probe")
    def unset(plugin, params, results):
        pass

    with sdk.Plugin(probe.wasm([], [kind]), functions=[unset]) as plugin:
        assert probe_call(probe, plugin, [], [kind], []) == [0]


def test_memory_and_input_buffer_are_buffers(sdk, probe):
    """memory() / input_buffer() behave as the official cffi buffer: bytes items and slices,
    len, bytes(), comparisons, item and slice assignment, the buffer protocol."""
    seen = {}

    @sdk.host_fn(signature=([sdk.ValType.I64], [sdk.ValType.I64]), name="probe")
    def look(plugin, params, results):
        buf = plugin.input_buffer(params[0])
        seen["input"] = (len(buf), buf[0], buf[-1], buf[1:3], buf[:], bytes(buf), buf == b"hello",
                         memoryview(buf).tobytes())
        out = plugin.alloc(5)
        mem = plugin.memory(out)
        mem[:] = b"HELLO"
        mem[0] = b"J"
        mem[1:3] = b"el"
        with pytest.raises(TypeError):
            mem[0] = 65
        with pytest.raises(IndexError):
            mem[5]
        results[0].value = out.offset

    with sdk.Plugin(probe.wasm(["ptr"], ["ptr"]), functions=[look]) as plugin:
        assert probe_call(probe, plugin, ["ptr"], ["ptr"], ["hello"]) == [b"JelLO"]
    assert seen["input"] == (5, b"h", b"o", b"el", b"hello", b"hello", True, b"hello")


def test_parse_none_is_a_buffer(sdk, plugin_wasm):
    plugin = sdk.Plugin(plugin_wasm("examples/count_vowels.wat"), functions=[])
    out = plugin.call("count_vowels", "aaa", parse=None)
    assert (len(out), out[0], out[:], bytes(out), out == b'{"count": 3}') == (12, b"{", b'{"count": 3}',
                                                                             b'{"count": 3}', True)
    assert bytes(memoryview(out)) == b'{"count": 3}'


def test_buffers_refuse_copy_and_pickle(sdk, probe, plugin_wasm):
    """Both SDKs' buffers (host-function memory(), parse=None outputs) refuse copy.copy,
    copy.deepcopy and pickle with TypeError (extism_fast's copy once pointed at a freed bytes)."""
    import copy
    import pickle

    refused = []

    def refuses(buf):
        for how in (copy.copy, copy.deepcopy, pickle.dumps):
            with pytest.raises(TypeError, match="pickle"):
                how(buf)
        refused.append(bytes(buf))

    @sdk.host_fn(signature=([sdk.ValType.I64], [sdk.ValType.I64]), name="probe")
    def look(plugin, params, results):
        refuses(plugin.input_buffer(params[0]))
        refuses(plugin.memory(plugin.memory_at_offset(params[0])))
        results[0].value = params[0].value

    with sdk.Plugin(probe.wasm(["ptr"], ["ptr"]), functions=[look]) as plugin:
        assert probe_call(probe, plugin, ["ptr"], ["ptr"], ["hello"]) == [b"hello"]
    plugin = sdk.Plugin(plugin_wasm("examples/count_vowels.wat"), functions=[])
    refuses(plugin.call("count_vowels", "aaa", parse=None))
    assert refused == [b"hello", b"hello", b'{"count": 3}']
    assert plugin.call("count_vowels", "ae") == b'{"count": 2}'


def test_kernel_buffers_expire():
    """extism_fast's buffers raise ValueError once expired (the official ones read whatever memory
    holds then): host-function buffers when the host function returns, outputs at the next call."""
    kept = []

    @extism_fast.host_fn(signature=([extism_fast.ValType.I64], [extism_fast.ValType.I64]), name="probe")
    def keep(plugin, params, results):
        kept.append(plugin.input_buffer(params[0]))
        results[0].value = 0

    from conftest import probe_wasm
    with extism_fast.Plugin(probe_wasm(["ptr"], ["ptr"]), functions=[keep]) as plugin:
        plugin.call("call", b"")
    with pytest.raises(ValueError, match="no longer valid"):
        kept[0][:]
    with pytest.raises(ValueError):
        len(kept[0])
    plugin = extism_fast.Plugin(build_plugin("examples/count_vowels.wat"), functions=[])
    out = plugin.call("count_vowels", "aaa", parse=None)
    view = memoryview(out)
    plugin.call("count_vowels", "eeeeeeeeee")
    with pytest.raises(ValueError):
        bytes(out)
    assert view.tobytes() == b'{"count": 3}'  # a view taken before keeps its bytes


def test_val_and_memory_classes(sdk):
    v = sdk.Val(sdk.ValType.I64, 5)
    assert (v.t, v.value) == (sdk.ValType.I64, 5)
    v._assign(6)
    # the enum names the value 1 "PTR" (defined before its alias I64)
    assert v.value == 6 and repr(v) == "Val(ValType.PTR, 6)" and str(sdk.ValType.I64) == "ValType.PTR"
    assert sdk.ValType.PTR is sdk.ValType.I64 and [t.name for t in sdk.ValType] == [
        "I32", "PTR", "F32", "F64", "V128", "FUNC_REF", "EXTERN_REF"]
    assert [t.value for t in (sdk.ValType.I32, sdk.ValType.I64, sdk.ValType.F32, sdk.ValType.F64)] == [0, 1, 2, 3]
    m = sdk.Memory(8, 3)
    assert (m.offset, m.length, len(m)) == (8, 3, 3)
    assert isinstance(sdk.Codec(len).codec(b"ab"), int)


# ---------------------------------------------------------------------------------------------
# PDK habits (tests/plugins/pdk_habits.wat): what real plugins do that the official kernel and
# host accept. extism_fast gives the same answers by default (strict=True is the opt-in that traps).
# ---------------------------------------------------------------------------------------------

_U64_0 = (0).to_bytes(8, "little")

PDK_HABITS = [
    ("log_zero", b""),              # log_info(0): an empty message
    ("trace_bad", b""),             # filtered-out level: the offset is not looked at
    ("config_zero", _U64_0),        # config_get(0): key "", absent
    ("var_zero", (1).to_bytes(8, "little")),  # var_set(0, "A"); length(var_get(0)) == 1
    ("output_zero", b""),           # output_set(0, 0)
    ("output_bad", b""),            # an out-of-range output is ignored
    ("error_zero", b""),            # error_set(0) clears
    ("error_bad", b""),             # an out-of-range error offset is ignored
    ("loads", _U64_0),              # loads outside kernel memory give 0
    ("stores", (7).to_bytes(8, "little")),    # stores outside kernel memory do nothing
    ("input_tail", _U64_0),         # reads past a short input give 0
    ("double_free", b"VALUE"),      # a second free of a taken key does not free the value
    ("alloc_order", _U64_0),        # fresh space before a block just freed
    ("host_takes_blocks", _U64_0),  # config_get, var_set and log free the blocks they are given
]


@pytest.mark.parametrize("export, expected", PDK_HABITS, ids=[h[0] for h in PDK_HABITS])
def test_pdk_habits(sdk, plugin_wasm, export, expected):
    manifest = {"wasm": [{"data": plugin_wasm("pdk_habits")}], "config": {"k": "VALUE"}}
    plugin = sdk.Plugin(manifest, functions=[])
    assert bytes(plugin.call(export, b"abcdefghij")) == expected
    assert bytes(plugin.call("output_zero", b"")) == b""  # still usable


@pytest.mark.parametrize("export", ["error_freed", "config_bad"])
def test_pdk_habits_that_fail_the_call(sdk, plugin_wasm, export):
    """error_set then free of the block: the call still fails; a config key that is not a block
    fails the call. (extism_fast's message for error_freed is the freed block's text, "E"; the
    official one is empty.)"""
    plugin = sdk.Plugin(plugin_wasm("pdk_habits"), functions=[])
    with pytest.raises(sdk.Error):
        plugin.call(export, b"")
    assert bytes(plugin.call("output_zero", b"")) == b""


def test_error_set_then_free_keeps_the_message(plugin_wasm):
    plugin = extism_fast.Plugin(plugin_wasm("pdk_habits"), functions=[])
    with pytest.raises(extism_fast.PluginError, match="^E$"):
        plugin.call("error_freed")


@pytest.mark.parametrize("export", ["loads", "stores", "input_tail", "output_bad", "error_bad"])
def test_strict_mode_traps_where_the_official_kernel_is_lenient(plugin_wasm, export, monkeypatch):
    for plugin in (extism_fast.Plugin(plugin_wasm("pdk_habits"), functions=[], strict=True),
                   _strict_from_environment(monkeypatch, plugin_wasm)):
        assert plugin.strict
        with pytest.raises(extism_fast.TrapError, match=r"extism:host/env \w+: (offset|index) \d+"):
            plugin.call(export, b"abcdefghij")
        assert plugin.call("output_zero") == b""


def _strict_from_environment(monkeypatch, plugin_wasm):
    monkeypatch.setenv("EXTISM_FAST_STRICT", "1")
    plugin = extism_fast.Plugin(plugin_wasm("pdk_habits"), functions=[])
    monkeypatch.delenv("EXTISM_FAST_STRICT")
    assert not extism_fast.Plugin(plugin_wasm("pdk_habits"), functions=[]).strict
    return plugin


def test_max_pages_equal_to_the_initial_memory(sdk):
    """main's memories must start within max_pages: a module whose memory starts at max_pages
    runs, one page less fails at the first call."""
    wat = b'(module (memory 3) (func (export "run") (result i32) (i32.const 0)))'
    wasm = bytes(extism_fast.wat2wasm(wat))
    assert bytes(sdk.Plugin({"wasm": [{"data": wasm}], "memory": {"max_pages": 3}}, functions=[]).call("run", b"")) == b""
    with pytest.raises(sdk.Error):
        sdk.Plugin({"wasm": [{"data": wasm}], "memory": {"max_pages": 2}}, functions=[]).call("run", b"")


def test_tiny_blocks_past_max_pages_fail_the_call(sdk, plugin_wasm):
    """Block bookkeeping takes from max_pages (the official kernel's headers live in its memory; ours
    are host memory counted against it): a million 1-byte blocks under 16 pages fail the call, the
    next call works, and 20,000 blocks fit at the default limit."""
    wasm = plugin_wasm("kernel")
    with sdk.Plugin({"wasm": [{"data": wasm}], "memory": {"max_pages": 16}}, functions=[]) as plugin:
        with pytest.raises(sdk.Error):
            plugin.call("alloc_blocks", struct.pack("<QQ", 1 << 20, 1))
        assert plugin.call("alloc_blocks", struct.pack("<QQ", 1000, 1)) == struct.pack("<Q", 1000)
    with sdk.Plugin(wasm, functions=[]) as plugin:
        assert plugin.call("alloc_blocks", struct.pack("<QQ", 20_000, 8)) == struct.pack("<Q", 20_000)


def _grows(pages: int, grows: tuple = (), export: str = "run") -> bytes:
    """A module whose memory starts at `pages` and whose call grows it by each of `grows`,
    trapping when memory.grow answers -1 (as an allocator does)."""
    body = "".join(f"(if (i32.eq (memory.grow (i32.const {n})) (i32.const -1)) (then unreachable))" for n in grows)
    return bytes(extism_fast.wat2wasm(f'(module (memory (export "memory") {pages}) '
                                      f'(func (export "{export}") (result i32) {body} (i32.const 0)))'))


def _outcomes(sdk, plugin, name, inputs):
    """"ok" or "fail" per call; a failure of ours must name memory.max_pages."""
    outcomes = []
    for data in inputs:
        try:
            plugin.call(name, data)
            outcomes.append("ok")
        except sdk.Error as e:
            assert sdk is extism or "memory.max_pages" in str(e), str(e)
            outcomes.append("fail")
    return outcomes


@pytest.mark.parametrize("pages, grows, max_pages, expected", [
    (2, (), 2, ["ok", "ok"]),
    (2, (), 1, ["fail", "fail"]),
    (1, (), 0, ["fail", "fail"]),
    (1, (1,), 2, ["ok", "ok"]),
    (1, (2,), 2, ["ok", "fail"]),
    (1, (3,), 2, ["fail", "fail"]),
    (2, (2,), 2, ["ok", "fail"]),
    (1, (1, 1), 2, ["ok", "fail"]),
    (2, (1,), 2, ["ok", "ok"]),
    (0, (1,), 1, ["ok", "fail"]),
])
def test_max_pages_is_a_budget_for_memory_growth(sdk, pages, grows, max_pages, expected):
    """As the official limiter: main's memories must start within max_pages; then the budget
    starts again, and every growth takes from it for the instance's life."""
    manifest = {"wasm": [{"data": _grows(pages, grows)}], "memory": {"max_pages": max_pages}}
    assert _outcomes(sdk, sdk.Plugin(manifest, functions=[]), "run", [b"", b""]) == expected


def test_an_unexported_memory_has_the_budget_too(sdk):
    """A memory main defines without exporting it grows by max_pages at most (ours cannot read its
    size, so it is capped at its minimum + the budget: exact while it is the only one growing)."""
    wasm = bytes(extism_fast.wat2wasm('(module (memory 1) (func (export "run") (result i32) (if (i32.eq '
                                      '(memory.grow (i32.const 1)) (i32.const -1)) (then unreachable)) (i32.const 0)))'))
    plugin = sdk.Plugin({"wasm": [{"data": wasm}], "memory": {"max_pages": 2}}, functions=[])
    assert _outcomes(sdk, plugin, "run", [b""] * 3) == ["ok", "ok", "fail"]


def test_linked_module_memories_share_the_budget(sdk):
    """A linked module's memory does not count at instantiation (the official runtime makes it
    before it sets its limiter), but its growth takes from the budget."""
    lib = _grows(5, (1,), export="grow")
    main = bytes(extism_fast.wat2wasm('(module (import "lib" "grow" (func $grow (result i32))) '
                                      '(memory (export "memory") 2) (func (export "run") (result i32) (call $grow)))'))
    manifest = {"wasm": [{"data": lib, "name": "lib"}, {"data": main}], "memory": {"max_pages": 2}}
    assert _outcomes(sdk, sdk.Plugin(manifest, functions=[]), "run", [b""] * 3) == ["ok", "ok", "fail"]
    # One memory exported by lib and re-exported by main is counted once.
    main = bytes(extism_fast.wat2wasm('(module (import "lib" "memory" (memory 5)) (export "memory" (memory 0)) '
                                      '(func (export "run") (result i32) (if (i32.eq (memory.grow (i32.const 1)) '
                                      '(i32.const -1)) (then unreachable)) (i32.const 0)))'))
    manifest = {"wasm": [{"data": lib, "name": "lib"}, {"data": main}], "memory": {"max_pages": 2}}
    assert _outcomes(sdk, sdk.Plugin(manifest, functions=[]), "run", [b""] * 3) == ["ok", "ok", "fail"]


def test_kernel_memory_growth_shares_the_budget(sdk):
    """A 130 KiB input grows the kernel memory by 2 pages (both kernels), leaving 1 of 3 for the
    plugin's memory; a 200 KiB input needs 3, which a budget of 2 has not."""
    manifest = {"wasm": [{"data": _grows(1, (1,))}], "memory": {"max_pages": 3}}
    big = b"x" * (130 << 10)
    assert _outcomes(sdk, sdk.Plugin(manifest, functions=[]), "run", [big, b"", b""]) == ["ok", "fail", "fail"]
    manifest = {"wasm": [{"data": _grows(1)}], "memory": {"max_pages": 2}}
    assert _outcomes(sdk, sdk.Plugin(manifest, functions=[]), "run", [big, b"x" * (200 << 10)]) == ["ok", "fail"]


def test_kernel_memory_grows_by_what_it_needs_under_a_budget(sdk):
    """Both kernels grow by the pages an input needs (1 -> 4, then 5): of 10 pages, 6 are left for
    the plugin's memory (a doubling kernel would have taken 3 more), and none after."""
    wasm = bytes(extism_fast.wat2wasm(
        '(module (memory (export "memory") 1) (func (export "take") (result i32) (i32.const 0)) '
        '(func (export "run") (result i32) (if (i32.eq (memory.grow (i32.const 6)) (i32.const -1)) '
        '(then unreachable)) (i32.const 0)))'))
    plugin = sdk.Plugin({"wasm": [{"data": wasm}], "memory": {"max_pages": 10}}, functions=[])
    assert _outcomes(sdk, plugin, "take", [b"x" * (200 << 10), b"x" * (270 << 10)]) == ["ok", "ok"]
    assert _outcomes(sdk, plugin, "run", [b""]) == ["ok"]
    assert _outcomes(sdk, plugin, "take", [b"x" * (270 << 10), b"x" * (330 << 10)]) == ["ok", "fail"]


@pytest.mark.parametrize("max_pages, size, expected", [(17, 128 << 10, "ok"), (17, 1000 << 10, "fail"),
                                                       (8, 128 << 10, "fail")])
def test_rust_pdk_echo_under_max_pages(sdk, plugin_wasm, max_pages, size, expected):
    """A Rust-PDK plugin's memory starts at 17 pages; max_pages: 17 leaves it 17 pages to grow
    by, with the kernel's (tests/plugins/pdk_echo17.wat replicates its echo)."""
    data = bytes(range(256)) * (size // 256) + b"tail"
    manifest = {"wasm": [{"data": plugin_wasm("pdk_echo17")}], "memory": {"max_pages": max_pages}}
    plugin = sdk.Plugin(manifest, functions=[])
    assert _outcomes(sdk, plugin, "echo", [data, data]) == [expected] * 2
    if expected == "ok":
        assert bytes(plugin.call("echo", data)) == data


def test_function_exists_only_for_plugin_functions(sdk):
    wat = ('(module (memory (export "mem") 1) (func (export "takes") (param i32)) '
           '(func (export "r64") (result i64) (i64.const 0)) (func (export "ok") (result i32) (i32.const 0)))')
    plugin = sdk.Plugin(bytes(extism_fast.wat2wasm(wat)), functions=[])
    assert [plugin.function_exists(n) for n in ("takes", "r64", "ok", "mem", "zz")] == [False, False, True, False,
                                                                                      False]
    with pytest.raises(sdk.Error):
        plugin.call("takes", b"")


def test_explicit_del(sdk, plugin_wasm):
    """Programs written for the official SDK call __del__ themselves (its __exit__ does)."""
    compiled = _compiled_plugin_class(sdk)(plugin_wasm("examples/count_vowels.wat"), functions=[])
    plugin = sdk.Plugin(plugin_wasm("examples/count_vowels.wat"), functions=[])
    assert bytes(plugin.call("count_vowels", b"aa")) == b'{"count": 2}'
    plugin.__del__()
    compiled.__del__()


# ---------------------------------------------------------------------------------------------
# Host API defaults (issue #9): config, timeout_ms 0, allowed_paths, TOML, WASI output, logging,
# the extism.extism module, extism_version
# ---------------------------------------------------------------------------------------------


def test_config_none_removes_a_manifest_key(sdk, plugin_wasm):
    """Plugin(config=...) is merged over the manifest's config; None removes a key (the official
    SDK sends it to extism_plugin_config as JSON null)."""
    manifest = {"wasm": [{"data": plugin_wasm("kitchen_sink.c")}], "config": {"greeting": "Yo"}}
    with sdk.Plugin(manifest, config={"greeting": None}, functions=_kitchen_functions(sdk)) as plugin:
        assert plugin.call("greet", "Bob") == b"Hello, Bob!"
    with sdk.Plugin(manifest, config={"other": "x", "absent": None},
                    functions=_kitchen_functions(sdk)) as plugin:
        assert plugin.call("greet", "Bob") == b"Yo, Bob!"


def test_config_forms_of_a_one_module_plugin(sdk, tmp_path):
    """The forms the docs configure a plugin with (a path with a config, a manifest dict of one
    path or data with its own config, Plugin's config merged over it, a CompiledPlugin reused with
    a config; extism_fast reads them all without the manifest classes: manifest/plain.py) give the
    plugin the same config in both SDKs."""
    wasm = _bench_plugin("count_vowels_pdk")
    path = tmp_path / "pdk.wasm"
    path.write_bytes(wasm)

    def vowels(plugin):
        with plugin:
            return json.loads(plugin.call("count_vowels", b"aey"))["vowels"]

    assert vowels(sdk.Plugin(str(path), config={"vowels": "y"}, functions=[])) == "y"
    own = {"wasm": [{"path": str(path)}], "config": {"vowels": "ae"}}
    assert vowels(sdk.Plugin(own, functions=[])) == "ae"
    assert vowels(sdk.Plugin(own, config={"vowels": None, "other": "x"}, functions=[])) == "aeiouAEIOU"
    assert vowels(sdk.Plugin({"wasm": [{"data": wasm}], "config": {}}, config={"vowels": "a"}, functions=[])) == "a"
    # an empty value: config_get answers 0 (as for no value): the plugin's default
    assert vowels(sdk.Plugin(str(path), config={"vowels": ""}, functions=[])) == "aeiouAEIOU"
    compiled = _compiled_plugin_class(sdk)(own, functions=[])
    assert vowels(sdk.Plugin(compiled, config={"vowels": "e"})) == "e"
    assert vowels(sdk.Plugin(compiled, config={"vowels": None})) == "aeiouAEIOU"
    assert vowels(sdk.Plugin(compiled)) == "ae"


def test_timeout_ms_zero_is_accepted(sdk, plugin_wasm):
    """timeout_ms 0 is a valid manifest value for both. (That it means "no limit" is tested for
    extism_fast only, in test_plugin.py: the official runtime arms a 0 ms deadline that races
    with the call's start, so a long call there usually runs to the end but sometimes times out
    at once.)"""
    plugin = sdk.Plugin({"wasm": [{"data": plugin_wasm("misc")}], "timeout_ms": 0}, functions=[])
    assert plugin.call("ok", b"") == b"ok"


def test_allowed_paths_without_wasi_is_ignored(sdk, plugin_wasm, tmp_path):
    manifest = {"wasm": [{"data": plugin_wasm("misc")}],
                "allowed_paths": {str(tmp_path): "/data", str(tmp_path / "missing"): "/m"}}
    with sdk.Plugin(manifest, functions=[]) as plugin:
        assert plugin.call("ok", b"") == b"ok"


def test_toml_manifests(sdk, plugin_wasm, tmp_path):
    """A TOML manifest (same keys as JSON) as a str, as bytes, and as a *.toml file; a JSON
    manifest file too."""
    wasm = plugin_wasm("kitchen_sink.c")
    data = base64.b64encode(wasm).decode()
    toml = f'timeout_ms = 5000\n[[wasm]]\ndata = "{data}"\n[config]\ngreeting = "Ahoy"\n'
    (tmp_path / "kitchen.wasm").write_bytes(wasm)
    (tmp_path / "m.toml").write_text(f'[[wasm]]\npath = "{tmp_path / "kitchen.wasm"}"\n[config]\ngreeting = "Ahoy"\n')
    (tmp_path / "m.json").write_text(json.dumps({"wasm": [{"path": str(tmp_path / "kitchen.wasm")}],
                                                 "config": {"greeting": "Ahoy"}}))
    for source in (toml, toml.encode(), str(tmp_path / "m.toml"), str(tmp_path / "m.json")):
        with sdk.Plugin(source, functions=_kitchen_functions(sdk)) as plugin:
            assert plugin.call("greet", "Bob") == b"Ahoy, Bob!"


def _run_children(scripts):
    """Run each (sdk module name, script) in its own interpreter, all at once; their results."""
    procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(script).replace("SDK", name)],
                              cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for name, script, env in scripts]
    return [(p.returncode, out, err) for p in procs for out, err in [p.communicate(timeout=60)]]


def _env(**changes):
    env = {k: v for k, v in os.environ.items() if k != "EXTISM_ENABLE_WASI_OUTPUT"}
    return {**env, **changes}


def test_wasi_output_needs_EXTISM_ENABLE_WASI_OUTPUT(sdk, wasm_path):
    """WASI stdout/stderr are discarded unless EXTISM_ENABLE_WASI_OUTPUT is set (any value)."""
    script = f"""
        import SDK as sdk
        plugin = sdk.Plugin({str(wasm_path("bad/wasi_needed"))!r}, wasi=True, functions=[])
        assert plugin.call("run", b"") == b"ok"
    """
    envs = [_env(), _env(EXTISM_ENABLE_WASI_OUTPUT="1"), _env(EXTISM_ENABLE_WASI_OUTPUT="")]
    results = _run_children([(sdk.__name__, script, env) for env in envs])
    assert [(status, out) for status, out, _ in results] == [
        (0, b""), (0, b"hello from wasi\n"), (0, b"hello from wasi\n")], results


_LOG_SCRIPT = """
    import sys
    import SDK as sdk
    SETUP
    @sdk.host_fn()
    def hello_world(text: str) -> str:
        return text
    plugin = sdk.Plugin(open(sys.argv[1], "rb").read(), functions=[hello_world])
    print(plugin.call("log_levels", "x").decode())
"""


def _log_levels_in_children(sdk_name, wasm, setups):
    """For each SETUP line: (what get_log_level answered, the plugin messages on stderr)."""
    scripts = [(sdk_name, _LOG_SCRIPT.replace("SETUP", setup), _env()) for setup in setups]
    procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(script), str(wasm)], cwd=REPO_ROOT,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _, script, env in [(n, s.replace("SDK", n), e) for n, s, e in scripts]]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        seen = [m for m in ("trace", "debug", "info", "warn", "error") if f"{m}: x".encode() in err]
        results.append((int(out), seen))
    return results


def test_log_level_defaults_and_filters(sdk, wasm_path):
    """Unconfigured: get_log_level is "off" (i32::MAX) and nothing is printed; set_log_file takes
    a level or an official filter string ("extism=debug,cranelift=warn"); "off" is off."""
    off = 2**31 - 1
    setups = ["pass",
              "sdk.set_log_file('stderr', 'info')",
              "sdk.set_log_file('stderr', 'extism=debug,cranelift=warn')",
              "sdk.set_log_file('stderr', 'off')",
              "sdk.set_log_file('stderr')"]
    assert _log_levels_in_children(sdk.__name__, wasm_path("kitchen_sink.c"), setups) == [
        (off, []),
        (2, ["info", "warn", "error"]),
        (1, ["debug", "info", "warn", "error"]),
        (off, []),
        (4, ["error"]),
    ]


def test_log_level_follows_the_applications_logging(wasm_path):
    """extism_fast only (the official SDK logs through Rust, not Python's logging): once the
    application configures logging, plugins see the logger's effective level."""
    setups = ["import logging; logging.basicConfig(level=logging.INFO)",
              "import logging; logging.basicConfig(level=logging.ERROR)",
              "import logging; logging.getLogger('extism_fast').addHandler(logging.NullHandler())"]
    assert _log_levels_in_children("extism_fast", wasm_path("kitchen_sink.c"), setups) == [
        (2, ["info", "warn", "error"]), (4, ["error"]), (2**31 - 1, [])]


_OFFICIAL_EXTISM_EXTISM_NAMES = [
    "HOST_FN_REGISTRY", "CancelHandle", "Codec", "CompiledPlugin", "CurrentPlugin", "CustomLogger",
    "Error", "ExplicitFunction", "Function", "Json", "Memory", "Pickle", "Plugin",
    "TypeInferredFunction", "Val", "ValType", "extism_version", "host_fn", "set_log_custom",
    "set_log_file",
]


def test_the_extism_submodule(sdk):
    """`from extism.extism import ...` works for extism_fast.extism too, with the same objects."""
    module = importlib.import_module(f"{sdk.__name__}.extism")
    assert sdk.extism is module
    for name in _OFFICIAL_EXTISM_EXTISM_NAMES:
        assert hasattr(module, name), name
    assert module.Plugin is sdk.Plugin and module.host_fn is sdk.host_fn


def test_the_extism_submodule_names_are_the_official_ones():
    public = {n for n, v in vars(extism.extism).items()
              if not n.startswith("_") and getattr(v, "__module__", None) == "extism.extism"}
    assert public - {"handle_args"} == set(_OFFICIAL_EXTISM_EXTISM_NAMES) - {"HOST_FN_REGISTRY"}
    assert set(extism_fast.extism.__all__) == set(_OFFICIAL_EXTISM_EXTISM_NAMES)


def test_extism_version_is_x_y_z(sdk):
    assert re.fullmatch(r"\d+\.\d+\.\d+", sdk.extism_version())


def test_wasi_environment_and_arguments_are_empty(sdk, plugin_wasm, monkeypatch):
    """Neither the host's environment nor the manifest config reaches a WASI plugin's environment
    (ours gives them only through wasi_env/wasi_args, which the official Python SDK lacks)."""
    monkeypatch.setenv("HOST_ONLY", "1")
    with sdk.Plugin({"wasm": [{"data": plugin_wasm("wasi_env")}], "config": {"c": "1"}}, wasi=True,
                    functions=[]) as plugin:
        assert plugin.call("environ", b"") == b""
        assert plugin.call("args", b"") == b""


_CTRL_C_PROGRAM = """
import json, sys, time
import {sdk}
plugin = {sdk}.Plugin({{"wasm": [{{"path": sys.argv[1]}}], "timeout_ms": 3000}}, functions=[])
print("ready", flush=True)
start = time.monotonic()
try:
    plugin.call("spin", (10**15).to_bytes(8, "little"))
except BaseException as exc:
    print(json.dumps([type(exc).__name__, time.monotonic() - start]), flush=True)
"""


def test_ctrl_c_during_a_call(sdk):
    """SIGINT while a call runs: it stops ours at once (KeyboardInterrupt), the official SDK's runs
    on to its timeout (3 s) before KeyboardInterrupt (README, Differences). tests/test_sigint.py
    tests ours in depth."""
    loop_wat = str(REPO_ROOT / "tests" / "plugins" / "loop.wat")
    root = os.path.dirname(os.path.dirname(os.path.abspath(extism_fast.__file__)))  # the one imported here
    proc = subprocess.Popen(
        [sys.executable, "-c", _CTRL_C_PROGRAM.format(sdk=sdk.__name__), loop_wat],
        stdout=subprocess.PIPE, text=True, cwd=root, env=dict(os.environ, PYTHONPATH=str(root)),
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert proc.stdout.readline() == "ready\n"
        time.sleep(0.3)  # in the call
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    raised, seconds = json.loads(out)
    assert raised == "KeyboardInterrupt"
    if sdk is extism_fast:
        assert seconds < 2
    else:
        assert seconds >= 2.9
