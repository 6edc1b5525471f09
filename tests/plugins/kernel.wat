;; kernel.wat - one export per kernel function of the ABI (docs/ABI.md, "Kernel functions").
;;
;; Every export has the ABI shape () -> i32 (0 = ok) unless noted, and writes
;; its result to the output. Output formats:
;;   u64      = 8 bytes little-endian (struct.pack("<Q", v))
;;   u64[k]   = k of them back to back (struct.pack("<kQ", ...))
;;   "text"   = those bytes
;; The probe_* exports read their arguments from the input as u64 LE:
;; input[0:8] = kernel offset (or index) to probe, input[8:16] = second arg.
;; The output helpers themselves use alloc/store_u8/output_set; each export
;; otherwise calls only the function it is named after.
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

  (memory (export "memory") 1)
  (data (i32.const 0) "ok")
  (data (i32.const 16) "hello")
  (data (i32.const 32) "boom from plugin")
  (data (i32.const 64) "new input")
  (data (i32.const 80) "err")
  (data (i32.const 96) "failed with 1")
  (data (i32.const 128) "reset-error")
  ;; bytes 1024.. are scratch space for building u64 outputs

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

  ;; Output linear memory [ptr, ptr+len).
  (func $out_mem (param $ptr i32) (param $len i32)
    (call $output_set
      (call $str (local.get $ptr) (local.get $len))
      (i64.extend_i32_u (local.get $len))))

  (func $out_ok (call $out_mem (i32.const 0) (i32.const 2)))

  (func $out_u64 (param $a i64)
    (i64.store (i32.const 1024) (local.get $a))
    (call $out_mem (i32.const 1024) (i32.const 8)))

  (func $out_u64x2 (param $a i64) (param $b i64)
    (i64.store (i32.const 1024) (local.get $a))
    (i64.store (i32.const 1032) (local.get $b))
    (call $out_mem (i32.const 1024) (i32.const 16)))

  (func $out_u64x3 (param $a i64) (param $b i64) (param $c i64)
    (i64.store (i32.const 1024) (local.get $a))
    (i64.store (i32.const 1032) (local.get $b))
    (i64.store (i32.const 1040) (local.get $c))
    (call $out_mem (i32.const 1024) (i32.const 24)))

  (func $out_u64x4 (param $a i64) (param $b i64) (param $c i64) (param $d i64)
    (i64.store (i32.const 1024) (local.get $a))
    (i64.store (i32.const 1032) (local.get $b))
    (i64.store (i32.const 1040) (local.get $c))
    (i64.store (i32.const 1048) (local.get $d))
    (call $out_mem (i32.const 1024) (i32.const 32)))

  ;; u64 argument number $i of the input (input[8*i : 8*i+8]).
  (func $arg (param $i i32) (result i64)
    (call $input_load_u64 (i64.extend_i32_u (i32.mul (local.get $i) (i32.const 8)))))

  ;; ------------------------------------------------------------ alloc/free
  ;; u64[2]: a = alloc(100); free(a); b = alloc(50) -> (a, b); fresh space first: b > a
  (func (export "alloc_free_reuse") (result i32)
    (local $a i64) (local $b i64)
    (local.set $a (call $alloc (i64.const 100)))
    (call $free (local.get $a))
    (local.set $b (call $alloc (i64.const 50)))
    (call $out_u64x2 (local.get $a) (local.get $b))
    (i32.const 0))

  ;; u64[4]: a = alloc(4096); free(a); b = alloc(16); c = alloc(16) -> (a, b, c,
  ;; length(b)). Fresh space first (as the official kernel): a < b < c.
  (func (export "alloc_split") (result i32)
    (local $a i64) (local $b i64) (local $c i64)
    (local.set $a (call $alloc (i64.const 4096)))
    (call $free (local.get $a))
    (local.set $b (call $alloc (i64.const 16)))
    (local.set $c (call $alloc (i64.const 16)))
    (call $out_u64x4 (local.get $a) (local.get $b) (local.get $c)
      (call $length (local.get $b)))
    (i32.const 0))

  ;; u64: alloc(0); expect 0
  (func (export "alloc_zero") (result i32)
    (call $out_u64 (call $alloc (i64.const 0)))
    (i32.const 0))

  ;; u64: offset of alloc(N), N = input u64 at [0:8] (0 = failure / limit hit)
  (func (export "alloc_n") (result i32)
    (call $out_u64 (call $alloc (call $arg (i32.const 0))))
    (i32.const 0))

  ;; u64: how many of COUNT allocations of SIZE bytes each succeeded (input u64[2]: COUNT, SIZE);
  ;; the blocks are kept. Many tiny blocks: the block bookkeeping meets the memory limit.
  (func (export "alloc_blocks") (result i32)
    (local $count i64) (local $size i64) (local $i i64) (local $ok i64)
    (local.set $count (call $arg (i32.const 0)))
    (local.set $size (call $arg (i32.const 1)))
    (block $done
      (loop $next
        (br_if $done (i64.ge_u (local.get $i) (local.get $count)))
        (if (i64.ne (call $alloc (local.get $size)) (i64.const 0))
          (then (local.set $ok (i64.add (local.get $ok) (i64.const 1)))))
        (local.set $i (i64.add (local.get $i) (i64.const 1)))
        (br $next)))
    (call $out_u64 (local.get $ok))
    (i32.const 0))

  ;; --------------------------------------------------------------- length
  ;; u64: length(alloc(37)); expect 37
  (func (export "length_of_block") (result i32)
    (call $out_u64 (call $length (call $alloc (i64.const 37))))
    (i32.const 0))

  ;; u64[4]: length(0), length(a + 1) for a = alloc(16), length(1 << 40),
  ;; length(0xFFFF_FFFF_FFFF_FFFF); expect all 0
  (func (export "length_invalid") (result i32)
    (local $a i64)
    (local.set $a (call $alloc (i64.const 16)))
    (call $out_u64x4
      (call $length (i64.const 0))
      (call $length (i64.add (local.get $a) (i64.const 1)))
      (call $length (i64.const 0x10000000000))
      (call $length (i64.const -1)))
    (i32.const 0))

  ;; u64: length_unsafe(alloc(37)); expect 37
  (func (export "length_unsafe") (result i32)
    (call $out_u64 (call $length_unsafe (call $alloc (i64.const 37))))
    (i32.const 0))

  ;; ------------------------------------------------------------ load/store
  ;; 12 bytes: a = alloc(4) filled by store_u8 with 11 22 33 FF; output bytes
  ;; [0:4] = the 4 bytes read back one by one with load_u8 (11 22 33 FF),
  ;; [4:12] = u64 of load_u8(a + 3) zero-extended (255: unsigned, not -1)
  (func (export "load_store_u8") (result i32)
    (local $a i64)
    (local.set $a (call $alloc (i64.const 4)))
    (call $store_u8 (local.get $a) (i32.const 0x11))
    (call $store_u8 (i64.add (local.get $a) (i64.const 1)) (i32.const 0x22))
    (call $store_u8 (i64.add (local.get $a) (i64.const 2)) (i32.const 0x33))
    (call $store_u8 (i64.add (local.get $a) (i64.const 3)) (i32.const 0xFF))
    (i32.store8 (i32.const 1024) (call $load_u8 (local.get $a)))
    (i32.store8 (i32.const 1025) (call $load_u8 (i64.add (local.get $a) (i64.const 1))))
    (i32.store8 (i32.const 1026) (call $load_u8 (i64.add (local.get $a) (i64.const 2))))
    (i32.store8 (i32.const 1027) (call $load_u8 (i64.add (local.get $a) (i64.const 3))))
    (i64.store (i32.const 1028)
      (i64.extend_i32_u (call $load_u8 (i64.add (local.get $a) (i64.const 3)))))
    (call $out_mem (i32.const 1024) (i32.const 12))
    (i32.const 0))

  ;; 24 bytes, output_set directly on the block a = alloc(24) where
  ;; store_u64(a, X); store_u64(a + 8, Y); store_u64(a + 16, load_u64(a + 4))
  ;; with X = 0x0123456789ABCDEF, Y = 0xFEDCBA9876543210. Expect
  ;; p = struct.pack("<QQ", X, Y); output == p + p[4:12]
  (func (export "load_store_u64") (result i32)
    (local $a i64)
    (local.set $a (call $alloc (i64.const 24)))
    (call $store_u64 (local.get $a) (i64.const 0x0123456789ABCDEF))
    (call $store_u64 (i64.add (local.get $a) (i64.const 8)) (i64.const 0xFEDCBA9876543210))
    (call $store_u64 (i64.add (local.get $a) (i64.const 16))
      (call $load_u64 (i64.add (local.get $a) (i64.const 4))))
    (call $output_set (local.get $a) (i64.const 24))
    (i32.const 0))

  ;; ----------------------------------------------------------------- input
  ;; u64: input_length()
  (func (export "input_length") (result i32)
    (call $out_u64 (call $input_length))
    (i32.const 0))

  ;; echo: output_set(input_offset(), input_length())
  (func (export "input_offset_roundtrip") (result i32)
    (call $output_set (call $input_offset) (call $input_length))
    (i32.const 0))

  ;; echo, copying the input byte by byte with input_load_u8
  (func (export "input_load_u8") (result i32)
    (local $n i64) (local $o i64) (local $i i64)
    (local.set $n (call $input_length))
    (local.set $o (call $alloc (local.get $n)))
    (block $done
      (loop $next
        (br_if $done (i64.ge_u (local.get $i) (local.get $n)))
        (call $store_u8 (i64.add (local.get $o) (local.get $i))
          (call $input_load_u8 (local.get $i)))
        (local.set $i (i64.add (local.get $i) (i64.const 1)))
        (br $next)))
    (call $output_set (local.get $o) (local.get $n))
    (i32.const 0))

  ;; echo, copying the input 8 bytes at a time with input_load_u64 (the last
  ;; n % 8 bytes with input_load_u8)
  (func (export "input_load_u64") (result i32)
    (local $n i64) (local $o i64) (local $i i64)
    (local.set $n (call $input_length))
    (local.set $o (call $alloc (local.get $n)))
    (block $done
      (loop $next
        (br_if $done (i64.gt_u (i64.add (local.get $i) (i64.const 8)) (local.get $n)))
        (call $store_u64 (i64.add (local.get $o) (local.get $i))
          (call $input_load_u64 (local.get $i)))
        (local.set $i (i64.add (local.get $i) (i64.const 8)))
        (br $next)))
    (block $done2
      (loop $next2
        (br_if $done2 (i64.ge_u (local.get $i) (local.get $n)))
        (call $store_u8 (i64.add (local.get $o) (local.get $i))
          (call $input_load_u8 (local.get $i)))
        (local.set $i (i64.add (local.get $i) (i64.const 1)))
        (br $next2)))
    (call $output_set (local.get $o) (local.get $n))
    (i32.const 0))

  ;; "new input": input_set(block "new input", 9), then echo the input
  (func (export "input_set") (result i32)
    (call $input_set (call $str (i32.const 64) (i32.const 9)) (i64.const 9))
    (call $output_set (call $input_offset) (call $input_length))
    (i32.const 0))

  ;; u64: free(input_offset()); input_length() -> expect 0
  (func (export "free_input") (result i32)
    (call $free (call $input_offset))
    (call $out_u64 (call $input_length))
    (i32.const 0))

  ;; ---------------------------------------------------------------- output
  ;; "hello": output_set(block "hello", 5)
  (func (export "output_set") (result i32)
    (call $output_set (call $str (i32.const 16) (i32.const 5)) (i64.const 5))
    (i32.const 0))

  ;; u64[2]: output_length() before any output_set (0), and after
  ;; output_set(block "hello", 5) (5)
  (func (export "output_length") (result i32)
    (local $before i64) (local $after i64)
    (local.set $before (call $output_length))
    (call $output_set (call $str (i32.const 16) (i32.const 5)) (i64.const 5))
    (local.set $after (call $output_length))
    (call $out_u64x2 (local.get $before) (local.get $after))
    (i32.const 0))

  ;; u64[2]: output_offset() before any output_set (0), and
  ;; 1 if output_offset() == a after output_set(a = block "hello", 5) else 0
  (func (export "output_offset") (result i32)
    (local $before i64) (local $a i64)
    (local.set $before (call $output_offset))
    (local.set $a (call $str (i32.const 16) (i32.const 5)))
    (call $output_set (local.get $a) (i64.const 5))
    (call $out_u64x2 (local.get $before)
      (i64.extend_i32_u (i64.eq (call $output_offset) (local.get $a))))
    (i32.const 0))

  ;; ----------------------------------------------------------------- error
  ;; error_set(block "boom from plugin"), return 0: the call must FAIL with
  ;; the text "boom from plugin"
  (func (export "error_set_return0") (result i32)
    (call $error_set (call $str (i32.const 32) (i32.const 16)))
    (i32.const 0))

  ;; error_set(block "failed with 1"), return 1: fails with "failed with 1"
  (func (export "error_set_return1") (result i32)
    (call $error_set (call $str (i32.const 96) (i32.const 13)))
    (i32.const 1))

  ;; u64[2]: error_get() before any error_set (0), and 1 if error_get() == a
  ;; after error_set(a = block "err"); then error_set(0) so the call succeeds
  (func (export "error_get") (result i32)
    (local $before i64) (local $a i64) (local $same i64)
    (local.set $before (call $error_get))
    (local.set $a (call $str (i32.const 80) (i32.const 3)))
    (call $error_set (local.get $a))
    (local.set $same (i64.extend_i32_u (i64.eq (call $error_get) (local.get $a))))
    (call $error_set (i64.const 0))
    (call $out_u64x2 (local.get $before) (local.get $same))
    (i32.const 0))

  ;; "ok": error_set(block "err") then error_set(0): the call succeeds
  (func (export "error_clear") (result i32)
    (call $error_set (call $str (i32.const 80) (i32.const 3)))
    (call $error_set (i64.const 0))
    (call $out_ok)
    (i32.const 0))

  ;; ----------------------------------------------------------------- reset
  ;; Needs a non-empty input. io = input_offset(); error_set(block
  ;; "reset-error"); output_set(block "hello"); reset(); then
  ;; u64[4]: input_length(), output_length(), error_get() after the reset,
  ;; and 1 if the first alloc(8) after the reset returns io (the first block
  ;; again) else 0. Expect (0, 0, 0, 1) and a successful call.
  (func (export "reset") (result i32)
    (local $io i64) (local $r i64) (local $il i64) (local $ol i64) (local $e i64)
    (local.set $io (call $input_offset))
    (call $error_set (call $str (i32.const 128) (i32.const 11)))
    (call $output_set (call $str (i32.const 16) (i32.const 5)) (i64.const 5))
    (call $reset)
    (local.set $il (call $input_length))
    (local.set $ol (call $output_length))
    (local.set $e (call $error_get))
    (local.set $r (call $alloc (i64.const 8)))
    (call $out_u64x4 (local.get $il) (local.get $ol) (local.get $e)
      (i64.extend_i32_u (i64.eq (local.get $r) (local.get $io))))
    (i32.const 0))

  ;; u64[2]: memory_bytes() before and after alloc(1 MiB);
  ;; expect before > 0 and after >= before and after >= 1 MiB
  (func (export "memory_bytes") (result i32)
    (local $before i64)
    (local.set $before (call $memory_bytes))
    (drop (call $alloc (i64.const 1048576)))
    (call $out_u64x2 (local.get $before) (call $memory_bytes))
    (i32.const 0))

  ;; ---------------------------------------------------------------- probes
  ;; Input: u64 offset at [0:8] (and a u64 length at [8:16] for
  ;; probe_output_set). A host must either fail the call with a clear error
  ;; or return/ignore safely; it must never crash.
  ;; u64: load_u8(offset)
  (func (export "probe_load_u8") (result i32)
    (call $out_u64 (i64.extend_i32_u (call $load_u8 (call $arg (i32.const 0)))))
    (i32.const 0))

  ;; u64: load_u64(offset)
  (func (export "probe_load_u64") (result i32)
    (call $out_u64 (call $load_u64 (call $arg (i32.const 0))))
    (i32.const 0))

  ;; "ok": store_u8(offset, 0xAB)
  (func (export "probe_store_u8") (result i32)
    (call $store_u8 (call $arg (i32.const 0)) (i32.const 0xAB))
    (call $out_ok)
    (i32.const 0))

  ;; "ok": store_u64(offset, 0x0123456789ABCDEF)
  (func (export "probe_store_u64") (result i32)
    (call $store_u64 (call $arg (i32.const 0)) (i64.const 0x0123456789ABCDEF))
    (call $out_ok)
    (i32.const 0))

  ;; u64: length(offset)
  (func (export "probe_length") (result i32)
    (call $out_u64 (call $length (call $arg (i32.const 0))))
    (i32.const 0))

  ;; u64: length_unsafe(offset)
  (func (export "probe_length_unsafe") (result i32)
    (call $out_u64 (call $length_unsafe (call $arg (i32.const 0))))
    (i32.const 0))

  ;; "ok": free(offset)
  (func (export "probe_free") (result i32)
    (call $free (call $arg (i32.const 0)))
    (call $out_ok)
    (i32.const 0))

  ;; u64: input_load_u8(index)
  (func (export "probe_input_load_u8") (result i32)
    (call $out_u64 (i64.extend_i32_u (call $input_load_u8 (call $arg (i32.const 0)))))
    (i32.const 0))

  ;; u64: input_load_u64(index)
  (func (export "probe_input_load_u64") (result i32)
    (call $out_u64 (call $input_load_u64 (call $arg (i32.const 0))))
    (i32.const 0))

  ;; output_set(offset, len): the output is whatever the host then reads
  ;; (or the call fails)
  (func (export "probe_output_set") (result i32)
    (call $output_set (call $arg (i32.const 0)) (call $arg (i32.const 1)))
    (i32.const 0))

  ;; ---------------------------------------------------------- misc / echo
  ;; echo without copying: output_set(input_offset(), input_length())
  (func (export "echo") (result i32)
    (call $output_set (call $input_offset) (call $input_length))
    (i32.const 0))

  ;; echo through a copy: alloc(n), copy the input block with load_u64 /
  ;; store_u64 (tail with load_u8 / store_u8), output_set the copy
  (func (export "echo_copy") (result i32)
    (local $n i64) (local $src i64) (local $o i64) (local $i i64)
    (local.set $n (call $input_length))
    (local.set $src (call $input_offset))
    (local.set $o (call $alloc (local.get $n)))
    (block $done
      (loop $next
        (br_if $done (i64.gt_u (i64.add (local.get $i) (i64.const 8)) (local.get $n)))
        (call $store_u64 (i64.add (local.get $o) (local.get $i))
          (call $load_u64 (i64.add (local.get $src) (local.get $i))))
        (local.set $i (i64.add (local.get $i) (i64.const 8)))
        (br $next)))
    (block $done2
      (loop $next2
        (br_if $done2 (i64.ge_u (local.get $i) (local.get $n)))
        (call $store_u8 (i64.add (local.get $o) (local.get $i))
          (call $load_u8 (i64.add (local.get $src) (local.get $i))))
        (local.set $i (i64.add (local.get $i) (i64.const 1)))
        (br $next2)))
    (call $output_set (local.get $o) (local.get $n))
    (i32.const 0))

  ;; traps with "unreachable"
  (func (export "trap") (result i32)
    unreachable)

  ;; returns 1 without error_set: the call fails (non-zero return code)
  (func (export "return_1") (result i32)
    (i32.const 1))

  ;; type () -> (): outputs "ok"
  (func (export "void_fn")
    (call $out_ok))
)
