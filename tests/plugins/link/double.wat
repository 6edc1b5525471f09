;; compute(x) = 2x + 2: linked as a module named e.g. extism:host/user, it provides main's import.
(module
  (func (export "compute") (param i32) (result i32)
    (i32.add (i32.mul (local.get 0) (i32.const 2)) (i32.const 2))))
