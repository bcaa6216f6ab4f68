"""Checkpoint and params files, specified directly (no training): archive names from the epoch and step, the
manifest (newest first, size and sha256 of each, the newest two kept), byte-for-byte determinism, the previous
archive used when the newest is damaged (truncated, edited, missing), and a clear error for anything unreadable.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import zipfile

import numpy as np
import pytest

from loopc.runtime.train.checkpoint import (
    CHECKPOINT_NAME,
    flatten_tree,
    leaf_list,
    load_checkpoint,
    load_params,
    save_checkpoint,
    save_params,
    subtree,
    unflatten_tree,
)
from loopc.runtime.train.nets import TrainError

PARAMS = {"layer_0": {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.ones(3, np.float32)},
          "target": {"shift": np.float32(1.5)}}  # fmt: skip


def save(folder, epoch: int | None, step: int | None = None, value: float = 0.0):
    meta = {"epoch": epoch, "step": step, "note": "é"}
    meta = {k: v for k, v in meta.items() if v is not None}
    leaves = {"opt_state": [np.full(2, value, np.float32) + i for i in range(12)]}
    return save_checkpoint(folder, {"params": PARAMS, "best_params": {"w": np.float32(value)}}, leaves, meta)


def manifest(folder) -> list[dict]:
    return json.loads((folder / CHECKPOINT_NAME).read_text())["checkpoints"]


def archives(folder) -> list[str]:
    return sorted(p.name for p in folder.glob("checkpoint-*.npz"))


def test_flatten_joins_nested_keys_with_slashes_and_unflatten_inverts_it():
    flat = flatten_tree(PARAMS, "params/")
    assert list(flat) == ["params/layer_0/b", "params/layer_0/w", "params/target/shift"]
    assert isinstance(flat["params/target/shift"], np.ndarray)
    back = unflatten_tree({k.removeprefix("params/"): v for k, v in flat.items()})
    assert back.keys() == PARAMS.keys() and back["layer_0"].keys() == PARAMS["layer_0"].keys()
    np.testing.assert_array_equal(back["layer_0"]["w"], PARAMS["layer_0"]["w"])


def test_params_files_round_trip_with_their_dtypes_and_are_the_same_bytes_for_the_same_params(tmp_path):
    save_params(tmp_path / "a.npz", PARAMS)
    save_params(str(tmp_path / "b.npz"), {"target": PARAMS["target"], "layer_0": PARAMS["layer_0"]})
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    loaded = load_params(str(tmp_path / "a.npz"))
    assert loaded["layer_0"]["w"].dtype == np.float32 and loaded["target"]["shift"].shape == ()
    np.testing.assert_array_equal(loaded["layer_0"]["w"], PARAMS["layer_0"]["w"])
    with zipfile.ZipFile(tmp_path / "a.npz") as archive:
        assert archive.namelist() == ["layer_0/b.npy", "layer_0/w.npy", "target/shift.npy"]
        assert {i.date_time for i in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        assert {i.compress_type for i in archive.infolist()} == {zipfile.ZIP_STORED}


def test_a_checkpoint_is_named_by_its_epoch_and_step_and_holds_its_trees_leaves_and_meta(tmp_path):
    path = save(tmp_path, epoch=3, step=17, value=2.0)
    assert path == tmp_path / "checkpoint-000003-00000017.npz"
    arrays, meta = load_checkpoint(tmp_path)
    assert meta == {"epoch": 3, "step": 17, "note": "é"}
    np.testing.assert_array_equal(subtree(arrays, "params")["layer_0"]["w"], PARAMS["layer_0"]["w"])
    assert subtree(arrays, "best_params") == {"w": np.float32(2.0)}
    assert set(subtree(arrays, "params")) == {"layer_0", "target"}, "best_params/ must not leak into params"
    leaves = leaf_list(arrays, "opt_state")
    assert [float(leaf[0]) for leaf in leaves] == [2.0 + i for i in range(12)], "leaves in their saved order"
    with zipfile.ZipFile(path) as archive:
        text = archive.read("meta.json").decode()
    assert text == json.dumps(meta, sort_keys=True, separators=(",", ":"))


def test_epoch_and_step_default_to_0_in_the_name(tmp_path):
    assert save(tmp_path, epoch=None).name == "checkpoint-000000-00000000.npz"
    assert save(tmp_path, epoch=2).name == "checkpoint-000002-00000000.npz"


def test_the_manifest_lists_the_newest_two_with_size_and_sha256_and_older_archives_go(tmp_path):
    for epoch in (1, 2, 3):
        save(tmp_path, epoch=epoch)
    entries = manifest(tmp_path)
    assert [e["file"] for e in entries] == ["checkpoint-000003-00000000.npz", "checkpoint-000002-00000000.npz"]
    assert archives(tmp_path) == ["checkpoint-000002-00000000.npz", "checkpoint-000003-00000000.npz"]
    for entry in entries:
        data = (tmp_path / entry["file"]).read_bytes()
        assert entry == {"file": entry["file"], "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def test_saving_the_same_position_again_replaces_its_entry(tmp_path):
    save(tmp_path, epoch=1)
    save(tmp_path, epoch=2, value=1.0)
    save(tmp_path, epoch=2, value=5.0)
    assert [e["file"] for e in manifest(tmp_path)] == ["checkpoint-000002-00000000.npz",
                                                       "checkpoint-000001-00000000.npz"]  # fmt: skip
    assert subtree(load_checkpoint(tmp_path)[0], "best_params") == {"w": np.float32(5.0)}


def test_the_same_checkpoint_is_the_same_bytes(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    save_checkpoint(a, {"params": PARAMS}, {"opt_state": [np.zeros(2)]}, {"epoch": 1, "step": 0})
    save_checkpoint(b, {"params": PARAMS}, {"opt_state": [np.zeros(2)]}, {"step": 0, "epoch": 1})
    name = "checkpoint-000001-00000000.npz"
    assert (a / name).read_bytes() == (b / name).read_bytes()


def test_no_manifest_is_no_checkpoint(tmp_path):
    assert load_checkpoint(tmp_path) is None
    assert load_checkpoint(tmp_path / "missing") is None


@pytest.mark.parametrize(("damage", "why"), [
    (lambda p: p.write_bytes(p.read_bytes()[:-10]), r"has \d+ bytes, the manifest says \d+ \(truncated\?\)"),
    (lambda p: p.write_bytes(p.read_bytes()[:-1] + b"x"), "does not match the sha256 in the manifest"),
    (lambda p: p.unlink(), r"cannot be read \(No such file or directory\)"),
])  # fmt: skip
def test_a_damaged_newest_archive_falls_back_to_the_previous_with_a_warning(tmp_path, caplog, damage, why):
    save(tmp_path, epoch=1, value=1.0)
    newest = save(tmp_path, epoch=2, value=2.0)
    damage(newest)
    with caplog.at_level(logging.WARNING, logger="loopc.train.checkpoint"):
        arrays, meta = load_checkpoint(tmp_path)
    assert meta["epoch"] == 1 and subtree(arrays, "best_params") == {"w": np.float32(1.0)}
    [record] = caplog.records
    message = record.getMessage()
    assert message.startswith(f"checkpoint {newest} ")
    assert message.endswith(f"; resuming from the previous checkpoint {tmp_path / 'checkpoint-000001-00000000.npz'}"
                            " instead")  # fmt: skip
    assert re.search(why, message)


def test_an_intact_newest_archive_is_read_without_a_warning(tmp_path, caplog):
    save(tmp_path, epoch=1)
    save(tmp_path, epoch=2)
    with caplog.at_level(logging.WARNING, logger="loopc.train.checkpoint"):
        assert load_checkpoint(tmp_path)[1]["epoch"] == 2
    assert caplog.records == []


def test_every_archive_damaged_is_an_error_naming_each_and_why(tmp_path):
    first = save(tmp_path, epoch=1)
    second = save(tmp_path, epoch=2)
    second.unlink()
    first.write_bytes(first.read_bytes()[:-1] + b"x")
    with pytest.raises(TrainError) as caught:
        load_checkpoint(tmp_path)
    assert str(caught.value) == (
        f"no intact checkpoint in {tmp_path}: {second} cannot be read (No such file or directory); "
        f"{first} does not match the sha256 in the manifest; delete the folder to train from scratch"
    )


@pytest.mark.parametrize("text", ["{not json", '{"other": []}', '{"checkpoints": 3}', "[]"])
def test_an_unreadable_manifest_is_an_error_naming_it(tmp_path, text):
    (tmp_path / CHECKPOINT_NAME).write_text(text)
    with pytest.raises(TrainError, match=f"cannot read the checkpoint manifest {tmp_path / CHECKPOINT_NAME}: .*; "
                                         "delete the folder to train from scratch"):  # fmt: skip
        load_checkpoint(tmp_path)


def test_an_archive_without_meta_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "checkpoint-000001-00000000.npz"
    save_params(path, PARAMS)
    data = path.read_bytes()
    entry = {"file": path.name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (tmp_path / CHECKPOINT_NAME).write_text(json.dumps({"checkpoints": [entry]}))
    with pytest.raises(TrainError, match=f"^{path} has no meta.json; it is not a loopc checkpoint: delete it$"):
        load_checkpoint(tmp_path)


@pytest.mark.parametrize("data", [b"not a zip", b""])
def test_an_unreadable_params_file_is_an_error_naming_it(tmp_path, data):
    path = tmp_path / "params.npz"
    path.write_bytes(data)
    with pytest.raises(TrainError, match=f"^cannot read {path}: .*; delete it and train again$"):
        load_params(path)


def test_a_params_file_with_a_pickled_member_is_refused(tmp_path):
    buffer = io.BytesIO()
    member = io.BytesIO()
    np.save(member, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("w.npy", member.getvalue())
    (tmp_path / "params.npz").write_bytes(buffer.getvalue())
    with pytest.raises(TrainError, match="cannot read"):
        load_params(tmp_path / "params.npz")


def test_an_archive_that_matches_its_manifest_but_is_no_zip_is_an_error_naming_it(tmp_path):
    path = tmp_path / "checkpoint-000001-00000000.npz"
    path.write_bytes(b"not a zip")
    entry = {"file": path.name, "bytes": 9, "sha256": hashlib.sha256(b"not a zip").hexdigest()}
    (tmp_path / CHECKPOINT_NAME).write_text(json.dumps({"checkpoints": [entry]}))
    with pytest.raises(TrainError, match=f"^cannot read {path}: .*; delete it and train again$"):
        load_checkpoint(tmp_path)


def test_a_fortran_ordered_array_is_saved_as_the_same_bytes_as_its_c_ordered_copy(tmp_path):
    w = np.arange(12, dtype=np.float32).reshape(3, 4)
    save_params(tmp_path / "c.npz", {"layer_0": {"w": w}})
    save_params(tmp_path / "f.npz", {"layer_0": {"w": np.asfortranarray(w)}})
    assert (tmp_path / "c.npz").read_bytes() == (tmp_path / "f.npz").read_bytes()
    np.testing.assert_array_equal(load_params(tmp_path / "f.npz")["layer_0"]["w"], w)
