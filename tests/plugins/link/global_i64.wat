;; "lib": exports the global `limit` as an immutable i64 (main_global.wat imports it as i32).
(module
  (global (export "limit") i64 (i64.const 42)))
