;; init.wat - a reactor-style module exporting `_initialize`.
;;
;; The host must call `_initialize` exactly once per instance, before the
;; first call.
;;   _initialize : () -> ()   g = 42, n_init += 1
;;   get  : () -> i32  output u64[2] LE (g, n_init); on a fresh plugin (42, 1)
;;   bump : () -> i32  g += 1, output g as u64 LE: 43, 44, ... and a later
;;                     `get` still reports n_init == 1
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (global $g (mut i64) (i64.const 0))
  (global $n_init (mut i64) (i64.const 0))

  (func (export "_initialize")
    (global.set $g (i64.const 42))
    (global.set $n_init (i64.add (global.get $n_init) (i64.const 1))))

  (func (export "get") (result i32)
    (local $o i64)
    (local.set $o (call $alloc (i64.const 16)))
    (call $store_u64 (local.get $o) (global.get $g))
    (call $store_u64 (i64.add (local.get $o) (i64.const 8)) (global.get $n_init))
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
