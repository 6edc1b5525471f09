"""extism_fast: run Extism WebAssembly plugins from Python, fast.

A drop-in, faster host for plugins built with any Extism PDK: wasmtime's C API driven from
Cython, with the Extism kernel in C.
"""

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
from extism_fast.functions import (
    HOST_FN_REGISTRY,
    Codec,
    ExplicitFunction,
    Function,
    Json,
    Pickle,
    TypeInferredFunction,
    Val,
    ValType,
    host_fn,
)
from extism_fast._version import __version__
from extism_fast.logs import CustomLogger, extism_version, set_log_custom, set_log_file
from extism_fast.manifest import Manifest, MemoryOptions, WasmData, WasmFile, WasmUrl
from extism_fast.pool import PluginPool
from extism_fast import extism  # the names of the official `extism.extism` module

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
