;; "b" as in cycle_b.wat, with a start function that calls lib::finish: instantiated before lib
;; (it is listed first), it reaches lib before lib exists.
(module
  (import "lib" "finish" (func $finish (param i32) (result i32)))
  (func $start (drop (call $finish (i32.const 0))))
  (start $start)
  (func (export "step") (param i32) (result i32) (call $finish (i32.mul (local.get 0) (i32.const 2)))))
