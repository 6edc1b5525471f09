"""The file system's side of writing a compile cache (runtime/compile_cache.py, which decides what
to write): a file of the directory replaced atomically, a payload's recency refreshed, the least
recently used entries evicted, an entry's files deleted.

Apart from compile_cache.py so that a warm hit, which only reads, does not load it: it loads with a
process's first write (an entry stored, a seal renewed, an ``.id`` record, a damaged entry
discarded), not with every first plugin (cold start, tests/test_cold_start.py). It works on paths
and values only (no import of compile_cache.py: the package has no import cycle).
"""

import os
import stat
import time

from extism_fast.host.logs import LazyLogger

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Callable, Iterable

__all__ = ["discard", "evict", "touch", "unique_mtime_ns", "write"]

logger = LazyLogger()  # logging loads with the first record


def unique_mtime_ns() -> int:
    """Now, to the millisecond (the eviction order), with random nanoseconds below it: the mtime a
    written or touched file gets, so that two files never share an identity (manifest/files.py
    stat_identity) by chance. The kernel stamps files with a coarse clock (a few ms), and a file
    written after another was replaced may get its inode number back: two payloads written in one
    tick by two processes could otherwise look like the same file to a seal."""
    now = time.time_ns()
    return now - now % 1_000_000 + int.from_bytes(os.urandom(4), "little") % 1_000_000


def write(path: str, blob: bytes, directory: str, parent: str | None,
          trusted: "Callable[[], bool]") -> tuple[int, int, int] | None:
    """Write the file ``path`` of the cache's ``directory`` atomically, creating it (and
    ``parent``, the cache it is inside, if any) private first: the (device, inode, mtime in ns) of
    the file written (its mtime from unique_mtime_ns), or None when it cannot be written (logged) or
    ``trusted()`` is false once it exists."""
    from extism_fast._files import replaced_on_success

    try:
        if parent is not None:  # created private too, not by makedirs' parents
            os.makedirs(parent, mode=0o700, exist_ok=True)
        os.makedirs(directory, mode=0o700, exist_ok=True)
        if not trusted():
            return None
        # A write that fails (disk full, file-size limit) leaves no temporary file behind.
        with replaced_on_success(path, file_mode=0o600) as f:
            f.write(blob)
            f.flush()  # before the mtime is set: a later write would stamp it again
            os.utime(f.fileno(), ns=(time.time_ns(), unique_mtime_ns()))
            st = os.fstat(f.fileno())
    except OSError as exc:
        logger.debug("extism_fast: cannot write the compile cache in %s: %s", directory, exc)
        return None
    return st.st_dev, st.st_ino, st.st_mtime_ns


def touch(fd: int, st: os.stat_result) -> os.stat_result:
    """Mark the payload open at ``fd`` (stat ``st``) as just used (its mtime: the eviction order);
    its stat after that."""
    try:
        os.utime(fd, ns=(time.time_ns(), unique_mtime_ns()))
        return os.fstat(fd)
    except OSError:
        return st  # a read-only cache: it is only older than it should be


def _entries(directory: str) -> list[tuple[int, int, str]]:
    """(mtime, size, key) of each entry: its regular ``.cwasm`` and ``.seal`` files, either of
    which may be missing (not the ``.id`` records or others' temporary files); the size is both
    files', the mtime the payload's (the seal's when it has none). A file that vanishes while
    listed is left out."""
    found: dict[str, list[int]] = {}
    with os.scandir(directory) as it:
        for entry in it:
            key, _, suffix = entry.name.rpartition(".")
            if suffix not in ("cwasm", "seal") or not key or key.startswith("."):
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # another process evicted it
            if stat.S_ISREG(st.st_mode):
                mtime_size = found.setdefault(key, [st.st_mtime_ns, 0])
                if suffix == "cwasm":
                    mtime_size[0] = st.st_mtime_ns
                mtime_size[1] += st.st_size
    return [(mtime, size, key) for key, (mtime, size) in found.items()]


def evict(directory: str, max_bytes: int, kept: str | None) -> None:
    """Delete the least recently used entries of ``directory``, oldest first, until they add up to
    at most ``max_bytes`` (never the entry named ``kept``). Never raises: a failure is logged."""
    try:
        entries = _entries(directory)
        total = sum(size for _, size, _ in entries)
        for _, size, key in sorted(entries):
            if total <= max_bytes:
                break
            if key == kept:
                continue
            for gone in (f"{key}.cwasm", f"{key}.seal"):
                try:
                    os.unlink(os.path.join(directory, gone))
                except FileNotFoundError:
                    pass  # another process evicted it first: it is gone all the same
            total -= size
    except Exception as exc:  # a cache problem must not fail a plugin's creation
        logger.debug("extism_fast: cannot evict from the compile cache in %s: %s", directory, exc)


def discard(paths: "Iterable[str]") -> None:
    """Delete the files ``paths`` (an entry's payload and seal; ignored when absent)."""
    for path in paths:
        try:
            os.unlink(path)
        except OSError:
            pass
