;; "log": records the order startup functions run in. note(id): log = log * 10 + id.
;; Its own `_initialize` notes 1.
(module
  (global $log (mut i64) (i64.const 0))
  (func $note (export "note") (param $id i32)
    (global.set $log (i64.add (i64.mul (global.get $log) (i64.const 10)) (i64.extend_i32_u (local.get $id)))))
  (func (export "_initialize") (call $note (i32.const 1)))
  (func (export "log") (result i64) (global.get $log)))
