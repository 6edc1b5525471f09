"""The module paths of the flat layout, kept importable: each is the module it became.

``import extism_fast.pool`` (or ``from extism_fast.functions import Function``) loads the new
module (``extism_fast.scale.pool``) and binds the old name to that same module object, so names,
monkeypatching and pickles that name an old path (``extism_fast.functions.Function``,
``extism_fast.pickling.restore_compiled``) keep working. The package's own code imports the new
paths only (tests/test_layout.py checks both).
"""

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # types: ~0.2 ms of a fresh process, for annotations only
    from importlib.machinery import ModuleSpec
    from types import ModuleType
else:  # the class of every module's spec: importlib (and warnings, which it imports) not loaded for it
    ModuleSpec = type(__spec__)

#: old path -> the module it is now.
MOVED = {
    "extism_fast._urls": "extism_fast.host.urls",
    "extism_fast._workers": "extism_fast.scale._workers",
    "extism_fast.aio": "extism_fast.scale.aio",
    "extism_fast.arrow": "extism_fast.scale.arrow",
    "extism_fast.cli_batch": "extism_fast.cli.batch",
    "extism_fast.cli_batch_dist": "extism_fast.cli.batch_dist",
    "extism_fast.cli_options": "extism_fast.cli.options",
    "extism_fast.compile_cache": "extism_fast.runtime.compile_cache",
    "extism_fast.dask": "extism_fast.scale.dask",
    "extism_fast.debug_dumps": "extism_fast.runtime.debug_dumps",
    "extism_fast.functions": "extism_fast.host.functions",
    "extism_fast.http": "extism_fast.host.http",
    "extism_fast.logs": "extism_fast.host.logs",
    "extism_fast.pickling": "extism_fast.runtime.pickling",
    "extism_fast.pool": "extism_fast.scale.pool",
    "extism_fast.ray": "extism_fast.scale.ray",
}


class _OldPaths:
    """Finds the old paths; loading one puts the new module in its place in ``sys.modules``
    (the import system then returns, and binds on the parent package, what is there). A meta path
    finder and loader by protocol: importlib.abc would import importlib.resources, tempfile,
    shutil and pathlib (~10 ms) with every ``import extism_fast``."""

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> ModuleSpec | None:
        # A Loader by protocol (create_module, exec_module), not by base class.
        return ModuleSpec(fullname, self) if fullname in MOVED else None  # type: ignore[arg-type]

    def create_module(self, spec: ModuleSpec) -> None:
        return None  # a placeholder module, replaced by exec_module

    def exec_module(self, module: "ModuleType") -> None:
        # The placeholder goes first: an import of the old path while the new module loads (its
        # package importing it) must load the new module too, not find an empty module.
        del sys.modules[module.__name__]
        sys.modules[module.__name__] = import_module(MOVED[module.__name__])


def import_module(name: str) -> "ModuleType":
    """importlib.import_module(name) of an absolute name, without importing importlib (and warnings,
    ~0.5 ms of a fresh process): here and for the package's lazy names."""
    __import__(name)
    return sys.modules[name]


def install() -> None:
    """Make the old paths importable (once per process)."""
    if not any(isinstance(finder, _OldPaths) for finder in sys.meta_path):
        sys.meta_path.insert(0, _OldPaths())


def attribute(package: str, name: str) -> "ModuleType":
    """``extism_fast.<name>`` for an old module path not imported yet (the package's __getattr__)."""
    old = f"{package}.{name}"
    if old not in MOVED:
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    return import_module(old)
