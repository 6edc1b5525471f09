"""One plugin instance's options, resolved once: the manifest, Plugin's keyword arguments, the
environment and the defaults become one frozen :class:`PluginOptions`, and C receives them as one
``instance_options`` struct (kernel_c/instance.h), whose first member ``settings`` is C's
``instance_settings`` (kept whole by plugin_instance).

Every option C enforces is declared once (runtime/declarations.py: ``C_SETTINGS``). From those
declarations comes all the rest: :func:`plugin_options` resolves them into ``PluginOptions.settings``,
setup.py generates the C struct (``declarations.c_settings_header``, into
build/generated/instance_settings.h) and the table every plugin's settings are resolved by
(:func:`use_built_settings`: a plain plugin's without the declarations), :func:`c_layout` gives the
offsets the runtime's ``_pack_options`` writes each one at, by name. tests/test_options.py checks that
the built header, the ctypes mirror (``declarations.c_types``) and the C sizes agree.

Every check of a Plugin / CompiledPlugin option is here (the manifest's own schema is checked by
manifest/schema.py when it is parsed).
"""

import os

from extism_fast.errors import ManifestError
from extism_fast.host.logs import LazyLogger
from extism_fast.manifest.plain import PlainSource

# Loaded with the first plugin, not with the package; the manifest classes (attrs) and the options'
# declarations (runtime/declarations.py) only when a plugin has a Manifest (a plain one has none:
# manifest/plain.py); typing and collections never (tests/test_cold_start.py): the tuples here are
# runtime/records.py's, namedtuples to type checkers.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import logging
    from collections import namedtuple as record
    from typing import Any, Optional

    from extism_fast.manifest import Manifest
else:
    from extism_fast.runtime.records import record

__all__ = ["PluginOptions", "plugin_options", "compile_options", "resolve_interruptible", "ENVIRONMENT",
           "WASI_STDIO_MODES", "c_layout", "settings_tables", "use_built_settings"]

logger = LazyLogger()  # logging loads with the first record

#: The environment variables a Plugin reads when it is created, as ``_runtime`` passes them to
#: :func:`plugin_options` (read with C getenv there: ~50 ns each, where os.environ costs ~1 us).
ENVIRONMENT = (b"EXTISM_FAST_STRICT", b"EXTISM_ENABLE_WASI_OUTPUT", b"EXTISM_MEMDUMP", b"EXTISM_COREDUMP")

#: wasi_stdio values and their wasi_stdio_mode in C (instance.h).
WASI_STDIO_MODES = {"inherit": 1, "log": 2, "discard": 0}


# ---------------------------------------------------------------------------------------------
# The options C enforces (declared in runtime/declarations.py), as built
# ---------------------------------------------------------------------------------------------

if TYPE_CHECKING:  # a module attribute made by __getattr__
    Settings: "Any"


def __getattr__(name: str) -> "Any":  # PEP 562: made with the table (settings_tables)
    if name == "Settings":
        return settings_tables().settings
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: What the runtime packs and a plain plugin gets, from the build (settings_tables).
_Tables = record("_Tables", [
    "settings",                 # the Settings record class: one field per instance_settings field
    "fields",                   # ((name, C type), ...) in order
    "plain",                    # the values of a manifest that sets no option (None where a keyword sets it)
    "from_manifest",            # (position, manifest path, converter name in manifest/limits.py or None)
    "keyword_positions",        # Plugin keyword -> its position
    "max_http_response_bytes",  # its default (host side: not in C's settings)
    "layout",                   # c_layout()
])


_TABLES: "Optional[_Tables]" = None


def use_built_settings(fields: tuple, plain: tuple, from_manifest: tuple, max_http_response_bytes: int,
                       layout: tuple) -> None:
    """The table the build generated from the declarations (``declarations.c_settings_table``), handed by
    the extension with the first plugin (runtime/ does not import it): every plugin's options are
    resolved from it, a plain plugin's without reading the declarations (the manifest classes)."""
    global _TABLES
    # A record whose fields type checkers cannot know: Any to them.
    settings: "Any" = record("Settings", [name for name, _ in fields])  # type: ignore[misc]
    _TABLES = _Tables(settings, fields, plain, from_manifest,
                      {name: i for i, (name, _) in enumerate(fields) if plain[i] is None}, max_http_response_bytes,
                      layout)


def settings_tables() -> _Tables:
    """instance_settings as the build generated it from the declarations (:func:`use_built_settings`);
    before the extension hands it (a first plugin), as the declarations give it (the same values:
    tests/test_options.py checks the built table against them)."""
    if _TABLES is None:
        from extism_fast.runtime.declarations import built_settings

        use_built_settings(*built_settings())
    return _TABLES  # type: ignore[return-value]  # set by use_built_settings


#: PluginOptions' fields.
_PluginOptionsFields = record("_PluginOptionsFields", [
    "manifest",                 # Manifest | PlainSource: the compiled plugin's (or it with Plugin's config)
    "settings",                 # Settings (settings_tables)
    "config",                   # ((key bytes, value bytes), ...)
    "mounts",                   # ((host path str, host path bytes, guest bytes, read_only), ...)
    "wasi_env",                 # (name, value, name, value...) as bytes
    "wasi_args",                # (arg, ...) as bytes
    "allowed_hosts",            # served by the http_request host service (_host_http.pxi), not C
    "max_http_response_bytes",  # int
    "http_response_headers",    # bool
    "log_wasi_output",          # bool: wasi_stdio == "log": logged after each call
    "logger",                   # logging.Logger or None
    "memdump",                  # EXTISM_MEMDUMP / EXTISM_COREDUMP as set then (str); None = unset
    "coredump",
    "packed",                   # [the C struct], made by the runtime for the first instance (_pack_options)
])


class PluginOptions(_PluginOptionsFields):
    """Everything a Plugin runs under, resolved (frozen: a tuple). ``settings`` holds what C's
    instance_settings gets, by name (``declarations.C_SETTINGS``); the rest stays on the host side."""

    __slots__ = ()  # a tuple, as its base: no instance dict

    def with_config(self, manifest: "Manifest | PlainSource") -> "PluginOptions":
        """These options for ``manifest``, which differs from theirs in its config only (Plugin's
        ``config`` merged in): Plugin(compiled, config=...) resolves nothing else again."""
        return tuple.__new__(PluginOptions,
                             (manifest, *self[1:_CONFIG], _config(manifest), *self[_CONFIG + 1:_PACKED], []))

    def check_mounts(self) -> None:
        """Each mounted host directory must exist when an instance is made from these options."""
        for host_path, _, _, _ in self.mounts:
            if not os.path.isdir(host_path):
                raise ManifestError(f"manifest.allowed_paths: host directory {host_path!r} does not exist")


_CONFIG = PluginOptions._fields.index("config")
_PACKED = PluginOptions._fields.index("packed")


# ---------------------------------------------------------------------------------------------
# Resolution and checks
# ---------------------------------------------------------------------------------------------


def resolve_interruptible(manifest: "Manifest | PlainSource", interruptible: "Any") -> bool:
    """Whether a plugin gets epoch interruption: yes unless asked not to (as the official runtime,
    whose calls can always be cancelled); a timeout (a Manifest's or a plain plugin's: the same
    attribute) cannot be honoured without it."""
    if interruptible is None:
        return True
    if not interruptible and manifest.timeout_ms:
        raise ManifestError(f"manifest.timeout_ms = {manifest.timeout_ms} needs an interruptible "
                            f"plugin: drop interruptible=False or the timeout")
    return bool(interruptible)


def compile_options(manifest: "Manifest | PlainSource", wasi: bool, fuel: "Any", interruptible: "Any") -> bool:
    """CompiledPlugin's options checked; returns whether it is interruptible."""
    # As the official runtime: allowed_paths without WASI is ignored, not refused.
    if manifest.allowed_paths and not wasi:
        logger.warning("manifest.allowed_paths is ignored: WASI is not enabled (pass wasi=True "
                       "to mount directories)")
    if fuel is not None:  # instructions per call, a u64 for wasmtime
        from extism_fast.manifest.limits import U64_MAX
        from extism_fast.manifest.schema import check_int_range

        check_int_range("fuel", fuel, 1, U64_MAX)
    return resolve_interruptible(manifest, interruptible)


def check_compiled_options(compiled: "Any", wasi: "Any", functions: "Any", fuel: "Any", registry: "Any") -> None:
    """Plugin(compiled, ...): options that belong to the compilation must agree with it (else the
    fuel budget, WASI or host functions asked for would be silently dropped)."""
    if fuel is not None and fuel != compiled.fuel:
        raise ManifestError(f"fuel={fuel!r} conflicts with the CompiledPlugin (fuel={compiled.fuel!r}): "
                            f"pass fuel to CompiledPlugin")
    if wasi and not compiled.wasi:
        raise ManifestError("wasi=True conflicts with the CompiledPlugin (compiled without WASI): "
                            "pass wasi=True to CompiledPlugin")
    # functions=[] is what programs for the official SDK pass everywhere (it ignores the argument
    # with a CompiledPlugin): only host functions actually given must match.
    if functions is not registry and functions:
        given = {(f.namespace, f.name, f.f) for f in functions}
        if given != {(f.namespace, f.name, f.f) for f in compiled.functions}:
            raise ManifestError("functions=... conflicts with the CompiledPlugin's host functions: "
                                "pass them to CompiledPlugin")


def wasi_stdio_mode(wasi_stdio: "Any", enable_wasi_output: "Optional[str]") -> str:
    """Plugin(wasi_stdio=...): as asked; None decides as every official host does: inherited when
    EXTISM_ENABLE_WASI_OUTPUT is set (to any value), discarded otherwise."""
    if wasi_stdio is None:
        return "inherit" if enable_wasi_output is not None else "discard"
    if wasi_stdio not in WASI_STDIO_MODES:
        raise ManifestError(f"wasi_stdio must be one of {', '.join(WASI_STDIO_MODES)} or None, "
                            f"got {wasi_stdio!r}")
    return str(wasi_stdio)


def _utf8(text: str, field: str) -> bytes:
    try:
        return text.encode()
    except UnicodeEncodeError:
        raise ManifestError(f"{field}: not encodable as UTF-8 (a lone surrogate)") from None


def wasi_strings(wasi_env: "Any", wasi_args: "Any", wasi: bool) -> tuple[tuple, tuple]:
    """``wasi_env`` / ``wasi_args`` as the C strings WASI gets: ((name, value, ...), (arg, ...)).
    Without WASI they are ignored with a warning, as allowed_paths is. Values never appear in
    messages (an environment often carries secrets)."""
    if wasi_env is None and wasi_args is None:
        return (), ()
    if wasi_env is not None and not isinstance(wasi_env, dict):
        raise TypeError(f"wasi_env must be a dict of str to str, got {type(wasi_env).__name__}")
    if wasi_args is not None and (isinstance(wasi_args, (str, bytes)) or not isinstance(wasi_args, (list, tuple))):
        raise TypeError(f"wasi_args must be a list of str, got {type(wasi_args).__name__}")
    env: list[bytes] = []
    args: list[bytes] = []
    for name, value in (wasi_env or {}).items():
        if not isinstance(name, str) or not name or "=" in name or "\0" in name:
            raise ManifestError(f"wasi_env: invalid variable name {name!r} (a non-empty str without '=' or NUL)")
        if not isinstance(value, str) or "\0" in value:
            raise ManifestError(f"wasi_env[{name!r}]: the value must be a str without NUL "
                                f"(got {type(value).__name__})")
        env += [_utf8(name, "wasi_env"), _utf8(value, f"wasi_env[{name!r}]")]
    for i, arg in enumerate(wasi_args or ()):
        if not isinstance(arg, str) or "\0" in arg:
            raise ManifestError(f"wasi_args[{i}]: must be a str without NUL (got {type(arg).__name__})")
        args.append(_utf8(arg, f"wasi_args[{i}]"))
    if not wasi:
        logger.warning("extism_fast: wasi_env/wasi_args are ignored: WASI is not enabled (pass wasi=True)")
        return (), ()
    return tuple(env), tuple(args)


def _config(manifest: "Manifest | PlainSource") -> tuple:
    """The manifest's config as PluginOptions holds it: ((key bytes, value bytes), ...)."""
    return tuple((key.encode(), value.encode()) for key, value in manifest.config.items())


def _mounts(manifest: "Manifest | PlainSource", wasi: bool) -> tuple:
    # Without WASI, allowed_paths is ignored (CompiledPlugin logged it), as in the official runtime.
    mounts = []
    for host, guest in ((manifest.allowed_paths or {}) if wasi else {}).items():
        read_only = host.startswith("ro:")
        host_path = host[3:] if read_only else host
        mounts.append((host_path, os.fsencode(host_path), guest.encode(), read_only))
    return tuple(mounts)


def _host_side(manifest: "Manifest | PlainSource", wasi: bool) -> tuple[tuple, tuple, tuple, int]:
    """The manifest's options the host enforces: (config, mounts, allowed_hosts,
    max_http_response_bytes) as PluginOptions holds them; a Manifest and a plain plugin alike."""
    return (_config(manifest), _mounts(manifest, wasi), tuple(manifest.allowed_hosts or ()),
            _max_http_response_bytes(manifest))


def _max_http_response_bytes(manifest: "Manifest | PlainSource") -> int:
    # As set, else the default: the value in force (MemoryOptions.effective_max_http_response_bytes).
    given = _given(manifest, "memory.max_http_response_bytes")
    return settings_tables().max_http_response_bytes if given is None else given


def _is_logger(value: "Any") -> bool:
    import logging  # loaded already when the caller made a Logger

    return isinstance(value, logging.Logger)


def plugin_options(compiled: "Any", manifest: "Manifest | PlainSource", environment: tuple, *, wasi_stdio: "Any" = None,
                   strict: "Any" = None, wasi_env: "Any" = None, wasi_args: "Any" = None, logger: "Any" = None,
                   http_response_headers: bool = False) -> PluginOptions:
    """The options of a Plugin of ``compiled`` running ``manifest`` (the compiled plugin's, or it
    with Plugin's ``config`` merged in). ``environment``: the values of :data:`ENVIRONMENT` now."""
    strict_env, enable_wasi_output, memdump, coredump = environment
    stdio = wasi_stdio_mode(wasi_stdio, enable_wasi_output)
    if logger is not None and not _is_logger(logger):
        raise TypeError(f"logger must be a logging.Logger, got {type(logger).__name__}")
    env, args = wasi_strings(wasi_env, wasi_args, compiled.wasi)
    strict = (strict_env or "").strip().lower() in ("1", "true", "yes", "on") if strict is None else bool(strict)
    keywords = {"fuel": compiled.fuel or 0, "wasi": int(bool(compiled.wasi)), "wasi_stdio": WASI_STDIO_MODES[stdio],
                "strict": int(strict)}
    config, mounts, allowed_hosts, max_http_response_bytes = _host_side(manifest, compiled.wasi)
    options = PluginOptions(
        manifest=manifest,
        settings=c_settings(manifest, keywords),
        config=config,
        mounts=mounts,
        wasi_env=env,
        wasi_args=args,
        allowed_hosts=allowed_hosts,
        max_http_response_bytes=max_http_response_bytes,
        http_response_headers=bool(http_response_headers),
        log_wasi_output=stdio == "log",
        logger=logger,
        memdump=memdump or None,  # empty means unset
        coredump=coredump or None,
        packed=[],
    )
    options.check_mounts()
    return options


def c_settings(manifest: "Manifest | PlainSource", keywords: dict) -> "Any":
    """The Settings C gets, by the build's table (settings_tables, from the declarations): each
    manifest option C enforces as the manifest sets it, converted by its CSetting's to_c, else its
    default as built (what option_value and to_c give an unset one); each of
    ``declarations.KEYWORD_SETTINGS`` from ``keywords`` (by name, as given). A Manifest and a plain
    plugin alike: a plain one without options converts nothing (and loads nothing)."""
    tables = settings_tables()
    values = list(tables.plain)
    for name, position in tables.keyword_positions.items():
        values[position] = keywords[name]
    # A plain plugin without limits sets none: its (the common) Plugin() skips the lookups.
    options_set = tables.from_manifest if not isinstance(manifest, PlainSource) or manifest.limits else ()
    for position, path, to_c in options_set:
        value = _given(manifest, path)
        if value is not None:
            values[position] = value if to_c is None else _converter(to_c)(value)
    return tuple.__new__(tables.settings, values)


def _given(manifest: "Manifest | PlainSource", path: str) -> "Any":
    """The value ``manifest`` sets for the option at ``path`` ("memory.max_pages"), None when unset
    (a plain plugin keeps its options by path)."""
    if isinstance(manifest, PlainSource):
        return manifest.given(path)
    value: "Any" = manifest
    for name in path.split("."):
        value = getattr(value, name)
    return value


def _converter(name: str) -> "Any":
    """A CSetting's to_c, by the name the build's table gives it: a function of manifest/limits.py."""
    from extism_fast.manifest import limits  # a Manifest loaded it; a plain plugin given options loads it

    return getattr(limits, name)


# ---------------------------------------------------------------------------------------------
# The C struct (kernel_c/instance.h, the generated instance_settings.h), packed by name
# ---------------------------------------------------------------------------------------------


def c_layout() -> tuple:
    """The scalars of instance_options as the runtime packs them: (name, byte offset, C type) of
    each field of its ``settings`` (instance_settings), read from the ``PluginOptions.settings``
    field of that name; the arrays (config, mounts, WASI argv and environment) are packed by the
    runtime itself (_plugin.pxi, _pack_options). Laid out by the build (``declarations.c_layout``),
    not read from the ctypes mirror: ctypes costs a first Plugin milliseconds to load
    (tests/test_options.py checks both agree with the C header)."""
    return settings_tables().layout
