"""Host functions: explicit and type-inferred signatures, every value type, memory blocks,
CurrentPlugin, user data, host_context, errors, link-time type checks, namespaces, threads, and
the logging API (extism_fast.host.logs).

Most wasm-level tests use the generated probe plugin of conftest.py (``probe`` fixture): its
``call`` export decodes the arguments from the input, calls import ``probe`` once with them and
encodes the results as its output, so every assertion is on exact values.
"""

from __future__ import annotations

import enum
import functools
import inspect
import json
import logging
import math
import os
import pickle
import re
import struct
import subprocess
import sys
import textwrap
import threading
import time
import typing
from typing import Annotated, Tuple

import pytest

import extism_fast
import extism_fast.host.functions as host_functions
from extism_fast import (
    HOST_FN_REGISTRY,
    Codec,
    CurrentPlugin,
    ExplicitFunction,
    Function,
    HostFunctionError,
    Json,
    LinkError,
    Pickle,
    Plugin,
    TypeInferredFunction,
    Val,
    ValType,
    host_fn,
)

# Function.args / returns hold the members' values (ints), as the official SDK's do.
I32, I64, F32, F64 = ValType.I32, ValType.I64, ValType.F32, ValType.F64


@pytest.fixture(autouse=True)
def _restore_registry():
    """host_fn appends to the global registry: drop what each test registered."""
    n = len(HOST_FN_REGISTRY)
    yield
    del HOST_FN_REGISTRY[n:]


def f32(x: float) -> float:
    """x rounded to the nearest f32."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


class Gribble:
    """A picklable object for the Pickle tests."""

    def __init__(self, v):
        self.v = v

    def __eq__(self, other):
        return isinstance(other, Gribble) and other.v == self.v

    def __repr__(self):
        return f"Gribble({self.v!r})"


def run_probe(probe, params, results, functions, values, **plugin_kwargs):
    """Build the probe plugin for (params) -> (results), call it with values, decode the output."""
    with Plugin(probe.wasm(params, results), functions=functions, **plugin_kwargs) as plugin:
        return probe.output(results, plugin.call("call", probe.input(params, values)))


# ---------------------------------------------------------------------------------------------
# Signature inference (no wasm)
# ---------------------------------------------------------------------------------------------


def _shift_jis(data: bytes) -> str:
    return data.decode("shift_jis")


@pytest.mark.parametrize(
    ("annotation", "valtype"),
    [
        (int, I64),
        (float, F64),
        (bool, I32),
        (str, I64),
        (bytes, I64),
        (Annotated[dict, Json], I64),
        (Annotated[Gribble, Pickle], I64),
        (Annotated[str, Codec(_shift_jis)], I64),
        (Annotated[int, "some other metadata"], I64),
    ],
    ids=["int", "float", "bool", "str", "bytes", "json", "pickle", "codec", "annotated-int"],
)
def test_inferred_parameter_types(annotation, valtype):
    def fn(x): ...

    fn.__annotations__ = {"x": annotation, "return": annotation}
    f = host_fn()(fn)
    assert isinstance(f, TypeInferredFunction) and isinstance(f, ExplicitFunction)
    assert isinstance(f, Function)
    assert f.args == [valtype.value]
    assert f.returns == [valtype.value]


def test_inferred_signature_of_a_full_function():
    @host_fn()
    def everything(
        plugin: CurrentPlugin,
        a: int,
        b: float,
        c: bool,
        d: str,
        e: bytes,
        g: Annotated[dict, Json],
        *user_data,
    ) -> Tuple[int, float, bool, str, bytes, Annotated[list, Json], Annotated[Gribble, Pickle]]:
        return (1, 2.0, True, "", b"", [], Gribble(1))

    assert everything.args == [I64.value, F64.value, I32.value, I64.value, I64.value, I64.value]
    assert everything.returns == [I64.value, F64.value, I32.value, I64.value, I64.value, I64.value, I64.value]
    assert everything.uses_current_plugin is True
    assert everything.namespace == "extism:host/user"
    assert everything.name == "everything"
    assert everything.user_data == ()


def test_inferred_returns_none_nested_tuples_and_builtin_tuple():
    @host_fn()
    def nothing(x: int) -> None: ...

    @host_fn()
    def unannotated_return(x: int): ...

    @host_fn()
    def nested() -> Tuple[int, Tuple[bool, str], float]: ...

    @host_fn()
    def builtin() -> tuple[bool, bytes]: ...

    @host_fn()
    def empty() -> Tuple[()]: ...

    assert nothing.returns == [] and unannotated_return.returns == []
    assert nested.returns == [I64.value, I32.value, I64.value, F64.value]
    assert builtin.returns == [I32.value, I64.value]
    assert empty.returns == []


@pytest.mark.parametrize(
    ("annotation", "type_text"),
    [
        (list, "list"),
        (dict, "dict"),
        (typing.Optional[int], "typing.Optional[int]"),
        (Tuple[int, int], "typing.Tuple[int, int]"),
        (Gribble, "Gribble"),
        (complex, "complex"),
    ],
)
def test_unsupported_parameter_annotation_is_a_type_error(annotation, type_text):
    def bad_param(good: int, weird): ...

    bad_param.__annotations__ = {"good": int, "weird": annotation}
    n = len(HOST_FN_REGISTRY)
    with pytest.raises(TypeError) as info:
        host_fn()(bad_param)
    message = str(info.value)
    assert "'bad_param'" in message
    assert "parameter 'weird'" in message
    assert type_text in message
    assert len(HOST_FN_REGISTRY) == n  # nothing registered


@pytest.mark.parametrize(
    ("annotation", "type_text"),
    [
        (list, "list"),
        (typing.Optional[str], "typing.Optional[str]"),
        (Tuple[int, ...], "typing.Tuple[int, ...]"),
        (Tuple[int, list], "list"),
    ],
)
def test_unsupported_return_annotation_is_a_type_error(annotation, type_text):
    def bad_return(x: int): ...

    bad_return.__annotations__ = {"x": int, "return": annotation}
    with pytest.raises(TypeError) as info:
        host_fn()(bad_return)
    assert "'bad_return'" in str(info.value)
    assert "return" in str(info.value)
    assert type_text in str(info.value)


def test_missing_annotations_are_type_errors():
    with pytest.raises(TypeError, match="must include Python type annotations"):

        @host_fn()
        def no_hints(a, b): ...

    with pytest.raises(TypeError, match=r"parameter 'b' has no type annotation"):

        @host_fn()
        def one_missing(a: int, b, c: str): ...

    # Unannotated trailing parameters are user data when there is that much user data.
    @host_fn(user_data=[b"x", 2])
    def takes_user_data(a: int, first, second) -> int: ...

    assert takes_user_data.args == [I64.value]
    assert takes_user_data.user_data == (b"x", 2)

    with pytest.raises(TypeError, match=r"parameter 'first' has no type annotation"):

        @host_fn(user_data=b"x")
        def too_few_user_data(a: int, first, second) -> int: ...


# A plain function's signature is read from its code object, without inspect or typing
# (host/functions.py _plain_parameters): the same reading as inspect.signature and
# typing.get_type_hints, and so the same host function or the same error.


class _Color(enum.Enum):  # a class whose metaclass is not type: read the full way
    RED = 1


# case -> (source of `f`, compiled without __future__ annotations; user data; read without inspect)
_PLAIN_CASES = {
    "scalars": ("def f(a: int, b: float, c: bool) -> str: ...", None, True),
    "bytes, None result": ("def f(a: bytes) -> None: ...", None, True),
    "nothing": ("def f(): ...", None, True),
    "no annotations": ("def f(a, b): ...", None, True),
    "user data": ("def f(a: str, extra) -> str: ...", "u", True),
    "current plugin": ("def f(p: CurrentPlugin, a: int) -> int: ...", None, True),
    "every kind": ("def f(a: int, /, b: str, *rest, c: int = 1, **kw) -> bytes: ...", None, True),
    "required keyword": ("def f(a: int, *, k: int) -> int: ...", None, True),
    "defaults": ("def f(a: int = 3, b: str = 'x') -> bool: ...", None, True),
    "one missing": ("def f(a: int, b, c: int) -> int: ...", None, True),
    "unsupported class": ("def f(a: list) -> int: ...", None, True),
    "unsupported result": ("def f(a: int) -> dict: ...", None, True),
    "tuple class result": ("def f() -> tuple: ...", None, True),
    "string": ("def f(a: 'int') -> int: ...", None, False),
    "generic alias": ("def f(a: list[int]) -> int: ...", None, False),
    "tuple result": ("def f() -> tuple[int, str]: ...", None, False),
    "annotated": ("def f(a: Annotated[str, Json]) -> str: ...", None, False),
    "enum class": ("def f(a: _Color) -> int: ...", None, False),
}


def _plain_function(source: str):
    namespace = {"CurrentPlugin": CurrentPlugin, "Annotated": Annotated, "Json": Json, "_Color": _Color}
    exec(compile(source, "<host function>", "exec", dont_inherit=True), namespace)
    return namespace["f"]


def _made(func, user_data) -> tuple:
    """What TypeInferredFunction makes of ``func``: its wasm signature, or its error."""
    try:
        made = TypeInferredFunction(None, "f", func, user_data)
    except TypeError as exc:
        return ("TypeError", str(exc))
    return (made.args, made.returns, made.uses_current_plugin, made.user_data)


def _wrapped(func):
    @functools.wraps(func)
    def wrapper(*args):
        return func(*args)

    return wrapper


def _with_signature(func):
    func.__signature__ = inspect.Signature()
    return func


class _Holder:
    def method(self, a: int) -> int: ...


@pytest.mark.parametrize("case", sorted(_PLAIN_CASES) + ["wrapped", "__signature__", "no_type_check", "method",
                                                         "partial"])
def test_a_plain_function_is_read_as_inspect_and_typing_read_it(case, monkeypatch):
    scalars = _plain_function(_PLAIN_CASES["scalars"][0])
    func, user_data, plain = {
        "wrapped": (_wrapped(scalars), None, False),
        "__signature__": (_with_signature(_plain_function(_PLAIN_CASES["scalars"][0])), None, False),
        "no_type_check": (typing.no_type_check(_plain_function(_PLAIN_CASES["scalars"][0])), None, False),
        "method": (_Holder().method, None, False),
        "partial": (functools.partial(scalars, 1), None, False),
    }.get(case) or (_plain_function(_PLAIN_CASES[case][0]), *_PLAIN_CASES[case][1:])
    read = host_functions._plain_parameters(func)
    assert (read is not None) is plain
    if read is not None:
        assert read == host_functions._parameters(func, "f")
    made = _made(func, user_data)
    monkeypatch.setattr(host_functions, "_plain_parameters", lambda func: None)
    assert made == _made(func, user_data)


def test_a_plain_typed_host_function_runs(probe):
    func = _plain_function("def f(name: str) -> str:\n    return 'Hello, ' + name + '!'")
    assert host_functions._plain_parameters(func) is not None
    greet = host_fn(name="probe")(func)
    assert run_probe(probe, ["ptr"], ["ptr"], [greet], ["you"]) == [b"Hello, you!"]


def test_host_fn_registry_names_namespaces_and_user_data():
    n = len(HOST_FN_REGISTRY)

    @host_fn()
    def first(x: int) -> int:
        """Docstring kept."""
        return x + 1

    @host_fn(name="renamed", namespace="my:ns", user_data=b"ud")
    def second(x: str, *user_data) -> str:
        return x + user_data[0].decode()

    @host_fn(signature=([I32, F32], [F64]), user_data=["a", 2])
    def third(plugin, params, results, *user_data):
        return ("raw", params, results, user_data)

    assert HOST_FN_REGISTRY[n:] == [first, second, third]
    assert (first.namespace, first.name, first.user_data) == ("extism:host/user", "first", ())
    assert (second.namespace, second.name, second.user_data) == ("my:ns", "renamed", (b"ud",))
    assert (third.args, third.returns, third.user_data) == ([I32.value, F32.value], [F64.value], ("a", 2))
    assert type(third) is ExplicitFunction
    # Calling the object calls the Python function; metadata is kept.
    assert first(41) == 42
    assert second("a", b"b") == "ab"
    assert third(None, [1], [2], "u") == ("raw", [1], [2], ("u",))
    assert first.__name__ == "first" and first.__doc__ == "Docstring kept."
    assert second.__name__ == "second"
    assert "my:ns::renamed" in repr(second)


def test_bare_host_fn_decorator():
    @host_fn
    def bare(x: int) -> str:
        return str(x)

    assert isinstance(bare, TypeInferredFunction) and bare.name == "bare" and bare in HOST_FN_REGISTRY
    assert (bare.args, bare.returns) == ([I64.value], [I64.value])


def test_function_and_host_fn_argument_checks():
    with pytest.raises(TypeError, match="signature entries must be ValType"):
        Function(None, "f", ["i32"], [], lambda *a: None)
    with pytest.raises(TypeError, match="non-empty string"):
        Function(None, "", [], [], lambda *a: None)
    with pytest.raises(TypeError, match=r"signature must be \(\[params\], \[results\]\)"):
        host_fn(signature=[I32])
    f = Function(None, "raw", [I32, I64], [F32], print, 1, 2)
    assert (f.namespace, f.args, f.returns, f.user_data) == ("extism:host/user", [I32.value, I64.value], [F32.value], (1, 2))


# ---------------------------------------------------------------------------------------------
# Explicit signatures: every scalar type in and out
# ---------------------------------------------------------------------------------------------


def test_explicit_scalar_parameters_arrive_exactly(probe):
    seen = []

    def record(plugin, params, results):
        seen.append([(p.t, p.value) for p in params])

    fn = Function(None, "probe", [I32, I64, F32, F64, I32, I64], [], record)
    values = [-(2**31), -(2**63), -2.5, math.pi, 2**31 - 1, 2**63 - 1]
    assert run_probe(probe, ["i32", "i64", "f32", "f64", "i32", "i64"], [], [fn], values) == []
    assert seen == [[(I32, -(2**31)), (I64, -(2**63)), (F32, -2.5), (F64, math.pi),
                     (I32, 2**31 - 1), (I64, 2**63 - 1)]]
    assert all(type(v) is int for (t, v) in seen[0] if t in (I32, I64))
    assert all(type(v) is float for (t, v) in seen[0] if t in (F32, F64))


def test_explicit_scalar_results(probe):
    def produce(plugin, params, results):
        assert [r.t for r in results] == [I32, I64, F32, F64]
        assert all(r.value is None for r in results)
        results[0].value = 2**31 - 1
        results[1].value = 2**63 - 1
        results[2].value = 0.1  # rounded to f32
        results[3].value = math.e

    fn = Function(None, "probe", [], [I32, I64, F32, F64], produce)
    out = run_probe(probe, [], ["i32", "i64", "f32", "f64"], [fn], [])
    assert out == [2**31 - 1, 2**63 - 1, f32(0.1), math.e]


@pytest.mark.parametrize(
    ("kind", "valtype", "value", "expected"),
    [
        ("i32", I32, -1, -1),
        ("i32", I32, -(2**31), -(2**31)),
        ("i64", I64, -(2**63), -(2**63)),
        ("i64", I64, -5, -5),
        # out-of-range values wrap like wasm's i32.wrap_i64 / two's complement
        ("i32", I32, 2**32 + 5, 5),
        ("i32", I32, 2**31, -(2**31)),
        ("i64", I64, 2**64 - 1, -1),
    ],
)
def test_explicit_negative_and_wrapping_integer_results(probe, kind, valtype, value, expected):
    fn = Function(None, "probe", [], [valtype], lambda plugin, params, results: results[0]._assign(value))
    assert run_probe(probe, [], [kind], [fn], []) == [expected]


@pytest.mark.parametrize(
    ("kind", "valtype", "value", "expected"),
    [
        ("f32", F32, float("inf"), float("inf")),
        ("f32", F32, 3, 3.0),  # ints are accepted for float results
        ("f64", F64, -0.0, -0.0),
        ("f64", F64, 1e308, 1e308),
        ("i32", I32, True, 1),
        ("i64", I64, 7.9, 7),  # truncated like int()
    ],
)
def test_explicit_result_conversions(probe, kind, valtype, value, expected):
    fn = Function(None, "probe", [], [valtype], lambda plugin, params, results: results[0]._assign(value))
    [out] = run_probe(probe, [], [kind], [fn], [])
    assert out == expected and math.copysign(1, out) == math.copysign(1, expected)


def test_explicit_multiple_results_mixed_with_parameters(probe):
    def divmod_and_more(plugin, params, results):
        a, b, scale = params[0].value, params[1].value, params[2].value
        q, r = divmod(a, b)
        results[0].value = q
        results[1].value = r
        results[2].value = a * scale

    fn = Function(None, "probe", [I64, I32, F64], [I64, I32, F64], divmod_and_more)
    out = run_probe(probe, ["i64", "i32", "f64"], ["i64", "i32", "f64"], [fn], [1000003, 10, 0.5])
    assert out == [100000, 3, 500001.5]


def test_explicit_block_in_and_out_with_current_plugin_memory(probe):
    def reverse(plugin, params, results):
        assert isinstance(plugin, CurrentPlugin)
        mem = plugin.memory_at_offset(params[0])
        assert isinstance(mem, extism_fast.Memory) and mem.length == len(b"hello \xff\x00 world")
        data = bytes(plugin.memory(mem))
        out = plugin.alloc(len(data))
        plugin.memory(out)[:] = data[::-1]
        results[0].value = out.offset

    fn = Function(None, "probe", [I64], [I64], reverse)
    assert run_probe(probe, ["ptr"], ["ptr"], [fn], [b"hello \xff\x00 world"]) == [b"dlrow \x00\xff olleh"]


def test_current_plugin_reads_handle_zero_as_empty(probe):
    def read(plugin, params, results):
        assert params[0].value == 0  # the probe passes alloc(0) for an empty argument
        got = (plugin.input_bytes(params[0]), plugin.input_string(params[0]),
               bytes(plugin.input_buffer(params[0])), bytes(plugin.memory(extism_fast.Memory(0, 0))),
               plugin.memory_at_offset(0).length)
        plugin.return_string(results[0], repr(got))

    fn = Function(None, "probe", [I64], [I64], read)
    assert run_probe(probe, ["ptr"], ["ptr"], [fn], [b""]) == [repr((b"", "", b"", b"", 0)).encode()]


#: Byte buffers return_bytes takes (C-contiguous, 1-dimensional, of bytes), and one that is not
#: contiguous, which it refuses as a typed ``const uint8_t[::1]`` did (the exporter's BufferError).
BYTE_BUFFERS = {"bytes": lambda: b"wxyz", "bytearray": lambda: bytearray(b"wxyz"),
                "memoryview": lambda: memoryview(b"wxyz"), "memoryview slice": lambda: memoryview(b"..wxyz")[2:],
                "char memoryview": lambda: memoryview(b"wxyz").cast("c")}
NON_CONTIGUOUS = memoryview(b"w.x.y.z.")[::2]


@pytest.mark.parametrize("kind", BYTE_BUFFERS)
def test_return_bytes_takes_any_contiguous_byte_buffer(probe, kind):
    value = BYTE_BUFFERS[kind]()

    def give(plugin, params, results):
        plugin.return_bytes(results[0], value)

    fn = Function(None, "probe", [], [I64], give)
    assert run_probe(probe, [], ["ptr"], [fn], []) == [b"wxyz"]
    if isinstance(value, bytearray):
        value.append(0)  # its buffer was released: it can be resized


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        (NON_CONTIGUOUS, BufferError, "not C-contiguous"),
        ("wxyz", TypeError, "a bytes-like object is required, not 'str'"),
        (None, TypeError, "a bytes-like object is required, not 'NoneType'"),  # the official SDK's too
        (memoryview(b"wxyz").cast("b"), ValueError, "1-dimensional buffer of bytes, got a 1-dimensional "
                                                    "memoryview of format 'b'"),
        (memoryview(b"wxyz").cast("B", (2, 2)), ValueError, "got a 2-dimensional memoryview"),
    ],
    ids=["non-contiguous", "str", "None", "signed bytes", "2-dimensional"],
)
def test_return_bytes_refuses_what_is_not_contiguous_bytes(probe, value, error, match):
    """Refused with the output left as it was; the plugin goes on (the next return works)."""
    def give(plugin, params, results):
        before = results[0].value
        with pytest.raises(error, match=match):
            plugin.return_bytes(results[0], value)
        assert results[0].value == before
        plugin.return_bytes(results[0], b"after")

    fn = Function(None, "probe", [], [I64], give)
    assert run_probe(probe, [], ["ptr"], [fn], []) == [b"after"]


def test_explicit_result_left_unset_is_0(probe):
    fn = Function(None, "probe", [], [I64], lambda plugin, params, results: None)
    assert run_probe(probe, [], ["i64"], [fn], []) == [0]


# ---------------------------------------------------------------------------------------------
# Inferred signatures at run time
# ---------------------------------------------------------------------------------------------


def test_inferred_scalars_in_and_out(probe):
    seen = []

    @host_fn(name="probe")
    def probe_fn(a: int, b: float, c: bool, d: bool) -> Tuple[int, float, bool, bool]:
        seen.append((a, b, c, d))
        return (a * 2, b / 4, not c, not d)

    out = run_probe(probe, ["i64", "f64", "i32", "i32"], ["i64", "f64", "i32", "i32"], [probe_fn],
                    [2**40 + 1, 10.0, 1, 0])
    assert seen == [(2**40 + 1, 10.0, True, False)]
    assert [type(v) for v in seen[0]] == [int, float, bool, bool]
    assert out == [2**41 + 2, 2.5, 0, 1]


@pytest.mark.parametrize(
    ("annotation", "value", "kind", "expected"),
    [
        (int, 12345678901234, "i64", 12345678901234),
        (int, True, "i64", 1),
        (float, 2.75, "f64", 2.75),
        (float, 3, "f64", 3.0),
        (bool, True, "i32", 1),
        (bool, 0, "i32", 0),
        (bool, "non-empty", "i32", 1),
    ],
)
def test_inferred_single_scalar_results(probe, annotation, value, kind, expected):
    def fn():
        return value

    fn.__annotations__ = {"return": annotation}
    f = host_fn(name="probe")(fn)
    [out] = run_probe(probe, [], [kind], [f], [])
    assert out == expected and type(out) is type(expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("wörld 🌍", "Hello, wörld 🌍!"), ("", "Hello, !"), ("x" * 100_000, "Hello, " + "x" * 100_000 + "!")],
    ids=["unicode", "empty", "100k"],
)
def test_inferred_str_in_and_out(probe, text, expected):
    @host_fn(name="probe")
    def greet(name: str) -> str:
        assert type(name) is str
        return f"Hello, {name}!"

    assert run_probe(probe, ["ptr"], ["ptr"], [greet], [text]) == [expected.encode()]


def test_inferred_bytes_in_and_out(probe):
    data = bytes(range(256)) + b"\x00\xff"

    @host_fn(name="probe")
    def transform(b: bytes) -> bytes:
        assert type(b) is bytes
        return bytes(x ^ 0x5A for x in b)

    assert run_probe(probe, ["ptr"], ["ptr"], [transform], [data]) == [bytes(x ^ 0x5A for x in data)]


def test_inferred_empty_results_give_offset_zero(probe):
    @host_fn(name="probe")
    def empties() -> Tuple[str, bytes]:
        return ("", b"")

    # An empty block is offset 0 (the kernel's alloc(0)); the probe outputs length 0 for both.
    assert run_probe(probe, [], ["ptr", "ptr"], [empties], []) == [b"", b""]


def test_inferred_json_in_and_out(probe):
    doc = {"name": "wörld", "n": [1, 2.5, None, True], "nested": {"a": {}}}
    seen = []

    @host_fn(name="probe")
    def summarize(d: Annotated[dict, Json]) -> Annotated[list, Json]:
        seen.append(d)
        return [sorted(d), d["n"][1] * 2, "é"]

    out = run_probe(probe, ["ptr"], ["ptr"], [summarize], [json.dumps(doc)])
    assert seen == [doc]
    assert out == [json.dumps([["n", "name", "nested"], 5.0, "é"]).encode()]


def test_inferred_pickle_in_and_out(probe):
    @host_fn(name="probe")
    def grow(g: Annotated[Gribble, Pickle]) -> Annotated[Gribble, Pickle]:
        assert isinstance(g, Gribble)
        return Gribble(g.v * 2)

    [out] = run_probe(probe, ["ptr"], ["ptr"], [grow], [pickle.dumps(Gribble("ab"))])
    assert out == pickle.dumps(Gribble("abab"))
    assert pickle.loads(out) == Gribble("abab")


def test_inferred_codec_in_and_out(probe):
    @host_fn(name="probe")
    def codecs(
        inp: Annotated[str, Codec(lambda xs: xs.decode("shift_jis").replace("o", "u"))],
    ) -> Annotated[str, Codec(lambda s: s.replace("u", "a").encode("utf-16-le"))]:
        return inp + "!"

    [out] = run_probe(probe, ["ptr"], ["ptr"], [codecs], ["fooこんにちは".encode("shift_jis")])
    assert out == "faaこんにちは!".encode("utf-16-le")


def test_inferred_tuple_of_blocks_and_scalars(probe):
    @host_fn(name="probe")
    def split(
        line: str, sep: bytes, limit: int
    ) -> Tuple[int, str, Annotated[list, Json], Tuple[bytes, bool]]:
        parts = line.split(sep.decode(), limit)
        return (len(parts), parts[0], parts[1:], (sep * 2, len(parts) > 2))

    out = run_probe(probe, ["ptr", "ptr", "i64"], ["i64", "ptr", "ptr", "ptr", "i32"], [split],
                    ["a,b,c,d", b",", 2])
    assert out == [3, b"a", b'["b", "c,d"]', b",,", 1]


def test_inferred_mixed_scalars_and_blocks(probe):
    @host_fn(name="probe")
    def repeat(times: int, text: str, upper: bool, ratio: float) -> Tuple[str, float]:
        s = text * times
        return (s.upper() if upper else s, ratio * times)

    out = run_probe(probe, ["i64", "ptr", "i32", "f64"], ["ptr", "f64"], [repeat], [3, "ab", 1, 0.25])
    assert out == [b"ABABAB", 0.75]


def test_inferred_current_plugin_first_parameter(probe):
    seen = []

    @host_fn(name="probe")
    def with_plugin(plugin: CurrentPlugin, text: str) -> int:
        seen.append(type(plugin))
        # Write into a fresh block by hand and return its offset as a plain int.
        mem = plugin.alloc(len(text) + 2)
        plugin.memory(mem)[:] = b"<" + text.encode() + b">"
        return mem.offset

    assert with_plugin.args == [I64.value] and with_plugin.returns == [I64.value]
    with Plugin(probe.wasm(["ptr"], ["i64"]), functions=[with_plugin]) as plugin:
        [offset] = probe.output(["i64"], plugin.call("call", probe.input(["ptr"], ["abc"])))
    assert seen == [CurrentPlugin]
    assert offset > 0

    # The CurrentPlugin also reads parameters by hand: here the raw offset of an int parameter.
    @host_fn(name="probe")
    def read(plugin: CurrentPlugin, offset: int) -> bytes:
        return b"<" + plugin.input_bytes(Val(I64, offset)) + b">"

    wasm = probe.wasm(["ptr"], ["ptr"])
    assert read.args == [I64.value]
    with Plugin(wasm, functions=[read]) as plugin:
        assert probe.output(["ptr"], plugin.call("call", probe.input(["ptr"], ["abc"]))) == [b"<abc>"]


def test_user_data_explicit_and_inferred(probe):
    marker = object()

    @host_fn(name="probe", user_data=b"ud")
    def inferred(text: str, *user_data) -> str:
        return f"{text}|{user_data!r}"

    assert run_probe(probe, ["ptr"], ["ptr"], [inferred], ["x"]) == [b"x|(b'ud',)"]

    @host_fn(name="probe", user_data=["a", 2, marker])
    def inferred_named(text: str, first, second, third) -> str:
        assert third is marker
        return f"{text}|{first}|{second}"

    assert run_probe(probe, ["ptr"], ["ptr"], [inferred_named], ["y"]) == [b"y|a|2"]

    @host_fn(name="probe", signature=([I64], [I64]), user_data=[b"p", b"q"])
    def explicit(plugin, params, results, *user_data):
        plugin.return_bytes(results[0], b"".join(user_data) + plugin.input_bytes(params[0]))

    assert run_probe(probe, ["ptr"], ["ptr"], [explicit], ["z"]) == [b"pqz"]

    # Function(...) takes user data as trailing positional arguments.
    fn = Function(None, "probe", [I64], [I64],
                  lambda plugin, params, results, a, b: plugin.return_string(results[0], f"{a}+{b}"),
                  "A", "B")
    assert run_probe(probe, ["ptr"], ["ptr"], [fn], [""]) == [b"A+B"]


def test_host_context_reaches_the_host_function_for_one_call(probe):
    seen = []

    @host_fn(name="probe")
    def ctx(plugin: CurrentPlugin, n: int) -> int:
        context = plugin.host_context()
        seen.append(context)
        if context is not None:
            context["calls"] += n
        return n

    context = {"calls": 0}
    with Plugin(probe.wasm(["i64"], ["i64"]), functions=[ctx]) as plugin:
        assert plugin.call("call", probe.input(["i64"], [5]), host_context=context) == probe.input(["i64"], [5])
        plugin.call("call", probe.input(["i64"], [1]))
        plugin.call("call", probe.input(["i64"], [2]), host_context=context)
    assert seen[0] is context and seen[1] is None and seen[2] is context
    assert context == {"calls": 7}


def test_function_objects_are_reusable_across_plugins_and_compiled_plugins(probe):
    calls = []

    @host_fn(name="probe")
    def count(x: int) -> int:
        calls.append(x)
        return x + len(calls)

    wasm = probe.wasm(["i64"], ["i64"])
    compiled = extism_fast.CompiledPlugin(wasm, functions=[count])
    plugins = [Plugin(compiled), Plugin(compiled), Plugin(wasm, functions=[count])]
    outs = [probe.output(["i64"], p.call("call", probe.input(["i64"], [10]))) for p in plugins]
    assert outs == [[11], [12], [13]]
    for p in plugins:
        p.close()


def test_plugin_uses_the_registry_when_functions_is_not_given(probe):
    @host_fn(name="probe")
    def from_registry(x: int) -> int:
        return -x if x < 0 else x * 3

    with Plugin(probe.wasm(["i64"], ["i64"])) as plugin:
        assert probe.output(["i64"], plugin.call("call", probe.input(["i64"], [14]))) == [42]
    # An explicit empty list disables the registry.
    with pytest.raises(LinkError, match="extism:host/user::probe"):
        Plugin(probe.wasm(["i64"], ["i64"]), functions=[])


# ---------------------------------------------------------------------------------------------
# Errors: exceptions in host functions, link-time checks
# ---------------------------------------------------------------------------------------------


def test_exception_in_host_function(probe, caplog):
    state = {"fail": True}

    @host_fn(name="probe")
    def flaky(text: str) -> str:
        if state["fail"]:
            raise ValueError(f"boom: {text}")
        return text.upper()

    caplog.set_level(logging.ERROR, logger="extism_fast")
    with Plugin(probe.wasm(["ptr"], ["ptr"]), functions=[flaky]) as plugin:
        with pytest.raises(HostFunctionError) as info:
            plugin.call("call", probe.input(["ptr"], ["first"]))
        assert isinstance(info.value, extism_fast.CallError) and isinstance(info.value, extism_fast.Error)
        message = str(info.value)
        assert "ValueError" in message and "boom: first" in message
        assert "extism:host/user::probe" in message
        records = [r for r in caplog.records if r.name == "extism_fast" and r.exc_info]
        assert len(records) == 1
        assert records[0].levelno == logging.ERROR
        assert records[0].exc_info[0] is ValueError
        assert "boom: first" in caplog.text and "Traceback" in caplog.text
        # The plugin serves the next call.
        state["fail"] = False
        assert probe.output(["ptr"], plugin.call("call", probe.input(["ptr"], ["second"]))) == [b"SECOND"]


@pytest.mark.parametrize(
    ("annotation", "value", "kind", "error"),
    [
        (int, "12", "i64", "TypeError"),
        (str, b"bytes", "ptr", "TypeError: expected a str result, got bytes"),
        (bytes, "text", "ptr", "TypeError: expected a bytes result, got str"),
        (Tuple[int, int], (1, 2, 3), "i64", "TypeError: expected a tuple of 2 results, got 3 values"),
        (Tuple[int, int], 5, "i64", "TypeError: expected a tuple of 2 results, got int"),
        (float, "x", "f64", "ValueError"),
        (Annotated[set, Json], {1}, "ptr", "TypeError"),
    ],
)
def test_bad_inferred_return_values_are_host_function_errors(probe, annotation, value, kind, error):
    def fn():
        return value

    fn.__annotations__ = {"return": annotation}
    f = host_fn(name="probe")(fn)
    kinds = [kind] * len(f.returns)
    with Plugin(probe.wasm([], kinds), functions=[f]) as plugin:
        with pytest.raises(HostFunctionError, match=error):
            plugin.call("call", b"")
        with pytest.raises(HostFunctionError):  # still usable, still failing the same way
            plugin.call("call", b"")


def test_keyboard_interrupt_in_a_host_function_propagates(probe):
    @host_fn(name="probe")
    def interrupt() -> None:
        raise KeyboardInterrupt("stop")

    with Plugin(probe.wasm([], []), functions=[interrupt]) as plugin:
        with pytest.raises(KeyboardInterrupt, match="stop"):
            plugin.call("call", b"")
        with pytest.raises(KeyboardInterrupt):  # the plugin is still usable
            plugin.call("call", b"")


@pytest.mark.parametrize(
    ("params", "results", "declared_args", "declared_returns", "plugin_type", "host_type"),
    [
        (["i64"], ["i64"], [I32], [I32], "(i64) -> (i64)", "(i32) -> (i32)"),
        (["f32"], [], [F64], [], "(f32) -> ()", "(f64) -> ()"),
        (["i32", "i64"], ["f64"], [I32, I64], [], "(i32, i64) -> (f64)", "(i32, i64) -> ()"),
        ([], ["i64", "i64"], [], [I64], "() -> (i64, i64)", "() -> (i64)"),
    ],
)
def test_type_mismatch_is_a_link_error_at_load(probe, params, results, declared_args,
                                               declared_returns, plugin_type, host_type):
    called = []
    fn = Function(None, "probe", declared_args, declared_returns, lambda *a: called.append(a))
    with pytest.raises(LinkError) as info:
        Plugin(probe.wasm(params, results), functions=[fn])
    message = str(info.value)
    assert "extism:host/user::probe" in message
    assert plugin_type in message and host_type in message
    with pytest.raises(LinkError, match=r"extism:host/user::probe"):
        extism_fast.CompiledPlugin(probe.wasm(params, results), functions=[fn])
    assert called == []


def test_inferred_type_mismatch_is_a_link_error(probe):
    @host_fn(name="probe")
    def wrong(x: float) -> str: ...

    with pytest.raises(LinkError) as info:
        Plugin(probe.wasm(["i64"], ["i64"]), functions=[wrong])
    assert "extism:host/user::probe" in str(info.value)
    assert "(i64) -> (i64)" in str(info.value) and "(f64) -> (i64)" in str(info.value)


def test_unsupported_value_type_is_a_link_error(probe):
    fn = Function(None, "probe", [ValType.V128], [], lambda *a: None)
    with pytest.raises(LinkError, match="V128"):
        Plugin(probe.wasm([], []), functions=[fn])


def test_a_signature_the_program_rewrote_links_when_it_holds_valtypes(probe):
    """args / returns are plain attributes: members or values put there by the program link as the
    values would; anything else is a LinkError naming the function and the entry."""
    fn = Function(None, "probe", [], [], lambda plugin, params, results: results[0]._assign(params[0].value * 2))
    fn.args, fn.returns = [ValType.I64], [I64.value]
    assert run_probe(probe, ["i64"], ["i64"], [fn], [21]) == [42]
    assert repr(fn) == "Function(extism:host/user::probe (I64) -> (I64))"
    for bad in ("I64", 1.0, True, 7, -1, None):
        fn.args = [bad]
        with pytest.raises(LinkError, match=f"extism:host/user::probe: {re.escape(repr(bad))} is not a ValType value"):
            Plugin(probe.wasm(["i64"], ["i64"]), functions=[fn])


def test_valtype_is_the_official_enum_made_when_first_named():
    """host/functions.py loads without enum (a typed host function needs only ValType's values);
    ValType, made when first named, is the official SDK's Enum: same members and values, PTR an
    alias of I64, one class however it is reached, pickled by name."""
    program = textwrap.dedent("""
        import sys
        import extism_fast.host.functions as functions
        assert "enum" not in sys.modules
        ValType = functions.ValType
        import enum, pickle, extism, extism_fast
        assert issubclass(ValType, enum.Enum) and functions.ValType is ValType is extism_fast.ValType
        assert extism_fast.extism.ValType is ValType and ValType.__qualname__ == "ValType"
        assert [(m.name, m.value) for m in ValType] == [(m.name, m.value) for m in extism.ValType]
        assert ValType.PTR is ValType.I64 and ValType(1) is ValType.I64 and ValType.I64.name == "PTR"
        assert pickle.loads(pickle.dumps(ValType.F64)) is ValType.F64
        codes = (functions._I32, functions._I64, functions._F32, functions._F64, functions._V128,
                 functions._FUNC_REF, functions._EXTERN_REF)
        assert codes == tuple(ValType[name].value for name in functions._VALTYPE_NAMES) == tuple(range(7))
        from extism_fast.host.functions import ValType as again
        assert again is ValType
        print("ok")
    """)
    # -S: this machine's site hooks load enum; the packages come on PYTHONPATH instead
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, sys.path))}
    proc = subprocess.run([sys.executable, "-S", "-c", program], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0 and proc.stdout == "ok\n", proc.stderr


# ---------------------------------------------------------------------------------------------
# Namespaces
# ---------------------------------------------------------------------------------------------


def test_custom_namespace(plugin_wasm, probe):
    @host_fn(namespace="my:namespace")
    def shout(text: str) -> str:
        return text.upper() + "!"

    with Plugin(plugin_wasm("host_ns"), functions=[shout]) as plugin:
        assert plugin.call("call", "hello wörld") == "HELLO WÖRLD!".encode()

    # The same name in the default namespace does not satisfy the import ...
    @host_fn(name="shout")
    def default_ns(text: str) -> str: ...

    with pytest.raises(LinkError, match="my:namespace::shout"):
        Plugin(plugin_wasm("host_ns"), functions=[default_ns])

    # ... and functions of several namespaces can share a name.
    @host_fn(name="probe", namespace="other:ns")
    def other(x: int) -> int:
        return x + 1

    @host_fn(name="probe")
    def user(x: int) -> int:
        return x + 2

    wasm = probe.wasm(["i64"], ["i64"], namespace="other:ns")
    with Plugin(wasm, functions=[user, other]) as plugin:
        assert probe.output(["i64"], plugin.call("call", probe.input(["i64"], [1]))) == [2]


def test_extism_host_env_namespace_is_reserved(probe):
    fn = Function("extism:host/env", "probe", [], [], lambda *a: None)
    with pytest.raises(LinkError, match="reserved"):
        Plugin(probe.wasm([], []), functions=[fn])


# ---------------------------------------------------------------------------------------------
# A C-PDK plugin and the hand-written WAT plugin
# ---------------------------------------------------------------------------------------------


def _c_functions(log):
    @host_fn(signature=([I32, I32], [I32]))
    def add_i32(plugin, params, results):
        log.append("add_i32")
        results[0].value = params[0].value + params[1].value

    @host_fn()
    def mul_i64(a: int, b: int) -> int:
        log.append("mul_i64")
        return a * b

    @host_fn(signature=([F32], [F32]))
    def half_f32(plugin, params, results):
        log.append("half_f32")
        results[0].value = params[0].value / 2

    @host_fn()
    def hypot_f64(a: float, b: float) -> float:
        log.append("hypot_f64")
        return math.hypot(a, b)

    @host_fn(name="greet")
    def greet(plugin: CurrentPlugin, name: str, *user_data) -> str:
        log.append("greet")
        return f"Hello, {name}!"

    @host_fn(namespace="extism:host/shouty")
    def shout(text: str) -> str:
        log.append("shout")
        return text.upper()

    return [add_i32, mul_i64, half_f32, hypot_f64, greet, shout]


def test_c_pdk_plugin_scalars(plugin_wasm):
    log = []
    with Plugin(plugin_wasm("host_calls.c"), functions=_c_functions(log)) as plugin:
        data = struct.pack("<iiqqfIdd", 2**31 - 10, 7, 3_000_000_007, 1_000_003, 5.5, 0, 3.0, 4.0)
        out = plugin.call("arith", data)
        assert struct.unpack("<ifqd", out) == (2**31 - 3, 2.75, 3_000_000_007 * 1_000_003, 5.0)
        assert log == ["add_i32", "half_f32", "mul_i64", "hypot_f64"]
        with pytest.raises(extism_fast.PluginError, match="arith needs 48 input bytes"):
            plugin.call("arith", b"short")


def test_c_pdk_plugin_negative_results(plugin_wasm):
    with Plugin(plugin_wasm("host_calls.c"), functions=_c_functions([])) as plugin:
        data = struct.pack("<iiqqfIdd", -5, -6, -3, 7, -1.0, 0, 0.0, 0.0)
        assert struct.unpack("<ifqd", plugin.call("arith", data)) == (-11, -0.5, -21, 0.0)


def test_c_pdk_plugin_blocks_and_namespace(plugin_wasm):
    log = []
    with Plugin(plugin_wasm("host_calls.c"), functions=_c_functions(log)) as plugin:
        assert plugin.call("greet", "wörld") == "Hello, wörld!".encode()
        assert plugin.call("chain", "Bob") == b"HELLO, BOB!"
        assert plugin.call("greet", "") == b"Hello, !"
    assert log == ["greet", "greet", "shout", "greet"]


def test_wat_plugin_host_user(plugin_wasm):
    @host_fn()
    def hello_world(plugin: CurrentPlugin, text: bytes) -> bytes:
        return b"hello " + text

    @host_fn(signature=([I32, I32], [I32]))
    def add_i32(plugin, params, results):
        results[0].value = params[0].value + params[1].value

    @host_fn()
    def mul_f64(a: float, b: float) -> float:
        return a * b

    @host_fn()
    def nothing() -> None:
        calls.append("nothing")

    calls = []
    with Plugin(plugin_wasm("host_user"), functions=[hello_world, add_i32, mul_f64, nothing]) as plugin:
        assert plugin.call("call_hello", b"\x00you") == b"hello \x00you"
        assert plugin.call("call_add", struct.pack("<ii", 40, 2)) == struct.pack("<i", 42)
        assert plugin.call("call_mul", struct.pack("<dd", 1.5, -4.0)) == struct.pack("<d", -6.0)
        assert plugin.call("call_nothing") == b"ok"
    assert calls == ["nothing"]


# ---------------------------------------------------------------------------------------------
# Threads
# ---------------------------------------------------------------------------------------------


def _run_threads(targets, timeout=10.0):
    threads = [threading.Thread(target=t, daemon=True) for t in targets]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    alive = [t for t in threads if t.is_alive()]
    assert not alive, f"{len(alive)} thread(s) still running after {timeout} s"


def test_two_plugins_in_two_threads_run_concurrently(plugin_wasm):
    """Both calls must be inside their plugin at once: the host function waits for the other."""
    barrier = threading.Barrier(2, timeout=5)
    met = []

    @host_fn()
    def rendezvous(plugin: CurrentPlugin) -> None:
        met.append(barrier.wait())  # BrokenBarrierError (-> HostFunctionError) after 5 s alone

    wasm = plugin_wasm("host_threads")
    compiled = extism_fast.CompiledPlugin(wasm, functions=[rendezvous])
    plugins = [Plugin(compiled), Plugin(wasm, functions=[rendezvous])]
    outputs, errors = {}, []

    def worker(i):
        def run():
            try:
                for _ in range(3):
                    outputs.setdefault(i, []).append(
                        plugins[i].call("meet", struct.pack("<Q", 20_000))
                    )
            except BaseException as exc:  # reported below
                errors.append(exc)
        return run

    _run_threads([worker(0), worker(1)])
    assert errors == []
    assert outputs == {0: [b"met"] * 3, 1: [b"met"] * 3}
    assert sorted(met) == [0, 0, 0, 1, 1, 1]
    for p in plugins:
        p.close()


def test_the_gil_is_released_while_wasm_runs(plugin_wasm):
    """A plugin loops in wasm (no host calls); Python code in another thread cancels it.

    If the call held the GIL, the canceller could never run and the call would end only at
    the manifest's 5 s timeout (TimeoutError instead of CancelledError).
    """
    entered = threading.Event()

    @host_fn()
    def rendezvous() -> None:
        entered.set()

    manifest = {"wasm": [{"data": plugin_wasm("host_threads")}], "timeout_ms": 5000}
    plugin = Plugin(manifest, functions=[rendezvous])
    handle = plugin.cancel_handle()
    result = []

    def call():
        start = time.monotonic()
        try:
            plugin.call("stuck", b"")
        except BaseException as exc:
            result.append((exc, time.monotonic() - start))

    def cancel():
        assert entered.wait(5)
        # Pure-Python work while the other thread is inside wasm.
        total = sum(i * i for i in range(20_000))
        assert total > 0
        handle.cancel()

    _run_threads([call, cancel])
    [(exc, elapsed)] = result
    assert isinstance(exc, extism_fast.CancelledError), exc
    assert elapsed < 4
    plugin.close()


# A program with a plugin of interruptible=False (no tick can release the GIL during its calls):
# a worker thread does Python work while the call spins in wasm, started before the call
# ("before") or by the host function the call makes ("host"), then tells whether the call was
# still running (Plugin's repr), i.e. whether the call let it have the GIL. In a process of its
# own, so that it starts with one Python thread.
_GIL_PROGRAM = """
import struct, sys, threading
import extism_fast

mode, path = sys.argv[1], sys.argv[2]
go, seen = threading.Event(), []

def work():
    go.wait()
    sum(i * i for i in range(20_000))  # Python: needs the GIL
    seen.append(repr(plugin))

@extism_fast.host_fn()
def rendezvous() -> None:
    if mode == "host":
        threading.Thread(target=work, daemon=True).start()
    go.set()

assert threading.active_count() == 1
plugin = extism_fast.Plugin(open(path, "rb").read(), functions=[rendezvous], interruptible=False)
if mode == "before":
    threading.Thread(target=work, daemon=True).start()
assert plugin.call("meet", struct.pack("<Q", 400_000_000)) == b"met"  # ~0.3 s of wasm after rendezvous
while not seen:
    pass
print(seen[0].endswith("running a call>"))
"""


@pytest.mark.parametrize("mode", ["before", "host"])
def test_a_non_interruptible_call_lets_other_threads_run(plugin_wasm, tmp_path, mode):
    """A call without epoch interruption keeps the GIL only while no other thread could want it
    (call.c): a thread that exists at the call's start, or that a host function starts, runs
    Python while the plugin still runs."""
    import os
    import subprocess
    import sys

    wasm = tmp_path / "host_threads.wasm"
    wasm.write_bytes(plugin_wasm("host_threads"))
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, "-c", _GIL_PROGRAM, mode, str(wasm)], capture_output=True, text=True,
                          timeout=60, env=dict(os.environ, PYTHONPATH=root))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "True"


def test_current_plugin_kept_after_the_call_refuses_use(plugin_wasm):
    kept = []

    def hello(plugin, params, results):
        kept.append(plugin)
        plugin.return_string(results[0], "ok")

    fn = Function("extism:host/user", "hello_world", [I64], [I64], hello)
    with Plugin(plugin_wasm("kitchen_sink"), functions=[fn]) as plugin:
        assert plugin.call("call_host", "x") == b"ok"
        with pytest.raises(extism_fast.Error, match="only usable while its plugin is calling a host function"):
            kept[0].alloc(4)


def test_plugin_with_host_functions_is_freed_without_the_gc(plugin_wasm):
    import gc
    import weakref

    fn = Function("extism:host/user", "hello_world", [I64], [I64],
                  lambda p, params, results: p.return_string(results[0], "ok"))
    gc.disable()
    try:
        plugin = Plugin(plugin_wasm("kitchen_sink"), functions=[fn])
        assert plugin.call("call_host", "x") == b"ok"
        ref = weakref.ref(plugin)
        del plugin
        assert ref() is None  # no reference cycle: freed as soon as it is dropped
    finally:
        gc.enable()


_LATE_PROGRAM = """
import sys
import extism_fast

count, hello_host = sys.argv[1:]
# Before any host function (host/functions.py not loaded, the extension's Val unbound): refused
# with the same Error as at any other time outside a host function.
try:
    extism_fast.CurrentPlugin().memory_at_offset(8)
except extism_fast.Error as exc:
    assert "only usable while" in str(exc), exc
with extism_fast.Plugin(count) as plugin:
    assert plugin.call("count_vowels", b"hello") == b'{"count": 2}'
    assert plugin.call_many("count_vowels", [b"a", b"ee"]) == [b'{"count": 1}', b'{"count": 2}']
assert "extism_fast.host.functions" not in sys.modules

from extism_fast import Function, ValType


def hello(current_plugin, params, results):
    mem = current_plugin.memory_at_offset(params[0])  # a Val: the extension's, bound now
    name = bytes(current_plugin.memory(mem)).decode()
    current_plugin.return_string(results[0], f"Hello, {name}!")


fn = Function("extism:host/user", "hello_world", [ValType.I64], [ValType.I64], hello)
with extism_fast.Plugin(hello_host, functions=[fn]) as plugin:
    assert plugin.call("greet", "World") == b"Hello, World!"
print("ok")
"""


def test_host_functions_load_with_the_first_one(wasm_path):
    """A fresh process loads host/functions.py (enum) only with its first host function: a plain
    plugin's calls do not, and the extension binds ValType and Val when a host function is first
    given (_load_host_functions)."""
    import os
    import subprocess
    import sys

    from conftest import COUNT, REPO_ROOT

    proc = subprocess.run([sys.executable, "-c", _LATE_PROGRAM, str(wasm_path(COUNT)),
                           str(REPO_ROOT / "examples" / "hello_host.wat")],
                          capture_output=True, text=True, timeout=60, env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
