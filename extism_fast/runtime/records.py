"""``record(typename, field_names)``: a tuple class with named fields, as ``collections.namedtuple``
makes, for the tuples a first plugin makes (runtime/options.py, runtime/compile_cache.py):
collections (and what it imports: keyword, reprlib, ...) costs a fresh process ~2 ms it does not
otherwise need (tests/test_cold_start.py). What the package uses of namedtuple's API is here:
positional or keyword construction, fields by name, ``_fields``, ``_replace``, ``_asdict``,
``_make``, the repr, tuple equality and pickling by class name. Type checkers see a namedtuple
(the modules import collections.namedtuple as ``record`` under ``TYPE_CHECKING``)."""

from __future__ import annotations

import sys

try:  # namedtuple's own field descriptor (a builtin module of CPython's): fields read as fast
    from _collections import _tuplegetter  # type: ignore[import-not-found]  # no stub (private)
except ImportError:  # as collections does without it
    from operator import itemgetter

    def _tuplegetter(index: int, doc: str) -> property:  # type: ignore[no-redef]
        return property(itemgetter(index), doc=doc)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Iterable

__all__ = ["record"]


def record(typename: str, field_names: Iterable[str]) -> type:
    """A tuple subclass named ``typename``, of the calling module (as namedtuple's), whose items
    are ``field_names``, read by name."""
    fields = tuple(field_names)
    if not fields or not all(name.isidentifier() and not name.startswith("_") for name in fields) or len(set(fields)) != len(fields):
        raise ValueError(f"{typename}: field names must be one or more distinct identifiers not starting with _: {fields}")
    arguments = ", ".join(fields)
    namespace: dict = {"_tuple_new": tuple.__new__}
    # A __new__ with one parameter per field, as namedtuple's: keyword arguments, and a missing or
    # extra field is a TypeError naming it.
    exec(f"def __new__(_cls, {arguments}):\n    return _tuple_new(_cls, ({arguments},))", namespace)

    def _make(cls: type, iterable: Iterable[Any]) -> Any:
        values: Any = tuple.__new__(cls, iterable)
        if len(values) != len(fields):
            raise TypeError(f"{cls.__name__}: expected {len(fields)} values, got {len(values)}")
        return values

    def _replace(self: Any, **changes: Any) -> Any:
        values = self._make(map(changes.pop, fields, self))
        if changes:
            raise ValueError(f"{type(self).__name__}: no field named {', '.join(changes)}")
        return values

    def _asdict(self: Any) -> dict:
        return dict(zip(fields, self))

    def __repr__(self: Any) -> str:
        return f"{type(self).__name__}({', '.join(f'{name}={value!r}' for name, value in zip(fields, self))})"

    def __getnewargs__(self: Any) -> tuple:  # pickle and copy: __new__(cls, *fields)
        return tuple(self)

    body = {
        "__slots__": (), "__doc__": f"{typename}({arguments})", "_fields": fields, "__match_args__": fields,
        "__new__": namespace["__new__"], "_make": classmethod(_make), "_replace": _replace, "_asdict": _asdict,
        "__repr__": __repr__, "__getnewargs__": __getnewargs__,
        **{name: _tuplegetter(index, f"Alias for field number {index}") for index, name in enumerate(fields)},
    }
    body["__module__"] = sys._getframe(1).f_globals.get("__name__", "__main__")  # the caller's, as namedtuple
    return type(typename, (tuple,), body)
