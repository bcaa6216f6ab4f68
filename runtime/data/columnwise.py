"""Validating Parquet files one column at a time: the report ``enforce_schema`` and ``run_checks``
give on the whole table, while holding one column (or one check's columns) in memory.

The files are digested first (streamed sha256), their row counts and column names come from the
Parquet footers, and each declared column is then read from every file (a projection, one row
group at a time), cast and checked exactly as the whole-table path does, and dropped.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from loopc.runtime.data import checks
from loopc.runtime.data.casting import cast_column
from loopc.runtime.data.errors import DataError
from loopc.runtime.data.rows import RowFile, ValidatedRows
from loopc.runtime.data.snapshot import FilePart, Snapshot, SourceFile, SourceTable, digest_entries


@dataclass(frozen=True)
class ColumnwiseResult:
    """The validation report, the files as read (with digests), their parts and the table's column names."""

    report: dict
    entries: tuple[SourceFile, ...]
    parts: tuple[FilePart, ...]
    names: tuple[str, ...]


def _footers(snapshot: Snapshot) -> tuple[tuple[FilePart, ...], list[str]]:
    """Every file's rows and columns from its footer, and the column names in the order a permissive
    concatenation of the files gives them."""
    parts, schemas = [], []
    for entry in snapshot.entries:
        path = snapshot.path(entry)
        try:
            with snapshot.files.filesystem.open_input_file(path) as handle:
                parquet = pq.ParquetFile(handle)
                rows, schema = parquet.metadata.num_rows, parquet.schema_arrow
        except (OSError, pa.ArrowException) as error:
            raise DataError(f"cannot read parquet file '{path}': {error}") from None
        parts.append(FilePart(path, rows, frozenset(schema.names)))
        schemas.append(schema)
    try:
        names = pa.unify_schemas(schemas, promote_options="permissive").names
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        raise DataError(f"files of source '{snapshot.source['path']}' have incompatible schemas: {error}") from None
    return tuple(parts), names


def _cast_table(raw: pa.Table, columns: dict) -> pa.Table:
    """Declared columns cast as ``enforce_schema`` casts them (uncastable values null)."""
    return pa.table({name: cast_column(raw.column(name), columns[name]["type"])[0] if name in columns
                     else raw.column(name) for name in raw.column_names})


def validate_in_place(snapshot: Snapshot, name: str, dataset: dict, now: dt.datetime) -> ColumnwiseResult:
    """Digest, then validate the snapshot's Parquet files column by column; DataError for unreadable files."""
    entries = digest_entries(snapshot)
    parts, names = _footers(snapshot)
    rows = sum(p.rows for p in parts)
    files = [RowFile(snapshot.path(e), e.size, e.mtime_ns, p.rows) for e, p in zip(entries, parts)]
    raw = ValidatedRows(snapshot.files.filesystem, tuple(files), {}, False, tuple(names))
    shape = pa.table({n: pa.nulls(rows) for n in names})
    source = SourceTable(shape, parts, entries)
    columns, violations = dataset["columns"], []
    for column, spec in columns.items():
        if column not in names:
            violations.append(checks.missing_everywhere(name, column, spec, shape, source))
            continue
        violations.extend(checks.enforce_schema(raw.read([column]), {column: spec}, name, source)[1])
    violations.extend(checks.extra_column(name, n) for n in names if n not in columns)
    validated = [c for c in columns if c in names] + [n for n in names if n not in columns]
    shape = pa.table({n: pa.nulls(rows) for n in validated})  # what a check of a missing column names
    results = []
    for check in dataset.get("checks") or []:
        needed = checks.check_columns(check)
        table = _cast_table(raw.read(needed), columns) if needed and set(needed) <= set(names) else shape
        results.extend(checks.run_checks(table, [check], now))
    report = checks.validation_report(name, violations, results, rows=rows)
    return ColumnwiseResult(report, entries, parts, tuple(validated))
