"""PluginPool: N instances of one compiled plugin, shared safely by many threads.

``pool.call`` borrows a free instance for one call; ``pool.map`` splits the inputs into chunks and
runs each chunk with :meth:`Plugin.call_many` on its own instance and thread, so the batches run
in parallel with the GIL released.
"""

from __future__ import annotations

import os
import queue
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, Callable, Generator, Iterable, Iterator, List, Optional, Sequence

from extism_fast._runtime import CompiledPlugin, Plugin, parse_output
from extism_fast.errors import Error
from extism_fast.functions import HOST_FN_REGISTRY, Function

__all__ = ["PluginPool"]


class PluginPool:
    """``size`` instances (default: the CPU count) of one plugin, usable from any thread.

    ``source``, ``wasi``, ``functions`` and ``config`` are as for :class:`Plugin` (a
    :class:`CompiledPlugin` is used as is); other keyword arguments go to every ``Plugin``.
    """

    def __init__(
        self,
        source: Any,
        size: Optional[int] = None,
        wasi: bool = False,
        functions: Optional[Sequence[Function]] = HOST_FN_REGISTRY,
        config: Optional[dict] = None,
        **plugin_kwargs: Any,
    ) -> None:
        if size is None:
            size = os.cpu_count() or 1
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"PluginPool size must be a positive integer, got {size!r}")
        if isinstance(source, CompiledPlugin):
            self.compiled = source
        else:
            self.compiled = CompiledPlugin(source, wasi, functions, config=config, fuel=plugin_kwargs.pop("fuel", None))
        self._plugins = [Plugin(self.compiled, config=config, **plugin_kwargs) for _ in range(size)]
        self._free: "queue.SimpleQueue[Plugin]" = queue.SimpleQueue()
        for plugin in self._plugins:
            self._free.put(plugin)
        self._executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix="extism_fast-pool")
        self._closed = False
        self._lock = threading.Lock()

    @property
    def size(self) -> int:
        """The number of instances."""
        return len(self._plugins)

    def _borrow(self) -> Plugin:
        if self._closed:
            raise Error("plugin pool is closed")
        return self._free.get()

    def call(self, function_name: str, data: Any = b"", parse: Optional[Callable[[bytes], Any]] = bytes,
             host_context: Any = None) -> Any:
        """Call on a free instance (waits for one when all are busy). Thread-safe.

        ``parse=None`` gives a memoryview of a copy: the instance goes back to the pool at once.
        """
        plugin = self._borrow()
        try:
            out = plugin.call(function_name, data, bytes, host_context)
        finally:
            self._free.put(plugin)
        return parse_output(out, parse)

    def _run_chunk(self, function_name: str, chunk: List[Any], parse: Any, return_exceptions: bool) -> List[Any]:
        plugin = self._borrow()
        try:
            return plugin.call_many(function_name, chunk, parse, return_exceptions)
        finally:
            self._free.put(plugin)

    def map(self, function_name: str, inputs: Iterable[Any], parse: Optional[Callable[[bytes], Any]] = bytes,
            ordered: bool = True, return_exceptions: bool = False, chunk_size: Optional[int] = None) -> List[Any]:
        """Call ``function_name`` on every input, spread over the instances and threads.

        Returns the outputs in input order (``ordered=True``) or in completion order (by chunk).
        A failure raises its Error, or with ``return_exceptions=True`` takes its slot.
        """
        return list(self.imap(function_name, inputs, parse, ordered, return_exceptions, chunk_size))

    def imap(self, function_name: str, inputs: Iterable[Any], parse: Optional[Callable[[bytes], Any]] = bytes,
             ordered: bool = True, return_exceptions: bool = False,
             chunk_size: Optional[int] = None) -> Iterator[Any]:
        """Iterator form of :meth:`map`; at most ``2 * size`` chunks are in flight at once."""
        if self._closed:
            raise Error("plugin pool is closed")
        items = inputs if isinstance(inputs, list) else list(inputs)
        if chunk_size is None:
            chunk_size = max(1, min(1024, -(-len(items) // (self.size * 4))))
        chunks = (items[i : i + chunk_size] for i in range(0, len(items), chunk_size))
        pending: "dict[Future, int]" = {}
        done: "dict[int, List[Any]]" = {}
        next_index = submitted = 0
        for chunk in chunks:
            pending[self._executor.submit(self._run_chunk, function_name, chunk, parse, return_exceptions)] = submitted
            submitted += 1
            while len(pending) >= 2 * self.size:
                next_index = yield from self._drain(pending, done, next_index, ordered)
        while pending:
            next_index = yield from self._drain(pending, done, next_index, ordered)

    @staticmethod
    def _drain(pending: "dict[Future, int]", done: "dict[int, List[Any]]", next_index: int,
               ordered: bool) -> Generator[Any, None, int]:
        """Wait for a chunk, yield what can be yielded now; returns the next chunk index in order."""
        finished, _ = wait(list(pending), return_when=FIRST_COMPLETED)
        for future in finished:
            done[pending.pop(future)] = future.result()
        if not ordered:
            for index in sorted(done):
                yield from done.pop(index)
            return next_index
        while next_index in done:
            yield from done.pop(next_index)
            next_index += 1
        return next_index

    def close(self) -> None:
        """Wait for running work, then free every instance."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._executor.shutdown(wait=True)
        for plugin in self._plugins:
            plugin.close()

    def __enter__(self) -> "PluginPool":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()
