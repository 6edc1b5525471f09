"""Type stubs for the compiled runtime (extism_fast/_runtime.pyx and its .pxi parts)."""

import inspect
import logging
import os
import signal
import uuid
from typing import Any, Callable, ClassVar, Coroutine, Dict, Iterable, Iterator, List, Literal, NoReturn, Optional, Sequence, Type, TypeVar, Union, final, overload

from typing_extensions import disjoint_base

from extism_fast.errors import FunctionNotFoundError as _FunctionNotFoundError
from extism_fast.host.functions import HOST_FN_REGISTRY as HOST_FN_REGISTRY
from extism_fast.host.functions import Function, Val
from extism_fast.manifest import U64_MAX as U64_MAX
from extism_fast.manifest import WASM_PAGE_SIZE as WASM_PAGE_SIZE
from extism_fast.manifest import Manifest, WasmData, WasmFile, WasmUrl
from extism_fast.runtime.compile_cache import CompileCache

_T = TypeVar("_T")
_PluginSource = Union[bytes, bytearray, memoryview, str, "os.PathLike[str]", dict, Manifest, WasmData, WasmFile, WasmUrl]
_InputData = Union[str, bytes, bytearray, memoryview, Any]

DEFAULT_INSTANCE_POOL: int

def wat2wasm(text: Union[str, bytes]) -> bytes:
    """Convert WebAssembly text to a wasm binary; raises CompileError."""

@final
class KernelBuffer:
    """Bytes in a plugin's kernel memory, without a copy (``CurrentPlugin.memory()``,
    ``CurrentPlugin.input_buffer()``, ``Plugin.call(..., parse=None)``); valid while its host
    function runs or until its plugin's next call, then every use raises ValueError."""

    @property
    def readonly(self) -> bool: ...
    def __len__(self) -> int: ...
    def __bytes__(self) -> bytes: ...
    def tobytes(self) -> bytes: ...
    @overload
    def __getitem__(self, key: int, /) -> bytes: ...
    @overload
    def __getitem__(self, key: slice, /) -> bytes: ...
    def __setitem__(self, key: Union[int, slice], value: Any, /) -> None: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __ne__(self, other: object, /) -> bool: ...
    def __lt__(self, other: Any, /) -> bool: ...
    def __le__(self, other: Any, /) -> bool: ...
    def __gt__(self, other: Any, /) -> bool: ...
    def __ge__(self, other: Any, /) -> bool: ...
    __hash__: ClassVar[None]  # type: ignore[assignment]
    def __buffer__(self, flags: int) -> memoryview: ...
    def __release_buffer__(self, buffer: memoryview) -> None: ...

def _defined_memory_sizes(wasm: Union[bytes, bytearray, memoryview]) -> Optional[List[int]]:
    """The minimum size in bytes of each memory the module defines, in order (kernel_c/wasm_sections.c);
    None when the binary cannot be read."""

def _restore_trap_handlers() -> int: ...
def restore_trap_handlers() -> List[signal.Signals]:
    """Put wasmtime's trap handlers back where other code replaced them (Ray, faulthandler); the
    signals restored. Raises Error when they were replaced before extism_fast's first engine."""

class Memory:
    """A block of kernel memory."""

    __slots__ = ("offset", "length")
    offset: int
    length: int
    def __init__(self, offs: int, length: int) -> None: ...
    def __len__(self) -> int: ...

@disjoint_base
class CurrentPlugin:
    """The plugin calling a host function; usable only during that call."""

    def memory(self, mem: Memory) -> KernelBuffer: ...
    def alloc(self, size: int) -> Memory: ...
    def free(self, mem: Union[Memory, int]) -> None: ...
    def memory_at_offset(self, offs: Union[int, Val]) -> Memory: ...
    def host_context(self) -> Any: ...
    def input_buffer(self, input: Val) -> KernelBuffer: ...
    def input_bytes(self, input: Val) -> bytes: ...
    def input_string(self, input: Val) -> str: ...
    def return_bytes(self, output: Val, b: bytes) -> None: ...
    def return_string(self, output: Val, s: str) -> None: ...

@disjoint_base
class CompiledPlugin:
    """A compiled, linked plugin; create instances with ``Plugin(compiled)``."""

    manifest: Manifest
    wasi: bool
    functions: List[Function]
    fuel: Optional[int]
    interruptible: bool
    __signature__: ClassVar[inspect.Signature]  # __init__'s parameters, for inspect.signature
    def __init__(
        self,
        plugin: _PluginSource,
        wasi: bool = False,
        functions: Optional[Sequence[Function]] = ...,
        *,
        config: Optional[dict] = None,
        fuel: Optional[int] = None,
        cache: Union[None, bool, str, "os.PathLike[str]", CompileCache] = None,
        interruptible: Optional[bool] = None,
    ) -> None: ...
    def function_exists(self, name: str) -> bool: ...
    def _function_not_found(self, name: str) -> _FunctionNotFoundError: ...
    def __reduce__(self) -> Any: ...

@disjoint_base
class CancelHandle:
    """Cancels the running call of one plugin, from any thread."""

    def cancel(self) -> bool: ...

@disjoint_base
class Plugin:
    """A plugin instance: call its exports by name, bytes in and bytes out."""

    compiled_plugin: CompiledPlugin
    __signature__: ClassVar[inspect.Signature]  # __init__'s parameters, for inspect.signature
    def __init__(
        self,
        plugin: Union[_PluginSource, CompiledPlugin],
        wasi: bool = False,
        config: Optional[dict] = None,
        functions: Optional[Sequence[Function]] = ...,
        *,
        http_response_headers: bool = False,
        fuel: Optional[int] = None,
        wasi_stdio: Optional[str] = None,
        interruptible: Optional[bool] = None,
        strict: Optional[bool] = None,
        wasi_env: Optional[Dict[str, str]] = None,
        wasi_args: Optional[Sequence[str]] = None,
        logger: Optional[logging.Logger] = None,
    ) -> None: ...
    @property
    def interruptible(self) -> bool: ...
    @property
    def strict(self) -> bool: ...
    @property
    def fuel_consumed(self) -> Optional[int]: ...
    def reset(self, *, vars: bool = False) -> bool: ...
    @property
    def id(self) -> uuid.UUID: ...
    def close(self) -> None: ...
    def __enter__(self) -> "Plugin": ...
    def __exit__(self, *exc_info: Any) -> None: ...
    async def __aenter__(self) -> "Plugin": ...
    def __aexit__(self, *exc_info: Any) -> Coroutine[Any, Any, None]: ...
    def aclose(self) -> Coroutine[Any, Any, None]: ...
    def cancel_handle(self) -> CancelHandle: ...
    def _interrupt(self) -> None: ...
    def function_exists(self, name: str) -> bool: ...
    @overload
    def call(self, function_name: str, data: _InputData = ..., parse: Type[bytes] = ..., host_context: Any = ...) -> bytes: ...
    @overload
    def call(self, function_name: str, data: _InputData, parse: None, host_context: Any = ...) -> KernelBuffer: ...
    @overload
    def call(self, function_name: str, data: _InputData, parse: Callable[[bytes], _T], host_context: Any = ...) -> _T: ...
    @overload
    def acall(self, function_name: str, data: _InputData = ..., parse: Type[bytes] = ...,
              host_context: Any = ...) -> Coroutine[Any, Any, bytes]: ...
    @overload
    def acall(self, function_name: str, data: _InputData, parse: Callable[[bytes], _T],
              host_context: Any = ...) -> Coroutine[Any, Any, _T]: ...
    @overload
    def acall(self, function_name: str, data: _InputData = ..., parse: Optional[Callable[[bytes], Any]] = ...,
              host_context: Any = ...) -> Coroutine[Any, Any, Any]: ...
    def __reduce__(self) -> NoReturn: ...
    # call_many: a list of outputs in input order (parse=None: memoryviews of copies); with
    # return_exceptions=True a failed item is its exception; with output="arrow"/"arrow_string" a
    # pyarrow array. ``inputs`` may be a pyarrow Array/ChunkedArray of binary or string items.
    @overload
    def call_many(self, function_name: str, inputs: Union[Iterable[_InputData], Any], parse: Type[bytes] = ...,
                  return_exceptions: Literal[False] = False, output: None = None) -> List[bytes]: ...
    @overload
    def call_many(self, function_name: str, inputs: Union[Iterable[_InputData], Any], parse: None,
                  return_exceptions: Literal[False] = False, output: None = None) -> List[memoryview]: ...
    @overload
    def call_many(self, function_name: str, inputs: Union[Iterable[_InputData], Any], parse: Callable[[bytes], _T],
                  return_exceptions: Literal[False] = False, output: None = None) -> List[_T]: ...
    @overload
    def call_many(self, function_name: str, inputs: Union[Iterable[_InputData], Any], parse: Type[bytes] = ...,
                  *, return_exceptions: Literal[True], output: None = None) -> List[Union[bytes, Exception]]: ...
    @overload
    def call_many(self, function_name: str, inputs: Union[Iterable[_InputData], Any], parse: Callable[[bytes], _T],
                  return_exceptions: Literal[True], output: None = None) -> List[Union[_T, Exception]]: ...
    @overload
    def call_many(self, function_name: str, inputs: Union[Iterable[_InputData], Any],
                  parse: Optional[Callable[[bytes], Any]] = ..., return_exceptions: bool = False,
                  output: Optional[str] = None) -> Any: ...
    @overload
    def iter_call(self, function_name: str, inputs: Iterable[_InputData], parse: Type[bytes] = ...,
                  return_exceptions: Literal[False] = False) -> Iterator[bytes]: ...
    @overload
    def iter_call(self, function_name: str, inputs: Iterable[_InputData], parse: None,
                  return_exceptions: Literal[False] = False) -> Iterator[memoryview]: ...
    @overload
    def iter_call(self, function_name: str, inputs: Iterable[_InputData], parse: Callable[[bytes], _T],
                  return_exceptions: Literal[False] = False) -> Iterator[_T]: ...
    @overload
    def iter_call(self, function_name: str, inputs: Iterable[_InputData], parse: Optional[Callable[[bytes], Any]] = ...,
                  return_exceptions: bool = False) -> Iterator[Any]: ...

def parse_output(out: bytes, parse: Optional[Callable[[bytes], Any]]) -> Any:
    """An output as ``parse`` asks: bytes, a memoryview of the copy (None), or ``parse(out)``."""

def _arrow_call_many(
    plugin: Plugin,
    function_name: str,
    inputs: Any,
    parse: Optional[Callable[[bytes], Any]],
    return_exceptions: bool,
    output: Optional[str],
    first_index: int,
) -> Any:
    """Plugin.call_many with an Arrow input or output; ``first_index`` numbers items in messages."""
