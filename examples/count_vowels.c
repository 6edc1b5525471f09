/* count_vowels.c - an Extism plugin written with pdk/c/extism-pdk.h.
 *
 * Export `count_vowels`: outputs {"count": N}, N = number of bytes of the
 * input in "aeiouAEIOU". Uses no libc, so the module imports nothing but
 * `extism:host/env` and runs with WASI off. Build: see build.sh.
 */
#include "extism-pdk.h"

static int is_vowel(uint8_t c) {
  switch (c) {
  case 'a': case 'e': case 'i': case 'o': case 'u':
  case 'A': case 'E': case 'I': case 'O': case 'U':
    return 1;
  default:
    return 0;
  }
}

int32_t EXTISM_EXPORTED_FUNCTION(count_vowels) {
  uint64_t n = extism_input_length();
  uint64_t count = 0;
  uint8_t chunk[256];

  /* Read the input in chunks: 8 bytes per kernel call instead of 1. */
  for (uint64_t i = 0; i < n; i += sizeof chunk) {
    uint64_t len = n - i < sizeof chunk ? n - i : sizeof chunk;
    extism_load_input(i, chunk, len);
    for (uint64_t j = 0; j < len; j++) {
      count += (uint64_t)is_vowel(chunk[j]);
    }
  }

  /* {"count": N} */
  char out[32] = "{\"count\": ";
  size_t pos = extism_strlen(out);
  pos += extism_u64_to_dec(count, out + pos);
  out[pos++] = '}';
  extism_output_buf(out, pos);
  return 0;
}
