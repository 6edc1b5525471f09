"""Cold start: what a fresh process loads for ``import extism_fast``, a first ``Plugin(bytes).call``,
``extism-fast --help`` and ``extism-fast call`` (README, "Performance"; bench/cold_start.py times
them). Each set is checked against an allow-list in a fresh ``python -S`` (no ``site``, so nothing
is preloaded), so that a module-level import of asyncio, HTTP, TOML, pickle or the batch machinery
cannot creep back onto these paths: they load when first used. The compile cache is warm, as in a
process started after the first; a miss may load more (writing an entry: extism_fast._files).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
import time

import pytest
from conftest import COUNT, REPO_ROOT, leb128, serve_bytes

#: What ``import extism_fast`` loads (beyond what ``python -S`` starts with): the extension, and
#: the modules its module-level code needs: os (with _collections_abc). No __future__ (NOT_COLD), typing, types, attrs (the manifest classes), logging, threading,
#: weakref or importlib, nor collections (the extension uses no typed memoryview, whose Cython code
#: imports collections.abc), nor host/functions.py and enum (ValType): the host function names load
#: when first used (the package's ``_LAZY``), the extension binds them with the first host function
#: (``_load_host_functions``). Nor what only some paths need: ``extism_fast.extism`` (an attribute
#: loaded when first read), pickling, the debug dumps (after a failed call with EXTISM_MEMDUMP or
#: EXTISM_COREDUMP set), runtime/ (with the first plugin).
IMPORT = {
    "_collections_abc", "_stat", "genericpath", "os", "os.path", "posixpath", "stat",
    "extism_fast", "extism_fast._moved", "extism_fast._runtime", "extism_fast._version", "extism_fast.errors",
    "extism_fast.host", "extism_fast.host.logs", "extism_fast.host.registry",
}
#: What a first ``Plugin(bytes).call`` adds: the plain plugin (manifest/plain.py, not the manifest
#: classes: no attrs; with a config or as a manifest dict of one module too) and the compile
#: cache (a warm hit reads only: runtime/compile_cache_store.py,
#: its writes, loads with a miss), which hashes its small inputs with the extension's
#: sha256 (no module: neither hashlib's OpenSSL nor CPython's own) and needs no pathlib; its tuples
#: are runtime/records.py's (no collections.namedtuple). The memories a module defines are read by the
#: extension (kernel_c/wasm_sections.c): LAZY names the module that read them in Python (removed), so
#: that none comes back on these paths. Nor manifest/limits.py nor a module of the build's settings
#: table: a plain plugin's values as built come with the extension (options.use_built_settings); a
#: manifest dict with a timeout_ms or memory limits loads limits.py (LIMITS).
FIRST_CALL = IMPORT | {
    "_collections",  # built in: runtime/records.py's field getters (_tuplegetter)
    "extism_fast.manifest", "extism_fast.manifest.files", "extism_fast.manifest.plain",
    "extism_fast.runtime", "extism_fast.runtime.compile_cache", "extism_fast.runtime.options", "extism_fast.runtime.records",
}
#: What a first call of a manifest dict with a ``timeout_ms`` and ``memory`` limits adds (a plain
#: plugin too): manifest/limits.py, attrs-free, whose ranges check them and whose conversions make
#: C's values of them (the names the build's table gives: options.c_settings).
LIMITS = FIRST_CALL | {"extism_fast.manifest.limits"}
#: Never loaded by a first call of a plain plugin: the manifest classes (they load when a Manifest
#: is given or ``CompiledPlugin.manifest`` is read), nor the options' declarations (read with them).
NOT_FOR_PLAIN = ("attr", "attrs", "extism_fast.manifest.schema", "extism_fast.manifest.sources",
                 "extism_fast.runtime.declarations")
#: Never loaded by the import nor a first call of a plain plugin: typing and re (~10 ms of a fresh
#: process with what they import), enum (~2 ms: ValType) and functools; nor __future__ (~0.15 ms):
#: the modules on these paths do not use ``from __future__ import annotations`` (docs/ARCHITECTURE.md,
#: "Cold start"), their annotations that name typing's names (imported under ``if TYPE_CHECKING:``)
#: or a class not yet defined are strings;
#: typing loads with the first host function whose annotations are not all plain classes, enum
#: with host/functions.py; collections is not needed (runtime/records.py makes the option tuples,
#: and the extension has no typed memoryview, whose Cython code imports collections.abc).
NOT_COLD = ("typing", "re", "enum", "functools", "collections", "__future__")
#: What a first call of a typed host function adds: host/functions.py, with __future__ (that
#: module's annotations) and the built-in _operator; not inspect and typing (with re, ~15 ms of a
#: fresh process): a plain function's signature is read from its code object; nor enum (with
#: functools and collections, ~4 ms): its signature holds ValType's values, and its Vals are its own
#: converters' (the ValType Enum is made when a program names it).
HOST_FUNCTION = FIRST_CALL | {"extism_fast.host.functions", "_operator", "__future__"}
#: What the command adds for ``--help`` and a plain ``call``: its own modules, parsing both without
#: argparse (cli/fastpath.py, cli/helptext.py), which with what it imports (re; enum; gettext, which
#: translates its messages, with locale) costs ~10 ms: a command line the fast path does not parse
#: loads it (cli/parser.py). Not typing or contextlib, nor the batch module, shutil (the help's width
#: comes from os), the pool, JSON or logging (each loads with the option that needs it).
_COMMAND = {"extism_fast.cli", "extism_fast.cli.fastpath", "extism_fast.cli.options",
            "types"}  # their SimpleNamespace
#: ``extism-fast --help``: the import and the command's modules only (and the help's layout); not
#: even the manifest (attrs).
HELP = IMPORT | _COMMAND | {"extism_fast.cli.helptext"}
#: ``extism-fast call``: the command's modules and a first call.
CALL = FIRST_CALL | _COMMAND | {
    # writes the .id record of the plugin file once it is 2 s old (whichever run that is)
    "extism_fast._files", "extism_fast.runtime.compile_cache_store",
}
#: The argparse parser and what only it loads: never on the path of ``--help`` or a plain ``call``.
PARSER = ("argparse", "gettext", "locale", "textwrap", "extism_fast.cli.parser", "extism_fast.cli.arguments")
#: Not loaded by ``extism-fast --help`` (attrs is allowed elsewhere as a third-party prefix, so it
#: is named here), nor by a plain ``call`` for those after "attrs".
NOT_FOR_HELP = ("attr", "attrs", "extism_fast.manifest", "extism_fast.runtime.compile_cache", "logging",
                "json", "dataclasses", "concurrent.futures", "extism_fast.cli.batch", "extism_fast.cli.batch_engine",
                "extism_fast.scale", "extism_fast.scale.pool", "shutil")
#: Loaded when first used, never by these paths (named in the failure, with the allow-list).
LAZY = ("asyncio", "ssl", "socket", "http.client", "urllib.request", "tempfile", "tomllib", "pickle", "uuid",
        "hashlib", "pathlib", "ctypes", "pyarrow", "dask", "ray", "extism_fast.scale.aio", "extism_fast.host.http",
        "secrets", "random", "extism_fast.cli.batch_dist", "extism_fast.host.log_output",
        "extism_fast.runtime.wasm_sections")

_THIRD_PARTY_PREFIXES = ("attr.", "attrs.", "_cython_")
_THIRD_PARTY = {"attr", "attrs", "cython_runtime"}

_REPORT = textwrap.dedent("""
    import sys
    _before = set(sys.modules)
    _report = sys.argv.pop(1)
    def _write():
        with open(_report, "w") as f:
            f.write("\\n".join(sorted(set(sys.modules) - _before)))
""")

_IMPORT = _REPORT + "import extism_fast\n_write()\n"

_FIRST_CALL = _REPORT + textwrap.dedent("""
    import extism_fast
    with open(sys.argv[1], "rb") as f:
        wasm = f.read()
    given = sys.argv[2]
    if given == "hash":  # a manifest dict of the file pinned by its sha256 (the third argument)
        source = {"wasm": [{"path": sys.argv[1], "hash": sys.argv[3]}]}
    else:
        source = wasm if given == "bytes" else sys.argv[1]
    with extism_fast.Plugin(source) as plugin:
        assert plugin.call("count_vowels", b"hello") == b'{"count": 2}'
    _write()
""")

# The official docs' commonest forms: a path with a config, a manifest dict of one module with one.
_CONFIG_CALL = _REPORT + textwrap.dedent("""
    import extism_fast
    path, given = sys.argv[1], sys.argv[2]
    if given == "config":
        plugin = extism_fast.Plugin(path, config={"k": "v"}, functions=[])
    else:
        plugin = extism_fast.Plugin({"wasm": [{"path": path}], "config": {"k": "v"}}, functions=[])
    with plugin:
        assert plugin.call("config_get", b"k") == b"v"
    _write()
""")

# A manifest dict with every limit the plain path reads.
_LIMITS_CALL = _REPORT + textwrap.dedent("""
    import extism_fast
    memory = {"max_pages": 64, "max_var_bytes": 4096, "max_http_response_bytes": 1024, "max_table_elements": 100}
    with extism_fast.Plugin({"wasm": [{"path": sys.argv[1]}], "timeout_ms": 1000, "memory": memory},
                            functions=[]) as plugin:
        assert plugin.call("count_vowels", b"hello") == b'{"count": 2}'
        assert plugin._options.settings.timeout_ns == 10**9 and plugin._options.max_http_response_bytes == 1024
    _write()
""")

# A manifest dict with allowed hosts and a mounted directory (WASI).
_GRANTS_CALL = _REPORT + textwrap.dedent("""
    import extism_fast
    manifest = {"wasm": [{"path": sys.argv[1]}], "allowed_hosts": ["example.com", "*.example.org"],
                "allowed_paths": {sys.argv[2]: "/data", "ro:" + sys.argv[2]: "/ro"}}
    with extism_fast.Plugin(manifest, wasi=True, functions=[]) as plugin:
        assert plugin.call("count_vowels", b"hello") == b'{"count": 2}'
        assert plugin._options.allowed_hosts == ("example.com", "*.example.org") and len(plugin._options.mounts) == 2
    _write()
""")

_PATH_CALL = _REPORT + textwrap.dedent("""
    import extism_fast
    with extism_fast.Plugin(sys.argv[1]) as plugin:
        assert plugin.call("count_vowels", b"hello") == b'{"count": 2}'
    _write()
""")

_HOST_FUNCTION_CALL = _REPORT + textwrap.dedent("""
    import extism_fast
    @extism_fast.host_fn()
    def hello_world(text: str) -> str:
        return text.upper()
    @extism_fast.host_fn()
    def add_i32(a: bool, b: bool) -> bool:
        return a and b
    @extism_fast.host_fn()
    def mul_f64(a: float, b: float) -> float:
        return a * b
    @extism_fast.host_fn()
    def nothing() -> None:
        pass
    with extism_fast.Plugin(sys.argv[1], functions=[hello_world, add_i32, mul_f64, nothing]) as plugin:
        assert plugin.call("call_hello", b"hello") == b"HELLO"
    _write()
""")

# A manifest dict of one URL (the official docs' first example), served on 127.0.0.1.
_URL_CALL = _REPORT + textwrap.dedent("""
    import extism_fast
    with extism_fast.Plugin({"wasm": [{"url": sys.argv[1]}]}, functions=[]) as plugin:
        assert plugin.call("count_vowels", b"hello") == b'{"count": 2}'
    _write()
""")

_CLI = _REPORT + textwrap.dedent("""
    from extism_fast.cli import main
    try:
        code = main(sys.argv[1:])
    finally:
        _write()
    sys.exit(code)
""")


def _library_paths() -> list[str]:
    """The directories of the installed packages (wasmtime, attrs): ``-S`` leaves them off sys.path."""
    return [p for p in sys.path if os.path.basename(p) in ("site-packages", "dist-packages")]


def _loaded(tmp_path, script: str, *args: str, **environ: str) -> set[str]:
    """The modules a fresh ``python -S`` running ``script`` with ``args`` (and ``environ`` in its
    environment) added to sys.modules, with a warm compile cache (the script runs twice; the second
    run counts)."""
    report = tmp_path / "modules.txt"
    env = dict(os.environ, EXTISM_FAST_CACHE_DIR=str(tmp_path / "cache"), EXTISM_FAST_CACHE="1",
               PYTHONPATH=os.pathsep.join([str(REPO_ROOT), *_library_paths()]))
    env.update(environ)
    for _ in range(2):
        run = subprocess.run([sys.executable, "-S", "-c", script, str(report), *args], env=env,
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
    return set(report.read_text().split())


def _strays(loaded: set[str], allowed: set[str]) -> list[str]:
    return sorted(m for m in loaded - allowed - _THIRD_PARTY if not m.startswith(_THIRD_PARTY_PREFIXES))


def _check(what: str, loaded: set[str], allowed: set[str]) -> None:
    stray = _strays(loaded, allowed)
    assert not stray, (
        f"{what} loaded {', '.join(stray)}, which it does not need (tests/test_cold_start.py's allow-list): "
        f"make it lazy (import it in the function that uses it, or a module __getattr__) or, if the cold "
        f"path truly needs it, add it to the allow-list with the reason")
    assert not loaded & set(LAZY)  # the ones that cost the most, spelled out


def _check_cold(what: str, loaded: set[str], allowed: set[str]) -> None:
    """_check, and none of NOT_COLD (whatever the allow-list says)."""
    _check(what, loaded, allowed)
    assert not loaded & set(NOT_COLD), f"{what} loaded {', '.join(sorted(loaded & set(NOT_COLD)))}"


def test_the_import_loads_only_what_it_needs(tmp_path):
    loaded = _loaded(tmp_path, _IMPORT)
    _check_cold("import extism_fast", loaded, IMPORT)
    assert not loaded & {"attr", "attrs", "logging", "extism_fast.manifest", "extism_fast.runtime.compile_cache"}


@pytest.mark.parametrize("given", ["bytes", "path", "hash"])
def test_a_first_call_loads_only_what_it_needs(tmp_path, wasm_path, given):
    path = wasm_path(COUNT)
    loaded = _loaded(tmp_path, _FIRST_CALL, str(path), given, hashlib.sha256(path.read_bytes()).hexdigest())
    _check_cold(f"import extism_fast and a first Plugin({given}).call", loaded, FIRST_CALL)
    assert not loaded & set(NOT_FOR_PLAIN), sorted(loaded & set(NOT_FOR_PLAIN))


@pytest.mark.parametrize("given", ["bytes", "path"])
def test_a_first_call_with_a_wasmtime_cache_configuration_loads_only_what_it_needs(tmp_path, wasm_path, given):
    """``EXTISM_CACHE_CONFIG``, as users of the official SDK set it, names wasmtime's cache
    configuration (TOML): a file such as ``wasmtime config new`` writes and its documentation shows is
    read without tomllib (with typing, re, string, datetime: ~20 ms), and its directory holds the cache."""
    config, directory = tmp_path / "wasmtime-cache.toml", tmp_path / "wasmtime-cache"
    config.write_text(f'# Comment out certain settings to use default values.\n\n[cache]\nenabled = true\n'
                      f'directory = "{directory}"\ncleanup-interval = "1d"  # wasmtime\'s own\n'
                      f'files-total-size-soft-limit = "1Gi"\nbaseline-compression-level = 3\n')
    loaded = _loaded(tmp_path, _FIRST_CALL, str(wasm_path(COUNT)), given,
                     EXTISM_CACHE_CONFIG=str(config), EXTISM_FAST_CACHE_DIR="")  # empty: the file's directory
    assert list(directory.glob("*.cwasm")) and not (tmp_path / "cache").exists()
    _check_cold(f"a first Plugin({given}).call with EXTISM_CACHE_CONFIG", loaded, FIRST_CALL)


@pytest.mark.parametrize("given", ["config", "dict"])
def test_a_first_call_with_a_config_loads_only_what_it_needs(tmp_path, wasm_path, given):
    """``Plugin(path, config={...})`` and ``Plugin({"wasm": [{"path": ...}], "config": {...}})`` are
    plain plugins too (manifest/plain.py): no manifest classes, as ``Plugin(path)``."""
    loaded = _loaded(tmp_path, _CONFIG_CALL, str(wasm_path("host")), given)
    # Plugin's config is merged over the module's (none) by manifest/config.py; a dict's is its own.
    allowed = FIRST_CALL | ({"extism_fast.manifest.config"} if given == "config" else set())
    _check_cold(f"import extism_fast and a first Plugin({given}).call", loaded, allowed)
    assert not loaded & set(NOT_FOR_PLAIN), sorted(loaded & set(NOT_FOR_PLAIN))


def test_a_first_call_with_a_timeout_and_memory_limits_loads_only_what_it_needs(tmp_path, wasm_path):
    """``Plugin({"wasm": [{"path": ...}], "timeout_ms": ..., "memory": {...}})`` is a plain plugin
    (manifest/plain.py): no manifest classes, no declarations; only limits.py beyond a first call."""
    loaded = _loaded(tmp_path, _LIMITS_CALL, str(wasm_path(COUNT)))
    _check_cold("import extism_fast and a first Plugin(dict with limits).call", loaded, LIMITS)
    assert not loaded & set(NOT_FOR_PLAIN), sorted(loaded & set(NOT_FOR_PLAIN))


def test_a_first_call_with_allowed_hosts_and_paths_loads_only_what_it_needs(tmp_path, wasm_path):
    """``Plugin({"wasm": [...], "allowed_hosts": [...], "allowed_paths": {...}}, wasi=True)`` is a
    plain plugin (manifest/plain.py): nothing beyond a first call (not the manifest classes, nor
    re, urllib or ipaddress: the HTTP host service loads with a first request)."""
    loaded = _loaded(tmp_path, _GRANTS_CALL, str(wasm_path(COUNT)), str(tmp_path))
    _check_cold("import extism_fast and a first Plugin(dict with grants).call", loaded, FIRST_CALL)
    assert not loaded & set(NOT_FOR_PLAIN + ("urllib", "urllib.parse", "ipaddress")), sorted(loaded)


def test_a_first_call_on_a_large_settled_file_hashes_nothing(tmp_path, wasm_path):
    """A module file found by its ``.id`` record (it was left unchanged for 2 s) is not hashed,
    however large: a warm ``Plugin(path)`` loads the same as a first ``Plugin(bytes)`` of a small
    module, so neither hashlib (OpenSSL) nor pathlib."""
    padding = b"\0" * (1 << 20)  # a custom section: more than the compile cache hashes without hashlib
    section = leb128(len(b"\x07padding") + len(padding)) + b"\x07padding" + padding
    path = tmp_path / "large.wasm"
    path.write_bytes(wasm_path(COUNT).read_bytes() + b"\0" + section)
    time.sleep(2.1)  # settled (manifest's FILE_IDENTITY_SETTLE_NS): the first run records its hash
    loaded = _loaded(tmp_path, _PATH_CALL, str(path))
    assert len(list((tmp_path / "cache").glob("*.id"))) == 1
    _check_cold("import extism_fast and a first Plugin(path).call", loaded, FIRST_CALL)


def test_a_typed_host_function_loads_neither_inspect_nor_typing_nor_enum(tmp_path, wasm_path):
    loaded = _loaded(tmp_path, _HOST_FUNCTION_CALL, str(wasm_path("host_user")))
    _check("a first call of a typed host function", loaded, HOST_FUNCTION)
    assert not loaded & {"inspect", "typing", "re", "importlib", "warnings", "enum", "functools"}


def test_a_url_source_loads_no_manifest_classes(tmp_path, wasm_path):
    """A manifest dict of one URL is a plain plugin: the HTTP client loads (http.client, ssl...),
    not attrs and the manifest's schema (~35 ms of a fresh process)."""
    with serve_bytes(wasm_path(COUNT).read_bytes()) as base:
        loaded = _loaded(tmp_path, _URL_CALL, f"{base}/count.wasm")
    assert FIRST_CALL | {"extism_fast.host.http", "extism_fast.host.urls"} <= loaded
    assert not loaded & set(NOT_FOR_PLAIN), sorted(loaded & set(NOT_FOR_PLAIN))


def test_help_loads_only_what_it_needs(tmp_path):
    loaded = _loaded(tmp_path, _CLI, "--help")
    _check_cold("extism-fast --help", loaded, HELP)  # no argparse, nor re (NOT_COLD)
    assert not loaded & set(NOT_FOR_HELP + PARSER), sorted(loaded & set(NOT_FOR_HELP + PARSER))


@pytest.mark.parametrize("options", [[], ["--config", "greeting=hi"], ["--timeout", "5000", "--max-pages", "64"],
                                     ["--wasi", "--allow-host", "example.com", "--allow-path", "ro:/tmp:/data"]],
                         ids=["plain", "config", "limits", "grants"])
def test_a_call_from_the_command_line_loads_only_what_it_needs(tmp_path, wasm_path, options):
    loaded = _loaded(tmp_path, _CLI, "call", str(wasm_path(COUNT)), "count_vowels", "--input", "hello", *options)
    # Limits are checked and converted by manifest/limits.py (a plain plugin's: LIMITS).
    _check_cold("extism-fast call", loaded, CALL | ({"extism_fast.manifest.limits"} if "--timeout" in options else set()))  # no argparse, nor re (NOT_COLD)
    assert not loaded & set(PARSER), sorted(loaded & set(PARSER))
    no_batch = set(NOT_FOR_HELP[NOT_FOR_HELP.index("logging"):])
    assert not loaded & no_batch, sorted(loaded & no_batch)
    assert not loaded & set(NOT_FOR_PLAIN), sorted(loaded & set(NOT_FOR_PLAIN))  # a module file: a plain plugin


def test_a_stray_import_is_named():
    """The check is not vacuous: a module outside the allow-list fails it, named."""
    with pytest.raises(AssertionError, match=r"loaded asyncio, .*make it lazy"):
        _check("x", FIRST_CALL | {"asyncio", "attr._make"}, FIRST_CALL)
    assert _strays(FIRST_CALL | {"attr.whatever", "_cython_9_9"}, FIRST_CALL) == []
    # typing and re fail the cold paths even when an allow-list names them
    with pytest.raises(AssertionError, match=r"^x loaded re, typing\n"):
        _check_cold("x", FIRST_CALL | {"typing", "re"}, FIRST_CALL | {"typing", "re"})


def _prints_ok(code: str) -> None:
    """``code`` run in a fresh ``python -c`` (this checkout first on sys.path) prints ok."""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)))
    assert run.stdout.strip() == "ok", run.stderr


def test_public_names_load_when_first_used():
    """PluginPool (with asyncio behind its async methods), the manifest classes (attrs) and the
    ``extism_fast.extism`` module are not loaded by the import, yet are importable from the
    package, as the same objects as their modules'."""
    code = ("import sys, extism_fast; assert 'extism_fast.scale.pool' not in sys.modules; "
            "assert 'extism_fast.manifest' not in sys.modules; "
            "assert 'extism_fast.extism' not in sys.modules and 'extism' in dir(extism_fast); "
            "assert extism_fast.extism.Plugin is extism_fast.Plugin; "
            "assert extism_fast.extism is sys.modules['extism_fast.extism']; "
            "from extism_fast import PluginPool, Manifest; import extism_fast.scale.pool as pool; "
            "import extism_fast.manifest as manifest; "
            "assert PluginPool is pool.PluginPool is extism_fast.PluginPool; "
            "assert Manifest is manifest.Manifest is extism_fast.Manifest; "
            "assert 'asyncio' not in sys.modules; assert {'PluginPool', 'WasmUrl'} <= set(dir(extism_fast)); "
            "print('ok')")
    _prints_ok(code)


def test_host_function_names_load_when_first_used():
    """The host function names (host/functions.py: enum, for ValType) are not loaded by the import,
    yet are importable from the package and from extism_fast.extism, as the same objects as their
    module's, and listed by dir(); HOST_FN_REGISTRY is one list wherever it is named."""
    code = ("import sys, extism_fast, extism_fast.extism as ee; "
            "assert 'extism_fast.host.functions' not in sys.modules; "  # enum: site loads it (NOT_COLD)
            "assert {'ValType', 'Val', 'Function', 'host_fn'} <= set(dir(extism_fast)) & set(dir(ee)); "
            "from extism_fast import ValType, host_fn, HOST_FN_REGISTRY; "
            "from extism_fast.extism import ValType as ValType2, Function, HOST_FN_REGISTRY as REGISTRY2; "
            "import extism_fast.host.functions as functions, extism_fast.host.registry as registry; "
            "assert ValType is ValType2 is functions.ValType is extism_fast.ValType is ee.ValType; "
            "assert host_fn is functions.host_fn and Function is functions.Function is extism_fast.Function; "
            "assert HOST_FN_REGISTRY is REGISTRY2 is functions.HOST_FN_REGISTRY is registry.HOST_FN_REGISTRY; "
            "assert type(ValType).__module__ == 'enum'; "
            "print('ok')")
    _prints_ok(code)
