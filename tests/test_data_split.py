"""Deterministic splits: hash (stable, order- and neighbour-independent), time and random."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loopc.runtime.data.sources import DataError
from loopc.runtime.data.split import hash_unit, split_table

PINNED = [5909276360852500, 1419121394643962, 1540387217445678]
HASH = {"method": "hash", "key": "id", "train": 0.7, "valid": 0.15, "test": 0.15, "seed": 0}


def _ids(count: int, start: int = 0) -> pa.Table:
    return pa.table({"id": [f"c{i:05d}" for i in range(start, start + count)], "x": np.arange(count, dtype=float)})


def _membership(parts: dict) -> dict:
    return {key: name for name, table in parts.items() for key in table.column("id").to_pylist()}


def test_hash_split_fractions_are_close():
    sizes = {name: t.num_rows for name, t in split_table(_ids(4000), HASH).items()}
    assert abs(sizes["train"] - 2800) < 120 and abs(sizes["test"] - 600) < 90
    assert sum(sizes.values()) == 4000


def test_hash_split_ignores_row_order():
    table = _ids(1000)
    shuffled = table.take(np.random.default_rng(5).permutation(1000))
    assert _membership(split_table(table, HASH)) == _membership(split_table(shuffled, HASH))


def test_hash_split_ignores_other_rows():
    alone = _membership(split_table(_ids(600), HASH))
    with_more = _membership(split_table(pa.concat_tables([_ids(600), _ids(900, start=5000)]), HASH))
    assert all(with_more[key] == name for key, name in alone.items())


def _reference_hash(text: str, key: bytes) -> int:
    """The documented algorithm in plain Python: FNV-1a over key, NUL, UTF-8 bytes; splitmix64."""
    mask, state = (1 << 64) - 1, 0xCBF29CE484222325
    for byte in key + b"\0" + text.encode("utf-8"):
        state = ((state ^ byte) * 0x100000001B3) & mask
    state = ((state ^ (state >> 30)) * 0xBF58476D1CE4E5B9) & mask
    state = ((state ^ (state >> 27)) * 0x94D049BB133111EB) & mask
    return state ^ (state >> 31)


def test_hash_units_are_pinned_forever():
    """Changing these numbers would move rows between splits for every user: they must never change."""
    keys = ["c00000", "c00001", "ü", "", "a much longer customer key with spaces"]
    units = hash_unit(pa.array(keys), seed=0)
    assert [int(u * 2**53) for u in units[:3]] == PINNED
    assert [int(u * 2**53) for u in units] == [_reference_hash(k, b"0") >> 11 for k in keys]


def test_hash_seed_changes_the_assignment():
    first = _membership(split_table(_ids(500), HASH))
    second = _membership(split_table(_ids(500), {**HASH, "seed": 1}))
    assert first != second


def test_integer_keys_hash_like_their_text():
    as_int = pa.table({"id": list(range(300))})
    as_text = pa.table({"id": [str(i) for i in range(300)]})
    split_int = {k: t.column("id").cast(pa.string()).to_pylist() for k, t in split_table(as_int, HASH).items()}
    split_text = {k: t.column("id").to_pylist() for k, t in split_table(as_text, HASH).items()}
    assert split_int == split_text


@settings(max_examples=25, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=8), min_size=30, max_size=60, unique=True), st.randoms())
def test_hash_membership_is_a_function_of_the_key(keys, random):
    shuffled = list(keys)
    random.shuffle(shuffled)
    units = dict(zip(keys, hash_unit(pa.array(keys))))
    shuffled_units = dict(zip(shuffled, hash_unit(pa.array(shuffled))))
    assert units == shuffled_units


def test_time_split_cuts_by_time_and_keeps_equal_times_together():
    days = [dt.datetime(2025, 1, 1) + dt.timedelta(days=i // 10) for i in range(200)]
    table = pa.table({"t": pa.array(days, pa.timestamp("us", tz="UTC")), "i": list(range(200))})
    shuffled = table.take(np.random.default_rng(3).permutation(200))
    parts = split_table(shuffled, {"method": "time", "column": "t", "train": 0.7, "valid": 0.15, "test": 0.15})
    train, valid, test = (parts[n].column("t").to_pylist() for n in ("train", "valid", "test"))
    assert max(train) < min(valid) <= max(valid) < min(test)
    assert (len(train), len(valid), len(test)) == (140, 30, 30)
    reference = split_table(table, {"method": "time", "column": "t", "train": 0.7, "valid": 0.15, "test": 0.15})
    assert sorted(parts["test"].column("i").to_pylist()) == sorted(reference["test"].column("i").to_pylist())


def test_random_split_is_deterministic_for_the_same_seed():
    spec = {"method": "random", "seed": 4, "train": 0.6, "valid": 0.2, "test": 0.2}
    first, second = split_table(_ids(100), spec), split_table(_ids(100), spec)
    assert all(first[n].equals(second[n]) for n in first)
    assert [first[n].num_rows for n in ("train", "valid", "test")] == [60, 20, 20]
    other = split_table(_ids(100), {**spec, "seed": 5})
    assert not first["train"].equals(other["train"])


def test_splits_partition_the_rows_and_keep_input_order():
    parts = split_table(_ids(300), HASH)
    for table in parts.values():
        values = table.column("x").to_numpy()
        assert (np.diff(values) > 0).all()
    assert sorted(np.concatenate([t.column("x").to_numpy() for t in parts.values()])) == list(range(300))


def test_split_errors_are_clear():
    with pytest.raises(DataError, match="uses column 'id'"):
        split_table(pa.table({"other": [1]}), HASH)
    with pytest.raises(DataError, match="1 null value"):
        split_table(pa.table({"id": ["a", None]}), HASH)
    with pytest.raises(DataError, match="empty"):
        split_table(pa.table({"id": ["only"]}), HASH)
