/* host_calls.c - calls user host functions of every wasm value type from C.
 *
 * Imports:
 *   "extism:host/user" add_i32   : (i32, i32) -> i32
 *   "extism:host/user" mul_i64   : (i64, i64) -> i64
 *   "extism:host/user" half_f32  : (f32) -> f32
 *   "extism:host/user" hypot_f64 : (f64, f64) -> f64
 *   "extism:host/user" greet     : (i64 handle) -> i64 handle
 *   "extism:host/shouty" shout   : (i64 handle) -> i64 handle
 *     (a namespace of its own; it keeps the extism:host/ prefix only because
 *     the test build accepts no other imports from C plugins)
 *
 * Exports (all () -> i32):
 *   arith  input  (48 bytes, little-endian): i32 a, i32 b, i64 c, i64 d,
 *                 f32 e, 4 bytes padding, f64 f, f64 g
 *          output (24 bytes, little-endian): i32 add_i32(a, b),
 *                 f32 half_f32(e), i64 mul_i64(c, d), f64 hypot_f64(f, g)
 *          fails with "arith needs 48 input bytes" for any other input size
 *   greet  output = the block greet(<copy of the input>) returns
 *   chain  output = the block shout(greet(<copy of the input>)) returns
 */
#include "extism-pdk.h"

EXTISM_IMPORT_USER("add_i32")
extern int32_t add_i32(int32_t a, int32_t b);
EXTISM_IMPORT_USER("mul_i64")
extern int64_t mul_i64(int64_t a, int64_t b);
EXTISM_IMPORT_USER("half_f32")
extern float half_f32(float a);
EXTISM_IMPORT_USER("hypot_f64")
extern double hypot_f64(double a, double b);
EXTISM_IMPORT_USER("greet")
extern ExtismHandle host_greet(ExtismHandle name);
EXTISM_IMPORT("extism:host/shouty", "shout")
extern ExtismHandle shout(ExtismHandle text);

struct arith_in {
  int32_t a, b;
  int64_t c, d;
  float e;
  uint32_t pad;
  double f, g;
};

struct arith_out {
  int32_t sum;
  float half;
  int64_t product;
  double hyp;
};

_Static_assert(sizeof(struct arith_in) == 48, "arith_in layout");
_Static_assert(sizeof(struct arith_out) == 24, "arith_out layout");

int32_t EXTISM_EXPORTED_FUNCTION(arith) {
  struct arith_in in;
  if (extism_input_length() != sizeof in) {
    extism_error_set_buf_from_sz("arith needs 48 input bytes");
    return 1;
  }
  extism_load_input(0, &in, sizeof in);
  struct arith_out out;
  out.sum = add_i32(in.a, in.b);
  out.half = half_f32(in.e);
  out.product = mul_i64(in.c, in.d);
  out.hyp = hypot_f64(in.f, in.g);
  extism_output_buf(&out, sizeof out);
  return 0;
}

static ExtismHandle input_block(void) {
  uint64_t n = extism_input_length();
  ExtismHandle h = extism_alloc(n);
  for (uint64_t i = 0; i < n; i++) {
    extism_store_u8(h + i, extism_input_load_u8(i));
  }
  return h;
}

int32_t EXTISM_EXPORTED_FUNCTION(greet) {
  extism_output_handle(host_greet(input_block()));
  return 0;
}

int32_t EXTISM_EXPORTED_FUNCTION(chain) {
  extism_output_handle(shout(host_greet(input_block())));
  return 0;
}
