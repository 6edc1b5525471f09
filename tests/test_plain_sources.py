"""The plain plugin with a config (manifest/plain.py): ``Plugin(path, config={...})`` and a manifest
dict of one module (``{"wasm": [{"path": ...}], "config": {...}}``) are read without the manifest
classes, yet stand for exactly the Manifest coerce_source makes (equal, the same config in the same
order); whatever the plain path cannot prove equal, or the full path refuses, it declines, so the
full path's checks and messages stay the only ones.
"""

from __future__ import annotations

import collections
import itertools
import json
import random
import types

import pytest

import extism_fast as ef
from extism_fast.errors import ManifestError
from extism_fast.manifest import Manifest, WasmData, WasmFile
from extism_fast.manifest.plain import PlainSource, plain_source
from extism_fast.manifest.sources import coerce_source, coerce_told_source
from extism_fast.runtime import options

WASM = b"\0asm\x01\0\0\0"
WAT = '(module (func (export "f")))'


class Text(str):
    """A str subclass: the full path takes it, the plain path leaves it to the full path."""


def _told(source, config):
    """What CompiledPlugin keeps without a Manifest: the plain source, with ``config`` merged."""
    plain = plain_source(source)
    return plain if plain is None or config is None else plain.with_config(config)


def _full(source, config):
    """The full path's Manifest: coerce_source without the plain path; but for bytes, whose module
    or manifest is plain_source's decision (the full path takes it: tests/test_manifest.py)."""
    plain = plain_source(source) if isinstance(source, (bytes, bytearray, memoryview)) else None
    return coerce_told_source(source, plain, config)


def _outcome(source, config) -> str:
    """Checks the plain path against the full one for ``source`` and Plugin's ``config``: "plain"
    (equal Manifest, config tuple and description), "declined" or "refused" (the full path raises:
    the plain path must have declined)."""
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
    form = json.loads(json.dumps(form).replace('"X"', json.dumps(path)))
    assert plain_source(form) is None
    with pytest.raises(ManifestError) as expected:
        coerce_told_source(form, None)
    with pytest.raises(ManifestError) as got:
        ef.Plugin(form, functions=[])
    assert str(got.value) == str(expected.value)


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
