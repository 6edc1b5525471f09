"""The manifest's constants: its defaults and its ranges. Dependency-free, so the runtime reads
them without loading the manifest classes (attrs: see manifest/plain.py). The wasm magic, which
tells a module from a manifest, is manifest/plain.py's (a plain plugin's first call needs no
constant of this module: a build-time copy of its defaults comes with the extension)."""

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
#: Largest ``memory.max_pages``: a u32, as in the official runtime (x 64 KiB still fits C's int64).
U32_MAX: int = (1 << 32) - 1
#: Largest byte cap, ``timeout_ms`` and ``fuel`` (a u64).
U64_MAX: int = (1 << 64) - 1
