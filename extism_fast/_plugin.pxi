# _plugin.pxi - Plugin: instances, calls, errors, output views, CancelHandle.
# Part of extism_fast/_runtime.pyx (included there; one Cython module).

# ---------------------------------------------------------------------------------------------
# Plugin instances
# ---------------------------------------------------------------------------------------------

cdef class CancelHandle:
    """Cancels the running call of one plugin, from any thread."""

    def cancel(self) -> bool:
        """Make the call in progress (if any) fail with CancelledError. Returns True."""
        self.plugin._cancel_running()
        return True

    def __repr__(self):
        return f"<{_type_name(self)} of {self.plugin!r}>"


cdef str _type_name(obj):
    """``extism_fast.Plugin`` (the public path) for the package's classes, a subclass's own."""
    cls = type(obj)
    module = "extism_fast" if cls.__module__ == "extism_fast._runtime" else cls.__module__
    return f"{module}.{cls.__qualname__}"


def _plugin_parameters(plugin, wasi=False, config=None, functions=HOST_FN_REGISTRY, *,
                       http_response_headers=False, fuel=None, wasi_stdio=None, interruptible=None,
                       strict=None, wasi_env=None, wasi_args=None, logger=None):
    """Plugin.__init__'s parameters, for inspect.signature(Plugin): a cdef class's __init__ is a
    slot that inspect cannot read, and the signature Cython embeds in the docstring misplaces a
    typed keyword-only parameter (tests/test_plugin.py checks this list against both)."""


cdef object _SCALARS = None  # options.c_layout(), read by the first _pack_options


cdef class _PackedOptions:
    """A PluginOptions as C's instance_options, made once and kept in them (their ``packed``): it
    points into their bytes. instance_new copies what it needs."""

    def __dealloc__(self):
        if self.c != NULL:
            free(<void *>self.c.config)
            free(<void *>self.c.preopens)
            free(<void *>self.c.wasi_args)
            free(<void *>self.c.wasi_env)
            free(self.c)


cdef _PackedOptions _pack_options(options):
    """The one place C's instance_options is filled: every scalar of its settings by its name, from
    ``options.settings`` (options.c_layout: a new one needs no code here), then the arrays and their counts."""
    global _SCALARS
    cdef _PackedOptions packed = _PackedOptions.__new__(_PackedOptions)
    cdef char *base
    cdef size_t i
    if _SCALARS is None:
        _SCALARS = _options.c_layout()
    packed.c = <instance_options *>calloc(1, sizeof(instance_options))
    if packed.c == NULL:
        raise MemoryError()
    base = <char *>packed.c
    settings = options.settings
    for name, offset, c_type in _SCALARS:
        if c_type == "int64_t":
            (<int64_t *>(base + <size_t>offset))[0] = getattr(settings, name)
        elif c_type == "uint64_t":
            (<uint64_t *>(base + <size_t>offset))[0] = getattr(settings, name)
        else:
            (<int *>(base + <size_t>offset))[0] = getattr(settings, name)
    config, mounts, wasi_args, wasi_env = options.config, options.mounts, options.wasi_args, options.wasi_env
    cdef kv_entry *entries = <kv_entry *>calloc(len(config) + 1, sizeof(kv_entry))
    cdef wasi_preopen *preopens = <wasi_preopen *>calloc(len(mounts) + 1, sizeof(wasi_preopen))
    packed.c.config, packed.c.preopens = entries, preopens
    packed.c.wasi_args = _c_strings(wasi_args)
    packed.c.wasi_env = _c_strings(wasi_env)
    if entries == NULL or preopens == NULL or packed.c.wasi_args == NULL or packed.c.wasi_env == NULL:
        raise MemoryError()
    for i, (key, value) in enumerate(config):
        entries[i].key, entries[i].key_len = <uint8_t *>PyBytes_AS_STRING(key), len(key)
        entries[i].value, entries[i].value_len = <uint8_t *>PyBytes_AS_STRING(value), len(value)
    for i, (_, host, guest, read_only) in enumerate(mounts):
        preopens[i].host_path, preopens[i].guest_path, preopens[i].read_only = host, guest, read_only
    packed.c.config_count, packed.c.preopen_count = len(config), len(mounts)
    packed.c.wasi_arg_count, packed.c.wasi_env_count = len(wasi_args), len(wasi_env) // 2
    return packed


cdef const char **_c_strings(tuple items):
    """A calloc'ed array of pointers into ``items`` (bytes the caller keeps alive), or NULL."""
    cdef const char **out = <const char **>calloc(len(items) + 1, sizeof(char *))
    if out != NULL:
        for i, item in enumerate(items):
            out[i] = PyBytes_AS_STRING(item)
    return out


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

    __signature__ = _LazySignature(_plugin_parameters)

    def __init__(self, plugin, bint wasi=False, config=None, functions=HOST_FN_REGISTRY, *,
                 bint http_response_headers=False, fuel=None, wasi_stdio=None, interruptible=None,
                 strict=None, wasi_env=None, wasi_args=None, logger=None):
        if self.compiled_plugin is not None:
            raise Error("Plugin.__init__ has already run on this object: create a new Plugin")
        cdef CompiledPlugin compiled
        _load_options()  # once per process (the first CompiledPlugin would, below)
        environment = tuple([_environ(name) for name in _ENVIRONMENT])
        # No option but (maybe) a config, as most programs make them: the compiled plugin's options
        # for this environment are reused (with that config).
        defaults = (fuel is None and not wasi and interruptible is None and wasi_stdio is None
                    and strict is None and wasi_env is None and wasi_args is None and logger is None
                    and not http_response_headers and (functions is HOST_FN_REGISTRY or not functions))
        if isinstance(plugin, CompiledPlugin):
            compiled = <CompiledPlugin>plugin
            if compiled.c == NULL:
                raise Error("the CompiledPlugin was not initialized (a subclass must call "
                            "super().__init__())")
            if not defaults:
                _options.check_compiled_options(compiled, wasi, functions, fuel, HOST_FN_REGISTRY)
            manifest = compiled._source
            if config is not None:
                manifest = manifest.with_config(config) if isinstance(manifest, _PlainSource) else None
                if manifest is None:  # not plain: merge_config's checks and messages
                    from extism_fast.manifest import coerce_source

                    manifest = coerce_source(compiled.manifest, config=config)
        else:
            compiled = CompiledPlugin(plugin, wasi, functions, config=config, fuel=fuel,
                                      interruptible=interruptible)
            manifest = compiled._source
        self.compiled_plugin = compiled
        self._c = compiled.c
        if interruptible is not None and _options.resolve_interruptible(manifest, interruptible) != compiled.interruptible:
            self._c = compiled._compilation(_engine_for(compiled.fuel is not None, interruptible, compiled._cache))
        if defaults:
            options = compiled._default_options.get(environment)
            if options is None:
                options = _options.plugin_options(compiled, compiled._source, environment)
                if len(compiled._default_options) > 8:  # the environment keeps changing: keep the latest
                    compiled._default_options.clear()
                compiled._default_options[environment] = options
            else:
                options.check_mounts()
            if manifest is not compiled._source:
                options = options.with_config(manifest)
        else:
            options = _options.plugin_options(compiled, manifest, environment, wasi_stdio=wasi_stdio, strict=strict,
                                     wasi_env=wasi_env, wasi_args=wasi_args, logger=logger,
                                     http_response_headers=http_response_headers)
        self._options = options
        self._log_wasi_output = options.log_wasi_output
        self._dumps = options.memdump is not None or options.coredump is not None
        self._callable = compiled._callable
        self._last_name = None
        # _exposed, _host_buffers and _current_plugin stay None until used: an idle instance keeps
        # no empty lists (RSS per instance).
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
        call_prepare(self.inst, 1, &r)
        self._restore_thread()
        if r.status == CALL_POOL_EXHAUSTED:
            free(r.message)
            self._use_on_demand()
            call_prepare(self.inst, 1, &r)
            self._restore_thread()
        if r.status != CALL_OK:
            raise _call_error(self, function_name, &r)

    cdef _use_on_demand(self):
        """The instance pool is full (and this instance has no store): instantiate on the
        engine's on-demand twin from now on."""
        self._use(self.compiled_plugin._unpooled(self._c))

    cdef _use(self, const compiled_plugin *c):
        if instance_use_compiled(self.inst, c) != 0:
            raise Error("internal error: cannot switch the compilation of an instantiated plugin")
        self._c = c

    cdef plugin_instance *_new_instance(self, char **message) except? NULL:
        """The instance, made from its options (packed once as C's instance_options)."""
        packed = self._options.packed
        if not packed:
            packed.append(_pack_options(self._options))
        return instance_new(self._c, <void *>self, (<_PackedOptions>packed[0]).c, message)

    def __dealloc__(self):
        if self.inst != NULL:
            # No view can outlive this object (each holds it): the store goes now, without the
            # keep_store hook, which must not run on an object being deallocated.
            instance_set_views_exposed(self.inst, 0)
            instance_delete(self.inst)
            self.inst = NULL

    def __del__(self):
        """Free the instance now, as the official SDK's ``__del__`` (programs call it
        explicitly); the same as ``close()``, except that it never raises."""
        if self.inst != NULL and not self._busy:  # initialized (inst comes last), idle
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
        return bool(self._options.settings.strict)

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
            import uuid

            self._id = uuid.uuid4()
        return self._id

    def close(self) -> None:
        """Free the instance's native resources; later calls raise Error.

        Memoryviews of host-function buffers that are still alive keep the store's memory (not
        the instance) until they are released; everything is freed now otherwise.
        """
        self._compilation_in_use()  # a subclass that skipped super().__init__(): the Error saying so
        if self._busy:
            raise Error("cannot close a plugin while one of its calls is running")
        self._closed = True
        self._expire_buffers()
        instance_delete(self.inst)  # its store through store_drop, which hands it to the views
        self.inst = NULL

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    async def __aenter__(self):
        return self

    def __aexit__(self, *exc_info):
        return self.aclose()

    def aclose(self):
        """``await plugin.aclose()`` (and the end of ``async with``): close() once the ``acall``s
        this event loop started before it have finished, waiting without blocking the loop; later
        ones raise Error. See extism_fast/scale/aio.py."""
        from extism_fast.scale import aio
        return aio.aclose(self)

    def __repr__(self):
        if self.compiled_plugin is None:
            return f"<{_type_name(self)} (not initialized)>"
        state = "closed" if self._closed or self.inst == NULL else "running a call" if self._busy else "open"
        return f"<{_type_name(self)} main={self.compiled_plugin._source.describe_main()} {state}>"

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
        self._use(self.compiled_plugin._compilation(_engine_for(False, True, self.compiled_plugin._cache)))

    cdef _cancel_running(self):
        """CancelHandle.cancel: the running call (if any) fails as cancelled, an http_request
        in progress is aborted; no effect on a non-interruptible plugin's call."""
        # With the GIL held throughout: close() (which frees inst) needs it too, so inst cannot
        # be freed between the check and the cancel.
        if self.inst != NULL:
            call_cancel(self.inst)
            request = self._http_cancel  # an http_request in progress: abort it too
            if request is not None:
                request.cancel()

    def _interrupt(self) -> None:
        """Stop what runs on this plugin, from another thread: the running call is cancelled (as
        CancelHandle.cancel; a non-interruptible plugin's call runs to its end) and a batch in
        progress (call_many, a PluginPool.map chunk) runs no further call and raises
        CancelledError. No effect when idle. For KeyboardInterrupt handling (PluginPool.map)."""
        if self._batch is not None:
            batch_flag_set(&self._batch.stop)
        self._cancel_running()

    def function_exists(self, str name) -> bool:
        """True when the plugin exports a function with this name."""
        return self.compiled_plugin.function_exists(name)

    cdef size_t _begin(self, function_name) except? 0:
        """The export index for a call, after checking the plugin can take one now."""
        cdef size_t index
        if function_name is self._last_name and function_name is not None:
            index = self._last_index
        else:
            index_obj = self._callable.get(function_name)
            if index_obj is None:
                raise _missing_export(self, function_name)
            index = index_obj
            self._last_name, self._last_index = function_name, index
        if self.inst == NULL or self._closed:
            raise Error("plugin is closed")
        if self._busy:
            raise Error("plugin is already running a call (re-entrant or from another thread); "
                        "use one Plugin per thread")
        self._expire_buffers()
        self._called = True
        return index

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
            call_run(self.inst, index, ptr, n, 1, &r)
            self._restore_thread()
        finally:
            self._busy = False
            self._host_context = None
            if have_view:
                PyBuffer_Release(&view)
        self._finish_call(&r)
        if r.status != CALL_OK:
            raise _call_error(self, function_name, &r)
        if parse is None:
            return self._expose_output(&r)
        out = PyBytes_FromStringAndSize(<const char *>r.output, r.output_length)
        return out if parse is bytes else parse_output(out, parse)  # bytes: no Python-level call

    cdef int _finish_call(self, call_result *r) except -1:
        """What follows every call, Plugin.call's and each batch item's alike (before its error is
        mapped by _call_error): its WASI output logged (wasi_stdio="log"), a KeyboardInterrupt /
        SystemExit from a callback re-raised (the call's message freed), the debug dumps written
        after a failure (EXTISM_MEMDUMP / EXTISM_COREDUMP)."""
        if self._log_wasi_output:
            self._log_wasi_streams()
        if self._pending_exception is not None:
            exc, self._pending_exception = self._pending_exception, None
            free(r.message)
            r.message = NULL
            raise exc
        if r.status != CALL_OK and self._dumps:
            self._write_dumps(r.status)
        return 0

    cdef _write_dumps(self, call_status status):
        """EXTISM_MEMDUMP after any failed call, EXTISM_COREDUMP after a trap (runtime/debug_dumps.py,
        loaded by the first dump, not with the package)."""
        cdef size_t n = 0
        cdef const uint8_t *kernel_bytes = store_kernel_memory(self.inst, &n)
        if kernel_bytes == NULL:
            return  # instantiation failed: no memory to dump
        from extism_fast.runtime.debug_dumps import coredump, write_dump

        kernel_memory = PyBytes_FromStringAndSize(<const char *>kernel_bytes, n)
        options = self._options
        if options.memdump is not None:
            write_dump(options.memdump, kernel_memory, "memory dump")
        if options.coredump is not None and status in (CALL_TRAP, CALL_OUT_OF_FUEL):
            memories = [kernel_memory]
            main_bytes = store_main_memory(self.inst, &n)
            if main_bytes != NULL:
                memories.insert(0, PyBytes_FromStringAndSize(<const char *>main_bytes, n))
            write_dump(options.coredump, coredump(memories), "core dump")

    cdef object _expose_output(self, call_result *r):
        buf = KernelBuffer._over(self, <uint8_t *>r.output, r.output_length, False)
        self._expose(buf)
        return buf

    cdef _expose(self, KernelBuffer buf):
        """``buf`` points into the current store: store_drop must hand the store to it."""
        if self._exposed is None:
            self._exposed = []
        self._exposed.append(buf)
        instance_set_views_exposed(self.inst, 1)

    cdef _end_host_buffers(self):
        """A host function returned: its buffers stop serving; the bytes of those still viewed
        (memoryviews taken from them) are kept out of later calls' allocations."""
        cdef KernelBuffer buf
        if not self._host_buffers:
            return
        for buf in self._host_buffers:
            if buf._invalidate():
                self._expose(buf)
        self._host_buffers.clear()

    cdef _expire_buffers(self):
        """Before a call, or a store's drop: earlier outputs' buffers and host-function buffers
        stop serving; those still viewed in place (memoryviews of host-function buffers) stay
        listed, so their memory outlives them (see _keep_store)."""
        cdef KernelBuffer buf
        if self._exposed:  # mostly empty: no new list per call
            self._exposed = [buf for buf in self._exposed if buf._invalidate()]
        if self.inst != NULL:
            instance_set_views_exposed(self.inst, 1 if self._exposed else 0)

    cdef int _keep_store(self, wasmtime_store_t *store) noexcept:
        """store_drop's hook (store.h), with the GIL: the store is about to go (a new one after
        `_start`, a failed instantiation, close): every buffer of it stops serving, and those
        still viewed in place take the store with them. Returns 1 when they took it."""
        cdef KernelBuffer buf
        cdef _DetachedStore detached
        try:
            self._end_host_buffers()
            self._expire_buffers()
            if not self._exposed:
                return 0
            detached = _DetachedStore.__new__(_DetachedStore)
            detached.store = store
            for buf in self._exposed:
                buf._store = detached
            self._exposed = None
            return 1
        except BaseException:  # out of memory: keep the store forever rather than free it under a view
            return 1

    def acall(self, function_name, data=b"", parse=bytes, host_context=None):
        """``await plugin.acall(...)``: ``call`` on a worker thread, so the event loop keeps
        serving; concurrent ``acall``s of this plugin run one after the other. Cancelling the
        awaiting task cancels the call. See extism_fast/scale/aio.py."""
        from extism_fast.scale import aio
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
        list: see :mod:`extism_fast.scale.arrow` (needs ``pip install 'extism_fast[arrow]'``).
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
        """Run a batch's calls with the GIL released (its outputs stay in the batch). The batch
        pauses after an item whose call needs _finish_call now (dumps after a failure, WASI output
        to log), as Plugin.call runs it; its error is mapped when the results are read."""
        cdef size_t index = self._begin(function_name)
        cdef int pause = BATCH_PAUSE_EACH if self._log_wasi_output else (BATCH_PAUSE_FAILED if self._dumps else 0)
        cdef call_result *r
        self._busy = True
        self._batch = batch
        batch.watch_sigint, batch.sigint_seen = _on_signal_thread(), sigint_count()
        try:
            if instance_needs_store(self.inst):
                self._prepare(function_name)
            while True:
                with nogil:
                    batch.run(self.inst, index, return_exceptions, pause)
                if batch.pool_full:  # a new store after `_start` found the pool full
                    batch.pool_full = False
                    self._use_on_demand()
                    continue
                if not batch.paused:
                    break
                batch.paused = False
                r = &batch.results_[batch.done - 1]
                self._finish_call(r)
                if batch.done == batch.count or (r.status != CALL_OK and not return_exceptions):
                    break
        finally:
            self._busy = False
            self._batch = None
        if self._pending_exception is not None:  # not paused for (no dumps, no WASI log)
            exc, self._pending_exception = self._pending_exception, None
            raise exc
        if batch.stop:  # Ctrl-C (its handler runs now: KeyboardInterrupt), or _interrupt
            PyErr_CheckSignals()
            raise CancelledError(f"the calls of '{function_name}' were stopped after {batch.done} of "
                                 f"{batch.count}")

    cdef _log_wasi_streams(self):
        """wasi_stdio="log": what the call wrote, stdout at INFO and stderr at WARNING, a record a line."""
        cdef size_t n
        cdef const uint8_t *data
        for stream, name, level in ((0, "stdout", _LOG_LEVELS["info"]), (1, "stderr", _LOG_LEVELS["warn"])):
            data = store_take_wasi_output(self.inst, stream, &n)
            if n == 0 or not logger.isEnabledFor(level):
                continue
            text = (<const char *>data)[:n].decode("utf-8", "replace")
            for line in text.splitlines():
                logger.log(level, line, extra={"plugin_id": str(self.id), "wasi_stream": name})

    cdef _keep_interrupt(self, exc):
        """KeyboardInterrupt / SystemExit inside a host callback: fail the call, re-raise after it."""
        if not isinstance(exc, Exception) and self._pending_exception is None:
            self._pending_exception = exc
