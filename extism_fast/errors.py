"""The exception classes of extism_fast.

Every failure the SDK reports is an :class:`Error`; the subclasses let callers tell causes apart
without parsing messages. Messages always name the problem (field, import, limit, export).
"""

import builtins

TYPE_CHECKING = False  # typing is not imported at run time (cold start: tests/test_cold_start.py)
if TYPE_CHECKING:
    from typing import Any, Optional, Sequence

__all__ = [
    "Error",
    "ManifestError",
    "HashMismatchError",
    "CompileError",
    "LinkError",
    "FunctionNotFoundError",
    "CallError",
    "PluginError",
    "TrapError",
    "TimeoutError",
    "CancelledError",
    "MemoryLimitError",
    "HostFunctionError",
    "CapabilityError",
    "FuelExhaustedError",
    "PoolTimeoutError",
    "InputTypeError",
]


class Error(Exception):
    """Base class of every error raised by extism_fast (the official SDK's ``extism.Error``)."""


class ManifestError(Error, ValueError):
    """The manifest (or a plugin source) is invalid; the message names the field and the value."""


class HashMismatchError(ManifestError):
    """A wasm source's sha256 does not match the ``hash`` given in the manifest."""


class CompileError(Error):
    """The bytes are not a valid WebAssembly module (or WAT text that fails to parse)."""


class LinkError(Error):
    """A plugin import cannot be satisfied; the message names the module and the field."""


class FunctionNotFoundError(Error, LookupError):
    """The plugin has no export with the requested name."""


class CallError(Error):
    """A plugin call failed."""


class PluginError(CallError):
    """The plugin reported an error through ``error_set``; the message is the plugin's own text."""


class TrapError(CallError):
    """The plugin trapped (unreachable, out-of-bounds access, bad kernel offset, ...)."""


class TimeoutError(CallError, builtins.TimeoutError):  # noqa: A001 - mirrors the builtin's name
    """The call ran past the manifest's ``timeout_ms`` (also a builtin :class:`TimeoutError`, so
    also an OSError: the package catches OSError only around file and socket operations, never
    around a call)."""


class CancelledError(CallError):
    """The call was cancelled through a :class:`CancelHandle`."""


class MemoryLimitError(CallError):
    """The plugin went past a memory limit (``memory.max_pages``, vars or HTTP response size)."""


class HostFunctionError(CallError):
    """A host function raised; the message carries the Python exception's type and text."""


class CapabilityError(CallError):
    """The plugin used a capability the host did not grant (HTTP to a host not allowed, vars off)."""


class FuelExhaustedError(CallError):
    """The call used up its fuel (instruction budget, ``Plugin(..., fuel=N)``)."""


class PoolTimeoutError(Error, builtins.TimeoutError):
    """``PluginPool.get(timeout=...)`` found no free instance within the timeout (also a
    builtin :class:`TimeoutError`)."""


class InputTypeError(Error, builtins.TypeError):
    """An input item of a batch (``call_many``, ``iter_call``, ``PluginPool.map``/``amap``, the
    Dask and Ray helpers) that is neither bytes-like nor ``str``: a missing value, a number, ...
    The message names the item; ``input_index`` is its index in the inputs. Also a builtin
    :class:`TypeError`, as a bad argument is."""

    input_index: "Optional[int]" = None


#: At most this many callable exports are listed in a FunctionNotFoundError.
_LISTED_EXPORTS = 20


def function_not_found(name: str, callable_names: "Sequence[str]") -> FunctionNotFoundError:
    """The FunctionNotFoundError of a call to ``name``: the closest of ``callable_names`` (the
    plugin's callable exports) and the list of them, on one line. Built only on the error path."""
    import difflib

    names = sorted(callable_names)
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    listed = ", ".join(f"'{n}'" for n in names[:_LISTED_EXPORTS])
    if len(names) > _LISTED_EXPORTS:
        listed += f" and {len(names) - _LISTED_EXPORTS} more"
    exports = f" (its callable exports: {listed})" if names else " (it exports no callable function)"
    return FunctionNotFoundError(f"plugin has no function named '{name}'{hint}{exports}")


def input_type_error(index: int, item: "Any", name: "Optional[str]" = None) -> InputTypeError:
    """The InputTypeError of ``item``, the input at ``index``, named ``name`` (default ``input
    INDEX``)."""
    what = "missing (None/NA)" if item is None else f"of type {type(item).__name__}"
    error = InputTypeError(f"{f'input {index}' if name is None else name} is {what}, not bytes or str")
    error.input_index = index
    return error


def reindexed(error: InputTypeError, offset: int, items: "Sequence[Any]") -> InputTypeError:
    """``error``, raised for ``items`` (a piece of the inputs starting at index ``offset``), as
    the error of the whole inputs."""
    if error.input_index is None or not offset:
        return error
    return input_type_error(offset + error.input_index, items[error.input_index])


def checked_input(item: "Any", index: int) -> "Any":
    """``item`` when a call takes it (str or bytes-like), else its InputTypeError."""
    if not isinstance(item, (bytes, str)):
        try:
            memoryview(item).release()
        except TypeError:
            raise input_type_error(index, item) from None
    return item
