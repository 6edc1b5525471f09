"""Ctrl-C stops a running call (README, "Stopping a call"; kernel_c/sigint.h).

Each test runs a program in a subprocess, waits until its plugin call is running (the plugin logs
"started!" from inside the call), sends a real SIGINT with os.kill and checks what the program
saw: KeyboardInterrupt within ~2 s from Plugin.call, call_many, iter_call, PluginPool.call and
PluginPool.map, the plugin (or pool) working afterwards; the CLI exits 130 with one line. SIG_IGN
and the program's own SIGINT handler are respected, a call on another thread is not stopped, and
a non-interruptible plugin's call runs to its end before KeyboardInterrupt.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import extism_fast as ef
from conftest import PLUGINS_DIR

LOOP_WAT = str(PLUGINS_DIR / "loop.wat")
# Children import the extism_fast this process imported (the sanitized copy under test_sanitizers.py).
PACKAGE_ROOT = Path(ef.__file__).resolve().parent.parent
STARTED = "started!"
STOPPED_WITHIN = 2.0  # seconds from the SIGINT to the program's report
# After the marker: the plugin's log call has returned to wasm (a SIGINT while Python runs the
# log record's handler on the main thread raises there, as in any Python code).
SETTLE = 0.2

# The program: `mode` says what it calls; it reports one JSON line (the outcome) and exits 0.
PROGRAM = r'''
import json, signal, sys, time

mode, loop_wat = sys.argv[1:3]
handled = []
if mode == "ignored":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
elif mode == "raising_handler":  # set before extism_fast is imported, own_handler's after
    def stop(signum, frame):
        handled.append(signum)
        raise RuntimeError("stopped by my handler")
    signal.signal(signal.SIGINT, stop)

import extism_fast as ef

threading_at_import = "threading" in sys.modules  # not in a clean interpreter (python -S): imported now
import logging, threading

if mode == "own_handler":  # replaces extism_fast's SIGINT handler: the call's first tick puts it back
    signal.signal(signal.SIGINT, lambda signum, frame: handled.append(signum))
logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")  # the plugin's log
plugin = ef.Plugin(loop_wat, functions=[], interruptible=mode != "not_interruptible")
timed = ef.Plugin({"wasm": [{"path": loop_wat}], "timeout_ms": 1500}, functions=[])
pool = ef.PluginPool(loop_wat, size=2, functions=[])
spin = (200_000).to_bytes(8, "little")


def run():
    if mode in ("call", "own_handler", "raising_handler"):
        return plugin.call("loop")
    if mode == "call_many":
        return plugin.call_many("loop", [b""] * 3, return_exceptions=True)
    if mode == "iter_call":
        return list(plugin.iter_call("loop", [b""] * 3, return_exceptions=True))
    if mode == "short_calls":
        plugin.call_many("spin", [spin] * 10)  # compiled, warm
        print("ready", flush=True)
        return plugin.call_many("spin", [spin] * 200_000, return_exceptions=True)
    if mode == "pool_call":
        return pool.call("loop")
    if mode == "pool_map":
        return pool.map("loop", [b""] * 6, return_exceptions=True, chunk_size=1)
    if mode == "ignored":
        return timed.call("loop")
    if mode == "not_interruptible":
        return plugin.call("count", (2_000_000_000).to_bytes(8, "little"))
    if mode == "thread":
        box = {}
        done = threading.Event()
        def on_thread():
            try:
                timed.call("loop")
            except BaseException as exc:
                box["thread"] = type(exc).__name__
            done.set()
        try:  # the SIGINT may come while start() waits for the thread
            threading.Thread(target=on_thread).start()
            done.wait()
        except KeyboardInterrupt:
            box["main"] = "KeyboardInterrupt"
            done.wait()
        return box
    raise ValueError(mode)


start = time.monotonic()
try:
    outcome = {"returned": repr(run())}
except BaseException as exc:
    outcome = {"raised": type(exc).__name__, "message": str(exc)}
outcome["seconds"] = time.monotonic() - start
outcome["handled"] = handled
outcome["threading_at_import"] = threading_at_import
outcome["finished"] = plugin.call("finished").decode()
# Still usable: the plugin (or pool) runs the next call.
outcome["then"] = [plugin.call("ok").decode(), timed.call("ok").decode(), pool.call("ok").decode(),
                   [out.decode() for out in pool.map("ok", [b""] * 4)]]
pool.close()
print(json.dumps(outcome), flush=True)
'''

USABLE = ["ok", "ok", "ok", ["ok"] * 4]


def _default_sigint() -> None:
    """In the child before exec: SIGINT's default action, whatever the test runner's was (a
    program started with SIGINT ignored keeps ignoring it, Python included)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Child:
    """A subprocess whose stdout and stderr lines are read as they come."""

    def __init__(self, argv: list[str], paths: tuple = ()) -> None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(PACKAGE_ROOT), *paths]), PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     cwd=PACKAGE_ROOT, env=env, preexec_fn=_default_sigint)
        self.lines: queue.Queue = queue.Queue()
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        for name, stream in (("stdout", self.proc.stdout), ("stderr", self.proc.stderr)):
            threading.Thread(target=self._read, args=(name, stream), daemon=True).start()

    def _read(self, name: str, stream) -> None:
        for line in stream:
            self.lines.put((name, line.rstrip("\n")))
        self.lines.put((name, None))

    def wait_for(self, text: str, timeout: float = 60) -> None:
        """Until a line of either stream contains ``text``."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                name, line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"no {text!r} from the child within {timeout} s: {self.stdout} {self.stderr}")
            if line is None:
                self.proc.wait(10)
                pytest.fail(f"the child's {name} ended before {text!r}: {self.stdout} {self.stderr}")
            getattr(self, name).append(line)
            if text in line:
                return

    def interrupt(self) -> None:
        self.sent = time.monotonic()
        os.kill(self.proc.pid, signal.SIGINT)

    def finish(self, timeout: float = 30) -> int:
        """Wait for the exit (killing the child after ``timeout``); the lines are all read."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"the child did not exit within {timeout} s of the SIGINT: {self.stdout} {self.stderr}")
        self.exited = time.monotonic()
        ended = 0
        while ended < 2:
            name, line = self.lines.get(timeout=10)
            if line is None:
                ended += 1
            else:
                getattr(self, name).append(line)
        return self.proc.returncode


@pytest.fixture
def spawn():
    """Child(argv), killed at the end of the test if it is still running (a failed test)."""
    children = []

    def make(argv: list[str], paths: tuple = ()) -> Child:
        children.append(Child(argv, paths))
        return children[-1]

    yield make
    for child in children:
        if child.proc.poll() is None:
            child.proc.kill()
            child.proc.wait()


def _run_program(spawn, tmp_path, mode: str, marker: str = STARTED, delay: float = SETTLE, clean: bool = False):
    """Run PROGRAM in ``mode`` (``clean``: in ``python -S``, the installed packages on its path),
    SIGINT once ``marker`` is printed (and ``delay`` passed); returns its outcome, the seconds from
    the SIGINT to the outcome, and its stdout lines."""
    script = tmp_path / "program.py"
    script.write_text(PROGRAM)
    if clean:
        libraries = tuple(p for p in sys.path if os.path.basename(p) in ("site-packages", "dist-packages"))
        child = spawn([sys.executable, "-S", str(script), mode, LOOP_WAT], libraries)
    else:
        child = spawn([sys.executable, str(script), mode, LOOP_WAT])
    child.wait_for(marker)
    time.sleep(delay)
    child.interrupt()
    child.wait_for('"then"')
    reported = time.monotonic()
    assert child.finish() == 0, "\n".join(child.stdout + child.stderr)
    assert not any("Traceback" in line for line in child.stderr), child.stderr
    return json.loads(child.stdout[-1]), reported - child.sent, child.stdout


@pytest.mark.parametrize("mode", ["call", "call_many", "iter_call", "pool_call", "pool_map"])
def test_ctrl_c_stops_a_looping_call(spawn, tmp_path, mode):
    outcome, seconds, _ = _run_program(spawn, tmp_path, mode)
    assert outcome["raised"] == "KeyboardInterrupt", outcome
    assert seconds < STOPPED_WITHIN, outcome
    assert outcome["then"] == USABLE


@pytest.mark.parametrize("mode", ["call", "thread"])
def test_ctrl_c_when_threading_loads_after_the_package(spawn, tmp_path, mode):
    """In a clean interpreter the package imports without threading (tests/test_cold_start.py), so
    it finds the main thread without it; the program imports threading after: a call on the main
    thread stops at Ctrl-C, one on another thread goes on to its timeout."""
    outcome, seconds, _ = _run_program(spawn, tmp_path, mode, clean=True)
    assert outcome["threading_at_import"] is False, outcome
    if mode == "call":
        assert outcome["raised"] == "KeyboardInterrupt", outcome
        assert seconds < STOPPED_WITHIN, outcome
    else:
        assert outcome["returned"] == repr({"main": "KeyboardInterrupt", "thread": "TimeoutError"}), outcome
    assert outcome["then"] == USABLE


def test_ctrl_c_stops_a_batch_of_short_calls(spawn, tmp_path):
    """Each call is shorter than the ticker's tick, so none may be cancelled: the batch stops
    between calls (200,000 calls would run for about a minute)."""
    outcome, seconds, _ = _run_program(spawn, tmp_path, "short_calls", marker="ready", delay=0.3)
    assert outcome["raised"] == "KeyboardInterrupt", outcome
    assert seconds < STOPPED_WITHIN, outcome
    assert outcome["then"] == USABLE


def test_the_programs_own_handler_is_called(spawn, tmp_path):
    """A handler that returns: it runs once, and the call it stopped raises CancelledError."""
    outcome, seconds, _ = _run_program(spawn, tmp_path, "own_handler")
    assert outcome["handled"] == [signal.SIGINT], outcome
    assert outcome["raised"] == "CancelledError", outcome
    assert outcome["message"] == "plugin function 'loop' was cancelled"
    assert seconds < STOPPED_WITHIN and outcome["then"] == USABLE


def test_the_programs_own_handler_raises_its_exception(spawn, tmp_path):
    outcome, seconds, _ = _run_program(spawn, tmp_path, "raising_handler")
    assert outcome["handled"] == [signal.SIGINT], outcome
    assert (outcome["raised"], outcome["message"]) == ("RuntimeError", "stopped by my handler")
    assert seconds < STOPPED_WITHIN and outcome["then"] == USABLE


def test_sig_ign_is_respected(spawn, tmp_path):
    """SIGINT ignored: the call goes on to its timeout (1.5 s), as without extism_fast."""
    outcome, _, _ = _run_program(spawn, tmp_path, "ignored")
    assert outcome["raised"] == "TimeoutError", outcome
    assert outcome["seconds"] >= 1.4
    assert outcome["then"] == USABLE


def test_a_call_on_another_thread_is_not_stopped(spawn, tmp_path):
    """Python raises KeyboardInterrupt in the main thread only; the other thread's call goes on
    to its timeout."""
    outcome, _, _ = _run_program(spawn, tmp_path, "thread")
    assert outcome["returned"] == repr({"main": "KeyboardInterrupt", "thread": "TimeoutError"}), outcome
    assert outcome["seconds"] >= 1.4
    assert outcome["then"] == USABLE


def test_a_non_interruptible_call_runs_to_its_end_then_raises(spawn, tmp_path):
    """interruptible=False: nothing can stop the call; KeyboardInterrupt comes as it returns."""
    outcome, _, stdout = _run_program(spawn, tmp_path, "not_interruptible")
    assert outcome["raised"] == "KeyboardInterrupt", outcome
    assert outcome["finished"] == "yes"  # the var the call sets at its end
    assert outcome["then"] == USABLE


def _cli(spawn, *argv: str) -> Child:
    child = spawn([sys.executable, "-m", "extism_fast", *argv, "--log-level", "info"])
    child.wait_for(STARTED)
    time.sleep(SETTLE)
    child.interrupt()
    assert child.finish() == 130, (child.stdout, child.stderr)
    assert child.exited - child.sent < STOPPED_WITHIN
    assert not any("Traceback" in line for line in child.stderr), child.stderr
    return child


def test_cli_call_exits_130_with_one_line(spawn):
    child = _cli(spawn, "call", LOOP_WAT, "loop")
    assert child.stdout == []
    assert STARTED in child.stderr[0]  # the plugin's log line
    assert child.stderr[1:] == ["extism-fast: interrupted"]


def test_cli_batch_exits_130(spawn, tmp_path):
    inputs = tmp_path / "in.jsonl"
    inputs.write_text('""\n' * 8)
    child = _cli(spawn, "batch", LOOP_WAT, "loop", "--input-file", str(inputs), "-o",
                 str(tmp_path / "out.jsonl"), "--workers", "2")
    assert child.stderr[-1] == "extism-fast: interrupted", child.stderr


def test_interrupt_stops_a_batch_from_another_thread():
    """What PluginPool.map does at a KeyboardInterrupt (Plugin._interrupt): the running call is
    cancelled and the batch runs no further call, even with return_exceptions=True; in-process."""
    with ef.Plugin(LOOP_WAT, functions=[]) as plugin:
        box = {}

        def run():
            try:
                box["out"] = plugin.call_many("loop", [b""] * 5, return_exceptions=True)
            except BaseException as exc:  # noqa: BLE001 - reported to the test thread
                box["exc"] = exc

        thread = threading.Thread(target=run)
        thread.start()
        deadline = time.monotonic() + 10
        while thread.is_alive() and time.monotonic() < deadline:  # it may not have started yet
            plugin._interrupt()
            thread.join(0.01)
        assert not thread.is_alive(), "_interrupt did not stop the batch"
        assert isinstance(box.get("exc"), ef.CancelledError), box
        # 0 when the stop came before the batch's first call
        assert str(box["exc"]) in {f"the calls of 'loop' were stopped after {n} of 5" for n in (0, 1)}
        assert plugin.call("ok") == b"ok"
        assert plugin.call_many("ok", [b""] * 3) == [b"ok"] * 3  # the next batch runs whole
        plugin._interrupt()  # idle: no effect
        assert plugin.call("ok") == b"ok"
