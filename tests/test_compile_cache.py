"""The compile cache: entries are written once and reused (across processes too), switched by
EXTISM_FAST_CACHE, and cannot be poisoned: entries are bound to their module and engine, only
regular files of a bounded size are read, and an untrusted directory is not used.

The official SDK has no cache of its own to compare with (libextism uses wasmtime's), so these
tests run extism_fast only.
"""

from __future__ import annotations

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
from extism_fast.compile_cache import CompileCache, cache_from_argument

OTHER_USER = 65534  # nobody


@pytest.fixture
def cache_dir(tmp_path):
    path = tmp_path / "cache"
    path.mkdir(mode=0o700)
    return path


@pytest.fixture
def loads(monkeypatch):
    """What each CompileCache.load returned (None: compiled instead); clear it after setup."""
    results = []
    real = CompileCache.load
    monkeypatch.setattr(CompileCache, "load", lambda self, key: results.append(r := real(self, key)) or r)
    return results


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

def test_an_entry_copied_over_another_modules_entry_is_not_used(cache_dir, plugin_wasm, caplog, loads):
    count_entry = _entry(cache_dir, plugin_wasm(COUNT))
    kernel = plugin_wasm("kernel")
    kernel_entry = _entry(cache_dir, kernel)
    shutil.copyfile(count_entry, kernel_entry)
    loads.clear()
    with ef.Plugin(ef.CompiledPlugin(kernel, cache=cache_dir), functions=[]) as plugin:
        assert plugin.call("echo", b"still the kernel plugin") == b"still the kernel plugin"
    assert loads == [None]
    assert "made for another module" in caplog.text
    assert kernel_entry.read_bytes() != count_entry.read_bytes()  # recompiled and stored again


def test_an_entry_copied_over_another_engines_entry_is_not_used(cache_dir, plugin_wasm, caplog, loads):
    wasm = plugin_wasm(COUNT)
    plain = _entry(cache_dir, wasm, interruptible=False)
    interruptible = _entry(cache_dir, wasm, interruptible=True)
    shutil.copyfile(plain, interruptible)
    loads.clear()
    with ef.Plugin(ef.CompiledPlugin(wasm, cache=cache_dir, interruptible=True)) as plugin:
        assert plugin.call("count_vowels", "aaa") == b'{"count": 3}'
    assert loads == [None]
    assert "made for another engine" in caplog.text


def test_the_header_names_the_module_and_the_engine(tmp_path):
    cache = CompileCache(tmp_path)
    key = cache.key(b"module bytes", "engine A")
    cache.store(key, b"payload")
    assert bytes(cache.load(key)) == b"payload"
    blob = (tmp_path / f"{key}.cwasm").read_bytes()
    assert blob.startswith(compile_cache._MAGIC)
    header = blob[len(compile_cache._MAGIC):]
    assert header[:32] == key.module == hashlib.sha256(b"module bytes").digest()
    assert header[32:64] == key.engine != cache.key(b"module bytes", "engine B").engine



def test_an_entry_is_bound_to_the_wasmtime_library(cache_dir, plugin_wasm, monkeypatch):
    """Another wasmtime library (an upgrade, a reinstall) must not read entries the old one wrote."""
    from extism_fast import _runtime

    wasm = plugin_wasm(COUNT)
    first = _entry(cache_dir, wasm)
    monkeypatch.setattr(_runtime, "_WASMTIME_IDENTITY", _runtime._WASMTIME_IDENTITY + "-other")
    assert _entry(cache_dir, wasm) != first  # compiled again, under another key


# ---- only regular files of a bounded size are read ----

def test_a_fifo_entry_is_recompiled_promptly(cache_dir, plugin_wasm, caplog):
    wasm = plugin_wasm(COUNT)
    entry = _entry(cache_dir, wasm)
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


def test_a_symlinked_entry_is_not_followed(cache_dir, tmp_path, plugin_wasm, caplog, loads):
    wasm = plugin_wasm(COUNT)
    entry = _entry(cache_dir, wasm)
    target = tmp_path / "elsewhere.cwasm"  # a valid entry: loading it would go unnoticed
    entry.rename(target)
    entry.symlink_to(target)
    loads.clear()
    assert _count(cache_dir, wasm) == b'{"count": 5}'
    assert loads == [None]
    assert "a symbolic link" in caplog.text
    assert not entry.is_symlink() and stat.S_ISREG(entry.lstat().st_mode)
    assert target.read_bytes() == entry.read_bytes()  # the target was left alone


def test_an_oversize_entry_is_ignored(cache_dir, plugin_wasm, caplog, loads, monkeypatch):
    wasm = plugin_wasm(COUNT)
    entry = _entry(cache_dir, wasm)
    # An intact entry larger than the bound: only the bound can turn it away.
    monkeypatch.setattr(compile_cache, "_ENTRY_SLACK_BYTES", 0)
    monkeypatch.setattr(compile_cache, "_ENTRY_BYTES_PER_MODULE_BYTE", 1)
    assert entry.stat().st_size > compile_cache._HEADER + len(wasm)
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
def test_an_entry_owned_by_another_user_is_not_used(cache_dir, plugin_wasm, caplog, loads):
    wasm = plugin_wasm(COUNT)
    entry = _entry(cache_dir, wasm)
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


@pytest.mark.parametrize("damage", ["flip", "truncate", "foreign"])
def test_damaged_cache_entry_is_recompiled_not_loaded(tmp_path, plugin_wasm, damage, caplog):
    wasm = plugin_wasm(COUNT)
    ef.CompiledPlugin(wasm, cache=tmp_path)
    (entry,) = tmp_path.glob("*.cwasm")
    blob = bytearray(entry.read_bytes())
    if damage == "flip":
        blob[-100] ^= 0xFF  # inside the machine code
    elif damage == "truncate":
        del blob[len(blob) // 2 :]
    else:  # a well-formed entry written for another module
        other = CompileCache(tmp_path)
        blob = bytearray(entry.read_bytes())
        key = other.key(b"other module", "x")
        other.store(key, b"payload")
        blob = bytearray((tmp_path / f"{key}.cwasm").read_bytes())
    entry.write_bytes(bytes(blob))
    with ef.Plugin(ef.CompiledPlugin(wasm, cache=tmp_path)) as plugin:
        assert plugin.call("count_vowels", "aei") == vowels("aei")
    assert "discarding a damaged or foreign compile cache entry" in caplog.text
    caplog.clear()
    ef.CompiledPlugin(wasm, cache=tmp_path)  # rewritten intact: loaded without a complaint
    assert entry.read_bytes() != bytes(blob) and "compile cache" not in caplog.text


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
    assert compile_cache._extension_sha256 is _runtime._sha256


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
        monkeypatch.setattr(compile_cache, "_extension_sha256", extension_sha256)
        by_hashlib.clear()
        assert compile_cache._sha256(data) == compile_cache._sha256(memoryview(data)) == expected
        assert by_hashlib == ([] if size <= compile_cache._BUILTIN_SHA256_BYTES else [size, size])
    monkeypatch.setattr(compile_cache, "_BUILTIN_SHA256", "_no_such_sha256_module")
    monkeypatch.setattr(compile_cache, "_BUILTIN_SHA256_BYTES", limit := compile_cache._BUILTIN_SHA256_BYTES)
    assert compile_cache._sha256(data) == compile_cache._sha256(data) == expected
    assert compile_cache._BUILTIN_SHA256_BYTES == (-1 if size <= limit else limit)  # looked for once
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
    return sum(p.stat().st_size for p in directory.glob("*.cwasm"))


def test_eviction_is_least_recently_used_not_oldest_written(cache_dir):
    cache = CompileCache(cache_dir, max_bytes=0)
    keys = [_store(cache, name, age=100 - i) for i, name in enumerate("abc")]  # a written first
    entry = compile_cache._HEADER + 1000
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
    cache.max_bytes = 2 * (compile_cache._HEADER + 1000)
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
    cache.max_bytes = 2 * (compile_cache._HEADER + 1000)
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
    entry = compile_cache._HEADER + 20_000
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


def _load_as(monkeypatch, kind):
    """Make CompileCache.load give its plugin entries (not the engine's) as ``kind``; returns what it
    gave, as type names."""
    given = []
    real = CompileCache.load

    def load(self, key):
        found = real(self, key)
        if found is None or self.directory.name == "engine":
            return found
        found = _as_buffer(kind, found)
        given.append(type(found).__name__)
        return found

    monkeypatch.setattr(CompileCache, "load", load)
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
    real = CompileCache.load
    monkeypatch.setattr(CompileCache, "load", lambda self, key: kept.append(bytearray(real(self, key))) or kept[-1])
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
    real = compile_cache._sha256
    monkeypatch.setattr(compile_cache, "_sha256", lambda data: sizes.append(len(data)) or real(data))
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
    (cache_dir / f"{key}.seal").write_bytes(b"(1, 2, 3)")  # a damaged or foreign seal
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
