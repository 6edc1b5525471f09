/*
 * wasmtime_api.h - the subset of wasmtime's C API (major version 50) that extism_fast uses.
 *
 * The `wasmtime` wheel ships the shared library but no headers, so the types below are written
 * from the ctypes bindings the wheel generates from the real headers (wasmtime/_bindings.py).
 * Sizes that matter are asserted in wasmtime_api.c.
 *
 * The library has no SONAME, so instead of linking against it we dlopen() it at import time
 * (path found from the installed `wasmtime` package) and resolve every symbol into the function
 * pointer table `wt`. Call sites read `wt.wasmtime_func_call_unchecked(...)` etc.
 */
#ifndef EXTISM_FAST_WASMTIME_API_H
#define EXTISM_FAST_WASMTIME_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Opaque handles. */
typedef struct wasm_config_t wasm_config_t;
typedef struct wasm_engine_t wasm_engine_t;
typedef struct wasm_trap_t wasm_trap_t;
typedef struct wasm_valtype_t wasm_valtype_t;
typedef struct wasm_functype_t wasm_functype_t;
typedef struct wasm_externtype_t wasm_externtype_t;
typedef struct wasm_globaltype_t wasm_globaltype_t;
typedef struct wasm_tabletype_t wasm_tabletype_t;
typedef struct wasm_memorytype_t wasm_memorytype_t;
typedef struct wasm_importtype_t wasm_importtype_t;
typedef struct wasm_exporttype_t wasm_exporttype_t;
typedef struct wasmtime_error_t wasmtime_error_t;
typedef struct wasmtime_store_t wasmtime_store_t;
typedef struct wasmtime_context_t wasmtime_context_t;
typedef struct wasmtime_module_t wasmtime_module_t;
typedef struct wasmtime_linker_t wasmtime_linker_t;
typedef struct wasmtime_caller_t wasmtime_caller_t;
typedef struct wasi_config_t wasi_config_t;
typedef struct wasmtime_pooling_allocation_config_t wasmtime_pooling_allocation_config_t;

/* Vectors: { size, data }. wasm_name_t and wasm_message_t are byte vectors. */
typedef struct wasm_byte_vec_t { size_t size; uint8_t *data; } wasm_byte_vec_t;
typedef wasm_byte_vec_t wasm_name_t;
typedef wasm_byte_vec_t wasm_message_t;
typedef struct wasm_valtype_vec_t { size_t size; wasm_valtype_t **data; } wasm_valtype_vec_t;
typedef struct wasm_importtype_vec_t { size_t size; wasm_importtype_t **data; } wasm_importtype_vec_t;
typedef struct wasm_exporttype_vec_t { size_t size; wasm_exporttype_t **data; } wasm_exporttype_vec_t;

/* wasm_valkind_t values (wasm.h). */
typedef uint8_t wasm_valkind_t;
enum { WASM_I32 = 0, WASM_I64 = 1, WASM_F32 = 2, WASM_F64 = 3, WASM_V128 = 4,
       WASM_EXTERNREF = 128, WASM_FUNCREF = 129 };

/* wasm_mutability_t values (wasm.h) and table limits: max is UINT32_MAX when there is none. */
typedef uint8_t wasm_mutability_t;
enum { WASM_CONST = 0, WASM_VAR = 1 };
typedef struct wasm_limits_t { uint32_t min; uint32_t max; } wasm_limits_t;

/* wasm_externkind_t values (wasm.h) and wasmtime_extern_kind_t values (extern.h): same numbers. */
typedef uint8_t wasm_externkind_t;
enum { WASM_EXTERN_FUNC = 0, WASM_EXTERN_GLOBAL = 1, WASM_EXTERN_TABLE = 2, WASM_EXTERN_MEMORY = 3 };

/* Store-owned handles. wasmtime_memory_t is {{u64, u32}, u32}: 24 bytes, do not flatten. */
typedef struct wasmtime_func_t { uint64_t store_id; void *private_; } wasmtime_func_t;
typedef struct wasmtime_instance_t { uint64_t store_id; size_t private_; } wasmtime_instance_t;
typedef struct wasmtime_memory_inner_t { uint64_t store_id; uint32_t private1; } wasmtime_memory_inner_t;
typedef struct wasmtime_memory_t { wasmtime_memory_inner_t inner; uint32_t private2; } wasmtime_memory_t;

typedef union wasmtime_extern_union_t {
    wasmtime_func_t func;
    wasmtime_memory_t memory;
    uint8_t pad_[24];
} wasmtime_extern_union_t;
typedef struct wasmtime_extern_t { uint8_t kind; wasmtime_extern_union_t of; } wasmtime_extern_t;

/* The raw value slot used by unchecked calls: a 16-byte union. */
typedef union wasmtime_val_raw_t {
    int32_t i32;
    int64_t i64;
    float f32;
    double f64;
    uint8_t v128[16];
    uint32_t anyref;
    uint32_t externref;
    void *funcref;
} wasmtime_val_raw_t;

/* A wasm -> host callback registered through the unchecked API. Returns NULL or a trap. */
typedef wasm_trap_t *(*wasmtime_func_unchecked_callback_t)(void *env, wasmtime_caller_t *caller,
                                                            wasmtime_val_raw_t *args_and_results,
                                                            size_t num_args_and_results);
typedef void (*wt_finalizer_t)(void *);

typedef uint8_t wasmtime_update_deadline_kind_t;
enum { WASMTIME_UPDATE_DEADLINE_CONTINUE = 0, WASMTIME_UPDATE_DEADLINE_YIELD = 1 };
typedef wasmtime_error_t *(*wt_epoch_callback_t)(wasmtime_context_t *ctx, void *data,
                                                 uint64_t *epoch_deadline_delta,
                                                 wasmtime_update_deadline_kind_t *update_kind);

/* wasmtime_profiling_strategy_t values (config.h), in the engine flags' profiler bits too. */
typedef uint8_t wasmtime_profiling_strategy_t;
enum { WASMTIME_PROFILING_STRATEGY_NONE = 0, WASMTIME_PROFILING_STRATEGY_JITDUMP = 1,
       WASMTIME_PROFILING_STRATEGY_VTUNE = 2, WASMTIME_PROFILING_STRATEGY_PERFMAP = 3 };

typedef uint8_t wasmtime_trap_code_t;
enum { WASMTIME_TRAP_CODE_INTERRUPT = 10, WASMTIME_TRAP_CODE_OUT_OF_FUEL = 11 };


/* X-macro: return type, name, parameter list. One line per symbol resolved by wt_load(). */
#define WT_FUNCTIONS(X)                                                                              \
    X(wasm_config_t *, wasm_config_new, (void))                                                      \
    X(wasm_engine_t *, wasm_engine_new_with_config, (wasm_config_t *))                               \
    X(void, wasm_engine_delete, (wasm_engine_t *))                                                   \
    X(void, wasmtime_config_epoch_interruption_set, (wasm_config_t *, bool))                         \
    X(void, wasmtime_config_consume_fuel_set, (wasm_config_t *, bool))                               \
    X(void, wasmtime_config_memory_may_move_set, (wasm_config_t *, bool))                            \
    X(void, wasmtime_config_memory_reservation_set, (wasm_config_t *, uint64_t))                     \
    X(void, wasmtime_config_memory_guard_size_set, (wasm_config_t *, uint64_t))                      \
    X(void, wasmtime_config_profiler_set, (wasm_config_t *, wasmtime_profiling_strategy_t))          \
    X(void, wasmtime_config_debug_info_set, (wasm_config_t *, bool))                                 \
    X(wasmtime_pooling_allocation_config_t *, wasmtime_pooling_allocation_config_new, (void))        \
    X(void, wasmtime_pooling_allocation_config_delete, (wasmtime_pooling_allocation_config_t *))     \
    X(void, wasmtime_pooling_allocation_config_total_core_instances_set,                             \
      (wasmtime_pooling_allocation_config_t *, uint32_t))                                            \
    X(void, wasmtime_pooling_allocation_config_total_memories_set,                                   \
      (wasmtime_pooling_allocation_config_t *, uint32_t))                                            \
    X(void, wasmtime_pooling_allocation_config_total_tables_set,                                     \
      (wasmtime_pooling_allocation_config_t *, uint32_t))                                            \
    X(void, wasmtime_pooling_allocation_config_total_stacks_set,                                     \
      (wasmtime_pooling_allocation_config_t *, uint32_t))                                            \
    X(void, wasmtime_pooling_allocation_config_decommit_batch_size_set,                              \
      (wasmtime_pooling_allocation_config_t *, size_t))                                              \
    X(void, wasmtime_pooling_allocation_config_max_memory_size_set,                                  \
      (wasmtime_pooling_allocation_config_t *, size_t))                                              \
    X(void, wasmtime_pooling_allocation_config_max_core_instance_size_set,                           \
      (wasmtime_pooling_allocation_config_t *, size_t))                                              \
    X(void, wasmtime_pooling_allocation_config_table_elements_set,                                   \
      (wasmtime_pooling_allocation_config_t *, size_t))                                              \
    X(void, wasmtime_pooling_allocation_config_linear_memory_keep_resident_set,                      \
      (wasmtime_pooling_allocation_config_t *, size_t))                                              \
    X(void, wasmtime_pooling_allocation_strategy_set,                                                \
      (wasm_config_t *, const wasmtime_pooling_allocation_config_t *))                               \
    X(void, wasmtime_engine_increment_epoch, (wasm_engine_t *))                                      \
    X(void, wasm_byte_vec_delete, (wasm_byte_vec_t *))                                               \
    X(wasmtime_error_t *, wasmtime_error_new, (const char *))                                        \
    X(void, wasmtime_error_delete, (wasmtime_error_t *))                                             \
    X(void, wasmtime_error_message, (const wasmtime_error_t *, wasm_name_t *))                       \
    X(bool, wasmtime_error_exit_status, (const wasmtime_error_t *, int *))                           \
    X(wasm_trap_t *, wasmtime_trap_new, (const char *, size_t))                                      \
    X(void, wasm_trap_delete, (wasm_trap_t *))                                                       \
    X(void, wasm_trap_message, (const wasm_trap_t *, wasm_message_t *))                              \
    X(bool, wasmtime_trap_code, (const wasm_trap_t *, wasmtime_trap_code_t *))                       \
    X(wasmtime_error_t *, wasmtime_wat2wasm, (const char *, size_t, wasm_byte_vec_t *))              \
    X(wasmtime_error_t *, wasmtime_module_new,                                                       \
      (wasm_engine_t *, const uint8_t *, size_t, wasmtime_module_t **))                              \
    X(void, wasmtime_module_delete, (wasmtime_module_t *))                                           \
    X(wasmtime_error_t *, wasmtime_module_serialize, (wasmtime_module_t *, wasm_byte_vec_t *))       \
    X(wasmtime_error_t *, wasmtime_module_deserialize,                                               \
      (wasm_engine_t *, const uint8_t *, size_t, wasmtime_module_t **))                              \
    X(wasmtime_error_t *, wasmtime_module_deserialize_file,                                          \
      (wasm_engine_t *, const char *, wasmtime_module_t **))                                         \
    X(void, wasmtime_module_imports, (const wasmtime_module_t *, wasm_importtype_vec_t *))           \
    X(void, wasmtime_module_exports, (const wasmtime_module_t *, wasm_exporttype_vec_t *))           \
    X(void, wasm_importtype_vec_delete, (wasm_importtype_vec_t *))                                   \
    X(void, wasm_exporttype_vec_delete, (wasm_exporttype_vec_t *))                                   \
    X(const wasm_name_t *, wasm_importtype_module, (const wasm_importtype_t *))                      \
    X(const wasm_name_t *, wasm_importtype_name, (const wasm_importtype_t *))                        \
    X(const wasm_externtype_t *, wasm_importtype_type, (const wasm_importtype_t *))                  \
    X(const wasm_name_t *, wasm_exporttype_name, (const wasm_exporttype_t *))                        \
    X(const wasm_externtype_t *, wasm_exporttype_type, (const wasm_exporttype_t *))                  \
    X(wasm_externkind_t, wasm_externtype_kind, (const wasm_externtype_t *))                          \
    X(const wasm_functype_t *, wasm_externtype_as_functype_const, (const wasm_externtype_t *))       \
    X(const wasm_valtype_vec_t *, wasm_functype_params, (const wasm_functype_t *))                   \
    X(const wasm_valtype_vec_t *, wasm_functype_results, (const wasm_functype_t *))                  \
    X(wasm_valkind_t, wasm_valtype_kind, (const wasm_valtype_t *))                                   \
    X(wasm_valtype_t *, wasm_valtype_new, (wasm_valkind_t))                                          \
    X(void, wasm_valtype_vec_new, (wasm_valtype_vec_t *, size_t, wasm_valtype_t *const *))           \
    X(void, wasm_valtype_vec_new_empty, (wasm_valtype_vec_t *))                                      \
    X(void, wasm_valtype_vec_delete, (wasm_valtype_vec_t *))                                         \
    X(wasm_functype_t *, wasm_functype_new, (wasm_valtype_vec_t *, wasm_valtype_vec_t *))            \
    X(void, wasm_functype_delete, (wasm_functype_t *))                                               \
    X(wasm_functype_t *, wasm_functype_copy, (const wasm_functype_t *))                              \
    X(const wasm_externtype_t *, wasm_functype_as_externtype_const, (const wasm_functype_t *))       \
    X(wasm_externtype_t *, wasm_externtype_copy, (const wasm_externtype_t *))                        \
    X(void, wasm_externtype_delete, (wasm_externtype_t *))                                           \
    X(const wasm_globaltype_t *, wasm_externtype_as_globaltype_const, (const wasm_externtype_t *))   \
    X(const wasm_tabletype_t *, wasm_externtype_as_tabletype_const, (const wasm_externtype_t *))     \
    X(const wasm_memorytype_t *, wasm_externtype_as_memorytype_const, (const wasm_externtype_t *))   \
    X(const wasm_valtype_t *, wasm_globaltype_content, (const wasm_globaltype_t *))                  \
    X(wasm_mutability_t, wasm_globaltype_mutability, (const wasm_globaltype_t *))                    \
    X(const wasm_valtype_t *, wasm_tabletype_element, (const wasm_tabletype_t *))                    \
    X(const wasm_limits_t *, wasm_tabletype_limits, (const wasm_tabletype_t *))                      \
    X(uint64_t, wasmtime_memorytype_minimum, (const wasm_memorytype_t *))                            \
    X(bool, wasmtime_memorytype_maximum, (const wasm_memorytype_t *, uint64_t *))                    \
    X(bool, wasmtime_memorytype_is64, (const wasm_memorytype_t *))                                   \
    X(bool, wasmtime_memorytype_isshared, (const wasm_memorytype_t *))                               \
    X(uint8_t, wasmtime_memorytype_page_size_log2, (const wasm_memorytype_t *))                      \
    X(wasmtime_linker_t *, wasmtime_linker_new, (wasm_engine_t *))                                   \
    X(void, wasmtime_linker_delete, (wasmtime_linker_t *))                                           \
    X(wasmtime_error_t *, wasmtime_linker_define_func_unchecked,                                     \
      (wasmtime_linker_t *, const char *, size_t, const char *, size_t, const wasm_functype_t *,     \
       wasmtime_func_unchecked_callback_t, void *, wt_finalizer_t))                                  \
    X(wasmtime_error_t *, wasmtime_linker_define_wasi, (wasmtime_linker_t *))                        \
    X(bool, wasmtime_instance_export_get,                                                            \
      (wasmtime_context_t *, const wasmtime_instance_t *, const char *, size_t, wasmtime_extern_t *))   \
    X(wasmtime_error_t *, wasmtime_instance_new,                                                     \
      (wasmtime_context_t *, const wasmtime_module_t *, const wasmtime_extern_t *, size_t,           \
       wasmtime_instance_t *, wasm_trap_t **))                                                       \
    X(bool, wasmtime_linker_get,                                                                     \
      (const wasmtime_linker_t *, wasmtime_context_t *, const char *, size_t, const char *, size_t,  \
       wasmtime_extern_t *))                                                                         \
    X(wasmtime_store_t *, wasmtime_store_new, (wasm_engine_t *, void *, wt_finalizer_t))             \
    X(wasmtime_context_t *, wasmtime_store_context, (wasmtime_store_t *))                            \
    X(void, wasmtime_store_delete, (wasmtime_store_t *))                                             \
    X(void, wasmtime_store_limiter,                                                                  \
      (wasmtime_store_t *, int64_t, int64_t, int64_t, int64_t, int64_t))                             \
    X(void, wasmtime_context_set_epoch_deadline, (wasmtime_context_t *, uint64_t))                   \
    X(void, wasmtime_store_epoch_deadline_callback,                                                  \
      (wasmtime_store_t *, wt_epoch_callback_t, void *, wt_finalizer_t))                             \
    X(wasmtime_error_t *, wasmtime_context_set_fuel, (wasmtime_context_t *, uint64_t))               \
    X(wasmtime_error_t *, wasmtime_context_get_fuel, (const wasmtime_context_t *, uint64_t *))       \
    X(wasmtime_error_t *, wasmtime_context_set_wasi, (wasmtime_context_t *, wasi_config_t *))        \
    X(void, wasmtime_func_new_unchecked,                                                             \
      (wasmtime_context_t *, const wasm_functype_t *, wasmtime_func_unchecked_callback_t, void *,     \
       wt_finalizer_t, wasmtime_func_t *))                                                           \
    X(wasmtime_context_t *, wasmtime_caller_context, (wasmtime_caller_t *))                          \
    X(wasmtime_error_t *, wasmtime_func_call_unchecked,                                              \
      (wasmtime_context_t *, const wasmtime_func_t *, wasmtime_val_raw_t *, size_t, wasm_trap_t **)) \
    X(uint8_t *, wasmtime_memory_data, (const wasmtime_context_t *, const wasmtime_memory_t *))      \
    X(size_t, wasmtime_memory_data_size, (const wasmtime_context_t *, const wasmtime_memory_t *))    \
    X(wasmtime_error_t *, wasmtime_memory_grow,                                                      \
      (wasmtime_context_t *, const wasmtime_memory_t *, uint64_t, uint64_t *))                       \
    X(wasi_config_t *, wasi_config_new, (void))                                                      \
    X(void, wasi_config_delete, (wasi_config_t *))                                                   \
    X(void, wasi_config_inherit_stdout, (wasi_config_t *))                                           \
    X(void, wasi_config_inherit_stderr, (wasi_config_t *))                                           \
    X(bool, wasi_config_preopen_dir, (wasi_config_t *, const char *, const char *, bool))            \
    X(bool, wasi_config_set_argv, (wasi_config_t *, size_t, const char **))                          \
    X(bool, wasi_config_set_env, (wasi_config_t *, size_t, const char **, const char **))            \
    X(void, wasi_config_set_stdout_custom,                                                           \
      (wasi_config_t *, ptrdiff_t (*)(void *, const unsigned char *, size_t), void *, wt_finalizer_t))\
    X(void, wasi_config_set_stderr_custom,                                                           \
      (wasi_config_t *, ptrdiff_t (*)(void *, const unsigned char *, size_t), void *, wt_finalizer_t))

#define WT_DECLARE_POINTER(ret, name, params) ret(*name) params;
typedef struct wt_api_t {
    WT_FUNCTIONS(WT_DECLARE_POINTER)
} wt_api_t;
#undef WT_DECLARE_POINTER

/* The resolved table. Valid only after wt_load() returned 0. */
extern wt_api_t wt;

/*
 * wt_load: dlopen the wasmtime library at `path` and resolve every symbol of WT_FUNCTIONS.
 * Returns 0 on success; otherwise writes a message naming the path or the missing symbol into
 * err (always NUL-terminated) and returns -1. Safe to call again after success (no-op).
 */
int wt_load(const char *path, char *err, size_t err_len);

/* wt_take_error_message / wt_take_trap_message: the message as a malloc'ed NUL-terminated string
 * (NULL when out of memory); the error / trap is deleted. */
char *wt_take_error_message(wasmtime_error_t *error);
char *wt_take_trap_message(wasm_trap_t *trap);

/* wt_copy_text: malloc'ed NUL-terminated copy of len bytes (NULL when out of memory). */
char *wt_copy_text(const char *data, size_t len);
/* wt_take_bytes: a malloc'ed copy of `vec` (its length in *length), which is deleted; NULL when out
 * of memory (vec is deleted all the same). */
uint8_t *wt_take_bytes(wasm_byte_vec_t *vec, size_t *length);
/* WT_TEXT: wt_copy_text of a string literal, its length counted by the compiler. */
#define WT_TEXT(literal) wt_copy_text((literal), sizeof(literal) - 1)

#endif
