"""The on-disk cache of compiled modules, so a second process skips compiling the same plugin.

An entry is the module as wasmtime serialized it, keyed by the sha256 of the wasm bytes, the engine
settings and the wasmtime library that compiled it (given by the runtime as ``engine``), and this
package's version. wasmtime loads a serialized module
without re-validating its machine code, so every entry carries a header that is checked before the
bytes are handed to wasmtime: a magic string, the key it was written for, and the sha256 of the
payload. A corrupted, truncated or foreign entry fails the check, is deleted and recompiled;
it is never loaded.

On by default, in ``$EXTISM_FAST_CACHE_DIR`` or ``$XDG_CACHE_HOME/extism_fast`` (default
``~/.cache/extism_fast``); ``EXTISM_FAST_CACHE=0`` or ``CompiledPlugin(..., cache=False)`` turns it
off.
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import tempfile
from pathlib import Path
from typing import Optional, Union

__all__ = ["CompileCache", "cache_from_argument", "default_directory"]

logger = logging.getLogger("extism_fast")

_MAGIC = b"extism_fast compiled module v1\n"
_DIGEST = 32  # sha256


def _versions() -> bytes:
    from extism_fast import __version__

    return f"{__version__}|{platform.machine()}".encode()


class CompileCache:
    """A directory of compiled modules; safe to share between processes (writes are atomic)."""

    def __init__(self, directory: Union[str, os.PathLike]) -> None:
        self.directory = Path(directory)

    def key(self, wasm: bytes, engine: str) -> str:
        """The entry name for ``wasm`` compiled on the engine described by ``engine``."""
        h = hashlib.sha256(_MAGIC + _versions() + b"|" + engine.encode() + b"|")
        h.update(hashlib.sha256(wasm).digest())
        return h.hexdigest()

    def _path(self, key: str) -> Path:
        return self.directory / f"{key}.cwasm"

    def load(self, key: str) -> Optional[memoryview]:
        """The serialized module stored under ``key`` (a read-only view, not a copy: entries are
        megabytes), or None when absent or not intact."""
        path = self._path(key)
        try:
            blob = memoryview(path.read_bytes())
        except OSError:
            return None
        header = len(_MAGIC) + 2 * _DIGEST
        intact = (
            len(blob) > header
            and blob[: len(_MAGIC)] == _MAGIC
            and blob[len(_MAGIC) : len(_MAGIC) + _DIGEST] == bytes.fromhex(key)
            and blob[len(_MAGIC) + _DIGEST : header] == hashlib.sha256(blob[header:]).digest()
        )
        if intact:
            return blob[header:]
        logger.warning("extism_fast: discarding a damaged or foreign compile cache entry %s", path)
        self.discard(key)
        return None

    def store(self, key: str, payload: bytes) -> None:
        """Write an entry atomically; a cache that cannot be written is skipped (logged)."""
        blob = _MAGIC + bytes.fromhex(key) + hashlib.sha256(payload).digest() + payload
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-")
            with os.fdopen(fd, "wb") as f:
                f.write(blob)
            os.replace(tmp, self._path(key))
        except OSError as exc:
            logger.debug("extism_fast: cannot write the compile cache in %s: %s", self.directory, exc)

    def discard(self, key: str) -> None:
        """Remove an entry (ignored when absent)."""
        try:
            self._path(key).unlink()
        except OSError:
            pass


def default_directory() -> Path:
    """``$EXTISM_FAST_CACHE_DIR``, else ``$XDG_CACHE_HOME/extism_fast``, else ``~/.cache/extism_fast``."""
    if os.environ.get("EXTISM_FAST_CACHE_DIR"):
        return Path(os.environ["EXTISM_FAST_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "extism_fast"


def cache_from_argument(cache: Union[None, bool, str, os.PathLike]) -> Optional[CompileCache]:
    """The cache a CompiledPlugin uses: ``None`` follows ``EXTISM_FAST_CACHE`` (on unless 0/false/
    no/off), ``False`` disables, ``True`` the default directory, a path that directory."""
    if cache is None:
        if os.environ.get("EXTISM_FAST_CACHE", "1").strip().lower() in ("0", "false", "no", "off"):
            return None
        return CompileCache(default_directory())
    if cache is False:
        return None
    if cache is True:
        return CompileCache(default_directory())
    return CompileCache(cache)
