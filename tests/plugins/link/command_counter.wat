;; "lib": a command module (`_start`, no `_initialize`). compute(x) counts its calls in n and
;; returns x + n; `_start` would set n to 100 and must not run for a linked module.
(module
  (global $n (mut i32) (i32.const 0))
  (func (export "_start") (global.set $n (i32.const 100)))
  (func (export "compute") (param $x i32) (result i32)
    (global.set $n (i32.add (global.get $n) (i32.const 1)))
    (i32.add (local.get $x) (global.get $n))))
