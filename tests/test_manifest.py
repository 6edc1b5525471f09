"""Tests of extism_fast.manifest: validation, (de)serialisation, loading and plugin-source coercion.

Only ``extism_fast.manifest`` / ``extism_fast.errors`` are imported, so these run without the
compiled extension. The bytes used are fake modules: this layer never compiles them.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import pathlib
import threading

import attrs
import pytest

from extism_fast.errors import HashMismatchError, ManifestError
from extism_fast.manifest import (
    DEFAULT_MAX_HTTP_RESPONSE_BYTES,
    DEFAULT_MAX_VAR_BYTES,
    LoadedModule,
    Manifest,
    MemoryOptions,
    WasmData,
    WasmFile,
    WasmUrl,
    coerce_source,
)

WASM = b"\0asm\x01\0\0\0"
WASM2 = b"\0asm\x01\0\0\0\x00\x01"
WASM_SHA = hashlib.sha256(WASM).hexdigest()
WASM_B64 = base64.b64encode(WASM).decode()
WAT = "(module (func (export \"f\")))"


def err(exc_type, fn, *args, **kwargs) -> str:
    with pytest.raises(exc_type) as info:
        fn(*args, **kwargs)
    return str(info.value)


def mdict(**extra):
    return {"wasm": [{"data": WASM_B64}], **extra}


# --------------------------------------------------------------------------------------------------
# constants, defaults, every key
# --------------------------------------------------------------------------------------------------


def test_constants():
    assert DEFAULT_MAX_VAR_BYTES == 1 << 20
    assert DEFAULT_MAX_HTTP_RESPONSE_BYTES == 50 << 20


def test_defaults():
    m = Manifest([WasmData(WASM)])
    assert m.memory == MemoryOptions()
    assert m.config == {}
    assert m.allowed_hosts is None
    assert m.allowed_paths is None
    assert m.timeout_ms is None
    assert m.memory.effective_max_var_bytes == DEFAULT_MAX_VAR_BYTES
    assert m.memory.effective_max_http_response_bytes == DEFAULT_MAX_HTTP_RESPONSE_BYTES
    assert m.memory.max_memory_bytes is None
    assert WasmUrl("http://x/a.wasm").method == "GET"
    assert WasmUrl("http://x/a.wasm").headers == {}


def test_every_key_from_dict():
    d = {
        "wasm": [
            {"data": WASM_B64, "name": "lib", "hash": WASM_SHA},
            {"path": "m.wasm", "name": "other"},
            {"url": "https://example.com/m.wasm", "headers": {"X-A": "1"}, "method": "POST", "hash": WASM_SHA.upper()},
        ],
        "memory": {"max_pages": 4, "max_http_response_bytes": 100, "max_var_bytes": 0},
        "config": {"k": "v"},
        "allowed_hosts": ["*.example.com"],
        "allowed_paths": {"ro:/data": "/data", "/tmp": "/tmp"},
        "timeout_ms": 250,
    }
    m = Manifest.from_dict(d)
    assert m.wasm == [
        WasmData(WASM, name="lib", hash=WASM_SHA),
        WasmFile("m.wasm", name="other"),
        WasmUrl("https://example.com/m.wasm", headers={"X-A": "1"}, method="POST", hash=WASM_SHA.upper()),
    ]
    assert m.memory == MemoryOptions(max_pages=4, max_http_response_bytes=100, max_var_bytes=0)
    assert m.memory.max_memory_bytes == 4 * 65536
    assert m.memory.effective_max_var_bytes == 0  # 0 disables vars, not "default"
    assert m.memory.effective_max_http_response_bytes == 100
    assert m.config == {"k": "v"}
    assert m.allowed_hosts == ["*.example.com"]
    assert m.allowed_paths == {"ro:/data": "/data", "/tmp": "/tmp"}
    assert m.timeout_ms == 250
    assert m.to_dict() == d  # every key written back exactly


def test_null_optional_keys_mean_not_given():
    d = {
        "wasm": [
            {"data": WASM_B64, "name": None, "hash": None, "path": None, "url": None},
            {"url": "http://h/x", "headers": None, "method": None},
        ],
        "memory": None,
        "config": None,
        "allowed_hosts": None,
        "allowed_paths": None,
        "timeout_ms": None,
    }
    m = Manifest.from_dict(d)
    assert m == Manifest([WasmData(WASM), WasmUrl("http://h/x")])
    assert Manifest.from_dict(mdict(memory={"max_pages": None})).memory == MemoryOptions()


def test_frozen_and_inputs_copied():
    cfg = {"a": "1"}
    srcs = [WasmData(WASM)]
    m = Manifest(srcs, config=cfg)
    cfg["b"] = "2"
    srcs.append(WasmData(WASM2))
    assert m.config == {"a": "1"} and len(m.wasm) == 1
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        m.timeout_ms = 5  # type: ignore[misc]


def test_pathlike_and_buffer_converters(tmp_path):
    assert WasmFile(tmp_path / "a.wasm").path == str(tmp_path / "a.wasm")
    assert WasmData(bytearray(WASM)).data == WASM and type(WasmData(memoryview(WASM)).data) is bytes
    assert Manifest((WasmData(WASM),)).wasm == [WasmData(WASM)]
    assert Manifest([WasmData(WASM)], memory=None).memory == MemoryOptions()


def test_repr_does_not_dump_data():
    assert "<100000 bytes>" in repr(WasmData(b"x" * 100000))


# --------------------------------------------------------------------------------------------------
# validation errors: message names the field path and shows the bad value
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "d, expected",
    [
        (mdict(timeout_ms=-5), "manifest.timeout_ms must be a non-negative integer, got -5"),
        (mdict(timeout_ms=True), "manifest.timeout_ms must be a non-negative integer, got True"),
        (mdict(timeout_ms=1.5), "manifest.timeout_ms must be a non-negative integer, got 1.5"),
        (mdict(config={"k": 3}), "manifest.config['k'] must be a string, got a value of type int"),
        (mdict(config={1: "v"}), "manifest.config keys must be strings, got 1"),
        (mdict(config=["k"]), "manifest.config must be an object mapping strings to strings, got a value of type list"),
        (mdict(allowed_hosts="example.com"), "manifest.allowed_hosts must be a list of host globs, got 'example.com'"),
        (mdict(allowed_hosts=["ok", 7]), "manifest.allowed_hosts[1] must be a non-empty string, got 7"),
        (mdict(allowed_hosts=[""]), "manifest.allowed_hosts[0] must be a non-empty string, got ''"),
        (mdict(allowed_paths={"/h": 1}), "manifest.allowed_paths['/h'] must be a string, got 1"),
        (mdict(allowed_paths={"/h": ""}), "manifest.allowed_paths['/h'] must be a non-empty string, got ''"),
        (mdict(allowed_paths={"ro:": "/g"}), "manifest.allowed_paths key must be a non-empty host path, got 'ro:'"),
        (mdict(allowed_paths=["/h"]), "manifest.allowed_paths must be an object mapping strings to strings, got ['/h']"),
        (mdict(memory={"max_pages": -1}), "manifest.memory.max_pages must be an integer from 0 to 4294967295, got -1"),
        (mdict(memory={"max_var_bytes": True}), "manifest.memory.max_var_bytes must be an integer from 0 to 18446744073709551615, got True"),
        (
            mdict(memory={"max_http_response_bytes": "1"}),
            "manifest.memory.max_http_response_bytes must be an integer from 0 to 18446744073709551615, got '1'",
        ),
        (mdict(memory=[1]), "manifest.memory must be an object, got [1]"),
        ({"wasm": []}, "manifest.wasm must be a non-empty list of wasm sources, got []"),
        ({"wasm": {"data": WASM_B64}}, "manifest.wasm must be a non-empty list of wasm sources, got {'data'"),
        ({}, "manifest.wasm is required"),
        ({"wasm": None}, "manifest.wasm is required"),
        ({"wasm": ["x.wasm"]}, "manifest.wasm[0] must be an object with one of \"data\", \"path\" or \"url\", got 'x.wasm'"),
        (
            {"wasm": [{"data": WASM_B64}, {"data": WASM_B64, "hash": "abc"}]},
            "manifest.wasm[1].hash must be 64 hex characters, got 'abc'",
        ),
        ({"wasm": [{"data": WASM_B64, "hash": "g" * 64}]}, "manifest.wasm[0].hash must be 64 hex characters, got 'ggg"),
        ({"wasm": [{"data": WASM_B64, "name": ""}]}, "manifest.wasm[0].name must be a non-empty string, got ''"),
        ({"wasm": [{"data": WASM_B64, "name": 5}]}, "manifest.wasm[0].name must be a non-empty string, got 5"),
        ({"wasm": [{"data": WASM_B64, "name": "extism:host/env"}]}, "manifest.wasm[0].name 'extism:host/env' is reserved"),
        ({"wasm": [{"data": "not base64!"}]}, "manifest.wasm[0].data must be valid base64, got 'not base64!'"),
        ({"wasm": [{"data": 12}]}, "manifest.wasm[0].data must be bytes or a base64 string, got 12"),
        ({"wasm": [{"path": ""}]}, "manifest.wasm[0].path must be a non-empty string, got ''"),
        ({"wasm": [{"path": 3}]}, "manifest.wasm[0].path must be a non-empty string, got 3"),
        ({"wasm": [{"url": "file:///etc/passwd"}]}, "manifest.wasm[0].url must be an http:// or https:// URL, got 'file:///etc/passwd'"),
        ({"wasm": [{"url": "http://h/x", "method": "GE T"}]}, "manifest.wasm[0].method must be an HTTP method such as 'GET', got 'GE T'"),
        ({"wasm": [{"url": "http://h/x", "headers": {"a": 1}}]}, "manifest.wasm[0].headers['a'] must be a string, got a value of type int"),
        ({"wasm": [{"url": "http://h/x", "headers": ["a"]}]}, "manifest.wasm[0].headers must be an object mapping strings to strings, got a value of type list"),
        ({"wasm": [{"url": "http://h/x", "headers": {"a b": "1"}}]}, "manifest.wasm[0].headers key must be a valid HTTP header name, got 'a b'"),
        (
            {"wasm": [{"url": "http://h/x", "headers": {"a": "1\r\nEvil: 1"}}]},
            "manifest.wasm[0].headers['a'] must be a header value without line breaks or NUL",
        ),
        (
            {"wasm": [{"data": WASM_B64, "path": "a.wasm"}]},
            'manifest.wasm[0] must have exactly one of "data", "path" or "url", got data, path',
        ),
        ({"wasm": [{"name": "x"}]}, 'manifest.wasm[0] must have exactly one of "data", "path" or "url", got none'),
        (
            {"wasm": [{"data": WASM_B64}, {"data": WASM_B64, "path": "p", "url": "http://h/"}]},
            "manifest.wasm[1] must have exactly one of",
        ),
        # unknown keys, at every level
        (mdict(fuel=10), "manifest: unknown key 'fuel'"),
        (mdict(memory={"max_pagez": 1}), "manifest.memory: unknown key 'max_pagez'"),
        ({"wasm": [{"data": WASM_B64, "sha": "x"}]}, "manifest.wasm[0]: unknown key 'sha'"),
        ({"wasm": [{"data": WASM_B64, "headers": {}}]}, "manifest.wasm[0]: unknown key 'headers'"),
        ({"wasm": [{"path": "a", "method": "GET"}]}, "manifest.wasm[0]: unknown key 'method'"),
        ({"wasm": [{"url": "http://h/", "body": ""}]}, "manifest.wasm[0]: unknown key 'body'"),
    ],
)
def test_validation_errors(d, expected):
    message = err(ManifestError, Manifest.from_dict, d)
    assert message.startswith(expected), message


def test_duplicate_names():
    message = err(
        ManifestError,
        Manifest.from_dict,
        {"wasm": [{"data": WASM_B64, "name": "a"}, {"data": WASM_B64, "name": "a"}, {"data": WASM_B64}]},
    )
    assert message == "manifest.wasm[1].name: duplicate module name 'a' (also used by manifest.wasm[0])"
    # a generated name can collide with an explicit one too
    message = err(ManifestError, Manifest, [WasmData(WASM), WasmData(WASM, name="module0"), WasmData(WASM)])
    assert "duplicate module name 'module0'" in message
    # two sources named main
    message = err(ManifestError, Manifest, [WasmData(WASM, name="main"), WasmData(WASM, name="main")])
    assert "duplicate module name 'main'" in message


def test_direct_construction_errors():
    assert err(ManifestError, WasmData, "text") == "WasmData.data must be bytes, got 'text'"
    assert err(ManifestError, WasmData, WASM, hash="abc") == "WasmData.hash must be 64 hex characters, got 'abc'"
    assert err(ManifestError, WasmFile, 5) == "WasmFile.path must be a non-empty string, got 5"
    assert err(ManifestError, WasmUrl, "ftp://x/y").startswith("WasmUrl.url must be an http:// or https:// URL")
    assert err(ManifestError, MemoryOptions, max_pages=-2) == "MemoryOptions.max_pages must be an integer from 0 to 4294967295, got -2"
    assert err(ManifestError, Manifest, []) == "manifest.wasm must be a non-empty list of wasm sources, got []"
    assert err(ManifestError, Manifest, [WasmData(WASM), "x"]).startswith("manifest.wasm[1] must be a WasmData, WasmFile or WasmUrl, got 'x'")
    assert err(ManifestError, Manifest, [WasmData(WASM)], memory={}).startswith("manifest.memory must be a MemoryOptions")
    assert err(ManifestError, Manifest, [WasmData(WASM)], timeout_ms=-5) == "manifest.timeout_ms must be a non-negative integer, got -5"
    # evolve re-validates
    m = Manifest([WasmData(WASM)])
    assert "manifest.config['k']" in err(ManifestError, attrs.evolve, m, config={"k": 1})


def test_long_bad_values_are_shortened():
    message = err(ManifestError, Manifest.from_dict, {"wasm": [{"data": "!" * 10000}]})
    assert message.startswith("manifest.wasm[0].data must be valid base64") and len(message) < 300


def test_errors_are_value_errors():
    # callers catching ValueError still catch manifest problems
    with pytest.raises(ValueError):
        Manifest.from_dict({})


# --------------------------------------------------------------------------------------------------
# input the C side cannot take: out-of-range integers, lone surrogates, NUL, deep nesting
# --------------------------------------------------------------------------------------------------

U32, U64 = (1 << 32) - 1, (1 << 64) - 1


@pytest.mark.parametrize(
    "d, expected",
    [
        (mdict(memory={"max_pages": U32 + 1}), f"manifest.memory.max_pages must be an integer from 0 to {U32}, got {U32 + 1}"),
        (mdict(memory={"max_pages": 1 << 47}), f"manifest.memory.max_pages must be an integer from 0 to {U32}, got {1 << 47}"),
        (mdict(memory={"max_pages": False}), f"manifest.memory.max_pages must be an integer from 0 to {U32}, got False"),
        (mdict(memory={"max_var_bytes": U64 + 1}), f"manifest.memory.max_var_bytes must be an integer from 0 to {U64}, got {U64 + 1}"),
        (mdict(memory={"max_var_bytes": -1}), f"manifest.memory.max_var_bytes must be an integer from 0 to {U64}, got -1"),
        (
            mdict(memory={"max_http_response_bytes": 1 << 70}),
            f"manifest.memory.max_http_response_bytes must be an integer from 0 to {U64}, got {1 << 70}",
        ),
        (mdict(memory={"max_http_response_bytes": -3}), f"manifest.memory.max_http_response_bytes must be an integer from 0 to {U64}, got -3"),
        (mdict(timeout_ms=U64 + 1), f"manifest.timeout_ms must be at most {U64} (milliseconds), got {U64 + 1}"),
        (mdict(timeout_ms=1 << 100), f"manifest.timeout_ms must be at most {U64} (milliseconds), got {1 << 100}"),
    ],
)
def test_integers_beyond_c_ranges(d, expected):
    assert err(ManifestError, Manifest.from_dict, d) == expected


def test_integers_at_the_top_of_their_ranges_are_accepted():
    m = Manifest.from_dict(mdict(memory={"max_pages": U32, "max_var_bytes": U64, "max_http_response_bytes": U64}, timeout_ms=U64))
    assert (m.memory.max_pages, m.memory.max_var_bytes, m.timeout_ms) == (U32, U64, U64)
    assert Manifest.from_dict(mdict(memory={"max_pages": 0, "max_var_bytes": 0})).memory.max_pages == 0


@pytest.mark.parametrize(
    "d, expected",
    [
        (mdict(config={"k\udcff": "v"}), "manifest.config key 'k\\udcff' must be valid Unicode text: it has a lone surrogate at index 1"),
        (mdict(config={"k": "s3cret\ud800"}), "manifest.config['k'] must be valid Unicode text: it has a lone surrogate at index 6"),
        ({"wasm": [{"data": WASM_B64, "name": "lib\udc80"}, {"data": WASM_B64}]}, "manifest.wasm[0].name must be valid Unicode text"),
        ({"wasm": [{"path": "m\ud800.wasm"}]}, "manifest.wasm[0].path must be valid Unicode text: it has a lone surrogate at index 1"),
        ({"wasm": [{"path": "m\0.wasm"}]}, "manifest.wasm[0].path must not contain a NUL character (found at index 1)"),
        ({"wasm": [{"url": "http://h/\udcff"}]}, "manifest.wasm[0].url must be valid Unicode text"),
        ({"wasm": [{"url": "http://h/a\0b"}]}, "manifest.wasm[0].url must be an http:// or https:// URL without spaces or control characters"),
        ({"wasm": [{"url": "http://h/", "headers": {"X-K": "v\udcff"}}]}, "manifest.wasm[0].headers['X-K'] must be valid Unicode text"),
        ({"wasm": [{"url": "http://h/", "headers": {"X-K": "a\0b"}}]}, "manifest.wasm[0].headers['X-K'] must be a header value without line breaks or NUL"),
        (mdict(allowed_hosts=["ok", "h\ud800.com"]), "manifest.allowed_hosts[1] must be valid Unicode text"),
        (mdict(allowed_hosts=["h\0.com"]), "manifest.allowed_hosts[0] must not contain a NUL character"),
        (mdict(allowed_paths={"/h\ud800": "/g"}), "manifest.allowed_paths key '/h\\ud800' must be valid Unicode text"),
        (mdict(allowed_paths={"ro:/h\0x": "/g"}), "manifest.allowed_paths key 'ro:/h\\x00x' must not contain a NUL character (found at index 5)"),
        (mdict(allowed_paths={"/h": "/g\udcff"}), "manifest.allowed_paths['/h'] must be valid Unicode text"),
        # C would take the guest path only up to the NUL: "/g" instead of "/g\0/etc"
        (mdict(allowed_paths={"/h": "/g\0/etc"}), "manifest.allowed_paths['/h'] must not contain a NUL character (found at index 2)"),
    ],
)
def test_lone_surrogates_and_nul(d, expected):
    message = err(ManifestError, Manifest.from_dict, d)
    assert message.startswith(expected), message
    assert "s3cret" not in message


def test_undecodable_file_names_are_still_paths():
    # os.fsencode takes the surrogates that stand for undecodable bytes (surrogateescape): these
    # name real files on POSIX, so host-side paths keep them.
    assert WasmFile("m\udcff.wasm").path == "m\udcff.wasm"
    assert Manifest([WasmData(WASM)], allowed_paths={"/h\udcff": "/g"}).allowed_paths == {"/h\udcff": "/g"}


def test_nul_in_direct_construction_and_coerce():
    assert err(ManifestError, WasmFile, "a\0b") == "WasmFile.path must not contain a NUL character (found at index 1)"
    assert err(ManifestError, WasmData, WASM, name="x\ud800").startswith("WasmData.name must be valid Unicode text")
    assert err(ManifestError, coerce_source, '(module) ;; \ud800').startswith(
        "plugin source (WAT text) must be valid Unicode text: it has a lone surrogate at index 12")
    message = err(ManifestError, coerce_source, WASM, config={"k": "tok-123\udcff"})
    assert message.startswith("config['k'] must be valid Unicode text") and "tok-123" not in message


@pytest.mark.parametrize("inner", ["[" * 100_000 + "]" * 100_000, '{"a":' * 100_000 + "1" + "}" * 100_000])
def test_deeply_nested_json_is_a_manifest_error(inner):
    text = '{"wasm": ' + inner + "}"
    for parse in (Manifest.from_json, coerce_source):
        assert err(ManifestError, parse, text) == "manifest: invalid JSON: arrays or objects nested too deeply"
    assert err(ManifestError, Manifest.from_json, text.encode()).startswith("manifest: invalid JSON")


# --------------------------------------------------------------------------------------------------
# secrets: config values, header values and URL credentials never appear in messages
# --------------------------------------------------------------------------------------------------

SECRET = "tok-s3cr3t-value"


@pytest.mark.parametrize(
    "d",
    [
        mdict(config={"api_key": 12345}),
        mdict(config={"api_key": [SECRET]}),
        mdict(config=[SECRET]),
        {"wasm": [{"url": "http://h/", "headers": {"Authorization": f"Bearer {SECRET}\r\nX: 1"}}]},
        {"wasm": [{"url": "http://h/", "headers": {"Authorization": [SECRET]}}]},
        {"wasm": [{"url": f"ftp://user:{SECRET}@h/m.wasm?access_token={SECRET}"}]},
        {"wasm": [{"url": f"http://user:{SECRET}@h:port/m.wasm"}]},
        {"wasm": [{"url": f"http://h:{SECRET}/m.wasm"}]},
        {"wasm": [{"url": f"http://user:{SECRET}@h/a b?access_token={SECRET}"}]},
        # No "//" after the scheme, or no valid scheme: urlsplit finds no host, so the
        # credentials are not parsed as such (redact_url used to show them as the path).
        {"wasm": [{"url": f"http:user:{SECRET}@h/m.wasm"}]},
        {"wasm": [{"url": f"1http://user:{SECRET}@h/m.wasm"}]},
        {"wasm": [{"url": f"user:{SECRET}@h/m.wasm"}]},
        {"wasm": [{"url": f"http://user:{SECRET}@h/m.wasm".encode()}]},  # not a str: its type only
    ],
)
def test_secret_values_are_never_shown(d):
    message = err(ManifestError, Manifest.from_dict, d)
    assert message.startswith("manifest."), message
    assert SECRET not in message and "12345" not in message


def test_bad_url_messages_show_the_redacted_url():
    message = err(ManifestError, WasmUrl, f"http://user:{SECRET}@127.0.0.1:99999/m.wasm?access_token={SECRET}")
    assert message == "WasmUrl.url must be an http:// or https:// URL with a valid host and port, got 'http://127.0.0.1/m.wasm'"
    message = err(ManifestError, WasmUrl, f"ftp://user:{SECRET}@127.0.0.1/m.wasm#{SECRET}")
    assert message == "WasmUrl.url must be an http:// or https:// URL, got 'ftp://127.0.0.1/m.wasm'"


def test_wasm_url_repr_hides_credentials_and_header_values():
    source = WasmUrl(f"https://user:{SECRET}@example.com/m.wasm?access_token={SECRET}", headers={"X-Key": SECRET})
    assert SECRET not in repr(source) and "user" not in repr(source)
    assert "'https://example.com/m.wasm'" in repr(source) and "X-Key" in repr(source)
    # the URL itself is kept as given: it is what the manifest says
    assert source.url.endswith(f"access_token={SECRET}")


# --------------------------------------------------------------------------------------------------
# JSON and base64
# --------------------------------------------------------------------------------------------------


def full_manifest() -> Manifest:
    return Manifest(
        [
            WasmData(WASM, name="lib", hash=WASM_SHA),
            WasmFile("dir/m.wasm"),
            WasmUrl("https://example.com/m.wasm", headers={"Authorization": "x"}, method="GET", name="remote"),
            WasmData(b"\xff\x00" * 50),
        ],
        memory=MemoryOptions(max_pages=2, max_var_bytes=10),
        config={"a": "b", "unicode": "é✓"},
        allowed_hosts=[],
        allowed_paths={"/h": "/g"},
        timeout_ms=1000,
    )


def test_json_round_trip():
    m = full_manifest()
    text = m.to_json()
    assert Manifest.from_json(text) == m
    assert Manifest.from_json(text.encode()) == m
    assert Manifest.from_dict(m.to_dict()) == m
    assert Manifest.from_json(Manifest.from_json(text).to_json()).to_json() == text
    assert Manifest.from_json(m.to_json(indent=2)) == m
    # allowed_hosts=[] is kept distinct from None
    assert json.loads(text)["allowed_hosts"] == []


def test_to_dict_shape():
    d = full_manifest().to_dict()
    assert d["wasm"][0] == {"data": WASM_B64, "name": "lib", "hash": WASM_SHA}
    assert d["wasm"][1] == {"path": "dir/m.wasm"}
    assert d["wasm"][2] == {
        "url": "https://example.com/m.wasm",
        "headers": {"Authorization": "x"},
        "method": "GET",
        "name": "remote",
    }
    assert d["memory"] == {"max_pages": 2, "max_var_bytes": 10}
    # minimal manifest: unset optional keys are left out
    assert Manifest([WasmData(WASM)]).to_dict() == {"wasm": [{"data": WASM_B64}]}


def test_base64_and_bytes_data_in_dicts():
    assert Manifest.from_dict({"wasm": [{"data": WASM}]}).wasm[0].data == WASM
    assert Manifest.from_dict({"wasm": [{"data": bytearray(WASM)}]}).wasm[0].data == WASM
    assert Manifest.from_dict({"wasm": [{"data": WASM_B64}]}).wasm[0].data == WASM
    # to_dict always emits base64 text, so bytes given in a dict survive to_json
    m = Manifest.from_dict({"wasm": [{"data": b"\x00\xff\xfe"}]})
    assert m.to_dict()["wasm"][0]["data"] == "AP/+"
    assert Manifest.from_json(m.to_json()).wasm[0].data == b"\x00\xff\xfe"
    # empty data is valid base64 and valid bytes (the compiler rejects it later)
    assert Manifest.from_dict({"wasm": [{"data": ""}]}).wasm[0].data == b""


def test_from_json_errors():
    assert err(ManifestError, Manifest.from_json, "{not json").startswith("manifest: invalid JSON:")
    assert err(ManifestError, Manifest.from_json, b"\xff\xfe{").startswith("manifest: invalid JSON:")
    assert err(ManifestError, Manifest.from_json, "[1]") == "manifest must be a JSON object, got [1]"
    assert err(ManifestError, Manifest.from_dict, [1]) == "manifest must be an object, got [1]"


# --------------------------------------------------------------------------------------------------
# loading: files, data, hashes, main selection
# --------------------------------------------------------------------------------------------------


def test_load_data_and_main_is_last():
    m = Manifest([WasmData(WASM, name="a"), WasmData(WASM2)])
    assert m.main_index == 1
    assert m.load_modules() == [LoadedModule("a", WASM, False), LoadedModule("main", WASM2, True)]


def test_named_main_in_the_middle_is_returned_last():
    m = Manifest([WasmData(b"1"), WasmData(b"2", name="main"), WasmData(b"3", name="z")])
    assert m.main_index == 1
    assert m.module_names() == ["module0", "main", "z"]
    assert m.load_modules() == [
        LoadedModule("module0", b"1", False),
        LoadedModule("z", b"3", False),
        LoadedModule("main", b"2", True),
    ]


def test_last_source_is_main_even_if_named():
    m = Manifest([WasmData(b"1", name="x"), WasmData(b"2", name="y")])
    assert m.load_modules() == [LoadedModule("x", b"1", False), LoadedModule("main", b"2", True)]


def test_load_files_relative_to_base_dir_and_cwd(tmp_path, monkeypatch):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "lib.wasm").write_bytes(WASM2)
    (tmp_path / "main.wasm").write_bytes(WASM)
    m = Manifest([WasmFile("sub/lib.wasm", name="lib"), WasmFile(tmp_path / "main.wasm", hash=WASM_SHA)])
    assert m.load_modules(base_dir=str(tmp_path)) == [
        LoadedModule("lib", WASM2, False),
        LoadedModule("main", WASM, True),
    ]
    monkeypatch.chdir(tmp_path / "sub")
    assert Manifest([WasmFile("lib.wasm")]).load_modules() == [LoadedModule("main", WASM2, True)]


def test_missing_file(tmp_path):
    m = Manifest([WasmData(WASM, name="a"), WasmFile("nope.wasm")])
    message = err(ManifestError, m.load_modules, base_dir=str(tmp_path))
    assert message == f"manifest.wasm[1].path: no such file: {str(tmp_path / 'nope.wasm')!r}"


def test_unreadable_file_is_a_manifest_error(tmp_path):
    message = err(ManifestError, Manifest([WasmFile(str(tmp_path))]).load_modules)
    assert message.startswith(f"manifest.wasm[0].path: cannot read {str(tmp_path)!r}")


def test_hash_ok_case_insensitive():
    assert Manifest([WasmData(WASM, hash=WASM_SHA.upper())]).load_modules()[0].data == WASM


def test_hash_mismatch(tmp_path):
    (tmp_path / "m.wasm").write_bytes(WASM2)
    m = Manifest([WasmData(WASM, name="ok", hash=WASM_SHA), WasmFile(tmp_path / "m.wasm", hash=WASM_SHA)])
    with pytest.raises(HashMismatchError) as info:
        m.load_modules()
    assert str(info.value) == (
        f"manifest.wasm[1]: sha256 mismatch: expected {WASM_SHA}, got {hashlib.sha256(WASM2).hexdigest()}"
    )
    assert isinstance(info.value, ManifestError)


# --------------------------------------------------------------------------------------------------
# URL sources against a local HTTP server
# --------------------------------------------------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    routes: dict[str, bytes] = {}
    seen: list[tuple[str, str, dict[str, str]]] = []

    def _serve(self) -> None:
        type(self).seen.append((self.command, self.path, dict(self.headers)))
        body = self.routes.get(self.path)
        if body is None:
            self.send_error(404, "Not Found")
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = _serve

    def log_message(self, *args) -> None:  # keep test output quiet
        pass


@pytest.fixture
def server(monkeypatch):
    # A proxy from the environment would intercept requests to 127.0.0.1.
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(_Handler, "routes", {"/m.wasm": WASM, "/lib.wasm": WASM2})
    monkeypatch.setattr(_Handler, "seen", [])
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    # a short poll interval keeps shutdown() (and so teardown) fast
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", _Handler.seen
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def test_url_get(server):
    base, seen = server
    m = Manifest([WasmUrl(f"{base}/lib.wasm", name="lib"), WasmUrl(f"{base}/m.wasm")])
    assert m.load_modules() == [LoadedModule("lib", WASM2, False), LoadedModule("main", WASM, True)]
    assert [(method, path) for method, path, _ in seen] == [("GET", "/lib.wasm"), ("GET", "/m.wasm")]


def test_url_headers_and_method(server):
    base, seen = server
    m = Manifest.from_dict({"wasm": [{"url": f"{base}/m.wasm", "headers": {"X-Token": "s3cret"}, "method": "POST"}]})
    assert m.load_modules()[0].data == WASM
    method, path, headers = seen[-1]
    assert (method, path) == ("POST", "/m.wasm")
    assert headers.get("X-Token") == "s3cret"


def test_url_404(server):
    base, _ = server
    url = f"{base}/missing.wasm"
    message = err(ManifestError, Manifest([WasmData(WASM, name="a"), WasmUrl(url)]).load_modules)
    assert message.startswith(f"manifest.wasm[1].url: cannot fetch {url!r}")
    assert "404" in message


def test_url_connection_refused():
    # bind then close a socket to get a port nobody listens on
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/m.wasm"
    message = err(ManifestError, Manifest([WasmUrl(url)]).load_modules)
    assert message.startswith(f"manifest.wasm[0].url: cannot fetch {url!r}")


def test_url_hash(server):
    base, _ = server
    assert Manifest([WasmUrl(f"{base}/m.wasm", hash=WASM_SHA)]).load_modules()[0].data == WASM
    with pytest.raises(HashMismatchError) as info:
        Manifest([WasmUrl(f"{base}/lib.wasm", hash=WASM_SHA)]).load_modules()
    assert str(info.value).startswith(f"manifest.wasm[0]: sha256 mismatch: expected {WASM_SHA}, got ")


# --------------------------------------------------------------------------------------------------
# coerce_source
# --------------------------------------------------------------------------------------------------


def test_coerce_manifest_is_returned_as_is():
    m = Manifest([WasmData(WASM)])
    assert coerce_source(m) is m


def test_coerce_dict_and_json():
    d = mdict(config={"a": "1"})
    assert coerce_source(d) == Manifest([WasmData(WASM)], config={"a": "1"})
    text = json.dumps(d)
    assert coerce_source(text) == coerce_source(d)
    assert coerce_source("  \n" + text) == coerce_source(d)
    assert coerce_source(text.encode()) == coerce_source(d)
    assert coerce_source(bytearray(text.encode())) == coerce_source(d)
    # a broken JSON manifest is reported as such, not passed on as "WAT"
    assert err(ManifestError, coerce_source, "{bad").startswith("manifest: invalid JSON")
    assert err(ManifestError, coerce_source, b"{bad").startswith("manifest: invalid JSON")
    # and a JSON manifest's validation errors come through
    assert err(ManifestError, coerce_source, '{"wasm": [], "x": 1}') == "manifest: unknown key 'x' (allowed: wasm, memory, config, allowed_hosts, allowed_paths, timeout_ms)"


def test_coerce_wasm_bytes():
    for raw in (WASM, bytearray(WASM), memoryview(WASM)):
        assert coerce_source(raw) == Manifest([WasmData(WASM)])
    # wasm whose later bytes happen to look like JSON is still wasm
    assert coerce_source(WASM + b'{"wasm": []}').wasm[0].data == WASM + b'{"wasm": []}'


def test_coerce_wat():
    assert coerce_source(WAT) == Manifest([WasmData(WAT.encode())])
    assert coerce_source("\n  " + WAT) == Manifest([WasmData(("\n  " + WAT).encode())])
    assert coerce_source(WAT.encode()) == Manifest([WasmData(WAT.encode())])
    # bytes that are neither wasm nor JSON go through untouched (the runtime parses them later)
    assert coerce_source(b"garbage").wasm == [WasmData(b"garbage")]


def test_coerce_paths(tmp_path):
    f = tmp_path / "p.wasm"
    f.write_bytes(WASM)
    assert coerce_source(str(f)) == Manifest([WasmFile(str(f))])
    assert coerce_source(f) == Manifest([WasmFile(str(f))])
    assert coerce_source(f).load_modules() == [LoadedModule("main", WASM, True)]
    missing = str(tmp_path / "missing.wasm")
    assert err(ManifestError, coerce_source, missing) == f"plugin source: no such file: {missing!r}"
    assert err(ManifestError, coerce_source, pathlib.Path(missing)) == f"plugin source: no such file: {missing!r}"
    assert err(ManifestError, coerce_source, str(tmp_path)) == f"plugin source: no such file: {str(tmp_path)!r}"


def test_coerce_source_objects_and_lists(tmp_path):
    src = WasmUrl("http://h/m.wasm")
    assert coerce_source(src) == Manifest([src])
    assert coerce_source(WasmData(WASM)) == Manifest([WasmData(WASM)])
    assert coerce_source(WasmFile("x.wasm")) == Manifest([WasmFile("x.wasm")])
    lst = [WasmData(WASM, name="a"), WasmFile("x.wasm")]
    assert coerce_source(lst) == Manifest(lst)
    assert coerce_source(tuple(lst)) == Manifest(lst)
    assert coerce_source([{"data": WASM, "name": "a"}, WasmFile("x.wasm")]) == Manifest(lst)
    assert err(ManifestError, coerce_source, []).startswith("manifest.wasm must be a non-empty list")
    assert err(ManifestError, coerce_source, [{"data": 1}]).startswith("manifest.wasm[0].data")


@pytest.mark.parametrize("bad, name", [(42, "int"), (None, "NoneType"), (3.5, "float"), ({1, 2}, "set")])
def test_coerce_rejects_other_types(bad, name):
    message = err(ManifestError, coerce_source, bad)
    assert message.startswith("plugin source must be") and message.endswith(f"got {name}")


def test_coerce_config_merges_over_manifest_config():
    m = Manifest([WasmData(WASM)], config={"a": "1", "b": "2"}, timeout_ms=5)
    out = coerce_source(m, config={"b": "B", "c": "3"})
    assert out.config == {"a": "1", "b": "B", "c": "3"}
    assert out.timeout_ms == 5 and out.wasm == m.wasm
    assert m.config == {"a": "1", "b": "2"}  # the original is untouched
    assert coerce_source(WASM, config={"k": "v"}).config == {"k": "v"}
    assert coerce_source(m, config={}) == m
    assert err(ManifestError, coerce_source, m, config={"k": 1}) == "config['k'] must be a string, got a value of type int"
    assert err(ManifestError, coerce_source, m, config={2: "v"}) == "config keys must be strings, got 2"
    # None removes a key (JSON null in the official extism_plugin_config); unknown keys are no-ops
    assert coerce_source(m, config={"a": None, "zz": None}).config == {"b": "2"}
    assert coerce_source(m, config={"a": None, "c": "3"}).config == {"b": "2", "c": "3"}
    assert err(ManifestError, coerce_source, m, config=["k"]).startswith("config must be an object")


# --------------------------------------------------------------------------------------------------
# timeout_ms 0, TOML manifests, manifest files
# --------------------------------------------------------------------------------------------------


def test_timeout_ms_zero_is_accepted_everywhere():
    """0 is a valid limit (0 ms, as in the official runtime), in every form a manifest takes."""
    expected = Manifest([WasmData(WASM)], timeout_ms=0)
    assert Manifest.from_dict(mdict(timeout_ms=0)) == expected
    assert Manifest.from_json(json.dumps(mdict(timeout_ms=0))) == expected
    assert Manifest.from_toml(f'timeout_ms = 0\n[[wasm]]\ndata = "{WASM_B64}"\n') == expected
    assert expected.to_dict()["timeout_ms"] == 0
    assert Manifest.from_json(expected.to_json()) == expected


TOML = f"""
timeout_ms = 1500
allowed_hosts = ["example.com"]

[[wasm]]
data = "{WASM_B64}"
name = "main"

[memory]
max_pages = 4

[config]
greeting = "Hi"

[allowed_paths]
"ro:/host" = "/guest"
"""


def test_from_toml_has_the_json_keys():
    expected = Manifest(
        [WasmData(WASM, name="main")], memory=MemoryOptions(max_pages=4), config={"greeting": "Hi"},
        allowed_hosts=["example.com"], allowed_paths={"ro:/host": "/guest"}, timeout_ms=1500,
    )
    assert Manifest.from_toml(TOML) == expected
    assert Manifest.from_toml(TOML.encode()) == expected
    assert coerce_source(TOML) == expected           # a str manifest, as a JSON one
    assert coerce_source(TOML.encode()) == expected  # bytes too
    assert coerce_source(f'wasm = [{{data = "{WASM_B64}"}}]') == Manifest([WasmData(WASM)])


def test_from_toml_errors():
    assert err(ManifestError, Manifest.from_toml, "wasm = [").startswith("manifest: invalid TOML: ")
    assert err(ManifestError, Manifest.from_toml, b"\xff = 1").startswith("manifest: invalid TOML: ")
    # the values of a broken manifest never appear in the message (config may hold secrets)
    message = err(ManifestError, coerce_source, 'timeout_ms = 1\n[config]\nkey = "s3cret\n')
    assert message.startswith("manifest: invalid TOML: ") and "s3cret" not in message
    assert err(ManifestError, Manifest.from_toml, "timeout_ms = 1") == "manifest.wasm is required (a non-empty list of wasm sources)"
    assert err(ManifestError, Manifest.from_toml, f'x = 1\n[[wasm]]\ndata = "{WASM_B64}"').startswith("manifest: unknown key 'x'")
    # a validation error names the field, as for JSON
    assert "manifest.timeout_ms" in err(ManifestError, Manifest.from_toml, f'timeout_ms = -1\n[[wasm]]\ndata = "{WASM_B64}"')


def test_manifest_files_are_read_as_the_official_sdk_reads_them(tmp_path, monkeypatch):
    """A path may name a manifest file: JSON (starts with "{") or TOML (``*.toml``); its relative
    paths are relative to the working directory, as in the official runtime."""
    (tmp_path / "m.wasm").write_bytes(WASM)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.json").write_text(json.dumps({"wasm": [{"path": "m.wasm"}], "timeout_ms": 7}))
    (tmp_path / "m.toml").write_text('timeout_ms = 7\n[[wasm]]\npath = "m.wasm"\n')
    expected = Manifest([WasmFile("m.wasm")], timeout_ms=7)
    for name in ("m.json", "m.toml"):
        assert coerce_source(str(tmp_path / name)) == expected
        assert coerce_source(tmp_path / name) == expected
        assert coerce_source(tmp_path / name).load_modules() == [LoadedModule("main", WASM, True)]
    # a module file stays a module file, whatever its name
    (tmp_path / "module.json").write_bytes(WASM)
    assert coerce_source(tmp_path / "module.json") == Manifest([WasmFile(str(tmp_path / "module.json"))])
    (tmp_path / "bad.toml").write_text("wasm = [")
    assert err(ManifestError, coerce_source, tmp_path / "bad.toml").startswith("manifest: not a JSON object, and invalid TOML")


def _plain_cases(tmp_path):
    """(what, source) pairs: the plain plugins, and sources that are not (each a manifest, an
    error, or a module with something to say), for plain_source against coerce_source."""
    (tmp_path / "m.wasm").write_bytes(WASM)
    (tmp_path / "m.wat").write_text(";; a comment\n" + WAT)
    (tmp_path / "wat.toml").write_text(WAT)  # a .toml file is a manifest, whatever it holds
    (tmp_path / "m.json").write_text(json.dumps({"wasm": [{"data": WASM_B64}]}))
    (tmp_path / "dir").mkdir()
    plain = [("wasm bytes", WASM), ("bytearray", bytearray(WASM)), ("memoryview", memoryview(WASM)),
             ("WAT bytes", WAT.encode()), ("WAT text", WAT), ("WAT after comments", "(; c ;) ;; d\n" + WAT),
             ("wasm path", str(tmp_path / "m.wasm")), ("WAT Path", tmp_path / "m.wat"),
             ("dict", {"wasm": [{"data": WASM}]}), ("dict of a path", {"wasm": [{"path": str(tmp_path / "m.wat")}]})]
    other = [("JSON text", json.dumps({"wasm": [{"data": WASM_B64}]})), ("TOML text", 'wasm = [{data = "AA=="}]'),
             ("JSON file", str(tmp_path / "m.json")), (".toml file", str(tmp_path / "wat.toml")),
             ("missing file", str(tmp_path / "nope.wasm")), ("directory", str(tmp_path / "dir")),
             ("not wasm bytes", b"\x01\x02"), ("WAT with a lone surrogate", "(module) \ud800"),
             ("path with NUL", str(tmp_path / "m.wasm") + "\0"), ("bytes path", (tmp_path / "m.wasm").as_posix().encode()),
             ("Manifest", Manifest([WasmData(WASM)])), ("dict with a name", {"wasm": [{"data": WASM, "name": "a"}]}),
             ("a source", WasmData(WASM)), ("int", 3)]
    return plain, other


def test_plain_sources_stand_for_the_manifest_coerce_source_makes(tmp_path):
    """A plain plugin (manifest/plain.py: one module, no option, read without the manifest classes)
    is exactly what coerce_source makes of the same source; everything else is left to it, so its
    messages stay the only ones."""
    from extism_fast.manifest.plain import PlainSource, plain_source
    from extism_fast.manifest.sources import coerce_told_source

    plain, other = _plain_cases(tmp_path)
    for what, source in plain:
        found = plain_source(source)
        full = coerce_told_source(source, None)  # coerce_source without the plain path
        assert isinstance(found, PlainSource), what
        assert found.manifest() == full == coerce_source(source), what
        assert found.describe_main() == full.describe_main(), what
        loaded, = found.load_modules()
        expected = full.load_modules()[0]
        assert [getattr(loaded, a) for a in ("name", "data", "is_main", "file_identity")] == [
            getattr(expected, a) for a in ("name", "data", "is_main", "file_identity")], what
    for what, source in other:
        assert plain_source(source) is None, what


def test_a_plain_file_read_fails_as_the_manifest_s_would(tmp_path):
    """The file of a plain plugin removed between sniffing and loading: load_modules' message."""
    from extism_fast.manifest.plain import plain_source

    path = tmp_path / "m.wasm"
    path.write_bytes(WASM)
    found = plain_source(str(path))
    path.unlink()
    with pytest.raises(ManifestError) as plain_error:
        found.load_modules()
    with pytest.raises(ManifestError) as manifest_error:
        Manifest([WasmFile(str(path))]).load_modules()
    assert str(plain_error.value) == str(manifest_error.value) == f"manifest.wasm[0].path: no such file: {str(path)!r}"
