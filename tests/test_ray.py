"""extism_fast.ray.PluginMapper in Ray Data's map_batches on a local Ray (extism_fast only: the
official SDK has no Ray integration, and its plugins do not pickle).

One test: starting Ray takes several seconds. Actors import the host functions from
tests/dist_helpers.py (tests/ and the repository root are put on their PYTHONPATH).
"""

from __future__ import annotations

import os

import pytest

ray = pytest.importorskip("ray", reason="the ray extra (part of the test extra) is not installed")
pytest.importorskip("ray.data")
pa = pytest.importorskip("pyarrow")

import extism_fast as ef  # noqa: E402
import dist_helpers  # noqa: E402
from extism_fast.ray import PluginMapper  # noqa: E402
from test_dask import worker_path  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Ray Data's own, at import


@pytest.fixture(scope="module")
def local_ray():
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = worker_path()
    try:
        ray.init(num_cpus=2, _node_ip_address="127.0.0.1", include_dashboard=False,
                 runtime_env={"env_vars": {"PYTHONPATH": worker_path()}}, logging_level="ERROR",
                 log_to_driver=False)
    finally:
        if saved is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = saved
    try:
        yield ray
    finally:
        ray.shutdown()


def test_map_batches_on_arrow_batches(local_ray, plugin_wasm):
    import ray.data

    compiled = ef.CompiledPlugin(plugin_wasm("host_user"), functions=dist_helpers.host_functions())
    names = [f"name{i}" for i in range(200)]
    names[57] = "bad"
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True
    table = pa.table({"id": list(range(200)), "text": names})
    ds = ray.data.from_arrow([table.slice(i, 50) for i in range(0, 200, 50)])  # 4 blocks
    out = ds.map_batches(PluginMapper, fn_constructor_args=(compiled, "call_hello"),
                         fn_constructor_kwargs={"errors": "return", "output": "str"},
                         batch_format="pyarrow", batch_size=32,
                         compute=ray.data.ActorPoolStrategy(size=2))
    out = pa.concat_tables(ray.get(out.to_arrow_refs()))
    assert out.column_names == ["id", "text", "output", "error"]
    assert out.column("id").to_pylist() == list(range(200))  # order kept
    with ef.Plugin(compiled) as plugin:
        expected = plugin.call_many("call_hello", names, return_exceptions=True)
    outputs, errors = out.column("output").to_pylist(), out.column("error").to_pylist()
    assert [o for i, o in enumerate(outputs) if i != 57] == [e.decode() for i, e in enumerate(expected) if i != 57]
    assert outputs[57] is None and errors[57].startswith("HostFunctionError: ") and "bad item" in errors[57]
    assert errors.count(None) == 199
    assert out.schema.field("output").type == pa.large_string()  # Arrow outputs (README, Ray)
    assert out.schema.field("error").type == pa.large_string()
    # An instance is a plain function to Ray Data: Ray tasks on its worker processes, no actors.
    tasks = ds.map_batches(PluginMapper(compiled, "call_hello", errors="return", output="str"),
                           batch_format="pyarrow", batch_size=32)
    tasks = pa.concat_tables(ray.get(tasks.to_arrow_refs()))
    assert tasks.column("output").to_pylist() == outputs and tasks.column("error").to_pylist() == errors
    # errors="raise": the failed item fails the run with its message.
    with pytest.raises(Exception, match="bad item"):
        ds.map_batches(PluginMapper, fn_constructor_args=(compiled, "call_hello"), batch_format="pyarrow",
                       compute=ray.data.ActorPoolStrategy(size=1)).materialize()


def test_a_plugin_mapper_pickles_and_shares_its_process_pool(plugin_wasm):
    """What Ray does to an instance given to map_batches: pickle it (the plugin by reference) and
    call the copy; copies of one mapper, in one process, run on that process's one pool."""
    import pickle

    from extism_fast import _workers

    compiled = ef.CompiledPlugin(plugin_wasm("host_user"), functions=dist_helpers.host_functions())
    mapper = PluginMapper(compiled, "call_hello", column="name")
    table = pa.table({"name": ["a", "b"]})
    copy = pickle.loads(pickle.dumps(mapper))
    assert copy(table).column("output").to_pylist() == [b"Hi, a!", b"Hi, b!"] == \
        mapper(table).column("output").to_pylist()
    assert _workers.pool_for(copy.ref, lambda: 1) is _workers.pool_for(mapper.ref, lambda: 1)


def test_plugin_mapper_on_a_table_without_ray(plugin_wasm):
    """PluginMapper is an ordinary callable on pyarrow Tables: its errors, without starting Ray."""
    compiled = ef.CompiledPlugin(plugin_wasm("host_user"), functions=dist_helpers.host_functions())
    mapper = PluginMapper(compiled, "call_hello", column="name", output_column="greeting")
    table = pa.table({"name": pa.array([b"a", None], pa.binary())})
    with pytest.raises(TypeError, match="item 1 of the partition is missing"):
        mapper(table)
    kept = PluginMapper(compiled, "call_hello", column="name", errors="return", error_column="why")(table)
    assert kept.column_names == ["name", "output", "why"]
    assert kept.column("output").to_pylist() == [b"Hi, a!", None]
    assert kept.column("why").to_pylist()[1].startswith("InputTypeError: item 1 of the partition is missing")
    assert mapper(table.slice(0, 1)).column("greeting").to_pylist() == [b"Hi, a!"]
    with pytest.raises(KeyError, match="the batch has no column 'name'"):
        mapper(pa.table({"text": ["a"]}))
    with pytest.raises(ValueError, match="output must be 'bytes' or 'str'"):
        PluginMapper(compiled, "call_hello", output="utf8")


@pytest.fixture(scope="module")
def hello_plugin(plugin_wasm):
    return ef.CompiledPlugin(plugin_wasm("host_user"), functions=dist_helpers.host_functions())


@pytest.mark.parametrize("t", [pa.binary(), pa.string(), pa.large_binary(), pa.large_string()], ids=str)
def test_plugin_mapper_takes_the_arrow_path_on_chunked_columns(hello_plugin, map_inputs, t):
    names = [f"n{i}" for i in range(30)]
    names[4], names[17] = "bad", None
    values = [n if n is None or t in (pa.string(), pa.large_string()) else n.encode() for n in names]
    column = pa.chunked_array([pa.array(values[:10], t), pa.array(values[10:25], t), pa.array(values[25:], t)])
    table = pa.table({"id": list(range(30)), "text": column})
    out = PluginMapper(hello_plugin, "call_hello", errors="return", output="str", size=2)(table)
    [(inputs, output)] = map_inputs
    assert isinstance(inputs, pa.ChunkedArray) and output == "arrow"  # the column as it is, Arrow out
    assert [c.buffers()[2].address for c in inputs.chunks] == [c.buffers()[2].address for c in column.chunks]
    assert out.schema.field("output").type == pa.large_string() == out.schema.field("error").type
    with ef.Plugin(hello_plugin) as plugin:
        expected = plugin.call_many("call_hello", [n or "" for n in names], return_exceptions=True)
    outputs, errors = out.column("output").to_pylist(), out.column("error").to_pylist()
    assert [o for i, o in enumerate(outputs) if i not in (4, 17)] == \
        [e.decode() for i, e in enumerate(expected) if i not in (4, 17)]
    assert outputs[4] is None and errors[4] == f"HostFunctionError: {expected[4]}"
    assert outputs[17] is None
    assert errors[17] == "InputTypeError: item 17 of the partition is missing (None/NA), not bytes or str"
    assert errors.count(None) == 28
    binary = PluginMapper(hello_plugin, "call_hello", errors="return")(table)
    assert binary.schema.field("output").type == pa.large_binary()
    assert binary.column("output").to_pylist() == [o if o is None else o.encode() for o in outputs]
    assert binary.column("error").to_pylist() == errors


def test_plugin_mapper_arrow_path_raises_what_the_list_path_raises(hello_plugin, plugin_wasm):
    mapper = PluginMapper(hello_plugin, "call_hello")
    with pytest.raises(ef.HostFunctionError, match=r"^item 1 of the partition: .*bad item"):
        mapper(pa.table({"text": pa.chunked_array([["a"], ["bad", "c"]])}))
    with pytest.raises(TypeError, match=r"^item 2 of the partition is missing \(None/NA\), not bytes or str$"):
        mapper(pa.table({"text": pa.chunked_array([["a"], ["bad", None]])}))  # before any call
    kernel = ef.CompiledPlugin(plugin_wasm("kernel"), functions=[])
    echo = PluginMapper(kernel, "echo", output="str", errors="return")
    out = echo(pa.table({"text": pa.array([b"ok", b"\xff\xfe", None, "é".encode()], pa.binary())}))
    assert out.column("output").to_pylist() == ["ok", None, None, "é"]
    errors = out.column("error").to_pylist()
    assert errors[1] == "UnicodeDecodeError: 'utf-8' codec can't decode byte 0xff in position 0: invalid start byte"
    assert errors[2].startswith("InputTypeError: item 2 of the partition is missing") and errors[::3] == [None, None]
    with pytest.raises(UnicodeDecodeError, match="can't decode byte 0xff in position 0"):
        PluginMapper(kernel, "echo", output="str")(
            pa.table({"text": pa.array([b"ok", b"\xff\xfe"], pa.large_binary())}))


def test_plugin_mapper_other_column_types_go_through_a_list(hello_plugin, map_inputs):
    """A column that is not binary/string (all nulls, numbers) keeps the list path: each value is
    an item error, and the appended columns have the Arrow path's types."""
    table = pa.table({"text": pa.array([None, None]), "n": [1, 2]})
    out = PluginMapper(hello_plugin, "call_hello", errors="return")(table)
    assert out.schema.field("output").type == pa.large_binary() and out.column("output").null_count == 2
    assert out.column("error").type == pa.large_string()
    assert out.column("error").to_pylist()[1] == \
        "InputTypeError: item 1 of the partition is missing (None/NA), not bytes or str"
    with pytest.raises(TypeError, match="item 0 of the partition is of type int"):
        PluginMapper(hello_plugin, "call_hello", column="n")(table)
    assert map_inputs == []  # no valid item: no call at all
