"""What the ``extism-fast`` subcommands share: the plugin options, their argument types, the
manifest they describe, ``--log-level`` and the one-line error report.

:mod:`extism_fast.cli` (``call``, the parser) and :mod:`extism_fast.cli.batch` (``batch``) both
import this module, which imports neither (tests/test_layout.py checks there is no import cycle).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import types

from extism_fast.host.logs import LOG_LEVELS as _LOG_LEVELS, LOGGER_NAME

TYPE_CHECKING = False  # typing is not imported at run time (cold start: tests/test_cold_start.py)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import IO, Any

# attrs, the manifest classes and logging load when a manifest is built or --log-level is given:
# `extism-fast --help` needs none of them, nor does `call` with a module file and no option that
# changes the manifest (new_plugin; tests/test_cold_start.py).

PROG = "extism-fast"
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a command ended by Ctrl-C

#: The largest ``--timeout`` / ``timeout_ms``: the runtime counts the timeout in nanoseconds in
#: 64 bits.
MAX_TIMEOUT_MS = (2**64 - 1) // 1_000_000
#: The largest ``--max-pages``: the Extism manifest's ``max_pages`` is a u32.
MAX_PAGES = 2**32 - 1
#: ``batch``: items per pool.map round, unless --chunk-size says otherwise (here, not in the batch
#: engine, so that the parser loads no engine).
DEFAULT_CHUNK_SIZE = 4096
#: ``batch``: a round also ends once its inputs reach this many bytes (then holds at least one item).
MAX_CHUNK_BYTES = 64 << 20
#: The largest --var-max, --http-response-max and --fuel: the manifest's U64_MAX (importing it
#: would load the manifest classes; tests/test_cli_bad_input.py checks they agree).
U64_MAX = 2**64 - 1

#: Flags of the official ``extism`` CLI that extism-fast does not take, and why.
UNSUPPORTED_OFFICIAL_FLAGS = {
    ("--github-token",): ("it authenticates the official CLI's downloads of libextism from GitHub "
                          "('extism lib'); extism-fast downloads nothing"),
    ("-q", "--quiet"): ("it silences the official CLI's status messages; 'extism-fast call' prints "
                        "none (errors only, and --verbose's report when asked); 'extism-fast batch "
                        "--quiet' silences batch's progress and summary"),
}


class UsageError(Exception):
    """Bad command-line usage (exit status 2)."""


def first_line(message: str) -> str:
    """The first non-blank line of ``message`` (stripped), or ``"unknown error"``."""
    lines = [line for line in str(message).strip().splitlines() if line.strip()]
    return lines[0].strip() if lines else "unknown error"


# The LinkError hint for an import from a module nothing provides (_link_module_hint); compiled by
# the first failure that needs it (re's cache), not by every start (~0.3 ms).
_MANIFEST_MODULE_HINT = r"add it to the manifest's wasm list with name='([^'\\]*)'$"


def error_text(message: Any) -> str:
    """``message`` as the command line words it: runtime messages speak of the Python API, this
    names the flag instead (--wasi, --link)."""
    text = str(message).replace("pass wasi=True", "pass --wasi")
    return re.sub(_MANIFEST_MODULE_HINT, r"link it with --link \1=PATH", text, flags=re.MULTILINE)


def fail(message: Any, status: int) -> int:
    """Print ``extism-fast: error: <first line of message>`` to stderr; return ``status``."""
    text = first_line(error_text(message))
    sys.stderr.write(f"{PROG}: error: {text}\n")
    sys.stderr.flush()
    return status


def open_file(path: str, mode: str, **kwargs: Any) -> IO[Any]:
    """``open(path, mode, **kwargs)``; a failure is an OSError naming the file and the reason."""
    try:
        return open(path, mode, **kwargs)
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        verb = "write output" if "w" in mode else "read input"
        reason = getattr(exc, "strerror", None) or exc
        raise OSError(f"cannot {verb} file {path!r}: {reason}") from None


# --------------------------------------------------------------------------------------------------
# Argument types
# --------------------------------------------------------------------------------------------------


def _is_utf8(text: str) -> bool:
    # Command-line bytes that are not UTF-8 arrive as lone surrogates (surrogateescape).
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def config_item(text: str) -> tuple[str, str]:
    """``KEY=VALUE`` for ``--config``; a bare ``KEY`` sets it to ``""``, as the official CLI does.
    Errors never show the value: config values are secrets."""
    key, _, value = text.partition("=")
    if not key:
        raise argparse.ArgumentTypeError("--config expects KEY=VALUE with a non-empty KEY")
    if not _is_utf8(key):
        raise argparse.ArgumentTypeError("--config KEY is not valid UTF-8")
    if not _is_utf8(value):
        raise argparse.ArgumentTypeError(f"--config value of {key!r} is not valid UTF-8")
    return key, value


def allow_path(text: str) -> tuple[str, str]:
    """``HOST:GUEST`` (``ro:HOST:GUEST`` read-only); a bare ``HOST`` mounts at the same path.
    As in the official CLI, the first ``:`` ends HOST (GUEST may hold more)."""
    if "\0" in text:
        raise argparse.ArgumentTypeError("--allow-path must not contain a NUL character")
    read_only = text.startswith("ro:")
    rest = text[3:] if read_only else text
    host, sep, guest = rest.partition(":")
    if not sep:
        host, guest = rest, rest
    if not host or not guest:
        raise argparse.ArgumentTypeError(f"expected [ro:]HOST:GUEST, got {text!r}")
    return ("ro:" if read_only else "") + host, guest


_INTEGER = re.compile(r"[+-]?[0-9]+")


def _shown(text: str) -> str:
    """``text`` for an error message: repr, cut to a readable length."""
    return repr(text) if len(text) <= 40 else repr(text[:40]) + "..."


def int_in_range(what: str, minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """An argparse type: a decimal integer >= minimum (0 or 1) and <= maximum, named ``what`` in
    its errors."""
    def parse(text: str) -> int:
        if not _INTEGER.fullmatch(text):
            raise argparse.ArgumentTypeError(f"{what} must be an integer, got {_shown(text)}")
        # Past 64 digits the exact value does not matter (and int() refuses ~4300 digits).
        digits = text.lstrip("+-")
        value = int(text) if len(digits) <= 64 else (-1 if text[0] == "-" else 1) * 10**64
        if value < minimum:
            rule = "be positive" if minimum == 1 else "not be negative"
            raise argparse.ArgumentTypeError(f"{what} must {rule}, got {_shown(text)}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"{what} must be at most {maximum}, got {_shown(text)}")
        return value

    return parse


def positive_int(what: str, maximum: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer in ``1..maximum``."""
    return int_in_range(what, 1, maximum)


def non_negative_int(what: str, maximum: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer in ``0..maximum``."""
    return int_in_range(what, 0, maximum)


def _json_kind(value: Any) -> str:
    """What a decoded JSON value is, for a message that must not show it."""
    return {list: "an array", dict: "an object", str: "a string", bool: "a boolean",
            type(None): "null"}.get(type(value), "a number")


def set_config(text: str) -> dict[str, str]:
    """``--set-config``: a JSON object of string values. Errors name the key, never a value
    (config values are secrets)."""
    import json  # --set-config only

    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        raise argparse.ArgumentTypeError("--set-config must be a JSON object, got invalid JSON") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"--set-config must be a JSON object, got {_json_kind(value)}")
    for key, item in value.items():
        if not key or not _is_utf8(key):
            raise argparse.ArgumentTypeError(f"--set-config keys must be non-empty valid UTF-8, got {key!r}")
        if not isinstance(item, str):
            raise argparse.ArgumentTypeError(
                f"--set-config value of {key!r} must be a JSON string, got {_json_kind(item)} (quote it)")
        if not _is_utf8(item):
            raise argparse.ArgumentTypeError(f"--set-config value of {key!r} is not valid UTF-8")
    return value


def is_url(text: str) -> bool:
    """Whether a PLUGIN or ``--link`` path is an http(s) URL (the official CLI downloads those)."""
    return text.startswith(("http://", "https://"))


def link_item(text: str) -> tuple[str, str]:
    """``--link NAME=PATH`` (or ``PATH``, named after its file name without the extension, as in
    the official CLI); PATH may be an http(s) URL."""
    name, sep, path = text.partition("=")
    if not sep or is_url(text):
        path = text
        name = os.path.splitext(os.path.basename(text.rstrip("/")))[0]
    if "\0" in text:
        raise argparse.ArgumentTypeError("--link must not contain a NUL character")
    if not name or not path:
        raise argparse.ArgumentTypeError(f"--link expects NAME=PATH, got {_shown(text)}")
    if name == "main":
        raise argparse.ArgumentTypeError(
            "--link name 'main' is taken: PLUGIN is the main module; link it under another name")
    return name, path


def log_level(text: str) -> int:
    """``--log-level``: a level name (case-insensitive) to a :mod:`logging` level."""
    level = _LOG_LEVELS.get(text.lower())
    if level is None:
        raise argparse.ArgumentTypeError(
            f"unknown log level {text!r} (choose from {', '.join(k for k in _LOG_LEVELS if k != 'warning')})"
        )
    return level


log_level.completions = tuple(_LOG_LEVELS)  # type: ignore[attr-defined]  # for cli/completion.py


# --------------------------------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------------------------------


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
                        help="report the calls per second on stderr at the end")


def add_plugin_options(parser: argparse.ArgumentParser) -> None:
    """The options that describe the plugin (read by :func:`build_manifest` and
    :func:`plugin_kwargs`) and its logging, shared by ``call`` and ``batch``. The official
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
                        type=non_negative_int("--timeout", MAX_TIMEOUT_MS),
                        help="fail the call after MS milliseconds (0: no timeout)")
    pages = parser.add_mutually_exclusive_group()
    pages.add_argument("--max-pages", metavar="N", type=non_negative_int("--max-pages", MAX_PAGES),
                       help="cap the plugin's memory at N 64 KiB pages")
    pages.add_argument("--memory-max", metavar="N", type=non_negative_int("--memory-max", MAX_PAGES),
                       help="the official CLI's --max-pages: N 64 KiB pages, 0 sets no cap")
    parser.add_argument("--var-max", metavar="BYTES", type=non_negative_int("--var-max", U64_MAX),
                        help="cap the plugin's variables at BYTES in all (0 disables vars)")
    parser.add_argument("--http-response-max", metavar="BYTES",
                        type=non_negative_int("--http-response-max", U64_MAX),
                        help="cap an HTTP response body the plugin receives at BYTES")
    parser.add_argument("--fuel", metavar="N", type=positive_int("--fuel", U64_MAX),
                        help="fail a call after N wasm instructions")
    parser.add_argument("--log-level", metavar="LEVEL", type=log_level,
                        help="print plugin log messages at LEVEL or above to stderr: "
                             "trace, debug, info, warn, error, off (default: off)")
    add_unsupported_official_flags(parser)


def plugin_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of :class:`~extism_fast.Plugin` the plugin options describe."""
    return {"wasi": args.wasi, "fuel": args.fuel, "strict": args.strict or None,
            "http_response_headers": args.enable_http_response_headers}


# --------------------------------------------------------------------------------------------------
# Manifest
# --------------------------------------------------------------------------------------------------


def _wasm_source(path: str, name: str | None = None):
    """A WasmUrl for an http(s) URL, else a WasmFile with an absolute path (the runtime reads
    files relative to the working directory; a command line's paths already are)."""
    from extism_fast import WasmFile, WasmUrl

    if is_url(path):
        return WasmUrl(path, name=name)
    return WasmFile(os.path.abspath(path), name=name)


def _read_manifest_file(path: str):
    """The :class:`~extism_fast.Manifest` in a JSON or TOML file (as the official CLI reads it)."""
    from extism_fast import ManifestError
    from extism_fast.manifest import manifest_from_text

    try:
        with open(path, "rb") as f:
            text = f.read()
    except OSError as exc:
        raise ManifestError(f"cannot read manifest {path!r}: {exc.strerror or exc}") from None
    return manifest_from_text(text)


def _refuse_manifest_as_module(path: str) -> None:
    """ManifestError telling to add --manifest when PLUGIN is a manifest file (it would fail to
    compile as a module, with a message that does not say why)."""
    from extism_fast import ManifestError
    from extism_fast.manifest.sources import manifest_format

    kind = manifest_format(path)
    if kind is None:
        return
    # The API reads a file as TOML by its name (as the official SDK does), JSON by its content.
    api = (f"Plugin({path!r}) takes the same file" if kind == "JSON" or path.lower().endswith(".toml")
           else "Plugin() takes the same file once named *.toml")
    raise ManifestError(f"PLUGIN {path!r} is a {kind} manifest, not a wasm module: add --manifest (in Python, {api})")


def _relative_to(base: str, source):
    """``source`` with a relative file path made relative to ``base`` (a manifest's directory)."""
    import attrs

    from extism_fast import WasmFile

    if isinstance(source, WasmFile) and not os.path.isabs(source.path):
        return attrs.evolve(source, path=os.path.join(base, source.path))
    return source


def _check_plugin_file(path: str) -> None:
    """ManifestError unless ``path`` (PLUGIN) exists and is not a directory."""
    from extism_fast import ManifestError

    if not os.path.exists(path):
        raise ManifestError(f"no such file: {path!r}")
    if os.path.isdir(path):
        raise ManifestError(f"{path!r} is a directory, not a plugin file")


def _memory_changes(args: argparse.Namespace) -> dict[str, int]:
    """The ``memory`` fields the options set (the official CLI's --memory-max 0 sets none)."""
    changes = {}
    if args.max_pages is not None:
        changes["max_pages"] = args.max_pages
    if args.memory_max:
        changes["max_pages"] = args.memory_max
    if args.var_max is not None:
        changes["max_var_bytes"] = args.var_max
    if args.http_response_max is not None:
        changes["max_http_response_bytes"] = args.http_response_max
    return changes


def _option_changes(args: argparse.Namespace, manifest: Any) -> dict[str, Any]:
    """The manifest fields the options set, merged over ``manifest``'s."""
    changes: dict[str, Any] = {}
    if args.config or args.set_config:
        changes["config"] = {**manifest.config, **(args.set_config or {}), **dict(args.config)}
    if args.allow_path:
        changes["allowed_paths"] = {**(manifest.allowed_paths or {}), **dict(args.allow_path)}
    if args.allow_host:
        hosts = list(manifest.allowed_hosts or [])
        changes["allowed_hosts"] = hosts + [h for h in args.allow_host if h not in hosts]
    if args.timeout:  # 0 is the official CLI's "no timeout": the manifest's own stays
        changes["timeout_ms"] = args.timeout
    memory = _memory_changes(args)
    if memory:
        import attrs

        from extism_fast import MemoryOptions

        changes["memory"] = attrs.evolve(manifest.memory or MemoryOptions(), **memory)
    return changes


#: What the manifest of a module file holds in the fields the options change, without making one
#: (the manifest classes load attrs): for telling whether any option changes it.
_MODULE_FILE_FIELDS = types.SimpleNamespace(config={}, allowed_paths=None, allowed_hosts=None, memory=None)


def build_manifest(args: argparse.Namespace):
    """The :class:`~extism_fast.Manifest` the plugin options describe."""
    import attrs

    from extism_fast import Manifest

    path = args.plugin
    if not is_url(path) or args.manifest:
        _check_plugin_file(path)
    links = [_wasm_source(link, name) for name, link in args.link]

    if not args.manifest and not is_url(path):
        _refuse_manifest_as_module(path)
    if args.manifest:
        manifest = _read_manifest_file(path)
        # A manifest's relative paths mean "next to the manifest"; links go before its modules,
        # as in the official CLI.
        base = os.path.dirname(os.path.abspath(path))
        manifest = attrs.evolve(manifest, wasm=links + [_relative_to(base, s) for s in manifest.wasm])
    else:
        manifest = Manifest(links + [_wasm_source(path)])

    changes = _option_changes(args, manifest)
    # attrs.evolve validates again: the manifest's own checks cover what a --manifest file holds.
    return attrs.evolve(manifest, **changes) if changes else manifest


def _module_path(args: argparse.Namespace) -> str | None:
    """PLUGIN's absolute path when :class:`~extism_fast.Plugin` can be given the path itself for
    the manifest :func:`build_manifest` makes: a module file with no --manifest, --link or option
    that changes the manifest, which Plugin() reads as a module; else None."""
    path = args.plugin
    if args.manifest or args.link or is_url(path) or _option_changes(args, _MODULE_FILE_FIELDS):
        return None
    _check_plugin_file(path)
    # What Plugin() reads as one module file (a regular file, not a manifest: a file named *.toml or
    # starting with "{" is one), told as it tells it; else build_manifest's manifest says why.
    from extism_fast.manifest.plain import plain_source

    plain = plain_source(os.path.abspath(path))
    return None if plain is None else plain.path


def new_plugin(args: argparse.Namespace):
    """The :class:`~extism_fast.Plugin` the plugin options describe (``call``'s). A module file
    that no option changes is given as its path, so that Plugin() need not load the manifest
    classes (attrs: several ms of a cold `extism-fast call`); a manifest file with another name,
    which then fails to compile, is refused as :func:`build_manifest` refuses it."""
    import extism_fast

    kwargs = plugin_kwargs(args)
    path = _module_path(args)
    if path is None:
        return extism_fast.Plugin(build_manifest(args), functions=[], **kwargs)
    try:
        return extism_fast.Plugin(path, functions=[], **kwargs)
    except extism_fast.Error:
        _refuse_manifest_as_module(args.plugin)
        raise


# --------------------------------------------------------------------------------------------------
# Logging
# --------------------------------------------------------------------------------------------------


class plugin_logging:  # noqa: N801 - a context manager named as one, like contextlib.suppress
    """Print extism_fast's log records at ``level`` or above to stderr while the block runs
    (``--log-level``; nothing when ``level`` is None). A class rather than a contextlib generator,
    so that the command's modules need no contextlib (~0.5 ms of a fresh process)."""

    def __init__(self, level: int | None) -> None:
        self.level = level
        self.handler: Any = None

    def __enter__(self) -> None:
        if self.level is None:
            return
        import logging

        self.handler = logging.StreamHandler(sys.stderr)
        self.handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        logger = logging.getLogger(LOGGER_NAME)
        logger.addHandler(self.handler)
        logger.setLevel(self.level)

    def __exit__(self, *exc_info: object) -> None:
        if self.handler is None:
            return
        import logging

        logger = logging.getLogger(LOGGER_NAME)
        logger.removeHandler(self.handler)
        logger.setLevel(logging.NOTSET)
        self.handler = None
