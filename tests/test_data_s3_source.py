"""A dataset whose files are objects on a real S3-compatible endpoint (moto's server): validate downloads each
object once into its scratch folder, digests it on the way (BLAKE3) and parses that copy; split and features read
no row, train and evaluate read the objects by ranges, register verifies them again."""

from __future__ import annotations

import json
import os
import subprocess
import uuid

import blake3
import pyarrow.fs as pafs
import pytest
from test_data_path import random_table, run_until, write_project
from test_data_validate_step import _mount_tmpfs

from loopc.compiler.cli.run import compile_local
from loopc.runtime.data import snapshot as snap
from loopc.runtime.data.errors import DataError
from loopc.runtime.execution.runner import run_step
from loopc.runtime.execution.step import load_step


@pytest.fixture
def s3_project(s3_endpoint, monkeypatch, tmp_path):
    """The test_data_path project with its Parquet files moved to a fresh bucket, and the spec pointing there."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    for name, value in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test"),
                        ("AWS_DEFAULT_REGION", "us-east-1"), ("AWS_EC2_METADATA_DISABLED", "true")):
        monkeypatch.setenv(name, os.environ.get(name, value))
    bucket = f"loopc-data-{uuid.uuid4().hex[:12]}"
    scheme, host = s3_endpoint.split("://", 1)
    s3 = pafs.S3FileSystem(endpoint_override=host, scheme=scheme, allow_bucket_creation=True)
    s3.create_dir(bucket)
    write_project(tmp_path, [random_table(2600, 1), random_table(1900, 2)])
    objects = {}
    for path in sorted((tmp_path / "data").iterdir()):
        data = path.read_bytes()
        with s3.open_output_stream(f"{bucket}/data/{path.name}") as out:
            out.write(data)
        objects[path.name] = data
        path.unlink()
    spec = tmp_path / "pipeline.yaml"
    spec.write_text(spec.read_text(encoding="utf-8").replace("path: data/*.parquet",
                                                             f"path: s3://{bucket}/data/*.parquet"), encoding="utf-8")
    return tmp_path, bucket, objects


def test_a_source_on_s3_runs_the_loop_and_its_lineage_holds_each_objects_blake3(s3_project):
    root, bucket, objects = s3_project
    assert not list((root / "data").iterdir())  # nothing local to fall back on
    records = run_until(root, "register.m")
    state = root / ".loopc"
    validate = records["validate.rows"]
    assert validate["outputs"]["rows"] == 4500
    lineage = json.loads((state / validate["artifact"] / "snapshot.json").read_text(encoding="utf-8"))
    assert lineage["source"] == f"s3://{bucket}/data/*.parquet" and lineage["digest_algorithm"] == "blake3"
    assert {f["name"]: f["digest"] for f in lineage["files"]} == {
        name: blake3.blake3(data).hexdigest() for name, data in objects.items()}
    assert {f["name"]: f["size"] for f in lineage["files"]} == {name: len(data) for name, data in objects.items()}
    rows = json.loads((state / validate["artifact"] / "rows.json").read_text(encoding="utf-8"))
    assert [f["path"] for f in rows["files"]] == [f"{bucket}/data/{name}" for name in sorted(objects)]
    split_rows = records["split.rows"]["outputs"]["split_rows"]
    assert sum(split_rows.values()) == 4500 and min(split_rows.values()) > 0
    assert records["evaluate.m"]["outputs"]["rows"] == split_rows["test"]
    assert records["register.m"]["outputs"]["version"] == 1  # register re-digested every object: unchanged


def test_an_object_replaced_after_validate_stops_train_naming_it(s3_project, s3_endpoint):
    root, bucket, objects = s3_project
    records = run_until(root, "features.m")
    name = sorted(objects)[0]
    scheme, host = s3_endpoint.split("://", 1)
    with pafs.S3FileSystem(endpoint_override=host, scheme=scheme).open_output_stream(f"{bucket}/data/{name}") as out:
        out.write(objects[sorted(objects)[1]])  # another file's bytes: another size, another mtime
    plan_file = compile_local(root / "pipeline.yaml")[0].train_plan
    step = next(s for s in json.loads(plan_file.read_text(encoding="utf-8"))["steps"] if s["id"] == "train.m")
    record = run_step(load_step(plan_file.parent / step["file"]), root, "r1")
    assert record["status"] == "failed" and f"{bucket}/data/{name}" in record["message"]
    assert "changed" in record["message"] and "Traceback" not in record["message"]
    assert records["validate.rows"]["status"] == "done"


def test_validate_downloads_each_object_once_and_keeps_no_copy(s3_project, monkeypatch):
    root, _, objects = s3_project

    real = snap._hash_file

    def digest(filesystem, path, algorithm=snap.DIGEST, copy=None):
        if copy is None:  # a digest that copies nothing is a second read of the object
            raise AssertionError("a remote object was read a second time to digest it")
        return real(filesystem, path, algorithm, copy)

    monkeypatch.setattr(snap, "_hash_file", digest)
    records = run_until(root, "validate.rows")
    assert records["validate.rows"]["outputs"]["rows"] == 4500
    assert not [p for p in (root / ".loopc" / "scratch").rglob("spool-*")]  # each copy removed after its read


def test_a_spooled_copy_is_the_files_bytes_and_goes_afterwards_even_on_error(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.csv").write_text("id\n1\n2\n", encoding="utf-8")
    snapshot = snap.take_snapshot({"path": "data/*.csv"}, tmp_path, content=False)
    spool = tmp_path / "spool"
    spool.mkdir()
    with snap.spooled(snapshot, snapshot.entries[0], spool) as read:
        assert read.opener.open_input_file("ignored").read() == b"id\n1\n2\n"
        assert read.entry.digest == blake3.blake3(b"id\n1\n2\n").hexdigest()
    assert not list(spool.iterdir())
    with pytest.raises(RuntimeError), snap.spooled(snapshot, snapshot.entries[0], spool):
        raise RuntimeError("the parse failed")
    assert not list(spool.iterdir())
    (tmp_path / "data" / "a.csv").write_text("id\n1\n2\n3\n", encoding="utf-8")
    with pytest.raises(DataError, match="a.csv' changed after the source's snapshot"), \
            snap.spooled(snapshot, snapshot.entries[0], spool):
        pass
    assert not list(spool.iterdir())


def test_a_spooled_copy_that_does_not_fit_fails_naming_the_file_and_the_folder(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "big.csv").write_text("id\n" + "1\n" * 100_000, encoding="utf-8")  # 200 KB
    snapshot = snap.take_snapshot({"path": "data/*.csv"}, tmp_path, content=False)
    spool = tmp_path / "spool"
    _mount_tmpfs(spool)  # 64 KB
    try:
        with pytest.raises(DataError, match=r"cannot copy '.*big\.csv' to '.*spool/spool-.*No space left.*free space"):
            with snap.spooled(snapshot, snapshot.entries[0], spool):
                pass
        assert not list(spool.iterdir())
    finally:
        subprocess.run(["umount", str(spool)], check=False)
