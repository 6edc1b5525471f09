;; "b", the other half: step(x) = lib::finish(2x).
(module
  (import "lib" "finish" (func $finish (param i32) (result i32)))
  (func (export "step") (param i32) (result i32) (call $finish (i32.mul (local.get 0) (i32.const 2)))))
