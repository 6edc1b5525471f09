"""``python -m fuzz TARGET [--seconds N] [--runs N] [--corpus DIR] [--artifacts DIR] [-- LIBFUZZER_ARGS]``

Fuzz one target (see :data:`fuzz.TARGETS`) with atheris for ``--seconds`` (default 60) or
``--runs`` inputs, starting from the target's seeds (and ``--corpus``, where new inputs are kept).
A finding stops the run with a traceback, a non-zero exit and its input saved as
``ARTIFACTS/crash-<sha1>``. ``python -m fuzz TARGET --replay FILE...`` runs saved inputs once,
without atheris, to reproduce one.
"""

from __future__ import annotations

import argparse
import importlib
import pathlib
import sys
import tempfile

from fuzz import TARGETS


def _parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    extra: list[str] = []
    if "--" in argv:
        argv, extra = argv[: argv.index("--")], argv[argv.index("--") + 1 :]
    parser = argparse.ArgumentParser(prog="python -m fuzz", description=__doc__.splitlines()[2])
    parser.add_argument("target", choices=TARGETS)
    parser.add_argument("--seconds", type=int, default=60, help="stop after N seconds (default 60)")
    parser.add_argument("--runs", type=int, help="stop after N inputs")
    parser.add_argument("--corpus", help="a directory to read inputs from and keep new ones in")
    parser.add_argument("--artifacts", default=".", help="where a crashing input is saved (default .)")
    parser.add_argument("--replay", nargs="+", metavar="FILE", help="run these inputs once and stop")
    return parser.parse_args(argv), extra


def main(argv: list[str]) -> int:
    args, extra = _parse(argv)
    if args.replay:
        target = importlib.import_module(f"fuzz.{args.target}")
        for path in args.replay:
            target.test_one_input(pathlib.Path(path).read_bytes())
            print(f"{path}: ok")
        return 0

    import atheris

    # Coverage feedback for the Python code under test (the C kernel is not instrumented).
    with atheris.instrument_imports(include=["extism_fast", f"fuzz.{args.target}"]):
        target = importlib.import_module(f"fuzz.{args.target}")
    seeds = pathlib.Path(tempfile.mkdtemp(prefix=f"fuzz_{args.target}_seeds_"))
    for i, seed in enumerate(target.seeds()):
        (seeds / f"seed-{i:03d}").write_bytes(seed)
    corpus = args.corpus or tempfile.mkdtemp(prefix=f"fuzz_{args.target}_corpus_")
    pathlib.Path(corpus).mkdir(parents=True, exist_ok=True)
    libfuzzer = [sys.argv[0], f"-max_total_time={args.seconds}", "-timeout=60",
                 f"-artifact_prefix={pathlib.Path(args.artifacts).resolve()}/"]
    if args.runs is not None:
        libfuzzer.append(f"-runs={args.runs}")
    atheris.Setup(libfuzzer + extra + [corpus, str(seeds)], target.test_one_input)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
