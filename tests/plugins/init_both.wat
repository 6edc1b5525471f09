;; init_both.wat - exports BOTH `_initialize` and `__wasm_call_ctors`.
;;
;; In a real reactor `_initialize` itself calls `__wasm_call_ctors`, so a host
;; must run only one of them. The official Extism runtime runs
;; `__wasm_call_ctors` (and not `_initialize`) when both are exported.
;;   _initialize       : () -> ()   n_init += 1
;;   __wasm_call_ctors : () -> ()   n_ctors += 1
;;   get : () -> i32  output u64[2] LE (n_init, n_ctors); official: (0, 1).
;;                    Either way n_init + n_ctors == 1.
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (global $n_init (mut i64) (i64.const 0))
  (global $n_ctors (mut i64) (i64.const 0))

  (func (export "_initialize")
    (global.set $n_init (i64.add (global.get $n_init) (i64.const 1))))

  (func (export "__wasm_call_ctors")
    (global.set $n_ctors (i64.add (global.get $n_ctors) (i64.const 1))))

  (func (export "get") (result i32)
    (local $o i64)
    (local.set $o (call $alloc (i64.const 16)))
    (call $store_u64 (local.get $o) (global.get $n_init))
    (call $store_u64 (i64.add (local.get $o) (i64.const 8)) (global.get $n_ctors))
    (call $output_set (local.get $o) (i64.const 16))
    (i32.const 0))
)
