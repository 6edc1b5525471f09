"""Plugin sources: what a user may pass to ``Plugin(...)`` (a path, bytes, WAT or manifest text, a
dict, wasm sources) turned into a :class:`~extism_fast.manifest.schema.Manifest`
(:func:`coerce_source`), with the sniffing that tells a module from a manifest.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

import attrs

from extism_fast.errors import ManifestError
from extism_fast.manifest.plain import (SNIFF_BYTES, WASM_MAGIC, PlainSource, file_is_manifest,
                                        looks_like_json_object, looks_like_toml, looks_like_wat, plain_source)
from extism_fast.manifest.schema import (_SOURCE_TYPES, Manifest, WasmData, WasmFile, _check_text,
                                         _fail, _parse_toml, _source_from_dict, merge_config)

__all__ = ["coerce_source", "coerce_told_source", "looks_like_wat", "manifest_format", "manifest_from_text"]



def _file_source(path: str | os.PathLike[str]) -> WasmFile:
    if not isinstance(os.fspath(path), str):
        raise _fail("plugin source", "a str path", path)
    if not os.path.isfile(path):
        raise ManifestError(f"plugin source: no such file: {os.fspath(path)!r}")
    return WasmFile(path)


def _from_file(path: str | os.PathLike[str]) -> Manifest:
    """A plugin file: a wasm/WAT module, or a manifest file as the official SDK reads one (JSON
    when it starts with ``{``; TOML when named ``*.toml``). Relative paths inside a manifest
    file are relative to the working directory, as in the official runtime."""
    source = _file_source(path)
    try:
        with open(path, "rb") as f:
            head = f.read(SNIFF_BYTES)
            is_manifest = file_is_manifest(source.path, head)
            text = head + f.read() if is_manifest else b""
    except OSError as exc:
        raise ManifestError(f"plugin source: cannot read {source.path!r}: {exc.strerror or exc}") from None
    return manifest_from_text(text) if is_manifest else Manifest([source])


# A TOML manifest's modules: a `[[wasm]]` table or a `wasm = [...]` key at the start of a line.
_TOML_WASM = re.compile(rb"^[ \t]*(\[\[[ \t]*wasm[ \t]*\]\]|wasm[ \t]*=)", re.MULTILINE)


def manifest_format(path: str) -> str | None:
    """``"JSON"`` or ``"TOML"`` when the file at ``path`` looks like a manifest (a module never
    starts with ``{`` and holds no ``[[wasm]]`` line), else None (unreadable files included):
    for telling a user who passed a manifest where a module was expected."""
    try:
        with open(path, "rb") as f:
            head = f.read(SNIFF_BYTES)
    except (OSError, ValueError):
        return None
    if head.startswith(WASM_MAGIC) or looks_like_wat(head):
        return None
    if looks_like_json_object(head):
        return "JSON"
    return "TOML" if _TOML_WASM.search(head) else None


def manifest_from_text(text: str | bytes) -> Manifest:
    """Parse a JSON or TOML manifest (JSON when it starts with ``{``), as the official runtime
    accepts either wherever it takes a manifest."""
    if looks_like_json_object(text):
        return Manifest.from_json(text)
    return Manifest.from_dict(_parse_toml(text, "not a JSON object, and invalid TOML"))


def coerce_source(source: Any, config: Mapping[str, str | None] | None = None) -> Manifest:
    """Turn anything a user may pass to ``Plugin(...)`` into a :class:`Manifest`.

    Accepted: a :class:`Manifest`; a manifest ``dict``; a wasm source object or a list of them
    (list items may also be source dicts); ``bytes``-like wasm binary, WAT text, JSON or TOML
    manifest; a ``str`` holding a JSON or TOML manifest, WAT text (see :func:`looks_like_wat`) or
    a file path (a module, or a manifest file: see :func:`_from_file`); an ``os.PathLike`` file
    path. ``config``, if given, is merged over the manifest's own config (see
    :func:`merge_config`).
    """
    return coerce_told_source(source, plain_source(source), config)


def coerce_told_source(source: Any, plain: PlainSource | None,
                       config: Mapping[str, str | None] | None = None) -> Manifest:
    """:func:`coerce_source` of a source already told apart by ``plain_source`` (``plain``: its
    answer, the common case; its decisions are this function's), which CompiledPlugin asks first
    so as to need no Manifest: the source is not sniffed (a file opened) twice."""
    manifest: Manifest
    if plain is not None:
        manifest = plain.manifest()
    elif isinstance(source, Manifest):
        manifest = source
    elif isinstance(source, Mapping):
        manifest = Manifest.from_dict(source)
    elif isinstance(source, _SOURCE_TYPES):
        manifest = Manifest([source])
    elif isinstance(source, (list, tuple)):
        items = [
            _source_from_dict(f"manifest.wasm[{i}]", s) if isinstance(s, Mapping) else s
            for i, s in enumerate(source)
        ]
        manifest = Manifest(items)
    elif isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)  # not a module (plain_source): a manifest, else the compiler says so
        if looks_like_json_object(data) or looks_like_toml(data):
            manifest = manifest_from_text(data)
        else:
            manifest = Manifest([WasmData(data)])
    elif isinstance(source, str):
        if looks_like_json_object(source):
            manifest = Manifest.from_json(source)
        elif looks_like_wat(source):
            _check_text("plugin source (WAT text)", source)
            manifest = Manifest([WasmData(source.encode("utf-8"))])
        elif looks_like_toml(source):
            manifest = Manifest.from_toml(source)
        else:
            manifest = _from_file(source)
    elif isinstance(source, os.PathLike):
        manifest = _from_file(source)
    else:
        raise ManifestError(
            "plugin source must be a Manifest, dict, bytes, str, path or wasm source, "
            f"got {type(source).__name__}"
        )
    if config is not None:
        manifest = attrs.evolve(manifest, config=merge_config(manifest.config, config))
    return manifest
