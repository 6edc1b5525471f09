# cython: language_level=3, cdivision=True
"""The native runtime: engine, compiled plugins, plugin instances, calls, host-function trampolines.

Everything on the per-call path lives here so that ``Plugin.call`` is one Cython method: the input
buffer goes straight into kernel memory, wasm runs with the GIL released, and the GIL is taken back
only for Python host functions and logging.
"""

cimport cython

import logging
import os
import uuid
import importlib.util

from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBuffer_FillInfo, PyBUF_SIMPLE, PyBUF_WRITABLE
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING, PyBytes_GET_SIZE, PyBytes_CheckExact
from cpython.unicode cimport PyUnicode_AsUTF8String, PyUnicode_CheckExact
from libc.stdint cimport uint8_t, uint64_t, int64_t, int32_t, INT32_MAX
from libc.stdlib cimport malloc, calloc, realloc, free
from libc.string cimport memcpy, strlen

from extism_fast.includes.wasmtime cimport *
from extism_fast.includes.kernel cimport *

from extism_fast.errors import (
    Error, CompileError, LinkError, ManifestError, FunctionNotFoundError, CallError, PluginError,
    TrapError, TimeoutError, CancelledError, MemoryLimitError, HostFunctionError, CapabilityError,
    FuelExhaustedError,
)
from extism_fast.functions import Function, Val, ValType, HOST_FN_REGISTRY
from extism_fast.compile_cache import cache_from_argument
from extism_fast.manifest import Manifest, coerce_source, looks_like_wat, WASM_PAGE_SIZE

logger = logging.getLogger("extism_fast")
TRACE = 5
logging.addLevelName(TRACE, "TRACE")
# ABI level (0 trace .. 4 error) -> Python logging level.
_PY_LEVELS = (TRACE, logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR)

# Two engines: the default one, and one with fuel metering for plugins given a fuel budget
# (metering costs every plugin on its engine, so the default engine does not have it).
cdef engine_bundle ENGINE_BUNDLE
cdef engine_bundle FUEL_ENGINE_BUNDLE
cdef wasm_engine_t *ENGINE = NULL


cdef extern from "Python.h":
    # Declared with void* so the kernel's hook table can hold them without Python types.
    void *PyEval_SaveThread() nogil
    void PyEval_RestoreThread(void *tstate) nogil


cdef void *_release_gil() noexcept nogil:
    return PyEval_SaveThread()


# ---------------------------------------------------------------------------------------------
# Loading wasmtime
# ---------------------------------------------------------------------------------------------

def _wasmtime_library_path():
    """Path of the shared library inside the installed `wasmtime` wheel (not imported: no ctypes)."""
    spec = importlib.util.find_spec("wasmtime")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("extism_fast needs the `wasmtime` package (pip install 'wasmtime>=50,<51')")
    root = list(spec.submodule_search_locations)[0]
    for sub in os.listdir(root):
        candidate = os.path.join(root, sub, "_libwasmtime.so")
        if os.path.isfile(candidate):
            return candidate
    raise ImportError(f"no _libwasmtime.so found under {root}")


cdef _load_wasmtime():
    global ENGINE
    cdef char err[512]
    path = os.fsencode(_wasmtime_library_path())
    if wt_load(path, err, sizeof(err)) != 0:
        raise ImportError(err.decode("utf-8", "replace"))
    cdef char *message = NULL
    if instance_engine_new(0, &ENGINE_BUNDLE, &message) != 0:
        raise ImportError(f"cannot create the wasmtime engine: {_take_message(message)}")
    ENGINE = ENGINE_BUNDLE.engine
    instance_hooks.log = _log_hook
    instance_hooks.log_level = _log_level_hook
    instance_hooks.release_gil = _release_gil
    instance_hooks.http_request = _http_request_hook


_load_wasmtime()


cdef engine_bundle *_engine_for(bint fuel) except NULL:
    """The engine a plugin compiles on; the fuel engine is created on first use."""
    cdef char *message = NULL
    if not fuel:
        return &ENGINE_BUNDLE
    if FUEL_ENGINE_BUNDLE.engine == NULL:
        if instance_engine_new(1, &FUEL_ENGINE_BUNDLE, &message) != 0:
            raise Error(f"cannot create the fuel-metering engine: {_take_message(message)}")
    return &FUEL_ENGINE_BUNDLE


cdef str _engine_description(engine_bundle *bundle):
    """The engine settings a compiled module depends on (part of its compile cache key)."""
    return f"epoch_interruption=1,memory_may_move=0,consume_fuel={bundle.consume_fuel}"


cdef str _take_message(char *message):
    """Decode and free a malloc'ed C message."""
    if message == NULL:
        return "unknown error"
    text = message.decode("utf-8", "replace")
    free(message)
    return text


cdef str _take_wasmtime_error(wasmtime_error_t *error):
    return _take_message(wt_take_error_message(error))


def wat2wasm(text):
    """Convert WebAssembly text (str or bytes) to a wasm binary; raises CompileError."""
    cdef bytes source = text.encode() if isinstance(text, str) else bytes(text)
    cdef wasm_byte_vec_t out
    cdef wasmtime_error_t *error = wt.wasmtime_wat2wasm(source, len(source), &out)
    if error != NULL:
        raise CompileError(f"invalid WebAssembly text: {_take_wasmtime_error(error)}")
    result = PyBytes_FromStringAndSize(<char *>out.data, out.size)
    wt.wasm_byte_vec_delete(&out)
    return result


# ---------------------------------------------------------------------------------------------
# Logging hooks (called from import callbacks without the GIL)
# ---------------------------------------------------------------------------------------------

cdef void _log_hook(void *owner, int level, const uint8_t *msg, size_t n) noexcept nogil:
    with gil:
        try:
            plugin = <Plugin>owner
            py_level = _PY_LEVELS[level]
            if logger.isEnabledFor(py_level):
                text = (<char *>msg)[:n].decode("utf-8", "replace")
                logger.log(py_level, text, extra={"plugin_id": str(plugin.id)})
        except BaseException:
            logger.exception("extism_fast: logging a plugin message failed")


cdef int32_t _log_level_hook(void *owner) noexcept nogil:
    with gil:
        try:
            for abi_level, py_level in enumerate(_PY_LEVELS):
                if logger.isEnabledFor(py_level):
                    return abi_level
        except BaseException:
            pass
        return INT32_MAX


# ---------------------------------------------------------------------------------------------
# HTTP (http_request): the policy and the request itself live in extism_fast/http.py
# ---------------------------------------------------------------------------------------------

cdef wasm_trap_t *_http_request_hook(void *owner, uint64_t request, uint64_t body,
                                     uint64_t *response) noexcept nogil:
    with gil:
        return (<Plugin>owner)._http_request(request, body, response)


# ---------------------------------------------------------------------------------------------
# Host functions: the trampoline from wasm into Python
# ---------------------------------------------------------------------------------------------

_VALTYPE_TO_KIND = {ValType.I32: WASM_I32, ValType.I64: WASM_I64, ValType.F32: WASM_F32,
                    ValType.F64: WASM_F64, ValType.V128: WASM_V128,
                    ValType.FUNC_REF: WASM_FUNCREF, ValType.EXTERN_REF: WASM_EXTERNREF}
_KIND_NAMES = {WASM_I32: "i32", WASM_I64: "i64", WASM_F32: "f32", WASM_F64: "f64", WASM_V128: "v128",
               WASM_FUNCREF: "funcref", WASM_EXTERNREF: "externref"}


cdef class _HostFunctionEntry:
    """What the trampoline needs for one Function: kept alive by its CompiledPlugin."""
    cdef object function
    cdef object f
    cdef tuple user_data
    cdef tuple param_types
    cdef tuple result_types
    cdef str label

    def __init__(self, function):
        self.function = function
        self.f = function.f
        self.user_data = tuple(function.user_data)
        self.param_types = tuple(function.args)
        self.result_types = tuple(function.returns)
        self.label = f"{function.namespace}::{function.name}"
        for t in self.param_types + self.result_types:
            if t not in (ValType.I32, ValType.I64, ValType.F32, ValType.F64):
                raise LinkError(f"host function {self.label}: value type {t.name} is not supported "
                                f"(use I32, I64/PTR, F32 or F64)")


cdef object _raw_to_python(wasmtime_val_raw_t *raw, object t):
    if t is ValType.I64:
        return raw.i64
    if t is ValType.I32:
        return raw.i32
    if t is ValType.F64:
        return raw.f64
    return raw.f32


cdef object _wrap_signed(object value, int bits):
    """Two's-complement wrap of any Python int into a signed `bits`-bit value (as wasm does)."""
    cdef object one = 1  # a Python int: a C shift by 32 or 64 would be undefined
    value = int(value) & ((one << bits) - 1)
    return value - (one << bits) if value >> (bits - 1) else value


cdef _python_to_raw(wasmtime_val_raw_t *raw, object t, object value):
    if t is ValType.I64:
        raw.i64 = <int64_t>_wrap_signed(value, 64)
    elif t is ValType.I32:
        raw.i32 = <int>_wrap_signed(value, 32)
    elif t is ValType.F64:
        raw.f64 = float(value)
    else:
        raw.f32 = float(value)


cdef wasm_trap_t *_host_trampoline(void *env, wasmtime_caller_t *caller, wasmtime_val_raw_t *args,
                                   size_t nargs) noexcept nogil:
    with gil:
        return _run_host_function(<_HostFunctionEntry>env, args)


cdef object _new_val(object t, object value):
    """Val(t, value) without running Val.__init__ as a Python frame (hot in host calls)."""
    val = Val.__new__(Val)
    val.t = t
    val.value = value
    return val


cdef wasm_trap_t *_run_host_function(_HostFunctionEntry entry, wasmtime_val_raw_t *args):
    cdef Py_ssize_t i
    cdef plugin_instance *inst = current_instance
    cdef Plugin plugin
    try:
        plugin = <Plugin>inst.owner
        params = [_new_val(t, _raw_to_python(&args[i], t)) for i, t in enumerate(entry.param_types)]
        results = [_new_val(t, None) for t in entry.result_types]
        entry.f(plugin._current_plugin, params, results, *entry.user_data)
        for i, t in enumerate(entry.result_types):
            value = results[i].value
            if value is None:
                raise TypeError(f"result {i} ({t.name}) was not set")
            _python_to_raw(&args[i], t, value)
        return NULL
    except BaseException as exc:
        (<Plugin>inst.owner)._keep_interrupt(exc)
        logger.error("host function %s raised", entry.label, exc_info=True)
        message = f"host function {entry.label} raised {type(exc).__name__}: {exc}".encode("utf-8", "replace")
        return instance_fail(inst, FAILURE_HOST_FUNCTION, message)


# ---------------------------------------------------------------------------------------------
# Memory handles for host functions
# ---------------------------------------------------------------------------------------------

class Memory:
    """A block of kernel memory: ``offset`` and ``length`` (as the official SDK's Memory)."""

    __slots__ = ("offset", "length")

    def __init__(self, offs, length):
        self.offset = offs
        self.length = length

    def __len__(self):
        return self.length

    def __repr__(self):
        return f"Memory(offset={self.offset}, length={self.length})"


cdef class CurrentPlugin:
    """The plugin that is calling a host function: access to its kernel memory.

    Valid only while one of that plugin's host functions runs (on that thread): using it at any
    other time raises Error. It refers to its plugin without owning it, so the two do not keep each
    other alive.
    """
    cdef void *owner  # the Plugin, borrowed; checked against the running call before any use

    @staticmethod
    cdef CurrentPlugin _for(Plugin plugin):
        cdef CurrentPlugin cp = CurrentPlugin.__new__(CurrentPlugin)
        cp.owner = <void *>plugin
        return cp

    cdef kernel *_kernel(self) except NULL:
        if current_instance == NULL or current_instance.owner != self.owner:
            raise Error("CurrentPlugin is only usable while its plugin is calling a host function")
        return current_instance.kernel

    def memory(self, mem):
        """A writable memoryview of the bytes of ``mem`` (a Memory) in kernel memory."""
        cdef kernel *k = self._kernel()
        cdef uint64_t offset = mem.offset, length = mem.length
        if length == 0:
            return memoryview(bytearray())  # handle 0 / an empty block: nothing to point at
        cdef uint8_t *p = kernel_ptr(k, offset, length)
        if p == NULL:
            raise Error(f"memory [{offset}, {offset}+{length}) is outside kernel memory")
        return memoryview(<uint8_t[:length]>p)

    def alloc(self, size):
        """Allocate ``size`` bytes of kernel memory; raises MemoryLimitError when it cannot."""
        cdef kernel *k = self._kernel()
        cdef uint64_t offset = kernel_alloc(k, size)
        if offset == 0 and size != 0:
            raise MemoryLimitError(f"cannot allocate {size} bytes: kernel memory limit reached ({k.limit} bytes)")
        return Memory(offset, size)

    def free(self, mem):
        """Free a block (a Memory or an offset). Unknown offsets are ignored."""
        kernel_free(self._kernel(), mem.offset if isinstance(mem, Memory) else int(mem))

    def memory_at_offset(self, offs):
        """The Memory of the block starting at ``offs`` (an int or a Val); length 0 if none."""
        if isinstance(offs, Val):
            offs = offs.value
        return Memory(offs, kernel_length(self._kernel(), offs))

    def host_context(self):
        """The ``host_context`` object given to the current ``Plugin.call``, or None."""
        self._kernel()
        return (<Plugin>self.owner)._host_context

    def input_buffer(self, input):
        """Writable memoryview of the block a parameter (Val with an offset) points at."""
        return self.memory(self.memory_at_offset(input))

    def input_bytes(self, input):
        """The bytes of the block a parameter points at."""
        return bytes(self.input_buffer(input))

    def input_string(self, input):
        """The UTF-8 text of the block a parameter points at."""
        return self.input_bytes(input).decode()

    def return_bytes(self, output, b):
        """Copy ``b`` into a new block and store its offset in ``output`` (a Val)."""
        mem = self.alloc(len(b))
        if len(b):
            self.memory(mem)[:] = b
        output.value = mem.offset

    def return_string(self, output, s):
        """Like return_bytes for UTF-8 text."""
        self.return_bytes(output, s.encode())


# ---------------------------------------------------------------------------------------------
# Compiled plugins
# ---------------------------------------------------------------------------------------------

cdef wasm_functype_t *_functype(list params, list results):
    cdef wasm_valtype_vec_t p, r
    cdef wasm_valtype_t *types[64]
    cdef Py_ssize_t i
    if len(params) > 64 or len(results) > 64:
        raise LinkError("host functions take at most 64 parameters and 64 results")
    for i, t in enumerate(params):
        types[i] = wt.wasm_valtype_new(_VALTYPE_TO_KIND[t])
    if params:
        wt.wasm_valtype_vec_new(&p, len(params), types)
    else:
        wt.wasm_valtype_vec_new_empty(&p)
    for i, t in enumerate(results):
        types[i] = wt.wasm_valtype_new(_VALTYPE_TO_KIND[t])
    if results:
        wt.wasm_valtype_vec_new(&r, len(results), types)
    else:
        wt.wasm_valtype_vec_new_empty(&r)
    return wt.wasm_functype_new(&p, &r)


cdef str _kinds_text(const wasm_valtype_vec_t *vec):
    cdef size_t i
    return ", ".join(_KIND_NAMES.get(wt.wasm_valtype_kind(vec.data[i]), "?") for i in range(vec.size))


cdef str _signature_text(const wasm_functype_t *ft):
    return f"({_kinds_text(wt.wasm_functype_params(ft))}) -> ({_kinds_text(wt.wasm_functype_results(ft))})"


cdef str _extern_text(const wasm_externtype_t *et):
    """A function's signature, or the kind of a non-function extern."""
    kind = wt.wasm_externtype_kind(et)
    if kind == WASM_EXTERN_FUNC:
        return "func " + _signature_text(wt.wasm_externtype_as_functype_const(et))
    return {1: "global", 2: "table", 3: "memory"}.get(kind, "extern")


cdef dict _module_exports(wasmtime_module_t *module):
    """Export name -> _extern_text of a compiled module (to check imports between modules)."""
    cdef wasm_exporttype_vec_t exports
    cdef const wasm_name_t *name
    cdef size_t i
    wt.wasmtime_module_exports(module, &exports)
    try:
        result = {}
        for i in range(exports.size):
            name = wt.wasm_exporttype_name(exports.data[i])
            result[(<char *>name.data)[:name.size].decode("utf-8", "replace")] = _extern_text(
                wt.wasm_exporttype_type(exports.data[i]))
        return result
    finally:
        wt.wasm_exporttype_vec_delete(&exports)


def _abi_signature_text(str params, str results):
    kind = {"I": "i64", "i": "i32"}
    return f"({', '.join(kind[c] for c in params)}) -> ({', '.join(kind[c] for c in results)})"


def _valtypes_text(types):
    return ", ".join(_KIND_NAMES[_VALTYPE_TO_KIND[t]] for t in types)


_WASI_MODULES = ("wasi_snapshot_preview1", "wasi_unstable")
_WASI_STDIO_MODES = {"inherit": WASI_STDIO_INHERIT, "log": WASI_STDIO_LOG, "discard": WASI_STDIO_DISCARD}


def _trap_summary(message):
    """wasmtime's trap text puts the cause last ("Caused by: ..."): lead with it, keep the trace."""
    head, sep, cause = message.partition("Caused by:")
    if not sep:
        return message
    # A chained cause is listed as "0: outer", "1: inner": join it into one line.
    lines = [line.strip() for line in cause.strip().splitlines() if line.strip()]
    reasons = [line.split(":", 1)[1].strip() if line.split(":", 1)[0].isdigit() else line for line in lines]
    return f"{': '.join(reasons)}\n{head.strip()}"


cdef class CompiledPlugin:
    """A compiled, linked plugin: instantiate it cheaply with ``Plugin(compiled)``.

    ``plugin`` is anything ``Plugin`` accepts (wasm bytes, WAT, a path, a JSON or dict manifest,
    a Manifest). Instances share the compiled modules and host functions. ``fuel``: an
    instruction budget per call. ``cache``: the on-disk compile cache (see compile_cache.py):
    None follows EXTISM_FAST_CACHE (on by default), False disables it, or a directory.
    """
    cdef compiled_plugin *c
    cdef readonly object manifest
    cdef readonly bint wasi
    cdef readonly list functions
    cdef readonly object fuel
    cdef engine_bundle *_engine
    cdef object _cache
    cdef list _entries
    cdef dict _callable      # export name -> index, for () -> i32 and () -> ()
    cdef dict _other_exports  # export name -> signature text, for the rest

    def __init__(self, plugin, bint wasi=False, functions=HOST_FN_REGISTRY, *, config=None, fuel=None,
                 cache=None):
        self.manifest = coerce_source(plugin, config=config)
        self._cache = cache_from_argument(cache)
        self.wasi = wasi
        if fuel is not None and (isinstance(fuel, bool) or not isinstance(fuel, int) or fuel <= 0):
            raise ManifestError(f"fuel must be a positive integer (instructions per call), got {fuel!r}")
        self.fuel = fuel
        self._engine = _engine_for(fuel is not None)
        # Several functions with one namespace and name: the last wins, as in the official SDK.
        unique = {(f.namespace, f.name): f for f in (functions or ())}
        self.functions = list(unique.values())
        self._entries = [_HostFunctionEntry(f) for f in self.functions]
        modules = self.manifest.load_modules()
        self.c = <compiled_plugin *>calloc(1, sizeof(compiled_plugin))
        if self.c == NULL:
            raise MemoryError()
        self.c.engine = self._engine.engine
        self.c.access_module = self._engine.access_module
        self._compile(modules)
        self._link(modules)

    def __dealloc__(self):
        compiled_plugin_delete(self.c)
        self.c = NULL

    cdef wasmtime_module_t *_compile_one(self, str name, bytes data) except NULL:
        cdef wasmtime_module_t *module = NULL
        cdef wasmtime_error_t *error
        cdef wasm_byte_vec_t serialized
        key = self._cache.key(data, _engine_description(self._engine)) if self._cache is not None else None
        if key is not None:
            module = self._load_cached(key)
            if module != NULL:
                return module
        if not data.startswith(b"\0asm"):
            if not looks_like_wat(data):
                raise CompileError(f"module '{name}' is not WebAssembly: it starts with {data[:8]!r}, "
                                   f"neither the wasm magic b'\\x00asm' nor WAT text")
            data = wat2wasm(data)
        cdef const uint8_t *p = <const uint8_t *>PyBytes_AS_STRING(data)
        cdef size_t n = PyBytes_GET_SIZE(data)
        with nogil:
            error = wt.wasmtime_module_new(self._engine.engine, p, n, &module)
        if error != NULL:
            raise CompileError(f"invalid wasm module '{name}': {_take_wasmtime_error(error)}")
        if key is not None:
            error = wt.wasmtime_module_serialize(module, &serialized)
            if error == NULL:
                self._cache.store(key, PyBytes_FromStringAndSize(<char *>serialized.data, serialized.size))
                wt.wasm_byte_vec_delete(&serialized)
            else:  # not cacheable: still usable
                logger.debug("extism_fast: cannot serialize module '%s': %s", name, _take_wasmtime_error(error))
        return module

    cdef wasmtime_module_t *_load_cached(self, str key):
        """A module from an intact cache entry, or NULL (then it is compiled again)."""
        cdef wasmtime_module_t *module = NULL
        cdef wasmtime_error_t *error
        payload = self._cache.load(key)
        if payload is None:
            return NULL
        cdef const uint8_t *p = <const uint8_t *>PyBytes_AS_STRING(payload)
        cdef size_t n = PyBytes_GET_SIZE(payload)
        with nogil:
            error = wt.wasmtime_module_deserialize(self._engine.engine, p, n, &module)
        if error != NULL:  # intact but not for this engine: replace it
            logger.warning("extism_fast: compile cache entry %s rejected by wasmtime: %s", key,
                           _take_wasmtime_error(error))
            self._cache.discard(key)
            return NULL
        return module

    cdef _compile(self, list modules):
        deps = [m for m in modules if not m.is_main]
        self.c.deps = <wasmtime_module_t **>calloc(len(deps) + 1, sizeof(wasmtime_module_t *))
        self.c.dep_names = <char **>calloc(len(deps) + 1, sizeof(char *))
        if self.c.deps == NULL or self.c.dep_names == NULL:
            raise MemoryError()
        for m in deps:
            name = m.name.encode()
            self.c.dep_names[self.c.dep_count] = <char *>malloc(len(name) + 1)
            if self.c.dep_names[self.c.dep_count] == NULL:
                raise MemoryError()
            memcpy(self.c.dep_names[self.c.dep_count], <char *>name, len(name) + 1)
            self.c.deps[self.c.dep_count] = NULL
            self.c.dep_count += 1
            self.c.deps[self.c.dep_count - 1] = self._compile_one(m.name, m.data)
        self.c.main = self._compile_one("main", modules[-1].data)

    cdef _check_imports(self, wasmtime_module_t *module, str module_name, dict user, dict dep_names):
        cdef wasm_importtype_vec_t imports
        cdef const wasm_name_t *mod_name
        cdef const wasm_name_t *field
        cdef const wasm_externtype_t *et
        cdef const wasm_functype_t *ft
        cdef const char *abi_params
        cdef const char *abi_results
        cdef size_t i
        wt.wasmtime_module_imports(module, &imports)
        try:
            for i in range(imports.size):
                mod_name = wt.wasm_importtype_module(imports.data[i])
                field = wt.wasm_importtype_name(imports.data[i])
                mod = (<char *>mod_name.data)[:mod_name.size].decode("utf-8", "replace")
                name = (<char *>field.data)[:field.size].decode("utf-8", "replace")
                et = wt.wasm_importtype_type(imports.data[i])
                where = f"module '{module_name}' imports {mod}::{name}"
                if mod in dep_names:
                    exports = dep_names[mod]
                    if name not in exports:
                        raise LinkError(f"{where}, but module '{mod}' has no export named '{name}'")
                    if exports[name] != _extern_text(et):
                        raise LinkError(f"{where} as {_extern_text(et)}, but module '{mod}' exports "
                                        f"{exports[name]}")
                    continue
                if wt.wasm_externtype_kind(et) != WASM_EXTERN_FUNC:
                    raise LinkError(f"{where}, which is not a function; only functions can be imported "
                                    f"from the host")
                ft = wt.wasm_externtype_as_functype_const(et)
                actual = _signature_text(ft)
                if mod == "extism:host/env":
                    name_b = name.encode()
                    if not env_import_signature(name_b, len(name_b), &abi_params, &abi_results):
                        raise LinkError(f"{where}: no such function in the Extism ABI")
                    expected = _abi_signature_text(abi_params.decode(), abi_results.decode())
                    if actual != expected:
                        raise LinkError(f"{where} with type {actual}, but the ABI's type is {expected}")
                elif mod in _WASI_MODULES:
                    if not self.wasi:
                        raise LinkError(f"{where}, but WASI is not enabled (pass wasi=True to grant it)")
                elif (mod, name) in user:
                    fn = user[(mod, name)]
                    expected = f"({_valtypes_text(fn.args)}) -> ({_valtypes_text(fn.returns)})"
                    if actual != expected:
                        raise LinkError(f"{where} with type {actual}, but the host function has type {expected}")
                else:
                    raise LinkError(f"{where} {actual}: no host function with that namespace and name "
                                    f"was given")
        finally:
            wt.wasm_importtype_vec_delete(&imports)

    cdef _define_functions(self):
        cdef char *message = NULL
        cdef wasm_functype_t *ft
        cdef wasmtime_error_t *error
        cdef _HostFunctionEntry entry
        if env_imports_define(self.c.linker, &message) != 0:
            raise LinkError(_take_message(message))
        if self.wasi:
            error = wt.wasmtime_linker_define_wasi(self.c.linker)
            if error != NULL:
                raise LinkError(f"cannot define WASI: {_take_wasmtime_error(error)}")
        for entry in self._entries:
            fn = entry.function
            ns, name = fn.namespace.encode(), fn.name.encode()
            if fn.namespace == "extism:host/env":
                raise LinkError(f"host function {entry.label}: the namespace extism:host/env is reserved for the ABI")
            ft = _functype(list(fn.args), list(fn.returns))
            error = wt.wasmtime_linker_define_func_unchecked(
                self.c.linker, ns, len(ns), name, len(name), ft, _host_trampoline, <void *>entry, NULL)
            wt.wasm_functype_delete(ft)
            if error != NULL:
                raise LinkError(f"host function {entry.label}: {_take_wasmtime_error(error)}")

    cdef _link(self, list modules):
        cdef char *message = NULL
        cdef size_t i
        self.c.linker = wt.wasmtime_linker_new(self._engine.engine)
        self._define_functions()
        user = {(f.namespace, f.name): f for f in self.functions}
        dep_names = {self.c.dep_names[i].decode(): _module_exports(self.c.deps[i]) for i in range(self.c.dep_count)}
        for i in range(self.c.dep_count):
            self._check_imports(self.c.deps[i], self.c.dep_names[i].decode(), user, dep_names)
        self._check_imports(self.c.main, "main", user, dep_names)
        if compiled_plugin_link(self.c, &message) != 0:
            raise LinkError(_take_message(message))
        self._callable = {}
        self._other_exports = {}
        for i in range(self.c.export_count):
            name = self.c.export_names[i].decode("utf-8", "replace")
            if self.c.export_shapes[i] == EXPORT_OTHER:
                self._other_exports[name] = i
            else:
                self._callable[name] = i

    def function_exists(self, str name) -> bool:
        """True when the main module exports a function with this name."""
        return name in self._callable or name in self._other_exports


# ---------------------------------------------------------------------------------------------
# Plugin instances
# ---------------------------------------------------------------------------------------------

cdef class CancelHandle:
    """Cancels the running call of one plugin, from any thread."""
    cdef Plugin plugin

    def cancel(self) -> bool:
        """Make the call in progress (if any) fail with CancelledError. Returns True."""
        if self.plugin.inst != NULL:
            with nogil:
                instance_cancel(self.plugin.inst)
        return True


cdef config_entry *_config_entries(dict config, list keep) except NULL:
    cdef config_entry *entries = <config_entry *>calloc(len(config) + 1, sizeof(config_entry))
    cdef Py_ssize_t i = 0
    if entries == NULL:
        raise MemoryError()
    for key, value in config.items():
        k, v = key.encode(), value.encode()
        keep.append(k)
        keep.append(v)
        entries[i].key = <uint8_t *>PyBytes_AS_STRING(k)
        entries[i].key_len = len(k)
        entries[i].value = <uint8_t *>PyBytes_AS_STRING(v)
        entries[i].value_len = len(v)
        i += 1
    return entries


cdef wasi_preopen *_preopens(dict allowed_paths, list keep) except NULL:
    cdef wasi_preopen *preopens = <wasi_preopen *>calloc(len(allowed_paths) + 1, sizeof(wasi_preopen))
    cdef Py_ssize_t i = 0
    if preopens == NULL:
        raise MemoryError()
    for host, guest in allowed_paths.items():
        read_only = host.startswith("ro:")
        host_path = host[3:] if read_only else host
        if not os.path.isdir(host_path):
            free(preopens)
            raise ManifestError(f"manifest.allowed_paths: host directory {host_path!r} does not exist")
        h, g = os.fsencode(host_path), guest.encode()
        keep.append(h)
        keep.append(g)
        preopens[i].host_path = h
        preopens[i].guest_path = g
        preopens[i].read_only = read_only
        i += 1
    return preopens


# ---------------------------------------------------------------------------------------------
# Outputs as views, and batches of calls
# ---------------------------------------------------------------------------------------------

cdef uint8_t _EMPTY[1]
_BATCH_SIZE = 1024


cdef class _OutputBuffer:
    """Exports one call's output, in place in kernel memory, to read-only memoryviews."""
    cdef Plugin plugin          # keeps the kernel memory alive while views exist
    cdef const uint8_t *data
    cdef uint64_t length
    cdef uint64_t end           # kernel offset one past the output
    cdef Py_ssize_t exports
    cdef object first_view

    def __getbuffer__(self, Py_buffer *buffer, int flags):
        if flags & PyBUF_WRITABLE:
            raise BufferError("plugin output views are read-only")
        PyBuffer_FillInfo(buffer, self, <void *>(self.data if self.length else _EMPTY), self.length, 1, flags)
        self.exports += 1

    def __releasebuffer__(self, Py_buffer *buffer):
        self.exports -= 1


cdef class _Batch:
    """The inputs, results and outputs of one batch of calls; run() needs no GIL."""
    cdef list items
    cdef size_t count
    cdef size_t done
    cdef const uint8_t **inputs
    cdef uint64_t *input_lengths
    cdef call_result *results_
    cdef uint64_t *output_offsets
    cdef uint8_t *arena          # every output, back to back
    cdef size_t arena_length
    cdef size_t arena_capacity

    def __cinit__(self, list items):
        cdef size_t i
        self.items = [_as_input_bytes(item) for item in items]
        self.count = len(self.items)
        self.inputs = <const uint8_t **>calloc(self.count + 1, sizeof(uint8_t *))
        self.input_lengths = <uint64_t *>calloc(self.count + 1, sizeof(uint64_t))
        self.results_ = <call_result *>calloc(self.count + 1, sizeof(call_result))
        self.output_offsets = <uint64_t *>calloc(self.count + 1, sizeof(uint64_t))
        if not (self.inputs and self.input_lengths and self.results_ and self.output_offsets):
            raise MemoryError()
        for i in range(self.count):
            data = self.items[i]
            self.inputs[i] = <const uint8_t *>PyBytes_AS_STRING(data)
            self.input_lengths[i] = PyBytes_GET_SIZE(data)

    def __dealloc__(self):
        cdef size_t i
        if self.results_ != NULL:
            for i in range(self.count):
                free(self.results_[i].message)
        free(self.inputs)
        free(self.input_lengths)
        free(self.results_)
        free(self.output_offsets)
        free(self.arena)

    cdef bint _keep_output(self, size_t i) noexcept nogil:
        cdef call_result *r = &self.results_[i]
        cdef size_t needed = self.arena_length + r.output_length
        cdef uint8_t *grown
        if needed > self.arena_capacity:
            grown = <uint8_t *>realloc(self.arena, needed * 2 + 64)
            if grown == NULL:
                return False
            self.arena = grown
            self.arena_capacity = needed * 2 + 64
        if r.output_length:
            memcpy(self.arena + self.arena_length, r.output, r.output_length)
        self.output_offsets[i] = self.arena_length
        self.arena_length = needed
        r.output = NULL  # kernel memory is reused by the next call
        return True

    cdef void run(self, plugin_instance *inst, size_t index, uint64_t timeout_ns,
                  bint return_exceptions) noexcept nogil:
        cdef size_t i
        for i in range(self.count):
            instance_call(inst, index, self.inputs[i], self.input_lengths[i], timeout_ns, 0, &self.results_[i])
            self.done = i + 1
            if self.results_[i].status == CALL_OK:
                if not self._keep_output(i):
                    self.results_[i].status = CALL_INPUT_TOO_LARGE  # out of host memory for outputs
                    self.results_[i].output_length = 0
            if self.results_[i].status != CALL_OK and not return_exceptions:
                return

    cdef list results(self, Plugin plugin, function_name, parse, bint return_exceptions):
        """The outputs (parsed) in input order; a failure raises, or fills its slot."""
        cdef size_t i
        cdef call_result *r
        out = []
        for i in range(self.done):
            r = &self.results_[i]
            if r.status == CALL_OK:
                data = PyBytes_FromStringAndSize(<const char *>self.arena + self.output_offsets[i], r.output_length)
                out.append(data if parse is bytes else memoryview(data) if parse is None else parse(data))
                continue
            error = plugin._call_error(function_name, r)
            r.message = NULL  # _call_error freed it
            if not return_exceptions:
                raise error
            out.append(error)
        return out


cdef bytes _as_input_bytes(item):
    """A call input as bytes: str is UTF-8 encoded, other buffers are copied once."""
    if PyBytes_CheckExact(item):
        return item
    if isinstance(item, str):
        return PyUnicode_AsUTF8String(item)
    return bytes(memoryview(item))


@cython.no_gc_clear
cdef class Plugin:
    """A plugin instance: call its exports by name, bytes in and bytes out.

    ``plugin`` may be wasm bytes, WAT text, a path to a .wasm/.wat file, a JSON manifest (str or
    bytes), a dict manifest, a Manifest, or a CompiledPlugin (then ``wasi`` and ``functions`` come
    from it). ``config`` is merged over the manifest's config. Not thread-safe: use one Plugin per
    thread.
    """
    cdef plugin_instance *inst
    cdef readonly CompiledPlugin compiled_plugin
    cdef dict _callable
    cdef object _id
    cdef object _host_context
    cdef uint64_t _timeout_ns
    cdef bint _busy
    cdef object _allowed_hosts
    cdef uint64_t _max_http_response_bytes
    cdef bint _http_response_headers
    cdef bint _log_wasi_output
    cdef bint _closed
    cdef list _exposed   # _OutputBuffer of outputs returned as views (parse=None)
    cdef CurrentPlugin _current_plugin  # what host functions receive (one per plugin)
    cdef object _pending_exception      # a KeyboardInterrupt/SystemExit raised in a callback
    cdef object __weakref__

    def __init__(self, plugin, bint wasi=False, config=None, functions=HOST_FN_REGISTRY, *,
                 bint http_response_headers=False, fuel=None, str wasi_stdio="inherit"):
        if isinstance(plugin, CompiledPlugin):
            compiled = <CompiledPlugin>plugin
            manifest = compiled.manifest
            if config is not None:
                manifest = coerce_source(manifest, config=config)
        else:
            compiled = CompiledPlugin(plugin, wasi, functions, config=config, fuel=fuel)
            manifest = compiled.manifest
        self.compiled_plugin = compiled
        self._callable = compiled._callable
        self._exposed = []
        self._current_plugin = CurrentPlugin._for(self)
        self._id = uuid.uuid4()
        self._timeout_ns = (manifest.timeout_ms or 0) * 1000000
        self._allowed_hosts = tuple(manifest.allowed_hosts or ())
        self._max_http_response_bytes = manifest.memory.effective_max_http_response_bytes
        self._http_response_headers = http_response_headers
        if wasi_stdio not in _WASI_STDIO_MODES:
            raise ManifestError(f"wasi_stdio must be one of {', '.join(_WASI_STDIO_MODES)}, got {wasi_stdio!r}")
        self._log_wasi_output = wasi_stdio == "log"
        self._instantiate(manifest, _WASI_STDIO_MODES[wasi_stdio])

    cdef _instantiate(self, manifest, int wasi_stdio):
        cdef list keep = []
        cdef char *message = NULL
        cdef config_entry *config = NULL
        cdef wasi_preopen *preopens = NULL
        memory = manifest.memory
        cdef uint64_t kernel_limit = 0
        cdef int64_t max_memory = -1
        if memory.max_pages is not None:
            kernel_limit = memory.max_pages * WASM_PAGE_SIZE
            max_memory = memory.max_pages * WASM_PAGE_SIZE
        allowed_paths = manifest.allowed_paths or {}
        if allowed_paths and not self.compiled_plugin.wasi:
            raise ManifestError("manifest.allowed_paths needs WASI: pass wasi=True to mount directories")
        try:
            config = _config_entries(dict(manifest.config), keep)
            preopens = _preopens(dict(allowed_paths), keep)
            self.inst = instance_new(self.compiled_plugin.c, <void *>self, kernel_limit, max_memory,
                                     memory.effective_max_var_bytes, self.compiled_plugin.fuel or 0,
                                     config, len(manifest.config),
                                     self.compiled_plugin.wasi, wasi_stdio, preopens, len(allowed_paths),
                                     &message)
        finally:
            free(config)
            free(preopens)
        if self.inst == NULL:
            text = _take_message(message)
            if "exceeds memory limits" in text:
                raise MemoryLimitError(
                    f"cannot instantiate the plugin: {text} (manifest.memory.max_pages = {memory.max_pages} "
                    f"covers the plugin's memories and the kernel memory, which takes at least 1 page)")
            raise Error(f"cannot instantiate the plugin: {text}")

    def __dealloc__(self):
        instance_delete(self.inst)
        self.inst = NULL

    @property
    def id(self):
        """A UUID identifying this instance (also on its log records as ``plugin_id``)."""
        return self._id

    def close(self) -> None:
        """Free the instance's native resources; later calls raise Error.

        Output views (``parse=None``) that are still exported keep the kernel memory alive until
        they are released; everything is freed now otherwise.
        """
        if self._busy:
            raise Error("cannot close a plugin while one of its calls is running")
        self._closed = True
        self._keep_exposed_outputs()
        if not self._exposed:
            instance_delete(self.inst)
            self.inst = NULL

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def cancel_handle(self):
        """A CancelHandle that cancels this plugin's running call from another thread."""
        cdef CancelHandle handle = CancelHandle.__new__(CancelHandle)
        handle.plugin = self
        return handle

    def function_exists(self, str name) -> bool:
        """True when the plugin exports a function with this name."""
        return self.compiled_plugin.function_exists(name)

    cdef size_t _begin(self, function_name) except? 0:
        """The export index for a call, after checking the plugin can take one now."""
        index_obj = self._callable.get(function_name)
        if index_obj is None:
            raise self._missing_export(function_name)
        if self.inst == NULL or self._closed:
            raise Error("plugin is closed")
        if self._busy:
            raise Error("plugin is already running a call (re-entrant or from another thread); "
                        "use one Plugin per thread")
        self._keep_exposed_outputs()
        return index_obj

    def call(self, function_name, data=b"", parse=bytes, host_context=None):
        """Call export ``function_name`` with ``data`` (str or any bytes-like object).

        Returns the output as bytes, or ``parse(output_bytes)``. ``parse=None`` returns a
        read-only memoryview onto kernel memory (no copy), valid until this plugin's next call:
        after that it raises ValueError, unless a view of it is still exported (then its bytes stay
        untouched). Raises a subclass of Error when the call fails; the plugin stays usable.
        """
        cdef Py_buffer view
        cdef call_result r
        cdef size_t index = self._begin(function_name)
        cdef const uint8_t *ptr
        cdef uint64_t n
        cdef bint have_view = False
        if PyUnicode_CheckExact(data) or isinstance(data, str):
            data = PyUnicode_AsUTF8String(data)
        if PyBytes_CheckExact(data):
            ptr = <const uint8_t *>PyBytes_AS_STRING(data)
            n = PyBytes_GET_SIZE(data)
        else:
            PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
            have_view = True
            ptr = <const uint8_t *>view.buf
            n = view.len
        self._busy = True
        self._host_context = host_context
        try:
            # Entered with the GIL held: a short call never pays for releasing it; a call that
            # runs past one ticker tick (~1 ms) releases it and we take it back here.
            instance_call(self.inst, index, ptr, n, self._timeout_ns, 1, &r)
            if self.inst.saved_thread != NULL:
                PyEval_RestoreThread(self.inst.saved_thread)
                self.inst.saved_thread = NULL
        finally:
            self._busy = False
            self._host_context = None
            if have_view:
                PyBuffer_Release(&view)
        if self._log_wasi_output:
            self._log_wasi_streams()
        if self._pending_exception is not None:
            exc, self._pending_exception = self._pending_exception, None
            free(r.message)
            raise exc
        if r.status != CALL_OK:
            raise self._call_error(function_name, &r)
        if parse is None and <ptrdiff_t>index != self.compiled_plugin.c.start_index:
            return self._expose_output(&r)
        out = PyBytes_FromStringAndSize(<const char *>r.output, r.output_length)
        if parse is bytes:
            return out
        if parse is None:  # after `_start` the next call replaces the store: a view would dangle
            return memoryview(out)
        return parse(out)

    cdef object _expose_output(self, call_result *r):
        cdef _OutputBuffer exporter = _OutputBuffer.__new__(_OutputBuffer)
        exporter.plugin = self
        exporter.data = r.output
        exporter.length = r.output_length
        exporter.end = (r.output - self.inst.kernel.base) + r.output_length if r.output_length else 0
        view = memoryview(exporter)
        exporter.first_view = view
        self._exposed.append(exporter)
        return view

    cdef _keep_exposed_outputs(self):
        """Before a call: invalidate the views of earlier outputs, except those still exported
        elsewhere (slices, numpy arrays): their bytes are kept out of this call's allocations."""
        cdef _OutputBuffer exporter
        cdef uint64_t keep = 0
        still_exported = []
        for exporter in self._exposed:
            try:
                exporter.first_view.release()
            except BufferError:  # something holds a buffer exported from the view itself
                pass
            if exporter.exports > 0:
                still_exported.append(exporter)
                keep = max(keep, exporter.end)
            else:
                exporter.first_view = None
        self._exposed = still_exported
        if self.inst != NULL:
            self.inst.kernel_keep = keep

    def call_many(self, function_name, inputs, parse=bytes, bint return_exceptions=False):
        """Call ``function_name`` once per item of ``inputs``; returns the list of outputs.

        The loop runs in C with the GIL released. A failure raises at the first failing item,
        or with ``return_exceptions=True`` takes that item's slot as the Error and goes on.
        """
        return list(self.iter_call(function_name, inputs, parse, return_exceptions))

    def iter_call(self, function_name, inputs, parse=bytes, bint return_exceptions=False):
        """Iterator form of :meth:`call_many`: runs the calls in batches and yields the outputs."""
        self._begin(function_name)  # fail fast, before the first batch
        batch = []
        for item in inputs:
            batch.append(item)
            if len(batch) == _BATCH_SIZE:
                yield from self._run_batch(function_name, batch, parse, return_exceptions)
                batch = []
        if batch:
            yield from self._run_batch(function_name, batch, parse, return_exceptions)

    cdef list _run_batch(self, function_name, list items, parse, bint return_exceptions):
        cdef size_t index = self._begin(function_name)
        cdef _Batch batch = _Batch(items)
        self._busy = True
        try:
            with nogil:
                batch.run(self.inst, index, self._timeout_ns, return_exceptions)
        finally:
            self._busy = False
        if self._log_wasi_output:
            self._log_wasi_streams()
        if self._pending_exception is not None:
            exc, self._pending_exception = self._pending_exception, None
            raise exc
        return batch.results(self, function_name, parse, return_exceptions)

    cdef _log_wasi_streams(self):
        """wasi_stdio="log": what the call wrote, stdout at INFO and stderr at WARNING, a record a line."""
        cdef size_t n
        cdef const uint8_t *data
        for stream, name, level in ((0, "stdout", logging.INFO), (1, "stderr", logging.WARNING)):
            data = instance_take_wasi_output(self.inst, stream, &n)
            if n == 0 or not logger.isEnabledFor(level):
                continue
            text = (<const char *>data)[:n].decode("utf-8", "replace")
            for line in text.splitlines():
                logger.log(level, line, extra={"plugin_id": str(self._id), "wasi_stream": name})

    cdef bytes _take_block(self, uint64_t offset):
        """The bytes of a block the plugin handed over (then freed: the host owns it), or None."""
        cdef kernel *k = self.inst.kernel
        cdef uint64_t length = kernel_length(k, offset)
        if length == 0:
            return None
        data = PyBytes_FromStringAndSize(<const char *>kernel_ptr(k, offset, length), length)
        kernel_free(k, offset)
        return data

    cdef wasm_trap_t *_http_request(self, uint64_t request, uint64_t body, uint64_t *response):
        cdef plugin_instance *inst = self.inst
        cdef uint64_t now
        try:
            from extism_fast import http
            request_json = self._take_block(request)
            body_bytes = self._take_block(body) if body else b""
            if request_json is None:
                return instance_fail(inst, FAILURE_TRAP, f"extism:host/env http_request: request offset "
                                                         f"{request} is not an allocated block".encode())
            now = ticker_now_ns()
            remaining = None  # the call's time left bounds the request
            if inst.deadline_ns:
                remaining = (inst.deadline_ns - now) / 1e9 if inst.deadline_ns > now else 0.0
            result = http.perform_request(request_json, body_bytes, allowed_hosts=self._allowed_hosts,
                                          max_response_bytes=self._max_http_response_bytes,
                                          timeout_s=remaining)
            inst.http_status = result.status
            if self._http_response_headers:
                headers = result.headers_json()
                instance_set_http_headers(inst, headers, len(headers))
            response[0] = kernel_alloc_bytes(inst.kernel, result.body, len(result.body)) if result.body else 0
            if result.body and response[0] == 0:
                return instance_fail(inst, FAILURE_LIMIT, f"extism:host/env http_request: the response body "
                                     f"({len(result.body)} bytes) does not fit in kernel memory".encode())
            return NULL
        except BaseException as exc:
            return self._http_failure(exc)

    cdef wasm_trap_t *_http_failure(self, exc):
        """Map an exception from http.perform_request to the failure the call reports."""
        if isinstance(exc, TimeoutError) and self._timeout_ns:
            self.inst.interrupt = INTERRUPT_TIMEOUT  # the call's own deadline ran out
        cdef failure_kind kind = FAILURE_HOST_CALL
        for cls, k in ((CapabilityError, FAILURE_DENIED), (MemoryLimitError, FAILURE_LIMIT)):
            if isinstance(exc, cls):
                kind = k
        self._keep_interrupt(exc)
        return instance_fail(self.inst, kind, f"extism:host/env http_request: {exc}".encode("utf-8", "replace"))

    cdef _keep_interrupt(self, exc):
        """KeyboardInterrupt / SystemExit inside a host callback: fail the call, re-raise after it."""
        if not isinstance(exc, Exception) and self._pending_exception is None:
            self._pending_exception = exc

    cdef _missing_export(self, name):
        other = self.compiled_plugin._other_exports
        if name in other:
            return CallError(f"export '{name}' cannot be called as a plugin function: plugin functions "
                             f"take no parameters and return i32 or nothing")
        if not isinstance(name, str):
            return TypeError(f"function name must be a str, got {type(name).__name__}")
        return FunctionNotFoundError(f"plugin has no function named '{name}'")

    cdef _call_error(self, name, call_result *r):
        message = _take_message(r.message) if r.message != NULL else ""
        status = r.status
        if status == CALL_PLUGIN_ERROR:
            return PluginError(message)
        if status == CALL_NONZERO:
            return CallError(f"plugin function '{name}' returned non-zero exit code {r.rc}")
        if status == CALL_TIMEOUT:
            return TimeoutError(f"plugin function '{name}' timed out after {self._timeout_ns // 1000000} ms "
                                f"(manifest.timeout_ms)")
        if status == CALL_CANCELLED:
            return CancelledError(f"plugin function '{name}' was cancelled")
        if status == CALL_OUT_OF_FUEL:
            return FuelExhaustedError(f"plugin function '{name}' ran out of fuel (its budget is "
                                      f"{self.compiled_plugin.fuel} instructions per call)")
        if status == CALL_INPUT_TOO_LARGE:
            return MemoryLimitError(f"input to '{name}' does not fit in kernel memory "
                                    f"(limit {self.inst.kernel.limit} bytes, manifest.memory.max_pages)")
        if status == CALL_EXIT:
            return CallError(f"plugin function '{name}' exited with code {r.rc}")
        if status == CALL_INSTANTIATE:
            return CallError(f"plugin function '{name}' could not start: {message}")
        if status == CALL_HOST_FAILURE:
            cls = {FAILURE_LIMIT: MemoryLimitError, FAILURE_HOST_FUNCTION: HostFunctionError,
                   FAILURE_DENIED: CapabilityError, FAILURE_HOST_CALL: CallError}.get(r.failure, TrapError)
            return cls(f"plugin function '{name}' failed: {message}")
        return TrapError(f"plugin function '{name}' trapped: {_trap_summary(message)}")
