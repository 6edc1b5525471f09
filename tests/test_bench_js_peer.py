"""bench/js_peer.py: the official JS SDK's side of the bench (bench/js/bench.mjs), checked for what
its rows rely on: the same outputs as extism_fast, the way its call loop stays alive past the JS
SDK's block limit, and a clear skip without node/npm. Timings belong to the benchmark."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

import extism_fast

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import js_peer  # noqa: E402

CONFIG = {"vowels": "aeiouAEIOU"}


@pytest.fixture(scope="module")
def js_sdk():
    """bench/js installed as the bench installs it (`npm ci` when missing), or skip."""
    why = js_peer.js_ready()
    if why is not None:
        pytest.skip(why)


@pytest.fixture(scope="module")
def pdk(tmp_path_factory) -> Path:
    from bench.plugins import build

    path = tmp_path_factory.mktemp("js_peer") / "count_vowels_pdk.wasm"
    path.write_bytes(build("bench/count_vowels_pdk"))
    return path


def fast_outputs(wasm: Path, data: bytes, calls: int) -> list[bytes]:
    with extism_fast.Plugin({"wasm": [{"path": str(wasm)}], "config": CONFIG}, functions=[]) as plugin:
        return [bytes(plugin.call("count_vowels", data)) for _ in range(calls)]


@pytest.mark.parametrize("mode", ["call", "instance"])
def test_the_runner_times_its_loops_and_gives_extism_fasts_first_output(js_sdk, pdk, mode):
    got = js_peer.run_js(pdk, "count_vowels", 1000, 3, mode=mode, config=CONFIG, repeats=2)
    assert len(got["seconds"]) == 2 and all(s > 0 for s in got["seconds"])
    from bench.compare import text_input

    assert bytes.fromhex(got["outputs"][0]) == fast_outputs(pdk, text_input(1000), 1)[0]
    assert got["sdk"] == "1.0.3"


def test_a_new_plugin_every_n_calls_runs_past_the_js_sdks_block_limit(js_sdk, pdk):
    # 7 blocks per call of this plugin: one JS plugin fails at its 4,682nd call (32,767 blocks).
    with pytest.raises(SystemExit, match="cannot assign to this block"):
        js_peer.run_js(pdk, "count_vowels", 14, 4700, config=CONFIG, fresh_every=0)
    assert js_peer.run_js(pdk, "count_vowels", 14, 4700, config=CONFIG)["seconds"][0] > 0


def test_the_note_tells_that_the_js_sdk_loses_the_plugins_var(js_sdk, pdk):
    from bench.compare import SMALL_INPUT, pdk_subject

    got = js_peer.run_js(pdk, "count_vowels", len(SMALL_INPUT), 1, config=CONFIG)
    first, second = (bytes.fromhex(out) for out in got["outputs"])
    assert first == second == b'{"count":3,"total":3,"vowels":"aeiouAEIOU"}'
    assert fast_outputs(pdk, SMALL_INPUT, 2)[1] == b'{"count":3,"total":6,"vowels":"aeiouAEIOU"}'
    note = js_peer.second_output_note(pdk_subject(), SMALL_INPUT, second)
    assert "\'{\"count\":3,\"total\":6," in note and "so the var is lost" in note
    assert js_peer.second_output_note(pdk_subject(), SMALL_INPUT, fast_outputs(pdk, SMALL_INPUT, 2)[1]) == ""


def test_bad_runner_arguments_are_named(js_sdk, pdk):
    with pytest.raises(SystemExit, match="--mode must be call or instance"):
        js_peer.run_js(pdk, "count_vowels", 14, 1, mode="thread")
    with pytest.raises(SystemExit, match="--iterations must be an integer >= 1"):
        js_peer.run_js(pdk, "count_vowels", 14, 0)


def test_without_node_the_rows_are_skipped_with_a_note(monkeypatch, capsys):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert "node is not installed" in js_peer.js_ready()
    assert js_peer.measure_js_peer(1, 0.01, lambda name: True) == []
    assert "skipped: the JS SDK rows (node is not installed" in capsys.readouterr().err


def test_without_npm_and_packages_the_rows_say_how_to_install_them(monkeypatch, tmp_path):
    monkeypatch.setattr(js_peer, "JS_DIR", tmp_path)
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/node" if name == "node" else None)
    assert js_peer.js_ready() == "npm is not installed (needed once: `npm ci --prefix bench/js`)"


@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed")
def test_a_failed_npm_ci_is_reported_with_npms_words(monkeypatch, tmp_path):
    (tmp_path / "package.json").write_text('{"name": "x", "version": "0.0.0"}')  # no lock file
    monkeypatch.setattr(js_peer, "JS_DIR", tmp_path)
    why = js_peer.js_ready()
    assert why.startswith("`npm ci --prefix bench/js` failed:\n") and "package-lock" in why


def test_rows_not_wanted_do_not_install_or_need_node(monkeypatch):
    monkeypatch.setattr(js_peer, "js_ready", lambda: pytest.fail("js_ready called"))
    assert js_peer.measure_js_peer(1, 0.01, lambda name: False) == []
