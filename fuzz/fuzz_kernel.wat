;; fuzz_kernel.wat - replays its input as a sequence of extism:host/env calls (fuzz/kernel.py).
;;
;; Exports:
;;   echo  output = the input block itself (output_set(input_offset, input_length))
;;   fuzz  copies the input (at most 60,000 bytes) into linear memory, then runs it as a program
;;
;; Program: one opcode byte (taken modulo 24), then the operands the opcode reads. An operand
;; "arg" is a selector byte (modulo 8) and what it selects:
;;   0 r[b & 7]            1 r[b & 7] + (signed byte)     2 one byte          3 two bytes (LE u16)
;;   4 eight bytes (LE u64) 5 input_offset() + byte       6 memory_bytes() - byte   7 zero
;; r[0..7] is a ring of the offsets the program got back (alloc, config_get, var_get, str, ...),
;; so later operations can name real blocks, their neighbours, or anything else.
;; Bytes past the end of the program read as 0. Opcodes:
;;   0 alloc(arg) -> r       1 free(arg)          2 length(arg)        3 length_unsafe(arg)
;;   4 load_u8(arg)          5 load_u64(arg)      6 store_u8(arg, byte)  7 store_u64(arg, u64)
;;   8 input_load_u8(arg)    9 input_load_u64(arg) 10 input_set(arg, arg) 11 output_set(arg, arg)
;;  12 error_set(arg)       13 config_get(arg) -> r  14 var_get(arg) -> r  15 var_set(arg, arg)
;;  16 log_<byte % 5>(arg)  17 reset             18 input_offset -> r, input_length
;;  19 output_offset -> r, output_length       20 error_get -> r     21 get_log_level, memory_bytes
;;  22 str: n = byte, a new block of the next n bytes -> r (keys, values, messages)
;;  23 return byte (a non-zero return fails the call)
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "free" (func $free (param i64)))
  (import "extism:host/env" "length" (func $length (param i64) (result i64)))
  (import "extism:host/env" "length_unsafe" (func $length_unsafe (param i64) (result i64)))
  (import "extism:host/env" "load_u8" (func $load_u8 (param i64) (result i32)))
  (import "extism:host/env" "load_u64" (func $load_u64 (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (import "extism:host/env" "input_length" (func $input_length (result i64)))
  (import "extism:host/env" "input_offset" (func $input_offset (result i64)))
  (import "extism:host/env" "input_load_u8" (func $input_load_u8 (param i64) (result i32)))
  (import "extism:host/env" "input_load_u64" (func $input_load_u64 (param i64) (result i64)))
  (import "extism:host/env" "input_set" (func $input_set (param i64 i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "extism:host/env" "output_length" (func $output_length (result i64)))
  (import "extism:host/env" "output_offset" (func $output_offset (result i64)))
  (import "extism:host/env" "error_set" (func $error_set (param i64)))
  (import "extism:host/env" "error_get" (func $error_get (result i64)))
  (import "extism:host/env" "reset" (func $reset))
  (import "extism:host/env" "memory_bytes" (func $memory_bytes (result i64)))
  (import "extism:host/env" "config_get" (func $config_get (param i64) (result i64)))
  (import "extism:host/env" "var_get" (func $var_get (param i64) (result i64)))
  (import "extism:host/env" "var_set" (func $var_set (param i64 i64)))
  (import "extism:host/env" "log_trace" (func $log_trace (param i64)))
  (import "extism:host/env" "log_debug" (func $log_debug (param i64)))
  (import "extism:host/env" "log_info" (func $log_info (param i64)))
  (import "extism:host/env" "log_warn" (func $log_warn (param i64)))
  (import "extism:host/env" "log_error" (func $log_error (param i64)))
  (import "extism:host/env" "get_log_level" (func $get_log_level (result i32)))

  ;; [0, 64): the ring r[0..7]; [4096, 4096 + 60000): the program.
  (memory (export "memory") 1)
  (global $pc (mut i32) (i32.const 0))
  (global $len (mut i32) (i32.const 0))
  (global $ring (mut i32) (i32.const 0))

  (func $byte (result i32)
    (if (result i32) (i32.lt_u (global.get $pc) (global.get $len))
      (then
        (i32.load8_u (i32.add (i32.const 4096) (global.get $pc)))
        (global.set $pc (i32.add (global.get $pc) (i32.const 1))))
      (else (i32.const 0))))

  (func $u64 (result i64) (local $v i64) (local $i i64)
    (block $done
      (loop $next
        (br_if $done (i64.ge_u (local.get $i) (i64.const 64)))
        (local.set $v (i64.or (local.get $v)
          (i64.shl (i64.extend_i32_u (call $byte)) (local.get $i))))
        (local.set $i (i64.add (local.get $i) (i64.const 8)))
        (br $next)))
    (local.get $v))

  (func $reg (result i64)
    (i64.load (i32.shl (i32.and (call $byte) (i32.const 7)) (i32.const 3))))

  (func $push (param $v i64)
    (i64.store (i32.shl (i32.and (global.get $ring) (i32.const 7)) (i32.const 3)) (local.get $v))
    (global.set $ring (i32.add (global.get $ring) (i32.const 1))))

  (func $arg (result i64) (local $lo i64)
    (block $b7 (block $b6 (block $b5 (block $b4 (block $b3 (block $b2 (block $b1 (block $b0
      (br_table $b0 $b1 $b2 $b3 $b4 $b5 $b6 $b7 (i32.and (call $byte) (i32.const 7))))
      (return (call $reg)))
      (return (i64.add (call $reg) (i64.extend8_s (i64.extend_i32_u (call $byte))))))
      (return (i64.extend_i32_u (call $byte))))
      (local.set $lo (i64.extend_i32_u (call $byte)))
      (return (i64.or (local.get $lo) (i64.shl (i64.extend_i32_u (call $byte)) (i64.const 8)))))
      (return (call $u64)))
      (return (i64.add (call $input_offset) (i64.extend_i32_u (call $byte)))))
      (return (i64.sub (call $memory_bytes) (i64.extend_i32_u (call $byte)))))
    (i64.const 0))

  (func $log (param $level i32) (param $msg i64)
    (block $b4 (block $b3 (block $b2 (block $b1 (block $b0
      (br_table $b0 $b1 $b2 $b3 $b4 (local.get $level)))
      (call $log_trace (local.get $msg)) (return))
      (call $log_debug (local.get $msg)) (return))
      (call $log_info (local.get $msg)) (return))
      (call $log_warn (local.get $msg)) (return))
    (call $log_error (local.get $msg)))

  ;; A new block holding the next n program bytes.
  (func $str (result i64) (local $n i64) (local $off i64) (local $i i64)
    (local.set $n (i64.extend_i32_u (call $byte)))
    (local.set $off (call $alloc (local.get $n)))
    (block $done
      (loop $next
        (br_if $done (i64.ge_u (local.get $i) (local.get $n)))
        (call $store_u8 (i64.add (local.get $off) (local.get $i)) (call $byte))
        (local.set $i (i64.add (local.get $i) (i64.const 1)))
        (br $next)))
    (local.get $off))

  (func (export "echo") (result i32)
    (call $output_set (call $input_offset) (call $input_length))
    (i32.const 0))

  ;; One opcode; returns -1 to go on, else the export's return code.
  (func $step (result i32) (local $op i32)
    (local.set $op (i32.rem_u (call $byte) (i32.const 24)))
    (block $b23 (block $b22 (block $b21 (block $b20 (block $b19 (block $b18 (block $b17 (block $b16
    (block $b15 (block $b14 (block $b13 (block $b12 (block $b11 (block $b10 (block $b9 (block $b8
    (block $b7 (block $b6 (block $b5 (block $b4 (block $b3 (block $b2 (block $b1 (block $b0
      (br_table $b0 $b1 $b2 $b3 $b4 $b5 $b6 $b7 $b8 $b9 $b10 $b11 $b12 $b13 $b14 $b15 $b16 $b17
                $b18 $b19 $b20 $b21 $b22 $b23 (local.get $op)))
      (call $push (call $alloc (call $arg))) (return (i32.const -1)))
      (call $free (call $arg)) (return (i32.const -1)))
      (drop (call $length (call $arg))) (return (i32.const -1)))
      (drop (call $length_unsafe (call $arg))) (return (i32.const -1)))
      (drop (call $load_u8 (call $arg))) (return (i32.const -1)))
      (drop (call $load_u64 (call $arg))) (return (i32.const -1)))
      (call $store_u8 (call $arg) (call $byte)) (return (i32.const -1)))
      (call $store_u64 (call $arg) (call $u64)) (return (i32.const -1)))
      (drop (call $input_load_u8 (call $arg))) (return (i32.const -1)))
      (drop (call $input_load_u64 (call $arg))) (return (i32.const -1)))
      (call $input_set (call $arg) (call $arg)) (return (i32.const -1)))
      (call $output_set (call $arg) (call $arg)) (return (i32.const -1)))
      (call $error_set (call $arg)) (return (i32.const -1)))
      (call $push (call $config_get (call $arg))) (return (i32.const -1)))
      (call $push (call $var_get (call $arg))) (return (i32.const -1)))
      (call $var_set (call $arg) (call $arg)) (return (i32.const -1)))
      (call $log (i32.rem_u (call $byte) (i32.const 5)) (call $arg)) (return (i32.const -1)))
      (call $reset) (return (i32.const -1)))
      (call $push (call $input_offset)) (drop (call $input_length)) (return (i32.const -1)))
      (call $push (call $output_offset)) (drop (call $output_length)) (return (i32.const -1)))
      (call $push (call $error_get)) (return (i32.const -1)))
      (drop (call $get_log_level)) (drop (call $memory_bytes)) (return (i32.const -1)))
      (call $push (call $str)) (return (i32.const -1)))
    (call $byte))

  (func (export "fuzz") (result i32) (local $i i64) (local $n i64) (local $rc i32)
    ;; Copy the program out of the input first: input_set may change the input while it runs.
    (local.set $n (call $input_length))
    (if (i64.gt_u (local.get $n) (i64.const 60000)) (then (local.set $n (i64.const 60000))))
    (block $copied
      (loop $copy
        (br_if $copied (i64.ge_u (local.get $i) (local.get $n)))
        (i32.store8 (i32.add (i32.const 4096) (i32.wrap_i64 (local.get $i)))
                    (call $input_load_u8 (local.get $i)))
        (local.set $i (i64.add (local.get $i) (i64.const 1)))
        (br $copy)))
    (global.set $pc (i32.const 0))
    (global.set $len (i32.wrap_i64 (local.get $n)))
    (global.set $ring (i32.const 0))
    (memory.fill (i32.const 0) (i32.const 0) (i32.const 64))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (global.get $pc) (global.get $len)))
        (local.set $rc (call $step))
        (br_if $next (i32.eq (local.get $rc) (i32.const -1)))
        (return (local.get $rc))))
    (i32.const 0))
)
