"""Parquet input and output, and Dask, for ``extism-fast batch``.

* ``--input-file data.parquet --column text``: the items are the values of one string or binary
  column, dictionary-encoded or not (a string is its UTF-8 bytes; a null is that item's
  ``InputError``), read a chunk at a time. Needs pyarrow (``pip install 'extism_fast[arrow]'``).
* ``--output out.parquet``: one row per item, in input order, columns ``index`` (int64),
  ``output`` (binary, null when the item failed), ``error`` and ``type`` (strings, null when it
  succeeded).
* ``--dask-scheduler ADDR`` / ``--dask-local N``: each chunk is a Dask task (the plugin pickled by
  reference: each worker process compiles it once and keeps one PluginPool per plugin, of
  ``--workers`` instances, default its thread count). Results are written in input order as
  chunks complete; a task lost with its worker is run again by Dask, so nothing is lost or
  written twice. Needs Dask (``pip install 'extism_fast[dask]'``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import IO, Any

from extism_fast.scale._workers import PluginRef, pool_for
from extism_fast.scale.arrow import decoded, is_text_type
from extism_fast.errors import Error
from extism_fast.cli.batch_engine import InputError, run_chunk, run_chunks

__all__ = ["SetupError", "dask_client", "dask_runner", "is_parquet", "parquet_chunks", "parquet_sink"]

PARQUET_SUFFIXES = (".parquet", ".pq")


class SetupError(Exception):
    """The run cannot start (missing extra, bad column, unreachable scheduler): one error line."""


def is_parquet(path: str) -> bool:
    """Whether ``path`` names a Parquet file (by its suffix)."""
    return path != "-" and path.lower().endswith(PARQUET_SUFFIXES)


def _pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise SetupError("Parquet needs pyarrow: pip install 'extism_fast[arrow]'") from None
    return pyarrow


def parquet_chunks(path: str, column: str, chunk_size: int) -> tuple[int, Iterator[list[Any]]]:
    """The row count of Parquet file ``path`` and an iterator over lists of its ``column``'s
    items (bytes, or the InputError of a null), ``chunk_size`` rows at a time."""
    pa = _pyarrow()
    try:
        parquet = pa.parquet.ParquetFile(path)
    except (OSError, pa.ArrowException) as exc:
        raise SetupError(f"cannot read Parquet input {path!r}: {exc}") from None
    schema = parquet.schema_arrow
    if column not in schema.names:
        raise SetupError(f"Parquet input {path!r} has no column {column!r} (columns: {', '.join(schema.names)})")
    kind = schema.field(column).type
    if not is_text_type(kind):  # a dictionary of strings (many writers' default) is decoded
        raise SetupError(f"Parquet column {column!r} is {kind}, not a string or binary column "
                         f"(or a dictionary of one)")
    null = InputError(f"null value in column {column!r}")

    def chunks() -> Iterator[list[Any]]:
        for batch in parquet.iter_batches(batch_size=chunk_size, columns=[column]):
            # A list for now: once call_many takes Arrow arrays, batch.column(0) goes as it is.
            values = decoded(batch.column(0)).to_pylist()
            yield [null if value is None else value.encode("utf-8") if isinstance(value, str) else value
                   for value in values]
    return parquet.metadata.num_rows, chunks()


@contextlib.contextmanager
def parquet_sink(path: str, open_output: Callable[[], IO[bytes]]) -> Iterator[Callable[[int, list[Any]], None]]:
    """An ``emit(first_index, results)`` writing each chunk's rows as Parquet to the file that
    ``open_output()`` gives (called once pyarrow is known to be there), for output ``path``."""
    pa = _pyarrow()
    schema = pa.schema([("index", pa.int64()), ("output", pa.binary()), ("error", pa.string()),
                        ("type", pa.string())])
    try:
        writer = pa.parquet.ParquetWriter(open_output(), schema)
    except pa.ArrowException as exc:
        raise OSError(f"cannot write output {path!r}: {exc}") from None

    def emit(base: int, results: list[Any]) -> None:
        failed = [isinstance(result, BaseException) for result in results]
        writer.write_table(pa.table({
            "index": pa.array(range(base, base + len(results)), pa.int64()),
            "output": pa.array([None if bad else bytes(r) for r, bad in zip(results, failed)], pa.binary()),
            "error": pa.array([str(r) if bad else None for r, bad in zip(results, failed)], pa.string()),
            "type": pa.array([type(r).__name__ if bad else None for r, bad in zip(results, failed)], pa.string()),
        }, schema=schema))
    try:
        yield emit
    finally:
        writer.close()


@contextlib.contextmanager
def dask_client(scheduler: str | None, local_workers: int | None) -> Iterator[Any]:
    """A Dask client of the scheduler at ``scheduler``, or of a LocalCluster of ``local_workers``
    worker processes on 127.0.0.1 (closed at the end)."""
    try:
        import distributed
    except ImportError:
        raise SetupError("--dask-scheduler/--dask-local need Dask: pip install 'extism_fast[dask]'") from None
    if scheduler is not None:
        try:
            client = distributed.Client(scheduler, timeout=10)
        except (OSError, ValueError, TypeError) as exc:
            raise SetupError(f"cannot connect to the Dask scheduler at {scheduler}: {exc}") from None
        with client:
            yield client
        return
    with distributed.LocalCluster(n_workers=local_workers, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        yield client


def _dask_chunk(ref: PluginRef, function: str, items: list[Any]) -> list[Any]:
    """A chunk on a Dask worker, through that process's pool for the plugin."""
    from extism_fast.scale.dask import worker_threads
    return run_chunk(pool_for(ref, worker_threads), function, items)


def dask_runner(client: Any, ref: PluginRef, function: str) -> Callable[..., Any]:
    """``run(chunks, emit, progress)``: :func:`run_chunks` with each chunk a task on ``client``,
    up to two chunks per worker thread in flight."""
    threads = max(1, sum(client.nthreads().values()))

    def run(chunks: Iterator[list[Any]], emit: Callable[[int, list[Any]], None], progress: Any) -> Any:
        live: set[Any] = set()  # submitted and not taken yet: cancelled if the run stops early

        def submit(chunk: list[Any]) -> Any:
            # The plugin goes with each task (a few KiB to MiB), not scattered: a copy held by a
            # worker would be lost with it, the task's own copy is not.
            future = client.submit(_dask_chunk, ref, function, chunk, pure=False)
            live.add(future)
            return _Taken(future, live)
        try:
            return run_chunks(submit, chunks, emit, in_flight=2 * threads, progress=progress)
        except (Error, OSError, SetupError):
            raise
        except Exception as exc:  # Dask's own: a task whose workers kept dying, a lost scheduler
            raise SetupError(f"the Dask run failed: {type(exc).__name__}: {exc}") from exc
        finally:
            if live:
                client.cancel(list(live))
    return run


class _Taken:
    """A Dask future whose result, once taken, is released by the cluster (a set holds the live)."""

    def __init__(self, future: Any, live: set[Any]) -> None:
        self.future = future
        self.live = live

    def result(self) -> Any:
        try:
            return self.future.result()
        finally:
            self.live.discard(self.future)
            self.future = None
