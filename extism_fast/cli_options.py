"""What the ``extism-fast`` subcommands share: the plugin options, their argument types, the
manifest they describe, ``--log-level`` and the one-line error report.

:mod:`extism_fast.cli` (``call``, the parser) and :mod:`extism_fast.cli_batch` (``batch``) both
import this module; neither imports the other's internals, so there is no import cycle.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import sys
from collections.abc import Callable, Iterator
from typing import IO, Any

import attrs

from extism_fast.logs import LOG_LEVELS as _LOG_LEVELS

PROG = "extism-fast"
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

#: The largest ``--timeout`` / ``timeout_ms``: the runtime counts the timeout in nanoseconds in
#: 64 bits.
MAX_TIMEOUT_MS = (2**64 - 1) // 1_000_000
#: The largest ``--max-pages``: the Extism manifest's ``max_pages`` is a u32.
MAX_PAGES = 2**32 - 1



def first_line(message: str) -> str:
    """The first non-blank line of ``message`` (stripped), or ``"unknown error"``."""
    lines = [line for line in str(message).strip().splitlines() if line.strip()]
    return lines[0].strip() if lines else "unknown error"


def fail(message: Any, status: int) -> int:
    """Print ``extism-fast: error: <first line of message>`` to stderr; return ``status``."""
    # Runtime messages speak of the Python API; name the flag instead.
    text = first_line(str(message)).replace("pass wasi=True", "pass --wasi")
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
    """``KEY=VALUE`` for ``--config``. Errors never show the value: config values are secrets."""
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError("--config expects KEY=VALUE, got an argument without '='")
    if not key:
        raise argparse.ArgumentTypeError("--config expects KEY=VALUE with a non-empty KEY")
    if not _is_utf8(key):
        raise argparse.ArgumentTypeError("--config KEY is not valid UTF-8")
    if not _is_utf8(value):
        raise argparse.ArgumentTypeError(f"--config value of {key!r} is not valid UTF-8")
    return key, value


def allow_path(text: str) -> tuple[str, str]:
    """``HOST:GUEST`` (``ro:HOST:GUEST`` read-only); a bare ``HOST`` mounts at the same path."""
    if "\0" in text:
        raise argparse.ArgumentTypeError("--allow-path must not contain a NUL character")
    read_only = text.startswith("ro:")
    rest = text[3:] if read_only else text
    host, sep, guest = rest.rpartition(":")
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


def log_level(text: str) -> int:
    """``--log-level``: a level name (case-insensitive) to a :mod:`logging` level."""
    level = _LOG_LEVELS.get(text.lower())
    if level is None:
        raise argparse.ArgumentTypeError(
            f"unknown log level {text!r} (choose from {', '.join(k for k in _LOG_LEVELS if k != 'warning')})"
        )
    return level


# --------------------------------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------------------------------


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    """The PLUGIN and FUNCTION positionals, shared by ``call`` and ``batch``."""
    parser.add_argument("plugin", metavar="PLUGIN",
                        help="a .wasm or .wat file, or with --manifest a JSON or TOML manifest file")
    parser.add_argument("function", metavar="FUNCTION", help="name of the exported plugin function")


def add_plugin_options(parser: argparse.ArgumentParser) -> None:
    """The options that describe the plugin (read by :func:`build_manifest`) and its logging,
    shared by ``call`` and ``batch``."""
    parser.add_argument("-m", "--manifest", action="store_true",
                        help="PLUGIN is a JSON or TOML Extism manifest; relative wasm paths in it are "
                             "resolved against the manifest's directory, and the options below "
                             "are merged over it")
    parser.add_argument("--wasi", action="store_true",
                        help="enable WASI (the plugin's stdout/stderr are shown only when "
                             "EXTISM_ENABLE_WASI_OUTPUT is set, as with the official CLI)")
    parser.add_argument("--strict", action="store_true",
                        help="fail the call on kernel accesses the official runtime quietly ignores "
                             "(out-of-range loads, stores and input reads), naming the function and "
                             "the offset: for debugging a plugin")
    parser.add_argument("-c", "--config", metavar="KEY=VALUE", action="append", type=config_item,
                        default=[], help="set a config value the plugin reads with config_get "
                                         "(repeatable)")
    parser.add_argument("--allow-path", metavar="[ro:]HOST:GUEST", action="append",
                        type=allow_path, default=[],
                        help="mount host directory HOST at GUEST for WASI; 'ro:' mounts it "
                             "read-only (repeatable, needs --wasi)")
    parser.add_argument("--allow-host", metavar="HOST", action="append", default=[],
                        help="allow http_request to HOST, a glob such as '*.example.com' "
                             "(repeatable)")
    parser.add_argument("-t", "--timeout", metavar="MS", type=positive_int("--timeout", MAX_TIMEOUT_MS),
                        help="fail the call after MS milliseconds")
    parser.add_argument("--max-pages", metavar="N", type=non_negative_int("--max-pages", MAX_PAGES),
                        help="cap the plugin's memory at N 64 KiB pages")
    parser.add_argument("--log-level", metavar="LEVEL", type=log_level,
                        help="print plugin log messages at LEVEL or above to stderr: "
                             "trace, debug, info, warn, error, off (default: off)")


# --------------------------------------------------------------------------------------------------
# Manifest
# --------------------------------------------------------------------------------------------------


def build_manifest(args: argparse.Namespace):
    """The :class:`~extism_fast.Manifest` the plugin options describe."""
    from extism_fast import Manifest, ManifestError, MemoryOptions, WasmFile
    from extism_fast.manifest import manifest_from_text

    path = args.plugin
    if not os.path.exists(path):
        raise ManifestError(f"no such file: {path!r}")
    if os.path.isdir(path):
        raise ManifestError(f"{path!r} is a directory, not a plugin file")

    if args.manifest:
        try:
            with open(path, "rb") as f:
                text = f.read()
        except OSError as exc:
            raise ManifestError(f"cannot read manifest {path!r}: {exc.strerror or exc}") from None
        manifest = manifest_from_text(text)
        # The runtime reads files relative to the working directory; a manifest's relative paths
        # mean "next to the manifest", so make them absolute here.
        base = os.path.dirname(os.path.abspath(path))
        wasm = [
            attrs.evolve(s, path=os.path.join(base, s.path))
            if isinstance(s, WasmFile) and not os.path.isabs(s.path)
            else s
            for s in manifest.wasm
        ]
        manifest = attrs.evolve(manifest, wasm=wasm)
    else:
        manifest = Manifest([WasmFile(os.path.abspath(path))])

    changes: dict[str, Any] = {}
    if args.config:
        changes["config"] = {**manifest.config, **dict(args.config)}
    if args.allow_path:
        changes["allowed_paths"] = {**(manifest.allowed_paths or {}), **dict(args.allow_path)}
    if args.allow_host:
        hosts = list(manifest.allowed_hosts or [])
        changes["allowed_hosts"] = hosts + [h for h in args.allow_host if h not in hosts]
    if args.timeout is not None:
        changes["timeout_ms"] = args.timeout
    if args.max_pages is not None:
        changes["memory"] = attrs.evolve(manifest.memory or MemoryOptions(), max_pages=args.max_pages)
    # attrs.evolve validates again: the manifest's own checks cover what a --manifest file holds.
    return attrs.evolve(manifest, **changes) if changes else manifest


# --------------------------------------------------------------------------------------------------
# Logging
# --------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def plugin_logging(level: int | None) -> Iterator[None]:
    """Print extism_fast's log records at ``level`` or above to stderr while the block runs
    (``--log-level``; nothing when ``level`` is None)."""
    if level is None:
        yield
        return
    logger = logging.getLogger("extism_fast")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
