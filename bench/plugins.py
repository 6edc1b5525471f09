"""The benchmarks' plugins, built from this repository's sources by ``tests/conftest.py``'s
``build_wasm`` (clang for C, ``wasmtime.wat2wasm`` for WAT: the commands the tests use)."""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT / "tests") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "tests"))


def build(name: str) -> bytes:
    """Build a plugin with the test suite's builder; return its wasm bytes."""
    return build_path(name).read_bytes()


def build_path(name: str) -> Path:
    """Build a plugin with the test suite's builder; return the path of the .wasm file."""
    try:
        from conftest import build_wasm
    except ImportError as exc:  # pytest missing: conftest needs it
        raise SystemExit(f"bench: cannot import tests/conftest.py ({exc}); install pytest") from None
    try:
        return build_wasm(name)
    except BaseException as exc:  # conftest reports build failures with pytest.fail (a BaseException)
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        raise SystemExit(f"bench: building plugin {name!r} failed:\n{exc}") from None
