"""The arguments ``call`` and ``batch`` share, as argparse arguments: PLUGIN and FUNCTION, the
plugin options (the official ``extism call`` flags among them), ``--verbose`` and the official
flags refused. Their types and what they mean are in :mod:`extism_fast.cli.options`.

Imported by the argparse parser (:mod:`extism_fast.cli.parser`) and :mod:`extism_fast.cli.batch`
only: the command lines :mod:`extism_fast.cli.fastpath` parses load neither this module nor argparse.
"""

from __future__ import annotations

import argparse

from extism_fast.cli.helptext import VERBOSE_HELP
from extism_fast.cli.options import PLUGIN_OPTIONS, UNSUPPORTED_OFFICIAL_FLAGS, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    """The PLUGIN and FUNCTION positionals, shared by ``call`` and ``batch``."""
    parser.add_argument("plugin", metavar="PLUGIN",
                        help="a .wasm or .wat file, or with --manifest a JSON or TOML manifest file")
    parser.add_argument("function", metavar="FUNCTION", help="name of the exported plugin function")


class _Unsupported(argparse.Action):
    """An official ``extism`` flag extism-fast does not take: a usage error that says so."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        flag = option_string or self.option_strings[-1]
        raise UsageError(f"{flag} is an official extism CLI flag that extism-fast does not "
                         f"support: {UNSUPPORTED_OFFICIAL_FLAGS[tuple(self.option_strings)]}")


def add_unsupported_official_flags(parser: argparse.ArgumentParser) -> None:
    """Make each of :data:`UNSUPPORTED_OFFICIAL_FLAGS` a usage error naming it (not argparse's
    "unrecognized arguments"), unless ``parser`` already takes it (``batch --quiet``)."""
    for flags in UNSUPPORTED_OFFICIAL_FLAGS:
        if any(flag in parser._option_string_actions for flag in flags):
            continue
        parser.add_argument(*flags, action=_Unsupported, nargs="?", help=argparse.SUPPRESS)


def add_verbose_flag(parser: argparse.ArgumentParser, *, subcommand: bool) -> None:
    """``-v``/``--verbose``, before the subcommand (as the official CLI's global flag) or after."""
    # A subcommand's own default would overwrite a -v given before it: leave it unset there.
    parser.add_argument("-v", "--verbose", action="store_true",
                        default=argparse.SUPPRESS if subcommand else False,
                        help=VERBOSE_HELP)


def add_options(parser: argparse.ArgumentParser, options: tuple[tuple[Any, ...], ...]) -> None:
    """Add ``options``, declared as :data:`~extism_fast.cli.options.PLUGIN_OPTIONS` is, in order;
    the ones of one named group exclude one another."""
    groups: dict[str, Any] = {}
    for flags, action, convert, default, metavar, help, group in options:
        if group is not None and group not in groups:
            groups[group] = parser.add_mutually_exclusive_group()
        target = parser if group is None else groups[group]
        kwargs: dict[str, Any] = {"action": action, "help": help}
        if metavar is not None:
            kwargs["metavar"] = metavar
        if convert is not None:
            kwargs["type"] = convert
        if action == "append":
            kwargs["default"] = []
        elif action == "store" and default is not None:
            kwargs["default"] = default
        target.add_argument(*flags, **kwargs)


def add_plugin_options(parser: argparse.ArgumentParser) -> None:
    """The options that describe the plugin (:data:`~extism_fast.cli.options.PLUGIN_OPTIONS`), shared
    by ``call`` and ``batch``, and the official flags extism-fast refuses."""
    add_options(parser, PLUGIN_OPTIONS)
    add_unsupported_official_flags(parser)
