"""The ``extism-fast`` command: call a plugin function from the shell.

::

    extism-fast call examples/count_vowels.wat count_vowels --input "Hello World"
    echo -n "Hello" | extism-fast call plugin.wasm greet --config greeting=Hi
    extism-fast call --manifest manifest.json count_vowels --input-file big.txt
    extism-fast batch plugin.wasm greet --input-file inputs.jsonl --output out.jsonl
    source <(extism-fast completion bash)

``call`` takes the official ``extism call``'s flags with the same meaning (``--stdin``,
``--loop``, ``--link``, ``--set-config``, ``--memory-max``, ...; see
:mod:`extism_fast.cli.options`). Its output bytes go to stdout unchanged (no newline added, except
after each output of a ``--loop`` of more than one call). A failure prints one line,
``extism-fast: error: <message>``, to stderr and exits with status 1 (status 2 for bad usage).
With ``--json`` each call's outcome is one JSON object (one line) on stdout instead, for scripts:
``{"output": "<text>", "error": null}`` (``"output_base64"`` in place of ``"output"`` when the
output is not UTF-8) or ``{"error": {"type": "TrapError", "message": "..."}}``, with the same
exit status.
``completion bash`` prints a bash completion script made from the parser
(:mod:`extism_fast.cli.completion`, imported for that subcommand only).
``batch`` (one call per JSON line, on a pool of plugin instances) is described in
:mod:`extism_fast.cli.batch` (its engine: :mod:`extism_fast.cli.batch_engine`; Parquet and Dask:
:mod:`extism_fast.cli.batch_dist`); the options both share are in :mod:`extism_fast.cli.options`
(their argparse arguments in :mod:`extism_fast.cli.arguments`).

The parser is argparse's (:mod:`extism_fast.cli.parser`), but :func:`main` first tries
:mod:`extism_fast.cli.fastpath`, which parses ``--help`` and a ``call`` with its usual options
without loading argparse (~10 ms of a fresh process) and gives ``call`` the same Namespace; any
other command line, and every error, is argparse's.
"""

import os
import sys
import time

from extism_fast.cli.fastpath import parse_call, show_top_help
from extism_fast.cli.options import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    PROG,
    UsageError,
    build_manifest,  # tests/test_cli*.py import it from here
    error_text,
    fail,
    new_plugin,
    open_file,
    plugin_logging,
)

TYPE_CHECKING = False  # typing is not imported at run time (cold start: tests/test_cold_start.py)
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from typing import Any

    from extism_fast.cli.parser import build_parser


def __getattr__(name: str) -> "Any":
    """``build_parser``, the argparse parser (:mod:`extism_fast.cli.parser`), loaded when first
    named: the command lines main() parses without it do not load argparse."""
    if name == "build_parser":
        from extism_fast.cli.parser import build_parser

        return build_parser
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _read_input(args: "argparse.Namespace") -> bytes:
    if args.input is not None:
        # surrogateescape: bytes that were not valid UTF-8 on the command line come back unchanged.
        return args.input.encode("utf-8", "surrogateescape")
    if args.stdin or args.input_file == "-":
        return sys.stdin.buffer.read()
    if args.input_file is not None:
        with open_file(args.input_file, "rb") as f:
            return f.read()
    stdin = sys.stdin
    if stdin is None or stdin.isatty():
        return b""
    try:
        return stdin.buffer.read()
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        raise OSError(f"cannot read stdin: {exc}") from None


def _call(args: "argparse.Namespace") -> int:
    import extism_fast

    with plugin_logging(args.log_level):
        try:
            data = _read_input(args)
            with new_plugin(args) as plugin:
                _call_loop(plugin, args, data)
            return EXIT_OK
        except (extism_fast.Error, OSError) as exc:
            if args.json:
                _write_json({"error": {"type": type(exc).__name__, "message": error_text(exc)}})
                return EXIT_FAILURE
            return fail(exc, EXIT_FAILURE)


def _write_json(outcome: "dict[str, Any]") -> None:
    import json  # --json only: not on the path of a plain `call` or --help

    sys.stdout.buffer.write(json.dumps(outcome).encode("ascii") + b"\n")
    sys.stdout.buffer.flush()


def _json_output(output: bytes) -> "dict[str, Any]":
    """A successful call's ``--json`` object (the output as text, or base64 when not UTF-8)."""
    try:
        return {"output": output.decode("utf-8"), "error": None}
    except UnicodeDecodeError:
        import base64

        return {"output_base64": base64.b64encode(output).decode("ascii"), "error": None}


def _call_loop(plugin, args: "argparse.Namespace", data: bytes) -> None:
    """Call ``args.loop`` times, writing each output as it comes (then a newline when looping,
    as the official CLI does); with ``--verbose`` report the rate on stderr."""
    out = sys.stdout.buffer
    start = time.perf_counter()
    for _ in range(args.loop):
        output = plugin.call(args.function, data)
        if args.json:
            _write_json(_json_output(output))
            continue
        out.write(output)
        if args.loop > 1:
            out.write(b"\n")
        out.flush()
    seconds = time.perf_counter() - start
    if args.verbose:
        rate = args.loop / seconds if seconds > 0 else 0.0
        sys.stderr.write(f"{args.loop} calls in {seconds:.3f} s, {rate:.1f} calls/s\n")
        sys.stderr.flush()


def main(argv: "Sequence[str] | None" = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if show_top_help(argv):
        return EXIT_OK
    args: Any = parse_call(argv)  # argparse's Namespace's attributes, in a types.SimpleNamespace
    if args is None:  # not a command line the fast path parses: argparse's, errors included
        from extism_fast.cli.parser import build_parser

        try:
            args = build_parser(lazy=True).parse_args(argv)
        except UsageError as exc:
            return fail(exc, EXIT_USAGE)
        except SystemExit as exc:  # --help / --version
            return exc.code if isinstance(exc.code, int) else EXIT_OK
    try:
        if args.command == "call":
            return _call(args)
        if args.command == "batch":
            from extism_fast.cli.batch import run_batch_command

            return run_batch_command(args)
        if args.command == "completion":
            from extism_fast.cli.completion import bash_script

            from extism_fast.cli.parser import build_parser

            sys.stdout.write(bash_script(build_parser()))  # every command's arguments
            return EXIT_OK
        return fail(f"unknown command {args.command!r}", EXIT_USAGE)  # pragma: no cover
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): not our failure; avoid a second error at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILURE
    except KeyboardInterrupt:  # Ctrl-C stops a running call too (README, "Stopping a call")
        sys.stderr.write(f"{PROG}: interrupted\n")
        sys.stderr.flush()
        return EXIT_INTERRUPTED
    except Exception as exc:  # a bug, or bad input nothing above checks: still one line, no traceback
        return fail(f"unexpected {type(exc).__name__}: {exc}", EXIT_FAILURE)

