"""``extism-fast batch``: call one plugin function on every line of a JSON Lines file.

::

    extism-fast batch plugin.wasm FUNCTION --input-file inputs.jsonl --output out.jsonl
        [--workers N] [--chunk-size N] [--lines] [--progress | --no-progress | --quiet]
        [the plugin options of 'call']

Input: every line of ``--input-file`` (``-`` for stdin) is one item, one of

* a JSON string: the input is its text, encoded as UTF-8 (``"Hello World"``);
* ``{"text": "..."}``: the same;
* ``{"base64": "..."}``: the input is the decoded bytes (standard alphabet, padding required).

Lines are strict: a blank line, invalid JSON or any other value is not skipped but reported as
that item's error (type ``InputError``, naming the accepted forms), so output line *i* always
belongs to input line *i*. With ``--lines`` every line is raw text instead: the input is the
line's bytes without its newline (``\n`` or ``\r\n``), so a blank line is an empty input.

Output: one JSON line per item, in input order, to ``--output`` (``-`` for stdout), in UTF-8
whatever the locale::

    {"index": 0, "output": "<output as text>"}          the output is valid UTF-8
    {"index": 1, "output_base64": "<output bytes>"}     otherwise
    {"index": 2, "error": "<message>", "type": "PluginError"}   the call (or the line) failed

``index`` counts input lines from 0. Calls run on a :class:`extism_fast.PluginPool` of
``--workers`` instances (default: the CPU count) through ``pool.map(..., ordered=True,
return_exceptions=True)``, ``--chunk-size`` items at a time, so memory stays bounded however big
the file is. A progress bar goes to stderr when stderr is a terminal or ``--progress`` is given
(tqdm's, with rate and ETA, when ``extism_fast[progress]`` is installed; else a plain line)
unless ``--no-progress``, and a summary line ends the run on stderr: ``N items, E errors, X
items/s``. ``--quiet`` (``-q``) prints neither: stderr then carries only errors.

The output file is written under a temporary name beside it and takes its name only when the run
completes: a run that stops part-way (an error, Ctrl-C) leaves what it wrote as ``OUTPUT.partial``
(a line on stderr says so) and the exit status is not 0. An ``--output`` that is the
``--input-file`` (the same path, a hard link or a symbolic link to it) is refused before anything
is opened.

Exit status: 0 when every item succeeded, 1 when any item failed (its line says why), the run
could not start (missing file, bad plugin, unknown function: one ``extism-fast: error:`` line on
stderr, and no output file is written) or stopped part-way, 2 for bad usage.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import stat
import sys
from collections.abc import Callable, Iterable
from typing import IO, TYPE_CHECKING, Any

from extism_fast.cli import arguments as cli_arguments, options as cli_options
from extism_fast.cli.options import DEFAULT_CHUNK_SIZE
from extism_fast.scale import MAX_POOL_SIZE

# The engine's names are this module's too (they were defined here before the engine had a
# module): loaded when first named, as the engine is by a run, since `extism-fast batch --help`
# only builds this command's parser (`--help` and `call` do not import this module at all).
_ENGINE_NAMES = ("MAX_CHUNK_BYTES", "BatchSummary", "InputError", "Progress", "TqdmProgress", "line_chunks",
                 "count_lines", "format_result", "json_lines_sink", "make_progress", "parse_item", "process",
                 "process_chunks", "raw_item", "run_chunk", "run_chunks")


if TYPE_CHECKING:  # at run time: __getattr__
    from extism_fast.cli.batch_engine import (MAX_CHUNK_BYTES, BatchSummary, InputError, Progress, TqdmProgress,
                                              count_lines, format_result, json_lines_sink, line_chunks, make_progress,
                                              parse_item, process, process_chunks, raw_item, run_chunk, run_chunks)


def __getattr__(name: str) -> Any:
    if name in _ENGINE_NAMES:
        from extism_fast.cli import batch_engine

        return getattr(batch_engine, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "BatchSummary",
    "InputError",
    "Progress",
    "TqdmProgress",
    "add_batch_arguments",
    "make_progress",
    "format_result",
    "json_lines_sink",
    "parse_item",
    "process",
    "process_chunks",
    "run_batch_command",
    "run_chunk",
    "run_chunks",
]


# --------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------


def add_batch_arguments(batch: argparse.ArgumentParser) -> None:
    """Give the ``batch`` subcommand's parser (made by :func:`extism_fast.cli.build_parser`, with
    its one-line help) its description and arguments."""
    batch.description = (
        "Call FUNCTION of PLUGIN once per line of --input-file and write one JSON line per "
        "input, in input order, to --output. An input line is a JSON string (its UTF-8 "
        "text), {\"text\": \"...\"} or {\"base64\": \"...\"} (bytes); any other line is "
        "reported as that item's error. An output line is {\"index\": i, \"output\": "
        "\"<text>\"}, {\"index\": i, \"output_base64\": \"...\"} when the output is not "
        "valid UTF-8, or {\"index\": i, \"error\": \"<message>\", \"type\": \"<ErrorClass>\"}. "
        "With --lines every line is raw text (its bytes without the newline). "
        "A summary line 'N items, E errors, X items/s' ends the run on stderr (not with --quiet). "
        "Exit status: 0 every item ok, 1 any item failed or the run could not start, "
        "2 bad usage."
    )
    batch.epilog = (f"example: {cli_options.PROG} batch examples/count_vowels.wat count_vowels "
                    "--input-file inputs.jsonl --output out.jsonl --workers 4")
    cli_arguments.add_target_arguments(batch)
    batch.add_argument("-f", "--input-file", metavar="FILE", required=True,
                       help="JSON Lines input, one item per line ('-' for stdin)")
    batch.add_argument("-o", "--output", metavar="FILE", required=True,
                       help="write the JSON Lines results to FILE ('-' for stdout)")
    batch.add_argument("-w", "--workers", metavar="N",
                       type=cli_options.positive_int("--workers", MAX_POOL_SIZE),
                       help=f"plugin instances (threads) in the pool, at most {MAX_POOL_SIZE} "
                            "(default: the CPU count)")
    batch.add_argument("--chunk-size", metavar="N", type=cli_options.positive_int("--chunk-size"),
                       default=DEFAULT_CHUNK_SIZE,
                       help=f"items handed to the pool at a time; bounds memory "
                            f"(default {DEFAULT_CHUNK_SIZE})")
    batch.add_argument("--lines", action="store_true",
                       help="each input line is raw text: the input is the line's bytes without "
                            "its newline (default: JSON Lines)")
    shown = batch.add_mutually_exclusive_group()
    shown.add_argument("--progress", action="store_true",
                       help="show the progress on stderr even when it is not a terminal: tqdm's "
                            "bar with rate and ETA when installed (extism_fast[progress]), "
                            "else a plain line")
    shown.add_argument("--no-progress", action="store_true",
                       help="no progress display, even on a terminal (the summary line stays)")
    shown.add_argument("-q", "--quiet", action="store_true",
                       help="no progress display and no summary line: stderr carries only errors")
    batch.add_argument("--column", metavar="NAME",
                       help="with a Parquet --input-file (*.parquet): the string or binary column "
                            "of the inputs (default 'text'); a *.parquet --output gets columns "
                            "index, output (binary), error, type (needs extism_fast[arrow])")
    dask = batch.add_mutually_exclusive_group()
    dask.add_argument("--dask-scheduler", metavar="ADDR",
                      help="run the chunks as tasks on this Dask scheduler (tcp://host:port); "
                           "--workers is then each worker's pool size (default: its threads); "
                           "needs extism_fast[dask]")
    dask.add_argument("--dask-local", metavar="N", type=cli_options.positive_int("--dask-local", 256),
                      help="run the chunks on a local Dask cluster of N worker processes on "
                           "127.0.0.1 (one thread each)")
    cli_arguments.add_plugin_options(batch)


def _open_input(path: str) -> IO[bytes]:
    return sys.stdin.buffer if path == "-" else cli_options.open_file(path, "rb")


def _check_output_is_not_input(input_file: str, output: str) -> None:
    """UsageError when ``output`` is the input file (the same path, a hard link or a symbolic link
    to it, or the file stdin reads): writing the results would destroy the inputs."""
    if output == "-":
        return
    try:
        source = os.fstat(sys.stdin.fileno()) if input_file == "-" else os.stat(input_file)
    except (OSError, ValueError, AttributeError):  # opening it says why; stdin may be no file
        return
    if not stat.S_ISREG(source.st_mode):
        return
    try:
        target = os.stat(output)
    except (OSError, ValueError):  # not there yet: compare where the two paths lead
        same = input_file != "-" and os.path.realpath(output) == os.path.realpath(input_file)
    else:
        same = (target.st_dev, target.st_ino) == (source.st_dev, source.st_ino)
    if same:
        what = "stdin's file" if input_file == "-" else f"the --input-file {input_file!r}"
        raise cli_options.UsageError(f"--output {output!r} is {what} (the same file, or a link to it): "
                                     "writing the results would destroy the inputs; choose another output file")


def _output_file(path: str, stack: contextlib.ExitStack) -> IO[bytes]:
    """The --output file (binary), under a temporary name beside it until the run completes; a
    run that stops part-way leaves it as ``PATH.partial`` and says so on stderr. A symbolic link
    is written through; an existing output that is not a regular file (/dev/null, a FIFO) is
    written directly, as nothing can take its place."""
    from extism_fast._files import replaced_on_success  # secrets and random: not for `call` / --help

    try:
        target = os.path.realpath(path)
        try:
            existing = os.stat(target)
        except FileNotFoundError:
            existing = None
        if existing is not None and not stat.S_ISREG(existing.st_mode):
            sink = open(target, "wb")
            stack.callback(sink.close)
            return sink
        mode = 0o666 if existing is None else stat.S_IMODE(existing.st_mode)
        return stack.enter_context(replaced_on_success(target, file_mode=mode, partial=target + ".partial",
                                                       on_partial=_say_partial))
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        raise OSError(f"cannot write output file {path!r}: {getattr(exc, 'strerror', None) or exc}") from None


def _say_partial(partial: str) -> None:
    sys.stderr.write(f"{cli_options.PROG}: the run stopped part-way: the results written so far are in "
                     f"{partial!r}\n")
    sys.stderr.flush()


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _chunks_of(args: argparse.Namespace, stack: contextlib.ExitStack, want_total: bool,
               ) -> tuple[Iterable[list[Any]], int | None]:
    """The input's chunks of items (JSON Lines or Parquet) and, when wanted and known, their count."""
    from extism_fast.cli import batch_dist as cli_batch_dist, batch_engine as engine
    if cli_batch_dist.is_parquet(args.input_file):
        if args.lines:
            raise cli_options.UsageError("--lines applies to a JSON Lines --input-file, not to Parquet")
        total, chunks = cli_batch_dist.parquet_chunks(args.input_file, args.column or "text", args.chunk_size)
        return chunks, total
    if args.column is not None:
        raise cli_options.UsageError("--column applies to a Parquet --input-file (*.parquet) only")
    parse = engine.raw_item if args.lines else engine.parse_item
    source = _open_input(args.input_file)
    if args.input_file != "-":
        stack.callback(source.close)
    lines = engine.count_lines(source) if want_total and source.seekable() else None
    return engine.line_chunks(source, args.chunk_size, engine.MAX_CHUNK_BYTES, parse), lines


def _sink_of(args: argparse.Namespace, stack: contextlib.ExitStack) -> Callable[[int, list[Any]], None]:
    """Where each chunk's results go: JSON Lines, or Parquet for a *.parquet --output."""
    from extism_fast.cli import batch_dist as cli_batch_dist, batch_engine as engine
    if cli_batch_dist.is_parquet(args.output):
        return stack.enter_context(cli_batch_dist.parquet_sink(args.output, lambda: _output_file(args.output, stack)))
    if args.output == "-":
        sys.stdout.flush()  # what was written before goes first
        binary = getattr(sys.stdout, "buffer", None)
        if binary is None:  # a text stream in memory (contextlib.redirect_stdout): no encoding
            return engine.json_lines_sink(sys.stdout.write)
        stack.callback(binary.flush)
    else:
        binary = _output_file(args.output, stack)
    # JSON Lines are UTF-8 whatever the locale's encoding (stdout's may be ASCII or Latin-1); a
    # lone surrogate (only an error text can hold one) is written as its JSON escape \udXXX, as
    # `call --json` writes it, so the line stays valid JSON.
    sink = io.TextIOWrapper(binary, encoding="utf-8", errors="backslashreplace", newline="\n")
    stack.callback(sink.detach)  # flushed before the file is closed and renamed; stdout stays open
    return engine.json_lines_sink(sink.write)


def _runner_of(args: argparse.Namespace, stack: contextlib.ExitStack, compiled: Any, kwargs: dict) -> Any:
    """``run(chunks, emit, progress)`` on a local PluginPool, or on Dask with --dask-*."""
    import extism_fast
    from extism_fast.cli import batch_dist as cli_batch_dist, batch_engine as engine
    if args.dask_scheduler is None and args.dask_local is None:
        pool = extism_fast.PluginPool(compiled, size=args.workers, **kwargs)
        stack.callback(pool.close)
        return lambda chunks, emit, progress: engine.process_chunks(pool, args.function, chunks, emit, progress=progress)
    from extism_fast.scale._workers import PluginRef
    client = stack.enter_context(cli_batch_dist.dask_client(args.dask_scheduler, args.dask_local))
    return cli_batch_dist.dask_runner(client, PluginRef(compiled, args.workers, **kwargs), args.function)


def run_batch_command(args: argparse.Namespace) -> int:
    """Run ``extism-fast batch`` with parsed ``args``; return the exit status."""
    import extism_fast
    from extism_fast.cli import batch_engine as engine
    from extism_fast.cli.batch_dist import SetupError
    progress: engine.Progress | engine.TqdmProgress | None = None
    want_progress = args.progress or (_isatty(sys.stderr) and not (args.no_progress or args.quiet))
    with cli_options.plugin_logging(args.log_level):
        try:
            with contextlib.ExitStack() as stack:
                _check_output_is_not_input(args.input_file, args.output)
                chunks, total = _chunks_of(args, stack, want_progress)
                manifest = cli_options.build_manifest(args)
                kwargs = cli_options.plugin_kwargs(args)
                compiled = extism_fast.CompiledPlugin(manifest, wasi=kwargs.pop("wasi"), functions=[],
                                                      fuel=kwargs.pop("fuel"))
                if not compiled.function_exists(args.function):
                    raise compiled._function_not_found(args.function)
                run = _runner_of(args, stack, compiled, kwargs)
                if want_progress:
                    progress = engine.make_progress(sys.stderr, total)
                emit = _sink_of(args, stack)  # last: a run that cannot start writes no output file
                summary = run(chunks, emit, progress)
        except cli_options.UsageError as exc:
            return cli_options.fail(exc, cli_options.EXIT_USAGE)
        except (extism_fast.Error, OSError, SetupError) as exc:
            if progress is not None:
                progress.clear()
            return cli_options.fail(exc, cli_options.EXIT_FAILURE)
        except KeyboardInterrupt:
            if progress is not None:
                progress.clear()
            raise
    if progress is not None:
        progress.clear()
    if not args.quiet:
        sys.stderr.write(summary.line() + "\n")
        sys.stderr.flush()
    return cli_options.EXIT_FAILURE if summary.errors else cli_options.EXIT_OK
