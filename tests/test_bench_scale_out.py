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
