"""Snapshots of a dataset source: the files fixed once, then read exactly as they were fixed.

A step never lists its source twice. ``take_snapshot`` lists the files and records each one's
size and modification time, and with ``content=True`` its content digest (BLAKE3, ``DIGEST``);
the cache key and the lineage use the snapshot's ``digest``. A metadata snapshot
(``content=False``, what the runner takes for a validate step) costs one ``stat`` per file; its
content digests are computed by the read that parses the bytes (``SourceTable.entries``), and
``verify_files`` re-digests them before a model is registered, so a change that keeps size and
mtime is still caught. A record names its algorithm (``digest_algorithm``); records written with
sha256 (before BLAKE3) still verify. ``read_snapshot`` reads those files and nothing else, and
fails naming the file when one no longer holds what the snapshot recorded (modified, truncated,
replaced or deleted). A file added after the snapshot is not read: the next snapshot sees it.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import blake3
import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs

from loopc.runtime.data.errors import DataError
from loopc.runtime.data.formats import parse_file
from loopc.runtime.data.sources import SourceFiles, resolve_files

DIGEST = "blake3"  # the files' content digest in new snapshots (one thread: about 2.5x sha256's speed)
_HASHERS = {"blake3": blake3.blake3, "sha256": hashlib.sha256}  # sha256: snapshots recorded before BLAKE3
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
        """sha256 over each file's relative name and content digest (``DIGEST``), in name order.

        A metadata snapshot (no content digests) uses each file's size and mtime_ns instead.
        """
        total = hashlib.sha256()
        for entry in sorted(self.entries, key=lambda e: e.name):
            encoded = entry.name.encode("utf-8")
            total.update(len(encoded).to_bytes(8, "big") + encoded)
            if entry.digest:
                total.update(bytes.fromhex(entry.digest))
            else:
                total.update(b"meta" + entry.size.to_bytes(8, "big") + entry.mtime_ns.to_bytes(16, "big", signed=True))
        return total.hexdigest()

    @property
    def content(self) -> bool:
        """True when every file's content digest was recorded at listing time."""
        return all(entry.digest for entry in self.entries)

    @property
    def local(self) -> bool:
        """True when the files are on this machine's filesystem (read where they are, never copied first)."""
        return isinstance(self.files.filesystem, pafs.LocalFileSystem)

    def path(self, entry: SourceFile) -> str:
        return self.files.path(entry.name)

    def to_dict(self) -> dict:
        """What the snapshot fixed, for lineage: source path, base, the files' digest algorithm, digest, and every file."""
        return {"source": self.source["path"], "base": self.files.base, "digest_algorithm": DIGEST,
                "digest": self.digest, "files": [e.to_dict() for e in self.entries]}

    def with_entries(self, entries: tuple[SourceFile, ...]) -> Snapshot:
        """The same snapshot with the content digests a read computed (``SourceTable.entries``)."""
        return Snapshot(self.source, self.files, entries)


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
    entries: tuple[SourceFile, ...] = ()

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


def content_hasher(algorithm: str = DIGEST):
    """A fresh hash object of ``algorithm`` (``DIGEST``, or sha256 for older records); DataError if unknown."""
    try:
        return _HASHERS[algorithm]()
    except KeyError:
        raise DataError(f"unknown content digest algorithm '{algorithm}' (known: {', '.join(sorted(_HASHERS))}); "
                        "validate the dataset again") from None


def _hash_file(filesystem: pafs.FileSystem, path: str, algorithm: str = DIGEST,
               copy: Path | None = None) -> tuple[str, int]:
    """(hex digest of ``algorithm``, byte count) of a file, streamed; with ``copy``, its bytes are written there
    on the way (DataError naming the copy when it cannot be written: a full disk)."""
    digest, size = content_hasher(algorithm), 0
    with open(copy, "wb") if copy is not None else contextlib.nullcontext() as out:
        try:
            with filesystem.open_input_stream(path) as stream:
                while chunk := stream.read(_CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
                    if out is not None:
                        _write_copy(out, chunk, path)
        except (OSError, pa.ArrowInvalid) as error:
            raise DataError(f"cannot read '{path}': {error}") from None
    return digest.hexdigest(), size


def _write_copy(out, chunk: bytes, path: str) -> None:
    try:
        out.write(chunk)
    except OSError as error:
        raise DataError(f"cannot copy '{path}' to '{out.name}': {error}; free space there") from None


def _snapshot_file(files: SourceFiles, name: str, content: bool = True) -> SourceFile:
    """Size, mtime and (with ``content``) digest of one file; DataError if it changes while it is hashed."""
    path = files.path(name)
    before = _stat(files.filesystem, path)
    if not content:
        return SourceFile(name, before.size, before.mtime_ns or 0, "")
    digest, size = _hash_file(files.filesystem, path)
    after = _stat(files.filesystem, path)
    if (before.size, before.mtime_ns) != (after.size, after.mtime_ns) or size != after.size:
        raise DataError(f"file '{path}' changed while its snapshot was taken; run again once it is complete")
    return SourceFile(name, size, after.mtime_ns or 0, digest)


def take_snapshot(source: dict, root: Path, exclude: Iterable[Path] = (), content: bool = True) -> Snapshot:
    """List ``source`` (a Source dict) once and fix every file's size, mtime and (``content``) digest.

    ``exclude`` names folders (the state directory) whose files are never part of a source.
    """
    files = resolve_files(source, root, exclude)
    return Snapshot(dict(source), files, tuple(_snapshot_file(files, name, content) for name in files.names))


def _read_bytes(filesystem: pafs.FileSystem, path: str) -> pa.Buffer:
    """Every byte of one file (the one place a snapshot's files are opened for reading)."""
    with filesystem.open_input_file(path) as handle:
        return handle.read_buffer()


def _changed(path: str, entry: SourceFile, size: int) -> DataError:
    return DataError(f"file '{path}' changed after the source's snapshot was taken ({entry.size} bytes then, "
                     f"{size} now); nothing was read from it: run again once the source is stable")


def _read_entry(snapshot: Snapshot, entry: SourceFile) -> tuple[pa.Buffer, SourceFile]:
    """The bytes of ``entry`` and its entry with the content digest, checked against the snapshot.

    A content snapshot compares the digest; a metadata snapshot compares size and mtime before and
    after the read. DataError naming the file otherwise.
    """
    path = snapshot.path(entry)
    try:
        data = _read_bytes(snapshot.files.filesystem, path)
        after = None if entry.digest else _stat(snapshot.files.filesystem, path)
    except FileNotFoundError:
        raise DataError(f"file '{path}' was deleted after the source's snapshot was taken; run again") from None
    except (OSError, pa.ArrowInvalid) as error:
        raise DataError(f"cannot read '{path}': {error}") from None
    hasher = content_hasher()
    hasher.update(memoryview(data))
    digest = hasher.hexdigest()
    if data.size != entry.size or (entry.digest and digest != entry.digest):
        raise _changed(path, entry, data.size)
    if after is not None and (after.size, after.mtime_ns or 0) != (entry.size, entry.mtime_ns):
        raise _changed(path, entry, after.size)
    return data, SourceFile(entry.name, entry.size, entry.mtime_ns, digest)


def read_snapshot(snapshot: Snapshot) -> SourceTable:
    """The rows of exactly the snapshot's files, in name order, each checked against the snapshot."""
    tables, parts, entries = [], [], []
    for entry in snapshot.entries:
        path = snapshot.path(entry)
        data, read = _read_entry(snapshot, entry)
        table = parse_file(data, entry.name, path, snapshot.source)
        del data
        tables.append(table)
        entries.append(read)
        parts.append(FilePart(path, table.num_rows, frozenset(table.column_names)))
    try:
        table = pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        raise DataError(f"files of source '{snapshot.source['path']}' have incompatible schemas: {error}") from None
    return SourceTable(table, tuple(parts), tuple(entries))


@dataclass
class FileRead:
    """What ``digesting`` and ``spooled`` yield: ``opener`` to open the file through (None: where it is; a
    ``LocalCopy`` of a remote file), and ``entry``, the snapshot's entry with its content digest once known."""

    opener: LocalCopy | None = None
    entry: SourceFile | None = None


@dataclass(frozen=True)
class LocalCopy:
    """Stands in for a filesystem that holds one file: whatever path is asked for, the local copy is opened."""

    path: Path

    def open_input_file(self, _path: str) -> pa.NativeFile:
        return pafs.LocalFileSystem().open_input_file(str(self.path))

    open_input_stream = open_input_file


@contextmanager
def spooled(snapshot: Snapshot, entry: SourceFile, folder: Path) -> Iterator[FileRead]:
    """Copy a remote file once into ``folder``, digesting it on the way; the body reads the copy (``opener``),
    so the bytes parsed are the bytes digested and the object is downloaded once. The copy goes afterwards.

    Size and mtime are checked against the snapshot before and after the copy; DataError naming the file as
    ``digesting`` does.
    """
    path, filesystem = snapshot.path(entry), snapshot.files.filesystem
    _expect(path, entry, _stat_entry(filesystem, path))
    copy = Path(folder) / f"spool-{hashlib.sha256(path.encode()).hexdigest()[:16]}"
    try:
        digest, size = _hash_file(filesystem, path, copy=copy)
        yield FileRead(LocalCopy(copy), _digested(filesystem, path, entry, digest, size))
    finally:
        copy.unlink(missing_ok=True)


@contextmanager
def digesting(snapshot: Snapshot, entry: SourceFile) -> Iterator[FileRead]:
    """Hash ``entry``'s file on a thread while the body reads it where it is (the hash releases the GIL).

    Size and mtime are checked against the snapshot once before the read and once after it
    (and after the hash); the yielded ``FileRead.entry`` is then the entry with its content digest.
    DataError naming the file if it differs, was deleted, or its bytes differ from a content
    snapshot's digest.
    """
    path, filesystem = snapshot.path(entry), snapshot.files.filesystem
    _expect(path, entry, _stat_entry(filesystem, path))
    hashed: list = []
    thread = threading.Thread(target=_hash_into, args=(filesystem, path, hashed), daemon=True)
    thread.start()
    read = FileRead()
    try:
        yield read
    finally:
        thread.join()
    if isinstance(hashed[0], Exception):
        raise hashed[0]
    read.entry = _digested(filesystem, path, entry, *hashed[0])


def _digested(filesystem: pafs.FileSystem, path: str, entry: SourceFile, digest: str, size: int) -> SourceFile:
    """``entry`` with the ``digest`` of the ``size`` bytes just read, once the file's size and mtime are still the
    snapshot's and the bytes are its bytes (a content snapshot's digest); DataError naming the file otherwise."""
    _expect(path, entry, _stat_entry(filesystem, path))
    if size != entry.size or (entry.digest and digest != entry.digest):
        raise _changed(path, entry, size)
    return SourceFile(entry.name, entry.size, entry.mtime_ns, digest)


def _hash_into(filesystem: pafs.FileSystem, path: str, out: list) -> None:
    try:
        out.append(_hash_file(filesystem, path))
    except Exception as error:  # any: re-raised by the reader's thread, never an IndexError on an empty list
        out.append(error)


def _stat_entry(filesystem: pafs.FileSystem, path: str) -> pafs.FileInfo:
    try:
        return _stat(filesystem, path)
    except DataError:
        raise DataError(f"file '{path}' was deleted after the source's snapshot was taken; run again") from None


def _expect(path: str, entry: SourceFile, info: pafs.FileInfo) -> None:
    if (info.size, info.mtime_ns or 0) != (entry.size, entry.mtime_ns):
        raise _changed(path, entry, info.size)


def source_filesystem(record: dict) -> pafs.FileSystem:
    """The filesystem of a snapshot record (``Snapshot.to_dict``): the URI's, or the local one."""
    scheme, sep, _ = record["source"].partition("://")
    if not sep:
        return pafs.LocalFileSystem()
    try:
        return pafs.FileSystem.from_uri(f"{scheme}://{record['base']}")[0]
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as error:
        raise DataError(f"cannot open '{record['source']}': {error}") from None


def verify_files(record: dict) -> None:
    """Re-digest every file of a snapshot record; DataError naming the first whose bytes changed.

    What a metadata snapshot cannot see (a change that keeps size and mtime) is caught here. The
    record's ``digest_algorithm`` is used (sha256 when a record names none).
    """
    filesystem = source_filesystem(record)
    base, algorithm = record["base"], record.get("digest_algorithm", "sha256")
    content_hasher(algorithm)  # an unknown algorithm fails before any file is read
    for entry in record["files"]:
        path = f"{base.rstrip('/')}/{entry['name']}" if base else entry["name"]
        try:
            digest, size = _hash_file(filesystem, path, algorithm)
        except DataError:
            raise DataError(f"file '{path}' the model was trained on is gone or unreadable; run again") from None
        if (size, digest) != (entry["size"], entry["digest"]):
            raise DataError(f"file '{path}' no longer holds the bytes the model was trained on ({entry['size']} "
                            f"bytes, {algorithm} {entry['digest'][:12]}... then; {size} bytes, {digest[:12]}... now), "
                            "though its size and mtime may match; run again (touch the file so its mtime changes)")


def read_source(source: dict, root: Path, exclude: Iterable[Path] = ()) -> pa.Table:
    """Snapshot ``source`` and read it: every file in sorted order, as one table."""
    return read_snapshot(take_snapshot(source, root, exclude)).table


def fingerprint_source(source: dict, root: Path) -> str:
    """The content fingerprint (dataset version) of a source: changes iff a name or a byte changes."""
    return take_snapshot(source, root).digest
