"""No Python object ever points at freed or reused memory (issue: trust).

Buffers of kernel memory (parse=None outputs, CurrentPlugin.memory()/input_buffer()) expire with
their call or host function; memoryviews taken from them stay readable and, for outputs, never
change, whatever the plugin or the host does next: re-instantiation after `_start`, a failed
re-instantiation, the on-demand allocator, the plugin's own `reset`, stores into old offsets,
many views kept at once.
"""

import gc

import pytest

import extism_fast as ef
from conftest import q

GRAB = """
(module
  (import "extism:host/user" "grab" (func $grab (param i64)))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (func $write_grab_output (local $o i64)
    (local.set $o (call $alloc (i64.const 8)))
    (call $store_u64 (local.get $o) (i64.const 0x4847464544434241))
    (call $grab (local.get $o))
    (call $output_set (local.get $o) (i64.const 8)))
  (func (export "_start") (call $write_grab_output))
  (func (export "run") (result i32) (call $write_grab_output) (i32.const 0)))
"""


def _grabbing_plugin(kept, **kwargs):
    def grab(cp, params, results):
        kept.append(memoryview(cp.memory(cp.memory_at_offset(params[0].value))))

    fn = ef.Function("extism:host/user", "grab", [ef.ValType.I64], [], grab)
    return ef.Plugin(GRAB, functions=[fn], **kwargs)


def test_a_host_buffer_view_survives_re_instantiation_after_start():
    kept = []
    plugin = _grabbing_plugin(kept)
    assert plugin.call("_start") == b"ABCDEFGH"
    assert plugin.call("run") == b"ABCDEFGH"  # a new store: the old one is kept for the view
    assert kept[0].tobytes() == b"ABCDEFGH"
    kept[0][:1] = b"Z"  # still writable memory, of the detached store
    assert kept[0].tobytes() == b"ZBCDEFGH"
    assert plugin.call("run") == b"ABCDEFGH"
    del kept[:]
    gc.collect()  # the detached store goes with the last view
    assert plugin.call("_start") == b"ABCDEFGH"


def test_a_host_buffer_view_keeps_the_instance_after_close():
    kept = []
    plugin = _grabbing_plugin(kept)
    plugin.call("run")
    plugin.close()
    assert kept[0].tobytes() == b"ABCDEFGH"
    with pytest.raises(ef.Error, match="closed"):
        plugin.call("run")


@pytest.mark.parametrize("kwargs", [{}, {"fuel": 10**9}, {"interruptible": False}],
                         ids=["pooled", "on-demand (fuel)", "uninterruptible"])
def test_output_views_never_change(plugin_wasm, kwargs):
    plugin = ef.Plugin(plugin_wasm("kernel"), functions=[], **kwargs)
    out = plugin.call("echo", b"first output", parse=None)
    view = memoryview(out)
    for data in (b"x" * 100, b"y" * 5000):
        plugin.call("echo_copy", data)
    plugin.call("reset")  # the plugin's own reset
    for offset in range(64, 256, 8):
        plugin.call("probe_store_u64", q(offset, 0))  # stores over old offsets
    assert view.tobytes() == b"first output"
    with pytest.raises(ValueError, match="no longer valid"):
        bytes(out)


def test_output_views_after_start_and_a_failed_re_instantiation():
    wat = GRAB.replace('(call $grab (local.get $o))', '')
    wat = wat.replace('(import "extism:host/user" "grab" (func $grab (param i64)))', '')
    plugin = ef.Plugin(wat, functions=[])
    view = memoryview(plugin.call("_start", parse=None))
    assert plugin.call("run") == b"ABCDEFGH"
    assert view.tobytes() == b"ABCDEFGH"
    # A memory minimum over max_pages: every instantiation fails, the view stays.
    big = ef.Plugin({"wasm": [{"data": wat.replace("(func (export \"_start\")", "(memory 3) (func (export \"_start\")").encode()}],
                     "memory": {"max_pages": 2}}, functions=[])
    with pytest.raises(ef.MemoryLimitError):
        big.call("run")
    assert view.tobytes() == b"ABCDEFGH"


def test_kept_views_do_not_grow_kernel_memory(plugin_wasm):
    """A sliding window of views over many calls stays within a small max_pages."""
    plugin = ef.Plugin({"wasm": [{"data": plugin_wasm("kernel")}], "memory": {"max_pages": 2}}, functions=[])
    window = []
    for i in range(500):
        data = bytes([i % 256]) * 4000
        window.append((data, memoryview(plugin.call("echo", data, parse=None))))
        window = window[-2:]
    assert all(view.tobytes() == data for data, view in window)


# ---- objects used the wrong way: a Python exception, never a crash ----

def test_init_again_is_refused(plugin_wasm):
    compiled = ef.CompiledPlugin(plugin_wasm("kernel"), functions=[])
    plugin = ef.Plugin(compiled)
    with pytest.raises(ef.Error, match="CompiledPlugin.__init__ has already run"):
        compiled.__init__(plugin_wasm("misc"), functions=[])
    with pytest.raises(ef.Error, match="Plugin.__init__ has already run"):
        plugin.__init__(compiled)
    assert plugin.call("echo", b"still") == b"still"


def test_subclasses_that_skip_super_init_raise(plugin_wasm):
    class LazyPlugin(ef.Plugin):
        def __init__(self):
            pass

    class LazyCompiled(ef.CompiledPlugin):
        def __init__(self):
            pass

    plugin = LazyPlugin()
    for use in (lambda: plugin.call("echo", b"x"), lambda: plugin.interruptible, plugin.cancel_handle,
                lambda: plugin.call_many("echo", [b"x"]), lambda: plugin.function_exists("echo"),
                lambda: plugin._pooled, plugin.close):
        with pytest.raises(Exception) as info:
            use()
        assert isinstance(info.value, (ef.Error, AttributeError, TypeError)), use
    with pytest.raises(ef.Error, match="super"):
        ef.Plugin(LazyCompiled())


def test_options_that_conflict_with_the_compiled_plugin(plugin_wasm, probe):
    compiled = ef.CompiledPlugin(plugin_wasm("kernel"), functions=[])
    with pytest.raises(ef.ManifestError, match="fuel=1000 conflicts"):
        ef.Plugin(compiled, fuel=1000)
    with pytest.raises(ef.ManifestError, match="wasi=True conflicts"):
        ef.Plugin(compiled, wasi=True)
    fn = ef.Function("extism:host/user", "probe", [], [], lambda *a: None)
    with pytest.raises(ef.ManifestError, match="functions=... conflicts"):
        ef.Plugin(compiled, functions=[fn])
    assert ef.Plugin(compiled, functions=[]).call("echo", b"ok") == b"ok"  # the same: fine
    metered = ef.CompiledPlugin(plugin_wasm("kernel"), functions=[], fuel=1000)
    assert ef.Plugin(metered, fuel=1000).call("echo", b"ok") == b"ok"


def test_cancel_racing_close(plugin_wasm):
    """cancel() from other threads while the plugin is closed: no window where the instance is
    freed under it."""
    import threading

    for _ in range(50):
        plugin = ef.Plugin(plugin_wasm("misc"), functions=[])
        handle = plugin.cancel_handle()
        stop = threading.Event()

        def cancel_loop():
            while not stop.is_set():
                handle.cancel()

        threads = [threading.Thread(target=cancel_loop) for _ in range(2)]
        for t in threads:
            t.start()
        try:
            plugin.call("ok")
        except ef.CancelledError:  # a cancel landed during the call: fine
            pass
        plugin.close()
        stop.set()
        for t in threads:
            t.join(5)
        assert handle.cancel() is True


# ---- one place drops a store (store_drop): every way a store goes detaches the views first ----

# `_start` hands its input block to the host function `grab`, which keeps a memoryview of it.
GRAB_INPUT = """
(module
  (import "extism:host/user" "grab" (func $grab (param i64)))
  (import "extism:host/env" "input_offset" (func $input_offset (result i64)))
  (import "extism:host/env" "input_length" (func $input_length (result i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (memory (export "memory") 1)
  (func (export "_start")
    (call $grab (call $input_offset))
    (call $output_set (call $input_offset) (call $input_length))))
"""

# The keep_store hook takes the GIL: held (epochs), released by the call (uninterruptible), in a batch.
STORE_KINDS = pytest.mark.parametrize("kwargs", [{}, {"fuel": 10**9}, {"interruptible": False}],
                                      ids=["pooled", "on-demand (fuel)", "uninterruptible"])


def _input_grabber(kept, wat=GRAB_INPUT, **kwargs):
    def grab(cp, params, results):
        kept.append(memoryview(cp.input_buffer(params[0])))

    fn = ef.Function("extism:host/user", "grab", [ef.ValType.I64], [], grab)
    return ef.Plugin(wat, functions=[fn], **kwargs)


def _inputs(n):
    return [b"secret of item %03d" % i for i in range(n)]


@STORE_KINDS
@pytest.mark.parametrize("run", [
    lambda plugin, items: plugin.call_many("_start", items),
    lambda plugin, items: list(plugin.iter_call("_start", items)),
], ids=["call_many", "iter_call"])
def test_host_buffer_views_kept_across_a_batch_of_start(kwargs, run):
    """Each `_start` of the batch gets a new store: the old one goes to the view of its input
    (before: deleted under it, so the view showed the next item's bytes or freed memory)."""
    kept = []
    plugin = _input_grabber(kept, **kwargs)
    items = _inputs(40)
    assert run(plugin, items) == items
    assert [view.tobytes() for view in kept] == items
    kept[0][:6] = b"SECRET"  # writable, into its own detached store only
    assert kept[0].tobytes() == b"SECRET of item 000" and kept[1].tobytes() == items[1]
    assert plugin.call("_start", b"after") == b"after"
    del kept[:]
    gc.collect()
    assert plugin.call_many("_start", [b"x", b"y"]) == [b"x", b"y"]


def test_host_buffer_views_kept_across_plugin_pool_map_of_start():
    kept = []

    def grab(cp, params, results):
        kept.append(memoryview(cp.input_buffer(params[0])))

    fn = ef.Function("extism:host/user", "grab", [ef.ValType.I64], [], grab)
    items = _inputs(300)
    with ef.PluginPool(GRAB_INPUT, size=3, functions=[fn]) as pool:
        assert pool.map("_start", items, chunk_size=7) == items
    assert sorted(view.tobytes() for view in kept) == items


# The main module's start function hands the host a block, then traps: instantiation fails.
GRAB_THEN_TRAP = """
(module
  (import "extism:host/user" "grab" (func $grab (param i64)))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (func $init (local $o i64)
    (local.set $o (call $alloc (i64.const 8)))
    (call $store_u64 (local.get $o) (i64.const 0x4847464544434241))
    (call $grab (local.get $o))
    unreachable)
  (start $init)
  (func (export "run") (result i32) (i32.const 0)))
"""

# Writes another "secret" where GRAB_THEN_TRAP's block was.
OTHER_SECRET = """
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (func (export "run") (result i32)
    (call $store_u64 (call $alloc (i64.const 8)) (i64.const 0x5445524345535858)) (i32.const 0)))
"""


@STORE_KINDS
def test_host_buffer_view_kept_across_a_failed_instantiation(kwargs):
    """A start function takes a host-function buffer, then traps: the failed store goes to the
    view (before: deleted under it, and its pooled slot given to the next plugin)."""
    kept = []

    def grab(cp, params, results):
        kept.append(memoryview(cp.memory(cp.memory_at_offset(params[0].value))))

    fn = ef.Function("extism:host/user", "grab", [ef.ValType.I64], [], grab)
    plugin = ef.Plugin(GRAB_THEN_TRAP, functions=[fn], **kwargs)
    for attempt in range(3):
        with pytest.raises(ef.CallError, match="could not start"):
            plugin.call("run")
    others = [ef.Plugin(OTHER_SECRET, functions=[], **kwargs) for _ in range(4)]
    for other in others:
        assert other.call("run") == b""
    assert [view.tobytes() for view in kept] == [b"ABCDEFGH"] * 3
    plugin.close()
    assert kept[2].tobytes() == b"ABCDEFGH"


@STORE_KINDS
def test_close_hands_the_store_to_the_views_and_frees_the_instance(kwargs):
    kept = []
    plugin = _input_grabber(kept, **kwargs)
    assert plugin.call("_start", b"kept after close") == b"kept after close"
    plugin.close()
    others = [ef.Plugin(OTHER_SECRET, functions=[], **kwargs) for _ in range(4)]
    for other in others:
        other.call("run")
    assert kept[0].tobytes() == b"kept after close"
    with pytest.raises(ef.Error, match="closed"):
        plugin.call("_start")


def test_a_batch_of_start_with_views_and_one_pool_slot():
    """EXTISM_FAST_INSTANCE_POOL=1: each kept view holds its store, and so the pooled slot: the
    batch's next `_start` finds the pool full and goes on on-demand, as `call` does."""
    import os
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(f"""
        import extism_fast as ef
        kept = []
        def grab(cp, params, results):
            kept.append(memoryview(cp.input_buffer(params[0])))
        fn = ef.Function("extism:host/user", "grab", [ef.ValType.I64], [], grab)
        plugin = ef.Plugin({GRAB_INPUT!r}, functions=[fn])
        items = [b"item %d" % i for i in range(20)]
        assert plugin._pooled
        assert plugin.call_many("_start", items) == items
        assert [v.tobytes() for v in kept] == items, [v.tobytes() for v in kept]
        print(plugin._pooled)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, EXTISM_FAST_INSTANCE_POOL="1"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "False"


# ---- KernelBuffer indexing: convert the key and the value first, check validity last ----

class _ClosesThePlugin:
    """An index whose __index__ closes the plugin (its output buffers expire, its memory goes)."""

    def __init__(self, plugin, value):
        self.plugin, self.value = plugin, value

    def __index__(self):
        self.plugin.close()
        return self.value


@pytest.mark.parametrize("key", [
    lambda plugin: _ClosesThePlugin(plugin, 1),
    lambda plugin: slice(_ClosesThePlugin(plugin, 0), 4),
    lambda plugin: slice(0, _ClosesThePlugin(plugin, 4)),
    lambda plugin: slice(None, None, _ClosesThePlugin(plugin, 1)),
], ids=["index", "slice start", "slice stop", "slice step"])
@STORE_KINDS
def test_an_index_that_closes_the_plugin_never_reads_freed_memory(plugin_wasm, kwargs, key):
    plugin = ef.Plugin(plugin_wasm("kernel"), functions=[], **kwargs)
    out = plugin.call("echo", b"freed after close", parse=None)
    with pytest.raises(ValueError, match="no longer valid"):
        out[key(plugin)]
    with pytest.raises(ef.Error, match="closed"):
        plugin.call("echo", b"x")


def test_overlapping_slice_assignment_moves_the_bytes():
    seen = []

    def grab(cp, params, results):
        buf = cp.memory(cp.alloc(64))
        buf[:] = bytes(range(64))
        buf[1:64] = memoryview(buf)[0:63]  # forwards over itself
        seen.append(bytes(buf))
        buf[:] = bytes(range(64))
        buf[0:63] = memoryview(buf)[1:64]  # backwards over itself
        seen.append(bytes(buf))
        buf[8:16] = memoryview(buf)[8:16]  # onto itself
        seen.append(bytes(buf))

    fn = ef.Function("extism:host/user", "grab", [ef.ValType.I64], [], grab)
    with ef.Plugin(GRAB, functions=[fn]) as plugin:
        plugin.call("run")
    shifted = bytes(range(1, 64)) + b"\x3f"
    assert seen == [b"\x00" + bytes(range(63)), shifted, shifted]


def test_slice_assignment_takes_any_contiguous_buffer():
    """A slice takes any C-contiguous buffer, as its bytes; a strided one is refused (TypeError, as
    memoryview.cast refuses it) and leaves the buffer as it was, and so does an index given anything
    but a bytes or bytearray of length 1."""
    seen = []
    resizable = bytearray(b"wxyz")

    def grab(cp, params, results):
        buf = cp.memory(cp.alloc(8))
        for value in (b"wxyz", resizable, memoryview(b"wxyz"), memoryview(b"..wxyz")[2:],
                      memoryview(b"wxyz").cast("B", (2, 2)), memoryview(b"wxyz").cast("i")):
            buf[:] = b"........"
            buf[2:6] = value
            seen.append(bytes(buf))
        buf[:] = b"........"
        with pytest.raises(TypeError, match="C-contiguous"):
            buf[2:6] = memoryview(b"w.x.y.z.")[::2]
        buf[3], buf[4] = b"!", bytearray(b"?")
        with pytest.raises(TypeError, match="must assign a bytes of length 1, not memoryview"):
            buf[5] = memoryview(b"x")
        seen.append(bytes(buf))

    fn = ef.Function("extism:host/user", "grab", [ef.ValType.I64], [], grab)
    with ef.Plugin(GRAB, functions=[fn]) as plugin:
        plugin.call("run")
    assert seen == [b"..wxyz.."] * 6 + [b"...!?..."]
    resizable.append(0)  # its buffer was released: it can be resized


def test_an_index_that_raises_leaves_the_buffer_as_it_was():
    seen = []

    class Raises:
        def __index__(self):
            raise KeyError("no index")

    def grab(cp, params, results):
        buf = cp.memory(cp.alloc(4))
        buf[:] = b"abcd"
        for bad in (lambda: buf.__setitem__(Raises(), b"x"), lambda: buf.__setitem__(slice(Raises(), 2), b"xy"),
                    lambda: buf.__getitem__(Raises())):
            with pytest.raises(KeyError):
                bad()
        with pytest.raises(IndexError):
            buf[10**30]
        with pytest.raises(TypeError):
            buf["0"]
        seen.append(bytes(buf))

    fn = ef.Function("extism:host/user", "grab", [ef.ValType.I64], [], grab)
    with ef.Plugin(GRAB, functions=[fn]) as plugin:
        plugin.call("run")
    assert seen == [b"abcd"]


# ---- copies: no object that points at native memory can be copied or pickled ----

def _extension_types():
    """Every cdef class of the runtime (static types: Cython's, not Python classes)."""
    from extism_fast import _runtime

    return {name: cls for name, cls in vars(_runtime).items()
            if isinstance(cls, type) and cls.__module__ == _runtime.__name__ and not cls.__flags__ & (1 << 9)}


def _one_of_each():
    """A live object of every cdef class and of PooledPlugin, made while a host function runs."""
    from extism_fast import _runtime

    made = {}

    def grab(cp, params, results):
        made["CurrentPlugin"] = cp
        made["KernelBuffer"] = cp.memory(cp.memory_at_offset(params[0].value))

    fn = ef.Function("extism:host/user", "grab", [ef.ValType.I64], [], grab)
    plugin = ef.Plugin(GRAB, functions=[fn])
    made["KernelBuffer (output)"] = plugin.call("run", parse=None)
    made.update(Plugin=plugin, CancelHandle=plugin.cancel_handle(), CompiledPlugin=plugin.compiled_plugin,
                _Batch=_runtime._Batch([b"x"]), _ArrowBatch=_runtime._ArrowBatch(None),
                _Compilation=_runtime._Compilation.__new__(_runtime._Compilation),
                _DetachedStore=_runtime._DetachedStore.__new__(_runtime._DetachedStore),
                _HeapBlock=_runtime._HeapBlock.__new__(_runtime._HeapBlock), _HeldBytes=_runtime._HeldBytes(b"x"),
                _PackedOptions=_runtime._PackedOptions.__new__(_runtime._PackedOptions),
                _HostFunctionEntry=_runtime._HostFunctionEntry(fn))
    return fn, plugin, made


def test_nothing_with_a_native_pointer_can_be_copied_or_pickled():
    """copy.copy of a KernelBuffer went through Cython's automatic pickling, which pointed the
    copy at a temporary bytes object: writes through it corrupted the heap. Every cdef class
    refuses copy, deepcopy and pickle with TypeError, as the official SDK's cffi buffers do;
    CompiledPlugin alone pickles (by manifest, for Dask and Ray)."""
    import copy
    import pickle

    fn, plugin, made = _one_of_each()
    assert set(_extension_types()) <= {name.split()[0] for name in made}, "a new cdef class: add it above"
    pool = ef.PluginPool(GRAB, size=1, functions=[fn])
    with pool.get() as pooled:
        made["PooledPlugin"] = pooled
        for name, obj in made.items():
            for how in (copy.copy, copy.deepcopy, pickle.dumps):
                if name == "CompiledPlugin":
                    continue  # pickled by manifest on purpose: tests/test_pickling.py
                with pytest.raises(TypeError, match="pickle"):
                    how(obj)
    pool.close()
    assert plugin.call("run") == b"ABCDEFGH"  # the plugin is intact
