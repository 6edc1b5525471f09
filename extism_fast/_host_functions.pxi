# _host_functions.pxi - Host functions: the trampoline from wasm into Python.
# Part of extism_fast/_runtime.pyx (included there; one Cython module).

# ---------------------------------------------------------------------------------------------
# Host functions: the trampoline from wasm into Python
# ---------------------------------------------------------------------------------------------

# host/functions.py (enum, for ValType) loads with the first host function entry, not with the
# package nor a plugin without host functions (tests/test_cold_start.py): _load_host_functions
# binds these then. Nothing reads them before: an entry is what links a host function, and a
# CurrentPlugin is usable only while one runs.
cdef object _Val = None
cdef object _I32 = None, _I64 = None, _F32 = None, _F64 = None  # the ValType members calls convert
cdef dict _VALTYPE_TO_KIND = None


cdef _load_host_functions():
    global _Val, _I32, _I64, _F32, _F64, _VALTYPE_TO_KIND
    if _Val is not None:
        return
    from extism_fast.host import functions

    ValType = functions.ValType
    _I32, _I64, _F32, _F64 = ValType.I32, ValType.I64, ValType.F32, ValType.F64
    _VALTYPE_TO_KIND = {ValType.I32: WASM_I32, ValType.I64: WASM_I64, ValType.F32: WASM_F32,
                        ValType.F64: WASM_F64, ValType.V128: WASM_V128,
                        ValType.FUNC_REF: WASM_FUNCREF, ValType.EXTERN_REF: WASM_EXTERNREF}
    _Val = functions.Val  # last: the check above


cdef class _HostFunctionEntry:
    """What the trampoline needs for one Function: kept alive by its CompiledPlugin."""

    def __init__(self, function):
        _load_host_functions()
        self.function = function
        self.f = function.f
        self.user_data = tuple(function.user_data)
        self.param_types = tuple(function.args)
        self.result_types = tuple(function.returns)
        self.label = f"{function.namespace}::{function.name}"
        for t in self.param_types + self.result_types:
            if t not in (_I32, _I64, _F32, _F64):
                raise LinkError(f"host function {self.label}: value type {t.name} is not supported "
                                f"(use I32, I64/PTR, F32 or F64)")


cdef object _raw_to_python(wasmtime_val_raw_t *raw, object t):
    if t is _I64:
        return raw.i64
    if t is _I32:
        return raw.i32
    if t is _F64:
        return raw.f64
    return raw.f32


cdef object _wrap_signed(object value, int bits):
    """Two's-complement wrap of any Python int into a signed `bits`-bit value (as wasm does)."""
    cdef object one = 1  # a Python int: a C shift by 32 or 64 would be undefined
    value = int(value) & ((one << bits) - 1)
    return value - (one << bits) if value >> (bits - 1) else value


cdef _python_to_raw(wasmtime_val_raw_t *raw, object t, object value):
    if t is _I64:
        raw.i64 = <int64_t>_wrap_signed(value, 64)
    elif t is _I32:
        raw.i32 = <int>_wrap_signed(value, 32)
    elif t is _F64:
        raw.f64 = float(value)
    else:
        raw.f32 = float(value)


cdef wasm_trap_t *_host_trampoline(void *env, wasmtime_caller_t *caller, wasmtime_val_raw_t *args,
                                   size_t nargs) noexcept nogil:
    cdef plugin_instance *inst = current_instance
    cdef wasm_trap_t *trap
    # The call released the GIL on this thread: take it back with that thread state (cheaper than
    # PyGILState_Ensure) and release it again for the rest of the call (running.h).
    if not running_restore_gil(inst):  # GIL held, or released by someone else
        with gil:
            trap = _run_host_function(<_HostFunctionEntry>env, args)
        call_host_function_returned(inst)  # a thread it started may want the GIL (call.h)
        return trap
    with gil:  # already held: only the nesting count changes
        trap = _run_host_function(<_HostFunctionEntry>env, args)
    running_release_gil(inst)
    return trap


cdef object _new_val(object t, object value):
    """Val(t, value) without running Val.__init__ as a Python frame (hot in host calls)."""
    val = _Val.__new__(_Val)
    val.t = t
    val.value = value
    return val


cdef wasm_trap_t *_run_host_function(_HostFunctionEntry entry, wasmtime_val_raw_t *args):
    cdef Py_ssize_t i
    cdef plugin_instance *inst = current_instance
    cdef Plugin plugin
    try:
        plugin = <Plugin>instance_owner(inst)
        if plugin._current_plugin is None:  # made by the plugin's first host function call
            plugin._current_plugin = CurrentPlugin._for(plugin)
        params = [_new_val(t, _raw_to_python(&args[i], t)) for i, t in enumerate(entry.param_types)]
        results = [_new_val(t, None) for t in entry.result_types]
        try:
            entry.f(plugin._current_plugin, params, results, *entry.user_data)
        finally:
            if plugin._host_buffers:
                plugin._end_host_buffers()
        for i, t in enumerate(entry.result_types):
            value = results[i].value
            # A result left unset passes 0, as the official SDK does.
            _python_to_raw(&args[i], t, 0 if value is None else value)
        return NULL
    except BaseException as exc:
        return _host_function_failed(inst, entry, exc)


cdef wasm_trap_t *_host_function_failed(plugin_instance *inst, _HostFunctionEntry entry, exc) noexcept:
    """Fail the call with HostFunctionError, whatever the exception does (a __str__ that raises,
    a RecursionError that logging itself hits): no failure may be reported as success."""
    try:
        (<Plugin>instance_owner(inst))._keep_interrupt(exc)
        logger.error("host function %s raised", entry.label, exc_info=exc)
    except BaseException:
        pass
    try:
        text = f"{type(exc).__name__}: {exc}"
    except BaseException:
        text = f"{type(exc).__name__} (its message could not be formatted)"
    try:
        message = f"host function {entry.label} raised {text}".encode("utf-8", "replace")
    except BaseException:  # out of memory or recursion depth: still a failure, with a fixed text
        message = b"a host function raised an exception"
    return env_imports_fail(inst, FAILURE_HOST_FUNCTION, message)
