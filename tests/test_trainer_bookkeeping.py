"""The training loop's bookkeeping, specified: when checkpoints are written (every N epochs, at the end of a call,
when a signal arrives between epochs), a finished checkpoint trains nothing more, early stopping resumed from a
checkpoint ends where an uninterrupted run ends, the losses the history records (in target units for regression,
the same with a checkpoint folder as without), divergence detected in either loss, and a call that runs no epoch.
Real JAX on tiny data (80 rows, batches of 16, a linear model).
"""

from __future__ import annotations

import json
import os
import signal
import time

import numpy as np
import pytest

from loopc.runtime.train.checkpoint import CHECKPOINT_NAME
from loopc.runtime.train.preempt import Preempted
from loopc.runtime.train.trainer import TrainError, predict, train_model

LINEAR = {"kind": "linear"}
ADAM = {"name": "adam", "lr": 0.05, "params": {}, "clip_norm": None}
CONSTANT = {"kind": "constant", "warmup_steps": 0, "decay_rate": None}
BATCHES = 5  # 80 training rows in batches of 16


@pytest.fixture(scope="module")
def data():
    """Noisy labels: the validation loss improves for some epochs, then stalls."""
    rng = np.random.default_rng(21)
    x = rng.normal(size=(120, 3)).astype(np.float32)
    rng.random(120)
    y = (x @ np.array([1.5, -1.0, 0.5]) + rng.normal(size=120) > 0).astype(np.float32)
    return x[:80], y[:80], x[80:], y[80:]


def train(data, task="binary_classification", optimizer=ADAM, **kwargs):
    training = {"epochs": 5, "batch_size": 16, "seed": 3, "early_stopping": None, "class_weight": None,
                **kwargs.pop("training", {})}  # fmt: skip
    return train_model(*data, task=task, num_classes=None, architecture=LINEAR, optimizer=optimizer,
                       schedule=CONSTANT, training=training, **kwargs)  # fmt: skip


def newest_checkpoint(folder) -> str | None:
    manifest = folder / CHECKPOINT_NAME
    return json.loads(manifest.read_text())["checkpoints"][0]["file"] if manifest.exists() else None


def saves_seen(data, folder, **kwargs) -> list[str | None]:
    """The newest checkpoint at the first step of each epoch, then after the call."""
    seen = []

    def hook(epoch, step):
        if step == BATCHES:
            seen.append(newest_checkpoint(folder))

    train(data, checkpoint_dir=folder, on_step=hook, **kwargs)
    return [*seen, newest_checkpoint(folder)]


def name(epoch: int) -> str:
    return f"checkpoint-{epoch:06d}-00000000.npz"


def test_a_checkpoint_is_written_after_every_epoch_by_default(data, tmp_path):
    assert saves_seen(data, tmp_path) == [None, name(1), name(2), name(3), name(4), name(5)]


def test_checkpoint_every_2_writes_even_epochs_and_the_last(data, tmp_path):
    seen = saves_seen(data, tmp_path, training={"checkpoint_every": 2})
    assert seen == [None, None, name(2), name(2), name(4), name(5)]


def test_the_last_epoch_of_a_limited_call_is_saved_whatever_checkpoint_every_says(data, tmp_path):
    seen = saves_seen(data, tmp_path, training={"checkpoint_every": 2}, max_epochs_this_call=3)
    assert seen == [None, None, name(2), name(3)]
    seen = saves_seen(data, tmp_path, training={"checkpoint_every": 2}, max_epochs_this_call=1)
    assert seen == [name(3), name(4)]


def test_a_finished_checkpoint_trains_nothing_more(data, tmp_path):
    whole = train(data, checkpoint_dir=tmp_path, training={"checkpoint_every": 2})
    steps = []
    again = train(data, checkpoint_dir=tmp_path, training={"checkpoint_every": 2}, on_step=lambda e, s: steps.append(e))
    assert steps == [] and again.resumed_at == (5, 0)
    assert (again.epochs_run, again.best_epoch, again.history) == (whole.epochs_run, whole.best_epoch, whole.history)
    np.testing.assert_array_equal(again.params["layer_0"]["w"], whole.params["layer_0"]["w"])


def test_a_signal_in_the_last_step_of_an_epoch_stops_between_epochs_with_a_checkpoint(data, tmp_path):
    def hook(epoch, step):
        if (epoch, step) == (1, BATCHES):
            os.kill(os.getpid(), signal.SIGUSR1)

    with pytest.raises(Preempted, match="stopped by SIGUSR1 in epoch 3 after step 0"):
        train(data, checkpoint_dir=tmp_path, on_step=hook, training={"checkpoint_every": 5})
    assert newest_checkpoint(tmp_path) == name(2)
    resumed = train(data, checkpoint_dir=tmp_path, training={"checkpoint_every": 5})
    assert resumed.resumed_at == (2, 0) and resumed.epochs_run == 5


def test_early_stopping_resumed_from_a_checkpoint_ends_like_an_uninterrupted_run(data, tmp_path):
    early = {"patience": 2, "min_delta": 0.001}
    whole = train(data, training={"epochs": 40, "early_stopping": early})
    assert whole.stopped_early and 1 < whole.best_epoch < whole.epochs_run - 1, "needs a stop after a stall"
    cut = whole.best_epoch + 1  # the checkpoint holds the best params and one bad epoch
    first = train(data, checkpoint_dir=tmp_path, training={"epochs": 40, "early_stopping": early},
                  max_epochs_this_call=cut)  # fmt: skip
    assert (first.epochs_run, first.stopped_early, first.best_epoch) == (cut, False, whole.best_epoch)
    rest = train(data, checkpoint_dir=tmp_path, training={"epochs": 40, "early_stopping": early})
    assert rest.resumed_at == (cut, 0)
    assert (rest.best_epoch, rest.epochs_run, rest.stopped_early) == (whole.best_epoch, whole.epochs_run, True)
    assert [h["val_loss"] for h in rest.history] == [h["val_loss"] for h in whole.history]
    np.testing.assert_array_equal(rest.params["layer_0"]["w"], whole.params["layer_0"]["w"])


def test_the_history_is_the_same_with_a_checkpoint_folder_as_without(data, tmp_path):
    whole = train(data)
    pieces = train(data, checkpoint_dir=tmp_path, steps_per_call=2)
    for a, b in zip(whole.history, pieces.history, strict=True):
        assert a["epoch"] == b["epoch"]
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-5)
        assert b["val_loss"] == pytest.approx(a["val_loss"], rel=1e-5)


def test_regression_losses_are_recorded_in_the_targets_units(data):
    x, _, xv, _ = data
    y, yv = (x[:, 0] * 10 + 50).astype(np.float32), (xv[:, 0] * 10 + 50).astype(np.float32)
    result = train((x, y, xv, yv), task="regression", training={"epochs": 2})
    predicted = predict(result.params, LINEAR, "regression", xv)
    mse = float(np.mean((predicted.astype(np.float64) - yv) ** 2))
    assert result.history[-1]["val_loss"] == pytest.approx(mse, rel=1e-4)
    assert result.history[-1]["train_loss"] > 1.0, "a scaled (unit-variance) loss would be below 1"


def test_epoch_seconds_fit_in_the_call_and_give_the_rows_per_second(data):
    started = time.perf_counter()
    result = train(data, training={"epochs": 3})
    elapsed = time.perf_counter() - started
    seconds = [h["seconds"] for h in result.history]
    assert all(s > 0 for s in seconds) and sum(seconds) <= elapsed
    assert result.rows_per_second == pytest.approx(80 * 3 / sum(seconds))


def test_a_non_finite_validation_loss_after_a_finite_training_loss_is_divergence(data):
    """One batch an epoch: the training loss is the start params' (finite), the update then overflows."""
    x, y, xv, yv = data
    with pytest.raises(TrainError, match=r"training diverged in epoch 1 \(loss [0-9.e+]+\); lower optimizer.lr"):
        train((x * 1e3, y, xv * 1e3, yv), optimizer={**ADAM, "name": "sgd", "lr": 1e36},
              training={"epochs": 2, "batch_size": 80})  # fmt: skip


def test_divergence_without_validation_rows_is_still_an_error(data):
    x, y, _, _ = data
    with pytest.raises(TrainError, match=r"training diverged in epoch 1 \(loss (nan|inf)\)"):
        train((x, y, x[:0], y[:0]), optimizer={**ADAM, "lr": 1e38}, training={"epochs": 2})


def test_a_call_that_runs_no_epoch_returns_the_starting_params(data, tmp_path):
    early = {"patience": 2, "min_delta": 0.0}
    none = train(data, checkpoint_dir=tmp_path, training={"early_stopping": early}, max_epochs_this_call=0)
    untrained = train(data, optimizer={**ADAM, "name": "sgd", "lr": 0.0}, training={"epochs": 1})
    assert (none.epochs_run, none.history, none.best_epoch, none.stopped_early) == (0, [], 0, False)
    assert isinstance(none.params, dict)
    np.testing.assert_array_equal(none.params["layer_0"]["w"], untrained.params["layer_0"]["w"])


def test_a_signal_inside_an_epoch_resumes_at_that_step_to_the_uninterrupted_result(data, tmp_path):
    uninterrupted = train(data, checkpoint_dir=tmp_path / "whole", steps_per_call=1)

    def hook(epoch, step):
        if (epoch, step) == (1, 2):
            os.kill(os.getpid(), signal.SIGUSR1)

    with pytest.raises(Preempted, match="stopped by SIGUSR1 in epoch 2 after step 2"):
        train(data, checkpoint_dir=tmp_path / "cut", steps_per_call=1, on_step=hook)
    assert newest_checkpoint(tmp_path / "cut") == "checkpoint-000001-00000002.npz"
    steps = []
    resumed = train(data, checkpoint_dir=tmp_path / "cut", steps_per_call=1, on_step=lambda e, s: steps.append((e, s)))
    assert resumed.resumed_at == (1, 2) and steps[0] == (1, 3)
    assert resumed.history == [{**h, "seconds": r["seconds"]} for h, r in zip(uninterrupted.history, resumed.history)]
    np.testing.assert_array_equal(resumed.params["layer_0"]["w"], uninterrupted.params["layer_0"]["w"])
