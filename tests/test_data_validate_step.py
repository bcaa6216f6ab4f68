"""The validate step through the real runner: one snapshot gives the cache key, the rows and the lineage.

In-process runs (``run_step``) wrap the first read of a file to change the data between the
snapshot and the read, deterministically; the rest runs ``python -m loopc.runtime run-step``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import blake3
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from loopc.runtime.data import batchwise
from loopc.runtime.data import snapshot as snap
from loopc.runtime.execution.runner import run_step
from loopc.runtime.execution.step import load_step
from loopc.runtime.store.artifacts import open_store

STATE = "state"  # no leading dot: a glob over the project would match it if it were not excluded
COLUMNS = {"id": {"type": "int", "nullable": False}}


def _csv(path: Path, ids) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pacsv.write_csv(pa.table({"id": ids}), path)


def _step(root: Path, source: str, columns=None) -> Path:
    doc = {"format": 1, "pipeline": "p", "plan": "p", "id": "validate.d", "kind": "validate", "stage": "data",
           "deps": [], "fingerprint": "fp-validate", "cacheable": True, "state_dir": STATE, "spec_hash": "h",
           "resources": {}, "config": {"dataset_name": "d", "dataset": {
               "source": {"path": source}, "columns": columns or COLUMNS, "checks": []}}}
    path = root / "steps" / "validate.d.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


@pytest.fixture
def project(tmp_path):
    _csv(tmp_path / "data" / "a.csv", [1, 2])
    _csv(tmp_path / "data" / "b.csv", [3])
    return tmp_path


def _run(root: Path, run_id: str, source: str = "data/*.csv") -> dict:
    return run_step(load_step(_step(root, source)), root, run_id)


def _cli(root: Path, run_id: str, source: str = "data/*.csv", env=None) -> tuple[subprocess.CompletedProcess, dict]:
    done = subprocess.run([sys.executable, "-m", "loopc.runtime", "run-step", str(_step(root, source)),
                           "--root", str(root), "--run-id", run_id], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)
    return done, json.loads(done.stdout.strip().splitlines()[-1])


def _artifact(root: Path, record: dict) -> Path:
    return root / STATE / record["artifact"]


def _wrap_read(monkeypatch, change) -> None:
    """Run ``change`` once, just before the first file's bytes are read (the monitor's whole-file
    ``snapshot._read_bytes``, or the validate step's batch reader, which starts at ``digesting``)."""
    done = []

    def once() -> None:
        if not done:
            done.append(change())

    read_bytes, digesting = snap._read_bytes, batchwise.digesting
    monkeypatch.setattr(snap, "_read_bytes", lambda filesystem, path: once() or read_bytes(filesystem, path))
    monkeypatch.setattr(batchwise, "digesting", lambda snapshot, entry: once() or digesting(snapshot, entry))


def test_key_rows_and_lineage_come_from_one_snapshot(project, monkeypatch):
    taken = []
    real = snap.take_snapshot
    monkeypatch.setattr("loopc.runtime.steps.validate.take_snapshot", lambda *a, **k: taken.append(1) or real(*a, **k))
    record = _run(project, "r1")
    assert record["status"] == "done" and len(taken) == 1
    lineage = json.loads((_artifact(project, record) / "snapshot.json").read_text())
    assert record["outputs"]["fingerprint"] == lineage["digest"] == real({"path": "data/*.csv"}, project).digest
    assert [f["name"] for f in lineage["files"]] == ["a.csv", "b.csv"]
    assert pq.read_table(_artifact(project, record) / "table.parquet").column("id").to_pylist() == [1, 2, 3]


def test_the_lineage_names_blake3_and_holds_each_files_blake3_from_the_validating_read(project):
    record = _run(project, "r1")
    lineage = json.loads((_artifact(project, record) / "snapshot.json").read_text())
    assert lineage["digest_algorithm"] == "blake3"
    assert [f["digest"] for f in lineage["files"]] == [
        blake3.blake3((project / "data" / name).read_bytes()).hexdigest() for name in ("a.csv", "b.csv")]
    snap.verify_files(lineage)


def test_a_local_source_is_read_where_it_is_never_copied_first(project, monkeypatch):
    """Spooling (one download of a remote object) is for remote sources only: a local file is digested on a
    thread while it is read in place, and the step makes no spool folder."""
    def refuse(*_):
        raise AssertionError("a local file was spooled")

    monkeypatch.setattr(batchwise, "spooled", refuse)
    monkeypatch.setattr("loopc.runtime.execution.runner.StepContext.scratch_dir",
                        lambda self, name: refuse() if name == "spool" else None)
    record = _run(project, "r1")
    assert record["status"] == "done" and record["outputs"]["rows"] == 3


def test_file_added_during_the_read_waits_for_the_next_run(project, monkeypatch):
    """Chosen behaviour: a file that lands after the snapshot is not in the rows nor the fingerprint."""
    _wrap_read(monkeypatch, lambda: _csv(project / "data" / "c.csv", [4]))
    first = _run(project, "r1")
    assert first["status"] == "done" and first["outputs"]["rows"] == 3
    table = pq.read_table(_artifact(project, first) / "table.parquet")
    assert table.column("id").to_pylist() == [1, 2, 3]
    lineage = json.loads((_artifact(project, first) / "snapshot.json").read_text())
    assert "c.csv" not in [f["name"] for f in lineage["files"]]
    monkeypatch.undo()
    second = _run(project, "r2")
    assert second["status"] == "done" and second["outputs"]["rows"] == 4 and second["key"] != first["key"]


def test_file_modified_during_the_read_fails_naming_it_and_publishes_nothing(project, monkeypatch):
    target = project / "data" / "b.csv"
    _wrap_read(monkeypatch, lambda: _csv(target, [3, 30]))
    record = _run(project, "r1")
    assert record["status"] == "failed"
    assert f"file '{target}' changed after the source's snapshot was taken" in record["message"]
    assert "internal error" not in record["message"]
    assert open_store(project / STATE).keys() == []
    monkeypatch.undo()
    again = _run(project, "r2")
    assert again["status"] == "done" and again["outputs"]["rows"] == 4


def test_a_deleted_file_after_a_cached_run_is_recomputed_not_served_stale(project):
    first, one = _cli(project, "r1")
    assert first.returncode == 0, first.stderr
    _, cached = _cli(project, "r2")
    assert cached["status"] == "cached" and cached["key"] == one["key"]
    (project / "data" / "b.csv").unlink()
    third, fresh = _cli(project, "r3")
    assert third.returncode == 0, third.stderr
    assert fresh["status"] == "done" and fresh["key"] != one["key"] and fresh["outputs"]["rows"] == 2
    record = json.loads((project / STATE / "runs" / "r3" / "validate.d.json").read_text())
    assert pq.read_table(_artifact(project, record) / "table.parquet").column("id").to_pylist() == [1, 2]
    _csv(project / "data" / "b.csv", [3])  # the same bytes again, but a new mtime: validated again
    _, back = _cli(project, "r4")
    assert back["status"] == "done" and back["key"] != one["key"]
    assert back["outputs"]["fingerprint"] == one["outputs"]["fingerprint"]  # the content digest is the same


def test_the_state_directory_inside_a_data_glob_is_not_read(project):
    first, one = _cli(project, "r1", source="**/*.parquet")  # no parquet data yet: only loopc's own would match
    assert first.returncode == 1 and "matches no files" in first.stderr
    pq.write_table(pa.table({"id": [7, 8]}), project / "data" / "p.parquet")
    first, one = _cli(project, "r2", source="**/*.parquet")
    assert first.returncode == 0, first.stderr
    own = project / STATE / "artifacts" / "xx" / "table.parquet"  # loopc's own parquet (a CSV's validated rows)
    own.parent.mkdir(parents=True)
    pq.write_table(pa.table({"id": [1, 2, 3]}), own)
    again, two = _cli(project, "r3", source="**/*.parquet")
    assert two["status"] == "cached" and two["outputs"]["rows"] == 2
    inside, failed = _cli(project, "r4", source=f"{STATE}/artifacts/**/*.parquet")
    assert inside.returncode == 1 and "lies inside loopc's state directory" in inside.stderr
    assert "Traceback" not in inside.stderr


def test_a_non_utf8_file_name_fails_the_step_with_a_clear_message(project):
    with open(os.path.join(os.fsencode(project / "data"), b"caf\xe9.csv"), "wb") as handle:
        handle.write(b"id\n9\n")
    done, summary = _cli(project, "r1")
    assert done.returncode == 1 and summary["status"] == "failed"
    assert "caf\\xe9.csv' is not valid UTF-8; rename the file" in done.stderr
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_remote_source_fails_fast_naming_the_url(project):
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{_closed_port()}", "AWS_ACCESS_KEY_ID": "test",
           "AWS_SECRET_ACCESS_KEY": "test", "AWS_EC2_METADATA_DISABLED": "true"}
    done, summary = _cli(project, "r1", source="s3://bucket/data/*.csv", env=env)
    assert done.returncode == 1 and summary["status"] == "failed"
    assert "cannot reach source 's3://bucket/data/*.csv'" in done.stderr
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr


def _mount_tmpfs(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a tiny tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)], capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")


def test_a_full_disk_fails_the_step_naming_the_file(project):
    rows = np.random.default_rng(0).integers(0, 2**62, 50_000)  # ~400 KB of parquet, over the 64 KiB disk
    pacsv.write_csv(pa.table({"id": rows}), project / "data" / "big.csv")  # CSV: validate writes the cast table
    artifacts = project / STATE / "artifacts"
    _mount_tmpfs(artifacts)
    try:
        record = _run(project, "r1", source="data/big.csv")
    finally:
        subprocess.run(["umount", str(artifacts)], check=True)
    assert record["status"] == "failed", record
    assert "cannot write '" in record["message"] and "table.parquet': No space left on device" in record["message"]
    assert "internal error" not in record["message"]
    assert open_store(project / STATE).keys() == []


def test_a_write_error_names_the_path_without_root(tmp_path):
    from loopc.runtime.execution.runner import StepFailed
    from loopc.runtime.steps.files import writing

    (tmp_path / "file").write_text("")
    target = tmp_path / "file" / "table.parquet"  # its folder is a file: ENOTDIR, for root too
    with pytest.raises(StepFailed, match=f"cannot write '{target}': Not a directory"):
        with writing(target) as path:
            pq.write_table(pa.table({"id": [1]}), path)


def _monitor_context(root: Path):
    import logging

    from loopc.runtime.execution.runner import StepContext
    from loopc.runtime.execution.step import StepDoc

    doc = StepDoc("monitor.m", "monitor", (), "fp", {"monitor_name": "m", "columns": COLUMNS}, state_dir=STATE)
    return StepContext(doc, root, root / STATE, "r1", "k" * 64, root / "out", {}, logging.getLogger("test"))


def test_the_monitor_reads_its_source_through_a_snapshot(project, monkeypatch):
    from loopc.runtime.execution.runner import StepFailed
    from loopc.runtime.steps.monitor import _live_batches

    _csv(project / STATE / "artifacts" / "own.csv", [100])  # loopc's state, under the monitor's glob
    ctx = _monitor_context(project)
    rows = pa.concat_tables(_live_batches(ctx, {"source": {"path": "**/*.csv"}}, 0.0, ["id"]))
    assert sorted(rows.column("id").to_pylist()) == [1, 2, 3]
    target = project / "data" / "a.csv"
    _wrap_read(monkeypatch, lambda: _csv(target, [1, 2, 9]))
    with pytest.raises(StepFailed, match=f"monitor 'm': file '{target}' changed after the source's snapshot"):
        list(_live_batches(ctx, {"source": {"path": "data/*.csv"}}, 0.0, ["id"]))


def test_an_unexpected_error_while_hashing_reaches_the_reader_not_an_index_error(tmp_path, monkeypatch):
    _csv(tmp_path / "a.csv", [1])
    snapshot = snap.take_snapshot({"path": "*.csv"}, tmp_path, content=False)

    def broken(filesystem, path):
        raise pa.ArrowNotImplementedError("no such codec")

    monkeypatch.setattr(snap, "_hash_file", broken)
    with pytest.raises(pa.ArrowNotImplementedError, match="no such codec"):
        with snap.digesting(snapshot, snapshot.entries[0]):
            pass
