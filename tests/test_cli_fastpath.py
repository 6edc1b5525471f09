"""The command lines ``extism-fast`` parses without argparse (extism_fast/cli/fastpath.py and
helptext.py): the top-level ``--help`` is argparse's text at every width, and a ``call`` gets
argparse's Namespace (every attribute, every default, in argparse's order), or falls back to argparse
for whatever the fast path does not take. tests/test_cold_start.py checks that neither loads argparse.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import textwrap

import pytest

from conftest import REPO_ROOT
from extism_fast import cli
from extism_fast.cli import fastpath, helptext
from extism_fast.cli.options import UNSUPPORTED_OFFICIAL_FLAGS, UsageError
from extism_fast.cli.parser import build_parser

CALL = ["call", "plugin.wasm", "count_vowels"]


def _call_parser() -> argparse.ArgumentParser:
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return commands.choices["call"]


def _argparse(argv: list[str]) -> list[tuple]:
    """argparse's Namespace for ``argv``, as (attribute, value) pairs in its order."""
    return list(vars(build_parser(lazy=True).parse_args(argv)).items())


def _fast(argv: list[str]) -> list[tuple] | None:
    args = fastpath.parse_call(argv)
    return None if args is None else list(vars(args).items())


# -- the top-level help ------------------------------------------------------------------------------


@pytest.mark.skipif(sys.version_info[:2] not in helptext.LAYOUT_VERSIONS,
                    reason="argparse lays the help out otherwise: the fast path leaves it to argparse")
def test_the_help_is_argparses_at_every_width(monkeypatch, capsys):
    """main(["--help"]) prints, without argparse, what argparse prints, for every terminal width
    (argparse's own minimum widths included: its lines never go below 11 columns)."""
    assert helptext.top_help() is not None  # the fast path is taken
    for columns in range(1, 251):
        monkeypatch.setenv("COLUMNS", str(columns))
        for flag in ("--help", "-h"):
            assert cli.main([flag]) == 0
            assert capsys.readouterr().out == build_parser(lazy=True).format_help(), columns


def test_the_help_falls_back_to_argparse_where_it_cannot_be_exact(monkeypatch, capsys, tmp_path):
    """On a Python whose argparse lays the help out otherwise, or with a gettext catalog that may
    translate argparse's words, main prints argparse's help."""
    monkeypatch.setenv("COLUMNS", "70")
    expected = build_parser(lazy=True).format_help()
    monkeypatch.setattr(helptext, "LAYOUT_VERSIONS", ())
    assert helptext.top_help() is None
    assert cli.main(["--help"]) == 0 and capsys.readouterr().out == expected
    monkeypatch.undo()
    catalog = tmp_path / "share" / "locale" / "xx" / "LC_MESSAGES"
    catalog.mkdir(parents=True)
    monkeypatch.setattr(sys, "base_prefix", str(tmp_path))
    assert helptext.top_help() is not None or sys.version_info[:2] not in helptext.LAYOUT_VERSIONS
    (catalog / "messages.mo").write_bytes(b"")
    assert helptext.top_help() is None


def test_the_help_without_stdout_goes_where_argparses_goes(monkeypatch, capsys):
    """No stdout: stderr, as argparse's print_help; a failed write is ignored; the status is 0."""
    monkeypatch.setenv("COLUMNS", "90")
    expected = build_parser(lazy=True).format_help()
    monkeypatch.setattr(sys, "stdout", None)
    assert cli.main(["--help"]) == 0
    assert capsys.readouterr().err == expected

    class Closed:
        def write(self, text):
            raise OSError("closed")

    monkeypatch.setattr(sys, "stdout", Closed())
    assert cli.main(["--help"]) == 0


def test_the_help_texts_are_the_parsers():
    """The texts the fast help lays out are the argparse parser's (one place: helptext.py)."""
    parser = build_parser(lazy=True)
    assert (parser.description, parser.epilog) == (helptext.DESCRIPTION, helptext.EPILOG)
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert {a.dest: a.help for a in commands._choices_actions} == helptext.COMMANDS
    assert commands.metavar == helptext.COMMAND_METAVAR
    shown = [(tuple(a.option_strings), a.help) for a in parser._actions
             if a.option_strings and a.help != argparse.SUPPRESS]
    assert shown == list(helptext._OPTIONS)


def test_the_help_in_a_fresh_process(tmp_path):
    """The console script's --help under ``python -S``: argparse's text (argparse run apart)."""
    env = dict(os.environ, COLUMNS="61", PYTHONPATH=str(REPO_ROOT))
    code = "import sys; from extism_fast.cli import main; sys.exit(main())"
    fast = subprocess.run([sys.executable, "-c", code, "--help"], env=env, capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)
    full = subprocess.run([sys.executable, "-c", "from extism_fast.cli import build_parser; "
                           "build_parser().parse_args(['--help'])"], env=env, capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)
    assert fast.returncode == full.returncode == 0, fast.stderr + full.stderr
    assert fast.stdout == full.stdout and fast.stdout.startswith("usage: extism-fast")


_TRICKY_TEXTS = [
    "Look, goof-ball -- use the -b option!", "a--b", "--a", "x --y", "ab-cd-ef", "a-b-cd", "ab--", "é-éé",
    "1-2-3", "ab-1c", "it's-ok", "a_b-cd", "extism-fast's", "'extism-fast", "x\xa0y-zz", "---", "a-" * 30,
    "word" * 20, "tab\tand\nnewline  runs", "  leading and trailing  ", "\xa0edge\xa0",
]


@pytest.mark.parametrize("text", _TRICKY_TEXTS)
def test_the_wrap_is_textwraps(text):
    """helptext's textwrap: argparse's collapsed text wrapped as textwrap.wrap wraps it."""
    collapsed = " ".join(part for part in text.translate({ord(c): " " for c in "\t\n\x0b\x0c\r"}).split(" ")
                         if part).strip()
    assert helptext._chunks(collapsed) == textwrap.TextWrapper()._split(collapsed)
    for width in range(1, 40):
        assert helptext._wrap(text, width) == argparse.HelpFormatter("p")._split_lines(text, width), width


def test_the_wrap_is_textwraps_on_random_texts():
    rng = random.Random(22)
    alphabet = "ab -.,'!_1é2Z\xa0?&--\t"
    for _ in range(5000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40)))
        width = rng.randint(1, 16)
        assert helptext._wrap(text, width) == argparse.HelpFormatter("p")._split_lines(text, width), (text, width)


# -- call: the Namespace -----------------------------------------------------------------------------


def test_the_defaults_are_argparses_for_every_attribute():
    """Every attribute argparse sets for a bare call, with its default, in its order: an option
    added to the parser and not to fastpath.CALL_OPTIONS fails here."""
    assert _fast(CALL) == _argparse(CALL)
    assert list(fastpath.defaults()) == [name for name, _ in _argparse(CALL)]
    assert fastpath.defaults()["link"] is not fastpath.defaults()["link"]  # a list of its own each time


def test_each_option_is_the_parsers():
    """fastpath.CALL_OPTIONS is the call parser's options (strings, action, type object, default)
    in its order, with the same exclusive groups; the top level's only shown flag before `call` is
    -v."""
    parser = _call_parser()
    kinds = {argparse._StoreAction: "store", argparse._StoreTrueAction: "store_true",
             argparse._AppendAction: "append"}
    hidden = {flag for flags in UNSUPPORTED_OFFICIAL_FLAGS for flag in flags}
    options = [a for a in parser._actions
               if a.option_strings and not isinstance(a, argparse._HelpAction) and not hidden & set(a.option_strings)]
    expected = [(tuple(a.option_strings), kinds[type(a)], a.type,
                 None if a.default is argparse.SUPPRESS else a.default, a.dest) for a in options]
    assert [(*entry, fastpath.dest(entry[0])) for entry in fastpath.CALL_OPTIONS] == expected
    assert [a.dest for a in parser._actions if not a.option_strings] == list(fastpath.POSITIONALS)
    groups = [tuple(a.dest for a in group._group_actions) for group in parser._mutually_exclusive_groups]
    assert groups == list(fastpath.EXCLUSIVE)
    top = build_parser(lazy=True)
    assert [a.dest for a in top._actions if set(a.option_strings) == set(fastpath.TOP_FLAGS)] == ["verbose"]


#: Command lines the fast path parses: (argv after CALL's positionals).
PARSED = [
    [], ["-i", "Hello, World!"], ["--input", "x"], ["--input=a=b"], ["--input="], ["-i", ""], ["-i", "-"],
    ["-f", "in.txt"], ["--input-file", "-"], ["--input-file=-"], ["--stdin"], ["--json"], ["--loop", "3"],
    ["--loop=0"], ["--loop", "+7"], ["--loop", "007"], ["-v"], ["--verbose", "--verbose"], ["--wasi", "--strict"],
    ["-m"], ["--manifest"], ["-c", "a=b", "--config", "c", "-c", "a=z"], ["--config=k=v"],
    ["--set-config", '{"a": "b"}'], ["--allow-host", "*.example.com", "--allow-host=x.org"],
    ["--allow-path", "ro:/tmp:/data"], ["--link", "env=lib.wasm", "--link", "other.wasm"],
    ["-t", "100"], ["--timeout", "0"], ["--memory-max", "4"], ["--max-pages=2"], ["--var-max", "0"],
    ["--http-response-max", "18446744073709551615"], ["--fuel", "1000"], ["--log-level", "INFO"],
    ["--enable-http-response-headers"], ["--loop", "2", "--loop", "5"], ["-i", "a", "-i", "b"],
    ["--json", "-i", "x", "--loop", "2", "-v", "--wasi", "-c", "k=v", "--timeout=5", "--memory-max", "1"],
]


@pytest.mark.parametrize("tail", PARSED, ids=" ".join)
@pytest.mark.parametrize("top", [[], ["-v"], ["--verbose", "-v"]], ids=" ".join)
def test_a_call_is_parsed_as_argparse_parses_it(top, tail):
    argv = [*top, *CALL, *tail]
    assert _fast(argv) == _argparse(argv)
    # options before, between and after the positionals
    for at in (1, 2):
        moved = [*top, "call", *CALL[1:at], *tail, *CALL[at:]]
        assert _fast(moved) == _argparse(moved), moved


#: Command lines left to argparse, which parses some of them (second item: what argparse does).
DECLINED = [
    (["-i", "-x"], "error"), (["-i", "-5"], "parses"), (["--input=-x"], "parses"), (["-ix"], "parses"), (["-i=x"], "parses"),
    (["-vi", "x"], "parses"), (["--", "-i"], "error"), (["--inp", "x"], "error"), (["--input"], "error"),
    (["--json=1"], "error"), (["--loop", "-1"], "error"), (["--loop", "x"], "error"), (["--loop", "٣"], "error"),
    (["--loop", "1.0"], "error"), (["--fuel", "0"], "error"), (["-c", "=v"], "error"),
    (["--set-config", "[]"], "error"), (["--log-level", "loud"], "error"), (["--link", "main=x.wasm"], "error"),
    (["-i", "a", "--stdin"], "error"), (["-f", "x", "-i", "y"], "error"), (["--max-pages", "1", "--memory-max", "2"], "error"),
    (["extra"], "error"), (["-h"], "exits"), (["--help"], "exits"), (["-q"], "error"), (["--github-token", "t"], "error"),
    (["--bogus"], "error"), (["-x"], "error"),
]


@pytest.mark.parametrize(("tail", "argparse_does"), DECLINED, ids=lambda v: " ".join(v) if isinstance(v, list) else v)
def test_what_the_fast_path_declines_goes_to_argparse(tail, argparse_does):
    argv = [*CALL, *tail]
    assert fastpath.parse_call(argv) is None
    if argparse_does == "parses":
        _argparse(argv)
    else:
        with pytest.raises(SystemExit if argparse_does == "exits" else UsageError):
            _argparse(argv)


@pytest.mark.parametrize("argv", [[], ["call"], ["call", "p"], ["batch", "p", "f"], ["completion", "bash"],
                                  ["--version"], ["-q", "call", "p", "f"], ["--verbose=1", "call", "p", "f"],
                                  ["-v", "-h"], ["--help", "call"], ["-vv", "call", "p", "f"], ["p", "call"]])
def test_other_command_lines_go_to_argparse(argv):
    assert fastpath.parse_call(argv) is None


def _value(rng: random.Random, flags: tuple, convert) -> str:
    """A value the option takes (its type's, when it has one)."""
    values = {
        "--loop": ["0", "1", "3", "+2", "9223372036854775807"], "--timeout": ["0", "5", "18446744073709"],
        "--max-pages": ["0", "16"], "--memory-max": ["0", "16"], "--var-max": ["0", "1024"],
        "--http-response-max": ["1", "99"], "--fuel": ["1", "500"], "--log-level": ["trace", "Warn", "off"],
        "--config": ["a=b", "k", "k=", "x=y=z"], "--set-config": ['{"a": "b"}', "{}"],
        "--allow-path": ["/tmp", "ro:/a:/b", "/h:/g:x"], "--link": ["env=a.wasm", "b.wasm", "https://e.org/c.wasm"],
    }.get(flags[-1], ["text", "", "-", "a b", "=", "é", "call"])
    return rng.choice(values)


def test_generated_command_lines_are_parsed_as_argparse_parses_them():
    """Random mixes of call's options, in both value forms, anywhere among the positionals: the
    fast path takes each one without an exclusive-group conflict, as argparse parses it, and leaves
    each conflict to argparse (its error)."""
    rng = random.Random(2022)
    parsed = declined = 0
    for _ in range(3000):
        args: list[str] = []
        for flags, action, convert, _default in rng.sample(fastpath.CALL_OPTIONS, rng.randint(0, 5)):
            for _ in range(rng.choice([1, 1, 2])):
                flag = rng.choice(flags)
                if action == "store_true":
                    args.append(flag)
                elif flag.startswith("--") and rng.random() < 0.5:
                    args.append(f"{flag}={_value(rng, flags, convert)}")
                else:
                    args += [flag, _value(rng, flags, convert)]
        option_starts = [i for i, arg in enumerate(args) if arg.startswith("-") and arg != "-"]
        cuts = sorted(rng.choice(option_starts + [len(args)]) for _ in range(2))  # not between flag and value
        argv = (["-v"] if rng.random() < 0.3 else []) + ["call"] + args[:cuts[0]] + ["p.wasm"] + \
            args[cuts[0]:cuts[1]] + ["fn"] + args[cuts[1]:]
        given = {fastpath.dest(f) for f, *_ in fastpath.CALL_OPTIONS if set(f) & set(a.partition("=")[0] for a in args)}
        conflict = any(len(given & set(group)) > 1 for group in fastpath.EXCLUSIVE)
        fast = _fast(argv)
        if conflict:
            assert fast is None, argv
            with pytest.raises(UsageError, match="not allowed with argument"):
                _argparse(argv)
            declined += 1
        else:
            assert fast is not None and fast == _argparse(argv), argv
            parsed += 1
    assert parsed > 2000 and declined > 100


# -- main: which parser, and what _call gets ----------------------------------------------------------


@pytest.mark.parametrize("argv", [[*CALL, "-i", "x", "--loop", "2"], ["-v", *CALL, "--json"],
                                  [*CALL, "--input=-x"], [*CALL, "-ix", "--wasi"]])
def test_main_hands_call_argparses_namespace(argv, monkeypatch):
    """main() gives _call the fast path's namespace, or argparse's for what the fast path declines
    (`--input=-x`, `-ix`): the same attributes and values either way."""
    seen = []
    monkeypatch.setattr(cli, "_call", lambda args: seen.append(list(vars(args).items())) or 0)
    assert cli.main(argv) == 0
    assert seen == [_argparse(argv)]


def test_errors_are_argparses(cli_run):
    """A command line the fast path declines fails with argparse's message and status 2."""
    status, out, err = cli_run(*CALL, "--loop", "x")
    assert (status, out) == (2, b"")
    assert err == ("extism-fast: error: argument --loop: --loop must be an integer, got 'x' "
                   "(see 'extism-fast call --help')\n")
    status, _, err = cli_run(*CALL, "-i", "a", "--stdin")
    assert status == 2 and "not allowed with argument" in err
