"""The arguments ``call`` and ``batch`` share, as argparse arguments: PLUGIN and FUNCTION, the
plugin options (the official ``extism call`` flags among them), ``--verbose`` and the official
flags refused. Their types and what they mean are in :mod:`extism_fast.cli.options`.

Imported by the argparse parser (:mod:`extism_fast.cli.parser`) and :mod:`extism_fast.cli.batch`
only: the command lines :mod:`extism_fast.cli.fastpath` parses load neither this module nor argparse.
"""

from __future__ import annotations

import argparse

from extism_fast.cli.helptext import VERBOSE_HELP
from extism_fast.cli.options import (
    UNSUPPORTED_OFFICIAL_FLAGS,
    UsageError,
    allow_path,
    config_item,
    fuel,
    http_response_max,
    link_item,
    log_level,
    max_pages,
    memory_max,
    set_config,
    timeout_ms,
    var_max,
)

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


def add_plugin_options(parser: argparse.ArgumentParser) -> None:
    """The options that describe the plugin (read by :func:`~extism_fast.cli.options.build_manifest`
    and :func:`~extism_fast.cli.options.plugin_kwargs`) and its logging, shared by ``call`` and ``batch``. The official
    ``extism call`` flags are all here, with the same meaning."""
    parser.add_argument("-m", "--manifest", action="store_true",
                        help="PLUGIN is a JSON or TOML Extism manifest; relative wasm paths in it are "
                             "resolved against the manifest's directory, and the options below "
                             "are merged over it")
    parser.add_argument("--link", metavar="NAME=PATH", action="append", type=link_item, default=[],
                        help="link another module (a file or http(s) URL) under NAME; PLUGIN is "
                             "the main module (repeatable; PATH alone is named after its file)")
    parser.add_argument("--wasi", action="store_true",
                        help="enable WASI (the plugin's stdout/stderr are shown only when "
                             "EXTISM_ENABLE_WASI_OUTPUT is set, as with the official CLI)")
    parser.add_argument("--strict", action="store_true",
                        help="fail the call on kernel accesses the official runtime quietly ignores "
                             "(out-of-range loads, stores and input reads), naming the function and "
                             "the offset: for debugging a plugin")
    parser.add_argument("-c", "--config", metavar="KEY=VALUE", action="append", type=config_item,
                        default=[], help="set a config value the plugin reads with config_get; "
                                         "a bare KEY sets it to '' (repeatable)")
    parser.add_argument("--set-config", metavar="JSON", type=set_config,
                        help="config values as a JSON object of strings; --config wins over it")
    parser.add_argument("--allow-path", metavar="[ro:]HOST:GUEST", action="append",
                        type=allow_path, default=[],
                        help="mount host directory HOST at GUEST for WASI; 'ro:' mounts it "
                             "read-only (repeatable, needs --wasi)")
    parser.add_argument("--allow-host", metavar="HOST", action="append", default=[],
                        help="allow http_request to HOST, a glob such as '*.example.com' "
                             "(repeatable)")
    parser.add_argument("--enable-http-response-headers", action="store_true",
                        help="let the plugin read HTTP response headers (http_headers)")
    parser.add_argument("-t", "--timeout", metavar="MS",
                        type=timeout_ms,
                        help="fail the call after MS milliseconds (0: no timeout)")
    pages = parser.add_mutually_exclusive_group()
    pages.add_argument("--max-pages", metavar="N", type=max_pages,
                       help="cap the plugin's memory at N 64 KiB pages")
    pages.add_argument("--memory-max", metavar="N", type=memory_max,
                       help="the official CLI's --max-pages: N 64 KiB pages, 0 sets no cap")
    parser.add_argument("--var-max", metavar="BYTES", type=var_max,
                        help="cap the plugin's variables at BYTES in all (0 disables vars)")
    parser.add_argument("--http-response-max", metavar="BYTES",
                        type=http_response_max,
                        help="cap an HTTP response body the plugin receives at BYTES")
    parser.add_argument("--fuel", metavar="N", type=fuel,
                        help="fail a call after N wasm instructions")
    parser.add_argument("--log-level", metavar="LEVEL", type=log_level,
                        help="print plugin log messages at LEVEL or above to stderr: "
                             "trace, debug, info, warn, error, off (default: off)")
    add_unsupported_official_flags(parser)
