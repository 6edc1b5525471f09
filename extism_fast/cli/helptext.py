"""``extism-fast --help`` without argparse: the top-level help laid out as argparse's HelpFormatter
and textwrap lay it out, byte for byte, at the same width (tests/test_cli_fastpath.py compares the
two at every width). argparse (with re, enum, gettext and locale) costs ~10 ms of a fresh process,
half of what the help may take.

The top-level parser's texts are here, once: :func:`extism_fast.cli.parser.build_parser` builds the
argparse parser from them, so the two helps cannot say different things. The layout is argparse's of
the Python versions in :data:`LAYOUT_VERSIONS` (argparse's output changes between versions); on
others, or when a gettext catalog could translate argparse's own words, :func:`top_help` returns
None and the caller prints argparse's help.
"""

import os
import sys

from extism_fast.cli.options import PROG

DESCRIPTION = "Run Extism WebAssembly plugins (fast host on wasmtime)."
EPILOG = f"Run '{PROG} call --help' or '{PROG} batch --help' for the options of a command."
#: The subcommands, in the help's order -> their one-line help.
COMMANDS = {
    "call": "call a function of a plugin and write its output to stdout",
    "batch": "call a function once per line of a JSON Lines file, on a pool of instances",
    "completion": "print a shell completion script",
}
COMMAND_METAVAR = "COMMAND"
VERSION_HELP = "show the versions of extism-fast, the Extism runtime it matches and wasmtime"
VERBOSE_HELP = "report the calls per second on stderr at the end"
#: The top-level options the help shows, in the parser's order: (option strings, help); -h is
#: argparse's own (its words as argparse has them, untranslated).
_OPTIONS = ((("-h", "--help"), "show this help message and exit"), (("--version",), VERSION_HELP),
            (("-v", "--verbose"), VERBOSE_HELP))

#: The Python versions whose argparse lays the help out as :func:`format_top_help` does.
LAYOUT_VERSIONS = ((3, 11),)


def terminal_columns() -> int:
    """``shutil.get_terminal_size().columns``: $COLUMNS when a positive integer, else the width of
    the terminal on ``sys.__stdout__``, else 80 (argparse's width, without loading shutil)."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns > 0:
        return columns
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns or 80  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):  # no stdout (None), closed, detached, not a terminal
        return 80


def top_help() -> str | None:
    """The text of ``extism-fast --help`` for this terminal, or None when argparse must make it."""
    if sys.version_info[:2] not in LAYOUT_VERSIONS or _argparse_translated():
        return None
    return format_top_help(terminal_columns())


def _argparse_translated() -> bool:
    """Whether gettext may translate argparse's own words ("usage:", "options"): a catalog of its
    domain ("messages") in the directory its gettext reads, Python's share/locale."""
    localedir = os.path.join(sys.base_prefix, "share", "locale")
    try:
        languages = os.listdir(localedir)
    except OSError:
        return False
    return any(os.path.exists(os.path.join(localedir, lang, "LC_MESSAGES", "messages.mo")) for lang in languages)


# --------------------------------------------------------------------------------------------------
# argparse's HelpFormatter, for this one parser
# --------------------------------------------------------------------------------------------------


def format_top_help(columns: int) -> str:
    """What ``build_parser().format_help()`` is for a terminal ``columns`` wide."""
    width = columns - 2  # argparse's: the terminal's width less 2
    invocations = [", ".join(flags) for flags, _ in _OPTIONS]
    # argparse's widest entry, each measured at the section's indent (2), the commands' too
    longest = max(len(entry) + 2 for entry in [*invocations, COMMAND_METAVAR, *COMMANDS])
    help_position = min(longest + 2, min(24, max(width - 20, 4)))
    commands = [f"  {COMMAND_METAVAR}\n"]
    commands += [_entry(name, help, 4, help_position, width) for name, help in COMMANDS.items()]
    options = [_entry(entry, help, 2, help_position, width) for entry, (_, help) in zip(invocations, _OPTIONS)]
    text = "".join([
        _usage(width), _fill(DESCRIPTION, max(width, 11)) + "\n\n",
        "\npositional arguments:\n", *commands, "\n",
        "\noptions:\n", *options, "\n",
        _fill(EPILOG, max(width, 11)) + "\n\n",
    ])
    while "\n\n\n" in text:  # argparse's long-break rule: no more than one blank line
        text = text.replace("\n\n\n", "\n\n")
    return text.strip("\n") + "\n"


def _usage(width: int) -> str:
    """argparse's usage line, wrapped as its _format_usage wraps it."""
    prefix, prog = "usage: ", PROG
    opt_parts = [f"[{flags[0]}]" for flags, _ in _OPTIONS]
    pos_parts = [COMMAND_METAVAR, "..."]
    usage = " ".join([prog, *opt_parts, *pos_parts])
    if len(prefix) + len(usage) > width:
        if len(prefix) + len(prog) <= 0.75 * width:
            indent = " " * (len(prefix) + len(prog) + 1)
            lines = _usage_lines([prog, *opt_parts], indent, width, prefix) + _usage_lines(pos_parts, indent, width)
        else:
            indent = " " * len(prefix)
            lines = _usage_lines(opt_parts + pos_parts, indent, width)
            if len(lines) > 1:
                lines = _usage_lines(opt_parts, indent, width) + _usage_lines(pos_parts, indent, width)
            lines = [prog, *lines]
        usage = "\n".join(lines)
    return f"{prefix}{usage}\n\n"


def _usage_lines(parts: list[str], indent: str, width: int, prefix: str | None = None) -> list[str]:
    """argparse's get_lines: ``parts`` on lines of at most ``width`` (one part at least each)."""
    lines: list[str] = []
    line: list[str] = []
    line_len = len(prefix if prefix is not None else indent) - 1
    for part in parts:
        if line_len + 1 + len(part) > width and line:
            lines.append(indent + " ".join(line))
            line = []
            line_len = len(indent) - 1
        line.append(part)
        line_len += len(part) + 1
    if line:
        lines.append(indent + " ".join(line))
    if prefix is not None:
        lines[0] = lines[0][len(indent):]
    return lines


def _entry(invocation: str, help: str, indent: int, help_position: int, width: int) -> str:
    """argparse's _format_action: ``invocation`` at ``indent``, its help wrapped at the help
    position (on the same line when the invocation leaves room, else on the next)."""
    action_width = help_position - indent - 2
    if len(invocation) <= action_width:
        first = " " * indent + invocation.ljust(action_width) + "  "
    else:
        first = " " * indent + invocation + "\n" + " " * help_position
    lines = _wrap(help, max(width - help_position, 11))
    return first + lines[0] + "\n" + "".join(" " * help_position + line + "\n" for line in lines[1:])


def _fill(text: str, width: int) -> str:
    return "\n".join(_wrap(text, width))


# --------------------------------------------------------------------------------------------------
# textwrap.wrap, as argparse calls it
# --------------------------------------------------------------------------------------------------

#: re.ASCII's \s (the whitespace argparse makes one space) and textwrap's whitespace, as spaces.
_SPACES = str.maketrans(dict.fromkeys("\t\n\x0b\x0c\r ", " "))


def _wrap(text: str, width: int) -> list[str]:
    """``textwrap.wrap(text, width)`` of argparse's help text (its whitespace runs made one space
    first): chunks as textwrap splits them, hyphenated words broken after a hyphen."""
    chunks = _chunks(" ".join(word for word in text.translate(_SPACES).split(" ") if word).strip())
    chunks.reverse()
    lines: list[str] = []
    while chunks:
        line: list[str] = []
        length = 0
        if chunks[-1].strip() == "" and lines:
            del chunks[-1]
        while chunks and length + len(chunks[-1]) <= width:
            length += len(chunks[-1])
            line.append(chunks.pop())
        if chunks and len(chunks[-1]) > width:
            _break_long_word(chunks, line, width - length)
        if line and line[-1].strip() == "":
            del line[-1]
        if line:
            lines.append("".join(line))
    return lines


def _break_long_word(chunks: list[str], line: list[str], space_left: int) -> None:
    """textwrap's _handle_long_word: as much of the next chunk as fits, cut after its last hyphen
    that fits when there is one with something other than hyphens before it."""
    chunk = chunks[-1]
    end = space_left
    hyphen = chunk.rfind("-", 0, space_left)
    if hyphen > 0 and any(c != "-" for c in chunk[:hyphen]):
        end = hyphen + 1
    line.append(chunk[:end])
    chunks[-1] = chunk[end:]


def _chunks(text: str) -> list[str]:
    """textwrap's chunks of ``text`` (TextWrapper._split with break_on_hyphens): runs of spaces, and
    words, a word ending after a hyphen between letters (``extism-`` ``fast``) or before an em-dash
    (``--`` between words, itself a chunk)."""
    chunks = []
    start, end = 0, len(text)
    while start < end:
        stop = start + 1
        if text[start] == " ":
            while stop < end and text[stop] == " ":
                stop += 1
        elif not (text[start] == "-" and _em_dash_at(text, start)):
            while not _word_ends(text, stop):
                stop += 1
            if stop < end and text[stop] == "-" and not _em_dash_at(text, stop):
                stop += 1  # the hyphen ends its word
        else:
            while text[stop] == "-":
                stop += 1
        chunks.append(text[start:stop])
        start = stop
    return chunks


def _word_ends(text: str, i: int) -> bool:
    """Whether a word (non-space characters from before ``i``) may end at ``i``: before a space, the
    end, an em-dash after word punctuation, or a hyphen between letters (the hyphen included)."""
    if i == len(text) or text[i] == " ":
        return True
    if text[i] != "-":
        return False
    if _em_dash_at(text, i):
        return True
    return _hyphen_breaks(text, i)


def _hyphen_breaks(text: str, i: int) -> bool:
    """textwrap's hyphenated word: ``text[i]`` is a hyphen after two letters (or after letter, hyphen,
    letter) and before a letter, then a letter or a hyphen and a letter."""
    def letter(j: int) -> bool:
        return 0 <= j < len(text) and _is_letter(text[j])

    before = (letter(i - 1) and letter(i - 2)) or (letter(i - 1) and text[i - 2:i - 1] == "-" and letter(i - 3))
    after = letter(i + 1) and (letter(i + 2) or (text[i + 2:i + 3] == "-" and letter(i + 3)))
    return before and after


def _em_dash_at(text: str, i: int) -> bool:
    """Whether an em-dash starts at ``i``: two hyphens or more after word punctuation and before a
    word character."""
    if i == 0 or not _is_word_punct(text[i - 1]):
        return False
    j = i
    while j < len(text) and text[j] == "-":
        j += 1
    return j - i >= 2 and j < len(text) and _is_word(text[j])


def _is_word(c: str) -> bool:  # re's \w
    return c.isalnum() or c == "_"


def _is_letter(c: str) -> bool:  # textwrap's letter, [^\d\W]
    return _is_word(c) and not c.isdecimal()


def _is_word_punct(c: str) -> bool:  # textwrap's word_punct, [\w!"'&.,?]
    return _is_word(c) or c in "!\"'&.,?"
