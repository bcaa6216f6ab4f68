"""Checkpoints resume to exactly the uninterrupted result; params files are atomic and deterministic."""

from __future__ import annotations

import numpy as np
import pytest

from loopc.runtime.train.checkpoint import CHECKPOINT_NAME, load_params, save_params
from loopc.runtime.train.trainer import TrainError, predict, train_model

MLP = {"kind": "mlp", "hidden": [6], "activation": "relu", "dropout": 0.2}
ADAMW = {"name": "adamw", "lr": 0.02, "params": {"weight_decay": 0.001}, "clip_norm": 1.0}
COSINE = {"kind": "warmup_cosine", "warmup_steps": 3, "decay_rate": None}


def _data():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(260, 4)).astype(np.float32)
    y = (x[:, 0] - x[:, 2] > 0).astype(np.float32)
    return x[:200], y[:200], x[200:], y[200:]


def _train(checkpoint_dir=None, epochs=6, **kwargs):
    training = {"epochs": epochs, "batch_size": 48, "seed": 9, "checkpoint_every": 2, "class_weight": None,
                "early_stopping": {"metric": "val_loss", "patience": 10, "min_delta": 0.0}}
    return train_model(*_data(), task="binary_classification", num_classes=None, architecture=MLP,
                       optimizer=ADAMW, schedule=COSINE, training=training, checkpoint_dir=checkpoint_dir,
                       **kwargs)


def _assert_same_params(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for name in a:
        for leaf in a[name]:
            assert np.shape(a[name][leaf]) == np.shape(b[name][leaf]), f"{name}/{leaf} changed shape"
            assert np.array_equal(a[name][leaf], b[name][leaf]), f"{name}/{leaf} differs"


def test_resumed_run_ends_with_the_uninterrupted_params(tmp_path):
    uninterrupted = _train()
    first = _train(tmp_path, max_epochs_this_call=3)
    assert first.epochs_run == 3 and (tmp_path / CHECKPOINT_NAME).exists()
    resumed = _train(tmp_path)
    assert resumed.epochs_run == 6
    _assert_same_params(uninterrupted.params, resumed.params)
    assert [h["val_loss"] for h in resumed.history] == [h["val_loss"] for h in uninterrupted.history]
    again = _train(tmp_path)  # finished checkpoint: nothing left to train, same answer
    _assert_same_params(resumed.params, again.params)


def test_checkpoint_of_other_settings_is_refused(tmp_path):
    _train(tmp_path, epochs=2)
    with pytest.raises(TrainError, match="different data or settings"):
        _train(tmp_path, epochs=3)


def test_params_files_are_deterministic_and_round_trip(tmp_path):
    params = {"layer_0": {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.zeros(3, np.float32)},
              "target": {"shift": np.float32(1.5), "scale": np.float32(2.0)}}
    save_params(tmp_path / "a.npz", params)
    save_params(tmp_path / "b.npz", params)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    loaded = load_params(tmp_path / "a.npz")
    _assert_same_params(params, loaded)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_saved_params_predict_like_the_trained_ones(tmp_path):
    result = _train(epochs=2)
    save_params(tmp_path / "params.npz", result.params)
    x = _data()[2]
    before = predict(result.params, MLP, "binary_classification", x)
    after = predict(load_params(tmp_path / "params.npz"), MLP, "binary_classification", x)
    np.testing.assert_array_equal(before, after)


def test_unreadable_params_file_is_a_train_error(tmp_path):
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(TrainError, match="cannot read"):
        load_params(tmp_path / "bad.npz")
