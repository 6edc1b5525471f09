"""extism_fast vs the official Extism Python SDK, side by side, with the project's targets.

    python -m bench [--quick] [--repeats N] [--target SECONDS] [--only TEXT] [--json PATH]
                    [--results DIR] [--no-plot]
    python bench/compare.py ...

Both SDKs run the same plugins with the same manifest (config included), built from this
repository's sources with ``tests/conftest.py``'s builder (clang for C, wat2wasm for WAT):

* the headline rows use ``bench/plugin_sources/count_vowels_pdk.c`` ("PDK-like"), which makes the kernel
  calls of the official Rust PDK's count_vowels example: input read with ``input_load_u64`` plus a
  byte tail, a config read, a var read and write, and a JSON output stored into a new block;
* the "minimal" rows use ``examples/count_vowels.c``, which only reads its input and outputs a count.

Every row runs each SDK with its default settings, except rows labelled "interruptible=False
(opt-in)": extism_fast's opt-in fast mode, beside the default rows.

Before timing, each row checks that both SDKs return the same output bytes for its work, on fresh
instances (the PDK-like plugin's var makes outputs depend on earlier calls) except in the thread
rows of the stateless minimal plugin; any difference aborts the run. Then each SDK's timed loop
(sized to about ``--target`` seconds) runs ``--repeats`` times, alternating SDKs, and the best loop
counts. The garbage collector is off inside timed loops, as with ``timeit``.

Rows measured outside this process (each in fresh subprocesses, one SDK per process):

* resident memory per idle instance: RSS (``/proc/self/statm``) before and after creating 200
  instances from one compiled plugin (each called once), divided by 200;
* first load of a generated ~1.9 MB plugin (``Plugin(path)`` + first call, timed inside the
  process), with each SDK's on-disk compile cache warm (one warm-up process first; the official
  SDK caches through wasmtime's cache, on by default), and with both caches off.

A ratio is always "how many times better extism_fast is" (throughput over throughput, or the
official figure over ours for memory and time). Rows with a target are marked PASS or MISS.
The table is printed as markdown and saved, with a log-log plot of the PDK-like plugin's calls/s
against input size (``throughput.png``, needs matplotlib: ``pip install -e '.[bench]'``), in
``bench/results/`` (``--results``).
"""

from __future__ import annotations

import argparse
import datetime
import functools
import gc
import itertools
import json
import os
import platform
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Callable

try:
    import extism  # the official SDK, measured side by side
except ModuleNotFoundError as missing:
    raise SystemExit(f"bench: {missing.name} is not installed: the bench needs its extra, "
                     "pip install -e '.[bench]' (from the checkout root)") from None
import extism_fast

if not __package__:  # run as `python bench/compare.py`: make the `bench` package importable
    sys.path.insert(1, str(Path(__file__).resolve().parent.parent))
from bench.plugins import REPO_ROOT, build, build_path  # noqa: E402
from bench.limit_host import measure_limit  # noqa: E402

RESULTS_DIR = REPO_ROOT / "bench" / "results"

KIB, MIB = 1 << 10, 1 << 20
_TEXT = b"Hello, World!! The quick brown fox jumps over the lazy dog. "
SMALL_INPUT = b"Hello, World!!"  # 14 bytes


def text_input(size: int) -> bytes:
    return (_TEXT * (size // len(_TEXT) + 1))[:size]


ECHO_INPUT = bytes(range(256)) * 256  # 64 KiB
HOST_INPUT = b"Bench"
#: kernel block row: this many allocations of BLOCK_SIZE bytes per call (kernel.wat alloc_blocks)
BLOCK_COUNT, BLOCK_SIZE = 1000, 8
BLOCKS_INPUT = BLOCK_COUNT.to_bytes(8, "little") + BLOCK_SIZE.to_bytes(8, "little")
#: call_many row: this many small inputs per batch
MANY_COUNT = 10_000
MANY_INPUTS = [b"Hello %d, World!" % i for i in range(MANY_COUNT)]
#: Arrow row: this many small inputs per call_many
ARROW_COUNT = 10 ** 6
#: config of the PDK-like plugin (its default, given explicitly so the config read finds a value)
PDK_CONFIG = {"vowels": "aeiouAEIOU"}
#: PluginPool row: this many inputs of POOL_ITEM_SIZE bytes per map
POOL_COUNT, POOL_ITEM_SIZE = 4096, 4 * KIB
#: plot: input sizes
SWEEP_SIZES = [14, 64, 256, KIB, 4 * KIB, 16 * KIB, 64 * KIB, 256 * KIB, MIB]
#: memory row: instances per process
MEMORY_INSTANCES = 200

Op = Callable[[], object]


# --------------------------------------------------------------------------------------------------
# Plugins and host functions
# --------------------------------------------------------------------------------------------------


def _hello(current_plugin, params, results, *user_data):
    name = current_plugin.input_string(params[0])
    current_plugin.return_string(results[0], "Hello, " + name + "!")


def _add_i32(current_plugin, params, results, *user_data):
    results[0].value = params[0].value + params[1].value


def _mul_f64(current_plugin, params, results, *user_data):
    results[0].value = params[0].value * params[1].value


def _nothing(current_plugin, params, results, *user_data):
    pass


# host_user.wat imports all four; only hello_world is timed.
_HOST_FUNCTIONS = [
    ("hello_world", ["I64"], ["I64"], _hello),
    ("add_i32", ["I32", "I32"], ["I32"], _add_i32),
    ("mul_f64", ["F64", "F64"], ["F64"], _mul_f64),
    ("nothing", [], [], _nothing),
]


def fast_host_functions() -> list:
    VT = extism_fast.ValType
    return [
        extism_fast.Function("extism:host/user", name, [VT[a] for a in args], [VT[r] for r in rets], f)
        for name, args, rets, f in _HOST_FUNCTIONS
    ]


def official_host_functions() -> list:
    # extism.Function wants a cffi callback; host_fn with an explicit signature is the SDK's way to
    # wrap a Python function (it also appends to extism's global registry, hence functions= below).
    VT = extism.ValType
    return [
        extism.host_fn(name=name, namespace="extism:host/user",
                       signature=([VT[a] for a in args], [VT[r] for r in rets]))(f)
        for name, args, rets, f in _HOST_FUNCTIONS
    ]


def official_compiled_plugin_class() -> type:
    # extism 1.1.1 has CompiledPlugin but does not export it from the package.
    return getattr(extism, "CompiledPlugin", None) or extism.extism.CompiledPlugin


def big_plugin_wat(functions: int = 1500, ops: int = 60, data_kib: int = 256) -> str:
    """WAT of a ~1.9 MB plugin: `functions` functions of `ops` multiply-adds each, a `data_kib` KiB
    data segment they read, and an export ``run`` that chains them all and outputs the u64 result."""
    data = "".join(chr(40 + (i * 7) % 50) for i in range(data_kib * KIB))  # printable, no \\ or "
    parts = [
        "(module",
        '  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))',
        '  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))',
        '  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))',
        f"  (memory {data_kib // 64 + 2})",
        f'  (data (i32.const 65536) "{data}")',
    ]
    for f in range(functions):
        body = " ".join(
            f"(local.set $x (i64.add (i64.mul (local.get $x) (i64.const {(f * 131 + k * 17) % 1000003 | 1}))"
            f" (i64.load offset={(k * 8) % 4096} (i32.const 65536))))"
            for k in range(ops)
        )
        parts.append(f"  (func $f{f} (param $x i64) (result i64) {body} (local.get $x))")
    calls = " ".join(f"(local.set $x (call $f{f} (local.get $x)))" for f in range(functions))
    parts.append(
        f'  (func (export "run") (result i32) (local $x i64) (local $o i64) (local.set $x (i64.const 1)) '
        f"{calls} (local.set $o (call $alloc (i64.const 8))) (call $store_u64 (local.get $o) (local.get $x)) "
        "(call $output_set (local.get $o) (i64.const 8)) (i32.const 0))"
    )
    parts.append(")")
    return "\n".join(parts)


# --------------------------------------------------------------------------------------------------
# Targets and results
# --------------------------------------------------------------------------------------------------


@dataclass
class Target:
    """``kind``: "ratio" (ratio >= value), "scaling" (extism_fast 2-thread / 1-thread >= value)
    or "fraction" (extism_fast / extism <= value, for memory)."""

    kind: str
    value: float

    def describe(self) -> str:
        if self.kind == "ratio":
            return f">= {self.value:g}x"
        if self.kind == "scaling":
            return f"2t/1t >= {self.value:g}x"
        return f"<= {self.value:g} of extism" if self.value != 0.5 else "<= 1/2 of extism"


@dataclass
class Result:
    name: str
    unit: str  # of fast / official: "calls/s", "items/s", "KiB", "ms"
    fast: float
    official: float
    ratio: float  # > 1: extism_fast is better
    target: str | None = None
    measured: float | None = None  # the figure the target is checked against
    passed: bool | None = None
    fast_scaling: float | None = None  # 2-thread / 1-thread throughput
    official_scaling: float | None = None
    note: str = ""

    def check(self, target: Target | None) -> "Result":
        if target is None:
            return self
        self.target = target.describe()
        if target.kind == "ratio":
            self.measured = self.ratio
            self.passed = self.ratio >= target.value
        elif target.kind == "scaling":
            self.measured = self.fast_scaling
            self.passed = self.fast_scaling is not None and self.fast_scaling >= target.value
        else:
            self.measured = self.fast / self.official
            self.passed = self.measured <= target.value
        return self


@dataclass
class Case:
    """One timed row: an op per SDK plus a check that both give the same output."""

    name: str
    fast: Op | list[Op]
    official: Op | list[Op]
    check: Callable[[], tuple[object, object]]  # -> (fast output, official output)
    target: Target | None = None
    items: int = 1  # calls per op (the unit becomes items/s when > 1)
    threads: int = 1
    fast_1t: Op | None = None  # for thread rows: the single-thread op, for the scaling ratio
    official_1t: Op | None = None
    thread_op_items: int = 1  # thread rows: calls per op of a per-thread op list
    fast_ref: tuple[str, Op] | None = None  # thread rows: another 1-thread baseline (label, op)
    keep: list = field(default_factory=list)  # objects that must outlive the row


@dataclass
class Subject:
    """A plugin as both SDKs load it (manifest `config` included), and the label its rows carry.
    ``fast_options`` go to extism_fast only (the opt-in rows' ``interruptible=False``)."""

    label: str
    wasm: bytes
    function: str
    config: dict | None = None
    host_functions: bool = False
    fast_options: dict = field(default_factory=dict)

    def source(self) -> dict:
        manifest: dict = {"wasm": [{"data": self.wasm}]}
        if self.config:
            manifest["config"] = dict(self.config)
        return manifest

    def functions(self, sdk) -> list:
        if not self.host_functions:
            return []
        return fast_host_functions() if sdk is extism_fast else official_host_functions()

    def options(self, sdk) -> dict:
        return self.fast_options if sdk is extism_fast else {}

    def new(self, sdk):
        """A new plugin of SDK module `sdk` (extism_fast or extism)."""
        return sdk.Plugin(self.source(), functions=self.functions(sdk), **self.options(sdk))

    def compiled(self, sdk):
        cls = extism_fast.CompiledPlugin if sdk is extism_fast else official_compiled_plugin_class()
        return cls(self.source(), functions=self.functions(sdk), **self.options(sdk))

    @functools.cached_property
    def plugins(self) -> tuple:
        """The (extism_fast, extism) pair the call rows time; their vars live on across rows."""
        return self.new(extism_fast), self.new(extism)

    def opt_in(self) -> "Subject":
        """The same plugin with extism_fast's opt-in fast mode (no epoch interruption)."""
        return Subject(f"{self.label}, interruptible=False (opt-in)", self.wasm, self.function, self.config,
                       self.host_functions, {**self.fast_options, "interruptible": False})


def pdk_subject() -> Subject:
    """The headline plugin: bench/plugin_sources/count_vowels_pdk.c, the Rust PDK example's kernel calls."""
    return Subject("PDK-like count_vowels", build("bench/count_vowels_pdk"), "count_vowels", PDK_CONFIG)


def minimal_subject() -> Subject:
    """examples/count_vowels.c: reads its input and writes {"count": N}, nothing else."""
    return Subject("minimal count_vowels", build("examples/count_vowels.c"), "count_vowels")


def fresh_outputs(subject: Subject, fast_run: Callable, official_run: Callable | None = None) -> tuple:
    """(fast_run(new extism_fast plugin), official_run(new extism plugin)): the rows' output check,
    on fresh instances so that vars set by earlier calls cannot tell the two SDKs apart."""
    runs = {extism_fast: fast_run, extism: official_run or fast_run}
    outputs = []
    for sdk, run in runs.items():
        with subject.new(sdk) as plugin:
            outputs.append(run(plugin))
    return tuple(outputs)


def _close(plugin) -> None:
    if isinstance(plugin, extism_fast.Plugin):
        plugin.close()
    else:  # extism's __del__ frees the instance (and is idempotent when refcounting calls it again)
        plugin.__del__()


def call_row(subject: Subject, label: str, data: bytes, target: Target | None = None,
             function: str | None = None) -> Case:
    """One call of `function` (default: the subject's) with `data`, on a long-lived instance."""
    function = function or subject.function
    f_call, o_call = (p.call for p in subject.plugins)
    return Case(
        f"{label}, {subject.label}",
        fast=lambda: f_call(function, data),
        official=lambda: o_call(function, data),
        check=lambda: fresh_outputs(subject, lambda p: p.call(function, data)),
        target=target,
        keep=[subject],
    )


def size_rows(subject: Subject, targets: dict[int, Target] | None = None) -> list[Case]:
    """Calls with 1 KiB, 64 KiB and 1 MiB of text; `targets` by size."""
    return [call_row(subject, _size_label(size), text_input(size), (targets or {}).get(size))
            for size in (KIB, 64 * KIB, MIB)]


def _call_loop(plugin, function: str, inputs: list[bytes]) -> list[bytes]:
    call = plugin.call
    return [call(function, x) for x in inputs]


def many_row(subject: Subject, target: Target | None = None) -> Case:
    """MANY_COUNT small inputs: extism_fast's call_many against a loop of the official call."""
    function = subject.function
    fast, official = subject.plugins
    f_many = fast.call_many
    return Case(
        f"call_many, {MANY_COUNT:,} small inputs (extism: loop), {subject.label}",
        fast=lambda: f_many(function, MANY_INPUTS),
        official=lambda: _call_loop(official, function, MANY_INPUTS),
        check=lambda: fresh_outputs(subject, lambda p: p.call_many(function, MANY_INPUTS),
                                    lambda p: _call_loop(p, function, MANY_INPUTS)),
        target=target, items=MANY_COUNT,
    )


def arrow_row(subject: Subject, target: Target | None = None) -> Case | None:
    """extism_fast only: call_many over ARROW_COUNT small items as a pyarrow binary array with
    output="arrow" (the "extism_fast" column) against the same items as a list of bytes returning
    a list (the "extism" column); the ratio is Arrow over list. None when pyarrow is missing."""
    try:
        import pyarrow as pa
    except ImportError:
        print("bench: pyarrow missing, Arrow row skipped (pip install 'extism_fast[arrow]')", file=sys.stderr)
        return None
    function = subject.function
    items = [b"Hello %d, World!" % i for i in range(ARROW_COUNT)]
    array = pa.array(items, pa.binary())
    plugin = subject.plugins[0]
    return Case(
        f"call_many Arrow vs list-of-bytes, {ARROW_COUNT:,} small items (extism_fast only: "
        f"\"extism_fast\" = Arrow in/out, \"extism\" = list of bytes), {subject.label}",
        fast=lambda: plugin.call_many(function, array, output="arrow"),
        official=lambda: plugin.call_many(function, items),
        check=lambda: (plugin.call_many(function, array, output="arrow").to_pylist(),
                       plugin.call_many(function, items)),
        target=target, items=ARROW_COUNT, keep=[subject, array, items],
    )


def instance_rows(subject: Subject, first_call_target: Target | None = None) -> list[Case]:
    """Instances of one compiled plugin: `Plugin(compiled)` alone, and with its first call. Both SDKs
    instantiate the modules at the first call, so only the second row compares like work."""
    compiled = {sdk: subject.compiled(sdk) for sdk in (extism_fast, extism)}
    function = subject.function

    def new(sdk) -> None:
        _close(sdk.Plugin(compiled[sdk]))

    def new_call(sdk) -> bytes:
        plugin = sdk.Plugin(compiled[sdk])
        try:
            return plugin.call(function, SMALL_INPUT)
        finally:
            _close(plugin)

    def check() -> tuple:
        return new_call(extism_fast), new_call(extism)

    return [
        Case(f"instance from CompiledPlugin, {subject.label}", lambda: new(extism_fast), lambda: new(extism),
             check, keep=[compiled]),
        Case(f"instance from CompiledPlugin + first call, {subject.label}", lambda: new_call(extism_fast),
             lambda: new_call(extism), check, target=first_call_target, keep=[compiled]),
    ]


def thread_rows(subject: Subject) -> list[Case]:
    """PluginPool.map over 2 instances vs 1, and 2 threads each calling its own plugin. The official
    SDK: 2 plugins on 2 threads, each looping over half of the inputs (vs 1 plugin over all). The
    subject must keep no state between calls (the pool spreads calls over instances)."""
    function = subject.function
    pool_inputs = [bytes([97 + i % 26]) + text_input(POOL_ITEM_SIZE - 1) for i in range(POOL_COUNT)]
    halves = [pool_inputs[: POOL_COUNT // 2], pool_inputs[POOL_COUNT // 2:]]
    pool1 = extism_fast.PluginPool(subject.source(), size=1, functions=[])
    pool2 = extism_fast.PluginPool(subject.source(), size=2, functions=[])
    o2 = [subject.new(extism) for _ in range(2)]
    pool_row = Case(
        f"PluginPool.map, 2 threads, {POOL_COUNT:,} x {POOL_ITEM_SIZE // KIB} KiB "
        f"(extism: 2 plugins on 2 threads), {subject.label}",
        fast=lambda: pool2.map(function, pool_inputs),
        official=[lambda p=p, h=h: _call_loop(p, function, h) for p, h in zip(o2, halves)],
        check=lambda: (pool2.map(function, pool_inputs),
                       _call_loop(o2[0], function, halves[0]) + _call_loop(o2[1], function, halves[1])),
        target=Target("scaling", 1.8), items=POOL_COUNT, threads=2, thread_op_items=POOL_COUNT // 2,
        fast_1t=lambda: pool1.map(function, pool_inputs),
        official_1t=lambda: _call_loop(o2[0], function, pool_inputs),
        fast_ref=("Plugin.call_many on the caller's thread",
                  lambda c=subject.plugins[0].call_many: c(function, pool_inputs)),
        keep=[pool1, pool2, o2],
    )
    mib = text_input(MIB)
    f2 = [subject.new(extism_fast) for _ in range(2)]
    own_row = Case(
        f"2 threads x own Plugin, 1 MiB, {subject.label}",
        fast=[(lambda c=p.call: c(function, mib)) for p in f2],
        official=[(lambda c=p.call: c(function, mib)) for p in o2],
        check=lambda: ([p.call(function, mib) for p in f2], [p.call(function, mib) for p in o2]),
        threads=2,
        fast_1t=lambda c=f2[0].call: c(function, mib),
        official_1t=lambda c=o2[0].call: c(function, mib),
        keep=[f2, o2],
    )
    return [pool_row, own_row]


def make_cases() -> list[Case]:
    """Every timed row. All plugins run with each SDK's default settings, except the rows labelled
    "interruptible=False (opt-in)" (extism_fast's fast mode; the official side is unchanged)."""
    from bench.as_plugins import as_rows  # here: it imports this module
    pdk, minimal = pdk_subject(), minimal_subject()
    pdk_opt_in = pdk.opt_in()
    kernel = Subject("kernel.wat", build("kernel"), "echo")
    host = Subject("host_user.wat", build("host_user"), "call_hello", host_functions=True)
    return [
        call_row(pdk, "small call 14 B", SMALL_INPUT, Target("ratio", 12)),
        call_row(pdk_opt_in, "small call 14 B", SMALL_INPUT),
        *size_rows(pdk, {MIB: Target("ratio", 1.0)}),
        call_row(pdk_opt_in, "1 MiB", text_input(MIB)),
        many_row(pdk, Target("ratio", 13)),
        many_row(pdk_opt_in),
        *instance_rows(pdk, Target("ratio", 9)),
        call_row(host, "host function round trip", HOST_INPUT, Target("ratio", 10)),
        call_row(minimal, "small call 14 B", SMALL_INPUT),
        *size_rows(minimal),
        many_row(minimal),
        *instance_rows(minimal),
        *as_rows(),
        call_row(kernel, "echo 64 KiB (output = input block)", ECHO_INPUT),
        call_row(kernel, "echo_copy 64 KiB (load/store_u64)", ECHO_INPUT, function="echo_copy"),
        call_row(kernel, f"alloc {BLOCK_COUNT:,} x {BLOCK_SIZE} B blocks (kernel bookkeeping)", BLOCKS_INPUT,
                 function="alloc_blocks"),
        *thread_rows(minimal),
        *filter(None, [arrow_row(minimal, Target("ratio", 1.3))]),
    ]


# --------------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------------


def time_loop(op: Op, n: int) -> float:
    """Seconds for n calls of op, GC off."""
    gc_was_on = gc.isenabled()
    gc.disable()
    try:
        t0 = time.perf_counter()
        for _ in itertools.repeat(None, n):
            op()
        return time.perf_counter() - t0
    finally:
        if gc_was_on:
            gc.enable()


def time_threads(ops: list[Op], n: int) -> float:
    """Wall seconds for len(ops) threads to make n calls each (op i on thread i), GC off."""
    barrier = threading.Barrier(len(ops) + 1)
    errors: list[BaseException] = []

    def work(op: Op) -> None:
        barrier.wait()
        try:
            for _ in itertools.repeat(None, n):
                op()
        except BaseException as exc:  # surface failures in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(op,)) for op in ops]
    gc_was_on = gc.isenabled()
    gc.disable()
    try:
        for t in threads:
            t.start()
        barrier.wait()
        t0 = time.perf_counter()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - t0
    finally:
        if gc_was_on:
            gc.enable()
    if errors:
        raise errors[0]
    return elapsed


def calibrate(op: Op, target: float) -> int:
    """Loop count that makes time_loop(op, n) take about `target` seconds (also warms up)."""
    n = 1
    while True:
        elapsed = time_loop(op, n)
        if elapsed >= target / 10 or n >= 1 << 30:
            break
        n *= 2 if elapsed == 0 else max(2, min(100, int(target / 10 / elapsed) + 1))
    return max(1, int(n * target / elapsed))


def measure(case: Case, repeats: int, target: float) -> Result:
    unit = "items/s" if case.items > 1 else "calls/s"
    if case.threads == 1:
        assert callable(case.fast) and callable(case.official)
        n_fast, n_official = calibrate(case.fast, target), calibrate(case.official, target)
        best_fast = best_official = float("inf")
        for _ in range(repeats):  # interleaved, so drifts in machine speed hit both SDKs alike
            best_fast = min(best_fast, time_loop(case.fast, n_fast) / n_fast)
            best_official = min(best_official, time_loop(case.official, n_official) / n_official)
        f, o = best_fast / case.items, best_official / case.items
        return Result(case.name, unit, 1 / f, 1 / o, o / f).check(case.target)

    # Thread rows: throughput = items done / wall time, with the same total work as the 1-thread
    # loop. A list of ops runs op i on thread i (`thread_op_items` items per call); a single op
    # (the pool) spreads its `items` over the threads by itself.
    assert case.fast_1t is not None and case.official_1t is not None
    k = case.threads
    n1_fast, n1_official = calibrate(case.fast_1t, target), calibrate(case.official_1t, target)

    def per_item_threaded(ops: Op | list[Op], n1: int) -> float:
        if isinstance(ops, list):
            n = max(1, n1 * case.items // (k * case.thread_op_items))
            return time_threads(ops, n) / (k * n * case.thread_op_items)
        return time_loop(ops, n1) / (n1 * case.items)

    for ops in (case.fast, case.official):
        for op in ops if isinstance(ops, list) else [ops]:
            op()  # warm up every instance
    best = {"f1": float("inf"), "o1": float("inf"), "fk": float("inf"), "ok": float("inf"), "ref": float("inf")}
    for _ in range(repeats):
        if case.fast_ref is not None:
            best["ref"] = min(best["ref"], time_loop(case.fast_ref[1], n1_fast) / (n1_fast * case.items))
        best["f1"] = min(best["f1"], time_loop(case.fast_1t, n1_fast) / (n1_fast * case.items))
        best["fk"] = min(best["fk"], per_item_threaded(case.fast, n1_fast))
        best["o1"] = min(best["o1"], time_loop(case.official_1t, n1_official) / (n1_official * case.items))
        best["ok"] = min(best["ok"], per_item_threaded(case.official, n1_official))
    result = Result(case.name, unit, 1 / best["fk"], 1 / best["ok"], best["ok"] / best["fk"],
                    fast_scaling=best["f1"] / best["fk"], official_scaling=best["o1"] / best["ok"])
    if case.fast_ref is not None:
        result.note = (f"extism_fast 1 thread: {1 / best['f1']:,.0f} {unit}; {case.fast_ref[0]}: "
                       f"{1 / best['ref']:,.0f} {unit}, which 2 threads beat {best['ref'] / best['fk']:.2f}x")
    return result.check(case.target)


def verify(case: Case) -> None:
    fast_out, official_out = case.check()
    if _normalize(fast_out) != _normalize(official_out):
        raise SystemExit(
            f"bench: OUTPUT MISMATCH in row {case.name!r}:\n"
            f"  extism_fast: {_preview(fast_out)}\n  extism:      {_preview(official_out)}"
        )


def _normalize(value: object) -> object:
    if isinstance(value, list):
        return [_normalize(v) for v in value]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    return value


def _preview(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 200 else f"{text[:200]}... ({len(value) if hasattr(value, '__len__') else '?'} items/bytes)"  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------
# Rows measured in fresh processes
# --------------------------------------------------------------------------------------------------

_MEMORY_SCRIPT = textwrap.dedent("""
    import gc, os, sys
    sdk, path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    wasm = open(path, "rb").read()
    page = os.sysconf("SC_PAGE_SIZE")

    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * page

    if sdk == "extism_fast":
        import extism_fast
        compiled = extism_fast.CompiledPlugin(wasm, functions=[])
        new = lambda: extism_fast.Plugin(compiled)
    else:
        import extism
        cls = getattr(extism, "CompiledPlugin", None) or extism.extism.CompiledPlugin
        compiled = cls(wasm, functions=[])
        new = lambda: extism.Plugin(compiled)
    warm = [new() for _ in range(5)]  # first instances: lazily initialised runtime state
    for p in warm:
        p.call("count_vowels", b"warm up")
    gc.collect()
    before = rss()
    plugins = [new() for _ in range(n)]
    for p in plugins:
        p.call("count_vowels", b"Hello, World!!")
    gc.collect()
    after = rss()
    print((after - before) / n)
""")

_LOAD_SCRIPT = textwrap.dedent("""
    import sys, time
    sdk, path = sys.argv[1], sys.argv[2]
    if sdk == "extism_fast":
        import extism_fast as sdk_module
    else:
        import extism as sdk_module
    t0 = time.perf_counter()
    plugin = sdk_module.Plugin(path, functions=[])
    out = plugin.call("run", b"")
    elapsed = time.perf_counter() - t0
    print(elapsed, bytes(out).hex())
""")


def _run_script(script: str, *args: str, env: dict | None = None, timeout: float = 300) -> str:
    try:
        proc = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True,
                              env={**os.environ, **(env or {})}, timeout=timeout)
    except subprocess.TimeoutExpired as hung:  # run() killed it; its stderr so far may come as bytes
        stderr = hung.stderr.decode(errors="replace") if isinstance(hung.stderr, bytes) else hung.stderr or ""
        raise SystemExit(f"bench: subprocess {args!r} did not finish in {timeout:g} s; it was killed:\n"
                         f"{stderr}") from None
    if proc.returncode != 0:
        raise SystemExit(f"bench: subprocess {args!r} failed:\n{proc.stderr}")
    return proc.stdout.strip()


def measure_memory(repeats: int) -> Result:
    path = str(build_path("examples/count_vowels.c"))
    per = {}
    for sdk in ("extism_fast", "extism"):
        per[sdk] = min(float(_run_script(_MEMORY_SCRIPT, sdk, path, str(MEMORY_INSTANCES)))
                       for _ in range(max(1, min(repeats, 2))))
    fast, official = per["extism_fast"] / KIB, per["extism"] / KIB
    return Result(f"RSS per idle instance ({MEMORY_INSTANCES} from one compiled minimal count_vowels)", "KiB",
                  fast, official, official / fast if fast > 0 else float("inf")).check(Target("fraction", 0.5))


def first_load_setup(workdir: Path) -> tuple[Path, str, dict]:
    """The ~1.9 MB plugin (big_plugin_wat) written to ``workdir``, its size label, and each SDK's
    environment with a compile cache there ("warm") and with none ("cold")."""
    import wasmtime

    wasm = bytes(wasmtime.wat2wasm(big_plugin_wat()))
    path = workdir / "big.wasm"
    path.write_bytes(wasm)
    fast_cache = workdir / "extism_fast-cache"
    official_cache = workdir / "wasmtime-cache"
    official_config = workdir / "wasmtime-cache.toml"
    official_config.write_text(f'[cache]\ndirectory = "{official_cache}"\n')
    envs = {
        "warm": {"extism_fast": {"EXTISM_FAST_CACHE_DIR": str(fast_cache), "EXTISM_FAST_CACHE": "1"},
                 "extism": {"EXTISM_CACHE_CONFIG": str(official_config)}},
        # extism (libextism) reads EXTISM_CACHE_CONFIG; set but empty turns wasmtime's cache off.
        "cold": {"extism_fast": {"EXTISM_FAST_CACHE": "0"}, "extism": {"EXTISM_CACHE_CONFIG": ""}},
    }
    return path, f"{len(wasm) / 1e6:.1f} MB", envs


def measure_first_load(repeats: int, workdir: Path) -> list[Result]:
    path, size, envs = first_load_setup(workdir)
    outputs = set()

    def load(sdk: str, mode: str) -> float:
        elapsed, out = _run_script(_LOAD_SCRIPT, sdk, str(path), env=envs[mode][sdk]).split()
        outputs.add(out)
        return float(elapsed) * 1e3

    first = {sdk: load(sdk, "warm") for sdk in ("extism_fast", "extism")}  # fills the caches
    best: dict = {}
    for _ in range(repeats):
        for mode in ("warm", "cold"):
            for sdk in ("extism_fast", "extism"):
                best[mode, sdk] = min(best.get((mode, sdk), float("inf")), load(sdk, mode))
    if len(outputs) != 1:
        raise SystemExit(f"bench: OUTPUT MISMATCH in the first-load rows: {sorted(outputs)}")
    rows = []
    for mode, label in (("warm", "warm cache"), ("cold", "no cache")):
        f, o = best[mode, "extism_fast"], best[mode, "extism"]
        rows.append(Result(f"first load + call, {size} plugin, {label} (fresh process)", "ms", f, o, o / f))
    rows[0].note = (f"the warm-up process that filled the caches took {first['extism_fast']:.0f} ms "
                    f"(extism_fast) and {first['extism']:.0f} ms (extism); the official SDK caches "
                    f"compiled modules through wasmtime's cache, on by default")
    return rows


def measure_scale_out(repeats: int, quick: bool, wanted: Callable[[str], bool]) -> list[Result]:
    """The Dask and Ray rows (bench/scale_out.py): each engine's pipeline over 2 worker processes
    against a local 2-instance PluginPool.map (target >= 0.8x), measured taking turns with it, and
    the official SDK in the same pipeline (one plugin per task). For Ray also: PluginMapper on Ray
    actors, warm actors holding a pool (the README's pattern), and a map_batches that does nothing
    (Ray Data's own cost). An engine that is not installed is skipped."""
    from bench import scale_out

    subject = minimal_subject()
    count = scale_out.SCALE_COUNT // (10 if quick else 1)
    size = f"{count:,} x {scale_out.ITEM_SIZE // KIB} KiB"
    against_pool = f"{size} (extism: local PluginPool.map, 2 instances), {subject.label}"
    rows = []
    engines = (("Dask LocalCluster 2 workers, map_bag", "dask", scale_out.measure_dask, ()),
               ("Ray Data map_batches(PluginMapper(...)), Ray tasks, 2 CPUs", "ray", scale_out.measure_ray,
                (("Ray Data map_batches(PluginMapper(...)), Ray tasks, 2 CPUs, op_resource_reservation_enabled=False",
                  "unreserved"),
                 ("Ray Data map_batches(PluginMapper), 2 Ray actors", "data_actors"),
                 ("Ray, 2 warm actors holding a PluginPool (README pattern)", "actors"),
                 ("Ray Data map_batches doing nothing (Ray Data's floor)", "noop"))))
    for label, module, measure, extras in engines:
        names = (f"{label}, {against_pool}",
                 f"{label}, {size} (extism: official SDK, one plugin per task), {subject.label}",
                 *(f"{extra}, {against_pool}" for extra, _ in extras))
        if not any(wanted(name) for name in names):
            continue
        try:
            __import__(module)
        except ImportError:
            print(f"  skipped: {label} ({module} is not installed: pip install -e '.[bench]')", file=sys.stderr)
            continue
        got = measure(subject.wasm, subject.function, count, repeats)
        scale_out.check_outputs(got, got["local_out"], f"{label} rows")
        local = got["local"]
        rows.append(Result(names[0], "items/s", got["fast"], local, got["fast"] / local).check(Target("ratio", 0.8)))
        if "parallelism" in got:
            rows[-1].note = ray_parallelism_note(got, got["fast"] / local)
        rows.append(Result(names[1], "items/s", got["fast"], got["official"], got["fast"] / got["official"]))
        for name, (_, key) in zip(names[2:], extras):
            rows.append(Result(name, "items/s", got[key], local, got[key] / local))
        print(f"  measured: {label}", file=sys.stderr, flush=True)
    if not quick:  # ~10 minutes: the full bench only
        rows += scale_out.long_ray_rows(subject.wasm, subject.function, subject.label, repeats, wanted)
    return [row for row in rows if wanted(row.name)]


def ray_parallelism_note(got: dict, ratio: float) -> str:
    """What Ray Data's scheduler alone allows on this machine (the ceiling of the Ray Data rows), and
    how near to it the row's ``ratio`` (against a 2-instance pool) is."""
    from bench.scale_out import PARTITIONS, SPIN_S

    ceiling = got["parallelism"] / 2
    return (f"Ray Data's own ceiling here: mapping a {SPIN_S} s spin (no plugin, no data) over {PARTITIONS} "
            f"blocks, it ran {got['parallelism']:.2f} tasks at once on average with its defaults and "
            f"{got['unreserved_parallelism']:.2f} with op_resource_reservation_enabled=False, of 2 CPUs; "
            f"a pipeline running {got['parallelism']:.2f} tasks at once can reach at most {ceiling:.2f}x a "
            f"2-instance pool, and this row's {ratio:.2f}x is {ratio / ceiling:.0%} of that")


# --------------------------------------------------------------------------------------------------
# Throughput against input size (the plot)
# --------------------------------------------------------------------------------------------------


def sweep(subject: Subject, repeats: int, target: float) -> list[dict]:
    """calls/s of both SDKs for each of SWEEP_SIZES (each size a call row, outputs checked)."""
    points = []
    for size in SWEEP_SIZES:
        case = call_row(subject, _size_label(size), text_input(size) if size != 14 else SMALL_INPUT)
        verify(case)
        result = measure(case, repeats, target)
        points.append({"size": size, "extism_fast": result.fast, "extism": result.official})
    return points


def plot(points: list[dict], path: Path, title: str) -> str | None:
    """Write the log-log plot; returns None, or why it was skipped."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install -e '.[bench]')"
    sizes = [p["size"] for p in points]
    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    for sdk, style in (("extism_fast", "o-"), ("extism", "s--")):
        ax.plot(sizes, [p[sdk] for p in points], style, label=sdk)
    for p in points:
        ax.annotate(f"{p['extism_fast'] / p['extism']:.1f}x", (p["size"], p["extism_fast"]),
                    textcoords="offset points", xytext=(0, 7), ha="center", fontsize=8)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.margins(x=0.05, y=0.12)
    ax.set_xticks(sizes)
    ax.set_xticklabels([_size_label(s) for s in sizes])
    ax.set_xlabel("input size")
    ax.set_ylabel("calls/s (higher is better)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return None


def _size_label(size: int) -> str:
    if size >= MIB:
        return f"{size // MIB} MiB"
    if size >= KIB:
        return f"{size // KIB} KiB"
    return f"{size} B"


# --------------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------------


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def parallel_capacity(repeats: int = 3) -> float:
    """Throughput of 2 threads over 1 on GIL-free work (sha256 of 16 MiB): how much two threads
    can gain at most on this machine (a CPU quota can make it ~1.0 even with 2 CPUs)."""
    import hashlib

    data = bytes(16 << 20)
    work = lambda: hashlib.sha256(data).digest()  # noqa: E731 - releases the GIL on big inputs
    one = min(time_loop(work, 2) for _ in range(repeats))
    two = min(time_threads([work, work], 1) for _ in range(repeats))
    return one / two


def machine_info() -> dict:
    return {
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
        "extism_fast": extism_fast.__version__,
        "wasmtime": _version("wasmtime"),
        "extism": _version("extism"),
        "extism_sys": _version("extism-sys"),
        "libextism": extism.extism_version(),
    }


def _fmt(x: float, unit: str) -> str:
    if unit == "ms":
        return f"{x:,.1f} ms"
    if unit == "KiB":
        return f"{x:,.0f} KiB"
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}"


def _target_cell(r: Result) -> str:
    if r.target is None:
        return ""
    got = f"{r.measured:.2f}" if r.measured is not None else "?"
    if r.target.startswith("2t/1t"):
        got += "x"
    elif r.target.startswith(">="):
        got = f"{r.ratio:.1f}x"
    return f"{r.target} (is {got})"


def format_table(results: list[Result]) -> str:
    head = ["row", "extism_fast", "extism", "ratio", "target", ""]
    rows = []
    for r in results:
        unit = "" if r.unit in ("ms", "KiB") else f" {r.unit}"
        status = "" if r.passed is None else ("PASS" if r.passed else "**MISS**")
        rows.append([r.name, _fmt(r.fast, r.unit) + unit, _fmt(r.official, r.unit) + unit,
                     f"{r.ratio:.1f}x", _target_cell(r), status])
    widths = [max(len(head[i]), *(len(row[i]) for row in rows)) for i in range(len(head))]
    right = {1, 2, 3}

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.rjust(w) if i in right else c.ljust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths))) + " |"

    sep = "|" + "|".join(("-" * (w + 1) + ":") if i in right else ("-" * (w + 2))
                         for i, w in enumerate(widths)) + "|"
    return "\n".join([line(head), sep, *(line(r) for r in rows)])


def format_notes(results: list[Result], info: dict) -> list[str]:
    notes = ["ratio = how many times better extism_fast is (throughput / throughput; for RSS and "
             "load time, extism's figure / extism_fast's)."]
    for r in results:
        if r.fast_scaling is not None:
            notes.append(f"{r.name}: 2-thread / 1-thread throughput: extism_fast {r.fast_scaling:.2f}x, "
                         f"extism {r.official_scaling:.2f}x (this machine: 2 threads of GIL-free work "
                         f"run {info['parallel_capacity_2t']:.2f}x one thread).")
        if r.note:
            notes.append(f"{r.name}: {r.note}.")
    return notes


def markdown_report(results: list[Result], info: dict, repeats: int, target: float, elapsed: float,
                    plot_file: str | None) -> str:
    passed = [r for r in results if r.passed is not None]
    lines = [
        "# extism_fast vs extism: benchmark",
        "",
        f"Generated by `python -m bench` on {datetime.date.today().isoformat()} "
        f"(best of {repeats} loop(s) of ~{target:g} s per SDK and row, SDKs interleaved; "
        f"{elapsed:.0f} s in all).",
        "",
        f"- extism_fast {info['extism_fast']} (wasmtime {info['wasmtime']}) vs extism {info['extism']} "
        f"(extism-sys {info['extism_sys']}, libextism {info['libextism']})",
        f"- {info['python']} on {info['platform']}",
        f"- {info['cpu']}, {info['cpus']} CPUs",
        "",
        format_table(results),
        "",
        f"Targets met: {sum(r.passed for r in passed)} of {len(passed)}.",
        "",
        *(f"- {n}" for n in format_notes(results, info)),
    ]
    if plot_file:
        lines += ["", f"![PDK-like count_vowels calls/s against input size]({plot_file})"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: short loops, 1 repeat")
    parser.add_argument("--repeats", type=int, help="timed loops per SDK and row, best counts (default 5)")
    parser.add_argument("--target", type=float, help="seconds per timed loop (default 0.25)")
    parser.add_argument("--only", metavar="TEXT", help="run only the rows whose name contains TEXT "
                                                       "(and skip the plot)")
    parser.add_argument("--json", metavar="PATH", help="also save the results as JSON to PATH")
    parser.add_argument("--results", metavar="DIR", type=Path, default=RESULTS_DIR,
                        help="where latest.md and throughput.png go (default bench/results)")
    parser.add_argument("--no-plot", action="store_true", help="skip the input-size sweep and the plot")
    args = parser.parse_args(argv)
    repeats = args.repeats or (1 if args.quick else 5)
    target = args.target or (0.02 if args.quick else 0.25)

    info = machine_info()
    print(f"extism_fast {info['extism_fast']} (wasmtime {info['wasmtime']}) vs "
          f"extism {info['extism']} (extism-sys {info['extism_sys']}, libextism {info['libextism']})")
    info["parallel_capacity_2t"] = round(parallel_capacity(1 if args.quick else 3), 2)
    print(f"{info['python']} on {info['platform']}; {info['cpu']}, {info['cpus']} CPUs "
          f"(2 threads of GIL-free work run {info['parallel_capacity_2t']:.2f}x one thread)")
    print(f"best of {repeats} loop(s) of ~{target:g} s per SDK and row, SDKs interleaved\n", flush=True)

    def wanted(name: str) -> bool:
        return not args.only or args.only.lower() in name.lower()

    t_start = time.perf_counter()
    results: list[Result] = []
    cases = [c for c in make_cases() if wanted(c.name)]
    for case in cases:
        verify(case)
    for case in cases:
        results.append(measure(case, repeats, target))
        print(f"  measured: {case.name}", file=sys.stderr, flush=True)
    results.extend(measure_limit(repeats, target, wanted))
    del cases
    from bench.js_peer import measure_js_peer
    results.extend(measure_js_peer(repeats, target, wanted))
    gc.collect()
    if wanted("RSS per idle instance"):
        results.append(measure_memory(repeats))
        print("  measured: RSS per idle instance", file=sys.stderr, flush=True)
    if wanted("first load"):
        with tempfile.TemporaryDirectory(prefix="extism_fast_bench_") as tmp:
            results.extend(r for r in measure_first_load(1 if args.quick else 3, Path(tmp)) if wanted(r.name))
        print("  measured: first load", file=sys.stderr, flush=True)
    from bench.cold_start import run as cold_start_rows  # imports this module: not at the top

    results.extend(cold_start_rows(args.quick, wanted))
    results.extend(measure_scale_out(1 if args.quick else 3, args.quick, wanted))

    plot_note = None
    points: list[dict] = []
    plot_name = "throughput.png"
    if not args.no_plot and not args.only:
        subject = pdk_subject()
        points = sweep(subject, max(1, min(repeats, 3)), target / 2.5)
        print("  measured: input-size sweep", file=sys.stderr, flush=True)
        plot_note = plot(points, args.results / plot_name,
                         f"{subject.label} calls/s: extism_fast {info['extism_fast']} vs "
                         f"extism {info['extism']} ({info['cpu']})")
    elapsed = time.perf_counter() - t_start

    report = markdown_report(results, info, repeats, target, elapsed,
                             plot_name if points and plot_note is None else None)
    print(report.split("\n\n", 2)[2] if report.count("\n\n") >= 2 else report)
    if not args.only:
        args.results.mkdir(parents=True, exist_ok=True)
        (args.results / "latest.md").write_text(report)
        print(f"saved {args.results / 'latest.md'}" +
              (f" and {args.results / plot_name}" if points and plot_note is None else ""))
    if plot_note:
        print(f"plot skipped: {plot_note}")
    if args.json:
        payload = {"machine": info, "repeats": repeats, "target_s": target,
                   "results": [asdict(r) for r in results], "sweep": points}
        Path(args.json).write_text(json.dumps(payload, indent=2) + "\n")
        print(f"results saved to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
