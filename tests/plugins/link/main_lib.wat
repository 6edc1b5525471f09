;; The main module of the linking tests: `run` outputs lib::compute(20) as 8 little-endian bytes.
(module
  (import "lib" "compute" (func $compute (param i32) (result i32)))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (func (export "run") (result i32)
    (local $out i64)
    (local.set $out (call $alloc (i64.const 8)))
    (call $store_u64 (local.get $out) (i64.extend_i32_s (call $compute (i32.const 20))))
    (call $output_set (local.get $out) (i64.const 8))
    (i32.const 0)))
