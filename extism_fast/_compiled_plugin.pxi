# _compiled_plugin.pxi - CompiledPlugin: compile, link and check imports; the compile cache.
# Part of extism_fast/_runtime.pyx (included there; one Cython module).

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


cdef str _limits_text(uint64_t minimum, bint bounded, uint64_t maximum, str unit):
    return f"min {minimum}{unit}, " + (f"max {maximum}" if bounded else "no max")


cdef str _extern_text(const wasm_externtype_t *et):
    """An import's or export's type: a function's signature, a global's value type and mutability,
    a table's element type and limits, a memory's limits (in pages)."""
    cdef const wasm_globaltype_t *gt
    cdef const wasm_tabletype_t *tt
    cdef const wasm_memorytype_t *mt
    cdef const wasm_limits_t *limits
    cdef uint64_t maximum = 0
    kind = wt.wasm_externtype_kind(et)
    if kind == WASM_EXTERN_FUNC:
        return "func " + _signature_text(wt.wasm_externtype_as_functype_const(et))
    if kind == WASM_EXTERN_GLOBAL:
        gt = wt.wasm_externtype_as_globaltype_const(et)
        mutable = "mutable" if wt.wasm_globaltype_mutability(gt) == WASM_VAR else "immutable"
        return f"global {_KIND_NAMES.get(wt.wasm_valtype_kind(wt.wasm_globaltype_content(gt)), '?')} ({mutable})"
    if kind == WASM_EXTERN_TABLE:
        tt = wt.wasm_externtype_as_tabletype_const(et)
        limits = wt.wasm_tabletype_limits(tt)
        element = _KIND_NAMES.get(wt.wasm_valtype_kind(wt.wasm_tabletype_element(tt)), "?")
        return f"table {element} ({_limits_text(limits.min, limits.max != 0xFFFFFFFF, limits.max, '')})"
    if kind == WASM_EXTERN_MEMORY:
        mt = wt.wasm_externtype_as_memorytype_const(et)
        bounded = wt.wasmtime_memorytype_maximum(mt, &maximum)
        flags = (", 64-bit" if wt.wasmtime_memorytype_is64(mt) else "") + (
            ", shared" if wt.wasmtime_memorytype_isshared(mt) else "")
        return f"memory ({_limits_text(wt.wasmtime_memorytype_minimum(mt), bounded, maximum, ' pages')}{flags})"
    return "extern"


_EXTERN_KIND_NAMES = {WASM_EXTERN_FUNC: "function", WASM_EXTERN_GLOBAL: "global", WASM_EXTERN_TABLE: "table",
                      WASM_EXTERN_MEMORY: "memory"}


cdef str _link_problem_text(const link_problem *problem, list names):
    """The message of a link problem (import_plan.h); names: the modules' names by position."""
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
        return f"{where}, which is not a function; only functions can be imported from the host"
    if kind == LINK_PROBLEM_NUL_NAME:
        return f"{where}: a module or field name with a NUL byte (shown as \\0) cannot be linked"
    if kind == LINK_PROBLEM_ABI_UNKNOWN:
        return f"{where}: no such function in the Extism ABI"
    if kind == LINK_PROBLEM_WASI_DISABLED:
        return f"{where}, but WASI is not enabled (pass wasi=True to grant it)"
    found = _signature_text(wt.wasm_externtype_as_functype_const(problem.found))
    if kind == LINK_PROBLEM_HOST_MISSING:
        if lacking:
            return f"{where} {found}, but {lacking} and no host function with that namespace and name was given"
        return f"{where} {found}: no host function with that namespace and name was given"
    expected = _signature_text(wt.wasm_externtype_as_functype_const(problem.expected))
    if kind == LINK_PROBLEM_ABI_TYPE:
        return f"{where} with type {found}, but the ABI's type is {expected}"
    return f"{where} with type {found}, but the host function has type {expected}"  # LINK_PROBLEM_HOST_TYPE


cdef _link_compiled(compiled_plugin *c, const host_definitions *host):
    """compiled_plugin_link, its failure raised: a LinkError (or MemoryError)."""
    cdef char *message = NULL
    cdef link_problem problem
    cdef size_t i
    memset(&problem, 0, sizeof(problem))
    if compiled_plugin_link(c, host, &problem, &message) == 0:
        return
    if problem.kind == LINK_PROBLEM_MEMORY:
        link_problem_free(&problem)
        raise MemoryError()
    if problem.kind == LINK_PROBLEM_NONE:
        raise LinkError(_take_message(message))
    names = [c.dep_names[i].decode() for i in range(c.dep_count)] + ["main"]
    try:
        text = _link_problem_text(&problem, names)
    finally:
        link_problem_free(&problem)
    raise LinkError(text)


cdef class _Compilation:
    """The plugin's modules compiled and linked for one engine (owns the compiled_plugin)."""

    def __dealloc__(self):
        compiled_plugin_delete(self.c)
        self.c = NULL


cdef class CompiledPlugin:
    """A compiled, linked plugin: instantiate it cheaply with ``Plugin(compiled)``.

    ``plugin`` is anything ``Plugin`` accepts (wasm bytes, WAT, a path, a JSON or dict manifest,
    a Manifest). Instances share the compiled modules and host functions. ``fuel``: an
    instruction budget per call. ``cache``: the on-disk compile cache (see compile_cache.py):
    None follows EXTISM_FAST_CACHE (on by default), False disables it, or a directory.
    ``interruptible``: compile with epoch interruption, which timeouts and cancel need, as the
    official runtime always does (None, the default, means True). ``False`` is an opt-in speed
    mode for trusted plugins: no checks in the plugin's loops (a tight loop runs up to ~25%
    faster), but no timeout and no cancel (its first ``cancel_handle()``, before any call, moves
    it to an interruptible compilation, at the cost of compiling once more).
    """

    def __init__(self, plugin, bint wasi=False, functions=HOST_FN_REGISTRY, *, config=None, fuel=None,
                 cache=None, interruptible=None):
        if self.manifest is not None:  # plugins may be running on this compilation
            raise Error("CompiledPlugin.__init__ has already run on this object: create a new one")
        self.manifest = coerce_source(plugin, config=config)
        self._cache = cache_from_argument(cache)
        self.wasi = wasi
        self.interruptible = compile_options(self.manifest, wasi, fuel, interruptible)
        self.fuel = fuel
        self._default_options = {}
        # Several functions with one namespace and name: the last wins, as in the official SDK.
        unique = {(f.namespace, f.name): f for f in (functions or ())}
        self.functions = list(unique.values())
        self._entries = [_HostFunctionEntry(f) for f in self.functions]
        self._modules = self.manifest.load_modules()
        self._compilations = {}
        self.c = self._compilation(_engine_for(fuel is not None, self.interruptible))
        self._list_exports()
        signals_restore()  # not per call: README, "Wasm traps and crash handlers"

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
        cdef _Compilation compilation = _Compilation.__new__(_Compilation)
        compilation.c = <compiled_plugin *>calloc(1, sizeof(compiled_plugin))
        if compilation.c == NULL:
            raise MemoryError()
        compilation.c.bundle = engine
        self._compile(compilation.c, source)
        self._link(compilation.c)
        self._note_defined_memories(compilation.c)
        # Another thread may have compiled the same one meanwhile (compiling releases the GIL):
        # keep the first, which instances may already run; this one is freed.
        return self._compilations.setdefault(_engine_key(engine), compilation)

    cdef wasmtime_module_t *_compile_one(self, engine_bundle *engine, str name, bytes data,
                                         wasmtime_module_t *source) except NULL:
        cdef wasmtime_module_t *module = NULL
        cdef wasmtime_error_t *error
        cdef wasm_byte_vec_t serialized
        if source != NULL:
            module = _transfer_module(source, engine)
            if module != NULL:
                return module
        key = self._cache.key(data, _engine_description(engine)) if self._cache is not None else None
        if key is not None:
            module = self._load_cached(engine, key)
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
            error = wt.wasmtime_module_new(engine.engine, p, n, &module)
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

    cdef wasmtime_module_t *_load_cached(self, engine_bundle *engine, object key) except? NULL:
        """A module from an intact cache entry, or NULL (then it is compiled again). On a pooled
        engine an intact entry that does not load is a module too big for the pool: CompileError,
        so that the caller goes to the on-demand engine without compiling here first."""
        cdef wasmtime_module_t *module = NULL
        cdef wasmtime_error_t *error
        cdef const uint8_t[::1] payload
        found = self._cache.load(key)
        if found is None:
            return NULL
        payload = found
        cdef const uint8_t *p = &payload[0]
        cdef size_t n = payload.shape[0]
        with nogil:
            error = wt.wasmtime_module_deserialize(engine.engine, p, n, &module)
        if error != NULL and engine.pool_instances:  # keep the entry: the on-demand engine loads it
            raise CompileError(f"cached module does not fit the instance pool: {_take_wasmtime_error(error)}")
        if error != NULL:  # intact but not for this engine: replace it
            logger.warning("extism_fast: compile cache entry %s rejected by wasmtime: %s", key,
                           _take_wasmtime_error(error))
            self._cache.discard(key)
            return NULL
        return module

    cdef _compile(self, compiled_plugin *c, const compiled_plugin *source):
        deps = [m for m in self._modules if not m.is_main]
        c.deps = <wasmtime_module_t **>calloc(len(deps) + 1, sizeof(wasmtime_module_t *))
        c.dep_names = <char **>calloc(len(deps) + 1, sizeof(char *))
        if c.deps == NULL or c.dep_names == NULL:
            raise MemoryError()
        for i, m in enumerate(deps):
            name = m.name.encode()
            c.dep_names[c.dep_count] = <char *>malloc(len(name) + 1)
            if c.dep_names[c.dep_count] == NULL:
                raise MemoryError()
            memcpy(c.dep_names[c.dep_count], <char *>name, len(name) + 1)
            c.deps[c.dep_count] = NULL
            c.dep_count += 1
            c.deps[c.dep_count - 1] = self._compile_one(<engine_bundle *>c.bundle, m.name, m.data,
                                                        source.deps[i] if source != NULL else NULL)
        c.main = self._compile_one(<engine_bundle *>c.bundle, "main", self._modules[-1].data,
                                   source.main if source != NULL else NULL)

    cdef _define_functions(self, compiled_plugin *c, host_function *defined, list names):
        """Define the ABI functions, WASI if enabled and the host functions on the linker; each host
        function is described in `defined` (its type then owned there, its names kept in `names`)."""
        cdef char *message = NULL
        cdef wasm_functype_t *ft
        cdef wasmtime_error_t *error
        cdef _HostFunctionEntry entry
        cdef size_t i = 0
        if env_imports_define(c.linker, &message) != 0:
            raise LinkError(_take_message(message))
        if self.wasi:
            error = wt.wasmtime_linker_define_wasi(c.linker)
            if error != NULL:
                raise LinkError(f"cannot define WASI: {_take_wasmtime_error(error)}")
        for entry in self._entries:
            fn = entry.function
            ns, name = fn.namespace.encode(), fn.name.encode()
            if fn.namespace == "extism:host/env":
                raise LinkError(f"host function {entry.label}: the namespace extism:host/env is reserved for the ABI")
            ft = _functype(list(fn.args), list(fn.returns))
            names.append((ns, name))
            defined[i].module = ns
            defined[i].module_length = len(ns)
            defined[i].name = name
            defined[i].name_length = len(name)
            defined[i].type = ft
            i += 1
            error = wt.wasmtime_linker_define_func_unchecked(
                c.linker, ns, len(ns), name, len(name), ft, _host_trampoline, <void *>entry, NULL)
            if error != NULL:
                raise LinkError(f"host function {entry.label}: {_take_wasmtime_error(error)}")

    cdef _link(self, compiled_plugin *c):
        """Define what the host provides on a new linker, then build the import plans, checking
        every import (compiled_plugin_link): the first problem is raised as a LinkError."""
        cdef host_definitions host
        cdef Py_ssize_t i
        cdef host_function *defined = <host_function *>calloc(len(self._entries) + 1, sizeof(host_function))
        if defined == NULL:
            raise MemoryError()
        memset(&host, 0, sizeof(host))
        host.wasi = self.wasi
        host.functions = defined
        keep = []  # the host functions' encoded names, which `defined` points into
        try:
            c.linker = wt.wasmtime_linker_new(c.bundle.engine)
            self._define_functions(c, defined, keep)
            host.function_count = len(keep)
            _link_compiled(c, &host)
        finally:
            for i in range(len(keep)):
                wt.wasm_functype_delete(<wasm_functype_t *>defined[i].type)
            free(defined)

    cdef _note_defined_memories(self, compiled_plugin *c):
        """Give the store what the C API does not tell, read from the binaries once
        (extism_fast.wasm_sections): the memories a module defines without exporting (the
        budget's cap, memory_budget.c), and the memories main defines (store.c's preflight)."""
        if self._defined_memories is None:
            self._defined_memories = _defined_memories(self._modules)
        for size, is_main in self._defined_memories:
            compiled_plugin_note_memory(c, size)
            if is_main:
                compiled_plugin_note_main_memories(c, size)

    cdef _list_exports(self):
        cdef size_t i
        self._callable = {}
        self._other_exports = {}
        for i in range(self.c.export_count):
            name = self.c.export_names[i].decode("utf-8", "replace")
            if self.c.export_shapes[i] == EXPORT_OTHER:
                self._other_exports[name] = i
            else:
                self._callable[name] = i

    def function_exists(self, str name) -> bool:
        """True when the main module exports a function with this name that can be called as a
        plugin function (no parameters, returning i32 or nothing), as the official SDK answers."""
        return name in self._callable

    def __reduce__(self):
        """Pickled as its manifest (wasm bytes, or URL and hash), options and host functions by
        reference; unpickled once per process (see extism_fast/pickling.py)."""
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
    from extism_fast.runtime.wasm_sections import defined_memory_sizes
    found = []
    for module in modules:
        data = module.data
        if not data.startswith(b"\0asm"):
            if b"memory" not in data:  # WAT that defines no memory: no conversion needed
                continue
            data = wat2wasm(data)
        for position, size in enumerate(defined_memory_sizes(data) or ()):
            if size > U64_MAX:  # memory64 allows 2^48 pages of 64 KiB: 2^64 bytes, one too many
                raise MemoryLimitError(
                    f"memory {position} defined by module '{'main' if module.is_main else module.name}' has a "
                    f"minimum size of {size} bytes, more than a 64-bit address space holds (2^64 - 1 bytes)")
            found.append((size, module.is_main))
    return found


cdef wasmtime_module_t *_transfer_module(wasmtime_module_t *module, engine_bundle *engine):
    """`module` loaded on another engine with the same code settings, or NULL (then compile)."""
    cdef wasm_byte_vec_t serialized
    cdef wasmtime_module_t *copy = NULL
    cdef wasmtime_error_t *error = wt.wasmtime_module_serialize(module, &serialized)
    if error == NULL:
        with nogil:
            error = wt.wasmtime_module_deserialize(engine.engine, serialized.data, serialized.size, &copy)
        wt.wasm_byte_vec_delete(&serialized)
    if error != NULL:
        logger.debug("extism_fast: compiling again for the on-demand engine: %s", _take_wasmtime_error(error))
        return NULL
    return copy
