"""What the Dask and Ray integrations share: a plugin reference that travels to worker processes,
the process-local PluginPool of each plugin, and running one partition of items through it: a
Python list (``run_list``) or an Arrow column read in place (``run_arrow``).

A :class:`PluginRef` pickles its :class:`CompiledPlugin` by reference (``extism_fast.runtime.pickling``:
unpickling compiles once per process) together with that pickle's registry key. A worker process
keeps one :class:`PluginPool` per key (``pool_for``), created by the first partition that needs it
and kept until the process exits, so a plugin is compiled and instantiated once per worker, not per
task.
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Callable, Sequence
from typing import Any, Literal

from extism_fast._runtime import CompiledPlugin, _restore_trap_handlers
from extism_fast.scale.arrow import decoded, is_text_type
from extism_fast.scale.arrow import error_text  # one text for an item's error, Arrow column or not
# An item that is not bytes-like or str: that item's error with errors="return", else the partition's.
from extism_fast.errors import InputTypeError, input_type_error
from extism_fast.scale.pool import MAX_POOL_SIZE, PluginPool

__all__ = ["Errors", "InputTypeError", "PluginRef", "as_compiled", "check_errors", "cpu_count", "decode_outputs",
           "error_text", "is_arrow_text", "is_error", "item_name", "pool_for", "run_arrow", "run_items", "run_list"]

#: How a per-item failure is handled: ``"raise"`` fails the partition, ``"return"`` puts the
#: item's Error in its place.
Errors = Literal["raise", "return"]

_pools: "dict[str, PluginPool]" = {}
_pools_lock = threading.Lock()


def check_errors(errors: str) -> Errors:
    """``errors`` itself when it is ``"raise"`` or ``"return"``, else a ValueError naming it."""
    if errors not in ("raise", "return"):
        raise ValueError(f"errors must be 'raise' or 'return', got {errors!r}")
    return errors  # type: ignore[return-value]


def as_compiled(compiled_or_source: Any, **compile_kwargs: Any) -> CompiledPlugin:
    """A :class:`CompiledPlugin` as is, else one compiled from the source (path, bytes, manifest,
    ...) with ``compile_kwargs`` (``wasi``, ``functions``, ``config``, ``fuel``, ...)."""
    if isinstance(compiled_or_source, CompiledPlugin):
        if compile_kwargs:
            raise TypeError(f"compile options {sorted(compile_kwargs)} given with a CompiledPlugin: "
                            "pass them to CompiledPlugin(...) instead")
        return compiled_or_source
    return CompiledPlugin(compiled_or_source, **compile_kwargs)


class PluginRef:
    """A compiled plugin on its way to worker processes, with the options of its pools.

    ``size`` is the instances of each worker's pool: ``None`` asks ``default_size`` in the worker
    (its thread count). ``pool_kwargs`` go to every ``Plugin`` of the pool (``config``, ...).
    """

    def __init__(self, compiled: CompiledPlugin, size: int | None = None, key: str | None = None,
                 **pool_kwargs: Any) -> None:
        self.compiled = compiled
        # The pickle's registry key: the identity of the plugin and its options, across processes.
        self.key = key if key is not None else compiled.__reduce__()[1][0]
        self.size = size
        self.pool_kwargs = pool_kwargs

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore_ref, (self.compiled, self.size, self.key, self.pool_kwargs))

    def __repr__(self) -> str:
        return f"PluginRef(key={self.key[:12]}..., size={self.size})"


def _restore_ref(compiled: CompiledPlugin, size: int | None, key: str, pool_kwargs: dict) -> PluginRef:
    return PluginRef(compiled, size, key, **pool_kwargs)


def pool_for(ref: PluginRef, default_size: Callable[[], int]) -> PluginPool:
    """This process's pool for ``ref`` (one per plugin and options, and per pool options),
    created at the first use with ``ref.size`` or ``default_size()`` instances. Every Dask
    partition and Ray batch starts here: wasmtime's trap handlers are put back first if code run
    since (the task's own, a library's) replaced them (README, "Wasm traps and crash handlers")."""
    _restore_trap_handlers()
    key = ref.key + repr(sorted(ref.pool_kwargs.items())) + repr(ref.size)
    pool = _pools.get(key)
    if pool is None:
        with _pools_lock:
            pool = _pools.get(key)
            if pool is None:
                size = ref.size if ref.size is not None else max(1, min(default_size(), MAX_POOL_SIZE))
                pool = _pools[key] = PluginPool(ref.compiled, size=size, **ref.pool_kwargs)
    return pool


@atexit.register
def _close_pools() -> None:
    with _pools_lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        pool.close()


def cpu_count() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def item_name(position: int, labels: Sequence[Any] | None) -> str:
    """How messages name the item at ``position``: by its label (a row's index), else its place."""
    return f"the item at index {labels[position]}" if labels is not None else f"item {position} of the partition"


def _bad_item(position: int, item: Any, labels: Sequence[Any] | None) -> InputTypeError:
    return input_type_error(position, item, item_name(position, labels))


def run_items(pool: PluginPool, function_name: str, items: Sequence[Any], errors: Errors,
              labels: Sequence[Any] | None = None) -> list[Any]:
    """``function_name`` on every item through ``pool.map`` (``call_many`` batches on the pool's
    threads, GIL released), outputs as bytes in item order.

    An item that is not bytes-like or ``str`` gets an :class:`InputTypeError` naming it by its
    label (``labels[i]``, e.g. a row's index) or its position in the partition. With
    ``errors="return"`` a failed item's Error (or InputTypeError) takes its place; with ``"raise"``
    the first one is raised. An Arrow column goes to :func:`run_arrow` instead.
    """
    bad: dict[int, InputTypeError] = {}
    calls: list[Any] = []
    for position, item in enumerate(items):
        if isinstance(item, (bytes, str, bytearray, memoryview)):
            calls.append(item)
            continue
        bad[position] = _bad_item(position, item, labels)
        if errors == "raise":
            raise bad[position]
    results = pool.map(function_name, calls, return_exceptions=errors == "return") if calls else []
    if not bad:
        return results
    outputs = iter(results)
    return [bad[position] if position in bad else next(outputs) for position in range(len(items))]


def run_list(pool: PluginPool, function_name: str, items: Sequence[Any], errors: Errors, output: str,
             labels: Sequence[Any] | None = None) -> tuple[list[Any], list[str | None] | None]:
    """:func:`run_items`, outputs decoded when ``output="str"``: the outputs (None where the item
    failed) and, with ``errors="return"``, the error texts (None where it succeeded)."""
    results = run_items(pool, function_name, items, errors, labels)
    if output == "str":
        results = decode_outputs(results)
    failed = [is_error(value) for value in results]
    if errors == "raise":
        for value, bad in zip(results, failed):
            if bad:
                raise value
        return results, None
    return ([None if bad else value for value, bad in zip(results, failed)],
            [error_text(value) if bad else None for value, bad in zip(results, failed)])


def is_arrow_text(arrow_type: Any) -> bool:
    """Whether a column of this pyarrow type takes :func:`run_arrow` (binary, string, large_*, or
    a dictionary of them)."""
    return is_text_type(arrow_type)


def run_arrow(pool: PluginPool, function_name: str, array: Any, errors: Errors, output: str,
              labels: Sequence[Any] | None = None) -> tuple[Any, Any | None]:
    """:func:`run_list` for a pyarrow (Chunked)Array of binary/string (``is_arrow_text``): the
    items are read from its buffers and the outputs come back as Arrow (``pool.map(...,
    output="arrow")``), no Python object per item.

    Returns the outputs (``large_binary``, or ``large_string`` for ``output="str"``; null where
    the item failed) and, with ``errors="return"``, the error texts (``large_string``, null where
    it succeeded). The messages are :func:`run_list`'s: a null item is an :class:`InputTypeError`
    naming it, an output that is not UTF-8 with ``output="str"`` its UnicodeDecodeError; with
    ``errors="raise"`` a failed call's Error names its item too.
    """
    import pyarrow.compute as pc
    array = decoded(array)  # a dictionary's null values count as nulls only once decoded
    if errors == "raise":
        if array.null_count:  # checked before any call, as run_items does
            raise _bad_item(pc.index(array.is_null(), True).as_py(), None, labels)
        try:
            outputs = pool.map(function_name, array, output="arrow")
        except Exception as exc:
            raise _renamed(exc, labels) from None
        texts = None
        failed: dict[int, BaseException] = {}
    else:
        both = pool.map(function_name, array, output="arrow", return_exceptions=True)
        outputs, texts = pc.struct_field(both, "output"), pc.struct_field(both, "error")
        nulls = pc.indices_nonzero(array.is_null()).to_pylist() if array.null_count else []
        failed = {position: _bad_item(position, None, labels) for position in nulls}
    if output == "str":
        not_utf8 = _not_utf8(outputs)
        if not_utf8 and errors == "raise":
            raise not_utf8[min(not_utf8)]
        outputs = _as_text(_replaced(outputs, dict.fromkeys(not_utf8)))
        failed.update(not_utf8)
    if texts is not None:
        texts = _replaced(texts, {position: error_text(error) for position, error in failed.items()})
    return outputs, texts


def _renamed(exc: Exception, labels: Sequence[Any] | None) -> Exception:
    """A failed call's Error from an Arrow ``pool.map`` with its item named as run_items names
    items (a Dask partition's position is not the row's index); other exceptions as they are."""
    # Set together on the Error by the Arrow batch (_arrow.pxi).
    index, error = getattr(exc, "input_index", None), getattr(exc, "item_error", None)
    if index is None:
        return exc
    return type(exc)(f"{item_name(index, labels)}: {error}")


def _chunks(column: Any) -> list[Any]:
    return column.chunks if hasattr(column, "chunks") else [column]


def _not_utf8(outputs: Any) -> dict[int, UnicodeDecodeError]:
    """The outputs (large_binary) that are not UTF-8, by position, with the error decoding gives.
    Validation runs in pyarrow; items are looked at one by one only in a chunk that fails it."""
    import pyarrow as pa
    bad: dict[int, UnicodeDecodeError] = {}
    start = 0
    for chunk in _chunks(outputs):
        try:
            chunk.view(pa.large_string()).validate(full=True)
        except pa.ArrowInvalid:
            for i, value in enumerate(chunk.to_pylist()):
                try:
                    if value is not None:
                        value.decode("utf-8")
                except UnicodeDecodeError as exc:
                    bad[start + i] = exc
        start += len(chunk)
    return bad


def _replaced(column: Any, values: dict[int, Any]) -> Any:
    """``column`` with the items at the positions of ``values`` replaced (None: null), chunk by
    chunk (untouched chunks are kept as they are)."""
    if not values:
        return column
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    out, start = [], 0
    for chunk in _chunks(column):
        mine = sorted(p - start for p in values if start <= p < start + len(chunk))
        if mine:
            mask = np.zeros(len(chunk), dtype=bool)
            mask[mine] = True
            chunk = pc.replace_with_mask(chunk, pa.array(mask),
                                         pa.array([values[start + p] for p in mine], type=chunk.type))
        out.append(chunk)
        start += len(chunk)
    return pa.chunked_array(out, type=column.type) if hasattr(column, "chunks") else out[0]


def _as_text(outputs: Any) -> Any:
    """large_binary outputs checked to be UTF-8 as large_string, without a copy."""
    import pyarrow as pa
    if not hasattr(outputs, "chunks"):
        return outputs.view(pa.large_string())
    return pa.chunked_array([chunk.view(pa.large_string()) for chunk in outputs.chunks], type=pa.large_string())


def decode_outputs(results: list[Any]) -> list[Any]:
    """``results`` with each output decoded as UTF-8; one that is not UTF-8 becomes its
    UnicodeDecodeError (an item error), errors stay."""
    decoded: list[Any] = []
    for value in results:
        if isinstance(value, (bytes, bytearray)):
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError as exc:
                value = exc
        decoded.append(value)
    return decoded


def is_error(value: Any) -> bool:
    """Whether ``value`` is a failed item's error in ``run_items``' output."""
    return isinstance(value, BaseException)
