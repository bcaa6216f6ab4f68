"""Reading sources (paths, globs, URIs, CSV, hive partitions) and their content fingerprints."""

from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from loopc.runtime.data.errors import DataError
from loopc.runtime.data.snapshot import fingerprint_source, read_source


def _write(path, table):
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        pacsv.write_csv(table, path)
    else:
        pq.write_table(table, path)


def _batches(root, count=3):
    for index in range(count):
        _write(root / "data" / "t" / f"batch-{index:03d}.parquet", pa.table({"id": [index * 10, index * 10 + 1]}))


def test_glob_reads_files_in_sorted_order(tmp_path):
    _batches(tmp_path)
    _write(tmp_path / "data" / "t" / "notes.csv", pa.table({"id": [99]}))
    table = read_source({"path": "data/t/*.parquet"}, tmp_path)
    assert table.column("id").to_pylist() == [0, 1, 10, 11, 20, 21]


def test_directory_reads_every_data_file_and_skips_hidden(tmp_path):
    _batches(tmp_path, 2)
    (tmp_path / "data" / "t" / "_SUCCESS").write_text("")
    _write(tmp_path / "data" / "t" / ".partial.parquet", pa.table({"id": [-1]}))
    assert read_source({"path": "data/t"}, tmp_path).column("id").to_pylist() == [0, 1, 10, 11]


def test_file_uri_and_recursive_glob(tmp_path):
    _batches(tmp_path, 2)
    uri = f"file://{tmp_path.as_posix()}/data/**/*.parquet"
    assert read_source({"path": uri}, tmp_path / "elsewhere").num_rows == 4


def test_csv_by_extension_and_options(tmp_path):
    (tmp_path / "a.csv").write_text("x;y\n1;p\n2;q\n")
    table = read_source({"path": "a.csv", "options": {"delimiter": ";"}}, tmp_path)
    assert table.column("y").to_pylist() == ["p", "q"]
    with pytest.raises(DataError, match="unknown csv option"):
        read_source({"path": "a.csv", "options": {"sep": ";"}}, tmp_path)


def test_hive_partition_columns(tmp_path):
    for region in ("north", "south"):
        _write(tmp_path / "d" / f"region={region}" / "part-0.parquet", pa.table({"v": [1.0]}))
    table = read_source({"path": "d", "partitioning": "hive"}, tmp_path)
    assert table.column("region").to_pylist() == ["north", "south"]


def test_nothing_matches_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match=r"matches no files .*does not exist"):
        read_source({"path": "data/none/*.parquet"}, tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="matches no files under"):
        read_source({"path": "empty/*.parquet"}, tmp_path)


def test_corrupt_file_names_the_file(tmp_path):
    (tmp_path / "bad.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match="bad.parquet"):
        read_source({"path": "*.parquet"}, tmp_path)


def test_fingerprint_changes_with_one_byte(tmp_path):
    (tmp_path / "a.csv").write_text("x\n1\n2\n")
    source = {"path": "*.csv"}
    before = fingerprint_source(source, tmp_path)
    (tmp_path / "a.csv").write_text("x\n1\n3\n")
    assert fingerprint_source(source, tmp_path) != before


def test_fingerprint_ignores_listing_order_and_mtime(tmp_path):
    _batches(tmp_path)
    source = {"path": "data/t/*.parquet"}
    before = fingerprint_source(source, tmp_path)
    assert fingerprint_source({"path": "data/t"}, tmp_path) == before
    first = tmp_path / "data" / "t" / "batch-000.parquet"
    os.utime(first, (1, 1))
    assert fingerprint_source(source, tmp_path) == before


def test_fingerprint_sees_renames_and_new_files(tmp_path):
    _batches(tmp_path, 2)
    source = {"path": "data/t/*.parquet"}
    before = fingerprint_source(source, tmp_path)
    folder = tmp_path / "data" / "t"
    (folder / "batch-001.parquet").rename(folder / "batch-009.parquet")
    renamed = fingerprint_source(source, tmp_path)
    assert renamed != before
    _batches(tmp_path, 3)
    assert fingerprint_source(source, tmp_path) not in (before, renamed)


def test_remote_filesystems_get_a_timeout(monkeypatch):
    import datetime as dt

    import pyarrow.fs as pafs

    from loopc.runtime.data.sources import _bounded, remote_timeout

    monkeypatch.setenv("LOOPC_SOURCE_TIMEOUT", "7")
    s3 = _bounded(pafs.S3FileSystem(region="eu-west-1", endpoint_override="http://127.0.0.1:1"))
    options = s3.__reduce__()[1][0]
    assert (options["connect_timeout"], options["request_timeout"]) == (7.0, 7.0)
    assert (options["region"], options["endpoint_override"]) == ("eu-west-1", "http://127.0.0.1:1")
    gcs = _bounded(pafs.GcsFileSystem(anonymous=True))
    assert gcs.__reduce__()[1][0]["retry_time_limit"] == dt.timedelta(seconds=7)
    monkeypatch.delenv("LOOPC_SOURCE_TIMEOUT")
    assert remote_timeout() == 60.0
    for bad in ("soon", "0"):
        monkeypatch.setenv("LOOPC_SOURCE_TIMEOUT", bad)
        with pytest.raises(DataError, match="LOOPC_SOURCE_TIMEOUT"):
            remote_timeout()


def test_a_non_utf8_name_in_a_pyarrow_listing_is_a_clear_error(tmp_path):
    import pyarrow.fs as pafs

    from loopc.runtime.data.sources import _list_remote

    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "ok.csv").write_text("x\n1\n")
    filesystem = pafs.SubTreeFileSystem(str(tmp_path), pafs.LocalFileSystem())  # lists through pyarrow
    assert _list_remote(filesystem, "d") == ["ok.csv"]
    with open(os.path.join(os.fsencode(tmp_path / "d"), b"caf\xe9.csv"), "wb") as handle:
        handle.write(b"x\n2\n")
    with pytest.raises(DataError, match="a file name under 'd' is not valid UTF-8"):
        _list_remote(filesystem, "d")
