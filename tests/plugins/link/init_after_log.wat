;; "after": depends on "log". Its `_initialize` notes 2; its `_start` (it exports both, as TinyGo
;; modules do) would note 9 and must never run.
(module
  (import "log" "note" (func $note (param i32)))
  (func (export "_initialize") (call $note (i32.const 2)))
  (func (export "_start") (call $note (i32.const 9))))
