;; "lib": as init_global.wat, but its `_initialize` traps (unreachable) while the host function
;; extism:host/user::should_trap returns non-zero.
(module
  (import "extism:host/user" "should_trap" (func $should_trap (result i32)))
  (global $g (export "g") (mut i32) (i32.const 0))
  (global $n (mut i32) (i32.const 0))
  (func (export "_initialize")
    (if (call $should_trap) (then unreachable))
    (global.set $g (i32.const 42))
    (global.set $n (i32.add (global.get $n) (i32.const 1))))
  (func (export "n_init") (result i32) (global.get $n)))
