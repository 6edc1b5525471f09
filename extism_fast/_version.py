"""Versions, in one place: pyproject.toml reads ``__version__`` from here (setuptools ``attr:``)."""

#: extism_fast's own version.
__version__ = "0.1.0"

#: The Extism runtime (extism-sys) version whose behaviour extism_fast matches and is tested
#: against side by side; what :func:`extism_fast.extism_version` answers, as the official SDK
#: answers its runtime's version.
EXTISM_RUNTIME_VERSION = "1.41.0"
