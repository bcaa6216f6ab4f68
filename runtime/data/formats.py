"""File formats: which one a file is, parsing one file's bytes (Parquet or CSV) into a table with its hive
partition columns, and a dataset's CSV columns read as text and cast as declared."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from loopc.runtime.data.casting import cast_column, examples
from loopc.runtime.data.errors import DataError
from loopc.runtime.data.sources import FORMATS

CSV_OPTIONS = {"delimiter", "quote_char", "skip_rows", "encoding"}
CsvText = Mapping[str, pa.Array]  # CSV columns read as text -> the spellings that mean null in each


def file_format(source: dict, name: str, default: str | None = None) -> str:
    """``parquet`` or ``csv``: the source's declared format, else the file's extension, else ``default``
    (a DataError without one)."""
    declared = source.get("format")
    if declared:
        return declared
    suffix = PurePosixPath(name).suffix.lower()
    if suffix in FORMATS:
        return FORMATS[suffix]
    if default is None:
        raise DataError(f"cannot tell the format of '{name}'; set source.format to parquet or csv")
    return default


def common_format(source: dict, names: Iterable[str], default: str | None = None) -> str:
    """The format of the files ``names`` (at least one) read as one dataset, each as ``file_format`` tells;
    a DataError when they differ."""
    found = sorted({file_format(source, name, default) for name in names})
    if len(found) > 1:
        raise DataError(f"the files are {' and '.join(found)}; read one format at a time or declare the format")
    return found[0]


def dataset_format(fmt: str, options: dict, text: CsvText | None = None) -> ds.FileFormat:
    """A pyarrow dataset's file format: Parquet, or CSV read with ``options``, its ``text`` columns as strings."""
    if fmt == "parquet":
        if options:
            raise DataError(f"parquet sources take no options, got {sorted(options)}")
        return ds.ParquetFileFormat()
    read, parse = csv_options(options)
    return ds.CsvFileFormat(parse_options=parse, read_options=read, convert_options=csv_convert(None, text or {}))


def scan_batches(dataset: ds.Dataset, columns: list[str], rows: int) -> Iterator[ds.TaggedRecordBatch]:
    """The dataset's non-empty record batches of ``columns``, at most ``rows`` rows each; a DataError for one that
    cannot be read (a CSV row with another number of fields, a value unlike those the reader typed an undeclared
    column by, a corrupt file)."""
    batches = iter(dataset.scanner(columns=columns, batch_size=rows).scan_batches())
    while True:
        try:
            tagged = next(batches)
        except StopIteration:
            return
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataError(str(exc)) from None
        if tagged.record_batch.num_rows:
            yield tagged


def csv_options(options: dict) -> tuple[pacsv.ReadOptions, pacsv.ParseOptions]:
    """pyarrow's CSV read and parse options for a source's ``options``; DataError for unknown ones."""
    unknown = sorted(set(options) - CSV_OPTIONS)
    if unknown:
        raise DataError(f"unknown csv option(s) {unknown}; supported: {sorted(CSV_OPTIONS)}")
    read = pacsv.ReadOptions(skip_rows=int(options.get("skip_rows", 0)), encoding=options.get("encoding", "utf8"))
    parse = pacsv.ParseOptions(
        delimiter=options.get("delimiter", ","), quote_char=options.get("quote_char", '"')
    )
    return read, parse


def csv_text_columns(types: dict[str, str | None]) -> CsvText:
    """The columns (name -> declared type) a streaming CSV reader reads as text, each with the spellings that
    mean null in it: every declared column.

    A streaming reader fixes each column's type from the file's first block: a float column whose first
    block holds only whole numbers would fail on a later ``2.5``, a bad value later on would stop the read
    instead of being reported, and a string column of codes (``001``) would be read as numbers and lose its
    leading zeros. Read as text, each value is parsed as the declared type (``casting.cast_column``) after
    ``csv_nulls`` made the column's null spellings null: none in a string or category column (every value,
    the empty one included, is kept as written, as ``read_csv`` keeps a column it reads as text), the
    reader's spellings ("", "NA", "null", "NaN", ...) in any other, as its inference does.
    """
    return {name: _TEXT_NULLS if ctype in ("string", "category") else _CSV_NULLS for name, ctype in types.items()}


def csv_convert(columns: list[str] | None, text: CsvText) -> pacsv.ConvertOptions:
    """Read ``columns`` (all when None or empty), the ``text`` ones as strings."""
    return pacsv.ConvertOptions(include_columns=columns or [], column_types={c: pa.string() for c in text})


def csv_nulls(array: pa.Array | pa.ChunkedArray, spellings: pa.Array) -> pa.Array | pa.ChunkedArray:
    """Text read from CSV with ``spellings`` (``csv_text_columns`` gives each column's) made null; a column that
    is not text (a hive folder's ``year=2024``, typed by the dataset) as it is."""
    if not pa.types.is_string(array.type) or not len(spellings):
        return array
    return pc.if_else(pc.is_in(array, value_set=spellings), pa.scalar(None, array.type), array)


_CSV_NULLS = pa.array(pacsv.ConvertOptions().null_values, pa.string())
_TEXT_NULLS = pa.array([], pa.string())  # a declared string or category column keeps its text


@dataclass(frozen=True)
class Unreadable:
    """Values of ``column`` that cannot be read as its declared type ``ctype``: how many, and a few of them."""

    column: str
    ctype: str
    count: int
    examples: list


def cast_declared(batch: pa.RecordBatch, types: dict[str, str],
                  text: CsvText | None = None) -> tuple[pa.RecordBatch, Unreadable | None]:
    """``batch`` with each of its columns that ``types`` declares (name -> type) cast as validate casts, the ``text``
    ones (read from CSV as strings) after ``csv_nulls``; at the first column holding values that cannot be read,
    the batch cast so far and what that column holds."""
    for name, ctype in types.items():
        index = batch.schema.get_field_index(name)
        if index < 0:
            continue
        column = csv_nulls(batch.column(index), text[name]) if text and name in text else batch.column(index)
        cast, bad = cast_column(column, ctype)
        if bad.any():
            return batch, Unreadable(name, ctype, int(np.count_nonzero(bad)), examples(column, bad, distinct=True))
        batch = batch.set_column(index, name, cast)
    return batch, None


def csv_hint(error: Exception) -> str:
    """What to do about a CSV reader's ``error``, as a clause to append to the message ("" when nothing applies)."""
    text = str(error)
    if "Empty CSV file" in text:
        return "; a CSV file needs at least its header row"
    if "invalid UTF8" in text:
        return "; the file is not UTF-8: name its encoding in the source's options (options: {encoding: latin1})"
    if "Expected" in text and "columns, got" in text:
        return ("; a row has another number of fields than the header: check the delimiter and the quoting "
                "(options: {delimiter: ';', quote_char: '\"'})")
    if "conversion error" in text:
        return ("; an undeclared column's type is inferred from the file's first rows: declare the column in the "
                "dataset's columns to have every row parsed as its type")
    return ""


def _read_csv(data: pa.Buffer, options: dict) -> pa.Table:
    read, parse = csv_options(options)
    return pacsv.read_csv(pa.BufferReader(data), read_options=read, parse_options=parse)


def hive_columns(name: str) -> dict[str, str]:
    """``year=2024/month=01/part.parquet`` -> {'year': '2024', 'month': '01'}."""
    return dict(part.split("=", 1) for part in PurePosixPath(name).parts[:-1] if "=" in part)


def parse_file(data: pa.Buffer, name: str, path: str, source: dict) -> pa.Table:
    """The table in ``data`` (the bytes of file ``name`` of ``source``, found at ``path``)."""
    fmt = file_format(source, name)
    try:
        if fmt == "parquet":
            if source.get("options"):
                raise DataError(f"parquet sources take no options, got {sorted(source['options'])}")
            table = pq.read_table(pa.BufferReader(data))
        else:
            table = _read_csv(data, dict(source.get("options") or {}))
    except (pa.ArrowException, OSError) as error:
        raise DataError(f"cannot read {fmt} file '{path}': {error}{csv_hint(error) if fmt == 'csv' else ''}") from None
    if source.get("partitioning") == "hive":
        for key, value in hive_columns(name).items():
            if key not in table.column_names:
                table = table.append_column(key, pa.array([value] * table.num_rows, pa.string()))
    return table
