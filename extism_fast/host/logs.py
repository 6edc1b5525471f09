"""Logging configuration with the official SDK's functions, on top of Python's ``logging``.

Plugin log messages (``log_info`` & co.), host-function tracebacks and runtime warnings go to the
``extism_fast`` logger. Like the official SDK, nothing is printed until the application configures
logging (the logger has a ``NullHandler``), and until then plugins see ``get_log_level`` answer
"off" so they skip formatting messages. Once a handler is reachable from the logger (the
application's ``logging.basicConfig()`` or own handler, or the official SDK's global switches
below), ``get_log_level`` answers the lowest level the logger has enabled:

* :func:`set_log_file` writes the lines to a file, ``"stdout"`` or ``"stderr"``;
* :func:`set_log_custom` buffers the lines until :meth:`CustomLogger.drain` hands them to a
  callback.

Both set the logger's level from an official filter string (``"info"``, ``"extism=debug"``,
``"extism=debug,cranelift=warn"``, ``"off"``); calling either again replaces the handler the
previous call installed (only one such destination is active at a time, as in the official SDK).
Records still propagate to the root logger as usual.

This module is the one table of log levels (names, Python levels, ABI levels) the rest of the
package uses.
"""

import _thread  # its locks are threading's: threading itself costs ~1 ms of the package's import
import sys

from extism_fast._version import EXTISM_RUNTIME_VERSION

# logging loads with the first record, handler or level check (get_logger), not with the package:
# it and what it imports (traceback, tokenize, string) cost a few milliseconds at import time.
# typing is not imported at run time either (tests/test_cold_start.py).
TYPE_CHECKING = False
if TYPE_CHECKING:
    import logging
    from typing import Any, Callable, Deque, Optional

__all__ = [
    "set_log_file", "set_log_custom", "CustomLogger", "extism_version", "parse_log_filter",
    "plugin_log_level", "get_logger", "LOG_LEVELS", "ABI_LEVELS", "TRACE", "OFF", "ABI_LEVEL_OFF",
]

LOGGER_NAME = "extism_fast"
# logging's level numbers (logging.DEBUG .. logging.CRITICAL: fixed values of its API).
_DEBUG, _INFO, _WARNING, _ERROR, _CRITICAL = 10, 20, 30, 40, 50
#: Python level of Extism's "trace" (below DEBUG); registered as "TRACE" (get_logger).
TRACE = 5
#: A Python level above every record: the logger passes nothing on ("off").
OFF = _CRITICAL + 10

#: Extism level names -> Python logging levels.
LOG_LEVELS = {
    "trace": TRACE,
    "debug": _DEBUG,
    "info": _INFO,
    "warn": _WARNING,
    "warning": _WARNING,
    "error": _ERROR,
    "off": OFF,
}
# Numeric levels of the official filter syntax (tracing's LevelFilter): 0 off .. 5 trace.
_NUMERIC_LEVELS = {"0": OFF, "1": _ERROR, "2": _WARNING, "3": _INFO, "4": _DEBUG, "5": TRACE}

#: Python level of each ABI log level (``extism_log`` / ``get_log_level``: 0 trace .. 4 error).
ABI_LEVELS = (TRACE, _DEBUG, _INFO, _WARNING, _ERROR)
#: What ``get_log_level`` answers when logging is off (i32::MAX, as the official runtime).
ABI_LEVEL_OFF = 2**31 - 1

# The target the official runtime logs plugin messages under; a filter directive applies to it
# when its target is a prefix of it (as tracing's EnvFilter matches targets).
_PLUGIN_TARGET = "extism::pdk"

_logger: "Optional[logging.Logger]" = None
_setup_lock = _thread.allocate_lock()

_LEVEL_NAMES = {TRACE: "TRACE", _DEBUG: "DEBUG", _INFO: "INFO", _WARNING: "WARN", _ERROR: "ERROR",
                _CRITICAL: "ERROR"}


def get_logger() -> "logging.Logger":
    """The ``extism_fast`` logger, set up at its first use (logging is imported then): TRACE
    registered as a level name, and a NullHandler, as a library's logger is: silent until the
    application configures logging (no "lastResort" output)."""
    global _logger
    if _logger is None:
        import logging

        with _setup_lock:
            if _logger is None:
                logging.addLevelName(TRACE, "TRACE")
                logger = logging.getLogger(LOGGER_NAME)
                logger.addHandler(logging.NullHandler())
                _logger = logger
    return _logger


class LazyLogger:
    """get_logger() for the modules that log only on rare paths (warnings, failures): any use
    sets the logger up, so importing them does not import logging."""

    __slots__ = ()

    def __getattr__(self, name: str) -> "Any":
        return getattr(get_logger(), name)


def _has_output(logger: "logging.Logger") -> bool:
    """Whether a record of ``logger`` reaches a handler that outputs it (NullHandlers do not)."""
    import logging

    current: Optional[logging.Logger] = logger
    while current is not None:
        if any(not isinstance(h, logging.NullHandler) for h in current.handlers):
            return True
        if not current.propagate:
            return False
        current = current.parent
    return False


def plugin_log_level(logger: "Optional[logging.Logger]" = None) -> int:
    """What ``get_log_level`` answers: the lowest ABI level (0 trace .. 4 error) the plugin's
    logger (``Plugin(logger=...)``, else ``extism_fast``) passes on, or :data:`ABI_LEVEL_OFF`
    when it passes nothing on or no handler would output the record (logging not configured)."""
    target = get_logger() if logger is None else logger
    if _has_output(target):
        for abi_level, py_level in enumerate(ABI_LEVELS):
            if target.isEnabledFor(py_level):
                return abi_level
    return ABI_LEVEL_OFF


def _level_of(name: str) -> "Optional[int]":
    name = name.lower()
    return LOG_LEVELS.get(name, _NUMERIC_LEVELS.get(name))


def _bad_directive(directive: str, why: str) -> ValueError:
    return ValueError(
        f"invalid log filter directive {directive!r}: {why} (expected a level - trace, debug, "
        f"info, warn, error, off - or TARGET=LEVEL such as 'extism=debug', comma-separated)"
    )


def parse_log_filter(spec: "Optional[str]") -> int:
    """The ``extism_fast`` logger's level for an official log filter string.

    The syntax is the official runtime's (tracing's ``EnvFilter``): comma-separated directives,
    each a level (``info``), ``TARGET=LEVEL`` (``extism=debug``) or a bare ``TARGET`` (all its
    levels). The most specific directive whose target prefixes ``extism::pdk`` wins, else the
    last plain level; directives for other targets (``cranelift=warn``) are accepted and ignored,
    so a filter of only those turns plugin logs off. ``None`` or ``""`` means ``"error"``.

    :raises ValueError: naming the first directive that is not valid (unknown level, empty
        target, ...). The official runtime ignores such directives; a typo should not silently
        turn logging off.
    """
    if spec is None:
        return _ERROR
    if not isinstance(spec, str):
        raise TypeError(f"log level must be a str, got {type(spec).__name__}")
    plain: Optional[int] = None
    ours: Optional[tuple[int, int]] = None  # (target length, level) of the most specific match
    foreign = False
    for raw in spec.split(","):
        directive = raw.strip()
        if not directive:
            continue
        target, sep, name = directive.partition("=")
        if not sep:
            level = _level_of(directive)
            if level is not None:
                plain = level
                continue
            if not _PLUGIN_TARGET.startswith(directive):
                raise _bad_directive(directive, f"unknown log level {directive!r}")
            target, level = directive, TRACE  # a bare target: every level of it
        else:
            level = _level_of(name)
            if not target or any(c.isspace() for c in directive) or level is None:
                why = "empty target" if not target else f"unknown log level {name!r}"
                raise _bad_directive(directive, why)
        if _PLUGIN_TARGET.startswith(target):
            if ours is None or len(target) >= ours[0]:
                ours = (len(target), level)
        else:
            foreign = True
    if ours is not None:
        return ours[1]
    if plain is not None:
        return plain
    return OFF if foreign else _ERROR


_lock = _thread.allocate_lock()
_installed: "Optional[logging.Handler]" = None


def _install(handler: "logging.Handler", level: int) -> None:
    from extism_fast.host.log_output import Formatter

    global _installed
    handler.setFormatter(Formatter(_LEVEL_NAMES))
    logger = get_logger()
    with _lock:
        previous, _installed = _installed, handler
        logger.addHandler(handler)
        logger.setLevel(level)
        if previous is not None:
            logger.removeHandler(previous)
    if previous is not None:
        previous.close()


def set_log_file(file: str, level: "Optional[str]" = "error") -> None:
    """Write the ``extism_fast`` log to ``file`` at ``level`` and above (global setting).

    :param file: a file path (appended to), or ``"stdout"`` / ``"stderr"``.
    :param level: a level (``"trace"``, ``"debug"``, ``"info"``, ``"warn"``, ``"error"`` - the
        default, also for ``None`` - or ``"off"``) or an official filter string such as
        ``"extism=debug,cranelift=warn"`` (see :func:`parse_log_filter`).
    :raises ValueError: naming an invalid filter directive.
    """
    py_level = parse_log_filter(level)
    if not isinstance(file, str) or not file:
        raise TypeError(f"set_log_file: file must be a path, 'stdout' or 'stderr', got {file!r}")
    import logging

    from extism_fast.host.log_output import StreamHandler

    handler: logging.Handler
    if file == "stdout":
        handler = StreamHandler(lambda: sys.stdout)
    elif file == "stderr":
        handler = StreamHandler(lambda: sys.stderr)
    else:
        handler = logging.FileHandler(file, encoding="utf-8")
    _install(handler, py_level)


class CustomLogger:
    """Returned by :func:`set_log_custom`: buffers log lines until :meth:`drain`."""

    def __init__(self, f: "Callable[[str], object]") -> None:
        import collections  # not with the package: ~2 ms of a fresh process (tests/test_cold_start.py)

        from extism_fast.host.log_output import BufferHandler

        self.callback: Optional[Callable[[str], object]] = None
        self._buffer: Deque[str] = collections.deque()
        self._buffer_lock = _thread.allocate_lock()
        self.handler: logging.Handler = BufferHandler(self._buffer, self._buffer_lock)
        self.set_callback(f)

    def set_callback(self, f: "Callable[[str], object]") -> None:
        """Replace the callback that :meth:`drain` calls with each line."""
        if not callable(f):
            raise TypeError(f"log callback must be callable, got {f!r}")
        self.callback = f

    def drain(self) -> None:
        """Call the callback with each buffered line (oldest first), emptying the buffer."""
        callback = self.callback
        if callback is None:
            return
        while True:
            with self._buffer_lock:
                if not self._buffer:
                    return
                line = self._buffer.popleft()
            callback(line)

    def __del__(self) -> None:
        try:
            self.drain()
        except Exception:
            pass


def set_log_custom(f: "Callable[[str], object]", level: "Optional[str]" = "error") -> CustomLogger:
    """Buffer the ``extism_fast`` log at ``level`` and above (global setting).

    :param f: called by ``drain()`` with each log line (a str ending in a newline, as in the
        official SDK; a record with a traceback is one multi-line str).
    :param level: a level or an official filter string, as for :func:`set_log_file`.
    :raises ValueError: naming an invalid filter directive.
    :returns: a :class:`CustomLogger`; call its ``drain()`` to deliver the buffered lines.
    """
    py_level = parse_log_filter(level)
    custom = CustomLogger(f)
    _install(custom.handler, py_level)
    return custom


def extism_version() -> str:
    """The version of the Extism runtime whose behaviour extism_fast matches, ``"X.Y.Z"``.

    The official SDK answers its runtime's (extism-sys) version; extism_fast answers the runtime
    version it is tested against side by side, so code that checks ``extism_version()`` sees the
    same thing. extism_fast's own version is :data:`extism_fast.__version__`.
    """
    return EXTISM_RUNTIME_VERSION
