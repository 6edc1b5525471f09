"""A plugin function over a Ray Dataset: :class:`PluginMapper`, a callable class for
``ray.data.Dataset.map_batches`` on Arrow batches. Needs Ray Data (``pip install
'extism_fast[ray]'``).

::

    import ray
    from extism_fast.ray import PluginMapper

    ds = ray.data.read_parquet("texts.parquet")
    out = ds.map_batches(PluginMapper, fn_constructor_args=(compiled, "count_vowels"),
                         fn_constructor_kwargs={"column": "text"}, batch_format="pyarrow",
                         concurrency=2)

Ray runs each ``PluginMapper`` in an actor process: the actor unpickles the plugin (compiled once
per process, ``extism_fast.pickling``) and keeps one :class:`PluginPool` for every batch it maps.
"""

from __future__ import annotations

from typing import Any, Literal

from extism_fast._workers import (Errors, as_compiled, check_errors, decode_outputs, error_text, is_error,
                                  run_items)
from extism_fast.pool import PluginPool

__all__ = ["PluginMapper"]


def _pyarrow() -> Any:
    try:
        import pyarrow
    except ImportError as exc:
        raise ImportError("extism_fast.ray needs pyarrow: install the extra with "
                          "pip install 'extism_fast[ray]'") from exc
    return pyarrow


class PluginMapper:
    """Maps ``function_name`` over column ``column`` (binary or string) of each ``pyarrow.Table``
    batch and returns the batch with the outputs appended as ``output_column``: binary
    (``output="bytes"``) or UTF-8 text (``output="str"``; an output that is not UTF-8 is that
    item's error).

    ``size`` is the instances of the actor's pool (give the actor as many CPUs: ``num_cpus=``).
    ``errors="raise"`` fails the batch with the first failed item's Error; ``errors="return"``
    also appends ``error_column``: ``"Type: message"`` of a failed item (its output is null), null
    for the others. A null input is an item error (``InputTypeError``).
    """

    def __init__(self, compiled_or_source: Any, function_name: str, *, column: str = "text",
                 output_column: str = "output", output: Literal["bytes", "str"] = "bytes",
                 errors: Errors = "raise", error_column: str = "error", size: int = 1,
                 **compile_kwargs: Any) -> None:
        if output not in ("bytes", "str"):
            raise ValueError(f"output must be 'bytes' or 'str', got {output!r}")
        self.function_name = function_name
        self.column = column
        self.output_column = output_column
        self.output = output
        self.errors = check_errors(errors)
        self.error_column = error_column
        self.pool = PluginPool(as_compiled(compiled_or_source, **compile_kwargs), size=size)

    def __call__(self, batch: Any) -> Any:
        """The batch (a ``pyarrow.Table``) with the output column (and error column) appended."""
        pa = _pyarrow()
        if self.column not in batch.column_names:
            raise KeyError(f"the batch has no column {self.column!r} (columns: {batch.column_names})")
        # A list for now; see _workers.run_items for where the Arrow array will go as it is.
        values = batch.column(self.column).to_pylist()
        results = run_items(self.pool, self.function_name, values, self.errors)
        if self.output == "str":
            results = decode_outputs(results)
        failed = [is_error(value) for value in results]
        if self.errors == "raise":
            for value, bad in zip(results, failed):
                if bad:
                    raise value
        outputs = pa.array([None if bad else value for value, bad in zip(results, failed)],
                           type=pa.string() if self.output == "str" else pa.binary())
        batch = batch.append_column(self.output_column, outputs)
        if self.errors == "return":
            batch = batch.append_column(self.error_column, pa.array(
                [error_text(value) if bad else None for value, bad in zip(results, failed)], type=pa.string()))
        return batch

    def __del__(self) -> None:
        pool = getattr(self, "pool", None)
        if pool is not None:
            pool.close()
