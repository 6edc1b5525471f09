"""Bad input to the ``extism-fast`` command: every case is one ``extism-fast: error: ...`` line on
stderr and a non-zero status, never a traceback; config values never appear in the message.

The cases a user hits most run through a real ``python -m extism_fast`` subprocess (bytes that are
not UTF-8 reach argv as they do from a shell); the rest run ``main(argv)`` in-process, which is
cheaper and the same code.
"""

from __future__ import annotations

import argparse
import json
import os

import pytest

import extism_fast
from extism_fast import cli_options
from extism_fast.pool import MAX_POOL_SIZE

from test_cli import COUNT_VOWELS_WAT, _cli, _one_error_line

HUGE = "9" * 30
ENORMOUS = "9" * 5000  # past int()'s default digit limit
CALL = ["call", COUNT_VOWELS_WAT, "count_vowels"]
BATCH = ["batch", COUNT_VOWELS_WAT, "count_vowels", "-f", "-", "-o", "-"]


@pytest.fixture
def run(cli_run):
    return cli_run


# ---- option values (usage errors, status 2) ----


@pytest.mark.parametrize(
    "argv, needle",
    [
        (CALL + ["--timeout", HUGE], f"--timeout must be at most {cli_options.MAX_TIMEOUT_MS}"),
        (CALL + ["--timeout", ENORMOUS], f"--timeout must be at most {cli_options.MAX_TIMEOUT_MS}"),
        (CALL + ["--timeout", "-" + ENORMOUS], "--timeout must not be negative"),
        (CALL + ["--timeout", "1_000"], "--timeout must be an integer"),
        (CALL + ["--timeout", "\u0663"], "--timeout must be an integer"),  # an Arabic-Indic 3
        (CALL + ["--max-pages", HUGE], f"--max-pages must be at most {cli_options.MAX_PAGES}"),
        (CALL + ["--max-pages", str(2**32)], "--max-pages must be at most 4294967295"),
        (BATCH + ["--workers", HUGE], f"--workers must be at most {MAX_POOL_SIZE}"),
        (BATCH + ["--workers", "0"], "--workers must be positive"),
        (BATCH + ["--chunk-size", "-1"], "--chunk-size must be positive"),
        (BATCH + ["--chunk-size", "x"], "--chunk-size must be an integer"),
        (CALL + ["--allow-path", "/tmp\0:/x"], "--allow-path must not contain a NUL character"),
        (CALL + ["--config", "k=\udcff"], "--config value of 'k' is not valid UTF-8"),
        (CALL + ["--config", "\udcff=v"], "--config KEY is not valid UTF-8"),
        # Python 3.11's argparse turned a value of exactly "--" into an empty list (found by fuzz/cli.py).
        (CALL + ["-c--"], "argument -c/--config: expected one argument, got '--'"),
        (BATCH + ["--config=--"], "argument -c/--config: expected one argument, got '--'"),
        (CALL + ["--link=--"], "argument --link: expected one argument, got '--'"),
    ],
)
def test_bad_option_values_are_usage_errors(run, argv, needle):
    status, out, err = run(*argv)
    assert (status, out) == (2, b"")
    line = _one_error_line(err, needle)
    assert len(line) < 300  # a huge argument is not echoed in full


def test_the_option_limits_are_the_manifests():
    """cli/options.py spells U64_MAX out (importing it would load the manifest classes for --help),
    and the pool's bound is the one PluginPool checks."""
    from extism_fast.manifest import U64_MAX
    from extism_fast.scale import pool

    assert cli_options.U64_MAX == U64_MAX
    assert MAX_POOL_SIZE == pool.MAX_POOL_SIZE


def test_timeout_and_max_pages_at_their_limits_work(run):
    status, out, err = run(*CALL, "-i", "aa", "--timeout", str(cli_options.MAX_TIMEOUT_MS),
                           "--max-pages", str(cli_options.MAX_PAGES))
    assert (status, out, err) == (0, b'{"count": 2}', "")


@pytest.mark.parametrize("arg", ["=SECRET", "=SECRET=x"])
def test_bad_config_syntax_does_not_echo_the_argument(run, arg):
    status, _, err = run(*CALL, "--config", arg)
    assert status == 2
    _one_error_line(err, "--config expects KEY=VALUE")
    assert "SECRET" not in err


def test_config_value_not_utf8_is_not_shown(run):
    status, _, err = run(*CALL, "--config", "token=SECRET\udcff")
    assert status == 2
    _one_error_line(err, "'token'")
    assert "SECRET" not in err


# ---- files (status 1) ----


def _manifest(tmp_path, text: str):
    path = tmp_path / "manifest.json"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "text, needle",
    [
        ('{"wasm": [{"path": "plugin\\u0000.wasm"}]}', "manifest.wasm[0].path must not contain a NUL"),
        ('{"wasm": [{"path": "%s"}], "timeout_ms": %s}' % (COUNT_VOWELS_WAT, HUGE),
         f"manifest.timeout_ms must be at most {cli_options.MAX_TIMEOUT_MS}"),
        ('{"wasm": [{"path": "%s"}], "memory": {"max_pages": %s}}' % (COUNT_VOWELS_WAT, HUGE),
         f"manifest.memory.max_pages must be an integer from 0 to {cli_options.MAX_PAGES}"),
        ('{"wasm": [{"path": "%s"}], "config": {"k": "SECRET\\ud800"}}' % COUNT_VOWELS_WAT,
         "manifest.config['k'] must be valid Unicode text"),
        ('{"wasm": [{"path": "%s"}], "allowed_paths": {"/tmp\\u0000": "/x"}}' % COUNT_VOWELS_WAT,
         "manifest.allowed_paths key '/tmp\\x00' must not contain a NUL"),
        ("{not json", "invalid JSON"),
        ("", "manifest.wasm is required"),  # an empty TOML document
        ("not = [valid", "not a JSON object, and invalid TOML"),
    ],
)
def test_bad_manifest_files(run, tmp_path, text, needle):
    for command in (CALL, BATCH):
        status, out, err = run(command[0], "--manifest", _manifest(tmp_path, text), *command[2:])
        assert (status, out) == (1, b"")
        _one_error_line(err, needle)
        assert "SECRET" not in err


def test_unexpected_exception_is_one_line(run, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug\nsecond line")

    monkeypatch.setattr(extism_fast, "Plugin", broken)
    status, out, err = run(*CALL, "-i", "a")
    assert (status, out) == (1, b"")
    _one_error_line(err, "unexpected RuntimeError: a bug")


# ---- as a user runs it ----


@pytest.mark.parametrize(
    "argv, status, needle",
    [
        # the byte 0xff, as a shell passes it (fsdecode: what subprocess encodes back to it)
        ([*CALL, "--config", os.fsdecode(b"k=\xff")], 2, "--config value of 'k' is not valid UTF-8"),
        ([*BATCH, "--workers", HUGE], 2, "--workers must be at most"),
        ([*CALL, "--input-file", "tests"], 1, "cannot read input file 'tests'"),
        (["call", "--manifest", "README.md", "f"], 1, "not a JSON object, and invalid TOML"),
    ],
)
def test_subprocess_bad_input_is_one_line(argv, status, needle):
    proc = _cli(*argv)
    assert (proc.returncode, proc.stdout) == (status, b"")
    _one_error_line(proc.stderr.decode("utf-8", "replace"), needle)


def test_subprocess_batch_bad_lines_become_error_records():
    lines = [
        b'"ae"',                  # 0 ok
        b"{not json",             # 1 invalid JSON
        b'"io"',                  # 2 ok
        b"[1, 2]",                # 3 wrong shape
        b'{"base64": "%%%"}',     # 4 bad base64
        b'"\xff\xfe"',            # 5 not UTF-8
        b'{"base64": "YWE="}',    # 6 ok: "aa"
    ]
    proc = _cli(*BATCH, "--workers", "2", stdin=b"\n".join(lines) + b"\n")
    assert proc.returncode == 1  # some item failed
    err = proc.stderr.decode()
    assert "Traceback" not in err
    assert err.splitlines()[-1].startswith("7 items, 4 errors, ")
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["index"] for r in records] == list(range(7))
    assert records[0] == {"index": 0, "output": '{"count": 2}'}
    assert records[2] == {"index": 2, "output": '{"count": 2}'}
    assert records[6] == {"index": 6, "output": '{"count": 2}'}
    for i, needle in [(1, "invalid JSON"), (3, "got an array"), (4, "invalid base64"), (5, "UTF-8")]:
        assert set(records[i]) == {"index", "error", "type"}
        assert records[i]["type"] == "InputError"
        assert needle in records[i]["error"], records[i]


@pytest.mark.parametrize(
    "argv, needle",
    [
        ([*CALL, "--input-file", "in\0put"], "cannot read input file 'in\\x00put'"),
        ([*CALL, "--input-file", "missing.txt"], "cannot read input file 'missing.txt'"),
        (["batch", COUNT_VOWELS_WAT, "count_vowels", "-f", "in\0put", "-o", "-"],
         "cannot read input file 'in\\x00put'"),
        (["batch", COUNT_VOWELS_WAT, "count_vowels", "-f", "-", "-o", "out\0put"],
         "cannot write output file 'out\\x00put'"),
    ],
)
def test_unusable_file_paths(run, tmp_path, monkeypatch, argv, needle):
    monkeypatch.chdir(tmp_path)
    status, out, err = run(*argv)
    assert (status, out) == (1, b"")
    _one_error_line(err, needle)


# ---- errors that say what to do next ----


@pytest.mark.parametrize("argv", [CALL + ["-i", "x"], BATCH])
def test_wrong_function_name_suggests_the_export(run, argv):
    argv = [a if a != "count_vowels" else "count_vowel" for a in argv]
    status, out, err = run(*argv)
    assert (status, out) == (1, b"")
    _one_error_line(err, "plugin has no function named 'count_vowel'; did you mean 'count_vowels'?",
                    "its callable exports: 'count_vowels'")


@pytest.mark.parametrize(
    "argv, needle",
    [
        (CALL + ["--timeuot", "5"], "unrecognized arguments: --timeuot 5; did you mean --timeout?"),
        (CALL + ["--timeuot=5"], "did you mean --timeout?"),
        (BATCH + ["--progres"], "did you mean --progress?"),
        (["--verbos", *CALL], "did you mean --verbose?"),
        # No prefix abbreviations: a future flag must not change what an old command line means.
        (CALL + ["--time", "5"], "unrecognized arguments: --time 5; did you mean --timeout?"),
        (BATCH + ["--work", "2"], "unrecognized arguments: --work 2"),
        (CALL + ["--zzzzzz"], "unrecognized arguments: --zzzzzz (see"),
    ],
)
def test_flag_typos_suggest_the_closest_flag(run, argv, needle):
    status, out, err = run(*argv)
    assert (status, out) == (2, b"")
    _one_error_line(err, needle)


def test_every_parser_refuses_abbreviations():
    from extism_fast.cli import build_parser

    parser = build_parser()
    subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    parsers = [parser, *(p for a in subparsers for p in a.choices.values())]
    assert len(parsers) == 4 and all(p.allow_abbrev is False for p in parsers)  # call, batch, completion


@pytest.mark.parametrize("name, text, kind", [
    ("m.json", '{"wasm": [{"path": "%s"}]}', "JSON"),
    ("plugin.wasm", '  {"wasm": [{"path": "%s"}]}', "JSON"),  # the content decides, not the name
    ("m.toml", '# a manifest\n[[wasm]]\npath = "%s"\n', "TOML"),
    ("m.txt", 'timeout_ms = 100\nwasm = [{ path = "%s" }]\n', "TOML"),
])
@pytest.mark.parametrize("command", [CALL[:1] + ["-i", "x"], BATCH[:1] + ["-f", "-", "-o", "-"]])
def test_manifest_without_the_manifest_flag_says_to_add_it(run, tmp_path, name, text, kind, command):
    path = tmp_path / name
    path.write_text(text % COUNT_VOWELS_WAT.replace("\\", "/"))
    status, out, err = run(command[0], path, "count_vowels", *command[1:])
    assert (status, out) == (1, b"")
    _one_error_line(err, f"PLUGIN {str(path)!r} is a {kind} manifest, not a wasm module: add --manifest")
    # What the message says works: the flag, and the API with the same path (or once named *.toml).
    if command[0] == "call":
        assert run(command[0], "--manifest", path, "count_vowels", *command[1:])[:2] == (0, b'{"count": 0}')
    if name == "m.txt":
        assert "in Python, Plugin() takes the same file once named *.toml" in err
        path = path.rename(tmp_path / "m.toml")
    else:
        assert f"in Python, Plugin({str(path)!r}) takes the same file" in err
    with extism_fast.Plugin(str(path)) as plugin:
        assert plugin.call("count_vowels", "aa") == b'{"count": 2}'


def test_a_wat_module_is_not_taken_for_a_manifest(run, tmp_path):
    path = tmp_path / "m.wat"
    path.write_text(";; wasm = a module\n" + open(COUNT_VOWELS_WAT).read())
    assert run("call", path, "count_vowels", "-i", "aa")[:2] == (0, b'{"count": 2}')


@pytest.mark.parametrize("value, kind", [("31337", "a number"), ('["s3cr3t"]', "an array"),
                                         ("true", "a boolean"), ("null", "null"), ('{"s3cr3t": 1}', "an object")])
def test_set_config_value_not_a_string_names_the_key(run, value, kind):
    status, out, err = run(*CALL, "--set-config", f'{{"ok": "s3cr3t", "api_key": {value}}}')
    assert (status, out) == (2, b"")
    line = _one_error_line(err, f"--set-config value of 'api_key' must be a JSON string, got {kind} (quote it)")
    assert "s3cr3t" not in line and "31337" not in line


def test_config_value_not_a_string_in_a_manifest_file_names_the_key(run, tmp_path):
    path = tmp_path / "m.toml"
    path.write_text(f'[[wasm]]\npath = "{COUNT_VOWELS_WAT}"\n[config]\napi_key = 31337\n')
    status, out, err = run("call", "--manifest", path, "count_vowels")
    assert (status, out) == (1, b"")
    line = _one_error_line(err, "manifest.config['api_key'] must be a string, got a value of type int")
    assert "31337" not in line
