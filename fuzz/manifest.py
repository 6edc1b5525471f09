"""Fuzz target ``manifest``: manifest parsing must give a Manifest or raise ManifestError.

The first input byte picks the entry point, the rest is its argument:

* 0: ``Manifest.from_json(bytes)``;  1: ``Manifest.from_json(str)`` (the bytes decoded with
  ``surrogateescape``, so lone surrogates reach the parser);
* 2: ``coerce_source(bytes)`` and ``coerce_source(str)`` (what ``Plugin(...)`` does first);
* 3: ``Manifest.from_dict`` and ``coerce_source`` of a Python value built from the bytes (keys
  drawn mostly from the manifest's own vocabulary, values of every JSON type plus bytes, tuples
  and huge integers).

``Manifest`` has no TOML reader, so TOML is not fuzzed. Any exception other than
:class:`extism_fast.ManifestError` is a crash, and so is a Manifest that does not survive
``to_json`` / ``from_json`` and ``to_dict`` / ``from_dict`` unchanged.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import atheris

from extism_fast import Manifest, ManifestError
from extism_fast.manifest import coerce_source

_KEYS = ["wasm", "memory", "config", "allowed_hosts", "allowed_paths", "timeout_ms", "data", "path",
         "url", "headers", "method", "name", "hash", "max_pages", "max_http_response_bytes",
         "max_var_bytes", "main", "ro:/tmp", "Authorization"]
_STRINGS = ["", "main", "a.wasm", "http://h/m.wasm", "https://u:p@h:8/x?q=1#f", "ftp://h/",
            "AGFzbQEAAAA=", "GET", "POST", "ro:", "*.example.com", "\0", "\ud800", "0" * 64,
            "extism:host/env", "env", "\r\n"]
_INTS = [0, 1, -1, 2**32 - 1, 2**32, 2**64 - 1, 2**64, 10**400]


def _value(fdp: atheris.FuzzedDataProvider, depth: int) -> Any:
    kind = fdp.ConsumeIntInRange(0, 11 if depth < 4 else 7)
    if kind == 0:
        return None
    if kind == 1:
        return fdp.ConsumeBool()
    if kind == 2:
        return _INTS[fdp.ConsumeIntInRange(0, len(_INTS) - 1)]
    if kind == 3:
        return fdp.ConsumeInt(9)
    if kind == 4:
        return fdp.ConsumeFloat()
    if kind == 5:
        return _STRINGS[fdp.ConsumeIntInRange(0, len(_STRINGS) - 1)]
    if kind == 6:
        return fdp.ConsumeUnicode(fdp.ConsumeIntInRange(0, 40))
    if kind == 7:
        return fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 40))
    if kind in (8, 9):
        return _dict(fdp, depth + 1)
    items = [_value(fdp, depth + 1) for _ in range(fdp.ConsumeIntInRange(0, 4))]
    return tuple(items) if kind == 10 else items


def _dict(fdp: atheris.FuzzedDataProvider, depth: int) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for _ in range(fdp.ConsumeIntInRange(0, 5)):
        pick = fdp.ConsumeIntInRange(0, len(_KEYS) + 1)
        if pick < len(_KEYS):
            key: Any = _KEYS[pick]
        elif pick == len(_KEYS):
            key = fdp.ConsumeUnicode(fdp.ConsumeIntInRange(0, 12))
        else:
            key = fdp.ConsumeInt(2)  # a non-string key
        out[key] = _value(fdp, depth)
    return out


def _check(make: Any, *args: Any) -> None:
    try:
        manifest = make(*args)
    except ManifestError:
        return
    if not isinstance(manifest, Manifest):
        raise AssertionError(f"{make.__name__} returned {type(manifest).__name__}")
    if Manifest.from_json(manifest.to_json()) != manifest:
        raise AssertionError(f"to_json/from_json changed the manifest {manifest!r}")
    if Manifest.from_dict(manifest.to_dict()) != manifest:
        raise AssertionError(f"to_dict/from_dict changed the manifest {manifest!r}")


def test_one_input(data: bytes) -> None:
    """The atheris entry point."""
    if not data:
        return
    mode, payload = data[0] % 4, data[1:]
    if mode == 0:
        _check(Manifest.from_json, payload)
    elif mode == 1:
        _check(Manifest.from_json, payload.decode("utf-8", "surrogateescape"))
    elif mode == 2:
        _check(coerce_source, payload)
        _check(coerce_source, payload.decode("utf-8", "surrogateescape"))
    else:
        fdp = atheris.FuzzedDataProvider(payload)
        value: Any = _dict(fdp, 0) if fdp.ConsumeBool() else _value(fdp, 0)
        if isinstance(value, dict):
            _check(Manifest.from_dict, value)
        _check(coerce_source, value)


_WASM = base64.b64encode(b"\0asm\x01\0\0\0").decode()
#: Valid manifests of the forms tests/test_manifest.py and tests/test_cli.py use.
VALID = [
    {"wasm": [{"data": _WASM}]},
    {"wasm": [{"path": "plugin.wasm", "name": "main"}]},
    {"wasm": [{"data": _WASM, "name": "lib", "hash": "0" * 64}, {"path": "dir/m.wasm"},
              {"url": "https://example.com/m.wasm", "headers": {"X-Token": "t"}, "method": "POST"}]},
    {"wasm": [{"data": _WASM}], "memory": {"max_pages": 4, "max_http_response_bytes": 1024,
                                           "max_var_bytes": 16}},
    {"wasm": [{"data": _WASM}], "config": {"greeting": "Hi", "k": "VALUE"}, "timeout_ms": 30},
    {"wasm": [{"data": _WASM}], "allowed_hosts": ["127.0.0.1", "*.example.com"],
     "allowed_paths": {"ro:/tmp": "/data", "/var": "/v"}},
    {"wasm": [{"url": "http://user:pw@h:8080/m.wasm"}], "timeout_ms": 2**64 - 1,
     "memory": {"max_pages": 2**32 - 1}},
]


def seeds() -> list[bytes]:
    """Each valid manifest as JSON bytes (mode 0), JSON text (mode 1) and a source (mode 2)."""
    out = []
    for manifest in VALID:
        text = json.dumps(manifest).encode()
        out += [b"\x00" + text, b"\x01" + text, b"\x02" + text]
    out += [b"\x02(module)", b"\x02\0asm\x01\0\0\0", b"\x03" + bytes(range(64))]
    return out
