"""The plain plugin: one wasm or WAT module, given as bytes, as WAT text or as a module file (or as
a manifest dict of just that module, or of one URL without headers or method, maybe with its
``hash``, a ``timeout_ms``, ``memory`` limits, ``allowed_hosts`` and ``allowed_paths``), with every
other manifest option at its default but, maybe, a config: what most programs pass to ``Plugin(...)``.

It is recognised and read here without the manifest classes (attrs, manifest/schema.py and what
they import cost a fresh ``python -S`` process ~45 ms, twice the rest of its first call), and
stands for the Manifest that :func:`~extism_fast.manifest.sources.coerce_source` would make of it
(with Plugin's ``config`` merged in): ``CompiledPlugin.manifest`` builds that (equal) Manifest when
first read. Anything else, and anything this cannot tell or prove the schema takes as it is (a
missing file, bad text, another Mapping as config, a limit that is not exactly an int in its range,
an allowed host or path that is not exactly a str the schema keeps as it is, a hash that is not
exactly a str of 64 hex digits, a name), is
left to coerce_source, so every message is its.

Also here, for both: telling a module from a manifest (:func:`looks_like_wat`, :func:`file_is_manifest`).
"""

import os

from extism_fast.manifest.files import check_sha256, fetch_module, is_sha256_hex, read_module_file

__all__ = ["PlainSource", "PlainModule", "plain_source", "looks_like_wat", "looks_like_json_object",
           "looks_like_toml", "file_is_manifest", "SNIFF_BYTES", "WASM_MAGIC"]

#: The first four bytes of every wasm binary (WAT text never starts with them).
WASM_MAGIC = b"\0asm"
#: Enough of a file to tell a module from a manifest without reading a large module whole.
SNIFF_BYTES = 4096

# ---------------------------------------------------------------------------------------------
# Telling a module from a manifest
# ---------------------------------------------------------------------------------------------


def looks_like_json_object(text: str | bytes) -> bool:
    """WAT and wasm never start with ``{``: such input is a JSON manifest or an error, not a module."""
    stripped = text.lstrip()
    return stripped[:1] in ("{", b"{")


def looks_like_wat(text: str | bytes) -> bool:
    """True when ``text`` starts (after blanks and ``;;`` / ``(; ;)`` comments) with ``(``."""
    t = text.decode("utf-8", "replace") if isinstance(text, (bytes, bytearray)) else text
    while True:
        t = t.lstrip()
        if t.startswith(";;"):
            newline = t.find("\n")
            if newline < 0:
                return False
            t = t[newline + 1 :]
        elif t.startswith("(;"):
            end = t.find(";)")
            if end < 0:
                return False
            t = t[end + 2 :]
        else:
            return t.startswith("(")


def looks_like_toml(text: str | bytes) -> bool:
    """What is neither JSON, WAT nor a path: TOML needs ``key = value``; a path has no line breaks
    (a path that exists wins, as in the official SDK)."""
    if isinstance(text, str):
        return "\n" in text or ("=" in text and not os.path.exists(text))
    return b"=" in text


def file_is_manifest(path: str, head: bytes) -> bool:
    """Whether the file at ``path``, starting with ``head`` (its first :data:`SNIFF_BYTES`), is a
    manifest as the official SDK reads one (JSON when it starts with ``{``; TOML when named
    ``*.toml``) rather than a module."""
    return not head.startswith(WASM_MAGIC) and (looks_like_json_object(head) or path.lower().endswith(".toml"))


# ---------------------------------------------------------------------------------------------
# The plain plugin
# ---------------------------------------------------------------------------------------------


class PlainModule:
    """A plain plugin's one module, loaded: what :class:`~extism_fast.manifest.LoadedModule` holds
    (the runtime reads these four attributes of either)."""

    __slots__ = ("name", "data", "is_main", "file_identity")

    def __init__(self, data: bytes, file_identity: tuple | None) -> None:
        self.name = "main"
        self.data = data
        self.is_main = True
        self.file_identity = file_identity


class PlainSource:
    """A plain plugin: its module's bytes (``data``), file (``path``) or ``url``, its ``config`` (a
    dict of str to str, its own copy), its ``limits``: the integer options set (``timeout_ms`` and
    ``memory``'s, by path: ``{"timeout_ms": 50, "memory.max_pages": 4}``, each exactly an int in its
    range), and ``allowed_hosts`` (a list of str) and ``allowed_paths`` (a dict of str to str), its
    own copies, None when unset: a Manifest's fields, read alike (runtime/options.py), and the
    module's ``hash`` (64 hex digits) or None. Every other option at its default. Stands for
    ``Manifest([WasmData(data, hash=hash)], config=config, timeout_ms=..., memory=MemoryOptions(...),
    allowed_hosts=..., allowed_paths=...)`` (or a WasmFile, or a WasmUrl): :meth:`manifest`."""

    __slots__ = ("data", "path", "config", "limits", "allowed_hosts", "allowed_paths", "hash", "url", "_manifest")

    def __init__(self, data: bytes | None = None, path: str | None = None, config: dict | None = None,
                 limits: dict | None = None, allowed_hosts: list | None = None,
                 allowed_paths: dict | None = None, hash: str | None = None, url: str | None = None) -> None:
        self.data = data
        self.path = path
        self.url = url
        self.hash = hash
        self.config = {} if config is None else config
        self.limits = {} if limits is None else limits
        self.allowed_hosts = allowed_hosts
        self.allowed_paths = allowed_paths
        self._manifest = None

    def given(self, path: str) -> int | None:
        """The value set for the option at ``path`` (``"memory.max_pages"``), or None: unset, as a
        Manifest's unset field (runtime/options.py reads both alike)."""
        return self.limits.get(path)

    @property
    def timeout_ms(self) -> int | None:
        """As Manifest.timeout_ms."""
        return self.limits.get("timeout_ms")

    def with_config(self, config: object) -> "PlainSource | None":
        """This plugin with Plugin's ``config`` merged over its own (as merge_config merges), or None
        when ``config`` is not plainly valid (:func:`_plain_config`): merge_config then says why."""
        if not _plain_config(config, removes=True):
            return None
        from extism_fast.manifest.config import config_merged  # only a plugin given a config loads it

        merged = config_merged(self.config, config)  # type: ignore[arg-type]
        return PlainSource(self.data, self.path, merged, self.limits, self.allowed_hosts, self.allowed_paths,
                           self.hash, self.url)

    def load_modules(self) -> list[PlainModule]:
        """The module, read (a file or a URL: now, as Manifest.load_modules reads them, a file with
        its identity) and checked against its ``hash`` (HashMismatchError, as there)."""
        if self.path is not None:
            module = PlainModule(*read_module_file("manifest.wasm[0].path", self.path))
        elif self.url is not None:
            module = PlainModule(fetch_module("manifest.wasm[0]", self.url, "GET", {}), None)
        else:
            module = PlainModule(self.data, None)  # type: ignore[arg-type]
        if self.hash is not None:
            check_sha256("manifest.wasm[0]", module.data, self.hash)
        return [module]

    def manifest(self):  # noqa: ANN201 - a Manifest (its classes load here)
        """The Manifest this stands for, made once (the manifest classes load then)."""
        if self._manifest is None:
            from extism_fast.manifest.schema import Manifest, MemoryOptions, WasmData, WasmFile, WasmUrl

            if self.path is not None:
                source = WasmFile(self.path, hash=self.hash)
            elif self.url is not None:
                source = WasmUrl(self.url, hash=self.hash)
            else:
                source = WasmData(self.data, hash=self.hash)
            memory = {path[len("memory."):]: value for path, value in self.limits.items()
                      if path.startswith("memory.")}
            self._manifest = Manifest([source], config=self.config, timeout_ms=self.limits.get("timeout_ms"),
                                      memory=MemoryOptions(**memory), allowed_hosts=self.allowed_hosts,
                                      allowed_paths=self.allowed_paths)
        return self._manifest

    def describe_main(self) -> str:
        """As Manifest.describe_main: the path, the URL redacted, or the size."""
        if self.path is not None:
            return repr(self.path)
        if self.url is not None:
            from extism_fast.host.urls import redact_url

            return repr(redact_url(self.url))
        return f"<{len(self.data)} bytes>"  # type: ignore[arg-type]


def _is_text(value: object) -> bool:
    # Exactly a str (a subclass may redefine what the checks rely on) that UTF-8 can encode.
    if type(value) is not str:
        return False
    try:
        value.encode()
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


def _plain_config(config: object, removes: bool) -> bool:
    """Whether ``config`` is one the manifest takes as it is, checked exactly: a ``dict`` of str
    to str (and None, which removes its key, where ``removes``: Plugin's config). Any other
    (another Mapping, non-str keys or values, a lone surrogate) is left to the manifest's checks,
    which accept it or name what is wrong."""
    return type(config) is dict and all(
        _is_text(key) and (_is_text(value) or (removes and value is None)) for key, value in config.items())


def _is_guest_text(value: object) -> bool:
    # An allowed host or guest path: exactly a non-empty str, UTF-8, no NUL (a C string).
    return _is_text(value) and value != "" and "\0" not in value  # type: ignore[operator]


def _is_host_path(key: object) -> bool:
    # An allowed_paths key: exactly a str os.fsencode takes, no NUL, a path beyond any "ro:".
    if type(key) is not str or key in ("", "ro:") or "\0" in key:
        return False
    try:
        os.fsencode(key)
    except UnicodeEncodeError:  # a surrogate that is not an undecodable byte's
        return False
    return True


def _plain_grants(d: dict) -> tuple | None:
    """A manifest dict's ``allowed_hosts`` and ``allowed_paths`` as PlainSource holds them (copies;
    None when unset or null), when each is plainly valid: a list (or tuple) of host globs, a dict of
    host path to guest path, each exactly a str as the schema checks it. Else None: the schema
    checks them (or takes a str subclass, another Mapping) and says why."""
    hosts, paths = d.get("allowed_hosts"), d.get("allowed_paths")
    if hosts is not None and (type(hosts) not in (list, tuple) or not all(map(_is_guest_text, hosts))):
        return None
    if paths is not None and (type(paths) is not dict or not all(
            _is_host_path(host) and _is_guest_text(guest) for host, guest in paths.items())):
        return None
    return (None if hosts is None else list(hosts)), (None if paths is None else dict(paths))


def _plain_file(path: str) -> PlainSource | None:
    # Only a readable regular file that is not a manifest; the rest fails in coerce_source.
    if not path or "\0" in path or not os.path.isfile(path):
        return None
    try:
        os.fsencode(path)
        with open(path, "rb") as f:
            head = f.read(SNIFF_BYTES)
    except (OSError, ValueError):  # unreadable, or a lone surrogate
        return None
    return None if file_is_manifest(path, head) else PlainSource(path=path)


def _plain_url(url: str) -> PlainSource | None:
    # An http(s) URL the schema takes as it is (url_problem: its one statement); fetched when loaded.
    from extism_fast.host.urls import url_problem  # only a URL source loads it (with re)

    return PlainSource(url=url) if url_problem(url) is None else None


def _plain_bytes(data: bytes) -> PlainSource | None:
    return PlainSource(data=data) if data.startswith(WASM_MAGIC) or looks_like_wat(data) else None


def _plain_limits(d: dict) -> dict | None:
    """A manifest dict's ``timeout_ms`` and ``memory`` as PlainSource.limits, when each is plainly
    valid: None (unset), or exactly an int from 0 to its ``limits.OPTION_HIGH``; ``memory`` a dict
    of its keys. Else None: the schema checks them (or takes an int subclass) and says why."""
    from extism_fast.manifest.limits import OPTION_HIGH  # only a dict with limits loads it

    given = {"timeout_ms": d.get("timeout_ms")}
    memory = d.get("memory")
    if memory is not None:
        if type(memory) is not dict or not all(type(key) is str for key in memory):
            return None
        given.update(("memory." + key, value) for key, value in memory.items())
    limits = {}
    for path, value in given.items():
        high = OPTION_HIGH.get(path)
        if high is None or (value is not None and (type(value) is not int or not 0 <= value <= high)):
            return None  # an unknown key, a bool, a float, out of range...
        if value is not None:
            limits[path] = value
    return limits


def _plain_dict(d: dict) -> PlainSource | None:
    # {"wasm": [{"path": str} or {"data": bytes} or {"url": str}, maybe with "hash"], "config": {...},
    # "timeout_ms": int, "memory": {...}, "allowed_hosts": [...], "allowed_paths": {...}} and nothing else: what
    # Manifest.from_dict makes of it is plain (a path as a WasmFile: never read as a manifest).
    if not d.keys() <= {"wasm", "config", "timeout_ms", "memory", "allowed_hosts", "allowed_paths"}:
        return None
    limits = _plain_limits(d) if "timeout_ms" in d or "memory" in d else {}
    grants = _plain_grants(d) if "allowed_hosts" in d or "allowed_paths" in d else (None, None)
    if limits is None or grants is None:
        return None
    wasm, config = d.get("wasm", ()), d.get("config")
    config = {} if config is None else config  # null: the default, as from_dict reads it
    if type(wasm) not in (list, tuple) or len(wasm) != 1 or not _plain_config(config, removes=False):
        return None
    entry = wasm[0]
    if type(entry) is not dict:
        return None
    hash_ = entry.get("hash")
    if hash_ is not None and not (type(hash_) is str and is_sha256_hex(hash_)):  # else the schema's
        return None
    sources = [key for key in entry if key != "hash"]
    if len(sources) != 1:
        return None
    kind = sources[0]
    value = entry[kind]
    if kind == "path" and type(value) is str:
        found = _plain_file(value)
    elif kind == "url" and _is_text(value):
        found = _plain_url(value)  # type: ignore[arg-type]
    elif kind == "data" and isinstance(value, (bytes, bytearray, memoryview)):  # base64 text: the schema's
        found = _plain_bytes(bytes(value))
    else:
        return None
    if found is None:
        return None
    hosts, paths = grants
    return PlainSource(found.data, found.path, dict(config), limits, hosts, paths, hash_, found.url)


def plain_source(source: object) -> PlainSource | None:
    """``source`` as a plain plugin when it is one (see the module's docstring), else None. The
    same decisions as coerce_source, whose Manifest of such a source equals its ``manifest()``."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _plain_bytes(bytes(source))
    if isinstance(source, str):
        if looks_like_json_object(source):
            return None
        if looks_like_wat(source):
            try:
                return PlainSource(data=source.encode("utf-8"))
            except UnicodeEncodeError:  # a lone surrogate: coerce_source names it
                return None
        return None if looks_like_toml(source) else _plain_file(source)
    if isinstance(source, os.PathLike):
        path = os.fspath(source)
        return _plain_file(path) if isinstance(path, str) else None
    if type(source) is dict:
        return _plain_dict(source)
    return None
