"""Host functions and probes for the Dask and Ray tests (tests/test_dask.py, tests/test_ray.py).

Worker processes import this module by name (the tests put tests/ on their PYTHONPATH), so the
host functions pickle by reference, as a user's must.
"""

from __future__ import annotations

import os
import signal

from extism_fast import Function, ValType
from extism_fast import _workers


def hello(current_plugin, params, results, marker: str) -> None:
    """hello_world of host_user.wat: "Hi, NAME!". "bad" raises (that item fails); "kill" kills
    the worker process the first time (when ``marker`` does not exist yet; it is created first)."""
    name = current_plugin.input_string(params[0])
    if name == "bad":
        raise ValueError("bad item")
    if name == "kill" and marker and not os.path.exists(marker):
        with open(marker, "w") as f:
            f.write(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    current_plugin.return_string(results[0], f"Hi, {name}!")


def add(current_plugin, params, results) -> None:
    results[0].value = params[0].value + params[1].value


def mul(current_plugin, params, results) -> None:
    results[0].value = params[0].value * params[1].value


def nothing(current_plugin, params, results) -> None:
    pass


def host_functions(marker: str = "") -> list:
    """The four imports of host_user.wat."""
    return [
        Function("extism:host/user", "hello_world", [ValType.I64], [ValType.I64], hello, marker),
        Function("extism:host/user", "add_i32", [ValType.I32, ValType.I32], [ValType.I32], add),
        Function("extism:host/user", "mul_f64", [ValType.F64, ValType.F64], [ValType.F64], mul),
        Function("extism:host/user", "nothing", [], [], nothing),
    ]


def pool_sizes() -> list:
    """The sizes of this process's cached pools (run on each worker by the tests)."""
    return [pool.size for pool in _workers._pools.values()]
