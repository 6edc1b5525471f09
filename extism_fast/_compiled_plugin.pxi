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


cdef class _Compilation:
    """The plugin's modules compiled and linked for one engine (owns the compiled_plugin)."""
    cdef compiled_plugin *c

    def __dealloc__(self):
        compiled_plugin_delete(self.c)
        self.c = NULL


cdef class CompiledPlugin:
    """A compiled, linked plugin: instantiate it cheaply with ``Plugin(compiled)``.

    ``plugin`` is anything ``Plugin`` accepts (wasm bytes, WAT, a path, a JSON or dict manifest,
    a Manifest). Instances share the compiled modules and host functions. ``fuel``: an
    instruction budget per call. ``cache``: the on-disk compile cache (see compile_cache.py):
    None follows EXTISM_FAST_CACHE (on by default), False disables it, or a directory.
    ``interruptible``: compile with epoch interruption, which timeouts and cancel need and which
    slows loops in plugin code down (about 25% on a tight loop). None (the default) means: when the
    manifest sets ``timeout_ms``. A plugin compiled without it gets it when its first
    ``cancel_handle()`` is requested, at the cost of compiling once more.
    """
    cdef compiled_plugin *c  # the first compilation's (see _compilations)
    cdef readonly object manifest
    cdef readonly bint wasi
    cdef readonly list functions
    cdef readonly object fuel
    cdef readonly bint interruptible
    cdef object _cache
    cdef list _entries
    cdef list _modules       # the loaded modules, for compiling them on another engine
    cdef dict _compilations  # _engine_key -> _Compilation
    cdef dict _callable      # export name -> index, for () -> i32 and () -> ()
    cdef dict _other_exports  # export name -> signature text, for the rest

    def __init__(self, plugin, bint wasi=False, functions=HOST_FN_REGISTRY, *, config=None, fuel=None,
                 cache=None, interruptible=None):
        self.manifest = coerce_source(plugin, config=config)
        self._cache = cache_from_argument(cache)
        self.wasi = wasi
        if fuel is not None and (isinstance(fuel, bool) or not isinstance(fuel, int) or fuel <= 0):
            raise ManifestError(f"fuel must be a positive integer (instructions per call), got {fuel!r}")
        self.fuel = fuel
        self.interruptible = _resolve_interruptible(self.manifest, interruptible)
        # Several functions with one namespace and name: the last wins, as in the official SDK.
        unique = {(f.namespace, f.name): f for f in (functions or ())}
        self.functions = list(unique.values())
        self._entries = [_HostFunctionEntry(f) for f in self.functions]
        self._modules = self.manifest.load_modules()
        self._compilations = {}
        self.c = self._compilation(_engine_for(fuel is not None, self.interruptible))
        self._list_exports()

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

    cdef _define_functions(self, compiled_plugin *c):
        cdef char *message = NULL
        cdef wasm_functype_t *ft
        cdef wasmtime_error_t *error
        cdef _HostFunctionEntry entry
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
            error = wt.wasmtime_linker_define_func_unchecked(
                c.linker, ns, len(ns), name, len(name), ft, _host_trampoline, <void *>entry, NULL)
            wt.wasm_functype_delete(ft)
            if error != NULL:
                raise LinkError(f"host function {entry.label}: {_take_wasmtime_error(error)}")

    cdef _link(self, compiled_plugin *c):
        cdef char *message = NULL
        cdef size_t i
        c.linker = wt.wasmtime_linker_new(c.bundle.engine)
        self._define_functions(c)
        user = {(f.namespace, f.name): f for f in self.functions}
        dep_names = {c.dep_names[i].decode(): _module_exports(c.deps[i]) for i in range(c.dep_count)}
        for i in range(c.dep_count):
            self._check_imports(c.deps[i], c.dep_names[i].decode(), user, dep_names)
        self._check_imports(c.main, "main", user, dep_names)
        if compiled_plugin_link(c, &message) != 0:
            raise LinkError(_take_message(message))

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
        """True when the main module exports a function with this name."""
        return name in self._callable or name in self._other_exports


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
