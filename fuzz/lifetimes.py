"""Fuzz target ``lifetimes``: views of kernel memory against every way a store goes.

Each input is a program of operations (one byte each, then its arguments) on up to three
plugins (pooled, or on-demand with ``fuel``) of a plugin whose ``_start`` and ``run`` hand their
input block to the host function ``grab``, and of one whose start function hands a block to
``grab`` and then traps (its instantiation fails on every call). Operations:

* ``_start`` or ``run`` by ``call``, ``call_many``, ``iter_call`` (a new store per `_start`), or the
  failing plugin's ``run`` (a failed instantiation);
* ``close`` a plugin, release a kept view, ``gc.collect()``, read or write a kept view;
* indexing an output buffer (``parse=None``) with an ``__index__`` that may close its plugin;
* inside ``grab``: keep a memoryview of the input block (or not), overlapping slice assignment
  over a block checked against a bytearray model, copying a buffer (must be a TypeError).

Promises checked: every call returns or raises :class:`extism_fast.Error`; a view whose store
was dropped (a new store after ``_start``, a failed instantiation, ``close``) keeps exactly its
bytes, changed only by writes through it, whatever other plugins (which may get its pooled slot)
do; an output buffer used after its plugin closed raises ValueError, never reads freed memory;
KernelBuffer copies raise TypeError.
"""

from __future__ import annotations

import copy
import ctypes
import gc

import extism_fast

START_AND_RUN = """
(module
  (import "extism:host/user" "grab" (func $grab (param i64)))
  (import "extism:host/env" "input_offset" (func $input_offset (result i64)))
  (import "extism:host/env" "input_length" (func $input_length (result i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (memory (export "memory") 1)
  (func $grab_input (call $grab (call $input_offset)) (call $output_set (call $input_offset) (call $input_length)))
  (func (export "_start") (call $grab_input))
  (func (export "run") (result i32) (call $grab_input) (i32.const 0)))
"""

START_TRAPS = """
(module
  (import "extism:host/user" "grab" (func $grab (param i64)))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (func $init (local $o i64)
    (local.set $o (call $alloc (i64.const 16)))
    (call $store_u64 (local.get $o) (i64.const 0x7472617473206e69))
    (call $store_u64 (i64.add (local.get $o) (i64.const 8)) (i64.const 0x2121212121212121))
    (call $grab (local.get $o))
    unreachable)
  (start $init)
  (func (export "run") (result i32) (i32.const 0)))
"""


class _View:
    """A kept memoryview of a host-function buffer and what it must show once its store is gone."""

    def __init__(self, owner: "_Slot", view: memoryview) -> None:
        self.owner = owner
        self.view = view
        self.captured = view.tobytes()  # what the host function saw
        # Views of one store alias each other (a block reused by later calls): a write through
        # one shows in all of them.
        self.address = ctypes.addressof((ctypes.c_char * len(view)).from_buffer(view)) if len(view) else 0
        self.expected: bytes | None = None  # set when its store is dropped (frozen)

    def freeze(self, content: bytes) -> None:
        if self.expected is None:
            self.expected = content

    def check(self) -> None:
        if self.expected is not None and self.view.tobytes() != self.expected:
            raise AssertionError(f"a view of a dropped store changed: {self.expected!r} -> {self.view.tobytes()!r}")


class _Slot:
    """One plugin of the program and whether its store ends at its next call (after `_start`)."""

    def __init__(self, plugin: extism_fast.Plugin) -> None:
        self.plugin = plugin
        self.store_ends = False
        self.closed = False


class _Run:
    """The state of one program."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0
        self.slots: list[_Slot | None] = [None, None, None]
        self.views: list[_View] = []
        self.grab_mode = 0
        self.current: _Slot | None = None
        self.item_views: list[_View] = []  # views taken during the running call, in order
        self.findings: list[AssertionError] = []  # broken promises seen inside grab

    def byte(self) -> int:
        if self.at >= len(self.data):
            return 0
        self.at += 1
        return self.data[self.at - 1]

    # -- the host function --------------------------------------------------------------------

    def grab(self, cp, params, results) -> None:
        try:
            self.grab_checked(cp, params)
        except AssertionError as finding:  # the call would turn it into a HostFunctionError
            self.findings.append(finding)
            raise

    def grab_checked(self, cp, params) -> None:
        mode = self.grab_mode
        buf = cp.input_buffer(params[0])
        if mode & 1:
            self.item_views.append(_View(self.current, memoryview(buf)))
        if mode & 2:
            self.overlap(cp, mode)
        if mode & 4:
            try:
                copy.copy(buf)
            except TypeError:
                pass
            else:
                raise AssertionError("copy.copy of a KernelBuffer did not raise TypeError")
        if mode & 8:
            try:
                self.current.plugin.close()
            except extism_fast.Error:
                pass
            else:
                raise AssertionError("close() during a call did not raise")

    def overlap(self, cp, mode: int) -> None:
        n = 8 + (mode >> 4)
        buf = cp.memory(cp.alloc(n))
        model = bytearray(range(n))
        buf[:] = bytes(model)
        shift = 1 + (mode >> 5) % 4
        buf[shift:n] = memoryview(buf)[0:n - shift]
        model[shift:n] = model[0:n - shift]
        buf[0:n - shift] = memoryview(buf)[shift:n]
        model[0:n - shift] = model[shift:n]
        if bytes(buf) != bytes(model):
            raise AssertionError(f"overlapping slice assignment: {bytes(buf)!r} != {bytes(model)!r}")

    # -- operations ---------------------------------------------------------------------------

    def slot(self) -> _Slot:
        i, on_demand = self.byte() % 3, self.byte() & 1
        slot = self.slots[i]
        if slot is None or slot.closed:
            slot = self.slots[i] = _Slot(extism_fast.Plugin(_COMPILED[on_demand]))
        return slot

    def items(self) -> list[bytes]:
        n, fill, length = 1 + self.byte() % 5, self.byte(), self.byte() % 40
        return [b"item %d of %d:" % (i, n) + bytes([fill]) * length for i in range(n)]

    def begin_call(self, slot: _Slot) -> None:
        """A call on slot begins: if its store ends now, its views keep what they show."""
        self.grab_mode = self.byte()
        self.current = slot
        self.item_views = []
        if slot.store_ends:  # the call's new store replaces it
            for view in self.views:
                if view.owner is slot:
                    view.freeze(view.view.tobytes())
        slot.store_ends = False

    def end_call(self, slot: _Slot, start: bool) -> None:
        """After `_start` items, each with its own store: every item's view but the last one's
        was frozen by the next item's new store, with what the host function saw."""
        views = self.item_views
        if start:
            for view in views[:-1]:
                view.freeze(view.captured)
            slot.store_ends = True
        self.views.extend(views)
        self.current = None

    def call(self, slot: _Slot, how: int) -> None:
        items = self.items()
        name = "_start" if how & 1 else "run"
        self.begin_call(slot)
        outputs: list | None = None
        try:
            if how & 6 == 0:
                outputs = [slot.plugin.call(name, items[0])]
                items = items[:1]
            elif how & 6 == 2:
                outputs = slot.plugin.call_many(name, items)
            else:
                outputs = list(slot.plugin.iter_call(name, items))
        except extism_fast.Error:
            pass
        if outputs is not None and outputs != items:
            raise AssertionError(f"{name} outputs {outputs!r} for {items!r}")
        self.end_call(slot, name == "_start")

    def failed_start(self) -> None:
        self.grab_mode = self.byte() | 1
        self.current = _Slot(_FAILING)
        self.item_views = []
        try:
            _FAILING.call("run")
        except extism_fast.CallError:
            pass
        else:
            raise AssertionError("the start function that traps did not fail the call")
        for view in self.item_views:
            view.freeze(view.captured)  # the failed store was dropped at once
        self.views.extend(self.item_views)
        self.current = None

    def close(self, slot: _Slot) -> None:
        for view in self.views:
            if view.owner is slot:
                view.freeze(view.view.tobytes())
        slot.plugin.close()
        slot.closed = True

    def write(self) -> None:
        frozen = [v for v in self.views if v.expected is not None and len(v.view)]
        if frozen:
            view = frozen[self.byte() % len(frozen)]
            at, value = self.byte() % len(view.view), self.byte()
            view.view[at] = value
            address = view.address + at
            for other in frozen:
                if other.address <= address < other.address + len(other.view):
                    i = address - other.address
                    other.expected = other.expected[:i] + bytes([value]) + other.expected[i + 1:]

    def output_index(self, slot: _Slot) -> None:
        text = self.items()[0]
        self.begin_call(slot)
        try:
            out = slot.plugin.call("run", text, parse=None)
        except extism_fast.Error:
            return
        finally:
            self.end_call(slot, False)
        closes = self.byte() & 1
        run = self

        class Index:
            def __index__(self):
                if closes:
                    run.close(slot)
                return 1

        try:
            got = out[Index()] if self.byte() & 1 else out[Index():len(text)]
        except ValueError:
            if not closes:
                raise
            return
        if closes:
            raise AssertionError("an output buffer was read after its plugin closed")
        if got not in (text[1:2], text[1:]):
            raise AssertionError(f"output buffer read {got!r} from {text!r}")

    def step(self) -> None:
        op = self.byte() % 9
        if op <= 2:
            self.call(self.slot(), self.byte())
        elif op == 3:
            self.failed_start()
        elif op == 4:
            self.close(self.slot())
        elif op == 5 and self.views:
            view = self.views.pop(self.byte() % len(self.views))
            view.check()
            view.view.release()
        elif op == 6:
            gc.collect()
        elif op == 7:
            self.write()
        elif op == 8:
            self.output_index(self.slot())
        if self.findings:
            raise self.findings[0]
        for view in self.views:
            view.check()

    def finish(self) -> None:
        for slot in self.slots:
            if slot is not None and not slot.closed:
                self.close(slot)
        for view in self.views:
            view.check()
            view.view.release()


_RUN: list[_Run] = []


def _grab(cp, params, results) -> None:
    _RUN[-1].grab(cp, params, results)


_GRAB = extism_fast.Function("extism:host/user", "grab", [extism_fast.ValType.I64], [], _grab)
_FAILING = extism_fast.Plugin(START_TRAPS, functions=[_GRAB])
# Pooled, and on-demand (a fuel budget: the fuel engine has no instance pool).
_COMPILED = (extism_fast.CompiledPlugin(START_AND_RUN, functions=[_GRAB]),
             extism_fast.CompiledPlugin(START_AND_RUN, functions=[_GRAB], fuel=10**9))


def test_one_input(data: bytes) -> None:
    """The atheris entry point: run ``data`` as a program (see the module docs)."""
    run = _Run(data)
    _RUN.append(run)
    try:
        for _ in range(64):
            if run.at >= len(data):
                break
            run.step()
        run.finish()
    finally:
        _RUN.pop()


# The program's encoding, for seeds: one function per operation, in the order step() reads.
KEEP, OVERLAP, COPY, CLOSE_IN_CALL = 1, 2, 4, 8  # grab modes (bits); higher bits size the overlap
CALL, START, MANY, ITER = 0, 1, 2, 4  # call "run"; `_start`; call_many; iter_call


def _call(slot: int, on_demand: int, how: int, n: int, fill: int, length: int, mode: int) -> bytes:
    return bytes([0, slot, on_demand, how, n - 1, fill, length, mode])


def _failed_start(mode: int) -> bytes:
    return bytes([3, mode])


def _close(slot: int) -> bytes:
    return bytes([4, slot, 0])


def _release(i: int) -> bytes:
    return bytes([5, i])


def _write(i: int, at: int, value: int) -> bytes:
    return bytes([7, i, at, value])


def _output(slot: int, on_demand: int, fill: int, length: int, mode: int, closes: int, index: int) -> bytes:
    return bytes([8, slot, on_demand, 0, fill, length, mode, closes, index])


def seeds() -> list[bytes]:
    """Programs that reach each operation: batches of `_start` with kept views on pooled and
    on-demand plugins, failed starts, closes, writes, outputs indexed while closing."""
    return [
        _call(0, 0, START | MANY, 5, 65, 20, KEEP) + _call(0, 0, CALL, 1, 66, 8, KEEP) + _close(0),
        _call(1, 1, START | ITER, 4, 67, 9, KEEP) + _write(0, 2, 88) + _call(1, 1, START | MANY, 3, 68, 3, KEEP),
        _failed_start(KEEP) + _failed_start(KEEP | OVERLAP | 0x30) + _call(2, 0, START | MANY, 2, 69, 4, KEEP)
        + _write(0, 0, 90) + _write(1, 5, 91),
        _output(0, 0, 70, 10, 0, 1, 1) + _output(1, 1, 71, 10, KEEP, 0, 0) + _output(2, 0, 72, 5, 0, 1, 0),
        _call(0, 0, START, 2, 73, 7, KEEP | OVERLAP | COPY | CLOSE_IN_CALL) + bytes([6]) + _release(0),
        _call(0, 0, CALL, 1, 74, 30, KEEP) + _call(0, 0, START, 1, 75, 30, KEEP)
        + _call(1, 0, START | MANY, 5, 76, 12, KEEP)
        + _call(0, 0, CALL, 1, 77, 30, 0) + bytes([6]) + _failed_start(KEEP) + _close(1),
    ]
