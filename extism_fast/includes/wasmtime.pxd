# Declarations of the wasmtime C API types kernel_c's declarations (kernel.pxd) and the host-function
# trampoline need, from kernel_c/wasmtime_api.h: opaque handles, value and extern kinds, raw values.
# No wasmtime function is declared here: kernel_c makes and frees every wasmtime object
# (docs/ARCHITECTURE.md, "Ownership"; tests/test_c_units.py checks the .pyx/.pxi files).
from libc.stdint cimport uint8_t, int64_t


cdef extern from "wasmtime_api.h" nogil:
    ctypedef struct wasm_engine_t
    ctypedef struct wasm_trap_t
    ctypedef struct wasm_externtype_t
    ctypedef struct wasmtime_module_t
    ctypedef struct wasmtime_linker_t
    ctypedef struct wasmtime_store_t
    ctypedef struct wasmtime_caller_t

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

    # Resolve the API from the wheel's library (dlopen) into kernel_c's table; 0 or -1 with err set.
    int wt_load(const char *path, char *err, size_t err_len)
