;; loop.wat - Ctrl-C tests (tests/test_sigint.py): calls that log when they start, so a test knows
;; the call is running before it sends SIGINT.
;;   loop  : () -> i32  logs "started!" (log_info), then loops forever
;;   count : () -> i32  logs "started!", counts down from N (input u64 LE at [0:8]), sets the var
;;                      "finished" to "yes", logs "finished"
;;   finished : () -> i32  outputs the var "finished" (empty until a count call has ended)
;;   spin  : () -> i32  counts down from N (input u64 LE), no log: a short call, many in a batch
;;   ok    : () -> i32  outputs "ok" (the plugin still works after a stopped call)
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (import "extism:host/env" "log_info" (func $log_info (param i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "extism:host/env" "input_load_u64" (func $input_load_u64 (param i64) (result i64)))
  (import "extism:host/env" "var_set" (func $var_set (param i64 i64)))
  (import "extism:host/env" "var_get" (func $var_get (param i64) (result i64)))
  (import "extism:host/env" "length" (func $length (param i64) (result i64)))
  (memory (export "memory") 1)

  ;; a new 8-byte block holding the 8 ASCII bytes packed little-endian in $text
  (func $block8 (param $text i64) (result i64)
    (local $o i64)
    (local.set $o (call $alloc (i64.const 8)))
    (call $store_u64 (local.get $o) (local.get $text))
    (local.get $o))

  (func $count_down (param $n i64)
    (block $done
      (loop $l
        (br_if $done (i64.eqz (local.get $n)))
        (local.set $n (i64.sub (local.get $n) (i64.const 1)))
        (br $l))))

  (func (export "loop") (result i32)
    (call $log_info (call $block8 (i64.const 0x2164657472617473))) ;; "started!"
    (loop $l (br $l))
    (i32.const 0))

  (func (export "count") (result i32)
    (call $log_info (call $block8 (i64.const 0x2164657472617473))) ;; "started!"
    (call $count_down (call $input_load_u64 (i64.const 0)))
    (call $var_set (call $block8 (i64.const 0x64656873696e6966)) (call $block8 (i64.const 0x736579))) ;; "yes"
    (call $log_info (call $block8 (i64.const 0x64656873696e6966))) ;; "finished"
    (i32.const 0))

  (func (export "finished") (result i32)
    (local $v i64)
    (local.set $v (call $var_get (call $block8 (i64.const 0x64656873696e6966))))
    (if (i64.ne (local.get $v) (i64.const 0))
      (then (call $output_set (local.get $v) (i64.const 3))))
    (i32.const 0))

  (func (export "spin") (result i32)
    (call $count_down (call $input_load_u64 (i64.const 0)))
    (i32.const 0))

  (func (export "ok") (result i32)
    (call $output_set (call $block8 (i64.const 0x6b6f)) (i64.const 2)) ;; "ok"
    (i32.const 0))
)
