"""bench/as_plugins.py: the bench rows on the AssemblyScript PDK's count_vowels (their timing runs
in `python -m bench`, never in the tests)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import as_plugins as bench_as  # noqa: E402
from bench import compare  # noqa: E402


@pytest.fixture
def fresh_build_cache():
    bench_as.as_wasm.cache_clear()
    yield
    bench_as.as_wasm.cache_clear()


def test_the_rows_pair_default_and_opt_in_and_both_sdks_agree(as_plugins, monkeypatch):
    monkeypatch.setattr(bench_as, "as_wasm", lambda name="count_vowels": as_plugins[name])
    rows = bench_as.as_rows()
    opt_in = ", interruptible=False (opt-in)"
    kinds = ["small call 14 B", "1 KiB", "call_many, 10,000 small inputs (extism: loop)",
             "instance from CompiledPlugin + first call"]
    assert [r.name for r in rows] == [f"{k}, {bench_as.AS_LABEL}{o}" for k in kinds for o in ("", opt_in)]
    for row in rows:
        compare.verify(row)  # raises SystemExit when the SDKs' outputs differ
    assert rows[0].check() == (b'{"count": 3, "config": "bench", "a": "this is var a"}',) * 2


def test_without_node_the_rows_are_left_out_with_a_note(fresh_build_cache, monkeypatch, capsys):
    import conftest

    monkeypatch.setattr(conftest.shutil, "which", lambda name: None)
    assert bench_as.as_rows() == []
    assert "bench: AssemblyScript rows skipped: node not found" in capsys.readouterr().err
