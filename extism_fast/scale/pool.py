"""PluginPool: N instances of one compiled plugin, shared safely by many threads.

``pool.call`` borrows a free instance for one call; ``pool.map`` splits the inputs into chunks and
runs each chunk with :meth:`Plugin.call_many` on its own instance and thread, so the batches run
in parallel with the GIL released; ``with pool.get(timeout=...) as plugin`` lends one instance
for a block. With ``max_size`` the pool adds instances on demand, up to that many.
"""

from __future__ import annotations

import math
import operator
import os
import queue
import threading
import time
from contextlib import AbstractContextManager
from threading import get_ident
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import (TYPE_CHECKING, Any, AsyncIterable, AsyncIterator, Callable, Generator, Iterable, Iterator, List,
                    Literal, Optional, Sequence, TypeVar, Union, overload)

from extism_fast._runtime import CompiledPlugin, Plugin, _arrow_call_many, parse_output
from extism_fast.scale.arrow import combine as arrow_combine, is_arrow, is_chunked_array
from extism_fast.scale.arrow import output_type as arrow_output_type, split as arrow_split
from extism_fast.scale import MAX_POOL_SIZE
from extism_fast.errors import CancelledError, Error, InputTypeError, PoolTimeoutError, checked_input, reindexed
from extism_fast.host.functions import HOST_FN_REGISTRY, Function

# asyncio and the async bridge load with the first acall / amap / aclose (~20 ms at import time).
if TYPE_CHECKING:
    import asyncio

    from extism_fast.scale.aio import CallSlot

_T = TypeVar("_T")

__all__ = ["PluginPool", "PooledPlugin", "MAX_POOL_SIZE"]


_CLOSED = "plugin pool is closed"
#: How often a call waiting for a free instance checks whether close() began.
_CLOSE_POLL_SECONDS = 0.05
#: How often a map stopping at a KeyboardInterrupt cancels its running chunks again (a chunk may
#: be between its borrow and its first call when cancelled).
_STOP_POLL_SECONDS = 0.01
_RETURNED = ("this pooled instance was given back to its PluginPool when its 'with pool.get()' "
             "block ended; borrow one again")
_NOT_CLOSABLE = ("a pooled instance is closed by its PluginPool: call pool.close(), or let the "
                 "'with pool.get()' block end to give the instance back")
_NOT_COPYABLE = ("cannot copy or pickle a PooledPlugin (an instance lent for one 'with pool.get()' "
                 "block): pickle the CompiledPlugin (pool.compiled) instead")
_REENTERED = ("PluginPool {what} from a host function (or parse callback, or 'with pool.get()' "
              "block) running on one of this pool's instances: it would wait for itself; call a "
              "separate Plugin or pool instead")


def _check_count(what: str, value: Any, maximum: Optional[int] = None) -> int:
    """``value`` as an int (any integer type, not bool) in 1..maximum, else a ValueError naming
    ``what``."""
    try:
        count = operator.index(value) if not isinstance(value, bool) else 0
    except TypeError:
        count = 0
    if count < 1:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    if maximum is not None and count > maximum:
        raise ValueError(f"{what} must be at most {maximum}, got {value!r}")
    return count


class PluginPool:
    """``size`` instances (default: the CPU count, at most :data:`MAX_POOL_SIZE`) of one plugin,
    usable from any thread; with ``max_size``, more are created on demand when all are busy, up
    to ``max_size`` in all (they stay until :meth:`close`).

    ``source``, ``wasi``, ``functions`` and ``config`` are as for :class:`Plugin` (a
    :class:`CompiledPlugin` is used as is); other keyword arguments go to every ``Plugin``.

    A thread holds at most one instance at a time: a thread that is running a call on one of the
    pool's instances (a host function of the plugin, a ``parse`` callback of ``map``, the body of
    ``with pool.get()``) cannot use the pool again: ``call``, ``map``, ``imap``, ``get`` and
    ``close`` raise :class:`Error` there at once, free instances or not, instead of waiting for
    the instance that thread itself holds.
    """

    def __init__(
        self,
        source: Any,
        size: Optional[int] = None,
        wasi: bool = False,
        functions: Optional[Sequence[Function]] = HOST_FN_REGISTRY,
        config: Optional[dict] = None,
        *,
        max_size: Optional[int] = None,
        **plugin_kwargs: Any,
    ) -> None:
        if size is None:
            size = min(os.cpu_count() or 1, MAX_POOL_SIZE)
            if max_size is not None:
                size = min(size, _check_count("PluginPool max_size", max_size, MAX_POOL_SIZE))
        size = _check_count("PluginPool size", size, MAX_POOL_SIZE)
        self._max_size = size if max_size is None else _check_count("PluginPool max_size", max_size, MAX_POOL_SIZE)
        if self._max_size < size:
            raise ValueError(f"PluginPool max_size must be at least size ({size}), got {max_size!r}")
        if isinstance(source, CompiledPlugin):
            self.compiled = source
        else:
            self.compiled = CompiledPlugin(source, wasi, functions, config=config, fuel=plugin_kwargs.pop("fuel", None))
        self._config = config
        self._plugin_kwargs = plugin_kwargs
        self._plugins = [self._new_plugin() for _ in range(size)]
        self._free: "queue.SimpleQueue[Plugin]" = queue.SimpleQueue()
        for plugin in self._plugins:
            self._free.put(plugin)
        self._closed = False            # no new work: set by the first close()
        self._instances_closed = False  # set when close() has freed every instance
        self._close_lock = threading.Lock()  # held through a whole close(): a second one waits
        # Guards _plugins growing against close() counting it: close sets _closed under it.
        self._grow_lock = threading.Lock()
        self._holders: "set[int]" = set()   # the threads that hold an instance now
        self._jobs: "set[_MapJob]" = set()  # the maps in progress (_interrupt stops them)
        self._interrupted = False           # _interrupt was called: every map stops at once
        self._executor = ThreadPoolExecutor(max_workers=self._max_size, thread_name_prefix="extism_fast-pool")

    def _new_plugin(self) -> Plugin:
        return Plugin(self.compiled, config=self._config, **self._plugin_kwargs)

    @property
    def size(self) -> int:
        """The number of instances now (grows up to :attr:`max_size` on demand)."""
        return len(self._plugins)

    @property
    def max_size(self) -> int:
        """The most instances the pool creates (``size`` unless ``max_size`` was given)."""
        return self._max_size

    def _check_not_reentered(self, what: str) -> None:
        if get_ident() in self._holders:
            raise Error(_REENTERED.format(what=what))

    def _borrow(self, what: str, timeout: Optional[float] = None) -> Plugin:
        """A free instance (a new one while under max_size, else waiting for one, at most
        ``timeout`` seconds); Error when the pool is closed or re-entered, PoolTimeoutError when
        the time is up."""
        thread = get_ident()
        if thread in self._holders:
            raise Error(_REENTERED.format(what=what))
        if self._closed:
            raise Error(_CLOSED)
        try:
            plugin = self._free.get(False)
        except queue.Empty:
            plugin = self._grow() or self._wait_for_instance(timeout)
        if self._closed:  # close() began meanwhile: the instance is for it to collect
            self._free.put(plugin)
            raise Error(_CLOSED)
        self._holders.add(thread)
        return plugin

    def _grow(self) -> Optional[Plugin]:
        """A new instance for the caller, or None at max_size (or once close() has begun)."""
        if len(self._plugins) >= self._max_size:  # the common case, without the lock
            return None
        with self._grow_lock:
            if self._closed or len(self._plugins) >= self._max_size:
                return None
            plugin = self._new_plugin()
            self._plugins.append(plugin)
            return plugin

    def _wait_for_instance(self, timeout: Optional[float] = None) -> Plugin:
        """The next instance given back; Error once close() has begun (checked now and then),
        PoolTimeoutError after ``timeout`` seconds (None: no limit)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            wait_for = _CLOSE_POLL_SECONDS
            if deadline is not None:
                wait_for = min(wait_for, max(0.0, deadline - time.monotonic()))
            try:
                return self._free.get(True, wait_for) if wait_for > 0 else self._free.get(False)
            except queue.Empty:
                if self._closed:
                    raise Error(_CLOSED) from None
                if deadline is not None and time.monotonic() >= deadline:
                    raise PoolTimeoutError(
                        f"no free PluginPool instance within the timeout of {timeout:g} s "
                        f"(all {self.size} busy)") from None

    def get(self, timeout: Optional[float] = None) -> "AbstractContextManager[PooledPlugin]":
        """Lend one instance for a ``with`` block: ``with pool.get(timeout=1.0) as plugin:``.

        Waits at most ``timeout`` seconds (None: as long as it takes; 0: only a free one) for a
        free instance, creating one first while the pool is under ``max_size``; raises
        :class:`PoolTimeoutError` (an :class:`Error` and a :class:`TimeoutError`) when none
        frees up in time, :class:`Error` once the pool is closed. The block gets a proxy of the
        :class:`Plugin` that refuses ``close()`` and any use after the block.
        """
        if timeout is not None:
            if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) \
                    or math.isnan(timeout) or timeout < 0:
                raise ValueError(f"PluginPool.get timeout must be None or a number of seconds "
                                 f">= 0, got {timeout!r}")
        return _Lease(self, timeout)

    def _give_back(self, plugin: Plugin, thread: Optional[int] = None) -> None:
        self._holders.discard(get_ident() if thread is None else thread)
        self._free.put(plugin)

    # The result types by ``parse`` (and ``return_exceptions``) for type checkers; one implementation each.
    @overload
    def call(self, function_name: str, data: Any = b"", parse: type[bytes] = bytes,
             host_context: Any = None) -> bytes: ...
    @overload
    def call(self, function_name: str, data: Any, parse: None, host_context: Any = None) -> memoryview: ...
    @overload
    def call(self, function_name: str, data: Any, parse: Callable[[bytes], _T], host_context: Any = None) -> _T: ...

    def call(self, function_name: str, data: Any = b"", parse: Optional[Callable[[bytes], Any]] = bytes,
             host_context: Any = None) -> Any:
        """Call on a free instance (waits for one when all are busy). Thread-safe.

        ``parse=None`` gives a memoryview of a copy: the instance goes back to the pool at once.
        """
        plugin = self._borrow("call")
        try:
            out = plugin.call(function_name, data, bytes, host_context)
        finally:  # _give_back, inlined: a small call costs about as much as a method call
            self._holders.discard(get_ident())
            self._free.put(plugin)
        return parse_output(out, parse)

    def _run_chunk(self, job: "_MapJob", function_name: str, chunk: List[Any], parse: Any,
                   return_exceptions: bool, start: int) -> List[Any]:
        """One chunk of map(), the inputs from index ``start`` on."""
        plugin = self._borrow("map")
        try:
            job.begin(plugin)
            return plugin.call_many(function_name, chunk, parse, return_exceptions)
        except InputTypeError as exc:
            raise reindexed(exc, start, chunk) from None
        finally:
            job.running.discard(plugin)
            self._give_back(plugin)

    def _new_job(self) -> "_MapJob":
        job = _MapJob()
        self._jobs.add(job)
        job.stopped = self._interrupted  # after adding: _interrupt sets it, then reads _jobs
        return job

    def _interrupt(self) -> None:
        """Stop every map in progress and every later one at once (their chunks raise
        CancelledError), for a program ending at a KeyboardInterrupt that another thread's map
        did not see (the CLI's batch); ``close()`` still works."""
        self._interrupted = True
        for job in list(self._jobs):
            job.stop()

    @overload
    def map(self, function_name: str, inputs: Iterable[Any], parse: type[bytes] = bytes, ordered: bool = True,
            return_exceptions: Literal[False] = False, chunk_size: Optional[int] = None,
            output: None = None) -> List[bytes]: ...
    @overload
    def map(self, function_name: str, inputs: Iterable[Any], parse: None, ordered: bool = True,
            return_exceptions: Literal[False] = False, chunk_size: Optional[int] = None,
            output: None = None) -> List[memoryview]: ...
    @overload
    def map(self, function_name: str, inputs: Iterable[Any], parse: Callable[[bytes], _T], ordered: bool = True,
            return_exceptions: Literal[False] = False, chunk_size: Optional[int] = None,
            output: None = None) -> List[_T]: ...
    @overload
    def map(self, function_name: str, inputs: Iterable[Any], parse: type[bytes] = bytes, ordered: bool = True,
            *, return_exceptions: Literal[True], chunk_size: Optional[int] = None,
            output: None = None) -> List[Union[bytes, Exception]]: ...
    @overload
    def map(self, function_name: str, inputs: Iterable[Any], parse: Callable[[bytes], _T], ordered: bool = True,
            *, return_exceptions: Literal[True], chunk_size: Optional[int] = None,
            output: None = None) -> List[Union[_T, Exception]]: ...
    @overload
    def map(self, function_name: str, inputs: Iterable[Any], parse: Optional[Callable[[bytes], Any]] = bytes,
            ordered: bool = True, return_exceptions: bool = False, chunk_size: Optional[int] = None,
            output: Optional[str] = None) -> Any: ...

    def map(self, function_name: str, inputs: Iterable[Any], parse: Optional[Callable[[bytes], Any]] = bytes,
            ordered: bool = True, return_exceptions: bool = False, chunk_size: Optional[int] = None,
            output: Optional[str] = None) -> Any:
        """Call ``function_name`` on every input, spread over the instances and threads.

        Returns the outputs in input order (``ordered=True``) or in completion order (by chunk).
        A failure raises its Error, or with ``return_exceptions=True`` takes its slot. A
        KeyboardInterrupt while waiting (Ctrl-C on the main thread) stops every chunk (their calls
        cancelled, those not started never start) before it propagates.

        A pyarrow Array or ChunkedArray input is split into zero-copy slices, one
        :meth:`Plugin.call_many` each; ``output="arrow"`` / ``"arrow_string"`` returns one Arrow
        array (a ChunkedArray for a ChunkedArray input) in input order whatever ``ordered``
        says; see :mod:`extism_fast.scale.arrow`.
        """
        if output is not None or is_arrow(inputs):
            return self._map_arrow(function_name, inputs, parse, return_exceptions, chunk_size, output)
        return list(self.imap(function_name, inputs, parse, ordered, return_exceptions, chunk_size))

    def _map_arrow(self, function_name: str, inputs: Any, parse: Any, return_exceptions: bool,
                   chunk_size: Optional[int], output: Optional[str]) -> Any:
        """map() with an Arrow input or output: pieces in parallel, results joined in order."""
        out_type = arrow_output_type(output)  # checked before any work
        if chunk_size is not None:
            chunk_size = _check_count("PluginPool.map chunk_size", chunk_size)
        self._check_not_reentered("map")
        if self._closed:
            raise Error(_CLOSED)
        if not is_arrow(inputs) and not isinstance(inputs, list):
            inputs = list(inputs)
        if chunk_size is None:  # a few pieces per instance; no 1024 cap: a piece costs no copy
            chunk_size = max(1, -(-len(inputs) // (self._max_size * 4)))
        futures = []
        job = self._new_job()
        try:
            for start, piece in arrow_split(inputs, chunk_size):
                futures.append(self._submit_to(self._run_arrow_piece, job, function_name, piece, parse,
                                               return_exceptions, output, start))
            pieces = [future.result() for future in futures]
        except KeyboardInterrupt:
            job.stop()
            raise
        finally:
            self._jobs.discard(job)
            for future in futures:
                future.cancel()  # after a failure: pieces not started yet never start
        return arrow_combine(pieces, is_chunked_array(inputs), out_type, return_exceptions)

    def _run_arrow_piece(self, job: "_MapJob", function_name: str, piece: Any, parse: Any,
                         return_exceptions: bool, output: Optional[str], start: int) -> Any:
        plugin = self._borrow("map")
        try:
            job.begin(plugin)
            return _arrow_call_many(plugin, function_name, piece, parse, return_exceptions, output, start)
        finally:
            job.running.discard(plugin)
            self._give_back(plugin)

    @overload
    def imap(self, function_name: str, inputs: Iterable[Any], parse: type[bytes] = bytes, ordered: bool = True,
             return_exceptions: Literal[False] = False, chunk_size: Optional[int] = None) -> Iterator[bytes]: ...
    @overload
    def imap(self, function_name: str, inputs: Iterable[Any], parse: None, ordered: bool = True,
             return_exceptions: Literal[False] = False, chunk_size: Optional[int] = None) -> Iterator[memoryview]: ...
    @overload
    def imap(self, function_name: str, inputs: Iterable[Any], parse: Callable[[bytes], _T], ordered: bool = True,
             return_exceptions: Literal[False] = False, chunk_size: Optional[int] = None) -> Iterator[_T]: ...
    @overload
    def imap(self, function_name: str, inputs: Iterable[Any], parse: Optional[Callable[[bytes], Any]] = bytes,
             ordered: bool = True, return_exceptions: bool = False,
             chunk_size: Optional[int] = None) -> Iterator[Any]: ...

    def imap(self, function_name: str, inputs: Iterable[Any], parse: Optional[Callable[[bytes], Any]] = bytes,
             ordered: bool = True, return_exceptions: bool = False,
             chunk_size: Optional[int] = None) -> Iterator[Any]:
        """Iterator form of :meth:`map`; at most ``2 * max_size`` chunks are in flight at once.

        ``chunk_size`` (items per :meth:`Plugin.call_many`, default: about a quarter of the
        items per instance, at most 1024) must be a positive integer. Checked now, not at the
        first ``next()``.
        """
        if chunk_size is not None:
            chunk_size = _check_count("PluginPool.map chunk_size", chunk_size)
        if is_arrow(inputs):
            raise TypeError("PluginPool.imap takes no Arrow input: use map(..., output='arrow')")
        self._check_not_reentered("map")
        if self._closed:
            raise Error(_CLOSED)
        return self._imap(function_name, inputs, parse, ordered, return_exceptions, chunk_size)

    def _imap(self, function_name: str, inputs: Iterable[Any], parse: Any, ordered: bool,
              return_exceptions: bool, chunk_size: Optional[int]) -> Iterator[Any]:
        items = inputs if isinstance(inputs, list) else list(inputs)
        if chunk_size is None:
            chunk_size = max(1, min(1024, -(-len(items) // (self._max_size * 4))))
        pending: "dict[Future, int]" = {}
        done: "dict[int, List[Any]]" = {}
        next_index = submitted = 0
        job = self._new_job()
        try:
            for start in range(0, len(items), chunk_size):
                chunk = items[start : start + chunk_size]
                pending[self._submit(job, function_name, chunk, parse, return_exceptions, start)] = submitted
                submitted += 1
                while len(pending) >= 2 * self._max_size:
                    next_index = yield from self._drain(pending, done, next_index, ordered)
            while pending:
                next_index = yield from self._drain(pending, done, next_index, ordered)
        except KeyboardInterrupt:  # Ctrl-C while this thread waited for the chunks
            for future in pending:
                future.cancel()
            job.stop()
            raise
        finally:
            self._jobs.discard(job)

    def _submit(self, job: "_MapJob", function_name: str, chunk: List[Any], parse: Any,
                return_exceptions: bool, start: int) -> Future:
        return self._submit_to(self._run_chunk, job, function_name, chunk, parse, return_exceptions, start)

    def _submit_to(self, fn: Callable[..., Any], *args: Any) -> Future:
        try:
            return self._executor.submit(fn, *args)
        except RuntimeError:  # the executor was shut down by close() during this map
            raise Error(_CLOSED) from None

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

    async def acall(self, function_name: str, data: Any = b"", parse: Optional[Callable[[bytes], Any]] = bytes,
                    host_context: Any = None) -> Any:
        """``await``-able :meth:`call`: runs on one of the pool's threads (the GIL released while
        the plugin runs), so the event loop keeps serving. Waiting for a free instance happens
        there too. Cancelling the awaiting task cancels the call on its instance and returns when
        the instance is free again (a call not started yet never starts)."""
        from extism_fast.scale.aio import CallSlot, run_on_thread

        if self._closed:
            raise Error(_CLOSED)
        slot = CallSlot()
        try:
            job = self._executor.submit(self._acall_on_instance, slot, function_name, data, parse, host_context)
        except RuntimeError:  # the executor was shut down by close() meanwhile
            raise Error(_CLOSED) from None
        return await run_on_thread(job, slot)

    def _acall_on_instance(self, slot: CallSlot, function_name: str, data: Any, parse: Any,
                           host_context: Any) -> Any:
        plugin = self._borrow("acall")
        try:
            out = slot.call(plugin, function_name, data, bytes, host_context)
        finally:
            self._give_back(plugin)
        return parse_output(out, parse)

    def amap(self, function_name: str, inputs: Union[Iterable[Any], AsyncIterable[Any]],
             parse: Optional[Callable[[bytes], Any]] = bytes, return_exceptions: bool = False,
             max_in_flight: Optional[int] = None) -> AsyncIterator[Any]:
        """Async iterator of the outputs of ``function_name`` on every input, in input order.

        ``inputs`` may be an iterable or an async iterable; it is read as outputs are taken, with
        at most ``max_in_flight`` calls (default: the pool's size; a positive integer, checked
        now) started and not yet yielded. A failure raises its Error (the calls still in flight
        are cancelled), or with ``return_exceptions=True`` takes its slot. Closing the iterator
        early (``aclose()``, ``contextlib.aclosing``) cancels the calls in flight.
        """
        limit = self.size if max_in_flight is None else _check_count("PluginPool.amap max_in_flight", max_in_flight)
        if self._closed:
            raise Error(_CLOSED)
        return self._amap(function_name, inputs, parse, return_exceptions, limit)

    async def _amap(self, function_name: str, inputs: Union[Iterable[Any], AsyncIterable[Any]], parse: Any,
                    return_exceptions: bool, limit: int) -> AsyncIterator[Any]:
        import asyncio

        in_flight: "List[asyncio.Task[Any]]" = []  # in input order
        try:
            index = 0
            async for item in _aiterate(inputs):
                checked_input(item, index)  # the error names its index, as map()'s does
                index += 1
                in_flight.append(asyncio.ensure_future(self.acall(function_name, item, parse)))
                if len(in_flight) >= limit:
                    yield await _outcome(in_flight.pop(0), return_exceptions)
            while in_flight:
                yield await _outcome(in_flight.pop(0), return_exceptions)
        finally:
            for task in in_flight:
                task.cancel()
            if in_flight:  # each cancelled call returns once its instance is free
                await asyncio.gather(*in_flight, return_exceptions=True)

    def close(self) -> None:
        """Refuse new work, wait for the calls already running, then free every instance.

        A ``call`` or ``map`` chunk that has its instance finishes normally; one still waiting
        for an instance, and the chunks of a ``map`` not started yet, fail with
        ``Error("plugin pool is closed")``. Another ``close()`` meanwhile waits for this one to
        finish; after that, ``close()`` does nothing. Raises Error from a host function running
        on one of the pool's instances (it would wait for itself).
        """
        self._check_not_reentered("close")
        with self._close_lock:
            if self._instances_closed:
                return
            with self._grow_lock:  # from here on _plugins does not grow
                self._closed = True
            for _ in self._plugins:
                self._free.get()  # every instance, as each running call gives its own back
            self._executor.shutdown(wait=True)  # queued map chunks see _closed and fail
            for plugin in self._plugins:
                plugin.close()  # no call is running on any: closing cannot fail as "busy"
            self._instances_closed = True

    def __enter__(self) -> "PluginPool":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    async def aclose(self) -> None:
        """:meth:`close` for asyncio code: it waits for the borrowed instances on a thread, so the
        event loop keeps serving (the ``acall``s it waits for included). Cancelling the awaiting
        task does not stop the closing, which goes on to its end."""
        import asyncio

        self._check_not_reentered("aclose")  # on this thread: the worker thread holds nothing
        await asyncio.shield(asyncio.to_thread(self.close))

    async def __aenter__(self) -> "PluginPool":
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        if self._closed:  # close() takes every instance: no count to show
            state = "closed" if self._instances_closed else "closing"
        else:
            state = f"in_use={max(len(self._plugins) - self._free.qsize(), 0)} open"
        return (f"<extism_fast.PluginPool main={self.compiled.manifest.describe_main()} size={self.size} "
                f"max_size={self._max_size} {state}>")


class _MapJob:
    """The chunks of one map() in progress, so that a KeyboardInterrupt stops them all: a chunk
    not started yet raises CancelledError at once, a running one has its call cancelled and its
    batch stopped (Plugin._interrupt)."""

    __slots__ = ("stopped", "running")

    def __init__(self) -> None:
        self.stopped = False
        self.running: "set[Plugin]" = set()  # the instances running a chunk of it now

    def begin(self, plugin: Plugin) -> None:
        """A chunk starts on ``plugin`` (the caller discards it from ``running`` at its end)."""
        self.running.add(plugin)
        if self.stopped:  # after adding: stop() sets it, then reads running
            raise CancelledError("PluginPool.map was stopped (KeyboardInterrupt)")

    def stop(self) -> None:
        """Stop every chunk; returns once none is running (a non-interruptible plugin's call runs
        to its end first; another KeyboardInterrupt ends the wait)."""
        self.stopped = True
        while self.running:
            for plugin in list(self.running):
                plugin._interrupt()
            time.sleep(_STOP_POLL_SECONDS)


class _Lease:
    """The context manager :meth:`PluginPool.get` returns: borrows at ``__enter__``, gives back
    at ``__exit__`` (on the thread that borrowed, whatever thread ends the block)."""

    __slots__ = ("_pool", "_timeout", "_plugin", "_thread", "_proxy")

    def __init__(self, pool: PluginPool, timeout: Optional[float]) -> None:
        self._pool = pool
        self._timeout = timeout
        self._plugin: Optional[Plugin] = None
        self._proxy: Optional[PooledPlugin] = None

    def __enter__(self) -> "PooledPlugin":
        if self._plugin is not None:
            raise Error("this pool.get() lease is in use: call pool.get() again for another block")
        self._plugin = self._pool._borrow("get", self._timeout)
        self._thread = get_ident()
        self._proxy = PooledPlugin(self._plugin)
        return self._proxy

    def __exit__(self, *exc_info: Any) -> None:
        plugin, proxy = self._plugin, self._proxy
        self._plugin = self._proxy = None
        if plugin is not None and proxy is not None:
            object.__setattr__(proxy, "_plugin", None)
            self._pool._give_back(plugin, self._thread)


class PooledPlugin:
    """A :class:`Plugin` lent by :meth:`PluginPool.get`: every attribute of the instance while
    the ``with`` block runs; ``close()`` and use after the block raise :class:`Error`."""

    __slots__ = ("_plugin",)

    def __init__(self, plugin: Plugin) -> None:
        object.__setattr__(self, "_plugin", plugin)

    def __getattr__(self, name: str) -> Any:
        plugin = object.__getattribute__(self, "_plugin")
        if plugin is None:
            raise Error(_RETURNED)
        return getattr(plugin, name)

    def close(self) -> None:
        """Refused: the pool owns the instance."""
        raise Error(_NOT_CLOSABLE)

    def __reduce_ex__(self, protocol: Any) -> Any:
        """Refused: a copy would outlive the ``with`` block and share the instance with its next
        borrower (copy.copy, copy.deepcopy and pickle all come here)."""
        raise TypeError(_NOT_COPYABLE)

    def __copy__(self) -> Any:
        raise TypeError(_NOT_COPYABLE)

    def __deepcopy__(self, memo: Any) -> Any:
        raise TypeError(_NOT_COPYABLE)

    def __repr__(self) -> str:
        plugin = object.__getattribute__(self, "_plugin")
        return f"<PooledPlugin {'(given back)' if plugin is None else repr(plugin)}>"


async def _aiterate(inputs: Union[Iterable[Any], AsyncIterable[Any]]) -> AsyncIterator[Any]:
    """The items of an iterable or an async iterable."""
    if hasattr(inputs, "__aiter__"):
        async for item in inputs:  # type: ignore[union-attr]
            yield item
    else:
        for item in inputs:  # type: ignore[union-attr]
            yield item


async def _outcome(task: "asyncio.Task[Any]", return_exceptions: bool) -> Any:
    """The task's result; its Error in its place with ``return_exceptions``."""
    try:
        return await task
    except Error as exc:
        if return_exceptions:
            return exc
        raise
