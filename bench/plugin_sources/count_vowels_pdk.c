/* count_vowels_pdk.c - the bench's headline plugin: count_vowels as the
 * official Rust PDK's example does it, kernel call for kernel call.
 *
 * Export `count_vowels`: outputs {"count":N,"total":T,"vowels":"..."} (the
 * compact JSON serde_json writes), where N = input bytes found in config
 * `vowels` (default "aeiouAEIOU") and T = the running sum of N over this
 * instance's calls, kept in var `total` as a decimal string.
 *
 * Why not examples/count_vowels.c: that one reads the input straight into a
 * stack buffer and does nothing else. A Rust PDK plugin (`#[plugin_fn]` with
 * `input: String`, `config::get`, `var::get`/`var::set`, `Json` output)
 * makes these kernel calls per call, which this plugin repeats in order:
 *   input:  input_length, input_load_u64 per 8 bytes, input_load_u8 per tail
 *           byte (extism_pdk::extism::load_input) into plugin memory
 *   config: alloc + store key, config_get, length, load value, free value,
 *           free key (config::get; the key's Memory is freed on drop)
 *   var:    the same with var_get (var::get::<String>)
 *   var:    alloc + store value, alloc + store key, var_set, free key,
 *           free value (var::set; both Memory values are dropped)
 *   output: alloc, store_u64 per 8 bytes + store_u8 tail, output_set
 *           (Memory::from_bytes + set_output)
 * Loads and stores go 8 bytes at a time plus a byte tail (extism::load /
 * extism::store). Vowels are matched per byte, which equals the Rust
 * example's per-char match for ASCII vowels.
 *
 * No libc: the input goes to a scratch area past __heap_base that grows with
 * memory.grow, as the Rust allocator grows memory for its Vec.
 */
#include "extism-pdk.h"

#define WASM_PAGE 65536u
#define MAX_VOWELS 255u
#define MAX_DIGITS 20u

extern unsigned char __heap_base;

static const char KEY_VOWELS[] = "vowels";
static const char KEY_TOTAL[] = "total";
static const char DEFAULT_VOWELS[] = "aeiouAEIOU";

/* n bytes of plugin memory past __heap_base (reused by every call), or NULL
 * when memory cannot grow that far. */
static uint8_t *scratch(uint64_t n) {
  uint64_t base = (uint64_t)(uintptr_t)&__heap_base;
  uint64_t have = (uint64_t)__builtin_wasm_memory_size(0) * WASM_PAGE;
  if (n > UINT32_MAX - base) {
    return NULL;
  }
  if (base + n > have) {
    uint64_t pages = (base + n - have + WASM_PAGE - 1) / WASM_PAGE;
    if (__builtin_wasm_memory_grow(0, (size_t)pages) == (size_t)-1) {
      return NULL;
    }
  }
  return (uint8_t *)(uintptr_t)base;
}

/* A new block holding src[0..n) (Memory::from_bytes). */
static ExtismHandle from_bytes(const void *src, uint64_t n) {
  ExtismHandle h = extism_alloc(n);
  extism_store(h, src, n);
  return h;
}

/* config_get / var_get of `key` into dest (at most cap bytes), as
 * config::get_memory / var::get_memory + to_vec do. Returns the value's
 * length (0 when absent or empty, which the PDK also treats as absent), or
 * UINT64_MAX when it does not fit. */
static uint64_t host_get(ExtismHandle (*get)(ExtismHandle), const char *key,
                         uint64_t key_len, uint8_t *dest, uint64_t cap) {
  ExtismHandle k = from_bytes(key, key_len);
  ExtismHandle v = get(k);
  uint64_t len = v ? extism_length(v) : 0;
  if (len > cap) {
    len = UINT64_MAX;
  } else if (len > 0) {
    extism_load(v, dest, len);
  }
  if (v) {
    extism_free(v);
  }
  extism_free(k); /* the key Memory's drop; the host ignores a freed block */
  return len;
}

static int32_t fail(const char *message) {
  extism_error_set_buf_from_sz(message);
  return 1;
}

/* Append s[0..n) to out as a JSON string body, escaped as serde_json does. */
static size_t json_escape(char *out, const uint8_t *s, uint64_t n) {
  static const char hex[] = "0123456789abcdef";
  size_t pos = 0;
  for (uint64_t i = 0; i < n; i++) {
    uint8_t c = s[i];
    char short_form = c == '"' ? '"' : c == '\\' ? '\\' : c == '\n' ? 'n'
                    : c == '\r' ? 'r' : c == '\t' ? 't' : c == '\b' ? 'b'
                    : c == '\f' ? 'f' : 0;
    if (short_form) {
      out[pos++] = '\\';
      out[pos++] = short_form;
    } else if (c < 0x20) {
      out[pos++] = '\\';
      out[pos++] = 'u';
      out[pos++] = '0';
      out[pos++] = '0';
      out[pos++] = hex[c >> 4];
      out[pos++] = hex[c & 15];
    } else {
      out[pos++] = (char)c;
    }
  }
  return pos;
}

static size_t append(char *out, const char *sz) {
  size_t n = extism_strlen(sz);
  __builtin_memcpy(out, sz, n);
  return n;
}

int32_t EXTISM_EXPORTED_FUNCTION(count_vowels) {
  /* input: String */
  uint64_t n = extism_input_length();
  uint8_t *input = scratch(n);
  if (input == NULL) {
    return fail("count_vowels: input too large for plugin memory");
  }
  for (uint64_t i = 0; i + 8 <= n; i += 8) {
    uint64_t v = extism_input_load_u64(i);
    __builtin_memcpy(input + i, &v, 8);
  }
  for (uint64_t i = n & ~(uint64_t)7; i < n; i++) {
    input[i] = extism_input_load_u8(i);
  }

  /* config::get("vowels"), else the default */
  uint8_t vowels[MAX_VOWELS];
  uint64_t vowels_len = host_get(extism_config_get, KEY_VOWELS,
                                 sizeof KEY_VOWELS - 1, vowels, sizeof vowels);
  if (vowels_len == UINT64_MAX) {
    return fail("count_vowels: config 'vowels' is longer than 255 bytes");
  }
  if (vowels_len == 0) {
    vowels_len = sizeof DEFAULT_VOWELS - 1;
    __builtin_memcpy(vowels, DEFAULT_VOWELS, vowels_len);
  }
  uint8_t is_vowel[256] = {0};
  for (uint64_t i = 0; i < vowels_len; i++) {
    is_vowel[vowels[i]] = 1;
  }
  uint64_t count = 0;
  for (uint64_t i = 0; i < n; i++) {
    count += is_vowel[input[i]];
  }

  /* var::get::<String>("total"), parsed; 0 when absent */
  char digits[MAX_DIGITS + 1];
  uint64_t digits_len = host_get(extism_var_get, KEY_TOTAL,
                                 sizeof KEY_TOTAL - 1, (uint8_t *)digits,
                                 MAX_DIGITS);
  uint64_t total = 0;
  if (digits_len == UINT64_MAX) {
    return fail("count_vowels: var 'total' is not a number");
  }
  for (uint64_t i = 0; i < digits_len; i++) {
    if (digits[i] < '0' || digits[i] > '9') {
      return fail("count_vowels: var 'total' is not a number");
    }
    total = total * 10 + (uint64_t)(digits[i] - '0');
  }
  total += count;

  /* var::set("total", total.to_string()) */
  digits_len = extism_u64_to_dec(total, digits);
  ExtismHandle value = from_bytes(digits, digits_len);
  ExtismHandle key = from_bytes(KEY_TOTAL, sizeof KEY_TOTAL - 1);
  extism_var_set(key, value);
  extism_free(key);
  extism_free(value);

  /* Json(VowelReport { count, total, vowels }) */
  char out[64 + 6 * MAX_VOWELS];
  size_t pos = append(out, "{\"count\":");
  pos += extism_u64_to_dec(count, out + pos);
  pos += append(out + pos, ",\"total\":");
  pos += extism_u64_to_dec(total, out + pos);
  pos += append(out + pos, ",\"vowels\":\"");
  pos += json_escape(out + pos, vowels, vowels_len);
  pos += append(out + pos, "\"}");
  extism_output_set(from_bytes(out, pos), pos);
  return 0;
}
