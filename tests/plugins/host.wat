;; host.wat - exercises the host-provided imports (docs/ABI.md, "Host functions").
;;
;; Every export is () -> i32 (0 = ok). Handles passed to host functions are
;; never freed or reused here (the host owns them), so keys are always fresh
;; copies of the input. Formats: u64 / u32 = little-endian integers.
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "length" (func $length (param i64) (result i64)))
  (import "extism:host/env" "load_u8" (func $load_u8 (param i64) (result i32)))
  (import "extism:host/env" "load_u64" (func $load_u64 (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (import "extism:host/env" "input_length" (func $input_length (result i64)))
  (import "extism:host/env" "input_load_u8" (func $input_load_u8 (param i64) (result i32)))
  (import "extism:host/env" "input_load_u64" (func $input_load_u64 (param i64) (result i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "extism:host/env" "error_set" (func $error_set (param i64)))
  (import "extism:host/env" "config_get" (func $config_get (param i64) (result i64)))
  (import "extism:host/env" "var_get" (func $var_get (param i64) (result i64)))
  (import "extism:host/env" "var_set" (func $var_set (param i64 i64)))
  (import "extism:host/env" "http_request" (func $http_request (param i64 i64) (result i64)))
  (import "extism:host/env" "http_status_code" (func $http_status_code (result i32)))
  (import "extism:host/env" "http_headers" (func $http_headers (result i64)))
  (import "extism:host/env" "log_trace" (func $log_trace (param i64)))
  (import "extism:host/env" "log_debug" (func $log_debug (param i64)))
  (import "extism:host/env" "log_info" (func $log_info (param i64)))
  (import "extism:host/env" "log_warn" (func $log_warn (param i64)))
  (import "extism:host/env" "log_error" (func $log_error (param i64)))
  (import "extism:host/env" "get_log_level" (func $get_log_level (result i32)))

  (memory (export "memory") 1)
  (data (i32.const 0) "ok")
  (data (i32.const 8) "<none>")
  (data (i32.const 16) "counter")
  (data (i32.const 32) "trace msg")
  (data (i32.const 48) "debug msg")
  (data (i32.const 64) "info msg")
  (data (i32.const 80) "warn msg")
  (data (i32.const 96) "error msg")
  (data (i32.const 112) "expected key=value")
  (data (i32.const 256)
    "{\"url\": \"http://127.0.0.1:1/\", \"method\": \"GET\", \"headers\": {}}")
  ;; bytes 1024.. are scratch space for small integer outputs

  ;; ---------------------------------------------------------------- helpers
  ;; New kernel block holding linear memory [ptr, ptr+len).
  (func $str (param $ptr i32) (param $len i32) (result i64)
    (local $off i64) (local $i i32)
    (local.set $off (call $alloc (i64.extend_i32_u (local.get $len))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
        (call $store_u8
          (i64.add (local.get $off) (i64.extend_i32_u (local.get $i)))
          (i32.load8_u (i32.add (local.get $ptr) (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.get $off))

  (func $out_mem (param $ptr i32) (param $len i32)
    (call $output_set
      (call $str (local.get $ptr) (local.get $len))
      (i64.extend_i32_u (local.get $len))))

  (func $out_ok (call $out_mem (i32.const 0) (i32.const 2)))
  (func $out_none (call $out_mem (i32.const 8) (i32.const 6)))

  (func $out_u64 (param $a i64)
    (i64.store (i32.const 1024) (local.get $a))
    (call $out_mem (i32.const 1024) (i32.const 8)))

  (func $out_u32 (param $a i32)
    (i32.store (i32.const 1024) (local.get $a))
    (call $out_mem (i32.const 1024) (i32.const 4)))

  ;; New block holding input[start, start+len) (0 when len == 0).
  (func $copy_input (param $start i64) (param $len i64) (result i64)
    (local $o i64) (local $i i64)
    (local.set $o (call $alloc (local.get $len)))
    (block $done
      (loop $next
        (br_if $done (i64.gt_u (i64.add (local.get $i) (i64.const 8)) (local.get $len)))
        (call $store_u64 (i64.add (local.get $o) (local.get $i))
          (call $input_load_u64 (i64.add (local.get $start) (local.get $i))))
        (local.set $i (i64.add (local.get $i) (i64.const 8)))
        (br $next)))
    (block $done2
      (loop $next2
        (br_if $done2 (i64.ge_u (local.get $i) (local.get $len)))
        (call $store_u8 (i64.add (local.get $o) (local.get $i))
          (call $input_load_u8 (i64.add (local.get $start) (local.get $i))))
        (local.set $i (i64.add (local.get $i) (i64.const 1)))
        (br $next2)))
    (local.get $o))

  ;; New block holding the whole input.
  (func $input_copy (result i64)
    (call $copy_input (i64.const 0) (call $input_length)))

  ;; Copy n bytes between kernel offsets.
  (func $copy_block (param $dst i64) (param $src i64) (param $n i64)
    (local $i i64)
    (block $done
      (loop $next
        (br_if $done (i64.gt_u (i64.add (local.get $i) (i64.const 8)) (local.get $n)))
        (call $store_u64 (i64.add (local.get $dst) (local.get $i))
          (call $load_u64 (i64.add (local.get $src) (local.get $i))))
        (local.set $i (i64.add (local.get $i) (i64.const 8)))
        (br $next)))
    (block $done2
      (loop $next2
        (br_if $done2 (i64.ge_u (local.get $i) (local.get $n)))
        (call $store_u8 (i64.add (local.get $dst) (local.get $i))
          (call $load_u8 (i64.add (local.get $src) (local.get $i))))
        (local.set $i (i64.add (local.get $i) (i64.const 1)))
        (br $next2))))

  ;; Output block v entirely, or "<none>" when v == 0.
  (func $out_block_or_none (param $v i64)
    (if (i64.eqz (local.get $v))
      (then (call $out_none))
      (else (call $output_set (local.get $v) (call $length (local.get $v))))))

  ;; ---------------------------------------------------------------- config
  ;; input = key; output = config[key], or "<none>" when config_get returns 0
  (func (export "config_get") (result i32)
    (call $out_block_or_none (call $config_get (call $input_copy)))
    (i32.const 0))

  ;; ------------------------------------------------------------------ vars
  ;; input = key; output = var[key], or "<none>" when var_get returns 0
  (func (export "var_get") (result i32)
    (call $out_block_or_none (call $var_get (call $input_copy)))
    (i32.const 0))

  ;; input = "key=value" (split at the first '='); var_set(key, value);
  ;; an empty value passes 0 and so deletes the var. Output "ok".
  ;; No '=' -> fails with "expected key=value".
  (func (export "var_set_from_input") (result i32)
    (local $n i64) (local $i i64) (local $eq i64)
    (local.set $n (call $input_length))
    (local.set $eq (i64.const -1))
    (block $found
      (loop $next
        (br_if $found (i64.ge_u (local.get $i) (local.get $n)))
        (if (i32.eq (call $input_load_u8 (local.get $i)) (i32.const 61))
          (then (local.set $eq (local.get $i)) (br $found)))
        (local.set $i (i64.add (local.get $i) (i64.const 1)))
        (br $next)))
    (if (i64.eq (local.get $eq) (i64.const -1))
      (then
        (call $error_set (call $str (i32.const 112) (i32.const 18)))
        (return (i32.const 1))))
    (call $var_set
      (call $copy_input (i64.const 0) (local.get $eq))
      (call $copy_input
        (i64.add (local.get $eq) (i64.const 1))
        (i64.sub (i64.sub (local.get $n) (local.get $eq)) (i64.const 1))))
    (call $out_ok)
    (i32.const 0))

  ;; input = key; var_set(key, 0) deletes it. Output "ok".
  (func (export "var_delete") (result i32)
    (call $var_set (call $input_copy) (i64.const 0))
    (call $out_ok)
    (i32.const 0))

  ;; var "counter" holds a u64 LE; read it (absent = 0), add 1, store it back
  ;; and output the new value as u64 LE. Successive calls on one plugin
  ;; instance output 1, 2, 3, ...
  (func (export "var_roundtrip") (result i32)
    (local $v i64) (local $n i64) (local $b i64)
    (local.set $v (call $var_get (call $str (i32.const 16) (i32.const 7))))
    (if (i64.ne (local.get $v) (i64.const 0))
      (then
        (if (i64.ge_u (call $length (local.get $v)) (i64.const 8))
          (then (local.set $n (call $load_u64 (local.get $v)))))))
    (local.set $n (i64.add (local.get $n) (i64.const 1)))
    (local.set $b (call $alloc (i64.const 8)))
    (call $store_u64 (local.get $b) (local.get $n))
    (call $var_set (call $str (i32.const 16) (i32.const 7)) (local.get $b))
    (call $out_u64 (local.get $n))
    (i32.const 0))

  ;; ------------------------------------------------------------------- log
  ;; Logs "trace msg", "debug msg", "info msg", "warn msg", "error msg" at
  ;; trace, debug, info, warn, error; outputs get_log_level() as u32 LE
  ;; (0 trace .. 4 error, 0x7FFFFFFF when logging is off).
  (func (export "log_all") (result i32)
    (call $log_trace (call $str (i32.const 32) (i32.const 9)))
    (call $log_debug (call $str (i32.const 48) (i32.const 9)))
    (call $log_info (call $str (i32.const 64) (i32.const 8)))
    (call $log_warn (call $str (i32.const 80) (i32.const 8)))
    (call $log_error (call $str (i32.const 96) (i32.const 9)))
    (call $out_u32 (call $get_log_level))
    (i32.const 0))

  ;; get_log_level() as u32 LE, logging nothing
  (func (export "get_log_level") (result i32)
    (call $out_u32 (call $get_log_level))
    (i32.const 0))

  ;; input = message; log_info(message); output "ok"
  (func (export "log_input") (result i32)
    (call $log_info (call $input_copy))
    (call $out_ok)
    (i32.const 0))

  ;; ------------------------------------------------------------------ http
  ;; http_request({"url": "http://127.0.0.1:1/", "method": "GET",
  ;; "headers": {}}, 0), then output http_status_code() as u32 LE. With no
  ;; allowed_hosts the call must fail with an error naming the host.
  (func (export "http_denied") (result i32)
    (drop (call $http_request (call $str (i32.const 256) (i32.const 62)) (i64.const 0)))
    (call $out_u32 (call $http_status_code))
    (i32.const 0))

  ;; Input: u64 LE J, then J bytes of request JSON, then the body (the rest;
  ;; none when empty -> body handle 0).
  ;; Output: u32 LE status, u64 LE body length B, B body bytes, then the
  ;; http_headers() JSON bytes (nothing when http_headers() returns 0).
  (func (export "http_request") (result i32)
    (local $j i64) (local $n i64) (local $resp i64) (local $status i32)
    (local $hdr i64) (local $b i64) (local $h i64) (local $o i64)
    (local.set $n (call $input_length))
    (local.set $j (call $input_load_u64 (i64.const 0)))
    (local.set $resp
      (call $http_request
        (call $copy_input (i64.const 8) (local.get $j))
        (call $copy_input
          (i64.add (i64.const 8) (local.get $j))
          (i64.sub (local.get $n) (i64.add (i64.const 8) (local.get $j))))))
    (local.set $status (call $http_status_code))
    (local.set $hdr (call $http_headers))
    (if (i64.ne (local.get $resp) (i64.const 0))
      (then (local.set $b (call $length (local.get $resp)))))
    (if (i64.ne (local.get $hdr) (i64.const 0))
      (then (local.set $h (call $length (local.get $hdr)))))
    (local.set $o
      (call $alloc (i64.add (i64.const 12) (i64.add (local.get $b) (local.get $h)))))
    (call $store_u64 (local.get $o) (i64.extend_i32_u (local.get $status)))
    (call $store_u64 (i64.add (local.get $o) (i64.const 4)) (local.get $b))
    (call $copy_block (i64.add (local.get $o) (i64.const 12)) (local.get $resp) (local.get $b))
    (call $copy_block
      (i64.add (local.get $o) (i64.add (i64.const 12) (local.get $b)))
      (local.get $hdr) (local.get $h))
    (call $output_set (local.get $o)
      (i64.add (i64.const 12) (i64.add (local.get $b) (local.get $h))))
    (i32.const 0))
)
