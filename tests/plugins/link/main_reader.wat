;; The main module of wasi_reader.c: `run` outputs reader::greeting()'s block.
(module
  (import "reader" "greeting" (func $greeting (result i64)))
  (import "extism:host/env" "length" (func $length (param i64) (result i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (func (export "run") (result i32)
    (local $h i64)
    (local.set $h (call $greeting))
    (call $output_set (local.get $h) (call $length (local.get $h)))
    (i32.const 0)))
