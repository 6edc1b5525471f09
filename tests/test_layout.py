"""The package layout (docs/ARCHITECTURE.md, "Where things live"): subpackages by concept, no import
cycle, and every module path of the flat layout before them still importable, as the same module.

* The import graph is read from the source (``ast`` for .py files, the Python ``import`` lines of
  ``_runtime.pyx`` and its ``.pxi`` parts as one module), with the imports inside functions too:
  a late import that closes a cycle is still a cycle.
* The old paths (``extism_fast.pool``, ``extism_fast.functions``, ...) are the modules they became
  (``extism_fast/_moved.py``), so names, monkeypatching and pickles that name them keep working;
  the package's own code imports only the new paths.
"""

from __future__ import annotations

import ast
import importlib
import pickle
import re
import subprocess
import sys
import tomllib
import types
from pathlib import Path

import pytest

import extism_fast
from conftest import REPO_ROOT, graph_cycles
from extism_fast._moved import MOVED

PACKAGE = REPO_ROOT / "extism_fast"

#: Every module of the flat layout (git ls-files before the subpackages), as users imported them, but
#: REMOVED's.
FLAT_MODULES = [
    "extism_fast", "extism_fast.__main__", "extism_fast._files", "extism_fast._runtime", "extism_fast._urls",
    "extism_fast._version", "extism_fast._workers", "extism_fast.aio", "extism_fast.arrow", "extism_fast.cli",
    "extism_fast.cli_batch", "extism_fast.cli_batch_dist", "extism_fast.cli_options", "extism_fast.compile_cache",
    "extism_fast.dask", "extism_fast.debug_dumps", "extism_fast.errors", "extism_fast.extism",
    "extism_fast.functions", "extism_fast.http", "extism_fast.logs", "extism_fast.manifest", "extism_fast.pickling",
    "extism_fast.pool", "extism_fast.ray",
]
#: Module paths no longer importable, old and new: extism_fast.wasm_sections read the memories a
#: binary defines for the extension, which now reads them itself (kernel_c/wasm_sections.c), so that
#: a first plugin loads no module for it.
REMOVED = ["extism_fast.wasm_sections", "extism_fast.runtime.wasm_sections"]
#: The public names the flat ``extism_fast/manifest.py`` defined (now a package of modules).
FLAT_MANIFEST_NAMES = [
    "DEFAULT_MAX_VAR_BYTES", "DEFAULT_MAX_HTTP_RESPONSE_BYTES", "WASM_PAGE_SIZE", "URL_FETCH_TIMEOUT_S", "U32_MAX",
    "U64_MAX", "DEFAULT_MAX_TABLE_ELEMENTS", "check_int_range", "WasmData", "WasmFile", "WasmUrl", "WasmSource",
    "MemoryOptions", "LoadedModule", "Manifest", "looks_like_wat", "manifest_from_text", "merge_config",
    "coerce_source",
]
#: What each subpackage is for; a module outside them sits at the top because every part uses it.
SUBPACKAGES = {"cli", "host", "manifest", "runtime", "scale"}
TOP_LEVEL = {"extism_fast", "extism_fast.__main__", "extism_fast._moved", "extism_fast._runtime",
             "extism_fast._files", "extism_fast._version", "extism_fast.errors", "extism_fast.extism"}


# -- the import graph ---------------------------------------------------------------------------------


def package_modules(root: Path) -> dict[str, list[Path]]:
    """Module name -> its source files: each .py, and ``_runtime.pyx`` with its ``.pxi`` parts."""
    modules: dict[str, list[Path]] = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = [path]
    for pyx in sorted(root.rglob("*.pyx")):
        name = ".".join(pyx.relative_to(root.parent).with_suffix("").parts)
        modules[name] = [pyx, *sorted(pyx.parent.glob("*.pxi"))]
    return modules


# A Python import line of Cython source (cimports are compile-time and name no module run here).
_CYTHON_IMPORT = re.compile(r"^[ \t]*(?:from[ \t]+([\w.]+)[ \t]+import[ \t]+(\([\w,\s]+\)|[\w, \t]+)|import[ \t]+([\w.]+))",
                            re.M)


def imported_names(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names imported from it: [] for ``import module``) for every import in the file,
    at any depth (function-level imports included)."""
    found: list[tuple[str, list[str]]] = []
    text = path.read_text()
    if path.suffix == ".py":
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Import):
                found += [(alias.name, []) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0, f"{path}: relative import (the package imports by full path)"
                found.append((node.module or "", [alias.name for alias in node.names]))
        return found
    for match in _CYTHON_IMPORT.finditer(text):
        if match.group(1):
            names = [n.split()[0] for n in match.group(2).strip("()").replace("\n", " ").split(",") if n.strip()]
            found.append((match.group(1), names))
        else:
            found.append((match.group(3), []))
    return found


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the package modules it imports (``from a import b`` is an edge to ``a.b`` when that
    is a module, else to ``a``). The parent packages an import runs on the way are not edges."""
    modules = package_modules(root)
    graph: dict[str, set[str]] = {}
    for name, paths in modules.items():
        edges = set()
        for path in paths:
            for module, names in imported_names(path):
                targets = [f"{module}.{n}" if f"{module}.{n}" in modules else module for n in names] or [module]
                edges |= {t for t in targets if t in modules or t in MOVED}
        edges.discard(name)
        graph[name] = edges
    return graph


def test_the_package_has_no_import_cycle():
    graph = import_graph(PACKAGE)
    assert {"extism_fast._runtime", "extism_fast.host.functions", "extism_fast.cli.batch"} <= set(graph)
    assert "extism_fast.runtime.compile_cache" in graph["extism_fast._runtime"]  # the .pyx is read
    assert "extism_fast.host.http" in graph["extism_fast._runtime"]  # a .pxi's late import too
    assert graph_cycles(graph) == []


#: Modules of scale/ below the runtime: the extension's acall and Arrow batches use them, and they
#: import nothing of the package above errors.
BELOW_THE_RUNTIME = {"extism_fast.scale.aio", "extism_fast.scale.arrow"}


def test_the_subpackages_import_one_way():
    """cli -> scale -> _runtime -> runtime -> manifest -> host -> errors: no cycle between them either."""
    def group(name: str) -> str:
        parts = name.split(".")
        return parts[1] if len(parts) > 1 and parts[1] in SUBPACKAGES and name not in BELOW_THE_RUNTIME else name

    graph: dict[str, set[str]] = {}
    for name, edges in import_graph(PACKAGE).items():
        graph.setdefault(group(name), set()).update(group(e) for e in edges if group(e) != group(name))
    assert graph_cycles(graph) == []
    assert graph["host"] <= {"extism_fast.errors", "extism_fast._version"}
    assert "runtime" not in graph["manifest"] and "scale" not in graph["extism_fast._runtime"]


def test_the_cycle_check_sees_a_late_import_cycle(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.sub import b\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    from pkg import c\n")
    (pkg / "c.py").write_text("import os\n\ndef g():\n    import pkg.a\n")
    (pkg / "d.pyx").write_text("from pkg.includes.x cimport y\n")
    (pkg / "e.pxi").write_text("def h():\n    from pkg import a\n")
    assert graph_cycles(import_graph(pkg)) == [["pkg.a", "pkg.c", "pkg.sub.b"]]
    assert import_graph(pkg)["pkg.d"] == {"pkg.a"}


def test_the_package_imports_only_the_new_paths():
    old = {name: sorted(edges & MOVED.keys()) for name, edges in import_graph(PACKAGE).items()}
    assert {name: edges for name, edges in old.items() if edges} == {}


def test_every_module_is_in_a_subpackage_or_used_throughout():
    outside = {name for name in package_modules(PACKAGE)
               if name.split(".")[1:2] and name.split(".")[1] not in SUBPACKAGES} | {"extism_fast"}
    assert outside == TOP_LEVEL


# -- the old paths ------------------------------------------------------------------------------------


@pytest.mark.parametrize("old", FLAT_MODULES)
def test_every_module_path_of_the_flat_layout_imports(old):
    module = importlib.import_module(old)
    if old in MOVED:
        assert module is importlib.import_module(MOVED[old])
        assert sys.modules[old] is module
        parent, _, leaf = old.rpartition(".")
        assert getattr(sys.modules[parent], leaf) is module  # extism_fast.pool, as an attribute too
    else:
        assert module.__name__ == old
    for name in getattr(module, "__all__", ()):
        assert hasattr(module, name), f"{old}.{name}"


@pytest.mark.parametrize("removed", REMOVED)
def test_a_removed_module_path_is_not_found(removed):
    assert removed not in MOVED
    with pytest.raises(ModuleNotFoundError, match=rf"^No module named '{re.escape(removed)}'$"):
        importlib.import_module(removed)


def test_old_paths_are_attributes_of_the_package_before_any_import_of_them():
    code = ("import extism_fast, sys; assert 'extism_fast.dask' not in sys.modules; "
            "from extism_fast import dask; import extism_fast.scale.dask as new; "
            "assert dask is new is extism_fast.dask is sys.modules['extism_fast.dask']; "
            "assert extism_fast.cli_batch_dist.SetupError is extism_fast.cli.batch_dist.SetupError; print('ok')")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == "ok", proc.stderr
    with pytest.raises(AttributeError, match="has no attribute 'no_such_module'"):
        extism_fast.no_such_module  # noqa: B018


def test_the_manifest_package_has_the_names_of_the_flat_module():
    from extism_fast import manifest

    for name in FLAT_MANIFEST_NAMES:
        value = getattr(manifest, name)
        if isinstance(value, (type, types.FunctionType)):  # defined in one of the package's modules
            assert value.__module__.startswith("extism_fast.manifest."), name
            assert getattr(sys.modules[value.__module__], name) is value, name
    assert set(manifest.__all__) <= set(FLAT_MANIFEST_NAMES)


def test_the_batch_command_module_keeps_the_engine_names():
    from extism_fast.cli import batch, batch_engine
    from extism_fast import cli_batch

    assert cli_batch is batch
    for name in ["DEFAULT_CHUNK_SIZE", "BatchSummary", "InputError", "Progress", "TqdmProgress", "make_progress",
                 "format_result", "json_lines_sink", "parse_item", "process", "process_chunks", "run_chunk",
                 "run_chunks", "count_lines"]:
        assert getattr(batch, name) is getattr(batch_engine, name), name
    assert "argparse" not in batch_engine.__dict__  # the engine parses no command line


def test_pickles_that_name_old_paths_load_in_a_fresh_process(tmp_path):
    import extism_fast.scale.dask

    # functions=[]: not the @host_fn registry, which other tests of the session may have filled.
    compiled = extism_fast.CompiledPlugin(REPO_ROOT / "examples" / "count_vowels.wat", functions=[])
    objects = {"compiled": compiled, "manifest": compiled.manifest, "pool": extism_fast.PluginPool,
               "valtype": extism_fast.ValType.I64, "map_bag": extism_fast.scale.dask.map_bag}
    data = pickle.dumps(objects, protocol=0)  # protocol 0: a global is "c<module>\n<name>\n", text
    for old, new in MOVED.items():
        data = data.replace(f"c{new}\n".encode(), f"c{old}\n".encode())
    data = data.replace(b"cextism_fast.manifest.schema\n", b"cextism_fast.manifest\n")
    assert b"cextism_fast.pickling\nrestore_compiled\n" in data and b"cextism_fast.pool\n" in data
    (tmp_path / "old.pickle").write_bytes(data)
    code = ("import pickle, sys; o = pickle.load(open(sys.argv[1], 'rb')); "
            "p = o['compiled'].function_exists('count_vowels'); "
            "print(p, type(o['compiled']).__name__, o['pool'].__module__, o['map_bag'].__module__)")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "old.pickle")], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.stdout.split() == ["True", "CompiledPlugin", "extism_fast.scale.pool", "extism_fast.scale.dask"], \
        proc.stderr


def test_the_console_script_and_python_m_run_the_cli():
    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, function = scripts["extism-fast"].partition(":")
    from extism_fast.cli import main

    assert (module, function) == ("extism_fast.cli", "main") and getattr(importlib.import_module(module), function) is main
    for args in (["-m", "extism_fast", "--version"], ["-m", "extism_fast.cli", "--version"]):
        proc = subprocess.run([sys.executable, *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0 and proc.stdout.startswith("extism-fast "), (args, proc.stderr)


def test_pyproject_lists_every_subpackage():
    listed = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    on_disk = {".".join(p.parent.relative_to(REPO_ROOT).parts) for p in PACKAGE.rglob("__init__.py")}
    assert set(listed) == on_disk | {"extism_fast.includes"}


# -- one HTTP client, each constant once ----------------------------------------------------------------


def _constants(root: Path) -> list[tuple[str, str, str]]:
    """(module, name, value key) of each module-level constant: an UPPER_CASE name bound to a string,
    bytes, a compiled regular expression or a tuple/frozenset of strings."""
    found = []
    for module, paths in package_modules(root).items():
        if paths[0].suffix != ".py":
            continue
        for node in ast.parse(paths[0].read_text()).body:
            if not isinstance(node, (ast.Assign, ast.AnnAssign)) or node.value is None:
                continue
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [t.id for t in targets if isinstance(t, ast.Name) and t.id.lstrip("_").isupper()]
            value = node.value
            if isinstance(value, ast.Call) and ast.unparse(value.func) in ("re.compile", "frozenset") and value.args:
                value = value.args[0]
            literal = isinstance(value, ast.Constant) and isinstance(value.value, (str, bytes)) and len(value.value) > 1
            strings = isinstance(value, (ast.Tuple, ast.Set)) and value.elts and all(
                isinstance(e, ast.Constant) and isinstance(e.value, str) for e in value.elts)
            if literal or strings:
                found += [(module, name, ast.dump(value)) for name in names]
    return found


#: The same text with two meanings: the User-Agent http_request sends and the logger's name.
SAME_TEXT_OTHER_MEANING = [{"extism_fast.host.http._USER_AGENT", "extism_fast.host.logs.LOGGER_NAME"}]


def duplicated_constants(root: Path) -> list[set[str]]:
    """Sets of module constants with the same value, or the same public name, in more than one module
    (a private name is each module's own: ``_MISSING`` may word each module's missing extra)."""
    by_key: dict[str, set[tuple[str, str]]] = {}
    for module, name, value in _constants(root):
        by_key.setdefault(f"value {value}", set()).add((module, name))
        if not name.startswith("_"):
            by_key.setdefault(f"name {name}", set()).add((module, name))
    return [{f"{m}.{n}" for m, n in group} for group in by_key.values()
            if len({m for m, _ in group}) > 1 and {f"{m}.{n}" for m, n in group} not in SAME_TEXT_OTHER_MEANING]


def test_each_constant_is_defined_once():
    assert duplicated_constants(PACKAGE) == []


def test_the_constant_check_sees_a_copy(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "a.py").write_text('import re\n_TOKEN = re.compile(r"[a-z]+")\nHEADERS = ("cookie", "authorization")\n')
    (pkg / "b.py").write_text('import re\nTOKEN = re.compile(r"[a-z]+")\nOTHER = frozenset({"x"})\n'
                              '_HEADERS = ("cookie", "authorization")\nN = 4096\n')
    (pkg / "c.py").write_text('OTHER = "yz"\nN = 4096\n')
    assert sorted(map(sorted, duplicated_constants(pkg))) == [
        ["pkg.a.HEADERS", "pkg.b._HEADERS"], ["pkg.a._TOKEN", "pkg.b.TOKEN"], ["pkg.b.OTHER", "pkg.c.OTHER"]]


def test_urllib_fetches_nothing_in_the_package():
    users = [str(p.relative_to(REPO_ROOT)) for p in PACKAGE.rglob("*.py") if "urllib.request" in p.read_text()]
    assert users == []  # manifest URLs go through extism_fast.host.http.fetch, as http_request does


def test_manifest_urls_ignore_proxy_variables_as_http_request_does(monkeypatch):
    import http.server
    import socket
    import threading

    from extism_fast.manifest import Manifest, WasmUrl

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Length", "4")
            self.end_headers()
            self.wfile.write(b"\0asm")

        def log_message(self, *args):
            pass

    with socket.socket() as s:  # a port nobody listens on: a proxy there refuses every request
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{dead}")
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/m.wasm"
        assert Manifest([WasmUrl(url)]).load_modules()[0].data == b"\0asm"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
