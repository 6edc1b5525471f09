"""extism_fast/runtime/options.py: one frozen, resolved options object per Plugin; the options C
enforces declared once in Python (runtime/declarations.py: C_SETTINGS), from which the build generates
C's instance_settings (build/generated/instance_settings.h) and its ctypes mirror is made; and the C structs
the Python side declares a second time (kernel.pxd, the ctypes mirror) kept equal to the headers
field by field."""

from __future__ import annotations

import ctypes
import pathlib
import re

import attrs
import pytest
from conftest import COUNT

import extism_fast as ef
from extism_fast import _runtime
from extism_fast.runtime import declarations, options
from extism_fast.manifest import WASM_PAGE_SIZE
import extism_fast.manifest.plain  # noqa: F401 (ef.manifest.plain)

ROOT = pathlib.Path(__file__).resolve().parent.parent
KERNEL_C = ROOT / "kernel_c"
SETTINGS_HEADER = ROOT / "build" / "generated" / "instance_settings.h"  # setup.py writes it
SETTINGS_TABLE = ROOT / "build" / "generated" / "built_settings.pxi"  # and this, which _runtime.pyx includes
KERNEL_PXD = ROOT / "extism_fast" / "includes" / "kernel.pxd"


# ---- parsing the declarations ----

def _type(text: str) -> str:
    """A C type as compared: no const, no spaces (``const char *const *`` -> ``char**``)."""
    return re.sub(r"\bconst\b|\s+", "", text)


def c_structs(text: str) -> dict[str, dict[str, str]]:
    """Every ``typedef struct name {...} name;`` of a C header: field -> type (function pointers
    and arrays are kept with their name's decoration stripped, enough to compare names)."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    structs = {}
    for match in re.finditer(r"typedef\s+struct\s+(\w+)\s*\{(.*?)\}\s*(\w+)\s*;", text, flags=re.S):
        fields = {}
        for declaration in match.group(2).split(";"):
            declaration = " ".join(declaration.split())
            if not declaration:
                continue
            pointer = re.match(r"(.*)\(\s*\*\s*(\w+)\s*\)\s*\(.*\)$", declaration)  # a function pointer
            if pointer:
                fields[pointer.group(2)] = "fn"
                continue
            first, *others = declaration.split(",")  # `uint64_t a, b`
            found = re.match(r"(.*?)(\w+)\s*(\[.*\])?$", first)
            if found is None:  # a macro that expands to fields (wasmtime_api.h's table)
                continue
            fields[found.group(2)] = _type(found.group(1)) + (found.group(3) or "")
            for other in others:
                fields[other.strip()] = _type(found.group(1))
        structs[match.group(3)] = fields
    return structs


def pxd_structs(text: str) -> dict[str, tuple[str, dict[str, str]]]:
    """Every ``ctypedef struct name:`` of kernel.pxd: (its header, field -> type)."""
    structs: dict[str, tuple[str, dict[str, str]]] = {}
    header = None
    current = None
    for line in text.splitlines():
        code = line.split("#", 1)[0].rstrip()
        extern = re.match(r'cdef extern from "([\w.]+)"', code)
        if extern:
            header, current = extern.group(1), None
            continue
        struct = re.match(r"    ctypedef struct (\w+):", code)
        if struct:
            current = structs.setdefault(struct.group(1), (header, {}))[1]
            continue
        if current is not None and code.startswith("        ") and code.strip() != "pass":
            if "(" in code:  # a function pointer field
                name = re.match(r"\s*[\w\s*]*\(\*(\w+)\)", code)
                current[name.group(1)] = "fn"
                continue
            found = re.match(r"\s*(.*?)(\w+)$", code)
            current[found.group(2)] = _type(found.group(1))
        elif code and not code.startswith("        "):
            current = None
    return structs


def header_structs() -> dict[str, dict[str, str]]:
    """Every struct the kernel is compiled with: kernel_c's headers and the generated one."""
    structs: dict[str, dict[str, str]] = {}
    for header in [*KERNEL_C.glob("*.h"), SETTINGS_HEADER]:
        structs.update(c_structs(header.read_text()))
    return structs


_C_SCALARS = {"int64_t": ctypes.c_int64, "uint64_t": ctypes.c_uint64, "int": ctypes.c_int,
              "size_t": ctypes.c_size_t}
_MIRRORED = {"CKvEntry": "kv_entry", "CWasiPreopen": "wasi_preopen", "CInstanceSettings": "instance_settings"}


def _ctype_matches(ctype, c_type: str) -> bool:
    """Whether a ctypes field type has C type ``c_type`` (``c_char_p``: any byte pointer; on this
    platform c_uint64 and c_size_t are one type, as the C types are one size)."""
    if ctype is ctypes.c_char_p:
        return c_type in ("char*", "uint8_t*")
    if isinstance(ctype, type) and issubclass(ctype, ctypes.Structure):  # an embedded struct
        return c_type == _MIRRORED.get(ctype.__name__, "?")
    if hasattr(ctype, "contents"):  # POINTER(X)
        return c_type.endswith("*") and _ctype_matches(ctype._type_, c_type[:-1]) if ctype._type_ is ctypes.c_char_p \
            else c_type == _MIRRORED.get(ctype._type_.__name__, "?") + "*"
    return _C_SCALARS.get(c_type) is ctype


def pxd_mismatches(pxd_text: str, structs: dict[str, dict[str, str]]) -> list[str]:
    """Each field kernel.pxd declares that its header's struct lacks, or declares with another type."""
    problems = []
    for name, (header, fields) in pxd_structs(pxd_text).items():
        c_fields = structs.get(name)
        if c_fields is None:
            problems.append(f"{name}: no such struct in kernel_c (kernel.pxd says {header})")
            continue
        for field, pxd_type in fields.items():
            if field not in c_fields:
                problems.append(f"{name}.{field}: not a field of the C struct")
            elif pxd_type != c_fields[field]:
                problems.append(f"{name}.{field}: {pxd_type} in kernel.pxd, {c_fields[field]} in {header}")
    return problems


def ctypes_mismatches(struct_name: str, ctype, structs: dict[str, dict[str, str]]) -> list[str]:
    """Differences between a ctypes mirror and the C struct: the same fields, in order, same types."""
    c_fields = structs[struct_name]
    names = [name for name, _ in ctype._fields_]
    if names != list(c_fields):
        return [f"{struct_name}: fields {names} in options.py, {list(c_fields)} in C"]
    return [f"{struct_name}.{name}: {t.__name__} in options.py, {c_fields[name]} in C"
            for name, t in ctype._fields_ if not _ctype_matches(t, c_fields[name])]


# ---- the declarations agree ----

def test_kernel_pxd_declares_the_structs_as_the_headers_define_them():
    assert pxd_mismatches(KERNEL_PXD.read_text(), header_structs()) == []


def test_options_py_mirrors_instance_options_and_its_arrays():
    structs = header_structs()
    c_options, kv_entry, preopen, settings = declarations.c_types()
    for name, mirror in (("instance_options", c_options), ("instance_settings", settings), ("kv_entry", kv_entry),
                         ("wasi_preopen", preopen)):
        assert ctypes_mismatches(name, mirror, structs) == []
    assert ctypes.sizeof(c_options) == _runtime._INSTANCE_OPTIONS_SIZE
    assert ctypes.sizeof(settings) == _runtime._INSTANCE_SETTINGS_SIZE


def test_the_build_compiled_the_declared_settings():
    """The header the kernel and the extension were compiled with is the one the declarations make
    now (a stale build fails here: rebuild), and it is the only declaration of the struct in C."""
    assert SETTINGS_HEADER.read_text() == declarations.c_settings_header()
    by_hand = [p.name for p in KERNEL_C.glob("*.h") if re.search(r"struct\s+instance_settings\s*\{", p.read_text())]
    assert by_hand == []
    assert '#include "instance_settings.h"' in (KERNEL_C / "instance_state.h").read_text()


def test_the_runtime_was_built_with_the_declared_table():
    """The runtime's copy of the declarations (build/generated/built_settings.pxi, generated with the
    header and compiled into the extension, which hands it to options.py with the first plugin):
    the fields in C's order, and a plain plugin's values, which are what the declarations give a
    Manifest of one module with no option; a stale build fails here."""
    assert SETTINGS_TABLE.read_text() == declarations.c_settings_table()
    assert _runtime._BUILT_SETTINGS == declarations.built_settings()
    ef.Plugin(b"\0asm\1\0\0\0").close()  # the first plugin hands the table (_load_options)
    assert options.settings_tables().fields is _runtime._BUILT_SETTINGS[0]
    assert options.settings_tables().fields == tuple((s.name, s.c_type) for s in declarations.C_SETTINGS)
    assert options.settings_tables().max_http_response_bytes == ef.manifest.DEFAULT_MAX_HTTP_RESPONSE_BYTES
    keywords = {"fuel": 5, "wasi": 1, "wasi_stdio": 2, "strict": 1}
    plain = ef.manifest.plain.PlainSource(data=b"\0asm\1\0\0\0")
    assert options.c_settings(plain, keywords) == options.c_settings(plain.manifest(), keywords)
    assert options.c_settings(plain, keywords)._asdict() == {
        "timeout_ns": 0, "max_memory_bytes": -1, "max_var_bytes": ef.manifest.DEFAULT_MAX_VAR_BYTES,
        "max_table_elements": ef.manifest.DEFAULT_MAX_TABLE_ELEMENTS, **keywords}
    assert [value is None for value in options.settings_tables().plain] == [
        s.name in keywords for s in declarations.C_SETTINGS]
    # how a manifest's options replace those values: by their path, converted by limits.py's functions
    fields, from_manifest = options.settings_tables().fields, options.settings_tables().from_manifest
    assert {path: (fields[position][0], to_c) for position, path, to_c in from_manifest} == {
        "timeout_ms": ("timeout_ns", "timeout_ns"), "memory.max_pages": ("max_memory_bytes", "memory_budget"),
        "memory.max_var_bytes": ("max_var_bytes", None), "memory.max_table_elements": ("max_table_elements", None)}
    limited = ef.manifest.plain.PlainSource(data=b"\0asm\1\0\0\0", limits={
        "timeout_ms": 3, "memory.max_pages": 2, "memory.max_var_bytes": 0, "memory.max_table_elements": 9})
    assert options.c_settings(limited, keywords) == options.c_settings(limited.manifest(), keywords)
    assert options.c_settings(limited, keywords)._asdict() == {
        "timeout_ns": 3_000_000, "max_memory_bytes": 2 * WASM_PAGE_SIZE, "max_var_bytes": 0, "max_table_elements": 9,
        **keywords}


def test_a_plain_plugin_gets_the_options_of_its_manifest(wasm_path):
    """Plugin(path) resolves no Manifest (manifest/plain.py) yet runs under exactly the options
    Plugin(Manifest([WasmFile(path)])) does."""
    path = str(wasm_path(COUNT))
    plain, full = ef.Plugin(path), ef.Plugin(ef.Manifest([ef.WasmFile(path)]))
    assert isinstance(plain._options.manifest, ef.manifest.plain.PlainSource)
    assert plain._options._replace(manifest=None, packed=[]) == full._options._replace(manifest=None, packed=[])
    assert plain.compiled_plugin.manifest == full.compiled_plugin.manifest
    assert plain.compiled_plugin.manifest is plain.compiled_plugin.manifest  # made once


def test_each_option_c_enforces_is_declared_once_and_read_in_c():
    """C_SETTINGS is the manifest fields declared with a CSetting plus the Plugin keywords, each
    name once; the generated struct has exactly those fields, and C reads each as p->settings.name."""
    declared = {}
    for cls in (ef.Manifest, ef.MemoryOptions):
        for field in attrs.fields(cls):
            if field.metadata.get("c") is not None:
                declared[field.metadata["c"].name or field.name] = field.name
    assert {"timeout_ns": "timeout_ms", "max_memory_bytes": "max_pages", "max_var_bytes": "max_var_bytes",
            "max_table_elements": "max_table_elements"} == declared
    names = [setting.name for setting in declarations.C_SETTINGS]
    assert sorted(names) == sorted([*declared, *(setting.name for setting in declarations.KEYWORD_SETTINGS)])
    assert list(c_structs(declarations.c_settings_header())["instance_settings"]) == names == list(options.Settings._fields)
    c_code = "".join(p.read_text() for p in KERNEL_C.glob("*.[ch]"))
    assert [name for name in names if not re.search(rf"->settings\.{name}\b", c_code)] == []
    # the host-side options touch no C
    assert attrs.fields(ef.MemoryOptions).max_http_response_bytes.metadata["c"] is None


def test_architecture_names_the_four_files_a_new_option_touches():
    """The recipe the declarations above make true: limits.py (its range), schema.py, the enforcing
    C, ABI.md, the test."""
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    recipe = text[text.index("**A manifest option**"):text.index("**A capability**")]
    files = re.search(r"touches exactly five\s+files: (.*?) and its test file", recipe, re.S)
    assert files is not None
    assert re.findall(r"`([^`]+)`", files.group(1)) == [
        "extism_fast/manifest/limits.py", "extism_fast/manifest/schema.py", "kernel_c/*.c", "docs/ABI.md"]


def test_settings_are_resolved_from_their_declarations():
    manifest = ef.Manifest([ef.WasmData(b"\0asm\1\0\0\0")], memory=ef.MemoryOptions(max_pages=3, max_var_bytes=0),
                           timeout_ms=2)
    keywords = {"fuel": 7, "wasi": True, "wasi_stdio": 2, "strict": False}
    assert options.c_settings(manifest, keywords)._asdict() == {
        "timeout_ns": 2_000_000, "max_memory_bytes": 3 * WASM_PAGE_SIZE, "max_var_bytes": 0,
        "max_table_elements": ef.manifest.DEFAULT_MAX_TABLE_ELEMENTS, "fuel": 7, "wasi": 1, "wasi_stdio": 2,
        "strict": 0}
    defaults = options.c_settings(attrs.evolve(manifest, memory=ef.MemoryOptions(), timeout_ms=None), keywords)
    assert (defaults.timeout_ns, defaults.max_memory_bytes, defaults.max_var_bytes) == (
        0, -1, ef.manifest.DEFAULT_MAX_VAR_BYTES)
    huge = options.c_settings(attrs.evolve(manifest, timeout_ms=ef.manifest.U64_MAX), keywords)
    assert huge.timeout_ns == ef.manifest.U64_MAX  # clamped to C's uint64_t


def test_the_scalars_reach_plugin_instance_whole():
    """A new scalar option is one field of the generated instance_settings: instance_options holds
    them as its first member, plugin_instance keeps them whole (no field-by-field copies in
    instance.c), and the runtime packs each one from the PluginOptions.settings field of its name."""
    structs = header_structs()
    settings = structs["instance_settings"]
    assert list(structs["instance_options"])[0] == "settings"
    assert structs["instance_options"]["settings"] == structs["plugin_instance"]["settings"] == "instance_settings"
    assert not set(settings) & (set(structs["instance_options"]) | set(structs["plugin_instance"]))
    instance_c = (KERNEL_C / "instance.c").read_text()
    assert "p->settings = options->settings;" in instance_c
    assert not set(re.findall(r"options->(\w+)", instance_c)) & set(settings)  # read from p->settings
    layout = options.c_layout()
    assert [name for name, _, _ in layout] == list(settings)
    assert list(settings) == list(options.Settings._fields)
    c_settings = declarations.c_types()[3]
    assert [offset for _, offset, _ in layout] == [getattr(c_settings, name).offset for name in settings]


def test_a_seeded_difference_is_found():
    """The comparisons are not vacuous: a changed type, a missing field, a new C field."""
    structs = header_structs()
    pxd = KERNEL_PXD.read_text()
    changed = pxd.replace("        uint64_t output_length\n", "        uint32_t output_length\n")
    assert changed != pxd
    assert pxd_mismatches(changed, structs) == [
        "call_result.output_length: uint32_t in kernel.pxd, uint64_t in call.h"]
    assert pxd_mismatches(pxd.replace("        int32_t rc\n", "        int32_t rc\n        int extra\n"),
                          structs) == ["call_result.extra: not a field of the C struct"]
    header = SETTINGS_HEADER.read_text()
    seeded = header.replace("    int strict;", "    int strict;\n    int64_t max_new_thing;")
    assert seeded != header
    c_options, _, _, c_settings = declarations.c_types()
    assert ctypes_mismatches("instance_settings", c_settings, c_structs(seeded))
    retyped = header.replace("    uint64_t timeout_ns;", "    int64_t timeout_ns;")
    assert retyped != header
    assert ctypes_mismatches("instance_settings", c_settings, c_structs(retyped)) == [
        "instance_settings.timeout_ns: c_ulong in options.py, int64_t in C"]
    options_h = (KERNEL_C / "instance.h").read_text()
    unembedded = options_h.replace("    instance_settings settings;", "    int settings;")
    assert unembedded != options_h
    assert ctypes_mismatches("instance_options", c_options, c_structs(unembedded)) == [
        "instance_options.settings: CInstanceSettings in options.py, int in C"]


def test_wasi_stdio_values_are_the_c_enum():
    text = (KERNEL_C / "instance_state.h").read_text()
    enum = dict(re.findall(r"WASI_STDIO_(\w+) = (\d+)", text))
    assert {name.lower(): int(value) for name, value in enum.items()} == options.WASI_STDIO_MODES


# ---- the resolved options ----

def test_options_are_resolved_once_and_frozen(plugin_wasm):
    manifest = {"wasm": [{"data": plugin_wasm("kernel")}], "timeout_ms": 1500,
                "memory": {"max_pages": 40, "max_var_bytes": 77}, "allowed_hosts": ["a.example"],
                "config": {"k": "v"}}
    with ef.Plugin(manifest, http_response_headers=True) as plugin:
        o, memory = plugin._options, plugin.compiled_plugin.manifest.memory  # o.manifest: a plain plugin
        s = o.settings
        assert s.max_memory_bytes == 40 * WASM_PAGE_SIZE == memory.max_memory_bytes
        assert (s.max_var_bytes, s.timeout_ns, o.allowed_hosts, o.config) == (77, 1_500_000_000, ("a.example",),
                                                                               ((b"k", b"v"),))
        assert o.http_response_headers and s.max_table_elements == memory.effective_max_table_elements
        with pytest.raises(AttributeError):
            s.timeout_ns = 0
        with pytest.raises(AttributeError):
            o.settings = s
    with ef.Plugin(plugin_wasm("kernel")) as plugin:
        assert plugin._options.settings.max_memory_bytes == -1 and plugin._options.settings.timeout_ns == 0


def test_plugin_from_a_compiled_plugin_reuses_its_options_until_the_environment_changes(plugin_wasm, monkeypatch):
    monkeypatch.delenv("EXTISM_FAST_STRICT", raising=False)
    compiled = ef.CompiledPlugin(plugin_wasm("kernel"))
    first, second = ef.Plugin(compiled), ef.Plugin(compiled)
    assert first._options is second._options and not first.strict
    monkeypatch.setenv("EXTISM_FAST_STRICT", "1")
    assert ef.Plugin(compiled).strict  # read when each Plugin is made, as before
    configured = ef.Plugin(compiled, config={"a": "b"})._options  # the same options, but its config
    assert configured.config == ((b"a", b"b"),) and configured.manifest.config == {"a": "b"}
    strict_now = ef.Plugin(compiled)._options
    assert configured.settings == strict_now.settings and configured.packed is not strict_now.packed


def test_mounts_are_checked_for_every_plugin_even_with_reused_options(plugin_wasm, tmp_path):
    mounted = tmp_path / "data"
    mounted.mkdir()
    compiled = ef.CompiledPlugin({"wasm": [{"data": plugin_wasm("kernel")}],
                                  "allowed_paths": {str(mounted): "/data"}}, wasi=True)
    ef.Plugin(compiled).close()
    mounted.rmdir()
    with pytest.raises(ef.ManifestError, match="manifest.allowed_paths: host directory .* does not exist"):
        ef.Plugin(compiled)
    mounted.mkdir()
    ef.Plugin(compiled).close()  # the compiled plugin is intact


def test_the_options_tuples_behave_as_namedtuples(wasm_path):
    """runtime/records.py's tuples (options.py's and compile_cache.py's, made without collections
    for the cold start) keep what the package and programs used of namedtuple's: positional and
    keyword construction, fields by name, a repr naming them, tuple equality, _replace, _asdict,
    _make, pickling by class name; a missing, extra or unknown field is an error naming it."""
    import collections
    import copy
    import pickle

    from extism_fast.runtime.compile_cache import EntryKey
    from extism_fast.runtime.records import record

    key = EntryKey(b"m", engine=b"e", module_size=3)
    assert key == (b"m", b"e", 3) and key.engine == b"e" and key.module_size == 3 and isinstance(key, tuple)
    assert repr(key) == "EntryKey(module=b'm', engine=b'e', module_size=3)" == repr(
        collections.namedtuple("EntryKey", EntryKey._fields)(b"m", b"e", 3))
    assert key._replace(module_size=4) == (b"m", b"e", 4) and type(key._replace()) is EntryKey
    assert key._asdict() == {"module": b"m", "engine": b"e", "module_size": 3}
    assert EntryKey._make([b"a", b"b", 1]) == (b"a", b"b", 1) and EntryKey.__match_args__ == EntryKey._fields
    for copied in (pickle.loads(pickle.dumps(key)), copy.copy(key), copy.deepcopy(key)):
        assert copied == key and type(copied) is EntryKey
    settings = ef.Plugin(str(wasm_path(COUNT)))._options.settings
    assert type(settings) is options.Settings and pickle.loads(pickle.dumps(settings)) == settings
    assert repr(settings).startswith("Settings(timeout_ns=0, ")
    with pytest.raises(TypeError, match="module_size"):
        EntryKey(b"m", b"e")
    with pytest.raises(TypeError):
        EntryKey(b"m", b"e", 3, 4)
    with pytest.raises(ValueError, match="EntryKey: no field named size"):
        key._replace(size=1)
    with pytest.raises(TypeError, match="expected 3 values, got 2"):
        EntryKey._make([1, 2])
    with pytest.raises(ValueError, match="field names"):
        record("Bad", ["ok", "_private"])
    with pytest.raises(AttributeError):
        key.module = b"x"  # frozen, no instance dict
    with pytest.raises(AttributeError):
        key.other = 1


def test_a_record_class_is_made_without_compiling_code(monkeypatch):
    """record() makes its class without exec (namedtuple compiles a __new__ per class: ~0.1 ms of a
    fresh process each, and a first plugin makes five), and its construction errors read as
    namedtuple's."""
    import builtins
    import collections

    from extism_fast.runtime.records import record

    def refused(*args, **kwargs):
        raise AssertionError("record() compiled code")

    monkeypatch.setattr(builtins, "exec", refused)
    monkeypatch.setattr(builtins, "compile", refused)
    made = record("Point", ["x", "y", "z"])
    monkeypatch.undo()
    reference = collections.namedtuple("Point", ["x", "y", "z"])
    assert made(1, z=3, y=2) == reference(1, z=3, y=2) == (1, 2, 3)
    for args, kwargs in [((1, 2), {}), ((1, 2, 3, 4), {}), ((1,), {"x": 1, "y": 2, "z": 3}), ((1, 2, 3), {"w": 0}),
                         ((1,), {"y": 2, "w": 0})]:
        with pytest.raises(TypeError) as expected:
            reference(*args, **kwargs)
        with pytest.raises(TypeError, match=f"^{re.escape(str(expected.value))}$"):
            made(*args, **kwargs)
