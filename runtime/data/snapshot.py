"""Snapshots of a dataset source: the files fixed once, then read exactly as they were fixed.

A step never lists its source twice. ``take_snapshot`` lists the files and records each one's
size, modification time and content digest; the cache key and the lineage use the snapshot's
``digest``. ``read_snapshot`` reads those files and nothing else, and fails naming the file when
one no longer holds the bytes the snapshot recorded (modified, truncated, replaced or deleted).
A file added after the snapshot is not read: the next snapshot sees it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs

from loopc.runtime.data.errors import DataError
from loopc.runtime.data.formats import parse_file
from loopc.runtime.data.sources import SourceFiles, resolve_files

DIGEST = "sha256"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class SourceFile:
    """One file of a snapshot: its name relative to the source's base, size, mtime and content digest."""

    name: str
    size: int
    mtime_ns: int
    digest: str

    def to_dict(self) -> dict:
        return {"name": self.name, "size": self.size, "mtime_ns": self.mtime_ns, "digest": self.digest}


@dataclass(frozen=True)
class Snapshot:
    """The files of one source, fixed at one moment; ``digest`` is the dataset version."""

    source: dict
    files: SourceFiles
    entries: tuple[SourceFile, ...]

    @property
    def digest(self) -> str:
        """sha256 over each file's relative name and content digest, in name order."""
        total = hashlib.sha256()
        for entry in sorted(self.entries, key=lambda e: e.name):
            encoded = entry.name.encode("utf-8")
            total.update(len(encoded).to_bytes(8, "big") + encoded)
            total.update(bytes.fromhex(entry.digest))
        return total.hexdigest()

    def path(self, entry: SourceFile) -> str:
        return self.files.path(entry.name)

    def to_dict(self) -> dict:
        """What the snapshot fixed, for lineage: source path, base, digest, and every file."""
        return {"source": self.source["path"], "base": self.files.base, "digest_algorithm": DIGEST,
                "digest": self.digest, "files": [e.to_dict() for e in self.entries]}


@dataclass(frozen=True)
class FilePart:
    """The rows one file contributed to a read: its path, row count and column names."""

    path: str
    rows: int
    columns: frozenset[str]


@dataclass(frozen=True)
class SourceTable:
    """The rows of a snapshot (files in name order) and which file gave which rows."""

    table: pa.Table
    parts: tuple[FilePart, ...]

    def rows_lacking(self, column: str) -> tuple[np.ndarray, list[str]]:
        """(mask of the rows from files without ``column``, those files' paths)."""
        mask, start, paths = np.zeros(self.table.num_rows, bool), 0, []
        for part in self.parts:
            if column not in part.columns:
                mask[start:start + part.rows] = True
                paths.append(part.path)
            start += part.rows
        return mask, paths


def _stat(filesystem: pafs.FileSystem, path: str) -> pafs.FileInfo:
    try:
        info = filesystem.get_file_info(path)
    except (OSError, pa.ArrowInvalid) as error:
        raise DataError(f"cannot read '{path}': {error}") from None
    if info.type != pafs.FileType.File:
        raise DataError(f"file '{path}' disappeared while the source was listed; run again")
    return info


def _hash_file(filesystem: pafs.FileSystem, path: str) -> tuple[str, int]:
    """(hex sha256, byte count) of a file, streamed."""
    digest, size = hashlib.sha256(), 0
    try:
        with filesystem.open_input_stream(path) as stream:
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
    except (OSError, pa.ArrowInvalid) as error:
        raise DataError(f"cannot read '{path}': {error}") from None
    return digest.hexdigest(), size


def _snapshot_file(files: SourceFiles, name: str) -> SourceFile:
    """Size, mtime and digest of one file; DataError if it changes while it is hashed."""
    path = files.path(name)
    before = _stat(files.filesystem, path)
    digest, size = _hash_file(files.filesystem, path)
    after = _stat(files.filesystem, path)
    if (before.size, before.mtime_ns) != (after.size, after.mtime_ns) or size != after.size:
        raise DataError(f"file '{path}' changed while its snapshot was taken; run again once it is complete")
    return SourceFile(name, size, after.mtime_ns or 0, digest)


def take_snapshot(source: dict, root: Path, exclude: Iterable[Path] = ()) -> Snapshot:
    """List ``source`` (a Source dict) once and fix every file's size, mtime and digest.

    ``exclude`` names folders (the state directory) whose files are never part of a source.
    """
    files = resolve_files(source, root, exclude)
    return Snapshot(dict(source), files, tuple(_snapshot_file(files, name) for name in files.names))


def _read_bytes(filesystem: pafs.FileSystem, path: str) -> pa.Buffer:
    """Every byte of one file (the one place a snapshot's files are opened for reading)."""
    with filesystem.open_input_file(path) as handle:
        return handle.read_buffer()


def _read_entry(snapshot: Snapshot, entry: SourceFile) -> pa.Buffer:
    """The bytes of ``entry``, checked against the snapshot; DataError naming the file otherwise."""
    path = snapshot.path(entry)
    try:
        data = _read_bytes(snapshot.files.filesystem, path)
    except FileNotFoundError:
        raise DataError(f"file '{path}' was deleted after the source's snapshot was taken; run again") from None
    except (OSError, pa.ArrowInvalid) as error:
        raise DataError(f"cannot read '{path}': {error}") from None
    if data.size != entry.size or hashlib.sha256(memoryview(data)).hexdigest() != entry.digest:
        raise DataError(f"file '{path}' changed after the source's snapshot was taken ({entry.size} bytes then, "
                        f"{data.size} now); nothing was read from it: run again once the source is stable")
    return data


def read_snapshot(snapshot: Snapshot) -> SourceTable:
    """The rows of exactly the snapshot's files, in name order, each checked against its digest."""
    tables, parts = [], []
    for entry in snapshot.entries:
        path = snapshot.path(entry)
        table = parse_file(_read_entry(snapshot, entry), entry.name, path, snapshot.source)
        tables.append(table)
        parts.append(FilePart(path, table.num_rows, frozenset(table.column_names)))
    try:
        table = pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        raise DataError(f"files of source '{snapshot.source['path']}' have incompatible schemas: {error}") from None
    return SourceTable(table, tuple(parts))


def read_source(source: dict, root: Path, exclude: Iterable[Path] = ()) -> pa.Table:
    """Snapshot ``source`` and read it: every file in sorted order, as one table."""
    return read_snapshot(take_snapshot(source, root, exclude)).table


def fingerprint_source(source: dict, root: Path) -> str:
    """The content fingerprint (dataset version) of a source: changes iff a name or a byte changes."""
    return take_snapshot(source, root).digest
