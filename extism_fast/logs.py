"""Logging configuration with the official SDK's functions, on top of Python's ``logging``.

Plugin log messages (``log_info`` & co.), host-function tracebacks and runtime warnings go to the
``extism_fast`` logger; the level of that logger is also what plugins see through
``get_log_level``. Configure it like any logger, or with the official SDK's global switches:

* :func:`set_log_file` writes the lines to a file, ``"stdout"`` or ``"stderr"``;
* :func:`set_log_custom` buffers the lines until :meth:`CustomLogger.drain` hands them to a
  callback.

Both set the logger's level; calling either again replaces the handler the previous call
installed (only one such destination is active at a time, as in the official SDK). Records still
propagate to the root logger as usual.
"""

from __future__ import annotations

import collections
import datetime
import logging
import sys
import threading
from typing import Callable, Deque, Optional

__all__ = ["set_log_file", "set_log_custom", "CustomLogger", "extism_version", "LOG_LEVELS"]

LOGGER_NAME = "extism_fast"
#: Python level of Extism's "trace" (below DEBUG); registered as "TRACE".
TRACE = 5
logging.addLevelName(TRACE, "TRACE")

#: Extism level names -> Python logging levels.
LOG_LEVELS = {
    "trace": TRACE,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}

_LEVEL_NAMES = {TRACE: "TRACE", logging.DEBUG: "DEBUG", logging.INFO: "INFO",
                logging.WARNING: "WARN", logging.ERROR: "ERROR", logging.CRITICAL: "ERROR"}


class _Formatter(logging.Formatter):
    """Lines like the official SDK's: ``<UTC time> <LEVEL> <logger>: <message> plugin="<id>"``."""

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.datetime.fromtimestamp(record.created, tz=datetime.timezone.utc)
        level = _LEVEL_NAMES.get(record.levelno, record.levelname)
        line = f"{when.strftime('%Y-%m-%dT%H:%M:%S.%fZ')} {level:>5} {record.name}: {record.getMessage()}"
        plugin_id = getattr(record, "plugin_id", None)
        if plugin_id is not None:
            line += f' plugin="{plugin_id}"'
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        elif record.exc_text:
            line += "\n" + record.exc_text
        return line

_lock = threading.Lock()
_installed: Optional[logging.Handler] = None


def _level(level: Optional[str]) -> int:
    if level is None:
        return logging.ERROR
    if isinstance(level, str) and level.lower() in LOG_LEVELS:
        return LOG_LEVELS[level.lower()]
    raise ValueError(
        f"unknown log level {level!r}: expected one of trace, debug, info, warn, error"
    )


def _install(handler: logging.Handler, level: int) -> None:
    global _installed
    handler.setFormatter(_Formatter())
    logger = logging.getLogger(LOGGER_NAME)
    with _lock:
        previous, _installed = _installed, handler
        logger.addHandler(handler)
        logger.setLevel(level)
        if previous is not None:
            logger.removeHandler(previous)
    if previous is not None:
        previous.close()


def set_log_file(file: str, level: Optional[str] = "error") -> None:
    """Write the ``extism_fast`` log to ``file`` at ``level`` and above (global setting).

    :param file: a file path (appended to), or ``"stdout"`` / ``"stderr"``.
    :param level: ``"trace"``, ``"debug"``, ``"info"``, ``"warn"`` or ``"error"`` (the default;
        ``None`` means the default too).
    :raises ValueError: for an unknown level name.
    """
    py_level = _level(level)
    if not isinstance(file, str) or not file:
        raise TypeError(f"set_log_file: file must be a path, 'stdout' or 'stderr', got {file!r}")
    handler: logging.Handler
    if file == "stdout":
        handler = _StreamHandler(lambda: sys.stdout)
    elif file == "stderr":
        handler = _StreamHandler(lambda: sys.stderr)
    else:
        handler = logging.FileHandler(file, encoding="utf-8")
    _install(handler, py_level)


class _StreamHandler(logging.StreamHandler):
    """A StreamHandler that looks the stream up at each record (sys.stdout may be replaced)."""

    def __init__(self, get_stream: Callable[[], object]) -> None:
        super().__init__(get_stream())
        self._get_stream = get_stream

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = self._get_stream()
        super().emit(record)

    def close(self) -> None:  # never close sys.stdout / sys.stderr
        logging.Handler.close(self)


class _BufferHandler(logging.Handler):
    def __init__(self, buffer: Deque[str], buffer_lock: threading.Lock) -> None:
        super().__init__()
        self._buffer = buffer
        self._buffer_lock = buffer_lock

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        with self._buffer_lock:
            self._buffer.append(line + "\n")


class CustomLogger:
    """Returned by :func:`set_log_custom`: buffers log lines until :meth:`drain`."""

    def __init__(self, f: Callable[[str], object]) -> None:
        self.callback: Optional[Callable[[str], object]] = None
        self._buffer: Deque[str] = collections.deque()
        self._buffer_lock = threading.Lock()
        self.handler: logging.Handler = _BufferHandler(self._buffer, self._buffer_lock)
        self.set_callback(f)

    def set_callback(self, f: Callable[[str], object]) -> None:
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


def set_log_custom(f: Callable[[str], object], level: Optional[str] = "error") -> CustomLogger:
    """Buffer the ``extism_fast`` log at ``level`` and above (global setting).

    :param f: called by ``drain()`` with each log line (a str ending in a newline, as in the
        official SDK; a record with a traceback is one multi-line str).
    :param level: ``"trace"``, ``"debug"``, ``"info"``, ``"warn"`` or ``"error"`` (the default).
    :returns: a :class:`CustomLogger`; call its ``drain()`` to deliver the buffered lines.
    """
    py_level = _level(level)
    custom = CustomLogger(f)
    _install(custom.handler, py_level)
    return custom


def extism_version() -> str:
    """The runtime version: ``"extism_fast <version> (wasmtime <version>)"``."""
    from extism_fast import __version__

    import importlib.metadata  # here, not at import: it costs ~10 ms

    try:
        wasmtime = importlib.metadata.version("wasmtime")
    except importlib.metadata.PackageNotFoundError:
        wasmtime = "unknown"
    return f"extism_fast {__version__} (wasmtime {wasmtime})"
