"""The C kernel's units stay small and in layers, and the Cython side reaches wasmtime only through them.

A unit is a pair kernel_c/x.{h,c}; unit x depends on unit y when x.h or x.c includes "y.h". The
graph has no cycle (each unit can be read, and tested, after those below it), no .c file is over
500 lines, each header opens with the comment saying what its unit owns, and no .pyx/.pxi calls a
function of wasmtime's C API (those wasmtime_api.h resolves): kernel_c makes and frees every
wasmtime object (docs/ARCHITECTURE.md, "Ownership").

Run as a script, it prints the unit graph (``python tests/test_c_units.py``).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from conftest import graph_cycles

ROOT = Path(__file__).resolve().parent.parent
KERNEL = ROOT / "kernel_c"
PACKAGE = ROOT / "extism_fast"
MAX_C_LINES = 500

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)\.h"', re.M)
# A call of a function: a bare name or through the resolved table (wt.name).
CALL = re.compile(r"\b(?:wt\s*\.\s*)?(\w+)\s*\(")
COMMENT = re.compile(r"#.*$", re.M)


def wasmtime_functions() -> set[str]:
    """The wasmtime C API functions kernel_c resolves (the X(...) list of wasmtime_api.h)."""
    return set(re.findall(r"\bX\(\s*[^,]+,\s*(\w+)\s*,", (KERNEL / "wasmtime_api.h").read_text()))


def units() -> dict[str, set[str]]:
    """Each unit's dependencies on the other units (its own header excluded)."""
    names = {p.stem for p in KERNEL.glob("*.[ch]")}
    graph: dict[str, set[str]] = {name: set() for name in names}
    for path in KERNEL.glob("*.[ch]"):
        for included in INCLUDE.findall(path.read_text()):
            if included in names and included != path.stem:
                graph[path.stem].add(included)
    return graph


def layers(graph: dict[str, set[str]]) -> list[list[str]]:
    """Units by layer: each one's dependencies are all in lower layers (needs an acyclic graph)."""
    level: dict[str, int] = {}

    def depth(v: str) -> int:
        if v not in level:
            level[v] = -1  # a cycle would read this and stay shallow; graph_cycles() reports it
            level[v] = 1 + max((depth(w) for w in graph[v]), default=-1)
        return level[v]

    for v in graph:
        depth(v)
    return [sorted(v for v in graph if level[v] == n) for n in range(max(level.values()) + 1)]


def wasmtime_calls_in_cython() -> list[str]:
    api = wasmtime_functions()
    found = []
    for path in sorted(PACKAGE.glob("*.pyx")) + sorted(PACKAGE.glob("*.pxi")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = COMMENT.sub("", line.split('"""')[0])
            for name in CALL.findall(code):
                if name in api:
                    found.append(f"{path.relative_to(ROOT)}:{number}: {name}")
    return found


def test_the_units_include_each_other_without_a_cycle():
    assert graph_cycles(units()) == []


# Leaves: units that include nothing but libc headers (and their own header), so that every unit may
# use them; what they must name of other units is opaque (forward-declared structs).
LEAVES = ("running",)  # the running call's state
LIBC_HEADERS = {"stddef.h", "stdint.h", "stdlib.h", "string.h"}
SYSTEM_INCLUDE = re.compile(r"^\s*#\s*include\s+<([^>]+)>", re.M)


def leaf_problems(unit: str) -> list[str]:
    problems = []
    for path in (KERNEL / f"{unit}.h", KERNEL / f"{unit}.c"):
        text = path.read_text()
        problems += [f"{path.name} includes {name}.h" for name in INCLUDE.findall(text) if name != unit]
        problems += [f"{path.name} includes <{name}>" for name in SYSTEM_INCLUDE.findall(text)
                     if name not in LIBC_HEADERS]
    return problems


def test_the_running_call_state_is_a_leaf():
    assert {unit: leaf_problems(unit) for unit in LEAVES} == {unit: [] for unit in LEAVES}
    assert all(not units()[unit] for unit in LEAVES)


# A header's functions are named after its unit: "unit_" (a plural unit may drop its "s").
PREFIX_ALIASES = {"wasmtime_api": "wt"}
DECLARATION = re.compile(r"^(?!typedef|extern|return)[A-Za-z_][\w \t*]*?\b([a-z_][a-z0-9_]*)\s*\(", re.M)


def misnamed_functions() -> list[str]:
    found = []
    for path in sorted(KERNEL.glob("*.h")):
        unit = path.stem
        prefixes = {unit + "_", unit.rstrip("s") + "_", PREFIX_ALIASES.get(unit, unit) + "_"}
        for name in DECLARATION.findall(path.read_text()):
            if not name.startswith(tuple(prefixes)):
                found.append(f"{path.name}: {name}")
    return found


def test_functions_are_named_after_their_unit():
    assert misnamed_functions() == []


def test_no_c_file_is_over_500_lines():
    long = {p.name: n for p in KERNEL.glob("*.c") if (n := len(p.read_text().splitlines())) > MAX_C_LINES}
    assert long == {}


def test_each_header_says_what_its_unit_owns():
    # wasmtime_api.h declares wasmtime's API rather than a unit of ours: it says what it holds.
    missing = [p.name for p in KERNEL.glob("*.h")
               if p.name != "wasmtime_api.h" and not re.match(rf"/\*\n \* {re.escape(p.name)} - .*?Owns: ",
                                                               p.read_text(), re.S)]
    assert missing == []


def test_cython_calls_no_wasmtime_function():
    assert wasmtime_calls_in_cython() == []


def test_the_checks_see_what_they_look_for():
    """The parsers find what they must (a check that reads nothing would pass on anything)."""
    graph = units()
    assert {"kernel", "instance", "compiled"} <= set(graph) and graph["instance"]
    assert graph_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert DECLARATION.findall("int store_new(plugin_instance *p,\n    char **e);\ntypedef int (*f)(void);") == ["store_new"]
    assert DECLARATION.findall("static inline kernel *instance_kernel(const plugin_instance *p) { return p->kernel; }") == [
        "instance_kernel"]
    assert "kernel_new" in DECLARATION.findall((KERNEL / "kernel.h").read_text())
    api = wasmtime_functions()
    assert {"wasmtime_module_new", "wasm_byte_vec_delete", "wasmtime_store_delete"} <= api and len(api) > 50
    assert CALL.findall("x = wt.wasmtime_module_new(e, p, n, &m)") == ["wasmtime_module_new"]
    assert leaf_problems("store") and leaf_problems("call")  # units that are no leaves are seen as such
    assert "wasm_trap_t" not in CALL.findall("cdef wasm_trap_t *f(wasmtime_val_raw_t *raw):")


if __name__ == "__main__":
    graph = units()
    if graph_cycles(graph):
        print("cycles:", graph_cycles(graph))
    else:
        for n, layer in enumerate(layers(graph)):
            print(f"layer {n}: " + ", ".join(f"{v} -> {{{', '.join(sorted(graph[v]))}}}" for v in layer))
    print("largest .c:", max((len(p.read_text().splitlines()), p.name) for p in KERNEL.glob("*.c")))
    print("wasmtime calls in Cython:", len(wasmtime_calls_in_cython()))
    sys.exit(0)
