"""The options C enforces, as declared: each once, as a :class:`~extism_fast.manifest.schema.CSetting`
(a manifest option on its own field, manifest/schema.py, ``option(..., c=CSetting(...))``; a
Plugin keyword in :data:`KEYWORD_SETTINGS` here), read into :data:`C_SETTINGS` (every field of C's
``instance_settings``, in its order), and what is made from them: the C header and the runtime's
table that setup.py generates (:func:`c_settings_header`, :func:`c_settings_table`) and the ctypes
mirror (:func:`c_types`). runtime/options.py resolves a Plugin's options by that table; a plain plugin
(manifest/plain.py) needs none of this (the build's table comes with the extension:
options.use_built_settings), so a first plain plugin does not load this module. Reading the
declarations loads the manifest classes (attrs).
"""

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections import namedtuple as record
    from typing import Any, Optional
else:
    from extism_fast.runtime.records import record

__all__ = ["C_SETTINGS", "KEYWORD_SETTINGS", "C_SCALARS", "declared", "c_types", "c_layout", "c_settings_header",
           "built_settings", "c_settings_table"]

#: The C types a CSetting may have: (their ctypes name, size).
C_SCALARS = {"int64_t": ("c_int64", 8), "uint64_t": ("c_uint64", 8), "int": ("c_int", 4)}


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
    """(CSetting named, the option's path in a manifest, its default) of each manifest option C
    enforces: Manifest's own fields and manifest.memory's (``"timeout_ms"``, ``"memory.max_pages"``)."""
    import attrs

    from extism_fast.manifest import Manifest, MemoryOptions, limits

    found = []
    for where, cls in (("", Manifest), ("memory.", MemoryOptions)):
        for field in attrs.fields(cls):
            setting = field.metadata.get("c")
            if setting is not None:
                if setting.c_type not in C_SCALARS:
                    raise TypeError(f"{cls.__name__}.{field.name}: C type {setting.c_type!r} is not one of "
                                    f"{', '.join(C_SCALARS)}")
                if setting.to_c is not None and getattr(limits, setting.to_c.__name__, None) is not setting.to_c:
                    raise TypeError(f"{cls.__name__}.{field.name}: to_c must be a function of manifest/limits.py "
                                    f"(the build's table names it), got {setting.to_c!r}")
                found.append((attrs.evolve(setting, name=setting.name or field.name), where + field.name,
                              field.metadata["default"]))
    return tuple(found)


#: The declarations read (they need the manifest classes: made on first use, by declared).
_Declared = record("_Declared", [
    "c_settings",        # C_SETTINGS
    "keyword_settings",  # KEYWORD_SETTINGS
    "from_manifest",     # (position, path, default, to_c) of each manifest option C enforces
])


_DECLARED: "Optional[_Declared]" = None


def declared() -> _Declared:
    """The declarations, read once (the manifest classes load then)."""
    global _DECLARED
    if _DECLARED is None:
        manifest_settings, keyword_settings = _manifest_settings(), _keyword_settings()
        # The 8-byte ones first: no padding between.
        c_settings = tuple(sorted(tuple(setting for setting, _, _ in manifest_settings) + keyword_settings,
                                  key=lambda setting: -C_SCALARS[setting.c_type][1]))
        if len({setting.name for setting in c_settings}) != len(c_settings):
            raise AssertionError(f"two C settings share a name: {[setting.name for setting in c_settings]}")
        position = {setting.name: i for i, setting in enumerate(c_settings)}
        _DECLARED = _Declared(c_settings, keyword_settings, tuple(
            (position[setting.name], path, default, setting.to_c) for setting, path, default in manifest_settings))
    return _DECLARED


if TYPE_CHECKING:  # module attributes made by __getattr__
    C_SETTINGS: tuple
    KEYWORD_SETTINGS: tuple


def __getattr__(name: str) -> "Any":  # PEP 562: the declarations, read when first asked for
    if name == "C_SETTINGS":  # every field of C's instance_settings in its order
        return declared().c_settings
    if name == "KEYWORD_SETTINGS":
        return declared().keyword_settings
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
            _fields_ = [(setting.name, getattr(c, C_SCALARS[setting.c_type][0]))
                        for setting in declared().c_settings]

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


def c_layout(fields: tuple) -> tuple:
    """(name, byte offset, C type) of each of instance_settings' ``fields`` ((name, C type), in
    order), each scalar aligned to its size, as the x86-64 and aarch64 ABIs do: options.c_layout,
    as built."""
    layout, offset = [], 0
    for name, c_type in fields:
        size = C_SCALARS[c_type][1]
        offset = (offset + size - 1) // size * size
        layout.append((name, offset, c_type))
        offset += size
    return tuple(layout)


def c_settings_header() -> str:
    """The C header declaring instance_settings from :data:`C_SETTINGS`: setup.py writes it into
    build/generated/instance_settings.h before compiling (instance_state.h includes it)."""
    c_settings = declared().c_settings
    width = max(len(f"{setting.c_type} {setting.name};") for setting in c_settings)
    fields = "".join(f"    {f'{setting.c_type} {setting.name};':<{width}} /* {setting.doc} */\n"
                     for setting in c_settings)
    return f"""/*
 * instance_settings.h - generated by setup.py from extism_fast/runtime/declarations.py (C_SETTINGS: the
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
    instance_settings' fields in order (name, C type), their values for a manifest that sets no
    option (each manifest option's default as C gets it; None where a Plugin keyword sets it), and
    for each manifest option C enforces (position, path in the manifest, the name of its to_c in
    manifest/limits.py or None): how a manifest's values replace those (options.c_settings, for a
    Manifest and a plain plugin alike); the host's max_http_response_bytes default (not in C's
    settings), and the fields' :func:`c_layout`."""
    from extism_fast.manifest.limits import DEFAULT_MAX_HTTP_RESPONSE_BYTES

    read = declared()
    plain: list = [None] * len(read.c_settings)
    for position, _, default, to_c in read.from_manifest:
        plain[position] = default if to_c is None else to_c(default)
    fields = tuple((setting.name, setting.c_type) for setting in read.c_settings)
    from_manifest = tuple((position, path, None if to_c is None else to_c.__name__)
                          for position, path, _, to_c in read.from_manifest)
    return fields, tuple(plain), from_manifest, DEFAULT_MAX_HTTP_RESPONSE_BYTES, c_layout(fields)


def c_settings_table() -> str:
    """:func:`built_settings` as Cython source: setup.py writes it into
    build/generated/built_settings.pxi, which the extension includes and hands to
    :func:`use_built_settings` with the first plugin (no module to load for it)."""
    return f"""# built_settings.pxi - generated by setup.py from extism_fast/runtime/declarations.py (built_settings,
# c_settings_table), with build/generated/instance_settings.h: do not edit, declare the option there.
# instance_settings' fields in order (name, C type), their values for a manifest that sets no option
# (None: a Plugin keyword's), (position, manifest path, converter in manifest/limits.py) of each manifest
# option C enforces, the default max_http_response_bytes, and the fields' layout (name, offset, C type):
# _load_options hands them to options.use_built_settings.
_BUILT_SETTINGS = {built_settings()!r}
"""
