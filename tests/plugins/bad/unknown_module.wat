;; Imports from a module nobody provides: loading must fail with an error
;; that names "nope" (and/or "f").
(module
  (import "nope" "f" (func $f))
  (func (export "run") (result i32)
    (call $f)
    (i32.const 0))
)
