;; count_vowels.wat - the same plugin as count_vowels.c, by hand, calling the
;; Extism kernel directly. Export `count_vowels`: outputs {"count": N}, N =
;; number of bytes of the input in "aeiouAEIOU".
(module
  (import "extism:host/env" "input_length" (func $input_length (result i64)))
  (import "extism:host/env" "input_load_u8" (func $input_load_u8 (param i64) (result i32)))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (memory 1)
  ;; bytes 0..9: the JSON prefix; the digits and "}" are appended after it
  (data (i32.const 0) "{\"count\": ")

  (func $is_vowel (param $c i32) (result i32)
    ;; fold ASCII upper case to lower case, then compare
    (local.set $c (i32.or (local.get $c) (i32.const 0x20)))
    (i32.or
      (i32.or
        (i32.or (i32.eq (local.get $c) (i32.const 0x61))     ;; a
                (i32.eq (local.get $c) (i32.const 0x65)))    ;; e
        (i32.or (i32.eq (local.get $c) (i32.const 0x69))     ;; i
                (i32.eq (local.get $c) (i32.const 0x6f))))   ;; o
      (i32.eq (local.get $c) (i32.const 0x75))))             ;; u

  (func (export "count_vowels") (result i32)
    (local $n i64) (local $i i64) (local $count i64)
    (local $digits i32) (local $len i32) (local $v i64) (local $k i32)
    (local $out i64)
    ;; count
    (local.set $n (call $input_length))
    (block $done
      (loop $next
        (br_if $done (i64.ge_u (local.get $i) (local.get $n)))
        (local.set $count (i64.add (local.get $count)
          (i64.extend_i32_u (call $is_vowel (call $input_load_u8 (local.get $i))))))
        (local.set $i (i64.add (local.get $i) (i64.const 1)))
        (br $next)))
    ;; number of decimal digits
    (local.set $v (local.get $count))
    (local.set $digits (i32.const 1))
    (block $d
      (loop $more
        (br_if $d (i64.lt_u (local.get $v) (i64.const 10)))
        (local.set $v (i64.div_u (local.get $v) (i64.const 10)))
        (local.set $digits (i32.add (local.get $digits) (i32.const 1)))
        (br $more)))
    ;; write digits right to left at 10 .. 10+digits, then "}"
    (local.set $v (local.get $count))
    (local.set $k (local.get $digits))
    (loop $write
      (local.set $k (i32.sub (local.get $k) (i32.const 1)))
      (i32.store8 (i32.add (i32.const 10) (local.get $k))
        (i32.add (i32.const 0x30) (i32.wrap_i64 (i64.rem_u (local.get $v) (i64.const 10)))))
      (local.set $v (i64.div_u (local.get $v) (i64.const 10)))
      (br_if $write (i32.gt_u (local.get $k) (i32.const 0))))
    (i32.store8 (i32.add (i32.const 10) (local.get $digits)) (i32.const 0x7d))
    (local.set $len (i32.add (i32.const 11) (local.get $digits)))
    ;; copy linear memory [0, len) into a kernel block and output it
    (local.set $out (call $alloc (i64.extend_i32_u (local.get $len))))
    (local.set $k (i32.const 0))
    (block $copied
      (loop $copy
        (br_if $copied (i32.ge_u (local.get $k) (local.get $len)))
        (call $store_u8 (i64.add (local.get $out) (i64.extend_i32_u (local.get $k)))
          (i32.load8_u (local.get $k)))
        (local.set $k (i32.add (local.get $k) (i32.const 1)))
        (br $copy)))
    (call $output_set (local.get $out) (i64.extend_i32_u (local.get $len)))
    (i32.const 0))
)
