"""What the Dask and Ray integrations share: a plugin reference that travels to worker processes,
the process-local PluginPool of each plugin, and running one partition of items through it.

A :class:`PluginRef` pickles its :class:`CompiledPlugin` by reference (``extism_fast.pickling``:
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

from extism_fast._runtime import CompiledPlugin
from extism_fast.pool import MAX_POOL_SIZE, PluginPool

__all__ = ["Errors", "InputTypeError", "PluginRef", "as_compiled", "check_errors", "cpu_count", "decode_outputs", "error_text",
           "is_error", "pool_for", "run_items"]

#: How a per-item failure is handled: ``"raise"`` fails the partition, ``"return"`` puts the
#: item's Error in its place.
Errors = Literal["raise", "return"]

_pools: "dict[str, PluginPool]" = {}
_pools_lock = threading.Lock()


class InputTypeError(TypeError):
    """An item that is not bytes-like or ``str`` (a missing value, a number, ...): that item's
    error with ``errors="return"``, else the partition's."""


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
    created at the first use with ``ref.size`` or ``default_size()`` instances."""
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


def run_items(pool: PluginPool, function_name: str, items: Sequence[Any], errors: Errors,
              labels: Sequence[Any] | None = None) -> list[Any]:
    """``function_name`` on every item through ``pool.map`` (``call_many`` batches on the pool's
    threads, GIL released), outputs as bytes in item order.

    An item that is not bytes-like or ``str`` gets an :class:`InputTypeError` naming it by its
    label (``labels[i]``, e.g. a row's index) or its position in the partition. With
    ``errors="return"`` a failed item's Error (or InputTypeError) takes its place; with ``"raise"``
    the first one is raised.
    """
    # The Arrow path plugs in here: once call_many accepts a pyarrow (Large)Binary/String Array, a
    # partition that is Arrow-backed is passed as its array (no Python list of bytes, no per-item
    # check: Arrow nulls are then the only bad items).
    bad: dict[int, InputTypeError] = {}
    calls: list[Any] = []
    for position, item in enumerate(items):
        if isinstance(item, (bytes, str, bytearray, memoryview)):
            calls.append(item)
            continue
        name = f"the item at index {labels[position]}" if labels is not None else f"item {position} of the partition"
        what = "missing (None/NA)" if item is None else f"of type {type(item).__name__}"
        bad[position] = InputTypeError(f"{name} is {what}, not bytes or str")
        if errors == "raise":
            raise bad[position]
    results = pool.map(function_name, calls, return_exceptions=errors == "return") if calls else []
    if not bad:
        return results
    outputs = iter(results)
    return [bad[position] if position in bad else next(outputs) for position in range(len(items))]


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


def error_text(error: BaseException) -> str:
    """``Type: message`` of a failed item, as the error column shows it."""
    return f"{type(error).__name__}: {error}"


def is_error(value: Any) -> bool:
    """Whether ``value`` is a failed item's error in ``run_items``' output."""
    return isinstance(value, BaseException)
