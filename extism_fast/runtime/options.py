"""One plugin instance's options, resolved once: the manifest, Plugin's keyword arguments, the
environment and the defaults become one frozen :class:`PluginOptions`, and C receives them as one
``instance_options`` struct (kernel_c/instance.h), whose first member ``settings`` is C's
``instance_settings`` (kept whole by plugin_instance).

Every option C enforces is declared once, as a :class:`~extism_fast.manifest.schema.CSetting`: a
manifest option on its own field (manifest/schema.py, ``option(..., c=CSetting(...))``), a Plugin
keyword in :data:`KEYWORD_SETTINGS` here. From those declarations (:data:`C_SETTINGS`) comes
all the rest: :func:`plugin_options` resolves them into ``PluginOptions.settings``, setup.py
generates the C struct (:func:`c_settings_header`, into build/generated/instance_settings.h), the
ctypes mirror (:func:`c_types`) gives the offsets the runtime's ``_pack_options`` writes each one
at, by name. tests/test_options.py checks that the built header, the mirror and the C sizes agree.

Every check of a Plugin / CompiledPlugin option is here (the manifest's own schema is checked by
manifest/schema.py when it is parsed).
"""

import os

from extism_fast.errors import ManifestError
from extism_fast.host.logs import LazyLogger
from extism_fast.manifest.plain import PlainSource

# Loaded with the first plugin, not with the package; the manifest classes (attrs) only when a
# plugin has a Manifest (a plain one has none: manifest/plain.py), or C_SETTINGS is read; typing
# and collections never (tests/test_cold_start.py): the tuples here are runtime/records.py's,
# namedtuples to type checkers.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import logging
    from collections import namedtuple as record
    from typing import Any, Optional

    from extism_fast.manifest import Manifest
else:
    from extism_fast.runtime.records import record

__all__ = ["PluginOptions", "plugin_options", "compile_options", "resolve_interruptible", "ENVIRONMENT",
           "WASI_STDIO_MODES", "C_SETTINGS", "KEYWORD_SETTINGS", "c_settings_header", "settings_tables",
           "use_built_settings"]

logger = LazyLogger()  # logging loads with the first record

#: The environment variables a Plugin reads when it is created, as ``_runtime`` passes them to
#: :func:`plugin_options` (read with C getenv there: ~50 ns each, where os.environ costs ~1 us).
ENVIRONMENT = (b"EXTISM_FAST_STRICT", b"EXTISM_ENABLE_WASI_OUTPUT", b"EXTISM_MEMDUMP", b"EXTISM_COREDUMP")

#: wasi_stdio values and their wasi_stdio_mode in C (instance.h).
WASI_STDIO_MODES = {"inherit": 1, "log": 2, "discard": 0}


# ---------------------------------------------------------------------------------------------
# The options C enforces: each declared once
# ---------------------------------------------------------------------------------------------

#: c_layout()'s kinds of scalar: C's int64_t, uint64_t, int.
C_INT64, C_UINT64, C_INT = 0, 1, 2
#: The C types a CSetting may have: (their ctypes name, size, kind for c_layout).
_C_SCALARS = {"int64_t": ("c_int64", 8, C_INT64), "uint64_t": ("c_uint64", 8, C_UINT64), "int": ("c_int", 4, C_INT)}


def _keyword_settings() -> tuple:
    """The Plugin / CompiledPlugin keywords C receives, set by plugin_options as they are (a manifest
    option C enforces is declared on its field, manifest/schema.py, and needs nothing here)."""
    from extism_fast.manifest.schema import CSetting

    return (
        CSetting("uint64_t", "budget of every call (fuel engine only; CompiledPlugin's fuel); 0 = unmetered",
                 name="fuel"),
        CSetting("int", "WASI is linked (CompiledPlugin's wasi)", name="wasi"),
        CSetting("int", "where WASI stdout/stderr go: wasi_stdio_mode (Plugin's wasi_stdio)", name="wasi_stdio"),
        CSetting("int", "bad kernel accesses trap with a precise message (kernel.h; Plugin's strict)", name="strict"),
    )


def _manifest_settings() -> tuple:
    """(CSetting named, the getter of the option's value from a Manifest, its default) of each
    manifest option C enforces: Manifest's own fields and manifest.memory's."""
    import operator

    import attrs

    from extism_fast.manifest import Manifest, MemoryOptions

    found = []
    for where, cls in (("", Manifest), ("memory.", MemoryOptions)):
        for field in attrs.fields(cls):
            setting = field.metadata.get("c")
            if setting is not None:
                if setting.c_type not in _C_SCALARS:
                    raise TypeError(f"{cls.__name__}.{field.name}: C type {setting.c_type!r} is not one of "
                                    f"{', '.join(_C_SCALARS)}")
                found.append((attrs.evolve(setting, name=setting.name or field.name),
                              operator.attrgetter(where + field.name), field.metadata["default"]))
    return tuple(found)


#: The declarations read (they need the manifest classes: made on first use, by _declared).
_Declared = record("_Declared", [
    "c_settings",        # C_SETTINGS
    "keyword_settings",  # KEYWORD_SETTINGS
    "from_manifest",     # (position, getter, default, to_c) of each manifest option C enforces
])


_DECLARED: "Optional[_Declared]" = None


def _declared() -> _Declared:
    global _DECLARED
    if _DECLARED is None:
        manifest_settings, keyword_settings = _manifest_settings(), _keyword_settings()
        # The 8-byte ones first: no padding between.
        c_settings = tuple(sorted(tuple(setting for setting, _, _ in manifest_settings) + keyword_settings,
                                  key=lambda setting: -_C_SCALARS[setting.c_type][1]))
        if len({setting.name for setting in c_settings}) != len(c_settings):
            raise AssertionError(f"two C settings share a name: {[setting.name for setting in c_settings]}")
        position = {setting.name: i for i, setting in enumerate(c_settings)}
        _DECLARED = _Declared(c_settings, keyword_settings, tuple(
            (position[setting.name], get, default, setting.to_c) for setting, get, default in manifest_settings))
    return _DECLARED


if TYPE_CHECKING:  # module attributes made by __getattr__
    C_SETTINGS: tuple
    KEYWORD_SETTINGS: tuple
    Settings: "Any"


def __getattr__(name: str) -> "Any":  # PEP 562: the declarations, read when first asked for
    if name == "C_SETTINGS":  # every field of C's instance_settings in its order
        return _declared().c_settings
    if name == "KEYWORD_SETTINGS":
        return _declared().keyword_settings
    if name == "Settings":
        return settings_tables().settings
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: What the runtime packs and a plain plugin gets, from the build (settings_tables).
_Tables = record("_Tables", [
    "settings",                 # the Settings record class: one field per instance_settings field
    "fields",                   # ((name, C type), ...) in order
    "plain",                    # a plain plugin's values (None where a keyword sets it)
    "keyword_positions",        # Plugin keyword -> its position
    "max_http_response_bytes",  # a plain plugin's (host side: not in C's settings)
])


_TABLES: "Optional[_Tables]" = None


def use_built_settings(fields: tuple, plain: tuple, max_http_response_bytes: int) -> None:
    """The table the build generated from the declarations (:func:`c_settings_table`), handed by
    the extension with the first plugin (runtime/ does not import it): a plugin without a Manifest
    resolves its options from it, without reading the declarations (the manifest classes)."""
    global _TABLES
    # A record whose fields type checkers cannot know: Any to them.
    settings: "Any" = record("Settings", [name for name, _ in fields])  # type: ignore[misc]
    _TABLES = _Tables(settings, fields, plain, {name: i for i, (name, _) in enumerate(fields) if plain[i] is None},
                      max_http_response_bytes)


def settings_tables() -> _Tables:
    """instance_settings as the build generated it from C_SETTINGS (:func:`use_built_settings`);
    before the extension hands it (a first plugin), as the declarations give it (the same values:
    tests/test_options.py checks the built table against them)."""
    if _TABLES is None:
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
    instance_settings gets, by name (:data:`C_SETTINGS`); the rest stays on the host side."""

    __slots__ = ()  # a tuple, as its base: no instance dict

    def with_config(self, manifest: "Manifest") -> "PluginOptions":
        """These options for ``manifest``, which differs from theirs in its config only (Plugin's
        ``config`` merged in): Plugin(compiled, config=...) resolves nothing else again."""
        config = tuple((key.encode(), value.encode()) for key, value in manifest.config.items())
        return tuple.__new__(PluginOptions, (manifest, *self[1:_CONFIG], config, *self[_CONFIG + 1:_PACKED], []))

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
    whose calls can always be cancelled); a timeout cannot be honoured without it."""
    if interruptible is None:
        return True
    if not interruptible and not isinstance(manifest, PlainSource) and manifest.timeout_ms:
        raise ManifestError(f"manifest.timeout_ms = {manifest.timeout_ms} needs an interruptible "
                            f"plugin: drop interruptible=False or the timeout")
    return bool(interruptible)


def compile_options(manifest: "Manifest | PlainSource", wasi: bool, fuel: "Any", interruptible: "Any") -> bool:
    """CompiledPlugin's options checked; returns whether it is interruptible."""
    if not isinstance(manifest, PlainSource) and manifest.allowed_paths and not wasi:  # as the official runtime: ignored, not refused
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


def _mounts(manifest: "Manifest", wasi: bool) -> tuple:
    # Without WASI, allowed_paths is ignored (CompiledPlugin logged it), as in the official runtime.
    mounts = []
    for host, guest in ((manifest.allowed_paths or {}) if wasi else {}).items():
        read_only = host.startswith("ro:")
        host_path = host[3:] if read_only else host
        mounts.append((host_path, os.fsencode(host_path), guest.encode(), read_only))
    return tuple(mounts)


def _host_side(manifest: "Manifest | PlainSource", wasi: bool) -> tuple[tuple, tuple, tuple, int]:
    """The manifest's options the host enforces: (config, mounts, allowed_hosts,
    max_http_response_bytes) as PluginOptions holds them; a plain plugin's are all defaults."""
    if isinstance(manifest, PlainSource):
        return (), (), (), settings_tables().max_http_response_bytes
    return (tuple((key.encode(), value.encode()) for key, value in manifest.config.items()),  # as with_config
            _mounts(manifest, wasi), tuple(manifest.allowed_hosts or ()),
            manifest.memory.effective_max_http_response_bytes)


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
    """The Settings C gets: each manifest option C enforces from its field (its value in force,
    as option_value: its default when unset, converted by its CSetting's to_c; a plain plugin's, as
    the build computed them: settings_tables), each of :data:`KEYWORD_SETTINGS` from ``keywords``
    (by name, as given)."""
    tables = settings_tables()
    values = list(tables.plain)
    for name, position in tables.keyword_positions.items():
        values[position] = keywords[name]
    if not isinstance(manifest, PlainSource):
        for position, get, default, to_c in _declared().from_manifest:
            value = get(manifest)
            if value is None:
                value = default
            values[position] = value if to_c is None else to_c(value)
    return tuple.__new__(tables.settings, values)


# ---------------------------------------------------------------------------------------------
# The C structs (kernel_c/instance.h, the generated instance_settings.h), packed by name
# ---------------------------------------------------------------------------------------------

# (CInstanceOptions, CKvEntry, CWasiPreopen, CInstanceSettings), made on first use (ctypes loads then)
_C_TYPES: "Any" = None


def c_types() -> "Any":
    """The ctypes mirrors of instance.h's instance_options, the generated instance_settings (from
    :data:`C_SETTINGS`), instance_state.h's wasi_preopen and vars.h's kv_entry."""
    global _C_TYPES
    if _C_TYPES is None:
        import ctypes as c

        class CKvEntry(c.Structure):
            _fields_ = [("key", c.c_char_p), ("key_len", c.c_uint64), ("value", c.c_char_p),
                        ("value_len", c.c_uint64)]

        class CWasiPreopen(c.Structure):
            _fields_ = [("host_path", c.c_char_p), ("guest_path", c.c_char_p), ("read_only", c.c_int)]

        class CInstanceSettings(c.Structure):  # from C_SETTINGS, as the generated header
            _fields_ = [(setting.name, getattr(c, _C_SCALARS[setting.c_type][0]))
                        for setting in _declared().c_settings]

        class CInstanceOptions(c.Structure):
            _fields_ = [
                ("settings", CInstanceSettings),
                ("config", c.POINTER(CKvEntry)),
                ("config_count", c.c_size_t),
                ("preopens", c.POINTER(CWasiPreopen)),
                ("preopen_count", c.c_size_t),
                ("wasi_args", c.POINTER(c.c_char_p)),
                ("wasi_arg_count", c.c_size_t),
                ("wasi_env", c.POINTER(c.c_char_p)),
                ("wasi_env_count", c.c_size_t),
            ]

        _C_TYPES = (CInstanceOptions, CKvEntry, CWasiPreopen, CInstanceSettings)
    return _C_TYPES


def c_layout() -> tuple:
    """The scalars of instance_options as the runtime packs them: (name, byte offset, kind) of each
    field of its ``settings`` (instance_settings), read from the ``PluginOptions.settings`` field of
    that name; the arrays (config, mounts, WASI argv and environment) are packed by the runtime
    itself (_plugin.pxi, _pack_options). Laid out here (settings is instance_options' first member;
    each scalar aligned to its size, as the x86-64 and aarch64 ABIs do), not read from the ctypes
    mirror: ctypes costs a first Plugin milliseconds to load (tests/test_options.py checks both
    agree with the C header)."""
    layout, offset = [], 0
    for name, c_type in settings_tables().fields:  # as built
        _, size, kind = _C_SCALARS[c_type]
        offset = (offset + size - 1) // size * size
        layout.append((name, offset, kind))
        offset += size
    return tuple(layout)


def c_settings_header() -> str:
    """The C header declaring instance_settings from :data:`C_SETTINGS`: setup.py writes it into
    build/generated/instance_settings.h before compiling (instance_state.h includes it)."""
    c_settings = _declared().c_settings
    width = max(len(f"{setting.c_type} {setting.name};") for setting in c_settings)
    fields = "".join(f"    {f'{setting.c_type} {setting.name};':<{width}} /* {setting.doc} */\n"
                     for setting in c_settings)
    return f"""/*
 * instance_settings.h - generated by setup.py from extism_fast/runtime/options.py (C_SETTINGS: the
 * manifest options declared with a CSetting in manifest/schema.py, and KEYWORD_SETTINGS): do not
 * edit, declare the option there. The scalar options of a plugin instance, as runtime/options.py
 * resolved them: the first member of instance_options (instance.h), kept whole by plugin_instance
 * (its `settings`), read as p->settings.<name> by the unit that enforces each one.
 */
#ifndef EXTISM_FAST_INSTANCE_SETTINGS_H
#define EXTISM_FAST_INSTANCE_SETTINGS_H

#include <stdint.h>

typedef struct instance_settings {{
{fields}}} instance_settings;

#endif
"""


def built_settings() -> tuple:
    """What the build hands the runtime (:func:`use_built_settings`), from the declarations:
    instance_settings' fields in order (name, C type), a plain plugin's value of each (its manifest
    options unset: their defaults as C gets them; None where a Plugin keyword sets it) and its
    max_http_response_bytes (the host's: not in C's settings)."""
    from extism_fast.manifest.limits import DEFAULT_MAX_HTTP_RESPONSE_BYTES

    declared = _declared()
    plain: list = [None] * len(declared.c_settings)
    for position, _, default, to_c in declared.from_manifest:
        plain[position] = default if to_c is None else to_c(default)
    fields = tuple((setting.name, setting.c_type) for setting in declared.c_settings)
    return fields, tuple(plain), DEFAULT_MAX_HTTP_RESPONSE_BYTES


def c_settings_table() -> str:
    """:func:`built_settings` as Cython source: setup.py writes it into
    build/generated/built_settings.pxi, which the extension includes and hands to
    :func:`use_built_settings` with the first plugin (no module to load for it)."""
    return f"""# built_settings.pxi - generated by setup.py from extism_fast/runtime/options.py (built_settings,
# c_settings_table), with build/generated/instance_settings.h: do not edit, declare the option there.
# instance_settings' fields in order (name, C type), a plain plugin's value of each (None: a Plugin
# keyword's) and its max_http_response_bytes: _load_options hands them to options.use_built_settings.
_BUILT_SETTINGS = {built_settings()!r}
"""
