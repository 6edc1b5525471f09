"""Host functions: the controlled way a plugin calls back into the host.

A :class:`Function` names an import (``namespace``, ``name``), its wasm signature, and the Python
callable that implements it, called as ``f(current_plugin, params, results, *user_data)`` with
lists of :class:`Val`. The runtime checks each plugin import against the declared signature when
the plugin is built, so a mismatch fails at load time and never at call time.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, Callable, List, Optional, Sequence, Tuple

__all__ = ["ValType", "Val", "Function", "host_fn", "HOST_FN_REGISTRY", "DEFAULT_NAMESPACE"]

DEFAULT_NAMESPACE = "extism:host/user"


class ValType(Enum):
    """WebAssembly value types of host-function parameters and results (``PTR`` = ``I64``)."""

    I32 = 0
    I64 = 1
    PTR = 1
    F32 = 2
    F64 = 3
    V128 = 4
    FUNC_REF = 5
    EXTERN_REF = 6


class Val:
    """A wasm value with its type; results are written by assigning ``value``."""

    __slots__ = ("t", "value")

    def __init__(self, t: ValType, v: Any) -> None:
        self.t = t
        self.value = v

    def __repr__(self) -> str:
        return f"Val({self.t}, {self.value})"

    def _assign(self, v: Any) -> None:
        self.value = v


class Function:
    """A host function with an explicit signature.

    ``f`` is called as ``f(current_plugin, params, results, *user_data)``; it reads ``params``
    (a list of :class:`Val`) and assigns ``results[i].value``.
    """

    def __init__(
        self,
        namespace: Optional[str],
        name: str,
        args: Sequence[ValType],
        returns: Sequence[ValType],
        f: Callable[..., Any],
        *user_data: Any,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"host function name must be a non-empty string, got {name!r}")
        self.namespace: str = namespace or DEFAULT_NAMESPACE
        self.name = name
        self.args: List[ValType] = [_valtype(a, name) for a in args]
        self.returns: List[ValType] = [_valtype(r, name) for r in returns]
        self.f = f
        self.user_data: Tuple[Any, ...] = user_data

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the wrapped Python function directly (handy in tests)."""
        return self.f(*args, **kwargs)

    def __repr__(self) -> str:
        args = ", ".join(a.name for a in self.args)
        returns = ", ".join(r.name for r in self.returns)
        return f"Function({self.namespace}::{self.name} ({args}) -> ({returns}))"


def _valtype(v: Any, fn_name: str) -> ValType:
    if isinstance(v, ValType):
        return v
    raise TypeError(f"host function {fn_name!r}: signature entries must be ValType, got {v!r}")


#: Functions registered with :func:`host_fn`; ``Plugin`` uses them when ``functions`` is not given.
HOST_FN_REGISTRY: List[Function] = []


def host_fn(
    name: Optional[str] = None,
    namespace: Optional[str] = None,
    signature: Optional[Tuple[Sequence[ValType], Sequence[ValType]]] = None,
    user_data: Any = None,
) -> Callable[[Callable[..., Any]], Function]:
    """Decorator registering a host function in :data:`HOST_FN_REGISTRY`.

    With ``signature=([params], [results])`` the function is called as
    ``f(current_plugin, params, results, *user_data)``.
    """
    if user_data is None:
        extra: Tuple[Any, ...] = ()
    elif isinstance(user_data, (list, tuple)):
        extra = tuple(user_data)
    else:
        extra = (user_data,)

    def outer(func: Callable[..., Any]) -> Function:
        if signature is None:
            raise TypeError(f"host_fn {func.__name__!r}: signature=([params], [results]) is required")
        fn = Function(namespace, name or func.__name__, signature[0], signature[1], func, *extra)
        HOST_FN_REGISTRY.append(fn)
        return fn

    return outer
