"""extism_fast vs the official Extism Python SDK, side by side in one process.

    python bench/compare.py [--quick] [--repeats N] [--target SECONDS] [--only TEXT] [--json PATH]
    python -m bench ...

Both SDKs run the same plugins, built from this repository's sources by ``tests/conftest.py``'s
``build_plugin`` (clang for the C plugins, wat2wasm for WAT). For every row the outputs of both SDKs
are compared first (any difference aborts the run); then each SDK's timed loop (sized to about
``--target`` seconds) runs ``--repeats`` times, alternating SDKs, and the best loop counts. The
garbage collector is off inside timed loops, as with ``timeit``.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import os
import platform
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Callable

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT / "tests") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "tests"))

import extism  # noqa: E402
import extism_fast  # noqa: E402

SMALL_INPUT = b"Hello, World!!"  # 14 bytes
MIB_INPUT = (b"Hello, World!! The quick brown fox jumps over the lazy dog. " * 20000)[: 1 << 20]
ECHO_INPUT = bytes(range(256)) * 256  # 64 KiB
HOST_INPUT = b"Bench"

Op = Callable[[], object]


# --------------------------------------------------------------------------------------------------
# Plugins and host functions
# --------------------------------------------------------------------------------------------------


def build(name: str) -> bytes:
    """Build a plugin with the test suite's builder (the same commands the tests use)."""
    try:
        from conftest import build_plugin
    except ImportError as exc:  # pytest missing: conftest needs it
        raise SystemExit(f"bench: cannot import tests/conftest.py ({exc}); install pytest") from None
    try:
        return build_plugin(name)
    except BaseException as exc:  # conftest reports build failures with pytest.fail (a BaseException)
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        raise SystemExit(f"bench: building plugin {name!r} failed:\n{exc}") from None


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


# --------------------------------------------------------------------------------------------------
# Rows
# --------------------------------------------------------------------------------------------------


@dataclass
class Case:
    """One row: an op per SDK plus a check that both give the same output."""

    name: str
    fast: Op
    official: Op
    check: Callable[[], tuple[object, object]]  # -> (fast output, official output)
    threads: int = 1
    fast_1t: Op | None = None  # for thread rows: the single-thread op, for the scaling ratio
    official_1t: Op | None = None
    keep: list = field(default_factory=list)  # objects that must outlive the row


def _call_case(name: str, fast_plugin, official_plugin, function: str, data: bytes) -> Case:
    f_call, o_call = fast_plugin.call, official_plugin.call
    return Case(
        name,
        fast=lambda: f_call(function, data),
        official=lambda: o_call(function, data),
        check=lambda: (f_call(function, data), o_call(function, data)),
        keep=[fast_plugin, official_plugin],
    )


def make_cases() -> list[Case]:
    cv = build("examples/count_vowels.c")
    kernel = build("kernel")
    host_user = build("host_user")

    cases = []
    f_cv, o_cv = extism_fast.Plugin(cv, functions=[]), extism.Plugin(cv, functions=[])
    cases.append(_call_case("count_vowels (C PDK), 14 B", f_cv, o_cv, "count_vowels", SMALL_INPUT))
    cases.append(_call_case("count_vowels (C PDK), 1 MiB", f_cv, o_cv, "count_vowels", MIB_INPUT))

    f_k, o_k = extism_fast.Plugin(kernel, functions=[]), extism.Plugin(kernel, functions=[])
    cases.append(_call_case("echo 64 KiB (output = input block)", f_k, o_k, "echo", ECHO_INPUT))
    cases.append(_call_case("echo_copy 64 KiB (load/store_u64)", f_k, o_k, "echo_copy", ECHO_INPUT))

    f_h = extism_fast.Plugin(host_user, functions=fast_host_functions())
    o_h = extism.Plugin(host_user, functions=official_host_functions())
    cases.append(_call_case("host function round trip", f_h, o_h, "call_hello", HOST_INPUT))

    f_comp = extism_fast.CompiledPlugin(cv, functions=[])
    # extism 1.1.1 has CompiledPlugin but does not export it from the package.
    official_compiled = getattr(extism, "CompiledPlugin", None) or extism.extism.CompiledPlugin
    o_comp = official_compiled(cv, functions=[])

    def fast_new():
        extism_fast.Plugin(f_comp).close()

    def official_new():
        p = extism.Plugin(o_comp)
        p.__del__()  # frees the instance (and is idempotent when refcounting calls it again)

    def check_new():
        with extism_fast.Plugin(f_comp) as f:
            fast_out = f.call("count_vowels", SMALL_INPUT)
        o = extism.Plugin(o_comp)
        official_out = o.call("count_vowels", SMALL_INPUT)
        o.__del__()
        return fast_out, official_out

    cases.append(Case("new instance from CompiledPlugin", fast_new, official_new, check_new,
                      keep=[f_comp, o_comp]))

    for label, data in (("14 B", SMALL_INPUT), ("1 MiB", MIB_INPUT)):
        f2 = [extism_fast.Plugin(cv, functions=[]) for _ in range(2)]
        o2 = [extism.Plugin(cv, functions=[]) for _ in range(2)]
        f1, o1 = f2[0].call, o2[0].call
        cases.append(Case(
            f"2 threads, count_vowels {label}",
            fast=[(lambda c=p.call, d=data: c("count_vowels", d)) for p in f2],  # type: ignore[arg-type]
            official=[(lambda c=p.call, d=data: c("count_vowels", d)) for p in o2],  # type: ignore[arg-type]
            check=lambda f2=f2, o2=o2, d=data: (
                [p.call("count_vowels", d) for p in f2], [p.call("count_vowels", d) for p in o2]),
            threads=2,
            fast_1t=lambda c=f1, d=data: c("count_vowels", d),
            official_1t=lambda c=o1, d=data: c("count_vowels", d),
            keep=[f2, o2],
        ))
    return cases


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


@dataclass
class Result:
    name: str
    fast_ops: float
    official_ops: float
    ratio: float
    threads: int = 1
    fast_scaling: float | None = None  # 2-thread / 1-thread throughput
    official_scaling: float | None = None


def measure(case: Case, repeats: int, target: float) -> Result:
    if case.threads == 1:
        n_fast, n_official = calibrate(case.fast, target), calibrate(case.official, target)
        best_fast = best_official = float("inf")
        for _ in range(repeats):  # interleaved, so drifts in machine speed hit both SDKs alike
            best_fast = min(best_fast, time_loop(case.fast, n_fast) / n_fast)
            best_official = min(best_official, time_loop(case.official, n_official) / n_official)
        return Result(case.name, 1 / best_fast, 1 / best_official, best_official / best_fast)

    # Thread rows: each thread makes n calls; per-op time = wall / (threads * n).
    assert case.fast_1t is not None and case.official_1t is not None
    k = case.threads
    n1_fast, n1_official = calibrate(case.fast_1t, target), calibrate(case.official_1t, target)
    n_fast, n_official = max(1, n1_fast // k), max(1, n1_official // k)
    for ops in (case.fast, case.official):
        for op in ops:  # type: ignore[union-attr]
            op()  # warm up every instance
    best = {"f1": float("inf"), "o1": float("inf"), "fk": float("inf"), "ok": float("inf")}
    for _ in range(repeats):
        best["f1"] = min(best["f1"], time_loop(case.fast_1t, n1_fast) / n1_fast)
        best["fk"] = min(best["fk"], time_threads(case.fast, n_fast) / (k * n_fast))  # type: ignore[arg-type]
        best["o1"] = min(best["o1"], time_loop(case.official_1t, n1_official) / n1_official)
        best["ok"] = min(best["ok"], time_threads(case.official, n_official) / (k * n_official))  # type: ignore[arg-type]
    return Result(case.name, 1 / best["fk"], 1 / best["ok"], best["ok"] / best["fk"], threads=k,
                  fast_scaling=best["f1"] / best["fk"], official_scaling=best["o1"] / best["ok"])


def verify(case: Case) -> None:
    fast_out, official_out = case.check()
    if fast_out != official_out:
        raise SystemExit(
            f"bench: OUTPUT MISMATCH in row {case.name!r}:\n"
            f"  extism_fast: {_preview(fast_out)}\n  extism:      {_preview(official_out)}"
        )


def _preview(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 200 else f"{text[:200]}... ({len(value) if hasattr(value, '__len__') else '?'} items/bytes)"  # type: ignore[arg-type]


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


def _ops(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}"


def format_table(results: list[Result]) -> str:
    width = max(len("row"), *(len(r.name) for r in results))
    head = f"{'row':<{width}}  {'extism_fast ops/s':>17}  {'extism ops/s':>13}  {'ratio':>7}"
    lines = [head, "-" * len(head)]
    for r in results:
        lines.append(f"{r.name:<{width}}  {_ops(r.fast_ops):>17}  {_ops(r.official_ops):>13}  {r.ratio:>6.1f}x")
    notes = [r for r in results if r.threads > 1]
    for r in notes:
        lines.append(
            f"  {r.name}: {r.threads}-thread / 1-thread throughput: extism_fast {r.fast_scaling:.2f}x, "
            f"extism {r.official_scaling:.2f}x"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python bench/compare.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: short loops, 1 repeat")
    parser.add_argument("--repeats", type=int, help="timed loops per SDK and row, best counts (default 5)")
    parser.add_argument("--target", type=float, help="seconds per timed loop (default 0.25)")
    parser.add_argument("--only", metavar="TEXT", help="run only the rows whose name contains TEXT")
    parser.add_argument("--json", metavar="PATH", help="also save the results as JSON to PATH")
    args = parser.parse_args(argv)
    repeats = args.repeats or (1 if args.quick else 5)
    target = args.target or (0.02 if args.quick else 0.25)

    info = machine_info()
    print(f"extism_fast {info['extism_fast']} (wasmtime {info['wasmtime']}) vs "
          f"extism {info['extism']} (extism-sys {info['extism_sys']}, libextism {info['libextism']})")
    info["parallel_capacity_2t"] = round(parallel_capacity(), 2)
    print(f"{info['python']} on {info['platform']}; {info['cpu']}, {info['cpus']} CPUs "
          f"(2 threads of GIL-free work run {info['parallel_capacity_2t']:.2f}x one thread)")
    print(f"best of {repeats} loop(s) of ~{target:g} s per SDK and row, SDKs interleaved\n", flush=True)

    t_start = time.perf_counter()
    cases = make_cases()
    if args.only:
        cases = [c for c in cases if args.only.lower() in c.name.lower()]
    for case in cases:
        verify(case)
    results = []
    for case in cases:
        results.append(measure(case, repeats, target))
        print(f"  measured: {case.name}", file=sys.stderr, flush=True)
    print(format_table(results))
    elapsed = time.perf_counter() - t_start
    print(f"\n(total {elapsed:.1f} s)")

    if args.json:
        payload = {"machine": info, "repeats": repeats, "target_s": target,
                   "results": [asdict(r) for r in results]}
        Path(args.json).write_text(json.dumps(payload, indent=2) + "\n")
        print(f"results saved to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
