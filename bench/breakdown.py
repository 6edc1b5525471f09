"""Where a call's time goes, per SDK: the plugin's own code against the host, measured with `perf`.

    python -m bench.breakdown [--only TEXT] [--seconds S] [--frequency HZ] [--results DIR]

For each plugin of the bench (PDK-like, minimal, AssemblyScript) and row (small call, 1 KiB,
call_many, instance + first call), and each SDK (extism_fast with its defaults and with
``interruptible=False``, and the official ``extism``), a fresh process runs the row's operation in a
loop under ``perf record -g`` with ``EXTISM_PROFILE=perf``, so both runtimes write
``/tmp/perf-<pid>.map`` naming their compiled wasm code. Sampling is on only around the timed loop
(perf's ``--control`` fifo), so building, compiling and warming up are not counted. Each sample is
charged by its call stack to one of:

* plugin: the plugin's own wasm functions, with the memory.fill/copy/grow libcalls they make;
* kernel (wasm): the Extism kernel's wasm code: extism_fast's accessor module (loads, stores,
  input reads; kernel_c/kernel_access.c), the official runtime's whole kernel module (its
  allocator included);
* SDK: the SDK's native library outside wasm: extism_fast's C kernel and Cython binding
  (``_runtime*.so``), the official runtime and its cffi binding (``libextism_sys.so``, which links
  wasmtime in);
* wasmtime: extism_fast's ``_libwasmtime.so`` (entering wasm, host-call trampolines, instantiation)
  and the JIT trampolines of both;
* Python: the interpreter (the bench loop, arguments and results), OS: the Linux kernel and libc.

A kernel module is told from a plugin by its functions: kernel modules import nothing, so their
code includes ``wasm[0]::function[0]``; every plugin here imports kernel functions (checked), so
its own functions are numbered after its imports. The table gives each share as microseconds per
call (the share times the loop's time per call, measured in the same run) and as a percentage.
The report goes to ``bench/results/breakdown.md``. ``BENCH_BREAKDOWN_KEEP=PATH`` writes each profile's
stacks (``perf script`` output) to PATH, the last one staying, for a closer look.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

if not __package__:  # run as `python bench/breakdown.py`: make the `bench` package importable
    sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

RESULTS_DIR = Path(__file__).resolve().parent / "results"
CATEGORIES = ["plugin", "kernel (wasm)", "SDK", "wasmtime", "Python", "OS"]
#: the SDK variants profiled, as (column label, SDK module name, extism_fast options)
VARIANTS = [("extism_fast", "extism_fast", {}),
            ("extism_fast interruptible=False", "extism_fast", {"interruptible": False}),
            ("extism", "extism", {})]
ROWS = ["small call 14 B", "1 KiB", "call_many 10,000 small inputs", "instance + first call"]


# --------------------------------------------------------------------------------------------------
# The worker: one row, one SDK, in a process of its own under perf
# --------------------------------------------------------------------------------------------------


def row_op(row: str, subject, sdk) -> tuple[Callable[[], object], int]:
    """(operation, items per operation) of `row` for one SDK: the same operations as bench/compare.py's
    rows, made for this SDK only (so the process compiles nothing else)."""
    from bench import compare

    function = subject.function
    if row == "instance + first call":
        compiled = subject.compiled(sdk)

        def first_call() -> None:
            plugin = sdk.Plugin(compiled)
            try:
                plugin.call(function, compare.SMALL_INPUT)
            finally:
                compare._close(plugin)

        return first_call, 1
    plugin = subject.new(sdk)
    if row == "small call 14 B":
        return (lambda: plugin.call(function, compare.SMALL_INPUT)), 1
    if row == "1 KiB":
        data = compare.text_input(compare.KIB)
        return (lambda: plugin.call(function, data)), 1
    if sdk.__name__ == "extism_fast":
        return (lambda: plugin.call_many(function, compare.MANY_INPUTS)), compare.MANY_COUNT
    return (lambda: compare._call_loop(plugin, function, compare.MANY_INPUTS)), compare.MANY_COUNT


def worker(spec: dict) -> None:
    """Run one profile: spec has wasm (path), function, config, row, sdk, options, seconds, ctl, ack."""
    import importlib

    from bench.compare import Subject, calibrate, time_loop

    sdk = importlib.import_module(spec["sdk"])
    subject = Subject("profiled", Path(spec["wasm"]).read_bytes(), spec["function"], spec["config"],
                      fast_options=spec["options"])
    op, items = row_op(spec["row"], subject, sdk)
    n = calibrate(op, spec["seconds"])  # also warms up
    with open(spec["ctl"], "w") as ctl, open(spec["ack"]) as ack:
        ctl.write("enable\n")
        ctl.flush()
        ack.readline()
        cpu = time.process_time()
        time_loop(op, n)
        cpu = time.process_time() - cpu  # what perf samples: CPU time, all threads (not waits for a CPU)
        ctl.write("disable\n")
        ctl.flush()
        ack.readline()
    print(json.dumps({"pid": os.getpid(), "seconds_per_item": cpu / (n * items)}))


# --------------------------------------------------------------------------------------------------
# Samples -> categories
# --------------------------------------------------------------------------------------------------


@dataclass
class Segment:
    """The compiled code of one wasm module, from a perf map: [start, end)."""

    start: int
    end: int
    kernel: bool  # a kernel module (it has a function 0: it imports nothing)


def read_perf_map(text: str) -> list[tuple[int, int, str]]:
    """(start, size, name) of each line of a /tmp/perf-<pid>.map."""
    entries = []
    for line in text.splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3:
            entries.append((int(parts[0], 16), int(parts[1], 16), parts[2]))
    return entries


def jit_segments(entries: list[tuple[int, int, str]]) -> list[Segment]:
    """The modules of a perf map: wasmtime writes each module's code as a run of entries at
    increasing, adjacent addresses; a new module starts where that run breaks."""
    segments: list[Segment] = []
    for start, size, name in entries:
        seg = segments[-1] if segments else None
        if seg is None or not (seg.end <= start <= seg.end + 4096):
            seg = Segment(start, start, False)
            segments.append(seg)
        seg.end = max(seg.end, start + size)
        seg.kernel = seg.kernel or name == "wasm[0]::function[0]"
    return segments


def _transparent(sym: str, dso: str, in_jit: bool) -> bool:
    """A frame charged to its caller: libc, an unknown frame, a wasm libcall (memory.fill/copy/grow,
    in _libwasmtime or libextism_sys) and its builtin stub in the JIT code."""
    if in_jit:
        return "wasmtime_builtin_" in sym
    return (sym == "[unknown]" or "libcalls" in sym or "/libc" in dso or "ld-linux" in dso or "libm." in dso)


def classify(frames: list[tuple[int, str, str]], jit: list[Segment]) -> str:
    """The category of one sample: frames are (ip, symbol, dso), leaf first. Libc, libcalls and unknown
    frames are charged to the first caller that is none of these; Linux kernel frames to OS."""
    if frames and frames[0][2].startswith("[kernel"):
        return "OS"
    for ip, sym, dso in frames:
        seg = next((s for s in jit if s.start <= ip < s.end), None)
        if _transparent(sym, dso, seg is not None):
            continue
        if seg is not None:
            if any(t in sym for t in ("trampoline", "module_start[")):
                return "wasmtime"
            return "kernel (wasm)" if seg.kernel else "plugin"
        if "_libwasmtime" in dso:
            return "wasmtime"
        if "_runtime" in dso or "extism_sys" in dso or "_cffi" in dso:
            return "SDK"
        if "python" in dso.rsplit("/", 1)[-1]:
            return "Python"
        return "OS"
    return "OS"


def parse_perf_script(text: str) -> list[list[tuple[int, str, str]]]:
    """The call stacks of `perf script -F ip,sym,dso` output (frames leaf first)."""
    stacks, frames = [], []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            if frames:
                stacks.append(frames)
            frames = []
            continue
        ip, _, rest = line.partition(" ")
        sym, _, dso = rest.rpartition(" (")
        try:
            frames.append((int(ip, 16), sym, dso.rstrip(")")))
        except ValueError:
            continue
    if frames:
        stacks.append(frames)
    return stacks


def shares(stacks: list[list[tuple[int, str, str]]], jit: list[Segment]) -> dict[str, float]:
    counts = Counter(classify(frames, jit) for frames in stacks)
    total = sum(counts.values()) or 1
    return {c: counts[c] / total for c in CATEGORIES} | {"samples": float(sum(counts.values()))}


# --------------------------------------------------------------------------------------------------
# The runner: one perf process per plugin, row and SDK
# --------------------------------------------------------------------------------------------------


@dataclass
class Plugin:
    label: str
    wasm: Path
    function: str
    config: dict | None


def bench_plugins(workdir: Path) -> list[Plugin]:
    """The bench's plugins (bench/compare.py's and bench/as_plugins.py's), written to `workdir`; the
    AssemblyScript one is left out (with bench/as_plugins.py's note) when node is missing."""
    import wasmtime

    from bench import as_plugins, compare

    subjects = [compare.pdk_subject(), compare.minimal_subject(), as_plugins.as_subject()]
    plugins = []
    for i, subject in enumerate(s for s in subjects if s is not None):
        module = wasmtime.Module(wasmtime.Engine(), subject.wasm)
        if not module.imports:  # see the module docstring: how kernel code is told from a plugin's
            raise SystemExit(f"bench.breakdown: {subject.label} imports nothing; its code would pass for a kernel's")
        path = workdir / f"plugin{i}.wasm"
        path.write_bytes(subject.wasm)
        plugins.append(Plugin(subject.label, path, subject.function, subject.config))
    return plugins


def profile(plugin: Plugin, row: str, variant: tuple, seconds: float, frequency: int, workdir: Path) -> dict:
    """Profile one row of one SDK variant in a fresh process; return the category shares, the
    samples and the microseconds per item of the profiled loop."""
    _, sdk, options = variant
    ctl, ack, data = workdir / "ctl", workdir / "ack", workdir / "perf.data"
    for fifo in (ctl, ack):
        fifo.unlink(missing_ok=True)
        os.mkfifo(fifo)
    spec = {"wasm": str(plugin.wasm), "function": plugin.function, "config": plugin.config, "row": row,
            "sdk": sdk, "options": options, "seconds": seconds, "ctl": str(ctl), "ack": str(ack)}
    repo = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "EXTISM_PROFILE": "perf",
           "PYTHONPATH": os.pathsep.join(filter(None, [repo, os.environ.get("PYTHONPATH")]))}
    cmd = ["perf", "record", "-q", "-g", "-F", str(frequency), "-D", "-1", "--control", f"fifo:{ctl},{ack}",
           "-o", str(data), "--", sys.executable, "-m", "bench.breakdown", "--worker", json.dumps(spec)]
    proc = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise SystemExit(f"bench.breakdown: profiling {row!r} of {plugin.label} with {sdk} failed:\n"
                         f"$ {' '.join(cmd)}\n{proc.stdout}{proc.stderr}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    perf_map = Path(f"/tmp/perf-{result['pid']}.map")
    try:
        script = subprocess.run(["perf", "script", "-i", str(data), "-F", "ip,sym,dso"],
                                capture_output=True, text=True, timeout=600)
        jit = jit_segments(read_perf_map(perf_map.read_text()))
    finally:
        perf_map.unlink(missing_ok=True)
    if os.environ.get("BENCH_BREAKDOWN_KEEP"):  # debugging: keep the stacks
        Path(os.environ["BENCH_BREAKDOWN_KEEP"]).write_text(script.stdout)
    return shares(parse_perf_script(script.stdout), jit) | {"us": result["seconds_per_item"] * 1e6}


def format_plugin_table(rows: list[tuple[str, str, dict]]) -> str:
    """Markdown: one line per (row, SDK variant), each category as microseconds per item and percent."""
    head = ["row", "SDK", "µs per item", *CATEGORIES, "samples"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---", "---"] + ["--:"] * (len(head) - 2)) + "|"]
    for row, variant, r in rows:
        cells = [row, variant, f"{r['us']:.2f}"]
        cells += [f"{r[c] * r['us']:.2f} ({r[c]:.0%})" for c in CATEGORIES]
        lines.append("| " + " | ".join(cells + [f"{r['samples']:.0f}"]) + " |")
    return "\n".join(lines)


def plugin_summary(label: str, rows: list[tuple[str, str, dict]]) -> str:
    """One sentence per row: the plugin's own time in each SDK, the host's, and the ratio they make."""
    by = {(row, variant): r for row, variant, r in rows}
    parts = []
    for row in ROWS:
        fast, official = by.get((row, "extism_fast")), by.get((row, "extism"))
        if fast is None or official is None:
            continue
        pf, po = fast["plugin"] * fast["us"], official["plugin"] * official["us"]
        parts.append(f"{row}: plugin code {pf:.2f} µs (extism_fast) and {po:.2f} µs (extism), host and kernel "
                     f"{fast['us'] - pf:.2f} µs against {official['us'] - po:.2f} µs: "
                     f"{official['us'] / fast['us']:.1f}x in all")
    return f"- {label}: " + "; ".join(parts) + "."


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.breakdown", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", metavar="TEXT", help="profile only the plugins or rows whose name contains TEXT")
    parser.add_argument("--seconds", type=float, default=1.0, help="length of each profiled loop (default 1)")
    parser.add_argument("--frequency", type=int, default=4000, help="perf samples per second (default 4000)")
    parser.add_argument("--results", metavar="DIR", type=Path, default=RESULTS_DIR,
                        help="where breakdown.md goes (default bench/results; not written with --only)")
    parser.add_argument("--worker", metavar="SPEC", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(json.loads(args.worker))
        return 0
    if shutil.which("perf") is None:
        raise SystemExit("bench.breakdown: needs `perf` (Debian: apt-get install linux-perf)")
    t0 = time.perf_counter()
    sections = []
    summaries = []
    with tempfile.TemporaryDirectory(prefix="extism_fast_breakdown_") as tmp:
        workdir = Path(tmp)
        for plugin in bench_plugins(workdir):
            rows = []
            for row in ROWS:
                if args.only and args.only.lower() not in f"{plugin.label} {row}".lower():
                    continue
                for variant in VARIANTS:
                    r = profile(plugin, row, variant, args.seconds, args.frequency, workdir)
                    rows.append((row, variant[0], r))
                    print(f"  {plugin.label}, {row}, {variant[0]}: {r['us']:.2f} µs, plugin {r['plugin']:.0%}",
                          file=sys.stderr, flush=True)
            if rows:
                sections += [f"## {plugin.label}", "", format_plugin_table(rows), ""]
                summaries.append(plugin_summary(plugin.label, rows))
    report = "\n".join([
        "# Where the time goes: the plugin's own code against the host",
        "",
        f"Generated by `python -m bench.breakdown` on {datetime.date.today().isoformat()} "
        f"({time.perf_counter() - t0:.0f} s; `perf record -g -F {args.frequency}`, a loop of ~{args.seconds:g} s "
        "per row and SDK, each in a fresh process; see the module docstring for the categories).",
        "",
        "Categories: **plugin** = the plugin's own wasm code; **kernel (wasm)** = the Extism kernel's wasm code "
        "(extism_fast: its accessor module, loads/stores/input reads only; extism: the whole kernel, "
        "allocator included); **SDK** = the SDK's native library (extism_fast: C kernel + Cython binding; "
        "extism: libextism_sys, the Rust runtime with wasmtime linked in, + cffi); **wasmtime** = extism_fast's "
        "_libwasmtime.so and both SDKs' JIT trampolines; **Python** = the interpreter; **OS** = the Linux kernel "
        "(libc is charged to its caller). Each cell: µs per item (share of the samples).",
        "",
        *sections,
        "Summary (the plugin's own code runs the same wasmtime-compiled code in both SDKs, so it bounds "
        "the ratio: the more a call spends there, the less a faster host shows):",
        "",
        *summaries,
    ]) + "\n"
    print(report)
    if not args.only:
        args.results.mkdir(parents=True, exist_ok=True)
        (args.results / "breakdown.md").write_text(report)
        print(f"saved {args.results / 'breakdown.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
