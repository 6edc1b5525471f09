"""The batch engine of ``extism-fast batch``: items in, chunks of them through a pool, results out.

No argument parsing and no file handling (the command, :mod:`extism_fast.cli.batch`, does both; its
docs give the line formats): an input line becomes an item (:func:`parse_item`: its bytes, or the
:class:`InputError` that is its result), items go in chunks bounded in count and bytes, each chunk
runs through ``pool.map(..., ordered=True, return_exceptions=True)`` (:func:`run_chunk`, here or on a
Dask worker: :mod:`extism_fast.cli.batch_dist`), and :func:`run_chunks` keeps a few chunks in flight
and emits each chunk's results in input order (:func:`format_result` gives the JSON line).
"""

from __future__ import annotations

import base64
import binascii
import collections
import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from extism_fast.cli.options import DEFAULT_CHUNK_SIZE, MAX_CHUNK_BYTES

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "MAX_CHUNK_BYTES",
    "BatchSummary",
    "InputError",
    "Progress",
    "TqdmProgress",
    "count_lines",
    "line_chunks",
    "make_progress",
    "format_result",
    "json_lines_sink",
    "parse_item",
    "process",
    "raw_item",
    "process_chunks",
    "run_chunk",
    "run_chunks",
]


_encode_str = json.JSONEncoder(ensure_ascii=False).encode
_decode = json.JSONDecoder().decode
_scanstring = json.decoder.scanstring  # type: ignore[attr-defined]  # public, missing from typeshed
_JSON_SPACE = " \t\n\r"


class InputError(ValueError):
    """An input line is not one of the accepted forms (reported as ``"type": "InputError"``)."""


# --------------------------------------------------------------------------------------------------
# Lines in, lines out
# --------------------------------------------------------------------------------------------------


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return f"an object with keys {sorted(value)!r}" if value else "an empty object"
    return type(value).__name__  # pragma: no cover - json.loads gives no other types


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError("the text contains a lone surrogate (\\ud800-\\udfff) and is not "
                         "valid UTF-8; pass such input as {\"base64\": ...}") from None


#: What an input line may be, for the InputError of one that is none of them.
ACCEPTED_LINES = ("a line is a JSON string, {\"text\": \"...\"} or {\"base64\": \"...\"}; "
                  "for lines of raw text, pass --lines")


def raw_item(line: bytes) -> bytes:
    """``--lines``: the input is the line's bytes without its newline (``\n`` or ``\r\n``)."""
    if line.endswith(b"\n"):
        line = line[:-2] if line.endswith(b"\r\n") else line[:-1]
    return line


def parse_item(line: bytes | str) -> bytes:
    """The input bytes one line stands for (see the module docs); raises :class:`InputError`."""
    if isinstance(line, bytes):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError(f"invalid JSON: the line is not UTF-8 ({ACCEPTED_LINES})") from None
    else:
        text = line
    if text.startswith("\ufeff"):  # a UTF-8 byte order mark (on the first line of some files)
        text = text[1:]
    if text.startswith('"'):  # fast path for the common case, a JSON string
        try:
            value, end = _scanstring(text, 1)
        except ValueError:
            pass  # not a valid string: the full decoder below gives the message
        else:
            if not text[end:].strip(_JSON_SPACE):
                return _utf8(value)
    try:
        value = _decode(text)
    except ValueError as exc:
        if not text.strip(_JSON_SPACE):
            raise InputError(f"empty line ({ACCEPTED_LINES})") from None
        raise InputError(f"invalid JSON: {getattr(exc, 'msg', exc)} ({ACCEPTED_LINES})") from None
    if isinstance(value, str):
        return _utf8(value)
    if isinstance(value, dict) and len(value) == 1:
        (key, payload), = value.items()
        if key in ("text", "base64") and not isinstance(payload, str):
            raise InputError(f"\"{key}\" must be a string, got {_describe(payload)}")
        if key == "text":
            return _utf8(payload)
        if key == "base64":
            try:
                return base64.b64decode(payload, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise InputError(f"invalid base64: {exc}") from None
    raise InputError(f"expected a JSON string, {{\"text\": ...}} or {{\"base64\": ...}}, "
                     f"got {_describe(value)}; for lines of raw text, pass --lines")


def format_result(index: int, result: object) -> str:
    """The output line (without newline) for item ``index``: its output bytes or its exception."""
    if isinstance(result, bytes):
        data = result
    elif isinstance(result, BaseException):
        return (f'{{"index": {index}, "error": {_encode_str(str(result))}, '
                f'"type": {_encode_str(type(result).__name__)}}}')
    else:
        data = bytes(result)  # type: ignore[call-overload]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return f'{{"index": {index}, "output_base64": "{base64.b64encode(data).decode("ascii")}"}}'
    return f'{{"index": {index}, "output": {_encode_str(text)}}}'


# --------------------------------------------------------------------------------------------------
# Progress
# --------------------------------------------------------------------------------------------------


def _rate(items: int, seconds: float) -> str:
    rate = items / seconds if seconds > 0 else 0.0
    return f"{rate:.1f}" if rate < 10 else f"{rate:.0f}"


class Progress:
    """A one-line progress display on a text stream (``\\r``-rewritten; plain text, no colours)."""

    WIDTH = 24

    def __init__(self, stream: IO[str], total: int | None, *, interval: float = 0.1) -> None:
        self.stream = stream
        self.total = total
        self.interval = interval
        self._start = time.perf_counter()
        self._last_draw = float("-inf")
        self._shown = 0

    def line(self, done: int, errors: int) -> str:
        elapsed = time.perf_counter() - self._start
        tail = f"{done}{f'/{self.total}' if self.total is not None else ''} items, {errors} errors, " \
               f"{_rate(done, elapsed)} items/s"
        if not self.total:
            return tail
        filled = min(self.WIDTH, done * self.WIDTH // self.total)
        return f"{100 * done / self.total:5.1f}% [{'#' * filled}{'.' * (self.WIDTH - filled)}] {tail}"

    def update(self, done: int, errors: int, *, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self._last_draw < self.interval:
            return
        self._last_draw = now
        text = self.line(done, errors)
        pad = " " * max(0, self._shown - len(text))
        self.stream.write(f"\r{text}{pad}")
        self.stream.flush()
        self._shown = len(text)

    def clear(self) -> None:
        if self._shown:
            self.stream.write("\r" + " " * self._shown + "\r")
            self.stream.flush()
            self._shown = 0


class TqdmProgress:
    """The progress display through tqdm (``pip install extism_fast[progress]``): a bar with the
    rate and ETA; the same ``update``/``clear`` as :class:`Progress`."""

    def __init__(self, tqdm: Any, stream: IO[str], total: int | None, *, interval: float = 0.1) -> None:
        self._bar = tqdm(total=total, file=stream, unit="items", mininterval=interval, leave=False,
                         dynamic_ncols=True, postfix="0 errors")
        self._errors = 0

    def update(self, done: int, errors: int, *, force: bool = False) -> None:
        if errors != self._errors:
            self._errors = errors
            self._bar.set_postfix_str(f"{errors} errors", refresh=False)
        self._bar.update(done - self._bar.n)
        if force:
            self._bar.refresh()

    def clear(self) -> None:
        self._bar.close()  # leave=False: the bar is wiped, the summary line follows


def make_progress(stream: IO[str], total: int | None) -> Progress | TqdmProgress:
    """A :class:`TqdmProgress` when tqdm is installed, else the plain :class:`Progress` line."""
    try:
        from tqdm import tqdm
    except ImportError:
        return Progress(stream, total)
    return TqdmProgress(tqdm, stream, total)


def count_lines(f: IO[bytes]) -> int:
    """Number of lines (items) in a seekable binary file, from its current position (restored)."""
    start = f.tell()
    count, last = 0, b"\n"
    while block := f.read(1 << 20):
        count += block.count(b"\n")
        last = block[-1:]
    f.seek(start)
    return count + (last != b"\n")


# --------------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------------


@dataclass
class BatchSummary:
    items: int = 0
    errors: int = 0
    seconds: float = 0.0

    def line(self) -> str:
        """``N items, E errors, X items/s``."""
        return f"{self.items} items, {self.errors} errors, {_rate(self.items, self.seconds)} items/s"


def line_chunks(lines: Iterable[bytes], chunk_size: int, max_bytes: int,
                parse: Callable[[bytes], bytes] = parse_item) -> Iterator[list[Any]]:
    """Lists of parsed items (bytes, or the InputError of a bad line), bounded in count and bytes;
    ``parse``: :func:`parse_item` (JSON Lines) or :func:`raw_item` (``--lines``)."""
    chunk: list[Any] = []
    size = 0
    for line in lines:
        try:
            item: Any = parse(line)
            size += len(item)
        except InputError as exc:
            item = exc
        chunk.append(item)
        if len(chunk) >= chunk_size or size >= max_bytes:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def run_chunk(pool: Any, function: str, items: list[Any]) -> list[Any]:
    """The results of one chunk: each item's output bytes or Error, in order; an InputError item
    (a bad line) stays as it is. Runs here or on a Dask worker."""
    calls = [item for item in items if not isinstance(item, InputError)]
    if not calls:
        return items
    results = iter(pool.map(function, calls, ordered=True, return_exceptions=True))
    return [item if isinstance(item, InputError) else next(results) for item in items]


def json_lines_sink(write: Callable[[str], object]) -> Callable[[int, list[Any]], None]:
    """An ``emit(first_index, results)`` that writes the output lines of a chunk with ``write``."""
    def emit(base: int, results: list[Any]) -> None:
        out = [format_result(base + offset, result) for offset, result in enumerate(results)]
        out.append("")
        write("\n".join(out))
    return emit


def run_chunks(submit: Callable[[list[Any]], Any], chunks: Iterable[list[Any]],
               emit: Callable[[int, list[Any]], None], *, in_flight: int = 1,
               progress: Progress | TqdmProgress | None = None) -> BatchSummary:
    """Submit every chunk (``submit`` returns a future), keep at most ``in_flight`` of them running
    beyond the one being read, and ``emit`` each chunk's results in input order as it completes;
    the progress advances by completed chunks. Returns the counts."""
    summary = BatchSummary()
    start = time.perf_counter()
    pending: collections.deque[Any] = collections.deque()

    def finish(future: Any) -> None:
        results = future.result()
        emit(summary.items, results)
        summary.errors += sum(isinstance(result, BaseException) for result in results)
        summary.items += len(results)
        if progress is not None:
            progress.update(summary.items, summary.errors)

    for chunk in chunks:
        pending.append(submit(chunk))
        while len(pending) > in_flight:
            finish(pending.popleft())
    while pending:
        finish(pending.popleft())
    summary.seconds = time.perf_counter() - start
    if progress is not None:
        progress.update(summary.items, summary.errors, force=True)
    return summary


def process(
    pool: Any,
    function: str,
    lines: Iterable[bytes],
    write: Callable[[str], object],
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    max_chunk_bytes: int = MAX_CHUNK_BYTES,
    progress: Progress | TqdmProgress | None = None,
) -> BatchSummary:
    """Call ``function`` on the item of every line through ``pool.map`` and ``write`` the output
    lines (each ending with a newline) in input order; returns the counts.

    The pool works on chunk k (GIL released) while this thread parses chunk k+1 and formats the
    output of chunk k-1: at most three chunks are in memory at once.
    """
    return process_chunks(pool, function, line_chunks(lines, chunk_size, max_chunk_bytes),
                          json_lines_sink(write), progress=progress)


def process_chunks(pool: Any, function: str, chunks: Iterable[list[Any]], emit: Callable[[int, list[Any]], None],
                   *, progress: Progress | TqdmProgress | None = None) -> BatchSummary:
    """:func:`run_chunks` on ``pool`` in this process: one chunk at a time runs off the main
    thread while the next is read."""
    import concurrent.futures  # not at import: `extism-fast --help` and `call` do not need it

    # One worker: pool.map runs one chunk at a time, in order, off the main thread.
    executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="extism-fast-batch")
    try:
        return run_chunks(lambda chunk: executor.submit(run_chunk, pool, function, chunk), chunks, emit,
                          progress=progress)
    except KeyboardInterrupt:  # seen by this thread only: stop the pool's calls, or the wait below never ends
        pool._interrupt()
        raise
    finally:
        # On an error or Ctrl-C: drop queued chunks and let the running one end before the caller
        # closes the pool under it.
        executor.shutdown(wait=True, cancel_futures=True)
