;; Needs WASI: imports wasi_snapshot_preview1.fd_write.
;; With WASI off, loading must fail with an error naming the WASI import.
;; With WASI on:
;;   run : () -> i32  writes "hello from wasi\n" to stdout (fd 1) and outputs
;;                    "ok"
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (memory (export "memory") 1)
  (data (i32.const 16) "hello from wasi\n")

  (func (export "run") (result i32)
    (local $o i64)
    ;; iovec at 0: { buf = 16, len = 16 }; bytes written stored at 8
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 16))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (local.set $o (call $alloc (i64.const 2)))
    (call $store_u8 (local.get $o) (i32.const 0x6f))
    (call $store_u8 (i64.add (local.get $o) (i64.const 1)) (i32.const 0x6b))
    (call $output_set (local.get $o) (i64.const 2))
    (i32.const 0))
)
