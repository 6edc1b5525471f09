"""Fuzz targets for extism_fast (atheris). Run one with ``python -m fuzz TARGET --seconds N``.

Each target is a module here with ``test_one_input(data: bytes)`` (raises on a finding) and
``seeds()`` (its seed corpus). ``tests/test_fuzz.py`` runs every target for a few seconds.
"""

TARGETS = ("manifest", "cli", "kernel", "lifetimes")
