# Declarations of kernel_c, one `cdef extern` block per header (each header says what its unit owns).
from libc.stdint cimport uint8_t, uint32_t, uint64_t, int64_t, int32_t
from libc.stddef cimport ptrdiff_t
from extism_fast.includes.wasmtime cimport (
    wasm_engine_t, wasm_externkind_t, wasm_externtype_t, wasm_trap_t, wasmtime_func_unchecked_callback_t,
    wasmtime_store_t,
)


cdef extern from "kernel.h" nogil:
    ctypedef struct kernel:
        uint8_t *base
        uint64_t limit
        uint64_t end
        uint64_t input_offset
        uint64_t input_length
        int strict
    uint64_t kernel_alloc(kernel *k, uint64_t n)
    void kernel_free(kernel *k, uint64_t offset)
    uint64_t kernel_length(const kernel *k, uint64_t offset)
    uint8_t *kernel_ptr(const kernel *k, uint64_t offset, uint64_t n)
    uint64_t kernel_alloc_bytes(kernel *k, const uint8_t *data, uint64_t len)


cdef extern from "sha256.h" nogil:
    void sha256_digest(const uint8_t *data, size_t length, uint8_t *out)


cdef extern from "wasm_sections.h" nogil:
    ctypedef struct wasm_sections_memory:
        uint64_t minimum_pages
        unsigned page_log2
    size_t WASM_SECTIONS_MALFORMED
    size_t wasm_sections_defined_memories(const uint8_t *wasm, size_t length, wasm_sections_memory *out,
                                          size_t capacity)


cdef extern from "ticker.h" nogil:
    uint64_t ticker_now_ns()


cdef extern from "signals.h" nogil:
    int signals_restore()


cdef extern from "sigint.h" nogil:
    int sigint_watch()
    uint64_t sigint_count()


cdef extern from "link_problem.h" nogil:
    enum: LINK_NO_PROVIDER

    ctypedef enum link_problem_kind:
        LINK_PROBLEM_NONE
        LINK_PROBLEM_TYPE
        LINK_PROBLEM_CYCLE
        LINK_PROBLEM_MEMORY
        LINK_PROBLEM_NOT_FUNCTION
        LINK_PROBLEM_ABI_UNKNOWN
        LINK_PROBLEM_ABI_TYPE
        LINK_PROBLEM_WASI_DISABLED
        LINK_PROBLEM_HOST_TYPE
        LINK_PROBLEM_HOST_MISSING
        LINK_PROBLEM_NUL_NAME

    ctypedef struct link_problem:
        link_problem_kind kind
        size_t importer
        size_t provider
        char *module
        char *name
        wasm_externkind_t import_kind
        wasm_externtype_t *expected
        wasm_externtype_t *found
        size_t *cycle
        size_t cycle_length

    void link_problem_free(link_problem *problem)


cdef extern from "wasm_types.h" nogil:
    void wasm_types_describe(const wasm_externtype_t *type, int signature_only, char *out, size_t out_len)


cdef extern from "vars.h" nogil:
    ctypedef struct kv_entry:
        uint8_t *key
        uint64_t key_len
        uint8_t *value
        uint64_t value_len


cdef extern from "kernel_access.h" nogil:
    const char *kernel_access_wat(size_t *length)


cdef extern from "engine.h" nogil:
    ctypedef enum engine_flags:
        ENGINE_EPOCH
        ENGINE_FUEL
        ENGINE_DEBUG
        ENGINE_PROFILER_SHIFT
        ENGINE_PROFILER_MASK
    enum: ENGINE_FLAG_VALUES

    ctypedef struct engine_bundle:
        wasm_engine_t *engine  # NULL until made (engine_new)
        int flags
        uint32_t pool_instances

    ctypedef struct engine_access_cache:
        const uint8_t *cached
        size_t cached_length
        int serialize
        uint8_t *serialized
        size_t serialized_length

    int engine_new(int flags, uint32_t pool_instances, engine_access_cache *access, engine_bundle *out,
                   char **error)


cdef extern from "compiled.h" nogil:
    ctypedef enum export_shape:
        EXPORT_RETURNS_NOTHING
        EXPORT_RETURNS_I32
        EXPORT_OTHER

    ctypedef struct compiled_plugin:
        const engine_bundle *bundle
        size_t dep_count
        char **dep_names
        ptrdiff_t start_index
        size_t export_count
        char **export_names
        uint8_t *export_shapes

    void compiled_plugin_delete(compiled_plugin *c)


cdef extern from "compile.h" nogil:
    ctypedef enum module_format:
        MODULE_BINARY
        MODULE_TEXT
        MODULE_UNKNOWN

    ctypedef struct module_source:
        const char *name
        const uint8_t *bytes
        size_t length
        int format
        const uint8_t *cached
        size_t cached_length
        const char *cached_path
        int cached_fd
        char *cache_refusal
        uint8_t *serialized
        size_t serialized_length
        char *serialize_failure
        char *transfer_failure

    ctypedef struct host_function_source:
        const char *module
        size_t module_length
        const char *name
        size_t name_length
        const uint8_t *params
        size_t param_count
        const uint8_t *results
        size_t result_count
        void *env

    ctypedef struct compile_request:
        const engine_bundle *bundle
        module_source *modules
        size_t module_count
        const compiled_plugin *source
        int serialize
        int wasi
        const host_function_source *functions
        size_t function_count
        wasmtime_func_unchecked_callback_t callback
        const uint64_t *defined_memories
        const uint8_t *defined_by_main
        size_t defined_memory_count

    ctypedef enum compile_failure_kind:
        COMPILE_OK
        COMPILE_NOT_WASM
        COMPILE_INVALID_TEXT
        COMPILE_INVALID_MODULE
        COMPILE_CACHE_TOO_BIG
        COMPILE_ABI
        COMPILE_WASI
        COMPILE_HOST_RESERVED
        COMPILE_HOST_ARITY
        COMPILE_HOST_DEFINE
        COMPILE_LINK
        COMPILE_FAILED

    ctypedef struct compile_failure:
        compile_failure_kind kind
        size_t module
        size_t function
        char *message
        link_problem problem

    compiled_plugin *compile_plugin(compile_request *request, compile_failure *failure)
    int compile_wat2wasm(const uint8_t *text, size_t length, uint8_t **out, size_t *out_length, char **error)


cdef extern from "memory_budget.h" nogil:
    ctypedef struct memory_budget:
        int64_t limit
        int refused

    void memory_budget_describe(const memory_budget *b, char *out, size_t out_len)


cdef extern from "instance.h" nogil:
    ctypedef struct wasi_preopen:
        char *host_path
        char *guest_path
        int read_only

    ctypedef struct instance_settings:  # generated from runtime/declarations.py's C_SETTINGS: its size only
        pass

    # The arrays only: the scalars (settings, an instance_settings) are written by name at
    # options.c_layout()'s offsets (_pack_options).
    ctypedef struct instance_options:
        const kv_entry *config
        size_t config_count
        const wasi_preopen *preopens
        size_t preopen_count
        const char *const *wasi_args
        size_t wasi_arg_count
        const char *const *wasi_env
        size_t wasi_env_count

    ctypedef struct plugin_instance:  # opaque: read through the accessors below
        pass

    plugin_instance *instance_new(const compiled_plugin *compiled, void *owner, const instance_options *options,
                                  char **error)
    void instance_delete(plugin_instance *p)
    int instance_use_compiled(plugin_instance *p, const compiled_plugin *compiled)
    void *instance_owner(const plugin_instance *p)
    kernel *instance_kernel(const plugin_instance *p)
    uint64_t instance_fuel(const plugin_instance *p)
    uint64_t instance_fuel_consumed(const plugin_instance *p)
    int instance_needs_store(const plugin_instance *p)
    const memory_budget *instance_budget(const plugin_instance *p)
    void instance_set_views_exposed(plugin_instance *p, int exposed)
    void instance_clear_vars(plugin_instance *p)


cdef extern from "store.h" nogil:
    void store_reset_kernel(plugin_instance *p)
    const uint8_t *store_kernel_memory(plugin_instance *p, size_t *length)
    const uint8_t *store_main_memory(plugin_instance *p, size_t *length)
    void store_delete_detached(wasmtime_store_t *store)
    const uint8_t *store_take_wasi_output(plugin_instance *p, int stream, size_t *length)


cdef extern from "call.h" nogil:
    ctypedef enum call_status:
        CALL_OK
        CALL_PLUGIN_ERROR
        CALL_NONZERO
        CALL_TRAP
        CALL_TIMEOUT
        CALL_CANCELLED
        CALL_OUT_OF_FUEL
        CALL_INPUT_TOO_LARGE
        CALL_HOST_FAILURE
        CALL_EXIT
        CALL_INSTANTIATE
        CALL_POOL_EXHAUSTED

    ctypedef struct call_result:
        call_status status
        int32_t rc
        failure_kind failure
        const uint8_t *output
        uint64_t output_length
        char *message

    void call_prepare(plugin_instance *p, int holds_gil, call_result *r)
    void call_run(plugin_instance *p, size_t export_index, const uint8_t *input,
                  uint64_t input_length, int holds_gil, call_result *r)
    void call_host_function_returned(plugin_instance *p)
    void call_cancel(plugin_instance *p)


cdef extern from "running.h" nogil:
    ctypedef enum failure_kind:
        FAILURE_NONE
        FAILURE_TRAP
        FAILURE_LIMIT
        FAILURE_HOST_FUNCTION
        FAILURE_DENIED
        FAILURE_HOST_CALL

    ctypedef enum interrupt_reason:
        INTERRUPT_NONE
        INTERRUPT_TIMEOUT
        INTERRUPT_CANCEL

    ctypedef struct host_hooks:
        void (*log)(void *owner, int level, const uint8_t *msg, size_t len) noexcept nogil
        int32_t (*log_level)(void *owner) noexcept nogil
        void *(*release_gil)() noexcept nogil
        void (*restore_gil)(void *thread_state) noexcept nogil
        wasm_trap_t *(*http_request)(void *owner, uint64_t request, uint64_t body, uint64_t *response) noexcept nogil
        int (*keep_store)(void *owner, wasmtime_store_t *store) noexcept nogil
        int (*on_signal_thread)() noexcept nogil
        int (*gil_wanted)() noexcept nogil

    host_hooks running_hooks
    plugin_instance *current_instance

    int running_cancel_requested(plugin_instance *p)
    int running_set_http_headers(plugin_instance *p, const uint8_t *json, uint64_t length)
    void running_release_gil(plugin_instance *p)
    int running_restore_gil(plugin_instance *p)
    uint64_t running_deadline_ns(const plugin_instance *p)
    void running_set_http_status(plugin_instance *p, int32_t status)
    void running_interrupted(plugin_instance *p, interrupt_reason reason)


cdef extern from "env_imports.h" nogil:
    wasm_trap_t *env_imports_fail(plugin_instance *p, failure_kind kind, const char *message)
