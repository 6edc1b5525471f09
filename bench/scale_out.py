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

The full bench (not ``--quick``) adds the long Ray rows (``measure_ray_long``, ``long_ray_rows``):
2,400,000 items, the held inputs ``LONG_REPEAT`` times over, ~11 s of the local pool's work, where
Ray's start-up no longer dominates; Ray tasks and an ActorPoolStrategy, with Ray Data's defaults
and with its operator resource reservation off, each against the local pool over the same items.

Worker processes import this module (the repository root is put on their PYTHONPATH).
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterator

REPO_ROOT = Path(__file__).resolve().parent.parent
SCALE_COUNT = 100_000
ITEM_SIZE = 4 << 10
#: Partitions of the Bag / blocks of the Dataset: 4 per worker of 12,500 items (50 MB), within
#: Dask's advice (partitions up to ~100 MB, a few per worker so that none waits at the end). With
#: 20 the 2-CPU machine measured 0.62-0.77x the local pool instead of 0.80-0.85x: each task's
#: round trip through the scheduler, which shares the 2 CPUs with the workers, leaves a worker idle.
PARTITIONS = 8
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
    return pa.table({"output": pa.array(outputs, pa.binary())})


#: Seconds of pure CPU per block in ray_data_parallelism.
SPIN_S = 0.2


def _spin_batch(batch: Any) -> Any:
    """SPIN_S seconds of pure Python CPU per block, no plugin (see ray_data_parallelism)."""
    end = time.perf_counter() + SPIN_S
    while time.perf_counter() < end:
        pass
    return batch


def ray_data_parallelism(repeats: int, blocks: int = PARTITIONS) -> float:
    """How many map tasks Ray Data runs at once on average, under the current DataContext: ``blocks``
    blocks each spinning SPIN_S seconds (no plugin, no data), their CPU time over the wall time
    (best of ``repeats``). On 2 CPUs, 2.0 is the most; 1.0 is one task at a time."""
    import ray.data

    spun = ray.data.range(blocks, override_num_blocks=blocks).materialize()
    seconds, _ = _best(lambda: spun.map_batches(_spin_batch, batch_size=None).materialize(), repeats)
    return blocks * SPIN_S / seconds


def _noop_batch(batch: Any) -> Any:
    """Ray Data's floor: a function that does no work (a 1-byte output per item)."""
    import pyarrow as pa

    return pa.table({"output": pa.array([b"-"] * len(batch), pa.binary())})


class OutputOnly:
    """``PluginMapper(*args, **kwargs)`` whose batches keep only the output column (the Ray rows
    bring back the outputs alone). A ``select_columns`` after the map would be an operator of its
    own after an actor pool (Ray Data fuses it into a task map only), whose tasks wait for a CPU
    that the 2 actors hold: 22 s instead of 8 for the 100,000 items here."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from extism_fast.ray import PluginMapper

        self.mapper = PluginMapper(*args, **kwargs)

    def __call__(self, batch: Any) -> Any:
        return self.mapper(batch).select([self.mapper.output_column])


class PoolActor:
    """The README's Ray pattern: an actor holding a PluginPool, made once and reused by every call
    (made a Ray actor class in measure_ray)."""

    def __init__(self, compiled: Any, function: str) -> None:
        import extism_fast

        self.pool = extism_fast.PluginPool(compiled, size=1)
        self.function = function

    def run(self, items: list[bytes]) -> list[bytes]:
        return self.pool.map(self.function, items)


def _arrow_inputs(batch: Any, per: int) -> Any:
    import pyarrow as pa

    items = [item for index in batch.column("id").to_pylist() for item in make_inputs(index * per, per)]
    return pa.table({"data": pa.array(items, pa.binary())})


def _best(run: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    return _best_interleaved({"run": run}, repeats)["run"]


class Timed(tuple):
    """(seconds, output) of a run that timed itself (in another process): _best_interleaved takes
    its seconds instead of the wall time around the call."""


def _best_interleaved(runs: dict[str, Callable[[], Any]], repeats: int) -> dict[str, tuple[float, Any]]:
    """Each run's best seconds and its last output, the runs taking turns ``repeats`` times: a
    drift in this shared machine's speed hits all of them alike (as the other bench rows do)."""
    best: dict[str, tuple[float, Any]] = {name: (float("inf"), None) for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            out = run()
            seconds = time.perf_counter() - start
            if isinstance(out, Timed):
                seconds, out = out
            best[name] = (min(best[name][0], seconds), out)
    return best


def _worker_env() -> dict:
    return {"PYTHONPATH": os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)}


@contextlib.contextmanager
def local_pool(wasm: bytes, function: str, count: int, workers: int = 2,
               repeat: int = 1) -> Iterator[Callable[[], Timed]]:
    """A run of a ``workers``-instance PluginPool.map over the same inputs (``count`` of them,
    ``repeat`` times over): the reference every pipeline is measured against, taking turns with it.
    It runs in a process of its own, as a program that only uses a pool would: in this one, a Dask
    scheduler's or Ray's threads share the GIL (measured: ~20% off the pool's figure here)."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    here, there = context.Pipe()
    process = context.Process(target=_serve_local_pool, args=(there, wasm, function, count, workers, repeat),
                              daemon=True)
    process.start()
    there.close()  # the child's copy only: its death then ends `here` (EOFError) instead of a wait forever
    try:
        _receive(here, process, "getting ready")  # ready: inputs made, pool warm

        def run() -> Timed:
            with contextlib.suppress(OSError):  # the process is gone: _receive says so
                here.send("run")
            return Timed(_receive(here, process, "a timed run"))

        yield run
    finally:
        with contextlib.suppress(OSError):  # the process is gone already: keep the first error
            here.send("stop")
        process.join(timeout=30)


#: Seconds local_pool waits for its process to answer (a run of 10^5 items takes about one).
LOCAL_POOL_TIMEOUT_S = 300.0


def _receive(connection: Any, process: Any, what: str, timeout: float | None = None) -> Any:
    """The local pool process's next message; SystemExit at once if the process died (its traceback
    is on stderr above), or if it sent nothing in ``timeout`` seconds (LOCAL_POOL_TIMEOUT_S)."""
    limit = LOCAL_POOL_TIMEOUT_S if timeout is None else timeout
    deadline = time.monotonic() + limit
    while not connection.poll(min(1.0, limit)) and process.is_alive():
        if time.monotonic() >= deadline:
            process.kill()
            raise SystemExit(f"bench: the local pool process sent nothing in {limit:g} s ({what}); killed it")
    try:
        return connection.recv()
    except EOFError:
        process.join(timeout=5)
        raise SystemExit(f"bench: the local pool process exited (status {process.exitcode}) before {what}; "
                         "its error is above") from None


def _serve_local_pool(connection: Any, wasm: bytes, function: str, count: int, workers: int,
                      repeat: int = 1) -> None:
    """local_pool's process: a timed pool.map for each "run" asked, until "stop"."""
    import extism_fast

    inputs = make_inputs(0, count) * repeat
    with extism_fast.PluginPool({"wasm": [{"data": wasm}]}, size=workers, functions=[]) as pool:
        pool.map(function, inputs[: workers * 100])
        connection.send("ready")
        while connection.recv() == "run":
            start = time.perf_counter()
            outputs = pool.map(function, inputs)
            connection.send((time.perf_counter() - start, outputs))


def local_pool_rate(wasm: bytes, function: str, count: int, repeats: int,
                    workers: int = 2) -> tuple[float, list[bytes]]:
    """items/s of the local pool run alone, and its outputs."""
    with local_pool(wasm, function, count, workers) as run:
        seconds, outputs = _best(run, repeats)
    return count / seconds, outputs


def measure_dask(wasm: bytes, function: str, count: int, repeats: int, workers: int = 2) -> dict:
    """items/s of extism_fast's map_bag, of the official SDK in the same Dask pipeline and of the
    local pool, taking turns."""
    import dask.bag as db
    import distributed

    import extism_fast
    from extism_fast.dask import map_bag

    os.environ.update(_worker_env())
    per = count // PARTITIONS
    with local_pool(wasm, function, count, workers) as local, \
            distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                                     dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        inputs = db.from_sequence(range(PARTITIONS), npartitions=PARTITIONS).map_partitions(_bag_inputs, per)
        inputs = client.persist(inputs)
        distributed.wait(inputs)
        compiled = extism_fast.CompiledPlugin({"wasm": [{"data": wasm}]}, functions=[])
        # Outputs are checked through one digest per partition: gathering 10^5 small objects to
        # the driver costs Dask more than the whole map (~8 s here, plugin or not).
        best = _best_interleaved({
            "local": local,
            "fast": lambda: map_bag(compiled, function, inputs).map_partitions(digest).compute(),
            "official": lambda: inputs.map_partitions(_official_partition, wasm, function)
                                      .map_partitions(digest).compute()}, repeats)
    return {**_rates(best, count), "check": lambda outputs: partition_digests(outputs, per)}


def _rates(best: dict[str, tuple[float, Any]], count: int) -> dict:
    """A measure_* result: items/s under each run's name, and its outputs under name + "_out" (an
    Arrow column made a list of bytes)."""
    return {**{name: count / seconds for name, (seconds, _) in best.items()},
            **{f"{name}_out": out.to_pylist() if hasattr(out, "to_pylist") else out
               for name, (_, out) in best.items()}}


@contextlib.contextmanager
def _ray_started(workers: int) -> Iterator[None]:
    """A local Ray of ``workers`` CPUs whose workers can import this module, shut down after."""
    import ray

    ray.init(num_cpus=workers, _node_ip_address="127.0.0.1", include_dashboard=False, logging_level="ERROR",
             log_to_driver=False, runtime_env={"env_vars": _worker_env()})
    try:
        yield
    finally:
        ray.shutdown()


class RayPipelines:
    """The Ray Data pipelines of the Ray rows over a Dataset of held inputs (column "data"), each a
    run that returns the output column as Arrow (made Python objects after the timing, _rates)."""

    def __init__(self, wasm: bytes, function: str, count: int, workers: int) -> None:
        import ray.data

        import extism_fast

        self.wasm, self.function, self.workers = wasm, function, workers
        self.per = count // PARTITIONS
        self.compiled = extism_fast.CompiledPlugin({"wasm": [{"data": wasm}]}, functions=[])
        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True
        ctx.enable_progress_bars = False

    def held_inputs(self) -> Any:
        """The ``count`` inputs made and materialized on the workers (PARTITIONS blocks). A
        Dataset keeps the DataContext it was made under."""
        import ray.data

        return ray.data.range(PARTITIONS, override_num_blocks=PARTITIONS).map_batches(
            _arrow_inputs, fn_kwargs={"per": self.per}, batch_format="pyarrow", batch_size=1).materialize()

    @staticmethod
    def passes(held: Any, repeat: int) -> Any:
        """A Dataset that goes over ``held``'s blocks ``repeat`` times in order (not copied)."""
        import ray.data

        return ray.data.from_arrow_refs(held.to_arrow_refs() * repeat) if repeat > 1 else held

    def _map(self, inputs: Any, fn: Any, **kwargs: Any) -> Any:
        """The output column of ``inputs.map_batches(fn, ...)``, whose batches hold only it."""
        import pyarrow as pa
        import ray

        ds = inputs.map_batches(fn, batch_format="pyarrow", batch_size=self.per, **kwargs)
        return pa.concat_tables(ray.get(ds.to_arrow_refs())).column("output")

    def tasks(self, inputs: Any) -> Any:
        """Ray tasks: the mapper pickled to the workers."""
        return self._map(inputs, OutputOnly(self.compiled, self.function, column="data"))

    def actors(self, inputs: Any) -> Any:
        """Ray actors (an ActorPoolStrategy of ``workers``): one mapper constructed per actor."""
        import ray.data

        return self._map(inputs, OutputOnly, fn_constructor_args=(self.compiled, self.function),
                         fn_constructor_kwargs={"column": "data"},
                         compute=ray.data.ActorPoolStrategy(size=self.workers))

    def official(self, inputs: Any) -> Any:
        return self._map(inputs, _official_batch, fn_kwargs={"wasm": self.wasm, "function": self.function})

    def noop(self, inputs: Any) -> Any:
        return self._map(inputs, _noop_batch)


def measure_ray(wasm: bytes, function: str, count: int, repeats: int, workers: int = 2) -> dict:
    """items/s of PluginMapper in Ray Data's map_batches, of the official SDK in the same one and of
    the other Ray pipelines, each group taking turns with the local pool (whose best is "local")."""
    with local_pool(wasm, function, count, workers) as local, _ray_started(workers):
        return _measure_ray_pipelines(RayPipelines(wasm, function, count, workers), count, repeats, local)


def _measure_ray_pipelines(pipelines: RayPipelines, count: int, repeats: int, local: Callable[[], Timed]) -> dict:
    """measure_ray's work, Ray started."""
    import ray.data

    inputs = pipelines.held_inputs()
    parallelism = ray_data_parallelism(repeats)
    best = _best_interleaved({"local": local, "fast": lambda: pipelines.tasks(inputs),
                              "official": lambda: pipelines.official(inputs), "noop": lambda: pipelines.noop(inputs),
                              "data_actors": lambda: pipelines.actors(inputs)}, repeats)
    # With its defaults Ray Data runs about one map task at a time on 2 CPUs (parallelism above);
    # its operator resource reservation's own switch lets it use both (a separate row).
    ctx = ray.data.DataContext.get_current()
    ctx.op_resource_reservation_enabled = False
    try:
        unreserved = pipelines.held_inputs()
        more = _best_interleaved({"local": local, "unreserved": lambda: pipelines.tasks(unreserved)}, repeats)
        unreserved_parallelism = ray_data_parallelism(repeats)
    finally:
        ctx.op_resource_reservation_enabled = True
    actors = _best_interleaved({"local": local,
                                "actors": _ray_actors(pipelines.compiled, pipelines.function, count, pipelines.workers)},
                               repeats)
    best.update(more, local=min(best["local"], more["local"], actors["local"], key=lambda turn: turn[0]),
                actors=actors["actors"])
    got = _rates(best, count)
    if not got["fast_out"] == got["actors_out"] == got["data_actors_out"] == got["unreserved_out"]:
        raise SystemExit("bench: OUTPUT MISMATCH between the Ray pipelines")
    return {**got, "check": lambda outputs: outputs, "parallelism": parallelism,
            "unreserved_parallelism": unreserved_parallelism}


#: The long Ray rows go over the SCALE_COUNT held inputs this many times (2,400,000 items of 4 KiB,
#: ~11 s of a 2-instance pool's work on this 2-CPU machine): Ray's start-up and each run's fixed
#: costs, which dominate the ~1 s of the 100,000-item rows, are then a small part.
LONG_REPEAT = 24
#: The long rows' runs: (name in measure_ray_long's result, RayPipelines method, passes over the
#: held inputs (None: LONG_REPEAT), op resource reservation on). "actors_1pass" is there to split
#: the actor pool's time into its start-up and its rate.
LONG_RUNS = (("tasks", "tasks", None, True), ("actors", "actors", None, True), ("noop", "noop", None, True),
             ("actors_1pass", "actors", 1, True),
             ("tasks_unreserved", "tasks", None, False), ("actors_unreserved", "actors", None, False))


def measure_ray_long(wasm: bytes, function: str, count: int, repeats: int, workers: int = 2,
                     repeat: int = LONG_REPEAT) -> dict:
    """items/s of each of LONG_RUNS over ``count * repeat`` items (the held inputs ``repeat`` times
    over; "actors_1pass": once), with Ray Data's defaults or op_resource_reservation_enabled=False.
    Each group takes turns with the local pool over the ``count * repeat`` items ("local": its best
    turn); every PluginMapper pipeline's outputs are checked against it. Also "seconds": each
    run's best time."""
    import ray.data

    with local_pool(wasm, function, count, workers, repeat) as local, _ray_started(workers):
        pipelines = RayPipelines(wasm, function, count, workers)
        ctx = ray.data.DataContext.get_current()
        best: dict[str, tuple[float, Any]] = {}
        for reserved in (True, False):
            ctx.op_resource_reservation_enabled = reserved
            try:
                held = pipelines.held_inputs()  # made under the context it runs with
                inputs = {n: pipelines.passes(held, n or repeat) for _, _, n, on in LONG_RUNS if on == reserved}
                runs = {name: (lambda m=method, n=n: getattr(pipelines, m)(inputs[n]))
                        for name, method, n, on in LONG_RUNS if on == reserved}
                turns = _best_interleaved({"local": local, **runs}, repeats)
            finally:
                ctx.op_resource_reservation_enabled = True
            best.update(turns, local=min(best.get("local", turns["local"]), turns["local"], key=lambda t: t[0]))
            del held, inputs
    got = {**_rates(best, count * repeat), "seconds": {name: seconds for name, (seconds, _) in best.items()}}
    got["actors_1pass"] = count / got["seconds"]["actors_1pass"]
    for name, method, n, _ in LONG_RUNS:
        if method != "noop" and got[f"{name}_out"] != got["local_out"][: count * (n or repeat)]:
            raise SystemExit(f"bench: OUTPUT MISMATCH between the long Ray pipeline {name!r} and the local pool")
    return got


def long_ray_rows(wasm: bytes, function: str, label: str, repeats: int, wanted: Callable[[str], bool]) -> list:
    """bench/compare.py's rows of measure_ray_long (the plugin's ``label`` in their names), each
    against the local 2-instance pool over the same items (target >= 0.8x for the two pipelines
    with Ray Data's defaults), whose names ``wanted`` accepts; none when Ray is not installed."""
    import sys

    from bench.compare import Result, Target

    total = SCALE_COUNT * LONG_REPEAT
    size = (f"{total:,} x {ITEM_SIZE >> 10} KiB (the {SCALE_COUNT:,} held inputs {LONG_REPEAT} times; extism: "
            f"local PluginPool.map, 2 instances), {label}")
    tasks = "Ray Data map_batches(PluginMapper(...)), Ray tasks, 2 CPUs"
    actors = "Ray Data map_batches(PluginMapper), ActorPoolStrategy(size=2), 2 CPUs"
    unreserved = "op_resource_reservation_enabled=False"
    names = {"tasks": f"{tasks}, {size}", "actors": f"{actors}, {size}",
             "tasks_unreserved": f"{tasks}, {unreserved}, {size}", "actors_unreserved": f"{actors}, {unreserved}, {size}",
             "noop": f"Ray Data map_batches doing nothing (Ray Data's floor), {size}"}
    if not any(wanted(name) for name in names.values()):
        return []
    try:
        import ray.data  # noqa: F401
    except ImportError:
        print("  skipped: the long Ray rows (ray is not installed: pip install -e '.[bench]')", file=sys.stderr)
        return []
    got = measure_ray_long(wasm, function, SCALE_COUNT, repeats)
    local = got["local"]
    rows = {name: Result(row, "items/s", got[name], local, got[name] / local) for name, row in names.items()}
    for name in ("tasks", "actors"):
        rows[name].check(Target("ratio", 0.8))
    rows["tasks"].note = (f"with {unreserved} the same pipeline did {got['tasks_unreserved'] / local:.2f}x: with its "
                          "defaults Ray Data's operator resource reservation limits the map tasks it runs at once "
                          "(see the 100,000-item rows' note)")
    rows["actors"].note = actor_start_note(got["seconds"], SCALE_COUNT, LONG_REPEAT, local)
    print("  measured: the long Ray rows", file=sys.stderr, flush=True)
    return [row for row in rows.values() if wanted(row.name)]


def actor_start_note(seconds: dict, count: int, repeat: int, local: float) -> str:
    """What a run of the actor pool spends starting its actors and how fast they map after that,
    from its best times over 1 pass (``seconds["actors_1pass"]``) and ``repeat`` passes
    (``seconds["actors"]``) of ``count`` items: time = start + items / rate."""
    one, many = seconds["actors_1pass"], seconds["actors"]
    if many <= one:  # a noisy machine: nothing to split
        return f"1 pass over the {count:,} inputs took {one:.1f} s and {repeat} passes {many:.1f} s"
    rate = count * (repeat - 1) / (many - one)
    start = one - count / rate
    return (f"1 pass over the {count:,} inputs took {one:.1f} s and {repeat} passes {many:.1f} s: each run starts "
            f"its actors (~{start:.1f} s: Ray worker processes, their imports, the plugin compiled in each), "
            f"then maps {rate:,.0f} items/s ({rate / local:.2f}x the pool)")


def _ray_actors(compiled: Any, function: str, count: int, workers: int) -> Callable[[], list[bytes]]:
    """A run of ``workers`` warm PoolActors mapping the inputs (held in the object store
    beforehand, as the Dataset's blocks are), partition by partition."""
    import ray

    per = count // PARTITIONS
    actors = [ray.remote(num_cpus=1)(PoolActor).remote(compiled, function) for _ in range(workers)]
    refs = [ray.put(make_inputs(i * per, per)) for i in range(PARTITIONS)]
    ray.get([actor.run.remote([b"warm up"]) for actor in actors])

    def run() -> list[bytes]:
        parts = ray.get([actors[i % workers].run.remote(ref) for i, ref in enumerate(refs)])
        return [out for part in parts for out in part]

    return run


# --------------------------------------------------------------------------------------------------
# items/s against workers: python -m bench.scale_out [--workers 1 2 3 4]
# --------------------------------------------------------------------------------------------------

#: The plotted series: (label, what measure_* returns it as).
SERIES = (("PluginPool.map (threads of one process)", "pool"),
          ("Dask map_bag (worker processes)", "dask"),
          ("Ray actors holding a PluginPool (warm)", "ray_actors"),
          ("Ray Data map_batches(PluginMapper(...)), tasks", "ray_data"),
          ("official SDK in the same Dask pipeline", "dask_official"))


def sweep_workers(wasm: bytes, function: str, count: int, workers: list[int], repeats: int) -> list[dict]:
    """items/s of each series for each worker count; every pipeline's outputs are checked against
    the local pool's, whose figure is its best run (alone, or taking turns with an engine). An
    engine that is not installed is left out."""
    import importlib.util

    points = []
    for n in workers:
        point: dict = {"workers": n}
        point["pool"], expected = local_pool_rate(wasm, function, count, repeats, workers=n)
        engines = (("distributed", measure_dask, "Dask pipelines", {"dask": "fast", "dask_official": "official"}),
                   ("ray", measure_ray, "Ray pipelines", {"ray_data": "fast", "ray_actors": "actors"}))
        for module, measure, label, series in engines:
            if importlib.util.find_spec(module):
                got = measure(wasm, function, count, repeats, workers=n)
                check_outputs(got, expected, label)
                point["pool"] = max(point["pool"], got["local"])
                point.update({name: got[key] for name, key in series.items()})
        print("  " + ", ".join(f"{k}={v:,.0f}" for k, v in point.items()), flush=True)
        points.append(point)
    return points


def check_outputs(got: dict, local_outputs: list[bytes], label: str) -> None:
    """Exit unless both pipelines of a measure_* result gave the local pool's outputs."""
    expected = got["check"](local_outputs)
    if got["fast_out"] != expected or got["official_out"] != expected:
        raise SystemExit(f"bench: OUTPUT MISMATCH in the {label}")


def workers_table(points: list[dict]) -> str:
    """The sweep as a markdown table: a row per worker count, a column per series."""
    series = [(label, key) for label, key in SERIES if any(key in p for p in points)]
    lines = ["| workers | " + " | ".join(label for label, _ in series) + " |",
             "|--:|" + "--:|" * len(series)]
    for p in points:
        cells = [f"{p[key]:,.0f}" if key in p else "" for _, key in series]
        lines.append(f"| {p['workers']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_workers(points: list[dict], path: Path, cpus: int) -> str | None:
    """Write the items/s-against-workers plot; returns None, or why it was skipped."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install -e '.[bench]')"
    fig, ax = plt.subplots(figsize=(11, 5), dpi=110)
    for (label, key), style in zip(SERIES, ("o-", "s-", "^-", "v-", "x--")):
        xs = [p["workers"] for p in points if key in p]
        if xs:
            ax.plot(xs, [p[key] for p in points if key in p], style, label=label)
    ax.axvline(cpus, color="grey", linestyle=":", label=f"CPUs of this machine ({cpus})")
    ax.set_xlabel("workers (threads, processes or actors; 1 plugin instance each)")
    ax.set_ylabel("items/s (4 KiB inputs, minimal count_vowels)")
    ax.set_xticks([p["workers"] for p in points])
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title("extism_fast: items/s against workers")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return None


def main(argv: list[str] | None = None) -> None:
    """Sweep the worker count, print the table, save scale_out.md and scale_out.png."""
    import argparse

    from bench.plugins import build

    parser = argparse.ArgumentParser(prog="python -m bench.scale_out", description=(
        "items/s of the scale-out paths (PluginPool, Dask, Ray) against the number of workers"))
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 3, 4])
    parser.add_argument("--count", type=int, default=SCALE_COUNT, help="inputs of 4 KiB (default 10^5)")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per point, best counts")
    parser.add_argument("--results", type=Path, default=REPO_ROOT / "bench" / "results")
    args = parser.parse_args(argv)
    if args.count % PARTITIONS:
        parser.error(f"--count must be a multiple of {PARTITIONS} (the partitions)")
    points = sweep_workers(build("examples/count_vowels.c"), "count_vowels", args.count,
                           args.workers, args.repeats)
    cpus = len(os.sched_getaffinity(0))
    table = workers_table(points)
    print(table)
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "scale_out.md").write_text(
        f"items/s against workers, {args.count:,} inputs of {ITEM_SIZE >> 10} KiB, {cpus} CPUs "
        f"(`python -m bench.scale_out`)\n\n{table}\n")
    why = plot_workers(points, args.results / "scale_out.png", cpus)
    print(f"plot skipped: {why}" if why else f"saved {args.results / 'scale_out.png'}")


if __name__ == "__main__":
    main()
