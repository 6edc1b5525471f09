"""The official Extism JS SDK as a peer: the headline rows of bench/compare.py (PDK-like
count_vowels: small call, 1 MiB, instance + first call) with ``@extism/extism`` on Node in the
"extism" column, so the ratio is extism_fast over the JS SDK.

The JS side is ``bench/js/bench.mjs`` (the SDK pinned by bench/js/package-lock.json), one Node
process per timed loop, taking turns with extism_fast's loop in this process. When
``bench/js/node_modules`` is missing the bench installs it with ``npm ci``; without node or npm
(or when ``npm ci`` fails) the rows are skipped with a note on stderr. Each row first checks that
a fresh JS plugin's first output equals extism_fast's and the official Python SDK's.

How the JS rows run: the JS SDK keeps every block a plugin ever allocated, and its handles give the
block index 15 usable bits (a signed i64 in wasm), so the PDK-like plugin (7 blocks per call)
fails at its 4,682nd call on one plugin; its ``reset()`` does not help a plugin that keeps a var
(see bench.mjs). The call rows therefore replace the plugin with a new one every FRESH_EVERY calls.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

JS_DIR = Path(__file__).resolve().parent / "js"
#: the call rows' JS plugin is replaced by a new one after this many calls (see the docstring)
FRESH_EVERY = 1000


def js_ready() -> str | None:
    """None when bench/js can run (installing its packages with ``npm ci`` if they are missing),
    else why the JS rows are skipped."""
    if shutil.which("node") is None:
        return "node is not installed (the JS SDK rows need Node >= 18 and npm)"
    if (JS_DIR / "node_modules" / "@extism" / "extism" / "package.json").is_file():
        return None
    npm = shutil.which("npm")
    if npm is None:
        return "npm is not installed (needed once: `npm ci --prefix bench/js`)"
    proc = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--prefix", str(JS_DIR)],
                          capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        head = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[:6])  # npm puts the cause first
        return f"`npm ci --prefix bench/js` failed:\n{head}"
    return None


def run_js(wasm: Path, function: str, input_size: int, iterations: int, *, mode: str = "call",
           config: dict | None = None, repeats: int = 1, fresh_every: int = FRESH_EVERY) -> dict:
    """Run bench/js/bench.mjs once; its JSON: per-loop ``seconds``, the hex ``outputs`` of a fresh
    plugin's first two calls, ``sdk`` and ``node`` versions."""
    cmd = ["node", "--no-warnings", str(JS_DIR / "bench.mjs"), "--wasm", str(wasm), "--function", function,
           "--input-size", str(input_size), "--iterations", str(iterations), "--repeats", str(repeats),
           "--mode", mode, "--config", json.dumps(config or {})]
    if mode == "call":
        cmd += ["--fresh-every", str(fresh_every)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=JS_DIR, timeout=600)
    if proc.returncode != 0:
        raise SystemExit(f"bench: the JS SDK runner failed ({' '.join(cmd[2:])}):\n{proc.stderr.strip()}")
    return json.loads(proc.stdout.splitlines()[-1])


def js_calibrate(run: Callable[[int], dict], target: float) -> int:
    """Iterations that make one of the runner's loops take about ``target`` seconds. A short run
    overestimates the time per call (its warm-up is too short for V8 to tier the code up), so the
    estimate is taken from a run of at least a quarter of ``target``."""
    n = 16
    while True:
        elapsed = max(run(n)["seconds"][0], 1e-9)
        if elapsed >= target / 4 or n >= 1 << 24:
            return max(1, int(n * target / elapsed))
        n *= max(2, min(100, int(target / 2 / elapsed) + 1))


def js_rows(subject) -> list[tuple]:
    """(case, runner mode, input, how the JS side ran) for each JS row, the extism_fast side being
    bench/compare.py's own row. Inputs are text_input(size), which bench.mjs makes alike."""
    from bench.compare import MIB, SMALL_INPUT, call_row, instance_rows, text_input

    fresh = f"a new plugin every {FRESH_EVERY:,} calls"
    return [
        (call_row(subject, "small call 14 B", SMALL_INPUT), "call", SMALL_INPUT, fresh),
        (call_row(subject, "1 MiB", text_input(MIB)), "call", text_input(MIB), fresh),
        (instance_rows(subject)[1], "instance", SMALL_INPUT,
         "createPlugin from a compiled WebAssembly.Module, first call, close()"),
    ]


def second_output_note(subject, case_input: bytes, js_second: bytes) -> str:
    """A note when the JS SDK's second call on one plugin differs from extism_fast's (whose outputs
    are the official Python SDK's): the PDK-like plugin's var does not survive in the JS SDK."""
    import extism_fast

    with subject.new(extism_fast) as plugin:
        plugin.call(subject.function, case_input)
        fast_second = bytes(plugin.call(subject.function, case_input))
    if fast_second == js_second:
        return ""
    return (f"the JS SDK's second call on one plugin outputs {js_second.decode(errors='replace')!r}, "
            f"extism_fast's and the official Python SDK's {fast_second.decode(errors='replace')!r}: its "
            "var_set keeps the plugin's value block instead of a copy (the official runtime copies it), and "
            "this plugin frees that block after var_set, so the var is lost")


def measure_js_peer(repeats: int, target: float, wanted: Callable[[str], bool]) -> list:
    """The JS SDK rows (see the module docstring) whose names ``wanted`` accepts."""
    from bench.compare import Result, calibrate, pdk_subject, time_loop, verify
    from bench.plugins import build_path

    subject = pdk_subject()
    sdk = json.loads((JS_DIR / "package.json").read_text())["dependencies"]["@extism/extism"]
    todo = [(f"{case.name} (extism: official JS SDK {sdk}, {how})", case, mode, data)
            for case, mode, data, how in js_rows(subject)]
    todo = [row for row in todo if wanted(row[0])]
    why = js_ready() if todo else None
    if why is not None:
        print(f"  skipped: the JS SDK rows ({why})", file=sys.stderr)
        return []
    wasm = build_path("bench/count_vowels_pdk")
    rows = []
    for name, case, mode, data in todo:
        def js(n: int, mode: str = mode, size: int = len(data)) -> dict:
            return run_js(wasm, subject.function, size, n, mode=mode, config=subject.config)

        verify(case)  # extism_fast's output is the official Python SDK's
        first = js(1)
        fast_out = bytes(case.check()[0])
        js_out = [bytes.fromhex(out) for out in first["outputs"]]
        if js_out[0] != fast_out:
            raise SystemExit(f"bench: OUTPUT MISMATCH in row {name!r}: JS SDK {js_out[0][:200]!r}, "
                             f"extism_fast {fast_out[:200]!r}")
        n_fast, n_js = calibrate(case.fast, target), js_calibrate(js, target)
        best_fast = best_js = float("inf")
        for _ in range(repeats):  # taking turns, as compare.measure does
            best_fast = min(best_fast, time_loop(case.fast, n_fast) / n_fast)
            best_js = min(best_js, js(n_js)["seconds"][0] / n_js)
        result = Result(name, "calls/s", 1 / best_fast, 1 / best_js, best_js / best_fast)
        notes = [f"Node {first['node']}, {n_js:,} calls per timed loop"]
        if mode == "call":
            notes.append(second_output_note(subject, data, js_out[1]))
        result.note = "; ".join(filter(None, notes))
        rows.append(result)
        print(f"  measured: {name}", file=sys.stderr, flush=True)
    return rows
