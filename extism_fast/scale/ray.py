"""A plugin function over a Ray Dataset: :class:`PluginMapper`, a callable class for
``ray.data.Dataset.map_batches`` on Arrow batches. Needs Ray Data (``pip install
'extism_fast[ray]'``).

::

    import ray
    from extism_fast.scale.ray import PluginMapper

    ds = ray.data.read_parquet("texts.parquet")
    # Ray tasks: the mapper travels pickled (the plugin by reference) to Ray's worker processes
    out = ds.map_batches(PluginMapper(compiled, "count_vowels", column="text"), batch_format="pyarrow")
    # or actors: each constructs its own mapper once
    out = ds.map_batches(PluginMapper, fn_constructor_args=(compiled, "count_vowels"),
                         fn_constructor_kwargs={"column": "text"}, batch_format="pyarrow",
                         concurrency=2)

Either way a worker process unpickles the plugin once (compiled once per process,
``extism_fast.runtime.pickling``) and keeps one :class:`PluginPool` for it (``_workers.pool_for``), which
every batch that process maps reuses: tasks need no actor start-up, and Ray reuses its worker
processes from task to task. On a cluster of a few CPUs, Ray Data's operator resource reservation
may run one map task at a time, whatever the function (Ray 2.60 on 2 CPUs ran a plugin-free map
0.95 tasks at once on average): ``DataContext.get_current().op_resource_reservation_enabled =
False``, set before the Dataset is made, lets them use every CPU (1.78 tasks at once there).
"""

from __future__ import annotations

from typing import Any, Literal

from extism_fast.scale._workers import (Errors, PluginRef, as_compiled, check_errors, is_arrow_text, pool_for, run_arrow,
                                  run_list)

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
    batch and returns the batch with the outputs appended as ``output_column``: ``large_binary``
    (``output="bytes"``) or ``large_string`` (``output="str"``; an output that is not UTF-8 is
    that item's error).

    A binary, string, large_binary or large_string column is read from its Arrow buffers and the
    outputs are filled as Arrow buffers (``_workers.run_arrow``: no Python object per item); a
    column of another type (e.g. all nulls) goes through a Python list, each value that is not
    bytes or str being an item error.

    Use an instance as the function of ``map_batches`` (Ray tasks), or the class with
    ``fn_constructor_args`` (Ray actors). ``size`` is the instances of each worker process's pool
    (give the task or actor as many CPUs: ``num_cpus=``).
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
        self.ref = PluginRef(as_compiled(compiled_or_source, **compile_kwargs), size)

    def __call__(self, batch: Any) -> Any:
        """The batch (a ``pyarrow.Table``) with the output column (and error column) appended."""
        pa = _pyarrow()
        if self.column not in batch.column_names:
            raise KeyError(f"the batch has no column {self.column!r} (columns: {batch.column_names})")
        values = batch.column(self.column)
        pool = pool_for(self.ref, lambda: 1)  # this process's, made by its first batch
        if is_arrow_text(values.type):
            outputs, texts = run_arrow(pool, self.function_name, values, self.errors, self.output)
        else:
            listed, listed_texts = run_list(pool, self.function_name, values.to_pylist(), self.errors,
                                            self.output)
            outputs = pa.array(listed, type=pa.large_string() if self.output == "str" else pa.large_binary())
            texts = None if listed_texts is None else pa.array(listed_texts, type=pa.large_string())
        batch = batch.append_column(self.output_column, outputs)
        if texts is not None:
            batch = batch.append_column(self.error_column, texts)
        return batch
