"""Every code block of README.md, docs/*.md and examples/README.md runs as written.

Python blocks run as scripts, each in a fresh interpreter from the repository root (their paths,
``examples/count_vowels.wat``, are relative to it, as a user of the checkout runs them); every
Python block, run or not, must compile and define each name it uses. Shell blocks run in bash from
the repository root with ``extism-fast``, ``python`` and ``python3`` being this checkout's build;
a sentence ``prints `X``` right after a block must be the first line it prints, and a comment
that is a Python literal after a ``print(...)`` (``# b'{"count": 3}'``) must be a line a Python
block prints. JSON and TOML blocks must parse. A block that must not run (it installs packages,
runs the whole suite, is a synopsis) is preceded by ``<!-- not run: REASON -->``; any other block
of another language fails.

Also here: the error a checkout's source folder gives when it shadows an installed extism_fast.
"""

from __future__ import annotations

import ast
import builtins
import json
import os
import re
import shutil
import subprocess
import symtable
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import REPO_ROOT

DOCS = ("README.md", "docs/*.md", "examples/README.md")
PYTHON = {"python", "py"}
SHELL = {"sh", "bash", "console", "shell"}
DATA = {"json": json.loads, "toml": tomllib.loads}
#: Seconds a block may take: the Ray blocks start a local Ray (~15-30 s on the 2-CPU test machine).
BLOCK_TIMEOUT_S = 300

#: Commands that change the machine: a block holding one is never run, marked or not.
_INSTALLS = re.compile(r"\b(pip3? install|-m pip install|apt-get|apt install|npm (ci|install)|python3? -m venv)\b")
_FENCE = re.compile(r"^```([\w+-]*)[ \t]*$")
_MARKER = re.compile(r"^<!--\s*not run:(.*?)-->$")
_PRINTS = re.compile(r"^prints `(.+?)`")


@dataclass
class Block:
    doc: str
    line: int  # of the opening fence, 1-based
    language: str
    code: str
    not_run: str | None  # the marker's reason ("" for a marker without one)
    prints: str | None  # the text of a "prints `X`" sentence right after the block

    @property
    def id(self) -> str:
        return f"{self.doc}:{self.line}-{self.language or 'none'}"


def parse_blocks(text: str, doc: str) -> list[Block]:
    """The fenced blocks of a markdown text, with the marker before each and the sentence after."""
    lines = text.splitlines()
    blocks, i = [], 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == "```"), None)
        assert end is not None, f"{doc}:{i + 1}: a code block that is never closed"
        before = next((lines[j].strip() for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        after = next((lines[j].strip() for j in range(end + 1, len(lines)) if lines[j].strip()), "")
        marker, prints = _MARKER.match(before), _PRINTS.match(after)
        blocks.append(Block(doc, i + 1, opening.group(1).lower(), "\n".join(lines[i + 1:end]) + "\n",
                            marker.group(1).strip() if marker else None, prints.group(1) if prints else None))
        i = end + 1
    return blocks


def doc_blocks() -> list[Block]:
    paths = sorted({p for pattern in DOCS for p in REPO_ROOT.glob(pattern)})
    return [b for p in paths for b in parse_blocks(p.read_text(), str(p.relative_to(REPO_ROOT)))]


BLOCKS = doc_blocks()


def undefined_names(code: str, filename: str = "<block>") -> set[str]:
    """Names a script reads that nothing in it binds and that are not builtins (at module level or
    as the globals of its functions and classes)."""
    top = symtable.symtable(code, filename, "exec")
    bound = {s.get_name() for s in top.get_symbols() if s.is_assigned() or s.is_imported()}
    known = bound | set(dir(builtins)) | {"__name__", "__file__"}
    missing: set[str] = set()

    def visit(table: symtable.SymbolTable) -> None:
        for symbol in table.get_symbols():
            is_module_name = table is top or symbol.is_global()
            if symbol.is_referenced() and is_module_name and symbol.get_name() not in known:
                missing.add(symbol.get_name())
        for child in table.get_children():
            visit(child)

    visit(top)
    return missing


def expected_prints(code: str) -> list[str]:
    """The comments after ``print(...)`` lines that are Python literals: lines the block prints."""
    found = []
    for line in code.splitlines():
        match = re.match(r"^\s*print\(.*\)\s+#\s+(.+?)\s*$", line)
        if match:
            try:
                ast.literal_eval(match.group(1))
            except (ValueError, SyntaxError):
                continue
            found.append(match.group(1))
    return found


def _shims(tmp_path: Path) -> dict:
    """The environment a block runs in: this checkout importable, and extism-fast, python and
    python3 on PATH running this interpreter (not whatever else is installed)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, command in (("python", sys.executable), ("python3", sys.executable),
                          ("extism-fast", f"{sys.executable} -m extism_fast")):
        shim = bin_dir / name
        shim.write_text(f'#!/bin/sh\nexec {command} "$@"\n')
        shim.chmod(0o755)
    path = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


def _run(args: list[str], env: dict, block: Block) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=BLOCK_TIMEOUT_S)
    assert proc.returncode == 0, (f"{block.id} failed (exit {proc.returncode}):\n{block.code}\n"
                                  f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-5000:]}")
    return proc


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: b.id)
def test_the_block_runs_as_written(block, tmp_path):
    if block.not_run is not None:
        assert len(block.not_run.split()) >= 3, f"{block.id}: a not-run marker must say why"
    if block.language in PYTHON:
        code = block.code
        compile(code, block.id, "exec")
        assert not undefined_names(code), f"{block.id} uses names it never defines: {sorted(undefined_names(code))}"
        if block.not_run is not None:
            return
        script = tmp_path / f"readme_block_{block.line}.py"  # not a module name a block imports
        script.write_text(code)
        proc = _run([sys.executable, str(script)], _shims(tmp_path), block)
        printed = proc.stdout.splitlines()
        for expected in expected_prints(code):
            assert expected in printed, f"{block.id} should print {expected}; it printed:\n{proc.stdout}"
    elif block.language in DATA:
        DATA[block.language](block.code)
    elif block.not_run is not None:
        return
    elif block.language in SHELL:
        assert not _INSTALLS.search(block.code), f"{block.id} installs something: mark it <!-- not run: REASON -->"
        proc = _run(["bash", "-e", "-o", "pipefail", "-c", block.code], _shims(tmp_path), block)
        if block.prints is not None:
            first = proc.stdout.splitlines()[0] if proc.stdout else ""
            assert first == block.prints, f"{block.id} should print {block.prints}; it printed:\n{proc.stdout}"
    else:
        pytest.fail(f"{block.id}: a {block.language or 'plain'} block that is neither run nor marked "
                    "<!-- not run: REASON -->")


def test_the_docs_have_blocks_of_each_kind_and_the_markers_are_read():
    by_language = {b.language for b in BLOCKS}
    assert {"python", "sh"} <= by_language
    assert sum(b.language in PYTHON and b.not_run is None for b in BLOCKS) >= 10
    assert any(b.not_run for b in BLOCKS) and any(b.prints for b in BLOCKS)


def test_blocks_are_read_with_their_marker_and_the_sentence_after():
    text = ("Intro.\n\n<!-- not run: installs packages into the environment -->\n```sh\npip install x\n```\n\n"
            "```python\nprint(1)  # 1\n```\n\nprints `1`, then more.\n\n```\nplain\n```\n")
    first, second, third = parse_blocks(text, "doc.md")
    assert (first.line, first.language, first.code, first.not_run) == (4, "sh", "pip install x\n",
                                                                       "installs packages into the environment")
    assert (second.language, second.not_run, second.prints) == ("python", None, "1")
    assert (third.language, third.not_run, third.code) == ("", None, "plain\n")


@pytest.mark.parametrize("text, problem", [
    ("```\nsome text\n```\n", "neither run nor marked"),
    ("```text\nsome text\n```\n", "neither run nor marked"),
    ("<!-- not run: -->\n```sh\nrm -rf /\n```\n", "must say why"),
    ("```python\nprint(texts)\n```\n", "never defines: ['texts']"),
    ("```python\nimport sys\nsys.exit(3)\n```\n", "failed (exit 3)"),
    ("```sh\nfalse | cat\n```\n", "failed (exit 1)"),
    ("```sh\necho 2\n```\n\nprints `1`.\n", "should print 1"),
    ("```python\nprint(1 + 1)  # 3\n```\n", "should print 3"),
    ("```sh\npip install x && extism-fast --help\n```\n", "installs something"),
    ("```json\n{\"a\": 1,}\n```\n", "Expecting property name"),
])
def test_a_block_that_is_broken_or_unmarked_fails(text, problem, tmp_path):
    (block,) = parse_blocks(text, "doc.md")
    with pytest.raises((AssertionError, pytest.fail.Exception, ValueError), match=re.escape(problem)):
        test_the_block_runs_as_written(block, tmp_path)


def test_undefined_names_sees_functions_classes_and_comprehensions():
    code = ("import os\nfrom x import y as z\nA = 1\n"
            "def f(a):\n    return a + A + B + os.sep + z\n"
            "class C:\n    k = D\n"
            "print([q for q in E], [w for w in A])\n"
            "with open(F) as g:\n    pass\nfor i in g:\n    print(i, __name__)\n")
    assert undefined_names(code) == {"B", "D", "E", "F"}


# -- running from the checkout's root -------------------------------------------------------------


def test_a_source_folder_without_the_extension_says_it_shadows_the_install_and_how_to_fix_it(tmp_path):
    """The checkout's extism_fast/ before an installed one on sys.path, as after `pip install .`
    and running from the checkout root: the error names the folder and the commands that fix it."""
    checkout = tmp_path / "checkout"
    shutil.copytree(REPO_ROOT / "extism_fast", checkout / "extism_fast",
                    ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # -S: no site-packages, so nothing (an editable install's finder included) supplies _runtime
    for args in (["-c", "import extism_fast"], ["-m", "extism_fast", "--help"]):
        proc = subprocess.run([sys.executable, "-S", *args], cwd=checkout, env=env, capture_output=True,
                              text=True, timeout=60)
        assert proc.returncode == 1
        message = proc.stderr.strip().splitlines()[-1]
        assert message == (
            f"ModuleNotFoundError: extism_fast's compiled extension (_runtime) is not built in "
            f"{checkout / 'extism_fast'}: Python imported this source folder of a checkout, which shadows "
            "an installed extism_fast when Python runs from the checkout root or has it on sys.path "
            "(`pip install .` builds the extension into the installed copy only). Run from another "
            f"directory to use the installed package, or build the extension in place: `cd {checkout} && "
            "pip install -e .` (or `python setup.py build_ext --inplace` there)"), proc.stderr
