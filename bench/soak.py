"""Soak test: millions of calls, instances and failing calls in one process, watching its memory.

    python -m bench.soak [--calls N] [--host-calls N] [--instances N] [--failures N]
                         [--timeouts N] [--tolerance-mib MIB]

Phases, each on its own plugin (built from tests/plugins/*.wat and examples/ by the test suite's
builder), in this order; one operation of each, and its default count:

* calls (1,000,000): ``count_vowels`` of a 14-byte input (examples/count_vowels.wat);
* host_calls (100,000): a host function round trip (host_ns.wat; the function returns a new block);
* instances (100,000): ``Plugin(compiled)``, its first call, ``close()``;
* trap (100,000): ``unreachable`` (kernel.wat ``trap``), TrapError;
* plugin_error (100,000): ``error_set`` and return 1 (kernel.wat), PluginError;
* host_function_error (100,000): a host function that raises (host_ns.wat), HostFunctionError;
* memory_limit (100,000): a 192 KiB input with ``max_pages`` 2 (misc.wat), MemoryLimitError;
* capability_error (100,000): ``http_request`` to 127.0.0.1, not in ``allowed_hosts`` (host.wat
  ``http_denied``), CapabilityError;
* timeouts (300): an endless loop stopped by ``timeout_ms`` 2 (misc.wat), TimeoutError.

(``--failures`` sets the count of every failing-call phase.) Each phase first runs a warm-up of 1%
of its count (at least 10 operations; caches, pools and allocator arenas fill there), then reads
VmRSS from /proc/self/status (after ``gc.collect()``) before and after its operations and prints
both. The soak fails (exit 1) if any phase grew the RSS by more than ``--tolerance-mib`` (default
8 MiB): at the default counts, a leak of 8 bytes per call or 80 bytes per instance or failing call.
Every operation's result or error type is checked; anything else aborts the soak.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import sys
import time
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import extism_fast as ef

from bench.plugins import REPO_ROOT, build

MIB = 1 << 20
CALL_INPUT = b"Hello, World!!"
#: misc.wat with max_pages 2: the kernel memory cannot hold this input.
OVERSIZED_INPUT = b"x" * (3 * 65536)

Op = Callable[[], object]


@dataclass
class Phase:
    """One soak phase: ``count`` operations of the op that ``setup()`` yields (its plugin lives
    as long as the context)."""

    name: str
    count: int
    setup: Callable[[], contextlib.AbstractContextManager[Op]]


@dataclass
class PhaseResult:
    """RSS (bytes) before and after a phase's operations, and their time."""

    name: str
    count: int
    seconds: float
    rss_start: int
    rss_end: int

    @property
    def growth(self) -> int:
        """Bytes the RSS grew by during the phase (negative: it shrank)."""
        return self.rss_end - self.rss_start


def read_rss() -> int:
    """The process's resident set size in bytes (VmRSS of /proc/self/status)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS line in /proc/self/status")


def _expect(error: type[BaseException], op: Op) -> Op:
    """An op that runs ``op`` and requires it to raise ``error`` (anything else aborts)."""

    def failing() -> None:
        try:
            op()
        except error:
            return
        raise AssertionError(f"expected {error.__name__}, the operation succeeded")

    return failing


def _plugin(name: str, **manifest: object) -> ef.Plugin:
    return ef.Plugin({"wasm": [{"data": build(name)}], **manifest}, functions=[])


def _shout(current_plugin: ef.CurrentPlugin, params: list, results: list) -> None:
    current_plugin.return_bytes(results[0], current_plugin.input_bytes(params[0]).upper())


def _raise(current_plugin: ef.CurrentPlugin, params: list, results: list) -> None:
    raise ValueError("soak: host function failure")


def _host_ns(f: Callable[..., None]) -> ef.Plugin:
    shout = ef.Function("my:namespace", "shout", [ef.ValType.I64], [ef.ValType.I64], f)
    return ef.Plugin(build("host_ns"), functions=[shout])


@contextlib.contextmanager
def _calls() -> Iterator[Op]:
    with ef.Plugin(build("examples/count_vowels.wat"), functions=[]) as plugin:
        expected = plugin.call("count_vowels", CALL_INPUT)

        def call() -> None:
            if plugin.call("count_vowels", CALL_INPUT) != expected:
                raise AssertionError("count_vowels: wrong output")

        yield call


@contextlib.contextmanager
def _host_calls() -> Iterator[Op]:
    with _host_ns(_shout) as plugin:

        def call() -> None:
            if plugin.call("call", b"soak") != b"SOAK":
                raise AssertionError("host_ns: wrong output")

        yield call


@contextlib.contextmanager
def _instances() -> Iterator[Op]:
    compiled = ef.CompiledPlugin(build("examples/count_vowels.wat"), functions=[])

    def create_call_close() -> None:
        with ef.Plugin(compiled) as plugin:
            plugin.call("count_vowels", CALL_INPUT)

    yield create_call_close


@contextlib.contextmanager
def _failing(error: type[BaseException], function: str, data: bytes = b"",
             open_plugin: Callable[[], ef.Plugin] = lambda: _plugin("kernel")) -> Iterator[Op]:
    with open_plugin() as plugin:
        yield _expect(error, lambda: plugin.call(function, data))


def phases(calls: int, host_calls: int, instances: int, failures: int, timeouts: int) -> list[Phase]:
    """The soak's phases with these counts (see the module docstring)."""
    return [
        Phase("calls", calls, _calls),
        Phase("host_calls", host_calls, _host_calls),
        Phase("instances", instances, _instances),
        Phase("trap", failures, lambda: _failing(ef.TrapError, "trap")),
        Phase("plugin_error", failures, lambda: _failing(ef.PluginError, "error_set_return1")),
        Phase("host_function_error", failures,
              lambda: _failing(ef.HostFunctionError, "call", b"x", lambda: _host_ns(_raise))),
        Phase("memory_limit", failures,
              lambda: _failing(ef.MemoryLimitError, "ok", OVERSIZED_INPUT,
                               lambda: _plugin("misc", memory={"max_pages": 2}))),
        Phase("capability_error", failures,
              lambda: _failing(ef.CapabilityError, "http_denied", b"",
                               lambda: _plugin("host", allowed_hosts=["example.com"]))),
        Phase("timeouts", timeouts,
              lambda: _failing(ef.TimeoutError, "forever", b"", lambda: _plugin("misc", timeout_ms=2))),
    ]


def run_phase(phase: Phase, rss: Callable[[], int] = read_rss) -> PhaseResult:
    """Warm up, then run ``phase.count`` operations between two RSS readings."""
    with phase.setup() as op:
        for _ in range(max(10, phase.count // 100)):
            op()
        gc.collect()
        rss_start = rss()
        started = time.perf_counter()
        for _ in range(phase.count):
            op()
        seconds = time.perf_counter() - started
        gc.collect()
        return PhaseResult(phase.name, phase.count, seconds, rss_start, rss())


def _count(text: str) -> int:
    """A non-negative count, also written like ``1e6``."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value.is_integer() or value < 0:  # nan and inf are not integers
        raise argparse.ArgumentTypeError(f"not a non-negative whole number: {text!r}")
    return int(value)


def _mib(text: str) -> float:
    """A non-negative, finite number of MiB."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):  # also refuses nan
        raise argparse.ArgumentTypeError(f"not a non-negative number of MiB: {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    counts = [("--calls", 1_000_000, "count_vowels calls"),
              ("--host-calls", 100_000, "host function round trips"),
              ("--instances", 100_000, "create/call/close cycles"),
              ("--failures", 100_000, "failing calls of each kind"),
              ("--timeouts", 300, "timed-out calls")]
    for option, default, what in counts:
        parser.add_argument(option, type=_count, default=default,
                            help=f"{what} (default {default:,}; 0 skips)")
    parser.add_argument("--tolerance-mib", type=_mib, default=8.0,
                        help="largest RSS growth allowed in one phase, MiB (default 8)")
    return parser


def _line(result: PhaseResult, verdict: str) -> str:
    rate = result.count / max(result.seconds, 1e-9)
    return (f"{result.name:20} {result.count:>10,} ops {result.seconds:8.2f} s {rate:>12,.0f}/s   "
            f"RSS {result.rss_start / MIB:7.1f} -> {result.rss_end / MIB:7.1f} MiB "
            f"({result.growth / MIB:+.1f})  {verdict}")


def main(argv: Sequence[str] | None = None, rss: Callable[[], int] = read_rss) -> int:
    """Run the soak; return 0, or 1 if a phase grew the RSS beyond the tolerance."""
    args = _parser().parse_args(argv)
    tolerance = int(args.tolerance_mib * MIB)
    # Host function failures log their traceback on the `extism_fast` logger: keep them off
    # stderr (without any handler, logging would print each one) but let them propagate.
    quiet = logging.NullHandler()
    logging.getLogger("extism_fast").addHandler(quiet)
    over = []
    print(f"soak: RSS at start {rss() / MIB:.1f} MiB; tolerance {args.tolerance_mib:g} MiB per phase",
          flush=True)
    try:
        for phase in phases(args.calls, args.host_calls, args.instances, args.failures, args.timeouts):
            if phase.count == 0:
                continue
            result = run_phase(phase, rss)
            if result.growth > tolerance:
                over.append(result.name)
            print(_line(result, "ok" if result.growth <= tolerance else "GREW TOO MUCH"), flush=True)
    finally:
        logging.getLogger("extism_fast").removeHandler(quiet)
    print(f"soak: RSS at end {rss() / MIB:.1f} MiB", flush=True)
    if over:
        print(f"soak: FAILED: RSS grew by more than {args.tolerance_mib:g} MiB in: {', '.join(over)}",
              flush=True)
        return 1
    print("soak: ok", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
