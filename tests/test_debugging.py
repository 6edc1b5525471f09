"""The official runtime's debugging switches, read from the environment as there:
EXTISM_PROFILE, EXTISM_DEBUG, EXTISM_MEMDUMP, EXTISM_COREDUMP and EXTISM_CACHE_CONFIG.

The official Python SDK cannot be pointed at a per-test dump path reliably (its runtime reads
these once per plugin too, but writes dumps only for some errors of its own kind), so these test
ours only, against the behaviour documented by the official runtime's README and plugin.rs."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap

import pytest

import extism_fast as ef
from extism_fast import compile_cache


def _run_child(code: str, **env: str) -> subprocess.CompletedProcess:
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("EXTISM_")}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=120, env={**child_env, **env}, cwd=os.path.dirname(os.path.dirname(__file__)))


PERF_CHILD = """
    import os
    import extism_fast as ef
    plugin = ef.Plugin(open({path!r}, "rb").read())
    plugin.call("out", b"x")
    path = f"/tmp/perf-{{os.getpid()}}.map"
    try:
        print(open(path).read() if os.path.exists(path) else "<no map>")
    finally:
        if os.path.exists(path):
            os.remove(path)
"""


def test_extism_profile_perf_writes_a_perf_map_naming_plugin_functions(wasm_path, tmp_path):
    cache = tmp_path / "cache"
    code = PERF_CHILD.format(path=str(wasm_path("runtime_features")))
    profiled = _run_child(code, EXTISM_PROFILE="perf", EXTISM_FAST_CACHE_DIR=str(cache))
    assert profiled.returncode == 0, profiled.stderr
    assert " input_block" in profiled.stdout  # the plugin's own function, by its name section
    plain = _run_child(code, EXTISM_FAST_CACHE_DIR=str(cache))
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.strip() == "<no map>"
    # A profiling engine never shares compile-cache entries with a plain one (nor kernel accessor
    # entries, in engine/).
    assert len(list(cache.glob("*.cwasm"))) == len(list(cache.glob("engine/*.cwasm"))) == 2
    again = _run_child(code, EXTISM_PROFILE="perf", EXTISM_FAST_CACHE_DIR=str(cache))
    assert " input_block" in again.stdout and len(list(cache.glob("*.cwasm"))) == 2  # loaded, still mapped


def test_extism_profile_invalid_value_is_ignored_with_a_warning(plugin_wasm, monkeypatch, caplog):
    monkeypatch.setenv("EXTISM_PROFILE", "bogus")
    with caplog.at_level(logging.WARNING, logger="extism_fast"):
        with ef.Plugin(plugin_wasm("runtime_features")) as plugin:
            assert plugin.call("out", b"ok") == b"ok"
    assert any("invalid value for EXTISM_PROFILE: 'bogus'" in r.getMessage() for r in caplog.records)


def test_extism_debug_compiles_with_debug_info(plugin_wasm, monkeypatch, tmp_path):
    monkeypatch.setenv("EXTISM_DEBUG", "1")
    compiled = ef.CompiledPlugin(plugin_wasm("runtime_features"), cache=str(tmp_path))
    with ef.Plugin(compiled) as plugin:
        assert plugin.call("out", b"dwarf") == b"dwarf"
    monkeypatch.delenv("EXTISM_DEBUG")
    ef.CompiledPlugin(plugin_wasm("runtime_features"), cache=str(tmp_path))
    assert len(list(tmp_path.glob("*.cwasm"))) == 2  # its own engine, its own cache entry


def test_memdump_and_coredump_after_a_trap(plugin_wasm, monkeypatch, tmp_path):
    import wasmtime

    memdump, coredump = tmp_path / "plugin.mem", tmp_path / "plugin.core"
    monkeypatch.setenv("EXTISM_MEMDUMP", str(memdump))
    monkeypatch.setenv("EXTISM_COREDUMP", str(coredump))
    with ef.Plugin(plugin_wasm("runtime_features")) as plugin:
        assert plugin.call("out", b"fine") == b"fine"
        assert not memdump.exists() and not coredump.exists()  # only failed calls leave dumps
        with pytest.raises(ef.TrapError):
            plugin.call("trap")
    mem = memdump.read_bytes()
    assert len(mem) % 65536 == 0 and b"KERNMARK" in mem  # the kernel memory, as the official runtime
    core = coredump.read_bytes()
    assert core[:8] == b"\x00asm\x01\x00\x00\x00"
    assert b"\x04core\x00\x06extism" in core and b"corestack" in core
    assert b"KERNMARK" in core and b"MAINMARK" in core  # both memories, as data segments
    wasmtime.Module.validate(wasmtime.Engine(), core)


def test_memdump_after_a_plugin_error_but_no_coredump(plugin_wasm, monkeypatch, tmp_path):
    """The official runtime writes the memory dump for any failed call, the core dump for traps."""
    memdump, coredump = tmp_path / "plugin.mem", tmp_path / "plugin.core"
    monkeypatch.setenv("EXTISM_MEMDUMP", str(memdump))
    monkeypatch.setenv("EXTISM_COREDUMP", str(coredump))
    with ef.Plugin(plugin_wasm("kernel")) as plugin:
        with pytest.raises(ef.PluginError):
            plugin.call("error_set_return1")
    assert memdump.exists() and not coredump.exists()


def test_dump_paths_are_read_as_the_environment_is_when_the_plugin_is_made(plugin_wasm, monkeypatch, tmp_path):
    """Plugins read these variables with C getenv: a change through os.environ is seen, a
    non-ASCII path arrives whole, and an empty value means unset."""
    memdump = tmp_path / "dümp €.mem"
    monkeypatch.setenv("EXTISM_MEMDUMP", "")
    unset = ef.Plugin(plugin_wasm("runtime_features"))
    monkeypatch.setenv("EXTISM_MEMDUMP", str(memdump))
    with unset, pytest.raises(ef.TrapError):
        unset.call("trap")
    assert not memdump.exists()
    with ef.Plugin(plugin_wasm("runtime_features")) as plugin, pytest.raises(ef.TrapError):
        plugin.call("trap")
    assert memdump.exists()
    memdump.unlink()
    monkeypatch.delenv("EXTISM_MEMDUMP")
    with ef.Plugin(plugin_wasm("runtime_features")) as plugin, pytest.raises(ef.TrapError):
        plugin.call("trap")
    assert list(tmp_path.iterdir()) == []


def test_unwritable_dump_path_is_logged_not_raised(plugin_wasm, monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("EXTISM_MEMDUMP", str(tmp_path / "missing" / "plugin.mem"))
    with caplog.at_level(logging.ERROR, logger="extism_fast"):
        with ef.Plugin(plugin_wasm("runtime_features")) as plugin:
            with pytest.raises(ef.TrapError):
                plugin.call("trap")
    assert any("unable to write memory dump" in r.getMessage() for r in caplog.records)


@pytest.fixture
def no_cache_env(monkeypatch):
    for name in ("EXTISM_FAST_CACHE", "EXTISM_FAST_CACHE_DIR", "EXTISM_CACHE_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_extism_cache_config_empty_disables_the_cache(no_cache_env):
    no_cache_env.setenv("EXTISM_CACHE_CONFIG", "")
    assert compile_cache.cache_from_argument(None) is None


def test_extism_cache_config_file_maps_enabled_and_directory(no_cache_env, tmp_path):
    config = tmp_path / "cache.toml"
    config.write_text(f'[cache]\ndirectory = "{tmp_path / "dir"}"\ncleanup-interval = "30m"\n')
    no_cache_env.setenv("EXTISM_CACHE_CONFIG", str(config))
    assert compile_cache.default_directory() == tmp_path / "dir"
    no_cache_env.setenv("EXTISM_FAST_CACHE_DIR", str(tmp_path / "ours"))  # ours wins
    assert compile_cache.default_directory() == tmp_path / "ours"
    config.write_text("[cache]\nenabled = false\n")
    assert compile_cache.cache_from_argument(None) is None


@pytest.mark.parametrize("text", ["cache = 1\n", "[cache]\nenabled = 'yes'\n", "not toml ["])
def test_extism_cache_config_bad_file_is_an_error_naming_it(no_cache_env, tmp_path, text):
    config = tmp_path / "cache.toml"
    config.write_text(text)
    no_cache_env.setenv("EXTISM_CACHE_CONFIG", str(config))
    with pytest.raises(ef.Error, match="EXTISM_CACHE_CONFIG"):
        compile_cache.cache_from_argument(None)
    no_cache_env.setenv("EXTISM_CACHE_CONFIG", str(tmp_path / "absent.toml"))
    with pytest.raises(ef.Error, match="absent.toml"):
        compile_cache.cache_from_argument(None)


@pytest.mark.parametrize("data", [b"[cache]\ndirectory = '\xff'\n", b"[cache]\nenabled = 1" + b"0" * 5000 + b"\n"],
                         ids=["not-utf8", "huge-integer"])
def test_extism_cache_config_file_not_utf8_or_with_a_huge_integer_is_an_error(no_cache_env, tmp_path, data):
    """tomllib raises these as a UnicodeDecodeError and int's ValueError, not TOMLDecodeError."""
    config = tmp_path / "cache.toml"
    config.write_bytes(data)
    no_cache_env.setenv("EXTISM_CACHE_CONFIG", str(config))
    with pytest.raises(ef.Error, match=r"EXTISM_CACHE_CONFIG: cannot read the cache configuration .*cache\.toml"):
        compile_cache.cache_from_argument(None)
