"""Shared pytest helpers: build the test plugins from source.

Plugins live as sources only (never commit .wasm files):

* ``tests/plugins/<name>.wat``   -> ``wasmtime.wat2wasm``
* ``tests/plugins/<name>.c``     -> clang (wasm32-wasi reactor, ``-I pdk/c``)
* ``examples/<name>.{wat,c}``    -> same, addressed as ``"examples/<name>"``

They are built once per test session into a temporary directory.

Fixtures (session scoped, each returns a callable)::

    def test_x(plugin_wasm, wasm_path):
        data = plugin_wasm("kernel")                # bytes
        path = wasm_path("examples/count_vowels.c")  # pathlib.Path of the .wasm

Plain functions for module-level use (parametrize lists, helpers)::

    from conftest import build_plugin, build_wasm

Names are relative to ``tests/plugins`` unless they start with ``examples/``;
the extension may be omitted when only one of ``.wat`` / ``.c`` exists.
"""

from __future__ import annotations

import atexit
import os
import pathlib
import shutil
import subprocess
import tempfile
import threading

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
PLUGINS_DIR = REPO_ROOT / "tests" / "plugins"
EXAMPLES_DIR = REPO_ROOT / "examples"
PDK_C_DIR = REPO_ROOT / "pdk" / "c"

#: clang flags for C plugins; the command is CLANG + CLANG_FLAGS + -o out src.
CLANG_FLAGS = (
    "--target=wasm32-wasi",
    "-O2",
    "-mexec-model=reactor",
    "-I",
    str(PDK_C_DIR),
)

_CLANG_HELP = (
    "clang with wasm32-wasi support is needed to build the C test plugins "
    "(apt-get install -y clang lld wasi-libc libclang-rt-14-dev-wasm32, or set "
    "CLANG=/path/to/clang). Run the tests with the command given in README.md."
)

_lock = threading.Lock()
_cache: dict[str, pathlib.Path] = {}
_build_dir: pathlib.Path | None = None


def _out_dir() -> pathlib.Path:
    global _build_dir
    if _build_dir is None:
        _build_dir = pathlib.Path(tempfile.mkdtemp(prefix="extism_fast_plugins_"))
        # Also clean up when used outside pytest (pytest_unconfigure runs first).
        atexit.register(shutil.rmtree, _build_dir, True)
    return _build_dir


def find_source(name: str) -> pathlib.Path:
    """Resolve a plugin name ("kernel", "bad/unknown_import",
    "examples/count_vowels.c") to its source file."""
    if name.startswith("examples/"):
        base = EXAMPLES_DIR / name[len("examples/"):]
    else:
        base = PLUGINS_DIR / name
    if base.suffix in (".wat", ".c"):
        if not base.is_file():
            raise FileNotFoundError(f"no plugin source {base}")
        return base
    candidates = [p for p in (base.with_suffix(".wat"), base.with_suffix(".c")) if p.is_file()]
    if not candidates:
        raise FileNotFoundError(f"no plugin source {base}.wat or {base}.c")
    if len(candidates) > 1:
        raise ValueError(
            f"plugin {name!r} has both .wat and .c sources; name one with its extension"
        )
    return candidates[0]


def _clang() -> str:
    clang = shutil.which(os.environ.get("CLANG", "clang"))
    if clang is None:
        pytest.fail(_CLANG_HELP, pytrace=False)
    return clang


def _build_c(src: pathlib.Path, out: pathlib.Path) -> None:
    cmd = [_clang(), *CLANG_FLAGS, "-o", str(out), str(src)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(
            f"building {src.relative_to(REPO_ROOT)} failed:\n$ {' '.join(cmd)}\n"
            f"{proc.stderr}\n{_CLANG_HELP}",
            pytrace=False,
        )
    # Every good C plugin must run with WASI off: only extism:host/* imports.
    if "bad" not in src.relative_to(REPO_ROOT).parts:
        import wasmtime

        module = wasmtime.Module(wasmtime.Engine(), out.read_bytes())
        stray = [
            f"{imp.module}.{imp.name}"
            for imp in module.imports
            if not imp.module.startswith("extism:host/")
        ]
        if stray:
            pytest.fail(
                f"{src.relative_to(REPO_ROOT)} imports {stray}: C plugins must "
                "not need libc functions that call WASI",
                pytrace=False,
            )


def build_wasm(name: str) -> pathlib.Path:
    """Build plugin `name` (cached for the session); return the .wasm path."""
    with _lock:
        path = _cache.get(name)
        if path is not None:
            return path
        src = find_source(name)
        rel = src.relative_to(REPO_ROOT)
        out = _out_dir() / ("__".join(rel.parts) + ".wasm")
        if src.suffix == ".wat":
            import wasmtime

            out.write_bytes(bytes(wasmtime.wat2wasm(src.read_text())))
        else:
            _build_c(src, out)
        _cache[name] = out
        return out


def build_plugin(name: str) -> bytes:
    """Build plugin `name` (cached for the session); return its wasm bytes."""
    return build_wasm(name).read_bytes()


@pytest.fixture(scope="session")
def wasm_path():
    """Callable: wasm_path(name) -> pathlib.Path of the built .wasm file."""
    return build_wasm


@pytest.fixture(scope="session")
def plugin_wasm():
    """Callable: plugin_wasm(name) -> bytes of the built plugin."""
    return build_plugin


def pytest_unconfigure(config):
    global _build_dir
    if _build_dir is not None:
        shutil.rmtree(_build_dir, ignore_errors=True)
        _build_dir = None
        _cache.clear()
