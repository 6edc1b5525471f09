;; "lib": compute(x) = helper::add(x, x) + 2, importing from a module listed after it.
(module
  (import "helper" "add" (func $add (param i32 i32) (result i32)))
  (func (export "compute") (param i32) (result i32)
    (i32.add (call $add (local.get 0) (local.get 0)) (i32.const 2))))
