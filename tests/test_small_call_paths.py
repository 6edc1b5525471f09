"""The fast paths a small call takes (issue 22, "the last factor of two") behave as the general ones:
the kernel's alloc and free of the newest block, a var rewritten with a value of the same size,
and Plugin.call's memo of the export it looked up last. Plus the bench's "limit" host: it builds
and gives the same output as extism_fast for the headline plugin."""

from __future__ import annotations

import pytest

import extism_fast as ef
from conftest import u64
from test_abi import _fill_committed, run_in_host


def test_freeing_the_newest_block_merges_it_into_a_free_predecessor(plugin_wasm):
    def body(cp):
        a = cp.alloc(100).offset
        b = cp.alloc(100).offset  # the newest block: freed by the fast path
        cp.free(a)
        cp.free(b)
        cp.free(b)  # already merged: ignored
        _fill_committed(cp, b, 100)
        return a, b, cp.alloc(200).offset  # fits only in a and b merged (2 x 104 bytes)

    a, b, merged = run_in_host(plugin_wasm, body)
    assert a < b
    assert merged == a


def test_freeing_the_newest_block_after_an_active_one(plugin_wasm):
    def body(cp):
        a = cp.alloc(100).offset
        b = cp.alloc(100).offset
        cp.free(b)
        freed_length = cp.memory_at_offset(b).length  # not a block any more
        filler = _fill_committed(cp, b, 100)
        c = cp.alloc(100).offset  # committed memory full: the freed block
        return a, b, freed_length, filler, c, cp.memory_at_offset(a).length

    a, b, freed_length, filler, c, a_length = run_in_host(plugin_wasm, body)
    assert freed_length == 0
    assert filler > b
    assert c == b
    assert a_length == 100


def test_freeing_the_input_block_as_the_newest_block_clears_the_input(plugin_wasm):
    with ef.Plugin(plugin_wasm("kernel"), functions=[]) as plugin:
        assert u64(plugin.call("free_input", b"some input")) == 0  # the input is the only block
        assert u64(plugin.call("input_length", b"12345")) == 5  # the next call has its own


def test_a_same_size_var_rewrite_keeps_the_cap_exact(plugin_wasm):
    manifest = {"wasm": [{"data": plugin_wasm("host")}], "memory": {"max_var_bytes": 2 * (3 + 13 + 48)}}
    with ef.Plugin(manifest, functions=[]) as plugin:
        for value in (b"v" * 13, b"w" * 13, b"x" * 13):  # same size: rewritten in place
            assert plugin.call("var_set_from_input", b"abc=" + value) == b"ok"
            assert plugin.call("var_get", "abc") == value
        assert plugin.call("var_set_from_input", b"xyz=" + b"y" * 13) == b"ok"  # exactly the cap
        with pytest.raises(ef.MemoryLimitError, match="variable store is full"):
            plugin.call("var_set_from_input", b"abc=" + b"z" * 13)  # the old value still counts
        assert plugin.call("var_get", "abc") == b"x" * 13
        assert plugin.call("var_delete", "xyz") == b"ok"
        assert plugin.call("var_set_from_input", b"abc=" + b"s" * 12) == b"ok"  # smaller: a new copy
        assert plugin.call("var_get", "abc") == b"s" * 12
        assert plugin.call("var_set_from_input", b"xyz=" + b"y" * 14) == b"ok"  # 63 + 65 == the cap
        with pytest.raises(ef.MemoryLimitError, match="variable store is full"):
            plugin.call("var_set_from_input", b"q=1")


def test_call_memo_follows_the_name(plugin_wasm):
    with ef.Plugin(plugin_wasm("kernel"), functions=[]) as plugin:
        first = plugin.call("alloc_free_reuse")
        length = plugin.call("input_length", b"12345")
        assert plugin.call("alloc_free_reuse") == first
        assert plugin.call("input_length", b"12345") == length
        name = "input_length"
        assert plugin.call("".join(["input_", "length"]), b"12345") == length  # an equal, other str
        assert plugin.call(name, b"12345") == length
        with pytest.raises(ef.Error, match="no_such_export"):
            plugin.call("no_such_export")
        with pytest.raises(TypeError, match="function name must be a str"):
            plugin.call(None)
        assert plugin.call(name, b"12345") == length


def test_the_bench_limit_host_runs_the_headline_plugin_as_extism_fast_does():
    pytest.importorskip("extism")  # bench.compare (the headline plugin's subject) imports it
    from bench import compare
    from bench.limit_host import run_host
    from bench.plugins import build_path

    subject = compare.pdk_subject()
    path = build_path("bench/count_vowels_pdk")
    with subject.new(ef) as plugin:
        expected = plugin.call(subject.function, compare.SMALL_INPUT)
    for epoch in (True, False):
        for accessors in ("wasm", "c"):
            seconds, output = run_host(path, subject.function, compare.SMALL_INPUT, subject.config, epoch,
                                       calls=10, accessors=accessors)
            assert output == expected, (epoch, accessors)
            assert 0 < seconds < 1e-3
