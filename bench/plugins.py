"""The benchmarks' plugins, built from this repository's sources by ``tests/conftest.py``'s
``build_wasm`` (clang for C, ``wasmtime.wat2wasm`` for WAT: the commands the tests use), and the
bench's own C plugins in ``bench/plugin_sources/`` with the same clang command."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCH_PLUGINS_DIR = REPO_ROOT / "bench" / "plugin_sources"
if str(REPO_ROOT / "tests") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "tests"))


def build(name: str) -> bytes:
    """Build a plugin with the test suite's builder; return its wasm bytes."""
    return build_path(name).read_bytes()


def build_path(name: str) -> Path:
    """Build a plugin with the test suite's builder; return the path of the .wasm file. ``name``
    is a tests/conftest.py name ("kernel", "examples/count_vowels.c") or "bench/<stem>" for
    bench/plugin_sources/<stem>.c."""
    try:
        from conftest import build_wasm
    except ImportError as exc:  # pytest missing: conftest needs it
        raise SystemExit(f"bench: cannot import tests/conftest.py ({exc}); install pytest") from None
    try:
        if name.startswith("bench/"):
            return _build_bench_plugin(name[len("bench/"):])
        return build_wasm(name)
    except BaseException as exc:  # conftest reports build failures with pytest.fail (a BaseException)
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        raise SystemExit(f"bench: building plugin {name!r} failed:\n{exc}") from None


@functools.cache
def _build_bench_plugin(stem: str) -> Path:
    """Build bench/plugin_sources/<stem>.c once per process with conftest's C builder (the same flags, and
    the same check that the plugin needs no WASI); return the .wasm path."""
    from conftest import _build_c, _out_dir

    out = _out_dir() / f"bench__{stem}.wasm"
    _build_c(BENCH_PLUGINS_DIR / f"{stem}.c", out)
    return out
