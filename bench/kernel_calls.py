"""Cost of one kernel call from wasm, extism_fast vs the official SDK (a probe, not a table row).

    python bench/kernel_calls.py

Each export loops inside wasm (2**20 times, 2**16 for the rounds that allocate): ``compute`` loads a
byte from linear memory (no kernel call, so it compares the generated code); ``input_length``,
``input_load_u64``, ``load_u8`` and ``store_u8`` call that kernel function once per iteration (the
byte accessors are what the AssemblyScript PDK calls per byte); ``config_get``, ``var_get`` and
``var_set`` make one PDK round each (alloc the key, store its byte, the call, and free the result
or alloc the value), as ``Config.get`` / ``Var.get`` / ``Var.set`` of the AssemblyScript PDK do. The
per-iteration difference to ``compute`` is the kernel call's cost.
"""

from __future__ import annotations

import time

import extism
import wasmtime

import extism_fast

N = 1 << 20
ROUNDS = 1 << 16

_LOOP = """
  (func (export "{name}") (result i32)
    (local $i i32) (local $s i64) (local $b i64) (local $k i64)
    (local.set $b (call $alloc (i64.const 8)))
    (block $d (loop $l
      (br_if $d (i32.ge_u (local.get $i) (i32.const {n})))
      {body}
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))
    (i32.const 0))"""

#: name -> (iterations, loop body); $b is an 8-byte block, $s an accumulator, $k a scratch offset.
_BODIES = {
    "compute": (N, "(local.set $s (i64.add (local.get $s) (i64.load8_u (local.get $i))))"),
    "input_length": (N, "(local.set $s (i64.add (local.get $s) (call $input_length)))"),
    "input_load_u64": (N, "(local.set $s (i64.add (local.get $s) (call $input_load_u64 (i64.const 0))))"),
    "load_u8": (N, "(local.set $s (i64.add (local.get $s) (i64.extend_i32_u (call $load_u8 (local.get $b)))))"),
    "store_u8": (N, "(call $store_u8 (local.get $b) (i32.wrap_i64 (local.get $s)))"
                    "(local.set $s (i64.add (local.get $s) (i64.const 1)))"),
    "config_get": (ROUNDS, "(local.set $k (call $alloc (i64.const 1))) (call $store_u8 (local.get $k) (i32.const 107))"
                           "(call $free (call $config_get (local.get $k)))"),
    "var_get": (ROUNDS, "(local.set $k (call $alloc (i64.const 1))) (call $store_u8 (local.get $k) (i32.const 107))"
                        "(call $free (call $var_get (local.get $k)))"),
    "var_set": (ROUNDS, "(local.set $k (call $alloc (i64.const 1))) (call $store_u8 (local.get $k) (i32.const 107))"
                        "(local.set $s (call $alloc (i64.const 1))) (call $store_u8 (local.get $s) (i32.const 118))"
                        "(call $var_set (local.get $k) (local.get $s))"),
}

WAT = "\n".join([
    "(module",
    '  (import "extism:host/env" "input_length" (func $input_length (result i64)))',
    '  (import "extism:host/env" "input_load_u64" (func $input_load_u64 (param i64) (result i64)))',
    '  (import "extism:host/env" "load_u8" (func $load_u8 (param i64) (result i32)))',
    '  (import "extism:host/env" "store_u8" (func $store_u8 (param i64) (param i32)))',
    '  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))',
    '  (import "extism:host/env" "free" (func $free (param i64)))',
    '  (import "extism:host/env" "config_get" (func $config_get (param i64) (result i64)))',
    '  (import "extism:host/env" "var_get" (func $var_get (param i64) (result i64)))',
    '  (import "extism:host/env" "var_set" (func $var_set (param i64) (param i64)))',
    '  (memory (export "memory") 17)',
    *(_LOOP.format(name=name, n=n, body=body) for name, (n, body) in _BODIES.items()),
    ")",
])
#: the config both SDKs get (config_get reads key "k"); var "k" is set by the var_set round
CONFIG = {"k": "v"}


def best_ns(plugins: list, name: str, repeats: int = 7, loops: int = 10) -> list[float]:
    """Best nanoseconds per loop iteration of export `name` for each plugin (one call runs the whole
    loop), the plugins taking turns so that the machine's drifts hit them alike."""
    for plugin in plugins:
        plugin.call(name, b"12345678")
    best = [float("inf")] * len(plugins)
    for _ in range(repeats):
        for i, plugin in enumerate(plugins):
            t0 = time.perf_counter()
            for _ in range(loops):
                plugin.call(name, b"12345678")
            best[i] = min(best[i], (time.perf_counter() - t0) / loops)
    return [b * 1e9 / _BODIES[name][0] for b in best]


def main() -> None:
    wasm = bytes(wasmtime.wat2wasm(WAT))
    plugins = {"extism_fast": extism_fast.Plugin(wasm, config=CONFIG, functions=[]),
               "extism": extism.Plugin(wasm, config=CONFIG, functions=[])}
    for plugin in plugins.values():
        plugin.call("var_set", b"")  # so that the var_get rounds find var "k"
    print(f"{'export':<15} {'extism_fast ns':>15} {'extism ns':>10} {'ratio':>6}   (per iteration)")
    for name in _BODIES:
        fast, official = best_ns(list(plugins.values()), name)
        print(f"{name:<15} {fast:15.2f} {official:10.2f} {official / fast:5.1f}x")


if __name__ == "__main__":
    main()
