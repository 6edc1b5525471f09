"""Plugin functions over Dask collections: ``map_bag`` for a ``dask.bag.Bag``, ``map_column`` for a
``dask.dataframe`` column. Needs Dask (``pip install 'extism_fast[dask]'``).

::

    import dask.bag as db
    from extism_fast.scale.dask import map_bag, map_column

    outputs = map_bag("plugin.wasm", "count_vowels", db.from_sequence(texts, npartitions=8)).compute()
    df["vowels"] = map_column("plugin.wasm", "count_vowels", df["text"], output="str")

The plugin (a :class:`CompiledPlugin`, or a source compiled here with the keyword arguments) is
pickled by reference into the task graph (``extism_fast.runtime.pickling``): each worker process compiles
it once, keeps one :class:`PluginPool` for it sized to the worker's threads, and runs every
partition through ``pool.map`` (``call_many`` batches, GIL released). Works with any Dask
scheduler: distributed (a ``Client``), threads or processes. Host functions must be importable on
the workers (module-level functions of a module on their ``sys.path``).

``errors="raise"`` (the default) fails the partition with the first failed item's Error, as any
Dask task failure; ``errors="return"`` keeps going: a failed item's Error takes its place in the bag,
and ``map_column`` returns a DataFrame with an ``output`` and an ``error`` column (``"Type: message"``,
missing for items that succeeded).

A pyarrow-backed column (``string[pyarrow]``, pandas 3's default ``str``, or ``pd.ArrowDtype`` of
binary/string/large_*) is passed to ``pool.map`` as its Arrow array and its outputs come back as
Arrow (no Python object per item): a Series of ``pd.ArrowDtype(pa.large_binary())``, or of
``string[pyarrow]`` with ``output="str"``. Other columns (object dtype) go through Python lists.
"""

from __future__ import annotations

from typing import Any, Literal

from extism_fast.scale._workers import (Errors, PluginRef, as_compiled, check_errors, cpu_count, is_arrow_text, pool_for,
                                  run_arrow, run_items, run_list)

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
    arrow = _arrow_backed(pd, column.dtype)
    values = pd.Series([], dtype=_dtype(pd, output, arrow), name=column.name)
    meta = values if errors == "raise" else pd.DataFrame(
        {"output": values.rename("output"), "error": pd.Series([], dtype=_error_dtype(pd, arrow))})
    return column.map_partitions(_column_partition, ref, function_name, errors, output, meta=meta)


def _arrow_backed(pd: Any, dtype: Any) -> bool:
    """Whether a column of ``dtype`` takes the Arrow path: ``pd.ArrowDtype`` of binary/string/
    large_*, or a StringDtype stored in pyarrow (``string[pyarrow]``, pandas 3's ``str``)."""
    if isinstance(dtype, pd.ArrowDtype):
        return is_arrow_text(dtype.pyarrow_dtype)
    return isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow"


def _dtype(pd: Any, output: str, arrow: bool) -> Any:
    """The output column's dtype: Arrow-backed for the Arrow path, as the list path makes it else."""
    if output == "str":
        return pd.StringDtype("pyarrow") if arrow else pd.StringDtype()
    if arrow:
        import pyarrow as pa
        return pd.ArrowDtype(pa.large_binary())
    return object


def _error_dtype(pd: Any, arrow: bool) -> Any:
    return pd.StringDtype("pyarrow") if arrow else pd.StringDtype()


def _column_partition(series: Any, ref: PluginRef, function_name: str, errors: Errors, output: str) -> Any:
    import pandas as pd

    pool = pool_for(ref, worker_threads)
    arrow = _arrow_backed(pd, series.dtype)
    if arrow:  # the column's own Arrow array (no copy), Arrow outputs wrapped without a copy
        outputs, texts = run_arrow(pool, function_name, series.array.__arrow_array__(), errors, output, series.index)
        outputs = _dtype(pd, output, True).__from_arrow__(outputs)
        texts = None if texts is None else _error_dtype(pd, True).__from_arrow__(texts)
    else:
        items = [None if value is pd.NA else value for value in series.tolist()]
        outputs, texts = run_list(pool, function_name, items, errors, output, series.index)
    result = pd.Series(outputs, index=series.index, name=series.name, dtype=_dtype(pd, output, arrow))
    if texts is None:
        return result
    return pd.DataFrame({"output": result.rename("output"),
                         "error": pd.Series(texts, index=series.index, dtype=_error_dtype(pd, arrow))})
