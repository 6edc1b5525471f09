"""Plugin functions over Dask collections: ``map_bag`` for a ``dask.bag.Bag``, ``map_column`` for a
``dask.dataframe`` column. Needs Dask (``pip install 'extism_fast[dask]'``).

::

    import dask.bag as db
    from extism_fast.dask import map_bag, map_column

    outputs = map_bag("plugin.wasm", "count_vowels", db.from_sequence(texts, npartitions=8)).compute()
    df["vowels"] = map_column("plugin.wasm", "count_vowels", df["text"], output="str")

The plugin (a :class:`CompiledPlugin`, or a source compiled here with the keyword arguments) is
pickled by reference into the task graph (``extism_fast.pickling``): each worker process compiles
it once, keeps one :class:`PluginPool` for it sized to the worker's threads, and runs every
partition through ``pool.map`` (``call_many`` batches, GIL released). Works with any Dask
scheduler: distributed (a ``Client``), threads or processes. Host functions must be importable on
the workers (module-level functions of a module on their ``sys.path``).

``errors="raise"`` (the default) fails the partition with the first failed item's Error, as any
Dask task failure; ``errors="return"`` keeps going: a failed item's Error takes its place in the bag,
and ``map_column`` returns a DataFrame with an ``output`` and an ``error`` column (``"Type: message"``,
missing for items that succeeded).
"""

from __future__ import annotations

from typing import Any, Literal

from extism_fast._workers import (Errors, PluginRef, as_compiled, check_errors, cpu_count, decode_outputs,
                                  error_text, is_error, pool_for, run_items)

__all__ = ["map_bag", "map_column", "worker_threads"]

_MISSING = ("extism_fast.dask needs Dask ({what}): install the extra with "
            "pip install 'extism_fast[dask]'")


def _require(what: str) -> Any:
    """Import ``what`` (``dask.bag``, ``dask.dataframe``), or an ImportError naming the extra."""
    import importlib
    try:
        return importlib.import_module(what)
    except ImportError as exc:
        raise ImportError(_MISSING.format(what=what)) from exc


def worker_threads() -> int:
    """The threads of this Dask worker (the size of its pools), or the CPU count outside one."""
    try:
        from distributed import get_worker
        return int(get_worker().state.nthreads)
    except (ImportError, ValueError):  # no distributed, or a local scheduler's thread
        return cpu_count()


def _ref(compiled_or_source: Any, size: int | None, compile_kwargs: dict) -> PluginRef:
    return PluginRef(as_compiled(compiled_or_source, **compile_kwargs), size)


def map_bag(compiled_or_source: Any, function_name: str, bag: Any, *, errors: Errors = "raise",
            size: int | None = None, **compile_kwargs: Any) -> Any:
    """A Bag of ``function_name``'s outputs (bytes) for the items (bytes or str) of ``bag``, in
    order.

    ``size`` fixes the instances of each worker's pool (default: the worker's threads). With
    ``errors="return"`` a failed item's :class:`extism_fast.Error` (an ``InputTypeError`` for an
    item that is not bytes or str) is in its place instead of failing the partition.
    """
    _require("dask.bag")
    errors = check_errors(errors)
    ref = _ref(compiled_or_source, size, compile_kwargs)
    return bag.map_partitions(_bag_partition, ref, function_name, errors)


def _bag_partition(items: Any, ref: PluginRef, function_name: str, errors: Errors) -> list[Any]:
    return run_items(pool_for(ref, worker_threads), function_name, list(items), errors)


def map_column(compiled_or_source: Any, function_name: str, column: Any, *, errors: Errors = "raise",
               output: Literal["bytes", "str"] = "bytes", size: int | None = None,
               **compile_kwargs: Any) -> Any:
    """``function_name`` on every value (bytes or str) of a ``dask.dataframe`` Series, partition by
    partition: a Series of the same index and name, of bytes (``output="bytes"``) or of text
    (``output="str"``: the outputs decoded as UTF-8; one that is not is that item's error).

    With ``errors="return"``: a DataFrame with columns ``output`` (missing where the item failed)
    and ``error`` (``"Type: message"``, missing where it succeeded). A missing value in the column
    is an item error (``InputTypeError``).
    """
    pd = _require("pandas")
    _require("dask.dataframe")
    errors = check_errors(errors)
    if output not in ("bytes", "str"):
        raise ValueError(f"output must be 'bytes' or 'str', got {output!r}")
    ref = _ref(compiled_or_source, size, compile_kwargs)
    values = pd.Series([], dtype=_dtype(pd, output), name=column.name)
    meta = values if errors == "raise" else pd.DataFrame(
        {"output": values.rename("output"), "error": pd.Series([], dtype=pd.StringDtype())})
    return column.map_partitions(_column_partition, ref, function_name, errors, output, meta=meta)


def _dtype(pd: Any, output: str) -> Any:
    return object if output == "bytes" else pd.StringDtype()


def _column_partition(series: Any, ref: PluginRef, function_name: str, errors: Errors, output: str) -> Any:
    import pandas as pd

    # A list for now; see run_items for where an Arrow-backed column will go as its array.
    items = [None if value is pd.NA else value for value in series.tolist()]
    results = run_items(pool_for(ref, worker_threads), function_name, items, errors, series.index)
    if output == "str":
        results = decode_outputs(results)
        if errors == "raise":
            for value in results:
                if is_error(value):
                    raise value
    dtype = _dtype(pd, output)
    if errors == "raise":
        return pd.Series(results, index=series.index, name=series.name, dtype=dtype)
    failed = [is_error(value) for value in results]
    return pd.DataFrame({
        "output": pd.Series([None if bad else value for bad, value in zip(failed, results)],
                            index=series.index, dtype=dtype),
        "error": pd.Series([error_text(value) if bad else None for bad, value in zip(failed, results)],
                           index=series.index, dtype=pd.StringDtype()),
    })
