;; host_threads.wat - host-function calls for the threading tests.
;; Imports "extism:host/user" "rendezvous" : () -> ()
;; Exports (all () -> i32):
;;   meet  : spins in wasm for N iterations (N = input u64 LE at [0:8], 0 when
;;           the input is shorter), calls rendezvous(), spins N more, outputs
;;           "met"
;;   stuck : calls rendezvous(), then loops forever in wasm without calling
;;           the host (a cancel or a timeout must stop it)
(module
  (import "extism:host/user" "rendezvous" (func $rendezvous))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "input_length" (func $input_length (result i64)))
  (import "extism:host/env" "input_load_u64" (func $input_load_u64 (param i64) (result i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (memory (export "memory") 1)

  (func $spin (param $n i64)
    (block $done
      (loop $next
        (br_if $done (i64.eqz (local.get $n)))
        (local.set $n (i64.sub (local.get $n) (i64.const 1)))
        (br $next))))

  (func (export "meet") (result i32)
    (local $n i64) (local $o i64)
    (if (i64.ge_u (call $input_length) (i64.const 8))
      (then (local.set $n (call $input_load_u64 (i64.const 0)))))
    (call $spin (local.get $n))
    (call $rendezvous)
    (call $spin (local.get $n))
    (local.set $o (call $alloc (i64.const 3)))
    (call $store_u8 (local.get $o) (i32.const 109))                       ;; m
    (call $store_u8 (i64.add (local.get $o) (i64.const 1)) (i32.const 101)) ;; e
    (call $store_u8 (i64.add (local.get $o) (i64.const 2)) (i32.const 116)) ;; t
    (call $output_set (local.get $o) (i64.const 3))
    (i32.const 0))

  (func (export "stuck") (result i32)
    (call $rendezvous)
    (loop $forever (br $forever))
    (i32.const 0))
)
