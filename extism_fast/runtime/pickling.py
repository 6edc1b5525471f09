"""Pickling CompiledPlugin: to send a plugin to other processes (``multiprocessing``, executors).

A CompiledPlugin pickles as what rebuilds it: its manifest with every module as its bytes (a URL
that has a ``hash`` stays a URL: the hash pins the code), its options (``wasi``, ``fuel``,
``interruptible``; the config is in the manifest) and its host functions by reference (see
``Function.__reduce__``). The on-disk cache setting is not carried: the unpickling process uses its
own compile cache.

Unpickling compiles once per process: a registry keyed by the module hashes and the options (a
sha256 made when pickling) returns the CompiledPlugin already made for that key while one is
alive, so plugins unpickled many times share one compilation. Pickling registers the original
too: in the same process, ``pickle.loads(pickle.dumps(compiled))`` is ``compiled``.
"""

from __future__ import annotations

import _thread  # its locks are threading's, which costs ~1 ms of the package's import
import sys

# Loaded when a plugin is first pickled or unpickled, as what pickling needs (attrs, hashlib,
# pickle, the manifest classes); typing never (tests/test_cold_start.py).
TYPE_CHECKING = False
if TYPE_CHECKING:
    import weakref
    from typing import Any, List, Optional, Sequence, Tuple

    from extism_fast.host.functions import Function
    from extism_fast.manifest import Manifest, WasmSource

__all__ = ["reduce_compiled", "restore_compiled"]

# key -> the live CompiledPlugin, made with the first plugin pickled or unpickled (_live), as weakref
# loads then (~0.4 ms of the package's import).
_registry: Optional[weakref.WeakValueDictionary[str, Any]] = None
# Held while compiling: two threads unpickling the same plugin compile it once.
_registry_lock = _thread.allocate_lock()
# The class unpickling makes: extism_fast._runtime.CompiledPlugin, found in sys.modules, not imported
# (_runtime imports this module to pickle one). A pickle names this module, so unpickling imports
# the package, and so the extension, first.
_COMPILED_MODULE = "extism_fast._runtime"


def _live() -> weakref.WeakValueDictionary[str, Any]:
    """The registry (made now the first time); the caller holds _registry_lock."""
    global _registry
    if _registry is None:
        import weakref

        _registry = weakref.WeakValueDictionary()
    return _registry


def _portable_manifest(manifest: Manifest, modules: Sequence[Any]) -> Manifest:
    """``manifest`` with each module as its loaded bytes (and their sha256), except URLs with a
    hash; files and unpinned URLs may differ, or be missing, in the other process."""
    import hashlib

    import attrs

    from extism_fast.manifest import WasmData, WasmUrl

    loaded = {module.name: module.data for module in modules}
    sources: List[WasmSource] = []
    for name, source in zip(manifest.module_names(), manifest.wasm):
        if isinstance(source, WasmUrl) and source.hash is not None:
            sources.append(source)
        else:
            data = loaded[name]
            sources.append(WasmData(data, name=source.name, hash=hashlib.sha256(data).hexdigest()))
    return attrs.evolve(manifest, wasm=sources)


def _key(manifest: Manifest, options: Tuple[Any, ...], functions: List[Function]) -> str:
    """The registry key: module hashes (not their bytes), the rest of the manifest, the options
    and the host functions' references. Pickling the functions here is what refuses a lambda."""
    import hashlib
    import pickle

    sources = [(type(s).__name__, s.name, s.hash, getattr(s, "url", None), getattr(s, "method", None),
                sorted(getattr(s, "headers", {}).items())) for s in manifest.wasm]
    rest = (manifest.memory, sorted(manifest.config.items()), manifest.allowed_hosts,
            sorted((manifest.allowed_paths or {}).items()), manifest.timeout_ms)
    for fn in functions:  # one by one, so that a failure names its function
        try:
            pickle.dumps(fn, protocol=pickle.HIGHEST_PROTOCOL)
        except pickle.PicklingError:
            raise  # Function.__reduce__'s own message names it
        except Exception as exc:  # its user data does not pickle
            raise pickle.PicklingError(f"cannot pickle host function {fn.namespace}::{fn.name}: its user data: "
                                       f"{type(exc).__name__}: {exc}") from exc
    material = pickle.dumps((sources, rest, options, functions), protocol=pickle.HIGHEST_PROTOCOL)
    return hashlib.sha256(material).hexdigest()


def reduce_compiled(compiled: Any, modules: Sequence[Any]) -> Tuple[Any, ...]:
    """``CompiledPlugin.__reduce__``; ``modules`` are its loaded modules."""
    manifest = _portable_manifest(compiled.manifest, modules)
    options = (compiled.wasi, compiled.fuel, compiled.interruptible)
    functions = list(compiled.functions)
    key = _key(manifest, options, functions)
    with _registry_lock:
        _live().setdefault(key, compiled)
    return (restore_compiled, (key, manifest, *options, functions))


def restore_compiled(key: str, manifest: Manifest, wasi: bool, fuel: Optional[int], interruptible: bool,
                     functions: List[Function]) -> Any:
    """The CompiledPlugin for ``key``: the live one of this process, else compiled now."""
    with _registry_lock:
        registry = _live()
        found = registry.get(key)
        if found is None:
            compiled_class = sys.modules[_COMPILED_MODULE].CompiledPlugin
            found = compiled_class(manifest, wasi, functions, fuel=fuel, interruptible=interruptible)
            registry[key] = found
        return found
