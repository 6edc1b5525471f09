"""The scale-out rows of bench/compare.py: Dask and Ray Data pipelines over 2 worker processes.

Each pipeline maps the minimal count_vowels over ``SCALE_COUNT`` inputs of 4 KiB, made and held on
the workers beforehand (a persisted Bag, a materialized Dataset), and brings the outputs back to
the driver (Dask: one digest per partition, see measure_dask; Ray: the output column as Arrow);
the timed part is that map and collect. Two rows per engine:

* extism_fast through ``extism_fast.dask.map_bag`` / ``extism_fast.ray.PluginMapper`` against a
  local 2-instance ``PluginPool.map`` over the same inputs in this process (the "extism" column of
  that row holds the local pool's figure): what the engine costs on top of a pool;
* the same pipeline with the official SDK doing the work, one plugin per task (created in the
  task from the wasm bytes, then a loop of ``call``): the baseline a Dask/Ray user of the official
  SDK gets.

Worker processes import this module (the repository root is put on their PYTHONPATH).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable

REPO_ROOT = Path(__file__).resolve().parent.parent
SCALE_COUNT = 100_000
ITEM_SIZE = 4 << 10
PARTITIONS = 20
_TEXT = b"Hello, World!! The quick brown fox jumps over the lazy dog. "


def make_inputs(start: int, count: int) -> list[bytes]:
    """Inputs start..start+count-1: 4 KiB each, distinct first byte so outputs differ."""
    body = (_TEXT * (ITEM_SIZE // len(_TEXT) + 1))[: ITEM_SIZE - 1]
    return [bytes([97 + i % 26]) + body for i in range(start, start + count)]


def _bag_inputs(part: list[int], per: int) -> list[bytes]:
    return [item for index in part for item in make_inputs(index * per, per)]


def digest(outputs: list[bytes]) -> list[str]:
    """One sha256 over a partition's outputs (length-prefixed): what the Dask rows bring back."""
    import hashlib

    h = hashlib.sha256()
    for out in outputs:
        h.update(len(out).to_bytes(8, "little"))
        h.update(out)
    return [h.hexdigest()]


def partition_digests(outputs: list[bytes], per: int) -> list[str]:
    """The digests the Dask pipelines return, computed from all outputs here."""
    return [digest(outputs[i : i + per])[0] for i in range(0, len(outputs), per)]


def _official_partition(items: list[bytes], wasm: bytes, function: str) -> list[bytes]:
    """One task of the official SDK's pipeline: a new plugin, then one call per item."""
    import extism

    plugin = extism.Plugin(wasm, functions=[])
    return [bytes(plugin.call(function, item)) for item in items]


def _official_batch(batch: Any, wasm: bytes, function: str) -> Any:
    import pyarrow as pa

    outputs = _official_partition(batch.column("data").to_pylist(), wasm, function)
    return batch.append_column("output", pa.array(outputs, pa.binary()))


def _arrow_inputs(batch: Any, per: int) -> Any:
    import pyarrow as pa

    items = [item for index in batch.column("id").to_pylist() for item in make_inputs(index * per, per)]
    return pa.table({"data": pa.array(items, pa.binary())})


def _best(run: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = run()
        best = min(best, time.perf_counter() - start)
    return best, out


def _worker_env() -> dict:
    return {"PYTHONPATH": os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)}


def local_pool_rate(wasm: bytes, function: str, count: int, repeats: int) -> tuple[float, list[bytes]]:
    """items/s of a local 2-instance PluginPool.map over the same inputs, and its outputs."""
    import extism_fast

    inputs = make_inputs(0, count)
    with extism_fast.PluginPool({"wasm": [{"data": wasm}]}, size=2, functions=[]) as pool:
        seconds, outputs = _best(lambda: pool.map(function, inputs), repeats)
    return count / seconds, outputs


def measure_dask(wasm: bytes, function: str, count: int, repeats: int) -> dict:
    """items/s of extism_fast's map_bag and of the official SDK in the same Dask pipeline."""
    import dask.bag as db
    import distributed

    import extism_fast
    from extism_fast.dask import map_bag

    os.environ.update(_worker_env())
    per = count // PARTITIONS
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        inputs = db.from_sequence(range(PARTITIONS), npartitions=PARTITIONS).map_partitions(_bag_inputs, per)
        inputs = client.persist(inputs)
        distributed.wait(inputs)
        compiled = extism_fast.CompiledPlugin({"wasm": [{"data": wasm}]}, functions=[])
        # Outputs are checked through one digest per partition: gathering 10^5 small objects to
        # the driver costs Dask more than the whole map (~8 s here, plugin or not).
        fast_s, fast_out = _best(lambda: map_bag(compiled, function, inputs).map_partitions(digest).compute(),
                                 repeats)
        official_s, official_out = _best(
            lambda: inputs.map_partitions(_official_partition, wasm, function).map_partitions(digest).compute(),
            repeats)
    return {"fast": count / fast_s, "official": count / official_s, "fast_out": fast_out,
            "official_out": official_out, "check": lambda outputs: partition_digests(outputs, per)}


def measure_ray(wasm: bytes, function: str, count: int, repeats: int) -> dict:
    """items/s of PluginMapper in Ray Data's map_batches and of the official SDK in the same one."""
    import pyarrow as pa
    import ray
    import ray.data

    import extism_fast
    from extism_fast.ray import PluginMapper

    per = count // PARTITIONS
    ray.init(num_cpus=2, _node_ip_address="127.0.0.1", include_dashboard=False, logging_level="ERROR",
             log_to_driver=False, runtime_env={"env_vars": _worker_env()})
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True
        ctx.enable_progress_bars = False
        inputs = ray.data.range(PARTITIONS, override_num_blocks=PARTITIONS).map_batches(
            _arrow_inputs, fn_kwargs={"per": per}, batch_format="pyarrow", batch_size=1).materialize()
        compiled = extism_fast.CompiledPlugin({"wasm": [{"data": wasm}]}, functions=[])

        def collect(ds: Any) -> list[bytes]:
            return pa.concat_tables(ray.get(ds.select_columns(["output"]).to_arrow_refs())) \
                .column("output").to_pylist()

        def fast() -> list[bytes]:
            return collect(inputs.map_batches(
                PluginMapper, fn_constructor_args=(compiled, function),
                fn_constructor_kwargs={"column": "data"}, batch_format="pyarrow", batch_size=per,
                compute=ray.data.ActorPoolStrategy(size=2)))

        def official() -> list[bytes]:
            return collect(inputs.map_batches(_official_batch, fn_kwargs={"wasm": wasm, "function": function},
                                              batch_format="pyarrow", batch_size=per))

        fast_s, fast_out = _best(fast, repeats)
        official_s, official_out = _best(official, repeats)
    finally:
        ray.shutdown()
    return {"fast": count / fast_s, "official": count / official_s, "fast_out": fast_out,
            "official_out": official_out, "check": lambda outputs: outputs}
