"""Host functions: the controlled way a plugin calls back into the host.

A :class:`Function` names an import (``namespace``, ``name``), its wasm signature, and the Python
callable that implements it, called as ``f(current_plugin, params, results, *user_data)`` with
lists of :class:`Val`. The runtime checks each plugin import against the declared signature when
the plugin is built, so a mismatch fails at load time and never at call time.

:func:`host_fn` builds one from a plain Python function, like the official ``extism`` SDK:

* with ``signature=([params], [results])`` the function gets the raw ``Val`` lists
  (:class:`ExplicitFunction`);
* without it the signature is inferred from the annotations (:class:`TypeInferredFunction`):
  ``int`` (I64), ``float`` (F64), ``bool`` (I32), ``str`` / ``bytes`` (a kernel block, passed as an
  I64 offset), ``Annotated[T, Json]``, ``Annotated[T, Pickle]``, ``Annotated[T, Codec(fn)]`` (blocks
  too), and on return ``Tuple[...]`` of those (several results). A first parameter annotated
  ``CurrentPlugin`` receives the calling plugin; ``*user_data`` receives the user data.
"""

from __future__ import annotations

from _operator import index as _index  # operator.py's own import costs ~0.3 ms

from extism_fast.host.registry import HOST_FN_REGISTRY as _REGISTRY

# typing (and re, which it imports) and inspect load with the first host function whose annotations
# are not all plain classes (_plain_parameters), not with the package (tests/test_cold_start.py).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, List, Optional, Sequence, Tuple

    from extism_fast.host.valtype import ValType

__all__ = [
    "ValType",
    "Val",
    "Function",
    "ExplicitFunction",
    "TypeInferredFunction",
    "Json",
    "Pickle",
    "Codec",
    "host_fn",
    "HOST_FN_REGISTRY",
    "DEFAULT_NAMESPACE",
]

DEFAULT_NAMESPACE = "extism:host/user"


# ValType's values (host/valtype.py), what Function.args and Function.returns hold (as the official
# SDK's do) and the runtime reads. The Enum loads when a program first names ValType (this module's
# __getattr__): enum costs a fresh process ~4 ms that a typed host function does not need.
_I32, _I64, _F32, _F64, _V128, _FUNC_REF, _EXTERN_REF = range(7)
#: The name of each ValType value in messages (the Enum names 1 PTR, as the official SDK's).
_VALTYPE_NAMES = ("I32", "I64", "F32", "F64", "V128", "FUNC_REF", "EXTERN_REF")
_valtype_class: Any = None  # ValType, once loaded


def _load_valtype() -> Any:
    """The ValType Enum (host/valtype.py), loaded once."""
    global _valtype_class
    if _valtype_class is None:
        from extism_fast.host.valtype import ValType

        _valtype_class = globals()["ValType"] = ValType
    return _valtype_class


def __getattr__(name: str) -> Any:  # PEP 562: ValType, loaded when first named
    if name == "ValType":
        return _load_valtype()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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


# ---------------------------------------------------------------------------------------------
# Annotation markers
# ---------------------------------------------------------------------------------------------


class Json:
    """Annotation marker: ``Annotated[T, Json]`` passes a JSON document through a kernel block.

    As a parameter the block is decoded with ``json.loads``; as a result the value is encoded
    with ``json.dumps``.
    """


class Pickle:
    """Annotation marker: ``Annotated[T, Pickle]`` passes a pickled object through a kernel block."""


class Codec:
    """Annotation marker with a transform: ``Annotated[T, Codec(fn)]``.

    As a parameter, ``fn`` receives the block's bytes and returns the argument; as a result,
    ``fn`` receives the returned value and must return the bytes to store.
    """

    def __init__(self, codec: Callable[[Any], Any]) -> None:
        self.codec = codec

    def __repr__(self) -> str:
        return f"Codec({self.codec!r})"


# ---------------------------------------------------------------------------------------------
# Functions
# ---------------------------------------------------------------------------------------------


class Function:
    """A host function with an explicit signature.

    ``f`` is called as ``f(current_plugin, params, results, *user_data)``; it reads ``params``
    (a list of :class:`Val`) and assigns ``results[i].value``. ``args`` and ``returns`` hold the
    signature's ValType values (``ValType.I64.value``: ints), as the official SDK's do.
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
        if namespace is not None and not isinstance(namespace, str):
            raise TypeError(f"host function {name!r}: namespace must be a string, got {namespace!r}")
        if not callable(f):
            raise TypeError(f"host function {name!r}: {f!r} is not callable")
        self.namespace: str = namespace or DEFAULT_NAMESPACE
        self.name = name
        self.args: List[int] = [_valtype_value(a, name) for a in args]
        self.returns: List[int] = [_valtype_value(r, name) for r in returns]
        self.f = f
        self.user_data: Tuple[Any, ...] = user_data

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the wrapped Python function directly (handy in tests)."""
        return self.f(*args, **kwargs)

    def __reduce__(self) -> Tuple[Any, ...]:
        """Pickled by reference: (namespace, name, signature, the importable name of the callable,
        user data). A callable another process cannot import by name (a lambda, a closure, a
        bound method of a local object) raises ``pickle.PicklingError`` naming it."""
        return _reduce_function(self)

    def __repr__(self) -> str:
        args = ", ".join(map(_valtype_name, getattr(self, "args", ())))
        returns = ", ".join(map(_valtype_name, getattr(self, "returns", ())))
        where = f"{getattr(self, 'namespace', '?')}::{getattr(self, 'name', '?')}"
        return f"{type(self).__name__}({where} ({args}) -> ({returns}))"


def _member_value(v: Any) -> Any:
    """``v``'s value when it is a ValType member, else ``v`` itself (the Enum is not loaded for it)."""
    return v.value if _valtype_class is not None and isinstance(v, _valtype_class) else v


def _valtype_value(v: Any, fn_name: str) -> int:
    """The value of the ValType member ``v`` (TypeError for anything else)."""
    if _valtype_class is not None and isinstance(v, _valtype_class):
        return v.value
    raise TypeError(f"host function {fn_name!r}: signature entries must be ValType, got {v!r}")


def _valtype_name(value: Any) -> str:
    """The ValType name of an entry of Function.args / returns: a value, or a member the program
    put there (repr of anything else)."""
    value = _member_value(value)  # PTR's member is named I64 here
    if type(value) is int and 0 <= value < len(_VALTYPE_NAMES):
        return _VALTYPE_NAMES[value]
    return repr(value)


def _user_data_tuple(user_data: Any) -> Tuple[Any, ...]:
    if user_data is None:
        return ()
    if isinstance(user_data, (list, tuple)):
        return tuple(user_data)
    return (user_data,)


class ExplicitFunction(Function):
    """A host function with an explicit wasm signature, as built by ``host_fn(signature=...)``.

    ``func`` is called as ``func(current_plugin, params, results, *user_data)``. Calling the
    ExplicitFunction object itself calls ``func``.
    """

    def __init__(
        self,
        namespace: Optional[str],
        name: str,
        args: Sequence[ValType],
        returns: Sequence[ValType],
        func: Callable[..., Any],
        user_data: Any = None,
    ) -> None:
        self.func = func
        super().__init__(namespace, name, args, returns, func, *_user_data_tuple(user_data))
        _update_wrapper(self, func)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.func(*args, **kwargs)


def _update_wrapper(wrapper: Any, func: Any) -> None:
    # functools.update_wrapper, minus the __dict__ merge: it must not overwrite our attributes
    # (name, args, ...) with whatever the wrapped object carries.
    for attr in ("__module__", "__name__", "__qualname__", "__doc__"):
        try:
            value = getattr(func, attr)
        except AttributeError:
            continue
        try:
            setattr(wrapper, attr, value)
        except (AttributeError, TypeError):
            pass
    wrapper.__wrapped__ = func


# ---- type inference ---------------------------------------------------------------------------

_SUPPORTED = (
    "int, float, bool, str, bytes, Annotated[T, Json], Annotated[T, Pickle], "
    "Annotated[T, Codec(fn)]"
)

if TYPE_CHECKING:
    # An extractor turns one parameter Val into the Python argument: extract(plugin, slot).
    _Extract = Callable[[Any, Val], Any]
    # An emplacer stores a Python value into one result Val: emplace(plugin, slot, value).
    _Emplace = Callable[[Any, Val, Any], None]


def _type_name(xs: Any) -> str:
    if isinstance(xs, type):
        return xs.__qualname__ if xs.__module__ == "builtins" else f"{xs.__module__}.{xs.__qualname__}"
    return repr(xs)


def _marker(xs: Any) -> Any:
    """The Json / Pickle / Codec marker of an ``Annotated`` type, or None."""
    for item in getattr(xs, "__metadata__", ()):
        if item is Json or isinstance(item, Json):
            return Json
        if item is Pickle or isinstance(item, Pickle):
            return Pickle
        if isinstance(item, Codec):
            return item
    return None


def _annotated_base(xs: Any) -> Any:
    """The ``T`` of ``Annotated[T, ...]`` (``xs`` itself otherwise)."""
    if hasattr(xs, "__metadata__"):
        return getattr(xs, "__origin__", xs)
    return xs


def _extract_int(plugin: Any, slot: Val) -> Any:
    return slot.value


def _extract_float(plugin: Any, slot: Val) -> Any:
    return slot.value


def _extract_bool(plugin: Any, slot: Val) -> Any:
    return bool(slot.value)


def _input_bytes(plugin: Any, slot: Val) -> bytes:
    # Offset 0 is "no block" (an empty string or buffer: the kernel's alloc(0) returns 0).
    return plugin.input_bytes(slot) if slot.value else b""


def _extract_str(plugin: Any, slot: Val) -> Any:
    return _input_bytes(plugin, slot).decode()


def _extract_bytes(plugin: Any, slot: Val) -> Any:
    return _input_bytes(plugin, slot)


def _extract_json(plugin: Any, slot: Val) -> Any:
    import json  # json, pickle, inspect, importlib: loaded when first used (import time)

    return json.loads(_input_bytes(plugin, slot))


def _extract_pickle(plugin: Any, slot: Val) -> Any:
    import pickle

    return pickle.loads(_input_bytes(plugin, slot))


def _map_arg(arg_name: str, xs: Any) -> Tuple[int, _Extract]:
    """The wasm type of a parameter annotated ``xs`` and how to turn its Val into the argument.

    Raises TypeError naming the parameter and the type when ``xs`` is not supported.
    """
    if xs is bool:
        return (_I32, _extract_bool)
    if xs is int:
        return (_I64, _extract_int)
    if xs is float:
        return (_F64, _extract_float)
    if xs is str:
        return (_I64, _extract_str)
    if xs is bytes:
        return (_I64, _extract_bytes)
    marker = _marker(xs)
    if marker is Json:
        return (_I64, _extract_json)
    if marker is Pickle:
        return (_I64, _extract_pickle)
    if isinstance(marker, Codec):
        codec = marker.codec
        return (_I64, lambda plugin, slot: codec(_input_bytes(plugin, slot)))
    base = _annotated_base(xs)
    if base is not xs:
        return _map_arg(arg_name, base)
    raise TypeError(
        f"cannot infer a wasm type for parameter {arg_name!r} annotated {_type_name(xs)} "
        f"(supported: {_SUPPORTED})"
    )


def _emplace_int(plugin: Any, slot: Val, value: Any) -> None:
    slot.value = _index(value)


def _emplace_float(plugin: Any, slot: Val, value: Any) -> None:
    slot.value = float(value)


def _emplace_bool(plugin: Any, slot: Val, value: Any) -> None:
    slot.value = 1 if value else 0


def _emplace_str(plugin: Any, slot: Val, value: Any) -> None:
    if not isinstance(value, str):
        raise TypeError(f"expected a str result, got {type(value).__name__}")
    plugin.return_string(slot, value)


def _emplace_bytes(plugin: Any, slot: Val, value: Any) -> None:
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise TypeError(f"expected a bytes result, got {type(value).__name__}")
    plugin.return_bytes(slot, value)


def _emplace_json(plugin: Any, slot: Val, value: Any) -> None:
    import json

    plugin.return_string(slot, json.dumps(value))


def _emplace_pickle(plugin: Any, slot: Val, value: Any) -> None:
    import pickle

    plugin.return_bytes(slot, pickle.dumps(value))


def _tuple_item(emplace: _Emplace, index: int, arity: int) -> _Emplace:
    def emplace_item(plugin: Any, slot: Val, value: Any) -> None:
        if not isinstance(value, (tuple, list)) or len(value) != arity:
            raise TypeError(
                f"expected a tuple of {arity} results, got "
                + (f"{len(value)} values" if isinstance(value, (tuple, list)) else type(value).__name__)
            )
        emplace(plugin, slot, value[index])

    return emplace_item


def _map_ret(xs: Any) -> List[Tuple[int, _Emplace]]:
    """The wasm result types of a return annotation ``xs``, each with how to store the value.

    Every emplacer takes the function's whole return value: those of a ``Tuple[...]`` pick their
    own item. Raises TypeError when ``xs`` is not supported.
    """
    if xs is None or xs is type(None):
        return []
    if xs is bool:
        return [(_I32, _emplace_bool)]
    if xs is int:
        return [(_I64, _emplace_int)]
    if xs is float:
        return [(_F64, _emplace_float)]
    if xs is str:
        return [(_I64, _emplace_str)]
    if xs is bytes:
        return [(_I64, _emplace_bytes)]
    from typing import get_args, get_origin  # a plain class above needs no typing (_plain_parameters)

    if get_origin(xs) is tuple:
        items = get_args(xs)
        if len(items) == 2 and items[1] is Ellipsis:
            raise TypeError(
                f"cannot infer wasm result types for {_type_name(xs)}: a tuple result needs a "
                f"fixed number of items"
            )
        if items == ((),):  # typing.Tuple[()]
            items = ()
        out: List[Tuple[int, _Emplace]] = []
        for index, item in enumerate(items):
            for t, emplace in _map_ret(item):
                out.append((t, _tuple_item(emplace, index, len(items))))
        return out
    marker = _marker(xs)
    if marker is Json:
        return [(_I64, _emplace_json)]
    if marker is Pickle:
        return [(_I64, _emplace_pickle)]
    if isinstance(marker, Codec):
        codec = marker.codec
        return [(_I64, lambda plugin, slot, value: plugin.return_bytes(slot, codec(value)))]
    base = _annotated_base(xs)
    if base is not xs:
        return _map_ret(base)
    raise TypeError(
        f"cannot infer a wasm result type for the return annotation {_type_name(xs)} "
        f"(supported: {_SUPPORTED}, and Tuple[...] of those)"
    )


def _is_current_plugin(xs: Any) -> bool:
    # By name, not by importing the class: extism_fast._runtime (where ours is defined, an
    # extension, so the name is its only class of that name) imports this module. The official
    # SDK's class too, for code that still annotates with extism.CurrentPlugin.
    return (
        isinstance(xs, type)
        and xs.__name__ == "CurrentPlugin"
        and xs.__module__ in ("extism_fast._runtime", "extism.extism", "extism")
    )


#: What a host function's signature is read from: (its type hints, the names of its positional
#: parameters, those of its keyword-only parameters without a default).
if TYPE_CHECKING:
    _Parameters = Tuple[dict, List[str], List[str]]

_FUNCTION: Any = type(_update_wrapper)  # types.FunctionType (types is not otherwise loaded)


def _plain_parameters(func: Any) -> Optional[_Parameters]:
    """_parameters of a plain Python function whose annotations are all classes or None, read from
    its code object (the same answer: tests/test_host_functions.py), else None. The common host
    function needs neither inspect nor typing, which cost a fresh process ~15 ms."""
    if (type(func) is not _FUNCTION or hasattr(func, "__wrapped__") or hasattr(func, "__signature__")
            or getattr(func, "__no_type_check__", None)):
        return None
    annotations = func.__annotations__
    if not all(value is None or type(value) is type for value in annotations.values()):
        return None  # strings (forward references, __future__ annotations), Annotated, generics
    code = func.__code__
    names = code.co_varnames
    keyword_only = names[code.co_argcount:code.co_argcount + code.co_kwonlyargcount]
    defaults = func.__kwdefaults__ or {}
    hints = {key: type(None) if value is None else value for key, value in annotations.items()}
    return hints, list(names[:code.co_argcount]), [key for key in keyword_only if key not in defaults]


def _parameters(func: Any, label: str) -> _Parameters:
    """The type hints of ``func`` (typing.get_type_hints, extras kept), the names of its positional
    parameters and of its keyword-only parameters without a default (inspect.signature)."""
    import inspect
    import typing

    try:
        hints = typing.get_type_hints(func, include_extras=True)
    except Exception as exc:  # NameError for unresolvable forward references, ...
        raise TypeError(f"host function {label!r}: cannot resolve its annotations: {exc}") from exc
    try:
        parameters = inspect.signature(func).parameters.values()
    except (TypeError, ValueError) as exc:
        raise TypeError(f"host function {label!r}: cannot read its signature: {exc}") from exc
    positional = [p.name for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p.name for p in parameters if p.kind is p.KEYWORD_ONLY and p.default is p.empty]
    return hints, positional, required


class TypeInferredFunction(ExplicitFunction):
    """A host function whose wasm signature is inferred from its Python annotations.

    Built by ``host_fn()`` without ``signature``. Calling the object calls the Python function
    directly, with Python arguments.
    """

    def __init__(
        self,
        namespace: Optional[str],
        name: str,
        func: Callable[..., Any],
        user_data: Any = None,
    ) -> None:
        label = getattr(func, "__name__", None) or name
        hints, positional, required_keywords = _plain_parameters(func) or _parameters(func, label)
        if required_keywords:
            raise TypeError(
                f"host function {label!r}: keyword-only parameter {required_keywords[0]!r} has no default; "
                f"host functions receive positional arguments only"
            )
        uses_current_plugin = False
        if positional and _is_current_plugin(hints.get(positional[0])):
            uses_current_plugin = True
            positional = positional[1:]

        # Trailing unannotated parameters receive the user data (as in the official SDK, where
        # only annotated parameters become wasm parameters).
        n_user_data = len(_user_data_tuple(user_data))
        trailing = 0
        while trailing < len(positional) and positional[-1 - trailing] not in hints:
            trailing += 1
        if 0 < trailing <= n_user_data:
            positional = positional[: len(positional) - trailing]

        if not hints and positional:
            raise TypeError(
                f"host function {label!r} must include Python type annotations or explicitly "
                f"list arguments (host_fn(signature=([params], [results])))"
            )

        mapped: List[Tuple[int, _Extract]] = []
        for parameter in positional:
            if parameter not in hints:
                raise TypeError(
                    f"host function {label!r}: parameter {parameter!r} has no type annotation "
                    f"(supported: {_SUPPORTED})"
                )
            try:
                mapped.append(_map_arg(parameter, hints[parameter]))
            except TypeError as exc:
                raise TypeError(f"host function {label!r}: {exc}") from None
        try:
            returns = _map_ret(hints.get("return"))
        except TypeError as exc:
            raise TypeError(f"host function {label!r}: {exc}") from None

        extractors = tuple(extract for _, extract in mapped)
        emplacers = tuple(emplace for _, emplace in returns)
        self.uses_current_plugin = uses_current_plugin

        if uses_current_plugin:

            def inner_func(plugin: Any, inputs: List[Val], outputs: List[Val], *user_data: Any) -> None:
                result = func(
                    plugin,
                    *[extract(plugin, slot) for extract, slot in zip(extractors, inputs)],
                    *user_data,
                )
                for emplace, slot in zip(emplacers, outputs):
                    emplace(plugin, slot, result)

        else:

            def inner_func(plugin: Any, inputs: List[Val], outputs: List[Val], *user_data: Any) -> None:
                result = func(
                    *[extract(plugin, slot) for extract, slot in zip(extractors, inputs)],
                    *user_data,
                )
                for emplace, slot in zip(emplacers, outputs):
                    emplace(plugin, slot, result)

        super().__init__(namespace, name, (), (), inner_func, user_data)
        self.args = [t for t, _ in mapped]  # ValType values, which the constructor does not take
        self.returns = [t for t, _ in returns]
        # The ABI-level callable is inner_func; calling the object calls the user's function.
        self.f = inner_func
        self.func = func
        _update_wrapper(self, func)


# ---- pickling by reference --------------------------------------------------------------------


def _import_object(module: str, qualname: str) -> Any:
    """The object named ``qualname`` in module ``module`` (importing it)."""
    import importlib

    found: Any = importlib.import_module(module)
    for part in qualname.split("."):
        found = getattr(found, part)
    return found


def _importable_as(obj: Any, module: Any, qualname: Any) -> bool:
    """Whether importing ``module`` and following ``qualname`` gives ``obj`` back."""
    if not isinstance(module, str) or not isinstance(qualname, str) or "<" in qualname:
        return False  # <lambda>, <locals>: nothing another process can import
    try:
        found = _import_object(module, qualname)
    except Exception:  # ImportError, AttributeError, or whatever importing the module raises
        return False
    import inspect

    return found is obj or (inspect.ismethod(obj) and found == obj)  # a classmethod: a new object each time


#: What the script being run is called: by these names, another process finds its own main module
#: (a Dask or Ray worker's, or none) or, under multiprocessing, the script run again.
_MAIN_MODULES = ("__main__", "__mp_main__")


def _refuse_main(where: str, name: str, *modules: Any) -> None:
    """PicklingError when any of ``modules`` is the script being run: a reference into it is not
    what another process resolves (an AttributeError there, or another function of that name)."""
    if any(module in _MAIN_MODULES for module in modules):
        import pickle

        raise pickle.PicklingError(
            f"cannot pickle {where}: {name} is defined in the script being run (__main__), which "
            f"another process cannot import by that name; move it into a module of its own (e.g. "
            f"host_functions.py beside the script) and import it from there"
        )


def _reduce_function(fn: Function) -> Tuple[Any, ...]:
    where = f"host function {fn.namespace}::{fn.name}"
    module, qualname = fn.__dict__.get("__module__"), fn.__dict__.get("__qualname__")
    target = fn.func if isinstance(fn, ExplicitFunction) else fn.f
    name = f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', repr(target))}"
    _refuse_main(where, f"its callable {name}", module, getattr(target, "__module__", None))
    _refuse_main(where, f"its class {type(fn).__qualname__}", type(fn).__module__)
    if _importable_as(fn, module, qualname):  # a module-level @host_fn: the object itself by name
        return (_import_object, (module, qualname))
    if not _importable_as(target, getattr(target, "__module__", None), getattr(target, "__qualname__", None)):
        import pickle

        raise pickle.PicklingError(
            f"cannot pickle {where}: its callable {name} cannot be imported by name in another process "
            f"(a lambda, a closure or nested function, or a bound method of a local object); define it "
            f"with def at the top level of an importable module and pass that function"
        )
    kind = type(fn)
    if kind is TypeInferredFunction:
        return (TypeInferredFunction, (fn.namespace, fn.name, target, fn.user_data))
    if kind in (ExplicitFunction, Function):  # the constructor takes ValType members
        valtype = _load_valtype()
        args, returns = [valtype(t) for t in fn.args], [valtype(t) for t in fn.returns]
        if kind is ExplicitFunction:
            return (ExplicitFunction, (fn.namespace, fn.name, args, returns, target, fn.user_data))
        return (Function, (fn.namespace, fn.name, args, returns, target, *fn.user_data))
    # A subclass of the program's own: its class by name and its attributes (the checked callable
    # among them) as they are.
    import copyreg

    return (copyreg.__newobj__, (kind,), dict(fn.__dict__))  # type: ignore[attr-defined]


#: Functions registered with :func:`host_fn`; ``Plugin`` uses them when ``functions`` is not given.
#: The list host/registry.py holds (the same object), which Plugin gets without loading this module.
HOST_FN_REGISTRY: List[Function] = _REGISTRY


def host_fn(
    name: Optional[str] = None,
    namespace: Optional[str] = None,
    signature: Optional[Tuple[Sequence[ValType], Sequence[ValType]]] = None,
    user_data: Any = None,
) -> Callable[[Callable[..., Any]], ExplicitFunction]:
    """Decorator making a host function and registering it in :data:`HOST_FN_REGISTRY`.

    :param name: the import name (default: the function's ``__name__``).
    :param namespace: the import module (default ``"extism:host/user"``).
    :param signature: ``([params], [results])`` of :class:`ValType`: the function is then called
        as ``f(current_plugin, params, results, *user_data)`` with lists of :class:`Val`.
        Without it the signature is inferred from the annotations (see the module docstring).
        ``@host_fn`` without parentheses works too.
    :param user_data: passed as extra trailing positional arguments: a list or tuple gives one
        argument per item, anything else (e.g. ``bytes``) one argument.

    .. sourcecode:: python

        @host_fn()
        def greet(who: str) -> str:
            return f"hello {who}"

        @host_fn(signature=([ValType.I64], [ValType.I64]), user_data=b"x")
        def raw(current_plugin, params, results, user_data):
            results[0].value = params[0].value
    """
    if callable(name) and namespace is None and signature is None and user_data is None:
        return host_fn()(name)  # used bare, as @host_fn
    if signature is not None:
        if not isinstance(signature, (tuple, list)) or len(signature) != 2:
            raise TypeError(f"host_fn: signature must be ([params], [results]), got {signature!r}")
    extra = _user_data_tuple(user_data)

    def outer(func: Callable[..., Any]) -> ExplicitFunction:
        n = name or getattr(func, "__name__", None)
        if not n:
            raise TypeError(f"host_fn: cannot infer a name for {func!r}; pass name=")
        fn: ExplicitFunction
        if signature is None:
            fn = TypeInferredFunction(namespace, n, func, extra)
        else:
            fn = ExplicitFunction(namespace, n, signature[0], signature[1], func, extra)
        HOST_FN_REGISTRY.append(fn)
        return fn

    return outer
