"""The ``extism-fast`` command: call a plugin function from the shell.

::

    extism-fast call examples/count_vowels.wat count_vowels --input "Hello World"
    echo -n "Hello" | extism-fast call plugin.wasm greet --config greeting=Hi
    extism-fast call --manifest manifest.json count_vowels --input-file big.txt
    extism-fast batch plugin.wasm greet --input-file inputs.jsonl --output out.jsonl

``call``'s output bytes go to stdout unchanged (no newline added). A failure prints one line,
``extism-fast: error: <message>``, to stderr and exits with status 1 (status 2 for bad usage).
``batch`` (one call per JSON line, on a pool of plugin instances) is described in
:mod:`extism_fast.cli_batch`; the options both share are in :mod:`extism_fast.cli_options`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from extism_fast.cli_batch import add_batch_parser, run_batch_command
from extism_fast.cli_options import (
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_USAGE,
    PROG,
    add_plugin_options,
    add_target_arguments,
    build_manifest,
    fail,
    open_file,
    plugin_logging,
)


class UsageError(Exception):
    """Bad command-line usage (exit status 2)."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, ``extism-fast: error: ...``, and exit 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _versions() -> str:
    from importlib import metadata

    import extism_fast

    try:
        wasmtime_version = metadata.version("wasmtime")
    except metadata.PackageNotFoundError:  # pragma: no cover - wasmtime is a dependency
        wasmtime_version = "unknown"
    return f"{PROG} {extism_fast.__version__} (wasmtime {wasmtime_version})"


# --------------------------------------------------------------------------------------------------
# Parser
# --------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Run Extism WebAssembly plugins (fast host on wasmtime).",
        epilog=f"Run '{PROG} call --help' or '{PROG} batch --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=_versions())
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    call = commands.add_parser(
        "call",
        help="call a function of a plugin and write its output to stdout",
        description=(
            "Call FUNCTION of the plugin PLUGIN and write its output bytes to stdout unchanged. "
            "The input is --input, --input-file, or stdin when neither is given and stdin is not "
            "a terminal (otherwise empty). Exit status: 0 ok, 1 plugin or call failure, 2 bad usage."
        ),
        epilog=(
            f"example: {PROG} call examples/count_vowels.wat count_vowels --input 'Hello World'"
        ),
    )
    add_target_arguments(call)
    source = call.add_mutually_exclusive_group()
    source.add_argument("-i", "--input", metavar="TEXT",
                        help="input as text (encoded as UTF-8)")
    source.add_argument("-f", "--input-file", metavar="FILE",
                        help="read the input bytes from FILE ('-' for stdin)")
    add_plugin_options(call)
    add_batch_parser(commands)
    return parser


def _read_input(args: argparse.Namespace) -> bytes:
    if args.input is not None:
        # surrogateescape: bytes that were not valid UTF-8 on the command line come back unchanged.
        return args.input.encode("utf-8", "surrogateescape")
    if args.input_file is not None:
        if args.input_file == "-":
            return sys.stdin.buffer.read()
        with open_file(args.input_file, "rb") as f:
            return f.read()
    stdin = sys.stdin
    if stdin is None or stdin.isatty():
        return b""
    try:
        return stdin.buffer.read()
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        raise OSError(f"cannot read stdin: {exc}") from None


def _call(args: argparse.Namespace) -> int:
    import extism_fast

    with plugin_logging(args.log_level):
        try:
            data = _read_input(args)
            manifest = build_manifest(args)
            with extism_fast.Plugin(manifest, wasi=args.wasi, functions=[], strict=args.strict or None) as plugin:
                output = plugin.call(args.function, data)
            out = sys.stdout.buffer
            out.write(output)
            out.flush()
            return EXIT_OK
        except extism_fast.Error as exc:
            return fail(exc, EXIT_FAILURE)
        except OSError as exc:
            return fail(exc, EXIT_FAILURE)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        return fail(exc, EXIT_USAGE)
    except SystemExit as exc:  # --help / --version
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    try:
        if args.command == "call":
            return _call(args)
        if args.command == "batch":
            return run_batch_command(args)
        return fail(f"unknown command {args.command!r}", EXIT_USAGE)  # pragma: no cover
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): not our failure; avoid a second error at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug, or bad input nothing above checks: still one line, no traceback
        return fail(f"unexpected {type(exc).__name__}: {exc}", EXIT_FAILURE)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
