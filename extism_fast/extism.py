"""``extism_fast.extism``: the names of the official ``extism.extism`` module, for code that
imports from it (``from extism.extism import CompiledPlugin, TypeInferredFunction``).

Every public class and function the official module defines is here, with the same name; its
cffi callback ``handle_args`` has no counterpart (extism_fast has no cffi layer).
"""

# From the modules that define them, not the package (whose __init__ imports this module).
from extism_fast._runtime import CancelHandle, CompiledPlugin, CurrentPlugin, Memory, Plugin
from extism_fast.errors import Error
from extism_fast.host.logs import CustomLogger, extism_version, set_log_custom, set_log_file

TYPE_CHECKING = False  # typing is not imported at run time (cold start: tests/test_cold_start.py)
if TYPE_CHECKING:  # at run time: _FUNCTIONS (__getattr__)
    from extism_fast.host.functions import (
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
else:  # the same list host/functions.py re-exports, without loading it
    from extism_fast.host.registry import HOST_FN_REGISTRY
from extism_fast.host.registry import FUNCTION_NAMES as _FUNCTIONS

__all__ = [
    "HOST_FN_REGISTRY", "CancelHandle", "Codec", "CompiledPlugin", "CurrentPlugin", "CustomLogger",
    "Error", "ExplicitFunction", "Function", "Json", "Memory", "Pickle", "Plugin",
    "TypeInferredFunction", "Val", "ValType", "extism_version", "host_fn", "set_log_custom",
    "set_log_file",
]


def __getattr__(name: str):  # noqa: ANN202 - PEP 562
    if name in _FUNCTIONS:
        from extism_fast.host import functions

        value = globals()[name] = getattr(functions, name)
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list:
    return sorted(set(globals()) | set(_FUNCTIONS))
