"""What the ``extism-fast`` subcommands share: the plugin options' argument types and checks, the
manifest the options describe, ``--log-level`` and the one-line error report. The options
themselves, as argparse arguments, are in :mod:`extism_fast.cli.arguments`.

:mod:`extism_fast.cli` (``call``), its parsers and :mod:`extism_fast.cli.batch` (``batch``) import
this module, which imports none of them (tests/test_layout.py checks there is no import cycle),
nor argparse or re: a ``call`` parsed without argparse (:mod:`extism_fast.cli.fastpath`) loads it.
"""

import os
import sys
import types

from extism_fast.host.logs import LOG_LEVELS as _LOG_LEVELS, LOGGER_NAME

TYPE_CHECKING = False  # typing is not imported at run time (cold start: tests/test_cold_start.py)
if TYPE_CHECKING:
    import argparse
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
#: The largest ``--loop``: a count, not a memory size, so only a sanity bound.
MAX_LOOP = 2**63 - 1
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


# The LinkError hint for an import from a module nothing provides (_link_module_hint); re (~2 ms with
# what it imports) and the pattern load with the first failure that needs them, not by every start.
_MANIFEST_MODULE_HINT = r"add it to the manifest's wasm list with name='([^'\\]*)'$"


def error_text(message: "Any") -> str:
    """``message`` as the command line words it: runtime messages speak of the Python API, this
    names the flag instead (--wasi, --link)."""
    text = str(message).replace("pass wasi=True", "pass --wasi")
    import re  # a failure's message only: not loaded by a call that succeeds

    return re.sub(_MANIFEST_MODULE_HINT, r"link it with --link \1=PATH", text, flags=re.MULTILINE)


def fail(message: "Any", status: int) -> int:
    """Print ``extism-fast: error: <first line of message>`` to stderr; return ``status``."""
    text = first_line(error_text(message))
    sys.stderr.write(f"{PROG}: error: {text}\n")
    sys.stderr.flush()
    return status


def open_file(path: str, mode: str, **kwargs: "Any") -> "IO[Any]":
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
        raise _type_error("--config expects KEY=VALUE with a non-empty KEY")
    if not _is_utf8(key):
        raise _type_error("--config KEY is not valid UTF-8")
    if not _is_utf8(value):
        raise _type_error(f"--config value of {key!r} is not valid UTF-8")
    return key, value


def allow_path(text: str) -> tuple[str, str]:
    """``HOST:GUEST`` (``ro:HOST:GUEST`` read-only); a bare ``HOST`` mounts at the same path.
    As in the official CLI, the first ``:`` ends HOST (GUEST may hold more)."""
    if "\0" in text:
        raise _type_error("--allow-path must not contain a NUL character")
    read_only = text.startswith("ro:")
    rest = text[3:] if read_only else text
    host, sep, guest = rest.partition(":")
    if not sep:
        host, guest = rest, rest
    if not host or not guest:
        raise _type_error(f"expected [ro:]HOST:GUEST, got {text!r}")
    return ("ro:" if read_only else "") + host, guest


def _type_error(message: str) -> Exception:
    """argparse's ArgumentTypeError: an argument type's error, reported as a usage error naming the
    option (argparse is imported by the parser, which the fast path of cli/fastpath.py does not
    load; it falls back to the parser when a type refuses a value)."""
    import argparse

    return argparse.ArgumentTypeError(message)


def _is_integer(text: str) -> bool:
    """Whether ``text`` matches ``[+-]?[0-9]+`` (ASCII digits only), without loading re."""
    digits = text[1:] if text[:1] in ("+", "-") else text
    return digits != "" and all("0" <= c <= "9" for c in digits)


def _shown(text: str) -> str:
    """``text`` for an error message: repr, cut to a readable length."""
    return repr(text) if len(text) <= 40 else repr(text[:40]) + "..."


def int_in_range(what: str, minimum: int, maximum: int | None = None) -> "Callable[[str], int]":
    """An argparse type: a decimal integer >= minimum (0 or 1) and <= maximum, named ``what`` in
    its errors."""
    def parse(text: str) -> int:
        if not _is_integer(text):
            raise _type_error(f"{what} must be an integer, got {_shown(text)}")
        # Past 64 digits the exact value does not matter (and int() refuses ~4300 digits).
        digits = text.lstrip("+-")
        value = int(text) if len(digits) <= 64 else (-1 if text[0] == "-" else 1) * 10**64
        if value < minimum:
            rule = "be positive" if minimum == 1 else "not be negative"
            raise _type_error(f"{what} must {rule}, got {_shown(text)}")
        if maximum is not None and value > maximum:
            raise _type_error(f"{what} must be at most {maximum}, got {_shown(text)}")
        return value

    return parse


def positive_int(what: str, maximum: int | None = None) -> "Callable[[str], int]":
    """An argparse type: an integer in ``1..maximum``."""
    return int_in_range(what, 1, maximum)


def non_negative_int(what: str, maximum: int | None = None) -> "Callable[[str], int]":
    """An argparse type: an integer in ``0..maximum``."""
    return int_in_range(what, 0, maximum)


def _json_kind(value: "Any") -> str:
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
        raise _type_error("--set-config must be a JSON object, got invalid JSON") from None
    if not isinstance(value, dict):
        raise _type_error(f"--set-config must be a JSON object, got {_json_kind(value)}")
    for key, item in value.items():
        if not key or not _is_utf8(key):
            raise _type_error(f"--set-config keys must be non-empty valid UTF-8, got {key!r}")
        if not isinstance(item, str):
            raise _type_error(
                f"--set-config value of {key!r} must be a JSON string, got {_json_kind(item)} (quote it)")
        if not _is_utf8(item):
            raise _type_error(f"--set-config value of {key!r} is not valid UTF-8")
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
        raise _type_error("--link must not contain a NUL character")
    if not name or not path:
        raise _type_error(f"--link expects NAME=PATH, got {_shown(text)}")
    if name == "main":
        raise _type_error(
            "--link name 'main' is taken: PLUGIN is the main module; link it under another name")
    return name, path


def log_level(text: str) -> int:
    """``--log-level``: a level name (case-insensitive) to a :mod:`logging` level."""
    level = _LOG_LEVELS.get(text.lower())
    if level is None:
        raise _type_error(
            f"unknown log level {text!r} (choose from {', '.join(k for k in _LOG_LEVELS if k != 'warning')})"
        )
    return level


log_level.completions = tuple(_LOG_LEVELS)  # type: ignore[attr-defined]  # for cli/completion.py


# --------------------------------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------------------------------

# The types of the integer options: one object each, which the argparse parser (cli/arguments.py,
# cli/parser.py) and the fast path (cli/fastpath.py) share.
loop_count = non_negative_int("--loop", MAX_LOOP)
timeout_ms = non_negative_int("--timeout", MAX_TIMEOUT_MS)
max_pages = non_negative_int("--max-pages", MAX_PAGES)
memory_max = non_negative_int("--memory-max", MAX_PAGES)
var_max = non_negative_int("--var-max", U64_MAX)
http_response_max = non_negative_int("--http-response-max", U64_MAX)
fuel = positive_int("--fuel", U64_MAX)

# Each option below is declared once, for the argparse parsers (cli/arguments.py adds them) and the
# fast path (cli/fastpath.py parses them): (option strings, argparse action: "store", "store_true"
# or "append" (a new empty list by default), type (None: the text itself), default, metavar, help,
# the mutually exclusive group it is in (a name) or None).

#: ``call``'s own options, in its parser's order (then -v/--verbose, then PLUGIN_OPTIONS).
CALL_OWN_OPTIONS: "tuple[tuple[Any, ...], ...]" = (
    (("-i", "--input"), "store", None, None, "TEXT", "input as text (encoded as UTF-8)", "input"),
    (("-f", "--input-file"), "store", None, None, "FILE", "read the input bytes from FILE ('-' for stdin)", "input"),
    (("--stdin",), "store_true", None, False, None, "read the input bytes from stdin, even from a terminal", "input"),
    (("--json",), "store_true", None, False, None,
     "write each call's outcome as one JSON line on stdout: {\"output\": \"<text>\", \"error\": null} "
     "(\"output_base64\" when the output is not UTF-8) or {\"error\": {\"type\": ..., \"message\": ...}}; "
     "the exit status is unchanged", None),
    (("--loop",), "store", loop_count, 1, "N",
     "call the function N times on one instance; when N > 1 each output is followed by a newline (default 1)",
     None),
)

#: The options that describe the plugin (read by build_manifest and plugin_kwargs) and its logging,
#: shared by ``call`` and ``batch``, in their parsers' order; the official ``extism call`` flags are
#: all here, with the same meaning.
PLUGIN_OPTIONS: "tuple[tuple[Any, ...], ...]" = (
    (("-m", "--manifest"), "store_true", None, False, None,
     "PLUGIN is a JSON or TOML Extism manifest; relative wasm paths in it are resolved against the "
     "manifest's directory, and the options below are merged over it", None),
    (("--link",), "append", link_item, None, "NAME=PATH",
     "link another module (a file or http(s) URL) under NAME; PLUGIN is the main module (repeatable; "
     "PATH alone is named after its file)", None),
    (("--wasi",), "store_true", None, False, None,
     "enable WASI (the plugin's stdout/stderr are shown only when EXTISM_ENABLE_WASI_OUTPUT is set, as "
     "with the official CLI)", None),
    (("--strict",), "store_true", None, False, None,
     "fail the call on kernel accesses the official runtime quietly ignores (out-of-range loads, stores "
     "and input reads), naming the function and the offset: for debugging a plugin", None),
    (("-c", "--config"), "append", config_item, None, "KEY=VALUE",
     "set a config value the plugin reads with config_get; a bare KEY sets it to '' (repeatable)", None),
    (("--set-config",), "store", set_config, None, "JSON",
     "config values as a JSON object of strings; --config wins over it", None),
    (("--allow-path",), "append", allow_path, None, "[ro:]HOST:GUEST",
     "mount host directory HOST at GUEST for WASI; 'ro:' mounts it read-only (repeatable, needs --wasi)",
     None),
    (("--allow-host",), "append", None, None, "HOST",
     "allow http_request to HOST, a glob such as '*.example.com' (repeatable)", None),
    (("--enable-http-response-headers",), "store_true", None, False, None,
     "let the plugin read HTTP response headers (http_headers)", None),
    (("-t", "--timeout"), "store", timeout_ms, None, "MS", "fail the call after MS milliseconds (0: no timeout)",
     None),
    (("--max-pages",), "store", max_pages, None, "N", "cap the plugin's memory at N 64 KiB pages", "pages"),
    (("--memory-max",), "store", memory_max, None, "N",
     "the official CLI's --max-pages: N 64 KiB pages, 0 sets no cap", "pages"),
    (("--var-max",), "store", var_max, None, "BYTES",
     "cap the plugin's variables at BYTES in all (0 disables vars)", None),
    (("--http-response-max",), "store", http_response_max, None, "BYTES",
     "cap an HTTP response body the plugin receives at BYTES", None),
    (("--fuel",), "store", fuel, None, "N", "fail a call after N wasm instructions", None),
    (("--log-level",), "store", log_level, None, "LEVEL",
     "print plugin log messages at LEVEL or above to stderr: trace, debug, info, warn, error, off "
     "(default: off)", None),
)


def plugin_kwargs(args: "argparse.Namespace") -> "dict[str, Any]":
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


def _memory_changes(args: "argparse.Namespace") -> dict[str, int]:
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


def _option_changes(args: "argparse.Namespace", manifest: "Any") -> "dict[str, Any]":
    """The manifest fields the options set, merged over ``manifest``'s (``memory``: the fields of
    MemoryOptions they set, as a dict: a plain plugin's, manifest/plain.py)."""
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
        changes["memory"] = memory
    return changes


#: What the manifest of a module file holds in the fields the options change, without making one
#: (the manifest classes load attrs): for telling whether any option changes it.
_MODULE_FILE_FIELDS = types.SimpleNamespace(config={}, allowed_paths=None, allowed_hosts=None, memory=None)


def build_manifest(args: "argparse.Namespace"):
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
    if "memory" in changes:
        from extism_fast import MemoryOptions

        changes["memory"] = attrs.evolve(manifest.memory or MemoryOptions(), **changes["memory"])
    # attrs.evolve validates again: the manifest's own checks cover what a --manifest file holds.
    return attrs.evolve(manifest, **changes) if changes else manifest


#: What the options may change of a module file's manifest for it to stay a plain plugin (manifest/plain.py).
_PLAIN_CHANGES = {"config", "timeout_ms", "memory", "allowed_hosts", "allowed_paths"}


def _module_path(args: "argparse.Namespace") -> str | None:
    """PLUGIN's absolute path when :class:`~extism_fast.Plugin` can be given the path itself (or a
    manifest dict of it with the options' config, limits and grants: :func:`_plain_source`) for the
    manifest :func:`build_manifest` makes: a module file with no --manifest, --link or option that
    changes the manifest but its config, limits and grants, which Plugin() reads as a module; else None."""
    path = args.plugin
    if (args.manifest or args.link or is_url(path)
            or _option_changes(args, _MODULE_FILE_FIELDS).keys() - _PLAIN_CHANGES):
        return None
    _check_plugin_file(path)
    # What Plugin() reads as one module file (a regular file, not a manifest: a file named *.toml or
    # starting with "{" is one), told as it tells it; else build_manifest's manifest says why.
    from extism_fast.manifest.plain import plain_source

    plain = plain_source(os.path.abspath(path))
    return None if plain is None else plain.path


def _plain_source(path: str, args: "argparse.Namespace") -> "str | dict[str, Any]":
    """``path`` (a module file :func:`_module_path` gave), or the manifest dict of it with what the
    options change (a config, a timeout, memory limits, --allow-host, --allow-path): both plain
    plugins (manifest/plain.py; a value it cannot take is the schema's to refuse)."""
    changes = _option_changes(args, _MODULE_FILE_FIELDS)
    return {"wasm": [{"path": path}], **changes} if changes else path


def new_plugin(args: "argparse.Namespace"):
    """The :class:`~extism_fast.Plugin` the plugin options describe (``call``'s). A module file
    that no option but a config, --timeout, a memory limit, --allow-host or --allow-path changes is
    given as its path (or a
    manifest dict of it: :func:`_plain_source`), so that Plugin() need not load the manifest classes
    (attrs: ~45 ms of a cold `extism-fast call`); a manifest file with another name,
    which then fails to compile, is refused as :func:`build_manifest` refuses it."""
    import extism_fast

    kwargs = plugin_kwargs(args)
    path = _module_path(args)
    if path is None:
        return extism_fast.Plugin(build_manifest(args), functions=[], **kwargs)
    try:
        return extism_fast.Plugin(_plain_source(path, args), functions=[], **kwargs)
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
