# cython: language_level=3, cdivision=True, auto_pickle=False
"""The native runtime: engine, compiled plugins, plugin instances, calls, host-function trampolines.

Everything on the per-call path is Cython so that ``Plugin.call`` is one Cython method: the input
buffer goes straight into kernel memory and the output comes straight out of it. A call starts
holding the GIL (cheaper than releasing it for a short call) and releases it at the first ticker
tick (~1 ms); batches release it for the whole batch; host functions and hooks take it as needed.

This file loads wasmtime and holds what every part shares; the parts are included below, one
concept per .pxi file (one Cython module). The cdef classes' attributes and cdef methods are
declared in _runtime.pxd, so every part sees every class whatever the include order.

No class here is copied or pickled by Cython's automatic pickling (``auto_pickle=False``): it
would rebuild raw pointers (a KernelBuffer's data from a temporary bytes). copy.copy, deepcopy
and pickle raise TypeError, as the official SDK's cffi buffers do, unless a class says how
(CompiledPlugin: by manifest, extism_fast/runtime/pickling.py).
"""

cimport cython

import os
import sys

from cpython.buffer cimport (PyObject_GetBuffer, PyBuffer_Release, PyBuffer_FillInfo, PyBUF_SIMPLE, PyBUF_WRITABLE,
                             PyBUF_C_CONTIGUOUS, PyBUF_FORMAT)
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING, PyBytes_GET_SIZE, PyBytes_CheckExact
from cpython.unicode cimport PyUnicode_AsUTF8String, PyUnicode_CheckExact
from libc.stdint cimport uint8_t, uint32_t, uint64_t, int64_t, int32_t, INT32_MAX
from libc.stdlib cimport malloc, calloc, realloc, free, getenv
from libc.string cimport memcpy, memmove, memset, strlen
from cpython.number cimport PyNumber_AsSsize_t
from cpython.exc cimport PyErr_CheckSignals

from extism_fast.includes.wasmtime cimport *
from extism_fast.includes.kernel cimport *

from extism_fast.errors import (
    Error, CompileError, LinkError, ManifestError, FunctionNotFoundError, CallError, PluginError,
    TrapError, TimeoutError, CancelledError, MemoryLimitError, HostFunctionError, CapabilityError,
    FuelExhaustedError, InputTypeError, checked_input, function_not_found, reindexed,
)
from extism_fast.host.registry import HOST_FN_REGISTRY  # host/functions.py: _load_host_functions

# runtime/options.py loads with the first Plugin or CompiledPlugin, not with the package:
# _load_options sets these then.
_C_INT64 = _C_UINT64 = _ENVIRONMENT = _PlainSource = None
cdef object _options = None  # the module


cdef _load_options():
    global _C_INT64, _C_UINT64, _ENVIRONMENT, _options, _PlainSource
    if _options is not None:
        return
    from extism_fast.manifest.plain import PlainSource as _PlainSource
    from extism_fast.runtime import compile_cache, options

    compile_cache.use_sha256(_sha256)  # before the first cache key

    _C_INT64, _C_UINT64, _ENVIRONMENT = options.C_INT64, options.C_UINT64, options.ENVIRONMENT
    _options = options

from extism_fast.host.logs import (ABI_LEVELS as _PY_LEVELS, LOG_LEVELS as _LOG_LEVELS, LazyLogger, get_logger,
                                   plugin_log_level)

logger = LazyLogger()  # logging loads with the first record or level check

# Process-wide engines, created on first use, indexed by _engine_slot(flags, pooled). Plugins
# compile on the cheapest engine that does what they need (engine_flags in engine.h): epoch
# interruption only for timeouts and cancel, fuel only for fuel budgets. The non-fuel engines use
# the pooling allocator (instances in microseconds) unless EXTISM_FAST_INSTANCE_POOL=0; each has
# an on-demand twin for plugins that do not fit the pool or arrive when it is full.
cdef engine_bundle ENGINES[ENGINE_FLAG_VALUES * 2]
cdef bint ENGINE_UNAVAILABLE[ENGINE_FLAG_VALUES * 2]  # creating it failed (a pool whose address space was refused)

#: Plugin instances per pooling engine (EXTISM_FAST_INSTANCE_POOL; 0 turns pooling off).
DEFAULT_INSTANCE_POOL = 1000

# PyEval_SaveThread / PyEval_RestoreThread: declared in _runtime.pxd (with the classes).
cdef void *_release_gil() noexcept nogil:
    return PyEval_SaveThread()


cdef void _restore_gil(void *thread_state) noexcept nogil:
    PyEval_RestoreThread(thread_state)


def _main_thread_ident():
    """threading.main_thread().ident, without importing threading for it (~1 ms of the package's
    import): before 3.12 threading takes the thread that first imports it for the main thread, so
    while it is not loaded, that is this thread."""
    if "threading" not in sys.modules and sys.version_info < (3, 12):
        return PyThread_get_thread_ident()
    import threading

    return threading.main_thread().ident


# Python runs signal handlers on its main thread only: calls made there stop at Ctrl-C
# (kernel_c/sigint.h); after fork() the forking thread is the child's main thread.
cdef unsigned long _SIGNAL_THREAD = _main_thread_ident()


cdef int _on_signal_thread() noexcept nogil:
    return PyThread_get_thread_ident() == _SIGNAL_THREAD


cdef int _gil_wanted() noexcept nogil:
    """running_hooks.gil_wanted (running.h), called holding the GIL: could another thread want it
    while a call runs? Only a thread with a thread state runs Python (one that enters Python
    from C, PyGILState_Ensure, gets one first), so: does another one, or another interpreter,
    exist? The lists change only under the GIL or the runtime's lock; a thread entering Python
    from C as this is read waits, as one arriving during the call, for the call's end."""
    cdef PyInterpreterState *interp = PyThreadState_GetInterpreter(PyThreadState_Get())
    return (PyInterpreterState_Next(PyInterpreterState_Head()) != NULL or
            PyThreadState_Next(PyInterpreterState_ThreadHead(interp)) != NULL)


def _signal_thread_after_fork():
    global _SIGNAL_THREAD
    _SIGNAL_THREAD = PyThread_get_thread_ident()


os.register_at_fork(after_in_child=_signal_thread_after_fork)


# ---------------------------------------------------------------------------------------------
# Loading wasmtime
# ---------------------------------------------------------------------------------------------

def _find_spec(name):
    """importlib.util.find_spec(name) of a top-level module, without importing importlib.util
    (contextlib, warnings: ~1 ms of a first plugin): the module's own spec once it is imported,
    else the first the import system's finders give."""
    module = sys.modules.get(name)
    if module is not None:
        return module.__spec__
    for finder in sys.meta_path:
        find_spec = getattr(finder, "find_spec", None)
        spec = None if find_spec is None else find_spec(name, None)
        if spec is not None:
            return spec
    return None


def _wasmtime_library_path():
    """Path of the shared library inside the installed `wasmtime` wheel (not imported: no ctypes)."""
    spec = _find_spec("wasmtime")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("extism_fast needs the `wasmtime` package (pip install 'wasmtime>=50,<51')")
    root = list(spec.submodule_search_locations)[0]
    for sub in os.listdir(root):
        candidate = os.path.join(root, sub, "_libwasmtime.so")
        if os.path.isfile(candidate):
            return candidate
    raise ImportError(f"no _libwasmtime.so found under {root}")


_WASMTIME_IDENTITY = ""  # which wasmtime library compiled a module (part of the cache key)


cdef _load_wasmtime():
    global _WASMTIME_IDENTITY
    cdef char err[512]
    library = _wasmtime_library_path()
    stat = os.stat(library)
    # The library file itself, not package metadata: cheap to read, and a reinstall changes it.
    _WASMTIME_IDENTITY = f"{library}:{stat.st_size}:{stat.st_mtime_ns}"
    path = os.fsencode(library)
    if wt_load(path, err, sizeof(err)) != 0:
        raise ImportError(err.decode("utf-8", "replace"))
    running_hooks.log = _log_hook
    running_hooks.log_level = _log_level_hook
    running_hooks.release_gil = _release_gil
    running_hooks.restore_gil = _restore_gil
    running_hooks.http_request = _http_request_hook
    running_hooks.keep_store = _keep_store_hook
    running_hooks.on_signal_thread = _on_signal_thread
    running_hooks.gil_wanted = _gil_wanted
    if _on_signal_thread():
        sigint_watch()  # now, so that a Ctrl-C in the first call's first tick is counted too


_load_wasmtime()


def _instance_pool_size():
    """EXTISM_FAST_INSTANCE_POOL, read when the first pooling engine is created."""
    text = os.environ.get("EXTISM_FAST_INSTANCE_POOL", "").strip()
    if not text:
        return DEFAULT_INSTANCE_POOL
    if not text.isdigit() or int(text) > 1000000:
        raise Error(f"EXTISM_FAST_INSTANCE_POOL must be a whole number of instances from 0 to 1000000 "
                    f"(0 turns the instance pool off), got {text!r}")
    return int(text)


cdef inline int _engine_slot(int flags, bint pooled):
    return flags * 2 + pooled


cdef inline int _engine_key(const engine_bundle *engine):
    """The slot of an engine that exists (what compilations are kept by)."""
    return _engine_slot(engine.flags, engine.pool_instances != 0)


cdef int _byte_buffer(obj, Py_buffer *view) except -1:
    """Take ``obj``'s bytes into ``view`` (the caller PyBuffer_Releases it): a C-contiguous,
    1-dimensional buffer of single bytes (format B, c or ?), what a ``const uint8_t[::1]`` took
    before, without Cython's memoryview code (its module init imports collections.abc). A strided
    buffer is refused by its exporter (a memoryview raises BufferError)."""
    PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT)
    cdef const char *fmt = view.format
    if fmt == NULL:  # the exporter says no format: unsigned bytes
        fmt = "B"
    cdef size_t n = strlen(fmt)
    if view.ndim == 1 and view.itemsize == 1 and n and fmt[n - 1] in b"Bc?":
        return 0
    message = (f"expected a 1-dimensional buffer of bytes, got a {view.ndim}-dimensional "
               f"{type(obj).__name__} of format {fmt.decode(errors='replace')!r}")
    PyBuffer_Release(view)
    raise ValueError(message)


cdef engine_bundle *_engine(int flags, bint pooled, cache=None) except NULL:
    """The engine with these flags, pooled or on-demand; NULL-free: falls back to on-demand when a
    pooling engine cannot be created (its address space refused, or the pool turned off). A new
    engine's kernel accessor module comes from ``cache`` (a CompileCache, or None) when there."""
    cdef char *message = NULL
    cdef int slot = _engine_slot(flags, pooled)
    cdef uint32_t pool = 0
    if pooled and not ENGINE_UNAVAILABLE[slot] and ENGINES[slot].engine == NULL:
        pool = _instance_pool_size()
        if pool == 0 or _new_engine(flags, pool, cache, &ENGINES[slot], &message) != 0:
            if pool:
                logger.debug("extism_fast: no instance pool, instances are allocated on demand: %s",
                             _take_message(message))
            ENGINE_UNAVAILABLE[slot] = True
    if pooled and ENGINE_UNAVAILABLE[slot]:
        slot = _engine_slot(flags, False)
    if ENGINES[slot].engine == NULL:
        if _new_engine(flags, 0, cache, &ENGINES[slot], &message) != 0:
            raise Error(f"cannot create the wasmtime engine: {_take_message(message)}")
    return &ENGINES[slot]


cdef int _new_engine(int flags, uint32_t pool, cache, engine_bundle *out, char **message) except -2:
    """engine_new (engine.h) with the kernel accessor module loaded from, or else stored into,
    the compile cache ``cache`` (None: compiled), keyed like a plugin's module: a warm process start
    then compiles nothing. Returns engine_new's result."""
    cdef engine_access_cache access
    cdef Py_buffer payload
    cdef bint have_payload = False
    cdef size_t wat_length
    cdef int result
    cdef const char *wat = kernel_access_wat(&wat_length)
    memset(&access, 0, sizeof(access))
    key = found = None
    if cache is not None:
        cache = cache.engine_cache()
        key = cache.key(wat[:wat_length], _flags_description(flags))
        found = cache.load(key)
        access.serialize = 1
    if found is not None:
        _byte_buffer(found, &payload)
        have_payload = True
        access.cached, access.cached_length = <const uint8_t *>payload.buf, payload.len
    try:
        # Reading the cache may have let another thread in, which made this engine meanwhile: use
        # it. From this check to the engine in its slot the GIL is held (engine_new does not
        # release it), which is what keeps two threads from making the same engine.
        if out.engine != NULL:
            return 0
        result = engine_new(flags, pool, &access, out, message)
    finally:
        if have_payload:
            PyBuffer_Release(&payload)
    if access.serialized != NULL:
        try:
            cache.store(key, PyBytes_FromStringAndSize(<char *>access.serialized, access.serialized_length))
        finally:
            free(access.serialized)
    return result


#: EXTISM_PROFILE values, as the official runtime reads them: wasmtime's profiler for each.
_PROFILERS = {"jitdump": 1, "vtune": 2, "perf": 3}  # wasmtime_profiling_strategy_t


def _debug_flags_from_environment():
    """The engine flags the official runtime's debugging switches ask for, read when a plugin is
    compiled: EXTISM_PROFILE=perf|jitdump|vtune (wasmtime's profiler) and EXTISM_DEBUG (set to
    anything: DWARF debug info). An unknown EXTISM_PROFILE is ignored with a warning, as there."""
    cdef int flags = ENGINE_DEBUG if "EXTISM_DEBUG" in os.environ else 0
    profile = os.environ.get("EXTISM_PROFILE")
    if profile is not None:
        if profile in _PROFILERS:
            flags |= _PROFILERS[profile] << ENGINE_PROFILER_SHIFT
        else:
            logger.warning("extism_fast: invalid value for EXTISM_PROFILE: %r (perf, jitdump or vtune)", profile)
    return flags


cdef engine_bundle *_engine_for(bint fuel, bint interruptible, cache=None) except NULL:
    """The engine a plugin compiles on first: fuel metering (with epochs) for fuel budgets, epoch
    interruption for timeouts and cancel, neither otherwise; pooled unless metering fuel or
    debugging (EXTISM_PROFILE / EXTISM_DEBUG engines are rare: no pool's address space for them)."""
    cdef int debug = _debug_flags_from_environment()
    if fuel:
        return _engine(ENGINE_FUEL | ENGINE_EPOCH | debug, False, cache)
    return _engine((ENGINE_EPOCH if interruptible else 0) | debug, debug == 0, cache)


cdef object _environ(const char *name):
    """The environment variable ``name`` as set now, or None. Read with C getenv, not os.environ:
    CPython writes every os.environ change through putenv/unsetenv, so both agree (and the
    official runtime reads the process environment too), while an os.environ lookup costs ~1 us
    and every Plugin reads four of these (options.ENVIRONMENT)."""
    cdef const char *value = getenv(name)
    return None if value == NULL else PyUnicode_DecodeFSDefault(value)


cdef engine_bundle *_on_demand_twin(engine_bundle *bundle) except NULL:
    """The on-demand engine with the same flags (its compiled code is interchangeable)."""
    return _engine(bundle.flags, False)


cdef str _engine_description(engine_bundle *bundle):
    """The engine settings a compiled module depends on (part of its compile cache key). The
    allocator is not one: pooled and on-demand engines load each other's modules."""
    return _flags_description(bundle.flags)


cdef str _flags_description(int flags):
    """_engine_description of an engine with these engine_flags."""
    return (f"wasmtime={_WASMTIME_IDENTITY},epoch_interruption={int(flags & ENGINE_EPOCH != 0)},"
            f"memory_may_move=0,consume_fuel={int(flags & ENGINE_FUEL != 0)},"
            f"debug_info={int(flags & ENGINE_DEBUG != 0)},"
            f"profiler={(flags & ENGINE_PROFILER_MASK) >> ENGINE_PROFILER_SHIFT}")


class _LazySignature:
    """A class's ``__signature__``: inspect.signature of ``parameters``, made when first asked
    (inspect costs milliseconds to import, and a plain call never asks)."""

    def __init__(self, parameters):
        self._parameters = parameters
        self._signature = None

    def __get__(self, instance, owner=None):
        if self._signature is None:
            import inspect

            self._signature = inspect.signature(self._parameters)
        return self._signature


cdef str _take_message(char *message):
    """Decode and free a malloc'ed C message."""
    if message == NULL:
        return "unknown error"
    text = message.decode("utf-8", "replace")
    free(message)
    return text


def _restore_trap_handlers():
    """restore_trap_handlers for the automatic check points (never raises): the restored signals
    as a mask of (1 << number), or -1 when wasmtime's handlers are unknown (signals.h)."""
    return signals_restore()


def restore_trap_handlers():
    """Put wasmtime's trap handlers back where other code replaced them, and return the signals
    (``signal.Signals``) that were restored. Faults outside wasm still reach the replacing handler.

    wasmtime turns faults in wasm code (SIGILL, SIGSEGV, SIGFPE) into traps with signal handlers
    of its own; a library that installs fatal-signal handlers after extism_fast's first engine
    without chaining (Ray's core worker at ``ray.init()``, ``faulthandler.enable()``) would kill
    the process at the next trap instead (``ray.shutdown()`` resets them to the default action).
    A new plugin instance, a new CompiledPlugin and the Dask/Ray worker entry points call this
    already (README, "Wasm traps and crash handlers"); call it after such a library's setup when
    plugins instantiated earlier keep running. Three syscalls (~0.5 us), so not part of every call.
    Raises Error when wasmtime's handlers were replaced before extism_fast's first engine existed.
    """
    cdef int restored = _restore_trap_handlers()
    if restored < 0:
        raise Error("wasmtime's trap handlers were replaced before extism_fast created its first engine "
                    "(another wasmtime engine came first, then another library's signal handlers): "
                    "they cannot be restored")
    import signal

    return [s for s in (signal.SIGILL, signal.SIGBUS, signal.SIGFPE, signal.SIGSEGV) if restored & (1 << s)]


def _sha256(data):
    """The SHA-256 digest of ``data`` (bytes-like), by kernel_c/sha256.c: what the compile cache
    hashes its small inputs with (compile_cache.use_sha256), with no module to load for it."""
    cdef Py_buffer view
    cdef uint8_t out[32]
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        if view.len < 2048:  # as CPython's hashes: the GIL released for more
            sha256_digest(<const uint8_t *>view.buf, view.len, out)
        else:
            with nogil:
                sha256_digest(<const uint8_t *>view.buf, view.len, out)
    finally:
        PyBuffer_Release(&view)
    return PyBytes_FromStringAndSize(<char *>out, 32)


def wat2wasm(text):
    """Convert WebAssembly text (str or bytes) to a wasm binary; raises CompileError."""
    cdef bytes source = text.encode() if isinstance(text, str) else bytes(text)
    cdef uint8_t *out = NULL
    cdef size_t length = 0
    cdef char *error = NULL
    if compile_wat2wasm(<const uint8_t *>PyBytes_AS_STRING(source), len(source), &out, &length, &error) != 0:
        raise CompileError(f"invalid WebAssembly text: {_take_message(error)}")
    try:
        return PyBytes_FromStringAndSize(<char *>out, length)
    finally:
        free(out)


include "_kernel_buffer.pxi"
include "_hooks.pxi"
include "_host_functions.pxi"
include "_current_plugin.pxi"
include "_compiled_plugin.pxi"
include "_batch.pxi"
include "_plugin.pxi"
include "_call_errors.pxi"
include "_host_http.pxi"
include "_arrow.pxi"

#: sizeof(instance_options) and sizeof(instance_settings) in C, for tests/test_options.py to compare
#: with options.py's ctypes mirrors.
_INSTANCE_OPTIONS_SIZE = sizeof(instance_options)
_INSTANCE_SETTINGS_SIZE = sizeof(instance_settings)
