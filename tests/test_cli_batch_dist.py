"""``extism-fast batch`` with Parquet input/output and on Dask (--dask-local) (extism_fast only:
the official `extism call` has no batch command)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pa = pytest.importorskip("pyarrow", reason="the arrow extra (part of the test extra) is not installed")
import pyarrow.parquet as pq  # noqa: E402

import extism_fast as ef  # noqa: E402
from conftest import REPO_ROOT  # noqa: E402
from test_cli_batch import ECHO_UNLESS_X_WAT  # noqa: E402


def batch(tmp_path, *args):
    plugin = tmp_path / "echo.wat"
    plugin.write_text(ECHO_UNLESS_X_WAT)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-m", "extism_fast", "batch", str(plugin), "echo_unless_x", *args],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)


def test_parquet_round_trip_on_local_dask_cluster(tmp_path):
    pytest.importorskip("distributed")
    texts = [f"item {i}" for i in range(5000)]
    texts[1234] = "x fails"
    texts[4321] = None
    pq.write_table(pa.table({"id": range(5000), "text": texts}), tmp_path / "in.parquet")
    proc = batch(tmp_path, "--input-file", "in.parquet", "--column", "text", "--output", "out.parquet",
                 "--dask-local", "2", "--chunk-size", "500", "--progress")
    assert proc.returncode == 1, proc.stderr  # two items failed
    summary = proc.stderr.splitlines()[-1]
    assert summary.startswith("5000 items, 2 errors, ") and summary.endswith(" items/s")
    out = pq.read_table(tmp_path / "out.parquet").to_pydict()
    assert out["index"] == list(range(5000))  # each item once, in order
    with ef.Plugin(ECHO_UNLESS_X_WAT) as plugin:
        expected = plugin.call_many("echo_unless_x", [t or "" for t in texts], return_exceptions=True)
    for i in range(5000):
        if i in (1234, 4321):
            continue
        assert out["output"][i] == expected[i]
    assert out["output"][1234] is None and out["type"][1234] == "PluginError"
    assert out["error"][1234] == "input starts with x"
    assert out["type"][4321] == "InputError" and out["error"][4321] == "null value in column 'text'"


def test_parquet_binary_in_json_lines_out_locally(tmp_path):
    pq.write_table(pa.table({"data": [b"\xff\x00", b"ok"]}), tmp_path / "in.pq")
    proc = batch(tmp_path, "--input-file", "in.pq", "--column", "data", "--output", "-", "--workers", "1")
    assert proc.returncode == 0, proc.stderr
    assert [json.loads(line) for line in proc.stdout.splitlines()] == [
        {"index": 0, "output_base64": "/wA="}, {"index": 1, "output": "ok"}]


def test_json_lines_in_parquet_out_locally(tmp_path):
    (tmp_path / "in.jsonl").write_text('"a"\n"xb"\n{"base64": "/w=="}\n')
    proc = batch(tmp_path, "--input-file", "in.jsonl", "--output", "out.parquet")
    assert proc.returncode == 1, proc.stderr
    assert pq.read_table(tmp_path / "out.parquet").to_pylist() == [
        {"index": 0, "output": b"a", "error": None, "type": None},
        {"index": 1, "output": None, "error": "input starts with x", "type": "PluginError"},
        {"index": 2, "output": b"\xff", "error": None, "type": None}]


def test_parquet_bad_column_and_column_without_parquet(tmp_path):
    pq.write_table(pa.table({"n": [1, 2], "text": ["a", "b"]}), tmp_path / "in.parquet")
    proc = batch(tmp_path, "--input-file", "in.parquet", "--column", "body", "--output", "out.parquet")
    assert proc.returncode == 1
    assert proc.stderr == ("extism-fast: error: Parquet input 'in.parquet' has no column 'body' "
                           "(columns: n, text)\n")
    assert not (tmp_path / "out.parquet").exists()
    proc = batch(tmp_path, "--input-file", "in.parquet", "--column", "n", "--output", "out.parquet")
    assert proc.returncode == 1 and "Parquet column 'n' is int64, not a string or binary column" in proc.stderr
    (tmp_path / "in.jsonl").write_text('"a"\n')
    proc = batch(tmp_path, "--input-file", "in.jsonl", "--column", "text", "--output", "-")
    assert proc.returncode == 2
    assert proc.stderr == "extism-fast: error: --column applies to a Parquet --input-file (*.parquet) only\n"
    proc = batch(tmp_path, "--input-file", "in.jsonl", "--output", "-", "--dask-local", "2",
                 "--dask-scheduler", "tcp://127.0.0.1:1")
    assert proc.returncode == 2 and "not allowed with argument" in proc.stderr


def test_unknown_dask_scheduler_is_one_error_line(tmp_path):
    pytest.importorskip("distributed")
    (tmp_path / "in.jsonl").write_text('"a"\n')
    proc = batch(tmp_path, "--input-file", "in.jsonl", "--output", "out.jsonl", "--dask-scheduler", "nope://x:1")
    assert proc.returncode == 1
    assert proc.stderr.startswith("extism-fast: error: cannot connect to the Dask scheduler at nope://x:1: "
                                  "unknown address scheme 'nope'")
    assert not (tmp_path / "out.jsonl").exists()


def test_parquet_dictionary_column_is_decoded(tmp_path):
    """A dictionary-encoded string column (a table written from pa.array(...).dictionary_encode(),
    read back as dictionary<values=string>) is taken like a plain one, nulls as InputErrors."""
    texts = ["ab", "xy", None, "ab", "cd"] * 3
    pq.write_table(pa.table({"text": pa.array(texts).dictionary_encode()}), tmp_path / "in.parquet",
                   use_dictionary=True)
    assert pa.types.is_dictionary(pq.ParquetFile(tmp_path / "in.parquet").schema_arrow.field("text").type)
    proc = batch(tmp_path, "--input-file", "in.parquet", "--output", "out.parquet", "--chunk-size", "4")
    assert proc.returncode == 1, proc.stderr  # the x items and the nulls failed
    assert proc.stderr.splitlines()[-1].startswith("15 items, 6 errors, ")
    rows = pq.read_table(tmp_path / "out.parquet").to_pylist()
    assert [row["output"] for row in rows] == [t.encode() if t and t[0] != "x" else None for t in texts]
    assert [row["type"] for row in rows][:3] == [None, "PluginError", "InputError"]
