;; "lib", one half of a cycle: compute(x) = b::step(x), and b::step calls back lib::finish.
(module
  (import "b" "step" (func $step (param i32) (result i32)))
  (func (export "compute") (param i32) (result i32) (call $step (local.get 0)))
  (func (export "finish") (param i32) (result i32) (i32.add (local.get 0) (i32.const 2))))
