"""Fuzz target ``cli``: the ``extism-fast`` argument parser and ``batch`` input lines, in process.

The first input byte picks what the rest is:

* 0-2: command-line arguments separated by NUL bytes (decoded as the OS would hand them over,
  with ``surrogateescape``), after nothing (0), ``call PLUGIN f`` (1) or ``batch PLUGIN f -f IN
  -o OUT`` (2), where PLUGIN is a real plugin and, with ``--manifest``, a real manifest file. They
  go through the parser (``cli.build_parser().parse_args``) and, when that accepts them, through
  ``cli_options.build_manifest``. Allowed: ``cli.UsageError`` (exit 2), ``SystemExit`` from
  ``--help``/``--version``, and :class:`extism_fast.Error` from the manifest.
* 3: ``batch`` input lines separated by newlines: every line through ``cli_batch.parse_item``
  (as bytes and, when UTF-8, as text) gives bytes or raises ``cli_batch.InputError``, and its
  output record (``format_result``) is one line of valid JSON that gives those bytes back.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import pathlib
import tempfile

import extism_fast
from extism_fast import cli, cli_batch, cli_options

_ROOT = pathlib.Path(__file__).resolve().parent.parent
_PLUGIN = str(_ROOT / "examples" / "count_vowels.wat")
_DIR = tempfile.mkdtemp(prefix="extism_fast_fuzz_cli_")
_MANIFEST = str(pathlib.Path(_DIR) / "manifest.json")
pathlib.Path(_MANIFEST).write_text(json.dumps({"wasm": [{"path": _PLUGIN}], "config": {"a": "b"}}))
_PARSER = cli.build_parser()


def _argv(mode: int, payload: bytes) -> list[str]:
    args = [a.decode("utf-8", "surrogateescape") for a in payload.split(b"\0")] if payload else []
    # With --manifest PLUGIN must be the manifest file: the second word decides which file.
    plugin = _MANIFEST if "--manifest" in args or "-m" in args else _PLUGIN
    if mode == 1:
        return ["call", plugin, "count_vowels", *args]
    if mode == 2:
        return ["batch", plugin, "count_vowels", "-f", "in.jsonl", "-o", "out.jsonl", *args]
    return args


def _parse_and_build(argv: list[str]) -> None:
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        try:
            args = _PARSER.parse_args(argv)
        except (cli.UsageError, SystemExit):
            return
    try:
        cli_options.build_manifest(args)
    except extism_fast.Error:
        pass


def _check_line(index: int, line: bytes | str) -> None:
    try:
        item: object = cli_batch.parse_item(line)
    except cli_batch.InputError as exc:
        item = exc
    record = json.loads(cli_batch.format_result(index, item))
    if record["index"] != index:
        raise AssertionError(f"record {record!r} has the wrong index")
    if isinstance(item, bytes):
        got = record["output"].encode() if "output" in record else base64.b64decode(record["output_base64"])
        if got != item:
            raise AssertionError(f"the record {record!r} does not give back {item!r}")
    elif record.get("type") != "InputError":
        raise AssertionError(f"a bad line gave {record!r}")


def test_one_input(data: bytes) -> None:
    """The atheris entry point."""
    if not data:
        return
    mode, payload = data[0] % 4, data[1:]
    if mode < 3:
        _parse_and_build(_argv(mode, payload))
        return
    for index, line in enumerate(payload.split(b"\n")):
        _check_line(index, line)
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            continue
        _check_line(index, text)


def seeds() -> list[bytes]:
    """Every option with good and bad values, and every form of batch line."""
    arg_sets = [
        [b"--config", b"k=v", b"-c", b"a=", b"--timeout", b"10", b"--max-pages", b"5", b"--wasi"],
        [b"--allow-path", b"ro:/tmp:/data", b"--allow-path", b"/x", b"--allow-host", b"*.example.com"],
        [b"--manifest", b"--log-level", b"debug", b"--strict", b"--config", b"x=\xff"],
        [b"--timeout", b"-1", b"--max-pages", b"99999999999999999999999", b"--workers", b"0"],
        [b"--workers", b"4", b"--chunk-size", b"16", b"--progress"],
        [b"-i", b"text", b"--input-file", b"x"],
        [b"--help"],
        [b"--version"],
    ]
    out = [bytes([mode]) + b"\0".join(args) for args in arg_sets for mode in (0, 1, 2)]
    out.append(b"\x00call\0" + _PLUGIN.encode() + b"\0f\0--timeout\0+7")
    lines = [b'"Hello World"', b'{"text": "a\\u00e9"}', b'{"base64": "AP/+"}', b"", b"[1]",
             b'{"base64": "!"}', b'"\\ud800"', b"\xef\xbb\xbf\"bom\"", b"\xff", b'{"text": 5}']
    out.append(b"\x03" + b"\n".join(lines))
    return out
