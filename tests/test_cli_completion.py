"""``extism-fast completion bash``: the script, sourced by a real bash, completes what the parser
takes (COMP_WORDS / COMP_CWORD set as bash's completion would, then the completion function run).
zsh and fish are not generated (README, CLI)."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys

import pytest

from conftest import REPO_ROOT
from extism_fast.cli import build_parser

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


@pytest.fixture(scope="module")
def script(tmp_path_factory) -> str:
    """The script as the command prints it (a real subprocess, as users run it)."""
    proc = subprocess.run([sys.executable, "-m", "extism_fast", "completion", "bash"], capture_output=True,
                          text=True, cwd=REPO_ROOT, timeout=60, env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)))
    assert (proc.returncode, proc.stderr) == (0, "")
    path = tmp_path_factory.mktemp("completion") / "extism-fast.bash"
    path.write_text(proc.stdout)
    return str(path)


def complete(script: str, *lines: str, cwd=None) -> list[list[str]]:
    """What completing each command line (words split on spaces; a trailing space starts an empty
    word) proposes, all in one bash."""
    body = [f"source {script}"]
    for line in lines:
        words = " ".join(f"'{word}'" for word in line.split(" "))
        body.append(f"COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); COMPREPLY=(); "
                    f"_extism_fast; printf '%s\\n' \"${{COMPREPLY[*]}}\"")
    proc = subprocess.run(["bash", "--norc", "--noprofile", "-c", "\n".join(body)], capture_output=True,
                          text=True, cwd=cwd, timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.split("\n")[:-1]
    assert len(out) == len(lines), (out, proc.stderr)
    return [sorted(reply.split()) for reply in out]


def test_subcommands_and_flags(script):
    assert complete(script, "extism-fast ca", "extism-fast call --ti", "extism-fast ", "extism-fast --ver",
                    "extism-fast batch --no-p", "extism-fast completion ", "extism-fast call --log-level w") == [
        ["call"], ["--timeout"], ["batch", "call", "completion"], ["--verbose", "--version"],
        ["--no-progress"], ["bash"], ["warn", "warning"]]


def test_files_for_plugins_and_file_values_only(script, tmp_path):
    (tmp_path / "plugin.wat").write_text("")
    (tmp_path / "plugin.wasm").write_text("")
    (tmp_path / "inputs.jsonl").write_text("")
    assert complete(script, "extism-fast call plu", "extism-fast call plugin.wat ",
                    "extism-fast call -t 5 plugin.wat count --input-file in", "extism-fast call --timeout ",
                    "extism-fast batch plugin.wat f -o ", "extism-fast call --timeout 5 plug",
                    cwd=tmp_path) == [
        ["plugin.wasm", "plugin.wat"], [], ["inputs.jsonl"], [],
        ["inputs.jsonl", "plugin.wasm", "plugin.wat"], ["plugin.wasm", "plugin.wat"]]


def _subparsers(parser: argparse.ArgumentParser) -> dict:
    return next(a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction))


def test_every_flag_of_the_parser_is_completed(script):
    """Made from the parser: every flag --help shows, and none it hides (the official flags it
    refuses), for the command and each subcommand."""
    parser = build_parser()
    cases = {"": parser, **_subparsers(parser)}
    lines, expected = [], []
    for name, sub in cases.items():
        shown = sorted(flag for action in sub._actions if action.help != argparse.SUPPRESS
                       for flag in action.option_strings)
        lines.append(f"extism-fast {name} -".replace("  ", " "))
        expected.append(shown)
    got = complete(script, *lines)
    assert got == expected
    assert "--github-token" not in got[0] and "--github-token" not in got[1]
    assert all(flag in got[1] for flag in ("--json", "--timeout", "--log-level", "--link"))


def test_other_shells_are_a_usage_error(capsys):
    from extism_fast.cli import main

    assert main(["completion", "zsh"]) == 2
    assert "invalid choice: 'zsh'" in capsys.readouterr().err


def test_the_call_path_does_not_import_the_completion_module():
    code = ("import sys; from extism_fast.cli import build_parser; build_parser().parse_args(['call', 'p', 'f']); "
            "print('extism_fast.cli.completion' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, timeout=60)
    assert (proc.stdout, proc.stderr) == ("False\n", "")
