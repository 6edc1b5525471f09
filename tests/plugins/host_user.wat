;; host_user.wat - calls user host functions from `extism:host/user`.
;; The host must define all four imports:
;;   hello_world : (i64) -> i64        takes a block, returns a new block
;;   add_i32     : (i32, i32) -> i32
;;   mul_f64     : (f64, f64) -> f64
;;   nothing     : () -> ()
;; Exports (all () -> i32):
;;   call_hello   : input copied to a new block b; output = the whole block
;;                  hello_world(b) returns, or "<none>" when it returns 0
;;   call_add     : input = two i32 LE (8 bytes); output add_i32(a, b) as i32 LE
;;   call_mul     : input = two f64 LE (16 bytes); output mul_f64(a, b) as f64 LE
;;   call_nothing : calls nothing(); outputs "ok"
(module
  (import "extism:host/user" "hello_world" (func $hello_world (param i64) (result i64)))
  (import "extism:host/user" "add_i32" (func $add_i32 (param i32 i32) (result i32)))
  (import "extism:host/user" "mul_f64" (func $mul_f64 (param f64 f64) (result f64)))
  (import "extism:host/user" "nothing" (func $nothing))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "length" (func $length (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (import "extism:host/env" "input_length" (func $input_length (result i64)))
  (import "extism:host/env" "input_load_u8" (func $input_load_u8 (param i64) (result i32)))
  (import "extism:host/env" "input_load_u64" (func $input_load_u64 (param i64) (result i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (memory (export "memory") 1)
  (data (i32.const 0) "ok")
  (data (i32.const 8) "<none>")

  (func $out_mem (param $ptr i32) (param $len i32)
    (local $o i64) (local $i i32)
    (local.set $o (call $alloc (i64.extend_i32_u (local.get $len))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
        (call $store_u8 (i64.add (local.get $o) (i64.extend_i32_u (local.get $i)))
          (i32.load8_u (i32.add (local.get $ptr) (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (call $output_set (local.get $o) (i64.extend_i32_u (local.get $len))))

  (func $input_copy (result i64)
    (local $n i64) (local $o i64) (local $i i64)
    (local.set $n (call $input_length))
    (local.set $o (call $alloc (local.get $n)))
    (block $done
      (loop $next
        (br_if $done (i64.ge_u (local.get $i) (local.get $n)))
        (call $store_u8 (i64.add (local.get $o) (local.get $i))
          (call $input_load_u8 (local.get $i)))
        (local.set $i (i64.add (local.get $i) (i64.const 1)))
        (br $next)))
    (local.get $o))

  (func (export "call_hello") (result i32)
    (local $r i64)
    (local.set $r (call $hello_world (call $input_copy)))
    (if (i64.eqz (local.get $r))
      (then (call $out_mem (i32.const 8) (i32.const 6)))
      (else (call $output_set (local.get $r) (call $length (local.get $r)))))
    (i32.const 0))

  (func (export "call_add") (result i32)
    (local $v i64)
    (local.set $v (call $input_load_u64 (i64.const 0)))
    (i32.store (i32.const 1024)
      (call $add_i32 (i32.wrap_i64 (local.get $v))
                     (i32.wrap_i64 (i64.shr_u (local.get $v) (i64.const 32)))))
    (call $out_mem (i32.const 1024) (i32.const 4))
    (i32.const 0))

  (func (export "call_mul") (result i32)
    (f64.store (i32.const 1024)
      (call $mul_f64
        (f64.reinterpret_i64 (call $input_load_u64 (i64.const 0)))
        (f64.reinterpret_i64 (call $input_load_u64 (i64.const 8)))))
    (call $out_mem (i32.const 1024) (i32.const 8))
    (i32.const 0))

  (func (export "call_nothing") (result i32)
    (call $nothing)
    (call $out_mem (i32.const 0) (i32.const 2))
    (i32.const 0))
)
