"""The ``extism-fast`` command: call a plugin function from the shell.

::

    extism-fast call examples/count_vowels.wat count_vowels --input "Hello World"
    echo -n "Hello" | extism-fast call plugin.wasm greet --config greeting=Hi
    extism-fast call --manifest manifest.json count_vowels --input-file big.txt
    extism-fast batch plugin.wasm greet --input-file inputs.jsonl --output out.jsonl

``call``'s output bytes go to stdout unchanged (no newline added). A failure prints one line,
``extism-fast: error: <message>``, to stderr and exits with status 1 (status 2 for bad usage).
``batch`` (one call per JSON line, on a pool of plugin instances) is described in
:mod:`extism_fast.batch`.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any, NoReturn

import attrs

PROG = "extism-fast"
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

_LOG_LEVELS = {
    "trace": 5,  # extism_fast's TRACE level, below DEBUG
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "off": logging.CRITICAL + 10,
}


class UsageError(Exception):
    """Bad command-line usage (exit status 2)."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, ``extism-fast: error: ...``, and exit 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _first_line(message: str) -> str:
    lines = [line for line in str(message).strip().splitlines() if line.strip()]
    return lines[0].strip() if lines else "unknown error"


def _fail(message: Any, status: int) -> int:
    # Runtime messages speak of the Python API; name the flag instead.
    text = _first_line(str(message)).replace("pass wasi=True", "pass --wasi")
    sys.stderr.write(f"{PROG}: error: {text}\n")
    sys.stderr.flush()
    return status


def _versions() -> str:
    from importlib import metadata

    import extism_fast

    try:
        wasmtime_version = metadata.version("wasmtime")
    except metadata.PackageNotFoundError:  # pragma: no cover - wasmtime is a dependency
        wasmtime_version = "unknown"
    return f"{PROG} {extism_fast.__version__} (wasmtime {wasmtime_version})"


# --------------------------------------------------------------------------------------------------
# Argument types
# --------------------------------------------------------------------------------------------------


def _config_item(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def _allow_path(text: str) -> tuple[str, str]:
    """``HOST:GUEST`` (``ro:HOST:GUEST`` read-only); a bare ``HOST`` mounts at the same path."""
    read_only = text.startswith("ro:")
    rest = text[3:] if read_only else text
    host, sep, guest = rest.rpartition(":")
    if not sep:
        host, guest = rest, rest
    if not host or not guest:
        raise argparse.ArgumentTypeError(f"expected [ro:]HOST:GUEST, got {text!r}")
    return ("ro:" if read_only else "") + host, guest


def _int_at_least(what: str, minimum: int):
    """An argparse type: an integer >= minimum (0 or 1), named `what` in its errors."""
    def parse(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be an integer, got {text!r}") from None
        if value < minimum:
            rule = "be positive" if minimum == 1 else "not be negative"
            raise argparse.ArgumentTypeError(f"{what} must {rule}, got {text!r}")
        return value

    return parse


def _positive_int(what: str):
    return _int_at_least(what, 1)


def _non_negative_int(what: str):
    return _int_at_least(what, 0)


def _log_level(text: str) -> int:
    level = _LOG_LEVELS.get(text.lower())
    if level is None:
        raise argparse.ArgumentTypeError(
            f"unknown log level {text!r} (choose from {', '.join(k for k in _LOG_LEVELS if k != 'warning')})"
        )
    return level


# --------------------------------------------------------------------------------------------------
# Parser
# --------------------------------------------------------------------------------------------------


def _add_target_arguments(parser: argparse.ArgumentParser) -> None:
    """The PLUGIN and FUNCTION positionals, shared by ``call`` and ``batch``."""
    parser.add_argument("plugin", metavar="PLUGIN",
                        help="a .wasm or .wat file, or with --manifest a JSON manifest file")
    parser.add_argument("function", metavar="FUNCTION", help="name of the exported plugin function")


def _add_plugin_options(parser: argparse.ArgumentParser) -> None:
    """The options that describe the plugin (read by :func:`build_manifest`) and its logging,
    shared by ``call`` and ``batch``."""
    parser.add_argument("-m", "--manifest", action="store_true",
                        help="PLUGIN is a JSON Extism manifest; relative wasm paths in it are "
                             "resolved against the manifest's directory, and the options below "
                             "are merged over it")
    parser.add_argument("--wasi", action="store_true", help="enable WASI (stdout/stderr inherited)")
    parser.add_argument("-c", "--config", metavar="KEY=VALUE", action="append", type=_config_item,
                        default=[], help="set a config value the plugin reads with config_get "
                                         "(repeatable)")
    parser.add_argument("--allow-path", metavar="[ro:]HOST:GUEST", action="append",
                        type=_allow_path, default=[],
                        help="mount host directory HOST at GUEST for WASI; 'ro:' mounts it "
                             "read-only (repeatable, needs --wasi)")
    parser.add_argument("--allow-host", metavar="HOST", action="append", default=[],
                        help="allow http_request to HOST, a glob such as '*.example.com' "
                             "(repeatable)")
    parser.add_argument("-t", "--timeout", metavar="MS", type=_positive_int("--timeout"),
                        help="fail the call after MS milliseconds")
    parser.add_argument("--max-pages", metavar="N", type=_non_negative_int("--max-pages"),
                        help="cap the plugin's memory at N 64 KiB pages")
    parser.add_argument("--log-level", metavar="LEVEL", type=_log_level,
                        help="print plugin log messages at LEVEL or above to stderr: "
                             "trace, debug, info, warn, error, off (default: off)")


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
    _add_target_arguments(call)
    source = call.add_mutually_exclusive_group()
    source.add_argument("-i", "--input", metavar="TEXT",
                        help="input as text (encoded as UTF-8)")
    source.add_argument("-f", "--input-file", metavar="FILE",
                        help="read the input bytes from FILE ('-' for stdin)")
    _add_plugin_options(call)

    from extism_fast.batch import add_batch_parser

    add_batch_parser(commands)
    return parser


# --------------------------------------------------------------------------------------------------
# Manifest
# --------------------------------------------------------------------------------------------------


def build_manifest(args: argparse.Namespace):
    """The :class:`~extism_fast.Manifest` the ``call`` options describe."""
    from extism_fast import Manifest, ManifestError, MemoryOptions, WasmFile

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
        manifest = Manifest.from_json(text)
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
    return attrs.evolve(manifest, **changes) if changes else manifest


def _read_input(args: argparse.Namespace) -> bytes:
    if args.input is not None:
        # surrogateescape: bytes that were not valid UTF-8 on the command line come back unchanged.
        return args.input.encode("utf-8", "surrogateescape")
    if args.input_file is not None:
        if args.input_file == "-":
            return sys.stdin.buffer.read()
        try:
            with open(args.input_file, "rb") as f:
                return f.read()
        except OSError as exc:
            raise OSError(f"cannot read input file {args.input_file!r}: {exc.strerror or exc}") from None
    stdin = sys.stdin
    if stdin is None or stdin.isatty():
        return b""
    try:
        return stdin.buffer.read()
    except OSError as exc:
        raise OSError(f"cannot read stdin: {exc}") from None


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


def _call(args: argparse.Namespace) -> int:
    import extism_fast

    with plugin_logging(args.log_level):
        try:
            data = _read_input(args)
            manifest = build_manifest(args)
            with extism_fast.Plugin(manifest, wasi=args.wasi, functions=[]) as plugin:
                output = plugin.call(args.function, data)
            out = sys.stdout.buffer
            out.write(output)
            out.flush()
            return EXIT_OK
        except extism_fast.Error as exc:
            return _fail(exc, EXIT_FAILURE)
        except OSError as exc:
            return _fail(exc, EXIT_FAILURE)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        return _fail(exc, EXIT_USAGE)
    except SystemExit as exc:  # --help / --version
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    try:
        if args.command == "call":
            return _call(args)
        if args.command == "batch":
            from extism_fast.batch import run_batch_command

            return run_batch_command(args)
        return _fail(f"unknown command {args.command!r}", EXIT_USAGE)  # pragma: no cover
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): not our failure; avoid a second error at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
