"""Bench rows on a plugin built by an official PDK: ``tests/as/count_vowels.ts``, the
``@extism/as-pdk`` example (AssemblyScript), compiled by the test suite's own builder
(``tests/conftest.py``'s ``build_as_plugins``: ``tests/as/build.mjs``, the arguments of ``npx asc``).

Per call it reads its input with ``input_load_u64`` plus ``input_load_u8`` for the tail, builds an
AssemblyScript string and walks it one character string at a time, sets var ``a`` (its 13 bytes
stored with one ``store_u8`` each), reads config ``thing`` and var ``a`` back (``load_u64`` /
``load_u8``), outputs JSON and removes the var: ~13 native kernel calls and ~50 byte accessor calls,
and most of its time in AssemblyScript's own string and GC runtime (bench/results/breakdown.md).

The rows need node and ``(cd tests/as && npm ci)``, as the AssemblyScript tests do; without them
they are left out with a note on stderr.
"""

from __future__ import annotations

import functools
import sys

from bench.compare import KIB, SMALL_INPUT, Case, Subject, call_row, instance_rows, many_row, text_input

#: config of the AssemblyScript plugin: the key it reads, so the read finds a value
AS_CONFIG = {"thing": "bench"}
AS_LABEL = "AssemblyScript count_vowels (@extism/as-pdk)"


@functools.cache
def as_wasm(name: str = "count_vowels") -> bytes | None:
    """The wasm bytes of tests/as/<name>.ts built by the test suite's builder, or None (with a note
    on stderr) when node or the npm packages are missing or the build fails."""
    from bench.plugins import REPO_ROOT  # noqa: F401 - puts tests/ on sys.path for conftest

    try:
        from conftest import build_as_plugins

        return build_as_plugins()[name].read_bytes()
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # conftest reports a missing toolchain with pytest.fail (a BaseException)
        print(f"bench: AssemblyScript rows skipped: {exc}", file=sys.stderr)
        return None


def as_subject() -> Subject | None:
    """The AssemblyScript PDK's count_vowels with config ``thing`` set, or None without node."""
    wasm = as_wasm()
    return None if wasm is None else Subject(AS_LABEL, wasm, "count_vowels", AS_CONFIG)


def as_rows() -> list[Case]:
    """Small call, 1 KiB, call_many and instance + first call, each with default settings and with
    extism_fast's ``interruptible=False`` beside it; [] when the plugin cannot be built."""
    subject = as_subject()
    if subject is None:
        return []
    both = (subject, subject.opt_in())
    return [
        *(call_row(s, "small call 14 B", SMALL_INPUT) for s in both),
        *(call_row(s, "1 KiB", text_input(KIB)) for s in both),
        *(many_row(s) for s in both),
        *(instance_rows(s)[1] for s in both),  # "+ first call": the row that instantiates
    ]
