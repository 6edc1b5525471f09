;; misc.wat - timeouts, cancellation and the plugin's own memory limit.
;;   forever : () -> i32  loops forever (a timeout or cancel must stop it)
;;   busy    : () -> i32  counts down from N (input u64 LE at [0:8]) and then
;;                        outputs "done"
;;   ok      : () -> i32  outputs "ok" (the plugin still works after a
;;                        timed-out / cancelled call)
;;   grow    : () -> i32  memory.grow(N pages), N = input u64 LE at [0:8];
;;                        outputs memory.grow's i32 result sign-extended to
;;                        u64 LE: the old page count (1 on the first call), or
;;                        0xFFFFFFFFFFFFFFFF when refused. Over max_pages the
;;                        official SDK fails the call with "oom" instead.
;;   pages   : () -> i32  outputs memory.size (pages) as u64 LE
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "extism:host/env" "input_load_u64" (func $input_load_u64 (param i64) (result i64)))
  (memory (export "memory") 1)

  (func $out_u64 (param $v i64)
    (local $o i64)
    (local.set $o (call $alloc (i64.const 8)))
    (call $store_u64 (local.get $o) (local.get $v))
    (call $output_set (local.get $o) (i64.const 8)))

  ;; output 2..4 ASCII bytes packed little-endian in $v
  (func $out_text (param $v i32) (param $n i32)
    (local $o i64) (local $i i32)
    (local.set $o (call $alloc (i64.extend_i32_u (local.get $n))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (call $store_u8 (i64.add (local.get $o) (i64.extend_i32_u (local.get $i)))
          (i32.shr_u (local.get $v) (i32.mul (local.get $i) (i32.const 8))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (call $output_set (local.get $o) (i64.extend_i32_u (local.get $n))))

  (func (export "forever") (result i32)
    (loop $l (br $l))
    (i32.const 0))

  (func (export "busy") (result i32)
    (local $n i64)
    (local.set $n (call $input_load_u64 (i64.const 0)))
    (block $done
      (loop $l
        (br_if $done (i64.eqz (local.get $n)))
        (local.set $n (i64.sub (local.get $n) (i64.const 1)))
        (br $l)))
    (call $out_text (i32.const 0x656e6f64) (i32.const 4)) ;; "done"
    (i32.const 0))

  (func (export "ok") (result i32)
    (call $out_text (i32.const 0x6b6f) (i32.const 2)) ;; "ok"
    (i32.const 0))

  (func (export "grow") (result i32)
    (call $out_u64 (i64.extend_i32_s
      (memory.grow (i32.wrap_i64 (call $input_load_u64 (i64.const 0))))))
    (i32.const 0))

  (func (export "pages") (result i32)
    (call $out_u64 (i64.extend_i32_u (memory.size)))
    (i32.const 0))
)
