;; A module that exports no `compute`: main's import of it falls back to a host function.
(module
  (func (export "other") (result i32) (i32.const 1)))
