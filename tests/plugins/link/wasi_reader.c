/* wasi_reader.c - a WASI reactor (-mexec-model=reactor) linked as a side module, "reader".
 *
 * wasi-libc finds the preopened directories in a constructor, which the reactor's `_initialize`
 * runs: a host that never calls it leaves fopen failing with ENOTCAPABLE (errno 76).
 *
 * Exports:
 *   greeting : () -> i64  a new block holding /data/greeting.txt (at most 256 bytes), or
 *                         "fopen failed: errno N"
 * (main_reader.wat outputs it.)
 */
#include <errno.h>
#include <stdio.h>

#include "extism-pdk.h"

static ExtismHandle block_of(const char *bytes, uint64_t n) {
  ExtismHandle h = extism_alloc(n);
  extism_store_to_handle(h, 0, bytes, n);
  return h;
}

EXTISM_EXPORT("greeting") ExtismHandle greeting(void) {
  char buf[256];
  FILE *f = fopen("/data/greeting.txt", "r");
  if (f == NULL) {
    int n = snprintf(buf, sizeof buf, "fopen failed: errno %d", errno);
    return block_of(buf, (uint64_t)n);
  }
  size_t n = fread(buf, 1, sizeof buf, f);
  fclose(f);
  return block_of(buf, n);
}
