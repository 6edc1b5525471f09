;; host_probes.wat - hands arbitrary offsets to the `extism:host/env` functions
;; that take a block (besides the kernel.wat probes): a host must either fail
;; the call with a clear error naming the function, or answer 0 / ignore the
;; offset; it must never crash or touch memory outside the kernel region.
;;
;; Every export is () -> i32 and reads its arguments from the input as u64 LE:
;; input[0:8] = first argument, input[8:16] = second argument.
;;   probe_error_set    : error_set(a); error_set(0) is NOT called afterwards;
;;                        output "ok"
;;   probe_input_set    : input_set(a, b); output input_length() as u64 LE
;;   probe_config_get   : output config_get(a) as u64 LE (the handle)
;;   probe_var_get      : output var_get(a) as u64 LE (the handle)
;;   probe_var_set      : var_set(a, b); output "ok"
;;   probe_log_info     : log_info(a); output "ok"
;;   probe_http_request : output http_request(a, b) as u64 LE
;;   ok                 : output "ok"
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (import "extism:host/env" "input_length" (func $input_length (result i64)))
  (import "extism:host/env" "input_load_u64" (func $input_load_u64 (param i64) (result i64)))
  (import "extism:host/env" "input_set" (func $input_set (param i64 i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "extism:host/env" "error_set" (func $error_set (param i64)))
  (import "extism:host/env" "config_get" (func $config_get (param i64) (result i64)))
  (import "extism:host/env" "var_get" (func $var_get (param i64) (result i64)))
  (import "extism:host/env" "var_set" (func $var_set (param i64 i64)))
  (import "extism:host/env" "log_info" (func $log_info (param i64)))
  (import "extism:host/env" "http_request" (func $http_request (param i64 i64) (result i64)))

  (func $arg (param $i i64) (result i64)
    (call $input_load_u64 (i64.mul (local.get $i) (i64.const 8))))

  (func $out_u64 (param $v i64)
    (local $o i64)
    (local.set $o (call $alloc (i64.const 8)))
    (call $store_u64 (local.get $o) (local.get $v))
    (call $output_set (local.get $o) (i64.const 8)))

  (func $out_ok
    (local $o i64)
    (local.set $o (call $alloc (i64.const 2)))
    (call $store_u8 (local.get $o) (i32.const 0x6f))
    (call $store_u8 (i64.add (local.get $o) (i64.const 1)) (i32.const 0x6b))
    (call $output_set (local.get $o) (i64.const 2)))

  (func (export "probe_error_set") (result i32)
    (call $error_set (call $arg (i64.const 0)))
    (call $out_ok)
    (i32.const 0))

  (func (export "probe_input_set") (result i32)
    (local $a i64) (local $b i64)
    (local.set $a (call $arg (i64.const 0)))
    (local.set $b (call $arg (i64.const 1)))
    (call $input_set (local.get $a) (local.get $b))
    (call $out_u64 (call $input_length))
    (i32.const 0))

  (func (export "probe_config_get") (result i32)
    (call $out_u64 (call $config_get (call $arg (i64.const 0))))
    (i32.const 0))

  (func (export "probe_var_get") (result i32)
    (call $out_u64 (call $var_get (call $arg (i64.const 0))))
    (i32.const 0))

  (func (export "probe_var_set") (result i32)
    (call $var_set (call $arg (i64.const 0)) (call $arg (i64.const 1)))
    (call $out_ok)
    (i32.const 0))

  (func (export "probe_log_info") (result i32)
    (call $log_info (call $arg (i64.const 0)))
    (call $out_ok)
    (i32.const 0))

  (func (export "probe_http_request") (result i32)
    (call $out_u64 (call $http_request (call $arg (i64.const 0)) (call $arg (i64.const 1))))
    (i32.const 0))

  (func (export "ok") (result i32)
    (call $out_ok)
    (i32.const 0))
)
