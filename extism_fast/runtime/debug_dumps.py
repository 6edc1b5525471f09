"""EXTISM_MEMDUMP and EXTISM_COREDUMP: what a failed call leaves behind for debugging.

As in the official runtime, both are read from the environment when a Plugin is created:
``EXTISM_MEMDUMP=path`` writes the kernel memory (the official runtime's "Extism linear memory")
to ``path`` after any failed call; ``EXTISM_COREDUMP=path`` writes a wasm core dump
(WebAssembly tool-conventions, Coredump.md) after a call that trapped. wasmtime's C API has no
access to its own core dumps (``coredump_on_trap`` is a Rust-only setting), so the dump is built
here from the memories: the kernel memory and the main module's exported ``memory``, as data
segments, under the process name ``extism``; the stack section lists no frames (the C API does
not expose the trapping frame's locals).
"""

from __future__ import annotations

from extism_fast.host.logs import LazyLogger

TYPE_CHECKING = False  # typing is not imported at run time (cold start: tests/test_cold_start.py)
if TYPE_CHECKING:
    from typing import List

logger = LazyLogger()  # logging loads with the first record


def _uleb(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _name(text: str) -> bytes:
    data = text.encode()
    return _uleb(len(data)) + data


def _section(section_id: int, payload: bytes) -> bytes:
    return bytes([section_id]) + _uleb(len(payload)) + payload


def _custom(name: str, payload: bytes) -> bytes:
    return _section(0, _name(name) + payload)


def _vec(items: List[bytes]) -> bytes:
    return _uleb(len(items)) + b"".join(items)


def coredump(memories: List[bytes], process: str = "extism") -> bytes:
    """A core dump module (tool-conventions Coredump.md) of one instance with these memories."""
    from extism_fast.manifest.limits import WASM_PAGE_SIZE
    from extism_fast.manifest.plain import WASM_MAGIC

    memory_indices = [_uleb(i) for i in range(len(memories))]
    sections = [
        _custom("core", b"\x00" + _name(process)),
        _custom("coremodules", _vec([b"\x00" + _name("main")])),
        _custom("coreinstances", _vec([b"\x00" + _uleb(0) + _vec(memory_indices) + _vec([])])),
        _custom("corestack", b"\x00" + _name("main") + _vec([])),
        # memory (section 5): limits {min} (flag 0x00), min = the pages each memory had at the trap
        _section(5,
                 _vec([b"\x00" + _uleb((len(m) + WASM_PAGE_SIZE - 1) // WASM_PAGE_SIZE) for m in memories])),
        # data: one active segment per memory at offset 0 (flag 2: explicit memory index)
        _section(11, _vec([b"\x02" + _uleb(i) + b"\x41\x00\x0b" + _uleb(len(m)) + m
                           for i, m in enumerate(memories)])),
    ]
    return WASM_MAGIC + b"\x01\x00\x00\x00" + b"".join(sections)


def write_dump(path: str, data: bytes, what: str) -> None:
    """Write a dump; a failure is logged (as the official runtime does), never raised over the
    call's own error."""
    try:
        with open(path, "wb") as f:
            f.write(data)
        logger.debug("extism_fast: %s written to %s", what, path)
    except OSError as exc:
        logger.error("extism_fast: unable to write %s to %s: %s", what, path, exc)
