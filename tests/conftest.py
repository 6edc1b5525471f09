"""Shared pytest helpers: build the test plugins from source.

Plugins live as sources only (never commit .wasm files):

* ``tests/plugins/<name>.wat``   -> ``wasmtime.wat2wasm``
* ``tests/plugins/<name>.c``     -> clang (wasm32-wasi reactor, ``-I pdk/c``)
* ``examples/<name>.{wat,c}``    -> same, addressed as ``"examples/<name>"``

They are built once per test session into a temporary directory.

Fixtures (session scoped, each returns a callable)::

    def test_x(plugin_wasm, wasm_path):
        data = plugin_wasm("kernel")                # bytes
        path = wasm_path("examples/count_vowels.c")  # pathlib.Path of the .wasm

Plain functions for module-level use (parametrize lists, helpers)::

    from conftest import build_plugin, build_wasm

Names are relative to ``tests/plugins`` unless they start with ``examples/``;
the extension may be omitted when only one of ``.wat`` / ``.c`` exists.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import os
import pathlib
import shutil
import struct
import subprocess
import sys
import tempfile
import threading

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
PLUGINS_DIR = REPO_ROOT / "tests" / "plugins"
EXAMPLES_DIR = REPO_ROOT / "examples"
PDK_C_DIR = REPO_ROOT / "pdk" / "c"

#: clang flags for C plugins; the command is CLANG + CLANG_FLAGS + -o out src.
CLANG_FLAGS = (
    "--target=wasm32-wasi",
    "-O2",
    "-mexec-model=reactor",
    "-I",
    str(PDK_C_DIR),
)

_CLANG_HELP = (
    "clang with wasm32-wasi support is needed to build the C test plugins "
    "(apt-get install -y clang lld wasi-libc libclang-rt-14-dev-wasm32, or set "
    "CLANG=/path/to/clang). Run the tests with the command given in README.md."
)

# The compile cache of the code under test goes to a private directory, never the user's.
_COMPILE_CACHE_DIR = tempfile.mkdtemp(prefix="extism_fast_cache_")
os.environ["EXTISM_FAST_CACHE_DIR"] = _COMPILE_CACHE_DIR
atexit.register(shutil.rmtree, _COMPILE_CACHE_DIR, True)

_lock = threading.Lock()
_cache: dict[str, pathlib.Path] = {}
_build_dir: pathlib.Path | None = None


def leb128(value: int) -> bytes:
    """``value`` (unsigned) as wasm's LEB128, for tests that write module bytes by hand."""
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def graph_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan), each sorted: the cycles of
    a dependency graph (tests/test_c_units.py: C units; tests/test_layout.py: Python modules)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _out_dir() -> pathlib.Path:
    global _build_dir
    if _build_dir is None:
        _build_dir = pathlib.Path(tempfile.mkdtemp(prefix="extism_fast_plugins_"))
        # Also clean up when used outside pytest (pytest_unconfigure runs first).
        atexit.register(shutil.rmtree, _build_dir, True)
    return _build_dir


def find_source(name: str) -> pathlib.Path:
    """Resolve a plugin name ("kernel", "bad/unknown_import",
    "examples/count_vowels.c") to its source file."""
    if name.startswith("examples/"):
        base = EXAMPLES_DIR / name[len("examples/"):]
    else:
        base = PLUGINS_DIR / name
    if base.suffix in (".wat", ".c"):
        if not base.is_file():
            raise FileNotFoundError(f"no plugin source {base}")
        return base
    candidates = [p for p in (base.with_suffix(".wat"), base.with_suffix(".c")) if p.is_file()]
    if not candidates:
        raise FileNotFoundError(f"no plugin source {base}.wat or {base}.c")
    if len(candidates) > 1:
        raise ValueError(
            f"plugin {name!r} has both .wat and .c sources; name one with its extension"
        )
    return candidates[0]


def _clang() -> str:
    clang = shutil.which(os.environ.get("CLANG", "clang"))
    if clang is None:
        pytest.fail(_CLANG_HELP, pytrace=False)
    return clang


def _build_c(src: pathlib.Path, out: pathlib.Path) -> None:
    cmd = [_clang(), *CLANG_FLAGS, "-o", str(out), str(src)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(
            f"building {src.relative_to(REPO_ROOT)} failed:\n$ {' '.join(cmd)}\n"
            f"{proc.stderr}\n{_CLANG_HELP}",
            pytrace=False,
        )
    # Every good C plugin must run with WASI off: only extism:host/* imports (but the wasi_*.c
    # ones, which exist to use WASI).
    if "bad" not in src.relative_to(REPO_ROOT).parts and not src.name.startswith("wasi_"):
        import wasmtime

        module = wasmtime.Module(wasmtime.Engine(), out.read_bytes())
        stray = [
            f"{imp.module}.{imp.name}"
            for imp in module.imports
            if not imp.module.startswith("extism:host/")
        ]
        if stray:
            pytest.fail(
                f"{src.relative_to(REPO_ROOT)} imports {stray}: C plugins must "
                "not need libc functions that call WASI",
                pytrace=False,
            )


def build_wasm(name: str) -> pathlib.Path:
    """Build plugin `name` (cached for the session); return the .wasm path."""
    with _lock:
        path = _cache.get(name)
        if path is not None:
            return path
        src = find_source(name)
        rel = src.relative_to(REPO_ROOT)
        out = _out_dir() / ("__".join(rel.parts) + ".wasm")
        if src.suffix == ".wat":
            import wasmtime

            out.write_bytes(bytes(wasmtime.wat2wasm(src.read_text())))
        else:
            _build_c(src, out)
        _cache[name] = out
        return out


def build_plugin(name: str) -> bytes:
    """Build plugin `name` (cached for the session); return its wasm bytes."""
    return build_wasm(name).read_bytes()


@pytest.fixture(scope="session")
def wasm_path():
    """Callable: wasm_path(name) -> pathlib.Path of the built .wasm file."""
    return build_wasm


@pytest.fixture(scope="session")
def plugin_wasm():
    """Callable: plugin_wasm(name) -> bytes of the built plugin."""
    return build_plugin


def pytest_unconfigure(config):
    global _build_dir
    if _build_dir is not None:
        shutil.rmtree(_build_dir, ignore_errors=True)
        _build_dir = None
        _cache.clear()


# ---------------------------------------------------------------------------------------------
# Host-function probes: a generated plugin that calls one host import with values from the input
# ---------------------------------------------------------------------------------------------
#
# probe_wat(params, results) is the WAT of a plugin importing `namespace::name` with the given
# wasm types and exporting `call`, which reads the arguments from the input, calls the import
# once, and outputs its results. Kinds are "i32", "i64", "f32", "f64" and "ptr" (an i64 offset of
# a kernel block). Encodings (all little-endian), shared by the input and the output:
#
#   i32 / f32   4 bytes (the value's bits), then 4 zero bytes
#   i64 / f64   8 bytes
#   ptr         u64 length N, then N bytes; a ptr argument is a new block holding those bytes,
#               a ptr result is the block the host returned (N = 0 when it returned 0)
#
# probe_input(params, values) builds the input and probe_output(results, output) decodes the
# output into a list of Python values (int, float, or bytes for ptr).

import struct as _struct

PROBE_KINDS = ("i32", "i64", "f32", "f64", "ptr")
_PROBE_WASM_TYPE = {"i32": "i32", "i64": "i64", "f32": "f32", "f64": "f64", "ptr": "i64"}
_PROBE_FROM_U64 = {
    "i32": "(i32.wrap_i64 {})",
    "i64": "{}",
    "f32": "(f32.reinterpret_i32 (i32.wrap_i64 {}))",
    "f64": "(f64.reinterpret_i64 {})",
}
_PROBE_TO_U64 = {
    "i32": "(i64.extend_i32_u {})",
    "i64": "{}",
    "f32": "(i64.extend_i32_u (i32.reinterpret_f32 {}))",
    "f64": "(i64.reinterpret_f64 {})",
}


def probe_wat(params, results, namespace="extism:host/user", name="probe", export="call"):
    """WAT of a plugin calling import ``namespace::name`` (params) -> (results) once (see above)."""
    for kind in (*params, *results):
        if kind not in PROBE_KINDS:
            raise ValueError(f"unknown probe kind {kind!r}")
    ptypes = " ".join(_PROBE_WASM_TYPE[k] for k in params)
    rtypes = " ".join(_PROBE_WASM_TYPE[k] for k in results)
    locals_ = [f"(local $p{i} {_PROBE_WASM_TYPE[k]})" for i, k in enumerate(params)]
    locals_ += [f"(local $r{i} {_PROBE_WASM_TYPE[k]})" for i, k in enumerate(results)]
    body = []
    for i, kind in enumerate(params):
        if kind == "ptr":
            body += [
                "(local.set $len (call $input_load_u64 (local.get $pos)))",
                f"(local.set $p{i} (call $copy_input (i64.add (local.get $pos) (i64.const 8)) (local.get $len)))",
                "(local.set $pos (i64.add (local.get $pos) (i64.add (i64.const 8) (local.get $len))))",
            ]
        else:
            value = _PROBE_FROM_U64[kind].format("(call $input_load_u64 (local.get $pos))")
            body += [
                f"(local.set $p{i} {value})",
                "(local.set $pos (i64.add (local.get $pos) (i64.const 8)))",
            ]
    body.append("(call $f " + " ".join(f"(local.get $p{i})" for i in range(len(params))) + ")")
    body += [f"(local.set $r{i})" for i in reversed(range(len(results)))]
    body.append(f"(local.set $len (i64.const {8 * len(results)}))")
    for i, kind in enumerate(results):
        if kind == "ptr":
            body.append(f"(local.set $len (i64.add (local.get $len) (call $length (local.get $r{i}))))")
    body.append("(local.set $out (call $alloc (local.get $len)))")
    for i, kind in enumerate(results):
        if kind == "ptr":
            body += [
                f"(local.set $n (call $length (local.get $r{i})))",
                "(call $store_u64 (i64.add (local.get $out) (local.get $opos)) (local.get $n))",
                "(local.set $opos (i64.add (local.get $opos) (i64.const 8)))",
                f"(call $copy_block (i64.add (local.get $out) (local.get $opos)) (local.get $r{i}) (local.get $n))",
                "(local.set $opos (i64.add (local.get $opos) (local.get $n)))",
            ]
        else:
            value = _PROBE_TO_U64[kind].format(f"(local.get $r{i})")
            body += [
                f"(call $store_u64 (i64.add (local.get $out) (local.get $opos)) {value})",
                "(local.set $opos (i64.add (local.get $opos) (i64.const 8)))",
            ]
    body.append("(call $output_set (local.get $out) (local.get $len))")
    body.append("(i32.const 0)")
    nl = "\n    "
    return f""";; generated by conftest.probe_wat: {namespace}::{name} ({ptypes}) -> ({rtypes})
(module
  (import "{namespace}" "{name}" (func $f (param {ptypes}) (result {rtypes})))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "length" (func $length (param i64) (result i64)))
  (import "extism:host/env" "load_u8" (func $load_u8 (param i64) (result i32)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (import "extism:host/env" "input_load_u8" (func $input_load_u8 (param i64) (result i32)))
  (import "extism:host/env" "input_load_u64" (func $input_load_u64 (param i64) (result i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (memory (export "memory") 1)

  ;; a new block holding input[start, start + n)
  (func $copy_input (param $start i64) (param $n i64) (result i64)
    (local $o i64) (local $i i64)
    (local.set $o (call $alloc (local.get $n)))
    (block $done
      (loop $next
        (br_if $done (i64.ge_u (local.get $i) (local.get $n)))
        (call $store_u8 (i64.add (local.get $o) (local.get $i))
          (call $input_load_u8 (i64.add (local.get $start) (local.get $i))))
        (local.set $i (i64.add (local.get $i) (i64.const 1)))
        (br $next)))
    (local.get $o))

  ;; copy n bytes of kernel memory from src to dst
  (func $copy_block (param $dst i64) (param $src i64) (param $n i64)
    (local $i i64)
    (block $done
      (loop $next
        (br_if $done (i64.ge_u (local.get $i) (local.get $n)))
        (call $store_u8 (i64.add (local.get $dst) (local.get $i))
          (call $load_u8 (i64.add (local.get $src) (local.get $i))))
        (local.set $i (i64.add (local.get $i) (i64.const 1)))
        (br $next))))

  (func (export "{export}") (result i32)
    (local $pos i64) (local $len i64) (local $out i64) (local $opos i64) (local $n i64)
    {" ".join(locals_)}
    {nl.join(body)})
)
"""


def _probe_pack(kind, value):
    if kind == "i32":
        return _struct.pack("<I4x", value & 0xFFFFFFFF)
    if kind == "i64":
        return _struct.pack("<Q", value & 0xFFFFFFFFFFFFFFFF)
    if kind == "f32":
        return _struct.pack("<f4x", value)
    if kind == "f64":
        return _struct.pack("<d", value)
    data = value.encode() if isinstance(value, str) else bytes(value)
    return _struct.pack("<Q", len(data)) + data


def probe_input(params, values):
    """The input of a probe_wat plugin passing ``values`` (see above)."""
    if len(params) != len(values):
        raise ValueError(f"{len(params)} parameters but {len(values)} values")
    return b"".join(_probe_pack(k, v) for k, v in zip(params, values))


def probe_output(results, output):
    """Decode the output of a probe_wat plugin into a list of values (bytes for ptr results)."""
    output = bytes(output)
    values, pos = [], 0
    for kind in results:
        if kind == "ptr":
            (n,) = _struct.unpack_from("<Q", output, pos)
            values.append(output[pos + 8 : pos + 8 + n])
            pos += 8 + n
        else:
            fmt = {"i32": "<i4x", "i64": "<q", "f32": "<f4x", "f64": "<d"}[kind]
            values.append(_struct.unpack_from(fmt, output, pos)[0])
            pos += 8
    if pos != len(output):
        raise ValueError(f"probe output has {len(output) - pos} unexpected trailing bytes")
    return values


_probe_cache: dict = {}


def probe_wasm(params, results, namespace="extism:host/user", name="probe"):
    """The wasm bytes of probe_wat(params, results, namespace, name) (cached)."""
    key = (tuple(params), tuple(results), namespace, name)
    with _lock:
        wasm = _probe_cache.get(key)
        if wasm is None:
            import wasmtime

            wasm = bytes(wasmtime.wat2wasm(probe_wat(params, results, namespace, name)))
            _probe_cache[key] = wasm
        return wasm


@pytest.fixture(scope="session")
def probe():
    """Namespace with probe_wat / probe_wasm / probe_input / probe_output (see above)."""
    import types

    return types.SimpleNamespace(
        wat=probe_wat, wasm=probe_wasm, input=probe_input, output=probe_output
    )


# ---------------------------------------------------------------------------------------------
# AssemblyScript plugins: tests/as/*.ts, built with the official @extism/as-pdk
# ---------------------------------------------------------------------------------------------

AS_DIR = REPO_ROOT / "tests" / "as"

_AS_HELP = (
    "the AssemblyScript test plugins need node/npm and the packages pinned in "
    "tests/as/package-lock.json: run the test command from README.md, which runs "
    "`(cd tests/as && npm ci --no-audit --no-fund)` first"
)


def build_as_plugins() -> dict:
    """Compile every tests/as/*.ts; return {name: .wasm path}.

    tests/as/build.mjs runs the compiler of plugin ``x`` with the arguments of
    ``npx asc x.ts --outFile <out>/x.wasm --use abort=x/myAbort -O`` (in tests/as; each plugin
    defines its own ``myAbort``) and gives the same bytes, but compiles all plugins in one node
    process: three times faster than one ``npx asc`` per plugin.
    """
    node = shutil.which("node")
    if node is None:
        pytest.fail(f"node not found: {_AS_HELP}", pytrace=False)
    missing = [
        p
        for p in ("node_modules/assemblyscript/dist/asc.js", "node_modules/@extism/as-pdk/index.ts")
        if not (AS_DIR / p).exists()
    ]
    if missing:
        pytest.fail(f"tests/as/{missing[0]} is missing: {_AS_HELP}", pytrace=False)
    out_dir = _out_dir() / "as"
    out_dir.mkdir(exist_ok=True)
    names = sorted(src.stem for src in AS_DIR.glob("*.ts"))
    cmd = [node, "build.mjs", str(out_dir), *names]
    proc = subprocess.run(cmd, cwd=AS_DIR, capture_output=True, text=True)
    built = {name: out_dir / f"{name}.wasm" for name in names}
    if proc.returncode != 0 or not all(path.is_file() for path in built.values()):
        pytest.fail(
            f"building the AssemblyScript plugins failed:\n$ (cd tests/as && node build.mjs "
            f"{' '.join(cmd[2:])})\n{proc.stdout}{proc.stderr}\n{_AS_HELP}",
            pytrace=False,
        )
    return built


@pytest.fixture(scope="session")
def as_plugins():
    """{name: wasm bytes} of the AssemblyScript plugins tests/as/<name>.ts (built once)."""
    return {name: path.read_bytes() for name, path in build_as_plugins().items()}


# ---------------------------------------------------------------------------------------------
# Shared helpers for tests of kernel.wat: little-endian u64 packing and the kernel plugin
# ---------------------------------------------------------------------------------------------

def q(*values: int) -> bytes:
    """Pack values as little-endian u64s (the probes' input format)."""
    return struct.pack(f"<{len(values)}Q", *values)


def u64s(b: bytes) -> tuple[int, ...]:
    """Unpack an output made of little-endian u64s."""
    assert len(b) % 8 == 0, b
    return struct.unpack(f"<{len(b) // 8}Q", b)


def u64(b: bytes) -> int:
    """Unpack an output that is exactly one little-endian u64."""
    assert len(b) == 8, b
    return struct.unpack("<Q", b)[0]


@pytest.fixture(scope="module")
def kernel_compiled(plugin_wasm):
    import extism_fast

    return extism_fast.CompiledPlugin(plugin_wasm("kernel"), functions=[])


@pytest.fixture
def kernel(kernel_compiled):
    import extism_fast

    with extism_fast.Plugin(kernel_compiled) as plugin:
        yield plugin


@pytest.fixture
def strict_kernel(kernel_compiled):
    """kernel.wat with strict=True: bad kernel accesses trap with a precise message."""
    import extism_fast

    with extism_fast.Plugin(kernel_compiled, strict=True) as plugin:
        yield plugin


@pytest.fixture(scope="module")
def first(kernel_compiled):
    """Offset of a call's first block, where its input lands (the kernel's first data offset)."""
    import extism_fast

    with extism_fast.Plugin(kernel_compiled) as plugin:
        # The 16-byte input is the first block; a fresh alloc lands right after it.
        return u64(plugin.call("alloc_n", q(16, 0))) - 16


def host_user_functions(hello, add=None, mul=None, nothing=None):
    """The four host functions tests/plugins/host_user.wat imports; add/mul/nothing default to
    i32 addition, f64 multiplication and a no-op."""
    from extism_fast import Function, ValType

    def _add(cp, params, results):
        results[0].value = params[0].value + params[1].value

    def _mul(cp, params, results):
        results[0].value = params[0].value * params[1].value

    def _nothing(cp, params, results):
        pass

    return [
        Function("extism:host/user", "hello_world", [ValType.I64], [ValType.I64], hello),
        Function("extism:host/user", "add_i32", [ValType.I32, ValType.I32], [ValType.I32], add or _add),
        Function("extism:host/user", "mul_f64", [ValType.F64, ValType.F64], [ValType.F64], mul or _mul),
        Function("extism:host/user", "nothing", [], [], nothing or _nothing),
    ]


# ---------------------------------------------------------------------------------------------
# The CLI in-process
# ---------------------------------------------------------------------------------------------

class FakeTTY(io.TextIOWrapper):
    """A stdin that is a terminal: the CLI must not read it."""

    def __init__(self) -> None:
        super().__init__(io.BytesIO(b"must not be read"))

    def isatty(self) -> bool:
        return True


@pytest.fixture
def cli_run(capsysbinary, monkeypatch):
    """run(*argv) -> (status, stdout bytes, stderr text) of an in-process extism_fast.cli.main.

    stdin is a terminal unless a test replaces it (pytest's own stdin raises on read)."""
    from extism_fast.cli import main

    monkeypatch.setattr(sys, "stdin", FakeTTY())

    def _run(*argv):
        status = main([str(a) for a in argv])
        out, err = capsysbinary.readouterr()
        return status, out, err.decode("utf-8", "replace")

    return _run


@contextlib.contextmanager
def serve_bytes(data: bytes, requests: list | None = None):
    """An HTTP server on 127.0.0.1 answering every GET with ``data``; yields its base URL
    (``http://127.0.0.1:PORT``) and appends (path, X-Token header) of each request to
    ``requests``. Stopped on exit."""
    import http.server

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            if requests is not None:
                requests.append((self.path, self.headers.get("X-Token")))
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# ---- count_vowels and a picky echo: the plugins of the batch, pool, Arrow and cache tests ----

COUNT = "examples/count_vowels.wat"

# Fails for inputs starting with "x"; otherwise echoes the input.
PICKY = """
(module
  (import "extism:host/env" "input_length" (func $len (result i64)))
  (import "extism:host/env" "input_offset" (func $off (result i64)))
  (import "extism:host/env" "input_load_u8" (func $u8 (param i64) (result i32)))
  (import "extism:host/env" "output_set" (func $out (param i64 i64)))
  (func (export "run") (result i32)
    (if (i64.gt_u (call $len) (i64.const 0))
      (then (if (i32.eq (call $u8 (i64.const 0)) (i32.const 0x78)) (then (return (i32.const 3))))))
    (call $out (call $off) (call $len))
    (i32.const 0)))
"""


def vowels(text: str) -> bytes:
    return b'{"count": %d}' % sum(c in "aeiouAEIOU" for c in text)


@pytest.fixture
def map_inputs(monkeypatch):
    """The inputs every PluginPool.map call received (the Arrow path passes the column itself)."""
    from extism_fast import PluginPool

    seen = []
    original = PluginPool.map

    def recording(self, function_name, inputs, *args, **kwargs):
        seen.append((inputs, kwargs.get("output")))
        return original(self, function_name, inputs, *args, **kwargs)

    monkeypatch.setattr(PluginPool, "map", recording)
    return seen
