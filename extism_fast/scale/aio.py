"""asyncio front-ends: await plugin calls while the event loop keeps serving.

A call runs on a worker thread, where it releases the GIL (see README, "The GIL"), so the event
loop goes on serving other tasks meanwhile. ``Plugin.acall`` and ``PluginPool.acall`` /
``PluginPool.amap`` are built on the functions here.

Cancelling the awaiting task cancels the plugin call through the plugin's cancel handle and waits
until the worker thread has left the instance, so that the instance is free for the next call
when the cancelled task ends. A plugin compiled with ``interruptible=False`` cannot be cancelled:
its call runs to its end first.
"""

from __future__ import annotations

import asyncio
import collections
import threading
import weakref
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Optional

from extism_fast.errors import CancelledError

__all__ = ["acall", "aclose", "CallSlot", "run_on_thread"]

#: How often a cancel is requested again until the call has stopped: the first request may come
#: before the worker thread has entered the call (when a cancel has no effect yet).
_CANCEL_RETRY_SECONDS = 0.005


class CallSlot:
    """The instance one awaited call runs on, shared by its worker thread and its canceller.

    The worker registers the instance only for the time of the call (under ``lock``), so a cancel
    request can never reach the next call the instance serves (a pool's instance goes back to the
    pool right after the call).
    """

    __slots__ = ("lock", "plugin", "cancelled")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.plugin: Any = None
        self.cancelled = False

    def call(self, plugin: Any, function_name: str, data: Any, parse: Any, host_context: Any) -> Any:
        """``plugin.call(...)`` on the worker thread; refused if the call was cancelled before."""
        with self.lock:
            if self.cancelled:
                raise CancelledError("plugin call cancelled before it started")
            self.plugin = plugin
        try:
            return plugin.call(function_name, data, parse, host_context)
        finally:
            with self.lock:
                self.plugin = None

    def cancel(self) -> None:
        """Cancel the call: now if it is running, else when it would start."""
        with self.lock:
            self.cancelled = True
            plugin = self.plugin
            # interruptible=False: cancel_handle() would recompile under the running call; the
            # call cannot be stopped anyway, so it is left to finish.
            if plugin is not None and plugin.interruptible:
                plugin.cancel_handle().cancel()


async def run_on_thread(job: "Future[Any]", slot: CallSlot) -> Any:
    """Await ``job``, an executor's job running a call through ``slot``. Cancelling the awaiting
    task cancels the call and waits for it to stop; a job not started yet is taken out of the
    executor's queue."""
    future = asyncio.wrap_future(job)
    try:
        # shield: a cancelled task must not drop the future while the thread still runs the call.
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        if not job.cancel():  # running (or done): stop it through its instance
            await _stop(slot, future)
        raise


async def _stop(slot: CallSlot, future: "asyncio.Future[Any]") -> None:
    """Cancel the call until its thread is done with it (cancels of this wait are absorbed: the
    task is ending as cancelled anyway, and the instance must not be used before it is free)."""
    while not future.done():
        slot.cancel()
        try:
            await asyncio.wait({future}, timeout=_CANCEL_RETRY_SECONDS)
        except asyncio.CancelledError:
            pass
    if not future.cancelled():
        future.exception()  # retrieved: the call's CancelledError is expected here, not logged


class _Turns:
    """A first-come, first-served lock of one plugin in one event loop that holds no reference to
    the loop. (An asyncio.Lock keeps its loop once a task has waited on it, so a table of them
    kept every loop alive.) A waiting task is held as a weak reference to the future it awaits:
    the task itself holds that future while it waits."""

    __slots__ = ("held", "waiters")

    def __init__(self) -> None:
        self.held = False
        self.waiters: "collections.deque[weakref.ref[asyncio.Future[None]]]" = collections.deque()

    async def __aenter__(self) -> None:
        if not self.held:
            self.held = True
            return
        future: "asyncio.Future[None]" = asyncio.get_running_loop().create_future()
        self.waiters.append(weakref.ref(future))
        try:
            await future  # resolved by release(): the turn is then this task's
        except BaseException:
            if future.done() and not future.cancelled():
                self.release()  # given the turn as it was cancelled: pass it on
            raise

    async def __aexit__(self, *exc_info: Any) -> None:
        self.release()

    def release(self) -> None:
        """Hand the turn to the first task still waiting, else free it."""
        while self.waiters:
            future = self.waiters.popleft()()
            if future is not None and not future.done():
                future.set_result(None)
                return
        self.held = False


# The turns of each (event loop, plugin): a Plugin runs one call at a time, and a program may run
# several loops one after the other, or on threads. Neither key is held: an entry goes with its
# loop or its plugin.
_locks: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, weakref.WeakKeyDictionary[Any, _Turns]]" = (
    weakref.WeakKeyDictionary()
)
_locks_guard = threading.Lock()


def _lock_for(plugin: Any) -> _Turns:
    loop = asyncio.get_running_loop()
    with _locks_guard:
        per_loop = _locks.get(loop)
        if per_loop is None:
            per_loop = _locks[loop] = weakref.WeakKeyDictionary()
        lock = per_loop.get(plugin)
        if lock is None:
            lock = per_loop[plugin] = _Turns()
        return lock


_executor: Optional[ThreadPoolExecutor] = None


def _plugin_executor() -> ThreadPoolExecutor:
    """The threads Plugin.acall runs calls on (made at first use; ThreadPoolExecutor's default
    size). Not the loop's default executor: cancelling needs the executor's own futures."""
    global _executor
    with _locks_guard:
        if _executor is None:
            _executor = ThreadPoolExecutor(thread_name_prefix="extism_fast-acall")
        return _executor


async def acall(plugin: Any, function_name: str, data: Any = b"", parse: Optional[Callable[[bytes], Any]] = bytes,
                host_context: Any = None) -> Any:
    """``await``-able ``plugin.call(...)`` (what ``Plugin.acall`` runs).

    Runs on a thread pool of this module. Concurrent ``acall``s of one plugin (in one event loop)
    wait for each other: a Plugin runs one call at a time. Errors are those of ``call``
    (``TimeoutError`` included); cancelling the awaiting task cancels the call (see the module
    docstring).
    """
    async with _lock_for(plugin):
        slot = CallSlot()
        job = _plugin_executor().submit(slot.call, plugin, function_name, data, parse, host_context)
        return await run_on_thread(job, slot)


async def aclose(plugin: Any) -> None:
    """``await``-able ``plugin.close()`` (``Plugin.aclose``, the end of ``async with``): takes its
    turn after the ``acall``s of this loop queued before it, so it closes an idle instance; the
    ones queued after it fail as calls on a closed plugin do."""
    async with _lock_for(plugin):
        plugin.close()
