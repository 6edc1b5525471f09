;; Exports with types outside the ABI's () -> i32 / () -> (). Loading works;
;; calling either export must fail with an error about its type, and `good`
;; (outputs nothing, returns 0) must keep working.
;;   takes_param : (i32) -> i32
;;   returns_i64 : () -> i64
(module
  (func (export "takes_param") (param i32) (result i32) (local.get 0))
  (func (export "returns_i64") (result i64) (i64.const 0))
  (func (export "good") (result i32) (i32.const 0))
)
