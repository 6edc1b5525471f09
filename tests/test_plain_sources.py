"""The plain plugin with a config or limits (manifest/plain.py): ``Plugin(path, config={...})`` and a
manifest dict of one module (``{"wasm": [{"path": ...}], "config": {...}, "timeout_ms": ...,
"memory": {...}}``) are read without the manifest classes, yet stand for exactly the Manifest
coerce_source makes (equal, the same config in the same order, the same PluginOptions); whatever the
plain path cannot prove equal, or the full path refuses, it declines, so the full path's checks and
messages stay the only ones.
"""

from __future__ import annotations

import collections
import hashlib
import itertools
import json
import random
import socket
import time
import types

import attrs
import pytest
from conftest import COUNT, PLUGINS_DIR, q, serve_bytes, u64

import extism_fast as ef
from extism_fast.errors import HashMismatchError, ManifestError
from extism_fast.manifest import U32_MAX, U64_MAX, Manifest, MemoryOptions, WasmData, WasmFile
from extism_fast.manifest.limits import OPTION_HIGH
from extism_fast.manifest.plain import PlainSource, plain_source
from extism_fast.manifest.sources import coerce_source, coerce_told_source
from extism_fast.runtime import options

WASM = b"\0asm\x01\0\0\0"
WAT = '(module (func (export "f")))'


class Text(str):
    """A str subclass: the full path takes it, the plain path leaves it to the full path."""


#: URL sources (never fetched here): http(s) URLs the schema takes are plain; it refuses the rest
#: (another scheme, no host, a bad port, spaces or controls, a lone surrogate) or takes a str subclass.
URLS = ["http://127.0.0.1:1/m.wasm", "https://example.com/m.wasm", "HTTPS://example.com", "http://u:p@h:8/x?t=1#f",
        "http://[::1]:80/m", "ftp://example.com/m.wasm", "file:///m.wasm", "http://", "http:///m", "http://h:99999/m",
        "http://h:x/m", "http://h/a b", "http://h/\x00", "http://h/\x7f", "http://h/\ud800", " http://h/m", "example.com",
        "", b"http://h/m", None, 1, Text("http://h/m")]


class Count(int):
    """An int subclass: the full path takes it as a limit, the plain path leaves it to the full path."""


#: A module's hash: exactly a str of 64 hex digits is plain (checked when the module is read, as
#: by the full path); the full path takes a str subclass, refuses the rest.
WASM_SHA256 = hashlib.sha256(WASM).hexdigest()
HASHES = [None, WASM_SHA256, WASM_SHA256.upper(), "0" * 64, "f" * 64, WASM_SHA256[:63], WASM_SHA256 + "0", "g" * 64,
          " " + WASM_SHA256[1:], WASM_SHA256[:63] + "\n", WASM_SHA256.encode(), 1, ["0" * 64], Text(WASM_SHA256)]


def _told(source, config):
    """What CompiledPlugin keeps without a Manifest: the plain source, with ``config`` merged."""
    plain = plain_source(source)
    return plain if plain is None or config is None else plain.with_config(config)


def _full(source, config):
    """The full path's Manifest: coerce_source without the plain path; but for bytes, whose module
    or manifest is plain_source's decision (the full path takes it: tests/test_manifest.py)."""
    plain = plain_source(source) if isinstance(source, (bytes, bytearray, memoryview)) else None
    return coerce_told_source(source, plain, config)


#: The environment (ENVIRONMENT) unset.
_UNSET_ENVIRONMENT = (None, None, None, None)


def _plugin_options(manifest, wasi=False):
    """The PluginOptions a Plugin of ``manifest`` runs under (but the manifest itself) with WASI or
    not (a missing mounted directory refuses them: the message), and what interruptible=False makes
    of it (a timeout refuses it: the message)."""
    compiled = types.SimpleNamespace(wasi=wasi, fuel=None)  # what plugin_options reads of a CompiledPlugin
    try:
        resolved = options.plugin_options(compiled, manifest, _UNSET_ENVIRONMENT)._replace(manifest=None, packed=[])
    except ManifestError as exc:
        resolved = str(exc)
    try:
        interruptible = options.resolve_interruptible(manifest, False)
    except ManifestError as exc:
        interruptible = str(exc)
    return resolved, interruptible


def _outcome(source, config) -> str:
    """Checks the plain path against the full one for ``source`` and Plugin's ``config``: "plain"
    (equal Manifest, config tuple, description and PluginOptions: the settings C gets, the host's
    max_http_response_bytes...), "declined" or "refused" (the full path raises: the plain path must
    have declined)."""
    told = _told(source, config)
    try:
        full = _full(source, config)
    except (ManifestError, TypeError, ValueError):
        assert told is None, (source, config)
        return "refused"
    if told is None:
        return "declined"
    assert isinstance(told, PlainSource)
    manifest = told.manifest()
    assert manifest == full, (source, config)
    assert options._config(told) == options._config(manifest) == options._config(full), (source, config)
    assert told.describe_main() == full.describe_main()
    assert told.timeout_ms == full.timeout_ms
    assert (told.allowed_hosts, told.allowed_paths) == (full.allowed_hosts, full.allowed_paths), (source, config)
    for wasi in (False, True):
        assert _plugin_options(told, wasi) == _plugin_options(full, wasi), (source, config, wasi)
    return "plain"


def _files(tmp_path):
    (tmp_path / "m.wasm").write_bytes(WASM)
    (tmp_path / "m.wat").write_text(";; a comment\n" + WAT)
    (tmp_path / "wat.toml").write_text(WAT)  # a manifest when given as a path, a module in a dict
    (tmp_path / "wasm.toml").write_bytes(WASM)
    (tmp_path / "m.json").write_text(json.dumps({"wasm": [{"path": str(tmp_path / "m.wasm")}]}))
    (tmp_path / "dir").mkdir()
    return {name: str(tmp_path / name) for name in ("m.wasm", "m.wat", "wat.toml", "wasm.toml", "m.json", "dir",
                                                   "missing.wasm")}


#: Plugin(config=...) values: plain ones, and others the full path takes, merges or refuses.
CONFIGS = [
    None, {}, {"a": "b"}, {"a": None}, {"a": None, "b": "c"}, {"": ""}, {"k\0": "v\0"}, {"é": "ü €"},
    {"a": "1", "b": "2", "c": "3"}, {"z": "1", "a": None, "m": ""},
    {1: "x"}, {1: None}, {None: "x"}, {"a": 1}, {"a": b"x"}, {"a": ["x"]}, {"a": True},
    {"\ud800": "x"}, {"x": "\udfff"}, {"\ud800": None}, {Text("a"): "b"}, {"a": Text("b")},
    collections.OrderedDict(a="b"), types.MappingProxyType({"a": "b"}), collections.defaultdict(str, a="b"),
    [("a", "b")], "a=b", 3, b"{}",
]


#: timeout_ms values: plain ones (exactly an int from 0 to U64_MAX, or None), and others the full
#: path takes (an int subclass) or refuses.
TIMEOUTS = [None, 0, 1, 50, 1000, U32_MAX, U32_MAX + 1, U64_MAX, U64_MAX + 1, -1, True, False, 1.0, 50.5, "50",
            b"50", 10**30, -(10**30), Count(5), [50], float("inf")]
#: memory values: the same with each key's range (max_pages, max_table_elements: a u32).
MEMORY_VALUES = [None, 0, 1, 3, 64, U32_MAX, U32_MAX + 1, U64_MAX, U64_MAX + 1, -1, True, False, 2.0, "2", 10**30,
                 Count(2), [2]]
MEMORY_KEYS = ["max_pages", "max_var_bytes", "max_http_response_bytes", "max_table_elements"]
#: memory objects, plain and not.
MEMORIES = [
    None, {}, {"max_pages": 3}, {"max_pages": None}, {"max_var_bytes": 0}, {"max_http_response_bytes": 7},
    {"max_table_elements": 10}, dict(zip(MEMORY_KEYS, (4, 5, 6, 7))), {"max_pages": U32_MAX, "max_var_bytes": U64_MAX},
    {"max_pages": U32_MAX + 1}, {"max_table_elements": U64_MAX}, {"max_http_response_bytes": U64_MAX + 1},
    {"max_pages": -1}, {"max_pages": True}, {"max_pages": 2.0}, {"max_pages": "2"}, {"max_pages": Count(2)},
    {"max_pages": 3, "extra": 1}, {"extra": None}, {"": 1}, {1: 2}, {None: 2}, {"Max_Pages": 3},
    {"timeout_ms": 5}, {"max_memory_bytes": 65536}, collections.OrderedDict(max_pages=3),
    types.MappingProxyType({"max_pages": 3}), [("max_pages", 3)], 3, "max_pages", True,
]


def _limit_dicts(path):
    """Manifest dicts with a timeout_ms and memory (each alone, together, with a config)."""
    dicts = []
    for timeout in TIMEOUTS:
        dicts.append({"wasm": [{"path": path}], "timeout_ms": timeout})
    for memory in MEMORIES:
        dicts.append({"wasm": [{"data": WASM}], "memory": memory})
    dicts += [
        {"wasm": [{"path": path}], "timeout_ms": 50, "memory": {"max_pages": 3}, "config": {"a": "b"}},
        {"wasm": [{"data": WAT}], "timeout_ms": 0, "memory": {}},
        {"wasm": [{"path": path}], "timeout_ms": 50, "memory": {"max_pages": -1}},
        {"wasm": [{"path": path}], "timeout_ms": -1, "memory": {"max_pages": 3}},
        {"wasm": [{"path": path}], "timeout_ms": 50, "allowed_hosts": ["example.com"]},
        {"wasm": [{"path": path}], "memory": {"max_pages": 3}, "allowed_paths": {}},
        {"wasm": [{"path": path, "name": "main"}], "timeout_ms": 50},
        {"wasm": [{"path": path}], "timeout_ms": 50, "config": {"a": 1}},
    ]
    return dicts


def _random_limits(files, count: int):
    """Manifest dicts with random timeout_ms and memory (valid ones most often; seeded)."""
    rng = random.Random(20261207)
    valid = {"timeout_ms": [0, 1, 50, 1000, U64_MAX], "max_pages": [0, 1, 3, 64, U32_MAX],
             "max_table_elements": [0, 10, U32_MAX], "max_var_bytes": [0, 100, U64_MAX],
             "max_http_response_bytes": [0, 7, U64_MAX]}
    dicts = []
    for _ in range(count):
        d = {"wasm": [{"path": files["m.wasm"]}] if rng.random() < 0.5 else [{"data": WASM}]}
        if rng.random() < 0.6:
            d["timeout_ms"] = rng.choice(valid["timeout_ms"] if rng.random() < 0.7 else TIMEOUTS)
        if rng.random() < 0.7:
            if rng.random() < 0.1:
                d["memory"] = rng.choice(MEMORIES)
            else:
                keys = rng.sample(MEMORY_KEYS, rng.randrange(0, 5))
                if rng.random() < 0.1:
                    keys.append(rng.choice(["extra", "", "timeout_ms", 1]))
                d["memory"] = {key: rng.choice(valid.get(key, [1]) if rng.random() < 0.7 else MEMORY_VALUES)
                               for key in keys}
        if rng.random() < 0.3:
            d["config"] = rng.choice([{"a": "b"}, {}, None, {"a": 1}])
        dicts.append(d)
    return dicts


#: allowed_hosts values: plain ones (None, or a list or tuple of exactly str, non-empty, UTF-8, no
#: NUL; duplicates kept), and others the full path takes (a str subclass) or refuses.
HOSTS = [
    None, [], (), ["example.com"], ["*.example.com", "127.0.0.1", "é.example"], ("example.com",), ["a", "a"],
    [""], ["a\0b"], ["\ud800"], ["\udcff"], [Text("example.com")], [1], [None], [b"example.com"], [["a"]],
    "example.com", b"example.com", {"example.com": "x"}, {"example.com"}, collections.UserList(["a"]), True, 3,
]
#: Items of random allowed_hosts lists, valid ones first.
HOST_ITEMS = ["example.com", "*.example.com", "127.0.0.1", "é", "", "a\0", "\ud800", Text("x"), 1, None, b"x"]
#: Guest paths of random allowed_paths, valid ones first.
GUESTS = ["/data", "/", "é", "rel", "", "/x\0", "\udcff", Text("/x"), None, 1, b"/x"]


def _host_paths(files):
    """allowed_paths keys, valid ones first (a missing directory is valid: it fails at instantiation,
    with WASI), then bad ones and a str subclass (the full path takes it)."""
    directory, missing = files["dir"], files["missing.wasm"]
    return [directory, "ro:" + directory, missing, "ro:ro:" + directory, "rel/dir", "\udcff", "", "ro:",
            directory + "\0", "\ud800", Text(directory), 1, None, b"/x"]


def _paths(files):
    """allowed_paths values: plain ones (None, or a dict of exactly str to str: :func:`_host_paths`,
    GUESTS) and others."""
    directory, missing = files["dir"], files["missing.wasm"]
    return [
        None, {}, {directory: "/data"}, {"ro:" + directory: "/data"}, {directory: "/a", "ro:" + directory: "/b"},
        {directory: "/data", files["m.wasm"]: "/data"}, {missing: "/x"}, {"\udcff": "/x"}, {"": "/x"}, {"ro:": "/x"},
        {directory: ""}, {directory: None}, {directory: 1}, {directory: b"/x"}, {1: "/x"}, {None: "/x"},
        {directory + "\0": "/x"}, {directory: "/x\0"}, {"\ud800": "/x"}, {directory: "\udcff"},
        {Text(directory): "/x"}, {directory: Text("/x")}, collections.OrderedDict({directory: "/x"}),
        types.MappingProxyType({directory: "/x"}), [(directory, "/x")], directory, [directory], 3,
    ]


def _grant_dicts(files):
    """Manifest dicts with allowed_hosts and allowed_paths (each alone, together, with limits)."""
    path, directory = files["m.wasm"], files["dir"]
    dicts = [{"wasm": [{"path": path}], "allowed_hosts": hosts} for hosts in HOSTS]
    dicts += [{"wasm": [{"data": WASM}], "allowed_paths": paths} for paths in _paths(files)]
    dicts += [
        {"wasm": [{"path": path}], "allowed_hosts": ["example.com"], "allowed_paths": {directory: "/d"},
         "timeout_ms": 50, "memory": {"max_pages": 3}, "config": {"a": "b"}},
        {"wasm": [{"path": path}], "allowed_hosts": None, "allowed_paths": None},
        {"wasm": [{"path": path}], "allowed_hosts": [], "allowed_paths": {}},
        {"wasm": [{"path": path}], "allowed_hosts": ["example.com"], "allowed_paths": {"": "/d"}},
        {"wasm": [{"path": path}], "allowed_hosts": [1], "allowed_paths": {directory: "/d"}},
        {"wasm": [{"path": path}], "allowed_hosts": ["example.com"], "timeout_ms": -1},
        {"wasm": [{"path": path, "name": "x"}], "allowed_hosts": ["example.com"]},
    ]
    return dicts


def _random_grants(files, count: int):
    """Manifest dicts with random allowed_hosts and allowed_paths (valid ones most often; seeded)."""
    rng = random.Random(20261208)
    keys = _host_paths(files)

    def pick(pool, valid):
        return rng.choice(pool[:valid] if rng.random() < 0.85 else pool)

    dicts = []
    for _ in range(count):
        d = {"wasm": [{"path": files["m.wasm"]}] if rng.random() < 0.5 else [{"data": WASM}]}
        if rng.random() < 0.7:
            hosts = [pick(HOST_ITEMS, 4) for _ in range(rng.randrange(0, 4))]
            d["allowed_hosts"] = (rng.choice(HOSTS) if rng.random() < 0.1 else
                                  tuple(hosts) if rng.random() < 0.15 else hosts)
        if rng.random() < 0.7:
            paths = {pick(keys, 6): pick(GUESTS, 4) for _ in range(rng.randrange(0, 4))}
            d["allowed_paths"] = rng.choice(_paths(files)) if rng.random() < 0.1 else paths
        if rng.random() < 0.2:
            d["timeout_ms"] = rng.choice([50, -1])
        if rng.random() < 0.2:
            d["config"] = rng.choice([{"a": "b"}, None, {"a": 1}])
        dicts.append(d)
    return dicts


def _manifest_dicts(files):
    """Manifest dicts: plain ones, ones the full path takes (but not as plain) and bad ones."""
    path = files["m.wasm"]
    dicts = []
    for name in files:
        dicts.append({"wasm": [{"path": files[name]}]})
    for data in (WASM, bytearray(WASM), memoryview(WASM), WAT.encode(), b"\x01\x02", b"", b"{}", WAT,
                 "AGFzbQEAAAA=", "not base64!", None, 3):
        dicts.append({"wasm": [{"data": data}]})
    dicts += [
        {"wasm": ({"path": path},)}, {"wasm": []}, {"wasm": [{"path": path}, {"path": path}]},
        {"wasm": [{"path": path}, {"data": WASM}]}, {"wasm": {"path": path}}, {"wasm": path}, {"wasm": None}, {},
        {"wasm": [WasmFile(path)]}, {"wasm": [{"path": path, "name": "main"}]}, {"wasm": [{"path": path, "name": "x"}]},
        {"wasm": [{"path": path, "hash": "0" * 64}]}, {"wasm": [{"path": path, "data": None}]},
        {"wasm": [{"path": path, "url": None}]}, {"wasm": [{"path": path, "data": WASM}]},
        {"wasm": [{"path": Text(path)}]}, {"wasm": [{"path": None}]}, {"wasm": [{"path": ""}]},
        {"wasm": [{"path": path + "\0"}]}, {"wasm": [{"path": "\ud800.wasm"}]},
        {"wasm": [{"url": "https://example.com/m.wasm"}]}, {"wasm": [{}]}, {"wasm": [{"Path": path}]},
        {"wasm": [collections.OrderedDict(path=path)]}, {"wasm": [types.MappingProxyType({"path": path})]},
        {"wasm": [{"path": path}], "memory": None}, {"wasm": [{"path": path}], "memory": {}},
        {"wasm": [{"path": path}], "memory": {"max_pages": 2}}, {"wasm": [{"path": path}], "timeout_ms": None},
        {"wasm": [{"path": path}], "timeout_ms": 0}, {"wasm": [{"path": path}], "allowed_hosts": []},
        {"wasm": [{"path": path}], "allowed_paths": None}, {"wasm": [{"path": path}], "unknown": 1},
        {"wasm": [{"path": path}], 1: 2},
    ]
    for url in URLS:
        dicts.append({"wasm": [{"url": url}]})
        dicts.append({"wasm": [{"url": url, "hash": WASM_SHA256}], "config": {"a": "b"}, "timeout_ms": 5})
    dicts += [{"wasm": [{"url": URLS[0], "headers": {}}]}, {"wasm": [{"url": URLS[0], "method": "GET"}]},
              {"wasm": [{"url": URLS[0], "name": "main"}]}, {"wasm": [{"url": URLS[0], "hash": "0" * 63}]}]
    for hash_ in HASHES:
        dicts.append({"wasm": [{"path": path, "hash": hash_}]})
        dicts.append({"wasm": [{"hash": hash_, "data": WASM}], "timeout_ms": 5})
    dicts.append({"wasm": [{"hash": WASM_SHA256}]})
    dicts += _limit_dicts(path)
    dicts += _grant_dicts(files)
    for config in CONFIGS:  # the manifest's own config: no None values (they remove only in Plugin's)
        dicts.append({"wasm": [{"path": path}], "config": config})
        dicts.append({"wasm": [{"data": WASM}], "config": config})
    return dicts


def _sources(files):
    plain_module_sources = [WASM, bytearray(WASM), WAT, WAT.encode(), files["m.wasm"], files["m.wat"]]
    others = [files["m.json"], files["wat.toml"], files["missing.wasm"], files["dir"], b"\x01\x02",
              json.dumps({"wasm": [{"path": files["m.wasm"]}], "config": {"a": "b"}}),
              Manifest([WasmData(WASM)], config={"a": "b"}), WasmFile(files["m.wasm"]), [{"path": files["m.wasm"]}],
              collections.OrderedDict(wasm=[{"path": files["m.wasm"]}]),
              types.MappingProxyType({"wasm": [{"path": files["m.wasm"]}]}), 3]
    return plain_module_sources + others + _manifest_dicts(files)


def _random_configs(count: int, removes: bool):
    """Config dicts drawn from odd keys and values (seeded: the same every run)."""
    rng = random.Random(20261206)
    texts = ["", "a", "A", "k e y", "é", "€", "𝄞", "\0", "x" * 300, "\ud800", "\udfff", "a\udc80b", "=", "\n"]
    others = [1, 0, True, 1.5, b"a", bytearray(b"a"), ("a",), Text("a"), object()]
    configs = []
    for _ in range(count):
        config = {}
        for _ in range(rng.randrange(0, 5)):
            key = rng.choice(texts) if rng.random() < 0.85 else rng.choice([1, b"a", Text("a"), None, ("a",)])
            pick = rng.random()
            value = (None if removes and pick < 0.2 else rng.choice(texts) if pick < 0.85 else rng.choice(others))
            config[key] = value
        configs.append(config)
    return configs


def test_the_plain_path_stands_for_the_full_path_or_declines(tmp_path):
    """For every source and Plugin config (hand-picked, combined, and random), the plain path makes
    exactly the Manifest of the full path (coerce_told_source without it), or declines; whenever
    the full path refuses, the plain path declined."""
    files = _files(tmp_path)
    sources = _sources(files)
    configs = CONFIGS + _random_configs(200, removes=True)
    counts = collections.Counter()
    for source, config in itertools.product(sources, configs):
        counts[_outcome(source, config)] += 1
    for config in _random_configs(300, removes=False):  # as a manifest dict's own config
        counts[_outcome({"wasm": [{"path": files["m.wasm"]}], "config": config}, None)] += 1
        counts[_outcome({"wasm": [{"data": WASM}], "config": config}, {"a": None, "new": "v"})] += 1
    assert counts["plain"] > 1000 and counts["declined"] > 1000 and counts["refused"] > 1000, counts
    limited = collections.Counter()  # dicts with a timeout_ms or memory, and a Plugin config or not
    for source, config in itertools.product(_random_limits(files, 1500), (None, {"a": None, "n": "v"}, {"a": 1})):
        limited[_outcome(source, config)] += 1
    assert limited["plain"] > 800 and limited["declined"] > 50 and limited["refused"] > 800, limited
    granted = collections.Counter()  # dicts with allowed_hosts / allowed_paths, a Plugin config or not
    for source, config in itertools.product(_random_grants(files, 1500), (None, {"a": None, "n": "v"})):
        granted[_outcome(source, config)] += 1
    assert granted["plain"] > 800 and granted["declined"] > 50 and granted["refused"] > 800, granted


def test_the_ranges_are_stated_once():
    """The schema's fields take their range from limits.OPTION_HIGH, which names each integer
    option of a manifest (what the plain path accepts); each C setting's converter is limits.py's."""
    fields = {f"{where}{field.name}": field for where, cls in (("", Manifest), ("memory.", MemoryOptions))
              for field in attrs.fields(cls) if "high" in field.metadata}
    assert {path: field.metadata["high"] for path, field in fields.items()} == OPTION_HIGH
    manifest = {"wasm": [{"data": WASM}], "timeout_ms": U64_MAX,
                "memory": {key: OPTION_HIGH[f"memory.{key}"] for key in MEMORY_KEYS}}
    assert _outcome(manifest, None) == "plain"
    for path in OPTION_HIGH:  # one past the range: refused by the full path, declined by the plain one
        where, _, key = path.rpartition(".")
        over = dict(manifest, **({"memory": {key: OPTION_HIGH[path] + 1}} if where else {key: OPTION_HIGH[path] + 1}))
        assert _outcome(over, None) == "refused", path


@pytest.mark.parametrize("limits", [
    {"timeout_ms": 50}, {"timeout_ms": 0}, {"memory": {"max_pages": 3}}, {"memory": {"max_var_bytes": 0}},
    {"memory": {"max_http_response_bytes": 7}}, {"memory": {"max_table_elements": 10}},
    {"timeout_ms": 1000, "memory": dict(zip(MEMORY_KEYS, (4, 5, 6, 7)))}, {"timeout_ms": None, "memory": None},
])
def test_a_manifest_dict_with_limits_is_plain(tmp_path, limits):
    """A dict of one module with a timeout_ms and memory limits is plain (no Manifest made), with or
    without a config, and runs under the settings and max_http_response_bytes of its Manifest."""
    files = _files(tmp_path)
    for source in ({"wasm": [{"path": files["m.wasm"]}], **limits},
                   {"wasm": [{"data": WASM}], "config": {"k": "v"}, **limits}):
        for config in (None, {"a": "b"}):
            assert _outcome(source, config) == "plain", config
        told = plain_source(source)
        expected = coerce_source(source)
        settings, _ = _plugin_options(told)
        assert settings.settings.timeout_ns == (expected.timeout_ms or 0) * 1_000_000
        assert settings.settings.max_memory_bytes == (expected.memory.max_memory_bytes or -1)
        assert settings.max_http_response_bytes == expected.memory.effective_max_http_response_bytes


@pytest.mark.parametrize("source", ["path", "wat path", "bytes", "WAT", "dict of a path", "dict of data",
                                    "dict of a module named .toml"])
def test_common_forms_with_a_config_are_plain(tmp_path, source):
    """The forms the official docs create plugins with, with a config, are plain (no Manifest made)."""
    files = _files(tmp_path)
    given = {"path": files["m.wasm"], "wat path": files["m.wat"], "bytes": WASM, "WAT": WAT,
             "dict of a path": {"wasm": [{"path": files["m.wasm"]}], "config": {"own": "1", "b": "2"}},
             "dict of data": {"wasm": [{"data": bytearray(WASM)}], "config": None},
             "dict of a module named .toml": {"wasm": [{"path": files["wasm.toml"]}]}}[source]
    for config in (None, {"a": "b", "": ""}, {"b": None, "c": "3"}):
        assert _outcome(given, config) == "plain", config
        assert _told(given, config).manifest() == _full(given, config) == coerce_source(given, config)


@pytest.mark.parametrize("form", [
    {"wasm": [{"path": "X"}], "config": {"k": 1}},     # the full path names the bad value's field
    {"wasm": [{"path": "X"}], "config": {"k": None}},  # null is not a manifest's config value
    {"wasm": [{"path": "X", "hash": "nothex"}]},
    {"wasm": [{"data": "not base64!"}]},
    {"wasm": [{"path": "X"}], "extra": 1},
])
def test_a_bad_manifest_dict_fails_with_the_full_path_s_message(tmp_path, form):
    path = _files(tmp_path)["m.wasm"]
    _fails_as_the_full_path(json.loads(json.dumps(form).replace('"X"', json.dumps(path))))


def _fails_as_the_full_path(source) -> str:
    """``source`` is not plain, and Plugin() fails with the full path's ManifestError: its message."""
    assert plain_source(source) is None
    with pytest.raises(ManifestError) as expected:
        coerce_told_source(source, None)
    with pytest.raises(ManifestError) as got:
        ef.Plugin(source, functions=[])
    assert str(got.value) == str(expected.value)
    return str(got.value)


@pytest.mark.parametrize("config", [{"k": 1}, {"k": "\udcff"}, {1: "v"}, {1: None}, [("k", "v")], "k=v"])
def test_a_bad_config_fails_with_the_full_path_s_message(plugin_wasm, tmp_path, config):
    """A config the plain path declines fails as the full path says (merge_config), for a path, a
    dict, a CompiledPlugin reused; the compiled plugin is intact afterwards."""
    path = tmp_path / "host.wasm"
    path.write_bytes(plugin_wasm("host"))
    with pytest.raises(ManifestError) as expected:
        ef.Plugin(ef.Manifest([ef.WasmFile(str(path))]), config=config, functions=[])
    for source in (str(path), {"wasm": [{"path": str(path)}]}):
        with pytest.raises(ManifestError) as got:
            ef.Plugin(source, config=config, functions=[])
        assert str(got.value) == str(expected.value)
    compiled = ef.CompiledPlugin(str(path), functions=[], config={"k": "v"})
    with pytest.raises(ManifestError) as got:
        ef.Plugin(compiled, config=config)
    assert str(got.value) == str(expected.value)
    with ef.Plugin(compiled) as plugin:
        assert plugin.call("config_get", "k") == b"v"


def test_a_plain_plugin_s_timeout_stops_an_endless_call():
    """{"wasm": [...], "timeout_ms": 50} as a dict is plain and its calls time out (the epoch
    engine, as a Manifest's); interruptible=False is refused with the Manifest's message."""
    loop = str(PLUGINS_DIR / "loop.wat")
    with ef.Plugin({"wasm": [{"path": loop}], "timeout_ms": 50}, functions=[]) as plugin:
        assert isinstance(plugin._options.manifest, PlainSource)
        assert plugin.interruptible
        for _ in range(2):
            start = time.monotonic()
            with pytest.raises(ef.TimeoutError, match=r"'loop' timed out after 50 ms \(manifest.timeout_ms\)"):
                plugin.call("loop")
            assert 0.045 <= time.monotonic() - start < 5
            assert plugin.call("ok") == b"ok"
        assert plugin.compiled_plugin.manifest == Manifest([WasmFile(loop)], timeout_ms=50)
    for source in ({"wasm": [{"path": loop}], "timeout_ms": 50}, Manifest([WasmFile(loop)], timeout_ms=50)):
        with pytest.raises(ManifestError, match=r"^manifest.timeout_ms = 50 needs an interruptible plugin"):
            ef.Plugin(source, functions=[], interruptible=False)
    compiled = ef.CompiledPlugin({"wasm": [{"path": loop}], "timeout_ms": 50}, functions=[])
    with pytest.raises(ManifestError, match=r"^manifest.timeout_ms = 50 needs an interruptible plugin"):
        ef.Plugin(compiled, interruptible=False)
    with ef.Plugin(compiled, config={"k": "v"}) as plugin:  # a config merged in keeps the timeout
        assert isinstance(plugin._options.manifest, PlainSource)
        with pytest.raises(ef.TimeoutError):
            plugin.call("loop")
    with ef.Plugin({"wasm": [{"path": loop}], "timeout_ms": 0}, functions=[], interruptible=False) as plugin:
        assert isinstance(plugin._options.manifest, PlainSource) and not plugin.interruptible


def test_a_plain_plugin_s_max_pages_bounds_memory_growth(plugin_wasm, tmp_path):
    """{"wasm": [...], "memory": {"max_pages": 3}} as a dict is plain and memory.grow past the
    budget is refused; an instance that cannot start within it fails with the Manifest's message."""
    path = tmp_path / "misc.wasm"
    path.write_bytes(plugin_wasm("misc"))
    for source in ({"wasm": [{"path": str(path)}], "memory": {"max_pages": 3}},
                   {"wasm": [{"data": plugin_wasm("misc")}], "memory": {"max_pages": 3, "max_var_bytes": 0}}):
        with ef.Plugin(source, functions=[]) as plugin:
            assert isinstance(plugin._options.manifest, PlainSource)
            assert u64(plugin.call("grow", q(2))) == 1  # 1 -> 3 pages: 1 left
            assert u64(plugin.call("grow", q(2))) == 2**64 - 1  # past it (the budget's steps: test_errors.py)
    wat = b'(module (memory 2) (func (export "run") (result i32) (i32.const 0)))'
    with ef.Plugin({"wasm": [{"data": wat}], "memory": {"max_pages": 1}}, functions=[]) as plugin:
        assert isinstance(plugin._options.manifest, PlainSource)
        with pytest.raises(ef.MemoryLimitError, match=r"manifest.memory.max_pages = 1"):
            plugin.call("run")
    with ef.Plugin({"wasm": [{"data": wat}], "memory": {"max_pages": 2}}, functions=[]) as plugin:
        assert plugin.call("run") == b""


@pytest.mark.parametrize("form", [
    {"timeout_ms": -1}, {"timeout_ms": True}, {"timeout_ms": 1.5}, {"timeout_ms": U64_MAX + 1},
    {"memory": {"max_pages": U32_MAX + 1}}, {"memory": {"max_pages": True}}, {"memory": {"extra": 1}},
    {"memory": [("max_pages", 3)]},
])
def test_a_bad_limit_fails_with_the_full_path_s_message(tmp_path, form):
    """A limit the plain path declines fails as the full path says; the same dict made valid is
    plain afterwards (nothing was left behind)."""
    source = {"wasm": [{"path": _files(tmp_path)["m.wasm"]}], **form}
    message = _fails_as_the_full_path(source)
    assert "timeout_ms" in message or "memory" in message
    assert isinstance(plain_source({"wasm": source["wasm"], "timeout_ms": 5}), PlainSource)


def test_a_plain_plugin_s_config_reaches_the_plugin(plugin_wasm, tmp_path):
    """config_get sees a plain plugin's config, as the full path's; PluginOptions hold the same
    config tuple; a CompiledPlugin reused with a config merges it (None removes) and stays plain."""
    path = tmp_path / "host.wasm"
    path.write_bytes(plugin_wasm("host"))
    config = {"a": "1", "b": "2", "empty": "", "é": "ü"}
    for source in (str(path), path, plugin_wasm("host"), {"wasm": [{"path": str(path)}]},
                   {"wasm": [{"data": plugin_wasm("host")}], "config": {"a": "0", "own": "x"}}):
        full = ef.Plugin(_full(source, config), functions=[])
        with ef.Plugin(source, config=config, functions=[]) as plugin:
            assert isinstance(plugin._options.manifest, PlainSource)
            assert plugin._options.config == full._options.config
            assert plugin.compiled_plugin.manifest == full.compiled_plugin.manifest
            for key in ("a", "b", "é", "own", "missing"):
                assert plugin.call("config_get", key) == full.call("config_get", key), key
        assert full.call("config_get", "a") == b"1"
        full.close()
    compiled = ef.CompiledPlugin({"wasm": [{"path": str(path)}], "config": {"a": "1", "b": "2"}}, functions=[])
    with ef.Plugin(compiled, config={"a": None, "c": "3"}) as plugin:
        assert isinstance(plugin._options.manifest, PlainSource)
        assert [plugin.call("config_get", k) for k in "abc"] == [b"<none>", b"2", b"3"]
        assert plugin._options.config == ((b"b", b"2"), (b"c", b"3"))
    with ef.Plugin(compiled, config=collections.OrderedDict(c="4")) as plugin:  # not plain: the full path
        assert not isinstance(plugin._options.manifest, PlainSource)
        assert [plugin.call("config_get", k) for k in "abc"] == [b"1", b"2", b"4"]
    with ef.Plugin(compiled, functions=[], strict=True, config={"c": "5"}) as plugin:  # options not the defaults
        assert plugin._options.config == ((b"a", b"1"), (b"b", b"2"), (b"c", b"5"))
        assert plugin.call("config_get", "c") == b"5"


def test_a_plain_plugin_keeps_its_own_copies(plugin_wasm, tmp_path):
    """Mutating the dict given (its wasm list, its entry, its config) or Plugin's config afterwards
    changes neither the plugin nor later instances of its compilation."""
    path = tmp_path / "host.wasm"
    path.write_bytes(plugin_wasm("host"))
    config, own = {"k": "v"}, {"a": "1"}
    entry = {"path": str(path)}
    manifest = {"wasm": [entry], "config": own}
    compiled = ef.CompiledPlugin(manifest, functions=[], config=config)
    plugin = ef.Plugin(manifest, functions=[], config=config)
    reused = ef.Plugin(compiled, config=config)
    config["k"], own["a"], config["new"], own["new"] = "changed", "changed", "x", "y"
    entry["path"] = str(tmp_path / "other.wasm")
    manifest["wasm"].append({"data": WASM})
    manifest["config"] = {"a": "replaced"}
    expected = Manifest([WasmFile(str(path))], config={"a": "1", "k": "v"})
    for each in (plugin, reused, ef.Plugin(compiled)):
        assert [each.call("config_get", k) for k in ("k", "a", "new")] == [b"v", b"1", b"<none>"]
        assert each.compiled_plugin.manifest == expected
        each.close()


def test_a_plain_plugin_s_allowed_paths_mount_with_wasi(plugin_wasm, tmp_path, caplog):
    """A dict with allowed_paths and wasi=True is plain and the plugin reads the mapped file ("ro:"
    read-only); the dict mutated afterwards changes nothing; without WASI the mapping is ignored
    with the Manifest's warning; a missing host directory fails with the Manifest's message."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_bytes(b"hello file")
    paths = {"ro:" + str(data): "/data"}
    manifest = {"wasm": [{"data": plugin_wasm("wasi_files")}], "config": {"dir": "/data", "file": "a.txt"},
                "allowed_paths": paths}
    plugin = ef.Plugin(manifest, wasi=True, functions=[])
    compiled = ef.CompiledPlugin(manifest, wasi=True, functions=[])
    paths["ro:" + str(data)], paths[str(tmp_path)] = "/elsewhere", "/root"
    for each in (plugin, ef.Plugin(compiled), ef.Plugin(compiled, config={"k": "v"})):
        with each:
            assert isinstance(each._options.manifest, PlainSource)
            assert each._options.mounts == ((str(data), bytes(data), b"/data", True),)
            assert each.call("read") == b"hello file"
            with pytest.raises(ef.PluginError, match="open failed"):
                each.call("write", b"overwritten")
            assert each.compiled_plugin.manifest.allowed_paths == {"ro:" + str(data): "/data"}
    assert (data / "a.txt").read_bytes() == b"hello file"
    with caplog.at_level("WARNING", logger="extism_fast"):
        with ef.Plugin({"wasm": [{"data": plugin_wasm("misc")}], "allowed_paths": paths}, functions=[]) as plugin:
            assert isinstance(plugin._options.manifest, PlainSource) and plugin._options.mounts == ()
            assert plugin.call("ok") == b"ok"
    assert [r.getMessage() for r in caplog.records if r.name == "extism_fast"] == [
        "manifest.allowed_paths is ignored: WASI is not enabled (pass wasi=True to mount directories)"]
    missing = {"wasm": manifest["wasm"], "allowed_paths": {str(tmp_path / "missing"): "/m"}}
    assert isinstance(plain_source(missing), PlainSource)
    with pytest.raises(ManifestError) as expected:
        ef.Plugin(coerce_source(missing), wasi=True, functions=[])
    with pytest.raises(ManifestError) as got:
        ef.Plugin(missing, wasi=True, functions=[])
    assert str(got.value) == str(expected.value)


@pytest.mark.parametrize("form", [
    {"allowed_hosts": "example.com"}, {"allowed_hosts": [""]}, {"allowed_hosts": ["a\0b"]}, {"allowed_hosts": [1]},
    {"allowed_hosts": ["\ud800"]}, {"allowed_paths": {"ro:": "/d"}}, {"allowed_paths": {"": "/d"}},
    {"allowed_paths": {"/tmp": 1}}, {"allowed_paths": {"/tmp": ""}}, {"allowed_paths": {"/tmp\0": "/d"}},
    {"allowed_paths": {"\ud800": "/d"}}, {"allowed_paths": [("/tmp", "/d")]},
])
def test_a_bad_grant_fails_with_the_full_path_s_message(tmp_path, form):
    """An allowed_hosts or allowed_paths the plain path declines fails as the full path says."""
    message = _fails_as_the_full_path({"wasm": [{"path": _files(tmp_path)["m.wasm"]}], **form})
    assert "allowed_" in message


def test_a_plain_plugins_hash_is_checked_as_the_full_path_checks_it(wasm_path):
    """A module pinned by its sha256 stays plain and runs; a mismatch is the full path's
    HashMismatchError, word for word (the full path taken by a source it declines: a name)."""
    path = str(wasm_path(COUNT))
    data = wasm_path(COUNT).read_bytes()
    good = hashlib.sha256(data).hexdigest()
    for source in ({"wasm": [{"path": path, "hash": good}]}, {"wasm": [{"data": data, "hash": good.upper()}]}):
        assert isinstance(plain_source(source), PlainSource)
        with ef.Plugin(source, functions=[]) as plugin:
            assert plugin.call("count_vowels", b"hello") == b'{"count": 2}'
            assert plugin.compiled_plugin.manifest == coerce_source(source)  # the same Manifest, hash kept
    bad = "0" * 64
    messages = []
    for source in ({"wasm": [{"path": path, "hash": bad}]}, {"wasm": [{"path": path, "hash": bad, "name": "main"}]},
                   {"wasm": [{"data": data, "hash": bad}]}):
        with pytest.raises(HashMismatchError) as info:
            ef.Plugin(source, functions=[])
        messages.append(str(info.value))
    assert plain_source({"wasm": [{"path": path, "hash": bad, "name": "main"}]}) is None
    assert set(messages) == {f"manifest.wasm[0]: sha256 mismatch: expected {bad}, got {good}"}


def test_a_plain_url_source_is_fetched_and_checked_as_the_full_path_does(wasm_path):
    """A URL source (a manifest dict of just its url, maybe its hash) stays plain: fetched with the
    one HTTP client when the plugin loads, its repr redacted; a failed fetch and a hash mismatch
    are the full path's errors word for word (the full path taken by a source it declines)."""
    data = wasm_path(COUNT).read_bytes()
    good = hashlib.sha256(data).hexdigest()
    requests = []
    with serve_bytes(data, requests) as base:
        url = f"http://user:secret@{base[len('http://'):]}/count.wasm?token=hidden"
        for source in ({"wasm": [{"url": url}]}, {"wasm": [{"url": url, "hash": good}], "config": {"k": "v"}}):
            assert plain_source(source).url == url
            with ef.Plugin(source, functions=[]) as plugin:
                assert plugin.call("count_vowels", b"hello") == b'{"count": 2}'
                assert plugin.compiled_plugin.manifest == coerce_source(source)
                assert "secret" not in repr(plugin) and "hidden" not in repr(plugin)
                assert f"'{base}/count.wasm'" in repr(plugin.compiled_plugin)
        assert [path for path, _ in requests] == ["/count.wasm?token=hidden"] * 2
        messages = []
        for extra in ({}, {"name": "main"}):  # plain, then the full path
            with pytest.raises(HashMismatchError) as info:
                ef.Plugin({"wasm": [{"url": url, "hash": "0" * 64, **extra}]}, functions=[])
            messages.append(str(info.value))
        assert messages[0] == messages[1] == f"manifest.wasm[0]: sha256 mismatch: expected {'0' * 64}, got {good}"
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        refused = f"http://127.0.0.1:{s.getsockname()[1]}/m.wasm?key=hidden"
    messages = []
    for extra in ({}, {"name": "main"}):
        with pytest.raises(ManifestError) as info:
            ef.Plugin({"wasm": [{"url": refused, **extra}]}, functions=[])
        messages.append(str(info.value))
    assert messages[0] == messages[1] and messages[0].startswith(
        f"manifest.wasm[0].url: cannot fetch {refused.split('?')[0]!r}: ") and "hidden" not in messages[0]
