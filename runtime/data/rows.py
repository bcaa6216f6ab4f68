"""The validated rows of a dataset, read back by record batches in bounded memory.

The validate step writes a description (``rows.json``), not a copy, when the source is Parquet:
downstream steps read the snapshot's own files row group by row group, project the columns they
need and apply the declared casts per batch (the same ``cast_column`` validate used on the whole
table, so the values are identical). A CSV or hive-partitioned source is written once as the cast
table and read back the same way. Each file's size and mtime are checked before and after it is
read; a file that no longer matches, or a row group that cannot be decoded, is a DataError naming
the file, the row group and the column.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from loopc.runtime import units
from loopc.runtime.data.casting import ARROW_TYPES, cast_column
from loopc.runtime.data.errors import DataError
from loopc.runtime.data.readahead import read_ahead
from loopc.runtime.data.snapshot import source_filesystem

ROWS_FILE, TABLE_FILE = "rows.json", "table.parquet"
BUDGET_ENV = "LOOPC_MEMORY_BUDGET"
DEFAULT_BUDGET = "1G"
MIN_BATCH, MAX_BATCH = 1024, 1 << 20
PAGE_BUFFER = 1 << 20  # bytes read ahead per column: a row group is never held whole
AHEAD_COPIES = 2  # the batch read ahead (read_ahead holds one), as decoded and as cast


def memory_budget() -> int:
    """Bytes a data step may hold in record batches: ``$LOOPC_MEMORY_BUDGET`` (``512M``, ``2G``), else 1G."""
    text = os.environ.get(BUDGET_ENV) or DEFAULT_BUDGET
    try:
        megabytes = units.parse_memory_mb(text)
    except ValueError as exc:
        raise DataError(f"${BUDGET_ENV}={text!r}: {exc}") from None
    return int(megabytes) << 20


def batch_rows(row_bytes: int) -> int:
    """Rows per batch so that a batch and its working copies (about 8x) fit the memory budget."""
    return int(np.clip(memory_budget() // (8 * max(row_bytes, 1)), MIN_BATCH, MAX_BATCH))


def ahead_rows(rows: int, row_bytes: int) -> int:
    """``rows`` (a ``batch_rows`` size for the caller's work on a batch) made smaller so that the batch read ahead
    meanwhile (``row_bytes`` a row, decoded and cast on the reader's thread: AHEAD_COPIES copies) fits the budget too."""
    budget = memory_budget()
    return max(min(rows, MIN_BATCH), int(budget // (budget / rows + AHEAD_COPIES * max(row_bytes, 1))))


@dataclass(frozen=True)
class RowFile:
    """One file of the rows: its path, recorded size and mtime, and row count."""

    path: str
    size: int
    mtime_ns: int
    rows: int


@dataclass(frozen=True)
class ValidatedRows:
    """Where the validated rows are, how to cast them (``cast`` is False for the written table) and the
    validated table's column names (declared ones first, then the extra ones)."""

    filesystem: pafs.FileSystem
    files: tuple[RowFile, ...]
    columns: dict
    cast: bool
    names: tuple[str, ...] = ()

    @property
    def num_rows(self) -> int:
        return sum(f.rows for f in self.files)

    def batches(self, columns: list[str], rows: int | None = None) -> Iterator[tuple[int, pa.Table]]:
        """(offset of the first row, table of ``columns``) per record batch, in row order; the next batch is
        read and cast on a thread while the caller works on this one. ``rows``: the size ``batch_rows`` gave
        the caller's work (default: the batch's own), made smaller for the batch read ahead (``ahead_rows``)."""
        row_bytes = 8 * max(len(columns), 1)
        offset, size = 0, ahead_rows(rows or batch_rows(row_bytes), row_bytes)
        for batch in read_ahead(batch for file in self.files for batch in self._file_batches(file, columns, size)):
            yield offset, batch
            offset += batch.num_rows

    def read(self, columns: list[str], keep: np.ndarray | None = None) -> pa.Table:
        """``columns`` of every row (or of the rows where ``keep`` holds), concatenated."""
        parts = [batch if keep is None else batch.filter(pa.array(keep[offset:offset + batch.num_rows]))
                 for offset, batch in self.batches(columns)]
        if not parts:
            return pa.table({c: pa.array([], ARROW_TYPES[self.columns[c]["type"]] if c in self.columns else pa.null())
                             for c in columns})
        return pa.concat_tables(parts, promote_options="permissive")

    def _file_batches(self, file: RowFile, columns: list[str], size: int) -> Iterator[pa.Table]:
        check_unchanged(self.filesystem, file.path, file.size, file.mtime_ns, "it was validated")
        with open_parquet(self.filesystem, file.path) as parquet:
            names = set(parquet.schema_arrow.names)  # schema_arrow converts the schema on each call
            present = [c for c in columns if c in names]
            for group in range(parquet.num_row_groups):
                for batch in row_group_batches(parquet, file.path, group, present, size):
                    yield self._shape(pa.Table.from_batches([batch]), columns, file, group)
        check_unchanged(self.filesystem, file.path, file.size, file.mtime_ns, "it was validated")

    def _shape(self, batch: pa.Table, columns: list[str], file: RowFile, group: int) -> pa.Table:
        """The batch's ``columns`` in order, absent ones null, declared ones cast to their types."""
        arrays, present = [], set(batch.column_names)
        for name in columns:
            spec = self.columns.get(name)
            if name not in present:
                arrays.append(pa.nulls(batch.num_rows, ARROW_TYPES[spec["type"]] if spec else pa.null()))
            elif spec is None or not self.cast:
                arrays.append(batch.column(name))
            else:
                cast, bad = cast_column(batch.column(name), spec["type"])
                if bad.any():
                    raise DataError(f"file '{file.path}' row group {group} column '{name}': values that cannot "
                                    f"be read as {spec['type']} appeared after validation; run again")
                arrays.append(cast)
        return pa.Table.from_arrays(arrays, names=list(columns))


@contextmanager
def open_parquet(filesystem: pafs.FileSystem, path: str) -> Iterator[pq.ParquetFile]:
    """A Parquet file open for reading row groups; DataError naming it when it cannot be opened."""
    try:
        handle = filesystem.open_input_file(path)
        parquet = pq.ParquetFile(handle, pre_buffer=False, buffer_size=PAGE_BUFFER)
    except (OSError, pa.ArrowException) as error:
        raise DataError(f"cannot read parquet file '{path}': {error}") from None
    with handle:
        yield parquet


def row_group_batches(parquet: pq.ParquetFile, path: str, group: int, columns: list[str],
                      size: int) -> Iterator[pa.RecordBatch]:
    """``columns`` of one row group in batches of ``size`` rows (one decoded at a time, columns in
    parallel); DataError naming the file, the row group and the columns when it cannot be decoded."""
    batches = parquet.iter_batches(size, row_groups=[group], columns=columns, use_threads=True)
    while True:
        try:
            batch = next(batches, None)
        except (OSError, pa.ArrowException) as error:
            raise DataError(f"file '{path}' row group {group} (columns {', '.join(columns)}) "
                            f"cannot be read: {error}") from None
        if batch is None:
            return
        yield batch


def check_unchanged(filesystem: pafs.FileSystem, path: str, size: int, mtime_ns: int, since: str) -> None:
    """DataError naming ``path`` unless it is still a file of ``size`` bytes modified at ``mtime_ns``."""
    try:
        info = filesystem.get_file_info(path)
    except (OSError, pa.ArrowInvalid) as error:
        raise DataError(f"cannot read '{path}': {error}") from None
    if info.type != pafs.FileType.File or (info.size, info.mtime_ns or 0) != (size, mtime_ns):
        raise DataError(f"file '{path}' changed after {since} (size or mtime differ); "
                        "run again so validation sees it")


def describe_source(snapshot: dict, file_rows: list[int], columns: dict) -> dict:
    """The rows.json of rows read from the snapshot's own files (``Snapshot.to_dict`` with content digests)."""
    base = snapshot["base"]
    files = [{"path": f"{base.rstrip('/')}/{f['name']}" if base else f["name"], "size": f["size"],
              "mtime_ns": f["mtime_ns"], "rows": rows} for f, rows in zip(snapshot["files"], file_rows)]
    return {"format": 1, "layout": "source", "snapshot": snapshot, "files": files, "columns": columns}


def describe_table(path: Path, rows: int, columns: dict) -> dict:
    """The rows.json of rows validate wrote as one cast table (``path`` relative to the artifact)."""
    return {"format": 1, "layout": "table", "table": path.name, "rows": rows, "columns": columns}


def open_rows(artifact: Path) -> ValidatedRows:
    """The rows a validate artifact describes."""
    record = json.loads((Path(artifact) / ROWS_FILE).read_text(encoding="utf-8"))
    if record["layout"] == "table":
        path = Path(artifact) / record["table"]
        stat = path.stat()
        file = RowFile(path.as_posix(), stat.st_size, stat.st_mtime_ns, record["rows"])
        return ValidatedRows(pafs.LocalFileSystem(), (file,), record["columns"], False, tuple(record["names"]))
    files = tuple(RowFile(f["path"], f["size"], f["mtime_ns"], f["rows"]) for f in record["files"])
    return ValidatedRows(source_filesystem(record["snapshot"]), files, record["columns"], True,
                         tuple(record["names"]))
