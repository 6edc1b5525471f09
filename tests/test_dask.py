"""extism_fast.dask on a local Dask cluster of two worker processes (extism_fast only: the official
SDK has no Dask integration, and its plugins do not pickle).

The cluster's workers import the host functions from tests/dist_helpers.py (tests/ and the
repository root are put on their PYTHONPATH), as a user's workers import theirs.
"""

from __future__ import annotations

import os
import sys

import pytest

dask = pytest.importorskip("dask", reason="the dask extra (part of the test extra) is not installed")
distributed = pytest.importorskip("distributed")
import dask.bag as db  # noqa: E402
import dask.dataframe as dd  # noqa: E402
import pandas as pd  # noqa: E402

import extism_fast as ef  # noqa: E402
import dist_helpers  # noqa: E402
from conftest import REPO_ROOT  # noqa: E402
from extism_fast.dask import map_bag, map_column  # noqa: E402

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))


def worker_path() -> str:
    """PYTHONPATH for worker processes: tests/ (dist_helpers), the repository (this build)."""
    return os.pathsep.join([TESTS_DIR, str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)


@pytest.fixture(scope="module")
def client():
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = worker_path()
    try:
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           host="127.0.0.1", dashboard_address=None)
    finally:
        if saved is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = saved
    with cluster, distributed.Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def compiled(plugin_wasm):
    return ef.CompiledPlugin(plugin_wasm("host_user"), functions=dist_helpers.host_functions())


def local_call_many(compiled, names):
    with ef.Plugin(compiled) as plugin:
        return plugin.call_many("call_hello", names)


def test_map_bag_runs_host_functions_on_workers_in_order(client, compiled):
    names = [f"name{i}" for i in range(300)]
    bag = db.from_sequence(names, npartitions=12)
    out = map_bag(compiled, "call_hello", bag).compute()
    assert out == local_call_many(compiled, names)
    assert out[7] == b"Hi, name7!"  # made by the host function, on a worker
    # One pool per worker process for this plugin, sized to the worker's one thread.
    sizes = client.run(dist_helpers.pool_sizes)
    assert sorted(sizes) == sorted(client.scheduler_info()["workers"]) and all(s == [1] for s in sizes.values())


def test_map_bag_one_bad_item(client, compiled):
    names = ["a", "b", "bad", "c", b"d", 7]
    out = map_bag(compiled, "call_hello", db.from_sequence(names, npartitions=2), errors="return").compute()
    assert out[:2] == [b"Hi, a!", b"Hi, b!"] and out[3:5] == [b"Hi, c!", b"Hi, d!"]
    assert isinstance(out[2], ef.HostFunctionError) and "bad item" in str(out[2])
    assert isinstance(out[5], TypeError) and "item 2 of the partition is of type int" in str(out[5])
    with pytest.raises(ef.HostFunctionError, match="bad item"):
        map_bag(compiled, "call_hello", db.from_sequence(names[:3], npartitions=1)).compute()


def test_map_column_text_bytes_and_error_column(client, compiled):
    frame = pd.DataFrame({"name": ["x", "bad", None, "z"], "raw": [b"1", b"2", b"3", b"4"]},
                         index=[10, 11, 12, 13])
    df = dd.from_pandas(frame, npartitions=2)
    raw = map_column(compiled, "call_hello", df["raw"]).compute()
    assert raw.name == "raw" and list(raw.index) == [10, 11, 12, 13]
    assert raw.tolist() == local_call_many(compiled, frame["raw"].tolist())
    res = map_column(compiled, "call_hello", df["name"], errors="return", output="str").compute()
    assert list(res.columns) == ["output", "error"] and list(res.index) == [10, 11, 12, 13]
    assert res["output"][10] == "Hi, x!" and res["output"][13] == "Hi, z!"
    assert pd.isna(res["output"][11]) and res["error"][11].startswith("HostFunctionError: ")
    assert res["error"][12] == "InputTypeError: the item at index 12 is missing (None/NA), not bytes or str"
    assert pd.isna(res["error"][10])
    with pytest.raises(TypeError, match="the item at index 12 is missing"):
        map_column(compiled, "call_hello", df["name"].loc[12:]).compute()


def test_worker_killed_mid_run_loses_and_duplicates_nothing(client, compiled, plugin_wasm, tmp_path):
    marker = str(tmp_path / "killed")
    killer = ef.CompiledPlugin(plugin_wasm("host_user"), functions=dist_helpers.host_functions(marker))
    names = [f"n{i}" for i in range(40)]
    names[25] = "kill"
    out = map_bag(killer, "call_hello", db.from_sequence(names, npartitions=4)).compute()
    assert os.path.exists(marker)  # a worker process did die in the middle of a partition
    assert out == [f"Hi, {n}!".encode() for n in names]


def test_bad_arguments_and_missing_dask(compiled, monkeypatch):
    bag = db.from_sequence(["a"])
    with pytest.raises(ValueError, match="errors must be 'raise' or 'return', got 'ignore'"):
        map_bag(compiled, "call_hello", bag, errors="ignore")
    with pytest.raises(ValueError, match="output must be 'bytes' or 'str'"):
        map_column(compiled, "call_hello", dd.from_pandas(pd.DataFrame({"a": ["x"]}), npartitions=1)["a"],
                   output="text")
    with pytest.raises(TypeError, match=r"compile options \['wasi'\] given with a CompiledPlugin"):
        map_bag(compiled, "call_hello", bag, wasi=True)
    monkeypatch.setitem(sys.modules, "dask.bag", None)
    with pytest.raises(ImportError, match=r"pip install 'extism_fast\[dask\]'"):
        map_bag(compiled, "call_hello", bag)


def test_map_bag_on_the_threaded_scheduler_without_a_cluster(compiled):
    """No distributed worker: partitions run on this process's own pool (of size=2), same outputs."""
    names = [f"t{i}" for i in range(50)]
    bag = db.from_sequence(names, npartitions=3)
    out = map_bag(compiled, "call_hello", bag, size=2).compute(scheduler="threads")
    assert out == local_call_many(compiled, names)
    assert 2 in dist_helpers.pool_sizes()  # this process's pool for size=2
