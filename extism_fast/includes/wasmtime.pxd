# Declarations of the wasmtime C API subset in use, from kernel_c/wasmtime_api.h.
# Functions are reached through the table `wt` that wt_load() fills from the wheel's library.
from libc.stdint cimport uint8_t, uint32_t, uint64_t, int64_t


cdef extern from "wasmtime_api.h" nogil:
    ctypedef struct wasm_engine_t
    ctypedef struct wasm_trap_t
    ctypedef struct wasm_valtype_t
    ctypedef struct wasm_functype_t
    ctypedef struct wasm_externtype_t
    ctypedef struct wasm_globaltype_t
    ctypedef struct wasm_tabletype_t
    ctypedef struct wasm_memorytype_t
    ctypedef struct wasm_importtype_t
    ctypedef struct wasm_exporttype_t
    ctypedef struct wasmtime_error_t
    ctypedef struct wasmtime_module_t
    ctypedef struct wasmtime_linker_t
    ctypedef struct wasmtime_store_t
    ctypedef struct wasmtime_caller_t

    ctypedef struct wasm_byte_vec_t:
        size_t size
        uint8_t *data
    ctypedef wasm_byte_vec_t wasm_name_t
    ctypedef struct wasm_valtype_vec_t:
        size_t size
        wasm_valtype_t **data
    ctypedef struct wasm_importtype_vec_t:
        size_t size
        wasm_importtype_t **data
    ctypedef struct wasm_exporttype_vec_t:
        size_t size
        wasm_exporttype_t **data

    ctypedef struct wasm_limits_t:
        uint32_t min
        uint32_t max
    ctypedef uint8_t wasm_mutability_t
    enum:
        WASM_CONST
        WASM_VAR

    ctypedef uint8_t wasm_valkind_t
    ctypedef uint8_t wasm_externkind_t
    enum:
        WASM_I32
        WASM_I64
        WASM_F32
        WASM_F64
        WASM_V128
        WASM_EXTERNREF
        WASM_FUNCREF
        WASM_EXTERN_FUNC
        WASM_EXTERN_GLOBAL
        WASM_EXTERN_TABLE
        WASM_EXTERN_MEMORY

    ctypedef union wasmtime_val_raw_t:
        int i32
        int64_t i64
        float f32
        double f64
        uint8_t v128[16]
        void *funcref

    ctypedef wasm_trap_t *(*wasmtime_func_unchecked_callback_t)(
        void *env, wasmtime_caller_t *caller, wasmtime_val_raw_t *args, size_t nargs) noexcept nogil
    ctypedef void (*wt_finalizer_t)(void *) noexcept nogil

    ctypedef struct wt_api_t:
        void (*wasm_byte_vec_delete)(wasm_byte_vec_t *) noexcept nogil
        wasmtime_error_t *(*wasmtime_wat2wasm)(const char *, size_t, wasm_byte_vec_t *) noexcept nogil
        wasmtime_error_t *(*wasmtime_module_new)(wasm_engine_t *, const uint8_t *, size_t, wasmtime_module_t **) noexcept nogil
        void (*wasmtime_module_delete)(wasmtime_module_t *) noexcept nogil
        void (*wasmtime_store_delete)(wasmtime_store_t *) noexcept nogil
        wasmtime_error_t *(*wasmtime_module_serialize)(wasmtime_module_t *, wasm_byte_vec_t *) noexcept nogil
        wasmtime_error_t *(*wasmtime_module_deserialize)(wasm_engine_t *, const uint8_t *, size_t, wasmtime_module_t **) noexcept nogil
        void (*wasmtime_module_imports)(const wasmtime_module_t *, wasm_importtype_vec_t *) noexcept nogil
        void (*wasm_importtype_vec_delete)(wasm_importtype_vec_t *) noexcept nogil
        void (*wasmtime_module_exports)(const wasmtime_module_t *, wasm_exporttype_vec_t *) noexcept nogil
        void (*wasm_exporttype_vec_delete)(wasm_exporttype_vec_t *) noexcept nogil
        const wasm_name_t *(*wasm_exporttype_name)(const wasm_exporttype_t *) noexcept nogil
        const wasm_externtype_t *(*wasm_exporttype_type)(const wasm_exporttype_t *) noexcept nogil
        const wasm_name_t *(*wasm_importtype_module)(const wasm_importtype_t *) noexcept nogil
        const wasm_name_t *(*wasm_importtype_name)(const wasm_importtype_t *) noexcept nogil
        const wasm_externtype_t *(*wasm_importtype_type)(const wasm_importtype_t *) noexcept nogil
        wasm_externkind_t (*wasm_externtype_kind)(const wasm_externtype_t *) noexcept nogil
        const wasm_functype_t *(*wasm_externtype_as_functype_const)(const wasm_externtype_t *) noexcept nogil
        const wasm_valtype_vec_t *(*wasm_functype_params)(const wasm_functype_t *) noexcept nogil
        const wasm_globaltype_t *(*wasm_externtype_as_globaltype_const)(const wasm_externtype_t *) noexcept nogil
        const wasm_tabletype_t *(*wasm_externtype_as_tabletype_const)(const wasm_externtype_t *) noexcept nogil
        const wasm_memorytype_t *(*wasm_externtype_as_memorytype_const)(const wasm_externtype_t *) noexcept nogil
        const wasm_valtype_t *(*wasm_globaltype_content)(const wasm_globaltype_t *) noexcept nogil
        wasm_mutability_t (*wasm_globaltype_mutability)(const wasm_globaltype_t *) noexcept nogil
        const wasm_valtype_t *(*wasm_tabletype_element)(const wasm_tabletype_t *) noexcept nogil
        const wasm_limits_t *(*wasm_tabletype_limits)(const wasm_tabletype_t *) noexcept nogil
        uint64_t (*wasmtime_memorytype_minimum)(const wasm_memorytype_t *) noexcept nogil
        bint (*wasmtime_memorytype_maximum)(const wasm_memorytype_t *, uint64_t *) noexcept nogil
        bint (*wasmtime_memorytype_is64)(const wasm_memorytype_t *) noexcept nogil
        bint (*wasmtime_memorytype_isshared)(const wasm_memorytype_t *) noexcept nogil
        const wasm_valtype_vec_t *(*wasm_functype_results)(const wasm_functype_t *) noexcept nogil
        wasm_valkind_t (*wasm_valtype_kind)(const wasm_valtype_t *) noexcept nogil
        wasm_valtype_t *(*wasm_valtype_new)(wasm_valkind_t) noexcept nogil
        void (*wasm_valtype_vec_new)(wasm_valtype_vec_t *, size_t, wasm_valtype_t **) noexcept nogil
        void (*wasm_valtype_vec_new_empty)(wasm_valtype_vec_t *) noexcept nogil
        wasm_functype_t *(*wasm_functype_new)(wasm_valtype_vec_t *, wasm_valtype_vec_t *) noexcept nogil
        void (*wasm_functype_delete)(wasm_functype_t *) noexcept nogil
        wasmtime_linker_t *(*wasmtime_linker_new)(wasm_engine_t *) noexcept nogil
        void (*wasmtime_linker_delete)(wasmtime_linker_t *) noexcept nogil
        wasmtime_error_t *(*wasmtime_linker_define_func_unchecked)(
            wasmtime_linker_t *, const char *, size_t, const char *, size_t, const wasm_functype_t *,
            wasmtime_func_unchecked_callback_t, void *, wt_finalizer_t) noexcept nogil
        wasmtime_error_t *(*wasmtime_linker_define_wasi)(wasmtime_linker_t *) noexcept nogil

    wt_api_t wt
    int wt_load(const char *path, char *err, size_t err_len)
    char *wt_take_error_message(wasmtime_error_t *error)
