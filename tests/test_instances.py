"""Instances: lazy instantiation, the instance pool and its on-demand fallback, and the engines
(epoch interruption only for plugins that need it)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from conftest import COUNT, q

import extism_fast as ef
from extism_fast import ExplicitFunction

# Its wasm start function calls the host: shows when instantiation happens.
START_CALLS_HOST = """
(module
  (import "extism:host/user" "started" (func $started))
  (func $start (call $started))
  (start $start)
  (func (export "run") (result i32) (i32.const 0)))
"""

# A table too big for the instance pool (1,048,576 elements a slot): compiled for on-demand instances.
BIG_TABLE = """
(module
  (import "extism:host/env" "output_set" (func $out (param i64 i64)))
  (table 1100000 funcref)
  (func (export "run") (result i32) (call $out (i64.const 0) (i64.const 0)) (i32.const 0)))
"""


def run_python(script: str, **env: str) -> subprocess.CompletedProcess:
    """Run `script` in a fresh interpreter (engines and their pools are per process)."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script)], env=dict(os.environ, **env),
                          capture_output=True, text=True, timeout=120, check=False)


# ---- lazy instantiation ----

def test_modules_are_instantiated_by_the_first_call():
    started = []
    fn = ExplicitFunction("extism:host/user", "started", [], [], lambda plugin, params, results: started.append(1))
    plugin = ef.Plugin(START_CALLS_HOST, functions=[fn])
    assert started == []  # no plugin code runs outside a call
    assert plugin.call("run") == b""
    assert plugin.call("run") == b""
    assert started == [1]


def test_instances_from_one_compiled_plugin_are_independent(plugin_wasm):
    compiled = ef.CompiledPlugin(plugin_wasm(COUNT), functions=[])
    plugins = [ef.Plugin(compiled) for _ in range(50)]
    for i, plugin in enumerate(plugins):
        assert plugin.call("count_vowels", "a" * i) == b'{"count": %d}' % i
    for plugin in plugins:
        plugin.close()


def test_a_start_function_that_traps_fails_each_call():
    wat = '(module (func $s unreachable) (start $s) (func (export "run") (result i32) (i32.const 0)))'
    plugin = ef.Plugin(wat, functions=[])
    for _ in range(2):
        with pytest.raises(ef.CallError, match="'run' could not start: .*unreachable"):
            plugin.call("run")


def test_a_start_function_runs_under_the_timeout():
    wat = '(module (func $s (loop $l (br $l))) (start $s) (func (export "run") (result i32) (i32.const 0)))'
    plugin = ef.Plugin({"wasm": [{"data": wat.encode()}], "timeout_ms": 50}, functions=[])
    started = time.monotonic()
    with pytest.raises(ef.CallError, match="could not start"):
        plugin.call("run")
    assert time.monotonic() - started < 10


# ---- the instance pool ----

def test_an_idle_instance_keeps_one_python_object(plugin_wasm):
    # RSS per idle instance: after its call, an instance made from a CompiledPlugin holds no Python
    # object of its own but the Plugin (its lists and CurrentPlugin are made when first needed).
    import tracemalloc

    compiled = ef.CompiledPlugin(plugin_wasm(COUNT), functions=[])
    ef.Plugin(compiled).call("count_vowels", "warm")
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        plugins = [ef.Plugin(compiled) for _ in range(50)]
        for plugin in plugins:
            plugin.call("count_vowels", "aeiou")
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    grown = [s for s in after.compare_to(before, "filename") if s.size_diff > 0 and "tracemalloc" not in str(s.traceback)]
    per_instance = sum(s.size_diff for s in grown) / len(plugins)
    blocks = sum(s.count_diff for s in grown) / len(plugins)
    assert blocks <= 1.5 and per_instance <= 256, (blocks, per_instance, grown[:5])


def test_an_instance_without_wasi_holds_no_wasi_state(plugin_wasm):
    # RSS per idle instance: argv, the environment, the preopens and the stdout/stderr buffers are
    # a WASI instance's state, made with it; an instance without WASI allocates no room for them
    # (before, every instance carried them: 96 bytes). Measured as C heap (glibc's mallinfo2).
    import ctypes

    mallinfo2 = getattr(ctypes.CDLL(None), "mallinfo2", None)
    if mallinfo2 is None:
        pytest.skip("needs glibc's mallinfo2")

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in
                    ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
                     "fordblks", "keepcost")]

    mallinfo2.restype = MallInfo2

    def heap_per_instance(wasi):
        compiled = ef.CompiledPlugin(plugin_wasm(COUNT), wasi=wasi, functions=[])
        ef.Plugin(compiled)  # the first one makes what the compiled plugin shares (its options)
        plugins = [None] * 200
        before = mallinfo2().uordblks
        for i in range(len(plugins)):
            plugins[i] = ef.Plugin(compiled)
        return (mallinfo2().uordblks - before) / len(plugins)

    without, with_wasi = heap_per_instance(False), heap_per_instance(True)
    if without <= 0:  # another allocator serves malloc (the sanitizers' run): glibc's counts stay 0
        pytest.skip("malloc is not glibc's here (mallinfo2 counts nothing)")
    assert without + 64 <= with_wasi, (without, with_wasi)


def test_host_functions_see_one_current_plugin_per_plugin():
    # Made by the plugin's first host function call, then the same one for every later call.
    seen = []
    fn = ExplicitFunction("extism:host/user", "started", [], [], lambda plugin, params, results: seen.append(plugin))
    wat = """
        (module
          (import "extism:host/user" "started" (func $started))
          (func (export "run") (result i32) (call $started) (call $started) (i32.const 0)))
    """
    first, second = ef.Plugin(wat, functions=[fn]), ef.Plugin(wat, functions=[fn])
    first.call("run")
    first.call("run")
    second.call("run")
    assert len(seen) == 6 and all(p is seen[0] for p in seen[:4]) and seen[4] is seen[5]
    assert seen[0] is not seen[4]


def test_instances_are_pooled_by_default(plugin_wasm):
    with ef.Plugin(plugin_wasm(COUNT), functions=[]) as plugin:
        assert plugin.call("count_vowels", "ae") == b'{"count": 2}'
        assert plugin._pooled


def test_a_full_pool_falls_back_to_on_demand_instances(wasm_path):
    # Two instances fit the pool; the rest are instantiated on demand, by every kind of call.
    result = run_python(f"""
        import extism_fast as ef
        compiled = ef.CompiledPlugin({str(wasm_path(COUNT))!r}, functions=[])
        plugins = [ef.Plugin(compiled) for _ in range(6)]
        outputs = [p.call("count_vowels", "aaa") for p in plugins[:3]]
        outputs += [p.call_many("count_vowels", ["aaa"])[0] for p in plugins[3:]]
        assert outputs == [b'{{"count": 3}}'] * 6, outputs
        print([p._pooled for p in plugins])
        for p in plugins:
            p.close()
        again = ef.Plugin(compiled)  # slots were given back
        assert again.call("count_vowels", "a") == b'{{"count": 1}}'
        print(again._pooled)
    """, EXTISM_FAST_INSTANCE_POOL="2")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["[True, True, False, False, False, False]", "True"]


def test_a_full_pool_falls_back_from_many_threads_at_once(wasm_path):
    result = run_python(f"""
        import extism_fast as ef
        with ef.PluginPool({str(wasm_path(COUNT))!r}, size=8, functions=[]) as pool:
            outputs = list(pool.map("count_vowels", ["a" * i for i in range(400)]))
        assert outputs == [b'{{"count": %d}}' % i for i in range(400)], outputs[:5]
        print("ok")
    """, EXTISM_FAST_INSTANCE_POOL="1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


# A `_start` whose dependency's start function calls the host: the second store of a batch lets
# the host take the pool's last instances after this plugin's first store gave them back.
STEAL_DEP = """
(module
  (import "extism:host/user" "steal" (func $steal))
  (func $s (call $steal))
  (start $s)
  (func (export "f")))
"""
START_ECHO = """
(module
  (import "dep" "f" (func $f))
  (import "extism:host/env" "input_offset" (func $input_offset (result i64)))
  (import "extism:host/env" "input_length" (func $input_length (result i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (memory (export "memory") 1)
  (func (export "_start") (call $output_set (call $input_offset) (call $input_length))))
"""
# Three instances (the kernel's, d2's, main's): with the pool's 5, two such stores do not fit.
THREE_INSTANCES = {"wasm": [
    {"data": b'(module (func (export "f")))', "name": "d2"},
    {"data": b'(module (import "d2" "f" (func)) (func (export "run") (result i32) (i32.const 0)))', "name": "main"}]}


@pytest.mark.parametrize("how", ["call_many", "iter_call", "arrow"])
def test_a_batch_of_start_falls_back_when_the_pool_fills(how):
    """A batch of `_start` makes a new store per item; one that finds the instance pool full goes
    on on-demand, as `call` does (before: "could not start: maximum concurrent limit")."""
    if how == "arrow":
        pytest.importorskip("pyarrow")
    result = run_python(f"""
        import extism_fast as ef
        held, stores = [], []
        other = ef.CompiledPlugin({THREE_INSTANCES!r}, functions=[])
        def steal(cp, params, results):
            stores.append(1)
            if len(stores) == 2:  # the batch's second store: take what the first one gave back
                held.append(ef.Plugin(other))
                held[0].call("run")
        fn = ef.Function("extism:host/user", "steal", [], [], steal)
        plugin = ef.Plugin({{"wasm": [{{"data": {STEAL_DEP.encode()!r}, "name": "dep"}},
                                     {{"data": {START_ECHO.encode()!r}, "name": "main"}}]}}, functions=[fn])
        items = [b"a", b"b", b"c", b"d"]
        if {how!r} == "call_many":
            out = plugin.call_many("_start", items)
        elif {how!r} == "iter_call":
            out = list(plugin.iter_call("_start", items))
        else:
            import pyarrow as pa
            out = plugin.call_many("_start", pa.array(items, pa.binary()), output="arrow").to_pylist()
        assert out == items, out
        print(held[0]._pooled, plugin._pooled, len(stores))
    """, EXTISM_FAST_INSTANCE_POOL="2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["True", "False", "5"]  # the first store's start, then one per item


def test_pool_turned_off(wasm_path):
    result = run_python(f"""
        import extism_fast as ef
        p = ef.Plugin({str(wasm_path(COUNT))!r}, functions=[])
        assert p.call("count_vowels", "aaa") == b'{{"count": 3}}'
        print(p._pooled)
    """, EXTISM_FAST_INSTANCE_POOL="0")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_pool_size_must_be_a_number(wasm_path):
    result = run_python(f"""
        import extism_fast as ef
        try:
            ef.Plugin({str(wasm_path(COUNT))!r}, functions=[])
        except ef.Error as exc:
            print(exc)
    """, EXTISM_FAST_INSTANCE_POOL="lots")
    assert result.returncode == 0, result.stderr
    assert "EXTISM_FAST_INSTANCE_POOL" in result.stdout and "'lots'" in result.stdout


def test_no_pool_when_its_address_space_is_refused(wasm_path):
    # 24 GB of address space: enough for on-demand instances (two 4 GiB reservations), far too
    # little for a pool of a thousand.
    script = textwrap.dedent(f"""
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (24 << 30, 24 << 30))
        import extism_fast as ef
        p = ef.Plugin({str(wasm_path(COUNT))!r}, functions=[])
        assert p.call("count_vowels", "aaa") == b'{{"count": 3}}'
        print(p._pooled)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def _big_table_manifest(wasm):
    """BIG_TABLE's table is over the default memory.max_table_elements: raise the cap."""
    return {"wasm": [{"data": wasm}], "memory": {"max_table_elements": 2_000_000}}


def test_a_module_too_big_for_the_pool_is_compiled_for_on_demand_instances():
    with ef.Plugin(_big_table_manifest(BIG_TABLE.encode()), functions=[]) as plugin:
        assert plugin.call("run") == b""
        assert not plugin._pooled
    # By default a table is capped at what a pool slot holds (memory.max_table_elements).
    with pytest.raises(ef.CallError, match="table"):
        ef.Plugin(BIG_TABLE, functions=[]).call("run")


GROW_TABLE = """
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "extism:host/env" "input_load_u64" (func $input_load_u64 (param i64) (result i64)))
  (table 1 funcref)
  ;; u64: table.grow(N) (-1 when refused), N = input u64
  (func (export "grow") (result i32) (local $o i64)
    (local.set $o (call $alloc (i64.const 8)))
    (call $store_u64 (local.get $o)
      (i64.extend_i32_s (table.grow (ref.null func) (i32.wrap_i64 (call $input_load_u64 (i64.const 0))))))
    (call $output_set (local.get $o) (i64.const 8))
    (i32.const 0)))
"""


@pytest.mark.parametrize("memory, n, grown", [
    ({}, 200_000_000, False),                       # 1.5 GiB of table refused by default
    ({}, (1 << 20) - 1, True),                      # up to the default cap
    ({"max_table_elements": 100}, 100, False),      # 1 + 100 > 100
    ({"max_table_elements": 100}, 99, True),
])
def test_table_growth_is_bounded(memory, n, grown):
    with ef.Plugin({"wasm": [{"data": GROW_TABLE.encode()}], "memory": memory}, functions=[]) as plugin:
        result = int.from_bytes(plugin.call("grow", n.to_bytes(8, "little")), "little", signed=True)
        assert (result != -1) == grown, result
        assert plugin.call("grow", (0).to_bytes(8, "little")) != b""


def test_an_invalid_module_is_still_reported_as_invalid():
    with pytest.raises(ef.CompileError, match="invalid wasm module 'main'"):
        ef.Plugin(b"\0asm\x01\0\0\0\x05", functions=[])


def test_a_module_importing_from_a_later_module_is_instantiated_after_it():
    """Modules are instantiated in dependency order, not manifest order (see test_linking.py)."""
    lib = '(module (func (export "f") (result i32) (i32.const 1)))'
    user = '(module (import "lib" "f" (func $f (result i32))) (func (export "g") (result i32) (call $f)))'
    main = '(module (import "user" "g" (func $g (result i32))) (func (export "run") (result i32) (i32.sub (call $g) (i32.const 1))))'
    manifest = {"wasm": [{"data": user.encode(), "name": "user"}, {"data": lib.encode(), "name": "lib"},
                         {"data": main.encode()}]}
    with ef.Plugin(manifest, functions=[]) as plugin:
        assert plugin.call("run") == b""


# ---- engines: epoch interruption only where it is needed ----

def test_interruptible_unless_opted_out(plugin_wasm):
    plain = ef.Plugin(plugin_wasm("misc"), functions=[])
    timed = ef.Plugin({"wasm": [{"data": plugin_wasm("misc")}], "timeout_ms": 1000}, functions=[])
    fast = ef.Plugin(plugin_wasm("misc"), functions=[], interruptible=False)
    assert (plain.interruptible, timed.interruptible, fast.interruptible) == (True, True, False)
    for plugin in (plain, timed, fast):
        assert plugin.call("busy", q(1000)) == b"done"


def test_interruptible_false_with_a_timeout_is_refused(plugin_wasm):
    manifest = {"wasm": [{"data": plugin_wasm("misc")}], "timeout_ms": 1000}
    with pytest.raises(ef.ManifestError, match="timeout_ms = 1000 needs an interruptible plugin"):
        ef.Plugin(manifest, functions=[], interruptible=False)
    with pytest.raises(ef.ManifestError, match="timeout_ms = 1000 needs an interruptible plugin"):
        ef.Plugin(ef.CompiledPlugin(manifest, functions=[]), interruptible=False)


def test_interruptible_from_a_compiled_plugin(plugin_wasm):
    compiled = ef.CompiledPlugin(plugin_wasm("misc"), functions=[], interruptible=False)
    assert not compiled.interruptible
    plugin = ef.Plugin(compiled, interruptible=True)
    assert plugin.interruptible and not ef.Plugin(compiled).interruptible
    assert plugin.call("ok") == b"ok"


def _cancel_forever_after_200ms(plugin, handle):
    """misc.wat's `forever`, cancelled through `handle` from another thread; the plugin then
    serves the next call."""
    timer = threading.Timer(0.2, handle.cancel)
    timer.start()
    try:
        with pytest.raises(ef.CancelledError):
            plugin.call("forever")
    finally:
        timer.cancel()
    assert plugin.call("ok") == b"ok"


def test_cancel_handle_before_the_first_call_makes_the_plugin_interruptible(plugin_wasm):
    plugin = ef.Plugin(plugin_wasm("misc"), functions=[], interruptible=False)
    assert not plugin.interruptible
    handle = plugin.cancel_handle()
    assert plugin.interruptible
    _cancel_forever_after_200ms(plugin, handle)


def test_cancel_handle_after_a_call_without_interruption_is_refused(plugin_wasm):
    plugin = ef.Plugin(plugin_wasm("misc"), functions=[], interruptible=False)
    assert plugin.call("ok") == b"ok"
    with pytest.raises(ef.Error, match="created with interruptible=False and has already been called"):
        plugin.cancel_handle()
    assert plugin.call("ok") == b"ok"


def test_cancel_handle_at_any_time_by_default(plugin_wasm):
    """As the official SDK: a default plugin hands out a working cancel handle before and after
    calls (epoch interruption is on by default)."""
    plugin = ef.Plugin(plugin_wasm("misc"), functions=[])
    assert plugin.call("ok") == b"ok"
    handle = plugin.cancel_handle()
    assert handle.cancel() is True  # no call running: nothing happens
    assert plugin.call("ok") == b"ok"
    _cancel_forever_after_200ms(plugin, handle)


def test_a_call_without_interruption_releases_the_gil(plugin_wasm):
    plugin = ef.Plugin(plugin_wasm("misc"), functions=[], interruptible=False)
    assert not plugin.interruptible
    ticks = []
    done = threading.Event()

    def count():
        while not done.is_set():
            ticks.append(1)
            time.sleep(0.001)

    counter = threading.Thread(target=count)
    counter.start()
    try:
        started = time.monotonic()
        while time.monotonic() - started < 0.3:
            before = len(ticks)
            assert plugin.call("busy", q(20_000_000)) == b"done"
            if len(ticks) > before:
                break
    finally:
        done.set()
        counter.join()
    assert len(ticks) > before, "no other Python thread ran during the call"


def test_cancel_handle_on_a_plugin_too_big_for_the_pool():
    plugin = ef.Plugin(_big_table_manifest(BIG_TABLE.encode()), functions=[])
    plugin.cancel_handle()
    assert plugin.interruptible and not plugin._pooled
    assert plugin.call("run") == b""


def test_timeouts_on_two_engines_at_once(wasm_path):
    # A fuel-metered plugin and a plain one run on different engines; the ticker must advance
    # both while their calls overlap, or the second call would never time out.
    result = run_python(f"""
        import os, threading, time
        import extism_fast as ef
        manifest = {{"wasm": [{{"path": {str(wasm_path("misc"))!r}}}], "timeout_ms": 300}}
        metered = ef.Plugin(manifest, functions=[], fuel=10**15)
        plain = ef.Plugin(manifest, functions=[])
        errors = []
        def run(plugin):
            try:
                plugin.call("forever")
            except ef.TimeoutError:
                errors.append("timeout")
        first = threading.Thread(target=run, args=(metered,), daemon=True)
        first.start()
        time.sleep(0.1)  # the ticker is running for the first engine when the second call starts
        second = threading.Thread(target=run, args=(plain,), daemon=True)
        second.start()
        first.join(10)
        second.join(10)
        print(errors, flush=True)
        os._exit(0)  # a call that never timed out is still running
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['timeout', 'timeout']"


def test_timeouts_after_the_ticker_idled_and_on_new_threads(wasm_path):
    # The ticker sleeps once no call ran for 100 ticks (~0.1 s); a later call wakes it: on the
    # thread that ran the earlier calls, on a thread that makes its first call (it lists its call
    # counts then, ticker.c), after threads that made calls have ended (their counts unlisted).
    result = run_python(f"""
        import faulthandler, threading, time
        import extism_fast as ef
        faulthandler.dump_traceback_later(60, exit=True)  # a call that never times out fails the test
        manifest = {{"wasm": [{{"path": {str(wasm_path("misc"))!r}}}], "timeout_ms": 100}}
        plugin = ef.Plugin(manifest, functions=[])
        outcomes = []
        def attempt():
            try:
                plugin.call("forever")
            except ef.TimeoutError:
                outcomes.append("timeout")
        for _ in range(3):
            time.sleep(0.3)
            attempt()
            time.sleep(0.3)
            thread = threading.Thread(target=attempt)
            thread.start()
            thread.join()
        print(outcomes, flush=True)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(["timeout"] * 6)


def test_the_ticker_sleeps_once_the_calls_in_progress_ended(wasm_path):
    # The ticker sleeps ~0.1 s after the last call in progress ended (ticker.c counts them),
    # whatever the calls did: returned, timed out, ran nested (a host function calling another
    # plugin), on threads that have ended or still live; and in a child forked while another
    # thread was inside a call (a call the child does not have). A call left counted keeps it
    # awake, ~1,000 wake-ups a second ("an idle process pays nothing", ticker.h).
    result = run_python(f"""
        import faulthandler, os, threading, time
        import extism_fast as ef
        faulthandler.dump_traceback_later(60, exit=True)
        misc = {str(wasm_path("misc"))!r}
        def wakeups():  # context switches of every thread but this one
            total = 0
            for tid in os.listdir("/proc/self/task"):
                if int(tid) != threading.get_native_id():
                    with open(f"/proc/self/task/{{tid}}/status") as f:
                        total += sum(int(line.split()[1]) for line in f if "ctxt_switches" in line)
            return total
        def sleeping():
            time.sleep(0.4)  # past the ticker's 100 idle ticks
            before = wakeups()
            time.sleep(0.4)
            return wakeups() - before < 40  # ticking: ~400
        inner = ef.Plugin(misc, functions=[])
        nested = ef.ExplicitFunction("extism:host/user", "nested", [], [], lambda *_: inner.call("ok"))
        outer = ef.Plugin('''(module (import "extism:host/user" "nested" (func $nested))
            (func (export "outer") (result i32) (call $nested) (i32.const 0)))''', functions=[nested])
        timed = ef.Plugin({{"wasm": [{{"path": misc}}], "timeout_ms": 50}}, functions=[])
        def calls():
            outer.call("outer")
            try:
                timed.call("forever")
            except ef.TimeoutError:
                pass
        calls()
        thread = threading.Thread(target=calls)
        thread.start()
        thread.join()
        live = threading.Thread(target=lambda: ef.Plugin(misc, functions=[]).call("ok"))
        live.start()
        live.join()
        print(sleeping(), flush=True)
        busy = ef.Plugin({{"wasm": [{{"path": misc}}], "timeout_ms": 1500}}, functions=[])
        running = threading.Thread(target=lambda: busy.call("forever"), daemon=True)
        running.start()
        time.sleep(0.2)  # inside its call
        pid = os.fork()
        if pid == 0:
            inner.call("ok")  # the child's ticker starts
            os._exit(0 if sleeping() else 1)
        _, status = os.waitpid(pid, 0)
        print("child", os.waitstatus_to_exitcode(status), flush=True)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "child", "0"]


def test_closed_instances_give_their_memory_back(wasm_path):
    # A pool slot keeps at most a page of each memory resident once its instance is closed.
    result = run_python(f"""
        import extism_fast as ef
        def rss_mib():
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * 4096 / 2**20
        compiled = ef.CompiledPlugin({str(wasm_path("examples/count_vowels.c"))!r}, functions=[])
        with ef.Plugin(compiled) as warm:
            warm.call("count_vowels", "a")
        before = rss_mib()
        plugins = [ef.Plugin(compiled) for _ in range(300)]
        for plugin in plugins:
            plugin.call("count_vowels", "aeiou" * 100)
        for plugin in plugins:
            plugin.close()
        del plugins
        print(round(rss_mib() - before))
    """)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) < 30, f"{result.stdout.strip()} MiB still resident"


def test_a_pooled_plugin_can_grow_its_table_well_past_its_start():
    # A runtime table.grow is bounded by the pool's table slot (1,048,576 elements).
    wat = """(module
      (table 16 funcref)
      (func (export "grow") (result i32)
        (i32.eq (table.grow (ref.null func) (i32.const 200000)) (i32.const -1))))"""
    with ef.Plugin(wat, functions=[]) as plugin:
        assert plugin._pooled
        assert plugin.call("grow") == b""  # returns 1 (a CallError) if the table could not grow


def test_timeouts_work_in_a_forked_child(wasm_path):
    # The ticker thread does not survive fork(): the child's first call starts its own.
    result = run_python(f"""
        import os, signal
        import extism_fast as ef
        manifest = {{"wasm": [{{"path": {str(wasm_path("misc"))!r}}}], "timeout_ms": 200}}
        plugin = ef.Plugin(manifest, functions=[])
        try:
            plugin.call("forever")
        except ef.TimeoutError:
            print("parent timed out", flush=True)
        pid = os.fork()
        if pid == 0:
            try:
                plugin.call("forever")
            except ef.TimeoutError:
                os._exit(7)
            os._exit(1)
        # A child that never times out is killed: the test fails instead of hanging.
        signal.signal(signal.SIGALRM, lambda *_: os.kill(pid, signal.SIGKILL))
        signal.alarm(20)
        _, status = os.waitpid(pid, 0)
        print("child", os.waitstatus_to_exitcode(status))
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["parent timed out", "child 7"]


def test_a_module_too_big_for_the_pool_loads_from_the_cache_without_compiling(tmp_path):
    # Second process: the cached module is refused by the pooled engine and loaded on demand;
    # nothing is compiled.
    wasm_file = tmp_path / "big_table.wat"
    wasm_file.write_text(BIG_TABLE)
    script = f"""
        import extism_fast as ef
        from extism_fast import _runtime
        compiles = []
        real = _runtime.wat2wasm
        _runtime.wat2wasm = lambda text: compiles.append(1) or real(text)
        plugin = ef.Plugin({{"wasm": [{{"path": {str(wasm_file)!r}}}], "memory": {{"max_table_elements": 2000000}}}},
                           functions=[])
        assert plugin.call("run") == b"" and not plugin._pooled
        print(len(compiles))
    """
    env = {"EXTISM_FAST_CACHE_DIR": str(tmp_path / "cache"), "EXTISM_FAST_CACHE": "1"}
    runs = [run_python(script, **env) for _ in range(2)]
    assert [r.returncode for r in runs] == [0, 0], [r.stderr for r in runs]
    assert [r.stdout.strip() for r in runs] == ["2", "0"]  # WAT converted twice, then never


def test_a_start_function_that_traps_runs_once_and_stays_pooled():
    """Only a refusal to allocate (an error) sends a pooled plugin to the on-demand engine; a trap
    in the wasm start function fails the call as it is, without running the start function again."""
    calls = []
    wat = ('(module (import "extism:host/user" "hook" (func $hook)) (func $start call $hook unreachable) '
           '(start $start) (func (export "run") (result i32) i32.const 0))')
    hook = ef.Function("extism:host/user", "hook", [], [], lambda plugin, params, results: calls.append(1))
    with ef.Plugin(wat, functions=[hook]) as plugin:
        with pytest.raises(ef.CallError, match="could not start"):
            plugin.call("run")
        assert calls == [1] and plugin._pooled
