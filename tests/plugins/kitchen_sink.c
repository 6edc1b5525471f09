/* kitchen_sink.c - exercises most of pdk/c/extism-pdk.h, including the
 * malloc helpers (EXTISM_USE_LIBC; wasi-libc's malloc needs no WASI import).
 *
 * Imports the user host function "extism:host/user" hello_world:
 * (i64 handle) -> i64 handle. Exports (all () -> i32):
 *   greet       output "<config greeting, default Hello>, <input>!"
 *   count_calls var "calls" (u64 LE) += 1; output the new value in decimal
 *               ("1", "2", ...)
 *   log_levels  logs "<level>: <input>" at trace, debug, info, warn and error;
 *               output the decimal get_log_level() ("2" for info,
 *               "2147483647" when logging is off)
 *   fail        fails with "kitchen sink failed: <input>", returns 1
 *   call_host   output = the block hello_world(<copy of input>) returns
 *   echo_dup    output = input, via a malloc'ed copy
 *   var_bytes   input "key=value": var[key] = value (empty value deletes),
 *               then output var[key] read back, or "<none>"
 */
#define EXTISM_USE_LIBC
#include "extism-pdk.h"

#include <stdlib.h>
#include <string.h>

EXTISM_IMPORT_USER("hello_world")
extern ExtismHandle hello_world(ExtismHandle input);

int32_t EXTISM_EXPORTED_FUNCTION(greet) {
  size_t in_len = 0;
  char *name = extism_load_input_sz_dup(&in_len);
  char greeting[128];
  if (!extism_config_get_sz("greeting", greeting, sizeof greeting)) {
    memcpy(greeting, "Hello", 6);
  }
  size_t g = strlen(greeting);
  char *out = malloc(g + 2 + in_len + 1);
  if (name == NULL || out == NULL) {
    extism_error_set_buf_from_sz("out of memory");
    return 1;
  }
  memcpy(out, greeting, g);
  memcpy(out + g, ", ", 2);
  memcpy(out + g + 2, name, in_len);
  out[g + 2 + in_len] = '!';
  extism_output_buf(out, g + 2 + in_len + 1);
  free(out);
  free(name);
  return 0;
}

int32_t EXTISM_EXPORTED_FUNCTION(count_calls) {
  uint64_t n = extism_var_get_u64_sz("calls", 0) + 1;
  extism_var_set_u64_sz("calls", n);
  char buf[21];
  extism_output_buf(buf, extism_u64_to_dec(n, buf));
  return 0;
}

int32_t EXTISM_EXPORTED_FUNCTION(log_levels) {
  static const char *const names[] = {"trace", "debug", "info", "warn",
                                      "error"};
  size_t in_len = 0;
  char *text = extism_load_input_sz_dup(&in_len);
  if (text == NULL) {
    return 1;
  }
  for (int level = ExtismLogTrace; level <= ExtismLogError; level++) {
    size_t nl = strlen(names[level]);
    char *msg = malloc(nl + 2 + in_len);
    if (msg == NULL) {
      return 1;
    }
    memcpy(msg, names[level], nl);
    memcpy(msg + nl, ": ", 2);
    memcpy(msg + nl + 2, text, in_len);
    extism_log(msg, nl + 2 + in_len, (ExtismLog)level);
    free(msg);
  }
  free(text);
  char buf[21];
  extism_output_buf(buf, extism_u64_to_dec((uint64_t)extism_get_log_level(), buf));
  return 0;
}

int32_t EXTISM_EXPORTED_FUNCTION(fail) {
  static const char prefix[] = "kitchen sink failed: ";
  char msg[256];
  size_t p = sizeof prefix - 1;
  memcpy(msg, prefix, p);
  uint64_t n = extism_input_read(msg + p, sizeof msg - p);
  if (n > sizeof msg - p) {
    n = sizeof msg - p;
  }
  extism_error_set_buf(msg, p + n);
  return 1;
}

int32_t EXTISM_EXPORTED_FUNCTION(call_host) {
  size_t n = 0;
  void *in = extism_load_input_dup(&n);
  if (in == NULL) {
    return 1;
  }
  ExtismHandle arg = extism_alloc_buf(in, n);
  free(in);
  ExtismHandle answer = hello_world(arg);
  extism_output_handle(answer);
  return 0;
}

int32_t EXTISM_EXPORTED_FUNCTION(echo_dup) {
  size_t n = 0;
  void *in = extism_load_input_dup(&n);
  if (in == NULL) {
    extism_error_set_buf_from_sz("out of memory");
    return 1;
  }
  extism_output_buf(in, n);
  free(in);
  return 0;
}

int32_t EXTISM_EXPORTED_FUNCTION(var_bytes) {
  size_t n = 0;
  char *in = extism_load_input_sz_dup(&n);
  if (in == NULL) {
    return 1;
  }
  char *eq = memchr(in, '=', n);
  if (eq == NULL) {
    free(in);
    extism_error_set_buf_from_sz("expected key=value");
    return 1;
  }
  *eq = '\0';
  const char *value = eq + 1;
  extism_var_set_bytes_sz(in, value, n - (size_t)(value - in));
  ExtismHandle back = extism_var_get_buf_from_sz(in);
  free(in);
  if (back == 0) {
    extism_output_buf_from_sz("<none>");
  } else {
    extism_output_handle(back);
  }
  return 0;
}
