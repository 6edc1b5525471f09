"""Arrow in, Arrow out: call_many / PluginPool.map over pyarrow arrays (extism_fast/scale/arrow.py).

The official SDK has no Arrow path (nor call_many): these tests run extism_fast only, and compare
against extism_fast's own list-of-bytes call_many, which test_compat checks against the SDK.
"""

from __future__ import annotations

import gc
import os
import sys

import pytest

pa = pytest.importorskip("pyarrow")

from conftest import COUNT, PICKY, vowels  # noqa: E402

import extism_fast as ef  # noqa: E402

TYPES = [pa.binary(), pa.large_binary(), pa.string(), pa.large_string()]
TEXTS = [f"item {i} " + "aeiouxyz"[: i % 9] for i in range(300)] + [""]


@pytest.fixture
def counter(plugin_wasm):
    with ef.Plugin(plugin_wasm(COUNT)) as plugin:
        yield plugin


@pytest.fixture
def echo(plugin_wasm):
    with ef.Plugin(plugin_wasm("kernel")) as plugin:
        yield plugin


@pytest.fixture
def picky():
    with ef.Plugin(PICKY) as plugin:
        yield plugin


def typed(texts, t):
    """An array of type ``t`` holding ``texts`` (None stays null)."""
    is_text = t in (pa.string(), pa.large_string())
    return pa.array([x if x is None or is_text else x.encode() for x in texts], t)


@pytest.mark.parametrize("t", TYPES, ids=str)
def test_each_input_type_gives_what_a_list_of_bytes_gives(counter, t):
    expected = counter.call_many("count_vowels", [x.encode() for x in TEXTS])
    array = typed(TEXTS, t)
    assert counter.call_many("count_vowels", array) == expected
    out = counter.call_many("count_vowels", array, output="arrow")
    assert out.type == pa.large_binary() and out.null_count == 0
    assert out.to_pylist() == expected


def test_binary_items_round_trip_through_echo(echo):
    items = [bytes(range(256)) * 3, b"", b"\x00", os.urandom(1000), b""]
    out = echo.call_many("echo", pa.array(items, pa.binary()), output="arrow")
    assert out.to_pylist() == items
    out.validate(full=True)


@pytest.mark.parametrize("start", [0, 1, 7, 9, 150])
def test_sliced_arrays_read_their_own_items(counter, start):
    texts = [None if i % 13 == 5 else t for i, t in enumerate(TEXTS)]
    for t in TYPES:
        sliced = typed(texts, t).slice(start, 100)
        want = texts[start:start + 100]
        out = counter.call_many("count_vowels", sliced, output="arrow", return_exceptions=True)
        assert out.field("output").to_pylist() == [None if x is None else vowels(x) for x in want]


def test_a_chunked_array_gives_a_chunked_array(counter):
    chunks = [TEXTS[:100], [], TEXTS[100:]]
    chunked = pa.chunked_array(chunks, pa.string())
    out = counter.call_many("count_vowels", chunked, output="arrow")
    assert isinstance(out, pa.ChunkedArray) and out.type == pa.large_binary()
    assert out.to_pylist() == [vowels(x) for x in TEXTS]
    assert counter.call_many("count_vowels", chunked) == [vowels(x) for x in TEXTS]


def test_a_big_array_runs_in_several_batches_with_indices_of_the_whole_array(picky):
    n = 3 * 8192 + 11
    texts = ["ok%d" % i for i in range(n)]
    out = picky.call_many("run", pa.array(texts), output="arrow_string")
    assert out.to_pylist() == texts
    texts[20000] = "x-bad"
    with pytest.raises(ef.CallError, match=r"^input 20000: plugin function 'run' returned non-zero exit code 3") as info:
        picky.call_many("run", pa.array(texts), output="arrow")
    assert info.value.input_index == 20000  # for callers that name items their own way (Dask, Ray)
    assert str(info.value.item_error) == "plugin function 'run' returned non-zero exit code 3"
    texts[20001] = None
    with pytest.raises(ValueError, match=r"^input 20001 is null"):
        picky.call_many("run", pa.chunked_array([["ok"] * 20001, texts[20001:]]), output="arrow")
    both = picky.call_many("run", pa.array(texts), output="arrow", return_exceptions=True)
    errors = both.field("error")
    assert errors.null_count == n - 2
    assert errors[20000].as_py().startswith("CallError: plugin function 'run'")
    assert errors[20001].as_py() == "ValueError: input 20001 is null"


def test_a_null_item_raises_before_any_call_without_return_exceptions(counter):
    array = pa.array([b"a", b"b", None, b"c"])
    with pytest.raises(ValueError, match=r"input 2 is null: drop or fill the nulls"):
        counter.call_many("count_vowels", array, output="arrow")
    with pytest.raises(ValueError, match=r"input 2 is null"):
        counter.call_many("count_vowels", array)


def test_null_items_with_return_exceptions(counter):
    array = pa.array(["a", None, "ee", None])
    out = counter.call_many("count_vowels", array, output="arrow", return_exceptions=True)
    assert out.type == pa.struct([("output", pa.large_binary()), ("error", pa.large_string())])
    assert out.field("output").to_pylist() == [vowels("a"), None, vowels("ee"), None]
    assert out.field("error").to_pylist() == [None, "ValueError: input 1 is null", None,
                                              "ValueError: input 3 is null"]
    as_list = counter.call_many("count_vowels", array, return_exceptions=True)
    assert as_list[0] == vowels("a") and as_list[2] == vowels("ee")
    assert [str(e) for e in (as_list[1], as_list[3])] == ["input 1 is null", "input 3 is null"]
    assert isinstance(as_list[1], ValueError)


def test_empty_inputs(counter):
    for t in TYPES:
        out = counter.call_many("count_vowels", pa.array([], t), output="arrow")
        assert isinstance(out, pa.Array) and len(out) == 0 and out.type == pa.large_binary()
        assert counter.call_many("count_vowels", pa.array([], t)) == []
    out = counter.call_many("count_vowels", pa.chunked_array([], pa.string()), output="arrow_string",
                            return_exceptions=True)
    assert isinstance(out, pa.ChunkedArray) and len(out) == 0
    assert out.type == pa.struct([("output", pa.large_string()), ("error", pa.large_string())])
    assert len(counter.call_many("count_vowels", [], output="arrow")) == 0


def test_output_types(echo):
    out = echo.call_many("echo", pa.array(["héllo", ""]), output="arrow_string")
    assert out.type == pa.large_string() and out.to_pylist() == ["héllo", ""]
    with pytest.raises(ValueError, match=r"^output 1 is not UTF-8 .*use output='arrow'"):
        echo.call_many("echo", pa.array([b"ok", b"\xff\xfe"]), output="arrow_string")
    with pytest.raises(ValueError, match=r"output must be one of \(None, 'arrow', 'arrow_string'\), got 'list'"):
        echo.call_many("echo", pa.array([b"ok"]), output="list")
    with pytest.raises(ValueError, match=r"parse applies to list outputs only, not to output='arrow'"):
        echo.call_many("echo", pa.array([b"ok"]), parse=None, output="arrow")
    assert echo.call_many("echo", pa.array([b"ok"]), parse=lambda b: b.decode()) == ["ok"]


def test_other_arrow_types_are_refused(counter):
    with pytest.raises(TypeError, match=r"string or large_string \(or a dictionary of one of them\), got int64"):
        counter.call_many("count_vowels", pa.array([1, 2]), output="arrow")
    with pytest.raises(ef.FunctionNotFoundError):
        counter.call_many("nope", pa.array([b"a"]), output="arrow")


@pytest.mark.parametrize("t", TYPES, ids=str)
def test_dictionary_encoded_inputs_are_decoded(counter, plugin_wasm, t):
    """A dictionary of binary/string values (many Parquet writers' default for a string column)
    gives what its plain array gives, on call_many and PluginPool.map, whole, sliced or chunked;
    a null index and a null dictionary value are both null items."""
    texts = [TEXTS[i % 7] for i in range(200)]
    texts[150] = None
    plain = typed(texts, t)
    encoded = plain.dictionary_encode()
    assert pa.types.is_dictionary(encoded.type) and len(encoded.dictionary) == 7  # nulls are in the indices
    expected = counter.call_many("count_vowels", plain, return_exceptions=True, output="arrow")
    assert counter.call_many("count_vowels", encoded, return_exceptions=True, output="arrow").equals(expected)
    assert counter.call_many("count_vowels", encoded.slice(10, 20)) == [vowels(x) for x in texts[10:30]]
    chunked = pa.chunked_array([encoded.slice(0, 100), encoded.slice(100)])
    out = counter.call_many("count_vowels", chunked, output="arrow", return_exceptions=True)
    assert isinstance(out, pa.ChunkedArray) and out.combine_chunks().equals(expected)
    with ef.PluginPool(plugin_wasm(COUNT), size=2) as pool:
        assert pool.map("count_vowels", encoded, output="arrow", return_exceptions=True, chunk_size=30).equals(expected)
        with pytest.raises(ValueError, match="^input 150 is null"):
            pool.map("count_vowels", encoded, chunk_size=30)
    null_value = pa.DictionaryArray.from_arrays(pa.array([0, 1, 0], pa.int8()), typed(["aa", None], t))
    assert counter.call_many("count_vowels", null_value, return_exceptions=True)[::2] == [vowels("aa")] * 2
    with pytest.raises(TypeError, match=r"\(or a dictionary of one of them\), got dictionary<values=int64"):
        counter.call_many("count_vowels", pa.array([1, 2]).dictionary_encode())


def test_a_parquet_dictionary_column_and_the_dask_ray_arrow_path(counter, plugin_wasm, tmp_path):
    """Written with use_dictionary=True and read back with read_dictionary: taken as it is, by
    call_many and by _workers.run_arrow (what Dask's map_column and Ray's PluginMapper run), where
    a dictionary's null value is an InputTypeError naming the item."""
    import pyarrow.parquet as pq

    from extism_fast._workers import is_arrow_text, run_arrow

    texts = [TEXTS[i % 5] for i in range(60)]
    pq.write_table(pa.table({"text": texts}), tmp_path / "d.parquet", use_dictionary=True)
    column = pq.read_table(tmp_path / "d.parquet", read_dictionary=["text"]).column("text")
    assert pa.types.is_dictionary(column.type)
    expected = [vowels(x) for x in texts]
    assert counter.call_many("count_vowels", column) == expected
    assert is_arrow_text(column.type)
    with ef.PluginPool(plugin_wasm(COUNT), size=2) as pool:
        outputs, errors = run_arrow(pool, "count_vowels", column, "raise", "str")
        assert outputs.type == pa.large_string() and [x.encode() for x in outputs.to_pylist()] == expected
        null_value = pa.DictionaryArray.from_arrays(pa.array([0, 1, 0]), pa.array(["aa", None]))
        outputs, errors = run_arrow(pool, "count_vowels", null_value, "return", "bytes")
        assert outputs.to_pylist() == [vowels("aa"), None, vowels("aa")]
        assert errors.to_pylist()[1] == "InputTypeError: item 1 of the partition is missing (None/NA), not bytes or str"


def test_iterators_refuse_arrow_inputs(counter, plugin_wasm):
    with pytest.raises(TypeError, match=r"iter_call takes no Arrow input: use call_many\(\.\.\., output='arrow'\)"):
        next(counter.iter_call("count_vowels", pa.array([b"a"])))
    with ef.PluginPool(plugin_wasm(COUNT), size=1) as pool:
        with pytest.raises(TypeError, match=r"PluginPool.imap takes no Arrow input"):
            pool.imap("count_vowels", pa.array([b"a"]))


def test_failures_raise_with_their_index_and_the_plugin_goes_on(picky):
    with pytest.raises(ef.CallError, match=r"^input 3: plugin function 'run' returned non-zero exit code 3$"):
        picky.call_many("run", pa.chunked_array([["a", "b"], ["c", "xd", "e"]]), output="arrow")
    with pytest.raises(ef.CallError, match=r"^input 1: "):
        picky.call_many("run", pa.array(["a", "xb"]))
    assert picky.call("run", "fine") == b"fine"


def test_return_exceptions_gives_a_struct_array(picky):
    out = picky.call_many("run", pa.array(["a", "xb", "c", "xd"]), output="arrow", return_exceptions=True)
    assert out.null_count == 0
    assert out.field("output").to_pylist() == [b"a", None, b"c", None]
    error = "CallError: plugin function 'run' returned non-zero exit code 3"
    assert out.field("error").to_pylist() == [None, error, None, error]
    listed = picky.call_many("run", pa.array(["a", "xb"]), return_exceptions=True)
    assert listed[0] == b"a" and isinstance(listed[1], ef.CallError)


def test_a_list_input_with_an_arrow_output(picky):
    out = picky.call_many("run", ["a", b"bb", bytearray(b"c")], output="arrow")
    assert out.to_pylist() == [b"a", b"bb", b"c"]
    with pytest.raises(ef.CallError, match=r"^input 1: "):
        picky.call_many("run", ["a", "xb"], output="arrow")


def test_arrow_outputs_outlive_the_plugin(plugin_wasm):
    plugin = ef.Plugin(plugin_wasm(COUNT))
    out = plugin.call_many("count_vowels", pa.array(TEXTS), output="arrow")
    plugin.close()
    del plugin
    gc.collect()
    assert out.to_pylist() == [vowels(x) for x in TEXTS]


def test_pool_map_matches_call_many_in_order(plugin_wasm, counter):
    expected = counter.call_many("count_vowels", [x.encode() for x in TEXTS])
    with ef.PluginPool(plugin_wasm(COUNT), size=3) as pool:
        array = pa.array(TEXTS)
        assert pool.map("count_vowels", array) == expected
        for chunk_size in (None, 1, 7, 1000):
            out = pool.map("count_vowels", array, output="arrow", chunk_size=chunk_size)
            assert isinstance(out, pa.Array) and out.to_pylist() == expected
        out = pool.map("count_vowels", array.slice(5, 50), output="arrow", chunk_size=9)
        assert out.to_pylist() == expected[5:55]
        chunked = pool.map("count_vowels", pa.chunked_array([TEXTS[:10], TEXTS[10:]]), output="arrow_string",
                           chunk_size=25)
        assert isinstance(chunked, pa.ChunkedArray) and chunked.type == pa.large_string()
        assert [x.encode() for x in chunked.to_pylist()] == expected
        assert pool.map("count_vowels", TEXTS, output="arrow").to_pylist() == expected
        assert len(pool.map("count_vowels", pa.array([], pa.binary()), output="arrow")) == 0


def test_pool_map_errors_carry_the_index_in_the_whole_input():
    texts = ["a"] * 130
    texts[97] = "x"
    texts[120] = None
    with ef.PluginPool(PICKY, size=2) as pool:
        with pytest.raises(ef.CallError, match=r"^input 97: "):
            pool.map("run", pa.array(texts), output="arrow", chunk_size=10)
        out = pool.map("run", pa.array(texts), output="arrow", return_exceptions=True, chunk_size=10)
        errors = out.field("error").to_pylist()
        assert [i for i, e in enumerate(errors) if e] == [97, 120]
        assert errors[120] == "ValueError: input 120 is null"
        with pytest.raises(ValueError, match="chunk_size must be a positive integer"):
            pool.map("run", pa.array(texts), output="arrow", chunk_size=0)
        with pytest.raises(ValueError, match="output must be one of"):
            pool.map("run", pa.array(texts), output="table")


def test_without_pyarrow_the_arrow_paths_name_the_extra(monkeypatch, counter, plugin_wasm):
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # `import pyarrow` now raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'extism_fast\[arrow\]'"):
        counter.call_many("count_vowels", [b"a"], output="arrow")
    assert counter.call_many("count_vowels", [b"a"]) == [vowels("a")]
    with ef.PluginPool(plugin_wasm(COUNT), size=1) as pool:
        with pytest.raises(ImportError, match=r"output='arrow_string' needs pyarrow.*extism_fast\[arrow\]"):
            pool.map("count_vowels", [b"a"], output="arrow_string")
        assert pool.map("count_vowels", [b"a"]) == [vowels("a")]

