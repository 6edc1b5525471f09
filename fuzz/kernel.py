"""Fuzz target ``kernel``: the ``extism:host/env`` ABI, driven by ``fuzz_kernel.wat``.

Each input is a program for that plugin (its header comment gives the encoding): a sequence of
kernel calls with offsets and lengths taken from the input. The program runs on a default and a
strict plugin, both kept across inputs. For each of them:

* a previous call's output is kept as a memoryview of a ``parse=None`` buffer;
* the ``fuzz`` call must return or raise :class:`extism_fast.Error` (anything else is a crash, and
  so is the host process dying);
* the kept bytes must be unchanged afterwards;
* the plugin must serve the next call (``echo``) correctly.

The kernel region's growth takes from the ``memory.max_pages`` budget (16 pages) so that large
``alloc`` lengths fail fast (a ``MemoryLimitError``) instead of committing gigabytes; limits, vars
(``max_var_bytes`` 4096) and config are reachable from the program.
"""

from __future__ import annotations

import logging
import pathlib
import struct

import extism_fast

PLUGIN_WAT = pathlib.Path(__file__).with_name("fuzz_kernel.wat")
CONFIG = {"k": "v", "key": "a longer config value", "big": "x" * 300}

_plugins: list[extism_fast.Plugin] = []


def make_plugin(strict: bool) -> extism_fast.Plugin:
    """A plugin of fuzz_kernel.wat with the config, the var cap and the page cap above."""
    manifest = extism_fast.Manifest(
        [extism_fast.WasmFile(str(PLUGIN_WAT))],
        memory=extism_fast.MemoryOptions(max_pages=16, max_var_bytes=4096),
        config=CONFIG,
    )
    return extism_fast.Plugin(manifest, strict=strict)


def _setup() -> list[extism_fast.Plugin]:
    if not _plugins:
        # Log calls reach Python's logging (a record per call) without printing anything.
        logger = logging.getLogger("extism_fast")
        logger.addHandler(logging.NullHandler())
        logger.propagate = False
        logger.setLevel(1)
        _plugins.extend([make_plugin(False), make_plugin(True)])
    return _plugins


def _failed_function(message: str) -> str:
    """The ABI function a failure message names (``extism:host/env NAME: ...``), else ``other``."""
    _, found, rest = message.partition("extism:host/env ")
    return rest.split(":", 1)[0] if found else "other"


def _feedback(outcome: str) -> None:
    """Coverage for atheris, which sees only Python code: one branch per kind of outcome, so that
    inputs reaching a new one are kept in the corpus (the kernel itself is not instrumented)."""
    # One line per outcome on purpose: a lookup table would be a single branch.
    if outcome == "ok": return  # noqa: E701
    if outcome == "load_u8": return  # noqa: E701
    if outcome == "load_u64": return  # noqa: E701
    if outcome == "store_u8": return  # noqa: E701
    if outcome == "store_u64": return  # noqa: E701
    if outcome == "input_load_u8": return  # noqa: E701
    if outcome == "input_load_u64": return  # noqa: E701
    if outcome == "input_set": return  # noqa: E701
    if outcome == "output_set": return  # noqa: E701
    if outcome == "error_set": return  # noqa: E701
    if outcome == "config_get": return  # noqa: E701
    if outcome == "var_get": return  # noqa: E701
    if outcome == "var_set": return  # noqa: E701
    if outcome == "log": return  # noqa: E701
    if outcome == "alloc": return  # noqa: E701


def run_one(plugin: extism_fast.Plugin, data: bytes) -> None:
    """Run program ``data`` on ``plugin`` and check the host's promises (see the module docs)."""
    keep_input = b"kept:" + data[:24]
    kept = memoryview(plugin.call("echo", keep_input, parse=None))
    try:
        try:
            plugin.call("fuzz", data)
            _feedback("ok")
        except extism_fast.Error as exc:
            _feedback(_failed_function(str(exc)))
        if bytes(kept) != keep_input:
            raise AssertionError(f"a kept output changed during the call: {keep_input!r} -> {bytes(kept)!r}")
    finally:
        kept.release()
    after = plugin.call("echo", b"next call")
    if after != b"next call":
        raise AssertionError(f"the plugin does not serve the next call: echo returned {after!r}")


def test_one_input(data: bytes) -> None:
    """The atheris entry point."""
    for plugin in _setup():
        run_one(plugin, data)


def _op(code: int, *operands: bytes) -> bytes:
    return bytes([code]) + b"".join(operands)


def _small(n: int) -> bytes:
    return bytes([2, n])


def _u64(n: int) -> bytes:
    return bytes([4]) + struct.pack("<Q", n)


def _reg(i: int, delta: int = 0) -> bytes:
    return bytes([1, i, delta & 0xFF]) if delta else bytes([0, i])


def _str(text: bytes) -> bytes:
    return bytes([22, len(text)]) + text


def seeds() -> list[bytes]:
    """Programs that reach every opcode on real blocks, plus edge offsets."""
    return [
        _op(0, _small(16)) + _op(7, _reg(0), _u64(0x0102030405060708)) + _op(11, _reg(0), _small(16)),
        _str(b"k") + _op(13, _reg(0)) + _op(11, _reg(1), _small(1)),
        _str(b"name") + _str(b"value") + _op(15, _reg(0), _reg(1)) + _str(b"name") + _op(14, _reg(2)),
        _str(b"boom") + _op(12, _reg(0)) + _op(1, _reg(0)) + bytes([23, 1]),
        _str(b"hello log") + _op(16, b"\x02", _reg(0)) + _str(b"trace") + _op(16, b"\x00", _reg(1)),
        _op(0, _small(32)) + _op(1, _reg(0)) + _op(0, _small(8)) + _op(0, _small(200)) + _op(17)
        + _op(0, _small(8)) + _op(6, _reg(3, 3), b"\x41") + _op(11, _reg(3), _small(8)),
        _op(4, _u64(2**63)) + _op(5, _small(64)) + _op(6, _small(0), b"\x01") + _op(7, _u64(2**64 - 1), _u64(1))
        + _op(8, _u64(2**64 - 1)) + _op(9, _small(0)) + _op(2, _small(64)) + _op(3, _u64(2**64 - 8)),
        _op(7, _small(64), _u64(0x5858585858585858)) + _op(6, _small(72), b"\x41"),
        _op(18) + _op(10, _reg(0), _small(4)) + _op(8, _small(0)) + _op(9, _small(0)) + _op(19) + _op(20) + _op(21),
        _op(0, _u64(2**40)) + _op(0, _u64(2**64 - 1)) + _op(0, bytes([3, 0xFF, 0xFF])) + _op(12, bytes([6, 8])),
    ]
