;; Imports lib's global `limit` as an i32 and returns it.
(module
  (import "lib" "limit" (global $limit i32))
  (func (export "run") (result i32) (global.get $limit)))
