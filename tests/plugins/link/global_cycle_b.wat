;; "b": see global_cycle_a.wat.
(module
  (import "a" "g" (global i32))
  (global (export "g") i32 (i32.const 2)))
