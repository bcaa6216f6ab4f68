"""Early stopping, specified: val_loss must fall by MORE than min_delta to count; patience bad epochs stop it.

The real training loop is checked against an independent replay of that rule over its own history
(the history does not depend on min_delta or patience until the loop stops: same seed, same data).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from loopc.runtime.train.trainer import _improved, _Progress, train_model

LINEAR = {"kind": "linear"}
ADAM = {"name": "adam", "lr": 0.05, "params": {}, "clip_norm": None}
CONSTANT = {"kind": "constant", "warmup_steps": 0, "decay_rate": None}
EPOCHS = 24


def progress_at(best: float) -> _Progress:
    return _Progress(params={}, opt_state=None, best_val=best)


@pytest.mark.parametrize(
    ("best", "val_loss", "min_delta", "improved"),
    [
        (1.0, 0.75, 0.25, False),  # fell by exactly min_delta: not more, no improvement
        (1.0, math.nextafter(0.75, 0), 0.25, True),  # fell by a hair more
        (1.0, 0.875, 0.25, False),  # fell, but by less than min_delta (a sign error would count it)
        (1.0, 1.0, 0.0, False),  # no change is no improvement
        (1.0, math.nextafter(1.0, 0), 0.0, True),
        (math.inf, 5.0, 0.25, True),  # the first epoch always improves on nothing
    ],
)
def test_improvement_needs_a_fall_of_more_than_min_delta(best, val_loss, min_delta, improved):
    assert _improved(progress_at(best), val_loss, min_delta) is improved


def replay(val_losses: list[float], patience: int, min_delta: float) -> tuple[int, int, bool]:
    """(best_epoch, epochs_run, stopped_early) by the documented rule, independently of the trainer."""
    best, best_epoch, bad = math.inf, 0, 0
    for epoch, loss in enumerate(val_losses, start=1):
        if loss < best - min_delta:
            best, best_epoch, bad = loss, epoch, 0
        else:
            bad += 1
            if bad >= patience:
                return best_epoch, epoch, True
    return best_epoch, len(val_losses), False


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(21)
    x = rng.normal(size=(400, 4)).astype(np.float32)
    y = (x @ np.array([1.5, -1.0, 0.5, 0.0]) + 0.8 * rng.normal(size=400) > 0).astype(np.float32)
    return x[:300], y[:300], x[300:], y[300:]


def train(data, early: dict | None, epochs: int = EPOCHS):
    training = {"epochs": epochs, "batch_size": 32, "seed": 5, "early_stopping": early, "checkpoint_every": 1,
                "class_weight": None}  # fmt: skip
    return train_model(*data, task="binary_classification", num_classes=None, architecture=LINEAR, optimizer=ADAM,
                       schedule=CONSTANT, training=training)  # fmt: skip


@pytest.fixture(scope="module")
def full_history(data) -> list[float]:
    result = train(data, {"metric": "val_loss", "patience": EPOCHS, "min_delta": 0.0})
    losses = [h["val_loss"] for h in result.history]
    assert len(losses) == EPOCHS
    return losses


def interesting_min_deltas(losses: list[float]) -> list[float]:
    """Non-zero min_deltas that change the outcome: the median and the 80th percentile of the epoch-to-epoch falls."""
    falls = sorted(a - b for a, b in zip(losses, losses[1:]) if a > b)
    assert len(falls) >= 3, "the run must improve over several epochs for this test to mean anything"
    return [falls[len(falls) // 2], falls[int(len(falls) * 0.8)]]


@pytest.mark.parametrize("patience", [1, 2, 3])
@pytest.mark.parametrize("which", [0, 1])
def test_the_loop_stops_where_the_rule_says_for_non_zero_min_delta(data, full_history, patience, which):
    min_delta = interesting_min_deltas(full_history)[which]
    expected = replay(full_history, patience, min_delta)
    assert expected != replay(full_history, patience, 0.0) or expected != replay(full_history, patience, -min_delta)
    result = train(data, {"metric": "val_loss", "patience": patience, "min_delta": min_delta})
    assert (result.best_epoch, result.epochs_run, result.stopped_early) == expected
    assert [h["val_loss"] for h in result.history] == full_history[: expected[1]]


def test_the_best_epochs_params_are_returned_not_the_last(data, full_history):
    min_delta = interesting_min_deltas(full_history)[1]
    best_epoch, epochs_run, _ = replay(full_history, 2, min_delta)
    assert best_epoch < epochs_run, "this case needs a stop after the best epoch"
    stopped_run = train(data, {"metric": "val_loss", "patience": 2, "min_delta": min_delta})
    plain = train(data, None, epochs=best_epoch)
    np.testing.assert_array_equal(stopped_run.params["layer_0"]["w"], plain.params["layer_0"]["w"])
