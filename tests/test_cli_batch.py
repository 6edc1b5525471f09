"""``extism-fast batch`` (extism_fast/cli/batch.py, batch_engine.py): JSON Lines in, one JSON line per item out.

Most tests run ``main(argv)`` in-process with the output in a temporary file; one runs the real
``python -m extism_fast`` in a subprocess with stdin/stdout pipes.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import subprocess
import sys

import pytest

import extism_fast
from extism_fast.cli_batch import InputError, Progress, count_lines, format_result, parse_item
from extism_fast.cli import build_manifest, build_parser

from conftest import REPO_ROOT, FakeTTY

COUNT_VOWELS_WAT = str(REPO_ROOT / "examples" / "count_vowels.wat")

# `echo_unless_x`: input starting with "x" -> error_set + return 1 (PluginError), starting with
# "t" -> unreachable (TrapError), anything else is echoed unchanged.
ECHO_UNLESS_X_WAT = r"""
(module
  (import "extism:host/env" "input_length" (func $input_length (result i64)))
  (import "extism:host/env" "input_offset" (func $input_offset (result i64)))
  (import "extism:host/env" "input_load_u8" (func $input_load_u8 (param i64) (result i32)))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "extism:host/env" "error_set" (func $error_set (param i64)))
  (memory 1)
  (data (i32.const 0) "input starts with x")

  (func (export "echo_unless_x") (result i32)
    (local $msg i64) (local $i i32) (local $first i32)
    (if (i64.gt_u (call $input_length) (i64.const 0))
      (then
        (local.set $first (call $input_load_u8 (i64.const 0)))
        (if (i32.eq (local.get $first) (i32.const 0x74)) (then unreachable))
        (if (i32.eq (local.get $first) (i32.const 0x78))
          (then
            (local.set $msg (call $alloc (i64.const 19)))
            (block $done
              (loop $next
                (br_if $done (i32.ge_u (local.get $i) (i32.const 19)))
                (call $store_u8 (i64.add (local.get $msg) (i64.extend_i32_u (local.get $i)))
                  (i32.load8_u (local.get $i)))
                (local.set $i (i32.add (local.get $i) (i32.const 1)))
                (br $next)))
            (call $error_set (local.get $msg))
            (return (i32.const 1))))))
    (call $output_set (call $input_offset) (call $input_length))
    (i32.const 0))
)
"""

SUMMARY = re.compile(r"^(\d+) items, (\d+) errors, (\d+(?:\.\d)?) items/s$")


@pytest.fixture
def run(cli_run):
    return cli_run


@pytest.fixture
def echo_wat(tmp_path):
    path = tmp_path / "echo_unless_x.wat"
    path.write_text(ECHO_UNLESS_X_WAT)
    return path


def _write_lines(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def _read_results(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _summary(err: str) -> tuple[int, int]:
    lines = err.splitlines()
    assert lines, "no summary line on stderr"
    m = SUMMARY.match(lines[-1])
    assert m, f"bad summary line {lines[-1]!r}"
    return int(m.group(1)), int(m.group(2))


def _vowels(data: bytes) -> bytes:
    return b'{"count": %d}' % sum(data.count(c) for c in b"aeiouAEIOU")


TEXTS = [
    f"item {i}: " + "Hello, World! " * (i % 7) + "ÄÖü é " * (i % 3) + "xyz" * (i % 5)
    for i in range(300)
]


# ---------------------------------------------------------------------------------------------
# Whole runs
# ---------------------------------------------------------------------------------------------


def test_count_vowels_outputs_in_order(run, tmp_path):
    inp = _write_lines(tmp_path / "in.jsonl", [json.dumps(t) for t in TEXTS])
    out = tmp_path / "out.jsonl"
    status, stdout, err = run("batch", COUNT_VOWELS_WAT, "count_vowels", "--input-file", inp,
                              "--output", out, "--workers", 2)
    assert (status, stdout) == (0, b"")
    assert _summary(err) == (300, 0)
    assert len(err.splitlines()) == 1  # not a TTY, no --progress: only the summary
    assert _read_results(out) == [
        {"index": i, "output": _vowels(t.encode()).decode()} for i, t in enumerate(TEXTS)
    ]


def test_output_lines_are_exact_text(run, tmp_path):
    inp = _write_lines(tmp_path / "in.jsonl", ['"Hello World"', '{"text": "aaa"}'])
    out = tmp_path / "out.jsonl"
    assert run("batch", COUNT_VOWELS_WAT, "count_vowels", "-f", inp, "-o", out)[0] == 0
    assert out.read_bytes() == (
        b'{"index": 0, "output": "{\\"count\\": 3}"}\n'
        b'{"index": 1, "output": "{\\"count\\": 3}"}\n'
    )


def test_bytes_inputs_via_base64(run, tmp_path, echo_wat):
    items = [bytes(range(256)), b"\xff\xfe\x00", b"plain ascii", "é ☃".encode(), b""]
    inp = _write_lines(tmp_path / "in.jsonl",
                       [json.dumps({"base64": base64.b64encode(b).decode()}) for b in items])
    out = tmp_path / "out.jsonl"
    status, _, err = run("batch", echo_wat, "echo_unless_x", "-f", inp, "-o", out)
    assert status == 0, err
    assert _read_results(out) == [
        {"index": 0, "output_base64": base64.b64encode(items[0]).decode()},
        {"index": 1, "output_base64": "//4A"},
        {"index": 2, "output": "plain ascii"},
        {"index": 3, "output": "é ☃"},
        {"index": 4, "output": ""},
    ]


def test_base64_counts_bytes(run, tmp_path):
    data = b"\xe9a\x00EIou\xff"
    inp = _write_lines(tmp_path / "in.jsonl", [json.dumps({"base64": base64.b64encode(data).decode()})])
    out = tmp_path / "out.jsonl"
    assert run("batch", COUNT_VOWELS_WAT, "count_vowels", "-f", inp, "-o", out)[0] == 0
    assert _read_results(out) == [{"index": 0, "output": '{"count": 5}'}]


def test_failing_items_are_error_lines(run, tmp_path, echo_wat):
    texts = [f"{'x' if i % 5 == 0 else 't' if i % 7 == 0 else 'ok'}-{i}" for i in range(200)]
    inp = _write_lines(tmp_path / "in.jsonl", [json.dumps(t) for t in texts])
    out = tmp_path / "out.jsonl"
    status, _, err = run("batch", echo_wat, "echo_unless_x", "-f", inp, "-o", out, "-w", 2)
    assert status == 1
    results = _read_results(out)
    assert [r["index"] for r in results] == list(range(200))
    errors = 0
    for text, r in zip(texts, results):
        if text.startswith("x"):
            assert r == {"index": r["index"], "error": "input starts with x", "type": "PluginError"}
            errors += 1
        elif text.startswith("t"):
            assert set(r) == {"index", "error", "type"}
            assert r["type"] == "TrapError"
            assert "unreachable" in r["error"]
            errors += 1
        else:
            assert r == {"index": r["index"], "output": text}
    assert _summary(err) == (200, errors)
    assert len(err.splitlines()) == 1  # per-item failures are in the output, not on stderr


def test_error_set_return0_from_kernel(run, tmp_path, wasm_path):
    inp = _write_lines(tmp_path / "in.jsonl", ['"a"', '"b"'])
    out = tmp_path / "out.jsonl"
    status, _, err = run("batch", wasm_path("kernel"), "error_set_return0", "-f", inp, "-o", out)
    assert status == 1
    assert _read_results(out) == [
        {"index": i, "error": "boom from plugin", "type": "PluginError"} for i in range(2)
    ]
    assert _summary(err) == (2, 2)


def test_invalid_lines_are_error_lines(run, tmp_path):
    lines = [
        '"first"',
        "not json",
        "",
        "42",
        '{"base64": "!!!"}',
        '{"text": 1}',
        '{"text": "a", "base64": "YQ=="}',
        "null",
        '"\\ud800"',
        '{"text": "last"}',
    ]
    inp = _write_lines(tmp_path / "in.jsonl", lines)
    out = tmp_path / "out.jsonl"
    status, _, err = run("batch", COUNT_VOWELS_WAT, "count_vowels", "-f", inp, "-o", out)
    assert status == 1
    results = _read_results(out)
    assert [r["index"] for r in results] == list(range(len(lines)))
    assert results[0] == {"index": 0, "output": '{"count": 1}'}
    assert results[-1] == {"index": 9, "output": '{"count": 1}'}
    for r in results[1:-1]:
        assert r["type"] == "InputError", r
    assert "invalid JSON" in results[1]["error"]
    assert "empty line" in results[2]["error"]
    assert "got a number" in results[3]["error"]
    assert "invalid base64" in results[4]["error"]
    assert '"text" must be a string' in results[5]["error"]
    assert "an object with keys ['base64', 'text']" in results[6]["error"]
    assert "got null" in results[7]["error"]
    assert "surrogate" in results[8]["error"]
    assert _summary(err) == (10, 8)


def test_invalid_utf8_line(run, tmp_path):
    inp = tmp_path / "in.jsonl"
    inp.write_bytes(b'"ok"\n"\xff"\n')
    out = tmp_path / "out.jsonl"
    assert run("batch", COUNT_VOWELS_WAT, "count_vowels", "-f", inp, "-o", out)[0] == 1
    results = _read_results(out)
    assert results[0] == {"index": 0, "output": '{"count": 1}'}
    assert results[1]["type"] == "InputError"
    assert "UTF-8" in results[1]["error"] or "invalid JSON" in results[1]["error"]


def test_last_line_without_newline_and_crlf(run, tmp_path):
    inp = tmp_path / "in.jsonl"
    inp.write_bytes(b'"aa"\r\n"eee"')
    out = tmp_path / "out.jsonl"
    assert run("batch", COUNT_VOWELS_WAT, "count_vowels", "-f", inp, "-o", out)[0] == 0
    assert _read_results(out) == [
        {"index": 0, "output": '{"count": 2}'},
        {"index": 1, "output": '{"count": 3}'},
    ]


def test_empty_input_file(run, tmp_path):
    inp = tmp_path / "in.jsonl"
    inp.write_bytes(b"")
    out = tmp_path / "out.jsonl"
    status, _, err = run("batch", COUNT_VOWELS_WAT, "count_vowels", "-f", inp, "-o", out)
    assert status == 0
    assert out.read_bytes() == b""
    assert _summary(err) == (0, 0)


@pytest.mark.parametrize("chunk_size", [None, 7])
def test_workers_1_and_2_give_identical_output(run, tmp_path, echo_wat, chunk_size):
    lines = []
    for i in range(400):
        if i % 11 == 0:
            lines.append(json.dumps(f"x{i}"))
        elif i % 13 == 0:
            lines.append("{broken")
        elif i % 3 == 0:
            lines.append(json.dumps({"base64": base64.b64encode(bytes([i % 256, 255])).decode()}))
        else:
            lines.append(json.dumps(f"value {i} " * (i % 9)))
    inp = _write_lines(tmp_path / "in.jsonl", lines)
    extra = ["--chunk-size", chunk_size] if chunk_size else []
    outputs = []
    for workers in (1, 2):
        out = tmp_path / f"out{workers}.jsonl"
        status, _, err = run("batch", echo_wat, "echo_unless_x", "-f", inp, "-o", out,
                             "--workers", workers, *extra)
        assert status == 1
        assert _summary(err)[0] == 400
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
    assert len(outputs[0].splitlines()) == 400


def test_output_to_stdout(run, tmp_path):
    inp = _write_lines(tmp_path / "in.jsonl", ['"Hello World"', '"aa"'])
    status, stdout, err = run("batch", COUNT_VOWELS_WAT, "count_vowels", "-f", inp, "-o", "-")
    assert status == 0
    assert stdout == b'{"index": 0, "output": "{\\"count\\": 3}"}\n{"index": 1, "output": "{\\"count\\": 2}"}\n'
    assert _summary(err) == (2, 0)


def test_progress_flag_plain_line_without_tqdm(run, tmp_path, monkeypatch):
    """The fallback when the optional tqdm is missing (hidden here: None in sys.modules)."""
    monkeypatch.setitem(sys.modules, "tqdm", None)
    inp = _write_lines(tmp_path / "in.jsonl", [json.dumps(t) for t in TEXTS])
    out = tmp_path / "out.jsonl"
    status, _, err = run("batch", COUNT_VOWELS_WAT, "count_vowels", "-f", inp, "-o", out,
                         "--progress", "--chunk-size", 50)
    assert status == 0
    assert "\r" in err
    assert "300/300 items, 0 errors" in err
    assert "100.0% [" in err
    # the progress line is wiped before the summary, which is a line of its own
    assert err.endswith("\n")
    assert _summary(err.rsplit("\r", 1)[-1]) == (300, 0)


def test_progress_flag_tqdm_bar_with_rate_and_eta(run, tmp_path, echo_wat):
    """With extism_fast[progress] installed (the test extra has it): tqdm's bar, rate and ETA."""
    import tqdm  # noqa: F401 - part of the `test` extra; its absence is a failure here

    lines = [json.dumps("ok")] * 150 + [json.dumps("x-fails")] * 2
    inp = _write_lines(tmp_path / "in.jsonl", lines)
    status, _, err = run("batch", echo_wat, "echo_unless_x", "-f", inp, "-o", tmp_path / "out.jsonl",
                         "--progress", "--chunk-size", 50)
    assert status == 1
    final = [part for part in err.split("\r") if "152/152" in part]
    assert final, err
    assert re.search(r"100%\|.*\| 152/152 \[\d\d:\d\d<\d\d:\d\d, [\d.]+items/s, 2 errors\]", final[-1]), final[-1]
    assert err.endswith("\n")
    assert _summary(err.rsplit("\r", 1)[-1]) == (152, 2)


def test_official_flags_reach_every_pool_instance(run, tmp_path, wasm_path):
    """batch takes the plugin options of call, the official CLI's flags included (--fuel here)."""
    inp = _write_lines(tmp_path / "in.jsonl", ['"a"', '"b"'])
    out = tmp_path / "out.jsonl"
    status, _, _ = run("batch", wasm_path("misc"), "forever", "-f", inp, "-o", out, "--workers", "2",
                       "--fuel", "10000")
    assert status == 1
    assert [r["type"] for r in _read_results(out)] == ["FuelExhaustedError"] * 2


# ---------------------------------------------------------------------------------------------
# Failures before any item runs: one stderr line, exit 1, no output file
# ---------------------------------------------------------------------------------------------


def _one_error_line(err: str, *needles: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, f"expected one stderr line, got {lines!r}"
    line = lines[0]
    assert line.startswith("extism-fast: error: "), line
    for needle in needles:
        assert needle in line, line
    return line


def test_missing_input_file(run, tmp_path):
    out = tmp_path / "out.jsonl"
    status, stdout, err = run("batch", COUNT_VOWELS_WAT, "count_vowels",
                              "--input-file", tmp_path / "none.jsonl", "--output", out)
    assert (status, stdout) == (1, b"")
    _one_error_line(err, "none.jsonl", "No such file")
    assert not out.exists()


def test_missing_plugin(run, tmp_path):
    inp = _write_lines(tmp_path / "in.jsonl", ['"a"'])
    out = tmp_path / "out.jsonl"
    status, _, err = run("batch", tmp_path / "nope.wasm", "f", "-f", inp, "-o", out)
    assert status == 1
    _one_error_line(err, "nope.wasm", "no such file")
    assert not out.exists()


def test_unknown_function(run, tmp_path):
    inp = _write_lines(tmp_path / "in.jsonl", ['"a"'])
    out = tmp_path / "out.jsonl"
    status, _, err = run("batch", COUNT_VOWELS_WAT, "count_consonants", "-f", inp, "-o", out)
    assert status == 1
    _one_error_line(err, "count_consonants")
    assert not out.exists()


def test_unwritable_output(run, tmp_path):
    inp = _write_lines(tmp_path / "in.jsonl", ['"a"'])
    status, _, err = run("batch", COUNT_VOWELS_WAT, "count_vowels", "-f", inp,
                         "-o", tmp_path / "no" / "dir" / "out.jsonl")
    assert status == 1
    _one_error_line(err, "cannot write output file")


@pytest.mark.parametrize("how", ["same path", "other spelling", "through a missing directory", "hard link",
                                 "symbolic link", "stdin"])
def test_output_naming_the_input_is_refused(run, tmp_path, monkeypatch, how):
    """Before anything is opened for writing: the inputs stay as they were, no output is made."""
    lines = [json.dumps(t) for t in TEXTS[:20]]
    inp = _write_lines(tmp_path / "in.jsonl", lines)
    before = inp.read_bytes()
    source = inp
    if how == "same path":
        out = inp
    elif how == "other spelling":
        out = f"{tmp_path}/./in.jsonl"
    elif how == "through a missing directory":
        out = f"{tmp_path}/missing/../in.jsonl"
    elif how == "hard link":
        out = tmp_path / "link.jsonl"
        out.hardlink_to(inp)
    elif how == "symbolic link":
        out = tmp_path / "link.jsonl"
        out.symlink_to(inp)
    else:
        monkeypatch.setattr(sys, "stdin", open(inp, encoding="utf-8"))
        source, out = "-", inp
    status, stdout, err = run("batch", COUNT_VOWELS_WAT, "count_vowels", "-f", source, "-o", out)
    if how == "stdin":
        sys.stdin.close()
    assert (status, stdout) == (2, b"")
    _one_error_line(err, "--output", "would destroy the inputs", "choose another output file")
    assert inp.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["in.jsonl"] + (["link.jsonl"] if "link" in how else []))


def _fail_third_chunk(monkeypatch):
    """Make the run fail at its third chunk, as a lost worker or a full disk would, part-way."""
    from extism_fast.cli import batch_engine

    real, seen = batch_engine.run_chunk, []

    def run_chunk(pool, function, items):
        seen.append(len(items))
        if len(seen) == 3:
            raise extism_fast.Error("the worker running this chunk was lost")
        return real(pool, function, items)
    monkeypatch.setattr(batch_engine, "run_chunk", run_chunk)


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_a_run_that_stops_part_way_leaves_only_a_partial_file(run, tmp_path, monkeypatch, suffix):
    if suffix == ".parquet":
        pq = pytest.importorskip("pyarrow.parquet")
    inp = _write_lines(tmp_path / "in.jsonl", [json.dumps(t) for t in TEXTS])
    out = tmp_path / f"out{suffix}"
    out.write_bytes(b"the previous run's results")
    _fail_third_chunk(monkeypatch)
    status, _, err = run("batch", COUNT_VOWELS_WAT, "count_vowels", "-f", inp, "-o", out, "--chunk-size", 50)
    assert status == 1
    lines = err.splitlines()
    assert lines == [f"extism-fast: the run stopped part-way: the results written so far are in '{out}.partial'",
                     "extism-fast: error: the worker running this chunk was lost"]
    assert out.read_bytes() == b"the previous run's results"  # nothing passed off as complete
    partial = tmp_path / f"out{suffix}.partial"
    expected = [_vowels(t.encode()) for t in TEXTS[:100]]
    if suffix == ".parquet":
        assert pq.read_table(partial).column("output").to_pylist() == expected
    else:
        assert [r["output"].encode() for r in _read_results(partial)] == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", f"out{suffix}", f"out{suffix}.partial"]
    monkeypatch.undo()
    # A complete run replaces the output (and leaves no temporary file).
    monkeypatch.setattr(sys, "stdin", FakeTTY())
    assert run("batch", COUNT_VOWELS_WAT, "count_vowels", "-f", inp, "-o", out, "--chunk-size", 50)[0] == 0
    if suffix == ".parquet":
        assert pq.read_table(out).column("output").to_pylist() == [_vowels(t.encode()) for t in TEXTS]
    else:
        assert len(_read_results(out)) == len(TEXTS)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", f"out{suffix}", f"out{suffix}.partial"]


def test_an_output_over_the_file_size_limit_is_left_partial(tmp_path):
    """A real write failure part-way (EFBIG under RLIMIT_FSIZE, SIGXFSZ ignored), in a subprocess."""
    import resource
    import signal

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, resource.RLIM_INFINITY))

    inp = _write_lines(tmp_path / "in.jsonl", [json.dumps(t) for t in TEXTS * 10])
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "EXTISM_FAST_CACHE": "0"}
    proc = subprocess.run([sys.executable, "-m", "extism_fast", "batch", COUNT_VOWELS_WAT, "count_vowels",
                           "-f", str(inp), "-o", str(tmp_path / "out.jsonl"), "--chunk-size", "100"],
                          capture_output=True, text=True, env=env, preexec_fn=limit, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "the run stopped part-way" in proc.stderr and "File too large" in proc.stderr
    assert not (tmp_path / "out.jsonl").exists()
    assert 0 < (tmp_path / "out.jsonl.partial").stat().st_size <= 20_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "out.jsonl.partial"]


def test_output_through_a_symbolic_link_and_to_a_device(run, tmp_path):
    inp = _write_lines(tmp_path / "in.jsonl", ['"aa"'])
    real = tmp_path / "real.jsonl"
    real.write_text("old\n")
    (tmp_path / "link.jsonl").symlink_to(real)
    assert run("batch", COUNT_VOWELS_WAT, "count_vowels", "-f", inp, "-o", tmp_path / "link.jsonl")[0] == 0
    assert (tmp_path / "link.jsonl").is_symlink()  # written through, not replaced
    assert _read_results(real) == [{"index": 0, "output": '{"count": 2}'}]
    assert run("batch", COUNT_VOWELS_WAT, "count_vowels", "-f", inp, "-o", "/dev/null")[0] == 0


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["batch", COUNT_VOWELS_WAT, "count_vowels", "-o", "x"], "--input-file"),
        (["batch", COUNT_VOWELS_WAT, "count_vowels", "-f", "x"], "--output"),
        (["batch", COUNT_VOWELS_WAT, "count_vowels", "-f", "x", "-o", "y", "--workers", "0"], "--workers"),
        (["batch", COUNT_VOWELS_WAT, "count_vowels", "-f", "x", "-o", "y", "--chunk-size", "a"], "--chunk-size"),
        (["batch", COUNT_VOWELS_WAT, "count_vowels", "-f", "x", "-o", "y", "-i", "z"], "-i"),
        (["batch", COUNT_VOWELS_WAT], "FUNCTION"),
    ],
)
def test_usage_errors_exit_2(run, argv, needle):
    status, out, err = run(*argv)
    assert (status, out) == (2, b"")
    _one_error_line(err, needle)


def test_help(run):
    status, out, _ = run("batch", "--help")
    assert status == 0
    for flag in ("--input-file", "--output", "--workers", "--chunk-size", "--progress", "--wasi",
                 "--config", "--allow-path", "--allow-host", "--timeout", "--max-pages",
                 "--manifest", "--log-level", "base64", "output_base64"):
        assert flag.encode() in out


def test_shares_the_call_options(tmp_path):
    args = build_parser().parse_args([
        "batch", COUNT_VOWELS_WAT, "count_vowels", "-f", "in", "-o", "out", "-c", "a=1",
        "--allow-host", "example.com", "--timeout", "1500", "--max-pages", "16",
    ])
    m = build_manifest(args)
    assert m.wasm == [extism_fast.WasmFile(COUNT_VOWELS_WAT)]
    assert m.config == {"a": "1"}
    assert m.allowed_hosts == ["example.com"]
    assert m.timeout_ms == 1500
    assert m.memory.max_pages == 16


def test_timeout_applies_per_item(run, tmp_path, wasm_path):
    inp = _write_lines(tmp_path / "in.jsonl", ['""', '""'])
    out = tmp_path / "out.jsonl"
    status, _, err = run("batch", wasm_path("misc"), "forever", "-f", inp, "-o", out, "--timeout", 20)
    assert status == 1
    results = _read_results(out)
    assert [r["type"] for r in results] == ["TimeoutError", "TimeoutError"]
    assert "timed out after 20 ms" in results[0]["error"]


# ---------------------------------------------------------------------------------------------
# Pieces
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line, expected",
    [
        (b'"hi"\n', b"hi"),
        (b'"\\u00e9"', "é".encode()),
        ('"é"'.encode(), "é".encode()),
        (b'{"text": "t"}', b"t"),
        (b'{"base64": "AP8="}', b"\x00\xff"),
        (b'{"base64": ""}', b""),
        (b'  "spaces"  \r\n', b"spaces"),
    ],
)
def test_parse_item(line, expected):
    assert parse_item(line) == expected


@pytest.mark.parametrize("line", [b"", b"\n", b"[1]", b"{}", b'{"bytes": "x"}', b'{"base64": "AP8"}',
                                  b"true", b"1.5", b'"a" "b"'])
def test_parse_item_rejects(line):
    with pytest.raises(InputError):
        parse_item(line)


def test_format_result():
    assert format_result(3, b"ok") == '{"index": 3, "output": "ok"}'
    assert format_result(0, "☃".encode()) == '{"index": 0, "output": "☃"}'
    assert format_result(1, b"\xff") == '{"index": 1, "output_base64": "/w=="}'
    assert format_result(2, memoryview(b"mv")) == '{"index": 2, "output": "mv"}'
    line = format_result(4, extism_fast.PluginError('bad "thing"\nline 2'))
    assert json.loads(line) == {"index": 4, "error": 'bad "thing"\nline 2', "type": "PluginError"}


def test_count_lines(tmp_path):
    for data, n in [(b"", 0), (b"a", 1), (b"a\n", 1), (b"a\nb", 2), (b"\n\n", 2)]:
        path = tmp_path / "f"
        path.write_bytes(data)
        with open(path, "rb") as f:
            assert count_lines(f) == n
            assert f.tell() == 0


def test_progress_line():
    stream = io.StringIO()
    p = Progress(stream, 200)
    assert "50.0% [############............] 100/200 items, 3 errors" in p.line(100, 3)
    p.update(10, 0)
    p.clear()
    assert stream.getvalue().endswith("\r")
    assert Progress(stream, None).line(5, 1).startswith("5 items, 1 errors, ")


# ---------------------------------------------------------------------------------------------
# A real subprocess
# ---------------------------------------------------------------------------------------------


def test_subprocess_stdin_to_stdout():
    lines = "".join(json.dumps(f"{'a' * i}b") + "\n" for i in range(50)).encode()
    proc = subprocess.run(
        [sys.executable, "-m", "extism_fast", "batch", "examples/count_vowels.wat", "count_vowels",
         "--input-file", "-", "--output", "-", "--workers", "2"],
        input=lines, capture_output=True, cwd=REPO_ROOT, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert [json.loads(x) for x in proc.stdout.splitlines()] == [
        {"index": i, "output": f'{{"count": {i}}}'} for i in range(50)
    ]
    err = proc.stderr.decode()
    assert "Traceback" not in err
    assert _summary(err) == (50, 0)


@pytest.mark.parametrize("encoding", ["ascii", "latin-1"])
def test_stdout_output_is_utf8_whatever_the_locale(echo_wat, encoding):
    """JSON Lines are UTF-8: a stdout whose encoding cannot hold the output text (a C or Latin-1
    locale, PYTHONIOENCODING) used to stop the run with UnicodeEncodeError."""
    texts = ["héllo ☃", "plain", "\u2028 \U0001f600"]
    proc = subprocess.run(
        [sys.executable, "-m", "extism_fast", "batch", str(echo_wat), "echo_unless_x", "-f", "-", "-o", "-", "-q"],
        input="".join(json.dumps(t) + "\n" for t in texts).encode(), capture_output=True, cwd=REPO_ROOT,
        timeout=60, env={**os.environ, "PYTHONIOENCODING": encoding},
    )
    assert proc.returncode == 0, proc.stderr
    assert [json.loads(line.decode("utf-8")) for line in proc.stdout.splitlines()] == [
        {"index": i, "output": t} for i, t in enumerate(texts)
    ]


@pytest.mark.parametrize("to_stdout", [False, True])
def test_an_error_text_with_a_lone_surrogate_is_a_valid_json_line(run, tmp_path, monkeypatch, to_stdout):
    """Only an error text can hold a lone surrogate (a host exception's message, say); it is
    written as its JSON escape instead of failing the UTF-8 output."""
    from extism_fast.cli import batch_engine

    def run_chunk(pool, function, items):
        return [extism_fast.PluginError("bad \udc80 byte") for _ in items]

    monkeypatch.setattr(batch_engine, "run_chunk", run_chunk)
    inp = _write_lines(tmp_path / "in.jsonl", ['"a"'])
    out = tmp_path / "out.jsonl"
    status, stdout, err = run("batch", COUNT_VOWELS_WAT, "count_vowels", "-f", inp, "-o", "-" if to_stdout else out)
    assert status == 1, err
    line = stdout if to_stdout else out.read_bytes()
    assert json.loads(line) == {"index": 0, "error": "bad \udc80 byte", "type": "PluginError"}
    assert _summary(err) == (1, 1)


# ---- --lines, --quiet, --no-progress ----


def test_non_json_lines_name_the_accepted_forms_and_lines_mode(run, tmp_path):
    inp = tmp_path / "in.txt"
    inp.write_bytes(b"Hello World\n\n[1]\r\nabc")
    out = tmp_path / "out.jsonl"
    status, _, err = run("batch", COUNT_VOWELS_WAT, "count_vowels", "-f", inp, "-o", out)
    assert (status, _summary(err)) == (1, (4, 4))
    errors = [r["error"] for r in _read_results(out)]
    for message in errors:
        assert "for lines of raw text, pass --lines" in message
    assert 'a line is a JSON string, {"text": "..."} or {"base64": "..."}' in errors[0]
    # --lines: each line's bytes without its newline (\n or \r\n) is the input; a blank line is b"".
    status, _, err = run("batch", COUNT_VOWELS_WAT, "count_vowels", "-f", inp, "-o", out, "--lines")
    assert (status, _summary(err)) == (0, (4, 0))
    assert [r["output"] for r in _read_results(out)] == [
        _vowels(t).decode() for t in (b"Hello World", b"", b"[1]", b"abc")]


def test_raw_item():
    from extism_fast.cli.batch_engine import raw_item

    assert [raw_item(b) for b in (b"a\n", b"a\r\n", b"a", b"\n", b"a\r", b'"x"\n')] == [
        b"a", b"a", b"a", b"", b"a\r", b'"x"']


def test_lines_is_for_json_lines_only(run, tmp_path):
    status, _, err = run("batch", COUNT_VOWELS_WAT, "count_vowels", "-f", tmp_path / "in.parquet",
                         "-o", "-", "--lines")
    assert status == 2
    _one_error_line(err, "--lines applies to a JSON Lines --input-file, not to Parquet")


@pytest.mark.parametrize("flags, progress, summary", [
    ([], True, True),  # stderr a terminal: the bar and the summary
    (["--no-progress"], False, True),
    (["--quiet"], False, False),
    (["-q"], False, False),
])
def test_quiet_and_no_progress(run, tmp_path, monkeypatch, flags, progress, summary):
    from extism_fast.cli import batch as cli_batch

    monkeypatch.setitem(sys.modules, "tqdm", None)  # the plain line: "\r" marks it
    monkeypatch.setattr(cli_batch, "_isatty", lambda stream: True)
    inp = _write_lines(tmp_path / "in.jsonl", [json.dumps(t) for t in TEXTS])
    out = tmp_path / "out.jsonl"
    status, _, err = run("batch", COUNT_VOWELS_WAT, "count_vowels", "-f", inp, "-o", out,
                         "--chunk-size", 50, *flags)
    assert status == 0 and len(_read_results(out)) == len(TEXTS)
    assert ("\r" in err) is progress
    assert bool(err.strip()) is summary
    if summary:
        assert _summary(err.rsplit("\r", 1)[-1]) == (len(TEXTS), 0)


def test_quiet_still_reports_errors(run, tmp_path):
    status, _, err = run("batch", COUNT_VOWELS_WAT, "count_vowels", "-f", tmp_path / "missing.jsonl",
                         "-o", "-", "--quiet")
    assert status == 1
    _one_error_line(err, "cannot read input file")


def test_quiet_and_progress_conflict(run, tmp_path):
    status, _, err = run("batch", COUNT_VOWELS_WAT, "count_vowels", "-f", "-", "-o", "-", "-q", "--progress")
    assert status == 2
    _one_error_line(err, "not allowed with argument -q/--quiet")


def test_readme_lines_quiet_example_runs_as_written(tmp_path):
    """README's `batch --lines --quiet` block, run by the shell from the repository root."""
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    blocks = [b for b in re.findall(r"```sh\n(.*?)```", readme, re.S) if "--lines --quiet" in b]
    assert len(blocks) == 1
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(sys.executable)  # the interpreter under test
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    proc = subprocess.run(["bash", "-e", "-c", blocks[0]], cwd=REPO_ROOT, env=env, capture_output=True,
                          timeout=60)
    assert (proc.returncode, proc.stderr) == (0, b"")
    assert [r["output"] for r in map(json.loads, proc.stdout.splitlines())] == [
        '{"count": 3}', '{"count": 0}', '{"count": 2}']
