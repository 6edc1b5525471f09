"""The docs say what the code does: checks that fail when they drift from the tree.

* The type stubs match the runtime: mypy's stubtest over the package, the extension's stubs
  (``extism_fast/_runtime.pyi``) included; ``tests/stubtest_allowlist.txt`` holds only what stubtest
  cannot see as it is, each entry with its reason (stubtest also fails on an entry no longer used).
* Every manifest key the parser accepts is named in docs/ABI.md's manifest section.
* README's Layout table names only files that exist, and names every file of the package
  (``extism_fast/**``) and of the C kernel (``kernel_c/*``).

Everything is derived from the tree (the parser's own allow-lists, the files on disk), so a new key
or file fails here until the docs name it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import attrs
import pytest

from conftest import REPO_ROOT
from extism_fast import manifest
from extism_fast.manifest import schema

README = REPO_ROOT / "README.md"
ABI_DOC = REPO_ROOT / "docs" / "ABI.md"
ALLOWLIST = REPO_ROOT / "tests" / "stubtest_allowlist.txt"
# Build outputs that never belong in the table (.gitignore): compiled objects and caches, and the C
# that Cython generates next to a .pyx of the same name.
BUILD_SUFFIXES = {".so", ".o", ".a", ".pyc"}


# -- stubs ------------------------------------------------------------------------------------------


def test_the_stubs_match_the_runtime(tmp_path):
    cmd = [sys.executable, "-m", "mypy.stubtest", "extism_fast", "--mypy-config-file", "pyproject.toml",
           "--allowlist", str(ALLOWLIST.relative_to(REPO_ROOT))]
    # From the repository root, whose extism_fast (with its built extension) is the one imported.
    env = dict(os.environ, MYPY_CACHE_DIR=str(tmp_path / "mypy_cache"))
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, f"stubtest found differences:\n{proc.stdout[-20000:]}\n{proc.stderr[-5000:]}"
    assert "Success: no issues found" in proc.stdout


BATCH_TYPES = """
from typing import Any, Iterator, List, Union
from typing_extensions import assert_type
import extism_fast as ef

p = ef.Plugin("examples/count_vowels.wat")
assert_type(p.call("count_vowels", b"a"), bytes)
assert_type(p.call("count_vowels", b"a", parse=len), int)
assert_type(p.call_many("count_vowels", [b"a"]), List[bytes])
assert_type(p.call_many("count_vowels", [b"a"], parse=None), List[memoryview])
assert_type(p.call_many("count_vowels", [b"a"], parse=len), List[int])
assert_type(p.call_many("count_vowels", [b"a"], return_exceptions=True), List[Union[bytes, Exception]])
assert_type(p.call_many("count_vowels", [b"a"], parse=len, return_exceptions=True), List[Union[int, Exception]])
assert_type(p.call_many("count_vowels", [b"a"], output="arrow"), Any)
assert_type(p.iter_call("count_vowels", [b"a"], parse=len), Iterator[int])
pool = ef.PluginPool("examples/count_vowels.wat")
assert_type(pool.call("count_vowels", b"a"), bytes)
assert_type(pool.call("count_vowels", b"a", parse=None), memoryview)
assert_type(pool.map("count_vowels", [b"a"]), List[bytes])
assert_type(pool.map("count_vowels", [b"a"], parse=bytes.decode), List[str])
assert_type(pool.map("count_vowels", [b"a"], parse=len, return_exceptions=True), List[Union[int, Exception]])
assert_type(pool.imap("count_vowels", [b"a"], parse=None), Iterator[memoryview])
"""


def test_the_stubs_type_call_and_batch_results(tmp_path):
    """Type checkers see what call, call_many, iter_call and the pool's call/map/imap return for
    each ``parse`` (and ``return_exceptions``); a wrong expectation fails (the second run)."""
    env = dict(os.environ, MYPY_CACHE_DIR=str(tmp_path / "mypy_cache"))

    def mypy(source: str) -> subprocess.CompletedProcess:
        path = tmp_path / "types_check.py"
        path.write_text(source)
        return subprocess.run([sys.executable, "-m", "mypy", "--strict-equality", "--no-incremental", str(path)],
                              cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900, check=False)

    ok = mypy(BATCH_TYPES)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    wrong = mypy(BATCH_TYPES.replace("List[int])", "List[bytes])", 1))
    assert wrong.returncode == 1 and "[assert-type]" in wrong.stdout, wrong.stdout + wrong.stderr


# -- manifest keys ----------------------------------------------------------------------------------


def accepted_manifest_keys(monkeypatch) -> dict[str, set[str]]:
    """Every key the manifest parser accepts, by where it is accepted (``manifest``,
    ``manifest.memory``, ``manifest.wasm[]``): recorded from the allow-lists the parser checks
    while it reads a manifest with one source of each kind, plus the fields of the attrs classes
    those objects become."""
    seen: dict[str, set[str]] = {}
    check = schema._reject_unknown

    def record(where, d, allowed, *args, **kwargs):
        seen.setdefault(re.sub(r"\[\d+\]", "[]", where), set()).update(allowed)
        return check(where, d, allowed, *args, **kwargs)

    monkeypatch.setattr(schema, "_reject_unknown", record)
    manifest.Manifest.from_dict({
        "wasm": [{"data": b"\0asm\1\0\0\0"}, {"path": "plugin.wasm"}, {"url": "https://example.com/p.wasm"}],
        "memory": {},
    })
    assert {"manifest", "manifest.memory", "manifest.wasm[]"} <= set(seen), seen
    fields = {"manifest": manifest.Manifest, "manifest.memory": manifest.MemoryOptions,
              "manifest.wasm[]": (manifest.WasmData, manifest.WasmFile, manifest.WasmUrl)}
    for where, classes in fields.items():
        for cls in classes if isinstance(classes, tuple) else (classes,):
            seen[where] |= {field.name for field in attrs.fields(cls)}
    return seen


def manifest_section() -> str:
    text = ABI_DOC.read_text()
    match = re.search(r"^## The manifest\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, "docs/ABI.md has no '## The manifest' section"
    return match.group(1)


def test_every_manifest_key_the_parser_accepts_is_in_docs_abi(monkeypatch):
    section = manifest_section()
    missing = sorted(f"{where}: {key}" for where, keys in accepted_manifest_keys(monkeypatch).items()
                     for key in keys if f"`{key}`" not in section and f'"{key}"' not in section)
    assert not missing, f"docs/ABI.md's manifest section does not name these keys: {missing}"


def test_the_manifest_keys_are_read_from_the_parser(monkeypatch):
    keys = accepted_manifest_keys(monkeypatch)
    assert {"wasm", "memory", "config", "timeout_ms"} <= keys["manifest"]
    assert {"max_pages", "max_table_elements"} <= keys["manifest.memory"]
    assert {"data", "path", "url", "headers", "method", "name", "hash"} <= keys["manifest.wasm[]"]


# -- README layout ----------------------------------------------------------------------------------


def _expand(name: str) -> list[str]:
    """``kernel_c/call.{h,c}`` -> both names; other names as they are."""
    match = re.fullmatch(r"(.*)\{([^}]*)\}(.*)", name)
    return [f"{match[1]}{part}{match[3]}" for part in match[2].split(",")] if match else [name]


def layout_table() -> list[tuple[list[str], str]]:
    """README's Layout table: each row's paths (the backticked names of its first column; a name
    without a directory is in the directory of the name before it) and its description."""
    text = README.read_text()
    match = re.search(r"^## Layout\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, "README.md has no '## Layout' section"
    rows = []
    for line in match.group(1).splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if len(cells) != 2 or cells[0] in ("where", "---") or set(cells[0]) <= set("-:"):
            continue
        paths, directory = [], ""
        for name in re.findall(r"`([^`]+)`", cells[0]):
            if "/" in name.rstrip("/"):
                directory = name.rsplit("/", 1)[0] + "/"
            else:
                name = directory + name if directory and not name.endswith("/") else name
            paths.extend(_expand(name))
        rows.append((paths, cells[1]))
    assert rows, "README's Layout table has no rows"
    return rows


def _matches(pattern: str) -> list[Path]:
    if pattern.endswith("/"):
        return [REPO_ROOT / pattern] if (REPO_ROOT / pattern).is_dir() else []
    return [p for p in REPO_ROOT.glob(pattern) if p.is_file()]


def test_every_file_the_readme_layout_names_exists():
    missing = [p for paths, _ in layout_table() for p in paths if not _matches(p)]
    assert not missing, f"README's Layout table names files that do not exist: {missing}"


def _is_build_output(path: Path) -> bool:
    return (path.suffix in BUILD_SUFFIXES or "__pycache__" in path.parts
            or (path.suffix == ".c" and path.with_suffix(".pyx").exists()))


def package_files() -> set[str]:
    """The files of the package and the C kernel, without build outputs."""
    files = [p for p in (REPO_ROOT / "extism_fast").rglob("*") if p.is_file()]
    files += [p for p in (REPO_ROOT / "kernel_c").iterdir() if p.is_file()]
    return {str(p.relative_to(REPO_ROOT)) for p in files if not _is_build_output(p)}


def test_the_readme_layout_names_every_package_file():
    named = {str(p.relative_to(REPO_ROOT)) for paths, _ in layout_table() for pattern in paths
             for p in _matches(pattern)}
    files = package_files()
    assert {"extism_fast/_runtime.pyx", "extism_fast/manifest/schema.py", "kernel_c/kernel.c"} <= files
    missing = sorted(files - named)
    assert not missing, f"README's Layout table does not name these files: {missing}"


@pytest.mark.parametrize("cell, paths", [
    ("`kernel_c/call.{h,c}`", ["kernel_c/call.h", "kernel_c/call.c"]),
    ("`extism_fast/_host_functions.pxi`, `_current_plugin.pxi`",
     ["extism_fast/_host_functions.pxi", "extism_fast/_current_plugin.pxi"]),
    ("`fuzz/`", ["fuzz/"]),
    ("`setup.py`, `pyproject.toml`", ["setup.py", "pyproject.toml"]),
])
def test_the_layout_parser_reads_the_tables_notation(monkeypatch, tmp_path, cell, paths):
    readme = tmp_path / "README.md"
    readme.write_text(f"## Layout\n\n| where | what |\n|---|---|\n| {cell} | it |\n\n## Next\n")
    monkeypatch.setattr(sys.modules[__name__], "README", readme)
    assert layout_table() == [(paths, "it")]
