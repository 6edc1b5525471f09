"""Versions, in one place: pyproject.toml reads ``__version__`` from here (setuptools ``attr:``),
``extism_version()`` answers EXTISM_RUNTIME_VERSION, the compile cache keys on ``__version__``, and
``extism-fast --version`` prints :func:`versions`."""

#: extism_fast's own version.
__version__ = "0.1.0"

#: The Extism runtime (extism-sys) version whose behaviour extism_fast matches and is tested
#: against side by side; what :func:`extism_fast.extism_version` answers, as the official SDK
#: answers its runtime's version.
EXTISM_RUNTIME_VERSION = "1.41.0"


# versions(), read once: not functools.cache, as functools is not otherwise loaded by ``import
# extism_fast`` (tests/test_cold_start.py).
_VERSIONS: dict[str, str] = {}


def versions() -> dict[str, str]:
    """extism_fast's version, the Extism runtime version it matches, and the installed wasmtime
    wheel's version (``"unknown"`` if its metadata is missing). Reads package metadata (tens of
    ms) the first time: not for a plugin's load path."""
    if not _VERSIONS:
        from importlib import metadata

        try:
            wasmtime = metadata.version("wasmtime")
        except metadata.PackageNotFoundError:  # pragma: no cover - wasmtime is a dependency
            wasmtime = "unknown"
        _VERSIONS.update(extism_fast=__version__, extism=EXTISM_RUNTIME_VERSION, wasmtime=wasmtime)
    return _VERSIONS
