/* wasmtime_api.c - resolve the wasmtime C API from the wheel's shared library at run time. */
#include "wasmtime_api.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Layouts the generated bindings document; a mismatch would corrupt every call. */
typedef char wt_assert_val_raw_size[sizeof(wasmtime_val_raw_t) == 16 ? 1 : -1];
typedef char wt_assert_memory_size[sizeof(wasmtime_memory_t) == 24 ? 1 : -1];
typedef char wt_assert_func_size[sizeof(wasmtime_func_t) == 16 ? 1 : -1];
typedef char wt_assert_extern_size[sizeof(wasmtime_extern_t) == 32 ? 1 : -1];

wt_api_t wt;
static void *wt_handle;

int wt_load(const char *path, char *err, size_t err_len) {
    if (wt_handle != NULL) return 0;
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL) {
        snprintf(err, err_len, "cannot load the wasmtime library %s: %s", path, dlerror());
        return -1;
    }
    void *sym;
    /* dlsym returns void *: store it through a void ** view of the function pointer (POSIX
     * guarantees the two have the same representation; ISO C has no direct conversion). */
#define WT_RESOLVE(ret, name, params)                                                       \
    sym = dlsym(handle, #name);                                                            \
    if (sym == NULL) {                                                                     \
        snprintf(err, err_len, "the wasmtime library %s has no symbol %s", path, #name);   \
        dlclose(handle);                                                                   \
        return -1;                                                                         \
    }                                                                                      \
    *(void **)(&wt.name) = sym;
    WT_FUNCTIONS(WT_RESOLVE)
#undef WT_RESOLVE
    wt_handle = handle;
    return 0;
}

char *wt_copy_text(const char *data, size_t len) {
    char *text = malloc(len + 1);
    if (text == NULL) return NULL;
    memcpy(text, data, len);
    text[len] = 0;
    return text;
}

uint8_t *wt_take_bytes(wasm_byte_vec_t *vec, size_t *length) {
    uint8_t *copy = malloc(vec->size ? vec->size : 1);
    if (copy != NULL) memcpy(copy, vec->data, vec->size);
    *length = copy != NULL ? vec->size : 0;
    wt.wasm_byte_vec_delete(vec);
    return copy;
}

char *wt_take_error_message(wasmtime_error_t *error) {
    wasm_name_t message;
    wt.wasmtime_error_message(error, &message);
    char *text = wt_copy_text((const char *)message.data, message.size);
    wt.wasm_byte_vec_delete(&message);
    wt.wasmtime_error_delete(error);
    return text;
}

char *wt_take_trap_message(wasm_trap_t *trap) {
    wasm_message_t message;
    wt.wasm_trap_message(trap, &message);
    size_t len = message.size;
    if (len > 0 && message.data[len - 1] == 0) len--; /* wasm_message_t may include the NUL */
    char *text = wt_copy_text((const char *)message.data, len);
    wt.wasm_byte_vec_delete(&message);
    wt.wasm_trap_delete(trap);
    return text;
}
