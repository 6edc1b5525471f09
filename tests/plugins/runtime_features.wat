;; runtime_features.wat - for Plugin.reset, fuel_consumed, EXTISM_MEMDUMP/COREDUMP/PROFILE and
;; per-plugin loggers.
;; Exports (all () -> i32):
;;   spin        : loops input_length times (fuel grows with the input), output "done"
;;   out         : output = the input (a new block)
;;   blocks      : output = the u64 offset of a fresh 8-byte block (little-endian): after a reset
;;                 the kernel hands out its first offset again
;;   trap        : writes "KERNMARK" to a new kernel block, then traps (unreachable);
;;                 main memory holds "MAINMARK" at 100
;;   log_info    : logs the input at info level
;;   level       : output = get_log_level as one byte
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "input_length" (func $input_length (result i64)))
  (import "extism:host/env" "input_load_u8" (func $input_load_u8 (param i64) (result i32)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "extism:host/env" "log_info" (func $log_info (param i64)))
  (import "extism:host/env" "get_log_level" (func $get_log_level (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "MAINMARK")

  (func $input_block (result i64)
    (local $n i64) (local $i i64) (local $block i64)
    (local.set $n (call $input_length))
    (local.set $block (call $alloc (local.get $n)))
    (block $done
      (loop $copy
        (br_if $done (i64.ge_u (local.get $i) (local.get $n)))
        (call $store_u8 (i64.add (local.get $block) (local.get $i)) (call $input_load_u8 (local.get $i)))
        (local.set $i (i64.add (local.get $i) (i64.const 1)))
        (br $copy)))
    (local.get $block))

  (func (export "spin") (result i32)
    (local $n i64) (local $i i64) (local $block i64)
    (local.set $n (call $input_length))
    (block $done
      (loop $again
        (br_if $done (i64.ge_u (local.get $i) (local.get $n)))
        (local.set $i (i64.add (local.get $i) (i64.const 1)))
        (br $again)))
    (local.set $block (call $alloc (i64.const 4)))
    (call $store_u8 (local.get $block) (i32.const 0x64))
    (call $store_u8 (i64.add (local.get $block) (i64.const 1)) (i32.const 0x6f))
    (call $store_u8 (i64.add (local.get $block) (i64.const 2)) (i32.const 0x6e))
    (call $store_u8 (i64.add (local.get $block) (i64.const 3)) (i32.const 0x65))
    (call $output_set (local.get $block) (i64.const 4))
    (i32.const 0))

  (func (export "out") (result i32)
    (call $output_set (call $input_block) (call $input_length))
    (i32.const 0))

  (func (export "blocks") (result i32)
    (local $block i64)
    (local.set $block (call $alloc (i64.const 8)))
    (call $store_u64 (local.get $block) (local.get $block))
    (call $output_set (local.get $block) (i64.const 8))
    (i32.const 0))

  (func (export "trap") (result i32)
    (local $block i64)
    (local.set $block (call $alloc (i64.const 8)))
    (call $store_u64 (local.get $block) (i64.const 0x4b52414d4e52454b)) ;; "KERNMARK"
    unreachable)

  (func (export "log_info") (result i32)
    (call $log_info (call $input_block))
    (i32.const 0))

  (func (export "level") (result i32)
    (local $block i64)
    (local.set $block (call $alloc (i64.const 1)))
    (call $store_u8 (local.get $block) (call $get_log_level))
    (call $output_set (local.get $block) (i64.const 1))
    (i32.const 0)))
