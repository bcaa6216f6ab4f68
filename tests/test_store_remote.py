"""Artifacts on a real S3-compatible endpoint (moto's server): atomic publish, killed uploads, streaming, the cache."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pyarrow.fs as pafs
import pytest

from loopc.runtime.store.artifacts import MANIFEST, StoreError, open_store, store_url
from loopc.runtime.store.remote import RemoteArtifactStore

KEY = "ab" + "c" * 62


@pytest.fixture
def bucket(s3_endpoint, monkeypatch) -> str:
    """A fresh bucket on the endpoint; credentials and the endpoint come only from the environment."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    for name, value in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test"),
                        ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(name, os.environ.get(name, value))
    name = f"loopc-{uuid.uuid4().hex[:12]}"
    scheme, host = s3_endpoint.split("://", 1)
    pafs.S3FileSystem(endpoint_override=host, scheme=scheme, allow_bucket_creation=True).create_dir(name)
    return f"s3://{name}/project"


def _write(store, key: str, files: dict[str, bytes]) -> None:
    with store.stage(key) as folder:
        for name, data in files.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(data)


FILES = {"outputs.json": b'{"rows": 3}', "model/params.npz": b"\x00" * 3000, "rows.parquet": b"PAR1" * 100}


def test_publish_then_read_from_another_machine_cache(bucket, tmp_path):
    writer = open_store(bucket, cache_dir=tmp_path / "writer")
    assert isinstance(writer, RemoteArtifactStore) and not writer.exists(KEY)
    _write(writer, KEY, FILES)
    assert writer.exists(KEY) and writer.keys() == [KEY] and writer.leftover_keys() == []
    assert writer.manifest(KEY)["files"] == {name: len(data) for name, data in FILES.items()}
    with writer.open_file(KEY, "model/params.npz") as stream:
        assert stream.read() == FILES["model/params.npz"]
    with pytest.raises(StoreError, match="has no file 'nope'"):
        writer.open_file(KEY, "nope")
    reader = open_store(bucket, cache_dir=tmp_path / "reader")
    local = reader.path(KEY)
    assert local == tmp_path / "reader" / KEY[:2] / KEY
    assert {p.relative_to(local).as_posix(): p.read_bytes() for p in local.rglob("*")
            if p.is_file() and p.name != MANIFEST} == FILES
    assert (writer.path(KEY) / "outputs.json").read_bytes() == b"{\"rows\": 3}"  # the writer kept its copy


def test_a_writer_killed_mid_upload_is_never_seen_and_the_next_writer_commits(bucket, tmp_path):
    code = (f"from pathlib import Path\nfrom loopc.runtime.store.artifacts import open_store\n"
            f"store = open_store({bucket!r}, cache_dir={str(tmp_path / 'killed')!r})\n"
            f"with store.stage({KEY!r}) as folder:\n"
            f"    (folder / 'a.bin').write_bytes(b'partial' * 10)\n"
            f"    (folder / 'b.bin').write_bytes(b'never uploaded')\n")
    done = subprocess.run([sys.executable, "-c", code], env={**os.environ, "LOOPC_TEST_KILL_AT": "store.after_upload"},
                          capture_output=True, text=True, check=False)
    assert done.returncode == -9, done.stderr
    reader = open_store(bucket, cache_dir=tmp_path / "reader")
    assert not reader.exists(KEY) and reader.keys() == [] and reader.leftover_keys() == [KEY]
    assert not (reader.path(KEY) / MANIFEST).exists() and not reader.path(KEY).exists()
    with pytest.raises(StoreError, match="does not exist"):
        reader.manifest(KEY)
    _write(open_store(bucket, cache_dir=tmp_path / "again"), KEY, {"a.bin": b"complete"})
    assert reader.remove_leftovers(KEY) == 0 and reader.leftover_keys() == [KEY]  # maybe still uploading elsewhere
    assert reader.remove_leftovers(KEY, older_than_s=0) == 1 and reader.leftover_keys() == []
    assert (reader.path(KEY) / "a.bin").read_bytes() == b"complete"
    assert sorted(p.name for p in reader.path(KEY).iterdir()) == [MANIFEST, "a.bin"]


def test_a_failing_step_commits_nothing(bucket, tmp_path):
    store = open_store(bucket, cache_dir=tmp_path / "c")
    with pytest.raises(RuntimeError), store.stage(KEY) as folder:
        (folder / "x").write_bytes(b"x")
        raise RuntimeError("step failed")
    assert not store.exists(KEY) and store.leftover_keys() == [] and not list((tmp_path / "c").rglob("x"))


def test_the_local_cache_stays_within_its_bound(bucket, tmp_path, monkeypatch):
    writer = open_store(bucket, cache_dir=tmp_path / "w")
    keys = [f"{i:02d}" + "d" * 62 for i in range(3)]
    for key in keys:
        _write(writer, key, {"blob": os.urandom(700 * 1024)})
    monkeypatch.setenv("LOOPC_STORE_CACHE_MB", "1")
    reader = open_store(bucket, cache_dir=tmp_path / "r")
    for key in keys:
        assert (reader.path(key) / "blob").stat().st_size == 700 * 1024
    cached = sorted(p.parent.name for p in (tmp_path / "r").glob(f"*/*/{MANIFEST}"))
    assert cached == [keys[-1]]



def test_the_cache_evicts_the_least_recently_used_artifact_by_its_manifest_size(bucket, tmp_path, monkeypatch):
    writer = open_store(bucket, cache_dir=tmp_path / "w")
    keys = [f"{i:02d}" + "e" * 62 for i in range(3)]
    for key in keys:  # 800 KiB each in two files: any two fit in 2 MiB, three do not
        _write(writer, key, {"blob": os.urandom(700 * 1024), "part/rest.bin": os.urandom(100 * 1024)})
    monkeypatch.setenv("LOOPC_STORE_CACHE_MB", "2")
    reader = open_store(bucket, cache_dir=tmp_path / "r")
    first, second = reader.path(keys[0]), reader.path(keys[1])
    os.utime(first / MANIFEST, (2000, 2000))
    os.utime(second / MANIFEST, (1000, 1000))
    reader.path(keys[0])  # used again: now the most recent
    reader.path(keys[2])
    cached = sorted(p.parent.name for p in (tmp_path / "r").glob(f"*/*/{MANIFEST}"))
    assert cached == [keys[0], keys[2]]

def test_an_artifact_changed_behind_the_manifest_is_refused(bucket, tmp_path):
    writer = open_store(bucket, cache_dir=tmp_path / "w")
    _write(writer, KEY, {"a.bin": b"12345"})
    folder = writer.manifest(KEY)["writer"]
    with writer.fs.open_output_stream(f"{writer.base}/artifacts/{KEY[:2]}/{KEY}/{folder}/a.bin") as sink:
        sink.write(b"123")
    with pytest.raises(StoreError, match="a.bin has 3 bytes, its manifest says 5; the store was changed by hand"):
        open_store(bucket, cache_dir=tmp_path / "r").path(KEY)


def test_store_url_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("LOOPC_STORE", raising=False)
    assert store_url(tmp_path) == str(tmp_path)
    monkeypatch.setenv("LOOPC_STORE", "s3://b/p")
    assert store_url(tmp_path) == "s3://b/p"
    assert isinstance(open_store(Path(tmp_path)), type(open_store(f"file://{tmp_path}")))
