"""One call protocol: Plugin.call, the batch paths (call_many, iter_call, PluginPool.map), Arrow and
acall begin and finish every call the same way (Plugin._begin, Plugin._finish_call, _call_error):
the same debug dumps, the same WASI log records, the same exception for the same failure."""

from __future__ import annotations

import asyncio
import logging

import pytest

import extism_fast as ef
from conftest import PICKY

pa = pytest.importorskip("pyarrow")

# Writes its input to stdout without a newline (WASI fd_write), outputs "ok"; traps on input "T".
WRITER = """
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "extism:host/env" "input_length" (func $len (result i64)))
  (import "extism:host/env" "input_load_u8" (func $u8 (param i64) (result i32)))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $out (param i64 i64)))
  (memory (export "memory") 1)
  (func (export "run") (result i32)
    (local $i i64) (local $n i64) (local $o i64)
    (local.set $n (call $len))
    (if (i64.eq (local.get $n) (i64.const 1))
      (then (if (i32.eq (call $u8 (i64.const 0)) (i32.const 0x54)) (then unreachable))))
    (block $done (loop $copy
      (br_if $done (i64.ge_u (local.get $i) (local.get $n)))
      (i32.store8 (i32.add (i32.const 64) (i32.wrap_i64 (local.get $i))) (call $u8 (local.get $i)))
      (local.set $i (i64.add (local.get $i) (i64.const 1)))
      (br $copy)))
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.wrap_i64 (local.get $n)))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (local.set $o (call $alloc (i64.const 2)))
    (call $store_u8 (local.get $o) (i32.const 0x6f))
    (call $store_u8 (i64.add (local.get $o) (i64.const 1)) (i32.const 0x6b))
    (call $out (local.get $o) (i64.const 2))
    (i32.const 0)))
"""

ITEMS = [b"ab", b"T", b"cd", b"T", b"ef"]


def _sequential_calls(plugin, items):
    """What Plugin.call gives item by item: outputs, or (class, message) of the failure."""
    out = []
    for item in items:
        try:
            out.append(plugin.call("run", item))
        except ef.Error as exc:
            out.append((type(exc), str(exc)))
    return out


def _as_outcomes(results):
    return [(type(r), str(r)) if isinstance(r, Exception) else r for r in results]


@pytest.mark.parametrize("batch", ["call_many", "iter_call", "arrow"])
def test_a_batch_writes_the_dumps_call_writes(monkeypatch, tmp_path, batch):
    """EXTISM_MEMDUMP / EXTISM_COREDUMP after each failed item, as after each failed call: the
    files a batch leaves are those the same calls one by one leave."""
    dumps = {}
    for how in ("call", batch):
        memdump, coredump = tmp_path / f"{how}.mem", tmp_path / f"{how}.core"
        monkeypatch.setenv("EXTISM_MEMDUMP", str(memdump))
        monkeypatch.setenv("EXTISM_COREDUMP", str(coredump))
        with ef.Plugin(WRITER, wasi=True) as plugin:
            if how == "call":
                outcomes = _sequential_calls(plugin, ITEMS)
            elif how == "call_many":
                outcomes = _as_outcomes(plugin.call_many("run", ITEMS, return_exceptions=True))
            elif how == "iter_call":
                outcomes = _as_outcomes(plugin.iter_call("run", ITEMS, return_exceptions=True))
            else:
                out = plugin.call_many("run", pa.array(ITEMS), output="arrow", return_exceptions=True)
                outcomes = [row["output"] for row in out.to_pylist()]
        assert memdump.exists() and coredump.exists(), how
        dumps[how] = (memdump.read_bytes(), coredump.read_bytes(), outcomes)
    assert dumps[batch][:2] == dumps["call"][:2]
    assert [o for o in dumps["call"][2] if isinstance(o, bytes)] == [b"ok"] * 3


def test_a_batch_stopping_at_a_failure_writes_its_dumps(monkeypatch, tmp_path):
    memdump = tmp_path / "plugin.mem"
    monkeypatch.setenv("EXTISM_MEMDUMP", str(memdump))
    with ef.Plugin(PICKY) as plugin:
        with pytest.raises(ef.CallError, match="returned non-zero exit code 3"):
            plugin.call_many("run", [b"a", b"xyz", b"b"])
        assert memdump.exists()
        memdump.unlink()
        assert plugin.call_many("run", [b"a", b"b"]) == [b"a", b"b"]
        assert not memdump.exists()  # only failed calls leave dumps


@pytest.mark.parametrize("batch", ["call_many", "iter_call", "arrow"])
def test_a_batch_logs_each_items_wasi_output_as_call_does(caplog, batch):
    """wasi_stdio="log": one record per call's output (no newline in it: a batch logging its items'
    output together would join them into one line)."""
    records = {}
    for how in ("call", batch):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="extism_fast"):
            with ef.Plugin(WRITER, wasi=True, wasi_stdio="log") as plugin:
                items = [b"one", b"two", b"three"]
                if how == "call":
                    for item in items:
                        plugin.call("run", item)
                elif how == "call_many":
                    plugin.call_many("run", items)
                elif how == "iter_call":
                    list(plugin.iter_call("run", items))
                else:
                    plugin.call_many("run", pa.array(items), output="arrow")
        records[how] = [(r.getMessage(), r.levelno, r.wasi_stream) for r in caplog.records
                        if hasattr(r, "wasi_stream")]
    assert records[batch] == records["call"] == [("one", logging.INFO, "stdout"), ("two", logging.INFO, "stdout"),
                                                 ("three", logging.INFO, "stdout")]


def _failure(run):
    with pytest.raises(ef.Error) as info:
        run()
    return info.value


@pytest.mark.parametrize("source, bad", [(PICKY, b"xx"), (WRITER, b"T")])
def test_one_failure_one_exception_through_every_path(source, bad):
    """The same failure raises the same class and message through call, call_many (raising or
    returned), iter_call, Arrow (its item_error), acall and PluginPool.map."""
    wasi = source is WRITER
    compiled = ef.CompiledPlugin(source, wasi=wasi)
    fresh = lambda: ef.Plugin(compiled)  # noqa: E731
    expected = _failure(lambda: fresh().call("run", bad))
    seen = {
        "call_many": _failure(lambda: fresh().call_many("run", [b"a", bad])),
        "call_many returned": fresh().call_many("run", [b"a", bad], return_exceptions=True)[1],
        "iter_call": _failure(lambda: list(fresh().iter_call("run", [b"a", bad]))),
        "arrow": _failure(lambda: fresh().call_many("run", pa.array([b"a", bad]), output="arrow")).item_error,
        "acall": _failure(lambda: asyncio.run(fresh().acall("run", bad))),
    }
    with ef.PluginPool(compiled, size=2) as pool:
        seen["PluginPool.map"] = _failure(lambda: pool.map("run", [b"a", bad]))
        seen["PluginPool.map returned"] = pool.map("run", [b"a", bad], return_exceptions=True)[1]
    for path, error in seen.items():
        assert (type(error), str(error)) == (type(expected), str(expected)), path
    assert isinstance(expected, ef.TrapError if wasi else ef.CallError)
