"""The command lines :func:`extism_fast.cli.main` parses without argparse, which with what it imports
(re, enum, gettext, locale, ...) is ~10 ms of a fresh process, a third of a whole `extism-fast call`:

* ``extism-fast --help`` (or ``-h``): :mod:`extism_fast.cli.helptext` lays argparse's help out;
* ``extism-fast [-v] call PLUGIN FUNCTION [OPTION ...]``, each option of ``call`` in its plain
  forms: ``-i TEXT``, ``--input TEXT``, ``--input=TEXT``, a flag alone (``--json``).

Anything else is left to the argparse parser (:mod:`extism_fast.cli.parser`), unparsed: other
subcommands, ``call --help``, a short option with its value attached (``-iTEXT``), a value that
starts with ``-`` (other than ``-`` itself), ``--``, an unknown or abbreviated flag, a value an
option's type refuses, a missing or extra positional, two options of one exclusive group. So every
error, and its message and exit status, is argparse's. What :func:`parse_call` returns has the
attributes and values of argparse's Namespace for the same command line, the defaults of every
option included (tests/test_cli_fastpath.py compares them, and each option here with the parser's).
"""

import sys
import types

from extism_fast.cli.options import CALL_OWN_OPTIONS, PLUGIN_OPTIONS, UNSUPPORTED_OFFICIAL_FLAGS

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

_FLAG = "store_true"
_APPEND = "append"


def dest(flags: "Sequence[str]") -> str:
    """The attribute argparse names after an option's strings (its first long one)."""
    long = next((flag for flag in flags if flag.startswith("--")), flags[0])
    return long.lstrip("-").replace("-", "_")


def _exclusive(options: "Sequence[tuple[Any, ...]]") -> "tuple[tuple[str, ...], ...]":
    """The attributes of each named group of ``options`` (declared as cli/options.py's), in order."""
    groups: "dict[str, list[str]]" = {}
    for flags, *_, group in options:
        if group is not None:
            groups.setdefault(group, []).append(dest(flags))
    return tuple(tuple(names) for names in groups.values())


#: ``call``'s options in the parser's order, as cli/options.py declares them for both parsers:
#: (option strings, action, type (None: the text itself), default). The attribute is named after
#: the last (long) option string, as argparse names it.
CALL_OPTIONS: "tuple[tuple[tuple[str, ...], str, Callable[[str], Any] | None, Any], ...]" = (
    *((flags, action, convert, [] if action == _APPEND else default)
      for flags, action, convert, default, *_ in CALL_OWN_OPTIONS),
    (("-v", "--verbose"), _FLAG, None, None),  # no default of its own: the top level's (False)
    *((flags, action, convert, [] if action == _APPEND else default)
      for flags, action, convert, default, *_ in PLUGIN_OPTIONS),
)
#: ``call``'s groups of options that exclude one another (argparse's mutually exclusive groups).
EXCLUSIVE = _exclusive((*CALL_OWN_OPTIONS, *PLUGIN_OPTIONS))
#: The positionals of ``call``, in order.
POSITIONALS = ("plugin", "function")
#: The top level's options a command line given here may hold before ``call``.
TOP_FLAGS = ("-v", "--verbose")


_BY_FLAG = {flag: (dest(flags), action, convert)
            for flags, action, convert, _ in CALL_OPTIONS for flag in flags}


def defaults() -> "dict[str, Any]":
    """argparse's Namespace of ``call`` before any argument, in its order: the top level's options,
    the command, then ``call``'s positionals and options."""
    values: dict[str, Any] = {"verbose": False}
    values.update((dest(flags), None) for flags in UNSUPPORTED_OFFICIAL_FLAGS)
    values["command"] = "call"
    values.update(dict.fromkeys(POSITIONALS))
    for flags, action, _, default in CALL_OPTIONS:
        if dest(flags) not in values:
            values[dest(flags)] = [] if action == _APPEND else default  # a new list, as argparse copies it
    return values


def show_top_help(argv: "Sequence[str]") -> bool:
    """Print the top-level help when ``argv`` asks for it alone and
    :func:`~extism_fast.cli.helptext.top_help` can make it (True); else False, for argparse."""
    if list(argv) not in (["-h"], ["--help"]):
        return False
    from extism_fast.cli.helptext import top_help  # not on a call's path

    text = top_help()
    if text is None:
        return False
    try:  # as argparse's print_help: stderr when there is no stdout, a failed write ignored
        (sys.stdout or sys.stderr).write(text)
    except (AttributeError, OSError):
        pass
    return True


def parse_call(argv: "Sequence[str]") -> types.SimpleNamespace | None:
    """argparse's Namespace for ``argv`` when it is a ``call`` this module parses (see the module
    docstring), else None."""
    argv = list(argv)
    top = 0
    while top < len(argv) and argv[top] in TOP_FLAGS:
        top += 1
    if argv[top:top + 1] != ["call"]:
        return None
    values = defaults()
    given = _call_arguments(argv[top + 1:], values)
    if given is None or any(sum(name in given for name in group) > 1 for group in EXCLUSIVE):
        return None
    if top:
        values["verbose"] = True
    return types.SimpleNamespace(**values)


def _is_value(arg: str) -> bool:
    """Whether ``arg`` is a value (an option's or a positional) as any argparse parser takes it: it
    does not start with ``-``, or is ``-``. Others argparse may take as values too (``-5``, ``-a b``)
    are left to it."""
    return not arg.startswith("-") or arg == "-"


def _call_arguments(args: list[str], values: "dict[str, Any]") -> set[str] | None:
    """Store ``call``'s arguments ``args`` into ``values``; the options given, or None when argparse
    must parse them."""
    given: set[str] = set()
    positionals: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if _is_value(arg):
            positionals.append(arg)
            continue
        flag, equals, text = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        if flag not in _BY_FLAG:
            return None
        name, action, convert = _BY_FLAG[flag]
        if action == _FLAG:
            if equals:
                return None
            values[name] = True
            given.add(name)
            continue
        if not equals:
            if i == len(args) or not _is_value(args[i]):
                return None
            text = args[i]
            i += 1
        elif not _is_value(text):
            return None
        try:
            value = text if convert is None else convert(text)
        except Exception:  # argparse reports it (ArgumentTypeError, or its own words for others)
            return None
        if action == _APPEND:
            values[name].append(value)
        else:
            values[name] = value
        given.add(name)
    if len(positionals) != len(POSITIONALS):
        return None
    values.update(zip(POSITIONALS, positionals))
    return given
