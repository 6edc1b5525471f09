;; What real PDK plugins do that a host must accept as the official runtime does (issue: drop-in).
;; Each export is one habit; tests/test_compat.py runs them against both SDKs.
;;   - offset 0 as the empty string (log, config_get, var_get/var_set key, output_set, error_set)
;;   - reads past the end of a short input (input_load_u64 of the last partial word, input_load_u8
;;     at the input's length) and loads/stores outside kernel memory
;;   - a log message at a filtered-out level with an offset that is not a block
;;   - freeing a block the host already took (the Haskell PDK frees config_get keys twice)
;;   - error_set followed by free of the error block
(module
 (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
 (import "extism:host/env" "free" (func $free (param i64)))
 (import "extism:host/env" "length" (func $length (param i64) (result i64)))
 (import "extism:host/env" "store_u8" (func $store8 (param i64 i32)))
 (import "extism:host/env" "store_u64" (func $store64 (param i64 i64)))
 (import "extism:host/env" "load_u8" (func $load8 (param i64) (result i32)))
 (import "extism:host/env" "load_u64" (func $load64 (param i64) (result i64)))
 (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
 (import "extism:host/env" "error_set" (func $error_set (param i64)))
 (import "extism:host/env" "config_get" (func $config_get (param i64) (result i64)))
 (import "extism:host/env" "var_get" (func $var_get (param i64) (result i64)))
 (import "extism:host/env" "var_set" (func $var_set (param i64 i64)))
 (import "extism:host/env" "log_info" (func $log_info (param i64)))
 (import "extism:host/env" "log_trace" (func $log_trace (param i64)))
 (import "extism:host/env" "input_length" (func $input_length (result i64)))
 (import "extism:host/env" "input_load_u8" (func $iload8 (param i64) (result i32)))
 (import "extism:host/env" "input_load_u64" (func $iload64 (param i64) (result i64)))

 ;; The output: one little-endian u64.
 (func $out (param $v i64) (local $o i64)
   (local.set $o (call $alloc (i64.const 8)))
   (call $store64 (local.get $o) (local.get $v))
   (call $output_set (local.get $o) (i64.const 8)))
 ;; A new block holding one byte.
 (func $byte (param $b i32) (result i64) (local $o i64)
   (local.set $o (call $alloc (i64.const 1)))
   (call $store8 (local.get $o) (local.get $b))
   (local.get $o))

 (func (export "log_zero") (result i32) (call $log_info (i64.const 0)) (i32.const 0))
 (func (export "trace_bad") (result i32) (call $log_trace (i64.const 999999)) (i32.const 0))
 (func (export "info_bad") (result i32) (call $log_info (i64.const 999999)) (i32.const 0))
 ;; u64: config_get(0) (no key "" in the config: 0)
 (func (export "config_zero") (result i32) (call $out (call $config_get (i64.const 0))) (i32.const 0))
 (func (export "config_bad") (result i32) (call $out (call $config_get (i64.const 999999))) (i32.const 0))
 ;; var_set("" = offset 0, "A"), then u64: length(var_get(0)) = 1
 (func (export "var_zero") (result i32)
   (call $var_set (i64.const 0) (call $byte (i32.const 65)))
   (call $out (call $length (call $var_get (i64.const 0)))) (i32.const 0))
 ;; output_set(0, 0) and out-of-range ranges are ignored: the output stays empty
 (func (export "output_zero") (result i32) (call $output_set (i64.const 0) (i64.const 0)) (i32.const 0))
 (func (export "output_bad") (result i32) (call $output_set (i64.const 999999) (i64.const 5)) (i32.const 0))
 ;; error_set(0) clears; an out-of-range offset is ignored: both calls succeed
 (func (export "error_zero") (result i32) (call $error_set (i64.const 0)) (i32.const 0))
 (func (export "error_bad") (result i32) (call $error_set (i64.const 999999)) (i32.const 0))
 ;; error_set("E"), then free it: the call still fails
 (func (export "error_freed") (result i32) (local $e i64)
   (local.set $e (call $byte (i32.const 69)))
   (call $error_set (local.get $e)) (call $free (local.get $e)) (i32.const 0))
 ;; u64: load_u8 far outside | load_u64 near 2^63 | load_u8(0): all 0
 (func (export "loads") (result i32)
   (call $out (i64.or (i64.or (i64.extend_i32_u (call $load8 (i64.const 0xFFFFFFFFF)))
                              (call $load64 (i64.const 0x7FFFFFFFFFFFFFF0)))
                      (i64.extend_i32_u (call $load8 (i64.const 0))))) (i32.const 0))
 ;; stores outside kernel memory do nothing; u64: 7
 (func (export "stores") (result i32)
   (call $store8 (i64.const 0xFFFFFFFFF) (i32.const 1))
   (call $store64 (i64.const -8) (i64.const 1))
   (call $store64 (i64.const 0) (i64.const 1))
   (call $out (i64.const 7)) (i32.const 0))
 ;; u64: input_load_u64(len - 4) | input_load_u8(len) << 32: both past the end, 0
 (func (export "input_tail") (result i32)
   (call $out (i64.or (call $iload64 (i64.sub (call $input_length) (i64.const 4)))
                      (i64.shl (i64.extend_i32_u (call $iload8 (call $input_length))) (i64.const 32)))) (i32.const 0))
 ;; config_get(key "k") takes the key; free(key) again; alloc; the value must be intact
 (func (export "double_free") (result i32) (local $k i64) (local $v i64)
   (local.set $k (call $byte (i32.const 107)))
   (local.set $v (call $config_get (local.get $k)))
   (call $free (local.get $k))
   (drop (call $byte (i32.const 120)))
   (call $output_set (local.get $v) (call $length (local.get $v))) (i32.const 0))
 ;; u64: 1 when alloc(16) after free(alloc(16)) returns the freed block (never: fresh space first)
 (func (export "alloc_order") (result i32) (local $a i64) (local $b i64)
   (local.set $a (call $alloc (i64.const 16)))
   (call $free (local.get $a))
   (local.set $b (call $alloc (i64.const 16)))
   (call $out (i64.extend_i32_u (i64.eq (local.get $a) (local.get $b)))) (i32.const 0))
 ;; u64: the lengths of blocks handed to config_get, var_set and log_error afterwards: all 0,
 ;; the host took (freed) them
 (func (export "host_takes_blocks") (result i32) (local $k i64) (local $v i64) (local $m i64)
   (local.set $k (call $byte (i32.const 107)))
   (drop (call $config_get (local.get $k)))
   (local.set $v (call $byte (i32.const 109)))
   (call $var_set (call $byte (i32.const 108)) (local.get $v))
   (local.set $m (call $byte (i32.const 110)))
   (call $log_info (local.get $m))
   (call $out (i64.add (i64.add (call $length (local.get $k)) (call $length (local.get $v)))
                       (call $length (local.get $m)))) (i32.const 0))
)
