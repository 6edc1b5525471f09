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
from extism_fast.dask import _column_partition, map_bag, map_column  # noqa: E402
from extism_fast._workers import InputTypeError, PluginRef  # noqa: E402

pa = pytest.importorskip("pyarrow")

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


ARROW_DTYPES = [pd.ArrowDtype(pa.binary()), pd.ArrowDtype(pa.large_binary()), pd.ArrowDtype(pa.string()),
                pd.ArrowDtype(pa.large_string()), pd.StringDtype("pyarrow")]


def arrow_series(values, dtype, index, chunks=1):
    """A Series of ``dtype`` over a ChunkedArray of ``chunks`` chunks (None stays missing)."""
    t = dtype.pyarrow_dtype if isinstance(dtype, pd.ArrowDtype) else pa.large_string()
    values = [v if v is None or t in (pa.string(), pa.large_string()) else v.encode() for v in values]
    step = -(-len(values) // chunks)
    column = pa.chunked_array([pa.array(values[i:i + step], t) for i in range(0, len(values), step)], t)
    return pd.Series(dtype.__from_arrow__(column), index=index, name="col")


def data_addresses(chunked):
    return [chunk.buffers()[2].address for chunk in chunked.chunks]


@pytest.mark.parametrize("dtype", ARROW_DTYPES, ids=str)
def test_arrow_backed_partition_takes_the_arrow_path(compiled, map_inputs, dtype):
    """In-process: the partition's own Arrow array goes to pool.map (no copy), outputs come back
    Arrow-backed and equal the local call_many; the dtypes are the meta's."""
    names = [f"name{i}" for i in range(40)]
    series = arrow_series(names, dtype, index=range(100, 140), chunks=3)
    ref = PluginRef(compiled, size=2)
    out = _column_partition(series, ref, "call_hello", "raise", "bytes")
    [(inputs, output)] = map_inputs
    assert output == "arrow" and data_addresses(inputs) == data_addresses(series.array._pa_array)
    assert out.dtype == pd.ArrowDtype(pa.large_binary()) and out.name == "col"
    assert list(out.index) == list(range(100, 140)) and out.tolist() == local_call_many(compiled, names)
    text = _column_partition(series, ref, "call_hello", "return", "str")
    meta = map_column(compiled, "call_hello", dd.from_pandas(series, npartitions=1), errors="return", output="str")
    arrow_text = pd.StringDtype("pyarrow")
    assert dict(text.dtypes) == dict(meta.dtypes) == {"output": arrow_text, "error": arrow_text}
    assert text["output"].tolist() == [b.decode() for b in out] and text["error"].isna().all()
    assert map_column(compiled, "call_hello", dd.from_pandas(series, npartitions=1)).dtype == out.dtype


def test_object_partition_keeps_the_list_path(compiled, map_inputs):
    series = pd.Series([b"a", "b"], dtype=object, index=[5, 6])
    out = _column_partition(series, PluginRef(compiled, size=1), "call_hello", "raise", "bytes")
    assert out.dtype == object and out.tolist() == [b"Hi, a!", b"Hi, b!"]
    assert [type(inputs) for inputs, _ in map_inputs] == [list]


def test_arrow_partition_errors_read_as_the_list_path_s(compiled, plugin_wasm):
    """Missing values, failed calls and (output="str") outputs that are not UTF-8: the same error
    texts on both paths, missing values named by their index; with errors="raise" the first one."""
    ref = PluginRef(compiled, size=2)
    names = ["x", "bad", None, "z", None]
    index = [10, 11, 12, 13, 14]
    listed = _column_partition(pd.Series(names, dtype=object, index=index), ref, "call_hello", "return", "str")
    for chunks in (1, 2):
        arrow = _column_partition(arrow_series(names, pd.StringDtype("pyarrow"), index, chunks), ref,
                                  "call_hello", "return", "str")
        assert arrow["error"].tolist() == listed["error"].tolist()
        assert arrow["output"].tolist() == listed["output"].tolist()
    assert arrow["error"][12] == "InputTypeError: the item at index 12 is missing (None/NA), not bytes or str"
    assert arrow["error"][11].startswith("HostFunctionError: ") and pd.isna(arrow["output"][11])
    with pytest.raises(InputTypeError, match=r"^the item at index 12 is missing \(None/NA\), not bytes or str$"):
        _column_partition(arrow_series(names, pd.ArrowDtype(pa.string()), index), ref, "call_hello", "raise", "bytes")
    with pytest.raises(ef.HostFunctionError, match=r"^the item at index 11: .*bad item"):
        _column_partition(arrow_series(names[:2], pd.ArrowDtype(pa.string()), index[:2]), ref, "call_hello",
                          "raise", "bytes")
    echo = PluginRef(ef.CompiledPlugin(plugin_wasm("kernel"), functions=[]), size=1)
    raw = ["ok", None, "\udcff", "é"]  # "\udcff": the byte 0xff once encoded with surrogateescape
    data = [v if v is None else v.encode("utf-8", "surrogateescape") for v in raw]
    both = [_column_partition(series, echo, "echo", "return", "str")
            for series in (pd.Series(data, dtype=object), pd.Series(pd.ArrowDtype(pa.binary()).__from_arrow__(
                pa.chunked_array([pa.array(data[:2]), pa.array(data[2:])]))))]
    assert both[0]["error"].tolist() == both[1]["error"].tolist()
    assert both[1]["error"][2].startswith("UnicodeDecodeError: 'utf-8' codec can't decode byte 0xff")
    assert both[1]["output"].tolist() == ["ok", pd.NA, pd.NA, "é"]
    with pytest.raises(UnicodeDecodeError):
        _column_partition(pd.Series(pd.ArrowDtype(pa.binary()).__from_arrow__(pa.array(data[2:]))), echo,
                          "echo", "raise", "str")


def test_map_column_over_an_arrow_dtype_column_on_the_cluster(client, compiled):
    names = [f"r{i}" for i in range(60)]
    names[33] = None
    frame = pd.DataFrame({"raw": arrow_series(names, pd.ArrowDtype(pa.binary()), range(60))})
    res = map_column(compiled, "call_hello", dd.from_pandas(frame, npartitions=3)["raw"], errors="return").compute()
    assert res["output"].dtype == pd.ArrowDtype(pa.large_binary()) and res["error"].dtype == pd.StringDtype("pyarrow")
    expected = local_call_many(compiled, [n or "" for n in names])
    assert [o for i, o in enumerate(res["output"]) if i != 33] == [e for i, e in enumerate(expected) if i != 33]
    assert res["error"][33] == "InputTypeError: the item at index 33 is missing (None/NA), not bytes or str"
