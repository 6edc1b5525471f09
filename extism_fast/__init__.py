"""extism_fast: run Extism WebAssembly plugins from Python, fast.

A drop-in, faster host for plugins built with any Extism PDK: wasmtime's C API driven from
Cython, with the Extism kernel in C.

The layout (docs/ARCHITECTURE.md): ``manifest/``, ``host/`` (host functions, HTTP, logs),
``scale/`` (pool, asyncio, Arrow, Dask, Ray), ``cli/``, ``runtime/`` (the Python the extension
``_runtime`` calls). The module paths of the flat layout before them still import (``_moved``).
"""

from extism_fast import _moved

_moved.install()  # first: the old paths must resolve for whatever imports them next

try:
    from extism_fast._runtime import (
        CancelHandle,
        CompiledPlugin,
        CurrentPlugin,
        KernelBuffer,
        Memory,
        Plugin,
        restore_trap_handlers,
        wat2wasm,
    )
except ModuleNotFoundError as _missing:  # the source folder of a checkout, the extension not built in it
    if _missing.name != "extism_fast._runtime":
        raise
    _checkout = __path__[0].rpartition("/")[0]
    raise ModuleNotFoundError(
        f"extism_fast's compiled extension (_runtime) is not built in {__path__[0]}: Python imported "
        "this source folder of a checkout, which shadows an installed extism_fast when Python runs "
        "from the checkout root or has it on sys.path (`pip install .` builds the extension into the "
        "installed copy only). Run from another directory to use the installed package, or build the "
        f"extension in place: `cd {_checkout} && pip install -e .` "
        "(or `python setup.py build_ext --inplace` there)", name=_missing.name) from None
from extism_fast.errors import (
    CallError,
    CancelledError,
    CapabilityError,
    CompileError,
    Error,
    FuelExhaustedError,
    FunctionNotFoundError,
    HashMismatchError,
    HostFunctionError,
    InputTypeError,
    LinkError,
    ManifestError,
    MemoryLimitError,
    PluginError,
    PoolTimeoutError,
    TimeoutError,
    TrapError,
)
from extism_fast._version import __version__
from extism_fast.host.logs import CustomLogger, extism_version, set_log_custom, set_log_file
from extism_fast.host.registry import FUNCTION_NAMES as _FUNCTION_NAMES, HOST_FN_REGISTRY  # no host/functions.py (enum)

TYPE_CHECKING = False  # typing is not imported at run time (cold start: tests/test_cold_start.py)
if TYPE_CHECKING:  # at run time: _LAZY
    from extism_fast.extism import (Codec, ExplicitFunction, Function, Json, Pickle, TypeInferredFunction, Val,
                                    ValType, host_fn)
    from extism_fast.manifest import Manifest, MemoryOptions, WasmData, WasmFile, WasmUrl
    from extism_fast.scale.pool import PluginPool

__all__ = [
    "CallError", "CancelHandle", "CancelledError", "CapabilityError", "CompileError",
    "CompiledPlugin", "CurrentPlugin", "Error", "FuelExhaustedError", "Function", "FunctionNotFoundError",
    "HOST_FN_REGISTRY", "HashMismatchError", "HostFunctionError", "InputTypeError", "KernelBuffer", "LinkError", "Manifest",
    "ManifestError", "Memory", "MemoryLimitError", "MemoryOptions", "Plugin", "PluginError", "PluginPool",
    "PoolTimeoutError",
    "TimeoutError", "TrapError", "Val", "ValType", "WasmData", "WasmFile", "WasmUrl",
    "host_fn", "restore_trap_handlers", "wat2wasm",
    "Codec", "CustomLogger", "ExplicitFunction", "Json", "Pickle", "TypeInferredFunction",
    "extism_version", "set_log_custom", "set_log_file",
]


#: Public names loaded when first used (``import extism_fast`` and a first call do not need them):
#: name -> its module.
_LAZY = {
    **dict.fromkeys(_FUNCTION_NAMES, "extism_fast.host.functions"),  # enum (ValType)
    **dict.fromkeys(["Manifest", "MemoryOptions", "WasmData", "WasmFile", "WasmUrl"], "extism_fast.manifest"),  # attrs
    "PluginPool": "extism_fast.scale.pool",  # threads; asyncio behind its async methods
}
#: Submodules loaded when first read as attributes: ``extism_fast.extism``, the names of the
#: official ``extism.extism`` module (importing it binds it here).
_LAZY_MODULES = ("extism",)


def __getattr__(name: str):  # noqa: ANN202 - PEP 562
    """The names of _LAZY and _LAZY_MODULES; ``extism_fast.pool`` and the other old module paths,
    as attributes of the package."""
    if name in _LAZY or name in _LAZY_MODULES:
        if name in _LAZY_MODULES:
            return _moved.import_module(f"{__name__}.{name}")
        value = globals()[name] = getattr(_moved.import_module(_LAZY[name]), name)
        return value
    return _moved.attribute(__name__, name)


def __dir__() -> list:
    return sorted(set(globals()) | set(_LAZY) | set(_LAZY_MODULES))
