"""The "cold start" rows: what a fresh process pays before its first result (a CLI run, a
serverless function, a multiprocessing / Dask / Ray worker, a test run), extism_fast against the
official SDK.

Every figure comes from fresh processes, the two SDKs taking turns in each round (the order
alternating), medians of the rounds; the compile caches are warm on both sides (the official SDK's
is wasmtime's, configured as in the "first load" rows: compare.first_load_setup). Plugins: the ~1.9
MB one of the first-load rows and the small example plugin (examples/count_vowels.wat). The
package's bytecode is compiled first, as an installed package has it. Each row runs in two
interpreters (INTERPRETERS): a fresh venv, as README's install makes (its site module on), and a
clean ``python -S``, the rows marked so. Not this machine's own interpreter: its site-packages holds
a sandbox's certifi hook and an editable install's finder, run by every process of either SDK
(~30 ms before any import here), which a user's venv does not have.

    python -m bench --only "cold start"
    python -m bench.cold_start --rounds 10
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import hashlib
import http.server
import os
import resource
import site
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

from bench.compare import Result, Target, first_load_setup
from bench.plugins import REPO_ROOT, build_path

SECTION = "cold start"
EXAMPLE = "examples/count_vowels.wat"
EXAMPLE_INPUT = "Hello, World!"

#: The example plugin's first result as programs also make it (the official docs' forms) -> how
#: the row names it: given a config, given as a manifest dict (with a config; with limits; the module
#: pinned by its sha256), given a host function whose signature is inferred (the plugin does not
#: import it), and with EXTISM_CACHE_CONFIG set on both sides (the official SDK's variable;
#: extism_fast honours it).
VARIANTS = {"config": "with a config", "manifest": "from a manifest dict",
            "limits": "from a manifest dict with a timeout and max_pages",
            "hash": "from a manifest dict pinning the module's hash",
            "url": "from a manifest dict of its URL (served on 127.0.0.1)", "host function": "a typed host function",
            "cache config": "EXTISM_CACHE_CONFIG set"}

#: The goals with no official counterpart (ms, wall time of the whole process).
CALL_GOAL_MS = 25.0
HELP_GOAL_MS = 20.0

# One fresh process: import, Plugin(path) (the warm cache; argv[5] asks for a config or a manifest
# dict instead: VARIANTS; argv[6] is the module's sha256 or URL for those rows), the first call; its own timings and peak RSS on stdout. The peak is VmHWM (KiB), this process image's own: getrusage's ru_maxrss
# starts from the forking parent's (here the bench's, ~100 MiB).
_FIRST_RESULT = textwrap.dedent("""
    import sys, time
    t0 = time.perf_counter()
    if sys.argv[1] == "extism_fast":
        import extism_fast as sdk
    else:
        import extism as sdk
    t1 = time.perf_counter()
    if sys.argv[5] == "config":
        plugin = sdk.Plugin(sys.argv[2], config={"greeting": "hello"}, functions=[])
    elif sys.argv[5] == "manifest":
        plugin = sdk.Plugin({"wasm": [{"path": sys.argv[2]}], "config": {"greeting": "hello"}}, functions=[])
    elif sys.argv[5] == "hash":
        plugin = sdk.Plugin({"wasm": [{"path": sys.argv[2], "hash": sys.argv[6]}]}, functions=[])
    elif sys.argv[5] == "url":
        plugin = sdk.Plugin({"wasm": [{"url": sys.argv[6]}]}, functions=[])
    elif sys.argv[5] == "limits":
        plugin = sdk.Plugin({"wasm": [{"path": sys.argv[2]}], "timeout_ms": 5000, "memory": {"max_pages": 64}},
                            functions=[])
    elif sys.argv[5] == "host function":
        @sdk.host_fn()
        def shout(text: str) -> str:
            return text.upper()
        plugin = sdk.Plugin(sys.argv[2], functions=[shout])
    else:
        plugin = sdk.Plugin(sys.argv[2], functions=[])
    t2 = time.perf_counter()
    out = bytes(plugin.call(sys.argv[3], sys.argv[4].encode()))
    with open("/proc/self/status") as f:
        peak = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    print(t1 - t0, t2 - t1, peak, out.hex())
""")
# What the console script runs (pyproject.toml: extism-fast = "extism_fast.cli:main").
_CLI = "import sys; from extism_fast.cli import main; sys.exit(main())"
# The official Python SDK has no command: the same call as a one-liner.
_OFFICIAL_CALL = ("import sys, extism; sys.stdout.buffer.write(bytes(extism.Plugin(sys.argv[1], functions=[])"
                  ".call(sys.argv[2], sys.argv[3].encode())))")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


#: The interpreters each row runs in -> row-name suffix: a fresh venv's (site on; _fresh_venv) and
#: a clean start (``-S``, site-packages on PYTHONPATH; python -c pass ~9 ms): _pythons.
INTERPRETERS = {"venv": " (venv)", "clean": " (python -S)"}


def _fresh_venv(workdir: Path) -> str:
    """The python of a new venv in ``workdir`` that sees this interpreter's packages (both SDKs,
    wasmtime) as a venv with them installed does: on sys.path, by a path line, so the .pth hooks of
    this machine's site-packages do not run; with the setuptools hook a 3.11 venv has."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(workdir / "venv")], check=True)
    python = workdir / "venv" / "bin" / "python"
    packages = Path(subprocess.run([str(python), "-c", "import site; print(site.getsitepackages()[0])"],
                                   check=True, capture_output=True, text=True).stdout.strip())
    base = site.getsitepackages()
    (packages / "_bench_base_packages.pth").write_text("".join(f"{path}\n" for path in base))
    for path in base:
        hook = Path(path) / "distutils-precedence.pth"
        if hook.exists():
            (packages / hook.name).write_text(hook.read_text())
    return str(python)


def _pythons(workdir: Path) -> dict[str, list[str]]:
    """Each of INTERPRETERS -> the command that starts it."""
    return {"venv": [_fresh_venv(workdir)], "clean": [sys.executable, "-S"]}


def _run(args: list[str], env: dict) -> tuple[float, str, float]:
    """Wall time (ms) of a fresh ``args`` (a python and its arguments), its stdout and its CPU time
    (ms, user + system: steadier than the wall time on a shared machine); exits the bench if it fails."""
    cpu, start = _children_cpu(), time.perf_counter()
    # From the temporary directory: the current one is first on a `python -c` sys.path, and the
    # repository's would shadow PYTHONPATH's (--root) package.
    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120,
                          cwd=tempfile.gettempdir())
    elapsed = (time.perf_counter() - start) * 1e3
    if proc.returncode != 0:
        raise SystemExit(f"bench: cold start: {args!r} failed:\n{proc.stderr}")
    return elapsed, proc.stdout, (_children_cpu() - cpu) * 1e3


class _Samples(dict):
    """(row, sdk) -> the figures of each round."""

    def add(self, row: str, sdk: str, value: float) -> None:
        self.setdefault((row, sdk), []).append(value)

    def median(self, row: str, sdk: str) -> float:
        return statistics.median(self[row, sdk])


def _first_result(samples: _Samples, label: str, sdk: str, env: dict, python: list, path: Path, function: str,
                  data: str, outputs: dict, how: str = "path", extra: str = "") -> None:
    wall, out, cpu = _run([*python, "-c", _FIRST_RESULT, sdk, str(path), function, data, how, extra], env)
    imported, created, rss, output = out.split()
    samples.add(f"process to first result, {label}", sdk, wall)
    samples.add(f"process to first result, {label} cpu", sdk, cpu)
    samples.add(f"Plugin, {label}", sdk, float(created) * 1e3)
    samples.add(f"rss, {label}", sdk, float(rss))
    samples.add("import in process", sdk, float(imported) * 1e3)
    outputs.setdefault(label, set()).add(output)


def _round(all_samples: dict, sdk: str, pythons: dict, envs: dict, plugins: dict, outputs: dict, url: str) -> None:
    """One fresh process per row for ``sdk``, in each interpreter (``pythons``: _pythons); ``url``
    serves the example plugin."""
    for interpreter, python in pythons.items():
        samples, env = all_samples[interpreter], envs[interpreter][sdk]
        wall, _, cpu = _run([*python, "-c", f"import {sdk}"], env)
        samples.add("python -c import", sdk, wall)
        samples.add("python -c import cpu", sdk, cpu)
        for label, (path, function, data) in plugins.items():
            _first_result(samples, label, sdk, env, python, path, function, data, outputs)
        example, function, data = plugins["example"]
        extras = {"hash": hashlib.sha256(example.read_bytes()).hexdigest(), "url": url}
        for variant in VARIANTS:
            variant_env = envs[interpreter].get(f"{sdk}, {variant}", env)
            _first_result(samples, f"example, {variant}", sdk, variant_env, python, example, function, data,
                          outputs, variant if variant != "cache config" else "path", extras.get(variant, ""))
        if sdk == "extism_fast":
            call = _run([*python, "-c", _CLI, "call", str(example), function, "--input", data], env)
            shown = _run([*python, "-c", _CLI, "--help"], env)
        else:
            call = _run([*python, "-c", _OFFICIAL_CALL, str(example), function, data], env)
            shown = _run([*python, "-c", "pass"], env)
        samples.add("cli help", sdk, shown[0])
        samples.add("cli help cpu", sdk, shown[2])
        samples.add("cli call", sdk, call[0])
        samples.add("cli call cpu", sdk, call[2])
        outputs.setdefault("cli", set()).add(call[1])


def _absolute(result: Result, goal_ms: float) -> Result:
    """A row whose goal is a time of its own (no official counterpart)."""
    result.target, result.measured, result.passed = f"<= {goal_ms:g} ms", result.fast, result.fast <= goal_ms
    return result


def _results(samples: _Samples, size: str, rounds: int, suffix: str) -> list[Result]:
    def row(name: str, key: str, target: Target | None = None, unit: str = "ms") -> Result:
        fast, official = samples.median(key, "extism_fast"), samples.median(key, "extism")
        result = Result(f"{SECTION}: {name}{suffix}", unit, fast, official, official / fast).check(target)
        if (f"{key} cpu", "extism_fast") in samples:
            result.note = (f"CPU time (user + system) {samples.median(f'{key} cpu', 'extism_fast'):.1f} ms "
                           f"(extism {samples.median(f'{key} cpu', 'extism'):.1f} ms)")
        return result

    rows = [
        row('`python -c "import X"` (process)', "python -c import", Target("ratio", 1)),
        row("import inside the process", "import in process", Target("ratio", 1)),
    ]
    for label, text in (("big", f"{size} plugin"), ("example", "example plugin")):
        rows += [
            row(f"`Plugin(path)` from a warm cache, {text}", f"Plugin, {label}"),
            row(f"fresh process to first result, {text}", f"process to first result, {label}", Target("ratio", 2)),
        ]
    # The 2x goal is the plain plugin's, on default settings (above); these must not be slower.
    rows += [row(f"fresh process to first result, example plugin, {text}", f"process to first result, example, {variant}",
                 Target("ratio", 1)) for variant, text in VARIANTS.items()]
    rows.append(row(f"peak RSS of that process, {size} plugin", "rss, big", Target("fraction", 1.0), "KiB"))
    rows[-1].note = "VmHWM of the child process (its high-water RSS)"
    call = row("`extism-fast call` end to end, example plugin", "cli call")
    call.note += ("; the extism column is the same call as a `python -c` one-liner (the official Python "
                  "SDK has no command)")
    help_row = row("`extism-fast --help`", "cli help")
    help_row.note += "; the extism column is `python -c pass`, the interpreter's own start"
    rows += [_absolute(call, CALL_GOAL_MS), _absolute(help_row, HELP_GOAL_MS)]
    rows[0].note = (f"medians of {rounds} rounds of fresh processes, the SDKs taking turns; warm compile "
                    f"caches on both sides; wall times include starting Python; {rows[0].note}")
    return rows


@contextlib.contextmanager
def _served(path: Path):
    """The URL of ``path``'s bytes on an HTTP server on 127.0.0.1 (the "url" row), stopped on exit."""
    body = path.read_bytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/{path.name}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def measure_cold_start(rounds: int, workdir: Path, root: Path = REPO_ROOT) -> list[Result]:
    """The cold-start rows, from ``rounds`` rounds of fresh processes of each SDK; ``root``: the
    checkout whose extism_fast the processes run (built in place)."""
    compileall.compile_dir(str(root / "extism_fast"), quiet=1)
    big, size, first_load_envs = first_load_setup(workdir)
    python_path = os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))
    clean_path = os.pathsep.join([python_path, *site.getsitepackages()])  # what -S leaves off sys.path
    # No proxy: the "url" row's server is on 127.0.0.1 (extism_fast ignores proxy variables; not so the official SDK)
    environ = {key: value for key, value in os.environ.items() if not key.lower().endswith("_proxy")}
    envs = {interpreter: {sdk: {**environ, **env, "PYTHONPATH": clean_path if interpreter == "clean" else python_path}
                          for sdk, env in first_load_envs["warm"].items()} for interpreter in INTERPRETERS}
    for env in envs.values():  # the "cache config" row: extism_fast as a user who set only the official variable
        env["extism_fast, cache config"] = {
            **{key: value for key, value in env["extism_fast"].items() if key != "EXTISM_FAST_CACHE_DIR"},
            "EXTISM_CACHE_CONFIG": env["extism"]["EXTISM_CACHE_CONFIG"]}
    plugins = {"big": (big, "run", ""), "example": (build_path(EXAMPLE), "count_vowels", EXAMPLE_INPUT)}
    pythons = _pythons(workdir)
    samples, outputs = {interpreter: _Samples() for interpreter in INTERPRETERS}, {}
    with _served(plugins["example"][0]) as url:
        for sdk in ("extism_fast", "extism"):  # fills the caches
            _round({interpreter: _Samples() for interpreter in INTERPRETERS}, sdk, pythons, envs, plugins, outputs, url)
        for i in range(rounds):
            for sdk in (("extism_fast", "extism") if i % 2 == 0 else ("extism", "extism_fast")):
                _round(samples, sdk, pythons, envs, plugins, outputs, url)
    mismatched = {label: sorted(found) for label, found in outputs.items() if len(found) != 1}
    if mismatched:
        raise SystemExit(f"bench: OUTPUT MISMATCH in the cold start rows: {mismatched}")
    return [row for interpreter, suffix in INTERPRETERS.items()
            for row in _results(samples[interpreter], size, rounds, suffix)]


def run(quick: bool, wanted) -> list[Result]:
    """compare.main's hook: the rows, when ``--only`` asks for any of them."""
    if not wanted(SECTION):
        return []
    with tempfile.TemporaryDirectory(prefix="extism_fast_cold_") as tmp:
        results = measure_cold_start(3 if quick else 10, Path(tmp))
    print(f"  measured: {SECTION}", file=sys.stderr, flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    from bench.compare import format_table

    parser = argparse.ArgumentParser(prog="python -m bench.cold_start", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10, help="rounds of fresh processes (default 10)")
    parser.add_argument("--root", type=Path, default=REPO_ROOT,
                        help="run the extism_fast of this checkout, built in place (for before/after figures)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="extism_fast_cold_") as tmp:
        results = measure_cold_start(args.rounds, Path(tmp), args.root.resolve())
    print(format_table(results))
    for r in results:
        if r.note:
            print(f"- {r.name}: {r.note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
