"""Reading a module: a file's bytes and its identity (path, device, inode, size, mtime, ctime), by
which the compile cache finds the module's hash without hashing it (runtime/compile_cache.py); a
URL's body; the check of its ``hash``. Without the manifest classes: the plain plugin
(manifest/plain.py) and the manifest classes both read modules here."""

import os
import sys

from extism_fast.errors import CallError, HashMismatchError, ManifestError

TYPE_CHECKING = False  # typing is not imported at run time (cold start: tests/test_cold_start.py)
if TYPE_CHECKING:
    from typing import Callable

__all__ = ["read_module_file", "fetch_module", "stat_identity", "check_sha256", "is_sha256_hex", "sha256_digest",
           "use_sha256", "FILE_IDENTITY_SETTLE_NS"]

#: How long a file must have been left unchanged (its ctime, which no program can set) before its
#: identity stands for its contents: a write within one tick of the filesystem's clock could keep
#: size and times unchanged, so a file changed this recently is identified by its hash only.
FILE_IDENTITY_SETTLE_NS = 2_000_000_000


def stat_identity(st: os.stat_result) -> tuple[int, ...]:
    """What no write to a file leaves all unchanged: its device, inode, size, mtime and ctime (which
    no program can set back). A module file's identity is its path and this; the compile cache's
    seals record it of an entry (runtime/compile_cache.py)."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _file_identity(path: str, before: os.stat_result, after: os.stat_result, length: int) -> tuple | None:
    """The identity of the regular file at ``path``, read whole between the two stats, or None: it
    changed meanwhile, or too recently to be told apart from a later change (FILE_IDENTITY_SETTLE_NS)."""
    import stat
    import time

    identity = (path, *stat_identity(after))
    if (not stat.S_ISREG(after.st_mode) or length != after.st_size or identity[1:] != stat_identity(before)
            or time.time_ns() - max(after.st_ctime_ns, after.st_mtime_ns) < FILE_IDENTITY_SETTLE_NS):
        return None
    return identity


#: Up to this many bytes are hashed by the extension's sha256 (kernel_c/sha256.c: use_sha256), or
#: before it is handed over by CPython's own (hashlib's fallback without OpenSSL, a module that loads
#: in ~0.3 ms): hashlib's OpenSSL takes ~3 ms to load and hashes ~4x faster, so a first plugin's
#: names, fingerprints and small modules cost less without it; more goes to hashlib.
_BUILTIN_SHA256_BYTES = 64 << 10
_BUILTIN_SHA256 = "_sha2" if sys.version_info >= (3, 12) else "_sha256"  # the module that has it
_extension_sha256 = None  # use_sha256's


def use_sha256(digest: "Callable[[bytes | memoryview], bytes]") -> None:
    """Hash small inputs with ``digest`` from now on: the extension's, handed over with the first
    plugin (the package's Python does not import the extension)."""
    global _extension_sha256
    _extension_sha256 = digest


def sha256_digest(data: bytes | memoryview) -> bytes:
    """The sha256 digest of ``data`` (the same from each implementation): the extension's for small
    inputs (no module to load), else hashlib's. The compile cache's keys and a plain plugin's
    ``hash`` check (manifest/plain.py) use it."""
    global _BUILTIN_SHA256_BYTES
    if len(data) <= _BUILTIN_SHA256_BYTES:
        if _extension_sha256 is not None:
            return _extension_sha256(data)
        try:
            return __import__(_BUILTIN_SHA256).sha256(data).digest()
        except ImportError:  # a Python built without it: hashlib from now on
            _BUILTIN_SHA256_BYTES = -1
    import hashlib

    return hashlib.sha256(data).digest()


def read_module_file(where: str, path: str) -> tuple[bytes, tuple | None]:
    """A module file's bytes and its identity (LoadedModule.file_identity: the compile cache finds
    the module's hash by it) or None; ManifestError naming ``where`` when it cannot be read."""
    try:
        with open(path, "rb") as f:
            before = os.fstat(f.fileno())
            data = f.read()
            return data, _file_identity(os.path.abspath(path), before, os.fstat(f.fileno()), len(data))
    except FileNotFoundError:
        raise ManifestError(f"{where}: no such file: {path!r}") from None
    except OSError as exc:
        raise ManifestError(f"{where}: cannot read {path!r}: {exc.strerror or exc}") from None


def fetch_module(where: str, url: str, method: str, headers: dict) -> bytes:
    """The body of a URL source, through the one HTTP client, within URL_FETCH_TIMEOUT_S;
    ManifestError naming ``where`` and the URL redacted when it cannot be fetched or answers
    another status than 2xx."""
    # Imported here: the client pulls in http.client, ssl and socket (~15 ms at import time),
    # which only URL sources need.
    from extism_fast.host.http import fetch
    from extism_fast.host.urls import redact_url
    from extism_fast.manifest.limits import URL_FETCH_TIMEOUT_S

    shown = repr(redact_url(url))
    try:
        response = fetch(url, method=method, headers=headers, timeout_s=URL_FETCH_TIMEOUT_S)
    except CallError as exc:  # its text shows no secret of the URL (see extism_fast.host.http)
        raise ManifestError(f"{where}.url: cannot fetch {shown}: {exc}") from None
    if not 200 <= response.status < 300:
        raise ManifestError(f"{where}.url: cannot fetch {shown}: HTTP {response.status} {response.reason}")
    return response.body


_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


def is_sha256_hex(value: str) -> bool:
    """Whether ``value`` is written as a manifest source's ``hash`` must be: 64 hex digits, any case."""
    return len(value) == 64 and _HEX_DIGITS.issuperset(value)


def check_sha256(where: str, data: bytes, expected: str) -> None:
    """HashMismatchError naming ``where`` unless the module ``data``'s sha256 (sha256_digest) is
    ``expected`` (a manifest source's ``hash``: 64 hex digits, any case)."""
    actual = sha256_digest(data).hex()
    if actual != expected.lower():
        raise HashMismatchError(f"{where}: sha256 mismatch: expected {expected}, got {actual}")
