"""The Extism manifest: which wasm modules make up a plugin and the limits it runs under.

The classes here mirror the JSON manifest every Extism SDK accepts (see ``docs/ABI.md``, "The manifest"),
so a manifest written for the official runtime loads here unchanged and vice versa. This layer only
validates, (de)serialises and fetches bytes; it never compiles wasm, so it has no native dependency.

Every invalid input raises :class:`~extism_fast.errors.ManifestError` whose message names the field
path (``manifest.wasm[1].hash``) and shows the offending value, except where the value may be a
secret (config values, header values, URL credentials and queries: their type, or the URL as
:func:`~extism_fast.host.urls.redact_url` prints it). What ``Plugin(...)`` accepts as a
manifest is :mod:`extism_fast.manifest.sources`.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import contextvars
import os
from collections.abc import Iterator, Mapping
from typing import Any, Callable, TypeAlias, TypeGuard, Union

import attrs

from extism_fast.errors import ManifestError
from extism_fast.host.urls import HTTP_TOKEN, redact_url, url_problem
from extism_fast.manifest.limits import (DEFAULT_MAX_HTTP_RESPONSE_BYTES, DEFAULT_MAX_TABLE_ELEMENTS,
                                         DEFAULT_MAX_VAR_BYTES, OPTION_HIGH, U32_MAX, U64_MAX, URL_FETCH_TIMEOUT_S,
                                         WASM_PAGE_SIZE, memory_budget, timeout_ns)  # noqa: F401 (re-exported)
from extism_fast.manifest.files import check_sha256, fetch_module, is_sha256_hex, read_module_file
from extism_fast.manifest.config import config_merged

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
    "check_int_range",
    "merge_config",
]

# The module name of the Extism kernel (the ABI): a plugin module cannot take it (the official
# runtime refuses it as a duplicate module). Other host namespaces, such as extism:host/user, may
# be module names: that module then provides those imports (see import_plan.h).
_RESERVED_NAME = "extism:host/env"


# Field-path prefix used by validation messages. Direct construction reports e.g. "WasmData.hash";
# ``Manifest.from_dict`` sets this so the same validators report "manifest.wasm[1].hash" without
# duplicating any checks. A ContextVar keeps concurrent threads from seeing each other's prefix.
_where: contextvars.ContextVar[str | None] = contextvars.ContextVar("_where", default=None)


@contextlib.contextmanager
def _at(where: str) -> Iterator[None]:
    token = _where.set(where)
    try:
        yield
    finally:
        _where.reset(token)


def _prefix(default: str) -> str:
    return _where.get() or default


def _show(value: Any) -> str:
    """repr() of a bad value, shortened so a multi-megabyte blob cannot flood the message."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _fail(where: str, what: str, value: Any) -> ManifestError:
    return ManifestError(f"{where} must be {what}, got {_show(value)}")


def _fail_type(where: str, what: str, value: Any) -> ManifestError:
    # For fields whose value may be a secret (config, headers): the type, never the value.
    return ManifestError(f"{where} must be {what}, got a value of type {type(value).__name__}")


def _is_int(value: Any) -> TypeGuard[int]:
    # bool is an int subclass, but `true` as a page count is a bug in the manifest, not a 1.
    return isinstance(value, int) and not isinstance(value, bool)


def check_int_range(where: str, value: Any, low: int, high: int) -> None:
    """Raise :class:`ManifestError` naming ``where`` unless ``value`` is an int (not a bool) from
    ``low`` to ``high``: the range the C side converts it into without overflow."""
    if not _is_int(value) or not low <= value <= high:
        raise _fail(where, f"an integer from {low} to {high}", value)


def _check_text(where: str, value: str, *, fs_path: bool = False, no_nul: bool = False) -> None:
    """Strings are handed on encoded (UTF-8; a file path with os.fsencode) and paths and URLs as
    NUL-terminated C strings, so a lone surrogate or an embedded NUL must fail here, by name."""
    try:
        os.fsencode(value) if fs_path else value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ManifestError(f"{where} must be valid Unicode text: it has a lone surrogate at index {exc.start}") from None
    if (fs_path or no_nul) and "\0" in value:
        raise ManifestError(f"{where} must not contain a NUL character (found at index {value.index(chr(0))})")


def _check_str(where: str, value: Any, *, nonempty: bool = True) -> None:
    if not isinstance(value, str) or (nonempty and not value):
        raise _fail(where, "a non-empty string" if nonempty else "a string", value)


def _check_str_dict(where: str, value: Any, *, secret: bool = False, path_keys: bool = False) -> None:
    # secret: values are not shown (config, headers); path_keys: keys are host file paths.
    fail = _fail_type if secret else _fail
    if not isinstance(value, dict):
        raise fail(where, "an object mapping strings to strings", value)
    for key, item in value.items():
        if not isinstance(key, str):
            raise ManifestError(f"{where} keys must be strings, got {_show(key)}")
        _check_text(f"{where} key {key!r}", key, fs_path=path_keys)
        if not isinstance(item, str):
            raise fail(f"{where}[{key!r}]", "a string", item)
        _check_text(f"{where}[{key!r}]", item)


def _check_name(where: str, value: Any) -> None:
    if value is None:
        return
    _check_str(where, value)
    _check_text(where, value)
    if "\0" in value:  # modules are linked by name as C strings: it would answer to its prefix
        raise ManifestError(f"{where} {value!r} contains a NUL byte")
    if value == _RESERVED_NAME:
        raise ManifestError(f"{where} {value!r} is reserved for the host (the Extism kernel's functions)")


def _check_hash(where: str, value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, str) or not is_sha256_hex(value):
        raise _fail(where, "64 hex characters", value)


def _to_bytes(value: Any) -> Any:
    # Converter: accept any contiguous buffer but store immutable bytes; leave other types for the
    # validator to reject with a proper message.
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    return value


def _to_path(value: Any) -> Any:
    return os.fspath(value) if isinstance(value, os.PathLike) else value


def _copy_dict(value: Any) -> Any:
    # Copy so a caller mutating their dict afterwards cannot change a frozen manifest behind its back.
    return dict(value) if isinstance(value, Mapping) else value


def _copy_list(value: Any) -> Any:
    return list(value) if isinstance(value, (list, tuple)) else value


def _reject_unknown(where: str, d: Mapping[str, Any], allowed: tuple[str, ...], nullable: tuple[str, ...] = ()) -> None:
    for key, value in d.items():
        # `nullable` keys are known elsewhere and harmless when null (e.g. "path": null on a data source).
        if key not in allowed and not (key in nullable and value is None):
            raise ManifestError(f"{where}: unknown key {_show(key)} (allowed: {', '.join(allowed)})")


def _get(d: Mapping[str, Any], key: str, default: Any = None) -> Any:
    # JSON `null` for an optional key means "not given".
    value = d.get(key)
    return default if value is None else value


# --------------------------------------------------------------------------------------------------
# Options C enforces: declared once, on their field
# --------------------------------------------------------------------------------------------------


@attrs.frozen
class CSetting:
    """That C enforces an option, and how: a scalar field of C's ``instance_settings``, which
    setup.py generates from these declarations (runtime/options.py, ``c_settings_header``), packed
    by name (``_pack_options``) and read as ``p->settings.<name>`` by the C unit that enforces it.

    :param c_type: ``"int64_t"``, ``"uint64_t"`` or ``"int"``.
    :param doc: its comment in the generated header.
    :param name: the C field; ``""``: the option's own name.
    :param to_c: the option's value in force (:func:`option_value`) -> the value C gets; ``None``:
        that value as it is. A function of manifest/limits.py (the build's table names it, and a
        plain plugin converts with it: declarations.built_settings).
    """

    c_type: str
    doc: str
    name: str = ""
    to_c: Callable[[Any], int] | None = None


def option(*, high: int | None = None, default: int | None = None, c: CSetting | None = None) -> Any:
    """A manifest option's field: unset (``None``) or an int from 0 to ``high`` (checked by its
    class when ``high`` is given: the option's ``limits.OPTION_HIGH``), ``default`` in force when
    unset, and ``c`` when C enforces it."""
    return attrs.field(default=None, metadata={"high": high, "default": default, "c": c})


def option_value(options: Any, name: str) -> Any:
    """The value in force of the :func:`option` ``name`` of ``options``: as set, else its default."""
    value = getattr(options, name)
    # __attrs_attrs__ is what attrs.fields() returns, without its checks (5x faster)
    return getattr(type(options).__attrs_attrs__, name).metadata["default"] if value is None else value


# --------------------------------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------------------------------


@attrs.define(frozen=True)
class WasmData:
    """A module given inline: wasm binary or WAT text bytes (compiled later, never interpreted here).

    :param data: the module bytes; ``bytearray``/``memoryview`` are copied to ``bytes``.
    :param name: module name other modules import it by; ``"main"`` marks the main module.
    :param hash: expected sha256 of ``data`` as 64 hex digits (any case), checked on load.
    """

    data: bytes = attrs.field(converter=_to_bytes, repr=lambda b: f"<{len(b)} bytes>")
    name: str | None = None
    hash: str | None = None

    def __attrs_post_init__(self) -> None:
        where = _prefix("WasmData")
        if not isinstance(self.data, bytes):
            raise _fail(f"{where}.data", "bytes", self.data)
        _check_name(f"{where}.name", self.name)
        _check_hash(f"{where}.hash", self.hash)


@attrs.define(frozen=True)
class WasmFile:
    """A module read from a file when the plugin loads.

    :param path: file path; a relative path is resolved against ``load_modules``'s ``base_dir``
        (or the working directory). Path-like objects are stored as ``str``.
    :param name: module name (see :class:`WasmData`).
    :param hash: expected sha256 of the file's bytes.
    """

    path: str = attrs.field(converter=_to_path)
    name: str | None = None
    hash: str | None = None

    def __attrs_post_init__(self) -> None:
        where = _prefix("WasmFile")
        _check_str(f"{where}.path", self.path)
        _check_text(f"{where}.path", self.path, fs_path=True)
        _check_name(f"{where}.name", self.name)
        _check_hash(f"{where}.hash", self.hash)


@attrs.define(frozen=True)
class WasmUrl:
    """A module downloaded (http/https) when the plugin loads.

    :param url: ``http://`` or ``https://`` URL.
    :param headers: request headers.
    :param method: HTTP method.
    :param name: module name (see :class:`WasmData`).
    :param hash: expected sha256 of the response body; strongly advised for remote code.
    """

    # repr: what a log line may show (no credentials, query or header values).
    url: str = attrs.field(repr=lambda url: repr(redact_url(url)))
    headers: dict[str, str] = attrs.field(
        factory=dict, converter=_copy_dict, repr=lambda headers: repr({k: "<redacted>" for k in headers})
    )
    method: str = "GET"
    name: str | None = None
    hash: str | None = None

    def __attrs_post_init__(self) -> None:
        where = _prefix("WasmUrl")
        _check_url(f"{where}.url", self.url)
        _check_str_dict(f"{where}.headers", self.headers, secret=True)
        for key, value in self.headers.items():
            if not HTTP_TOKEN.fullmatch(key):
                raise _fail(f"{where}.headers key", "a valid HTTP header name", key)
            if "\r" in value or "\n" in value or "\0" in value:
                raise ManifestError(f"{where}.headers[{key!r}] must be a header value without line breaks or NUL")
        if not isinstance(self.method, str) or not HTTP_TOKEN.fullmatch(self.method):
            raise _fail(f"{where}.method", "an HTTP method such as 'GET'", self.method)
        _check_name(f"{where}.name", self.name)
        _check_hash(f"{where}.hash", self.hash)


def _check_url(where: str, url: Any) -> None:
    """An http(s) URL the HTTP client can fetch as it is (url_problem); messages show it redacted
    (see redact_url)."""
    what = "an http:// or https:// URL"
    if not isinstance(url, str):  # its type only: bytes or a URL object may hold credentials
        raise _fail_type(where, what, url)
    _check_text(where, url)
    problem = url_problem(url)
    if problem is not None:
        raise _fail(where, what + problem, redact_url(url))


#: Any one wasm source of a manifest.
WasmSource: TypeAlias = Union[WasmData, WasmFile, WasmUrl]
_SOURCE_TYPES = (WasmData, WasmFile, WasmUrl)

_DATA_KEYS = ("data", "name", "hash")
_PATH_KEYS = ("path", "name", "hash")
_URL_KEYS = ("url", "headers", "method", "name", "hash")
_KIND_KEYS = ("data", "path", "url")


def _source_from_dict(where: str, d: Any) -> WasmSource:
    if not isinstance(d, Mapping):
        raise _fail(where, 'an object with one of "data", "path" or "url"', d)
    kinds = [k for k in ("data", "path", "url") if d.get(k) is not None]
    if len(kinds) != 1:
        got = ", ".join(kinds) if kinds else "none"
        raise ManifestError(f'{where} must have exactly one of "data", "path" or "url", got {got}')
    kind = kinds[0]
    name, hash_ = d.get("name"), d.get("hash")
    with _at(where):
        if kind == "data":
            _reject_unknown(where, d, _DATA_KEYS, _KIND_KEYS)
            return WasmData(_decode_data(f"{where}.data", d["data"]), name=name, hash=hash_)
        if kind == "path":
            _reject_unknown(where, d, _PATH_KEYS, _KIND_KEYS)
            path = d["path"]
            if not isinstance(path, str):  # in a dict only a str; PathLike is a constructor nicety
                raise _fail(f"{where}.path", "a non-empty string", path)
            return WasmFile(path, name=name, hash=hash_)
        _reject_unknown(where, d, _URL_KEYS, _KIND_KEYS)
        return WasmUrl(
            d["url"], headers=_get(d, "headers", {}), method=_get(d, "method", "GET"), name=name, hash=hash_
        )


def _decode_data(where: str, value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        try:
            # Strict standard base64 (what serde/Extism emit): a typo must not silently load garbage.
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ManifestError(f"{where} must be valid base64, got {_show(value)}: {exc}") from None
    raise _fail(where, "bytes or a base64 string", value)


def _source_to_dict(source: WasmSource) -> dict[str, Any]:
    if isinstance(source, WasmData):
        out: dict[str, Any] = {"data": base64.b64encode(source.data).decode("ascii")}
    elif isinstance(source, WasmFile):
        out = {"path": source.path}
    else:
        out = {"url": source.url, "headers": dict(source.headers), "method": source.method}
    if source.name is not None:
        out["name"] = source.name
    if source.hash is not None:
        out["hash"] = source.hash
    return out


# --------------------------------------------------------------------------------------------------
# Memory options
# --------------------------------------------------------------------------------------------------


@attrs.define(frozen=True)
class MemoryOptions:
    """Resource limits (``manifest.memory``); ``None`` means "the default".

    :param max_pages: a budget, in 64 KiB pages, over all the memories of an instance (default:
        none beyond each module's own maximum), as the official runtime keeps it: the memories the
        main module defines must start within it, together; then every growth of any memory (the
        plugin's, a linked module's, the kernel's) takes from it for the instance's life, and a
        growth past it fails (``memory.grow`` answers -1, an ``alloc`` or input fails the call).
    :param max_http_response_bytes: cap on an ``http_request`` response body
        (default :data:`DEFAULT_MAX_HTTP_RESPONSE_BYTES`).
    :param max_var_bytes: cap on the total size of an instance's vars, each counting its key, its
        value and 48 bytes (as the official runtime); ``0`` disables vars
        (default :data:`DEFAULT_MAX_VAR_BYTES`).
    :param max_table_elements: cap on each wasm table's elements; ``table.grow`` past it returns -1
        (default :data:`DEFAULT_MAX_TABLE_ELEMENTS`). An extism_fast key: the official runtime has
        no such limit.
    """

    # Each option declared once: its range, its default, and whether (and how) C enforces it.
    max_pages: int | None = option(high=OPTION_HIGH["memory.max_pages"], c=CSetting(
        "int64_t", "budget for the growth of all the memories after instantiation (manifest.memory.max_pages "
        "in bytes; memory_budget.h); -1 = unlimited", name="max_memory_bytes", to_c=memory_budget))
    max_http_response_bytes: int | None = option(high=OPTION_HIGH["memory.max_http_response_bytes"],
                                                 default=DEFAULT_MAX_HTTP_RESPONSE_BYTES)  # host side
    max_var_bytes: int | None = option(high=OPTION_HIGH["memory.max_var_bytes"], default=DEFAULT_MAX_VAR_BYTES,
                                       c=CSetting("uint64_t", "total size of vars (manifest.memory.max_var_bytes); "
                                                  "0 disables them"))
    max_table_elements: int | None = option(high=OPTION_HIGH["memory.max_table_elements"],
                                            default=DEFAULT_MAX_TABLE_ELEMENTS, c=CSetting(
        "int64_t", "per wasm table (manifest.memory.max_table_elements)"))

    def __attrs_post_init__(self) -> None:
        where = _prefix("MemoryOptions")
        for field in attrs.fields(MemoryOptions):
            value = getattr(self, field.name)
            if value is not None:
                check_int_range(f"{where}.{field.name}", value, 0, field.metadata["high"])

    @property
    def max_memory_bytes(self) -> int | None:
        """``max_pages`` in bytes (the memory budget), or ``None`` when the manifest sets none."""
        budget = memory_budget(self.max_pages)
        return None if budget < 0 else budget

    @property
    def effective_max_http_response_bytes(self) -> int:
        """The HTTP response body cap actually applied."""
        value: int = option_value(self, "max_http_response_bytes")
        return value

    @property
    def effective_max_table_elements(self) -> int:
        """The per-table element cap actually applied."""
        value: int = option_value(self, "max_table_elements")
        return value

    @property
    def effective_max_var_bytes(self) -> int:
        """The vars size cap actually applied (``0``: vars are disabled)."""
        value: int = option_value(self, "max_var_bytes")
        return value

    @classmethod
    def from_dict(cls, d: Any) -> MemoryOptions:
        """Build from the ``memory`` object of a manifest dict (``None`` → all defaults)."""
        where = _prefix("manifest.memory")
        if d is None:
            return cls()
        if not isinstance(d, Mapping):
            raise _fail(where, "an object", d)
        names = tuple(f.name for f in attrs.fields(cls))
        _reject_unknown(where, d, names)
        with _at(where):
            return cls(**{k: d.get(k) for k in names})

    def to_dict(self) -> dict[str, int]:
        """The ``memory`` object, holding only the keys that are set."""
        return {k: v for k, v in attrs.asdict(self).items() if v is not None}


# --------------------------------------------------------------------------------------------------
# Manifest
# --------------------------------------------------------------------------------------------------


@attrs.define(frozen=True)
class LoadedModule:
    """One module's bytes, ready to compile, as returned by :meth:`Manifest.load_modules`.

    :param name: the name other modules import it by (always ``"main"`` for the main module).
    :param data: wasm binary or WAT text, hash-verified when the source had a ``hash``.
    :param is_main: whether this is the module whose exports are the plugin's functions.
    """

    name: str
    data: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")
    is_main: bool
    #: The identity of the file ``data`` was read from (absolute path, device, inode, size,
    #: mtime_ns, ctime_ns), when it was stable while read and last changed over
    #: FILE_IDENTITY_SETTLE_NS before: the compile cache finds the module's hash by it instead of
    #: hashing ``data``. None otherwise.
    file_identity: tuple[Any, ...] | None = attrs.field(default=None, repr=False, eq=False, kw_only=True)


_MANIFEST_KEYS = ("wasm", "memory", "config", "allowed_hosts", "allowed_paths", "timeout_ms")


def _to_memory(value: Any) -> Any:
    return MemoryOptions() if value is None else value


@attrs.define(frozen=True)
class Manifest:
    """A plugin: its wasm modules plus configuration and limits (the Extism manifest).

    Instances are immutable (frozen); derive variants with :func:`attrs.evolve`. Lists and dicts
    passed in are copied.

    :param wasm: the modules, at least one. The main module is the one named ``"main"``, else the
        last one (see :attr:`main_index`).
    :param memory: resource limits.
    :param config: string → string values plugins read with ``config_get``.
    :param allowed_hosts: host globs (``*.example.com``) ``http_request`` may reach; ``None`` or
        ``[]`` allows none.
    :param allowed_paths: host path → guest path directories mounted for WASI; a host path
        prefixed ``ro:`` is mounted read-only.
    :param timeout_ms: per-call time limit in milliseconds; ``None`` or ``0`` for no limit (as
        the official Go SDK and CLI; the official runtime's 0 ms deadline usually expires before
        the call starts, so its calls then run unbounded too).
    """

    wasm: list[WasmSource] = attrs.field(converter=_copy_list)
    memory: MemoryOptions = attrs.field(factory=MemoryOptions, converter=_to_memory)
    config: dict[str, str] = attrs.field(factory=dict, converter=_copy_dict)
    allowed_hosts: list[str] | None = attrs.field(default=None, converter=_copy_list)
    allowed_paths: dict[str, str] | None = attrs.field(default=None, converter=_copy_dict)
    timeout_ms: int | None = option(high=OPTION_HIGH["timeout_ms"], default=0, c=CSetting(  # checked below
        "uint64_t", "deadline of every call (manifest.timeout_ms in ns); 0 = none", name="timeout_ns",
        to_c=timeout_ns))

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.wasm, list) or not self.wasm:
            raise _fail("manifest.wasm", "a non-empty list of wasm sources", self.wasm)
        for i, source in enumerate(self.wasm):
            if not isinstance(source, _SOURCE_TYPES):
                raise _fail(f"manifest.wasm[{i}]", "a WasmData, WasmFile or WasmUrl", source)
        if not isinstance(self.memory, MemoryOptions):
            raise _fail("manifest.memory", "a MemoryOptions", self.memory)
        _check_str_dict("manifest.config", self.config, secret=True)
        if self.allowed_hosts is not None:
            if not isinstance(self.allowed_hosts, list):
                raise _fail("manifest.allowed_hosts", "a list of host globs", self.allowed_hosts)
            for i, host in enumerate(self.allowed_hosts):
                _check_str(f"manifest.allowed_hosts[{i}]", host)
                _check_text(f"manifest.allowed_hosts[{i}]", host, no_nul=True)
        if self.allowed_paths is not None:
            _check_str_dict("manifest.allowed_paths", self.allowed_paths, path_keys=True)
            for host_path, guest_path in self.allowed_paths.items():
                if not host_path or host_path == "ro:":
                    raise _fail("manifest.allowed_paths key", "a non-empty host path", host_path)
                _check_str(f"manifest.allowed_paths[{host_path!r}]", guest_path)
                _check_text(f"manifest.allowed_paths[{host_path!r}]", guest_path, no_nul=True)
        if self.timeout_ms is not None and (not _is_int(self.timeout_ms) or self.timeout_ms < 0):
            raise _fail("manifest.timeout_ms", "a non-negative integer", self.timeout_ms)
        # Resolving names here (not only at load time) reports duplicates as soon as the manifest is built.
        self.module_names()
        # The call deadline is kept in u64 nanoseconds; larger values are clamped there, not here.
        if _is_int(self.timeout_ms) and self.timeout_ms > OPTION_HIGH["timeout_ms"]:
            raise _fail("manifest.timeout_ms", f"at most {OPTION_HIGH['timeout_ms']} (milliseconds)", self.timeout_ms)

    # -- module naming ----------------------------------------------------------------------------

    @property
    def main_index(self) -> int:
        """Index in :attr:`wasm` of the main module: the source named ``"main"``, else the last."""
        for i, source in enumerate(self.wasm):
            if source.name == "main":
                return i
        return len(self.wasm) - 1

    def module_names(self) -> list[str]:
        """Link name of each source, in manifest order: ``"main"`` for the main module, a source's
        ``name`` if given, else ``module<i>``. Raises :class:`ManifestError` on a duplicate."""
        main = self.main_index
        names: list[str] = []
        seen: dict[str, int] = {}
        for i, source in enumerate(self.wasm):
            name = "main" if i == main else (source.name if source.name is not None else f"module{i}")
            if name in seen:
                raise ManifestError(
                    f"manifest.wasm[{i}].name: duplicate module name {name!r} "
                    f"(also used by manifest.wasm[{seen[name]}])"
                )
            seen[name] = i
            names.append(name)
        return names

    def describe_main(self) -> str:
        """The main module's source as reprs show it: its path, its URL without credentials or
        query (redact_url), or its size; with its name when it has another than "main". Never
        header values, config values or the module's bytes."""
        source = self.wasm[self.main_index]
        if isinstance(source, WasmFile):
            label = repr(source.path)
        elif isinstance(source, WasmUrl):
            label = repr(redact_url(source.url))
        else:
            label = f"<{len(source.data)} bytes>"
        return label if source.name in (None, "main") else f"{source.name}={label}"

    # -- dict / JSON / TOML -------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Manifest:
        """Build from a dict with the Extism manifest keys (``data`` may be bytes or base64)."""
        if not isinstance(d, Mapping):
            raise _fail("manifest", "an object", d)
        _reject_unknown("manifest", d, _MANIFEST_KEYS)
        wasm = d.get("wasm")
        if wasm is None:
            raise ManifestError('manifest.wasm is required (a non-empty list of wasm sources)')
        if not isinstance(wasm, (list, tuple)) or not wasm:
            raise _fail("manifest.wasm", "a non-empty list of wasm sources", wasm)
        sources = [_source_from_dict(f"manifest.wasm[{i}]", s) for i, s in enumerate(wasm)]
        with _at("manifest.memory"):
            memory = MemoryOptions.from_dict(d.get("memory"))
        return cls(
            wasm=sources,
            memory=memory,
            config=_get(d, "config", {}),
            allowed_hosts=d.get("allowed_hosts"),
            allowed_paths=d.get("allowed_paths"),
            timeout_ms=d.get("timeout_ms"),
        )

    @classmethod
    def from_json(cls, s: str | bytes | bytearray) -> Manifest:
        """Parse a JSON manifest (``data`` must be base64 there)."""
        import json  # json, tomllib, hashlib: loaded when first needed (import time)

        try:
            d = json.loads(s)
        except (ValueError, TypeError) as exc:  # JSONDecodeError and bad UTF-8 are ValueErrors
            raise ManifestError(f"manifest: invalid JSON: {exc}") from None
        except RecursionError:
            raise ManifestError("manifest: invalid JSON: arrays or objects nested too deeply") from None
        if not isinstance(d, dict):
            raise _fail("manifest", "a JSON object", d)
        return cls.from_dict(d)

    @classmethod
    def from_toml(cls, s: str | bytes | bytearray) -> Manifest:
        """Parse a TOML manifest: the same keys as JSON (``data`` base64), as the official runtime
        accepts (``[[wasm]]`` tables, ``[config]``, ``timeout_ms = 1000``, ...)."""
        return cls.from_dict(_parse_toml(s, "invalid TOML"))

    def to_dict(self) -> dict[str, Any]:
        """The Extism manifest dict: ``data`` as base64, unset optional keys left out.

        ``Manifest.from_dict(m.to_dict()) == m`` always holds.
        """
        out: dict[str, Any] = {"wasm": [_source_to_dict(s) for s in self.wasm]}
        memory = self.memory.to_dict()
        if memory:
            out["memory"] = memory
        if self.config:
            out["config"] = dict(self.config)
        if self.allowed_hosts is not None:
            out["allowed_hosts"] = list(self.allowed_hosts)
        if self.allowed_paths is not None:
            out["allowed_paths"] = dict(self.allowed_paths)
        if self.timeout_ms is not None:
            out["timeout_ms"] = self.timeout_ms
        return out

    def to_json(self, indent: int | None = None) -> str:
        """The manifest as JSON text, loadable by this package and the official Extism SDKs."""
        import json

        return json.dumps(self.to_dict(), indent=indent)

    # -- loading ------------------------------------------------------------------------------------

    def load_modules(self, base_dir: str | os.PathLike[str] | None = None) -> list[LoadedModule]:
        """Read every source's bytes, verify hashes, and return them main-last.

        Non-main modules come first in manifest order so a linker can define them before
        instantiating main. Files are read relative to ``base_dir`` (default: the working
        directory); URLs are fetched with :func:`extism_fast.host.http.fetch` (the whole download
        within :data:`URL_FETCH_TIMEOUT_S`).

        :raises ManifestError: a file is missing/unreadable or a download fails.
        :raises HashMismatchError: a source's bytes do not match its ``hash``.
        """
        names = self.module_names()
        main = self.main_index
        others: list[LoadedModule] = []
        main_module: LoadedModule | None = None
        for i, source in enumerate(self.wasm):
            where = f"manifest.wasm[{i}]"
            data, identity = _read_source(where, source, base_dir)
            if source.hash is not None:
                check_sha256(where, data, source.hash)
            module = LoadedModule(name=names[i], data=data, is_main=i == main, file_identity=identity)
            if i == main:
                main_module = module
            else:
                others.append(module)
        assert main_module is not None
        return [*others, main_module]


def _read_source(where: str, source: WasmSource,
                 base_dir: str | os.PathLike[str] | None) -> tuple[bytes, tuple[Any, ...] | None]:
    """The source's bytes, and for a file its identity (LoadedModule.file_identity) or None."""
    if isinstance(source, WasmData):
        return source.data, None
    if isinstance(source, WasmFile):
        path = source.path
        if base_dir is not None and not os.path.isabs(path):
            path = os.path.join(os.fspath(base_dir), path)
        return read_module_file(f"{where}.path", path)
    return fetch_module(where, source.url, source.method, source.headers), None


def _parse_toml(s: str | bytes | bytearray, what: str) -> dict[str, Any]:
    import tomllib

    try:
        text = bytes(s).decode("utf-8") if isinstance(s, (bytes, bytearray)) else s
        return tomllib.loads(text)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, TypeError) as exc:
        raise ManifestError(f"manifest: {what}: {exc}") from None


def merge_config(base: Mapping[str, str], overrides: Any) -> dict[str, str]:
    """``overrides`` merged over ``base``; a ``None`` value removes its key (the official
    ``extism_plugin_config``, where JSON ``null`` deletes)."""
    if not isinstance(overrides, Mapping):
        raise _fail_type("config", "an object mapping strings to strings (or None to remove)", overrides)
    kept = {key: value for key, value in overrides.items() if value is not None}
    _check_str_dict("config", kept, secret=True)  # values are never shown
    for key, value in overrides.items():
        if value is None and not isinstance(key, str):
            raise ManifestError(f"config keys must be strings, got {_show(key)}")
    return config_merged(base, overrides)
