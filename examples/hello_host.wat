;; hello_host.wat - a plugin that calls a host function (README, "Host functions").
;; Imports `extism:host/user` `hello_world : (i64) -> i64` (a block in, a block out).
;; Export `greet`: copies its input to a new block, passes it to hello_world and
;; outputs the block hello_world returns.
(module
  (import "extism:host/user" "hello_world" (func $hello_world (param i64) (result i64)))
  (import "extism:host/env" "input_length" (func $input_length (result i64)))
  (import "extism:host/env" "input_load_u8" (func $input_load_u8 (param i64) (result i32)))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "length" (func $length (param i64) (result i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (memory 1)

  (func (export "greet") (result i32)
    (local $n i64) (local $i i64) (local $in i64) (local $out i64)
    (local.set $n (call $input_length))
    (local.set $in (call $alloc (local.get $n)))
    (block $done
      (loop $copy
        (br_if $done (i64.ge_u (local.get $i) (local.get $n)))
        (call $store_u8 (i64.add (local.get $in) (local.get $i)) (call $input_load_u8 (local.get $i)))
        (local.set $i (i64.add (local.get $i) (i64.const 1)))
        (br $copy)))
    (local.set $out (call $hello_world (local.get $in)))
    (call $output_set (local.get $out) (call $length (local.get $out)))
    (i32.const 0)))
