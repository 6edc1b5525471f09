"""Reading a module file: its bytes and its identity (path, device, inode, size, mtime, ctime), by
which the compile cache finds the module's hash without hashing it (runtime/compile_cache.py).
Dependency-free: the plain plugin (manifest/plain.py) and the manifest classes both read files (and
check a module's ``hash``) here."""

import os

from extism_fast.errors import HashMismatchError, ManifestError

__all__ = ["read_module_file", "stat_identity", "check_sha256", "FILE_IDENTITY_SETTLE_NS"]

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


def check_sha256(where: str, actual: str, expected: str) -> None:
    """HashMismatchError naming ``where`` unless ``actual`` (the module's sha256 as lowercase hex) is
    ``expected`` (a manifest source's ``hash``: 64 hex digits, any case)."""
    if actual != expected.lower():
        raise HashMismatchError(f"{where}: sha256 mismatch: expected {expected}, got {actual}")
