;; "lib": imports mem's memory and function `read`; mem imports lib::finish back (a cycle that
;; also carries a memory). compute(x) stores 2x, then mem::read() = lib::finish(that) = 2x + 2.
(module
  (import "mem" "memory" (memory 1))
  (import "mem" "read" (func $read (result i32)))
  (func (export "compute") (param i32) (result i32)
    (i32.store (i32.const 0) (i32.mul (local.get 0) (i32.const 2)))
    (call $read))
  (func (export "finish") (param i32) (result i32) (i32.add (local.get 0) (i32.const 2))))
