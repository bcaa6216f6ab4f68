"""runtime/data/formats: the one place that tells a file's format (validate, score, monitor, loopc drift) and
casts a dataset's CSV batches to the declared types."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from loopc.runtime.data.errors import DataError
from loopc.runtime.data.formats import cast_declared, common_format, csv_text_columns, dataset_format, file_format


@pytest.mark.parametrize("names, declared, default, expected", [
    (["a.csv", "b.CSV"], None, None, "csv"),
    (["a.parquet", "b.pq"], None, None, "parquet"),
    (["a.csv"], "parquet", None, "parquet"),  # the declared format wins over the extension
    (["rows"], None, "parquet", "parquet"),  # a folder: no extension, the default
    (["rows/", "x.csv"], "csv", None, "csv"),
])
def test_one_format_for_the_files_read_together(names, declared, default, expected):
    assert common_format({"format": declared}, names, default) == expected


def test_files_of_two_formats_or_an_unknown_extension_without_a_default_are_refused():
    with pytest.raises(DataError, match="the files are csv and parquet; read one format at a time"):
        common_format({}, ["a.csv", "b.parquet"], default="parquet")
    with pytest.raises(DataError, match="cannot tell the format of 'a.txt'; set source.format"):
        file_format({}, "a.txt")
    assert file_format({}, "a.txt", default="parquet") == "parquet"


def test_a_parquet_dataset_takes_no_csv_options_and_a_csv_one_reads_its_text_columns_as_strings(tmp_path):
    with pytest.raises(DataError, match=r"parquet sources take no options, got \['delimiter'\]"):
        dataset_format("parquet", {"delimiter": ";"})
    (tmp_path / "r.csv").write_text("a;b\n1;2\n")
    fmt = dataset_format("csv", {"delimiter": ";"}, frozenset({"a"}))
    assert ds.dataset(tmp_path / "r.csv", format=fmt).to_table().to_pydict() == {"a": ["1"], "b": [2]}


def test_declared_columns_are_cast_and_the_first_unreadable_column_is_named_with_its_values():
    batch = pa.record_batch({"n": ["1", "NA", "3"], "when": ["2026-01-01", "2026-02-30", "x"], "free": [1, 2, 3]})
    types = {"gone": "int", "n": "int", "when": "date"}
    cast, bad = cast_declared(batch.select(["n", "free"]), types, csv_text_columns({"n": "int"}))
    assert bad is None and cast.column("n").to_pylist() == [1, None, 3] and cast.column("free").type == pa.int64()
    cast, bad = cast_declared(batch, types, csv_text_columns({"n": "int", "when": "date"}))
    assert (bad.column, bad.ctype, bad.count, bad.examples) == ("when", "date", 2, ["2026-02-30", "x"])
    assert cast.column("n").type == pa.int64()  # what was cast before the bad column
    _, untyped = cast_declared(batch, types)  # "NA" read as text but not a CSV column: not a null spelling
    assert (untyped.column, untyped.count, untyped.examples) == ("n", 1, ["NA"])


def test_every_declared_csv_column_is_read_as_text_and_only_non_text_ones_lose_null_spellings():
    text = csv_text_columns({"zip": "string", "kind": "category", "n": "float"})
    assert set(text) == {"zip", "kind", "n"}
    batch = pa.record_batch({"zip": ["007", "NA", ""], "kind": ["", "null", "a"], "n": ["1", "NA", ""]})
    cast, bad = cast_declared(batch, {"zip": "string", "kind": "category", "n": "float"}, text)
    assert bad is None
    assert cast.column("zip").to_pylist() == ["007", "NA", ""]
    assert cast.column("kind").to_pylist() == ["", "null", "a"]
    assert cast.column("n").to_pylist() == [1.0, None, None]
