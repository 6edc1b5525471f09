"""The on-disk cache of compiled modules, so a second process skips compiling the same plugin.

An entry is the module as wasmtime serialized it: native code that wasmtime loads without
re-validating it. So an entry is trusted only as far as its directory is, and checked before it is
handed to wasmtime:

- The directory must be owned by you (or root) and not writable by group or others (as ssh
  requires of ``~/.ssh``); otherwise the cache is not used at all (one warning on the
  ``extism_fast`` logger) and plugins are compiled in memory. It is created with mode 0700.
- An entry is two files: ``<key>.cwasm``, exactly wasmtime's serialization (the payload), and
  ``<key>.seal``, its header and seal. Each is used only if it is a regular file (never through a
  symbolic link, never a FIFO or a device) owned by you (or root); the payload is at most
  ``64 MiB + 16 x the module's size`` (a serialized module is a few times its wasm at most).
- The header binds the payload to the request: a magic string, the sha256 of the module it was
  compiled from, the fingerprint of the engine that compiled it (engine settings, the wasmtime
  library file, this package's version, the machine), and the sha256 of the payload; all are
  compared with the module and engine at hand.
- The seal, after the header, is the payload file's identity (device, inode, size, mtime, ctime)
  when it was written or last checked whole. A payload whose open file has that identity is
  handed to wasmtime as that very file (``/proc/self/fd/N`` of the descriptor that was checked),
  which maps it: nothing is read or copied, pages load as the code runs. Any write to the file
  changes its ctime, which no program can set back, and every file the cache writes or touches
  gets a unique mtime (to the ms, random below: compile_cache_store.unique_mtime_ns), as the
  kernel's clock is coarse and a freed inode number comes back; so a changed payload, or another
  writer's, is never taken for a sealed one: it is read and hashed whole, and loaded from those bytes (then sealed again) only if
  they match. Where ``/proc`` is missing, a sealed payload is read and loaded from memory. Entries
  are only ever replaced whole (a new file renamed over), never written in place: wasmtime's
  mapping requires that the file not change under it. wasmtime keeps a descriptor of a mapped
  payload while its module lives (and while a pooled instance slot keeps its memory image), so only
  a payload of at least ``MAP_MIN_BYTES`` (1 MiB) is mapped: where mapping pays (reading and
  copying megabytes) and a program's descriptors are not spent on its many small plugins; a smaller
  one is read and loaded from memory.

A module read from a file is looked up by the file's identity (device, inode, size, mtime and
ctime) before it is hashed: a 32-byte ``.id`` record beside the entries holds its sha256, written
the first time. The identity is used only for a file that was stable while read and unchanged for
2 s before (``FILE_IDENTITY_SETTLE_NS``): a later write changes its ctime, which no program can set
back, so a record never stands for other contents (the risk left: a clock set back, or a file system
that keeps no ctime, together with a rewrite of the same size).

An entry that fails a check is deleted and the module recompiled (and stored again); it is never
loaded. An entry without a header of this format (one an older version of this package wrote, v2,
with its header inside the ``.cwasm``) or without a payload is a plain miss: compiled and stored
over, or evicted like any other. The checks keep out damage, a copy made for another module or
engine, and a planted file that would hang or exhaust the reader; they cannot keep out someone who
may write the directory: whoever can write it can run code as you, which is why an untrusted
directory is not used.

On by default, in ``$EXTISM_FAST_CACHE_DIR`` or ``$XDG_CACHE_HOME/extism_fast`` (default
``~/.cache/extism_fast``); ``EXTISM_FAST_CACHE=0`` or ``CompiledPlugin(..., cache=False)`` turns it
off.

The directory is bounded: after an entry is written, when the directory's entries add up to more
than the cap (512 MiB by default; ``$EXTISM_FAST_CACHE_MAX_BYTES`` or
``CompileCache(directory, max_bytes=...)``, 0 for no cap) the least recently used entries are
deleted, oldest first, until they fit; an entry's size is both its files' (a seal left without its
payload counts, and goes, too). Recency is an entry's mtime, set when it is written and again on
each hit, so processes sharing the directory share it too; the entry just written is never deleted,
and eviction never fails a plugin's creation (a file another process deleted first is skipped, any
other problem is logged).

The file system's side of writing (a file replaced atomically, an entry's recency, eviction,
deletion) is runtime/compile_cache_store.py's, loaded with a process's first write: a warm hit
only reads.
"""

import os
import stat
import time

from extism_fast.host.logs import LazyLogger
from extism_fast.manifest.files import sha256_digest

# Not imported here: pathlib (paths are str inside; ``directory`` and default_directory() give a
# Path), hashlib (OpenSSL: ~3 ms, see manifest/files.py, sha256_digest), typing and collections, which a warm first plugin
# does not need (EntryKey is a runtime/records.py record: a namedtuple to type checkers).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections import namedtuple as record
    from pathlib import Path
    from types import ModuleType
else:
    from extism_fast.runtime.records import record

__all__ = ["DEFAULT_MAX_BYTES", "CompileCache", "EntryKey", "cache_from_argument", "default_directory",
           "default_max_bytes"]

logger = LazyLogger()  # logging loads with the first record

_MAGIC = b"extism_fast compiled module v3\n"
_DIGEST = 32  # sha256
_HEADER = len(_MAGIC) + 3 * _DIGEST  # magic, module sha256, engine fingerprint, payload sha256
_SEAL_BYTES = _HEADER + 256  # the header, then the payload file's identity (a repr of six ints)
#: A path that reopens an open descriptor's file (Linux); a payload is handed to wasmtime by it.
_FD_PATH = "/proc/self/fd/{}"
#: The smallest payload handed to wasmtime as a file to map (each mapped one holds a descriptor).
MAP_MIN_BYTES = 1 << 20
# The size bound of an entry: a fixed allowance (small modules carry the most metadata per byte)
# plus a multiple of the module's size.
_ENTRY_SLACK_BYTES = 64 << 20
_ENTRY_BYTES_PER_MODULE_BYTE = 16

DEFAULT_MAX_BYTES = 512 << 20
_MAX_BYTES_ENV = "EXTISM_FAST_CACHE_MAX_BYTES"
_SIZE_SUFFIXES = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}

_warned_directories: set[str] = set()  # warn once per directory and process

#: A hit refreshes its entry's recency (mtime) when it was last refreshed this long ago: often
#: enough for the eviction order, rarely enough that its seal (the identity in ``<key>.seal``),
#: which the touch breaks, is rewritten at most this often.
_TOUCH_INTERVAL_NS = 3600 * 10**9


def _versions() -> bytes:
    """What a cache entry is only valid for besides its engine's settings (which name the wasmtime
    library, _runtime._engine_description): extism_fast's version and the machine."""
    from extism_fast._version import __version__

    return f"{__version__}|{os.uname().machine}".encode()  # what platform.machine() reads on POSIX


_EntryFields = record("_EntryFields", ("module", "engine", "module_size"))  # not typing.NamedTuple: typing


class EntryKey(_EntryFields):
    """What an entry must have been compiled from: the module's sha256 (``module``, bytes) and size
    (``module_size``), and the engine's fingerprint (``engine``, bytes). ``str(key)`` is the entry's
    file name (without ``.cwasm``)."""

    __slots__ = ()

    def __str__(self) -> str:
        return sha256_digest(self.engine + self.module).hex()

    @property
    def max_entry_bytes(self) -> int:
        """The largest payload (``.cwasm``) that is used for this module."""
        return _ENTRY_SLACK_BYTES + _ENTRY_BYTES_PER_MODULE_BYTE * self.module_size


class _Rejected(Exception):
    """An entry that must not be loaded; the message says why."""


def _owned_by_you(st: os.stat_result) -> bool:
    # root may own it too: root can run code as you anyway.
    return st.st_uid in (os.geteuid(), 0)


def _identity(st: os.stat_result) -> bytes:
    """What a seal records of an entry: no write to the file leaves all of it unchanged (its ctime,
    which no program can set, moves with every write, rename or utime)."""
    from extism_fast.manifest.files import stat_identity

    return repr(stat_identity(st)).encode()


def _open_file(path: str, limit: int) -> tuple[int, os.stat_result] | None:
    """An open descriptor of the regular file at ``path`` and its stat (None when absent); _Rejected
    when it is anything else, not yours, or larger than ``limit``. Never blocks, never follows a
    link. The caller closes the descriptor."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        import errno

        raise _Rejected("a symbolic link" if exc.errno == errno.ELOOP else str(exc.strerror or exc)) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _Rejected("not a regular file")
        if not _owned_by_you(st):
            raise _Rejected(f"owned by another user (uid {st.st_uid})")
        if st.st_size > limit:
            raise _Rejected(f"{st.st_size} bytes, more than the {limit} allowed for this module")
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def _read_all(fd: int, st: os.stat_result) -> bytes:
    """The bytes of the file open at ``fd`` (from its start), whose stat is ``st``; _Rejected when
    it changed meanwhile."""
    chunks = []
    remaining = st.st_size + 1  # one more: a file still being written is seen as changed
    while remaining > 0:
        chunk = os.pread(fd, remaining, st.st_size + 1 - remaining)
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    if len(data) != st.st_size:
        raise _Rejected("changed while it was read")
    return data


def _read_entry(path: str, limit: int) -> tuple[bytes, os.stat_result] | None:
    """The bytes of the regular file at ``path`` and its stat (None when absent); _Rejected as by
    _open_file."""
    found = _open_file(path, limit)
    if found is None:
        return None
    try:
        return _read_all(*found), found[1]
    finally:
        os.close(found[0])


class CachedEntry:
    """A payload (``.cwasm``) checked against its header and open, for one load: ``path`` names the
    very file that was checked (``/proc/self/fd/N`` of its descriptor) for wasmtime to map; or it is
    None and the payload's bytes were read (to be checked whole, or where there is no such path).
    Close it once wasmtime has loaded it (a mapping outlives the descriptor)."""

    __slots__ = ("_fd", "_st", "_data", "path")

    def __init__(self, fd: int, st: os.stat_result, path: str | None, data: bytes | None) -> None:
        self._fd, self._st, self.path, self._data = fd, st, path, data

    @property
    def size(self) -> int:
        """The payload's size in bytes, as checked."""
        return self._st.st_size

    def fileno(self) -> int:
        """The checked descriptor (open until close())."""
        return self._fd

    def read(self) -> bytes:
        """The payload's bytes (read now when only its path was taken: _Rejected if it changed
        meanwhile)."""
        if self._data is None:
            self._data = _read_all(self._fd, self._st)
        return self._data

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
            self.path = None

    def __del__(self) -> None:
        self.close()


def _fd_path(fd: int, st: os.stat_result) -> str | None:
    """A path that opens the file open at ``fd`` (stat ``st``) and nothing else, or None."""
    path = _FD_PATH.format(fd)
    try:
        found = os.stat(path)
    except OSError:  # no /proc
        return None
    return path if (found.st_dev, found.st_ino) == (st.st_dev, st.st_ino) else None


def default_max_bytes() -> int:
    """The cap from ``$EXTISM_FAST_CACHE_MAX_BYTES`` (bytes, or with a binary suffix: ``K``,
    ``M``, ``G``, optionally followed by ``iB``/``B``; 0 for no cap), else 512 MiB.

    :raises Error: naming the variable when its value is not such a size."""
    text = os.environ.get(_MAX_BYTES_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_BYTES
    import re

    match = re.fullmatch(r"(\d+)\s*(?:([kmg])(?:i?b)?|b)?", text, re.IGNORECASE)
    if match is None:
        from extism_fast.errors import Error
        raise Error(f"{_MAX_BYTES_ENV}={text!r} is not a size: give bytes as a whole number (0 for no cap), "
                    f"or with a suffix such as 256M or 2GiB")
    return int(match[1]) * _SIZE_SUFFIXES[(match[2] or "").lower()]


class CompileCache:
    """A directory of compiled modules; safe to share between processes (writes are atomic).

    ``max_bytes``: the cap on the entries' total size, least recently used evicted first (0: no
    cap); None (the default) reads ``$EXTISM_FAST_CACHE_MAX_BYTES`` (see default_max_bytes)."""

    def __init__(self, directory: str | os.PathLike[str], *, max_bytes: int | None = None) -> None:
        if max_bytes is None:
            max_bytes = default_max_bytes()
        elif isinstance(max_bytes, bool) or not isinstance(max_bytes, int):
            raise TypeError(f"max_bytes must be an int (bytes; 0 for no cap), not {type(max_bytes).__name__}")
        elif max_bytes < 0:
            raise ValueError(f"max_bytes must be 0 (no cap) or a positive number of bytes, not {max_bytes}")
        self.directory = directory  # the setter keeps it as a str
        self.max_bytes = max_bytes
        self._parent: CompileCache | None = None  # engine_cache's: the cache it is inside

    @property
    def directory(self) -> "Path":
        """The cache's directory, as a Path (a str inside: pathlib is not loaded for it)."""
        from pathlib import Path

        return Path(self._directory)

    @directory.setter
    def directory(self, directory: str | os.PathLike[str]) -> None:
        self._directory = _pure_path(directory)

    def __repr__(self) -> str:
        return f"CompileCache({self._directory!r}, max_bytes={self.max_bytes})"

    def _file(self, name: str) -> str:
        return os.path.join(self._directory, name)

    def key(self, wasm: bytes, engine: str, file_identity: tuple[int, ...] | None = None) -> EntryKey:
        """The key of ``wasm`` compiled on the engine described by ``engine``. ``file_identity``:
        that of the file ``wasm`` was read whole from (LoadedModule.file_identity), whose hash
        is then looked up instead of computed (see _module_digest)."""
        fingerprint = sha256_digest(_MAGIC + _versions() + b"|" + engine.encode())
        return EntryKey(self._module_digest(wasm, file_identity), fingerprint, len(wasm))

    def _module_digest(self, wasm: bytes, file_identity: tuple[int, ...] | None) -> bytes:
        """The sha256 of ``wasm``. For a file's bytes it is recorded with the file's identity (path,
        device, inode, size, mtime and ctime, which no write leaves unchanged once the file has
        settled: manifest/files.py, FILE_IDENTITY_SETTLE_NS), so a later read of the unchanged file
        (a fresh process loading the same plugin) skips hashing megabytes. The record of a path is
        ``<sha256 of the path>.id``: the digest, then the identity it is for; one for another
        identity, unreadable or malformed is ignored and rewritten (one record per path)."""
        if file_identity is None or not self.trusted():
            return sha256_digest(wasm)
        record = self._file(f"{sha256_digest(repr(file_identity[0]).encode()).hex()}.id")
        identity = repr(file_identity).encode()
        try:
            found = _read_entry(record, _DIGEST + len(identity))
        except _Rejected:
            found = None
        if found is not None and found[0][_DIGEST:] == identity:
            return found[0][:_DIGEST]
        digest = sha256_digest(wasm)
        self._write(record, digest + identity)
        return digest

    def _path(self, key: EntryKey) -> str:
        return self._file(f"{key}.cwasm")

    def engine_cache(self) -> "CompileCache":
        """The cache of the runtime's own module, the kernel accessor (one ~15 KB entry per engine
        setting, so a warm process start compiles nothing): the subdirectory ``engine``, apart from
        the plugins' entries and their cap, used while this directory is trusted."""
        cache = CompileCache(self._file("engine"), max_bytes=0)
        cache._parent = self
        return cache

    def trusted(self) -> bool:
        """Whether the directory may be used: absent (it is created private), or a directory
        owned by you or root that group and others cannot write. Warns once per directory."""
        if self._parent is not None and not self._parent.trusted():
            return False
        try:
            st = os.stat(self._directory)
        except FileNotFoundError:
            return True
        except OSError as exc:
            return self._distrust(str(exc.strerror or exc))
        if not stat.S_ISDIR(st.st_mode):
            return self._distrust("not a directory")
        if not _owned_by_you(st):
            return self._distrust(f"owned by another user (uid {st.st_uid})")
        if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            return self._distrust(f"writable by group or others (mode {stat.S_IMODE(st.st_mode):04o})")
        return True

    def _distrust(self, reason: str) -> bool:
        if self._directory not in _warned_directories:
            _warned_directories.add(self._directory)
            logger.warning("extism_fast: not using the compile cache in %s: %s; whoever can write "
                           "there could run code as you (modules are compiled in memory instead)",
                           self._directory, reason)
        return False

    def load(self, key: EntryKey) -> bytes | None:
        """The serialized module stored under ``key``, or None when absent, not intact, not made for
        ``key`` or not trusted (open_entry's, read: for a small entry such as the kernel accessor's)."""
        entry = self.open_entry(key)
        if entry is None:
            return None
        try:
            return entry.read()
        except _Rejected as exc:
            self._reject(key, exc)
            return None
        finally:
            entry.close()

    def open_entry(self, key: EntryKey) -> CachedEntry | None:
        """The entry stored under ``key``, checked and open (CachedEntry: wasmtime maps the file
        itself where it can), or None when absent, not intact, not made for ``key`` or not trusted."""
        if not self.trusted():
            return None
        try:
            header = self._header(key)
            if header is None:
                return None
            found = _open_file(self._path(key), key.max_entry_bytes)
            if found is None:
                return None
        except _Rejected as exc:
            self._reject(key, exc)
            return None
        fd, st = found
        try:
            data = None if header[_HEADER:] == _identity(st) else self._check_whole(fd, st, header)
            if data is not None or time.time_ns() - st.st_mtime_ns >= _TOUCH_INTERVAL_NS:
                st = _writes().touch(fd, st)
                self._write(self._seal_path(key), header[:_HEADER] + _identity(st))
            path = _fd_path(fd, st) if data is None and st.st_size >= MAP_MIN_BYTES else None
            if data is None and path is None:
                data = _read_all(fd, st)
        except _Rejected as exc:
            os.close(fd)
            self._reject(key, exc)
            return None
        except BaseException:
            os.close(fd)
            raise
        return CachedEntry(fd, st, path, data)

    def _reject(self, key: EntryKey, exc: _Rejected) -> None:
        logger.warning("extism_fast: discarding a damaged or foreign compile cache entry %s (%s)",
                       self._path(key), exc)
        self.discard(key)

    def _seal_path(self, key: EntryKey) -> str:
        return self._file(f"{key}.seal")

    def _header(self, key: EntryKey) -> bytes | None:
        """The header and seal of ``key``'s entry (its ``.seal`` file), checked against ``key``: None
        when absent or of another format (a miss: an older version's entry is stored over);
        _Rejected when unusable or made for another module or engine."""
        found = _read_entry(self._seal_path(key), _SEAL_BYTES)
        if found is None or not found[0].startswith(_MAGIC):
            return None
        header = found[0]
        if len(header) < _HEADER:
            raise _Rejected("truncated header")
        if header[len(_MAGIC) : len(_MAGIC) + _DIGEST] != key.module:
            raise _Rejected("made for another module")
        if header[len(_MAGIC) + _DIGEST : len(_MAGIC) + 2 * _DIGEST] != key.engine:
            raise _Rejected("made for another engine")
        return header

    @staticmethod
    def _check_whole(fd: int, st: os.stat_result, header: bytes) -> bytes:
        """The bytes of a payload its seal does not name (changed since, or never sealed), when they
        match the header's checksum; else _Rejected. What a seal cannot see is damage below the file
        system (a disk's bit rot under an unchanged inode)."""
        data = _read_all(fd, st)
        if sha256_digest(data) != header[_HEADER - _DIGEST : _HEADER]:
            raise _Rejected("checksum mismatch")
        return data

    def store(self, key: EntryKey, payload: bytes) -> None:
        """Write an entry (its payload, then its header and seal), each file atomically; a cache
        that cannot be written is skipped (logged), and an untrusted one is not written."""
        path = self._path(key)
        written = self._write(path, payload)
        if not written:
            return
        try:
            st = os.stat(path, follow_symlinks=False)
        except OSError:
            return  # evicted meanwhile: nothing to seal
        if (st.st_dev, st.st_ino, st.st_mtime_ns) == written:  # not another process's written over it since
            self._write(self._seal_path(key), _MAGIC + key.module + key.engine + sha256_digest(payload) + _identity(st))
        self.evict(keep=key)

    def _write(self, path: str, blob: bytes) -> tuple[int, int, int] | None:
        """Write the file ``path`` of the directory atomically: the (device, inode, mtime ns) of the
        file written (compile_cache_store.write), or None when the cache cannot be written (logged)
        or is not trusted."""
        parent = self._parent._directory if self._parent is not None else None
        return _writes().write(path, blob, self._directory, parent, self.trusted)

    def evict(self, keep: EntryKey | None = None) -> None:
        """Delete the least recently used entries, oldest first, until the entries add up to at
        most ``max_bytes`` (never ``keep``'s). Never raises: a failure is logged and leaves the
        cache larger than its cap until the next write."""
        if self.max_bytes:
            _writes().evict(self._directory, self.max_bytes, str(keep) if keep is not None else None)

    def discard(self, key: EntryKey) -> None:
        """Remove an entry and its seal (ignored when absent)."""
        _writes().discard((self._path(key), self._seal_path(key)))


def _writes() -> "ModuleType":
    """runtime/compile_cache_store.py, loaded with the first write (not by a warm hit)."""
    from extism_fast.runtime import compile_cache_store

    return compile_cache_store


def _official_cache_config() -> tuple[bool, str | None]:
    """What of the official runtime's ``EXTISM_CACHE_CONFIG`` maps onto this cache: (enabled,
    directory). Unset: (True, None). Empty: caching off, as there. A path: wasmtime's cache
    configuration file (TOML), whose ``[cache]`` keys ``enabled`` and ``directory`` are honoured;
    its cleanup and size-limit keys are wasmtime's own cache's and have no counterpart here.

    :raises Error: naming the file when it cannot be read or is not such a TOML file (the
        official runtime fails the plugin's creation too)."""
    path = os.environ.get("EXTISM_CACHE_CONFIG")
    if path is None:
        return True, None
    if not path.strip():
        return False, None
    from extism_fast.errors import Error
    try:
        with open(path, "rb") as f:
            data = f.read()
        document = _simple_toml(data)
        if document is None:  # beyond the subset: tomllib's parse, and its errors
            import tomllib

            document = tomllib.loads(data.decode())  # what tomllib.load(f) does
    except (OSError, ValueError) as exc:  # TOMLDecodeError, a file not UTF-8, an integer of 4300+ digits
        raise Error(f"EXTISM_CACHE_CONFIG: cannot read the cache configuration {path!r}: {exc}") from None
    table = document.get("cache", {})
    enabled = table.get("enabled", True) if isinstance(table, dict) else None
    directory = table.get("directory") if isinstance(table, dict) else None
    if not isinstance(enabled, bool) or not isinstance(directory, (str, type(None))):
        raise Error(f"EXTISM_CACHE_CONFIG: {path!r}: [cache] enabled must be a bool and directory a string")
    return enabled, directory


# A reader of the TOML that wasmtime's cache configuration files are written in, so that honouring
# EXTISM_CACHE_CONFIG does not import tomllib, which with typing, re, string and datetime costs a
# fresh process ~20 ms (as much again as the rest of its first call). It reads a strict subset and
# declines (None) anything else, which tomllib then parses: so every error and edge case is still
# tomllib's, and whatever it reads is exactly what tomllib reads.
#: TOML's whitespace within a line: only these two (str.strip() would also take Unicode's).
_TOML_WS = " \t"
#: A bare key's characters: ASCII only (str.isalnum() would take other scripts' letters).
_TOML_BARE_KEY = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
#: The control characters TOML allows nowhere outside multi-line strings (which the subset has not):
#: all but tab and newline, so a lone carriage return too.
_TOML_CONTROL = frozenset(map(chr, (*range(9), *range(11, 32), 127)))
_TOML_DIGITS = frozenset("0123456789")


def _simple_toml(data: bytes) -> dict[str, object] | None:
    """``tomllib.loads(data.decode())`` for a document of blank lines, full-line comments, ``[table]``
    headers and ``key = value`` lines (optionally followed by a comment), with bare keys, each table
    and each key of a table once, and values true, false, decimal integers and one-line strings
    without escapes; None for anything else, including what tomllib would reject."""
    try:
        text = data.decode()  # strict UTF-8, as tomllib.load; a BOM stays, and is declined below
    except UnicodeDecodeError:
        return None
    text = text.replace("\r\n", "\n")  # as tomllib does first, in strings too
    if not _TOML_CONTROL.isdisjoint(text):
        return None
    document: dict[str, object] = {}
    table = document
    for line in text.split("\n"):  # not splitlines(): TOML breaks lines at "\n" only
        line = line.lstrip(_TOML_WS)
        if not line or line[0] == "#":
            continue
        if line[0] == "[":
            name, rest = _toml_bare_key(line[1:].lstrip(_TOML_WS))
            if not name or name in document or rest[:1] != "]" or not _toml_line_end(rest[1:]):
                return None  # [[array]], a dotted or quoted name, a table (or root key) seen before
            table = document[name] = {}
            continue
        key, rest = _toml_bare_key(line)
        if not key or rest[:1] != "=" or key in table:
            return None
        value, rest = _toml_value(rest[1:].lstrip(_TOML_WS))
        if value is None or not _toml_line_end(rest):
            return None
        table[key] = value
    return document


def _toml_bare_key(text: str) -> tuple[str, str]:
    """The bare key at the start of ``text`` ("" if none) and the rest, its whitespace skipped."""
    end = 0
    while end < len(text) and text[end] in _TOML_BARE_KEY:
        end += 1
    return text[:end], text[end:].lstrip(_TOML_WS)


def _toml_line_end(text: str) -> bool:
    """Whether ``text``, after a statement, is only whitespace and a comment (control characters
    are already excluded)."""
    text = text.lstrip(_TOML_WS)
    return not text or text[0] == "#"


def _toml_value(text: str) -> tuple[bool | int | str | None, str]:
    """The value at the start of ``text`` and the rest; None if not of the subset."""
    quote = text[:1]
    if quote in ('"', "'"):
        end = text.find(quote, 1)
        body = text[1:end]
        if end < 0 or text.startswith(quote * 3) or (quote == '"' and "\\" in body):
            return None, text  # unterminated, multi-line, or a basic string with escapes
        return body, text[end + 1:]
    word, sep, comment = text.partition("#")  # no "#" in a bool or an integer
    word = word.rstrip(_TOML_WS)
    if word in ("true", "false"):
        return word == "true", sep + comment
    return _toml_integer(word), sep + comment


def _toml_integer(word: str) -> int | None:
    """A TOML decimal integer (sign, "_" between digits, no leading zero), else None; at most 64
    digits (tomllib's int() refuses 4300+ with a ValueError of its own)."""
    digits = word[1:] if word[:1] in ("+", "-") else word
    if (not all(digits.split("_")) or not _TOML_DIGITS.issuperset(digits.replace("_", ""))
            or (digits[0] == "0" and len(digits) > 1) or len(digits) > 64):
        return None
    return int(word)


def default_directory() -> "Path":
    """``$EXTISM_FAST_CACHE_DIR``, else the ``directory`` of ``$EXTISM_CACHE_CONFIG``'s file, else
    ``$XDG_CACHE_HOME/extism_fast``, else ``~/.cache/extism_fast``."""
    from pathlib import Path

    return Path(_default_directory())


def _default_directory() -> str:
    """default_directory() as a str."""
    if os.environ.get("EXTISM_FAST_CACHE_DIR"):
        return os.environ["EXTISM_FAST_CACHE_DIR"]
    directory = _official_cache_config()[1]
    if directory:
        return os.path.expanduser(directory)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "extism_fast")


def _pure_path(path: str | os.PathLike[str]) -> str:
    """``str(pathlib.Path(path))`` without pathlib: no empty or ``.`` parts, no trailing slash
    (``..`` kept: a link may stand before it); a TypeError for anything else, as Path gives."""
    text = os.fspath(path)
    if not isinstance(text, str):
        raise TypeError(f"argument should be a str object or an os.PathLike object returning str, not {type(text)!r}")
    root = "//" if text[:2] == "//" and text[2:3] != "/" else "/" if text[:1] == "/" else ""
    return root + "/".join(part for part in text.split("/") if part not in ("", ".")) or "."


def cache_from_argument(cache: None | bool | str | os.PathLike[str] | CompileCache) -> CompileCache | None:
    """The cache a CompiledPlugin uses: ``None`` follows ``EXTISM_FAST_CACHE`` (on unless 0/false/
    no/off), ``False`` disables, ``True`` the default directory, a path that directory, a
    CompileCache itself (its directory and cap)."""
    if cache is None:
        if os.environ.get("EXTISM_FAST_CACHE", "1").strip().lower() in ("0", "false", "no", "off"):
            return None
        if not _official_cache_config()[0]:
            return None
        return CompileCache(_default_directory())
    if cache is False:
        return None
    if cache is True:
        return CompileCache(_default_directory())
    if isinstance(cache, CompileCache):
        return cache
    return CompileCache(cache)
