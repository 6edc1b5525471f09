;; ctors.wat - a module exporting `__wasm_call_ctors` (and no `_initialize`).
;;
;; The host must call `__wasm_call_ctors` exactly once per instance, before
;; the first call.
;;   __wasm_call_ctors : () -> ()   g = 7, n_ctors += 1
;;   get  : () -> i32  output u64[2] LE (g, n_ctors); on a fresh plugin (7, 1)
;;   bump : () -> i32  g += 1, output g as u64 LE: 8, 9, ...
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (global $g (mut i64) (i64.const 0))
  (global $n_ctors (mut i64) (i64.const 0))

  (func (export "__wasm_call_ctors")
    (global.set $g (i64.const 7))
    (global.set $n_ctors (i64.add (global.get $n_ctors) (i64.const 1))))

  (func (export "get") (result i32)
    (local $o i64)
    (local.set $o (call $alloc (i64.const 16)))
    (call $store_u64 (local.get $o) (global.get $g))
    (call $store_u64 (i64.add (local.get $o) (i64.const 8)) (global.get $n_ctors))
    (call $output_set (local.get $o) (i64.const 16))
    (i32.const 0))

  (func (export "bump") (result i32)
    (local $o i64)
    (global.set $g (i64.add (global.get $g) (i64.const 1)))
    (local.set $o (call $alloc (i64.const 8)))
    (call $store_u64 (local.get $o) (global.get $g))
    (call $output_set (local.get $o) (i64.const 8))
    (i32.const 0))
)
