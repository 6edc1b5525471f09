# _plugin.pxi - Plugin: instances, calls, errors, output views, CancelHandle.
# Part of extism_fast/_runtime.pyx (included there; one Cython module).

# ---------------------------------------------------------------------------------------------
# Plugin instances
# ---------------------------------------------------------------------------------------------

cdef class CancelHandle:
    """Cancels the running call of one plugin, from any thread."""

    def cancel(self) -> bool:
        """Make the call in progress (if any) fail with CancelledError. Returns True."""
        # With the GIL held throughout: close() (which frees inst) needs it too, so inst cannot
        # be freed between the check and the cancel.
        if self.plugin.inst != NULL:
            running_cancel(self.plugin.inst)
            request = self.plugin._http_cancel  # an http_request in progress: abort it too
            if request is not None:
                request.cancel()
        return True


cdef kv_entry *_config_entries(dict config, list keep) except NULL:
    cdef kv_entry *entries = <kv_entry *>calloc(len(config) + 1, sizeof(kv_entry))
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



def _wasi_strings(wasi_env, wasi_args, bint wasi):
    """``wasi_env`` / ``wasi_args`` as the C strings WASI gets: ([name, value, ...], [arg, ...]).
    Without WASI they are ignored with a warning, as allowed_paths is. Values never appear in
    messages (an environment often carries secrets)."""
    if wasi_env is None and wasi_args is None:
        return [], []
    if wasi_env is not None and not isinstance(wasi_env, dict):
        raise TypeError(f"wasi_env must be a dict of str to str, got {type(wasi_env).__name__}")
    if wasi_args is not None and (isinstance(wasi_args, (str, bytes)) or not isinstance(wasi_args, (list, tuple))):
        raise TypeError(f"wasi_args must be a list of str, got {type(wasi_args).__name__}")
    env, args = [], []
    for name, value in (wasi_env or {}).items():
        if not isinstance(name, str) or not name or "=" in name or "\0" in name:
            raise ManifestError(f"wasi_env: invalid variable name {name!r} (a non-empty str without '=' or NUL)")
        if not isinstance(value, str) or "\0" in value:
            raise ManifestError(f"wasi_env[{name!r}]: the value must be a str without NUL "
                                f"(got {type(value).__name__})")
        env += [_utf8(name, "wasi_env"), _utf8(value, f"wasi_env[{name!r}]")]
    for i, arg in enumerate(wasi_args or ()):
        if not isinstance(arg, str) or "\0" in arg:
            raise ManifestError(f"wasi_args[{i}]: must be a str without NUL (got {type(arg).__name__})")
        args.append(_utf8(arg, f"wasi_args[{i}]"))
    if not wasi:
        logger.warning("extism_fast: wasi_env/wasi_args are ignored: WASI is not enabled (pass wasi=True)")
        return [], []
    return env, args


cdef bytes _utf8(str text, str field):
    try:
        return text.encode()
    except UnicodeEncodeError:
        raise ManifestError(f"{field}: not encodable as UTF-8 (a lone surrogate)") from None


cdef const char **_c_strings(list items, list keep) except NULL:
    """A calloc'ed array of pointers into ``items`` (bytes, kept alive by ``keep``)."""
    cdef const char **out = <const char **>calloc(len(items) + 1, sizeof(char *))
    if out == NULL:
        raise MemoryError()
    for i, item in enumerate(items):
        keep.append(item)
        out[i] = PyBytes_AS_STRING(item)
    return out


def _check_compiled_options(CompiledPlugin compiled, wasi, functions, fuel):
    """Plugin(compiled, ...): options that belong to the compilation must agree with it (else the
    fuel budget, WASI or host functions asked for would be silently dropped)."""
    if fuel is not None and fuel != compiled.fuel:
        raise ManifestError(f"fuel={fuel!r} conflicts with the CompiledPlugin (fuel={compiled.fuel!r}): "
                            f"pass fuel to CompiledPlugin")
    if wasi and not compiled.wasi:
        raise ManifestError("wasi=True conflicts with the CompiledPlugin (compiled without WASI): "
                            "pass wasi=True to CompiledPlugin")
    # functions=[] is what programs for the official SDK pass everywhere (it ignores the argument
    # with a CompiledPlugin): only host functions actually given must match.
    if functions is not HOST_FN_REGISTRY and functions:
        given = {(f.namespace, f.name, f.f) for f in functions}
        if given != {(f.namespace, f.name, f.f) for f in compiled.functions}:
            raise ManifestError("functions=... conflicts with the CompiledPlugin's host functions: "
                                "pass them to CompiledPlugin")


@cython.no_gc_clear
cdef class Plugin:
    """A plugin instance: call its exports by name, bytes in and bytes out.

    ``plugin`` may be wasm bytes, WAT text, a path to a .wasm/.wat file or to a manifest file, a
    JSON or TOML manifest (str or bytes), a dict manifest, a Manifest, or a CompiledPlugin (then
    ``wasi`` and ``functions`` come from it). ``config`` is merged over the manifest's config (a
    None value removes the key). ``wasi_stdio``: "inherit", "log" or "discard"; None (the default)
    inherits when EXTISM_ENABLE_WASI_OUTPUT is set, else discards. ``interruptible``: see
    CompiledPlugin (on unless ``False``). ``strict=True`` (default: the EXTISM_FAST_STRICT
    environment variable) makes kernel accesses the official runtime quietly ignores fail the call
    with a message naming the function, the offset and the bounds: a debugging aid for plugin
    authors. The modules are instantiated by the first call, which raises what instantiation fails
    with. Not thread-safe: use one Plugin per thread.
    """

    def __init__(self, plugin, bint wasi=False, config=None, functions=HOST_FN_REGISTRY, *,
                 bint http_response_headers=False, fuel=None, wasi_stdio=None, interruptible=None,
                 strict=None, wasi_env=None, wasi_args=None, logger=None):
        if self.compiled_plugin is not None:
            raise Error("Plugin.__init__ has already run on this object: create a new Plugin")
        if isinstance(plugin, CompiledPlugin):
            compiled = <CompiledPlugin>plugin
            if compiled.c == NULL:
                raise Error("the CompiledPlugin was not initialized (a subclass must call "
                            "super().__init__())")
            _check_compiled_options(compiled, wasi, functions, fuel)
            manifest = compiled.manifest
            if config is not None:
                manifest = coerce_source(manifest, config=config)
        else:
            compiled = CompiledPlugin(plugin, wasi, functions, config=config, fuel=fuel,
                                      interruptible=interruptible)
            manifest = compiled.manifest
        self.compiled_plugin = compiled
        self._c = compiled.c
        if interruptible is not None and _resolve_interruptible(manifest, interruptible) != compiled.interruptible:
            self._c = compiled._compilation(_engine_for(compiled.fuel is not None, interruptible))
        self._callable = compiled._callable
        self._exposed = []
        self._host_buffers = []
        self._current_plugin = CurrentPlugin._for(self)
        # timeout_ms is at most U64_MAX (the manifest checks it); in ns that may not fit: clamp. 0 or None: no deadline.
        self._timeout_ns = min((manifest.timeout_ms or 0) * 1000000, U64_MAX)
        self._allowed_hosts = tuple(manifest.allowed_hosts or ())
        self._max_http_response_bytes = manifest.memory.effective_max_http_response_bytes
        self._http_response_headers = http_response_headers
        wasi_stdio = _wasi_stdio_mode(wasi_stdio)
        self._log_wasi_output = wasi_stdio == "log"
        self._manifest = manifest
        self._wasi_stdio = _WASI_STDIO_MODES[wasi_stdio]
        self._strict = _strict_from_environment() if strict is None else bool(strict)
        if logger is not None and not isinstance(logger, logging.Logger):
            raise TypeError(f"logger must be a logging.Logger, got {type(logger).__name__}")
        self._logger = logger
        self._wasi_env, self._wasi_args = _wasi_strings(wasi_env, wasi_args, compiled.wasi)
        # EXTISM_MEMDUMP / EXTISM_COREDUMP as set now (see debug_dumps); empty means unset
        self._memdump = _environ(b"EXTISM_MEMDUMP") or None
        self._coredump = _environ(b"EXTISM_COREDUMP") or None
        self._instantiate()

    cdef _instantiate(self):
        cdef char *message = NULL
        self.inst = self._new_instance(&message)
        if self.inst == NULL:
            raise Error(f"cannot create the plugin instance: {_take_message(message)}")

    cdef _prepare(self, function_name):
        """Instantiate the modules before a call that would (see instance_new); when the instance
        pool is full, on the on-demand compilation instead."""
        cdef call_result r
        call_prepare(self.inst, self._timeout_ns, 1, &r)
        self._restore_thread()
        if r.status == CALL_POOL_EXHAUSTED:
            free(r.message)
            self._use(self.compiled_plugin._unpooled(self._c))
            call_prepare(self.inst, self._timeout_ns, 1, &r)
            self._restore_thread()
        if r.status != CALL_OK:
            raise self._call_error(function_name, &r)

    cdef _use(self, const compiled_plugin *c):
        if instance_use_compiled(self.inst, c) != 0:
            raise Error("internal error: cannot switch the compilation of an instantiated plugin")
        self._c = c

    cdef plugin_instance *_new_instance(self, char **message) except? NULL:
        cdef list keep = []
        cdef instance_options options
        cdef plugin_instance *inst
        manifest = self._manifest
        memory = manifest.memory
        memset(&options, 0, sizeof(options))
        options.max_memory_bytes = -1
        if memory.max_pages is not None:  # one budget for all the memories, the kernel's included
            options.max_memory_bytes = memory.max_pages * WASM_PAGE_SIZE
        options.max_var_bytes = memory.effective_max_var_bytes
        options.max_table_elements = memory.effective_max_table_elements
        options.fuel = self.compiled_plugin.fuel or 0
        options.wasi = self.compiled_plugin.wasi
        options.wasi_stdio = self._wasi_stdio
        options.strict = self._strict
        # Without WASI, allowed_paths is ignored (CompiledPlugin logged it), as in the official runtime.
        allowed_paths = (manifest.allowed_paths or {}) if self.compiled_plugin.wasi else {}
        try:
            options.config = _config_entries(dict(manifest.config), keep)
            options.config_count = len(manifest.config)
            options.preopens = _preopens(dict(allowed_paths), keep)
            options.preopen_count = len(allowed_paths)
            options.wasi_env = _c_strings(self._wasi_env, keep)
            options.wasi_env_count = len(self._wasi_env) // 2
            options.wasi_args = _c_strings(self._wasi_args, keep)
            options.wasi_arg_count = len(self._wasi_args)
            inst = instance_new(self._c, <void *>self, &options, message)
        finally:
            free(<void *>options.config)
            free(<void *>options.preopens)
            free(<void *>options.wasi_env)
            free(<void *>options.wasi_args)
        return inst

    def __dealloc__(self):
        instance_delete(self.inst)
        self.inst = NULL

    def __del__(self):
        """Free the instance now, as the official SDK's ``__del__`` (programs call it
        explicitly); the same as ``close()``, except that it never raises."""
        if self.inst != NULL and self._exposed is not None and not self._busy:  # initialized, idle
            self.close()

    cdef const compiled_plugin *_compilation_in_use(self) except NULL:
        if self._c == NULL:
            raise Error("Plugin was not initialized (a subclass must call super().__init__())")
        return self._c

    @property
    def interruptible(self) -> bool:
        """Whether calls can be timed out and cancelled (compiled with epoch interruption)."""
        return bool(self._compilation_in_use().bundle.flags & ENGINE_EPOCH)

    @property
    def strict(self) -> bool:
        """Whether bad kernel accesses fail the call (see the class docstring)."""
        return self._strict

    @property
    def fuel_consumed(self):
        """The fuel (instructions) the last call of a metered plugin (``fuel=N``) used, its
        startup functions not included; None for an unmetered plugin or before its first call."""
        if self.inst == NULL or instance_fuel(self.inst) == 0 or not self._called:
            return None
        return instance_fuel_consumed(self.inst)

    def reset(self, *, vars: bool = False) -> bool:
        """Free everything the plugin's calls left in kernel memory (the last output, error and
        every block), as the official ``Plugin::reset``; the wasm instance is kept, and so are the
        vars unless ``vars=True`` (then they are cleared too). Output views (``parse=None``) of
        earlier calls expire. Returns True (the official C API's ``extism_plugin_reset`` answer);
        raises Error during a call or after close()."""
        if self.inst == NULL or self._closed:
            raise Error("plugin is closed")
        if self._busy:
            raise Error("cannot reset a plugin while one of its calls is running")
        self._expire_buffers()
        store_reset_kernel(self.inst)
        if vars:
            instance_clear_vars(self.inst)
        return True

    @property
    def _pooled(self) -> bool:
        """Whether the instance runs on a pooling engine (for tests and diagnostics)."""
        return self._compilation_in_use().bundle.pool_instances != 0

    @property
    def id(self):
        """A UUID identifying this instance (also on its log records as ``plugin_id``)."""
        if self._id is None:  # made on first use: uuid4 costs more than the rest of Plugin()
            self._id = uuid.uuid4()
        return self._id

    def close(self) -> None:
        """Free the instance's native resources; later calls raise Error.

        Output views (``parse=None``) that are still exported keep the kernel memory alive until
        they are released; everything is freed now otherwise.
        """
        if self._busy:
            raise Error("cannot close a plugin while one of its calls is running")
        self._closed = True
        self._expire_buffers()
        if not self._exposed:
            instance_delete(self.inst)
            self.inst = NULL

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def cancel_handle(self):
        """A CancelHandle that cancels this plugin's running call from another thread.

        A plugin created with ``interruptible=False`` is moved to an interruptible compilation
        first, which is only possible before its first call (its state would be lost); after that
        this raises Error.
        """
        if not (self._compilation_in_use().bundle.flags & ENGINE_EPOCH):
            self._make_interruptible()
        cdef CancelHandle handle = CancelHandle.__new__(CancelHandle)
        handle.plugin = self
        return handle

    cdef _make_interruptible(self):
        if self._closed or self.inst == NULL:
            raise Error("plugin is closed")
        if self._called:  # set by every call before it runs: no store exists yet otherwise
            raise Error("cancel_handle(): this plugin was created with interruptible=False and has already "
                        "been called; request the handle before the first call, or drop interruptible=False")
        self._use(self.compiled_plugin._compilation(_engine_for(False, True)))

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
        self._expire_buffers()
        if self._exposed and instance_needs_store(self.inst):
            self._detach_store()
        self._called = True
        return index_obj

    def call(self, function_name, data=b"", parse=bytes, host_context=None):
        """Call export ``function_name`` with ``data`` (str or any bytes-like object).

        Returns the output as bytes, or ``parse(output_bytes)``. ``parse=None`` returns a
        read-only KernelBuffer onto kernel memory (no copy, the official SDK's buffer semantics),
        valid until this plugin's next call: after that it raises ValueError; a memoryview taken
        from it before then keeps its bytes untouched. Raises a subclass of Error when the call
        fails; the plugin stays usable.
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
            if instance_needs_store(self.inst):
                self._prepare(function_name)
            # Entered with the GIL held: a short call never pays for releasing it; a call that
            # runs past one ticker tick (~1 ms) releases it and we take it back here.
            call_run(self.inst, index, ptr, n, self._timeout_ns, 1, &r)
            self._restore_thread()
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
            if self._memdump is not None or self._coredump is not None:
                self._write_dumps(r.status)
            raise self._call_error(function_name, &r)
        if parse is None:
            return self._expose_output(&r)
        return parse_output(PyBytes_FromStringAndSize(<const char *>r.output, r.output_length), parse)

    cdef _write_dumps(self, call_status status):
        """EXTISM_MEMDUMP after any failed call, EXTISM_COREDUMP after a trap (debug_dumps.py)."""
        cdef size_t n = 0
        cdef const uint8_t *kernel_bytes = store_kernel_memory(self.inst, &n)
        if kernel_bytes == NULL:
            return  # instantiation failed: no memory to dump
        kernel_memory = PyBytes_FromStringAndSize(<const char *>kernel_bytes, n)
        if self._memdump is not None:
            write_dump(self._memdump, kernel_memory, "memory dump")
        if self._coredump is not None and status in (CALL_TRAP, CALL_OUT_OF_FUEL):
            memories = [kernel_memory]
            main_bytes = store_main_memory(self.inst, &n)
            if main_bytes != NULL:
                memories.insert(0, PyBytes_FromStringAndSize(<const char *>main_bytes, n))
            write_dump(self._coredump, coredump(memories), "core dump")

    cdef object _expose_output(self, call_result *r):
        buf = KernelBuffer._over(self, <uint8_t *>r.output, r.output_length, False)
        self._exposed.append(buf)
        return buf

    cdef _end_host_buffers(self):
        """A host function returned: its buffers stop serving; the bytes of those still viewed
        (memoryviews taken from them) are kept out of later calls' allocations."""
        cdef KernelBuffer buf
        for buf in self._host_buffers:
            if buf._invalidate():
                self._exposed.append(buf)
        self._host_buffers.clear()

    cdef _expire_buffers(self):
        """Before a call or close: earlier outputs' buffers and host-function buffers stop
        serving; those still viewed in place (memoryviews of host-function buffers) stay listed,
        so their memory outlives them (close() then leaves the instance to the last of them)."""
        cdef KernelBuffer buf
        self._exposed = [buf for buf in self._exposed if buf._invalidate()]

    cdef _detach_store(self):
        """The next call replaces the store (after `_start`): hand the old one, and its memories,
        to the buffers still viewed in place."""
        cdef KernelBuffer buf
        cdef _DetachedStore detached = _DetachedStore.__new__(_DetachedStore)
        detached.store = store_detach(self.inst)
        for buf in self._exposed:
            buf._store = detached
        self._exposed = []

    def acall(self, function_name, data=b"", parse=bytes, host_context=None):
        """``await plugin.acall(...)``: ``call`` on a worker thread, so the event loop keeps
        serving; concurrent ``acall``s of this plugin run one after the other. Cancelling the
        awaiting task cancels the call. See extism_fast/aio.py."""
        from extism_fast import aio
        return aio.acall(self, function_name, data, parse, host_context)

    def __reduce__(self):
        raise TypeError("cannot pickle a Plugin (a live instance with its own memory): pickle the "
                        "CompiledPlugin (plugin.compiled_plugin) and create Plugins from it")

    def call_many(self, function_name, inputs, parse=bytes, bint return_exceptions=False, output=None):
        """Call ``function_name`` once per item of ``inputs``; returns the list of outputs.

        The loop runs in C with the GIL released. A failure raises at the first failing item,
        or with ``return_exceptions=True`` takes that item's slot as the Error and goes on.

        ``inputs`` may also be a pyarrow Array or ChunkedArray of binary/string items (read in
        place), and ``output="arrow"`` / ``"arrow_string"`` returns a pyarrow array instead of a
        list: see :mod:`extism_fast.arrow` (needs ``pip install 'extism_fast[arrow]'``).
        """
        if output is None and (type(inputs) is list or not _arrow_py().is_arrow(inputs)):
            return list(self.iter_call(function_name, inputs, parse, return_exceptions))
        return _arrow_call_many(self, function_name, inputs, parse, return_exceptions, output, 0)

    def iter_call(self, function_name, inputs, parse=bytes, bint return_exceptions=False):
        """Iterator form of :meth:`call_many`: runs the calls in batches and yields the outputs."""
        self._begin(function_name)  # fail fast, before the first batch
        if type(inputs) is not list and _arrow_py().is_arrow(inputs):
            raise TypeError("iter_call takes no Arrow input: use call_many(..., output='arrow'), or "
                            "slice the array and call call_many per slice")
        batch = []
        start = 0  # the index of batch[0], for an InputTypeError's message
        for item in inputs:
            batch.append(item)
            if len(batch) == _BATCH_SIZE:
                yield from self._run_batch_at(function_name, batch, parse, return_exceptions, start)
                batch = []
                start += _BATCH_SIZE
        if batch:
            yield from self._run_batch_at(function_name, batch, parse, return_exceptions, start)

    def _run_batch_at(self, function_name, list items, parse, bint return_exceptions, start):
        try:
            return self._run_batch(function_name, items, parse, return_exceptions)
        except InputTypeError as exc:
            raise reindexed(exc, start, items) from None

    cdef list _run_batch(self, function_name, list items, parse, bint return_exceptions):
        cdef _Batch batch = _Batch(items)
        self._run(function_name, batch, return_exceptions)
        return batch.results(self, function_name, parse, return_exceptions)

    cdef _run(self, function_name, _Batch batch, bint return_exceptions):
        """Run a batch's calls with the GIL released (its outputs stay in the batch)."""
        cdef size_t index = self._begin(function_name)
        self._busy = True
        try:
            if instance_needs_store(self.inst):
                self._prepare(function_name)
            with nogil:
                batch.run(self.inst, index, self._timeout_ns, return_exceptions)
        finally:
            self._busy = False
        if self._log_wasi_output:
            self._log_wasi_streams()
        if self._pending_exception is not None:
            exc, self._pending_exception = self._pending_exception, None
            raise exc

    cdef _log_wasi_streams(self):
        """wasi_stdio="log": what the call wrote, stdout at INFO and stderr at WARNING, a record a line."""
        cdef size_t n
        cdef const uint8_t *data
        for stream, name, level in ((0, "stdout", logging.INFO), (1, "stderr", logging.WARNING)):
            data = store_take_wasi_output(self.inst, stream, &n)
            if n == 0 or not logger.isEnabledFor(level):
                continue
            text = (<const char *>data)[:n].decode("utf-8", "replace")
            for line in text.splitlines():
                logger.log(level, line, extra={"plugin_id": str(self.id), "wasi_stream": name})

    cdef bytes _take_block(self, uint64_t offset):
        """The bytes of a block the plugin handed over (then freed: the host owns it), or None."""
        cdef kernel *k = instance_kernel(self.inst)
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
                return running_fail(inst, FAILURE_TRAP, f"extism:host/env http_request: request offset "
                                                         f"{request} is not an allocated block".encode())
            now = ticker_now_ns()
            remaining = None  # the call's time left bounds the request
            deadline = running_deadline_ns(inst)
            if deadline:
                remaining = (deadline - now) / 1e9 if deadline > now else 0.0
            # CancelHandle.cancel sets the flag, then cancels this token: one of them is seen.
            self._http_cancel = http.RequestCancel()
            if running_cancel_requested(inst):
                self._http_cancel.cancel()
            try:
                result = http.perform_request(request_json, body_bytes, allowed_hosts=self._allowed_hosts,
                                              max_response_bytes=self._max_http_response_bytes,
                                              timeout_s=remaining, cancel=self._http_cancel)
            finally:
                self._http_cancel = None
            running_set_http_status(inst, result.status)
            if self._http_response_headers:
                headers = result.headers_json()
                running_set_http_headers(inst, headers, len(headers))
            response[0] = kernel_alloc_bytes(instance_kernel(inst), result.body, len(result.body)) if result.body else 0
            if result.body and response[0] == 0:
                return running_fail(inst, FAILURE_LIMIT, f"extism:host/env http_request: the response body "
                                     f"({len(result.body)} bytes) does not fit in kernel memory "
                                     f"({self._alloc_failure()})".encode())
            return NULL
        except BaseException as exc:
            return self._http_failure(exc)

    cdef wasm_trap_t *_http_failure(self, exc):
        """Map an exception from http.perform_request to the failure the call reports."""
        if isinstance(exc, TimeoutError) and self._timeout_ns:
            running_interrupted(self.inst, INTERRUPT_TIMEOUT)  # the call's own deadline ran out
        elif isinstance(exc, CancelledError):
            running_interrupted(self.inst, INTERRUPT_CANCEL)
        cdef failure_kind kind = FAILURE_HOST_CALL
        for cls, k in ((CapabilityError, FAILURE_DENIED), (MemoryLimitError, FAILURE_LIMIT)):
            if isinstance(exc, cls):
                kind = k
        self._keep_interrupt(exc)
        return running_fail(self.inst, kind, f"extism:host/env http_request: {exc}".encode("utf-8", "replace"))

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
            return MemoryLimitError(f"input to '{name}' does not fit in kernel memory ({self._alloc_failure()})")
        if status == CALL_EXIT:
            return CallError(f"plugin function '{name}' exited with code {r.rc}")
        if status == CALL_INSTANTIATE and r.failure == FAILURE_LIMIT:
            return MemoryLimitError(
                f"cannot instantiate the plugin for '{name}': {message} (manifest.memory.max_pages = "
                f"{self._manifest.memory.max_pages}, the budget of all its memories)")
        if status in (CALL_INSTANTIATE, CALL_POOL_EXHAUSTED):
            return CallError(f"plugin function '{name}' could not start: {_trap_summary(message)}")
        if status == CALL_HOST_FAILURE:
            cls = {FAILURE_LIMIT: MemoryLimitError, FAILURE_HOST_FUNCTION: HostFunctionError,
                   FAILURE_DENIED: CapabilityError, FAILURE_HOST_CALL: CallError}.get(r.failure, TrapError)
            return cls(f"plugin function '{name}' failed: {message}")
        cause, newline, trace = _trap_summary(message).partition("\n")
        if instance_budget(self.inst).limit >= 0:  # a memory.grow past the budget is refused, and plugins trap on that
            cause = f"{cause} ({self._budget_note()})"
        return TrapError(f"plugin function '{name}' trapped: {cause}{newline}{trace}")

    cdef str _alloc_failure(self):
        """Why the kernel could not allocate: the memory budget refused to grow it, or its limit."""
        if instance_budget(self.inst).refused:
            return self._budget_note()
        return f"kernel memory limit reached ({instance_kernel(self.inst).limit} bytes)"

    cdef str _budget_note(self):
        """What is left of manifest.memory.max_pages (memory_budget.h)."""
        cdef char note[160]
        memory_budget_describe(instance_budget(self.inst), note, sizeof(note))
        return note.decode()
