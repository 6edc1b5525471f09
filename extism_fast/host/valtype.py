"""ValType: the wasm value types of host function signatures, the official SDK's Enum.

A module of its own so that enum (with functools and collections: ~4 ms of a fresh process) loads
when a program names ValType, not with every host function: a signature holds ValType's values
(ints, as the official SDK's ``Function.args`` does), host/functions.py's ``_I32`` ... ``_EXTERN_REF``
(tests/test_host_functions.py checks that the two agree).
"""

from enum import Enum


class ValType(Enum):
    """WebAssembly value types of host-function parameters and results (``PTR`` = ``I64``).

    As the official SDK's: PTR comes first, so it names the value 1 (I64 is its alias).
    """

    I32 = 0
    PTR = 1
    I64 = 1
    F32 = 2
    F64 = 3
    V128 = 4
    FUNC_REF = 5
    EXTERN_REF = 6
