"""Throughput features: call_many / iter_call, zero-copy output views, PluginPool, compile cache."""

from __future__ import annotations

import array
import ctypes
import gc
import os
import subprocess
import sys
import textwrap
import threading

import pytest

import extism_fast as ef
from extism_fast.compile_cache import CompileCache, cache_from_argument

COUNT = "examples/count_vowels.wat"

# Fails for inputs starting with "x"; otherwise echoes the input.
PICKY = """
(module
  (import "extism:host/env" "input_length" (func $len (result i64)))
  (import "extism:host/env" "input_offset" (func $off (result i64)))
  (import "extism:host/env" "input_load_u8" (func $u8 (param i64) (result i32)))
  (import "extism:host/env" "output_set" (func $out (param i64 i64)))
  (func (export "run") (result i32)
    (if (i64.gt_u (call $len) (i64.const 0))
      (then (if (i32.eq (call $u8 (i64.const 0)) (i32.const 0x78)) (then (return (i32.const 3))))))
    (call $out (call $off) (call $len))
    (i32.const 0)))
"""


def vowels(text: str) -> bytes:
    return b'{"count": %d}' % sum(c in "aeiouAEIOU" for c in text)


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


# ---- PluginPool ----

def test_pool_map_keeps_order_and_matches(plugin_wasm):
    inputs = [f"{'a' * (i % 13)}b" for i in range(5000)]
    with ef.PluginPool(plugin_wasm(COUNT), size=3) as pool:
        assert pool.size == 3
        assert pool.map("count_vowels", inputs) == [vowels(t) for t in inputs]
        unordered = pool.map("count_vowels", inputs, ordered=False, chunk_size=100)
        assert sorted(unordered) == sorted(vowels(t) for t in inputs)


def test_pool_map_errors(plugin_wasm):
    with ef.PluginPool(PICKY, size=2) as pool:
        out = pool.map("run", ["a", "xb", "c"], return_exceptions=True)
        assert out[0] == b"a" and out[2] == b"c" and isinstance(out[1], ef.CallError)
        with pytest.raises(ef.CallError):
            pool.map("run", ["a", "xb"])
        assert pool.call("run", "still") == b"still"


def test_pool_call_from_many_threads(plugin_wasm):
    results = {}
    with ef.PluginPool(plugin_wasm(COUNT), size=2) as pool:
        def work(t):
            results[t] = [pool.call("count_vowels", "a" * t) for _ in range(200)]

        threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(30)
    assert all(results[t] == [vowels("a" * t)] * 200 for t in range(8))


def test_pool_rejects_bad_size_and_use_after_close(plugin_wasm):
    with pytest.raises(ValueError, match="positive integer"):
        ef.PluginPool(plugin_wasm(COUNT), size=0)
    pool = ef.PluginPool(plugin_wasm(COUNT), size=1)
    pool.close()
    with pytest.raises(ef.Error, match="closed"):
        pool.call("count_vowels", "a")


# ---- compile cache ----

def test_cache_entry_is_written_and_reused(tmp_path, plugin_wasm):
    wasm = plugin_wasm(COUNT)
    ef.CompiledPlugin(wasm, cache=tmp_path)
    entries = list(tmp_path.glob("*.cwasm"))
    assert len(entries) == 1
    mtime = entries[0].stat().st_mtime_ns
    with ef.Plugin(ef.CompiledPlugin(wasm, cache=tmp_path)) as plugin:
        assert plugin.call("count_vowels", "aa") == vowels("aa")
    assert entries[0].stat().st_mtime_ns == mtime  # read, not rewritten


@pytest.mark.parametrize("damage", ["flip", "truncate", "foreign"])
def test_damaged_cache_entry_is_recompiled_not_loaded(tmp_path, plugin_wasm, damage, caplog):
    wasm = plugin_wasm(COUNT)
    ef.CompiledPlugin(wasm, cache=tmp_path)
    (entry,) = tmp_path.glob("*.cwasm")
    blob = bytearray(entry.read_bytes())
    if damage == "flip":
        blob[-100] ^= 0xFF  # inside the machine code
    elif damage == "truncate":
        del blob[len(blob) // 2 :]
    else:  # a well-formed entry written for another module
        other = CompileCache(tmp_path)
        blob = bytearray(entry.read_bytes())
        key = other.key(b"other module", "x")
        other.store(key, b"payload")
        blob = bytearray((tmp_path / f"{key}.cwasm").read_bytes())
    entry.write_bytes(bytes(blob))
    with ef.Plugin(ef.CompiledPlugin(wasm, cache=tmp_path)) as plugin:
        assert plugin.call("count_vowels", "aei") == vowels("aei")
    assert "discarding a damaged or foreign compile cache entry" in caplog.text
    caplog.clear()
    ef.CompiledPlugin(wasm, cache=tmp_path)  # rewritten intact: loaded without a complaint
    assert entry.read_bytes() != bytes(blob) and "compile cache" not in caplog.text


def test_cache_switches(tmp_path, monkeypatch):
    monkeypatch.setenv("EXTISM_FAST_CACHE", "0")
    assert cache_from_argument(None) is None
    assert cache_from_argument(True) is not None
    monkeypatch.setenv("EXTISM_FAST_CACHE", "1")
    monkeypatch.setenv("EXTISM_FAST_CACHE_DIR", str(tmp_path))
    assert cache_from_argument(None).directory == tmp_path
    assert cache_from_argument(False) is None
    assert cache_from_argument(tmp_path / "x").directory == tmp_path / "x"


def test_cache_disabled_writes_nothing(tmp_path, plugin_wasm, monkeypatch):
    monkeypatch.setenv("EXTISM_FAST_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("EXTISM_FAST_CACHE", "off")
    ef.CompiledPlugin(plugin_wasm(COUNT))
    assert list(tmp_path.iterdir()) == []


def test_second_process_loads_from_the_cache(tmp_path, wasm_path):
    script = textwrap.dedent(f"""
        import extism_fast as ef
        from extism_fast import compile_cache
        loads = []
        real = compile_cache.CompileCache.load
        compile_cache.CompileCache.load = lambda self, key: loads.append(r := real(self, key)) or r
        p = ef.Plugin({str(wasm_path(COUNT))!r})
        assert p.call("count_vowels", "aa") == b'{{"count": 2}}'
        print("hit" if loads and loads[0] is not None else "miss")
    """)
    env = dict(os.environ, EXTISM_FAST_CACHE_DIR=str(tmp_path), EXTISM_FAST_CACHE="1")
    runs = [subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
            for _ in range(2)]
    assert [r.stdout.strip() for r in runs] == ["miss", "hit"], [r.stderr for r in runs]


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
