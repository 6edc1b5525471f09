# _compiled_plugin.pxi - CompiledPlugin: compile, link and check imports; the compile cache.
# Part of extism_fast/_runtime.pyx (included there; one Cython module).

# ---------------------------------------------------------------------------------------------
# Compiled plugins
# ---------------------------------------------------------------------------------------------

cdef str _extern_text(const wasm_externtype_t *et, bint signature_only=False):
    """An import's or export's type (wasm_types.h): a function's signature (alone when
    signature_only), a global's value type and mutability, a table's element type and limits, a
    memory's limits (in pages)."""
    cdef char text[4096]
    wasm_types_describe(et, signature_only, text, sizeof(text))
    return text.decode("utf-8", "replace")


_EXTERN_KIND_NAMES = {WASM_EXTERN_FUNC: "function", WASM_EXTERN_GLOBAL: "global", WASM_EXTERN_TABLE: "table",
                      WASM_EXTERN_MEMORY: "memory"}


def _link_module_hint(str module, namespaces):
    """For an import from a module nothing provides: if that module is not the host's (the ABI's
    extism:*, WASI's wasi*, a namespace of the host functions given), it is likely a wasm module
    the user meant to link, so say how (the CLI words it as --link). "env" is the host's by
    convention (toolchains import abort and the like from it): no hint there either."""
    if module.startswith(("extism:", "wasi")) or module == "env" or module in namespaces:
        return ""
    return f"; if '{module}' is another wasm module, add it to the manifest's wasm list with name={module!r}"


cdef str _link_problem_text(const link_problem *problem, list names, namespaces):
    """The message of a link problem (import_plan.h); names: the modules' names by position;
    namespaces: those of the host functions given."""
    cdef size_t i
    mod, name = problem.module.decode("utf-8", "replace"), problem.name.decode("utf-8", "replace")
    where = f"module '{names[problem.importer]}' imports {mod}::{name}"
    kind = problem.kind
    if kind == LINK_PROBLEM_TYPE:
        return (f"{where} as {_extern_text(problem.expected)}, but module '{names[problem.provider]}' exports "
                f"{_extern_text(problem.found)}")
    if kind == LINK_PROBLEM_CYCLE:
        cycle = [names[problem.cycle[i]] for i in range(problem.cycle_length)]
        loop = " -> ".join(f"'{module}'" for module in cycle + cycle[:1])
        return (f"{where}, a {_EXTERN_KIND_NAMES.get(problem.import_kind, 'non-function')}, from module "
                f"'{names[problem.provider]}', and the modules import non-functions from each other in a cycle "
                f"({loop}; each imports from the next): only functions can be imported around a cycle of modules")
    # A module of that name without the field leaves it to the host, as in the official SDK.
    lacking = (f"module '{names[problem.provider]}' has no export named '{name}'"
               if problem.provider != LINK_NO_PROVIDER else None)
    if kind == LINK_PROBLEM_NOT_FUNCTION:
        if lacking:
            return f"{where}, but {lacking}"
        return (f"{where}, which is not a function; only functions can be imported from the host"
                f"{_link_module_hint(mod, namespaces)}")
    if kind == LINK_PROBLEM_NUL_NAME:
        return f"{where}: a module or field name with a NUL byte (shown as \\0) cannot be linked"
    if kind == LINK_PROBLEM_ABI_UNKNOWN:
        return f"{where}: no such function in the Extism ABI"
    if kind == LINK_PROBLEM_WASI_DISABLED:
        return f"{where}, but WASI is not enabled (pass wasi=True to grant it)"
    found = _extern_text(problem.found, True)
    if kind == LINK_PROBLEM_HOST_MISSING:
        if lacking:
            return f"{where} {found}, but {lacking} and no host function with that namespace and name was given"
        return (f"{where} {found}: no host function with that namespace and name was given"
                f"{_link_module_hint(mod, namespaces)}")
    expected = _extern_text(problem.expected, True)
    if kind == LINK_PROBLEM_ABI_TYPE:
        return f"{where} with type {found}, but the ABI's type is {expected}"
    return f"{where} with type {found}, but the host function has type {expected}"  # LINK_PROBLEM_HOST_TYPE


cdef _raise_compile_failure(compile_failure *failure, list modules, list entries):
    """The exception for a compile_plugin failure (compile.h), its C parts freed: CompileError for a
    module, LinkError for the linker and the link (MemoryError when out of host memory).
    `modules`: the Manifest modules in request order; `entries`: the _HostFunctionEntry list."""
    cdef compile_failure_kind kind = failure.kind
    message = _take_message(failure.message) if failure.message != NULL else None
    failure.message = NULL
    if kind == COMPILE_LINK:
        try:
            if failure.problem.kind == LINK_PROBLEM_MEMORY:
                raise MemoryError()
            text = _link_problem_text(&failure.problem, [m.name if not m.is_main else "main" for m in modules],
                                      {(<_HostFunctionEntry>entry).function.namespace for entry in entries})
        finally:
            link_problem_free(&failure.problem)
        raise LinkError(text)
    if kind in (COMPILE_NOT_WASM, COMPILE_INVALID_TEXT, COMPILE_INVALID_MODULE, COMPILE_CACHE_TOO_BIG):
        module = modules[failure.module]
        name = "main" if module.is_main else module.name
        if kind == COMPILE_NOT_WASM:
            raise CompileError(f"module '{name}' is not WebAssembly: it starts with {module.data[:8]!r}, "
                               f"neither the wasm magic b'\\x00asm' nor WAT text")
        if kind == COMPILE_INVALID_TEXT:
            raise CompileError(f"invalid WebAssembly text: {message}")
        if kind == COMPILE_INVALID_MODULE:
            raise CompileError(f"invalid wasm module '{name}': {message}")
        raise CompileError(f"cached module does not fit the instance pool: {message}")
    if kind == COMPILE_WASI:
        raise LinkError(f"cannot define WASI: {message}")
    if kind == COMPILE_HOST_ARITY:
        raise LinkError("host functions take at most 64 parameters and 64 results")
    if kind in (COMPILE_HOST_RESERVED, COMPILE_HOST_DEFINE):
        label = (<_HostFunctionEntry>entries[failure.function]).label
        if kind == COMPILE_HOST_RESERVED:
            raise LinkError(f"host function {label}: the namespace extism:host/env is reserved for the ABI")
        raise LinkError(f"host function {label}: {message}")
    raise LinkError(message or "unknown error")  # COMPILE_ABI, COMPILE_FAILED


cdef str _take_optional(char **message):
    """Decode and free a malloc'ed C message that may be absent (then None)."""
    if message[0] == NULL:
        return None
    text = _take_message(message[0])
    message[0] = NULL
    return text


cdef class _Compilation:
    """The plugin's modules compiled and linked for one engine (owns the compiled_plugin)."""

    def __dealloc__(self):
        compiled_plugin_delete(self.c)
        self.c = NULL


cdef _describe_entry(module_source *m, entry, list keep):
    """A module's open cache entry (compile_cache.CachedEntry) into `m`: its path, which wasmtime
    maps (and its descriptor and size, to read it if that fails), else its bytes."""
    if entry.path is not None:
        path = os.fsencode(entry.path)
        keep.append(path)
        m.cached_path = <const char *>PyBytes_AS_STRING(path)
        m.cached_fd, m.cached_length = entry.fileno(), entry.size
        return
    held = _HeldBytes(entry.read())
    keep.append(held)
    m.cached = <const uint8_t *>held.view.buf
    m.cached_length = held.view.len


def _compiled_parameters(plugin, wasi=False, functions=HOST_FN_REGISTRY, *, config=None, fuel=None,
                         cache=None, interruptible=None):
    """CompiledPlugin.__init__'s parameters, for inspect.signature (see _plugin_parameters)."""


cdef class CompiledPlugin:
    """A compiled, linked plugin: instantiate it cheaply with ``Plugin(compiled)``.

    ``plugin`` is anything ``Plugin`` accepts (wasm bytes, WAT, a path, a JSON or dict manifest,
    a Manifest). Instances share the compiled modules and host functions. ``fuel``: an
    instruction budget per call. ``cache``: the on-disk compile cache (see runtime/compile_cache.py):
    None follows EXTISM_FAST_CACHE (on by default), False disables it, a directory, or a
    ``CompileCache(directory, max_bytes=...)`` to set its size cap.
    ``interruptible``: compile with epoch interruption, which timeouts and cancel need, as the
    official runtime always does (None, the default, means True). ``False`` is an opt-in speed
    mode for trusted plugins: no checks in the plugin's loops (a tight loop runs up to ~25%
    faster), but no timeout and no cancel (its first ``cancel_handle()``, before any call, moves
    it to an interruptible compilation, at the cost of compiling once more).
    """

    __signature__ = _LazySignature(_compiled_parameters)

    def __init__(self, plugin, bint wasi=False, functions=HOST_FN_REGISTRY, *, config=None, fuel=None,
                 cache=None, interruptible=None):
        if self._source is not None:  # plugins may be running on this compilation
            raise Error("CompiledPlugin.__init__ has already run on this object: create a new one")
        from extism_fast.manifest.plain import plain_source
        from extism_fast.runtime.compile_cache import cache_from_argument

        _load_options()
        # A plain plugin (one module, no option but a config: most are) needs no Manifest until
        # one is asked for (the manifest classes load then: attrs, ~45 ms of a fresh process).
        plain = plain_source(plugin)
        told = plain if plain is None or config is None else plain.with_config(config)
        if told is not None:
            self._source = told
        else:
            from extism_fast.manifest.sources import coerce_told_source

            self._source = coerce_told_source(plugin, plain, config)
        self._cache = cache_from_argument(cache)
        self.wasi = wasi
        self.interruptible = _options.compile_options(self._source, wasi, fuel, interruptible)
        self.fuel = fuel
        self._default_options = {}
        # Several functions with one namespace and name: the last wins, as in the official SDK.
        unique = {(f.namespace, f.name): f for f in (functions or ())}
        self.functions = list(unique.values())
        self._entries = [_HostFunctionEntry(f) for f in self.functions]
        self._modules = self._source.load_modules()
        self._compilations = {}
        self.c = self._compilation(_engine_for(fuel is not None, self.interruptible, self._cache))
        self._list_exports()
        signals_restore()  # not per call: README, "Wasm traps and crash handlers"

    @property
    def manifest(self):
        """The plugin's Manifest (a plain plugin's is made when first read)."""
        if isinstance(self._source, _PlainSource):
            return self._source.manifest()
        return self._source

    def __repr__(self):
        if self._source is None:
            return f"<{_type_name(self)} (not initialized)>"
        fuel = "" if self.fuel is None else f" fuel={self.fuel}"
        return (f"<{_type_name(self)} main={self._source.describe_main()} modules={len(self._modules)} "
                f"wasi={self.wasi}{fuel}>")

    cdef compiled_plugin *_compilation(self, engine_bundle *engine) except NULL:
        """The plugin compiled for `engine` (or, when it does not fit that engine's instance pool,
        for its on-demand twin), compiled now if needed and then kept."""
        cdef _Compilation found = self._compilations.get(_engine_key(engine))
        if found is None and engine.pool_instances:
            found = self._compilations.get(_engine_slot(engine.flags, False))
        if found is not None:
            return found.c
        try:
            return self._compile_for(engine, NULL).c
        except CompileError:
            if not engine.pool_instances:
                raise
            # Too big for the pool (memories, tables or instance size): compile on demand instead;
            # an invalid module fails there again, with the message to report.
            return self._compile_for(_on_demand_twin(engine), NULL).c

    cdef compiled_plugin *_unpooled(self, const compiled_plugin *source) except NULL:
        """`source` (a pooled compilation) for its on-demand twin engine: its modules are
        serialized and loaded there, not compiled again."""
        cdef engine_bundle *twin = _on_demand_twin(<engine_bundle *>source.bundle)
        cdef _Compilation found = self._compilations.get(_engine_key(twin))
        if found is not None:
            return found.c
        return self._compile_for(twin, source).c

    cdef _Compilation _compile_for(self, engine_bundle *engine, const compiled_plugin *source):
        """The plugin compiled and linked for `engine` by compile_plugin (compile.h), its modules
        moved over from `source` when given, else loaded from the compile cache or compiled (and
        then cached)."""
        cdef _Compilation compilation = _Compilation.__new__(_Compilation)
        cdef compile_request request
        cdef compile_failure failure
        cdef Py_ssize_t i, count = len(self._modules), functions = len(self._entries)
        if self._defined_memories is None:
            self._defined_memories = _defined_memories(self._modules)
        ordered = [m for m in self._modules if not m.is_main] + [self._modules[-1]]
        keys = [None] * count
        if self._cache is not None and source == NULL:
            description = _engine_description(engine)
            keys = [self._cache.key(m.data, description, m.file_identity) for m in ordered]
        memset(&request, 0, sizeof(request))
        request.bundle = engine
        request.source = source
        request.serialize = any(key is not None for key in keys)
        request.wasi = self.wasi
        request.callback = _host_trampoline
        request.module_count = count
        request.function_count = functions
        request.defined_memory_count = len(self._defined_memories)
        request.modules = <module_source *>calloc(count, sizeof(module_source))
        request.functions = <host_function_source *>calloc(functions + 1, sizeof(host_function_source))
        request.defined_memories = <uint64_t *>calloc(request.defined_memory_count + 1, sizeof(uint64_t))
        request.defined_by_main = <uint8_t *>calloc(request.defined_memory_count + 1, 1)
        keep = []  # what the request points into
        opened = []  # the cache entries it loads (closed once loaded: a mapping needs no descriptor)
        try:
            if (request.modules == NULL or request.functions == NULL or request.defined_memories == NULL
                    or request.defined_by_main == NULL):
                raise MemoryError()
            self._describe_modules(&request, ordered, keys, keep, opened)
            self._describe_functions(&request, keep)
            for i, (size, is_main) in enumerate(self._defined_memories):
                (<uint64_t *>request.defined_memories)[i] = size
                (<uint8_t *>request.defined_by_main)[i] = is_main
            with nogil:
                compilation.c = compile_plugin(&request, &failure)
            self._keep_cache_entries(engine, &request, ordered, keys)
            if compilation.c == NULL:
                _raise_compile_failure(&failure, ordered, self._entries)
        finally:
            for entry in opened:
                entry.close()
            for i in range(count if request.modules != NULL else 0):
                free(request.modules[i].cache_refusal)
                free(request.modules[i].serialized)
                free(request.modules[i].serialize_failure)
                free(request.modules[i].transfer_failure)
            free(request.modules)
            free(<void *>request.functions)
            free(<void *>request.defined_memories)
            free(<void *>request.defined_by_main)
        # Another thread may have compiled the same one meanwhile (compiling releases the GIL):
        # keep the first, which instances may already run; this one is freed.
        return self._compilations.setdefault(_engine_key(engine), compilation)

    cdef _describe_modules(self, compile_request *request, list modules, list keys, list keep, list opened):
        """Each module's bytes and cache entry into the request (`keep` holds what it points into,
        `opened` the cache entries, open).
        WAT is converted here when the module is to be compiled (no source, no cache entry)."""
        cdef module_source *m
        from extism_fast.manifest.plain import WASM_MAGIC, looks_like_wat

        for i, module in enumerate(modules):
            m = &request.modules[i]
            name = ("main" if module.is_main else module.name).encode()
            data = module.data
            form = (MODULE_BINARY if data.startswith(WASM_MAGIC) else
                    MODULE_TEXT if looks_like_wat(data) else MODULE_UNKNOWN)
            found = self._cache.open_entry(keys[i]) if keys[i] is not None else None
            if found is not None:
                opened.append(found)
                _describe_entry(m, found, keep)
            elif form == MODULE_TEXT and request.source == NULL:
                try:
                    data, form = wat2wasm(data), MODULE_BINARY
                except CompileError:  # compile_plugin converts it again in its turn, and fails there
                    pass
            keep += [name, data]
            m.name = name
            m.bytes = <const uint8_t *>PyBytes_AS_STRING(data)
            m.length = PyBytes_GET_SIZE(data)
            m.format = form

    cdef _describe_functions(self, compile_request *request, list keep):
        """Each host function's names, value kinds and trampoline entry into the request."""
        cdef _HostFunctionEntry entry
        for i, entry in enumerate(self._entries):
            fn = entry.function
            ns, name = fn.namespace.encode(), fn.name.encode()
            params = bytes([_VALTYPE_TO_KIND[t] for t in entry.param_types])
            results = bytes([_VALTYPE_TO_KIND[t] for t in entry.result_types])
            keep += [ns, name, params, results]
            (<host_function_source *>request.functions)[i] = host_function_source(
                ns, len(ns), name, len(name), params, len(params), results, len(results), <void *>entry)

    cdef _keep_cache_entries(self, engine_bundle *engine, compile_request *request, list modules, list keys):
        """After compile_plugin: the modules compiled afresh go into the cache, an entry wasmtime
        refused is dropped (on a pooled engine it is kept: the on-demand engine loads it), and what
        could not be done is logged. Takes (and frees) the request's module outputs."""
        cdef module_source *m
        cdef Py_ssize_t i
        for i in range(request.module_count):
            m = &request.modules[i]
            name = "main" if modules[i].is_main else modules[i].name
            transfer = _take_optional(&m.transfer_failure)
            if transfer is not None:
                logger.debug("extism_fast: compiling again for the on-demand engine: %s", transfer)
            refusal = _take_optional(&m.cache_refusal)
            if refusal is not None and not engine.pool_instances:  # intact but not for this engine: replace it
                logger.warning("extism_fast: compile cache entry %s rejected by wasmtime: %s", keys[i], refusal)
                self._cache.discard(keys[i])
            if m.serialized != NULL:
                data = PyBytes_FromStringAndSize(<char *>m.serialized, m.serialized_length)
                free(m.serialized)
                m.serialized = NULL
                if keys[i] is not None:
                    self._cache.store(keys[i], data)
            failure = _take_optional(&m.serialize_failure)
            if failure is not None:  # not cacheable: still usable
                logger.debug("extism_fast: cannot serialize module '%s': %s", name, failure)

    cdef _list_exports(self):
        cdef size_t i
        import sys
        self._callable = {}
        self._other_exports = {}
        for i in range(self.c.export_count):
            name = self.c.export_names[i].decode("utf-8", "replace")
            if self.c.export_shapes[i] == EXPORT_OTHER:
                self._other_exports[name] = i
            else:  # interned: a call's literal name (interned too) then matches by identity
                self._callable[sys.intern(name)] = i

    def function_exists(self, str name) -> bool:
        """True when the main module exports a function with this name that can be called as a
        plugin function (no parameters, returning i32 or nothing), as the official SDK answers."""
        return name in self._callable

    def _function_not_found(self, str name):
        """The FunctionNotFoundError of a call to ``name`` (for callers that check first, as
        ``extism-fast batch`` does): the message Plugin.call gives."""
        return function_not_found(name, self._callable)

    def __reduce__(self):
        """Pickled as its manifest (wasm bytes, or URL and hash), options and host functions by
        reference; unpickled once per process (see extism_fast/runtime/pickling.py)."""
        from extism_fast.runtime import pickling
        return pickling.reduce_compiled(self, self._modules)

    def __del__(self):
        """Accepted for the official SDK's explicit ``compiled.__del__()``: the compilation is
        freed once neither this object nor any Plugin made from it is left (freeing it earlier
        would pull the code from under those plugins)."""


def _defined_memories(list modules):
    """(minimum size in bytes, defined by main) of every memory each module defines; MemoryLimitError
    naming it when a minimum does not fit in 64 bits (what the store's checks take). A binary that
    cannot be read (never one wasmtime validated) adds nothing."""
    from extism_fast.manifest.plain import WASM_MAGIC  # loaded: the plain plugin's (no limits.py here)
    found = []
    for module in modules:
        data = module.data
        if not data.startswith(WASM_MAGIC):
            if b"memory" not in data:  # WAT that defines no memory: no conversion needed
                continue
            data = wat2wasm(data)
        for position, size in enumerate(_defined_memory_sizes(data) or ()):
            if size.bit_length() > 64:  # memory64 allows 2^48 pages of 64 KiB: 2^64 bytes, one too many
                raise MemoryLimitError(
                    f"memory {position} defined by module '{'main' if module.is_main else module.name}' has a "
                    f"minimum size of {size} bytes, more than a 64-bit address space holds (2^64 - 1 bytes)")
            found.append((size, module.is_main))
    return found


def _defined_memory_sizes(wasm):
    """The minimum size in bytes of each memory the module in ``wasm`` (bytes-like) defines, in
    order; None when the binary cannot be read. Read by kernel_c/wasm_sections.c (its header has
    the contract), so that a first plugin loads no module for it. A size is not bounded (a memory64
    minimum of 2^48 pages is 2^64 bytes): the caller range-checks it."""
    cdef Py_buffer view
    cdef wasm_sections_memory found[4]
    cdef wasm_sections_memory *memories = found
    cdef size_t count, i
    PyObject_GetBuffer(wasm, &view, PyBUF_SIMPLE)
    try:
        count = wasm_sections_defined_memories(<const uint8_t *>view.buf, view.len, found, 4)
        if count == WASM_SECTIONS_MALFORMED:
            return None
        if count > 4:  # rare: read again into a buffer that holds them all
            memories = <wasm_sections_memory *>malloc(count * sizeof(wasm_sections_memory))
            if memories == NULL:
                raise MemoryError()
            wasm_sections_defined_memories(<const uint8_t *>view.buf, view.len, memories, count)
        return [(<object>memories[i].minimum_pages) << memories[i].page_log2 for i in range(count)]
    finally:
        if memories != found:
            free(memories)
        PyBuffer_Release(&view)
