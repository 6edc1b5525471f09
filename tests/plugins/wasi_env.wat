;; wasi_env.wat - outputs what WASI gives the plugin as its environment and arguments.
;; Needs wasi=True: imports wasi_snapshot_preview1.
;; Exports (all () -> i32):
;;   environ : output = the environment strings ("K=V"), each followed by a NUL
;;   args    : output = the argument strings, each followed by a NUL
;; A WASI error sets the error "wasi errno <n>" and returns 1.
(module
  (import "wasi_snapshot_preview1" "environ_sizes_get"
    (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get"
    (func $environ_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get"
    (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get"
    (func $args_get (param i32 i32) (result i32)))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "extism:host/env" "error_set" (func $error_set (param i64)))
  (memory (export "memory") 1)
  ;; 0..8: count and buffer size; 16..: pointer array (at most 256 entries); 4096..: strings

  (func $out (param $ptr i32) (param $len i32)
    (local $block i64) (local $i i32)
    (local.set $block (call $alloc (i64.extend_i32_u (local.get $len))))
    (block $done
      (loop $copy
        (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
        (call $store_u8 (i64.add (local.get $block) (i64.extend_i32_u (local.get $i)))
                        (i32.load8_u (i32.add (local.get $ptr) (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $copy)))
    (call $output_set (local.get $block) (i64.extend_i32_u (local.get $len))))

  (func $fail (param $errno i32) (result i32)
    (local $block i64)
    ;; "wasi errno " + one digit (errnos in tests are small) is enough to name the failure
    (local.set $block (call $alloc (i64.const 12)))
    (call $store_u8 (local.get $block) (i32.const 0x77))
    (call $store_u8 (i64.add (local.get $block) (i64.const 1)) (i32.const 0x61))
    (call $store_u8 (i64.add (local.get $block) (i64.const 2)) (i32.const 0x73))
    (call $store_u8 (i64.add (local.get $block) (i64.const 3)) (i32.const 0x69))
    (call $store_u8 (i64.add (local.get $block) (i64.const 4)) (i32.const 0x20))
    (call $store_u8 (i64.add (local.get $block) (i64.const 5)) (i32.const 0x65))
    (call $store_u8 (i64.add (local.get $block) (i64.const 6)) (i32.const 0x72))
    (call $store_u8 (i64.add (local.get $block) (i64.const 7)) (i32.const 0x72))
    (call $store_u8 (i64.add (local.get $block) (i64.const 8)) (i32.const 0x6e))
    (call $store_u8 (i64.add (local.get $block) (i64.const 9)) (i32.const 0x6f))
    (call $store_u8 (i64.add (local.get $block) (i64.const 10)) (i32.const 0x20))
    (call $store_u8 (i64.add (local.get $block) (i64.const 11))
                    (i32.add (i32.const 0x30) (i32.rem_u (local.get $errno) (i32.const 10))))
    (call $error_set (local.get $block))
    (i32.const 1))

  (func (export "environ") (result i32)
    (local $errno i32)
    (local.set $errno (call $environ_sizes_get (i32.const 0) (i32.const 4)))
    (if (local.get $errno) (then (return (call $fail (local.get $errno)))))
    (local.set $errno (call $environ_get (i32.const 16) (i32.const 4096)))
    (if (local.get $errno) (then (return (call $fail (local.get $errno)))))
    (call $out (i32.const 4096) (i32.load (i32.const 4)))
    (i32.const 0))

  (func (export "args") (result i32)
    (local $errno i32)
    (local.set $errno (call $args_sizes_get (i32.const 0) (i32.const 4)))
    (if (local.get $errno) (then (return (call $fail (local.get $errno)))))
    (local.set $errno (call $args_get (i32.const 16) (i32.const 4096)))
    (if (local.get $errno) (then (return (call $fail (local.get $errno)))))
    (call $out (i32.const 4096) (i32.load (i32.const 4)))
    (i32.const 0)))
