"""Arrow in, Arrow out: the pyarrow-facing half of ``call_many(..., output="arrow")``.

:meth:`Plugin.call_many` and :meth:`PluginPool.map` take a ``pyarrow`` Array or ChunkedArray of
``binary``, ``large_binary``, ``string`` or ``large_string`` as their inputs: the calls read each
item straight from the array's offsets and data buffers (no Python object per item). With
``output="arrow"`` they return a ``pyarrow.LargeBinaryArray`` (``output="arrow_string"``: a
``large_string`` array, checked to be UTF-8) whose data, int64 offsets and validity buffers were
filled in C; a ChunkedArray input gives a ChunkedArray output.

A null input item is an error for that item (the plugin is not called for it): ``ValueError``
naming its index, or with ``return_exceptions=True`` a null output and its error. With
``return_exceptions=True`` an Arrow output is a struct array ``{output, error}``: ``output`` is
null where the call failed, ``error`` (``large_string``) is null where it succeeded and otherwise
``"<ErrorClass>: <message>"``. Without it the first failure raises its Error, its message prefixed
with ``"input <index>: "``; the raised Error also has ``input_index`` (that index) and
``item_error`` (the Error as the call gave it, unprefixed).

pyarrow is optional: ``pip install 'extism_fast[arrow]'``. The compiled half (reading the
buffers, running the calls, filling the output buffers) is ``extism_fast/_arrow.pxi``.
"""

from __future__ import annotations

import sys
from typing import Any, List, Optional, Sequence, Tuple

__all__ = ["OUTPUTS", "is_arrow", "require_pyarrow"]

#: The ``output=`` values of ``call_many`` / ``PluginPool.map``: None (a list, as ``parse`` asks),
#: "arrow" (a large_binary array) or "arrow_string" (a large_string array).
OUTPUTS = (None, "arrow", "arrow_string")

_MISSING = "{what} needs pyarrow, which is not installed: pip install 'extism_fast[arrow]'"


def require_pyarrow(what: str = "Arrow input/output") -> Any:
    """The ``pyarrow`` module; ImportError naming the ``extism_fast[arrow]`` extra when missing."""
    try:
        import pyarrow
    except ImportError:
        raise ImportError(_MISSING.format(what=what)) from None
    return pyarrow


def is_arrow(obj: Any) -> bool:
    """True for a pyarrow Array or ChunkedArray (without importing pyarrow when it is not loaded:
    an object of it cannot exist then)."""
    pa = sys.modules.get("pyarrow")
    return pa is not None and isinstance(obj, (pa.Array, pa.ChunkedArray))


def is_chunked_array(obj: Any) -> bool:
    """True for a pyarrow ChunkedArray."""
    pa = sys.modules.get("pyarrow")
    return pa is not None and isinstance(obj, pa.ChunkedArray)


def output_type(output: Optional[str]) -> Any:
    """The Arrow type of an ``output=`` value (None: a list, no type); ValueError otherwise."""
    if output is None:
        return None
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS!r}, got {output!r}")
    pa = require_pyarrow(f"output={output!r}")
    return pa.large_string() if output == "arrow_string" else pa.large_binary()


def is_text_type(arrow_type: Any) -> bool:
    """Whether items of this type are inputs: binary, string, large_*, or a dictionary of those."""
    pa = require_pyarrow()
    if pa.types.is_dictionary(arrow_type):
        arrow_type = arrow_type.value_type
    return arrow_type in (pa.binary(), pa.string(), pa.large_binary(), pa.large_string())


def decoded(inputs: Any) -> Any:
    """``inputs`` (an Array or ChunkedArray) with a dictionary of binary or string values (what
    many Parquet writers make of a string column) decoded to its value type: the calls read
    plain offsets and data. A copy of the values; any other input is returned as it is."""
    pa = require_pyarrow()
    if pa.types.is_dictionary(inputs.type) and is_text_type(inputs.type):
        return inputs.cast(inputs.type.value_type)
    return inputs


def input_chunks(inputs: Any) -> Tuple[List[Any], int, bool]:
    """The arrays of an Array or ChunkedArray input (dictionary-encoded ones decoded), the byte
    width of their offsets (4 or 8), and whether it was a ChunkedArray; TypeError for other types."""
    pa = require_pyarrow()
    inputs = decoded(inputs)
    chunked = isinstance(inputs, pa.ChunkedArray)
    chunks = inputs.chunks if chunked else [inputs]
    t = inputs.type
    if t in (pa.binary(), pa.string()):
        return chunks, 4, chunked
    if t in (pa.large_binary(), pa.large_string()):
        return chunks, 8, chunked
    raise TypeError(f"Arrow inputs must be binary, large_binary, string or large_string (or a dictionary "
                    f"of one of them), got {t}")


def from_buffers(out_type: Any, length: int, null_count: int, validity: Any, offsets: Any, data: Any) -> Any:
    """An array of ``out_type`` over buffers C filled (objects with the buffer protocol, kept
    alive by the array; ``validity`` None when nothing is null). A large_string is checked to be
    UTF-8 (ValueError naming the first bad item)."""
    pa = sys.modules["pyarrow"]
    buffers = [None if validity is None else pa.py_buffer(validity), pa.py_buffer(offsets), pa.py_buffer(data)]
    array = pa.Array.from_buffers(out_type, length, buffers, null_count)
    if out_type == pa.large_string():
        _check_utf8(array)
    return array


def _check_utf8(array: Any) -> None:
    try:
        array.validate(full=True)
    except Exception:
        pa = sys.modules["pyarrow"]
        as_binary = array.view(pa.large_binary())
        for i in range(len(array)):  # only on failure: find the item to name
            item = as_binary[i].as_py()
            if item is not None:
                try:
                    item.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise ValueError(f"output {i} is not UTF-8 ({exc.reason}): use output='arrow' "
                                     f"for binary outputs") from None
        raise


def with_errors(outputs: Any, errors: Any) -> Any:
    """The ``return_exceptions=True`` result: a struct array ``{output, error}``."""
    pa = sys.modules["pyarrow"]
    return pa.StructArray.from_arrays([outputs, errors], names=["output", "error"])


def error_text(error: BaseException) -> str:
    """How an item's error reads in the ``error`` column."""
    return f"{type(error).__name__}: {error}"


def combine(pieces: Sequence[Any], chunked: bool, out_type: Any, return_exceptions: bool) -> Any:
    """One result from the results of consecutive pieces of the input: a list (``out_type``
    None), a ChunkedArray (``chunked``) or an Array (concatenated: one copy of the outputs)."""
    if out_type is None:
        return [item for piece in pieces for item in piece]
    pa = sys.modules["pyarrow"]
    if return_exceptions:
        out_type = pa.struct([("output", out_type), ("error", pa.large_string())])
    arrays = [chunk for piece in pieces for chunk in (piece.chunks if isinstance(piece, pa.ChunkedArray) else [piece])]
    if chunked:
        return pa.chunked_array(arrays, type=out_type)
    if len(arrays) == 1:
        return arrays[0]
    return pa.concat_arrays(arrays) if arrays else pa.array([], type=out_type)


def split(inputs: Any, chunk_size: int) -> List[Tuple[int, Any]]:
    """(start index, piece) for consecutive pieces of at most ``chunk_size`` items: zero-copy
    slices of an Arrow array, or list slices."""
    if is_arrow(inputs):
        return [(start, inputs.slice(start, chunk_size)) for start in range(0, len(inputs), chunk_size)]
    items = inputs if isinstance(inputs, list) else list(inputs)
    return [(start, items[start : start + chunk_size]) for start in range(0, len(items), chunk_size)]
