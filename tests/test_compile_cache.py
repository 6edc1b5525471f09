"""The compile cache: entries are written once and reused (across processes too), switched by
EXTISM_FAST_CACHE, and cannot be poisoned: entries are bound to their module and engine, only
regular files of a bounded size are read, and an untrusted directory is not used.

The official SDK has no cache of its own to compare with (libextism uses wasmtime's), so these
tests run extism_fast only.
"""

from __future__ import annotations

import gc
import hashlib
import inspect
import logging
import os
import shutil
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from conftest import COUNT, vowels

import extism_fast as ef
from extism_fast import _runtime, compile_cache
from extism_fast.manifest import files
from extism_fast.compile_cache import CompileCache, cache_from_argument

OTHER_USER = 65534  # nobody


@pytest.fixture(autouse=True)
def map_every_entry(monkeypatch):
    """Every entry mapped, however small (the test plugins are; the real bound, MAP_MIN_BYTES, has
    its own test), so these tests run the mapped path, the one big plugins take."""
    monkeypatch.setattr(compile_cache, "MAP_MIN_BYTES", 0)


@pytest.fixture
def cache_dir(tmp_path):
    path = tmp_path / "cache"
    path.mkdir(mode=0o700)
    return path


def _record_opens(monkeypatch):
    """What each plugin entry's CompileCache.open_entry returned (None: compiled instead), not the
    kernel accessor's (in engine/)."""
    results = []
    real = CompileCache.open_entry

    def open_entry(self, key):
        found = real(self, key)
        if self._parent is None:
            results.append(found)
        return found

    monkeypatch.setattr(CompileCache, "open_entry", open_entry)
    return results


@pytest.fixture
def loads(monkeypatch):
    """What each plugin entry's load returned (None: compiled instead); clear it after setup."""
    return _record_opens(monkeypatch)


def _seal_of(entry):
    """The header and seal file of the entry whose payload is ``entry`` (a Path)."""
    return entry.with_suffix(".seal")


def _copy_entry(source, target):
    """Copy an entry (payload and seal) over another's, as a misplaced or planted entry would be."""
    shutil.copyfile(source, target)
    shutil.copyfile(_seal_of(source), _seal_of(target))


def _entry(cache_dir, wasm, cache=None, **kwargs):
    """Compile ``wasm`` into ``cache_dir`` (through ``cache`` when given) and return the path of
    the one entry it added."""
    before = set(cache_dir.glob("*.cwasm"))
    ef.CompiledPlugin(wasm, cache=cache_dir if cache is None else cache, **kwargs)
    (added,) = set(cache_dir.glob("*.cwasm")) - before
    return added


def _count(cache_dir, wasm, text="aeiou x"):
    with ef.Plugin(ef.CompiledPlugin(wasm, cache=cache_dir)) as plugin:
        return plugin.call("count_vowels", text)


# ---- an entry is bound to its module and engine ----

@pytest.mark.parametrize("copied, refusal", [("entry", "made for another module"), ("payload", "checksum mismatch")])
def test_an_entry_copied_over_another_modules_entry_is_not_used(cache_dir, plugin_wasm, caplog, loads, copied, refusal):
    """Another module's entry copied over this one's: whole (its seal names the other module), or
    the payload alone (the seal no longer names the file, so the payload is checked whole against
    the header's checksum, which is the other module's)."""
    count_entry = _entry(cache_dir, plugin_wasm(COUNT))
    kernel = plugin_wasm("kernel")
    kernel_entry = _entry(cache_dir, kernel)
    if copied == "entry":
        _copy_entry(count_entry, kernel_entry)
    else:
        shutil.copyfile(count_entry, kernel_entry)
    loads.clear()
    with ef.Plugin(ef.CompiledPlugin(kernel, cache=cache_dir), functions=[]) as plugin:
        assert plugin.call("echo", b"still the kernel plugin") == b"still the kernel plugin"
    assert loads == [None]
    assert refusal in caplog.text
    assert kernel_entry.read_bytes() != count_entry.read_bytes()  # recompiled and stored again


def test_an_entry_copied_over_another_engines_entry_is_not_used(cache_dir, plugin_wasm, caplog, loads):
    wasm = plugin_wasm(COUNT)
    plain = _entry(cache_dir, wasm, interruptible=False)
    interruptible = _entry(cache_dir, wasm, interruptible=True)
    _copy_entry(plain, interruptible)
    loads.clear()
    with ef.Plugin(ef.CompiledPlugin(wasm, cache=cache_dir, interruptible=True)) as plugin:
        assert plugin.call("count_vowels", "aaa") == b'{"count": 3}'
    assert loads == [None]
    assert "made for another engine" in caplog.text


def test_the_header_names_the_module_and_the_engine(tmp_path):
    """The payload file is wasmtime's serialization alone (what wasmtime maps); the header is in the
    seal file: magic, module sha256, engine fingerprint, payload sha256, then the payload's identity."""
    cache = CompileCache(tmp_path)
    key = cache.key(b"module bytes", "engine A")
    cache.store(key, b"payload")
    assert bytes(cache.load(key)) == b"payload"
    assert (tmp_path / f"{key}.cwasm").read_bytes() == b"payload"
    blob = (tmp_path / f"{key}.seal").read_bytes()
    assert blob.startswith(compile_cache._MAGIC)
    header = blob[len(compile_cache._MAGIC):]
    assert header[:32] == key.module == hashlib.sha256(b"module bytes").digest()
    assert header[32:64] == key.engine != cache.key(b"module bytes", "engine B").engine
    assert header[64:96] == hashlib.sha256(b"payload").digest()
    st = os.stat(tmp_path / f"{key}.cwasm")
    assert header[96:] == repr((st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)).encode()



def test_an_entry_is_bound_to_the_wasmtime_library(cache_dir, plugin_wasm, monkeypatch):
    """Another wasmtime library (an upgrade, a reinstall) must not read entries the old one wrote."""
    from extism_fast import _runtime

    wasm = plugin_wasm(COUNT)
    first = _entry(cache_dir, wasm)
    monkeypatch.setattr(_runtime, "_WASMTIME_IDENTITY", _runtime._WASMTIME_IDENTITY + "-other")
    assert _entry(cache_dir, wasm) != first  # compiled again, under another key


# ---- only regular files of a bounded size are read ----

@pytest.mark.parametrize("which", ["payload", "seal"])
def test_a_fifo_entry_is_recompiled_promptly(cache_dir, plugin_wasm, caplog, which):
    wasm = plugin_wasm(COUNT)
    entry = _entry(cache_dir, wasm)
    if which == "seal":
        entry = _seal_of(entry)
    entry.unlink()
    os.mkfifo(entry)
    done = threading.Event()

    def unblock():
        # Should the reader block on the FIFO, open it for writing and close it: the reader sees
        # EOF, so a regression fails this test instead of hanging the suite.
        if not done.wait(10):
            try:
                os.close(os.open(entry, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass

    watchdog = threading.Thread(target=unblock, daemon=True)
    watchdog.start()
    started = time.monotonic()
    try:
        assert _count(cache_dir, wasm) == b'{"count": 5}'
    finally:
        done.set()
    assert time.monotonic() - started < 8
    assert "not a regular file" in caplog.text
    assert stat.S_ISREG(entry.lstat().st_mode)  # replaced by a fresh entry


@pytest.mark.parametrize("which", ["payload", "seal"])
def test_a_symlinked_entry_is_not_followed(cache_dir, tmp_path, plugin_wasm, caplog, loads, which):
    wasm = plugin_wasm(COUNT)
    entry = _entry(cache_dir, wasm)
    if which == "seal":
        entry = _seal_of(entry)
    target = tmp_path / "elsewhere"  # a valid file: loading it would go unnoticed
    entry.rename(target)
    entry.symlink_to(target)
    planted = target.read_bytes()
    loads.clear()
    assert _count(cache_dir, wasm) == b'{"count": 5}'
    assert loads == [None]
    assert "a symbolic link" in caplog.text
    assert not entry.is_symlink() and stat.S_ISREG(entry.lstat().st_mode)
    assert target.read_bytes() == planted  # the target was left alone


def test_an_oversize_entry_is_ignored(cache_dir, plugin_wasm, caplog, loads, monkeypatch):
    wasm = plugin_wasm(COUNT)
    entry = _entry(cache_dir, wasm)
    # An intact entry larger than the bound: only the bound can turn it away.
    monkeypatch.setattr(compile_cache, "_ENTRY_SLACK_BYTES", 0)
    monkeypatch.setattr(compile_cache, "_ENTRY_BYTES_PER_MODULE_BYTE", 1)
    assert entry.stat().st_size > len(wasm)
    loads.clear()
    assert _count(cache_dir, wasm) == b'{"count": 5}'
    assert loads == [None]
    assert "allowed for this module" in caplog.text


def test_the_size_bound_grows_with_the_module():
    cache = CompileCache("unused")
    small, big = cache.key(b"x", "e"), cache.key(b"x" * (10 << 20), "e")
    assert small.max_entry_bytes >= 64 << 20
    assert big.max_entry_bytes - small.max_entry_bytes == 16 * ((10 << 20) - 1)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a file to another user")
@pytest.mark.parametrize("which", ["payload", "seal"])
def test_an_entry_owned_by_another_user_is_not_used(cache_dir, plugin_wasm, caplog, loads, which):
    wasm = plugin_wasm(COUNT)
    entry = _entry(cache_dir, wasm)
    if which == "seal":
        entry = _seal_of(entry)
    os.chown(entry, OTHER_USER, -1)
    loads.clear()
    assert _count(cache_dir, wasm) == b'{"count": 5}'
    assert loads == [None]
    assert f"owned by another user (uid {OTHER_USER})" in caplog.text
    assert entry.stat().st_uid == os.geteuid()


# ---- an untrusted directory is not used ----

def _plant_damaged_entry(cache_dir, wasm):
    """A damaged entry where ``wasm``'s belongs: a cache in use would delete and rewrite it."""
    entry = _entry(cache_dir, wasm)
    entry.write_bytes(b"not an entry")
    return entry


def _assert_not_used(cache_dir, wasm, entry, caplog, reason):
    with caplog.at_level(logging.WARNING, logger="extism_fast"):
        for _ in range(2):
            assert _count(cache_dir, wasm) == b'{"count": 5}'
    warnings = [r.getMessage() for r in caplog.records if "not using the compile cache" in r.getMessage()]
    assert len(warnings) == 1 and reason in warnings[0], warnings  # once per directory
    assert entry.read_bytes() == b"not an entry"  # neither read nor rewritten
    assert list(cache_dir.glob("*.cwasm")) == [entry]


def test_a_cache_directory_writable_by_others_is_not_used(cache_dir, plugin_wasm, caplog):
    wasm = plugin_wasm(COUNT)
    entry = _plant_damaged_entry(cache_dir, wasm)
    cache_dir.chmod(0o777)
    _assert_not_used(cache_dir, wasm, entry, caplog, "writable by group or others (mode 0777)")


def test_a_cache_directory_writable_by_its_group_is_not_used(cache_dir, plugin_wasm, caplog):
    wasm = plugin_wasm(COUNT)
    entry = _plant_damaged_entry(cache_dir, wasm)
    cache_dir.chmod(0o770)
    _assert_not_used(cache_dir, wasm, entry, caplog, "writable by group or others (mode 0770)")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a directory to another user")
def test_a_cache_directory_owned_by_another_user_is_not_used(cache_dir, plugin_wasm, caplog):
    wasm = plugin_wasm(COUNT)
    entry = _plant_damaged_entry(cache_dir, wasm)
    os.chown(cache_dir, OTHER_USER, -1)
    _assert_not_used(cache_dir, wasm, entry, caplog, f"owned by another user (uid {OTHER_USER})")


def test_the_cache_directory_is_created_private(tmp_path, plugin_wasm):
    cache_dir = tmp_path / "new" / "cache"
    assert _count(cache_dir, plugin_wasm(COUNT)) == b'{"count": 5}'
    assert stat.S_IMODE(cache_dir.stat().st_mode) == 0o700
    assert len(list(cache_dir.glob("*.cwasm"))) == 1


def test_a_cache_path_that_is_a_file_is_not_used(tmp_path, plugin_wasm, caplog):
    path = tmp_path / "cache"
    path.write_bytes(b"a file")
    assert _count(path, plugin_wasm(COUNT)) == b'{"count": 5}'
    assert "not using the compile cache" in caplog.text and "not a directory" in caplog.text
    assert path.read_bytes() == b"a file"


def test_cache_entry_is_written_and_reused(tmp_path, plugin_wasm):
    wasm = plugin_wasm(COUNT)
    ef.CompiledPlugin(wasm, cache=tmp_path)
    entries = list(tmp_path.glob("*.cwasm"))
    assert len(entries) == 1
    inode, blob = entries[0].stat().st_ino, entries[0].read_bytes()
    with ef.Plugin(ef.CompiledPlugin(wasm, cache=tmp_path)) as plugin:
        assert plugin.call("count_vowels", "aa") == vowels("aa")
    assert (entries[0].stat().st_ino, entries[0].read_bytes()) == (inode, blob)  # read, not rewritten


def _damage_entry(cache_dir, entry, damage):
    """Damage the entry whose payload is ``entry`` as ``damage`` says; the file damaged and its bytes."""
    seal = _seal_of(entry)
    magic = len(compile_cache._MAGIC)
    if damage in ("flip", "truncate"):  # the payload: its seal no longer names it
        target, blob = entry, bytearray(entry.read_bytes())
        if damage == "flip":
            blob[-100] ^= 0xFF  # inside the machine code
        else:
            del blob[len(blob) // 2 :]
    elif damage == "foreign":  # a well-formed entry written for another module, both files
        other = CompileCache(cache_dir)
        key = other.key(b"other module", "x")
        other.store(key, b"payload")
        shutil.copyfile(cache_dir / f"{key}.seal", seal)
        target, blob = entry, bytearray(b"payload")
    else:  # the header
        target, blob = seal, bytearray(seal.read_bytes())
        if damage == "header module":
            blob[magic + 5] ^= 0xFF
        elif damage == "header engine":
            blob[magic + 32 + 5] ^= 0xFF
        elif damage == "header checksum":  # and the seal, so the payload is checked whole
            blob[magic + 64 + 5] ^= 0xFF
            blob[-3] ^= 0x01
        else:  # "header truncated"
            del blob[magic + 40 :]
    target.write_bytes(bytes(blob))
    return target, bytes(blob)


@pytest.mark.parametrize("damage", ["flip", "truncate", "foreign", "header module", "header engine",
                                    "header checksum", "header truncated"])
def test_damaged_cache_entry_is_recompiled_not_loaded(cache_dir, plugin_wasm, damage, caplog, loads):
    wasm = plugin_wasm(COUNT)
    entry = _entry(cache_dir, wasm)
    target, damaged = _damage_entry(cache_dir, entry, damage)
    loads.clear()
    with ef.Plugin(ef.CompiledPlugin(wasm, cache=cache_dir)) as plugin:
        assert plugin.call("count_vowels", "aei") == vowels("aei")
    assert loads == [None]
    assert "discarding a damaged or foreign compile cache entry" in caplog.text
    caplog.clear()
    ef.CompiledPlugin(wasm, cache=cache_dir)  # rewritten intact: loaded without a complaint
    assert target.read_bytes() != damaged and "compile cache" not in caplog.text
    assert loads[-1] is not None


def test_cache_switches(tmp_path, monkeypatch):
    monkeypatch.setenv("EXTISM_FAST_CACHE", "0")
    assert cache_from_argument(None) is None
    assert cache_from_argument(True) is not None
    monkeypatch.setenv("EXTISM_FAST_CACHE", "1")
    monkeypatch.setenv("EXTISM_FAST_CACHE_DIR", str(tmp_path))
    assert cache_from_argument(None).directory == tmp_path
    assert cache_from_argument(False) is None
    assert cache_from_argument(tmp_path / "x").directory == tmp_path / "x"


@pytest.mark.parametrize("directory", ["", ".", "./", "a", "a/", "a//b/./c/", "./a/../b", "/", "//", "///", "//a/",
                                       "///a", "/a/./", "~/x"])
def test_the_directory_is_spelled_as_pathlib_spells_it(directory):
    """The cache keeps its directory as a str (pathlib is not loaded for it); ``directory``, the repr
    and the messages that name it are what they were with a Path."""
    cache = CompileCache(directory)
    assert cache.directory == Path(directory)
    assert repr(cache) == f"CompileCache({str(Path(directory))!r}, max_bytes={cache.max_bytes})"
    cache.directory = Path(directory) / "sub"
    assert repr(cache).startswith(f"CompileCache({str(Path(directory) / 'sub')!r},")


def test_the_extensions_sha256_is_sha256_and_hashes_the_first_plugins_keys(plugin_wasm):
    """kernel_c/sha256.c gives hashlib's digest at every length around its block boundaries (one
    padding block or two), of bytes and of views; the first plugin hands it to the compile cache,
    which then loads no sha256 module for its keys (tests/test_cold_start.py: a fresh process)."""
    for size in [*range(0, 200), 1000, 2047, 2048, 65535, 65536, 1 << 20]:
        data = os.urandom(size)
        assert _runtime._sha256(data) == _runtime._sha256(memoryview(data)) == hashlib.sha256(data).digest(), size
    assert _runtime._sha256(bytearray(b"abc")) == bytes.fromhex(
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")  # FIPS 180-4's example
    with pytest.raises(TypeError):
        _runtime._sha256("text")
    ef.Plugin(plugin_wasm(COUNT))
    assert files._extension_sha256 is _runtime._sha256


def test_a_bytes_directory_is_refused_as_pathlib_refuses_it():
    with pytest.raises(TypeError, match="bytes"):
        Path(b"dir")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"os.PathLike object returning str, not <class 'bytes'>"):
        CompileCache(b"dir")  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [0, 100, 64 << 10, (64 << 10) + 1, 1 << 20])
def test_small_inputs_are_hashed_without_hashlib(size, monkeypatch):
    """Up to _BUILTIN_SHA256_BYTES by the extension's sha256 (kernel_c/sha256.c, handed over with
    the first plugin) or, before it is, CPython's own (hashlib's OpenSSL costs ~3 ms to load), more
    by hashlib; the same digest each way, of bytes and of a memoryview (an entry's payload). A
    Python built without its own sha256 uses hashlib for everything until the extension's is there."""
    data = os.urandom(size)
    expected = hashlib.sha256(data).digest()
    by_hashlib = []
    real = hashlib.sha256
    monkeypatch.setattr(hashlib, "sha256", lambda data: by_hashlib.append(len(data)) or real(data))
    for extension_sha256 in (_runtime._sha256, None):
        monkeypatch.setattr(files, "_extension_sha256", extension_sha256)
        by_hashlib.clear()
        assert files.sha256_digest(data) == files.sha256_digest(memoryview(data)) == expected
        assert by_hashlib == ([] if size <= files._BUILTIN_SHA256_BYTES else [size, size])
    monkeypatch.setattr(files, "_BUILTIN_SHA256", "_no_such_sha256_module")
    monkeypatch.setattr(files, "_BUILTIN_SHA256_BYTES", limit := files._BUILTIN_SHA256_BYTES)
    assert files.sha256_digest(data) == files.sha256_digest(data) == expected
    assert files._BUILTIN_SHA256_BYTES == (-1 if size <= limit else limit)  # looked for once
    assert by_hashlib[-2:] == [size, size]


def test_cache_disabled_writes_nothing(tmp_path, plugin_wasm, monkeypatch):
    monkeypatch.setenv("EXTISM_FAST_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("EXTISM_FAST_CACHE", "off")
    ef.CompiledPlugin(plugin_wasm(COUNT))
    assert list(tmp_path.iterdir()) == []


def test_second_process_loads_from_the_cache(tmp_path, wasm_path):
    script = textwrap.dedent(f"""
        import extism_fast as ef
        from extism_fast import compile_cache
        loads = []
        real = compile_cache.CompileCache.load
        compile_cache.CompileCache.load = lambda self, key: loads.append(r := real(self, key)) or r
        p = ef.Plugin({str(wasm_path(COUNT))!r})
        assert p.call("count_vowels", "aa") == b'{{"count": 2}}'
        print("hit" if loads and loads[-1] is not None else "miss")  # the plugin's (after the engine's)
    """)
    env = dict(os.environ, EXTISM_FAST_CACHE_DIR=str(tmp_path), EXTISM_FAST_CACHE="1")
    runs = [subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
            for _ in range(2)]
    assert [r.stdout.strip() for r in runs] == ["miss", "hit"], [r.stderr for r in runs]


def test_a_failed_write_leaves_no_temporary_file(tmp_path, wasm_path):
    """An entry that cannot be written whole (here: over the file-size limit, RLIMIT_FSIZE, with
    SIGXFSZ ignored so that write() fails with EFBIG) leaves nothing in the directory; the plugin
    is compiled in memory and works, and a later process with room writes the entry."""
    script = textwrap.dedent(f"""
        import resource, signal
        import extism_fast as ef
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.RLIM_INFINITY))
        with ef.Plugin({str(wasm_path(COUNT))!r}) as p:
            assert p.call("count_vowels", "aa") == b'{{"count": 2}}'
        print("ok")
    """)
    cache = tmp_path / "cache"
    env = dict(os.environ, EXTISM_FAST_CACHE_DIR=str(cache), EXTISM_FAST_CACHE="1", PYTHONDONTWRITEBYTECODE="1")
    run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert run.stdout.strip() == "ok", run.stderr
    # No entry and no temporary file (the kernel accessor's engine/ entry failed too; the module's
    # 32-byte .id record, written when the file is older than 2 s, fits the limit).
    assert [p for p in cache.rglob("*") if p.is_file() and p.suffix != ".id"] == []
    ef.CompiledPlugin(wasm_path(COUNT).read_bytes(), cache=cache)
    assert sorted(entry.suffix for entry in cache.glob("*") if entry.is_file() and entry.suffix != ".id") == [
        ".cwasm", ".seal"]


# ---- a bounded cache: least recently used entries are evicted after a write ----

def _store(cache, name, size=1000, age=None):
    """Store a ``size``-byte payload under the key of module ``name``; give it mtime ``now - age``."""
    key = cache.key(name.encode(), "engine")
    cache.store(key, b"x" * size)
    if age is not None:
        os.utime(cache._path(key), (time.time() - age,) * 2)
    return key


def _names(cache):
    return {p.name for p in cache.directory.glob("*.cwasm")}


def _total(directory):
    """What the entries take: payloads and seals."""
    return sum(p.stat().st_size for suffix in ("cwasm", "seal") for p in directory.glob(f"*.{suffix}"))


#: At least what an entry of a 1000-byte payload takes (payload and seal).
_ENTRY_1000 = 1000 + compile_cache._SEAL_BYTES


def test_eviction_is_least_recently_used_not_oldest_written(cache_dir):
    cache = CompileCache(cache_dir, max_bytes=0)
    keys = [_store(cache, name, age=100 - i) for i, name in enumerate("abc")]  # a written first
    entry = _ENTRY_1000
    assert cache.load(keys[0]) is not None  # a hit makes a the most recently used
    cache.max_bytes = 3 * entry
    d = _store(cache, "d")
    assert _names(cache) == {f"{k}.cwasm" for k in (keys[0], keys[2], d)}  # b, the least recent, went
    _store(cache, "e")
    assert _names(cache) == {f"{k}.cwasm" for k in (keys[0], d)} | {f"{cache.key(b'e', 'engine')}.cwasm"}
    assert _total(cache_dir) <= cache.max_bytes


def test_a_hit_refreshes_the_entrys_recency(cache_dir, plugin_wasm):
    wasm = plugin_wasm(COUNT)
    entry = _entry(cache_dir, wasm)
    os.utime(entry, (1, 1))
    _count(cache_dir, wasm)
    assert time.time() - entry.stat().st_mtime < 60


def test_the_entry_just_written_is_kept_even_over_the_cap(cache_dir):
    cache = CompileCache(cache_dir, max_bytes=0)
    old = _store(cache, "old", age=10)
    cache.max_bytes = 10
    new = _store(cache, "new", size=5000)
    assert _names(cache) == {f"{new}.cwasm"} and old != new


def test_no_cap_keeps_everything(cache_dir):
    cache = CompileCache(cache_dir, max_bytes=0)
    for name in "abcdef":
        _store(cache, name, size=100_000)
    assert len(_names(cache)) == 6


def test_temporary_and_other_files_are_not_evicted(cache_dir):
    cache = CompileCache(cache_dir, max_bytes=1)
    (cache_dir / ".x.cwasm.0123abcd.tmp").write_bytes(b"y" * 5000)  # another process's write
    (cache_dir / "notes.txt").write_bytes(b"y" * 5000)
    _store(cache, "a", age=10)
    _store(cache, "b")
    b = cache.key(b'b', 'engine')
    assert {p.name for p in cache_dir.iterdir()} == {".x.cwasm.0123abcd.tmp", "notes.txt", f"{b}.cwasm",
                                                      f"{b}.seal"}  # a's seal went with a


def test_eviction_counts_seals_and_removes_a_lone_one(cache_dir):
    """The cap covers both files of an entry; a seal whose payload is gone (another process's write
    raced, or a payload deleted by hand) is evicted in its turn too."""
    cache = CompileCache(cache_dir, max_bytes=0)
    keys = [_store(cache, name, age=10 - i) for i, name in enumerate("abc")]
    os.unlink(cache._path(keys[0]))  # a's seal is left alone
    os.utime(cache._seal_path(keys[0]), (time.time() - 20,) * 2)
    cache.max_bytes = 2100  # b's and c's payloads fit, not with the four seals (~190 bytes each)
    d = _store(cache, "d", size=0)
    assert not os.path.exists(cache._seal_path(keys[0]))  # the least recent: gone first
    assert _names(cache) == {f"{k}.cwasm" for k in (keys[2], d)}  # b's seal counted: b went too
    assert _total(cache_dir) <= cache.max_bytes


def test_the_cap_from_the_environment(cache_dir, monkeypatch, plugin_wasm):
    monkeypatch.setenv("EXTISM_FAST_CACHE_MAX_BYTES", "3K")
    assert CompileCache(cache_dir).max_bytes == 3072
    monkeypatch.setenv("EXTISM_FAST_CACHE_MAX_BYTES", "512MiB")
    assert cache_from_argument(cache_dir).max_bytes == 512 << 20
    monkeypatch.setenv("EXTISM_FAST_CACHE_MAX_BYTES", "0")
    assert CompileCache(cache_dir).max_bytes == 0
    monkeypatch.delenv("EXTISM_FAST_CACHE_MAX_BYTES")
    assert CompileCache(cache_dir).max_bytes == compile_cache.DEFAULT_MAX_BYTES == 512 << 20
    # Through a CompiledPlugin: a cap below two entries keeps only the newest.
    monkeypatch.setenv("EXTISM_FAST_CACHE_MAX_BYTES", "1")
    first = _entry(cache_dir, plugin_wasm(COUNT))
    second = _entry(cache_dir, plugin_wasm("kernel"), functions=[])
    assert set(cache_dir.glob("*.cwasm")) == {second} and first != second


def test_the_cap_from_the_api(cache_dir, plugin_wasm):
    cache = CompileCache(cache_dir, max_bytes=1)
    assert cache_from_argument(cache) is cache
    ef.CompiledPlugin(plugin_wasm(COUNT), cache=cache)
    second = _entry(cache_dir, plugin_wasm("kernel"), functions=[])  # cache=cache_dir: default cap
    assert len(list(cache_dir.glob("*.cwasm"))) == 2
    with ef.Plugin(ef.CompiledPlugin(plugin_wasm("kernel"), functions=[], cache=cache), functions=[]) as p:
        assert p.call("echo", b"hi") == b"hi"  # a hit writes nothing, so evicts nothing
    assert len(list(cache_dir.glob("*.cwasm"))) == 2
    third = _entry(cache_dir, plugin_wasm(COUNT), interruptible=False, cache=cache)
    assert set(cache_dir.glob("*.cwasm")) == {third} and second != third


@pytest.mark.parametrize("value", ["lots", "-1", "1.5G", "12 parsecs"])
def test_a_bad_cap_in_the_environment_is_an_error_naming_it(cache_dir, monkeypatch, value, plugin_wasm):
    monkeypatch.setenv("EXTISM_FAST_CACHE_MAX_BYTES", value)
    with pytest.raises(ef.Error, match=r"EXTISM_FAST_CACHE_MAX_BYTES=.* is not a size.*256M"):
        ef.CompiledPlugin(plugin_wasm(COUNT), cache=cache_dir)
    assert list(cache_dir.iterdir()) == []
    monkeypatch.setenv("EXTISM_FAST_CACHE_MAX_BYTES", "64M")
    assert _count(cache_dir, plugin_wasm(COUNT), "aa") == vowels("aa")


@pytest.mark.parametrize("bad, error", [(-1, ValueError), (1.5, TypeError), ("1M", TypeError), (True, TypeError)])
def test_a_bad_cap_in_the_api_is_an_error_naming_it(cache_dir, bad, error):
    with pytest.raises(error, match="max_bytes"):
        CompileCache(cache_dir, max_bytes=bad)


def test_a_file_vanishing_during_eviction_is_tolerated(cache_dir, monkeypatch):
    """Another process evicts the same entries at the same time: each unlink finds its file gone."""
    cache = CompileCache(cache_dir, max_bytes=0)
    for i, name in enumerate("abcd"):
        _store(cache, name, age=10 - i)
    cache.max_bytes = 2 * _ENTRY_1000
    real_unlink = os.unlink

    def raced(path, *args, **kwargs):
        real_unlink(path)  # the other process was first
        return real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", raced)
    new = _store(cache, "e")
    monkeypatch.setattr(os, "unlink", real_unlink)
    d = cache.key(b"d", "engine")
    assert _names(cache) == {f"{d}.cwasm", f"{new}.cwasm"}


def test_an_entry_vanishing_while_listed_is_skipped(cache_dir, monkeypatch):
    cache = CompileCache(cache_dir, max_bytes=0)
    for i, name in enumerate("abc"):
        _store(cache, name, age=10 - i)
    cache.max_bytes = 2 * _ENTRY_1000
    real_scandir = os.scandir

    class Vanishing:
        def __init__(self, entries):
            self.entries = entries

        def __enter__(self):
            (cache_dir / f"{cache.key(b'a', 'engine')}.cwasm").unlink()  # gone between list and stat
            return iter(self.entries)

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(os, "scandir", lambda path: Vanishing(list(real_scandir(path))))
    new = _store(cache, "d")
    monkeypatch.setattr(os, "scandir", real_scandir)
    assert _names(cache) == {f"{cache.key(b'c', 'engine')}.cwasm", f"{new}.cwasm"}


def test_an_eviction_failure_does_not_fail_the_plugin(cache_dir, monkeypatch, plugin_wasm, caplog):
    def broken(path):
        raise PermissionError(13, "Permission denied", str(path))

    with monkeypatch.context() as patch, caplog.at_level(logging.DEBUG, logger="extism_fast"):
        patch.setattr(os, "scandir", broken)
        assert _count(CompileCache(cache_dir, max_bytes=1), plugin_wasm(COUNT), "aa") == vowels("aa")
    assert len(list(cache_dir.glob("*.cwasm"))) == 1
    assert "cannot evict from the compile cache" in caplog.text


def test_processes_sharing_a_small_cap_all_succeed_and_stay_bounded(cache_dir):
    """Two processes fill one directory with a cap of four entries, evicting concurrently."""
    entry = 20_000 + compile_cache._SEAL_BYTES
    script = textwrap.dedent(f"""
        import sys
        from extism_fast.runtime.compile_cache import CompileCache
        cache = CompileCache({str(cache_dir)!r}, max_bytes={4 * entry})
        for i in range(60):
            key = cache.key(f"{{sys.argv[1]}}-{{i}}".encode(), "engine")
            cache.store(key, bytes(20_000))
            cache.load(key)  # a hit, or None when the other process evicted it already
        print("ok")
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, tag], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for tag in "ab"]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert [o[0].strip() for o in outs] == ["ok", "ok"]
    assert 0 < _total(cache_dir) <= 5 * entry


# ---- a module file is found by its identity; the kernel accessor is cached too ----

def _settled(path, age=10):
    """Make ``path`` look last changed ``age`` seconds ago (its mtime; its ctime moves to now, so
    the settling rule is met by waiting for it: FILE_IDENTITY_SETTLE_NS, patched short here)."""
    os.utime(path, (time.time() - age,) * 2)


@pytest.fixture
def settle_fast(monkeypatch):
    from extism_fast.manifest import files

    monkeypatch.setattr(files, "FILE_IDENTITY_SETTLE_NS", 50_000_000)  # 50 ms
    time.sleep(0.06)


def _record(cache_dir):
    (record,) = cache_dir.glob("*.id")
    return record


def test_a_settled_module_file_is_found_by_its_identity_not_hashed(cache_dir, tmp_path, wasm_path, monkeypatch):
    from extism_fast.manifest import files

    monkeypatch.setattr(files, "FILE_IDENTITY_SETTLE_NS", 50_000_000)
    path = tmp_path / "plugin.wasm"
    shutil.copy(wasm_path(COUNT), path)
    time.sleep(0.06)
    _count(cache_dir, str(path))
    record = _record(cache_dir)
    wasm = path.read_bytes()
    (module,) = ef.Manifest.from_dict({"wasm": [{"path": str(path)}]}).load_modules()
    assert module.file_identity[0] == str(path)
    assert record.read_bytes() == hashlib.sha256(wasm).digest() + repr(module.file_identity).encode()
    # The record is what a later load uses: one naming another module's hash gives that key.
    record.write_bytes(hashlib.sha256(b"another module").digest() + repr(module.file_identity).encode())
    key = CompileCache(cache_dir).key(module.data, "engine", module.file_identity)
    assert key.module == hashlib.sha256(b"another module").digest()
    # Rewritten (same size): a new identity, so its own hash again, recorded in place of the old.
    time.sleep(0.06)
    path.write_bytes(wasm)
    time.sleep(0.06)
    assert _count(cache_dir, str(path)) == vowels("aeiou x")
    assert _record(cache_dir).read_bytes()[:32] == hashlib.sha256(wasm).digest()


def test_a_file_changed_recently_is_hashed_not_recorded(cache_dir, tmp_path, wasm_path):
    """Within FILE_IDENTITY_SETTLE_NS of its last change a file could change again without its size
    and times showing it (a clock tick): it gets no identity, so no record."""
    path = tmp_path / "plugin.wasm"
    shutil.copy(wasm_path(COUNT), path)
    (module,) = ef.Manifest.from_dict({"wasm": [{"path": str(path)}]}).load_modules()
    assert module.file_identity is None
    _count(cache_dir, str(path))
    assert list(cache_dir.glob("*.id")) == []
    assert ef.Manifest.from_dict({"wasm": [{"data": b"x"}]}).load_modules()[0].file_identity is None


@pytest.mark.parametrize("damage", [b"short", b"x" * 40, b"x" * 32 + b"(another identity)"])
def test_a_damaged_identity_record_is_rewritten(cache_dir, tmp_path, wasm_path, settle_fast, damage):
    path = tmp_path / "plugin.wasm"
    shutil.copy(wasm_path(COUNT), path)
    _settled(path)
    time.sleep(0.06)
    _count(cache_dir, str(path))
    record = _record(cache_dir)
    record.write_bytes(damage)
    assert _count(cache_dir, str(path)) == vowels("aeiou x")
    assert record.read_bytes()[:32] == hashlib.sha256(path.read_bytes()).digest()


_ACCESSOR_SCRIPT = textwrap.dedent("""
    import extism_fast as ef
    from extism_fast import compile_cache
    loads = []
    real = compile_cache.CompileCache.load
    compile_cache.CompileCache.load = lambda self, key: loads.append((self.directory.name, real(self, key))) or loads[-1][1]
    with ef.Plugin(ef.wat2wasm('(module (func (export "f")))')) as p:
        p.call("f", b"")
    print(["hit" if found is not None else "miss" for directory, found in loads if directory == "engine"])
""")


def test_the_kernel_accessor_module_is_cached_per_engine(tmp_path):
    """A fresh process's engine loads the kernel accessor module from the cache (engine/), so a warm
    start compiles nothing; a damaged entry is compiled over and replaced."""
    env = dict(os.environ, EXTISM_FAST_CACHE_DIR=str(tmp_path), EXTISM_FAST_CACHE="1")

    def run():
        done = subprocess.run([sys.executable, "-c", _ACCESSOR_SCRIPT], env=env, capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert run() == "['miss']"
    (entry,) = (tmp_path / "engine").glob("*.cwasm")
    assert stat.S_IMODE((tmp_path / "engine").stat().st_mode) == 0o700
    assert run() == "['hit']"
    blob = bytearray(entry.read_bytes())
    blob[-100] ^= 0xFF
    entry.write_bytes(bytes(blob))
    assert run() == "['miss']"  # rejected (checksum), compiled, stored again
    assert run() == "['hit']"
    assert list(tmp_path.glob("*.cwasm")) != []  # the plugin's entry sits beside engine/, as before


def test_no_cache_means_no_accessor_entry(tmp_path):
    env = dict(os.environ, EXTISM_FAST_CACHE_DIR=str(tmp_path), EXTISM_FAST_CACHE="0")
    done = subprocess.run([sys.executable, "-c", _ACCESSOR_SCRIPT], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.stdout.strip() == "[]", done.stderr
    assert list(tmp_path.iterdir()) == []


# ---- an entry is read in place from any C-contiguous buffer a load gives ----

def _as_buffer(kind, entry):
    """The entry a CompileCache.load gave, as ``kind`` (a new object, referenced by nothing else)."""
    raw = bytes(entry)
    spread = bytearray(2 * len(raw))
    spread[::2] = raw
    return {"bytes": raw, "bytearray": bytearray(raw), "memoryview": memoryview(raw),
            "non-contiguous": memoryview(bytes(spread))[::2]}[kind]


KINDS = ["bytes", "bytearray", "memoryview"]


class _AsBuffer:
    """A plugin's open entry given as bytes of another kind (as where there is no /proc path)."""

    def __init__(self, entry, read):
        self.entry, self.path, self.read = entry, None, read

    def close(self):
        self.entry.close()


def _load_as(monkeypatch, kind):
    """Make CompileCache.open_entry give its plugin entries (not the engine's) as bytes of ``kind``;
    returns what it gave, as type names."""
    given = []
    real = CompileCache.open_entry

    def open_entry(self, key):
        found = real(self, key)
        if found is None or self._parent is not None:
            return found
        data = _as_buffer(kind, found.read())
        given.append(type(data).__name__)
        return _AsBuffer(found, lambda: data)

    monkeypatch.setattr(CompileCache, "open_entry", open_entry)
    return given


@pytest.mark.parametrize("kind", KINDS)
def test_an_entry_is_read_from_any_contiguous_buffer(cache_dir, plugin_wasm, monkeypatch, kind):
    """The compilation holds the load's buffer (referenced by nothing else) while it reads it."""
    wasm = plugin_wasm(COUNT)
    entry = _entry(cache_dir, wasm)
    inode = entry.stat().st_ino
    given = _load_as(monkeypatch, kind)
    assert _count(cache_dir, wasm) == vowels("aeiou x")
    assert given == [kind] and entry.stat().st_ino == inode  # loaded, not refused and written again


def test_an_entry_buffer_is_released_after_compiling(cache_dir, plugin_wasm, monkeypatch):
    wasm = plugin_wasm(COUNT)
    _entry(cache_dir, wasm)
    kept = []
    real = CompileCache.open_entry

    def open_entry(self, key):
        found = real(self, key)
        kept.append(bytearray(found.read()))
        return _AsBuffer(found, lambda: kept[-1])

    monkeypatch.setattr(CompileCache, "open_entry", open_entry)
    ef.CompiledPlugin(wasm, cache=cache_dir)
    assert kept
    for entry in kept:
        entry.append(0)  # not exported any more: it can be resized


def test_a_non_contiguous_entry_is_refused(cache_dir, plugin_wasm, monkeypatch):
    """As a typed ``const uint8_t[::1]`` refused it (the exporter's BufferError); the cache and the
    process are intact: the next compilation loads the entry."""
    wasm = plugin_wasm(COUNT)
    entry = _entry(cache_dir, wasm)
    _load_as(monkeypatch, "non-contiguous")
    with pytest.raises(BufferError, match="not C-contiguous"):
        ef.CompiledPlugin(wasm, cache=cache_dir)
    monkeypatch.undo()
    assert _count(cache_dir, wasm) == vowels("aeiou x")
    assert list(cache_dir.glob("*.cwasm")) == [entry]


_ENGINE_ENTRY_SCRIPT = inspect.getsource(_as_buffer) + textwrap.dedent('''
    import sys
    import extism_fast as ef
    from extism_fast import compile_cache
    real_load, real_store, stored = compile_cache.CompileCache.load, compile_cache.CompileCache.store, []
    def load(self, key):
        found = real_load(self, key)
        return _as_buffer(sys.argv[1], found) if found is not None and self.directory.name == "engine" else found
    compile_cache.CompileCache.load = load
    compile_cache.CompileCache.store = lambda self, key, payload: stored.append(key) or real_store(self, key, payload)
    wasm = ef.wat2wasm('(module (func (export "f")))')
    try:
        ef.Plugin(wasm).close()
    except Exception as exc:
        print(type(exc).__name__, exc)
        compile_cache.CompileCache.load = real_load
        ef.Plugin(wasm).close()
    print("stored", len(stored))
''')


def test_the_accessor_entry_is_read_from_any_contiguous_buffer(tmp_path):
    """The engine's kernel accessor entry, given as each kind of buffer by a fresh process's load:
    a contiguous one is loaded (not compiled and stored again); a non-contiguous one is refused with
    the exporter's BufferError and the process goes on (its next Plugin loads the entry as it is)."""
    env = dict(os.environ, EXTISM_FAST_CACHE_DIR=str(tmp_path), EXTISM_FAST_CACHE="1")
    warm = subprocess.run([sys.executable, "-c", _ENGINE_ENTRY_SCRIPT, "bytes"], env=env, capture_output=True,
                          text=True, timeout=60)
    assert warm.stdout.strip() == "stored 2", warm.stderr  # the accessor's entry and the plugin's
    runs = {kind: subprocess.Popen([sys.executable, "-c", _ENGINE_ENTRY_SCRIPT, kind], env=env, text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for kind in [*KINDS, "non-contiguous"]}
    for kind, run in runs.items():
        out, err = run.communicate(timeout=60)
        expected = "stored 0" if kind in KINDS else (
            "BufferError memoryview: underlying buffer is not C-contiguous\nstored 0")
        assert (run.returncode, out.strip()) == (0, expected), (kind, err)


# ---- a sealed entry is not hashed again ----

def _hashed_sizes(monkeypatch):
    """The sizes of what compile_cache hashes from now on."""
    sizes = []
    real = compile_cache.sha256_digest
    monkeypatch.setattr(compile_cache, "sha256_digest", lambda data: sizes.append(len(data)) or real(data))
    return sizes


def test_a_sealed_entry_is_loaded_without_hashing_its_payload(cache_dir, monkeypatch):
    """The entry a process wrote is sealed (its file identity, in <key>.seal): a later load checks its
    header, not its payload's checksum (megabytes of sha256 at every process's first load)."""
    cache = CompileCache(cache_dir, max_bytes=0)
    key = cache.key(b"module", "engine")
    payload = bytes(range(256)) * 4096  # 1 MiB
    cache.store(key, payload)
    assert (cache_dir / f"{key}.seal").exists()
    sizes = _hashed_sizes(monkeypatch)
    assert bytes(cache.load(key)) == payload
    assert max(sizes, default=0) < len(payload)  # the payload was not hashed


def test_an_entry_changed_after_its_seal_is_checked_whole(cache_dir, monkeypatch):
    """Any write to an entry changes its ctime, so the seal no longer names it: the whole check runs,
    finds the damage, and the entry is discarded (with its seal)."""
    cache = CompileCache(cache_dir, max_bytes=0)
    key = cache.key(b"module", "engine")
    cache.store(key, b"p" * 100_000)
    entry = Path(cache._path(key))
    blob = bytearray(entry.read_bytes())
    blob[-10] ^= 0xFF
    with open(entry, "r+b") as f:  # in place: same inode, same size
        f.write(bytes(blob))
    sizes = _hashed_sizes(monkeypatch)
    assert cache.load(key) is None
    assert 100_000 in sizes
    assert not entry.exists() and not (cache_dir / f"{key}.seal").exists()


def test_an_unsealed_entry_is_checked_whole_then_sealed(cache_dir, monkeypatch):
    cache = CompileCache(cache_dir, max_bytes=0)
    key = cache.key(b"module", "engine")
    cache.store(key, b"p" * 100_000)
    seal = cache_dir / f"{key}.seal"
    seal.write_bytes(seal.read_bytes()[: compile_cache._HEADER] + b"(1, 2, 3)")  # a damaged or foreign seal
    sizes = _hashed_sizes(monkeypatch)
    assert bytes(cache.load(key)) == b"p" * 100_000
    assert 100_000 in sizes
    sizes.clear()
    assert bytes(cache.load(key)) == b"p" * 100_000  # sealed again by the whole check
    assert 100_000 not in sizes


def test_a_recent_hit_does_not_touch_its_entry(cache_dir):
    """Recency is refreshed at most once per _TOUCH_INTERVAL_NS, so the seal stays valid between uses."""
    cache = CompileCache(cache_dir, max_bytes=0)
    key = cache.key(b"module", "engine")
    cache.store(key, b"p" * 1000)
    before = os.stat(cache._path(key))
    time.sleep(0.01)
    assert cache.load(key) is not None
    after = os.stat(cache._path(key))
    assert (after.st_mtime_ns, after.st_ctime_ns) == (before.st_mtime_ns, before.st_ctime_ns)


def test_threads_making_the_first_engine_at_once_share_it(tmp_path, wasm_path):
    """Reading the accessor's cache entry lets other threads in: they must use the engine the
    first one made, not make the slot's engine again under plugins already compiled for it."""
    script = textwrap.dedent(f"""
        import threading
        import extism_fast as ef
        wasm = open({str(wasm_path(COUNT))!r}, "rb").read()
        barrier, outputs = threading.Barrier(8), []
        def work(i):
            barrier.wait()
            with ef.Plugin(ef.CompiledPlugin(wasm)) as p:
                outputs.append(p.call("count_vowels", "a" * i))
        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for t in threads: t.start()
        for t in threads: t.join()
        assert sorted(outputs) == sorted(b'{{"count": %d}}' % i for i in range(8)), outputs
        print("ok")
    """)
    env = dict(os.environ, EXTISM_FAST_CACHE_DIR=str(tmp_path), EXTISM_FAST_CACHE="1")
    for _ in range(2):  # the accessor compiled, then loaded from its entry
        run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
        assert (run.returncode, run.stdout.strip()) == (0, "ok"), run.stderr
    assert len(list((tmp_path / "engine").glob("*.cwasm"))) == 1


# ---- a warm load maps the entry's file: nothing read, nothing copied ----

def _descriptors_of(path):
    """How many of this process's descriptors are open on the file ``path``."""
    found = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            found += os.readlink(f"/proc/self/fd/{fd}") == str(path)
        except OSError:
            continue
    return found


@pytest.fixture
def reads(monkeypatch):
    """The byte counts compile_cache reads from files (os.read and os.pread), from now on."""
    counts = []
    for name in ("read", "pread"):
        real = getattr(os, name)
        monkeypatch.setattr(compile_cache.os, name,
                            lambda fd, n, *rest, real=real: counts.append(len(r := real(fd, n, *rest))) or r)
    return counts


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_a_warm_load_hands_wasmtime_the_checked_file_unread(cache_dir, plugin_wasm, monkeypatch, reads):
    """The sealed payload goes to wasmtime as /proc/self/fd/N of the descriptor that was checked
    (wasmtime maps it): compile_cache reads nothing of it, and closes its descriptor after; wasmtime
    keeps one of its own while the module lives."""
    wasm = plugin_wasm(COUNT)
    entry = _entry(cache_dir, wasm)
    inode = entry.stat().st_ino
    opened = []
    real = CompileCache.open_entry

    def open_entry(self, key):
        found = real(self, key)
        opened.append((found, found.path, os.path.samefile(found.path, entry)))
        return found

    monkeypatch.setattr(CompileCache, "open_entry", open_entry)
    reads.clear()
    compiled = ef.CompiledPlugin(wasm, cache=cache_dir)
    ((found, path, same),) = opened
    assert path.startswith("/proc/self/fd/") and same
    assert sum(reads) < entry.stat().st_size  # the seal and the module's record only
    assert max(reads) < compile_cache._SEAL_BYTES
    assert entry.stat().st_ino == inode  # loaded, not refused and written again
    assert found.fileno() == -1 and found.path is None  # closed
    assert _descriptors_of(entry) == 1  # wasmtime's (a pooled instance's slot keeps it too, for reuse)
    del compiled
    gc.collect()
    assert _descriptors_of(entry) == 0
    assert _count(cache_dir, wasm) == vowels("aeiou x")


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_only_an_entry_of_map_min_bytes_or_more_is_mapped(cache_dir, plugin_wasm, monkeypatch, reads, loads):
    """wasmtime keeps a descriptor per mapped module: a payload below MAP_MIN_BYTES is read and
    loaded from memory (no descriptor kept), one of that size or more is mapped."""
    wasm = plugin_wasm(COUNT)
    entry = _entry(cache_dir, wasm)
    size = entry.stat().st_size
    for bound, mapped in ((size + 1, False), (size, True)):
        monkeypatch.setattr(compile_cache, "MAP_MIN_BYTES", bound)
        loads.clear()
        reads.clear()
        compiled = ef.CompiledPlugin(wasm, cache=cache_dir)
        assert len(loads) == 1 and loads[0] is not None
        assert (size in reads) is not mapped
        assert _descriptors_of(entry) == mapped
        del compiled
        gc.collect()


@pytest.mark.parametrize("fd_path", ["missing", "another file"])
def test_without_a_usable_fd_path_the_entry_is_read_and_loaded_from_memory(cache_dir, tmp_path, plugin_wasm,
                                                                           monkeypatch, reads, loads, fd_path):
    """No /proc (here: the fd path missing, or naming another file than the descriptor's): the
    sealed payload is read from the checked descriptor and deserialized from memory, not recompiled."""
    wasm = plugin_wasm(COUNT)
    entry = _entry(cache_dir, wasm)
    inode, size = entry.stat().st_ino, entry.stat().st_size
    elsewhere = tmp_path / "elsewhere"
    shutil.copyfile(entry, elsewhere)  # a valid payload: taking it would go unnoticed
    monkeypatch.setattr(compile_cache, "_FD_PATH", str(tmp_path / "none" / "{}") if fd_path == "missing" else
                        str(elsewhere) + "{}"[:0])
    stored = []
    monkeypatch.setattr(CompileCache, "store", lambda self, key, payload: stored.append(key))
    loads.clear()
    reads.clear()
    assert _count(cache_dir, wasm) == vowels("aeiou x")
    assert len(loads) == 1 and loads[0] is not None and loads[0].path is None
    assert size in reads  # read whole, once
    assert stored == [] and entry.stat().st_ino == inode
    assert _descriptors_of(entry) == 0


def test_an_entry_of_the_previous_format_is_a_quiet_miss(cache_dir, plugin_wasm, caplog, loads):
    """A v2 entry (header inside the .cwasm, a seal of the identity alone) is compiled and stored
    over, without a warning: an upgrade is not damage."""
    wasm = plugin_wasm(COUNT)
    entry = _entry(cache_dir, wasm)
    payload = entry.read_bytes()
    v2 = b"extism_fast compiled module v2\n" + bytes(96) + payload
    entry.write_bytes(v2)
    st = entry.stat()
    _seal_of(entry).write_bytes(repr((st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)).encode())
    loads.clear()
    with caplog.at_level(logging.DEBUG, logger="extism_fast"):
        assert _count(cache_dir, wasm) == vowels("aeiou x")
    assert loads == [None]
    assert "compile cache" not in caplog.text
    assert entry.read_bytes() == payload and _seal_of(entry).read_bytes().startswith(compile_cache._MAGIC)


def test_a_payload_without_its_seal_is_a_quiet_miss(cache_dir, plugin_wasm, caplog, loads):
    """A payload whose seal is not (yet) there, as while another process writes the entry: not
    loaded (nothing binds it to the module), compiled and stored again."""
    wasm = plugin_wasm(COUNT)
    entry = _entry(cache_dir, wasm)
    _seal_of(entry).unlink()
    loads.clear()
    assert _count(cache_dir, wasm) == vowels("aeiou x")
    assert loads == [None] and "compile cache" not in caplog.text
    assert _seal_of(entry).exists()
    assert _count(cache_dir, wasm) == vowels("aeiou x")
    assert loads[-1] is not None


def test_processes_writing_one_entry_at_once_never_load_a_mixed_one(cache_dir):
    """Two processes store different payloads under one key at once (two compilations of a module
    need not be byte-identical) and load it after each store: a load gives one of the two payloads
    whole, or nothing; never one payload under the other's header."""
    script = textwrap.dedent(f"""
        import hashlib, sys
        from extism_fast.runtime.compile_cache import CompileCache, _HEADER
        headers = []  # the header each load checked the payload against
        real_header = CompileCache._header
        CompileCache._header = lambda self, key: headers.append(h := real_header(self, key)) or h
        cache = CompileCache({str(cache_dir)!r}, max_bytes=0)
        key = cache.key(b"one module", "engine")
        mine = sys.argv[1].encode() * 50_000
        seen = set()
        for i in range(300):
            cache.store(key, mine)
            found = cache.load(key)
            if found is not None:
                assert found in (b"a" * 50_000, b"b" * 50_000), found[:20]
                assert hashlib.sha256(found).digest() == headers[-1][_HEADER - 32 : _HEADER]
                seen.add(found[:1])
        print("ok", len(seen))
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, tag], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for tag in "ab"]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert all(o[0].startswith("ok") for o in outs), outs
    cache = CompileCache(cache_dir, max_bytes=0)
    assert cache.load(cache.key(b"one module", "engine")) in (b"a" * 50_000, b"b" * 50_000, None)


def test_a_store_seals_only_the_payload_it_wrote(cache_dir, monkeypatch):
    """Between writing its payload and sealing it, a store sees the file at the path: another
    process's, written over it since, can carry the same inode number (a freed inode given back,
    stamped in the same coarse clock tick). Each written file gets a unique mtime
    (compile_cache_store.unique_mtime_ns), so a store never seals a payload it did not write: here
    the payload is rewritten in place (same inode) before the seal, which is then not written."""
    from extism_fast.runtime import compile_cache_store

    cache = CompileCache(cache_dir, max_bytes=0)
    key = cache.key(b"one module", "engine")
    real_write = compile_cache_store.write

    def write(path, blob, *rest):
        written = real_write(path, blob, *rest)
        if path.endswith(".cwasm"):
            with open(path, "r+b") as f:  # another payload under the same inode, stamped now
                f.write(b"b" * len(blob))
        return written

    monkeypatch.setattr(compile_cache_store, "write", write)
    cache.store(key, b"a" * 50_000)
    monkeypatch.setattr(compile_cache_store, "write", real_write)
    assert not Path(cache._seal_path(key)).exists()  # not sealed: nothing binds it to the module
    assert cache.load(key) is None  # a quiet miss (compiled and stored again in life)
    t0 = time.time_ns()
    stamps = {compile_cache_store.unique_mtime_ns() for _ in range(100)}
    assert len(stamps) > 90 and all(t0 - 1_000_000 <= t <= time.time_ns() + 1_000_000 for t in stamps)


def test_an_entry_wasmtime_cannot_map_is_read_from_its_descriptor(cache_dir, plugin_wasm, monkeypatch, loads):
    """wasmtime cannot open the path (here: it names nothing; in life, no descriptor left for the one
    wasmtime keeps per mapped module): the checked descriptor is read and the module loaded from
    memory, not refused, discarded and recompiled."""
    wasm = plugin_wasm(COUNT)
    entry = _entry(cache_dir, wasm)
    inode = entry.stat().st_ino
    loads.clear()
    real = CompileCache.open_entry

    def open_entry(self, key):
        found = real(self, key)
        found.path = str(cache_dir / "no such file")
        return found

    monkeypatch.setattr(CompileCache, "open_entry", open_entry)
    stored = []
    monkeypatch.setattr(CompileCache, "store", lambda self, key, payload: stored.append(key))
    monkeypatch.setattr(CompileCache, "discard", lambda self, key: stored.append(("discard", key)))
    assert _count(cache_dir, wasm) == vowels("aeiou x")
    assert len(loads) == 1 and loads[0] is not None
    assert stored == [] and entry.stat().st_ino == inode and _descriptors_of(entry) == 0


def test_an_entry_wasmtime_opens_and_refuses_is_not_read_again(cache_dir, tmp_path, plugin_wasm, monkeypatch,
                                                                 loads, caplog):
    """The fallback read is for a path that does not open, not for a file wasmtime opened and refused:
    that refusal stands (here the path names a file that is no module; the checked descriptor, an
    intact entry, is not read instead), the entry is discarded and the module compiled."""
    wasm = plugin_wasm(COUNT)
    entry = _entry(cache_dir, wasm)
    inode = entry.stat().st_ino
    refused = tmp_path / "refused.cwasm"
    refused.write_bytes(b"not a serialized module")
    real = CompileCache.open_entry

    def open_entry(self, key):
        found = real(self, key)
        if found is not None:
            found.path = str(refused)
        return found

    monkeypatch.setattr(CompileCache, "open_entry", open_entry)
    loads.clear()
    assert _count(cache_dir, wasm) == vowels("aeiou x")
    assert loads and all(found is not None for found in loads)
    assert "rejected by wasmtime" in caplog.text
    assert entry.stat().st_ino != inode  # compiled and stored again
