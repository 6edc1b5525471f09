;; The main module of init_log.wat: its `_initialize` notes 3; `run` outputs log::log() as 8 bytes
;; plus cmd::seven() * 1000000 (cmd's exports work without its `_start`).
;; Startup in dependency order, once: 123 + 7000000.
(module
  (import "log" "note" (func $note (param i32)))
  (import "log" "log" (func $log (result i64)))
  (import "cmd" "seven" (func $seven (result i32)))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (func (export "_initialize") (call $note (i32.const 3)))
  (func (export "run") (result i32)
    (local $out i64)
    (local.set $out (call $alloc (i64.const 8)))
    (call $store_u64 (local.get $out)
      (i64.add (call $log) (i64.mul (i64.extend_i32_u (call $seven)) (i64.const 1000000))))
    (call $output_set (local.get $out) (i64.const 8))
    (i32.const 0)))
