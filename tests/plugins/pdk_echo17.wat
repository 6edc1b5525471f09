;; A replica of a Rust-PDK plugin's echo under memory.max_pages: its memory starts at 17 pages
;; (as a Rust plugin's does), and a call does what the PDK's input() / output() do: grow the
;; plugin's memory for a Vec holding the input (an allocator traps when memory.grow answers -1,
;; as Rust's does), copy the input in 8 bytes at a time (the tail byte by byte), then alloc a
;; kernel block, copy the Vec out the same way and set it as the output. Each memory growth
;; takes from the max_pages budget (README, "Capabilities").
(module
  (import "extism:host/env" "input_length" (func $input_length (result i64)))
  (import "extism:host/env" "input_load_u64" (func $input_load_u64 (param i64) (result i64)))
  (import "extism:host/env" "input_load_u8" (func $input_load_u8 (param i64) (result i32)))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (memory (export "memory") 17)

  ;; A Vec of n bytes at the end of the memory, grown for it.
  (func $vec (param $n i64) (result i32)
    (local $at i32)
    (local.set $at (i32.mul (memory.size) (i32.const 65536)))
    (if (i32.eq (memory.grow (i32.wrap_i64 (i64.div_u (i64.add (local.get $n) (i64.const 65535)) (i64.const 65536))))
                (i32.const -1))
      (then unreachable)) ;; alloc::alloc::handle_alloc_error
    (local.get $at))

  (func (export "echo") (result i32)
    (local $n i64) (local $i i64) (local $vec i32) (local $out i64)
    (local.set $n (call $input_length))
    (local.set $vec (call $vec (local.get $n)))
    (block $done
      (loop $copy_in
        (br_if $done (i64.gt_u (i64.add (local.get $i) (i64.const 8)) (local.get $n)))
        (i64.store (i32.add (local.get $vec) (i32.wrap_i64 (local.get $i))) (call $input_load_u64 (local.get $i)))
        (local.set $i (i64.add (local.get $i) (i64.const 8)))
        (br $copy_in)))
    (block $done
      (loop $tail_in
        (br_if $done (i64.ge_u (local.get $i) (local.get $n)))
        (i32.store8 (i32.add (local.get $vec) (i32.wrap_i64 (local.get $i))) (call $input_load_u8 (local.get $i)))
        (local.set $i (i64.add (local.get $i) (i64.const 1)))
        (br $tail_in)))
    (local.set $out (call $alloc (local.get $n)))
    (local.set $i (i64.const 0))
    (block $done
      (loop $copy_out
        (br_if $done (i64.gt_u (i64.add (local.get $i) (i64.const 8)) (local.get $n)))
        (call $store_u64 (i64.add (local.get $out) (local.get $i))
                         (i64.load (i32.add (local.get $vec) (i32.wrap_i64 (local.get $i)))))
        (local.set $i (i64.add (local.get $i) (i64.const 8)))
        (br $copy_out)))
    (block $done
      (loop $tail_out
        (br_if $done (i64.ge_u (local.get $i) (local.get $n)))
        (call $store_u8 (i64.add (local.get $out) (local.get $i))
                        (i32.load8_u (i32.add (local.get $vec) (i32.wrap_i64 (local.get $i)))))
        (local.set $i (i64.add (local.get $i) (i64.const 1)))
        (br $tail_out)))
    (call $output_set (local.get $out) (local.get $n))
    (i32.const 0))
)
