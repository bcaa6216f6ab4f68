"""Validating a source batch by batch: the report ``enforce_schema`` and ``run_checks`` give on the
whole table, in memory bounded by the batch size (``rows.batch_rows``), not by the rows.

Each file of the snapshot is read once, in record batches (Parquet one row group at a time, its
columns decoded in parallel; CSV through pyarrow's streaming reader), while a thread computes its
BLAKE3 digest from the same file; its size and mtime are checked before and after (``snapshot.digesting``).
Every batch is brought to the files' unified schema (what a permissive concatenation of the files
gives), cast per declared column and fed to that column's rules (``checks.ColumnRules``) and to
each check's runner (``checks.check_runners``). A unique column keeps 9 bytes a row and reads
again only the rows whose value may repeat. A source that is not read in place (CSV, hive
partitions) is written once, cast, batch by batch, as ``table.parquet``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from loopc.runtime.data import checks
from loopc.runtime.data.casting import ARROW_TYPES, cast_column, one_array
from loopc.runtime.data.errors import DataError
from loopc.runtime.data.formats import (
    CsvText,
    csv_convert,
    csv_hint,
    csv_nulls,
    csv_options,
    csv_text_columns,
    file_format,
    hive_columns,
)
from loopc.runtime.data.parallel import ColumnMap, column_pool
from loopc.runtime.data.readahead import read_ahead
from loopc.runtime.data.rows import ahead_rows, batch_rows, check_unchanged, open_parquet, row_group_batches
from loopc.runtime.data.snapshot import FilePart, LocalCopy, Snapshot, SourceFile, digesting, spooled
from loopc.runtime.data.split_summary import SplitSummary, summarised

Opener = LocalCopy | pafs.FileSystem  # what a file is opened through: a local copy of it, or its filesystem
COLUMN_GROUP = 8  # columns decoded together: few page buffers at a time, the batch stays in cache


@dataclass(frozen=True)
class ValidatedSource:
    """The validation report, the files as read (with digests), their parts and the table's column names."""

    report: dict
    entries: tuple[SourceFile, ...]
    parts: tuple[FilePart, ...]
    names: tuple[str, ...]
    summary: SplitSummary | None = None


@dataclass(frozen=True)
class _Files:
    """The snapshot, each file's own schema (hive columns included) and the schema of them all."""

    snapshot: Snapshot
    schemas: tuple[pa.Schema, ...]
    unified: pa.Schema
    text: CsvText = dataclasses.field(default_factory=dict)  # CSV columns read as text, then parsed as declared (csv_text_columns)

    def batches(self, index: int, groups: list[list[str]], size: int,
                opener: Opener | None = None) -> Iterator[tuple[str, int, int, dict[str, pa.Array]]]:
        """(where, which group, rows, that group's columns as the unified schema types them) per batch
        of file ``index``: each group's batches in row order (Parquet: row group by row group, the
        groups of one row group in turn; CSV reads one group only). The file is opened through ``opener``
        (a local copy of a remote file: ``snapshot.spooled``), else the snapshot's filesystem."""
        entry, schema = self.snapshot.entries[index], self.schemas[index]
        path = self.snapshot.path(entry)
        own = [[c for c in group if c in schema.names] for group in groups]
        for where, part, batch in _raw_batches(self.snapshot, entry, own, size, self.text, opener):
            yield where, part, batch.num_rows, {name: self._conform(batch, name, path, where) for name in groups[part]}

    def _conform(self, batch: pa.Table, name: str, path: str, where: str) -> pa.Array:
        """One column as the unified schema types it (cast as a permissive concatenation casts), or nulls."""
        type_ = self.unified.field(name).type
        if batch.schema.get_field_index(name) < 0:  # not `in column_names`: a list of every name, column by column
            return pa.nulls(batch.num_rows, type_)
        column = one_array(batch.column(name))
        try:
            return column if column.type == type_ else pc.cast(column, type_)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as error:
            raise DataError(f"file '{path}' {where} column '{name}': {column.type} values cannot be read as "
                            f"{type_}, the type the other files give it: {error}") from None


@contextmanager
def _csv_reader(snapshot: Snapshot, entry: SourceFile, columns: list[str] | None = None,
                text: CsvText | None = None, opener: Opener | None = None):
    path = snapshot.path(entry)
    read, parse = csv_options(dict(snapshot.source.get("options") or {}))
    convert = csv_convert(columns, text or {})
    try:
        stream = (opener or snapshot.files.filesystem).open_input_stream(path)
        reader = pacsv.open_csv(stream, read_options=read, parse_options=parse, convert_options=convert)
    except (pa.ArrowException, OSError) as error:
        raise DataError(f"cannot read csv file '{path}': {error}{csv_hint(error)}") from None
    with stream:
        yield reader


def _raw_batches(snapshot: Snapshot, entry: SourceFile, groups: list[list[str]], size: int,
                 text: CsvText | None = None, opener: Opener | None = None) -> Iterator[tuple[str, int, pa.Table]]:
    """(where, which group, that group's columns as the file holds them, hive columns added) per batch."""
    hive = _hive_values(snapshot, entry)
    own = [[c for c in group if c not in hive] for group in groups]
    if _is_parquet(snapshot, entry):
        batches = _parquet_batches(snapshot, entry, own, size, opener)
    else:
        batches = _csv_batches(snapshot, entry, own, text or {}, opener)
    for where, part, batch in batches:
        table = pa.Table.from_batches([batch]).select(own[part])
        for key in [c for c in groups[part] if c in hive]:
            table = table.append_column(key, pa.repeat(pa.scalar(hive[key], pa.string()), batch.num_rows))
        yield where, part, table.select(groups[part])


def _parquet_batches(snapshot: Snapshot, entry: SourceFile, groups: list[list[str]],
                     size: int, opener: Opener | None = None) -> Iterator[tuple[str, int, pa.RecordBatch]]:
    path = snapshot.path(entry)
    with open_parquet(opener or snapshot.files.filesystem, path) as parquet:
        for group in range(parquet.num_row_groups):
            for part, columns in enumerate(groups):
                for batch in row_group_batches(parquet, path, group, columns, size):
                    yield f"row group {group}", part, batch


def _csv_batches(snapshot: Snapshot, entry: SourceFile, groups: list[list[str]],
                 text: CsvText, opener: Opener | None = None) -> Iterator[tuple[str, int, pa.RecordBatch]]:
    """The CSV reader's blocks; one group. ``text`` columns come as text with null spellings made null;
    the others' types are inferred from the file's first block."""
    [columns] = groups
    path, block, rows = snapshot.path(entry), 0, 0
    with _csv_reader(snapshot, entry, columns, text, opener) as reader:
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            except (pa.ArrowException, OSError) as error:
                raise DataError(f"file '{path}' csv block {block} (rows from {rows}, columns "
                                f"{', '.join(columns)}) cannot be read: {error}{csv_hint(error)}") from None
            for index, name in enumerate(batch.schema.names):
                if name in text:
                    batch = batch.set_column(index, name, csv_nulls(batch.column(index), text[name]))
            yield f"csv block {block}", 0, batch
            block, rows = block + 1, rows + batch.num_rows


def _is_parquet(snapshot: Snapshot, entry: SourceFile) -> bool:
    fmt = file_format(snapshot.source, entry.name)
    if fmt == "parquet" and snapshot.source.get("options"):
        raise DataError(f"parquet sources take no options, got {sorted(snapshot.source['options'])}")
    return fmt == "parquet"


def _hive_values(snapshot: Snapshot, entry: SourceFile) -> dict[str, str]:
    return hive_columns(entry.name) if snapshot.source.get("partitioning") == "hive" else {}


def _file_schema(snapshot: Snapshot, entry: SourceFile, text: CsvText | None = None) -> tuple[pa.Schema, int | None]:
    """A file's columns and types from its footer (Parquet) or first block (CSV), hive columns appended,
    and its row count when the footer gives it (None for CSV)."""
    rows = None
    if _is_parquet(snapshot, entry):
        with open_parquet(snapshot.files.filesystem, snapshot.path(entry)) as parquet:
            schema, rows = parquet.schema_arrow, parquet.metadata.num_rows
    else:
        with _csv_reader(snapshot, entry, None, text) as reader:
            schema = reader.schema
    for key in _hive_values(snapshot, entry):
        if key not in schema.names:
            schema = schema.append(pa.field(key, pa.string()))
    return schema, rows


def _unify(snapshot: Snapshot, schemas: list[pa.Schema]) -> pa.Schema:
    """The schema a permissive concatenation gives; DataError naming the first file and column that clash."""
    try:
        return pa.unify_schemas(schemas, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        raise DataError(f"files of source '{snapshot.source['path']}' have incompatible schemas: "
                        f"{_clash(snapshot, schemas)}{error}") from None


def _clash(snapshot: Snapshot, schemas: list[pa.Schema]) -> str:
    seen: dict[str, pa.Field] = {}
    for entry, schema in zip(snapshot.entries, schemas):
        twice = sorted({name for name in schema.names if schema.names.count(name) > 1})
        if twice:
            return (f"file '{snapshot.path(entry)}' has more than one column named "
                    f"{', '.join(repr(n) for n in twice)}: give each column its own name; ")
        for field in schema:
            earlier = seen.setdefault(field.name, field)
            try:
                seen[field.name] = pa.unify_schemas([pa.schema([earlier]), pa.schema([field])],
                                                    promote_options="permissive").field(0)
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                return (f"file '{snapshot.path(entry)}' column '{field.name}' holds {field.type} in every row "
                        f"group where earlier files hold {earlier.type}; ")
    return ""


class _TableWriter:
    """The cast table written once, batch by batch, in row groups of about ``size`` rows."""

    def __init__(self, path: Path, schema: pa.Schema, size: int):
        self.sink = pa.OSFile(str(path), "wb")
        self.writer, self.schema, self.size = pq.ParquetWriter(self.sink, schema), schema, size
        self.pending: list[pa.Table] = []

    def write(self, arrays: dict[str, pa.Array]) -> None:
        self.pending.append(pa.Table.from_arrays([arrays[n] for n in self.schema.names], schema=self.schema))
        if sum(t.num_rows for t in self.pending) >= self.size:
            self._flush()

    def _flush(self) -> None:
        if self.pending:
            self.writer.write_table(pa.concat_tables(self.pending), row_group_size=self.size)
            self.pending = []

    def close(self) -> None:
        try:
            self._flush()
            self.writer.close()
        finally:
            self.sink.close()

    def abandon(self) -> None:
        """Close the file without its pending rows (the step failed: nothing of it is published); the writer is
        closed too, or its finaliser would write a footer into the closed file."""
        try:
            self.writer.close()
        except (OSError, pa.ArrowException):  # what failed the step (a full disk) may fail the footer too
            pass
        finally:
            self.sink.close()


def validate_source(snapshot: Snapshot, name: str, dataset: dict, now: dt.datetime,
                    table: Path | None = None, spool: Path | None = None) -> ValidatedSource:
    """Read every file of ``snapshot`` once, batch by batch, and validate it against ``dataset``.

    With ``table``, the validated rows (declared columns cast, then the extra ones) are written
    there as Parquet. With ``spool``, a remote file is copied there once (and digested on the way) and
    the copy read, not the object read twice. A hash split, or a random split of rows counted before they are read (every file
    Parquet), is assigned and its train rows summarised on the way (``ValidatedSource.summary``, see
    split_summary). DataError naming the file (and the row group or
    CSV block, and the column) for a file that cannot be read, does not fit the other files' schema or
    changes meanwhile.
    """
    columns = dataset["columns"]
    text = csv_text_columns({name: spec.get("type") for name, spec in columns.items()})
    footers = [_file_schema(snapshot, entry, text) for entry in snapshot.entries]
    schemas = tuple(schema for schema, _ in footers)
    files = _Files(snapshot, schemas, _unify(snapshot, list(schemas)), text)
    counted = None if any(rows is None for _, rows in footers) else sum(rows for _, rows in footers)
    split = dataset.get("split") or {}
    summary = SplitSummary(split, columns, counted) if summarised(split, counted) else None
    present = files.unified.names
    declared = [c for c in columns if c in present]
    validated = declared + [n for n in present if n not in columns]
    rules = {c: checks.ColumnRules(name, c, columns[c]) for c in declared}
    runners = checks.check_runners(dataset.get("checks") or [], validated, now)
    used = {c for check in dataset.get("checks") or [] for c in checks.check_columns(check)}
    used |= {c for c in (summary.key_columns if summary else []) if c in present}
    read = validated if table else [n for n in validated if n in columns or n in used]
    groups = [read] if table else _column_groups(read, used)
    row_bytes = 8 * max(max(len(g) for g in groups), 1)
    size = ahead_rows(batch_rows(row_bytes), row_bytes)  # one batch is decoded ahead while this one is checked
    writer = _TableWriter(table, _cast_schema(files.unified, validated, columns), size) if table else None
    entries, parts = [], []
    try:
        for index in range(len(snapshot.entries)):
            entry, part = _feed_file(files, index, groups, size, rules, runners, writer, summary, spool)
            entries.append(entry)
            parts.append(part)
    except BaseException:
        if writer is not None:
            writer.abandon()
        raise
    if writer is not None:
        writer.close()
    violations = _violations(files, name, columns, rules, parts, size)
    report = checks.validation_report(name, violations, [r.result() for r in runners], rows=sum(p.rows for p in parts))
    return ValidatedSource(report, tuple(entries), tuple(parts), tuple(validated), summary)


def _column_groups(read: list[str], used: set[str]) -> list[list[str]]:
    """The columns a Parquet row group is decoded in turn by: the checks' columns first, together
    (a check sees them in one batch), then COLUMN_GROUP at a time."""
    first = [c for c in read if c in used]
    rest = [c for c in read if c not in used]
    head = max(COLUMN_GROUP - len(first), 0)
    return [first + rest[:head]] + [rest[i:i + COLUMN_GROUP] for i in range(head, len(rest), COLUMN_GROUP)]


def _feed_file(files: _Files, index: int, groups: list[list[str]], size: int, rules: dict, runners: list,
               writer: _TableWriter | None, summary: SplitSummary | None,
               spool: Path | None = None) -> tuple[SourceFile, FilePart]:
    """Read file ``index`` once, batch by batch, into the column rules, the check runners (the first
    group's batches), the writer (given one group) and the split summary; its entry with the digest and its part.
    DataError naming the file, the batch and the columns when it cannot be read or changed meanwhile."""
    entry, own = files.snapshot.entries[index], files.schemas[index].names
    rows, where, columns, read_all = 0, "none", [], False
    try:
        remote = spool is not None and not files.snapshot.local
        reading = spooled(files.snapshot, entry, spool) if remote else digesting(files.snapshot, entry)
        with reading as read, column_pool() as mapped:
            for where, part, count, arrays in read_ahead(files.batches(index, groups, size, read.opener)):
                columns = groups[part]
                arrays = _checked_batch(mapped, arrays, count, own, rules, summary, f"file {index} {where}", part)
                if part == 0:
                    batch = pa.Table.from_arrays(list(arrays.values()), names=list(arrays)) if arrays else _rows(count)
                    for runner in runners:
                        runner.update(batch)
                    if writer is not None:
                        writer.write(arrays)
                    rows += count
            read_all = True
    except DataError as error:
        if not read_all:
            raise
        raise DataError(f"{error}; it changed while it was read (the last batch read: {where}, columns "
                        f"{', '.join(columns)})") from None
    return read.entry, FilePart(files.snapshot.path(entry), rows, frozenset(own))


def _checked_batch(mapped: ColumnMap, arrays: dict[str, pa.Array], count: int, own: list[str], rules: dict,
                   summary: SplitSummary | None, where: str, part: int) -> dict[str, pa.Array]:
    """A batch's columns cast and counted by their rules, and added to the split summary: the split's key
    first (it assigns the rows), then every other column on the pool (each column its own rules and summary)."""
    absent = None if set(arrays) <= set(own) else np.ones(count, bool)  # rows of a column this file lacks

    def checked(column: str) -> pa.Array:
        array = arrays[column]
        return array if column not in rules else rules[column].update(array, None if column in own else absent)

    keys = [c for c in summary.key_columns if c in arrays] if summary is not None else []
    cast = {c: checked(c) for c in keys}
    train = summary.start(where, part, count, cast) if summary is not None else None

    def column(name: str) -> pa.Array:
        array = cast[name] if name in cast else checked(name)
        if train is not None:
            train.add(name, array)
        return array

    return dict(zip(arrays, mapped(column, list(arrays))))


def _rows(count: int) -> pa.Table:
    """A table of ``count`` rows and no columns (what a check that reads none is given)."""
    return pa.table({"": pa.nulls(count)}).select([])


def _cast_schema(unified: pa.Schema, names: list[str], columns: dict) -> pa.Schema:
    return pa.schema([(n, ARROW_TYPES[columns[n]["type"]] if n in columns else unified.field(n).type) for n in names])


def _violations(files: _Files, dataset: str, columns: dict, rules: dict, parts: list[FilePart],
                size: int) -> list:
    """Each declared column's violations in declaration order (missing ones named), then the extra columns."""
    found, present, rows = [], files.unified.names, sum(p.rows for p in parts)
    for name, spec in columns.items():
        if name not in present:
            found.append(checks.missing_everywhere(dataset, name, spec, present, rows, [p.path for p in parts]))
            continue
        lacking = [p for p in parts if name not in p.columns]
        if lacking:
            found.append(checks.missing_from_some(dataset, name, spec, sum(p.rows for p in lacking),
                                                  [p.path for p in lacking], len(parts)))
        found.extend(rules[name].violations(lambda name=name: _reread(files, name, columns[name], parts, size)))
    found.extend(checks.extra_column(dataset, n) for n in present if n not in columns)
    return found


def _reread(files: _Files, name: str, spec: dict, parts: list[FilePart], size: int) -> Iterator[pa.Array]:
    """One declared column of every row again, cast, in row order (a unique column's second look).

    Each file's size and mtime are checked against the snapshot before and after its re-read:
    DataError naming the file when it changed since the first read.
    """
    since = f"it was validated (column '{name}' was read again to find repeated values)"
    for index, part in enumerate(parts):
        if name not in part.columns:
            yield pa.nulls(part.rows, ARROW_TYPES[spec["type"]])
            continue
        entry = files.snapshot.entries[index]
        unchanged = (files.snapshot.files.filesystem, part.path, entry.size, entry.mtime_ns, since)
        check_unchanged(*unchanged)
        for _, _, _, arrays in files.batches(index, [[name]], size):
            yield cast_column(arrays[name], spec["type"])[0]
        check_unchanged(*unchanged)
