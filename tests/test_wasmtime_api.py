"""kernel_c/wasmtime_api.h declares by hand the wasmtime C API functions extism_fast resolves with
dlopen; a wasmtime upgrade that changes one of their signatures must fail here, not corrupt memory.

Every declaration in the header's X-macro table is compared, argument by argument and for its
result, with the ctypes signature the installed `wasmtime` wheel generated from the real headers
(`wasmtime/_bindings.py`).
"""

import pathlib
import re

import pytest

import wasmtime

from conftest import REPO_ROOT

HEADER = REPO_ROOT / "kernel_c" / "wasmtime_api.h"
BINDINGS = pathlib.Path(wasmtime.__file__).parent / "_bindings.py"

# C scalar types and the ctypes names the bindings use for them.
SCALARS = {
    "bool": "c_bool", "int": "c_int", "size_t": "c_size_t", "uint8_t": "c_uint8", "uint32_t": "c_uint32",
    "uint64_t": "c_uint64", "int64_t": "c_int64", "int32_t": "c_int32", "double": "c_double",
    "ptrdiff_t": "c_ssize_t", "char": "c_char", "unsigned char": "c_uint8", "void": "None",
}
# Typedefs of the header that the bindings spell as their underlying scalar or as another name.
ALIASES = {
    "wasm_valkind_t": "c_uint8", "wasm_externkind_t": "c_uint8", "wasm_mutability_t": "c_uint8",
    "wasmtime_trap_code_t": "c_uint8", "wasmtime_update_deadline_kind_t": "c_uint8",
    "wasm_name_t": "wasm_byte_vec_t", "wasm_message_t": "wasm_byte_vec_t", "c_ubyte": "c_uint8",
}
_KEYWORDS = {"const", "unsigned", "signed", "struct"}


def _function_type(result: str, params: list[str]) -> str:
    """How ctypes spells a function pointer: CFUNCTYPE(result, params...). ctypes callbacks
    cannot return pointers, so the bindings give those a c_size_t result."""
    return f"CFUNCTYPE({'c_size_t' if result.startswith('*') else result}, {', '.join(params)})"


def _strip_name(decl: str) -> str:
    """`void *env` -> `void *`: drop a parameter's name."""
    tokens = re.findall(r"\w+|\*", decl)
    words = [t for t in tokens if t != "*"]
    if len(words) >= 2 and tokens[-1] not in ("*",) and tokens[-2] not in _KEYWORDS:
        tokens = tokens[:-1]
    return " ".join(tokens)


def _canonical_c(decl: str, typedefs: dict[str, str]) -> str:
    """A C parameter or result type as the bindings spell it: `ctypes.POINTER(T)` -> `*T`."""
    pointer = re.fullmatch(r"(.+?)\(\s*\*\s*\)\s*\((.*)\)", decl.strip())
    if pointer:  # an inline function pointer type
        return _function_type(_canonical_c(pointer.group(1), typedefs),
                              [_canonical_c(a, typedefs) for a in _split_args(pointer.group(2))])
    decl = _strip_name(decl).replace("const ", "").replace("const", "").strip()
    stars = decl.count("*")
    base = " ".join(decl.replace("*", " ").split())
    base = typedefs.get(base, ALIASES.get(base, SCALARS.get(base, base)))
    if base == "None" and stars:  # void * is c_void_p
        base, stars = "c_void_p", stars - 1
    return "*" * stars + base


def _canonical_ctypes(expr: str, callbacks: dict[str, str]) -> str:
    expr = expr.strip()
    function = re.fullmatch(r"ctypes\.CFUNCTYPE\((.*)\)", expr)
    if function:
        result, *params = [_canonical_ctypes(a, callbacks) for a in _split_args(function.group(1))]
        return f"CFUNCTYPE({result}, {', '.join(params)})"
    stars = 0
    while True:
        m = re.fullmatch(r"ctypes\.POINTER\((.*)\)", expr)
        if not m:
            break
        expr, stars = m.group(1).strip(), stars + 1
    expr = expr.removeprefix("ctypes.")
    return "*" * stars + callbacks.get(expr, ALIASES.get(expr, expr))


def _split_args(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for ch in text:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    if current.strip():
        parts.append(current)
    return [p.strip() for p in parts]


def header_declarations() -> dict[str, tuple[str, list[str]]]:
    text = HEADER.read_text().replace("\\\n", " ")
    typedefs: dict[str, str] = {}
    for m in re.finditer(r"typedef\s+([^;(]+?)\s*\(\s*\*\s*(\w+)\s*\)\s*\(([^;]*)\);", text):
        result, name, params = m.groups()
        typedefs[name] = _function_type(_canonical_c(result, typedefs),
                                        [_canonical_c(a, typedefs) for a in _split_args(params)])
    table = text[text.index("#define WT_FUNCTIONS(X)"):]
    table = table[:table.index("\n")]
    declarations = {}
    for m in re.finditer(r"X\(\s*([^,]+?)\s*,\s*(\w+)\s*,\s*\(((?:[^()]|\((?:[^()]|\([^()]*\))*\))*)\)\s*\)", table):
        result, name, args = m.group(1), m.group(2), m.group(3)
        params = [] if args.strip() == "void" else [_canonical_c(a, typedefs) for a in _split_args(args)]
        declarations[name] = (_canonical_c(result, typedefs), params)
    return declarations


def binding_signatures() -> dict[str, tuple[str, list[str]]]:
    text = BINDINGS.read_text()
    callbacks: dict[str, str] = {}
    for m in re.finditer(r"^(\w+) = (ctypes\.CFUNCTYPE\(.*\))$", text, re.M):
        callbacks[m.group(1)] = _canonical_ctypes(m.group(2), callbacks)
    signatures = {}
    for m in re.finditer(r"^_(\w+)\.restype = (.+)$\n^_\1\.argtypes = \[(.*)\]$", text, re.M):
        name, restype, argtypes = m.groups()
        signatures[name] = (_canonical_ctypes(restype, callbacks),
                            [_canonical_ctypes(a, callbacks) for a in _split_args(argtypes)])
    return signatures


DECLARATIONS = header_declarations()
SIGNATURES = binding_signatures()


def test_the_table_was_read():
    assert len(DECLARATIONS) == HEADER.read_text().count("    X(")  # every entry parsed
    assert len(SIGNATURES) > 300


@pytest.mark.parametrize("name", sorted(DECLARATIONS))
def test_declaration_matches_the_installed_wasmtime(name):
    assert name in SIGNATURES, f"{name} is not in the installed wasmtime's C API"
    assert DECLARATIONS[name] == SIGNATURES[name], f"{name}: header {DECLARATIONS[name]} != wheel {SIGNATURES[name]}"


def test_a_changed_signature_would_be_caught():
    """The comparison is not vacuous: one argument type changed is a difference."""
    result, params = DECLARATIONS["wasmtime_store_limiter"]
    assert (result, params[:1] + ["c_int32"] + params[2:]) != SIGNATURES["wasmtime_store_limiter"]
