"""The "limit" rows: extism_fast's small call against the plainest C host of the same plugin.

``bench/limit_host.c`` (built here with gcc, against the wasmtime wheel's library through
``kernel_c/wasmtime_api.{h,c}``, the declarations and loader extism_fast itself uses) runs the
headline plugin (``bench/plugin_sources/count_vowels_pdk.c``) on the same wasmtime with a minimal
kernel: bump-allocated blocks, one config entry, a var table, and extism_fast's own wasm accessor
module for loads, stores and input reads (the fastest way known; ``ACCESSORS=c`` in the host makes
them C callbacks instead, for comparison). It times its calls in C, so the row's ratio shows what
extism_fast costs per small call beyond the plugin's own code and wasmtime's entry and host-call
trampolines: ``ratio`` = extism_fast's time per call / the limit's (lower is better; target
<= 1.5x on default settings, i.e. with epoch interruption, which the limit host also turns on).
"""

from __future__ import annotations

import functools
import gc
import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import extism_fast

from bench.plugins import REPO_ROOT, build_path

HOST_SOURCE = REPO_ROOT / "bench" / "limit_host.c"
#: kernel_c units the host reuses: the wasmtime loader and the accessor module (kernel.c for the
#: accessor fault message's helper)
KERNEL_UNITS = ("wasmtime_api.c", "kernel_access.c", "kernel.c")
#: our time / the limit's, per small call on default settings
LIMIT_TARGET = 1.5
#: each repeat times this many loops of ~target/SHORT_LOOPS seconds per side
SHORT_LOOPS = 10


@functools.cache
def build_host() -> Path:
    """Compile limit_host.c once per process (into the plugin builder's temporary directory)."""
    from conftest import _out_dir

    out = _out_dir() / "limit_host"
    kernel = REPO_ROOT / "kernel_c"
    command = [os.environ.get("CC", "gcc"), "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", f"-I{kernel}",
               str(HOST_SOURCE), *(str(kernel / unit) for unit in KERNEL_UNITS), "-ldl", "-o", str(out)]
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"bench: building the limit host failed:\n{' '.join(command)}\n{proc.stderr}")
    return out


def run_host(plugin: Path, function: str, data: bytes, config: dict, epoch: bool, calls: int,
             repeats: int = 1, accessors: str = "wasm") -> tuple[float, bytes]:
    """(best seconds per call over `repeats` loops of `calls` calls, the first call's output)."""
    from extism_fast._runtime import _wasmtime_library_path

    ((key, value),) = config.items()
    command = [str(build_host()), _wasmtime_library_path(), str(plugin), function, data.decode(), key, value,
               "1" if epoch else "0", accessors, str(calls), str(repeats)]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise SystemExit(f"bench: the limit host failed:\n{proc.stderr}")
    got = json.loads(proc.stdout)
    return got["ns_per_call"] / 1e9, got["output"].encode()


def _time_direct_loop(call: Callable, function: str, data: bytes, n: int) -> float:
    """Seconds for n calls ``call(function, data)`` written out in the loop, as a program calls a
    plugin (GC off, as compare.time_loop): the limit host's loop is C, so the call rows' ``op``
    lambda (a Python frame per call, ~30 ns) is not counted against extism_fast here."""
    gc_was_on = gc.isenabled()
    gc.disable()
    try:
        t0 = time.perf_counter()
        for _ in itertools.repeat(None, n):
            call(function, data)
        return time.perf_counter() - t0
    finally:
        if gc_was_on:
            gc.enable()


def measure_limit(repeats: int, target_s: float, wanted: Callable[[str], bool]) -> list:
    """The limit rows: default settings (epoch interruption on both sides), and extism_fast's
    interruptible=False against the limit without epoch interruption. Each repeat times SHORT_LOOPS
    loops of extism_fast's Plugin.call written out in a Python loop (_time_direct_loop; also through
    the call rows' lambda, for the note) and then as many loops of as many calls in the limit host;
    the best loop of each side counts."""
    from bench import compare

    pdk = compare.pdk_subject()
    path = build_path("bench/count_vowels_pdk")
    data = compare.SMALL_INPUT
    rows = []
    for subject, epoch in ((pdk, True), (pdk.opt_in(), False)):
        host = "a plain C host on the same wasmtime" + (", epoch interruption on" if epoch else ", no epoch interruption")
        name = f"limit: small call 14 B, {subject.label}: extism_fast vs {host}"
        if not wanted(name):
            continue
        with subject.new(extism_fast) as fresh:
            expected = fresh.call(subject.function, data)
        _, limit_output = run_host(path, subject.function, data, subject.config, epoch, calls=1)
        if limit_output != expected:
            raise SystemExit(f"bench: OUTPUT MISMATCH in row {name!r}:\n  extism_fast: {expected!r}\n"
                             f"  limit host:  {limit_output!r}")
        with subject.new(extism_fast) as plugin:
            call, function = plugin.call, subject.function
            op = lambda: call(function, data)  # noqa: E731 - as call_row's op
            # The best of many short loops on each side: a noisy machine spoils few of them.
            n = max(1, compare.calibrate(op, target_s) // SHORT_LOOPS)
            best_fast = best_lambda = best_limit = float("inf")
            for _ in range(repeats):
                best_fast = min([best_fast, *(_time_direct_loop(call, function, data, n) / n
                                              for _ in range(SHORT_LOOPS))])
                best_lambda = min([best_lambda, *(compare.time_loop(op, n) / n for _ in range(SHORT_LOOPS))])
                best_limit = min(best_limit, run_host(path, function, data, subject.config, epoch, n, SHORT_LOOPS)[0])
        ratio = best_fast / best_limit
        row = compare.Result(name, "calls/s", 1 / best_fast, 1 / best_limit, ratio)
        row.note = (f"ratio here = extism_fast's time per call / the limit host's ({best_fast * 1e9:.0f} ns vs "
                    f"{best_limit * 1e9:.0f} ns; lower is better); the limit column shows the host's calls/s; "
                    f"extism_fast timed as `for ...: plugin.call(name, data)` (through the call rows' lambda: "
                    f"{best_lambda * 1e9:.0f} ns, {best_lambda / best_limit:.2f}x)")
        if epoch:
            row.target, row.measured, row.passed = f"<= {LIMIT_TARGET:g}x the limit's time", ratio, ratio <= LIMIT_TARGET
        rows.append(row)
        print(f"  measured: {name}", file=sys.stderr, flush=True)
    return rows
