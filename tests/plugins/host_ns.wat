;; host_ns.wat - imports a user host function from a custom namespace.
;;   import "my:namespace" "shout" : (i64) -> i64
;;   call : () -> i32  input copied to a new block b; output = the whole
;;                     block shout(b) returns (empty when it returns 0)
(module
  (import "my:namespace" "shout" (func $shout (param i64) (result i64)))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "length" (func $length (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "input_length" (func $input_length (result i64)))
  (import "extism:host/env" "input_load_u8" (func $input_load_u8 (param i64) (result i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))

  (func (export "call") (result i32)
    (local $n i64) (local $o i64) (local $i i64) (local $r i64)
    (local.set $n (call $input_length))
    (local.set $o (call $alloc (local.get $n)))
    (block $done
      (loop $next
        (br_if $done (i64.ge_u (local.get $i) (local.get $n)))
        (call $store_u8 (i64.add (local.get $o) (local.get $i))
          (call $input_load_u8 (local.get $i)))
        (local.set $i (i64.add (local.get $i) (i64.const 1)))
        (br $next)))
    (local.set $r (call $shout (local.get $o)))
    (call $output_set (local.get $r) (call $length (local.get $r)))
    (i32.const 0))
)
