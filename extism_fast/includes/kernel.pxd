# Declarations of kernel_c, one `cdef extern` block per header (each header says what its unit owns).
from libc.stdint cimport uint8_t, uint32_t, uint64_t, int64_t, int32_t
from libc.stddef cimport ptrdiff_t
from extism_fast.includes.wasmtime cimport (
    wasm_engine_t, wasm_externkind_t, wasm_externtype_t, wasm_functype_t, wasm_trap_t, wasmtime_linker_t,
    wasmtime_module_t, wasmtime_store_t,
)


cdef extern from "vars.h" nogil:
    ctypedef struct var_store:
        pass
    void vars_clear(var_store *s)


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


cdef extern from "ticker.h" nogil:
    uint64_t ticker_now_ns()


cdef extern from "signals.h" nogil:
    int signals_restore()


cdef extern from "import_plan.h" nogil:
    ctypedef struct host_function:
        const char *module
        size_t module_length
        const char *name
        size_t name_length
        const wasm_functype_t *type

    ctypedef struct host_definitions:
        int wasi
        const host_function *functions
        size_t function_count

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


cdef extern from "vars.h" nogil:
    ctypedef struct kv_entry:
        uint8_t *key
        uint64_t key_len
        uint8_t *value
        uint64_t value_len


cdef extern from "engine.h" nogil:
    ctypedef enum engine_flags:
        ENGINE_EPOCH
        ENGINE_FUEL
        ENGINE_DEBUG
        ENGINE_PROFILER_SHIFT
        ENGINE_PROFILER_MASK
    enum: ENGINE_FLAG_VALUES

    ctypedef struct engine_bundle:
        wasm_engine_t *engine
        wasmtime_module_t *access_module
        int flags
        uint32_t pool_instances

    int instance_engine_new(int flags, uint32_t pool_instances, engine_bundle *out, char **error)


cdef extern from "compiled.h" nogil:
    ctypedef enum export_shape:
        EXPORT_RETURNS_NOTHING
        EXPORT_RETURNS_I32
        EXPORT_OTHER

    ctypedef struct compiled_plugin:
        const engine_bundle *bundle
        wasmtime_linker_t *linker
        wasmtime_module_t *main
        size_t dep_count
        wasmtime_module_t **deps
        char **dep_names
        ptrdiff_t start_index
        size_t export_count
        char **export_names
        uint8_t *export_shapes

    void compiled_plugin_delete(compiled_plugin *c)
    int compiled_plugin_link(compiled_plugin *c, const host_definitions *host, link_problem *problem,
                             char **error)
    void compiled_plugin_note_memory(compiled_plugin *c, uint64_t bytes)
    void compiled_plugin_note_main_memories(compiled_plugin *c, uint64_t bytes)


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

    # The arrays only: the scalars are written by name at options.c_layout()'s offsets (_pack_options).
    ctypedef struct instance_options:
        const kv_entry *config
        size_t config_count
        const wasi_preopen *preopens
        size_t preopen_count
        const char *const *wasi_args
        size_t wasi_arg_count
        const char *const *wasi_env
        size_t wasi_env_count

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

    ctypedef struct plugin_instance:
        void *owner
        kernel *kernel
        memory_budget budget
        var_store vars
        int32_t http_status
        void *saved_thread
        int holds_gil
        int needs_store
        int views_exposed
        uint64_t fuel
        uint64_t fuel_consumed
        uint64_t deadline_ns
        interrupt_reason interrupt

    plugin_instance *instance_new(const compiled_plugin *compiled, void *owner, const instance_options *options,
                                  char **error)
    void instance_delete(plugin_instance *p)
    int instance_use_compiled(plugin_instance *p, const compiled_plugin *compiled)


cdef extern from "store.h" nogil:
    void instance_reset_kernel(plugin_instance *p)
    const uint8_t *instance_kernel_memory(plugin_instance *p, size_t *length)
    const uint8_t *instance_main_memory(plugin_instance *p, size_t *length)
    const uint8_t *instance_take_wasi_output(plugin_instance *p, int stream, size_t *length)


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

    ctypedef struct host_hooks:
        void (*log)(void *owner, int level, const uint8_t *msg, size_t len) noexcept nogil
        int32_t (*log_level)(void *owner) noexcept nogil
        void *(*release_gil)() noexcept nogil
        wasm_trap_t *(*http_request)(void *owner, uint64_t request, uint64_t body, uint64_t *response) noexcept nogil
        int (*keep_store)(void *owner, wasmtime_store_t *store) noexcept nogil

    host_hooks instance_hooks
    plugin_instance *current_instance

    void instance_prepare(plugin_instance *p, int holds_gil, call_result *r)
    int instance_cancel_requested(plugin_instance *p)
    void instance_call(plugin_instance *p, size_t export_index, const uint8_t *input,
                       uint64_t input_length, int holds_gil, call_result *r)
    void instance_cancel(plugin_instance *p)
    int instance_set_http_headers(plugin_instance *p, const uint8_t *json, uint64_t length)
    wasm_trap_t *instance_fail(plugin_instance *p, failure_kind kind, const char *message)


cdef extern from "env_imports.h" nogil:
    int env_imports_define(wasmtime_linker_t *linker, char **error)
