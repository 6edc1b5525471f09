"""The C kernel and the Cython runtime under AddressSanitizer and UndefinedBehaviorSanitizer.

A second copy of the extension is built with ``EXTISM_FAST_SANITIZE=1`` (see setup.py) in a
temporary copy of the sources, and the test suite runs against it in subprocesses started with
gcc's libasan and libubsan preloaded (an extension cannot bring ASan's runtime itself: it must be
the first library the process loads). The run must pass with no ASan report and no UBSan
``runtime error:``; a UBSan report also aborts the process (``-fno-sanitize-recover=undefined``).

Every test file runs sanitized (in two processes at once, one per core) except:

* ``test_packaging.py``: it builds the sdist and a wheel from the repository with the normal flags;
  nothing sanitized runs in it.
* ``test_sanitizers.py``: this file.
* ``test_dask.py``, ``test_ray.py``, ``test_cli_batch_dist.py``, ``test_readme_blocks.py`` (the
  README's Dask and Ray examples): they start Dask and Ray clusters,
  whose own processes (Ray's raylet and workers are C++ and Python binaries of their own) inherit
  the preloaded sanitizer runtimes and hang under them; the code of ours they reach (call_many,
  PluginPool, pickling) runs sanitized in the other files.
* ``test_docs.py``: it compares the docs and stubs with the tree (mypy's stubtest only imports the
  extension); nothing of ours runs in it.
* ``test_instances.py::test_no_pool_when_its_address_space_is_refused``: it caps the process's
  address space (RLIMIT_AS) at 24 GB, and ASan's shadow memory alone needs terabytes.
* ``test_signals.py::test_ray_driver_tasks_and_actors_get_trap_errors``: it starts Ray (as above);
  the rest of that file (trap handlers replaced and restored, no Ray) runs sanitized.

By hand: ``python3 tests/test_sanitizers.py [pytest arguments]`` builds the sanitized copy and runs
pytest with it (default: the selection above), printing the environment it uses (README, "The two
commands").
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
TESTS_DIR = REPO_ROOT / "tests"

NOT_SANITIZED_FILES = {"test_packaging.py", "test_sanitizers.py", "test_dask.py", "test_ray.py",
                       "test_cli_batch_dist.py", "test_docs.py", "test_readme_blocks.py"}
NOT_SANITIZED_TESTS = ["tests/test_instances.py::test_no_pool_when_its_address_space_is_refused",
                       "tests/test_signals.py::test_ray_driver_tasks_and_actors_get_trap_errors"]

# wasmtime turns SIGSEGV/SIGBUS (out-of-bounds wasm accesses, guard pages), SIGFPE (division by zero)
# and SIGILL (`unreachable`) raised by wasm code into traps: ASan must leave those signals to
# wasmtime's handler. CPython does not free everything at exit, so leak detection is off. A test
# checks that a failed malloc becomes MemoryError: ASan's allocator must return NULL instead of
# aborting. A report ends the process with a status no test expects of a subprocess (tests check
# exact statuses), so a report in a subprocess whose output a test captures still fails that test.
ASAN_EXIT_STATUS, UBSAN_EXIT_STATUS = 86, 87
ASAN_OPTIONS = ":".join([
    "handle_segv=0", "handle_sigbus=0", "handle_sigfpe=0", "handle_sigill=0",
    "allow_user_segv_handler=1", "detect_leaks=0", "allocator_may_return_null=1",
    f"exitcode={ASAN_EXIT_STATUS}",
])
UBSAN_OPTIONS = f"print_stacktrace=1:halt_on_error=1:exitcode={UBSAN_EXIT_STATUS}"
REPORT_MARKERS = ("ERROR: AddressSanitizer", "runtime error:")

# What the build needs; the generated _runtime.c is copied with its time stamp, so Cython only
# runs again if it is out of date, and so is the settings table it includes (setup.py rewrites it
# only when its text changes: a new one would be newer than _runtime.c).
_BUILD_INPUTS = ("setup.py", "pyproject.toml", "README.md", "kernel_c", "extism_fast")
_GENERATED_INPUTS = ("build/generated/built_settings.pxi",)

_PROBE_C = r"""
#include <stdlib.h>
int heap_overflow(int i) { volatile char *p = malloc(8); int v = p[8 + i]; free((void *)p); return v; }
int signed_overflow(int x) { return x + 1; }
"""


def _compiler() -> str:
    """The C compiler setuptools builds the extension with (its libasan is the one linked)."""
    return shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")[0]


def _runtime_library(name: str) -> str:
    path = subprocess.run([_compiler(), f"-print-file-name={name}"], capture_output=True,
                          text=True, check=False).stdout.strip()
    if not os.path.isabs(path) or not os.path.exists(path):
        pytest.fail(f"{_compiler()} has no {name}: the sanitizer build needs gcc with libasan and "
                    "libubsan (apt-get install gcc; see the test command in README.md)", pytrace=False)
    return path


def build_sanitized_copy(dest: Path) -> Path:
    """Copy the build inputs to ``dest`` and build the sanitized extension there, in place."""
    for name in _BUILD_INPUTS:
        src = REPO_ROOT / name
        if src.is_dir():
            ignore = shutil.ignore_patterns("*.so", "__pycache__", "build")
            shutil.copytree(src, dest / name, ignore=ignore)
        else:
            shutil.copy2(src, dest / name)
    for name in _GENERATED_INPUTS:
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, dest / name)
    proc = subprocess.run([sys.executable, "setup.py", "-q", "build_clib", "build_ext", "--inplace"],
                          cwd=dest, env=dict(os.environ, EXTISM_FAST_SANITIZE="1"),
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.fail(f"the sanitized build failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}",
                    pytrace=False)
    (extension,) = (dest / "extism_fast").glob("_runtime.*.so")
    return extension


def sanitizer_env(copy: Path, reports: Path | None = None) -> dict[str, str]:
    """The environment of a Python that imports the sanitized copy in ``copy``; with ``reports``,
    every process writes its ASan reports to files there (``asan.<pid>``) rather than to its
    stderr, which a test may capture and drop. (UBSan reports go to stderr whatever its log_path
    says when ASan is loaded too: the exit status above catches those.)"""
    preload = f"{_runtime_library('libasan.so')}:{_runtime_library('libubsan.so')}"
    pythonpath = os.pathsep.join(filter(None, [str(copy), os.environ.get("PYTHONPATH")]))
    asan = ASAN_OPTIONS if reports is None else f"{ASAN_OPTIONS}:log_path={reports / 'asan'}"
    return dict(os.environ, LD_PRELOAD=preload, PYTHONPATH=pythonpath, ASAN_OPTIONS=asan,
                UBSAN_OPTIONS=UBSAN_OPTIONS)


def sanitized_test_files() -> list[str]:
    """Every test file that runs sanitized, relative to the repository (see the module docstring)."""
    files = sorted(TESTS_DIR.glob("test_*.py"))
    return [f"tests/{p.name}" for p in files if p.name not in NOT_SANITIZED_FILES]


def pytest_command(args: list[str]) -> list[str]:
    """``python -m pytest`` over ``args`` (paths relative to the repository) from the sanitized
    copy's directory, where ``extism_fast`` is the sanitized one (the first entry of sys.path)."""
    paths = [str(REPO_ROOT / a) if a.startswith("tests/") else a for a in args]
    deselect = [f"--deselect={t}" for t in NOT_SANITIZED_TESTS]
    return [sys.executable, "-m", "pytest", "-q", "--tb=short", "--rootdir", str(REPO_ROOT),
            *deselect, *paths]


def _run(cmd: list[str], copy: Path, env: dict[str, str], timeout: float = 1200) -> tuple[int, str]:
    proc = subprocess.run(cmd, cwd=copy, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, errors="replace", timeout=timeout, check=False)
    return proc.returncode, proc.stdout


def _reports(output: str) -> list[str]:
    """The lines of ``output`` that start a sanitizer report."""
    return [line for line in output.splitlines() if any(m in line for m in REPORT_MARKERS)]


@pytest.fixture(scope="module")
def sanitized(tmp_path_factory):
    """(copy directory, sanitized extension, environment) built once for this module."""
    copy = tmp_path_factory.mktemp("sanitized")
    extension = build_sanitized_copy(copy)
    return copy, extension, sanitizer_env(copy)


def test_the_extension_is_instrumented_and_imported(sanitized):
    copy, extension, env = sanitized
    (kernel,) = (copy / "build").rglob("libextism_fast_kernel.a")
    for binary, dynamic in ((extension, ["-D"]), (kernel, [])):
        undefined = subprocess.run(["nm", *dynamic, "--undefined-only", str(binary)], capture_output=True,
                                   text=True, check=True).stdout
        assert "__asan_report_load8" in undefined and "__ubsan_handle_" in undefined, binary
    example = str(REPO_ROOT / "examples" / "count_vowels.wat")
    script = ("import ctypes, extism_fast, extism_fast._runtime as r\n"
              "print(r.__file__)\n"
              "print(hasattr(ctypes.CDLL(None), '__asan_init'))\n"
              f"with extism_fast.Plugin({example!r}) as p: print(p.call('count_vowels', 'aaa'))\n")
    status, output = _run([sys.executable, "-c", script], copy, env)
    assert status == 0, output
    where, asan_loaded, result = output.strip().splitlines()[-3:]
    assert Path(where) == extension
    assert asan_loaded == "True"
    assert result == "b'{\"count\": 3}'"


@pytest.mark.parametrize("function, report, exit_status", [
    ("heap_overflow", "ERROR: AddressSanitizer: heap-buffer-overflow", ASAN_EXIT_STATUS),
    ("signed_overflow", "runtime error: signed integer overflow", UBSAN_EXIT_STATUS),
])
def test_a_report_fails_the_process(sanitized, tmp_path, function, report, exit_status):
    """The options above still report and fail: a heap overflow and a signed overflow in a C
    library built with the sanitizer flags, loaded into the sanitized Python like the extension."""
    copy, _, env = sanitized
    src, lib = tmp_path / "probe.c", tmp_path / "probe.so"
    src.write_text(_PROBE_C)
    subprocess.run([_compiler(), "-shared", "-fPIC", "-O0", "-fsanitize=address,undefined",
                    "-fno-sanitize-recover=undefined", "-o", str(lib), str(src)], check=True)
    arg = 2**31 - 1 if function == "signed_overflow" else 0
    script = f"import ctypes; ctypes.CDLL({str(lib)!r}).{function}({arg}); print('no report')"
    status, output = _run([sys.executable, "-c", script], copy, env)
    assert status == exit_status, output
    assert report in output and "no report" not in output


def test_the_suite_passes_under_the_sanitizers(sanitized):
    copy, _, _ = sanitized
    reports = copy / "reports"
    reports.mkdir()
    env = sanitizer_env(copy, reports)
    files = sanitized_test_files()
    assert {"tests/test_abi.py", "tests/test_host_functions.py", "tests/test_plugin.py"} <= set(files)
    # Two processes at once (one per core of the CI machine), alternating files.
    shards = [files[0::2], files[1::2]]
    with ThreadPoolExecutor(len(shards)) as pool:
        runs = list(pool.map(lambda shard: _run(pytest_command(shard), copy, env), shards))
    written = "".join(f"--- {p.name}\n{p.read_text(errors='replace')}" for p in reports.iterdir())
    assert not written, "sanitizer reports:\n" + written[:20000]
    for status, output in runs:
        assert not _reports(output), output[-20000:]
        assert status == 0, output[-20000:]
        assert " passed" in output.splitlines()[-1], output[-2000:]


def main(argv: list[str]) -> int:
    """Build the sanitized copy in a temporary directory and run pytest there with ``argv``."""
    with tempfile.TemporaryDirectory(prefix="extism_fast_sanitized_") as tmp:
        copy = Path(tmp)
        print(f"building the sanitized extension in {copy} ...", flush=True)
        build_sanitized_copy(copy)
        env = sanitizer_env(copy)
        cmd = pytest_command(argv or sanitized_test_files())
        names = ("LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS", "PYTHONPATH")
        shown = " ".join(f"{k}={shlex.quote(env[k])}" for k in names)
        print(f"(cd {copy} && {shown} {shlex.join(cmd)})", flush=True)
        return subprocess.run(cmd, cwd=copy, env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
