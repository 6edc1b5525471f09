;; "lib": as init_global.wat, and it also exports `_start` (as TinyGo modules do), which sets g to
;; -1: a linked module's `_start` must never run, its `_initialize` must.
;;   g       : exported (mut i32), 0 until `_initialize` runs
;;   n_init  : () -> i32, how many times `_initialize` ran in this instance
(module
  (global $g (export "g") (mut i32) (i32.const 0))
  (global $n (mut i32) (i32.const 0))
  (func (export "_initialize")
    (global.set $g (i32.const 42))
    (global.set $n (i32.add (global.get $n) (i32.const 1))))
  (func (export "_start") (global.set $g (i32.const -1)))
  (func (export "n_init") (result i32) (global.get $n)))
