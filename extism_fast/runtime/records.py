"""``record(typename, field_names)``: a tuple class with named fields, as ``collections.namedtuple``
makes, for the tuples a first plugin makes (runtime/options.py, runtime/compile_cache.py):
collections (and what it imports: keyword, reprlib, ...) costs a fresh process ~2 ms it does not
otherwise need (tests/test_cold_start.py). What the package uses of namedtuple's API is here:
positional or keyword construction, fields by name, ``_fields``, ``_replace``, ``_asdict``,
``_make``, the repr, tuple equality and pickling by class name. Type checkers see a namedtuple
(the modules import collections.namedtuple as ``record`` under ``TYPE_CHECKING``)."""

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

_MISSING = object()  # a field not given


# The methods every record class shares (its fields are its _fields).

def _make(cls: type, iterable: "Iterable[Any]") -> "Any":
    values: Any = tuple.__new__(cls, iterable)
    if len(values) != len(cls._fields):  # type: ignore[attr-defined]
        raise TypeError(f"{cls.__name__}: expected {len(cls._fields)} values, got {len(values)}")  # type: ignore[attr-defined]
    return values


def _replace(self: "Any", **changes: "Any") -> "Any":
    values = self._make(map(changes.pop, self._fields, self))
    if changes:
        raise ValueError(f"{type(self).__name__}: no field named {', '.join(changes)}")
    return values


def _asdict(self: "Any") -> dict:
    return dict(zip(self._fields, self))


def _repr(self: "Any") -> str:
    return f"{type(self).__name__}({', '.join(f'{name}={value!r}' for name, value in zip(self._fields, self))})"


def _getnewargs(self: "Any") -> tuple:  # pickle and copy: __new__(cls, *fields)
    return tuple(self)


def record(typename: str, field_names: "Iterable[str]") -> type:
    """A tuple subclass named ``typename``, of the calling module (as namedtuple's), whose items
    are ``field_names``, read by name."""
    fields = tuple(field_names)
    if not fields or not all(name.isidentifier() and not name.startswith("_") for name in fields) or len(set(fields)) != len(fields):
        raise ValueError(f"{typename}: field names must be one or more distinct identifiers not starting with _: {fields}")
    count = len(fields)

    def __new__(_cls: type, *args: "Any", **kwargs: "Any") -> "Any":
        # namedtuple's checks (a missing, extra or unknown field is a TypeError naming it), without
        # compiling a __new__ per record as namedtuple does: ~0.1 ms of a fresh process each.
        if len(args) > count:
            raise TypeError(f"{typename}.__new__() takes {count + 1} positional arguments but {len(args) + 1} "
                            f"were given")
        if kwargs or len(args) < count:
            args += tuple([kwargs.pop(name, _MISSING) for name in fields[len(args):]])
            if kwargs:
                name = next(iter(kwargs))
                given = "multiple values for" if name in fields else "an unexpected keyword"
                raise TypeError(f"{typename}.__new__() got {given} argument '{name}'")
            missing = [repr(name) for name, value in zip(fields, args) if value is _MISSING]
            if missing:
                raise TypeError(f"{typename}.__new__() missing {len(missing)} required positional "
                                f"argument{'s' if len(missing) > 1 else ''}: {', '.join(missing)}")
        return tuple.__new__(_cls, args)

    body = {
        "__slots__": (), "__doc__": f"{typename}({', '.join(fields)})", "_fields": fields, "__match_args__": fields,
        "__new__": __new__, "_make": classmethod(_make), "_replace": _replace, "_asdict": _asdict, "__repr__": _repr,
        "__getnewargs__": _getnewargs,
        **{name: _tuplegetter(index, f"Alias for field number {index}") for index, name in enumerate(fields)},
    }
    body["__module__"] = sys._getframe(1).f_globals.get("__name__", "__main__")  # the caller's, as namedtuple
    return type(typename, (tuple,), body)
