# _call_errors.pxi - The error mapping: a failed call's call_status / failure_kind (call.h) to the
# exception class and message every call path raises (Plugin.call, call_many / iter_call, Arrow;
# acall and PluginPool.map through them). Part of extism_fast/_runtime.pyx (included there).


cdef _missing_export(Plugin plugin, name):
    """The error of a call to a function the plugin cannot run."""
    other = plugin.compiled_plugin._other_exports
    if name in other:
        return CallError(f"export '{name}' cannot be called as a plugin function: plugin functions "
                         f"take no parameters and return i32 or nothing")
    if not isinstance(name, str):
        return TypeError(f"function name must be a str, got {type(name).__name__}")
    return function_not_found(name, plugin._callable)


cdef _call_error(Plugin plugin, name, call_result *r):
    """The exception of a failed call (r.status != CALL_OK), by its call_status and failure_kind; its
    message is taken (freed, r.message = NULL). The one mapping: Plugin.call, batches and Arrow use it.
    A signal that arrived during the call has its Python handler run first: Ctrl-C, which cancels
    a call on the main thread (kernel_c/sigint.h), raises KeyboardInterrupt here instead."""
    message = _take_message(r.message) if r.message != NULL else ""
    r.message = NULL
    PyErr_CheckSignals()
    status = r.status
    if status == CALL_PLUGIN_ERROR:
        return PluginError(message)
    if status == CALL_NONZERO:
        return CallError(f"plugin function '{name}' returned non-zero exit code {r.rc}")
    if status == CALL_TIMEOUT:
        return TimeoutError(f"plugin function '{name}' timed out after {plugin._options.settings.timeout_ns // 1000000} ms "
                            f"(manifest.timeout_ms)")
    if status == CALL_CANCELLED:
        return CancelledError(f"plugin function '{name}' was cancelled")
    if status == CALL_OUT_OF_FUEL:
        return FuelExhaustedError(f"plugin function '{name}' ran out of fuel (its budget is "
                                  f"{plugin.compiled_plugin.fuel} instructions per call)")
    if status == CALL_INPUT_TOO_LARGE:
        return MemoryLimitError(f"input to '{name}' does not fit in kernel memory ({_alloc_failure(plugin)})")
    if status == CALL_EXIT:
        return CallError(f"plugin function '{name}' exited with code {r.rc}")
    if status == CALL_INSTANTIATE and r.failure == FAILURE_LIMIT:
        return MemoryLimitError(
            f"cannot instantiate the plugin for '{name}': {message} (manifest.memory.max_pages = "
            f"{plugin.compiled_plugin.manifest.memory.max_pages}, the budget of all its memories)")
    if status in (CALL_INSTANTIATE, CALL_POOL_EXHAUSTED):
        return CallError(f"plugin function '{name}' could not start: {_trap_summary(message)}")
    if status == CALL_HOST_FAILURE:
        cls = {FAILURE_LIMIT: MemoryLimitError, FAILURE_HOST_FUNCTION: HostFunctionError,
               FAILURE_DENIED: CapabilityError, FAILURE_HOST_CALL: CallError}.get(r.failure, TrapError)
        return cls(f"plugin function '{name}' failed: {message}")
    cause, newline, trace = _trap_summary(message).partition("\n")
    if instance_budget(plugin.inst).limit >= 0:  # a memory.grow past the budget is refused, and plugins trap on that
        cause = f"{cause} ({_budget_note(plugin)})"
    return TrapError(f"plugin function '{name}' trapped: {cause}{newline}{trace}")


cdef str _alloc_failure(Plugin plugin):
    """Why the kernel could not allocate: the memory budget refused to grow it, or its limit."""
    if instance_budget(plugin.inst).refused:
        return _budget_note(plugin)
    return f"kernel memory limit reached ({instance_kernel(plugin.inst).limit} bytes)"


cdef str _budget_note(Plugin plugin):
    """What is left of manifest.memory.max_pages (memory_budget.h)."""
    cdef char note[160]
    memory_budget_describe(instance_budget(plugin.inst), note, sizeof(note))
    return note.decode()


def _trap_summary(message):
    """wasmtime's trap text puts the cause last ("Caused by: ..."): lead with it, keep the trace."""
    # Formatting only, never classification (that uses trap codes and call_result fields): the
    # C API gives an error's text and no chain of causes, so the text is the only place they are.
    head, sep, cause = message.partition("Caused by:")
    if not sep:
        return message
    # A chained cause is listed as "0: outer", "1: inner": join it into one line.
    lines = [line.strip() for line in cause.strip().splitlines() if line.strip()]
    reasons = [line.split(":", 1)[1].strip() if line.split(":", 1)[0].isdigit() else line for line in lines]
    return f"{': '.join(reasons)}\n{head.strip()}"
