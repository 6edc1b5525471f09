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


# -- a child process that dies or hangs fails the bench at once, never a wait forever ---------------

def _fails_within(seconds, run):
    """``run()`` raises SystemExit within ``seconds`` (a thread: today's hang would block the test)."""
    import threading

    outcome = []
    thread = threading.Thread(target=lambda: outcome.append(_outcome(run)), daemon=True)
    thread.start()
    thread.join(seconds)
    assert outcome, f"still waiting after {seconds} s"
    assert isinstance(outcome[0], SystemExit), outcome[0]
    return str(outcome[0])


def _outcome(run):
    try:
        run()
    except BaseException as error:  # noqa: BLE001 - SystemExit is what the bench raises
        return error
    return None


def test_a_local_pool_process_that_dies_before_it_is_ready_fails_the_bench_at_once():
    def run():
        with scale_out.local_pool(b"not wasm", "count_vowels", 16):
            pass

    message = _fails_within(60, run)
    assert "the local pool process exited (status 1) before getting ready; its error is above" in message


def test_a_local_pool_process_that_dies_between_runs_fails_the_bench_at_once(plugin_wasm):
    import multiprocessing

    def run():
        with scale_out.local_pool(plugin_wasm("examples/count_vowels.c"), "count_vowels", 16) as timed_run:
            timed_run()
            (process,) = multiprocessing.active_children()
            process.kill()
            process.join(10)
            timed_run()

    assert "the local pool process exited (status -9) before a timed run" in _fails_within(60, run)


def test_a_local_pool_process_that_answers_nothing_is_killed_after_the_timeout(monkeypatch):
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    here, there = context.Pipe()
    process = context.Process(target=time_sleep, args=(60,), daemon=True)
    process.start()
    try:
        message = _fails_within(30, lambda: scale_out._receive(here, process, "a timed run", timeout=1))
        assert message == "bench: the local pool process sent nothing in 1 s (a timed run); killed it"
        process.join(10)
        assert process.exitcode is not None
    finally:
        process.kill()


def time_sleep(seconds):
    import time

    time.sleep(seconds)


def test_a_bench_subprocess_that_fails_or_hangs_ends_the_bench_with_its_error():
    from bench.compare import _run_script

    with pytest.raises(SystemExit, match=r"subprocess \('x',\) failed:\n(?s:.*)ZeroDivisionError"):
        _run_script("1 / 0", "x")
    script = "import sys, time; print('started', file=sys.stderr, flush=True); time.sleep(60)"
    with pytest.raises(SystemExit, match=r"subprocess \('y',\) did not finish in 1 s; it was killed:\nstarted"):
        _run_script(script, "y", timeout=1)


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
