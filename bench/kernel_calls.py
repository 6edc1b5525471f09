"""Cost of one kernel call from wasm, extism_fast vs the official SDK (a probe, not a table row).

    python bench/kernel_calls.py

Each export loops 2**20 times inside wasm: ``compute`` loads a byte from linear memory (no kernel
call, so it compares the generated code), ``input_length`` and ``input_load_u64`` call that kernel
function once per iteration. The per-iteration difference is the kernel call's cost.
"""

from __future__ import annotations

import time

import extism
import wasmtime

import extism_fast

N = 1 << 20

WAT = r"""
(module
  (import "extism:host/env" "input_length" (func $input_length (result i64)))
  (import "extism:host/env" "input_load_u64" (func $input_load_u64 (param i64) (result i64)))
  (memory (export "memory") 17)
  (func (export "compute") (result i32)
    (local $i i32) (local $s i32)
    (block $d (loop $l
      (br_if $d (i32.ge_u (local.get $i) (i32.const N)))
      (local.set $s (i32.add (local.get $s) (i32.load8_u (local.get $i))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))
    (i32.const 0))
  (func (export "input_length") (result i32)
    (local $i i32) (local $s i64)
    (block $d (loop $l
      (br_if $d (i32.ge_u (local.get $i) (i32.const N)))
      (local.set $s (i64.add (local.get $s) (call $input_length)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))
    (i32.const 0))
  (func (export "input_load_u64") (result i32)
    (local $i i32) (local $s i64)
    (block $d (loop $l
      (br_if $d (i32.ge_u (local.get $i) (i32.const N)))
      (local.set $s (i64.add (local.get $s) (call $input_load_u64 (i64.const 0))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))
    (i32.const 0))
)
""".replace("(i32.const N)", f"(i32.const {N})")


def best_ms(plugin, name: str, repeats: int = 5, loops: int = 20) -> float:
    plugin.call(name, b"12345678")
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(loops):
            plugin.call(name, b"12345678")
        best = min(best, (time.perf_counter() - t0) / loops)
    return best * 1e3


def main() -> None:
    wasm = bytes(wasmtime.wat2wasm(WAT))
    plugins = {"extism_fast": extism_fast.Plugin(wasm, functions=[]), "extism": extism.Plugin(wasm, functions=[])}
    print(f"{'export':<15} {'SDK':<12} {'ms/call':>8} {'ns/iteration':>13}")
    for name in ("compute", "input_length", "input_load_u64"):
        for sdk, plugin in plugins.items():
            ms = best_ms(plugin, name)
            print(f"{name:<15} {sdk:<12} {ms:8.3f} {ms * 1e6 / N:13.2f}")


if __name__ == "__main__":
    main()
