;; "cmd": a command module (it exports `_start` and no `_initialize`), depending on "log". A linked
;; command is not started: its `_start` would note 8.
(module
  (import "log" "note" (func $note (param i32)))
  (func (export "_start") (call $note (i32.const 8)))
  (func (export "seven") (result i32) (i32.const 7)))
