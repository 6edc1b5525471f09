"""PluginPool: map and call (order, errors, threads), close() while calls run on other threads, re-entry from a host function, and the
checks of its numeric arguments.

The official SDK has no pool, so these test extism_fast only. Every test that could hang on a
regression runs the blocking part on daemon threads with join timeouts: a deadlock fails the test.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

import pytest
from conftest import COUNT, PICKY, vowels

import extism_fast as ef
from extism_fast import Function

# `run` calls the host function `hook` (no arguments) and echoes its input; `echo` only echoes.
HOOKED_WAT = r"""
(module
  (import "extism:host/user" "hook" (func $hook))
  (import "extism:host/env" "input_length" (func $input_length (result i64)))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "input_load_u8" (func $input_load_u8 (param i64) (result i32)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (func $echo_input
    (local $n i64) (local $out i64) (local $i i64)
    (local.set $n (call $input_length))
    (local.set $out (call $alloc (local.get $n)))
    (block $done
      (loop $next
        (br_if $done (i64.ge_u (local.get $i) (local.get $n)))
        (call $store_u8 (i64.add (local.get $out) (local.get $i))
                        (call $input_load_u8 (local.get $i)))
        (local.set $i (i64.add (local.get $i) (i64.const 1)))
        (br $next)))
    (call $output_set (local.get $out) (local.get $n)))
  (func (export "run") (result i32)
    (call $hook)
    (call $echo_input)
    (i32.const 0))
  (func (export "echo") (result i32)
    (call $echo_input)
    (i32.const 0))
)
"""

WAIT = 10  # seconds: far beyond what any step takes; reached only by a regression


def _pool(hook: Callable[[], Any], size: int) -> ef.PluginPool:
    fn = Function(None, "hook", [], [], lambda _plugin, _params, _results: hook())
    return ef.PluginPool(HOOKED_WAT, size=size, functions=[fn])


def _start(target: Callable[[], Any]) -> tuple[threading.Thread, dict]:
    """Run ``target`` on a daemon thread; the dict gets ``result`` or ``error``."""
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["result"] = target()
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def _join(thread: threading.Thread) -> None:
    thread.join(WAIT)
    assert not thread.is_alive(), "deadlock: the thread did not finish"


def _all_closed(pool: ef.PluginPool) -> bool:
    """True when every instance of the pool is closed (a closed Plugin refuses calls)."""
    for plugin in pool._plugins:
        with pytest.raises(ef.Error, match="closed"):
            plugin.call("echo", b"")
    return True


class _Gate:
    """A hook that blocks its first ``blocking`` calls until released."""

    def __init__(self, blocking: int = 1) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.blocking = blocking

    def __call__(self) -> None:
        if self.blocking > 0:
            self.blocking -= 1
            self.entered.set()
            assert self.release.wait(WAIT), "the test never released the hook"


# ---- close() while work runs on other threads ----


def test_close_waits_for_a_running_call_then_closes_every_instance():
    gate = _Gate()
    pool = _pool(gate, size=2)
    caller, call_outcome = _start(lambda: pool.call("run", b"in flight"))
    assert gate.entered.wait(WAIT)

    first, first_outcome = _start(pool.close)
    second, second_outcome = _start(pool.close)
    first.join(0.2)
    second.join(0.05)
    # Both close() calls wait for the running call; neither returns early.
    assert first.is_alive() and second.is_alive()
    # New work fails at once with a clear Error (no waiting for close to end).
    with pytest.raises(ef.Error, match="plugin pool is closed"):
        pool.call("echo", b"late")
    with pytest.raises(ef.Error, match="plugin pool is closed"):
        pool.map("echo", [b"late"])

    gate.release.set()
    for thread in (caller, first, second):
        _join(thread)
    assert call_outcome == {"result": b"in flight"}
    assert first_outcome == {"result": None} and second_outcome == {"result": None}
    assert _all_closed(pool)
    pool.close()  # once everything is closed, another close() is a no-op


def test_close_fails_a_call_waiting_for_an_instance():
    gate = _Gate()
    pool = _pool(gate, size=1)
    busy, busy_outcome = _start(lambda: pool.call("run", b"holder"))
    assert gate.entered.wait(WAIT)
    waiter, waiter_outcome = _start(lambda: pool.call("echo", b"waiting"))
    waiter.join(0.1)
    assert waiter.is_alive()  # no free instance: it waits

    closer, closer_outcome = _start(pool.close)
    _join(waiter)  # close() wakes it up with an Error instead of leaving it waiting
    assert isinstance(waiter_outcome.get("error"), ef.Error)
    assert "plugin pool is closed" in str(waiter_outcome["error"])

    gate.release.set()
    _join(busy)
    _join(closer)
    assert busy_outcome == {"result": b"holder"} and closer_outcome == {"result": None}
    assert _all_closed(pool)


def test_close_during_map_fails_the_chunks_not_started():
    gate = _Gate()
    pool = _pool(gate, size=1)
    inputs = [str(i).encode() for i in range(10)]
    mapper, map_outcome = _start(lambda: pool.map("run", inputs, chunk_size=1))
    assert gate.entered.wait(WAIT)
    closer, closer_outcome = _start(pool.close)
    closer.join(0.2)
    assert closer.is_alive()  # the chunk that has its instance runs to its end

    gate.release.set()
    _join(mapper)
    _join(closer)
    error = map_outcome.get("error")
    assert isinstance(error, ef.Error) and "plugin pool is closed" in str(error), map_outcome
    assert closer_outcome == {"result": None}
    assert _all_closed(pool)


def test_map_after_close_waits_for_nothing():
    pool = _pool(lambda: None, size=2)
    assert pool.map("run", [b"a", b"b"]) == [b"a", b"b"]
    pool.close()
    assert _all_closed(pool)
    with pytest.raises(ef.Error, match="plugin pool is closed"):
        pool.imap("echo", [b"x"])  # refused at the call, not at the first next()


# ---- re-entry from a host function ----


def _reentering_pool(size: int, action: Callable[[ef.PluginPool], Any]) -> tuple[ef.PluginPool, list]:
    """A pool whose hook runs ``action(pool)`` and records what it raised."""
    raised: list = []
    holder: dict = {}

    def hook() -> None:
        try:
            action(holder["pool"])
        except ef.Error as exc:
            raised.append(exc)
            raise

    holder["pool"] = pool = _pool(hook, size=size)
    return pool, raised


@pytest.mark.parametrize("size", [1, 2])  # 2: a free instance exists, re-entry is refused anyway
@pytest.mark.parametrize(
    "what, action",
    [
        ("call", lambda pool: pool.call("echo", b"inner")),
        ("map", lambda pool: pool.map("echo", [b"inner"])),
        ("close", lambda pool: pool.close()),
    ],
)
def test_reentry_from_a_host_function_raises_instead_of_deadlocking(size, what, action):
    pool, raised = _reentering_pool(size, action)
    thread, outcome = _start(lambda: pool.call("run", b"outer"))
    _join(thread)
    assert len(raised) == 1
    assert f"PluginPool {what} from a host function" in str(raised[0])
    assert "would wait for itself" in str(raised[0])
    # The outer call fails as any host-function exception does, naming it.
    assert isinstance(outcome.get("error"), ef.HostFunctionError)
    assert "would wait for itself" in str(outcome["error"])
    # The pool is intact: the instance went back, other threads use it.
    assert pool.call("echo", b"after") == b"after"
    pool.close()
    assert _all_closed(pool)


def test_reentry_from_a_map_chunk_raises():
    pool, raised = _reentering_pool(2, lambda pool: pool.call("echo", b"inner"))
    thread, outcome = _start(lambda: pool.map("run", [b"a", b"b", b"c"], return_exceptions=True))
    _join(thread)
    results = outcome["result"]
    assert len(results) == 3 and all(isinstance(r, ef.HostFunctionError) for r in results)
    assert len(raised) == 3
    pool.close()


# ---- numeric arguments ----


@pytest.mark.parametrize("chunk_size", [0, -1, 1.5, "2", True])
def test_map_rejects_bad_chunk_size(chunk_size):
    with _pool(lambda: None, size=2) as pool:
        with pytest.raises(ValueError, match="chunk_size must be a positive integer"):
            pool.map("echo", [b"x"] * 10, chunk_size=chunk_size)
        with pytest.raises(ValueError, match="chunk_size"):
            pool.imap("echo", [b"x"] * 10, chunk_size=chunk_size)
        # chunk_size=1 and a chunk larger than the input both give every item, in order
        items = [str(i).encode() for i in range(10)]
        assert pool.map("echo", items, chunk_size=1) == items
        assert pool.map("echo", items, chunk_size=1000) == items


class _Three:
    """An integer type that is not int (as numpy's are): accepted through __index__."""

    def __index__(self) -> int:
        return 3


def test_integer_types_other_than_int_are_accepted():
    with _pool(lambda: None, size=_Three()) as pool:
        assert pool.size == 3
        items = [str(i).encode() for i in range(10)]
        assert pool.map("echo", items, chunk_size=_Three()) == items


@pytest.mark.parametrize("size, message", [
    (0, "must be a positive integer"),
    (-3, "must be a positive integer"),
    (2.0, "must be a positive integer"),
    (True, "must be a positive integer"),
    (ef.pool.MAX_POOL_SIZE + 1, f"must be at most {ef.pool.MAX_POOL_SIZE}"),
    (10**20, f"must be at most {ef.pool.MAX_POOL_SIZE}"),
])
def test_pool_rejects_bad_size(size, message):
    with pytest.raises(ValueError, match=f"PluginPool size {message}"):
        _pool(lambda: None, size=size)


# ---- get(timeout=...): one instance for a with block ----


def test_get_lends_an_instance_and_takes_it_back():
    with _pool(lambda: None, size=1) as pool:
        with pool.get() as plugin:
            assert plugin.call("echo", b"lent") == b"lent"
            assert plugin.function_exists("run")
        with pool.get(timeout=0) as again:  # the one instance is free again
            assert again.call("echo", b"x") == b"x"
        assert pool.call("echo", b"y") == b"y"


def test_get_times_out_naming_the_timeout():
    with _pool(lambda: None, size=1) as pool:
        with pool.get():
            thread, outcome = _start(lambda: pool.get(timeout=0.1).__enter__())
            _join(thread)
        error = outcome["error"]
        assert isinstance(error, ef.PoolTimeoutError)
        assert isinstance(error, ef.Error) and isinstance(error, TimeoutError)
        assert "within the timeout of 0.1 s" in str(error) and "all 1 busy" in str(error)


def test_get_zero_timeout_takes_only_a_free_instance():
    with _pool(lambda: None, size=1) as pool:
        with pool.get(timeout=0):
            thread, outcome = _start(lambda: pool.get(timeout=0).__enter__())
            _join(thread)
        assert isinstance(outcome["error"], ef.PoolTimeoutError)


def test_get_waits_for_an_instance_to_free_up():
    with _pool(lambda: None, size=1) as pool:
        holder = pool.get()
        holder.__enter__()

        def borrow() -> bytes:
            with pool.get(timeout=WAIT) as plugin:
                return plugin.call("echo", b"after the wait")

        thread, outcome = _start(borrow)
        thread.join(0.15)
        assert thread.is_alive()  # waiting, not failing
        holder.__exit__(None, None, None)
        _join(thread)
        assert outcome == {"result": b"after the wait"}


def test_get_waiting_fails_when_the_pool_closes():
    pool = _pool(lambda: None, size=1)
    holder = pool.get()
    holder.__enter__()
    waiter, outcome = _start(lambda: pool.get(timeout=WAIT).__enter__())
    waiter.join(0.1)
    closer, _ = _start(pool.close)
    _join(waiter)  # woken by close() with an Error, long before its timeout
    assert "plugin pool is closed" in str(outcome["error"])
    holder.__exit__(None, None, None)
    _join(closer)
    with pytest.raises(ef.Error, match="plugin pool is closed"):
        pool.get().__enter__()


def test_get_block_cannot_reenter_the_pool():
    with _pool(lambda: None, size=2) as pool:
        with pool.get():
            for use in (lambda: pool.call("echo", b""), lambda: pool.get().__enter__(),
                        lambda: pool.map("echo", [b""]), pool.close):
                with pytest.raises(ef.Error, match="would wait for itself"):
                    use()
        assert pool.call("echo", b"ok") == b"ok"  # the block ended: the thread holds nothing


def test_lent_instance_refuses_close_and_use_after_the_block():
    with _pool(lambda: None, size=1) as pool:
        with pool.get() as plugin:
            with pytest.raises(ef.Error, match="closed by its PluginPool"):
                plugin.close()
        with pytest.raises(ef.Error, match="given back to its PluginPool"):
            plugin.call("echo", b"")
        assert pool.call("echo", b"still open") == b"still open"


def test_get_block_that_raises_gives_the_instance_back():
    with _pool(lambda: None, size=1) as pool:
        with pytest.raises(RuntimeError):
            with pool.get():
                raise RuntimeError("in the block")
        with pool.get(timeout=0) as plugin:
            assert plugin.call("echo", b"x") == b"x"


@pytest.mark.parametrize("timeout", [-1, float("nan"), "1", True])
def test_get_rejects_bad_timeouts(timeout):
    with _pool(lambda: None, size=1) as pool:
        with pytest.raises(ValueError, match="PluginPool.get timeout must be None or a number"):
            pool.get(timeout=timeout)


# ---- max_size: instances created on demand ----


class _Turnstile:
    """A hook that blocks every call until released, counting the calls inside."""

    def __init__(self) -> None:
        self.inside = threading.Semaphore(0)
        self.release = threading.Event()

    def __call__(self) -> None:
        self.inside.release()
        assert self.release.wait(WAIT), "the test never released the hook"


def test_max_size_grows_when_all_are_busy_then_waits():
    hook = _Turnstile()
    pool = _pool(hook, size=1)
    assert (pool.size, pool.max_size) == (1, 1)
    pool.close()

    fn = Function(None, "hook", [], [], lambda _plugin, _params, _results: hook())
    pool = ef.PluginPool(HOOKED_WAT, size=1, functions=[fn], max_size=3)
    assert (pool.size, pool.max_size) == (1, 3)
    callers = [_start(lambda i=i: pool.call("run", b"%d" % i)) for i in range(2)]
    for _ in callers:
        assert hook.inside.acquire(timeout=WAIT)
    assert pool.size == 2  # a second instance was made for the second call
    with pool.get(timeout=0) as third:  # and a third on demand, without waiting
        assert pool.size == 3
        assert third.call("echo", b"3") == b"3"
        waiter, outcome = _start(lambda: pool.get(timeout=0.1).__enter__())
        _join(waiter)
        assert isinstance(outcome["error"], ef.PoolTimeoutError)  # max_size reached: no fourth
        assert "all 3 busy" in str(outcome["error"])
    hook.release.set()
    for thread, call_outcome in callers:
        _join(thread)
    assert sorted(o["result"] for _, o in callers) == [b"0", b"1"]
    closer, _ = _start(pool.close)
    _join(closer)
    assert pool.size == 3 and _all_closed(pool)  # close() frees the grown instances too


def test_max_size_map_spreads_over_new_instances():
    with ef.PluginPool(HOOKED_WAT, size=1, max_size=4, functions=[
            Function(None, "hook", [], [], lambda *_: None)]) as pool:
        items = [b"%d" % i for i in range(200)]
        assert pool.map("echo", items, chunk_size=5) == items
        assert 1 <= pool.size <= 4


@pytest.mark.parametrize("kwargs, message", [
    ({"size": 3, "max_size": 2}, "max_size must be at least size \\(3\\), got 2"),
    ({"size": 1, "max_size": 0}, "max_size must be a positive integer"),
    ({"size": 1, "max_size": ef.pool.MAX_POOL_SIZE + 1}, f"max_size must be at most {ef.pool.MAX_POOL_SIZE}"),
])
def test_max_size_is_checked(kwargs, message):
    with pytest.raises(ValueError, match=f"PluginPool {message}"):
        ef.PluginPool(HOOKED_WAT, functions=[Function(None, "hook", [], [], lambda *_: None)], **kwargs)


def test_default_size_stays_within_max_size():
    with ef.PluginPool(HOOKED_WAT, max_size=1, functions=[Function(None, "hook", [], [], lambda *_: None)]) as pool:
        assert (pool.size, pool.max_size) == (1, 1)


def test_pool_map_keeps_order_and_matches(plugin_wasm):
    inputs = [f"{'a' * (i % 13)}b" for i in range(5000)]
    with ef.PluginPool(plugin_wasm(COUNT), size=3) as pool:
        assert pool.size == 3
        assert pool.map("count_vowels", inputs) == [vowels(t) for t in inputs]
        unordered = pool.map("count_vowels", inputs, ordered=False, chunk_size=100)
        assert sorted(unordered) == sorted(vowels(t) for t in inputs)


def test_pool_map_errors(plugin_wasm):
    with ef.PluginPool(PICKY, size=2) as pool:
        out = pool.map("run", ["a", "xb", "c"], return_exceptions=True)
        assert out[0] == b"a" and out[2] == b"c" and isinstance(out[1], ef.CallError)
        with pytest.raises(ef.CallError):
            pool.map("run", ["a", "xb"])
        assert pool.call("run", "still") == b"still"


def test_pool_call_from_many_threads(plugin_wasm):
    results = {}
    with ef.PluginPool(plugin_wasm(COUNT), size=2) as pool:
        def work(t):
            results[t] = [pool.call("count_vowels", "a" * t) for _ in range(200)]

        threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(30)
    assert all(results[t] == [vowels("a" * t)] * 200 for t in range(8))


def test_pool_rejects_bad_size_and_use_after_close(plugin_wasm):
    with pytest.raises(ValueError, match="positive integer"):
        ef.PluginPool(plugin_wasm(COUNT), size=0)
    pool = ef.PluginPool(plugin_wasm(COUNT), size=1)
    pool.close()
    with pytest.raises(ef.Error, match="closed"):
        pool.call("count_vowels", "a")
