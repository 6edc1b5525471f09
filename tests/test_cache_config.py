"""``EXTISM_CACHE_CONFIG``'s file read without tomllib (runtime/compile_cache.py ``_simple_toml``):
differentially against tomllib, for hand-picked edge cases and thousands of generated files. The
reader must decline (None) whatever tomllib rejects, and whatever it accepts must be exactly
tomllib's parse; end to end, ``_official_cache_config()`` must give what it gave when tomllib read
every file (``_tomllib_cache_config`` below: that function as it was)."""

from __future__ import annotations

import os
import random
import tomllib

import pytest

from extism_fast.errors import Error
from extism_fast.runtime.compile_cache import _official_cache_config, _simple_toml

#: What ``wasmtime config new`` writes, and files with every key wasmtime's cache documentation
#: (docs/cli-cache.md) lists, as users of the official SDK write them: all on the fast reader.
REALISTIC = [
    "# Comment out certain settings to use default values.\n# For more settings, please refer to the "
    "documentation:\n# https://bytecodealliance.github.io/wasmtime/cli-cache.html\n\n[cache]\nenabled = true\n",
    '[cache]\ndirectory = "/nfs-share/wasmtime-cache/"\ncleanup-interval = "30m"\nfiles-total-size-soft-limit = "1Gi"\n',
    '[cache]\nenabled = true\ndirectory = "/some/dir"\ncleanup-interval = "1d"\n',
    "[cache]\r\nenabled = false\r\ndirectory = 'C:\\Users\\me\\wasmtime cache'\r\n",
    '[cache]\nenabled = true\ndirectory = "/var/cache/wasmtime"\nworker-event-queue-size = "16"\n'
    "baseline-compression-level = 3\noptimized-compression-level = 20\n"
    'optimized-compression-usage-counter-threshold = "256"\ncleanup-interval = "1h"\n'
    'optimizing-compression-task-timeout = "30m"\nallowed-clock-drift-for-files-from-future = "1d"\n'
    'file-count-soft-limit = "65536"\nfiles-total-size-soft-limit = "512Mi"\n'
    'file-count-limit-percent-if-deleting = "70%"\nfiles-total-size-limit-percent-if-deleting = "70%"\n',
    '  [ cache ]  # indented, spaced\n\tenabled=true# no space\n  directory\t=\t"/d#not a comment" \t\n',
    "",
    "# only a comment, no [cache]\n",
]

#: Edge cases, each either declined or read exactly as tomllib reads it (most are declined).
EDGE = [
    "cache = 1\n", "cache = {enabled = false}\n", 'cache = "x"\n', "[cache]\nenabled = 'yes'\n",
    "[cache]\ndirectory = 1\n", "[cache]\ndirectory = true\n", "not toml [", "[cache]\n[cache]\n",
    "[cache]\nenabled = true\nenabled = false\n", "cache = 1\n[cache]\n", "[cache]\ncache = 1\n",
    "[[cache]]\nenabled = true\n", "[cache.x]\n", '["cache"]\nenabled = true\n', "[cache]\n\"enabled\" = false\n",
    "[cache]\ncache.enabled = false\n", "cache.enabled = false\n", '[cache]\ndirectory = "a\\tb"\n',
    '[cache]\ndirectory = "a\\\\b"\n', "[cache]\ndirectory = '''/d'''\n", '[cache]\ndirectory = """/d"""\n',
    '[cache]\ndirectory = ""\n', "[cache]\ndirectory = ''\n", '[cache]\ndirectory = "/d" "/e"\n',
    '[cache]\ndirectory = "/d\n', "[cache]\ndirectory = '/d\n", '[cache]\ndirectory = "/d"x\n',
    '[cache]\ndirectory = "/é/日本/\u2028"\n', '[cache]\ndirectory = "/a\x7fb"\n', "[cache]\ndirectory = '\x01'\n",
    "[cache]\ndirectory = '\t'\n", "# \x7f\n", "# \x0c\n", "# é \u0085\n", "[cache]\r\nenabled = true\r\n",
    "[cache]\renabled = true\n", "[cache]\nenabled = true\r", "\ufeff[cache]\nenabled = true\n",
    "[cache]\nenabled = True\n", "[cache]\nenabled = tru\n", "[cache]\nenabled = true false\n",
    "[cache]\nenabled = truex\n", "[cache]\nenabled =\n", "[cache]\n= true\n", "[cache]\nenabled true\n",
    "[]\n", "[ ]\n", "[cache\n", "[cache]]\n", "[cache] x\n", "[cache]#c\n", "[ca che]\n", "[é]\n",
    "[cache]\nx = 0\n", "[cache]\nx = -0\n", "[cache]\nx = +0\n", "[cache]\nx = 00\n", "[cache]\nx = 01\n",
    "[cache]\nx = 1_000\n", "[cache]\nx = 1__000\n", "[cache]\nx = _1\n", "[cache]\nx = 1_\n", "[cache]\nx = +\n",
    "[cache]\nx = -1_2_3\n", "[cache]\nx = 0x1F\n", "[cache]\nx = 0o7\n", "[cache]\nx = 0b1\n", "[cache]\nx = 1.5\n",
    "[cache]\nx = 1e3\n", "[cache]\nx = inf\n", "[cache]\nx = -nan\n", "[cache]\nx = 1979-05-27\n",
    "[cache]\nx = 07:32:00\n", "[cache]\nx = 1979-05-27T07:32:00Z\n", "[cache]\nx = [1, 2]\n", "[cache]\nx = {}\n",
    "[cache]\nx = 1 2\n", "[cache]\nx = \u0661\n", "[cache]\nx = 1\u00a0\n", "[cache]\n\u00a0x = 1\n",
    "[cache]\nx = " + "9" * 64 + "\n", "[cache]\nx = " + "9" * 65 + "\n", "[cache]\nx = 1" + "0" * 5000 + "\n",
    "[cache]\n1234 = 1\ntrue = false\n-_- = 'x'\n", "[cache]\nx = 1\n[other]\nx = 2\n[cache]\n",
    "a = 1\nb = 'two'\n[cache]\nenabled = false\n[other]\na = 3\n", "[cache]\nx = '#' # '#'\n",
    "[cache]\nx = \"#\"#\n", "x = 1\x00\n", "[cache]\nx = 1 # \x00\n",
]


def _tomllib_cache_config() -> tuple[bool, str | None]:
    """``_official_cache_config()`` as it was, every file parsed by tomllib (the reference)."""
    path = os.environ.get("EXTISM_CACHE_CONFIG")
    if path is None:
        return True, None
    if not path.strip():
        return False, None
    try:
        with open(path, "rb") as f:
            table = tomllib.load(f).get("cache", {})
    except (OSError, ValueError) as exc:
        raise Error(f"EXTISM_CACHE_CONFIG: cannot read the cache configuration {path!r}: {exc}") from None
    enabled = table.get("enabled", True) if isinstance(table, dict) else None
    directory = table.get("directory") if isinstance(table, dict) else None
    if not isinstance(enabled, bool) or not isinstance(directory, (str, type(None))):
        raise Error(f"EXTISM_CACHE_CONFIG: {path!r}: [cache] enabled must be a bool and directory a string")
    return enabled, directory


def _outcome(function) -> object:
    try:
        return function()
    except Error as exc:
        return f"Error: {exc}"


def _tomllib_or_none(data: bytes) -> dict | None:
    try:
        return tomllib.loads(data.decode())
    except ValueError:  # TOMLDecodeError, not UTF-8, int's digit limit
        return None


def _check(data: bytes) -> bool:
    """The reader's result for ``data`` agrees with tomllib's; whether it read it (did not decline)."""
    expected, got = _tomllib_or_none(data), _simple_toml(data)
    if expected is None:
        assert got is None, data
    elif got is not None:  # repr too: True == 1, and the order of keys
        assert got == expected and repr(got) == repr(expected), data
    return got is not None


def test_realistic_files_are_read_without_tomllib_as_tomllib_reads_them():
    for text in REALISTIC:
        assert _check(text.encode()), text


def test_edge_cases_are_declined_or_read_as_tomllib_reads_them():
    read = [text for text in EDGE if _check(text.encode())]
    assert "[cache]\nx = -1_2_3\n" in read and "[cache]\nenabled = 'yes'\n" in read  # not all declined
    assert _check(b"[cache]\ndirectory = '\xff'\n") is False  # not UTF-8: tomllib's error


_KEYS = ["enabled", "directory", "cleanup-interval", "files-total-size-soft-limit", "cache", "x", "1234", "true",
         "a.b", "a . b", '"enabled"', "'directory'", "é", "", "x y", "-_"]
_VALUES = ["true", "false", "True", "tru", "0", "-0", "+0", "00", "01", "1_000", "1__0", "_1", "1_", "+", "-12",
           "9" * 70, "1.5", "1e3", "inf", "nan", "0x1F", "0b1", "1979-05-27", "07:32:00", '""', '"/some/dir"',
           '"a#b"', '"a\\b"', '"a\\nb"', '"a"b"', '"é日本"', '"\t tab"', '"""ml"""', "'lit'", "'a\\b'", "'''ml'''",
           "'a#b'", "[1, 2]", "{ enabled = true }", "[]", "{}", "'open", '"open', '"\x01"', "", '"""', "1 2",
           "true false", '"x" "y"', "\u0661"]
_SEPARATORS = [" = ", "=", "\t=\t", " =", "= ", " : ", " == "]
_TRAILERS = ["", " ", "\t", " # c", "# c", " #", " x", '  # "q" #', "\x7f", " # é", " #\x00"]
_HEADERS = ["[cache]", "[ cache ]", "[\tcache\t]", "[other]", "[cache.x]", "[[cache]]", '["cache"]', "[cache] # c",
            "[cache] x", "[]", "[cache", "[ca che]", "[é]", "[cache]]", "[x]"]
_OTHERS = ["", "   ", "\t", "# c", "  # \"q\" 'q' é", "#\x0c", "=", "= 1", "\ufeff[cache]", "key", "\x00", "\r",
           "cache = 1", "cache = {enabled = false}", "cache = {}", '[cache]\ndirectory = "/d"']


def _line(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.2:
        return rng.choice(_HEADERS) if rng.random() < 0.3 else rng.choice(["[cache]", f"[t{rng.randrange(20)}]"])
    if kind < 0.3:
        return rng.choice(_OTHERS)
    # mostly the forms the reader takes, so that it reads many files, not just declines them
    key = rng.choice(_KEYS) if rng.random() < 0.2 else rng.choice([*_KEYS[:4], f"k{rng.randrange(50)}"])
    value = rng.choice(_VALUES) if rng.random() < 0.3 else rng.choice(['true', 'false', '3', '"/d"', "'/e'"])
    separator = rng.choice(_SEPARATORS) if rng.random() < 0.15 else " = "
    trailer = rng.choice(_TRAILERS) if rng.random() < 0.2 else ""
    return rng.choice(["", " ", "\t"]) + key + separator + value + trailer


def _document(rng: random.Random) -> bytes:
    lines = [_line(rng) for _ in range(rng.randrange(8))]
    text = rng.choice(["\n", "\n", "\r\n"]).join(lines) + rng.choice(["", "\n", "\n", "\r\n"])
    data = text.encode()
    if rng.random() < 0.02:
        data += b"\r"
    if rng.random() < 0.02:
        data = data[:len(data) // 2] + b"\xff" + data[len(data) // 2:]
    return data


def test_generated_files_are_declined_or_read_as_tomllib_reads_them(monkeypatch, tmp_path):
    """A few thousand files of valid and invalid lines mixed, also end to end: the cache's (enabled,
    directory) or its Error's message as when tomllib read the file."""
    rng = random.Random(20261206)
    config = tmp_path / "cache.toml"
    monkeypatch.setenv("EXTISM_CACHE_CONFIG", str(config))
    counts = {"read": 0, "valid, declined": 0, "invalid": 0}
    for _ in range(4000):
        data = _document(rng)
        read = _check(data)
        config.write_bytes(data)
        assert _outcome(_official_cache_config) == _outcome(_tomllib_cache_config), data
        counts["read" if read else "invalid" if _tomllib_or_none(data) is None else "valid, declined"] += 1
    # not vacuous: many files read by the reader, valid ones declined, invalid ones
    assert counts["read"] > 800 and counts["valid, declined"] > 100 and counts["invalid"] > 1000, counts


@pytest.mark.parametrize("text", REALISTIC + EDGE, ids=range(len(REALISTIC + EDGE)))
def test_the_cache_configuration_is_what_tomllib_gave(monkeypatch, tmp_path, text):
    config = tmp_path / "cache.toml"
    config.write_bytes(text.encode())
    monkeypatch.setenv("EXTISM_CACHE_CONFIG", str(config))
    assert _outcome(_official_cache_config) == _outcome(_tomllib_cache_config)
