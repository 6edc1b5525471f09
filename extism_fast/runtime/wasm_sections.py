"""What a module's binary says about its own memories, read from the memory section: the C API
lists only the memories a module imports or exports (and does not tell a defined memory from a
re-exported import). The store checks the memories main defines, together, against ``max_pages``
before instantiating (kernel_c/store.c), so that wasmtime never has to refuse one (its refusal is
an error with no kind, only a message), and caps no memory below the largest one (memory_budget.c).

Only section headers and the memory section are read; the module was validated by wasmtime
before this runs (or is the same bytes as a cache entry that was), so a malformed binary is not
expected here, and is answered with ``None`` (nothing known) rather than a guess.
"""

from extism_fast.manifest.limits import WASM_MAGIC, WASM_PAGE_SIZE

TYPE_CHECKING = False  # typing is not imported at run time (cold start: tests/test_cold_start.py)
if TYPE_CHECKING:
    from typing import Optional

__all__ = ["MEMORY_SECTION", "defined_memory_sizes"]

#: The id of the memory section.
MEMORY_SECTION = 5
_WASM_PAGE_LOG2 = WASM_PAGE_SIZE.bit_length() - 1  # a memory without a custom page size


class _Malformed(Exception):
    pass


def _leb(data: bytes, offset: int) -> tuple[int, int]:
    """An unsigned LEB128 at ``offset``: (value, offset after it)."""
    value = shift = 0
    while True:
        if offset >= len(data) or shift > 63:
            raise _Malformed
        byte = data[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, offset


def _memory_section(wasm: bytes) -> "Optional[tuple[int, int]]":
    """(start, end) of the memory section's contents, or None when the module has none."""
    if wasm[:4] != WASM_MAGIC or len(wasm) < 8:
        raise _Malformed
    offset = 8
    while offset < len(wasm):
        section, offset = wasm[offset], offset + 1
        size, offset = _leb(wasm, offset)
        if offset + size > len(wasm):
            raise _Malformed
        if section == MEMORY_SECTION:
            return offset, offset + size
        offset += size
    return None


def defined_memory_sizes(wasm: bytes) -> "Optional[list[int]]":
    """The minimum size in bytes of each memory the module defines, in order; None when the
    binary cannot be read. A size is not bounded (a memory64 minimum of 2^48 pages is 2^64 bytes):
    the caller range-checks it. Limits flags (the threads, memory64 and custom-page-sizes
    encodings): bit 0 a maximum follows, bit 3 a page size (log2) follows them."""
    try:
        span = _memory_section(wasm)
        if span is None:
            return []
        offset, end = span
        count, offset = _leb(wasm, offset)
        sizes = []
        for _ in range(count):
            if offset >= end:
                raise _Malformed
            flags, offset = wasm[offset], offset + 1
            minimum, offset = _leb(wasm, offset)
            if flags & 1:
                _, offset = _leb(wasm, offset)
            page_log2 = _WASM_PAGE_LOG2
            if flags & 8:
                page_log2, offset = _leb(wasm, offset)
            if offset > end or flags & ~0x0F or page_log2 > 64:
                raise _Malformed
            sizes.append(minimum << page_log2)
        return sizes
    except _Malformed:
        return None

