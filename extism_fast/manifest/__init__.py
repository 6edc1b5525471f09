"""The Extism manifest: which wasm modules make up a plugin and the limits it runs under.

``schema``: the classes, their validation and (de)serialisation (JSON, TOML, dicts), and reading
each source's bytes (a URL through the one HTTP client, :mod:`extism_fast.host.http`).
``sources``: what ``Plugin(...)`` accepts (a path, bytes, WAT or manifest text, ...) as a Manifest.
This package holds the names of the former ``extism_fast.manifest`` module.
"""

from extism_fast.manifest.schema import (
    DEFAULT_MAX_HTTP_RESPONSE_BYTES,
    DEFAULT_MAX_TABLE_ELEMENTS,
    DEFAULT_MAX_VAR_BYTES,
    U32_MAX,
    U64_MAX,
    URL_FETCH_TIMEOUT_S,
    WASM_PAGE_SIZE,
    LoadedModule,
    Manifest,
    MemoryOptions,
    WasmData,
    WasmFile,
    WasmSource,
    WasmUrl,
    check_int_range,
    merge_config,
)
from extism_fast.manifest.sources import coerce_source, looks_like_wat, manifest_from_text

__all__ = [
    "DEFAULT_MAX_VAR_BYTES",
    "DEFAULT_MAX_HTTP_RESPONSE_BYTES",
    "WASM_PAGE_SIZE",
    "URL_FETCH_TIMEOUT_S",
    "WasmData",
    "WasmFile",
    "WasmUrl",
    "WasmSource",
    "MemoryOptions",
    "Manifest",
    "LoadedModule",
    "coerce_source",
    "manifest_from_text",
    "merge_config",
]
