"""Validate batch by batch against the whole-table path on seeded random Parquet sources: any Arrow type a
column may hold (ints of every width, float32 and float64 with NaN and infinities, bools, text, large text,
dictionary-encoded text, timestamps with and without a zone, dates), declared as its own type or another,
with every column rule, split and check, over several files, row groups and memory budgets. The report, the
validated table and the split summary must be exactly what the whole table gives."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from loopc.runtime.data import batchwise
from loopc.runtime.data.checks import enforce_schema, run_checks, validation_report
from loopc.runtime.data.snapshot import read_snapshot, take_snapshot
from loopc.runtime.data.split import assign_splits
from loopc.runtime.data.split_record import ASSIGNMENT, read_summary

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
DECLARED = ["int", "float", "bool", "string", "category", "timestamp", "date"]
NATURAL = {"i64": "int", "i8": "int", "u32": "int", "f64": "float", "f32": "float", "bool": "bool", "text": "string",
           "large": "string", "dict": "category", "ts": "timestamp", "tz": "timestamp", "date": "date"}
DAY = np.datetime64("2025-12-01")


def _values(rng: np.random.Generator, kind: str, rows: int) -> pa.Array:
    """``rows`` values of an Arrow ``kind``, a random share of them null (none, some or all)."""
    nulls = rng.random(rows) < rng.choice([0, 0, 0.01, 0.3, 1.0])
    if kind in ("i64", "i8", "u32"):
        low, dtype = {"i64": (-50, np.int64), "i8": (-100, np.int8), "u32": (0, np.uint32)}[kind]
        return pa.array(rng.integers(low, 100, rows).astype(dtype), mask=nulls)
    if kind in ("f64", "f32"):
        values = rng.normal(rng.choice([0.0, 1e6, -3.0]), rng.choice([1.0, 1e-3, 1e3]), rows)
        for share, value in ((0.05, np.nan), (0.02, np.inf), (0.02, -np.inf)):
            values[rng.random(rows) < rng.choice([0, share])] = value
        values = np.round(values) if rng.random() < 0.2 else values  # repeated values for the unique rule
        return pa.array(values.astype(np.float32 if kind == "f32" else np.float64), mask=nulls)
    if kind == "bool":
        return pa.array(rng.random(rows) < 0.4, mask=nulls)
    if kind in ("text", "large", "dict"):
        few = ["a", "b", "", "é", "zz", "1", "0", "true", "x y"]
        pool = np.array(few if rng.random() < 0.7 else [f"v{i}" for i in range(int(rng.choice([5, 20_000])))], object)
        text = pa.array(list(pool[rng.integers(0, len(pool), rows)]), pa.large_string() if kind == "large" else pa.string(),
                        mask=nulls)
        return text.dictionary_encode() if kind == "dict" else text
    if kind in ("ts", "tz"):
        stamps = pa.array(DAY + rng.integers(0, 60 * 86_400, rows).astype("timedelta64[s]"), mask=nulls)
        return stamps.cast(pa.timestamp("us", tz="UTC")) if kind == "tz" else stamps
    return pa.array(DAY + rng.integers(0, 60, rows).astype("timedelta64[D]"), mask=nulls)


def _case(seed: int) -> tuple[pa.Table, dict, int, int, str]:
    """A random table and the dataset that declares it: (table, dataset, files, row group, memory budget)."""
    rng = np.random.default_rng(seed)
    rows = int(rng.choice([0, 1, 7, 300, 2500]))
    kinds = {f"c{i}": str(rng.choice(sorted(NATURAL))) for i in range(int(rng.integers(1, 12)))}
    table = pa.table({"id": pa.array([f"r{i}" for i in range(rows)]),
                      **{name: _values(rng, kind, rows) for name, kind in kinds.items()}})
    columns = {"id": {"type": "string", "nullable": False, "unique": bool(rng.random() < 0.5)}}
    for name, kind in kinds.items():
        if rng.random() < 0.15:
            continue  # an extra column: kept, not checked
        ctype = NATURAL[kind] if rng.random() < 0.8 else str(rng.choice(DECLARED))
        spec = {"type": ctype, "nullable": bool(rng.random() >= 0.3), "unique": bool(rng.random() < 0.15)}
        if ctype in ("int", "float") and rng.random() < 0.4:
            spec["min"], spec["max"] = float(rng.choice([-10, 0])), float(rng.choice([10, 1e7]))
        if ctype in ("string", "category") and rng.random() < 0.4:
            spec["allowed"] = ["a", "b", "", "v1"]
        columns[name] = spec
    if rng.random() < 0.2:
        columns["ghost"] = {"type": str(rng.choice(DECLARED))}  # declared, in no file
    checks = [{"kind": "row_count", "min": 5},
              {"kind": "null_rate", "column": str(rng.choice([c for c in columns if c != "ghost"])), "max": 0.1}]
    numbers = [n for n, spec in columns.items() if spec["type"] in ("int", "float") and n in kinds]
    if numbers:
        checks.append({"kind": "expression", "name": "positive", "expr": f"{numbers[0]} > 0", "min_fraction": 0.3})
    times = [n for n, spec in columns.items() if spec["type"] == "timestamp" and n in kinds]
    if times:
        checks.append({"kind": "freshness", "column": times[0], "max_age": "30d"})
    split = [{"method": "hash", "key": "id", "seed": int(rng.integers(0, 5)), "train": 0.7, "valid": 0.2, "test": 0.1},
             {"method": "random", "seed": 1, "train": 0.6, "valid": 0.2, "test": 0.2}][int(rng.integers(0, 2))]
    dataset = {"source": {"path": "data/"}, "columns": columns, "checks": checks, "split": split}
    return table, dataset, int(rng.integers(1, 4)), int(rng.choice([1, 50, 700, 4000])), str(rng.choice(["1M", "3M"]))


def _write(root: Path, table: pa.Table, files: int, row_group: int) -> None:
    (root / "data").mkdir()
    bounds = np.linspace(0, table.num_rows, files + 1).astype(int)
    for index, (lo, hi) in enumerate(zip(bounds, bounds[1:])):
        pq.write_table(table.slice(lo, hi - lo), root / "data" / f"p{index}.parquet", row_group_size=row_group)


def _same(a: pa.ChunkedArray, b: pa.ChunkedArray) -> bool:
    """Equal values, NaN equal to NaN (an extra float column keeps its NaN)."""
    if a.equals(b):
        return True
    if a.type != b.type or not pa.types.is_floating(a.type) or a.null_count != b.null_count:
        return False
    x, y = a.to_numpy(zero_copy_only=False), b.to_numpy(zero_copy_only=False)
    return bool(np.all((x == y) | (np.isnan(x) & np.isnan(y))))


def _assert_summary_exact(out: Path, cast: pa.Table, dataset: dict) -> None:
    split = dataset["split"]
    assignment = assign_splits(cast, split)
    assert np.array_equal(np.load(out / ASSIGNMENT), assignment)
    summary = read_summary(out, split)
    train = cast.filter(pa.array(assignment == 0))
    for name, spec in dataset["columns"].items():
        if name not in cast.column_names:
            continue
        record = summary.column(name)
        if spec["type"] in ("int", "float", "bool"):
            values = pc.cast(train.column(name), pa.float64()).to_numpy(zero_copy_only=False)
            finite = values[np.isfinite(values)]
            moments = record["numeric"]["moments"]
            assert moments["count"] == len(finite), name
            assert record["numeric"]["nonfinite"] == len(values) - len(finite), name
            if len(finite):
                assert moments["shift"] + moments["sum"] / moments["count"] == pytest.approx(
                    finite.mean(), rel=1e-9, abs=1e-9 * np.abs(finite).max()), name
                assert (moments["low"], moments["high"]) == (finite.min(), finite.max()), name
        if spec["type"] in ("bool", "string", "category") and record.get("counts"):
            counted = pc.value_counts(train.column(name).drop_null()).to_pylist()
            assert dict(map(tuple, record["counts"]["values"])) == {c["values"]: c["counts"] for c in counted}, name
            assert record["counts"]["nulls"] == train.column(name).null_count, name


@pytest.mark.parametrize("seed", range(16))
def test_batches_give_the_whole_tables_report_table_and_split_summary(tmp_path, monkeypatch, seed):
    table, dataset, files, row_group, budget = _case(seed)
    monkeypatch.setenv("LOOPC_MEMORY_BUDGET", budget)
    _write(tmp_path, table, files, row_group)
    whole = read_snapshot(take_snapshot(dataset["source"], tmp_path))
    cast, violations = enforce_schema(whole.table, dataset["columns"], "d", whole)
    expected = validation_report("d", violations, run_checks(cast, dataset["checks"], NOW), rows=whole.table.num_rows)
    result = batchwise.validate_source(take_snapshot(dataset["source"], tmp_path, content=False), "d", dataset, NOW,
                                       tmp_path / "table.parquet")
    assert result.report == expected
    written = pq.read_table(tmp_path / "table.parquet")
    assert written.column_names == cast.column_names
    assert all(_same(written.column(n), cast.column(n)) for n in cast.column_names)
    (tmp_path / "out").mkdir()
    if result.summary is not None and result.summary.write(tmp_path / "out"):
        _assert_summary_exact(tmp_path / "out", cast, dataset)
    else:  # only a summary that a null key abandoned is not written
        assert cast.column("id").null_count or result.summary is None
