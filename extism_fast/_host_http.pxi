# _host_http.pxi - The http_request host service: extism:host/env http_request served for a
# Plugin's running call (the policy, allowed_hosts and the response cap, and the request itself
# live in extism_fast/host/http.py). Part of extism_fast/_runtime.pyx (included there).


cdef wasm_trap_t *_http_request_hook(void *owner, uint64_t request, uint64_t body,
                                     uint64_t *response) noexcept nogil:
    """running_hooks.http_request (running.h): called by the import without the GIL."""
    with gil:
        return _serve_http_request(<Plugin>owner, request, body, response)


cdef bytes _take_block(Plugin plugin, uint64_t offset):
    """The bytes of a block the plugin handed over (then freed: the host owns it), or None."""
    cdef kernel *k = instance_kernel(plugin.inst)
    cdef uint64_t length = kernel_length(k, offset)
    if length == 0:
        return None
    data = PyBytes_FromStringAndSize(<const char *>kernel_ptr(k, offset, length), length)
    kernel_free(k, offset)
    return data


cdef wasm_trap_t *_serve_http_request(Plugin plugin, uint64_t request, uint64_t body, uint64_t *response):
    """extism:host/env http_request for `plugin`'s running call (http.py performs it, within the
    options' allowed_hosts and response cap and the call's time left; CancelHandle aborts it)."""
    cdef plugin_instance *inst = plugin.inst
    options = plugin._options
    cdef uint64_t now
    try:
        from extism_fast.host import http
        request_json = _take_block(plugin, request)
        body_bytes = _take_block(plugin, body) if body else b""
        if request_json is None:
            return env_imports_fail(inst, FAILURE_TRAP, f"extism:host/env http_request: request offset "
                                                     f"{request} is not an allocated block".encode())
        now = ticker_now_ns()
        remaining = None  # the call's time left bounds the request
        deadline = running_deadline_ns(inst)
        if deadline:
            remaining = (deadline - now) / 1e9 if deadline > now else 0.0
        # CancelHandle.cancel sets the flag, then cancels this token: one of them is seen.
        plugin._http_cancel = http.RequestCancel()
        if running_cancel_requested(inst):
            plugin._http_cancel.cancel()
        try:
            result = http.perform_request(request_json, body_bytes, allowed_hosts=options.allowed_hosts,
                                          max_response_bytes=options.max_http_response_bytes,
                                          timeout_s=remaining, cancel=plugin._http_cancel)
        finally:
            plugin._http_cancel = None
        running_set_http_status(inst, result.status)
        if options.http_response_headers:
            headers = result.headers_json()
            running_set_http_headers(inst, headers, len(headers))
        response[0] = kernel_alloc_bytes(instance_kernel(inst), result.body, len(result.body)) if result.body else 0
        if result.body and response[0] == 0:
            return env_imports_fail(inst, FAILURE_LIMIT, f"extism:host/env http_request: the response body "
                                 f"({len(result.body)} bytes) does not fit in kernel memory "
                                 f"({_alloc_failure(plugin)})".encode())
        return NULL
    except BaseException as exc:
        return _http_failure(plugin, exc)


cdef wasm_trap_t *_http_failure(Plugin plugin, exc):
    """Map an exception from http.perform_request to the failure the call reports."""
    if isinstance(exc, TimeoutError) and plugin._options.settings.timeout_ns:
        running_interrupted(plugin.inst, INTERRUPT_TIMEOUT)  # the call's own deadline ran out
    elif isinstance(exc, CancelledError):
        running_interrupted(plugin.inst, INTERRUPT_CANCEL)
    cdef failure_kind kind = FAILURE_HOST_CALL
    for cls, k in ((CapabilityError, FAILURE_DENIED), (MemoryLimitError, FAILURE_LIMIT)):
        if isinstance(exc, cls):
            kind = k
    plugin._keep_interrupt(exc)
    return env_imports_fail(plugin.inst, kind, f"extism:host/env http_request: {exc}".encode("utf-8", "replace"))
