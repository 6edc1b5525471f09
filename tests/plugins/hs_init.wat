;; hs_init.wat - a Haskell-style module exporting `_initialize` and `hs_init`.
;;
;; The host must call `_initialize` first, then `hs_init`, each once per
;; instance. `hs_init` has GHC's real signature (argc: i32, argv: i32) -> ();
;; the official Extism runtime calls it as hs_init(0, 0).
;;   _initialize : () -> ()          seq += 1; at_init = seq; n_init += 1
;;   hs_init     : (i32, i32) -> ()  seq += 1; at_hs = seq; n_hs += 1;
;;                                   args = argc | argv << 32
;;   get : () -> i32  output u64[5] LE (at_init, at_hs, n_init, n_hs, args);
;;                    expected (1, 2, 1, 1, 0) on every call of one plugin
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (global $seq (mut i64) (i64.const 0))
  (global $at_init (mut i64) (i64.const 0))
  (global $at_hs (mut i64) (i64.const 0))
  (global $n_init (mut i64) (i64.const 0))
  (global $n_hs (mut i64) (i64.const 0))
  (global $args (mut i64) (i64.const 0))

  (func (export "_initialize")
    (global.set $seq (i64.add (global.get $seq) (i64.const 1)))
    (global.set $at_init (global.get $seq))
    (global.set $n_init (i64.add (global.get $n_init) (i64.const 1))))

  (func (export "hs_init") (param $argc i32) (param $argv i32)
    (global.set $seq (i64.add (global.get $seq) (i64.const 1)))
    (global.set $at_hs (global.get $seq))
    (global.set $n_hs (i64.add (global.get $n_hs) (i64.const 1)))
    (global.set $args
      (i64.or (i64.extend_i32_u (local.get $argc))
              (i64.shl (i64.extend_i32_u (local.get $argv)) (i64.const 32)))))

  (func $put (param $o i64) (param $i i64) (param $v i64)
    (call $store_u64 (i64.add (local.get $o) (i64.mul (local.get $i) (i64.const 8)))
      (local.get $v)))

  (func (export "get") (result i32)
    (local $o i64)
    (local.set $o (call $alloc (i64.const 40)))
    (call $put (local.get $o) (i64.const 0) (global.get $at_init))
    (call $put (local.get $o) (i64.const 1) (global.get $at_hs))
    (call $put (local.get $o) (i64.const 2) (global.get $n_init))
    (call $put (local.get $o) (i64.const 3) (global.get $n_hs))
    (call $put (local.get $o) (i64.const 4) (global.get $args))
    (call $output_set (local.get $o) (i64.const 40))
    (i32.const 0))
)
