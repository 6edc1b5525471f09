"""The fuzz targets of ``fuzz/`` (atheris), run for a bounded time, and the regressions they found.

Each target runs ``EXTISM_FAST_FUZZ_SECONDS`` seconds (default 10) in its own process, started
with ``python -m fuzz TARGET``; they all run at the same time, so the suite grows by about that
much, not once per target. Longer runs on demand: ``python -m fuzz kernel --seconds 600``.
A run fails on any finding (an unexpected exception, a broken promise the target checks, or the
process dying); the crashing input is saved in the test's tmp directory and named in the failure.

The regressions are extism_fast behaviour only: the official SDK's ``parse=None`` buffer is a view
that later calls overwrite, so it makes no promise to keep.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import REPO_ROOT

if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import extism_fast as ef  # noqa: E402
from fuzz import TARGETS  # noqa: E402

SECONDS = int(os.environ.get("EXTISM_FAST_FUZZ_SECONDS", "10"))


@pytest.fixture(scope="module")
def fuzz_runs(tmp_path_factory):
    """Start every target at once; target -> (process, its tmp directory)."""
    pytest.importorskip("atheris", reason="the fuzz targets need atheris (pip install -e '.[test]')")
    runs = {}
    for target in TARGETS:
        tmp = tmp_path_factory.mktemp(f"fuzz_{target}")
        env = {**os.environ, "TMPDIR": str(tmp)}
        log = open(tmp / "log.txt", "wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "fuzz", target, "--seconds", str(SECONDS), "--artifacts", str(tmp)],
            cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        runs[target] = (proc, tmp)
    yield runs
    for proc, _ in runs.values():
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("target", TARGETS)
def test_fuzz_target_finds_nothing(fuzz_runs, target):
    proc, tmp = fuzz_runs[target]
    try:
        rc = proc.wait(timeout=SECONDS + 180)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail(f"fuzz target {target} did not stop within {SECONDS + 180} s")
    log = (tmp / "log.txt").read_text(errors="replace")
    crashes = sorted(p.name for p in tmp.iterdir() if p.name.startswith(("crash-", "timeout-", "oom-")))
    assert rc == 0 and not crashes, (
        f"fuzz target {target} exited {rc}; inputs saved: {crashes} in {tmp}; "
        f"reproduce with: python -m fuzz {target} --replay FILE\n" + log[-4000:])
    assert "Done " in log, log[-2000:]  # libFuzzer's closing line: it really ran


# --------------------------------------------------------------------------------------------------
# Regressions found by the kernel target
# --------------------------------------------------------------------------------------------------

KEEP_PLUGIN = """
(module
  (import "extism:host/env" "input_offset" (func $input_offset (result i64)))
  (import "extism:host/env" "input_length" (func $input_length (result i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "extism:host/env" "load_u64" (func $load_u64 (param i64) (result i64)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "reset" (func $reset))
  (memory (export "memory") 1)
  (func (export "echo") (result i32)
    (call $output_set (call $input_offset) (call $input_length)) (i32.const 0))
  ;; a store into the bytes of an earlier call's output, below every block of this call
  (func (export "poke") (result i32)
    (call $store_u64 (i64.const 64) (i64.const 0x5858585858585858)) (i32.const 0))
  ;; the plugin's own reset, then a new block and a store into it
  (func (export "reset_alloc") (result i32) (local $o i64)
    (call $reset)
    (local.set $o (call $alloc (i64.const 16)))
    (call $store_u64 (local.get $o) (i64.const 0x5959595959595959)) (i32.const 0))
  ;; loading the kept bytes is fine: output the u64 at 64
  (func (export "peek") (result i32) (local $o i64)
    (local.set $o (call $alloc (i64.const 8)))
    (call $store_u64 (local.get $o) (call $load_u64 (i64.const 64)))
    (call $output_set (local.get $o) (i64.const 8)) (i32.const 0))
)
"""


@pytest.mark.parametrize("strict", [False, True])
def test_reset_in_plugin_keeps_exposed_outputs(strict):
    """The plugin's `reset` starts allocating at offset 64 again: its next block (and stores into
    it) must not change a view of an earlier call's output."""
    with ef.Plugin(KEEP_PLUGIN, strict=strict) as plugin:
        kept = memoryview(plugin.call("echo", b"keep-these-bytes", parse=None))
        plugin.call("reset_alloc", b"abc")
        assert bytes(kept) == b"keep-these-bytes"
        kept.release()
        assert plugin.call("echo", b"next") == b"next"


@pytest.mark.parametrize("strict", [False, True])
def test_stores_over_an_earlier_output_never_change_a_view_of_it(strict):
    """A store at offset 64 reaches where an earlier call's output was; a memoryview of that output
    (a view of a copy) does not change."""
    with ef.Plugin(KEEP_PLUGIN, strict=strict) as plugin:
        kept = memoryview(plugin.call("echo", b"keep-these-bytes", parse=None))
        assert plugin.call("poke", b"abc") == b""
        assert bytes(kept) == b"keep-these-bytes"
        kept.release()


def test_kernel_target_seeds_pass():
    """The kernel target's seeds (two of them are the programs behind the regressions above) keep
    every promise of fuzz/kernel.py on a default and a strict plugin."""
    from fuzz import kernel

    for strict in (False, True):
        with kernel.make_plugin(strict) as plugin:
            for seed in kernel.seeds():
                kernel.run_one(plugin, seed)


def test_lifetimes_target_seeds_pass():
    """The lifetimes target's seeds: views kept across batches of `_start` (pooled and on-demand),
    failed start functions, closes and writes, output buffers indexed while their plugin closes.
    Before store_drop handed dropped stores to the views, most of them found a changed view."""
    from fuzz import lifetimes

    for seed in lifetimes.seeds():
        lifetimes.test_one_input(seed)
