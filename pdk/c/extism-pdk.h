/*
 * extism-pdk.h - single-header C PDK for Extism plugins (extism_fast).
 *
 * Plain C99, header only: every helper is `static inline`, so nothing is
 * emitted unless a plugin uses it and no EXTISM_IMPLEMENTATION define is
 * needed. Include it and build with
 *
 *     clang --target=wasm32-wasi -O2 -mexec-model=reactor -I pdk/c \
 *           -o plugin.wasm plugin.c
 *
 * Nothing in this header needs libc (no malloc, no printf, no WASI), so a
 * plugin that only uses these helpers imports nothing but `extism:host/env`
 * and runs with WASI off. The few helpers that return malloc'ed memory are
 * only declared when EXTISM_USE_LIBC is defined before the include.
 *
 * Model (see docs/ABI.md): host and plugin exchange data through *kernel memory*,
 * separate from the plugin's linear memory. The plugin names kernel blocks by
 * 64-bit offsets (ExtismHandle); 0 means "none". Copy data in and out with
 * extism_load / extism_store (or the helpers built on them).
 *
 * Ownership: every handle a plugin passes to a *host* function (config_get,
 * var_get, var_set, http_request, log_*) belongs to the host afterwards and
 * the host frees it - do not free or reuse it. Every handle a host function
 * returns is a new block the plugin may free. Handles passed to error_set and
 * output_set stay live until the end of the call.
 *
 * Names follow the official Extism C PDK where one exists. Differences:
 *   - extism_length() is the validating `length` import; the official PDK
 *     maps it to `length_unsafe`, which is extism_length_unsafe() here.
 *   - The ExtismLog enum values equal the ABI's get_log_level() numbers
 *     (trace 0 .. error 4), and ExtismLogTrace exists.
 *   - Helpers never free handles they passed to the host (see Ownership).
 *
 * Example (see examples/count_vowels.c for a complete plugin):
 *
 *     #include "extism-pdk.h"
 *
 *     int32_t EXTISM_EXPORTED_FUNCTION(shout) {
 *       char text[256];
 *       if (!extism_input_read_sz(text, sizeof text)) {
 *         extism_error_set_buf_from_sz("input longer than 255 bytes");
 *         return 1;
 *       }
 *       for (size_t i = 0; text[i]; i++)
 *         if (text[i] >= 'a' && text[i] <= 'z') text[i] -= 32;
 *       extism_log_info_sz(text);
 *       extism_output_buf_from_sz(text);
 *       return 0;
 *     }
 */
#ifndef EXTISM_PDK_H
#define EXTISM_PDK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Types and attribute macros                                               */
/* ------------------------------------------------------------------------ */

/* An offset into kernel memory naming the first data byte of a block. */
typedef uint64_t ExtismHandle;
/* Older PDKs call the same thing a pointer. */
typedef uint64_t ExtismPointer;

#define EXTISM_ENV_MODULE "extism:host/env"
#define EXTISM_USER_MODULE "extism:host/user"

/* Export a function under `name`: `EXTISM_EXPORT("run") int32_t run(void)`. */
#define EXTISM_EXPORT(name) __attribute__((export_name(name)))
#define EXTISM_EXPORT_AS(name) EXTISM_EXPORT(name)
/* `int32_t EXTISM_EXPORTED_FUNCTION(run) { ... }` exports `run(void)`. */
#define EXTISM_EXPORTED_FUNCTION(name) EXTISM_EXPORT(#name) name(void)

/* Import `name` from wasm module `module`. */
#define EXTISM_IMPORT(module, name)                                            \
  __attribute__((import_module(module), import_name(name)))
/* Import from the Extism kernel/host module `extism:host/env`. */
#define EXTISM_IMPORT_ENV(name) EXTISM_IMPORT(EXTISM_ENV_MODULE, name)
/* Import a user host function (default namespace `extism:host/user`):
 *   EXTISM_IMPORT_USER("hello_world")
 *   extern ExtismHandle hello_world(ExtismHandle input);
 */
#define EXTISM_IMPORT_USER(name) EXTISM_IMPORT(EXTISM_USER_MODULE, name)

/* ------------------------------------------------------------------------ */
/* Kernel functions (docs/ABI.md, "Kernel functions")                       */
/* ------------------------------------------------------------------------ */

/* New active block of n bytes; 0 when n == 0 or memory is exhausted. */
EXTISM_IMPORT_ENV("alloc") extern ExtismHandle extism_alloc(uint64_t n);
/* Free a block; 0 / unknown handles are ignored. */
EXTISM_IMPORT_ENV("free") extern void extism_free(ExtismHandle h);
/* Used length of the block at h; 0 if h is not the start of an active block. */
EXTISM_IMPORT_ENV("length") extern uint64_t extism_length(ExtismHandle h);
/* Like extism_length for valid handles; may skip validation. */
EXTISM_IMPORT_ENV("length_unsafe")
extern uint64_t extism_length_unsafe(ExtismHandle h);
/* Read / write 1 or 8 bytes (little-endian) at a kernel offset. */
EXTISM_IMPORT_ENV("load_u8") extern uint8_t extism_load_u8(ExtismPointer p);
EXTISM_IMPORT_ENV("load_u64") extern uint64_t extism_load_u64(ExtismPointer p);
EXTISM_IMPORT_ENV("store_u8")
extern void extism_store_u8(ExtismPointer p, uint8_t v);
EXTISM_IMPORT_ENV("store_u64")
extern void extism_store_u64(ExtismPointer p, uint64_t v);
/* The current call's input. */
EXTISM_IMPORT_ENV("input_length") extern uint64_t extism_input_length(void);
EXTISM_IMPORT_ENV("input_offset") extern ExtismHandle extism_input_offset(void);
/* Read input byte(s) at index i (0-based within the input). */
EXTISM_IMPORT_ENV("input_load_u8")
extern uint8_t extism_input_load_u8(uint64_t i);
EXTISM_IMPORT_ENV("input_load_u64")
extern uint64_t extism_input_load_u64(uint64_t i);
/* Mark block h (n bytes of it) as the input. Mostly for hosts. */
EXTISM_IMPORT_ENV("input_set")
extern void extism_input_set(ExtismHandle h, uint64_t n);
/* Mark n bytes at h as the call's output. */
EXTISM_IMPORT_ENV("output_set")
extern void extism_output_set(ExtismHandle h, uint64_t n);
EXTISM_IMPORT_ENV("output_length") extern uint64_t extism_output_length(void);
EXTISM_IMPORT_ENV("output_offset")
extern ExtismHandle extism_output_offset(void);
/* Mark block h as the error message (the call fails); 0 clears the error. */
EXTISM_IMPORT_ENV("error_set") extern void extism_error_set(ExtismHandle h);
EXTISM_IMPORT_ENV("error_get") extern ExtismHandle extism_error_get(void);
/* Forget every block, the input, the output and the error. */
EXTISM_IMPORT_ENV("reset") extern void extism_reset(void);
/* Bytes currently managed by the kernel. */
EXTISM_IMPORT_ENV("memory_bytes") extern uint64_t extism_memory_bytes(void);

/* ------------------------------------------------------------------------ */
/* Host functions (docs/ABI.md, "Host functions"). Handles passed in are host-owned. */
/* ------------------------------------------------------------------------ */

/* manifest config[key] as a new block, 0 if absent. */
EXTISM_IMPORT_ENV("config_get")
extern ExtismHandle extism_config_get(ExtismHandle key);
/* Per-instance variable as a new block, 0 if absent. */
EXTISM_IMPORT_ENV("var_get") extern ExtismHandle extism_var_get(ExtismHandle key);
/* Set a variable; value 0 deletes it. */
EXTISM_IMPORT_ENV("var_set")
extern void extism_var_set(ExtismHandle key, ExtismHandle value);
/* req = JSON {"url","method","headers"}; body may be 0. Returns the response
 * body as a new block, 0 when empty. */
EXTISM_IMPORT_ENV("http_request")
extern ExtismHandle extism_http_request(ExtismHandle req, ExtismHandle body);
EXTISM_IMPORT_ENV("http_status_code")
extern int32_t extism_http_status_code(void);
/* JSON object of the last response's headers, 0 when none were kept. */
EXTISM_IMPORT_ENV("http_headers") extern ExtismHandle extism_http_headers(void);
EXTISM_IMPORT_ENV("log_trace") extern void extism_log_trace(ExtismHandle msg);
EXTISM_IMPORT_ENV("log_debug") extern void extism_log_debug(ExtismHandle msg);
EXTISM_IMPORT_ENV("log_info") extern void extism_log_info(ExtismHandle msg);
EXTISM_IMPORT_ENV("log_warn") extern void extism_log_warn(ExtismHandle msg);
EXTISM_IMPORT_ENV("log_error") extern void extism_log_error(ExtismHandle msg);
/* 0 trace, 1 debug, 2 info, 3 warn, 4 error, INT32_MAX when logging is off. */
EXTISM_IMPORT_ENV("get_log_level") extern int32_t extism_get_log_level(void);

/* ------------------------------------------------------------------------ */
/* Small libc-free utilities                                                */
/* ------------------------------------------------------------------------ */

/* strlen without libc. */
static inline size_t extism_strlen(const char *sz) {
  size_t n = 0;
  while (sz[n] != '\0') {
    n++;
  }
  return n;
}

/* Write v in decimal to out (needs 21 bytes: 20 digits + NUL).
 * Returns the number of digits written (without the NUL). */
static inline size_t extism_u64_to_dec(uint64_t v, char out[21]) {
  char tmp[20];
  size_t n = 0;
  do {
    tmp[n++] = (char)('0' + (v % 10));
    v /= 10;
  } while (v != 0);
  for (size_t i = 0; i < n; i++) {
    out[i] = tmp[n - 1 - i];
  }
  out[n] = '\0';
  return n;
}

/* ------------------------------------------------------------------------ */
/* Copying between kernel memory and the plugin's memory                     */
/* ------------------------------------------------------------------------ */

/* Copy n bytes at kernel offset src into dest: 8 bytes per call, then the
 * tail byte by byte. No bounds check (see extism_load_from_handle). */
static inline void extism_load(ExtismPointer src, void *dest, uint64_t n) {
  uint8_t *d = (uint8_t *)dest;
  uint64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t v = extism_load_u64(src + i);
    __builtin_memcpy(d + i, &v, 8);
  }
  for (; i < n; i++) {
    d[i] = extism_load_u8(src + i);
  }
}

/* Copy n bytes from src to kernel offset dest. No bounds check. */
static inline void extism_store(ExtismPointer dest, const void *src,
                                uint64_t n) {
  const uint8_t *s = (const uint8_t *)src;
  uint64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t v;
    __builtin_memcpy(&v, s + i, 8);
    extism_store_u64(dest + i, v);
  }
  for (; i < n; i++) {
    extism_store_u8(dest + i, s[i]);
  }
}

/* Copy n bytes starting at `offset` within block h into dest.
 * Returns false (copying nothing) if that range is outside the block. */
static inline bool extism_load_from_handle(ExtismHandle h, uint64_t offset,
                                           void *dest, uint64_t n) {
  uint64_t len = extism_length(h);
  if (offset > len || n > len - offset) {
    return false;
  }
  extism_load(h + offset, dest, n);
  return true;
}

/* Copy n bytes from src to `offset` within block h.
 * Returns false (copying nothing) if that range is outside the block. */
static inline bool extism_store_to_handle(ExtismHandle h, uint64_t offset,
                                          const void *src, uint64_t n) {
  uint64_t len = extism_length(h);
  if (offset > len || n > len - offset) {
    return false;
  }
  extism_store(h + offset, src, n);
  return true;
}

/* Copy the whole block h into dest as a NUL-terminated string.
 * Returns false if it does not fit in cap bytes (length + 1). h == 0 gives "". */
static inline bool extism_load_sz(ExtismHandle h, char *dest, size_t cap) {
  uint64_t len = h ? extism_length(h) : 0;
  if (cap == 0 || len >= (uint64_t)cap) {
    return false;
  }
  extism_load(h, dest, len);
  dest[len] = '\0';
  return true;
}

/* Allocate a block holding a copy of src[0..n). 0 when n == 0 or on failure. */
static inline ExtismHandle extism_alloc_buf(const void *src, uint64_t n) {
  ExtismHandle h = extism_alloc(n);
  if (h != 0) {
    extism_store(h, src, n);
  }
  return h;
}

/* Allocate a block holding the bytes of a C string (without its NUL). */
static inline ExtismHandle extism_alloc_buf_from_sz(const char *sz) {
  return extism_alloc_buf(sz, extism_strlen(sz));
}

/* ------------------------------------------------------------------------ */
/* Input                                                                    */
/* ------------------------------------------------------------------------ */

/* Copy n input bytes starting at input index `offset` into dest, using
 * input_load_u64 8 bytes at a time and input_load_u8 for the tail.
 * Returns false (copying nothing) if the range is outside the input. */
static inline bool extism_load_input(uint64_t offset, void *dest, uint64_t n) {
  uint64_t len = extism_input_length();
  if (offset > len || n > len - offset) {
    return false;
  }
  uint8_t *d = (uint8_t *)dest;
  uint64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t v = extism_input_load_u64(offset + i);
    __builtin_memcpy(d + i, &v, 8);
  }
  for (; i < n; i++) {
    d[i] = extism_input_load_u8(offset + i);
  }
  return true;
}

/* Copy n - 1 input bytes starting at `offset` into dest and NUL-terminate.
 * Returns false if n == 0 or the range is outside the input. */
static inline bool extism_load_input_sz(uint64_t offset, char *dest,
                                        uint64_t n) {
  if (n == 0 || !extism_load_input(offset, dest, n - 1)) {
    return false;
  }
  dest[n - 1] = '\0';
  return true;
}

/* Read the whole input into dest, copying at most cap bytes.
 * Returns the input's full length: compare with cap to detect truncation. */
static inline uint64_t extism_input_read(void *dest, size_t cap) {
  uint64_t len = extism_input_length();
  uint64_t n = len < (uint64_t)cap ? len : (uint64_t)cap;
  extism_load_input(0, dest, n);
  return len;
}

/* Read the whole input into dest as a NUL-terminated string.
 * Returns false (dest untouched) if it does not fit (needs length + 1). */
static inline bool extism_input_read_sz(char *dest, size_t cap) {
  uint64_t len = extism_input_length();
  if (cap == 0 || len >= (uint64_t)cap) {
    return false;
  }
  return extism_load_input_sz(0, dest, len + 1);
}

/* ------------------------------------------------------------------------ */
/* Output and errors                                                        */
/* ------------------------------------------------------------------------ */

/* Output the whole block h. */
static inline void extism_output_handle(ExtismHandle h) {
  extism_output_set(h, extism_length(h));
}

/* Output n bytes starting at `offset` within block h; false if outside it. */
static inline bool extism_output_set_from_handle(ExtismHandle h,
                                                 uint64_t offset, uint64_t n) {
  uint64_t len = extism_length(h);
  if (offset > len || n > len - offset) {
    return false;
  }
  extism_output_set(h + offset, n);
  return true;
}

/* Copy src[0..n) into a new block and make it the output.
 * Returns false if the block could not be allocated (n > 0). */
static inline bool extism_output_buf(const void *src, uint64_t n) {
  ExtismHandle h = extism_alloc_buf(src, n);
  extism_output_set(h, h ? n : 0);
  return h != 0 || n == 0;
}

/* Output the bytes of a C string (without its NUL). */
static inline bool extism_output_buf_from_sz(const char *sz) {
  return extism_output_buf(sz, extism_strlen(sz));
}

/* Fail the call with message[0..n). The export should then return non-zero
 * (the host treats a set error as a failure whatever the return code). */
static inline void extism_error_set_buf(const char *message, uint64_t n) {
  extism_error_set(extism_alloc_buf(message, n));
}

/* Fail the call with a C string message. */
static inline void extism_error_set_buf_from_sz(const char *message) {
  extism_error_set_buf(message, extism_strlen(message));
}

/* ------------------------------------------------------------------------ */
/* Config and variables                                                     */
/* ------------------------------------------------------------------------ */

/* config[name] as a new block (free it when done), 0 if absent. */
static inline ExtismHandle extism_config_get_buf(const char *name,
                                                 uint64_t name_len) {
  return extism_config_get(extism_alloc_buf(name, name_len));
}

static inline ExtismHandle extism_config_get_buf_from_sz(const char *name) {
  return extism_config_get_buf(name, extism_strlen(name));
}

/* Copy config[name] into dest as a NUL-terminated string. Returns false if
 * the key is absent or the value does not fit in cap bytes. */
static inline bool extism_config_get_sz(const char *name, char *dest,
                                        size_t cap) {
  ExtismHandle v = extism_config_get_buf_from_sz(name);
  if (v == 0) {
    return false;
  }
  bool ok = extism_load_sz(v, dest, cap);
  extism_free(v);
  return ok;
}

/* var[name] as a new block (free it when done), 0 if absent. */
static inline ExtismHandle extism_var_get_buf(const char *name,
                                              uint64_t name_len) {
  return extism_var_get(extism_alloc_buf(name, name_len));
}

static inline ExtismHandle extism_var_get_buf_from_sz(const char *name) {
  return extism_var_get_buf(name, extism_strlen(name));
}

/* var[name] = block `value` (host-owned afterwards); value 0 deletes. */
static inline void extism_var_set_buf(const char *name, uint64_t name_len,
                                      ExtismHandle value) {
  extism_var_set(extism_alloc_buf(name, name_len), value);
}

static inline void extism_var_set_buf_from_sz(const char *name,
                                              ExtismHandle value) {
  extism_var_set_buf(name, extism_strlen(name), value);
}

/* var[name] = copy of value[0..n); n == 0 deletes the variable. */
static inline void extism_var_set_bytes_sz(const char *name, const void *value,
                                           uint64_t n) {
  extism_var_set_buf_from_sz(name, extism_alloc_buf(value, n));
}

/* Delete var[name]. */
static inline void extism_var_delete_sz(const char *name) {
  extism_var_set_buf_from_sz(name, 0);
}

/* var[name] read as a little-endian u64 (its first 8 bytes); `dflt` when the
 * variable is absent or shorter than 8 bytes. */
static inline uint64_t extism_var_get_u64_sz(const char *name, uint64_t dflt) {
  ExtismHandle v = extism_var_get_buf_from_sz(name);
  if (v == 0) {
    return dflt;
  }
  uint64_t out = dflt;
  if (extism_length(v) >= 8) {
    out = extism_load_u64(v);
  }
  extism_free(v);
  return out;
}

/* var[name] = v as 8 little-endian bytes. */
static inline void extism_var_set_u64_sz(const char *name, uint64_t v) {
  ExtismHandle h = extism_alloc(8);
  if (h != 0) {
    extism_store_u64(h, v);
  }
  extism_var_set_buf_from_sz(name, h);
}

/* ------------------------------------------------------------------------ */
/* Logging                                                                  */
/* ------------------------------------------------------------------------ */

/* Values equal the ABI's get_log_level() numbers. */
typedef enum {
  ExtismLogTrace = 0,
  ExtismLogDebug = 1,
  ExtismLogInfo = 2,
  ExtismLogWarn = 3,
  ExtismLogError = 4,
} ExtismLog;

/* True when a record at `level` would be kept by the host. */
static inline bool extism_log_enabled(ExtismLog level) {
  return (int32_t)level >= extism_get_log_level();
}

/* Log s[0..len) at `level`. Skips the copy when the level is filtered out. */
static inline void extism_log(const char *s, uint64_t len, ExtismLog level) {
  if (!extism_log_enabled(level)) {
    return;
  }
  ExtismHandle h = extism_alloc_buf(s, len);
  switch (level) {
  case ExtismLogTrace:
    extism_log_trace(h);
    break;
  case ExtismLogDebug:
    extism_log_debug(h);
    break;
  case ExtismLogInfo:
    extism_log_info(h);
    break;
  case ExtismLogWarn:
    extism_log_warn(h);
    break;
  case ExtismLogError:
  default:
    extism_log_error(h);
    break;
  }
}

/* Log a C string at `level`. */
static inline void extism_log_sz(const char *s, ExtismLog level) {
  extism_log(s, extism_strlen(s), level);
}

static inline void extism_log_trace_sz(const char *s) {
  extism_log_sz(s, ExtismLogTrace);
}
static inline void extism_log_debug_sz(const char *s) {
  extism_log_sz(s, ExtismLogDebug);
}
static inline void extism_log_info_sz(const char *s) {
  extism_log_sz(s, ExtismLogInfo);
}
static inline void extism_log_warn_sz(const char *s) {
  extism_log_sz(s, ExtismLogWarn);
}
static inline void extism_log_error_sz(const char *s) {
  extism_log_sz(s, ExtismLogError);
}

/* ------------------------------------------------------------------------ */
/* HTTP                                                                     */
/* ------------------------------------------------------------------------ */

/* Send an HTTP request described by the JSON C string req_json, with an
 * optional body (NULL / 0 for none). Returns the response body block (0 when
 * empty); read extism_http_status_code() afterwards. */
static inline ExtismHandle extism_http_request_sz(const char *req_json,
                                                  const void *body,
                                                  uint64_t body_len) {
  ExtismHandle req = extism_alloc_buf_from_sz(req_json);
  ExtismHandle b = body ? extism_alloc_buf(body, body_len) : 0;
  return extism_http_request(req, b);
}

/* ------------------------------------------------------------------------ */
/* Helpers that return malloc'ed memory (define EXTISM_USE_LIBC)             */
/* ------------------------------------------------------------------------ */
#ifdef EXTISM_USE_LIBC
#include <stdlib.h>

/* malloc a copy of block h; *out_len (if given) receives its length.
 * Returns NULL on allocation failure (a 0-length block gives malloc(1)). */
static inline void *extism_load_dup(ExtismHandle h, size_t *out_len) {
  uint64_t n = h ? extism_length(h) : 0;
  if (n > SIZE_MAX - 1) {
    return NULL;
  }
  void *buf = malloc(n ? (size_t)n : 1);
  if (buf == NULL) {
    return NULL;
  }
  extism_load(h, buf, n);
  if (out_len) {
    *out_len = (size_t)n;
  }
  return buf;
}

/* malloc a NUL-terminated copy of block h; *out_len gets the length
 * without the NUL. */
static inline char *extism_load_sz_dup(ExtismHandle h, size_t *out_len) {
  uint64_t n = h ? extism_length(h) : 0;
  if (n > SIZE_MAX - 1) {
    return NULL;
  }
  char *buf = (char *)malloc((size_t)n + 1);
  if (buf == NULL) {
    return NULL;
  }
  extism_load(h, buf, n);
  buf[n] = '\0';
  if (out_len) {
    *out_len = (size_t)n;
  }
  return buf;
}

/* malloc a copy of the whole input (read with input_load_u64/u8). */
static inline void *extism_load_input_dup(size_t *out_len) {
  uint64_t n = extism_input_length();
  if (n > SIZE_MAX - 1) {
    return NULL;
  }
  void *buf = malloc(n ? (size_t)n : 1);
  if (buf == NULL) {
    return NULL;
  }
  extism_load_input(0, buf, n);
  if (out_len) {
    *out_len = (size_t)n;
  }
  return buf;
}

/* malloc a NUL-terminated copy of the whole input. */
static inline char *extism_load_input_sz_dup(size_t *out_len) {
  uint64_t n = extism_input_length();
  if (n > SIZE_MAX - 1) {
    return NULL;
  }
  char *buf = (char *)malloc((size_t)n + 1);
  if (buf == NULL) {
    return NULL;
  }
  extism_load_input(0, buf, n);
  buf[n] = '\0';
  if (out_len) {
    *out_len = (size_t)n;
  }
  return buf;
}
#endif /* EXTISM_USE_LIBC */

#ifdef __cplusplus
}
#endif
#endif /* EXTISM_PDK_H */
