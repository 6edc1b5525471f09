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
    assert out.schema.field("output").type == pa.string()
    # errors="raise": the failed item fails the run with its message.
    with pytest.raises(Exception, match="bad item"):
        ds.map_batches(PluginMapper, fn_constructor_args=(compiled, "call_hello"), batch_format="pyarrow",
                       compute=ray.data.ActorPoolStrategy(size=1)).materialize()


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
