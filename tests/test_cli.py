"""The ``extism-fast`` command line (extism_fast/cli/__init__.py).

Most tests run ``main(argv)`` in-process and read stdout/stderr as bytes; a few run the real
``python -m extism_fast`` in a subprocess (real stdin pipe, exit status, no traceback).
"""

from __future__ import annotations

import argparse
import http.server
import io
import json
import logging
import os
import shutil
import struct
import subprocess
import sys
import threading

import pytest
import wasmtime

import extism_fast
from extism_fast.cli import build_manifest, build_parser

from conftest import REPO_ROOT

COUNT_VOWELS_WAT = str(REPO_ROOT / "examples" / "count_vowels.wat")

# config_get / log_info / http_request, reached from the CLI's flags.
ABI_WAT = r"""
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "length" (func $length (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "input_length" (func $input_length (result i64)))
  (import "extism:host/env" "input_load_u8" (func $input_load_u8 (param i64) (result i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "extism:host/env" "config_get" (func $config_get (param i64) (result i64)))
  (import "extism:host/env" "log_info" (func $log_info (param i64)))
  (import "extism:host/env" "http_request" (func $http_request (param i64 i64) (result i64)))
  (memory (export "memory") 1)
  (data (i32.const 0) "greeting")
  (data (i32.const 16) "<none>")

  (func $block (param $ptr i32) (param $len i32) (result i64)
    (local $o i64) (local $i i32)
    (local.set $o (call $alloc (i64.extend_i32_u (local.get $len))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
        (call $store_u8 (i64.add (local.get $o) (i64.extend_i32_u (local.get $i)))
          (i32.load8_u (i32.add (local.get $ptr) (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.get $o))

  (func $input_copy (result i64)
    (local $n i64) (local $o i64) (local $i i64)
    (local.set $n (call $input_length))
    (local.set $o (call $alloc (local.get $n)))
    (block $done
      (loop $next
        (br_if $done (i64.ge_u (local.get $i) (local.get $n)))
        (call $store_u8 (i64.add (local.get $o) (local.get $i))
          (call $input_load_u8 (local.get $i)))
        (local.set $i (i64.add (local.get $i) (i64.const 1)))
        (br $next)))
    (local.get $o))

  (func $output_block (param $b i64)
    (if (i64.eqz (local.get $b))
      (then (local.set $b (call $block (i32.const 16) (i32.const 6)))))
    (call $output_set (local.get $b) (call $length (local.get $b))))

  ;; output config["greeting"], or "<none>"
  (func (export "greeting") (result i32)
    (call $output_block (call $config_get (call $block (i32.const 0) (i32.const 8))))
    (i32.const 0))

  ;; log the input at info level; output nothing
  (func (export "log_input") (result i32)
    (call $log_info (call $input_copy))
    (i32.const 0))

  ;; input = request JSON; output = the response body, or "<none>"
  (func (export "fetch") (result i32)
    (call $output_block (call $http_request (call $input_copy) (i64.const 0)))
    (i32.const 0))
)
"""

# WASI: the guest path of preopen fd 3, and creating a file in it.
WASI_WAT = r"""
(module
  (import "wasi_snapshot_preview1" "fd_prestat_get"
    (func $prestat_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_dir_name"
    (func $dir_name (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (memory (export "memory") 1)
  (data (i32.const 512) "created.txt")

  (func $out (param $ptr i32) (param $len i32)
    (local $o i64) (local $i i32)
    (local.set $o (call $alloc (i64.extend_i32_u (local.get $len))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
        (call $store_u8 (i64.add (local.get $o) (i64.extend_i32_u (local.get $i)))
          (i32.load8_u (i32.add (local.get $ptr) (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (call $output_set (local.get $o) (i64.extend_i32_u (local.get $len))))

  ;; output the guest path of fd 3, or "-" when there is no preopen
  (func (export "preopen") (result i32)
    (i32.store8 (i32.const 100) (i32.const 45))
    (if (call $prestat_get (i32.const 3) (i32.const 0))
      (then (call $out (i32.const 100) (i32.const 1)) (return (i32.const 0))))
    (drop (call $dir_name (i32.const 3) (i32.const 16) (i32.load (i32.const 4))))
    (call $out (i32.const 16) (i32.load (i32.const 4)))
    (i32.const 0))

  ;; create "created.txt" in the fd 3 directory; output the WASI errno as one byte (0 = ok)
  (func (export "create") (result i32)
    (i32.store8 (i32.const 100)
      (call $path_open (i32.const 3) (i32.const 0) (i32.const 512) (i32.const 11)
        (i32.const 1) (i64.const 0x1fffffff) (i64.const 0x1fffffff) (i32.const 0) (i32.const 200)))
    (call $out (i32.const 100) (i32.const 1))
    (i32.const 0))
)
"""


class _PipedStdin(io.TextIOWrapper):
    def __init__(self, data: bytes) -> None:
        super().__init__(io.BytesIO(data))

    def isatty(self) -> bool:
        return False


@pytest.fixture
def run(cli_run):
    return cli_run


@pytest.fixture
def abi_wat(tmp_path):
    path = tmp_path / "abi.wat"
    path.write_text(ABI_WAT)
    return path


@pytest.fixture
def wasi_wasm(tmp_path):
    path = tmp_path / "wasi.wasm"
    path.write_bytes(bytes(wasmtime.wat2wasm(WASI_WAT)))
    return path


def _one_error_line(err: str, *needles: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, f"expected one stderr line, got {lines!r}"
    line = lines[0]
    assert line.startswith("extism-fast: error: "), line
    assert "Traceback" not in err
    for needle in needles:
        assert needle in line, line
    return line


# ---------------------------------------------------------------------------------------------
# Basic calls and input sources
# ---------------------------------------------------------------------------------------------


def test_call_wat(run):
    status, out, err = run("call", COUNT_VOWELS_WAT, "count_vowels", "--input", "Hello World")
    assert (status, out, err) == (0, b'{"count": 3}', "")


def test_call_wasm_built_from_c(run, wasm_path):
    status, out, err = run("call", wasm_path("examples/count_vowels.c"), "count_vowels", "-i", "Hello, World!!")
    assert (status, out, err) == (0, b'{"count": 3}', "")


def test_no_input_on_a_terminal_is_empty(run):
    status, out, _ = run("call", COUNT_VOWELS_WAT, "count_vowels")
    assert (status, out) == (0, b'{"count": 0}')


def test_stdin_input(run, monkeypatch):
    monkeypatch.setattr(sys, "stdin", _PipedStdin(b"aeiou xyz"))
    status, out, _ = run("call", COUNT_VOWELS_WAT, "count_vowels")
    assert (status, out) == (0, b'{"count": 5}')


def test_input_file_dash_reads_stdin(run, monkeypatch):
    monkeypatch.setattr(sys, "stdin", _PipedStdin(b"aa"))
    status, out, _ = run("call", COUNT_VOWELS_WAT, "count_vowels", "--input-file", "-")
    assert (status, out) == (0, b'{"count": 2}')


def test_input_flag_wins_over_stdin(run, monkeypatch):
    monkeypatch.setattr(sys, "stdin", _PipedStdin(b"aaaaaaaa"))
    status, out, _ = run("call", COUNT_VOWELS_WAT, "count_vowels", "--input", "a")
    assert (status, out) == (0, b'{"count": 1}')


def test_input_file_is_binary_safe(run, tmp_path, wasm_path):
    data = bytes(range(256)) * 300 + b"\n\r\n\0"
    f = tmp_path / "in.bin"
    f.write_bytes(data)
    status, out, err = run("call", wasm_path("kernel"), "echo", "--input-file", f)
    assert (status, err) == (0, "")
    assert out == data  # unchanged, no newline added


def test_input_text_is_utf8(run, wasm_path):
    status, out, _ = run("call", wasm_path("kernel"), "echo", "--input", "héllo ✓")
    assert (status, out) == (0, "héllo ✓".encode())


def test_empty_output(run, wasm_path):
    status, out, err = run("call", wasm_path("kernel"), "echo", "--input", "")
    assert (status, out, err) == (0, b"", "")


# ---------------------------------------------------------------------------------------------
# Flags
# ---------------------------------------------------------------------------------------------


def test_config(run, abi_wat):
    assert run("call", abi_wat, "greeting")[:2] == (0, b"<none>")
    status, out, _ = run("call", abi_wat, "greeting", "--config", "greeting=Hi=there", "-c", "other=1")
    assert (status, out) == (0, b"Hi=there")
    # the last value wins
    assert run("call", abi_wat, "greeting", "-c", "greeting=a", "-c", "greeting=b")[:2] == (0, b"b")


def test_timeout(run, wasm_path):
    status, out, err = run("call", wasm_path("misc"), "forever", "--timeout", "50")
    assert (status, out) == (1, b"")
    _one_error_line(err, "forever", "timed out", "50 ms")


def test_timeout_not_hit(run, wasm_path):
    assert run("call", wasm_path("misc"), "ok", "--timeout", "10000")[:2] == (0, b"ok")


def test_max_pages(run, wasm_path, tmp_path):
    grow = tmp_path / "grow"
    grow.write_bytes(struct.pack("<Q", 10))
    status, out, _ = run("call", wasm_path("misc"), "grow", "-f", grow)
    assert (status, out) == (0, struct.pack("<q", 1))  # the old size: 1 page
    status, out, err = run("call", wasm_path("misc"), "grow", "-f", grow, "--max-pages", "2")
    # Refused: either memory.grow returns -1 or the call fails with a memory-limit error.
    if status == 0:
        assert out == struct.pack("<q", -1)
    else:
        _one_error_line(err)


def test_log_level(run, abi_wat):
    status, out, err = run("call", abi_wat, "log_input", "-i", "a message from the plugin", "--log-level", "info")
    assert (status, out) == (0, b"")
    assert "a message from the plugin" in err
    assert "INFO" in err
    # below the threshold: nothing
    status, out, err = run("call", abi_wat, "log_input", "-i", "quiet", "--log-level", "error")
    assert (status, err) == (0, "")
    # no flag: nothing, and the previous run left no handler behind
    status, out, err = run("call", abi_wat, "log_input", "-i", "quiet")
    assert (status, err) == (0, "")
    handlers = logging.getLogger("extism_fast").handlers
    assert all(isinstance(h, logging.NullHandler) for h in handlers)


@pytest.mark.parametrize("level", ["trace", "DEBUG", "warn", "off"])
def test_log_level_names(run, abi_wat, level):
    status, _, err = run("call", abi_wat, "log_input", "-i", "x", "--log-level", level)
    assert status == 0
    assert ("x" in err) == (level in ("trace", "DEBUG"))


def test_wasi(run, wasi_wasm):
    assert run("call", wasi_wasm, "preopen", "--wasi")[:2] == (0, b"-")


def test_wasi_needed(run):
    status, _, err = run("call", REPO_ROOT / "tests/plugins/bad/wasi_needed.wat", "run")
    assert status == 1
    _one_error_line(err, "wasi_snapshot_preview1::fd_write", "--wasi")


def test_allow_path(run, wasi_wasm, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    status, out, err = run("call", wasi_wasm, "preopen", "--wasi", "--allow-path", f"{shared}:/data")
    assert (status, out, err) == (0, b"/data", "")
    status, out, err = run("call", wasi_wasm, "create", "--wasi", "--allow-path", f"{shared}:/data")
    assert (status, out, err) == (0, b"\0", "")
    assert (shared / "created.txt").exists()


def test_allow_path_read_only(run, wasi_wasm, tmp_path):
    shared = tmp_path / "ro"
    shared.mkdir()
    status, out, err = run("call", wasi_wasm, "create", "--wasi", "--allow-path", f"ro:{shared}:/data")
    assert (status, err) == (0, "")
    assert out != b"\0"  # a WASI errno: the mount is read-only
    assert not (shared / "created.txt").exists()


def test_allow_path_without_guest_mounts_at_same_path(run, wasi_wasm, tmp_path):
    status, out, _ = run("call", wasi_wasm, "preopen", "--wasi", "--allow-path", tmp_path)
    assert (status, out) == (0, os.fsencode(tmp_path))


def test_allow_path_without_wasi_is_ignored(run, tmp_path):
    """As the official CLI: without --wasi there is nothing to mount into (a plugin that needs
    WASI fails to load with an error naming --wasi)."""
    status, out, err = run("call", COUNT_VOWELS_WAT, "count_vowels", "-i", "aei", "--allow-path",
                           f"{tmp_path}:/d")
    assert (status, out, err) == (0, b'{"count": 3}', "")


def test_allow_path_missing_directory(run, wasi_wasm, tmp_path):
    status, _, err = run("call", wasi_wasm, "preopen", "--wasi", "--allow-path", f"{tmp_path}/nope:/d")
    assert status == 1
    _one_error_line(err, "nope", "does not exist")


def _parse(*argv):
    return build_parser().parse_args(["call", *map(str, argv)])


def test_build_manifest_from_flags(tmp_path):
    args = _parse(
        COUNT_VOWELS_WAT, "count_vowels", "-c", "a=1", "-c", "b=x=y", "--allow-path", f"ro:{tmp_path}:/ro",
        "--allow-path", "/tmp:/t", "--allow-host", "*.example.com", "--allow-host", "localhost",
        "--timeout", "1500", "--max-pages", "16",
    )
    m = build_manifest(args)
    assert isinstance(m, extism_fast.Manifest)
    assert m.wasm == [extism_fast.WasmFile(COUNT_VOWELS_WAT)]
    assert m.config == {"a": "1", "b": "x=y"}
    assert m.allowed_paths == {f"ro:{tmp_path}": "/ro", "/tmp": "/t"}
    assert m.allowed_hosts == ["*.example.com", "localhost"]
    assert m.timeout_ms == 1500
    assert m.memory.max_pages == 16


def test_build_manifest_defaults():
    m = build_manifest(_parse(COUNT_VOWELS_WAT, "count_vowels"))
    assert m == extism_fast.Manifest([extism_fast.WasmFile(COUNT_VOWELS_WAT)])


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's naming
        body = b"hello over http"
        if self.path == "/count_vowels.wasm":
            body = bytes(wasmtime.wat2wasm((REPO_ROOT / "examples" / "count_vowels.wat").read_text()))
        self.send_response(200)
        self.send_header("X-Test", "yes")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def http_url():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/x"
    finally:
        server.shutdown()
        server.server_close()


def test_http_denied_without_allow_host(run, abi_wat, http_url):
    request = json.dumps({"url": http_url, "method": "GET", "headers": {}})
    status, out, err = run("call", abi_wat, "fetch", "-i", request)
    assert (status, out) == (1, b"")
    _one_error_line(err, "HTTP is not allowed", "'127.0.0.1'", "--allow-host")


def test_allow_host(run, abi_wat, http_url):
    request = json.dumps({"url": http_url, "method": "GET", "headers": {}})
    status, out, err = run("call", abi_wat, "fetch", "-i", request, "--allow-host", "127.0.0.1")
    assert (status, out, err) == (0, b"hello over http", "")


# ---------------------------------------------------------------------------------------------
# --manifest
# ---------------------------------------------------------------------------------------------


def test_manifest_relative_paths_resolve_next_to_it(run, tmp_path, monkeypatch, abi_wat):
    sub = tmp_path / "plugins"
    sub.mkdir()
    shutil.copy(abi_wat, sub / "abi.wat")
    manifest = sub / "manifest.json"
    manifest.write_text(json.dumps({"wasm": [{"path": "abi.wat"}], "config": {"greeting": "from manifest"}}))
    other = tmp_path / "elsewhere"
    other.mkdir()
    monkeypatch.chdir(other)
    assert run("call", "--manifest", manifest, "greeting")[:2] == (0, b"from manifest")
    # relative manifest path, and flags merged over the manifest
    rel = os.path.relpath(manifest)
    status, out, _ = run("call", rel, "greeting", "-m", "--config", "greeting=from flag")
    assert (status, out) == (0, b"from flag")


def test_manifest_timeout_and_flag_override(run, tmp_path, wasm_path):
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps({"wasm": [{"path": str(wasm_path("misc"))}], "timeout_ms": 30}))
    status, _, err = run("call", manifest, "forever", "--manifest")
    assert status == 1
    _one_error_line(err, "timed out after 30 ms")
    status, _, err = run("call", manifest, "forever", "--manifest", "--timeout", "60")
    _one_error_line(err, "timed out after 60 ms")


def test_manifest_invalid(run, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"wasm": []}')
    status, _, err = run("call", bad, "f", "--manifest")
    assert status == 1
    _one_error_line(err, "manifest.wasm")
    bad.write_text("not json")
    status, _, err = run("call", bad, "f", "--manifest")
    assert status == 1
    _one_error_line(err, "not a JSON object, and invalid TOML")
    bad.write_text("{not json")
    status, _, err = run("call", bad, "f", "--manifest")
    assert status == 1
    _one_error_line(err, "invalid JSON")


def test_manifest_missing_wasm_file(run, tmp_path):
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps({"wasm": [{"path": "gone.wasm"}]}))
    status, _, err = run("call", manifest, "f", "--manifest")
    assert status == 1
    _one_error_line(err, "gone.wasm", "no such file")


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


def test_missing_plugin_file(run, tmp_path):
    status, out, err = run("call", tmp_path / "nope.wasm", "count_vowels", "-i", "x")
    assert (status, out) == (1, b"")
    _one_error_line(err, "nope.wasm", "no such file")


def test_plugin_is_a_directory(run, tmp_path):
    status, _, err = run("call", tmp_path, "f")
    assert status == 1
    _one_error_line(err, "directory")


def test_plugin_not_wasm(run, tmp_path):
    junk = tmp_path / "junk.wasm"
    junk.write_bytes(b"definitely not wasm")
    status, _, err = run("call", junk, "f")
    assert status == 1
    _one_error_line(err, "not WebAssembly")


def test_missing_function(run):
    status, out, err = run("call", COUNT_VOWELS_WAT, "count_consonants", "-i", "x")
    assert (status, out) == (1, b"")
    _one_error_line(err, "count_consonants")


def test_trap_is_one_line(run, wasm_path):
    status, _, err = run("call", wasm_path("kernel"), "trap")
    assert status == 1
    _one_error_line(err, "trap", "unreachable")


def test_plugin_error(run, wasm_path):
    status, _, err = run("call", wasm_path("kernel"), "error_set_return1")
    assert status == 1
    _one_error_line(err)


def test_nonzero_return(run, wasm_path):
    status, _, err = run("call", wasm_path("kernel"), "return_1")
    assert status == 1
    _one_error_line(err, "return_1")


def test_missing_input_file(run, tmp_path):
    status, _, err = run("call", COUNT_VOWELS_WAT, "count_vowels", "--input-file", tmp_path / "none.txt")
    assert status == 1
    _one_error_line(err, "none.txt", "No such file")


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["call", COUNT_VOWELS_WAT, "count_vowels", "--config", "=v"], "KEY=VALUE"),
        (["call", COUNT_VOWELS_WAT, "count_vowels", "--timeout", "-1"], "--timeout must not be negative"),
        (["call", COUNT_VOWELS_WAT, "count_vowels", "--timeout", "soon"], "--timeout must be an integer"),
        (["call", COUNT_VOWELS_WAT, "count_vowels", "--max-pages", "-1"], "--max-pages must not be negative"),
        (["call", COUNT_VOWELS_WAT, "count_vowels", "--log-level", "loud"], "loud"),
        (["call", COUNT_VOWELS_WAT, "count_vowels", "-i", "a", "-f", "b"], "not allowed with"),
        (["call", COUNT_VOWELS_WAT, "count_vowels", "--allow-path", "ro:"], "HOST:GUEST"),
        (["call", COUNT_VOWELS_WAT, "count_vowels", "--bogus"], "--bogus"),
        (["call", COUNT_VOWELS_WAT], "FUNCTION"),
        (["frobnicate"], "frobnicate"),
        ([], "COMMAND"),
    ],
)
def test_usage_errors_exit_2(run, argv, needle):
    status, out, err = run(*argv)
    assert (status, out) == (2, b"")
    _one_error_line(err, needle)


def test_version(run):
    status, out, _ = run("--version")
    assert status == 0
    from importlib import metadata

    # One source for the versions: the package's, the runtime extism_version() answers, wasmtime's.
    assert out.decode().strip() == (f"extism-fast {extism_fast.__version__} (Extism runtime "
                                    f"{extism_fast.extism_version()} compatible, wasmtime "
                                    f"{metadata.version('wasmtime')})")


def test_help(run):
    status, out, _ = run("call", "--help")
    assert status == 0
    for flag in ("--input", "--input-file", "--wasi", "--config", "--allow-path", "--allow-host",
                 "--timeout", "--max-pages", "--manifest", "--log-level"):
        assert flag.encode() in out


# ---------------------------------------------------------------------------------------------
# Real subprocesses
# ---------------------------------------------------------------------------------------------


def _cli(*argv, stdin=None, cwd=REPO_ROOT):
    return subprocess.run(
        [sys.executable, "-m", "extism_fast", *map(str, argv)],
        input=stdin, capture_output=True, cwd=cwd, timeout=60,
        stdin=None if stdin is not None else subprocess.DEVNULL,
    )


def test_subprocess_count_vowels():
    proc = _cli("call", "examples/count_vowels.wat", "count_vowels", "--input", "Hello World")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, b'{"count": 3}', b"")


def test_subprocess_stdin_pipe():
    proc = _cli("call", "examples/count_vowels.wat", "count_vowels", stdin=b"a" * 100_000)
    assert (proc.returncode, proc.stdout) == (0, b'{"count": 100000}')


def test_subprocess_error_is_one_line():
    proc = _cli("call", "examples/count_vowels.wat", "nope", "-i", "x")
    assert proc.returncode == 1
    assert proc.stdout == b""
    _one_error_line(proc.stderr.decode(), "nope")


def test_subprocess_wasi_stdout_needs_EXTISM_ENABLE_WASI_OUTPUT(monkeypatch):
    """As the official `extism call`: a WASI plugin's output is shown only when
    EXTISM_ENABLE_WASI_OUTPUT is set."""
    monkeypatch.delenv("EXTISM_ENABLE_WASI_OUTPUT", raising=False)
    proc = _cli("call", "tests/plugins/bad/wasi_needed.wat", "run", "--wasi")
    assert (proc.returncode, proc.stdout) == (0, b"ok")
    monkeypatch.setenv("EXTISM_ENABLE_WASI_OUTPUT", "1")
    proc = _cli("call", "tests/plugins/bad/wasi_needed.wat", "run", "--wasi")
    assert (proc.returncode, proc.stdout) == (0, b"hello from wasi\nok")


def test_console_script():
    exe = shutil.which("extism-fast", path=os.path.dirname(sys.executable)) or shutil.which("extism-fast")
    if exe is None:
        pytest.skip("the extism-fast console script is not installed")
    proc = subprocess.run([exe, "call", COUNT_VOWELS_WAT, "count_vowels", "-i", "Hello World"],
                          capture_output=True, stdin=subprocess.DEVNULL, timeout=60)
    assert (proc.returncode, proc.stdout) == (0, b'{"count": 3}')


def test_strict_flag_traps_where_the_default_is_lenient(run, wasm_path, tmp_path):
    """--strict: the kernel accesses the official runtime ignores fail the call, naming them."""
    plugin = wasm_path("pdk_habits")
    assert run("call", plugin, "loads")[:2] == (0, b"\0" * 8)
    status, out, err = run("call", plugin, "loads", "--strict")
    assert status == 1 and out == b""
    assert err.startswith("extism-fast: error:") and "load_u8" in err and "outside kernel memory" in err
    inputs = tmp_path / "in.jsonl"
    inputs.write_text('"x"\n')
    status, _, _ = run("batch", plugin, "stores", "--input-file", inputs, "--output", tmp_path / "out.jsonl",
                       "--strict")
    assert status == 1
    assert "store_u8" in (tmp_path / "out.jsonl").read_text()


# ---------------------------------------------------------------------------------------------
# The official `extism call` flags (github.com/extism/cli call.go), with the same meaning
# ---------------------------------------------------------------------------------------------


def _u64s(*values: int) -> bytes:
    return b"".join(struct.pack("<Q", v) for v in values)


def test_official_stdin_reads_the_pipe():
    proc = _cli("call", "examples/count_vowels.wat", "count_vowels", "--stdin", stdin=b"aeiou")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, b'{"count": 5}', b"")


def test_official_stdin_reads_even_a_terminal(run, monkeypatch):
    # The default reads stdin only when it is not a terminal; --stdin always does.
    assert run("call", COUNT_VOWELS_WAT, "count_vowels")[:2] == (0, b'{"count": 0}')
    assert run("call", COUNT_VOWELS_WAT, "count_vowels", "--stdin")[:2] == (0, b'{"count": 5}')


def test_official_stdin_excludes_input(run):
    status, _, err = run("call", COUNT_VOWELS_WAT, "count_vowels", "--stdin", "-i", "x")
    assert status == 2
    _one_error_line(err, "--stdin", "not allowed with")


def test_official_loop_calls_one_instance_n_times(wasm_path):
    """Each output is followed by a newline when looping (as `extism call --loop`); the same
    instance serves every call, so a var counts them; --verbose reports the rate on stderr."""
    proc = _cli("call", wasm_path("host"), "var_roundtrip", "--loop", "3", "--verbose")
    assert proc.returncode == 0
    assert proc.stdout == b"".join(_u64s(i) + b"\n" for i in (1, 2, 3))
    lines = proc.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("3 calls in ") and lines[0].endswith(" calls/s")


def test_official_loop_once_adds_no_newline_and_no_report(wasm_path):
    proc = _cli("call", wasm_path("host"), "var_roundtrip", "--loop", "1")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, _u64s(1), b"")


def test_official_verbose_before_the_subcommand(run):
    status, out, err = run("-v", "call", COUNT_VOWELS_WAT, "count_vowels", "-i", "aa", "--loop", "2")
    assert (status, out) == (0, b'{"count": 2}\n' * 2)
    assert "2 calls in " in err and "calls/s" in err


def test_official_loop_rejects_negative(run):
    status, _, err = run("call", COUNT_VOWELS_WAT, "count_vowels", "--loop", "-1")
    assert status == 2
    _one_error_line(err, "--loop must not be negative")


@pytest.fixture
def linked(tmp_path, plugin_wasm):
    """main_lib.wasm imports lib::compute; double.wasm provides it (2x + 2)."""
    main = tmp_path / "main_lib.wasm"
    main.write_bytes(plugin_wasm("link/main_lib"))
    lib = tmp_path / "lib.wasm"
    lib.write_bytes(plugin_wasm("link/double"))
    return main, lib


def test_official_link_name_equals_path(run, linked):
    main, lib = linked
    assert run("call", main, "run", "--link", f"lib={lib}") == (0, _u64s(42), "")


def test_official_link_path_named_after_its_file(run, linked):
    main, lib = linked
    assert run("call", main, "run", "--link", lib) == (0, _u64s(42), "")


def test_official_link_without_it_the_import_is_missing(run, linked):
    status, _, err = run("call", linked[0], "run")
    assert status == 1
    _one_error_line(err, "lib")


def test_official_link_with_a_manifest(run, linked, tmp_path):
    main, lib = linked
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps({"wasm": [{"path": main.name}]}))
    assert run("call", manifest, "run", "--manifest", "--link", f"lib={lib}") == (0, _u64s(42), "")


@pytest.mark.parametrize("arg, needle", [
    ("main=x.wasm", "--link name 'main' is taken"),
    ("=x.wasm", "--link expects NAME=PATH"),
    ("lib=", "--link expects NAME=PATH"),
])
def test_official_link_bad_values(run, arg, needle):
    status, _, err = run("call", COUNT_VOWELS_WAT, "count_vowels", "--link", arg)
    assert status == 2
    _one_error_line(err, needle)


def test_official_set_config_merged_and_config_wins(run, abi_wat):
    assert run("call", abi_wat, "greeting", "--set-config", '{"greeting": "Hi"}')[:2] == (0, b"Hi")
    status, out, _ = run("call", abi_wat, "greeting", "--set-config", '{"greeting": "Hi"}',
                         "--config", "greeting=Yo")
    assert (status, out) == (0, b"Yo")
    m = build_manifest(_parse(COUNT_VOWELS_WAT, "f", "--set-config", '{"a": "1", "b": "2"}', "-c", "b=3"))
    assert m.config == {"a": "1", "b": "3"}


@pytest.mark.parametrize("text, needle", [
    ('{"greeting": SECRET}', "invalid JSON"),
    ('["SECRET"]', "must be a JSON object, got an array"),
    ('"SECRET"', "must be a JSON object, got a string"),
    ('{"k": ["SECRET"]}', "value of 'k' must be a JSON string, got an array"),
    ('{"": "SECRET"}', "keys must be non-empty"),
])
def test_official_set_config_bad_values_show_no_secret(run, text, needle):
    status, _, err = run("call", COUNT_VOWELS_WAT, "count_vowels", "--set-config", text)
    assert status == 2
    _one_error_line(err, needle)
    assert "SECRET" not in err


def test_official_config_bare_key_is_empty():
    assert build_manifest(_parse(COUNT_VOWELS_WAT, "f", "--config", "flag")).config == {"flag": ""}


def test_official_allow_path_first_colon_ends_host():
    m = build_manifest(_parse(COUNT_VOWELS_WAT, "f", "--allow-path", "/a:/b:c", "--allow-path", "ro:/d:/e:f"))
    assert m.allowed_paths == {"/a": "/b:c", "ro:/d": "/e:f"}


def test_official_timeout_zero_means_none(tmp_path):
    assert build_manifest(_parse(COUNT_VOWELS_WAT, "f", "--timeout", "0")).timeout_ms is None
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps({"wasm": [{"path": COUNT_VOWELS_WAT}], "timeout_ms": 5}))
    assert build_manifest(_parse(str(manifest), "f", "-m", "--timeout", "0")).timeout_ms == 5


def test_official_memory_max(run, wasm_path, tmp_path):
    grow = tmp_path / "grow.bin"
    grow.write_bytes(struct.pack("<Q", 10))
    status, out, _ = run("call", wasm_path("misc"), "grow", "-f", grow, "--memory-max", "2")
    assert (status, out) == (0, struct.pack("<q", -1))  # memory.grow refused past 2 pages
    status, out, _ = run("call", wasm_path("misc"), "grow", "-f", grow, "--memory-max", "0")
    assert (status, out) == (0, struct.pack("<q", 1))  # 0: no cap, as in the official CLI


def test_official_memory_max_is_the_budget_of_all_memories(run, wasm_path, tmp_path):
    """--memory-max 17 runs a Rust-PDK-like plugin whose memory starts at 17 pages on a 128 KiB
    input (its memory and the kernel's grow by 17 pages at most, together), as the official CLI."""
    data = tmp_path / "input.bin"
    data.write_bytes(bytes(range(256)) * 512)
    status, out, err = run("call", wasm_path("pdk_echo17"), "echo", "-f", data, "--memory-max", "17")
    assert (status, out, err) == (0, data.read_bytes(), "")
    data.write_bytes(bytes(range(256)) * 4000)
    status, _, err = run("call", wasm_path("pdk_echo17"), "echo", "-f", data, "--memory-max", "17")
    assert status == 1
    _one_error_line(err, "memory.max_pages = 17 pages")


def test_official_memory_max_excludes_max_pages(run):
    status, _, err = run("call", COUNT_VOWELS_WAT, "count_vowels", "--memory-max", "2", "--max-pages", "2")
    assert status == 2
    _one_error_line(err, "--max-pages", "--memory-max")


def test_official_var_max(run, wasm_path):
    host = wasm_path("host")
    assert run("call", host, "var_set_from_input", "-i", "k=vvvv", "--var-max", "64")[:2] == (0, b"ok")
    status, _, err = run("call", host, "var_set_from_input", "-i", "k=" + "v" * 100, "--var-max", "64")
    assert status == 1
    _one_error_line(err, "max_var_bytes")
    status, _, err = run("call", host, "var_set_from_input", "-i", "k=v", "--var-max", "0")
    assert status == 1
    _one_error_line(err, "vars are disabled")


def test_official_http_response_max(run, abi_wat, http_url):
    request = json.dumps({"url": http_url, "method": "GET", "headers": {}})
    status, _, err = run("call", abi_wat, "fetch", "-i", request, "--allow-host", "127.0.0.1",
                         "--http-response-max", "4")
    assert status == 1
    _one_error_line(err, "max_http_response_bytes = 4")
    assert run("call", abi_wat, "fetch", "-i", request, "--allow-host", "127.0.0.1",
               "--http-response-max", "15")[:2] == (0, b"hello over http")


def test_official_enable_http_response_headers(run, wasm_path, http_url, tmp_path):
    request = json.dumps({"url": http_url, "method": "GET", "headers": {}}).encode()
    inp = tmp_path / "req.bin"
    inp.write_bytes(_u64s(len(request)) + request)
    argv = ("call", wasm_path("host"), "http_request", "-f", inp, "--allow-host", "127.0.0.1")

    def headers(*extra):
        status, out, err = run(*argv, *extra)
        assert status == 0, err
        n = struct.unpack("<Q", out[4:12])[0]
        return out[12 + n:]

    assert headers() == b""
    assert json.loads(headers("--enable-http-response-headers"))["x-test"] == "yes"


def test_official_fuel(run, wasm_path):
    status, out, err = run("call", wasm_path("misc"), "forever", "--fuel", "10000")
    assert (status, out) == (1, b"")
    _one_error_line(err, "ran out of fuel")
    assert run("call", COUNT_VOWELS_WAT, "count_vowels", "-i", "aa", "--fuel", "1000000")[:2] == (0, b'{"count": 2}')


def test_official_manifest_toml(run, tmp_path):
    manifest = tmp_path / "m.toml"
    manifest.write_text(f'wasm = [{{ path = {json.dumps(COUNT_VOWELS_WAT)} }}]\n'
                        '[config]\ngreeting = "Hi"\n')
    assert run("call", manifest, "count_vowels", "-m", "-i", "aaa")[:2] == (0, b'{"count": 3}')
    assert build_manifest(_parse(str(manifest), "f", "-m")).config == {"greeting": "Hi"}


def test_official_manifest_toml_invalid(run, tmp_path):
    manifest = tmp_path / "m.toml"
    manifest.write_text("wasm = [")
    status, _, err = run("call", manifest, "count_vowels", "-m")
    assert status == 1
    _one_error_line(err, "TOML")


def test_official_plugin_url(run, http_url):
    url = http_url.rsplit("/", 1)[0] + "/count_vowels.wasm"
    assert run("call", url, "count_vowels", "-i", "aaa")[:2] == (0, b'{"count": 3}')


@pytest.mark.parametrize("argv, flag", [
    (["--github-token", "SECRET"], "--github-token"),
    (["--github-token=SECRET"], "--github-token"),
    (["-q"], "-q"),
    (["--quiet"], "--quiet"),
])
def test_official_flags_not_supported_say_so(run, argv, flag):
    status, _, err = run("call", COUNT_VOWELS_WAT, "count_vowels", *argv)
    assert status == 2
    line = _one_error_line(err, f"{flag} is an official extism CLI flag that extism-fast does not support: ")
    assert "unrecognized" not in line and "SECRET" not in line


def test_official_flag_not_supported_before_the_subcommand():
    proc = _cli("--github-token", "t", "call", "examples/count_vowels.wat", "count_vowels")
    assert (proc.returncode, proc.stdout) == (2, b"")
    _one_error_line(proc.stderr.decode(), "--github-token is an official extism CLI flag")


def test_help_lists_the_official_flags(run):
    status, out, _ = run("call", "--help")
    assert status == 0
    for flag in ("--stdin", "--loop", "--link", "--set-config", "--enable-http-response-headers",
                 "--memory-max", "--var-max", "--http-response-max", "--fuel", "--verbose"):
        assert flag.encode() in out


# ---------------------------------------------------------------------------------------------
# --json
# ---------------------------------------------------------------------------------------------


def test_json_output_and_errors_are_one_object_on_stdout(run, wasm_path, tmp_path):
    """--json: the output (text, or base64 when not UTF-8) or the error (type, message) as one
    JSON line on stdout, nothing on stderr, the exit status unchanged; no config value in it."""
    status, out, err = run("call", COUNT_VOWELS_WAT, "count_vowels", "--json", "-i", "Hello World")
    assert (status, err) == (0, "")
    assert out.endswith(b"\n") and out.count(b"\n") == 1
    assert json.loads(out) == {"output": '{"count": 3}', "error": None}

    binary = b"\xff\x00\xfe"
    (tmp_path / "in.bin").write_bytes(binary)
    status, out, _ = run("call", wasm_path("kernel"), "echo", "--json", "--input-file", tmp_path / "in.bin")
    assert (status, json.loads(out)) == (0, {"output_base64": "/wD+", "error": None})

    status, out, err = run("call", wasm_path("kernel"), "trap", "--json", "-c", "key=s3cr3t")
    assert (status, err) == (1, "")
    result = json.loads(out)
    assert set(result) == {"error"} and result["error"]["type"] == "TrapError"
    assert "unreachable" in result["error"]["message"] and "s3cr3t" not in out.decode()

    status, out, _ = run("call", tmp_path / "missing.wasm", "f", "--json")
    assert status == 1 and json.loads(out)["error"]["type"] in ("ManifestError", "OSError")
    # Each call of a --loop is its own line.
    status, out, _ = run("call", COUNT_VOWELS_WAT, "count_vowels", "--json", "--loop", "3", "-i", "a")
    assert status == 0 and [json.loads(line)["output"] for line in out.splitlines()] == ['{"count": 1}'] * 3
    # Bad usage stays a usage error (exit 2) on stderr.
    status, out, err = run("call", COUNT_VOWELS_WAT, "count_vowels", "--json", "--loop", "x")
    assert (status, out) == (2, b"") and "--loop" in err


def test_readme_json_example_runs_as_written(run, monkeypatch):
    """README's --json block, run from the checkout root, prints what the README says."""
    import re
    import shlex

    readme = (REPO_ROOT / "README.md").read_text()
    (block,) = [b for b in re.findall(r"```sh\n(.*?)```", readme, re.S) if "--json" in b and "call" in b
                and "[--json]" not in b]
    (command,) = block.strip().splitlines()
    argv = shlex.split(command)
    assert argv[0] == "extism-fast"
    monkeypatch.chdir(REPO_ROOT)
    status, out, err = run(*argv[1:])
    printed = re.search(r"--json\n```\n\nprints `(.*?)`\.", readme).group(1)
    assert (status, err, out.decode().strip()) == (0, "", printed)


# ---------------------------------------------------------------------------------------------
# Cold start (tests/test_cold_start.py checks what loads): each command's parser is built when
# it is parsed, and `call` gives Plugin a module file's path rather than a Manifest
# ---------------------------------------------------------------------------------------------


def _commands(parser: argparse.ArgumentParser) -> argparse._SubParsersAction:
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))


def test_the_lazy_parser_builds_only_the_command_it_parses():
    parser = build_parser(lazy=True)
    args = parser.parse_args(["call", "p.wasm", "f", "--timeout", "5"])
    assert (args.command, args.timeout) == ("call", 5)
    # A command not built has its -h only.
    assert {name: len(sub._actions) > 1 for name, sub in _commands(parser).choices.items()} == {
        "call": True, "batch": False, "completion": False}
    assert all(len(sub._actions) > 1 for sub in _commands(build_parser()).choices.values())


@pytest.mark.parametrize("argv", [["--help"], ["call", "--help"], ["batch", "--help"], ["completion", "--help"]])
def test_the_lazy_parser_helps_as_the_full_one(argv, capsys):
    helps = []
    for lazy in (False, True):
        with pytest.raises(SystemExit):
            build_parser(lazy=lazy).parse_args(argv)
        helps.append(capsys.readouterr().out)
    assert helps[0] == helps[1]
    assert helps[0].startswith(f"usage: extism-fast {argv[0] if len(argv) > 1 else ''}".rstrip())


@pytest.mark.parametrize("columns", [None, "", "abc", "0", "-5", "37", "200"])
@pytest.mark.parametrize("terminal", [None, 123, 0])
def test_the_help_is_as_wide_as_shutil_says(columns, terminal, monkeypatch):
    """The help's width is shutil.get_terminal_size()'s (argparse's own), without loading shutil:
    $COLUMNS, else the width of the terminal on stdout (none, 123 columns, or 0: unknown), else 80."""
    import fcntl
    import pty
    import termios

    from extism_fast.cli.helptext import terminal_columns as _terminal_columns

    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    master, slave = pty.openpty()
    try:
        if terminal is not None:
            fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, terminal, 0, 0))
            monkeypatch.setattr(sys, "__stdout__", os.fdopen(os.dup(slave), "w"))
        expected = shutil.get_terminal_size().columns
        assert _terminal_columns() == expected
        if terminal:
            assert expected == (int(columns) if columns and columns.isdigit() and int(columns) > 0 else terminal)
    finally:
        if terminal is not None:
            sys.__stdout__.close()
        os.close(master)
        os.close(slave)


@pytest.fixture
def plugin_sources(monkeypatch):
    """The plugin source each extism_fast.Plugin() of the test is given."""
    given = []
    real = extism_fast.Plugin

    def plugin(source, **kwargs):
        given.append(source)
        return real(source, **kwargs)

    monkeypatch.setattr(extism_fast, "Plugin", plugin)
    return given


@pytest.mark.parametrize("options", [[], ["--timeout", "0"], ["--memory-max", "0"], ["--wasi"], ["--strict"],
                                     ["--fuel", "100000000"], ["--set-config", "{}"]])
def test_a_module_file_is_given_to_plugin_as_its_path(run, plugin_sources, options):
    """So that the manifest classes (attrs) need not load: options that leave the manifest as it
    is keep it so."""
    assert run("call", COUNT_VOWELS_WAT, "count_vowels", "-i", "Hello", *options)[:2] == (0, b'{"count": 2}')
    assert plugin_sources == [os.path.abspath(COUNT_VOWELS_WAT)]


@pytest.mark.parametrize("options", [["--config", "a=b"], ["--set-config", '{"a": "b"}', "-c", "a=c", "-c", "d"],
                                     ["--timeout", "5000"], ["--max-pages", "4"], ["--memory-max", "4"],
                                     ["--var-max", "0"], ["--http-response-max", "10"],
                                     ["--timeout", "7", "--max-pages", "2", "--var-max", "9", "-c", "k=v"],
                                     ["--allow-host", "example.org"], ["--allow-path", "/tmp:/tmp"],
                                     ["--wasi", "--allow-path", "ro:/tmp:/t", "--allow-path", "/tmp", "--allow-host", "a",
                                      "--allow-host", "*.b", "--allow-host", "a", "-c", "k=v", "--timeout", "5"]])
def test_a_config_limits_and_grants_give_plugin_a_plain_manifest_dict(run, plugin_sources, options):
    """A config, --timeout, memory limits, --allow-host and --allow-path make a manifest dict of the
    module a plain plugin takes (manifest/plain.py: no attrs), the same manifest as build_manifest's."""
    from extism_fast.cli import options as cli_options
    from extism_fast.manifest.plain import PlainSource

    assert run("call", COUNT_VOWELS_WAT, "count_vowels", "-i", "Hello", *options)[:2] == (0, b'{"count": 2}')
    [source] = plugin_sources
    assert source["wasm"] == [{"path": os.path.abspath(COUNT_VOWELS_WAT)}]
    args = _parse(COUNT_VOWELS_WAT, "count_vowels", *options)
    assert extism_fast.Manifest.from_dict(source) == build_manifest(args)
    plugin_sources.clear()
    assert isinstance(cli_options.new_plugin(args)._options.manifest, PlainSource)


@pytest.mark.parametrize("options", [["--link", f"other={COUNT_VOWELS_WAT}"]])
def test_an_option_that_changes_the_manifest_gives_plugin_a_manifest(run, plugin_sources, options):
    assert run("call", COUNT_VOWELS_WAT, "count_vowels", "-i", "Hello", *options)[:2] == (0, b'{"count": 2}')
    assert [type(source) for source in plugin_sources] == [extism_fast.Manifest]


@pytest.mark.parametrize("name", ["plugin.toml", "plugin.TOML", "line\nbreak.wat"])
def test_a_module_file_plugin_would_not_read_as_a_module_gets_a_manifest(run, plugin_sources, tmp_path, name):
    """Plugin() reads a file named *.toml as a TOML manifest, and a str path with a line break as
    manifest text: such a module file is given as the manifest the CLI makes, as before."""
    path = tmp_path / name
    shutil.copy(COUNT_VOWELS_WAT, path)
    assert run("call", path, "count_vowels", "-i", "Hello")[:2] == (0, b'{"count": 2}')
    assert [type(source) for source in plugin_sources] == [extism_fast.Manifest]


@pytest.mark.parametrize("content", [b"", b"junk", b"\0asm\x01\0\0\0junk", b"(module (func", b"(module)",
                                     b"\n\n[[wasm]]\npath = 'x.wasm'\n"])
def test_a_module_file_fails_as_the_manifest_of_it_does(run, monkeypatch, tmp_path, content):
    """Given as its path or as the CLI's manifest, a bad module file fails with the same message (a
    TOML manifest with another name than *.toml is refused: --manifest is missing)."""
    from extism_fast.cli import options as cli_options

    path = tmp_path / "plugin.wasm"
    path.write_bytes(content)
    given_path = run("call", path, "f", "-i", "x")
    monkeypatch.setattr(cli_options, "_module_path", lambda args: None)
    assert run("call", path, "f", "-i", "x") == given_path
    assert given_path[0] == 1 and given_path[1] == b""
    _one_error_line(given_path[2])


def test_plugin_logging_leaves_no_handler_even_when_the_block_raises():
    """--log-level's handler (a class, not a contextlib generator: no contextlib on the cold path)
    is removed and the level reset however the block ends."""
    from extism_fast.cli.options import plugin_logging

    logger = logging.getLogger("extism_fast")
    before = list(logger.handlers)
    with pytest.raises(KeyError):
        with plugin_logging(logging.INFO):
            assert len(logger.handlers) == len(before) + 1 and logger.level == logging.INFO
            raise KeyError("from the block")
    assert (logger.handlers, logger.level) == (before, logging.NOTSET)
    with plugin_logging(None):
        assert logger.handlers == before
