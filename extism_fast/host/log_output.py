"""The handlers and the line format of the official SDK's log switches (``set_log_file``,
``set_log_custom`` in :mod:`extism_fast.host.logs`), which import this module when first called:
these classes derive from ``logging``'s, which the package does not import until it is used."""

from __future__ import annotations

import logging
import threading
from typing import Callable, Deque, Mapping

__all__ = ["BufferHandler", "Formatter", "StreamHandler"]


class Formatter(logging.Formatter):
    """Lines like the official SDK's: ``<UTC time> <LEVEL> <logger>: <message> plugin="<id>"``;
    ``level_names``: the official name of each Python level."""

    def __init__(self, level_names: Mapping[int, str]) -> None:
        super().__init__()
        self._level_names = level_names

    def format(self, record: logging.LogRecord) -> str:
        import datetime  # loaded with the first line formatted (import time)

        when = datetime.datetime.fromtimestamp(record.created, tz=datetime.timezone.utc)
        level = self._level_names.get(record.levelno, record.levelname)
        line = f"{when.strftime('%Y-%m-%dT%H:%M:%S.%fZ')} {level:>5} {record.name}: {record.getMessage()}"
        plugin_id = getattr(record, "plugin_id", None)
        if plugin_id is not None:
            line += f' plugin="{plugin_id}"'
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        elif record.exc_text:
            line += "\n" + record.exc_text
        return line


class StreamHandler(logging.StreamHandler):
    """A StreamHandler that looks the stream up at each record (sys.stdout may be replaced)."""

    def __init__(self, get_stream: Callable[[], object]) -> None:
        super().__init__(get_stream())
        self._get_stream = get_stream

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = self._get_stream()
        super().emit(record)

    def close(self) -> None:  # never close sys.stdout / sys.stderr
        logging.Handler.close(self)


class BufferHandler(logging.Handler):
    """Keeps each formatted line in ``buffer`` (under ``buffer_lock``) for CustomLogger.drain."""

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
