"""The ``extism-fast`` parser (argparse): every subcommand, its options and their help.

:func:`~extism_fast.cli.main` parses the common command lines without it first
(:mod:`extism_fast.cli.fastpath`) and comes here for all others, errors included, so that each
message and exit status is argparse's. The top-level texts are :mod:`extism_fast.cli.helptext`'s.
"""

from __future__ import annotations

import argparse
import sys

from extism_fast.cli.arguments import (
    add_options,
    add_plugin_options,
    add_target_arguments,
    add_unsupported_official_flags,
    add_verbose_flag,
)
from extism_fast.cli.helptext import (
    COMMAND_METAVAR,
    COMMANDS,
    DESCRIPTION,
    EPILOG,
    VERSION_HELP,
    terminal_columns,
)
from extism_fast.cli.options import CALL_OWN_OPTIONS, PROG, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, NoReturn


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
        return formatter_class(prog=self.prog, width=terminal_columns() - 2)


class _Commands(argparse._SubParsersAction):
    """The subcommands, each with its arguments added when first needed (its command line or help,
    the completion script): a command line argparse parses (`call --help`, an error) does not build
    the ~60 arguments of every command (a few ms), nor load the batch module."""

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
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=VERSION_HELP)

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
    (:func:`~extism_fast.cli.main`'s, so that `call --help` builds only what it uses); else all at
    once, for what reads the parsers (the completion script, tests)."""
    parser = _Parser(prog=PROG, description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("--version", action=_VersionAction)
    add_verbose_flag(parser, subcommand=False)
    add_unsupported_official_flags(parser)
    commands: _Commands = parser.add_subparsers(  # type: ignore[assignment]  # action= makes it one
        dest="command", metavar=COMMAND_METAVAR, required=True, action=_Commands)
    commands.add_command(
        "call", _add_call_arguments, help=COMMANDS["call"],
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
    commands.add_command("batch", _add_batch_arguments, help=COMMANDS["batch"])
    commands.add_command(
        "completion", _add_completion_arguments, help=COMMANDS["completion"],
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
    add_options(call, CALL_OWN_OPTIONS)
    add_verbose_flag(call, subcommand=True)
    add_plugin_options(call)


def _add_batch_arguments(batch: argparse.ArgumentParser) -> None:
    from extism_fast.cli.batch import add_batch_arguments  # `batch` only

    add_batch_arguments(batch)


def _add_completion_arguments(completion: argparse.ArgumentParser) -> None:
    completion.add_argument("shell", metavar="SHELL", choices=["bash"], help="the shell: bash")
