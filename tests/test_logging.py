"""Logging (extism_fast/host/logs.py): plugin log calls as records of the ``extism_fast`` logger (or a
plugin's own), the level a plugin sees, the official SDK's ``set_log_file`` / ``set_log_custom``
and its filter syntax, and ``extism_version``."""

from __future__ import annotations

import logging
import re
import struct

import pytest

import extism_fast
import extism_fast as ef
from extism_fast import HostFunctionError, Plugin, host_fn
from extism_fast import logs as extism_logs
from extism_fast.logs import TRACE


@pytest.fixture
def restore_logger():
    logger = logging.getLogger("extism_fast")
    level, handlers, propagate = logger.level, list(logger.handlers), logger.propagate
    installed = extism_logs._installed
    yield logger
    for h in list(logger.handlers):
        if h not in handlers:
            logger.removeHandler(h)
            h.close()
    logger.setLevel(level)
    logger.propagate = propagate
    extism_logs._installed = installed


def test_set_log_custom_buffers_plugin_logs_until_drain(plugin_wasm, restore_logger):
    lines = []
    custom = extism_fast.set_log_custom(lines.append, "info")
    assert isinstance(custom, extism_fast.CustomLogger)
    with Plugin(plugin_wasm("host")) as plugin:
        # The plugin sees the level (get_log_level: 2 = info).
        assert plugin.call("log_all") == struct.pack("<I", 2)
        plugin_id = str(plugin.id)
    assert lines == []
    custom.drain()
    assert [line.split(" ", 1)[1] for line in lines] == [
        f' INFO extism_fast: info msg plugin="{plugin_id}"\n',
        f' WARN extism_fast: warn msg plugin="{plugin_id}"\n',
        f'ERROR extism_fast: error msg plugin="{plugin_id}"\n',
    ]
    assert all(line[:4].isdigit() and line.split(" ", 1)[0].endswith("Z") for line in lines)
    custom.drain()
    assert len(lines) == 3  # drained lines are gone


def test_set_log_custom_levels_and_replacement(plugin_wasm, restore_logger):
    first, second = [], []
    c1 = extism_fast.set_log_custom(first.append, "error")
    with Plugin(plugin_wasm("host")) as plugin:
        assert plugin.call("log_all") == struct.pack("<I", 4)
        c2 = extism_fast.set_log_custom(second.append, "trace")
        assert plugin.call("log_all") == struct.pack("<I", 0)
    c1.drain()
    c2.drain()
    assert [line.split(": ", 1)[1].split(" plugin=")[0] for line in first] == ["error msg"]
    assert [line.split(": ", 1)[1].split(" plugin=")[0] for line in second] == [
        "trace msg", "debug msg", "info msg", "warn msg", "error msg"
    ]
    assert second[0].split(" ")[1] == "TRACE"
    with pytest.raises(ValueError, match="unknown log level 'loud'"):
        extism_fast.set_log_custom(print, "loud")


@pytest.mark.parametrize("spec, level", [
    (None, logging.ERROR), ("", logging.ERROR), ("info", logging.INFO), ("WARN", logging.WARNING),
    ("warning", logging.WARNING), ("off", extism_logs.OFF), ("3", logging.INFO),
    ("extism=debug", logging.DEBUG), ("extism=debug,cranelift=warn", logging.DEBUG),
    ("cranelift=warn, extism::pdk=trace", extism_logs.TRACE), ("warn,extism=trace", extism_logs.TRACE),
    ("extism=info,warn", logging.INFO), ("extism=trace,extism::pdk=error", logging.ERROR),
    ("debug,extism=off", extism_logs.OFF), ("extism", extism_logs.TRACE),
    ("cranelift=warn", extism_logs.OFF), ("wasmtime::runtime=debug,info", logging.INFO),
])
def test_log_filter_syntax(spec, level):
    """The official filter syntax: directives for extism (the most specific wins) or a plain
    level decide; directives for other targets are accepted and ignored."""
    assert extism_logs.parse_log_filter(spec) == level


@pytest.mark.parametrize("spec, bad", [
    ("loud", "'loud'"), ("extism=loud", "'extism=loud'"), ("info,=debug", "'=debug'"),
    ("extism = info", "'extism = info'"), ("cranelift=", "'cranelift='"),
])
def test_log_filter_errors_name_the_directive(spec, bad, restore_logger):
    with pytest.raises(ValueError, match=f"invalid log filter directive {bad}"):
        extism_logs.parse_log_filter(spec)
    with pytest.raises(ValueError, match=f"invalid log filter directive {bad}"):
        extism_fast.set_log_file("stderr", spec)
    with pytest.raises(TypeError, match="log level must be a str"):
        extism_fast.set_log_custom(print, 3)


def test_set_log_file_with_a_filter_string(tmp_path, plugin_wasm, restore_logger):
    path = tmp_path / "extism.log"
    extism_fast.set_log_file(str(path), "extism=debug,cranelift=warn")
    with Plugin(plugin_wasm("host")) as plugin:
        assert plugin.call("log_all") == struct.pack("<I", 1)
    restore_logger.handlers[-1].flush()
    assert [line.split(": ", 1)[1].split(" plugin=")[0] for line in path.read_text().splitlines()] == [
        "debug msg", "info msg", "warn msg", "error msg"
    ]


def test_set_log_file(tmp_path, plugin_wasm, restore_logger):
    path = tmp_path / "extism.log"
    extism_fast.set_log_file(str(path), level="warn")
    with Plugin(plugin_wasm("host")) as plugin:
        assert plugin.call("log_all") == struct.pack("<I", 3)
    restore_logger.handlers[-1].flush()
    text = path.read_text()
    assert [line.split(": ", 1)[1].split(" plugin=")[0] for line in text.splitlines()] == [
        "warn msg", "error msg"
    ]
    # Host-function tracebacks go to the same place.
    @host_fn(name="hello_world")
    def broken(text: str) -> str:
        raise RuntimeError("logged traceback")

    with Plugin(plugin_wasm("kitchen_sink.c"), functions=[broken]) as plugin:
        with pytest.raises(HostFunctionError, match="RuntimeError: logged traceback"):
            plugin.call("call_host", "x")
    restore_logger.handlers[-1].flush()
    text = path.read_text()
    assert "Traceback (most recent call last)" in text and "RuntimeError: logged traceback" in text


def test_set_log_file_stdout(capsys, plugin_wasm, restore_logger):
    extism_fast.set_log_file("stdout", "info")
    with Plugin(plugin_wasm("kitchen_sink.c"), functions=_c_kitchen()) as plugin:
        assert plugin.call("log_levels", "hi") == b"2"
    out = capsys.readouterr().out
    assert [line.split(": ", 1)[1].split(" plugin=")[0] for line in out.splitlines()] == [
        "info: hi", "warn: hi", "error: hi"
    ]


def test_extism_version():
    """The runtime version whose behaviour extism_fast matches (X.Y.Z, as the official SDK
    answers extism-sys's); extism_fast's own version is __version__, from _version.py."""
    from extism_fast import _version

    assert re.fullmatch(r"\d+\.\d+\.\d+", extism_fast.extism_version())
    assert extism_fast.extism_version() == _version.EXTISM_RUNTIME_VERSION
    assert re.fullmatch(r"\d+\.\d+\.\d+", extism_fast.__version__)
    assert extism_fast.__version__ == _version.__version__


def test_log_records_carry_plugin_id(plugin_wasm, caplog):
    caplog.set_level(logging.DEBUG, logger="extism_fast")
    with ef.Plugin(plugin_wasm("host"), functions=[]) as a, ef.Plugin(plugin_wasm("host"), functions=[]) as b:
        a.call("log_input", "from a")
        b.call("log_input", "from b")
    records = [(r.getMessage(), r.plugin_id, r.levelno) for r in caplog.records if r.name == "extism_fast"]
    assert records == [("from a", str(a.id), logging.INFO), ("from b", str(b.id), logging.INFO)]


def test_get_log_level_changes_between_calls(plugin_wasm, caplog):
    with ef.Plugin(plugin_wasm("host"), functions=[]) as plugin:
        levels = []
        for py_level in (logging.ERROR, TRACE, logging.WARNING, logging.INFO, logging.CRITICAL + 10):
            caplog.set_level(py_level, logger="extism_fast")
            levels.append(struct.unpack("<I", plugin.call("get_log_level"))[0])
    assert levels == [4, 0, 3, 2, 0x7FFFFFFF]


def test_per_plugin_logger(plugin_wasm, caplog):
    """Plugin(logger=...): that plugin's log calls and get_log_level use the given logger."""
    mine = logging.getLogger("tests.per_plugin")
    mine.setLevel(logging.INFO)
    mine.propagate = False
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    mine.addHandler(handler)
    try:
        with caplog.at_level(logging.ERROR, logger="extism_fast"):
            with ef.Plugin(plugin_wasm("runtime_features"), logger=mine) as plugin:
                assert plugin.call("level") == bytes([2])  # info
                plugin.call("log_info", "to my logger")
                plugin_id = str(plugin.id)
            with ef.Plugin(plugin_wasm("runtime_features")) as other:
                assert other.call("level") == bytes([4])  # extism_fast at ERROR
                other.call("log_info", "filtered")
        assert [(r.getMessage(), r.plugin_id) for r in records] == [("to my logger", plugin_id)]
        assert not [r for r in caplog.records if r.getMessage() in ("to my logger", "filtered")]
        mine.removeHandler(handler)
        with ef.Plugin(plugin_wasm("runtime_features"), logger=mine) as plugin:
            assert plugin.call("level") == bytes([0xFF])  # no handler: off (i32::MAX's low byte)
    finally:
        mine.removeHandler(handler)
    with pytest.raises(TypeError, match="logger must be a logging.Logger"):
        ef.Plugin(plugin_wasm("runtime_features"), logger="mine")


def _c_kitchen():
    @host_fn()
    def hello_world(text: str) -> str:
        return text

    return [hello_world]
