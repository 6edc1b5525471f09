;; Imports the kernel's `alloc` with the wrong type (i32) -> i32 instead of
;; (i64) -> i64: loading must fail with a clear (type mismatch) error.
(module
  (import "extism:host/env" "alloc" (func $alloc (param i32) (result i32)))
  (func (export "run") (result i32)
    (drop (call $alloc (i32.const 8)))
    (i32.const 0))
)
