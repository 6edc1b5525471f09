"""``extism-fast completion bash``: a shell completion script made from the command's own parser.

The script holds, for the command and each subcommand, its flags (those hidden from ``--help`` left
out), which flags take a value and how to complete it (its ``choices`` or its type's
``completions``, file names when its metavar names a FILE or PATH, else nothing), and its
positionals (file names for PLUGIN, ``choices``, or nothing). It is made from the parser
(:func:`extism_fast.cli.build_parser`) each time, so a new flag is in it at once. Only bash: install it with ``extism-fast completion bash > ~/.local/share/bash-completion/
completions/extism-fast`` (or ``source <(extism-fast completion bash)`` in ``~/.bashrc``).

Imported only by the ``completion`` subcommand (``extism-fast call`` never loads it).
"""

from __future__ import annotations

import argparse
import shlex

FILES = "@files"  # a value or positional completed with file names
NOTHING = ""      # a value or positional nothing can be proposed for (a name, a number)


def _value_completion(action: argparse.Action) -> str:
    """How a flag's value or a positional is completed: its choices (or the ``completions`` its
    ``type`` function lists, as ``--log-level``'s) as words, FILES or NOTHING."""
    choices = action.choices or getattr(action.type, "completions", None)
    if choices:
        return " ".join(str(choice) for choice in choices)
    metavar = str(action.metavar or action.dest).upper()
    return FILES if "FILE" in metavar or "PATH" in metavar or metavar == "PLUGIN" else NOTHING


def _spec(parser: argparse.ArgumentParser) -> dict:
    """The flags, valued flags and positionals of one parser (subcommands apart)."""
    flags: list[str] = []
    values: dict[str, str] = {}
    positionals: list[str] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) or action.help == argparse.SUPPRESS:
            continue
        if not action.option_strings:
            positionals.append(_value_completion(action))
            continue
        flags.extend(action.option_strings)
        if action.nargs != 0:
            for flag in action.option_strings:
                values[flag] = _value_completion(action)
    return {"flags": flags, "values": values, "positionals": positionals}


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _bash_case(name: str, spec: dict) -> str:
    """The ``case`` branch that sets one (sub)command's completion data."""
    values = " ".join(f"[{shlex.quote(flag)}]={shlex.quote(how)}" for flag, how in spec["values"].items())
    positionals = " ".join(shlex.quote(how) for how in spec["positionals"])
    label = shlex.quote(name) if name else '""'  # "": before any subcommand
    return (f"        {label})\n"
            f"            flags={shlex.quote(' '.join(spec['flags']))}\n"
            f"            values=({values})\n"
            f"            positionals=({positionals});;\n")


_BASH = r'''# bash completion for {prog} (made by '{prog} completion bash' from its own parser)
_extism_fast_complete_as() {{
    # $1: "@files", nothing, or words
    if [[ "$1" == "@files" ]]; then
        compopt -o filenames 2>/dev/null
        COMPREPLY=($(compgen -f -- "$cur"))
    elif [[ -n "$1" ]]; then
        COMPREPLY=($(compgen -W "$1" -- "$cur"))
    fi
}}

_extism_fast() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" command="" i word
    local -a commands=({commands})
    COMPREPLY=()
    for ((i = 1; i < COMP_CWORD; i++)); do
        for word in "${{commands[@]}}"; do
            if [[ "${{COMP_WORDS[i]}}" == "$word" ]]; then command="$word"; break 2; fi
        done
    done
    local flags
    local -A values
    local -a positionals
    case "$command" in
{cases}    esac
    # The value of the flag before the cursor?
    local prev="${{COMP_WORDS[COMP_CWORD-1]}}"
    if ((COMP_CWORD > 1)) && [[ "$prev" == -* && -v "values[$prev]" ]]; then
        _extism_fast_complete_as "${{values[$prev]}}"
        return
    fi
    if [[ "$cur" == -* ]]; then
        COMPREPLY=($(compgen -W "$flags" -- "$cur"))
        return
    fi
    if [[ -z "$command" ]]; then
        COMPREPLY=($(compgen -W "${{commands[*]}}" -- "$cur"))
        return
    fi
    # Which positional: count the words after the subcommand that are not flags or their values.
    local n=0 skip=0 seen=0
    for ((i = 1; i < COMP_CWORD; i++)); do
        word="${{COMP_WORDS[i]}}"
        if ((skip)); then skip=0; continue; fi
        if ((!seen)); then [[ "$word" == "$command" ]] && seen=1; continue; fi
        if [[ "$word" == -* ]]; then
            [[ "$word" != *=* && -v "values[$word]" ]] && skip=1
            continue
        fi
        ((n++))
    done
    ((n < ${{#positionals[@]}})) && _extism_fast_complete_as "${{positionals[n]}}"
}}

complete -F _extism_fast {prog}
'''


def bash_script(parser: argparse.ArgumentParser) -> str:
    """The bash completion script for ``parser`` (the ``extism-fast`` parser)."""
    subcommands = _subcommands(parser)
    cases = _bash_case("", _spec(parser)) + "".join(
        _bash_case(name, _spec(sub)) for name, sub in subcommands.items())
    return _BASH.format(prog=parser.prog, commands=" ".join(shlex.quote(n) for n in subcommands), cases=cases)
