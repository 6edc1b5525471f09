;; The main module of init_global*.wat: `run` outputs lib's g * 100 + lib::n_init() as 8 bytes,
;; reading g through its global import: 4201 once lib's `_initialize` ran exactly once.
(module
  (import "lib" "g" (global $g (mut i32)))
  (import "lib" "n_init" (func $n_init (result i32)))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (func (export "run") (result i32)
    (local $out i64)
    (local.set $out (call $alloc (i64.const 8)))
    (call $store_u64 (local.get $out)
      (i64.extend_i32_s (i32.add (i32.mul (global.get $g) (i32.const 100)) (call $n_init))))
    (call $output_set (local.get $out) (i64.const 8))
    (i32.const 0)))
