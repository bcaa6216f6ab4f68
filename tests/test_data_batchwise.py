"""Validation batch by batch (runtime/data/batchwise.py) gives the whole-table report and table, in
batches the memory budget sizes, and stops naming the file, the row group and the column for bad input.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from loopc.runtime.data import batchwise, checks
from loopc.runtime.data.checks import enforce_schema, run_checks, validation_report
from loopc.runtime.data.errors import DataError
from loopc.runtime.data.rows import ahead_rows, batch_rows
from loopc.runtime.data.snapshot import read_snapshot, take_snapshot
from loopc.runtime.execution.runner import run_step
from loopc.runtime.execution.step import load_step

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
COLUMNS = {
    "id": {"type": "string", "nullable": False, "unique": True},
    "n": {"type": "int", "nullable": False, "unique": True, "min": 0, "max": 5990},
    "x": {"type": "float", "nullable": False, "min": -3.0, "max": 3.0},
    "cat": {"type": "category", "allowed": ["a", "b", "c"]},
    "when": {"type": "timestamp"},
    "ghost": {"type": "float"},
}
CHECKS = [
    {"kind": "row_count", "min": 1000}, {"kind": "null_rate", "column": "x", "max": 0.001},
    {"kind": "null_rate", "column": "cat", "max": 0.5}, {"kind": "freshness", "column": "when", "max_age": "30d"},
    {"kind": "expression", "name": "pos", "expr": "x + n > 0", "min_fraction": 0.999},
    {"kind": "expression", "name": "bad", "expr": "nothere > 1"},
]


def _part(rows: int, start: int, seed: int) -> pa.Table:
    """Rows with every kind of violation, spread so that some repeat across files and batches."""
    rng = np.random.default_rng(seed)
    ids = [f"k{start + i}" for i in range(rows)]
    ids[rows - 1] = f"k{start}"  # repeats the file's first key, thousands of rows (several batches) later
    n = np.arange(start, start + rows)
    n[rows // 2] = 7  # repeats a value of the first file
    x = rng.normal(0, 1.2, rows)
    x[(rng.random(rows) < 0.01) & (np.arange(rows) > 1500)] = np.nan  # the first nulls are batches in
    cats = np.array(["a", "b", "c", "zz"], dtype=object)[rng.integers(0, 4, rows)]
    cats[rng.random(rows) < 0.05] = None
    when = pa.array(np.datetime64("2025-12-01") + rng.integers(0, 40, rows).astype("timedelta64[D]"))
    return pa.table({"id": ids, "n": n, "x": x, "cat": pa.array(list(cats), pa.string()), "when": when,
                     "extra": rng.integers(0, 3, rows)})


def _write(root: Path, fmt: str, row_group: int) -> dict:
    data = root / "data"
    for index, (rows, start) in enumerate([(3000, 0), (2200, 3000), (800, 5200)]):
        part = _part(rows, start, index)
        if index == 1:
            part = part.drop_columns(["cat"])  # a column one file lacks
        folder = data if fmt == "parquet" else data / f"region={'north' if index else 'south'}"
        folder.mkdir(parents=True, exist_ok=True)
        if fmt == "csv":
            pacsv.write_csv(part, folder / f"p{index}.csv")
        else:
            pq.write_table(part, folder / f"p{index}.parquet", row_group_size=row_group)
    suffix = "csv" if fmt == "csv" else "parquet"
    source = {"path": "data/*.parquet"} if fmt == "parquet" else {"path": f"data/**/*.{suffix}", "partitioning": "hive"}
    return {"source": source, "columns": COLUMNS, "checks": CHECKS}


def _whole_table(root: Path, dataset: dict) -> tuple[pa.Table, dict, list[int]]:
    """The old in-memory path: every file read whole, concatenated, cast and checked at once."""
    files = read_snapshot(take_snapshot(dataset["source"], root))
    cast, violations = enforce_schema(files.table, dataset["columns"], "d", files)
    report = validation_report("d", violations, run_checks(cast, dataset["checks"], NOW), rows=files.table.num_rows)
    return cast, report, [part.rows for part in files.parts]


@pytest.mark.parametrize("fmt, budget, row_group", [("parquet", "1M", 2500), ("parquet", "3M", 700),
                                                    ("parquet", None, 5000), ("csv", "1M", 0), ("hive", "1M", 1500)])
def test_batches_give_the_whole_table_report_and_table(tmp_path, monkeypatch, fmt, budget, row_group):
    if budget:
        monkeypatch.setenv("LOOPC_MEMORY_BUDGET", budget)  # 1M: batches of 1,024 rows split the row groups
    dataset = _write(tmp_path, fmt, row_group)
    cast, expected, rows = _whole_table(tmp_path, dataset)
    table = None if fmt == "parquet" else tmp_path / "table.parquet"
    result = batchwise.validate_source(take_snapshot(dataset["source"], tmp_path, content=False), "d", dataset,
                                       NOW, table)
    rules = {(v["column"], v["rule"]) for v in expected["violations"]}
    assert {("id", "unique"), ("n", "unique"), ("n", "range"), ("x", "range"), ("cat", "allowed"),
            ("cat", "missing_column"), ("ghost", "missing_column")} <= rules
    assert [c["passed"] for c in expected["checks"]] == [True, False, True, True, False, False]
    assert result.report == expected
    assert result.names == tuple(cast.column_names)
    assert [p.rows for p in result.parts] == rows and sorted(rows) == [800, 2200, 3000]
    if table is not None:
        assert pq.read_table(table).equals(cast)


def test_a_duplicate_hash_is_not_a_duplicate_value(monkeypatch):
    """Keys only pick candidates: values that share a key but differ are not reported."""
    monkeypatch.setattr(checks, "stable_hash64", lambda values: np.zeros(len(values), np.uint64))
    _, violations = enforce_schema(pa.table({"k": ["a", "b", "c", "b"]}), {"k": {"type": "string", "unique": True}})
    assert [(v.rule, v.count, v.examples) for v in violations] == [("unique", 2, ["b"])]


def test_a_tiny_memory_budget_gives_small_batches(tmp_path, monkeypatch):
    monkeypatch.setenv("LOOPC_MEMORY_BUDGET", "1M")
    (tmp_path / "data").mkdir()
    pq.write_table(pa.table({f"c{i}": np.arange(20_000.0) for i in range(5)}), tmp_path / "data" / "t.parquet")
    dataset = {"source": {"path": "data/t.parquet"}, "columns": {f"c{i}": {"type": "float"} for i in range(4)}}
    seen = []
    update = checks.ColumnRules.update
    monkeypatch.setattr(checks.ColumnRules, "update", lambda self, raw, absent=None: seen.append(len(raw)) or
                        update(self, raw, absent))
    result = batchwise.validate_source(take_snapshot(dataset["source"], tmp_path, content=False), "d", dataset, NOW)
    # the four declared columns are read, the extra one is not; one batch is decoded ahead (its share counted)
    limit = ahead_rows(batch_rows(8 * 4), 8 * 4)
    assert batch_rows(8 * 4) == (1 << 20) // 256 and limit == 3276 and max(seen) == limit
    assert len(seen) == 4 * 7 and sum(seen) == 4 * 20_000 and result.report["rows"] == 20_000  # 20,000 rows in 7


def _step(root: Path, dataset: dict) -> Path:
    doc = {"format": 1, "pipeline": "p", "plan": "p", "id": "validate.d", "kind": "validate", "stage": "data",
           "deps": [], "fingerprint": "fp", "cacheable": True, "state_dir": "state", "spec_hash": "h",
           "resources": {}, "config": {"dataset_name": "d", "dataset": dataset}}
    path = root / "steps" / "validate.d.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def _single(root: Path) -> tuple[Path, dict]:
    (root / "data").mkdir()
    path = root / "data" / "v.parquet"
    pq.write_table(pa.table({"v": np.random.default_rng(0).normal(size=4000), "w": np.arange(4000.0)}), path,
                   row_group_size=1000, compression="snappy")
    return path, {"source": {"path": "data/v.parquet"}, "columns": {"v": {"type": "float"}, "w": {"type": "float"}},
                  "checks": []}


def test_a_corrupt_row_group_fails_the_step_naming_the_file_the_row_group_and_the_columns(tmp_path):
    path, dataset = _single(tmp_path)
    column = pq.ParquetFile(path).metadata.row_group(2).column(0)
    stat = path.stat()
    with open(path, "r+b") as handle:  # scramble the third row group's data page, keep size and mtime
        handle.seek(column.data_page_offset + 8)
        handle.write(b"\xff" * (column.total_compressed_size - 16))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    record = run_step(load_step(_step(tmp_path, dataset)), tmp_path, "r1")
    assert record["status"] == "failed"
    assert f"dataset 'd': file '{path}' row group 2 (columns v, w) cannot be read" in record["message"]


def test_a_file_changing_while_it_is_read_fails_the_step_naming_it_and_the_last_row_group(tmp_path, monkeypatch):
    path, dataset = _single(tmp_path)
    real = batchwise.row_group_batches

    def grow_after_the_first(parquet, file, group, columns, size):
        yield from real(parquet, file, group, columns, size)
        if group == 1:
            with open(path, "ab") as handle:
                handle.write(b"late bytes")

    monkeypatch.setattr(batchwise, "row_group_batches", grow_after_the_first)
    record = run_step(load_step(_step(tmp_path, dataset)), tmp_path, "r1")
    assert record["status"] == "failed"
    assert f"file '{path}' changed after the source's snapshot was taken" in record["message"]
    assert "it changed while it was read (the last batch read: row group 3, columns v, w)" in record["message"]


def _unique_key_file(root: Path) -> tuple[Path, dict]:
    """Four row groups whose unique column 'k' repeats a value (so validation reads 'k' again)."""
    (root / "data").mkdir()
    path = root / "data" / "k.parquet"
    keys = np.arange(4000)
    keys[3999] = 0
    pq.write_table(pa.table({"k": keys, "w": np.arange(4000.0)}), path, row_group_size=1000)
    return path, {"source": {"path": "data/k.parquet"}, "columns": {"k": {"type": "int", "unique": True},
                                                                   "w": {"type": "float"}}, "checks": []}


def _touch(path: Path) -> None:
    """A later mtime, same bytes: only the snapshot's size and mtime can tell."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def _validate(root: Path, dataset: dict):
    return batchwise.validate_source(take_snapshot(dataset["source"], root, content=False), "d", dataset, NOW)


def test_a_unique_columns_reread_of_a_file_changed_since_the_first_read_names_the_file(tmp_path, monkeypatch):
    path, dataset = _unique_key_file(tmp_path)
    real = batchwise._violations

    def replace_first(*args):
        path.write_bytes(b"no longer parquet")  # the re-read would fail on the footer, not name the change
        return real(*args)

    monkeypatch.setattr(batchwise, "_violations", replace_first)
    with pytest.raises(DataError, match=f"file '{path}' changed after it was validated \\(column 'k' was read "
                                        "again to find repeated values\\)"):
        _validate(tmp_path, dataset)


def test_a_file_changing_during_a_unique_columns_reread_names_the_file(tmp_path, monkeypatch):
    path, dataset = _unique_key_file(tmp_path)
    real = batchwise.row_group_batches

    def touch_in_the_reread(parquet, file, group, columns, size):
        yield from real(parquet, file, group, columns, size)
        if columns == ["k"] and group == 1:  # the first read reads k and w together
            _touch(path)

    monkeypatch.setattr(batchwise, "row_group_batches", touch_in_the_reread)
    with pytest.raises(DataError, match=f"file '{path}' changed after it was validated \\(column 'k'"):
        _validate(tmp_path, dataset)


def test_an_unchanged_file_reread_reports_the_repeated_value(tmp_path):
    _, dataset = _unique_key_file(tmp_path)
    [repeat] = [v for v in _validate(tmp_path, dataset).report["violations"] if v["rule"] == "unique"]
    assert (repeat["column"], repeat["count"]) == ("k", 2)


def test_a_file_whose_column_type_clashes_names_the_file_and_the_column(tmp_path):
    (tmp_path / "data").mkdir()
    pq.write_table(pa.table({"c": [1, 2]}), tmp_path / "data" / "a.parquet")
    pq.write_table(pa.table({"c": ["x"]}), tmp_path / "data" / "b.parquet")
    dataset = {"source": {"path": "data/*.parquet"}, "columns": {"c": {"type": "int"}}, "checks": []}
    record = run_step(load_step(_step(tmp_path, dataset)), tmp_path, "r1")
    assert record["status"] == "failed"
    assert (f"files of source 'data/*.parquet' have incompatible schemas: file '{tmp_path}/data/b.parquet' column "
            "'c' holds string in every row group where earlier files hold int64") in record["message"]


def test_a_csv_block_that_does_not_parse_names_the_file_and_the_block(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    path = tmp_path / "data" / "a.csv"
    path.write_text("c\n" + "1\n" * 700_000 + "x,y\n", encoding="utf-8")  # a row with two fields, blocks later
    dataset = {"source": {"path": "data/a.csv"}, "columns": {"c": {"type": "int"}}, "checks": []}
    with pytest.raises(DataError, match=f"file '{path}' csv block [1-9][0-9]* \\(rows from [1-9]") as error:
        batchwise.validate_source(take_snapshot(dataset["source"], tmp_path, content=False), "d", dataset, NOW,
                                  tmp_path / "out.parquet")
    assert "another number of fields than the header: check the delimiter" in str(error.value)


@pytest.mark.parametrize("data, told", [
    (b"", "a CSV file needs at least its header row"),
    (b"c,d\n\xe9t\xe9,1\n", "not UTF-8: name its encoding in the source's options (options: {encoding: latin1})"),
    (b"c,d\n1,2,3\n", "another number of fields than the header"),
    (b"c,c\n1,2\n", "has more than one column named 'c': give each column its own name"),
    (b"c,d\n" + b"x,1\n" * 700_000 + b"x,abc\n", "an undeclared column's type is inferred from the file's first rows"),
])
def test_a_csv_file_that_cannot_be_read_says_what_to_change(tmp_path, data, told):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.csv").write_bytes(data)
    dataset = {"source": {"path": "data/a.csv"}, "columns": {"c": {"type": "string"}}, "checks": []}
    with pytest.raises(DataError, match="a.csv") as error:
        batchwise.validate_source(take_snapshot(dataset["source"], tmp_path, content=False), "d", dataset, NOW,
                                  tmp_path / "out.parquet")
    assert told in str(error.value)


def test_a_latin1_csv_reads_with_the_encoding_the_hint_names(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.csv").write_bytes("c,d\nété,1\n".encode("latin1"))
    dataset = {"source": {"path": "data/a.csv", "options": {"encoding": "latin1"}},
               "columns": {"c": {"type": "string"}, "d": {"type": "int"}}, "checks": []}
    result = batchwise.validate_source(take_snapshot(dataset["source"], tmp_path, content=False), "d", dataset, NOW,
                                       tmp_path / "out.parquet")
    assert result.report["passed"]
    assert pq.read_table(tmp_path / "out.parquet").to_pylist() == [{"c": "été", "d": 1}]


def _rows_of(paths: list[Path]):
    from loopc.runtime.data.rows import RowFile, ValidatedRows

    files = tuple(RowFile(p.as_posix(), p.stat().st_size, p.stat().st_mtime_ns, pq.ParquetFile(p).metadata.num_rows)
                  for p in paths)
    return ValidatedRows(pafs.LocalFileSystem(), files, {"id": {"type": "string"}, "t": {"type": "int"}}, True,
                         ("id", "t"))


@pytest.mark.parametrize("method", ["hash", "time", "random"])
def test_the_split_written_batch_by_batch_assigns_every_row_as_the_whole_table_split(tmp_path, monkeypatch, method):
    from loopc.runtime.data.split import assign_splits
    from loopc.runtime.steps.split_assign import write_assignment as _write_assignment

    monkeypatch.setenv("LOOPC_MEMORY_BUDGET", "1M")  # key batches of 13,107 rows (one read ahead) split the row groups
    paths = []
    for index, rows in enumerate([45_000, 7_000]):
        table = pa.table({"id": [f"u{index}-{i}" for i in range(rows)], "t": np.arange(rows) % 977})
        paths.append(tmp_path / f"p{index}.parquet")
        pq.write_table(table, paths[-1], row_group_size=20_000)
    split = {"method": method, "key": "id", "column": "t", "seed": 4, "train": 0.7, "valid": 0.2, "test": 0.1}
    rows = _rows_of(paths)
    seen = []
    if method == "hash":
        batches = rows.batches
        monkeypatch.setattr(type(rows), "batches", lambda self, columns: (seen.append(b.num_rows) or (o, b)
                                                                         for o, b in batches(columns)))
    counts = _write_assignment(rows, split, tmp_path / "assignment.npy")
    whole = assign_splits(pa.concat_tables([pq.read_table(p) for p in paths]), split)
    written = np.load(tmp_path / "assignment.npy")
    assert written.dtype == np.uint8 and np.array_equal(written, whole)
    assert counts == {name: int((whole == index).sum()) for index, name in enumerate(("train", "valid", "test"))}
    assert method != "hash" or seen == [13_107, 6_893, 13_107, 6_893, 5_000, 7_000]  # never a whole row group


def test_an_unknown_split_method_is_refused_not_split_at_random(tmp_path):
    from loopc.runtime.steps.split_assign import write_assignment as _write_assignment

    pq.write_table(pa.table({"id": ["a", "b"]}), tmp_path / "k.parquet")
    with pytest.raises(DataError, match="unknown split method 'bogus'; use hash, time or random"):
        _write_assignment(_rows_of([tmp_path / "k.parquet"]), {"method": "bogus", "train": 1.0}, tmp_path / "a.npy")


def test_null_split_keys_are_counted_over_every_batch(tmp_path, monkeypatch):
    from loopc.runtime.data.split import assign_splits
    from loopc.runtime.steps.split_assign import write_assignment as _write_assignment

    monkeypatch.setenv("LOOPC_MEMORY_BUDGET", "1M")
    path = tmp_path / "k.parquet"
    keys = [None if i % 10_000 == 3 else f"k{i}" for i in range(40_000)]  # nulls in two of the three batches
    pq.write_table(pa.table({"id": pa.array(keys, pa.string())}), path)
    split = {"method": "hash", "key": "id", "train": 0.8, "valid": 0.1, "test": 0.1}
    with pytest.raises(DataError) as batched:
        _write_assignment(_rows_of([path]), split, tmp_path / "a.npy")
    with pytest.raises(DataError) as whole:
        assign_splits(pq.read_table(path), split)
    assert str(batched.value) == str(whole.value) == ("split column 'id' has 4 null value(s); "
                                                      "every row needs a value to be assigned to a split")


def _late_csv(root: Path, tail: str, rows: int = 300_000) -> dict:
    """A CSV whose first blocks hold only whole numbers in x, then ``tail`` (later than the reader's first block)."""
    (root / "data").mkdir()
    body = "".join(f"{i},{i % 7},s{i % 3}\n" for i in range(rows))
    (root / "data" / "a.csv").write_text("id,x,s\n" + body + tail, encoding="utf-8")
    columns = {"id": {"type": "int"}, "x": {"type": "float", "nullable": False}, "s": {"type": "string"}}
    return {"source": {"path": "data/a.csv"}, "columns": columns, "checks": []}


def test_a_csv_float_column_whose_first_block_is_whole_numbers_reads_a_later_fraction(tmp_path):
    dataset = _late_csv(tmp_path, "300000,2.5,\n")
    cast, expected, _ = _whole_table(tmp_path, dataset)
    result = batchwise.validate_source(take_snapshot(dataset["source"], tmp_path, content=False), "d", dataset,
                                       NOW, tmp_path / "out.parquet")
    table = pq.read_table(tmp_path / "out.parquet")
    assert result.report == expected and result.report["passed"]
    assert table.equals(cast) and table.column("x")[-1].as_py() == 2.5
    assert table.column("s")[-1].as_py() == ""  # a declared string keeps an empty cell as text, as read_csv does


def test_a_csv_value_that_is_not_a_number_late_in_the_file_is_a_type_violation_and_null_spellings_are_nulls(tmp_path):
    dataset = _late_csv(tmp_path, "300000,abc,a\n300001,NA,b\n300002,,c\n")
    result = batchwise.validate_source(take_snapshot(dataset["source"], tmp_path, content=False), "d", dataset,
                                       NOW, tmp_path / "out.parquet")
    found = {(v["column"], v["rule"]): (v["count"], v["examples"]) for v in result.report["violations"]}
    # read whole, x would be inferred as text and "NA" and "" reported as unparsable; the reader's null
    # spellings are nulls instead, as they are for a column inferred as numbers
    assert found == {("x", "type"): (1, ["abc"]), ("x", "nullable"): (2, ["row 300001", "row 300002"])}


def test_a_csv_string_column_of_codes_keeps_its_leading_zeros_and_its_empty_cells(tmp_path):
    """Declared text is read as text: a column of codes is never typed as numbers from the file's first block."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.csv").write_text("zip,code,n\n001,007,1\n010,,2\n,0,NA\n", encoding="utf-8")
    columns = {"zip": {"type": "string"}, "code": {"type": "category"}, "n": {"type": "int"}}
    dataset = {"source": {"path": "data/a.csv"}, "columns": columns, "checks": []}
    result = batchwise.validate_source(take_snapshot(dataset["source"], tmp_path, content=False), "d", dataset,
                                       NOW, tmp_path / "out.parquet")
    table = pq.read_table(tmp_path / "out.parquet")
    assert result.report["passed"]
    assert table.column("zip").to_pylist() == ["001", "010", ""]
    assert table.column("code").to_pylist() == ["007", "", "0"]
    assert table.column("n").to_pylist() == [1, 2, None]  # a number column's null spellings are nulls


@pytest.mark.parametrize(("delimiter", "shown"), [(";", "';'"), ("\t", "'\\t'"), ("|", "'|'")])
def test_a_csv_with_another_delimiter_is_reported_with_the_option_that_reads_it(tmp_path, delimiter, shown):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.csv").write_text(f"id{delimiter}x\n1{delimiter}2.5\n", encoding="utf-8")
    dataset = {"source": {"path": "data/a.csv"}, "columns": {"id": {"type": "int"}, "x": {"type": "float"}},
               "checks": []}
    found = batchwise.validate_source(take_snapshot(dataset["source"], tmp_path, content=False), "d", dataset,
                                      NOW).report["violations"]
    hint = f"looks like a header of fields separated by {shown}: set the source's options: {{delimiter: {shown}}}"
    missing = [v for v in found if v["rule"] == "missing_column"]
    assert [v["column"] for v in missing] == ["id", "x"] and all(hint in v["message"] for v in missing)
    dataset["source"]["options"] = {"delimiter": delimiter}
    assert batchwise.validate_source(take_snapshot(dataset["source"], tmp_path, content=False), "d", dataset,
                                     NOW).report["passed"]


def test_a_missing_column_beside_one_plain_column_gets_no_delimiter_hint(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.csv").write_text("id\n1\n", encoding="utf-8")
    dataset = {"source": {"path": "data/a.csv"}, "columns": {"id": {"type": "int"}, "x": {"type": "float"}},
               "checks": []}
    found = batchwise.validate_source(take_snapshot(dataset["source"], tmp_path, content=False), "d", dataset,
                                      NOW).report["violations"]
    [missing] = [v for v in found if v["rule"] == "missing_column"]
    assert missing["message"].endswith("present: id")


@pytest.mark.parametrize("header", ["ID", " id", "Id "])
def test_a_declared_column_present_in_another_case_or_with_spaces_is_named(tmp_path, header):
    (tmp_path / "data").mkdir()
    pq.write_table(pa.table({header: [1, 2], "x": [0.5, 1.5]}), tmp_path / "data" / "a.parquet")
    dataset = {"source": {"path": "data/a.parquet"}, "columns": {"id": {"type": "int"}, "x": {"type": "float"}},
               "checks": []}
    found = batchwise.validate_source(take_snapshot(dataset["source"], tmp_path, content=False), "d", dataset,
                                      NOW).report["violations"]
    [missing] = [v for v in found if v["rule"] == "missing_column"]
    assert missing["message"].endswith(f"; {header!r} is present: names are matched exactly, declare the column as "
                                       f"{header!r}")
