"""Smoke test of the soak script bench/soak.py with tiny counts (the full soak is run by hand:
``python -m bench.soak``; its figures are in README, Performance)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
PHASES = ("calls", "host_calls", "instances", "trap", "plugin_error", "host_function_error",
          "memory_limit", "capability_error", "timeouts")
TINY = ["--calls", "2e3", "--host-calls", "200", "--instances", "200", "--failures", "200",
        "--timeouts", "20"]


@pytest.fixture
def soak(monkeypatch):
    """The bench.soak module. extism_fast stays the one this test run imported (maybe a sanitized
    copy, see test_sanitizers.py): it is imported already when the repository joins sys.path."""
    import extism_fast  # noqa: F401

    monkeypatch.syspath_prepend(str(REPO_ROOT))
    import bench.soak

    return bench.soak


def test_soak_runs_every_phase_and_passes():
    # `python -m bench.soak` in a process of its own (its RSS is the soak's alone). sys.path gets
    # the repository last, so extism_fast is whichever one this test run imports.
    code = ("import runpy, sys; sys.path.append(sys.argv.pop(1)); "
            "runpy.run_module('bench.soak', run_name='__main__', alter_sys=True)")
    proc = subprocess.run([sys.executable, "-c", code, str(REPO_ROOT), *TINY], capture_output=True,
                          text=True, timeout=120, check=False, cwd=os.getcwd())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    for phase in PHASES:
        (line,) = [x for x in lines if x.startswith(phase + " ")]
        assert " ok" in line and "MiB" in line, line
    assert lines[-1] == "soak: ok"
    assert "Traceback" not in proc.stderr


def test_rss_growth_beyond_the_tolerance_fails(soak, capsys):
    readings = iter(range(0, 10 << 30, 5 << 20))  # each reading 5 MiB above the last
    status = soak.main(["--calls", "20", "--host-calls", "0", "--instances", "0", "--failures", "0",
                        "--timeouts", "0", "--tolerance-mib", "4"], rss=lambda: next(readings))
    out = capsys.readouterr().out
    assert status == 1
    assert "calls" in out and "(+5.0)  GREW TOO MUCH" in out
    assert "soak: FAILED: RSS grew by more than 4 MiB in: calls" in out


def test_rss_growth_within_the_tolerance_passes(soak, capsys):
    readings = iter(range(0, 10 << 30, 5 << 20))
    status = soak.main(["--calls", "20", "--host-calls", "0", "--instances", "0", "--failures", "0",
                        "--timeouts", "0", "--tolerance-mib", "6"], rss=lambda: next(readings))
    assert status == 0
    assert capsys.readouterr().out.splitlines()[-1] == "soak: ok"


@pytest.mark.parametrize("option, bad", [("--calls", "-1"), ("--calls", "1.5"), ("--timeouts", "many"),
                                         ("--failures", "inf"), ("--instances", "nan"),
                                         ("--tolerance-mib", "-1"), ("--tolerance-mib", "nan")])
def test_bad_option_values_are_refused(soak, option, bad, capsys):
    with pytest.raises(SystemExit) as info:
        soak.main([option, bad])
    assert info.value.code == 2
    assert f"argument {option}: not a non-negative" in capsys.readouterr().err
