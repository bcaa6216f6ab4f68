"""Scoring input is cast to the dataset's declared types with the validate step's casting (score/cast.py):
text, other number types and dictionary columns reach the model as training rows did; a value that cannot
be cast, or a file without a column the model reads, is refused naming the file and the column."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from loopc.runtime.data.casting import cast_column
from loopc.runtime.score.cast import InputCast
from loopc.runtime.score.resolve import ScoreError

SCHEMA = {"columns": [{"name": "active", "text": False, "type": "bool"},
                      {"name": "seen", "text": False, "type": "timestamp"},
                      {"name": "visits", "text": False, "type": "float"},
                      {"name": "plan", "text": True, "type": "category"},
                      {"name": "legacy", "text": False, "type": None}]}  # a bundle written before types: as is


def batches(folder):
    dataset = ds.dataset(folder, format="parquet", partitioning="hive")
    return [(t.record_batch, t.fragment) for t in dataset.scanner().scan_batches()]


def test_text_and_other_types_are_cast_as_the_validate_step_casts_them(tmp_path):
    raw = pa.table({"active": ["true", "no", None], "seen": ["2026-01-02T03:04:05Z", "2026-01-02", None],
                    "visits": pa.array([1, 2, 3], pa.int32()), "plan": pa.array(["a", "b", "a"]).dictionary_encode(),
                    "legacy": ["x", "y", "z"]})
    pq.write_table(raw, tmp_path / "rows.parquet")
    ((batch, fragment),) = batches(tmp_path)
    cast = InputCast(SCHEMA)(batch, fragment)
    assert cast.column("active").to_pylist() == [True, False, None]
    assert cast.column("seen").type == pa.timestamp("us", tz="UTC")
    assert cast.column("seen").to_pylist()[:2] == [dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
                                                   dt.datetime(2026, 1, 2, tzinfo=dt.UTC)]
    assert cast.column("visits").type == pa.float64() and cast.column("plan").type == pa.string()
    assert cast.column("legacy").to_pylist() == ["x", "y", "z"]
    for name in ("active", "seen", "visits", "plan"):  # exactly what training's validate step made of them
        declared = next(c["type"] for c in SCHEMA["columns"] if c["name"] == name)
        assert cast.column(name).equals(cast_column(raw.column(name), declared)[0])


def test_a_value_that_cannot_be_cast_is_refused_naming_file_column_and_value(tmp_path):
    pq.write_table(pa.table({"active": ["true", "maybe"], "seen": [None, None], "visits": [1.0, 2.0],
                             "plan": ["a", "b"], "legacy": [1, 2]}), tmp_path / "bad.parquet")
    ((batch, fragment),) = batches(tmp_path)
    with pytest.raises(ScoreError) as caught:
        InputCast(SCHEMA)(batch, fragment)
    assert str(caught.value) == (f"'{tmp_path / 'bad.parquet'}': column 'active' has 1 value(s) that cannot be read "
                                 "as bool, the type the model was trained on (e.g. 'maybe')")


def test_a_column_may_come_from_a_hive_folder_but_not_be_missing(tmp_path):
    schema = {"columns": [{"name": "region", "text": True, "type": "category"},
                          {"name": "visits", "text": False, "type": "float"}]}
    (tmp_path / "region=north").mkdir()
    pq.write_table(pa.table({"visits": [1.0]}), tmp_path / "region=north" / "a.parquet")
    ((batch, fragment),) = batches(tmp_path)
    assert InputCast(schema)(batch, fragment).column("region").to_pylist() == ["north"]
    pq.write_table(pa.table({"other": [1.0]}), tmp_path / "region=north" / "b.parquet")
    cast = InputCast(schema)
    with pytest.raises(ScoreError, match=r"b\.parquet' lacks column\(s\) visits that the model reads"):
        for batch, fragment in batches(tmp_path):
            cast(batch, fragment)


def test_csv_text_columns_have_their_null_spellings_made_null_before_the_cast():
    cast = InputCast({"columns": [{"name": "x", "type": "float"}, {"name": "s", "type": "string"}]}, csv=True)
    assert set(cast.text) == {"x", "s"}  # every declared column is read as text
    batch = pa.record_batch({"x": ["1.5", "NA", "", "2"], "s": ["NA", "", "a", "b"]})
    out = cast(batch, None)
    assert out.column("x").to_pylist() == [1.5, None, None, 2.0]
    assert out.column("s").to_pylist() == ["NA", "", "a", "b"]  # a string column keeps its text


def test_a_hive_folder_of_csv_files_casts_its_typed_folder_column_and_parses_the_text_ones(tmp_path):
    from loopc.runtime.score.batch import ScoreJob, _dataset

    (tmp_path / "year=2024").mkdir()
    (tmp_path / "year=2024" / "rows.csv").write_text("x\n1.5\nNA\n")
    schema = {"columns": [{"name": "x", "type": "float"}, {"name": "year", "type": "int"}]}
    cast = InputCast(schema, csv=True)  # year is in its text columns, but the dataset types it from the folder name
    dataset = _dataset(ScoreJob(source=str(tmp_path), output=tmp_path / "out", format="csv"), cast.text)
    ((batch, fragment),) = [(t.record_batch, t.fragment) for t in dataset.scanner().scan_batches()]
    out = cast(batch, fragment)
    assert out.column("x").to_pylist() == [1.5, None] and out.column("year").to_pylist() == [2024, 2024]


def test_a_scoring_source_of_csv_and_parquet_files_is_refused_naming_both():
    from loopc.runtime.score.batch import ScoreJob
    from loopc.runtime.score.resolve import ScoreError

    assert ScoreJob(source="in/", output=Path("out")).file_format == "parquet"  # a folder
    assert ScoreJob(source="in/*", output=Path("out"), files=("in/a.CSV", "in/b.csv")).file_format == "csv"
    with pytest.raises(ScoreError, match="at 'in/\\*': the files are csv and parquet"):
        _ = ScoreJob(source="in/*", output=Path("out"), files=("in/a.csv", "in/b.parquet")).file_format


def test_a_csv_to_score_keeps_the_leading_zeros_of_a_string_column(tmp_path):
    from loopc.runtime.score.batch import ScoreJob, _dataset

    (tmp_path / "rows.csv").write_text("zip,x\n001,1.5\n020,2\n")
    cast = InputCast({"columns": [{"name": "zip", "type": "string"}, {"name": "x", "type": "float"}]}, csv=True)
    dataset = _dataset(ScoreJob(source=str(tmp_path / "rows.csv"), output=tmp_path / "out", format="csv"), cast.text)
    ((batch, fragment),) = [(t.record_batch, t.fragment) for t in dataset.scanner().scan_batches()]
    out = cast(batch, fragment)
    assert out.column("zip").to_pylist() == ["001", "020"] and out.column("x").to_pylist() == [1.5, 2.0]


def test_rows_to_score_that_are_not_there_are_named_as_missing(tmp_path):
    from loopc.runtime.score.batch import ScoreJob, _dataset
    from loopc.runtime.score.resolve import ScoreError

    missing = tmp_path / "nowhere.parquet"
    with pytest.raises(ScoreError) as raised:
        _dataset(ScoreJob(source=str(missing), output=tmp_path / "out"), {})
    assert str(raised.value) == f"cannot read the rows to score at '{missing}': no such file or folder"


def test_a_file_lacking_a_key_column_is_refused_not_written_with_null_keys(tmp_path):
    schema = {"columns": [{"name": "visits", "text": False, "type": "float"}]}
    pq.write_table(pa.table({"id": [1], "region": ["north"], "visits": [1.0]}), tmp_path / "a.parquet")
    pq.write_table(pa.table({"id": [2], "visits": [2.0]}), tmp_path / "b.parquet")
    cast = InputCast(schema, keys=("id", "region", "visits"))  # a key the model reads is checked once, as such
    with pytest.raises(ScoreError, match=r"b\.parquet' lacks key column\(s\) region that other files have"):
        for batch, fragment in batches(tmp_path):
            cast(batch, fragment)
    ids = InputCast(schema, keys=("id",))
    assert sum(ids(batch, fragment).num_rows for batch, fragment in batches(tmp_path)) == 2
