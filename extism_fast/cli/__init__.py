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
``completion bash`` prints a bash completion script made from this parser
(:mod:`extism_fast.cli.completion`, imported for that subcommand only).
``batch`` (one call per JSON line, on a pool of plugin instances) is described in
:mod:`extism_fast.cli.batch` (its engine: :mod:`extism_fast.cli.batch_engine`; Parquet and Dask:
:mod:`extism_fast.cli.batch_dist`); the options both share are in :mod:`extism_fast.cli.options`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from extism_fast.cli.options import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    PROG,
    UsageError,
    add_plugin_options,
    add_target_arguments,
    add_unsupported_official_flags,
    add_verbose_flag,
    build_manifest,  # tests/test_cli*.py import it from here
    error_text,
    fail,
    new_plugin,
    non_negative_int,
    open_file,
    plugin_logging,
)

TYPE_CHECKING = False  # typing is not imported at run time (cold start: tests/test_cold_start.py)
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any, NoReturn

#: The largest ``--loop``: a count, not a memory size, so only a sanity bound.
MAX_LOOP = 2**63 - 1


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, ``extism-fast: error: ...``, and exit 2; an
    unrecognized flag gets the closest known one; no prefix abbreviations (so a future flag cannot
    change what an old command line means)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["allow_abbrev"] = False  # subparsers are made by this class too
        super().__init__(*args, **kwargs)
        self._argv: list[str] = []

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        self._argv = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def error(self, message: str) -> NoReturn:
        if message.startswith("unrecognized arguments:"):
            message += self._flag_hint(message.partition(":")[2].split())
        raise UsageError(f"{message} (see '{self.prog} --help')")

    def _flag_hint(self, unknown: list[str]) -> str:
        """``; did you mean --X?`` for the first unrecognized flag with a close known one (of this
        parser and the subcommand the command line names)."""
        flags = set(self._option_string_actions)
        for action in self._actions:
            if isinstance(action, _Commands):
                command = next((arg for arg in self._argv if arg in action.choices), None)
                if command is not None:
                    flags |= set(action.command(command)._option_string_actions)
        flags = {flag for flag in flags if flag.startswith("--")}
        import difflib  # for a bad command line only

        for arg in unknown:
            if arg.startswith("--"):
                close = difflib.get_close_matches(arg.partition("=")[0], sorted(flags), n=1)
                if close:
                    return f"; did you mean {close[0]}?"
        return ""

    def _get_values(self, action: argparse.Action, arg_strings: list[str]) -> Any:
        # Python 3.11's argparse drops a value of exactly "--" ("-c--", "--config=--") and stores an
        # empty list without calling the option's type: refuse it as the missing value it became.
        if action.nargs is None and action.option_strings and arg_strings == ["--"]:
            self.error(f"argument {'/'.join(action.option_strings)}: expected one argument, got '--'")
        return super()._get_values(action, arg_strings)

    def _get_formatter(self) -> argparse.HelpFormatter:
        # argparse's own asks shutil for the width (importing shutil, zlib, bz2 and lzma: ~2 ms of
        # `--help`, and of every add_argument, which formats its metavar): the same width from os.
        formatter_class: Any = self.formatter_class  # a HelpFormatter (typeshed's type omits width)
        return formatter_class(prog=self.prog, width=_terminal_columns() - 2)


def _terminal_columns() -> int:
    """``shutil.get_terminal_size().columns``: $COLUMNS when a positive integer, else the width of
    the terminal on ``sys.__stdout__``, else 80."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns > 0:
        return columns
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns or 80  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):  # no stdout (None), closed, detached, not a terminal
        return 80


class _Commands(argparse._SubParsersAction):
    """The subcommands, each with its arguments added when first needed (its command line or help,
    the completion script): `extism-fast --help` and `call` do not build the ~60 arguments of every
    command (a few ms), nor load the batch module."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._unbuilt: dict[str, Callable[[argparse.ArgumentParser], None]] = {}

    def add_command(self, name: str, add_arguments: Callable[[argparse.ArgumentParser], None],
                    **kwargs: Any) -> None:
        """Add command ``name`` (``kwargs`` as for add_parser); ``add_arguments(parser)`` adds its
        arguments when the command is first used."""
        self.add_parser(name, **kwargs)
        self._unbuilt[name] = add_arguments

    def command(self, name: str) -> argparse.ArgumentParser:
        """The parser of command ``name``, with its arguments."""
        add_arguments = self._unbuilt.pop(name, None)
        if add_arguments is not None:
            add_arguments(self.choices[name])
        return self.choices[name]

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        self.command(values[0])  # argparse has checked it is a command
        super().__call__(parser, namespace, values, option_string)


class _VersionAction(argparse.Action):
    """``--version``: the versions are read (package metadata, tens of ms) only when asked."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="show the versions of extism-fast, the Extism runtime it matches and wasmtime")

    def __call__(self, parser: argparse.ArgumentParser, *args: Any) -> None:
        print(_versions())  # to stdout, as argparse's own "version" action
        parser.exit()


def _versions() -> str:
    from extism_fast._version import versions

    v = versions()
    return f"{PROG} {v['extism_fast']} (Extism runtime {v['extism']} compatible, wasmtime {v['wasmtime']})"


# --------------------------------------------------------------------------------------------------
# Parser
# --------------------------------------------------------------------------------------------------


def build_parser(*, lazy: bool = False) -> argparse.ArgumentParser:
    """The ``extism-fast`` parser. ``lazy``: a subcommand's arguments are added when it is parsed
    (:func:`main`'s, so that `--help` and `call` build only what they use); else all at once, for
    what reads the parsers (the completion script, tests)."""
    parser = _Parser(
        prog=PROG,
        description="Run Extism WebAssembly plugins (fast host on wasmtime).",
        epilog=f"Run '{PROG} call --help' or '{PROG} batch --help' for the options of a command.",
    )
    parser.add_argument("--version", action=_VersionAction)
    add_verbose_flag(parser, subcommand=False)
    add_unsupported_official_flags(parser)
    commands: _Commands = parser.add_subparsers(  # type: ignore[assignment]  # action= makes it one
        dest="command", metavar="COMMAND", required=True, action=_Commands)
    commands.add_command(
        "call", _add_call_arguments,
        help="call a function of a plugin and write its output to stdout",
        description=(
            "Call FUNCTION of the plugin PLUGIN and write its output bytes to stdout unchanged. "
            "The input is --input, --input-file, --stdin, or stdin when none is given and stdin is "
            "not a terminal (otherwise empty). The flags of the official 'extism call' are "
            "accepted with the same meaning. "
            "Exit status: 0 ok, 1 plugin or call failure, 2 bad usage."
        ),
        epilog=(
            f"example: {PROG} call examples/count_vowels.wat count_vowels --input 'Hello World'"
        ),
    )
    commands.add_command("batch", _add_batch_arguments,
                         help="call a function once per line of a JSON Lines file, on a pool of instances")
    commands.add_command(
        "completion", _add_completion_arguments,
        help="print a shell completion script",
        description=(f"Print the completion script of {PROG} for SHELL (bash only), made from "
                     f"this command's own options. Install it with: {PROG} completion bash > "
                     f"~/.local/share/bash-completion/completions/{PROG}"),
    )
    if not lazy:
        for name in commands.choices:
            commands.command(name)
    return parser


def _add_call_arguments(call: argparse.ArgumentParser) -> None:
    add_target_arguments(call)
    source = call.add_mutually_exclusive_group()
    source.add_argument("-i", "--input", metavar="TEXT",
                        help="input as text (encoded as UTF-8)")
    source.add_argument("-f", "--input-file", metavar="FILE",
                        help="read the input bytes from FILE ('-' for stdin)")
    source.add_argument("--stdin", action="store_true",
                        help="read the input bytes from stdin, even from a terminal")
    call.add_argument("--json", action="store_true",
                      help="write each call's outcome as one JSON line on stdout: {\"output\": "
                           "\"<text>\", \"error\": null} (\"output_base64\" when the output is not "
                           "UTF-8) or {\"error\": {\"type\": ..., \"message\": ...}}; the exit status "
                           "is unchanged")
    call.add_argument("--loop", metavar="N", type=non_negative_int("--loop", MAX_LOOP), default=1,
                      help="call the function N times on one instance; when N > 1 each output "
                           "is followed by a newline (default 1)")
    add_verbose_flag(call, subcommand=True)
    add_plugin_options(call)


def _add_batch_arguments(batch: argparse.ArgumentParser) -> None:
    from extism_fast.cli.batch import add_batch_arguments  # `batch` only

    add_batch_arguments(batch)


def _add_completion_arguments(completion: argparse.ArgumentParser) -> None:
    completion.add_argument("shell", metavar="SHELL", choices=["bash"], help="the shell: bash")


def _read_input(args: argparse.Namespace) -> bytes:
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


def _call(args: argparse.Namespace) -> int:
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


def _write_json(outcome: dict[str, Any]) -> None:
    import json  # --json only: not on the path of a plain `call` or --help

    sys.stdout.buffer.write(json.dumps(outcome).encode("ascii") + b"\n")
    sys.stdout.buffer.flush()


def _json_output(output: bytes) -> dict[str, Any]:
    """A successful call's ``--json`` object (the output as text, or base64 when not UTF-8)."""
    try:
        return {"output": output.decode("utf-8"), "error": None}
    except UnicodeDecodeError:
        import base64

        return {"output_base64": base64.b64encode(output).decode("ascii"), "error": None}


def _call_loop(plugin, args: argparse.Namespace, data: bytes) -> None:
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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    parser = build_parser(lazy=True)
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
            from extism_fast.cli.batch import run_batch_command

            return run_batch_command(args)
        if args.command == "completion":
            from extism_fast.cli.completion import bash_script

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

