"""Artifact store: atomic writes, staged publish, concurrent writers of one key."""

from __future__ import annotations

import json
import multiprocessing
import os

import pytest

from loopc.runtime.store.artifacts import (
    MANIFEST,
    LocalArtifactStore,
    StoreError,
    atomic_write_bytes,
    atomic_write_json,
    open_store,
)

KEY = "ab" + "0" * 62


def test_atomic_write_json_sorted_and_replaces(tmp_path):
    target = tmp_path / "sub" / "x.json"
    atomic_write_json(target, {"b": 1, "a": [1, 2]})
    assert target.read_text() == '{\n  "a": [\n    1,\n    2\n  ],\n  "b": 1\n}\n'
    atomic_write_json(target, {"c": 3})
    assert json.loads(target.read_text()) == {"c": 3}
    assert sorted(p.name for p in target.parent.iterdir()) == ["x.json"]


def test_compact_json_is_the_c_encoders_sorted_text_without_whitespace(tmp_path):
    target = tmp_path / "x.json"
    atomic_write_json(target, {"b": 1.5, "a": [1, "é"], "c": None}, compact=True)
    assert target.read_text(encoding="utf-8") == '{"a":[1,"é"],"b":1.5,"c":null}\n'


def test_failed_atomic_write_keeps_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "x.json"
    atomic_write_json(target, {"old": True})
    with pytest.raises(TypeError):
        atomic_write_json(target, {"new": object()})
    assert json.loads(target.read_text()) == {"old": True}
    with pytest.raises(TypeError):
        atomic_write_bytes(target, "not bytes")  # fails inside the write, after the temp file exists
    assert json.loads(target.read_text()) == {"old": True}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_stage_publishes_with_manifest(tmp_path):
    store = open_store(tmp_path)
    assert not store.exists(KEY)
    with store.stage(KEY) as staging:
        (staging / "model").mkdir()
        (staging / "model" / "params.bin").write_bytes(b"1234")
        assert not store.exists(KEY)
    assert store.exists(KEY)
    assert store.path(KEY) == tmp_path / "artifacts" / "ab" / KEY
    assert store.manifest(KEY) == {"files": {"model/params.bin": 4}, "key": KEY}
    assert store.keys() == [KEY]
    assert store.uri(KEY) == f"file://{tmp_path.resolve()}/artifacts/ab/{KEY}"
    assert sorted(p.name for p in store.path(KEY).parent.iterdir()) == [KEY]


def test_failure_mid_stage_leaves_nothing(tmp_path):
    store = open_store(tmp_path)
    with pytest.raises(RuntimeError, match="boom"):
        with store.stage(KEY) as staging:
            (staging / "half.bin").write_bytes(b"half")
            raise RuntimeError("boom")
    assert not store.exists(KEY)
    assert not store.path(KEY).exists()
    assert list(store.path(KEY).parent.iterdir()) == []


def _die_mid_stage(root: str) -> None:
    store = LocalArtifactStore(root)
    with store.stage(KEY) as staging:
        (staging / "half.bin").write_bytes(b"half")
        os._exit(3)  # a crash: no finally, no cleanup


def test_crash_mid_stage_is_never_mistaken_for_complete(tmp_path):
    proc = multiprocessing.get_context("spawn").Process(target=_die_mid_stage, args=(str(tmp_path),))
    proc.start()
    proc.join(60)
    assert proc.exitcode == 3
    store = open_store(tmp_path)
    assert not store.exists(KEY) and store.keys() == []
    with store.stage(KEY) as staging:
        (staging / "whole.bin").write_bytes(b"whole")
    assert store.manifest(KEY)["files"] == {"whole.bin": 5}


def test_incomplete_final_dir_is_replaced(tmp_path):
    store = open_store(tmp_path)
    store.path(KEY).mkdir(parents=True)
    (store.path(KEY) / "junk").write_text("x")
    with store.stage(KEY) as staging:
        (staging / "ok").write_text("y")
    assert store.exists(KEY)
    assert sorted(p.name for p in store.path(KEY).iterdir()) == [MANIFEST, "ok"]


def _write_same_key(args: tuple[str, int]) -> str:
    root, index = args
    store = LocalArtifactStore(root)
    with store.stage(KEY) as staging:
        (staging / "data.txt").write_text("same content")
        (staging / f"writer-{index}").write_text(str(index))
    return "ok"


def test_concurrent_stage_of_same_key_first_wins(tmp_path):
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        results = pool.map(_write_same_key, [(str(tmp_path), i) for i in range(8)])
    assert results == ["ok"] * 8
    store = open_store(tmp_path)
    files = store.manifest(KEY)["files"]
    writers = [name for name in files if name.startswith("writer-")]
    assert len(writers) == 1 and files["data.txt"] == len("same content")
    assert sorted(p.name for p in store.path(KEY).parent.iterdir()) == [KEY]


def test_open_store_urls_and_keys(tmp_path):
    assert open_store(f"file://{tmp_path}").path(KEY) == tmp_path / "artifacts" / "ab" / KEY
    with pytest.raises(StoreError, match="cannot open artifact store nosuch://x: .*Unrecognized filesystem"):
        open_store("nosuch://x")
    with pytest.raises(StoreError, match="invalid artifact key"):
        open_store(tmp_path).path("../etc")
    with pytest.raises(StoreError, match="does not exist"):
        open_store(tmp_path).manifest(KEY)
