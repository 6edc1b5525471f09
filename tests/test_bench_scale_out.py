"""bench/scale_out.py's report: the items/s-against-workers table and plot (the measuring itself
runs in `python -m bench.scale_out`, never in the tests: speed belongs to the benchmark)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import scale_out  # noqa: E402

POINTS = [{"workers": 1, "pool": 1000.4, "dask": 800, "dask_official": 200},
          {"workers": 2, "pool": 1900, "dask": 1500.6, "dask_official": 390}]


def test_the_table_has_a_row_per_worker_count_and_a_column_per_measured_series():
    assert scale_out.workers_table(POINTS).splitlines() == [
        "| workers | PluginPool.map (threads of one process) | Dask map_bag (worker processes) "
        "| official SDK in the same Dask pipeline |",
        "|--:|--:|--:|--:|",
        "| 1 | 1,000 | 800 | 200 |",
        "| 2 | 1,900 | 1,501 | 390 |",
    ]


def test_the_plot_is_written(tmp_path):
    pytest.importorskip("matplotlib")
    assert scale_out.plot_workers(POINTS, tmp_path / "plot.png", cpus=2) is None
    assert (tmp_path / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_count_must_split_into_the_partitions():
    with pytest.raises(SystemExit):
        scale_out.main(["--count", str(scale_out.PARTITIONS * 10 + 1)])


def test_the_ray_rows_note_states_ray_datas_own_ceiling():
    from bench.compare import ray_parallelism_note

    note = ray_parallelism_note({"parallelism": 0.95, "unreserved_parallelism": 1.78}, 0.45)
    assert "ran 0.95 tasks at once on average with its defaults and 1.78 with " \
           "op_resource_reservation_enabled=False" in note
    assert "can reach at most 0.47x a 2-instance pool, and this row's 0.45x is 95% of that" in note


def test_runs_take_turns_and_a_self_timed_run_gives_its_own_seconds():
    order = []

    def plain():
        order.append("plain")
        return "p"

    def self_timed():
        order.append("timed")
        return scale_out.Timed((1234.5, "t"))

    best = scale_out._best_interleaved({"plain": plain, "timed": self_timed}, repeats=3)
    assert order == ["plain", "timed"] * 3
    assert best["timed"] == (1234.5, "t")
    assert best["plain"][1] == "p" and best["plain"][0] < 1.0


def test_the_local_pool_reference_times_itself_and_gives_the_pools_outputs(plugin_wasm):
    import extism_fast

    wasm = plugin_wasm("examples/count_vowels.c")
    with scale_out.local_pool(wasm, "count_vowels", 16) as run:
        seconds, outputs = run()
    assert seconds > 0
    with extism_fast.Plugin(wasm, functions=[]) as plugin:
        assert outputs == plugin.call_many("count_vowels", scale_out.make_inputs(0, 16))


def test_the_local_pool_goes_over_its_inputs_repeat_times(plugin_wasm):
    import extism_fast

    wasm = plugin_wasm("examples/count_vowels.c")
    with scale_out.local_pool(wasm, "count_vowels", 16, repeat=3) as run:
        _, outputs = run()
    with extism_fast.Plugin(wasm, functions=[]) as plugin:
        assert outputs == plugin.call_many("count_vowels", scale_out.make_inputs(0, 16)) * 3


def test_the_ray_rows_mapper_keeps_only_the_output_column(plugin_wasm):
    pa = pytest.importorskip("pyarrow")
    import extism_fast

    wasm = plugin_wasm("examples/count_vowels.c")
    items = scale_out.make_inputs(0, 5)
    mapper = scale_out.OutputOnly(extism_fast.CompiledPlugin(wasm, functions=[]), "count_vowels", column="data")
    out = mapper(pa.table({"id": list(range(5)), "data": pa.array(items, pa.binary())}))
    assert out.column_names == ["output"]
    with extism_fast.Plugin(wasm, functions=[]) as plugin:
        assert out.column("output").to_pylist() == plugin.call_many("count_vowels", items)


def test_the_actor_note_splits_a_run_into_start_up_and_rate():
    # 1 pass of 100,000 in 5 s, 24 passes in 16.5 s: 2,300,000 items in 11.5 s = 200,000 items/s,
    # so 0.5 s of the first pass is mapping and 4.5 s starting the actors.
    note = scale_out.actor_start_note({"actors_1pass": 5.0, "actors": 16.5}, 100_000, 24, local=250_000)
    assert note == ("1 pass over the 100,000 inputs took 5.0 s and 24 passes 16.5 s: each run starts its actors "
                    "(~4.5 s: Ray worker processes, their imports, the plugin compiled in each), then maps "
                    "200,000 items/s (0.80x the pool)")
    assert scale_out.actor_start_note({"actors_1pass": 9.0, "actors": 8.0}, 100_000, 24, local=1.0) == \
        "1 pass over the 100,000 inputs took 9.0 s and 24 passes 8.0 s"


def test_the_long_ray_rows_start_nothing_when_none_is_wanted(monkeypatch):
    monkeypatch.setattr(scale_out, "measure_ray_long", lambda *args, **kwargs: pytest.fail("measured"))
    assert scale_out.long_ray_rows(b"", "f", "plugin", 1, lambda name: "2,400,000" not in name) == []


def test_the_long_ray_rows_are_in_the_full_bench_only(monkeypatch):
    from bench.compare import measure_scale_out

    calls = []
    monkeypatch.setattr(scale_out, "long_ray_rows", lambda *args: calls.append(args) or [])
    only_long = lambda name: "2,400,000" in name  # noqa: E731 - the 100,000-item rows are not run
    assert measure_scale_out(1, True, only_long) == [] and calls == []
    measure_scale_out(1, False, only_long)
    assert [args[2:] for args in calls] == [("minimal count_vowels", 1, only_long)]
