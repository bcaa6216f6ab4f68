"""The training loop's bookkeeping, specified: the epoch plan, the best epoch without early stopping, the
defaults of early stopping (patience 3, min_delta 0), the history's fields, checkpoints every N epochs and at
the end of a call, the regression target scaling, and the divergence message. Real JAX on tiny data.
"""

from __future__ import annotations

import numpy as np
import pytest

from loopc.runtime.train.epoch import EpochPlan, plan_epoch
from loopc.runtime.train.trainer import TrainError, train_model

LINEAR = {"kind": "linear"}
ADAM = {"name": "adam", "lr": 0.05, "params": {}, "clip_norm": None}
CONSTANT = {"kind": "constant", "warmup_steps": 0, "decay_rate": None}


@pytest.mark.parametrize(("rows", "batch_size", "devices", "expected"), [
    (100, 32, 1, EpochPlan(100, 32, 4)),  # 32 + 32 + 32 + 4
    (96, 32, 1, EpochPlan(96, 32, 3)),
    (20, 32, 1, EpochPlan(20, 20, 1)),  # capped at the rows
    (100, 32, 3, EpochPlan(100, 33, 4)),  # rounded up to a multiple of the devices
    (100, 32, 8, EpochPlan(100, 32, 4)),
    (5, 4, 8, EpochPlan(5, 8, 1)),
    (0, 32, 1, EpochPlan(0, 1, 0)),
])  # fmt: skip
def test_the_epoch_plan(rows, batch_size, devices, expected):
    assert plan_epoch(rows, batch_size, devices) == expected


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(21)
    x = rng.normal(size=(120, 3)).astype(np.float32)
    y = (x @ np.array([1.5, -1.0, 0.5]) + 0.5 * rng.normal(size=120) > 0).astype(np.float32)
    return x[:80], y[:80], x[80:], y[80:]


@pytest.fixture(scope="module")
def noisy():
    """Labels with enough noise that the validation loss improves for several epochs, then stalls."""
    rng = np.random.default_rng(21)
    x = rng.normal(size=(120, 3)).astype(np.float32)
    rng.random(120)
    y = (x @ np.array([1.5, -1.0, 0.5]) + rng.normal(size=120) > 0).astype(np.float32)
    return x[:80], y[:80], x[80:], y[80:]


def train(data, task="binary_classification", optimizer=ADAM, **training):
    training = {"epochs": 6, "batch_size": 16, "seed": 3, "early_stopping": None, "class_weight": None,
                **training}  # fmt: skip
    return train_model(*data, task=task, num_classes=None, architecture=LINEAR, optimizer=optimizer,
                       schedule=CONSTANT, training=training)  # fmt: skip


def test_without_early_stopping_the_best_epoch_has_the_lowest_val_loss_and_the_last_params_are_kept(noisy):
    result = train(noisy, epochs=20)
    losses = [h["val_loss"] for h in result.history]
    assert [h["epoch"] for h in result.history] == list(range(1, 21))
    assert all(set(h) == {"epoch", "train_loss", "val_loss", "seconds"} and h["seconds"] >= 0 for h in result.history)
    assert result.best_epoch == 1 + int(np.argmin(losses)) < 20, "the lowest val_loss must come before the end"
    assert (result.epochs_run, result.stopped_early) == (20, False)


def test_without_validation_rows_the_best_epoch_is_the_last(data):
    x, y, _, _ = data
    result = train((x, y, x[:0], y[:0]), epochs=3)
    assert [h["val_loss"] for h in result.history] == [None, None, None]
    assert result.best_epoch == 3


def test_early_stopping_defaults_to_patience_3_and_min_delta_0(noisy):
    explicit = train(noisy, epochs=40, early_stopping={"patience": 3, "min_delta": 0.0})
    default = train(noisy, epochs=40, early_stopping={})
    assert explicit.stopped_early and explicit.best_epoch > 1, "the run must improve, then stop early"
    assert (default.best_epoch, default.epochs_run, default.stopped_early) == \
        (explicit.best_epoch, explicit.epochs_run, explicit.stopped_early)
    assert explicit.epochs_run == explicit.best_epoch + 3
    losses = [h["val_loss"] for h in explicit.history]
    assert explicit.best_epoch == 1 + int(np.argmin(losses))


def test_regression_params_carry_the_target_scaling(data):
    x, _, xv, _ = data
    y, yv = (x[:, 0] * 10 + 50).astype(np.float32), (xv[:, 0] * 10 + 50).astype(np.float32)
    result = train((x, y, xv, yv), task="regression", epochs=2)
    target = result.params["target"]
    assert target["shift"].dtype == np.float32 and target["scale"].dtype == np.float32
    assert float(target["shift"]) == pytest.approx(float(y.mean()), rel=1e-5)
    assert float(target["scale"]) == pytest.approx(float(y.std()), rel=1e-3)
    assert "target" not in train(data, epochs=1).params


def test_a_diverging_run_names_the_epoch_and_the_fix(data):
    with pytest.raises(TrainError, match=r"training diverged in epoch 1 \(loss (nan|inf)\); lower optimizer.lr or"):
        train(data, optimizer={**ADAM, "lr": 1e38}, epochs=2)


def test_checkpoints_every_n_epochs_and_at_the_end_of_a_call(data, tmp_path):
    def run(**kwargs):
        return train_model(*data, task="binary_classification", num_classes=None, architecture=LINEAR,
                           optimizer=ADAM, schedule=CONSTANT, checkpoint_dir=tmp_path, **kwargs)  # fmt: skip

    training = {"epochs": 5, "batch_size": 16, "seed": 3, "early_stopping": None, "class_weight": None,
                "checkpoint_every": 2}  # fmt: skip
    first = run(training=training, max_epochs_this_call=3)
    assert first.epochs_run == 3
    second = run(training=training, max_epochs_this_call=1)
    assert second.resumed_at == (3, 0) and second.epochs_run == 4
    whole = train_model(*data, task="binary_classification", num_classes=None, architecture=LINEAR, optimizer=ADAM,
                        schedule=CONSTANT, training=training)  # fmt: skip
    third = run(training=training)
    assert third.resumed_at == (4, 0) and third.epochs_run == 5
    assert [h["val_loss"] for h in third.history] == [h["val_loss"] for h in whole.history]
