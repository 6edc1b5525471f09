"""Linking several modules by name (from data and from files): the order they are instantiated
in, modules named after a host namespace, cycles of function imports, and link errors between
modules and with the host (each import problem's message, names with a NUL byte).

Scenarios the official SDK also runs are in test_compat.py; the ones here it cannot run: it
crashes (stack overflow) on any cycle of imports between modules, and reports type mismatches
only as wasmtime's text.
"""

from __future__ import annotations

import json
import re

import pytest
from conftest import q, u64s

import extism_fast as ef


def link(plugin_wasm, *modules: tuple[str, str], **kwargs) -> ef.Plugin:
    """A plugin of the modules (link name, source under tests/plugins/link/), main last."""
    wasm = [{"data": plugin_wasm(f"link/{source}"), "name": name} for name, source in modules]
    return ef.Plugin({"wasm": wasm}, functions=kwargs.pop("functions", []), **kwargs)


def run(plugin: ef.Plugin) -> int:
    return int.from_bytes(plugin.call("run", b""), "little", signed=True)


# ---- order ----

def test_modules_in_reverse_dependency_order(plugin_wasm):
    """lib imports from helper, listed after it: modules are instantiated in dependency order."""
    with link(plugin_wasm, ("main", "main_lib"), ("lib", "lib_via_helper"), ("helper", "helper")) as plugin:
        assert run(plugin) == 42
        assert run(plugin) == 42


def test_compiled_plugin_instances_and_store_reset_keep_the_order(plugin_wasm):
    wasm = [{"data": plugin_wasm("link/lib_via_helper"), "name": "lib"},
            {"data": plugin_wasm("link/helper"), "name": "helper"},
            {"data": plugin_wasm("link/main_lib"), "name": "main"}]
    compiled = ef.CompiledPlugin({"wasm": wasm}, functions=[])
    for _ in range(3):
        with ef.Plugin(compiled) as plugin:
            assert run(plugin) == 42


# ---- startup functions of linked modules ----

@pytest.mark.parametrize("source", ["init_global", "init_global_both"])
def test_a_linked_modules_initialize_runs_once_before_the_first_call(plugin_wasm, source):
    """lib's `_initialize` sets the global main reads through its import (4200) and counts its
    runs (+1); a module that also exports `_start` (TinyGo) gets `_initialize` and never `_start`
    (which would make g -1). Once per instance: a new instance runs it again, once."""
    compiled = ef.CompiledPlugin({"wasm": [{"data": plugin_wasm(f"link/{source}"), "name": "lib"},
                                           {"data": plugin_wasm("link/main_init_global"), "name": "main"}]},
                                 functions=[])
    for _ in range(2):
        with ef.Plugin(compiled) as plugin:
            assert [run(plugin) for _ in range(3)] == [4201] * 3
            plugin.reset()
            assert run(plugin) == 4201


def test_linked_modules_start_in_dependency_order_then_main(plugin_wasm):
    """Listed after the module that depends on it, log's `_initialize` (1) still runs before
    after's (2), then main's (3); neither after's `_start` (9) nor that of the command module
    cmd (8) runs, and cmd's exports work all the same."""
    modules = [("after", "init_after_log"), ("cmd", "init_command"), ("log", "init_log"),
               ("main", "main_init_log")]
    with link(plugin_wasm, *modules) as plugin:
        assert [run(plugin) for _ in range(2)] == [7_000_123] * 2


def test_a_linked_wasi_reactor_finds_its_preopened_directories(plugin_wasm, tmp_path):
    """A C reactor linked as a side module: its `_initialize` (wasi-libc's constructors) finds the
    mounted directory, which a host that skipped it would report as errno 76 (ENOTCAPABLE)."""
    (tmp_path / "greeting.txt").write_bytes(b"hello from a mounted file")
    manifest = {"wasm": [{"data": plugin_wasm("link/wasi_reader"), "name": "reader"},
                         {"data": plugin_wasm("link/main_reader"), "name": "main"}],
                "allowed_paths": {str(tmp_path): "/data"}}
    with ef.Plugin(manifest, wasi=True, functions=[]) as plugin:
        assert plugin.call("run", b"") == b"hello from a mounted file"
        assert plugin.call("run", b"") == b"hello from a mounted file"


def test_a_trap_in_a_linked_modules_initialize_fails_the_call_naming_it(plugin_wasm):
    trapping = [True]

    @ef.host_fn(name="should_trap", signature=([], [ef.ValType.I32]))
    def should_trap(plugin, params, results):
        results[0].value = int(trapping[0])

    with link(plugin_wasm, ("lib", "init_fragile"), ("main", "main_init_global"),
              functions=[should_trap]) as plugin:
        for _ in range(2):
            with pytest.raises(ef.CallError) as info:
                run(plugin)
            message = str(info.value)
            assert "startup function '_initialize' of module 'lib' failed" in message, message
            assert "unreachable" in message, message
        # The instance starts afresh: lib's `_initialize` has run once, not once per attempt.
        trapping[0] = False
        assert [run(plugin) for _ in range(2)] == [4201] * 2
        trapping[0] = True  # started: not run again
        assert run(plugin) == 4201


def test_a_linked_initialize_of_another_type_is_a_link_error_naming_its_module():
    lib = b'(module (func (export "_initialize") (param i32)) (func (export "f") (result i32) (i32.const 1)))'
    main = b'(module (import "lib" "f" (func (result i32))) (func (export "run") (result i32) (i32.const 0)))'
    with pytest.raises(ef.LinkError, match="startup export '_initialize' of module 'lib' has an unsupported type"):
        ef.Plugin({"wasm": [{"data": lib, "name": "lib"}, {"data": main, "name": "main"}]}, functions=[])


# ---- cycles ----

@pytest.mark.parametrize("listing", ["lib first", "b first"])
def test_a_cycle_of_functions_goes_around_and_returns(plugin_wasm, listing):
    """main -> lib::compute -> b::step -> lib::finish: whichever of lib and b is instantiated first
    gets a forwarding function for the other's export."""
    pair = [("lib", "cycle_lib"), ("b", "cycle_b")]
    if listing == "b first":
        pair.reverse()
    with link(plugin_wasm, *pair, ("main", "main_lib")) as plugin:
        assert run(plugin) == 42
        assert run(plugin) == 42


def test_a_cycle_works_on_every_engine(plugin_wasm):
    """Interruptible and fuel engines, and a timeout around a call through a forwarder."""
    modules = [("lib", "cycle_lib"), ("b", "cycle_b"), ("main", "main_lib")]
    wasm = [{"data": plugin_wasm(f"link/{source}"), "name": name} for name, source in modules]
    with ef.Plugin({"wasm": wasm, "timeout_ms": 5000}, functions=[]) as timed:
        assert run(timed) == 42
    with ef.Plugin({"wasm": wasm}, functions=[], fuel=100_000) as metered:
        assert run(metered) == 42


# lib::compute -> b::step (forwarded: lib is instantiated first) -> lib::finish, which calls the
# host function extism:host/user::inner (and spins when it returns -1).
FORWARDED_LIB = b"""(module
  (import "b" "step" (func $step (param i32) (result i32)))
  (import "extism:host/user" "inner" (func $inner (param i32) (result i32)))
  (func (export "compute") (param i32) (result i32) (call $step (local.get 0)))
  (func (export "finish") (param i32) (result i32)
    (local $r i32)
    (local.set $r (call $inner (local.get 0)))
    (if (i32.lt_s (local.get $r) (i32.const 0)) (then (loop $spin (br $spin))))  ;; -1: never returns
    (local.get $r)))"""
FORWARDED_B = b"""(module
  (import "lib" "finish" (func $finish (param i32) (result i32)))
  (func (export "step") (param i32) (result i32) (call $finish (local.get 0))))"""


def forwarded_plugin(plugin_wasm, inner, **kwargs) -> ef.Plugin:
    fn = ef.Function("extism:host/user", "inner", [ef.ValType.I32], [ef.ValType.I32], inner)
    wasm = [{"data": FORWARDED_LIB, "name": "lib"}, {"data": FORWARDED_B, "name": "b"},
            {"data": plugin_wasm("link/main_lib"), "name": "main"}]
    return ef.Plugin({"wasm": wasm, **kwargs}, functions=[fn])


def test_failures_inside_a_forwarded_call_keep_their_kind(plugin_wasm):
    """A host function error and a timeout inside a call made through a forwarding function are
    reported as such, not as a plain trap; the plugin serves the next call."""
    def inner(plugin, params, results):
        if params[0].value == 20 and state["mode"] == "raise":
            raise ValueError("no thanks")
        results[0].value = -1 if state["mode"] == "spin" else params[0].value + 22

    state = {"mode": "raise"}
    with forwarded_plugin(plugin_wasm, inner, timeout_ms=200) as plugin:
        with pytest.raises(ef.HostFunctionError, match="no thanks"):
            plugin.call("run", b"")
        state["mode"] = "ok"
        assert run(plugin) == 42
        state["mode"] = "spin"
        with pytest.raises(ef.TimeoutError):
            plugin.call("run", b"")
        state["mode"] = "ok"
        assert run(plugin) == 42


def test_a_cycle_that_also_carries_a_memory(plugin_wasm):
    """lib imports mem's memory and a function; mem imports a function of lib: mem is
    instantiated first (the memory must exist), and its import of lib::finish is forwarded."""
    with link(plugin_wasm, ("lib", "mixed_cycle_lib"), ("mem", "mixed_cycle_mem"), ("main", "main_lib")) as plugin:
        assert run(plugin) == 42


def test_a_module_importing_its_own_function(plugin_wasm):
    """A cycle of one module: its import of its own export is forwarded."""
    lib = b"""(module
      (import "lib" "two" (func $two (result i32)))
      (func (export "two") (result i32) (i32.const 2))
      (func (export "compute") (param i32) (result i32) (i32.add (local.get 0) (call $two))))"""
    wasm = [{"data": lib, "name": "lib"}, {"data": plugin_wasm("link/main_lib"), "name": "main"}]
    with ef.Plugin({"wasm": wasm}, functions=[]) as plugin:
        assert run(plugin) == 22


def test_a_start_function_calling_around_a_cycle_too_early_fails_the_call(plugin_wasm):
    """b is instantiated first and its start function calls lib::finish before lib exists: the
    first call fails with a message naming both, and the plugin is not left broken."""
    plugin = link(plugin_wasm, ("b", "cycle_b_start"), ("lib", "cycle_lib"), ("main", "main_lib"))
    for _ in range(2):
        with pytest.raises(ef.Error) as info:
            plugin.call("run", b"")
        message = str(info.value)
        assert "module 'b' called lib::finish before module 'lib' was instantiated" in message


def test_a_cycle_through_globals_is_a_link_error(plugin_wasm):
    with pytest.raises(ef.LinkError) as info:
        link(plugin_wasm, ("a", "global_cycle_a"), ("b", "global_cycle_b"), ("main", "main_lib"))
    message = str(info.value)
    assert "module 'a' imports b::g, a global, from module 'b'" in message
    assert "('a' -> 'b' -> 'a'; each imports from the next)" in message
    assert "only functions can be imported around a cycle" in message


def test_a_module_importing_its_own_memory_is_a_link_error():
    wat = b'(module (import "self" "memory" (memory 1)) (memory (export "memory") 1))'
    main = b'(module (func (export "run") (result i32) (i32.const 0)))'
    with pytest.raises(ef.LinkError, match=r"module 'self' imports self::memory, a memory, from module 'self'"):
        ef.Plugin({"wasm": [{"data": wat, "name": "self"}, {"data": main, "name": "main"}]}, functions=[])


# ---- types ----

def test_a_global_of_another_type_is_a_link_error_at_load(plugin_wasm):
    with pytest.raises(ef.LinkError) as info:
        link(plugin_wasm, ("lib", "global_i64"), ("main", "main_global"))
    assert str(info.value) == ("module 'main' imports lib::limit as global i32 (immutable), "
                               "but module 'lib' exports global i64 (immutable)")


@pytest.mark.parametrize("exported, imported, expected, found", [
    ("(global (export \"x\") (mut i32) (i32.const 0))", "(global i32)",
     "global i32 (immutable)", "global i32 (mutable)"),
    ("(memory (export \"x\") 1)", "(memory 2)",
     "memory (min 2 pages, no max)", "memory (min 1 pages, no max)"),
    ("(memory (export \"x\") 1)", "(memory 1 4)",
     "memory (min 1 pages, max 4)", "memory (min 1 pages, no max)"),
    ("(table (export \"x\") 1 externref)", "(table 1 funcref)",
     "table funcref (min 1, no max)", "table externref (min 1, no max)"),
    ("(func (export \"x\") (param i64))", "(func (param i32))",
     "func (i32) -> ()", "func (i64) -> ()"),
    ("(func (export \"x\"))", "(memory 1)", "memory (min 1 pages, no max)", "func () -> ()"),
])
def test_type_mismatches_between_modules_name_both_types(exported, imported, expected, found):
    lib = f"(module {exported})".encode()
    main = f'(module (import "lib" "x" {imported}) (func (export "run") (result i32) (i32.const 0)))'.encode()
    with pytest.raises(ef.LinkError) as info:
        ef.Plugin({"wasm": [{"data": lib, "name": "lib"}, {"data": main, "name": "main"}]}, functions=[])
    assert str(info.value) == f"module 'main' imports lib::x as {expected}, but module 'lib' exports {found}"


def test_compatible_non_function_imports_link():
    """A bigger, bounded memory satisfies a smaller import; an i64 global matches."""
    lib = b'(module (memory (export "m") 2 3) (global (export "g") i64 (i64.const 7)))'
    main = b"""(module (import "lib" "m" (memory 1 4)) (import "lib" "g" (global $g i64))
      (func (export "run") (result i32) (i32.wrap_i64 (i64.sub (global.get $g) (i64.const 7)))))"""
    with ef.Plugin({"wasm": [{"data": lib, "name": "lib"}, {"data": main, "name": "main"}]}, functions=[]) as plugin:
        assert plugin.call("run", b"") == b""


# ---- names ----

def test_a_missing_field_of_a_named_module_falls_back_to_the_host_and_is_named():
    lib = b'(module (global (export "other") i32 (i32.const 0)))'
    main = b'(module (import "lib" "g" (global i32)) (func (export "run") (result i32) (i32.const 0)))'
    with pytest.raises(ef.LinkError, match=r"module 'main' imports lib::g, but module 'lib' has no export named 'g'"):
        ef.Plugin({"wasm": [{"data": lib, "name": "lib"}, {"data": main, "name": "main"}]}, functions=[])


def test_host_namespace_module_names_are_accepted_except_the_kernel():
    assert ef.Manifest.from_dict({"wasm": [{"data": b"\0asm\1\0\0\0", "name": "extism:host/user"}]})
    with pytest.raises(ef.ManifestError, match="'extism:host/env' is reserved"):
        ef.Manifest.from_dict({"wasm": [{"data": b"\0asm\1\0\0\0", "name": "extism:host/env"}]})


# ---- imports from the host: every link problem, its exact message ----

RUN = '(func (export "run") (result i32) (i32.const 0))'
LACKS_ALL = b'(module (global (export "other") i32 (i32.const 0)))'  # a module "lib" without the field


def module(imports: str) -> bytes:
    return f"(module {imports} {RUN})".encode()


def with_lib(lib: bytes, main: bytes) -> dict:
    return {"wasm": [{"data": lib, "name": "lib"}, {"data": main, "name": "main"}]}


def host_fn(namespace: str, name: str, params: list, results: list) -> ef.Function:
    return ef.Function(namespace, name, params, results, lambda *args: None)


I32, I64, F32 = ef.ValType.I32, ef.ValType.I64, ef.ValType.F32
HOST_IMPORT_PROBLEMS = {
    "a memory from the host": (
        module('(import "extism:host/env" "memory" (memory 1))'), [],
        "module 'main' imports extism:host/env::memory, which is not a function; only functions can be "
        "imported from the host"),
    "a global from the host": (
        module('(import "env" "g" (global i32))'), [],
        "module 'main' imports env::g, which is not a function; only functions can be imported from the host"),
    "a table from the host": (
        module('(import "env" "t" (table 1 funcref))'), [],
        "module 'main' imports env::t, which is not a function; only functions can be imported from the host"),
    "a table from a module that lacks it": (
        with_lib(LACKS_ALL, module('(import "lib" "t" (table 1 funcref))')), [],
        "module 'main' imports lib::t, but module 'lib' has no export named 't'"),
    "a memory from a module that lacks it": (
        with_lib(LACKS_ALL, module('(import "lib" "mem" (memory 1))')), [],
        "module 'main' imports lib::mem, but module 'lib' has no export named 'mem'"),
    "an unknown ABI function": (
        module('(import "extism:host/env" "nope" (func))'), [],
        "module 'main' imports extism:host/env::nope: no such function in the Extism ABI"),
    "an ABI callback of another type": (
        module('(import "extism:host/env" "alloc" (func (param i32) (result i32)))'), [],
        "module 'main' imports extism:host/env::alloc with type (i32) -> (i32), but the ABI's type is "
        "(i64) -> (i64)"),
    "an ABI accessor function of another type": (
        module('(import "extism:host/env" "load_u8" (func (param i64) (result i64)))'), [],
        "module 'main' imports extism:host/env::load_u8 with type (i64) -> (i64), but the ABI's type is "
        "(i64) -> (i32)"),
    "WASI preview 1 without WASI": (
        module('(import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))'), [],
        "module 'main' imports wasi_snapshot_preview1::fd_write, but WASI is not enabled (pass wasi=True to "
        "grant it)"),
    "WASI unstable without WASI, even with a host function of that name": (
        module('(import "wasi_unstable" "zzz" (func))'), [host_fn("wasi_unstable", "zzz", [], [])],
        "module 'main' imports wasi_unstable::zzz, but WASI is not enabled (pass wasi=True to grant it)"),
    "a host function of another type": (
        module('(import "extism:host/user" "f" (func (param i32 i32) (result i32)))'),
        [host_fn("extism:host/user", "f", [I64, I64], [I64])],
        "module 'main' imports extism:host/user::f with type (i32, i32) -> (i32), but the host function has "
        "type (i64, i64) -> (i64)"),
    "a host function of another type, named like a module that lacks it": (
        with_lib(LACKS_ALL, module('(import "lib" "f" (func (param i32)))')), [host_fn("lib", "f", [F32], [])],
        "module 'main' imports lib::f with type (i32) -> (), but the host function has type (f32) -> ()"),
    "a missing host function": (
        module('(import "extism:host/user" "f" (func (param i64 f32) (result f64)))'), [],
        "module 'main' imports extism:host/user::f (i64, f32) -> (f64): no host function with that namespace "
        "and name was given"),
    "a missing host function, named like a module that lacks it": (
        with_lib(LACKS_ALL, module('(import "lib" "f" (func (param i64) (result i64)))')), [],
        "module 'main' imports lib::f (i64) -> (i64), but module 'lib' has no export named 'f' and no host "
        "function with that namespace and name was given"),
}


@pytest.mark.parametrize("plugin, functions, message", HOST_IMPORT_PROBLEMS.values(), ids=HOST_IMPORT_PROBLEMS)
def test_each_host_import_problem_is_a_link_error_naming_it(plugin, functions, message):
    with pytest.raises(ef.LinkError) as info:
        ef.Plugin(plugin, functions=functions)
    assert str(info.value) == message
    with pytest.raises(ef.LinkError) as info:  # the same check compiles a plugin for reuse
        ef.CompiledPlugin(plugin, functions=functions)
    assert str(info.value) == message


def test_host_imports_that_match_link():
    """The other side of each check: the right types, WASI on, a host function standing in for a
    module's missing field."""
    abi = module('(import "extism:host/env" "alloc" (func (param i64) (result i64)))'
                 ' (import "extism:host/env" "load_u8" (func (param i64) (result i32)))')
    assert ef.CompiledPlugin(abi, functions=[]).function_exists("run")
    wasi = module('(import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))')
    assert ef.CompiledPlugin(wasi, wasi=True, functions=[]).function_exists("run")
    lib_f = with_lib(LACKS_ALL, module('(import "lib" "f" (func (param f32)))'))
    with ef.Plugin(lib_f, functions=[host_fn("lib", "f", [F32], [])]) as plugin:
        assert plugin.call("run", b"") == b""


@pytest.mark.parametrize("plugin, message", [
    pytest.param(with_lib(b'(module (global (export "g") i64 (i64.const 0)))',
                          module('(import "extism:host/user" "f" (func)) (import "lib" "g" (global i32))')),
                 "module 'main' imports lib::g as global i32 (immutable), but module 'lib' exports global i64 "
                 "(immutable)", id="problems between modules before host imports"),
    pytest.param(with_lib(module('(import "x" "y" (func))'), module('(import "extism:host/user" "f" (func))')),
                 "module 'lib' imports x::y () -> (): no host function with that namespace and name was given; "
                 "if 'x' is another wasm module, add it to the manifest's wasm list with name='x'",
                 id="modules in position order"),
    pytest.param(module('(import "extism:host/user" "f" (func)) (import "extism:host/env" "nope" (func))'),
                 "module 'main' imports extism:host/user::f () -> (): no host function with that namespace and "
                 "name was given", id="imports in import order"),
])
def test_the_first_link_problem_is_reported(plugin, message):
    with pytest.raises(ef.LinkError) as info:
        ef.Plugin(plugin, functions=[])
    assert str(info.value) == message


def _with_nul(wat: str, placeholder: bytes) -> bytes:
    """``wat`` compiled, with ``placeholder`` (a name in it) made to hold a NUL byte: WAT cannot
    spell one, the binary format can."""
    import wasmtime

    wasm = bytes(wasmtime.wat2wasm(wat))
    assert wasm.count(placeholder) == 1
    return wasm.replace(placeholder, placeholder[:1] + b"\0" + placeholder[2:])


@pytest.mark.parametrize("module, field, shown", [
    ("extism:host/envZx", "alloc", "extism:host/env\\0x::alloc"),  # not the ABI's module
    ("env", "hZllo", "env::h\\0llo"),  # not the host function `h`
])
def test_an_import_name_with_a_nul_byte_is_a_link_error(module, field, shown):
    """The official runtime aborts the process on such a name (a Rust panic, checked by hand);
    ours refuses it at load, naming it, instead of linking it to the name before the NUL."""
    wasm = _with_nul(f'(module (import "{module}" "{field}" (func (param i64) (result i64))) '
                     '(func (export "run") (result i32) i32.const 0))', b"vZx" if "Z" in module else b"hZl")

    def h(plugin, params, results):
        results[0].value = 0

    fn = ef.Function("env", "h", [ef.ValType.I64], [ef.ValType.I64], h)
    with pytest.raises(ef.LinkError, match=rf"imports {re.escape(shown)}: a module or field name with a "
                                           r"NUL byte \(shown as \\0\) cannot be linked"):
        ef.Plugin(wasm, functions=[fn])


def test_an_export_name_with_a_nul_byte_is_not_callable():
    wasm = _with_nul('(module (func (export "rZn") (result i32) i32.const 7) '
                     '(func (export "r") (result i32) i32.const 0))', b"rZn")
    with ef.Plugin(wasm, functions=[]) as plugin:
        assert not plugin.function_exists("r\0n")
        assert plugin.call("r", b"") == b""  # "r" is the export named "r", not the one named "r\0n"
        with pytest.raises(ef.FunctionNotFoundError):
            plugin.call("r\0n", b"")


def test_a_module_name_with_a_nul_byte_is_a_manifest_error():
    with pytest.raises(ef.ManifestError, match=r"manifest.wasm\[0\].name 'li\\x00b' contains a NUL byte"):
        ef.Plugin({"wasm": [{"data": b"\0asm\1\0\0\0", "name": "li\0b"}, {"data": b"\0asm\1\0\0\0"}]},
                  functions=[])


# ---- a lib module and main, from data and from files ----

LIB_WAT = """
(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (global $calls (mut i64) (i64.const 0))
  ;; output v + 42 and the number of calls of this lib instance, as u64[2]
  (func (export "out_plus_42") (param $v i64)
    (local $o i64)
    (global.set $calls (i64.add (global.get $calls) (i64.const 1)))
    (local.set $o (call $alloc (i64.const 16)))
    (call $store_u64 (local.get $o) (i64.add (local.get $v) (i64.const 42)))
    (call $store_u64 (i64.add (local.get $o) (i64.const 8)) (global.get $calls))
    (call $output_set (local.get $o) (i64.const 16)))
  (func (export "lib_only") (result i32) (i32.const 0)))
"""

MAIN_WAT = """
(module
  (import "lib" "out_plus_42" (func $out (param i64)))
  (import "extism:host/env" "input_load_u64" (func $arg (param i64) (result i64)))
  (func (export "run") (result i32)
    (call $out (call $arg (i64.const 0)))
    (i32.const 0)))
"""


@pytest.mark.parametrize(
    "wasm",
    [
        # main = the last source
        [{"data": LIB_WAT.encode(), "name": "lib"}, {"data": MAIN_WAT.encode()}],
        # main = the source named "main", even when it is not the last
        [{"data": MAIN_WAT.encode(), "name": "main"}, {"data": LIB_WAT.encode(), "name": "lib"}],
    ],
    ids=["main-last", "main-named"],
)
def test_multi_module_linked_by_name(wasm):
    compiled = ef.CompiledPlugin({"wasm": wasm}, functions=[])
    with ef.Plugin(compiled) as plugin:
        assert u64s(plugin.call("run", q(1))) == (43, 1)
        assert u64s(plugin.call("run", q(100))) == (142, 2)
        assert plugin.function_exists("run")
        assert not plugin.function_exists("lib_only")  # only main's exports are plugin functions
        with pytest.raises(ef.FunctionNotFoundError):
            plugin.call("lib_only")
    with ef.Plugin(compiled) as other:  # each instance has its own lib instance
        assert u64s(other.call("run", q(0))) == (42, 1)


def test_multi_module_wrong_main_fails_to_link():
    # Named "main" is the lib: the module importing "lib" is then a dependency named "other"
    # that imports a module nobody provides.
    wasm = [{"data": LIB_WAT.encode(), "name": "main"}, {"data": MAIN_WAT.encode(), "name": "other"}]
    with pytest.raises(ef.LinkError, match="lib::out_plus_42"):
        ef.Plugin({"wasm": wasm}, functions=[])


def test_multi_module_from_files(tmp_path):
    (tmp_path / "lib.wat").write_text(LIB_WAT)
    (tmp_path / "main.wat").write_text(MAIN_WAT)
    manifest = {"wasm": [{"path": str(tmp_path / "lib.wat"), "name": "lib"}, {"path": str(tmp_path / "main.wat")}]}
    with ef.Plugin(json.dumps(manifest), functions=[]) as plugin:
        assert u64s(plugin.call("run", q(8))) == (50, 1)


# ---- a missing import from a module the user likely meant to link ----

MATHLIB = b'(module (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))'
USES_MATHLIB = module('(import "mathlib" "add" (func (param i32 i32) (result i32)))')
HINT = "; if 'mathlib' is another wasm module, add it to the manifest's wasm list with name='mathlib'"


def test_missing_module_hints_a_named_manifest_module_and_the_hint_works():
    with pytest.raises(ef.LinkError) as info:
        ef.Plugin(USES_MATHLIB, functions=[])
    assert str(info.value) == ("module 'main' imports mathlib::add (i32, i32) -> (i32): no host function with "
                               "that namespace and name was given" + HINT)
    global_import = module('(import "mathlib" "g" (global i32))')
    with pytest.raises(ef.LinkError) as info:
        ef.Plugin(global_import, functions=[])
    assert str(info.value).endswith("only functions can be imported from the host" + HINT)
    # Doing what it says links.
    manifest = {"wasm": [{"data": MATHLIB, "name": "mathlib"}, {"data": USES_MATHLIB, "name": "main"}]}
    with ef.Plugin(manifest, functions=[]) as plugin:
        assert plugin.call("run", b"") == b""


@pytest.mark.parametrize("imports, functions", [
    ('(import "extism:host/user" "f" (func))', []),  # the host functions' default namespace
    ('(import "extism:host/other" "f" (func))', []),
    ('(import "env" "abort" (func))', []),  # the host's by convention
    ('(import "mathlib" "sub" (func))', [host_fn("mathlib", "add", [], [])]),  # a host namespace given
])
def test_no_link_hint_for_the_hosts_own_namespaces(imports, functions):
    with pytest.raises(ef.LinkError) as info:
        ef.Plugin(module(imports), functions=functions)
    assert "no host function with that namespace and name was given" in str(info.value)
    assert "another wasm module" not in str(info.value)


def test_no_link_hint_when_the_module_is_linked_but_lacks_the_export():
    with pytest.raises(ef.LinkError) as info:
        ef.Plugin(with_lib(LACKS_ALL, module('(import "lib" "f" (func))')), functions=[])
    assert "module 'lib' has no export named 'f'" in str(info.value)
    assert "another wasm module" not in str(info.value)


def test_cli_missing_module_hints_link(cli_run, tmp_path):
    main, lib = tmp_path / "main.wat", tmp_path / "mathlib.wat"
    main.write_bytes(USES_MATHLIB)
    lib.write_bytes(MATHLIB)
    status, out, err = cli_run("call", main, "run")
    assert (status, out) == (1, b"")
    assert err == ("extism-fast: error: module 'main' imports mathlib::add (i32, i32) -> (i32): no host function "
                   "with that namespace and name was given; if 'mathlib' is another wasm module, link it with "
                   "--link mathlib=PATH\n")
    assert cli_run("call", main, "run", "--link", f"mathlib={lib}")[:2] == (0, b"")
