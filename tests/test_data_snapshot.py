"""Source snapshots: the files are fixed once, read exactly as fixed, and a change meanwhile names the file.

The "meanwhile" is made deterministic by wrapping the one function that opens a snapshot's files
(``snapshot._read_bytes``) or hashes them (``snapshot._hash_file``): the wrapper changes the data
at that exact moment, then lets the real read go on.
"""

from __future__ import annotations

import hashlib
import os

import blake3
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from loopc.runtime.data import snapshot as snap
from loopc.runtime.data.errors import DataError
from loopc.runtime.data.snapshot import fingerprint_source, read_snapshot, take_snapshot, verify_files

SOURCE = {"path": "data/*.csv"}


def _csv(path, ids):
    path.parent.mkdir(parents=True, exist_ok=True)
    pacsv.write_csv(pa.table({"id": ids}), path)


@pytest.fixture
def root(tmp_path):
    _csv(tmp_path / "data" / "a.csv", [1, 2])
    _csv(tmp_path / "data" / "b.csv", [3])
    return tmp_path


def _before_first_read(monkeypatch, change):
    """Run ``change()`` once, after the snapshot, just before its first file is opened."""
    real, calls = snap._read_bytes, []

    def read(filesystem, path):
        if not calls:
            change()
        calls.append(path)
        return real(filesystem, path)

    monkeypatch.setattr(snap, "_read_bytes", read)
    return calls


def test_snapshot_records_each_file_and_its_digest_is_the_dataset_fingerprint(root):
    shot = take_snapshot(SOURCE, root)
    names = [e.name for e in shot.entries]
    assert names == ["a.csv", "b.csv"]
    a = (root / "data" / "a.csv").read_bytes()
    first = shot.entries[0]
    assert (first.size, first.digest) == (len(a), blake3.blake3(a).hexdigest())
    assert shot.to_dict()["digest_algorithm"] == "blake3"
    assert first.mtime_ns == os.stat(root / "data" / "a.csv").st_mtime_ns
    assert shot.digest == fingerprint_source(SOURCE, root)
    assert shot.to_dict()["files"][1]["name"] == "b.csv" and shot.to_dict()["digest"] == shot.digest
    assert read_snapshot(shot).table.column("id").to_pylist() == [1, 2, 3]


def test_a_file_added_after_the_snapshot_is_neither_read_nor_fingerprinted(root, monkeypatch):
    shot = take_snapshot(SOURCE, root)
    before = shot.digest
    calls = _before_first_read(monkeypatch, lambda: _csv(root / "data" / "c.csv", [99]))
    rows = read_snapshot(shot)
    assert (root / "data" / "c.csv").is_file() and len(calls) == 2
    assert rows.table.column("id").to_pylist() == [1, 2, 3]
    assert [p.path.rsplit("/", 1)[1] for p in rows.parts] == ["a.csv", "b.csv"]
    assert shot.digest == before
    assert take_snapshot(SOURCE, root).digest != before  # the next snapshot sees it


def _append(path):
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("7\n")


def _same_size_same_mtime(path):
    """Change one byte but keep size and mtime: only the content digest can tell."""
    stat = os.stat(path)
    path.write_text(path.read_text().replace("2", "8"))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def _replace(path):
    other = path.with_name("new.tmp")
    _csv(other, [5, 6])
    os.replace(other, path)


CHANGES = {
    "modified": _append,
    "modified, same size and mtime": _same_size_same_mtime,
    "truncated": lambda path: path.write_bytes(b""),
    "replaced": _replace,
    "deleted": os.unlink,
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_file_changed_after_the_snapshot_fails_the_read_naming_it(root, monkeypatch, change):
    shot = take_snapshot(SOURCE, root)
    target = root / "data" / "a.csv"
    _before_first_read(monkeypatch, lambda: CHANGES[change](target))
    with pytest.raises(DataError) as error:
        read_snapshot(shot)
    assert str(target) in str(error.value)
    assert ("was deleted" if change == "deleted" else "changed after the source's snapshot") in str(error.value)


def test_a_file_growing_while_it_is_hashed_fails_the_snapshot(root, monkeypatch):
    real = snap._hash_file

    def hash_then_grow(filesystem, path):
        result = real(filesystem, path)
        _append(root / "data" / "b.csv")
        return result

    monkeypatch.setattr(snap, "_hash_file", hash_then_grow)
    with pytest.raises(DataError, match=r"b\.csv' changed while its snapshot was taken"):
        take_snapshot(SOURCE, root)


def test_verify_files_catches_a_change_that_keeps_size_and_mtime_naming_file_and_algorithm(root):
    record = take_snapshot(SOURCE, root).to_dict()
    verify_files(record)  # unchanged: silent
    target = root / "data" / "a.csv"
    _same_size_same_mtime(target)
    with pytest.raises(DataError) as error:
        verify_files(record)
    assert f"file '{target}' no longer holds the bytes the model was trained on" in str(error.value)
    assert f"blake3 {record['files'][0]['digest'][:12]}... then" in str(error.value)


def _sha256_record(root) -> dict:
    """A snapshot.json as validate wrote it before BLAKE3: sha256 digests, named (or, older, not named)."""
    record = take_snapshot(SOURCE, root).to_dict()
    for entry in record["files"]:
        entry["digest"] = hashlib.sha256((root / "data" / entry["name"]).read_bytes()).hexdigest()
    return {**record, "digest_algorithm": "sha256"}


@pytest.mark.parametrize("named", [True, False], ids=["sha256 named", "no algorithm named"])
def test_an_older_sha256_snapshot_record_still_verifies_and_still_catches_a_change(root, named):
    record = _sha256_record(root)
    if not named:
        del record["digest_algorithm"]
    verify_files(record)
    _same_size_same_mtime(root / "data" / "a.csv")
    with pytest.raises(DataError, match=r"a\.csv' no longer holds the bytes .* sha256 "):
        verify_files(record)


def test_a_record_with_an_unknown_digest_algorithm_fails_before_reading_naming_it(root, monkeypatch):
    record, opened = {**take_snapshot(SOURCE, root).to_dict(), "digest_algorithm": "md5"}, []
    monkeypatch.setattr(snap, "_hash_file", lambda *args: opened.append(args))
    with pytest.raises(DataError, match="unknown content digest algorithm 'md5' .*blake3, sha256"):
        verify_files(record)
    assert opened == []


def test_the_state_directory_is_never_part_of_a_source(root):
    _csv(root / "state" / "artifacts" / "t.csv", [42])
    source = {"path": "**/*.csv"}
    assert read_snapshot(take_snapshot(source, root)).table.num_rows == 4
    shot = take_snapshot(source, root, exclude=[root / "state"])
    assert [e.name for e in shot.entries] == ["data/a.csv", "data/b.csv"]
    with pytest.raises(DataError, match="lies inside loopc's state directory"):
        take_snapshot({"path": "state/artifacts/*.csv"}, root, exclude=[root / "state"])


def test_a_non_utf8_file_name_is_named_when_it_matches_and_ignored_when_it_does_not(root):
    folder = os.fsencode(root / "data")
    with open(os.path.join(folder, b"notes-caf\xe9.txt"), "wb") as handle:
        handle.write(b"not data")
    assert read_snapshot(take_snapshot(SOURCE, root)).table.num_rows == 3
    with open(os.path.join(folder, b"caf\xe9.csv"), "wb") as handle:
        handle.write(b"id\n5\n")
    with pytest.raises(DataError, match=r"file name b'.*caf\\xe9\.csv' is not valid UTF-8; rename the file"):
        take_snapshot(SOURCE, root)


def _two_files(root, columns):
    from loopc.runtime.data.checks import enforce_schema

    pacsv.write_csv(pa.table({"id": [1, 2]}), root / "data" / "a.csv")
    pacsv.write_csv(pa.table({"id": [3, 4, 5], "score": [0.5, None, 1.5]}), root / "data" / "b.csv")
    files = read_snapshot(take_snapshot(SOURCE, root))
    return enforce_schema(files.table, columns, "d", files)[1]


def test_a_non_nullable_column_some_files_lack_is_missing_from_those_files_by_name(root):
    violations = _two_files(root, {"id": {"type": "int"}, "score": {"type": "float", "nullable": False}})
    missing = next(v for v in violations if v.rule == "missing_column")
    a = str(root / "data" / "a.csv")
    assert (missing.column, missing.severity, missing.count, missing.examples) == ("score", "error", 2, [a])
    assert f"column is missing from 1 of 2 file(s): {a}; their 2 row(s)" in missing.message
    nulls = next(v for v in violations if v.rule == "nullable")  # b.csv's own null, not a.csv's absent rows
    assert (nulls.count, nulls.examples) == (1, ["row 3"])


def test_a_nullable_column_some_files_lack_is_a_warning_naming_them(root):
    violations = _two_files(root, {"id": {"type": "int"}, "score": {"type": "float"}})
    assert [(v.rule, v.severity, v.count) for v in violations] == [("missing_column", "warning", 2)]


def test_a_column_every_file_lacks_names_every_file(root):
    violations = _two_files(root, {"id": {"type": "int"}, "gone": {"type": "int"}})
    [missing] = [v for v in violations if v.rule == "missing_column"]
    assert f"missing from every file ({root / 'data' / 'a.csv'}, {root / 'data' / 'b.csv'})" in missing.message
