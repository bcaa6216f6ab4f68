"""The split's hash, edges and messages specified exactly: an independent scalar FNV-1a + splitmix64, rows on a
fraction's edge, one-row and empty tables, time columns of every Arrow kind, and the defaults of a ``Split`` dict.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loopc.runtime.data.errors import DataError
from loopc.runtime.data.split import (
    assign_random,
    assign_splits,
    hash_unit,
    split_columns,
    split_counts,
    split_table,
    stable_hash64,
)

MASK = (1 << 64) - 1


def reference_hash(text: str, key: bytes = b"") -> int:
    """FNV-1a over key, a zero byte and the UTF-8 text, then the splitmix64 finalizer, one Python int at a time."""
    state = 0xCBF29CE484222325
    for byte in key + b"\0" + text.encode("utf-8"):
        state = ((state ^ byte) * 0x100000001B3) & MASK
    state = ((state ^ (state >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    state = ((state ^ (state >> 27)) * 0x94D049BB133111EB) & MASK
    return state ^ (state >> 31)


TEXTS = ["", "a", "ab", "c00001", "é", "日本語のキー", "x" * 40, "a\0b"]


@pytest.mark.parametrize("key", [b"", b"0", b"17"])
def test_stable_hash64_equals_an_independent_scalar_implementation(key):
    got = stable_hash64(pa.array(TEXTS), key) if key else stable_hash64(pa.array(TEXTS))
    assert [int(v) for v in got] == [reference_hash(t, key) for t in TEXTS]


@settings(deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(max_size=12)), max_size=30), st.integers(1, 40))
def test_rows_grouped_by_length_and_gathered_in_blocks_hash_as_the_scalar_reference(texts, block_bytes):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("loopc.runtime.data.split._BLOCK_BYTES", block_bytes)  # several blocks a length
        got = stable_hash64(pa.array(texts, pa.string()), b"3")
    assert [int(v) for v in got] == [reference_hash(t or "", b"3") for t in texts]


def test_keys_longer_than_a_uint16_length_hash_as_the_scalar_reference():
    texts = ["k" * 70_000, "a", "k" * (70_000 - 65_536), "b" * 65_535, "a"]  # 70,000 would wrap to 4,464 as uint16
    assert [int(v) for v in stable_hash64(pa.array(texts))] == [reference_hash(t) for t in texts]


def test_nulls_hash_like_the_empty_string_and_slices_hash_only_their_rows():
    assert [int(v) for v in stable_hash64(pa.array([None, "a", None]))] == [reference_hash(""), reference_hash("a"),
                                                                              reference_hash("")]  # fmt: skip
    sliced = pa.array(TEXTS).slice(2, 3)
    assert [int(v) for v in stable_hash64(sliced)] == [reference_hash(t) for t in TEXTS[2:5]]
    large = pa.array(TEXTS, pa.large_string()).slice(2, 3)  # kept as is: its offsets buffer reaches beyond the slice
    assert [int(v) for v in stable_hash64(large)] == [reference_hash(t) for t in TEXTS[2:5]]
    chunked = pa.chunked_array([TEXTS[:3], TEXTS[3:]])
    assert [int(v) for v in stable_hash64(chunked)] == [reference_hash(t) for t in TEXTS]


def test_a_null_hashes_like_the_empty_string_even_with_bytes_under_it():
    """Arrow lets a null slot of a text array span bytes (arrays from IPC or other writers do): they are not the value."""
    validity = pa.py_buffer(np.packbits([1, 0, 1], bitorder="little").tobytes())
    offsets = pa.py_buffer(np.array([0, 1, 4, 5], np.int32).tobytes())
    dirty = pa.Array.from_buffers(pa.string(), 3, [validity, offsets, pa.py_buffer(b"axyzb")])
    assert dirty.to_pylist() == ["a", None, "b"]
    assert [int(v) for v in stable_hash64(dirty)] == [reference_hash("a"), reference_hash(""), reference_hash("b")]


def test_no_rows_hash_to_no_numbers():
    assert stable_hash64(pa.array([], pa.string())).shape == (0,)
    assert hash_unit(pa.array([], pa.string())).shape == (0,)


def test_hash_unit_is_the_top_53_bits_keyed_by_the_decimal_seed():
    values = pa.array(TEXTS)
    for seed in (0, 7):
        expected = [(reference_hash(t, str(seed).encode()) >> 11) * 2.0**-53 for t in TEXTS]
        assert hash_unit(values, seed).tolist() == expected
    assert hash_unit(values).tolist() == hash_unit(values, 0).tolist()


def test_a_row_exactly_on_a_fraction_edge_belongs_to_the_later_split():
    # random split of 3 rows: the rows sit at 1/6, 1/2 and 5/6; the train edge is 1/2
    sizes = {n: t.num_rows for n, t in split_table(pa.table({"x": [1, 2, 3]}),
                                                    {"method": "random", "train": 0.5, "valid": 0.25,
                                                     "test": 0.25}).items()}  # fmt: skip
    assert sizes == {"train": 1, "valid": 1, "test": 1}


def test_one_row_of_a_random_split_sits_in_the_middle_of_the_unit_interval():
    one = pa.table({"x": [1]})
    assert assign_splits(one, {"method": "random", "train": 0.4, "valid": 0.4, "test": 0.2}).tolist() == [1]
    assert assign_splits(one, {"method": "random", "train": 0.6, "valid": 0.2, "test": 0.2}).tolist() == [0]


def test_the_defaults_of_a_split_are_random_and_seed_zero():
    table = pa.table({"id": [f"k{i}" for i in range(200)]})
    fractions = {"train": 0.5, "valid": 0.3, "test": 0.2}
    seeded = assign_splits(table, {"method": "random", "seed": 0, **fractions})
    assert assign_splits(table, fractions).tolist() == seeded.tolist()
    assert assign_splits(table, {"method": "random", **fractions}).tolist() == seeded.tolist()
    assert assign_splits(table, {"method": "random", "seed": 1, **fractions}).tolist() != seeded.tolist()
    hashed = assign_splits(table, {"method": "hash", "key": "id", "seed": 0, **fractions})
    assert assign_splits(table, {"method": "hash", "key": "id", **fractions}).tolist() == hashed.tolist()
    assert assign_splits(table, {"method": "hash", "key": "id", "seed": 1, **fractions}).tolist() != hashed.tolist()


def test_split_columns_name_what_each_method_reads():
    assert split_columns({"method": "hash", "key": "id", "column": "t"}) == ["id"]
    assert split_columns({"method": "time", "key": "id", "column": "t"}) == ["t"]
    assert split_columns({"method": "random", "key": "id", "column": "t"}) == []
    assert split_columns({"key": "id", "column": "t"}) == []


TIME = {"method": "time", "column": "t", "train": 0.5, "valid": 0.25, "test": 0.25}
DAYS = [dt.date(2024, 1, d) for d in (8, 1, 5, 3, 7, 2, 6, 4)]
EXPECTED = [2, 0, 1, 0, 2, 0, 1, 0]  # days 1-4 train, 5-6 valid, 7-8 test


@pytest.mark.parametrize("column", [
    pa.array([d.day for d in DAYS]).dictionary_encode(),
    pa.array(DAYS, pa.date32()),
    pa.array([dt.datetime(d.year, d.month, d.day) for d in DAYS], pa.timestamp("s")),
    pa.array([dt.datetime(d.year, d.month, d.day, tzinfo=dt.timezone.utc) for d in DAYS], pa.timestamp("ms", "UTC")),
], ids=["dictionary", "date", "timestamp", "timestamp-tz"])
def test_a_time_split_orders_dictionary_date_and_timestamp_columns_by_time(column):
    assert assign_splits(pa.table({"t": column}), TIME).tolist() == EXPECTED


def test_a_time_split_whose_test_fraction_rounds_to_no_row_still_gives_test_the_latest_row():
    split = {"method": "time", "column": "t", "train": 0.7, "valid": 0.29, "test": 0.01}
    assert assign_splits(pa.table({"t": list(range(10))}), split).tolist() == [0] * 7 + [1] * 2 + [2]


@pytest.mark.parametrize("method", ["time", "random", "hash"])
def test_an_empty_table_splits_into_three_empty_tables(method):
    table = pa.table({"t": pa.array([], pa.int64()), "id": pa.array([], pa.string())})
    parts = split_table(table, {"method": method, "column": "t", "key": "id", "train": 0.5, "valid": 0.25,
                                "test": 0.25})  # fmt: skip
    assert {n: t.num_rows for n, t in parts.items()} == {"train": 0, "valid": 0, "test": 0}
    assert all(t.schema == table.schema for t in parts.values())


def test_a_split_with_no_or_zero_fraction_may_be_empty_and_one_row_is_enough():
    assignment = np.array([0, 0, 1])
    assert split_counts(assignment, {"train": 0.5, "valid": 0.5}) == {"train": 2, "valid": 1, "test": 0}
    assert split_counts(assignment, {"train": 0.5, "valid": 0.5, "test": 0.0}) == {"train": 2, "valid": 1, "test": 0}


def test_an_empty_split_is_reported_with_every_count():
    with pytest.raises(DataError) as error:
        split_counts(np.array([0, 0, 2]), {"method": "random", "train": 0.5, "valid": 0.25, "test": 0.25})
    assert str(error.value) == ("split 'random' left valid empty (train=2, valid=0, test=1 of 3 rows); "
                                "add rows or change the fractions or the split column")  # fmt: skip
    with pytest.raises(DataError) as error:
        split_counts(np.array([1, 1]), {"method": "hash", "train": 0.5, "valid": 0.25, "test": 0.25})
    assert "left train, test empty (train=0, valid=2, test=0 of 2 rows)" in str(error.value)


def test_split_column_errors_name_the_method_the_column_and_the_columns_there_are():
    with pytest.raises(DataError) as error:
        assign_splits(pa.table({"a": [1], "b": [2]}), TIME)
    assert str(error.value) == "split method 'time' uses column 't', which the table lacks (columns: a, b)"
    with pytest.raises(DataError) as error:
        assign_splits(pa.table({"a": [1]}), {"method": "hash", "key": "id", "train": 1.0})
    assert str(error.value).startswith("split method 'hash' uses column 'id'")
    with pytest.raises(DataError) as error:
        assign_splits(pa.table({"t": [1, None, None]}), TIME)
    assert str(error.value) == ("split column 't' has 2 null value(s); "
                                "every row needs a value to be assigned to a split")  # fmt: skip
    with pytest.raises(DataError) as error:
        assign_splits(pa.table({"t": [1]}), {"method": "stratified"})
    assert str(error.value) == "unknown split method 'stratified'; use hash, time or random"


def test_a_unit_exactly_on_an_edge_goes_to_the_later_split():
    """A random split of 4 rows gives the units 1/8, 3/8, 5/8, 7/8: with edges at 3/8 and 5/8 (exact in binary),
    the rows on the edges belong to valid and test, as a binary search's right side puts them."""
    split = {"method": "random", "seed": 0, "train": 0.375, "valid": 0.25, "test": 0.375}
    assert sorted(assign_random(4, split).tolist()) == [0, 1, 2, 2]
    assert sorted(assign_random(2, {**split, "train": 0.25, "valid": 0.5, "test": 0.25}).tolist()) == [1, 2]
