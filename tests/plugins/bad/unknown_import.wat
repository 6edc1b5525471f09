;; Imports a function that is not in the ABI: loading must fail with an
;; error that names "does_not_exist".
(module
  (import "extism:host/env" "does_not_exist" (func $nope (param i64) (result i64)))
  (func (export "run") (result i32)
    (drop (call $nope (i64.const 0)))
    (i32.const 0))
)
