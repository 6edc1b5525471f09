# _host_functions.pxi - Host functions: the trampoline from wasm into Python.
# Part of extism_fast/_runtime.pyx (included there; one Cython module).

# ---------------------------------------------------------------------------------------------
# Host functions: the trampoline from wasm into Python
# ---------------------------------------------------------------------------------------------

# host/functions.py loads with the first host function entry, not with the package nor a plugin
# without host functions (tests/test_cold_start.py): _load_host_functions binds these then. Nothing
# reads them before: an entry is what links a host function, and a CurrentPlugin is usable only
# while one runs. The ValType Enum (enum: ~4 ms of a fresh process) loads with the first entry
# whose Vals show it: not a typed host function's.
cdef object _Val = None
cdef object _functions = None  # host/functions.py
# ValType values (Function.args holds them, as the official SDK's does), and the wasm kind of each.
cdef enum:
    _I32 = 0
    _I64 = 1
    _F32 = 2
    _F64 = 3
cdef tuple _VALTYPE_TO_KIND = (WASM_I32, WASM_I64, WASM_F32, WASM_F64, WASM_V128, WASM_FUNCREF, WASM_EXTERNREF)


cdef _load_host_functions():
    global _Val, _functions
    if _Val is not None:
        return
    from extism_fast.host import functions

    _functions = functions
    _Val = functions.Val  # last: the check above


cdef bytes _value_types(types, str label):
    """The ValType values of a signature (Function.args / returns): ints, or ValType members put
    there by the program; LinkError for any other entry or a type calls cannot pass."""
    values = []
    for t in types:
        value = _functions._member_value(t)
        if type(value) is not int or not 0 <= value < len(_VALTYPE_TO_KIND):
            raise LinkError(f"host function {label}: {t!r} is not a ValType value")
        if value > _F64:
            raise LinkError(f"host function {label}: value type {_functions._VALTYPE_NAMES[value]} is not "
                            f"supported (use I32, I64/PTR, F32 or F64)")
        values.append(value)
    return bytes(values)


cdef class _HostFunctionEntry:
    """What the trampoline needs for one Function: kept alive by its CompiledPlugin."""

    def __init__(self, function):
        _load_host_functions()
        self.function = function
        self.f = function.f
        self.user_data = tuple(function.user_data)
        self.label = f"{function.namespace}::{function.name}"
        self.param_types = _value_types(function.args, self.label)
        self.result_types = _value_types(function.returns, self.label)
        if isinstance(function, _functions.TypeInferredFunction):
            # Its Vals carry values to its converters only: their type stays the plain value.
            self.param_vals, self.result_vals = tuple(self.param_types), tuple(self.result_types)
        else:  # the function reads them: ValType members, as the official SDK passes
            valtype = _functions._load_valtype()
            self.param_vals = tuple(valtype(t) for t in self.param_types)
            self.result_vals = tuple(valtype(t) for t in self.result_types)


cdef object _raw_to_python(wasmtime_val_raw_t *raw, int t):
    if t == _I64:
        return raw.i64
    if t == _I32:
        return raw.i32
    if t == _F64:
        return raw.f64
    return raw.f32


cdef object _wrap_signed(object value, int bits):
    """Two's-complement wrap of any Python int into a signed `bits`-bit value (as wasm does)."""
    cdef object one = 1  # a Python int: a C shift by 32 or 64 would be undefined
    value = int(value) & ((one << bits) - 1)
    return value - (one << bits) if value >> (bits - 1) else value


cdef _python_to_raw(wasmtime_val_raw_t *raw, int t, object value):
    if t == _I64:
        raw.i64 = <int64_t>_wrap_signed(value, 64)
    elif t == _I32:
        raw.i32 = <int>_wrap_signed(value, 32)
    elif t == _F64:
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
    cdef const unsigned char *codes
    cdef plugin_instance *inst = current_instance
    cdef Plugin plugin
    try:
        plugin = <Plugin>instance_owner(inst)
        if plugin._current_plugin is None:  # made by the plugin's first host function call
            plugin._current_plugin = CurrentPlugin._for(plugin)
        codes = entry.param_types  # held by the entry; its length is the bytes' (a code may be 0)
        params = [_new_val(entry.param_vals[i], _raw_to_python(&args[i], codes[i]))
                  for i in range(len(entry.param_types))]
        results = [_new_val(t, None) for t in entry.result_vals]
        try:
            entry.f(plugin._current_plugin, params, results, *entry.user_data)
        finally:
            if plugin._host_buffers:
                plugin._end_host_buffers()
        codes = entry.result_types
        for i in range(len(entry.result_types)):
            value = results[i].value
            # A result left unset passes 0, as the official SDK does.
            _python_to_raw(&args[i], codes[i], 0 if value is None else value)
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
