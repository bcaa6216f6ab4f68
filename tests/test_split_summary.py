"""Validate assigns a hash or random split's rows and summarises the train rows in its one read
(data/split_summary): the same assignment the split step computes from the whole table, exact moments,
the profile's systematic sample, and value counts; anything it cannot summarise is left to the later steps."""

from __future__ import annotations

import datetime as dt
import json
import threading

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from loopc.runtime.data import batchwise
from loopc.runtime.data.sketch import Moments, SystematicSample
from loopc.runtime.data.snapshot import take_snapshot
from loopc.runtime.data.split import assign_random, assign_splits
from loopc.runtime.data.split_record import ASSIGNMENT, read_summary
from loopc.runtime.data.split_summary import MAX_DISTINCT, SplitSummary, summarised

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
ROWS = 7000
FLOATS = [f"f{i:02d}" for i in range(11)]  # more than batchwise.COLUMN_GROUP: rows come in two column groups


def _table(rows: int = ROWS, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    columns = {"id": pa.array([f"r{i}" for i in range(rows)])}
    for index, name in enumerate(FLOATS):
        values = rng.normal(index * 100.0, 1.0 + index, rows)
        values[rng.random(rows) < 0.02] = np.nan
        values[rng.random(rows) < 0.01] = np.inf
        mask = rng.random(rows) < 0.03
        columns[name] = pa.array(values, mask=mask)
    columns["n"] = pa.array(rng.integers(-5, 50, rows))
    columns["flag"] = pa.array(rng.random(rows) < 0.3, mask=rng.random(rows) < 0.05)
    columns["cat"] = pa.array(rng.choice(["x", "y", "z", "w"], rows), mask=rng.random(rows) < 0.04)
    return pa.table(columns)


def _dataset(split: dict) -> dict:
    columns = {"id": {"type": "string", "nullable": False}, **{n: {"type": "float"} for n in FLOATS},
               "n": {"type": "int"}, "flag": {"type": "bool"}, "cat": {"type": "category"}}
    return {"source": {"path": "data/"}, "columns": columns, "split": split}


def _summarise(tmp_path, monkeypatch, table: pa.Table, split: dict, files: int = 2):
    """Validate ``table`` written as ``files`` Parquet files of 3,000-row groups, read in 2,048-row batches."""
    monkeypatch.setenv("LOOPC_MEMORY_BUDGET", "1M")
    (tmp_path / "data").mkdir()
    bounds = np.linspace(0, table.num_rows, files + 1).astype(int)
    for index, (lo, hi) in enumerate(zip(bounds, bounds[1:])):
        pq.write_table(table.slice(lo, hi - lo), tmp_path / "data" / f"part-{index}.parquet", row_group_size=3000)
    dataset = _dataset(split)
    result = batchwise.validate_source(take_snapshot(dataset["source"], tmp_path, content=False), "d", dataset, NOW)
    out = tmp_path / "out"
    out.mkdir()
    written = result.summary is not None and result.summary.write(out)
    return written, out


HASH = {"method": "hash", "key": "id", "seed": 3, "train": 0.7, "valid": 0.2, "test": 0.1}


@pytest.mark.parametrize(("rows", "cores"), [(ROWS, 1), (ROWS, 4), (200_000, 4)])  # 200,000: a sample stride of 3
def test_a_hash_split_is_assigned_and_its_train_rows_summarised_exactly(tmp_path, monkeypatch, rows, cores):
    monkeypatch.setattr("loopc.runtime.data.parallel.os.cpu_count", lambda: cores)  # columns on 1 or 4 threads
    table = _table(rows)
    written, out = _summarise(tmp_path, monkeypatch, table, HASH)
    assert written
    expected = assign_splits(table, HASH)
    assert np.array_equal(np.load(out / ASSIGNMENT), expected)
    summary = read_summary(out, HASH)
    assert summary.counts == {s: int(np.count_nonzero(expected == i)) for i, s in enumerate(("train", "valid", "test"))}
    train = table.filter(pa.array(expected == 0))
    positions = SystematicSample(train.num_rows).positions(train.num_rows)
    assert summary.record["sample_stride"] == SystematicSample(train.num_rows).stride
    for name in [*FLOATS, "n", "flag"]:
        values = pc.cast(train.column(name), pa.float64()).to_numpy(zero_copy_only=False)
        finite = values[np.isfinite(values)]
        record = summary.column(name)["numeric"]
        moments = record["moments"]
        assert moments["count"] == len(finite)
        mean = moments["shift"] + moments["sum"] / moments["count"]
        assert mean == pytest.approx(finite.mean(), rel=1e-12, abs=1e-12)
        variance = moments["squares"] / moments["count"] - (moments["sum"] / moments["count"]) ** 2
        assert variance == pytest.approx(finite.var(), rel=1e-9)
        assert (moments["low"], moments["high"]) == (finite.min(), finite.max())
        assert record["nan"] == int(np.isnan(values).sum())
        assert record["nonfinite"] == len(values) - len(finite)
        picked = values[positions]
        assert np.array_equal(summary.sample(name), picked[np.isfinite(picked)])
    for name in ("cat", "flag"):
        counted = pc.value_counts(train.column(name).drop_null()).to_pylist()
        record = summary.column(name)["counts"]
        assert dict(map(tuple, record["values"])) == {c["values"]: c["counts"] for c in counted}
        assert record["values"] == sorted(record["values"])  # a deterministic file
        assert record["nulls"] == train.column(name).null_count
    assert summary.column("undeclared") == {}
    text = (out / "split_summary.json").read_text(encoding="utf-8")
    assert list(json.loads(text)) == sorted(json.loads(text))
    assert summary.sample("cat") is None


def test_a_random_split_is_the_seeded_permutation_of_the_row_count(tmp_path, monkeypatch):
    split = {"method": "random", "seed": 11, "train": 0.5, "valid": 0.25, "test": 0.25}
    table = _table()
    written, out = _summarise(tmp_path, monkeypatch, table, split, files=3)
    assert written
    assert np.array_equal(np.load(out / ASSIGNMENT), assign_random(ROWS, split))
    assert read_summary(out, split) is not None
    assert read_summary(out, {**split, "seed": 12}) is None  # a summary of another split is not this one's


def test_a_text_column_with_too_many_values_is_not_counted(tmp_path, monkeypatch):
    table = _table(2 * MAX_DISTINCT)
    written, out = _summarise(tmp_path, monkeypatch, table, HASH, files=1)
    assert written
    summary = read_summary(out, HASH)
    assert summary.column("id")["counts"] is None
    assert summary.column("cat")["counts"] is not None


def test_a_null_key_leaves_the_split_to_the_split_step(tmp_path, monkeypatch):
    table = _table()
    table = table.set_column(0, "id", pa.array([None if i == 5000 else f"r{i}" for i in range(ROWS)]))
    written, _ = _summarise(tmp_path, monkeypatch, table, HASH)
    assert not written


def test_a_time_split_is_not_summarised(tmp_path, monkeypatch):
    table = _table().append_column("t", pa.array(np.arange(ROWS)))
    written, _ = _summarise(tmp_path, monkeypatch, table, {"method": "time", "column": "t", "train": 0.7,
                                                           "valid": 0.2, "test": 0.1})
    assert not written


@pytest.mark.parametrize("method", ["hash", "random"])
def test_a_csv_source_is_summarised_for_a_hash_split_without_the_profile_sample(tmp_path, method):
    """Its rows are counted only as they are read: a hash split is assigned (without the sample, whose stride
    depends on the count), a random split is left to the split step."""
    (tmp_path / "csv").mkdir()
    table = _table().select(["id", "n", "cat"])
    pacsv.write_csv(table, tmp_path / "csv" / "rows.csv")
    split = HASH if method == "hash" else {**HASH, "method": "random"}
    columns = {n: spec for n, spec in _dataset(split)["columns"].items() if n in ("id", "n", "cat")}
    dataset = {**_dataset(split), "source": {"path": "csv/rows.csv"}, "columns": columns}
    result = batchwise.validate_source(take_snapshot(dataset["source"], tmp_path, content=False), "d", dataset, NOW,
                                       tmp_path / "table.parquet")  # a CSV source is written once, cast
    assert result.report["passed"], result.report
    if method == "random":
        assert result.summary is None
        return
    out = tmp_path / "out"
    out.mkdir()
    assert result.summary.write(out)
    assert np.array_equal(np.load(out / ASSIGNMENT), assign_splits(table, split))
    summary = read_summary(out, split)
    assert summary.record["sample_stride"] is None
    assert len(summary.sample("n")) == 0
    assert summary.column("n")["numeric"]["moments"]["count"] == summary.counts["train"]


@pytest.mark.parametrize("method", ["hash", "random"])
def test_after_a_summarised_split_the_features_step_reads_no_row(tmp_path, method):
    """Split and features of a hash or random split of Parquet files work from validate's summary alone: with
    the source files gone after validate, both still succeed and fit what the rows give."""
    from tests.test_data_path import FEATURES, assert_close, random_table, reference, run_until, write_project

    seeded = {name: spec for name, spec in FEATURES.items() if name in ("a_raw", "c_mm", "cat")}
    write_project(tmp_path, [random_table(2500, 1), random_table(1800, 2)], "parquet", method, features=seeded)
    records = run_until(tmp_path, "validate.rows")
    moved = tmp_path / "moved"
    (tmp_path / "data").rename(moved)
    records = run_until(tmp_path, "features.m", records=records)
    (moved).rename(tmp_path / "data")
    features = tmp_path / ".loopc" / records["features.m"]["artifact"]
    fitted = json.loads((features / "transform.json").read_text(encoding="utf-8"))
    assert [f["name"] for f in fitted["features"]] == sorted(seeded)
    assert_close(fitted, reference(tmp_path, method, features=seeded)["fitted"].to_dict())
    split = tmp_path / ".loopc" / records["split.rows"]["artifact"]
    assert json.loads((split / "split.json").read_text(encoding="utf-8"))["assignment_artifact"] == \
        records["validate.rows"]["artifact"]


@pytest.mark.parametrize("key, declared", [("n", {"type": "int"}), ("k", None)])
def test_a_hash_split_on_an_int_or_undeclared_key_is_the_split_steps(tmp_path, monkeypatch, key, declared):
    table = _table().append_column("k", pa.array(np.arange(ROWS) * 7 % 1000))
    split = {**HASH, "key": key}
    written, out = _summarise(tmp_path, monkeypatch, table, split)
    assert written
    assert np.array_equal(np.load(out / ASSIGNMENT), assign_splits(table, split))


def test_each_thread_centers_its_columns_in_its_own_scratch_buffer():
    summary = SplitSummary(ALL_TRAIN, {"x": {"type": "float"}}, 10)
    mine = summary.scratch(100)
    assert summary.scratch(50).base is mine.base  # reused by the same thread, batch after batch
    theirs = []
    worker = threading.Thread(target=lambda: theirs.append(summary.scratch(100)))
    worker.start()
    worker.join()
    assert not np.shares_memory(mine, theirs[0])


def test_moments_centered_in_place_equal_moments_of_a_copy():
    values = np.random.default_rng(2).normal(1e6, 3.0, 10_001)
    copied, owned, scratch = Moments(), Moments(), values.copy()
    copied.update(values)
    owned.update(scratch, owned=True, bounds=(float(values.min()), float(values.max())))
    assert copied.to_dict() == owned.to_dict()
    assert not np.array_equal(scratch, values)  # the owned copy was centered in place, the caller's values not
    assert Moments.from_dict(owned.to_dict()).to_dict() == owned.to_dict()
    assert Moments.from_dict(Moments().to_dict()).count == 0


ALL_TRAIN = {"method": "random", "seed": 0, "train": 1.0, "valid": 0.0, "test": 0.0}


def _feed(summary: SplitSummary, where: str, arrays: dict[str, pa.Array]) -> None:
    """One row group of a single column group into ``summary``, as validate feeds it."""
    count = len(next(iter(arrays.values())))
    train = summary.start(where, 0, count, {k: arrays[k] for k in summary.key_columns if k in arrays})
    for name, array in arrays.items():
        train.add(name, array)


def _fed(split: dict, batches: list[pa.Array], rows: int | None = None) -> SplitSummary:
    summary = SplitSummary(split, {"s": {"type": "string"}, "x": {"type": "float"}},
                           sum(len(b) for b in batches) if rows is None else rows)
    for index, batch in enumerate(batches):
        _feed(summary, f"row group {index}", {"s": batch})
    return summary


def test_a_split_without_a_method_is_random():
    assert summarised({"train": 1.0}, 10) and not summarised({"train": 1.0}, None)
    assert summarised({"method": "hash", "key": "k", "train": 1.0}, None) and not summarised({}, 10)
    summary = _fed({"seed": 4, "train": 0.5, "valid": 0.5, "test": 0.0}, [pa.array(["a"] * 100)])
    assert np.array_equal(np.concatenate(summary.parts), assign_random(100, {"seed": 4, "train": 0.5, "valid": 0.5}))


def test_counts_keep_exactly_max_distinct_values_and_drop_one_more(tmp_path):
    values = [f"v{i}" for i in range(MAX_DISTINCT)]
    kept = _fed(ALL_TRAIN, [pa.array(values)])
    assert len(kept.counted["s"].record()["values"]) == MAX_DISTINCT
    over_in_one = _fed(ALL_TRAIN, [pa.array([*values, "extra"]), pa.array(["v1"])])  # dropped, stays dropped
    assert over_in_one.counted["s"].record() is None
    over_in_two = _fed(ALL_TRAIN, [pa.array(values[:6000]), pa.array([*values[6000:], "extra"])])
    assert over_in_two.counted["s"].record() is None


def test_a_summary_of_other_rows_than_the_footers_count_or_of_none_is_not_written(tmp_path):
    assert not _fed(ALL_TRAIN, [pa.array(["a"] * 5)], rows=10).write(tmp_path)
    empty = _fed(ALL_TRAIN, [])
    assert empty.write(tmp_path)
    assignment = np.load(tmp_path / ASSIGNMENT)
    assert assignment.dtype == np.uint8 and len(assignment) == 0
    assert read_summary(tmp_path, ALL_TRAIN).counts == {"train": 0, "valid": 0, "test": 0}


def test_a_column_with_infinities_but_no_nan_keeps_them_out_of_its_moments(tmp_path):
    summary = SplitSummary(ALL_TRAIN, {"x": {"type": "float"}}, 10)
    _feed(summary, "row group 0", {"x": pa.array([1.0, 2.0, np.inf, 3.0, 4.0])})  # a finite min, an infinite max
    _feed(summary, "row group 1", {"x": pa.array([-np.inf, 5.0, 6.0, 7.0, 8.0])})  # and the other way round
    record = summary.numeric["x"].record()
    assert record["moments"]["count"] == 8 and (record["moments"]["low"], record["moments"]["high"]) == (1.0, 8.0)
    assert (record["nan"], record["nonfinite"]) == (0, 2)


def test_a_summary_of_an_older_format_or_another_split_is_not_read(tmp_path, monkeypatch):
    """An artifact validate wrote before the samples were one array (format 1, an .npz) reads as no summary: split
    and features then read the rows, as for a split validate did not assign."""
    written, out = _summarise(tmp_path, monkeypatch, _table(), HASH)
    assert written and read_summary(out, HASH) is not None
    assert read_summary(out, {**HASH, "seed": 4}) is None
    record = json.loads((out / "split_summary.json").read_text(encoding="utf-8"))
    (out / "split_summary.json").write_text(json.dumps({**record, "format": 1}), encoding="utf-8")
    assert read_summary(out, HASH) is None
    assert read_summary(tmp_path / "nothing", HASH) is None


def test_the_samples_are_one_array_sliced_by_the_recorded_sizes(tmp_path, monkeypatch):
    written, out = _summarise(tmp_path, monkeypatch, _table(), HASH)
    summary = read_summary(out, HASH)
    sizes = summary.record["sample_sizes"]
    assert summary.record["sample_columns"] == sorted([*FLOATS, "n", "flag"]) and len(sizes) == len(FLOATS) + 2
    stored = np.load(out / "split_sample.npy")
    assert len(stored) == sum(sizes) and len(set(sizes)) > 1  # NaN and inf dropped: columns differ in size
    assert np.array_equal(np.concatenate([summary.sample(n) for n in summary.record["sample_columns"]]), stored)
