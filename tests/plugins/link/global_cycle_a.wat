;; "a" imports a global from "b", which imports one from "a": no order can instantiate them.
(module
  (import "b" "g" (global i32))
  (global (export "g") i32 (i32.const 1)))
