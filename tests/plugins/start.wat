;; start.wat - a command-style module exporting `_start`.
;;
;; After a call through `_start` the host must re-instantiate the plugin
;; before the next call, so that call sees the global back at 0.
;;   _start : () -> ()   g += 1, output g as u64 LE. On a fresh plugin, or
;;                       when the previous call was `_start`, this is 1.
;;   count  : () -> i32  g += 1, output g as u64 LE. Repeated calls on one
;;                       instance output 1, 2, 3, ...; the first call after a
;;                       `_start` call outputs 1 again.
;; Official SDK: _start, _start, _start -> 1, 1, 1; then count x3 -> 1, 2, 3;
;; then _start -> 4; then count -> 1.
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (global $g (mut i64) (i64.const 0))

  (func $bump_and_output
    (local $o i64)
    (global.set $g (i64.add (global.get $g) (i64.const 1)))
    (local.set $o (call $alloc (i64.const 8)))
    (call $store_u64 (local.get $o) (global.get $g))
    (call $output_set (local.get $o) (i64.const 8)))

  (func (export "_start")
    (call $bump_and_output))

  (func (export "count") (result i32)
    (call $bump_and_output)
    (i32.const 0))
)
