"""The manifest's constants: its defaults, its ranges and the conversions of its options to what C
gets. Dependency-free, so the runtime reads them without loading the manifest classes (attrs: see
manifest/plain.py), which declare each option with these (manifest/schema.py, ``option(...)``).
The wasm magic, which tells a module from a manifest, is manifest/plain.py's (a plain plugin's first
call needs no constant of this module: a build-time copy of its defaults comes with the extension;
one given a ``timeout_ms`` or ``memory`` loads it, to check them and convert them)."""

#: Default cap on the total size of a plugin instance's variables (``memory.max_var_bytes``).
DEFAULT_MAX_VAR_BYTES: int = 1 << 20
#: Default cap on an HTTP response body a plugin may receive (``memory.max_http_response_bytes``).
DEFAULT_MAX_HTTP_RESPONSE_BYTES: int = 50 << 20
#: The default cap on each table's elements: what a pooled instance's table slot holds, so table.grow
#: cannot take host memory without bound (~8 bytes an element).
DEFAULT_MAX_TABLE_ELEMENTS: int = 1 << 20
#: Size of one wasm linear-memory page, the unit of ``memory.max_pages``.
WASM_PAGE_SIZE: int = 64 * 1024
#: Seconds a ``WasmUrl`` download may take before it fails.
URL_FETCH_TIMEOUT_S: float = 30.0
#: Largest ``memory.max_pages`` and ``memory.max_table_elements`` (a u32).
U32_MAX: int = (1 << 32) - 1
#: Largest byte cap, ``timeout_ms`` and ``fuel`` (a u64).
U64_MAX: int = (1 << 64) - 1

#: The largest value of each integer option of a manifest (the least is 0), by its path: what the
#: C side converts without overflow. The one statement of the ranges: the schema's fields
#: (``option(high=...)``) and a plain plugin's dict (manifest/plain.py) are checked against it.
OPTION_HIGH: dict = {
    "timeout_ms": U64_MAX,
    "memory.max_pages": U32_MAX,  # a u32, as in the official runtime (x 64 KiB still fits C's int64)
    "memory.max_http_response_bytes": U64_MAX,
    "memory.max_var_bytes": U64_MAX,
    "memory.max_table_elements": U32_MAX,
}


# The conversions of the options C enforces (a CSetting's ``to_c``): here, not in the schema, so
# that the build's table names them (declarations.built_settings) and a plain plugin converts its
# values with them without the manifest classes.


def memory_budget(max_pages: "int | None") -> int:
    """The one page-size multiply: C's max_memory_bytes (-1 = no budget) and MemoryOptions.max_memory_bytes."""
    return -1 if max_pages is None else max_pages * WASM_PAGE_SIZE


def timeout_ns(timeout_ms: int) -> int:
    """C's deadline of a call: ``timeout_ms`` (at most U64_MAX: checked) in ns, clamped to a u64."""
    return min(timeout_ms * 1_000_000, U64_MAX)
