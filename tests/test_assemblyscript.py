"""Plugins written in AssemblyScript with the official PDK (@extism/as-pdk), built from tests/as.

The ``as_plugins`` fixture (conftest.py) compiles every tests/as/*.ts with
``npx asc <name>.ts --outFile <name>.wasm --use abort=<name>/myAbort -O``; it needs
``(cd tests/as && npm ci)`` to have run (the README test command does it). Every scenario runs on
extism_fast and on the official SDK, which must give the same exact results.
"""

import logging

import pytest

import extism
import extism_fast

SDKS = [extism_fast, extism]
sdk_param = pytest.mark.parametrize("sdk", SDKS, ids=lambda m: m.__name__)


@pytest.fixture(autouse=True)
def _restore_registries():
    registries = [extism_fast.HOST_FN_REGISTRY, extism.extism.HOST_FN_REGISTRY]
    sizes = [len(r) for r in registries]
    yield
    for registry, n in zip(registries, sizes):
        del registry[n:]


def test_plugins_only_import_the_extism_abi(as_plugins):
    import wasmtime

    assert sorted(as_plugins) == ["count_vowels", "error_set", "host_greet", "logging"]
    for name, wasm in as_plugins.items():
        module = wasmtime.Module(wasmtime.Engine(), wasm)
        imports = {f"{i.module}::{i.name}" for i in module.imports}
        allowed = {"extism:host/user::greet"} if name == "host_greet" else set()
        assert {i for i in imports if not i.startswith("extism:host/env::")} == allowed, name


COUNT_VOWELS_CASES = [
    ("Hello World", None, b'{"count": 3, "config": "null", "a": "this is var a"}'),
    ("", None, b'{"count": 0, "config": "null", "a": "this is var a"}'),
    ("this is a test again", {"thing": "x"}, b'{"count": 7, "config": "x", "a": "this is var a"}'),
    ("🌎hello🌎world🌎", {"thing": "cfg"}, b'{"count": 3, "config": "cfg", "a": "this is var a"}'),
    ("AEIOUaeiou" * 500, {"other": "y"}, b'{"count": 5000, "config": "null", "a": "this is var a"}'),
]


@sdk_param
def test_count_vowels(sdk, as_plugins):
    """The PDK's own example: input, output, config and vars."""
    for text, config, expected in COUNT_VOWELS_CASES:
        with sdk.Plugin(as_plugins["count_vowels"], config=config, functions=[]) as plugin:
            assert plugin.call("count_vowels", text) == expected
            # var "a" is removed at the end of each call, so a second call gives the same output
            assert plugin.call("count_vowels", text.encode()) == expected


def test_count_vowels_outputs_match_the_official_sdk(as_plugins):
    outputs = {}
    for sdk in SDKS:
        compiled = (
            extism_fast.CompiledPlugin(as_plugins["count_vowels"], functions=[])
            if sdk is extism_fast
            else extism.extism.CompiledPlugin(as_plugins["count_vowels"], functions=[])
        )
        plugin = sdk.Plugin(compiled, config={"thing": "compiled"})
        outputs[sdk.__name__] = [plugin.call("count_vowels", text) for text, _, _ in COUNT_VOWELS_CASES]
    assert outputs["extism_fast"] == outputs["extism"]
    assert outputs["extism_fast"][0] == b'{"count": 3, "config": "compiled", "a": "this is var a"}'


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        (logging.DEBUG, [(logging.DEBUG, "debug: hi"), (logging.INFO, "info: hi"),
                         (logging.WARNING, "warn: hi"), (logging.ERROR, "error: hi")]),
        (logging.WARNING, [(logging.WARNING, "warn: hi"), (logging.ERROR, "error: hi")]),
    ],
)
def test_logging(as_plugins, caplog, level, expected):
    caplog.set_level(level, logger="extism_fast")
    with extism_fast.Plugin(as_plugins["logging"], functions=[]) as plugin:
        assert plugin.call("log_all", "hi") == b"logged"
        records = [r for r in caplog.records if r.name == "extism_fast"]
        assert [(r.levelno, r.getMessage()) for r in records] == expected
        assert all(r.plugin_id == str(plugin.id) for r in records)


def test_logging_output_matches_the_official_sdk(as_plugins):
    for sdk in SDKS:
        with sdk.Plugin(as_plugins["logging"], functions=[]) as plugin:
            assert plugin.call("log_all", "hi") == b"logged"
            assert plugin.call("log_all", "") == b"logged"


def test_logging_through_set_log_custom(as_plugins):
    logger = logging.getLogger("extism_fast")
    level, handlers = logger.level, list(logger.handlers)
    lines = []
    try:
        custom = extism_fast.set_log_custom(lines.append, "info")
        with extism_fast.Plugin(as_plugins["logging"], functions=[]) as plugin:
            plugin.call("log_all", "x")
            plugin_id = str(plugin.id)
        custom.drain()
    finally:
        for h in list(logger.handlers):
            if h not in handlers:
                logger.removeHandler(h)
        logger.setLevel(level)
    assert [line.split(" ", 1)[1] for line in lines] == [
        f' INFO extism_fast: info: x plugin="{plugin_id}"\n',
        f' WARN extism_fast: warn: x plugin="{plugin_id}"\n',
        f'ERROR extism_fast: error: x plugin="{plugin_id}"\n',
    ]


def _greeters(sdk):
    @sdk.host_fn(name="greet")
    def inferred(name: str) -> str:
        return f"Hello, {name}!"

    @sdk.host_fn(name="greet", signature=([sdk.ValType.I64], [sdk.ValType.I64]), user_data=b"Hi")
    def explicit(plugin, params, results, user_data):
        name = plugin.input_string(params[0])
        plugin.return_string(results[0], f"{user_data.decode()}, {name.upper()}!")

    return inferred, explicit


@sdk_param
def test_host_function_string_in_and_out(sdk, as_plugins):
    inferred, explicit = _greeters(sdk)
    with sdk.Plugin(as_plugins["host_greet"], functions=[inferred]) as plugin:
        assert plugin.call("greet_host", "wörld 🌍") == "Hello, wörld 🌍!".encode()
        assert plugin.call("greet_host", "") == b"Hello, !"
        assert plugin.call("greet_host", "x" * 10_000) == b"Hello, " + b"x" * 10_000 + b"!"
        assert [plugin.call("count_calls", "") for _ in range(3)] == [b"1", b"2", b"3"]
    with sdk.Plugin(as_plugins["host_greet"], functions=[explicit]) as plugin:
        assert plugin.call("greet_host", "bob") == b"Hi, BOB!"


def test_host_function_sees_host_context_and_current_plugin(as_plugins):
    seen = []

    @extism_fast.host_fn()
    def greet(plugin: extism_fast.CurrentPlugin, name: str) -> str:
        seen.append(plugin.host_context())
        return f"{name}@{plugin.host_context()}"

    with extism_fast.Plugin(as_plugins["host_greet"], functions=[greet]) as plugin:
        assert plugin.call("greet_host", "a", host_context="ctx") == b"a@ctx"
        assert plugin.call("greet_host", "b") == b"b@None"
    assert seen == ["ctx", None]


def test_host_function_error_in_an_assemblyscript_plugin(as_plugins):
    @extism_fast.host_fn()
    def greet(name: str) -> str:
        raise LookupError(f"no greeting for {name}")

    with extism_fast.Plugin(as_plugins["host_greet"], functions=[greet]) as plugin:
        with pytest.raises(extism_fast.HostFunctionError, match="LookupError: no greeting for zed"):
            plugin.call("greet_host", "zed")
        assert plugin.call("count_calls", "") == b"1"


@sdk_param
def test_error_set_and_throw(sdk, as_plugins):
    with sdk.Plugin(as_plugins["error_set"], functions=[]) as plugin:
        with pytest.raises(sdk.Error) as info:
            plugin.call("fail", "bad input")
        assert str(info.value) == "failed: bad input"
        assert plugin.call("ok", "") == b"fine"
        # throw -> abort handler (error_set) -> unreachable: the error text wins over the trap
        with pytest.raises(sdk.Error) as info:
            plugin.call("throws", "oops")
        assert str(info.value) == "abort: thrown: oops at error_set.ts:29:3"
        assert plugin.call("ok", "") == b"fine"
        with pytest.raises(sdk.Error) as info:
            plugin.call("fail", "")
        assert str(info.value) == "failed: "


def test_error_classes(as_plugins):
    with extism_fast.Plugin(as_plugins["error_set"], functions=[]) as plugin:
        with pytest.raises(extism_fast.PluginError):
            plugin.call("fail", "x")
        with pytest.raises(extism_fast.PluginError):
            plugin.call("throws", "x")
        with pytest.raises(extism_fast.FunctionNotFoundError):
            plugin.call("myAbort", "x")


def test_many_calls_on_one_instance(as_plugins):
    inferred, _ = _greeters(extism_fast)
    with extism_fast.Plugin(as_plugins["host_greet"], functions=[inferred]) as plugin:
        for i in range(200):
            assert plugin.call("greet_host", str(i)) == f"Hello, {i}!".encode()
        assert plugin.call("count_calls", "") == b"1"
    with extism_fast.Plugin(as_plugins["count_vowels"], functions=[]) as plugin:
        for i in range(200):
            expected = b'{"count": %d, "config": "null", "a": "this is var a"}' % (i % 7)
            assert plugin.call("count_vowels", "xa" * (i % 7) + "yz") == expected
