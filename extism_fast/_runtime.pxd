# The runtime's extension types: their C attributes and cdef methods, declared once here so that
# every part (the .pxi files _runtime.pyx includes) sees every class whatever the include order.
# The .pxi files define the methods; attributes are only declared here. Each class's docstring,
# Python methods and method bodies are in the .pxi named after it (README, "Layout").
cimport cython
from libc.stdint cimport uint8_t, uint64_t, int64_t

from extism_fast.includes.wasmtime cimport *
from extism_fast.includes.kernel cimport *


cdef extern from "Python.h":
    object PyUnicode_DecodeFSDefault(const char *s)  # bytes in the filesystem encoding, as os.environ decodes
    # Declared with void* so the kernel's hook table can hold them without Python types.
    void *PyEval_SaveThread() nogil
    void PyEval_RestoreThread(void *tstate) nogil
    unsigned long PyThread_get_thread_ident() nogil  # Cython's own declaration needs the GIL
    # Cython's declarations (cpython.pystate) need the GIL; _gil_wanted holds it, as a hook.
    ctypedef struct PyThreadState
    ctypedef struct PyInterpreterState
    PyThreadState *PyThreadState_Get() nogil
    PyInterpreterState *PyThreadState_GetInterpreter(PyThreadState *tstate) nogil
    PyInterpreterState *PyInterpreterState_Head() nogil
    PyInterpreterState *PyInterpreterState_Next(PyInterpreterState *interp) nogil
    PyThreadState *PyInterpreterState_ThreadHead(PyInterpreterState *interp) nogil
    PyThreadState *PyThreadState_Next(PyThreadState *tstate) nogil


# _kernel_buffer.pxi
cdef class _DetachedStore:
    cdef wasmtime_store_t *store


# _arrow.pxi
cdef class _HeapBlock:
    cdef void *data
    cdef Py_ssize_t size


# _plugin.pxi
cdef class _PackedOptions:
    cdef instance_options *c


# _host_functions.pxi
cdef class _HostFunctionEntry:
    cdef object function
    cdef object f
    cdef tuple user_data
    cdef bytes param_types  # ValType values, one byte each: what the trampoline converts by
    cdef bytes result_types
    cdef tuple param_vals   # what each Val a call passes holds as its type (Val.t)
    cdef tuple result_vals
    cdef str label


# _compiled_plugin.pxi
cdef class _Compilation:
    cdef compiled_plugin *c


# _compiled_plugin.pxi
cdef class CompiledPlugin:
    cdef compiled_plugin *c  # the first compilation's (see _compilations)
    cdef object _source      # its Manifest, or the PlainSource standing for it (manifest/plain.py)
    cdef readonly bint wasi
    cdef readonly list functions
    cdef readonly object fuel
    cdef readonly bint interruptible
    cdef object _cache
    cdef list _entries
    cdef list _modules       # the loaded modules, for compiling them on another engine
    cdef list _defined_memories  # (bytes, defined by main) of the memories the modules define, read once
    cdef dict _compilations  # _engine_key -> _Compilation
    cdef dict _default_options  # environment -> options.PluginOptions of Plugin(compiled) with no option
    cdef dict _callable      # export name -> index, for () -> i32 and () -> ()
    cdef dict _other_exports  # export name -> index, for function exports of any other type
    cdef object __weakref__   # for the registry of unpickled plugins (extism_fast/runtime/pickling.py)
    cdef compiled_plugin *_compilation(self, engine_bundle *engine) except NULL
    cdef compiled_plugin *_unpooled(self, const compiled_plugin *source) except NULL
    cdef _Compilation _compile_for(self, engine_bundle *engine, const compiled_plugin *source)
    cdef _describe_modules(self, compile_request *request, list modules, list keys, list keep, list opened)
    cdef _describe_functions(self, compile_request *request, list keep)
    cdef _keep_cache_entries(self, engine_bundle *engine, compile_request *request, list modules, list keys)
    cdef _list_exports(self)


# _plugin.pxi
cdef class Plugin:
    cdef plugin_instance *inst
    cdef readonly CompiledPlugin compiled_plugin
    cdef const compiled_plugin *_c  # the compilation inst runs (owned by compiled_plugin)
    cdef readonly object _options   # options.PluginOptions: everything it runs under, resolved
    cdef bint _log_wasi_output      # _options.log_wasi_output (read after every call)
    cdef bint _dumps                # EXTISM_MEMDUMP or EXTISM_COREDUMP was set (_options)
    cdef bint _called               # a call has run: the instance has state of its own
    cdef object _http_cancel        # http.RequestCancel of the http_request in progress, or None
    cdef dict _callable
    cdef object _last_name          # the name _begin looked up last (a str), and its export index:
    cdef size_t _last_index         # a loop calling one export skips the dict lookup
    cdef object _id
    cdef object _host_context
    cdef bint _busy
    cdef bint _closed
    cdef list _exposed   # KernelBuffers of outputs (parse=None) and viewed host-function buffers (None: none yet)
    cdef list _host_buffers  # KernelBuffers handed to the running host function (None: none yet)
    cdef CurrentPlugin _current_plugin  # what host functions receive (one per plugin, made by the first)
    cdef object _pending_exception      # a KeyboardInterrupt/SystemExit raised in a callback
    cdef _Batch _batch                  # the batch _run is running, for _interrupt
    cdef object __weakref__
    cdef _instantiate(self)
    cdef _prepare(self, function_name)
    cdef _use_on_demand(self)
    cdef _use(self, const compiled_plugin *c)
    cdef inline _restore_thread(self):
        running_restore_gil(self.inst)
    cdef plugin_instance *_new_instance(self, char **message) except? NULL
    cdef const compiled_plugin *_compilation_in_use(self) except NULL
    cdef _make_interruptible(self)
    @cython.final
    cdef size_t _begin(self, function_name) except? 0
    @cython.final  # a direct C call on every call's path (no vtable)
    cdef int _finish_call(self, call_result *r) except -1
    cdef _write_dumps(self, call_status status)
    cdef object _expose_output(self, call_result *r)
    cdef _end_host_buffers(self)
    cdef _expose(self, KernelBuffer buf)
    @cython.final
    cdef _expire_buffers(self)
    cdef int _keep_store(self, wasmtime_store_t *store) noexcept
    cdef list _run_batch(self, function_name, list items, parse, bint return_exceptions)
    cdef _run(self, function_name, _Batch batch, bint return_exceptions)
    cdef _log_wasi_streams(self)
    cdef _keep_interrupt(self, exc)
    cdef _cancel_running(self)


# _plugin.pxi
cdef class CancelHandle:
    cdef Plugin plugin


# _current_plugin.pxi
cdef class CurrentPlugin:
    cdef void *owner  # the Plugin, borrowed; checked against the running call before any use
    @staticmethod
    cdef CurrentPlugin _for(Plugin plugin)
    cdef kernel *_kernel(self) except NULL


# _kernel_buffer.pxi
cdef class KernelBuffer:
    cdef Plugin plugin            # its plugin (listed in its _exposed while it may point into the store)
    cdef uint8_t *data
    cdef Py_ssize_t length
    cdef bint writable
    cdef bint valid
    cdef Py_ssize_t exports       # buffer-protocol views alive
    cdef bytes _copy              # what views of a read-only buffer see (made by the first one)
    cdef object _store            # the _DetachedStore `data` points into, once store_drop handed it over
    @staticmethod
    cdef KernelBuffer _over(Plugin plugin, uint8_t *data, uint64_t length, bint writable)
    cdef int _check(self) except -1
    cdef bint _invalidate(self)
    cdef Py_ssize_t _index(self, Py_ssize_t i) except -1
    cdef tuple _span(self, slice s)


# _batch.pxi
cdef class _Batch:
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
    cdef bint out_of_memory      # an output could not be kept: the batch stopped before it
    cdef bint pool_full          # an item found the instance pool full: the batch stopped before it
    cdef bint paused             # stopped after an item to finish its call (run's `pause`)
    cdef int stop                # atomic: run no more calls (Plugin._interrupt, Ctrl-C); see run()
    cdef bint watch_sigint       # on Python's main thread: Ctrl-C stops the batch (kernel_c/sigint.h)
    cdef uint64_t sigint_seen    # sigint_count() when the batch began
    cdef int _allocate(self, size_t count) except -1
    cdef bint _keep_output(self, size_t i) noexcept nogil
    cdef void run(self, plugin_instance *inst, size_t index, bint return_exceptions, int pause) noexcept nogil
    cdef check_memory(self, function_name)
    cdef list results(self, Plugin plugin, function_name, parse, bint return_exceptions)


# _arrow.pxi
cdef class _ArrowBatch(_Batch):
    cdef size_t length           # items, nulls included
    cdef int64_t *positions      # the item of each call; NULL when no item is null
    cdef int64_t first_null      # the first null item, or -1
    cdef int point_at(self, array, int width) except -1
    cdef int64_t position(self, size_t call)
    cdef raise_first_failure(self, Plugin plugin, function_name, int64_t first_index)
    cdef list list_output(self, Plugin plugin, function_name, parse, bint return_exceptions,
                          int64_t first_index)
    cdef arrow_output(self, Plugin plugin, function_name, out_type, bint return_exceptions, int64_t first_index)
    cdef _item_error(self, Plugin plugin, function_name, call_result *r, bint called, int64_t index)
