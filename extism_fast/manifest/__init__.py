"""The Extism manifest: which wasm modules make up a plugin and the limits it runs under.

``schema``: the classes, their validation and (de)serialisation (JSON, TOML, dicts), and reading
each source's bytes (a URL through the one HTTP client, :mod:`extism_fast.host.http`).
``sources``: what ``Plugin(...)`` accepts (a path, bytes, WAT or manifest text, ...) as a Manifest.
``plain``: the plain plugin (one module, every option at its default), read without the classes.
``limits``: the constants. This package holds the names of the former ``extism_fast.manifest``
module, each loaded from its module when first used (the classes need attrs: ~20 ms).
"""

TYPE_CHECKING = False  # typing is not imported at run time (cold start: tests/test_cold_start.py)
if TYPE_CHECKING:
    from extism_fast.manifest.limits import (DEFAULT_MAX_HTTP_RESPONSE_BYTES, DEFAULT_MAX_TABLE_ELEMENTS,
                                             DEFAULT_MAX_VAR_BYTES, U32_MAX, U64_MAX, URL_FETCH_TIMEOUT_S,
                                             WASM_PAGE_SIZE)
    from extism_fast.manifest.plain import looks_like_wat
    from extism_fast.manifest.schema import (LoadedModule, Manifest, MemoryOptions, WasmData, WasmFile, WasmSource,
                                             WasmUrl, check_int_range, merge_config)
    from extism_fast.manifest.sources import coerce_source, manifest_from_text

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

# Each public name (and a few the package uses) -> the module defining it.
_HOME = {
    **dict.fromkeys(["DEFAULT_MAX_HTTP_RESPONSE_BYTES", "DEFAULT_MAX_TABLE_ELEMENTS", "DEFAULT_MAX_VAR_BYTES",
                     "U32_MAX", "U64_MAX", "URL_FETCH_TIMEOUT_S", "WASM_PAGE_SIZE"], "limits"),
    "looks_like_wat": "plain",
    **dict.fromkeys(["LoadedModule", "Manifest", "MemoryOptions", "WasmData", "WasmFile", "WasmSource", "WasmUrl",
                     "check_int_range", "merge_config"], "schema"),
    **dict.fromkeys(["coerce_source", "manifest_from_text"], "sources"),
}


def __getattr__(name: str):  # noqa: ANN202 - PEP 562
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'extism_fast.manifest' has no attribute {name!r}")
    from extism_fast._moved import import_module  # not importlib's: it loads warnings

    value = globals()[name] = getattr(import_module(f"extism_fast.manifest.{home}"), name)
    return value


def __dir__() -> list:
    return sorted({*globals(), *_HOME})
