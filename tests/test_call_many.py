"""Batches of calls: call_many / iter_call, their outputs and failures, zero-copy output views.
PluginPool is tested in test_pool.py, the compile cache in test_compile_cache.py."""

from __future__ import annotations

import array
import ctypes
import gc
import os
import subprocess
import sys
import re
import textwrap

import pytest
from conftest import COUNT, PICKY, vowels

import extism_fast as ef


@pytest.fixture
def counter(plugin_wasm):
    with ef.Plugin(plugin_wasm(COUNT)) as plugin:
        yield plugin


# ---- call_many / iter_call ----

def test_call_many_matches_single_calls(counter):
    inputs = [f"input {i} " + "a" * (i % 7) for i in range(3000)]
    assert counter.call_many("count_vowels", inputs) == [vowels(t) for t in inputs]


def test_call_many_accepts_any_buffer(counter):
    inputs = [b"aa", bytearray(b"eee"), memoryview(b"iiii"), array.array("B", b"o"), "uu"]
    assert counter.call_many("count_vowels", inputs) == [vowels(x) for x in ("aa", "eee", "iiii", "o", "uu")]


def test_call_many_parse(counter):
    assert counter.call_many("count_vowels", ["ab", "a"], parse=lambda b: b.decode()) == [
        '{"count": 1}', '{"count": 1}']
    views = counter.call_many("count_vowels", ["ab"], parse=None)
    assert bytes(views[0]) == b'{"count": 1}'


def test_call_many_raises_at_the_first_failure():
    with ef.Plugin(PICKY) as plugin:
        with pytest.raises(ef.CallError, match="exit code 3"):
            plugin.call_many("run", ["ok", "xbad", "never"])
        assert plugin.call("run", "fine") == b"fine"


def test_call_many_return_exceptions():
    with ef.Plugin(PICKY) as plugin:
        out = plugin.call_many("run", ["a", "xb", "c", "xd"], return_exceptions=True)
    assert out[0] == b"a" and out[2] == b"c"
    assert isinstance(out[1], ef.CallError) and isinstance(out[3], ef.CallError)


def test_iter_call_streams_in_batches(counter):
    inputs = (f"{'a' * (i % 5)}" for i in range(2500))  # a generator: more than one batch
    it = counter.iter_call("count_vowels", inputs)
    assert next(it) == vowels("")
    assert list(it) == [vowels("a" * (i % 5)) for i in range(1, 2500)]


def test_call_many_unknown_function_and_empty_input(counter):
    with pytest.raises(ef.FunctionNotFoundError):
        counter.call_many("nope", ["a"])
    assert counter.call_many("count_vowels", []) == []


def test_call_many_runs_host_functions_without_the_gil(plugin_wasm):
    # Host functions still work inside the GIL-free batch loop (they take the GIL themselves).
    def hello(plugin, params, results):
        plugin.return_string(results[0], "hi " + plugin.input_string(params[0]))

    fn = ef.Function("extism:host/user", "hello_world", [ef.ValType.I64], [ef.ValType.I64], hello)
    with ef.Plugin(plugin_wasm("kitchen_sink"), functions=[fn]) as plugin:
        assert plugin.call_many("call_host", ["a", "b"]) == [b"hi a", b"hi b"]


# ---- zero-copy output views ----

def test_view_is_readonly_and_released_by_the_next_call(counter):
    view = counter.call("count_vowels", "aaa", parse=None)
    assert view.readonly and bytes(view) == vowels("aaa")
    with pytest.raises(TypeError):
        view[0] = b"x"
    with pytest.raises((BufferError, TypeError), match="read-only|not writable"):
        (ctypes.c_char * 1).from_buffer(view)  # asks for a writable buffer
    counter.call("count_vowels", "e")
    with pytest.raises(ValueError, match="no longer valid"):
        bytes(view)


def test_exported_slices_keep_their_bytes(counter):
    view = counter.call("count_vowels", "aaaa", parse=None)
    piece = memoryview(view)[1:8]
    expected = bytes(piece)
    for _ in range(50):  # later calls must not reuse the memory the slice points at
        counter.call("count_vowels", "eeeeeeeeee" * 10)
    assert bytes(piece) == expected
    del piece, view
    gc.collect()
    counter.call("count_vowels", "x")  # now the memory may be reused
    assert counter.call("count_vowels", "aa") == vowels("aa")


def test_close_waits_for_exported_views(counter):
    view = counter.call("count_vowels", "aaaaa", parse=None)
    piece = memoryview(view)
    counter.close()
    assert bytes(piece) == vowels("aaaaa")  # kernel memory is kept while exported
    with pytest.raises(ef.Error, match="closed"):
        counter.call("count_vowels", "a")


def test_call_many_out_of_host_memory_for_outputs_raises_memory_error(wasm_path):
    # The outputs of a batch are kept in one growing buffer; when the process cannot grow it
    # (here: an address-space limit), call_many raises MemoryError, and the plugin still works.
    script = textwrap.dedent(f"""
        import resource
        import extism_fast as ef
        plugin = ef.Plugin({str(wasm_path("kernel"))!r}, functions=[])
        assert plugin.call("echo", b"warm") == b"warm"  # the instance exists: its memory is reserved
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        with open("/proc/self/statm") as f:
            used = int(f.read().split()[0]) * resource.getpagesize()
        resource.setrlimit(resource.RLIMIT_AS, (used + (1 << 30), hard))
        big = b"x" * (100 << 20)
        try:
            plugin.call_many("echo", [big] * 30)
            print("no error")
        except MemoryError as exc:
            print("MemoryError", "after" in str(exc) and "of 30 calls" in str(exc))
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        print(plugin.call("echo", b"still works"))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                            check=False, env=dict(os.environ, EXTISM_FAST_INSTANCE_POOL="0"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["MemoryError True", "b'still works'"], result.stdout


def _bad_inputs(n, bad_at, bad=None):
    items = [b"aa"] * n
    items[bad_at] = bad
    return items


@pytest.mark.parametrize("path", ["call_many", "iter_call", "call_many arrow out", "map", "map small chunks",
                                  "map arrow out", "imap", "amap"])
@pytest.mark.parametrize("bad", [None, 5])
def test_a_bad_list_item_is_an_input_type_error_naming_its_index(plugin_wasm, path, bad):
    """On every batch path, before any of its piece's calls; the plugin and pool stay usable."""
    import asyncio

    items = _bad_inputs(3000, 2345, bad)  # past the first batch of 1024 and the first chunks
    what = "missing (None/NA)" if bad is None else "of type int"
    compiled = ef.CompiledPlugin(plugin_wasm(COUNT))
    with ef.Plugin(compiled) as plugin, ef.PluginPool(compiled, size=2) as pool:
        runs = {
            "call_many": lambda: plugin.call_many("count_vowels", items),
            "iter_call": lambda: list(plugin.iter_call("count_vowels", items, return_exceptions=True)),
            "call_many arrow out": lambda: plugin.call_many("count_vowels", items, output="arrow"),
            "map": lambda: pool.map("count_vowels", items),
            "map small chunks": lambda: pool.map("count_vowels", items, chunk_size=7, return_exceptions=True),
            "map arrow out": lambda: pool.map("count_vowels", items, output="arrow"),
            "imap": lambda: list(pool.imap("count_vowels", items, ordered=False)),
            "amap": lambda: asyncio.run(_collect(pool.amap("count_vowels", items))),
        }
        if "arrow" in path:
            pytest.importorskip("pyarrow")
        with pytest.raises(ef.InputTypeError, match=rf"^input 2345 is {re.escape(what)}, not bytes or str$") as info:
            runs[path]()
        assert isinstance(info.value, TypeError) and info.value.input_index == 2345
        assert plugin.call_many("count_vowels", [b"a", "e"]) == [vowels("a"), vowels("e")]
        assert pool.map("count_vowels", ["io"]) == [vowels("io")]


async def _collect(iterator):
    return [item async for item in iterator]
