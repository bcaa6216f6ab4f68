"""The trainer learns, is deterministic, stops early, honours precision and predicts the right shapes."""

from __future__ import annotations

import numpy as np
import pytest

from loopc.runtime.evaluate.evaluation import evaluate_predictions
from loopc.runtime.train.trainer import TrainError, predict, train_model

LINEAR = {"kind": "linear"}
MLP = {"kind": "mlp", "hidden": [8], "activation": "tanh", "dropout": 0.1}
ADAM = {"name": "adam", "lr": 0.05, "params": {}, "clip_norm": None}
CONSTANT = {"kind": "constant", "warmup_steps": 0, "decay_rate": None}


def _training(**overrides) -> dict:
    base = {"epochs": 8, "batch_size": 64, "seed": 3, "early_stopping": None, "checkpoint_every": 1,
            "class_weight": None}
    return {**base, **overrides}


def _binary_data(rows: int = 600, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 5)).astype(np.float32)
    y = (x @ np.array([2.0, -1.5, 1.0, 0.0, 0.5]) + 0.2 * rng.normal(size=rows) > 0).astype(np.float32)
    cut = rows * 3 // 4
    return x[:cut], y[:cut], x[cut:], y[cut:]


def _train(data, task="binary_classification", **kwargs):
    options = {"num_classes": None, "architecture": LINEAR, "optimizer": ADAM, "schedule": CONSTANT,
               "training": _training()}
    options.update(kwargs)
    return train_model(*data, task=task, **options)


def test_logistic_regression_learns_separable_data():
    data = _binary_data()
    result = _train(data)
    losses = [h["train_loss"] for h in result.history]
    assert losses[-1] < losses[0] * 0.6
    proba = predict(result.params, LINEAR, "binary_classification", data[2])
    assert proba.shape == (len(data[3]),)
    assert evaluate_predictions("binary_classification", data[3], proba)["accuracy"] > 0.9
    assert result.epochs_run == 8 and not result.stopped_early and result.rows_per_second > 0


def test_same_inputs_and_seed_give_bit_identical_params():
    data = _binary_data(rows=300)
    first = _train(data, architecture=MLP)
    second = _train(data, architecture=MLP)
    for name in first.params:
        for leaf in first.params[name]:
            assert np.array_equal(first.params[name][leaf], second.params[name][leaf])
    other_seed = _train(data, architecture=MLP, training=_training(seed=4))
    assert not np.array_equal(first.params["layer_0"]["w"], other_seed.params["layer_0"]["w"])


def test_linear_regression_reaches_high_r2_on_a_linear_target():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(500, 3)).astype(np.float32)
    y = (50 + 20 * x[:, 0] - 10 * x[:, 1] + rng.normal(size=500)).astype(np.float32)
    training = _training(epochs=15, batch_size=50)  # 400 rows: whole batches, the unmasked path
    result = _train((x[:400], y[:400], x[400:], y[400:]), task="regression", training=training)
    values = predict(result.params, LINEAR, "regression", x[400:])
    assert values.shape == (100,)
    assert evaluate_predictions("regression", y[400:], values)["r2"] > 0.95


def test_softmax_regression_predicts_class_probabilities():
    rng = np.random.default_rng(2)
    centers = np.array([[3, 0], [0, 3], [-3, -3]], np.float32)
    y = rng.integers(0, 3, size=450)
    x = (centers[y] + rng.normal(size=(450, 2))).astype(np.float32)
    result = _train((x[:300], y[:300], x[300:], y[300:]), task="multiclass_classification", num_classes=3)
    proba = predict(result.params, LINEAR, "multiclass_classification", x[300:])
    assert proba.shape == (150, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert evaluate_predictions("multiclass_classification", y[300:], proba, num_classes=3)["accuracy"] > 0.9


def test_early_stopping_stops_and_returns_the_best_epoch_params():
    x_tr, y_tr, x_va, _ = _binary_data(rows=400)
    y_va = 1 - (x_va[:, 0] > 0)  # validation labels that disagree with training: val_loss soon rises
    training = _training(epochs=40, early_stopping={"metric": "val_loss", "patience": 2, "min_delta": 0.0})
    result = _train((x_tr, y_tr, x_va, y_va.astype(np.float32)), training=training)
    assert result.stopped_early and result.epochs_run < 40
    val = [h["val_loss"] for h in result.history]
    assert result.best_epoch == int(np.argmin(val)) + 1
    assert result.epochs_run == result.best_epoch + 2
    best_only = _train((x_tr, y_tr, x_va, y_va.astype(np.float32)), training=_training(epochs=result.best_epoch))
    np.testing.assert_array_equal(result.params["layer_0"]["w"], best_only.params["layer_0"]["w"])


@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
def test_low_precision_computes_but_keeps_float32_params(precision):
    data = _binary_data(rows=300)
    result = _train(data, architecture=MLP, precision=precision, training=_training(epochs=3))
    assert result.params["layer_0"]["w"].dtype == np.float32
    assert np.isfinite(result.history[-1]["val_loss"])
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"] * 1.05


def test_balanced_class_weight_and_ragged_last_batch_train():
    x_tr, y_tr, x_va, y_va = _binary_data(rows=301)  # 225 rows: batches of 64 leave a ragged 33
    result = _train((x_tr, y_tr, x_va, y_va), training=_training(epochs=2, class_weight="balanced"))
    assert result.epochs_run == 2 and np.isfinite(result.history[-1]["train_loss"])


def test_sample_weight_zero_rows_do_not_train():
    x_tr, y_tr, x_va, y_va = _binary_data(rows=300)
    plain = _train((x_tr, y_tr, x_va, y_va), training=_training(epochs=3))
    negatives_only = _train((x_tr, y_tr, x_va, y_va), sample_weight=(y_tr == 0).astype(np.float32),
                            training=_training(epochs=3))
    mean_plain = predict(plain.params, LINEAR, "binary_classification", x_va).mean()
    mean_weighted = predict(negatives_only.params, LINEAR, "binary_classification", x_va).mean()
    assert mean_weighted < mean_plain - 0.1


def test_unusable_inputs_raise_train_errors():
    x_tr, y_tr, x_va, y_va = _binary_data(rows=100)
    with pytest.raises(TrainError, match="must be 0 or 1"):
        _train((x_tr, y_tr * 2, x_va, y_va))
    with pytest.raises(TrainError, match="NaN"):
        _train((np.full_like(x_tr, np.nan), y_tr, x_va, y_va))
    with pytest.raises(TrainError, match="precision"):
        _train((x_tr, y_tr, x_va, y_va), precision="float8")
    with pytest.raises(TrainError, match="num_classes"):
        _train((x_tr, y_tr, x_va, y_va), task="multiclass_classification")
    with pytest.raises(TrainError, match="validation split is empty"):
        _train((x_tr, y_tr, x_va[:0], y_va[:0]), training=_training(early_stopping={"patience": 1}))


def test_data_over_the_device_budget_streams_from_the_host_with_the_same_result():
    data = _binary_data(rows=400)
    training = _training(epochs=2, batch_size=32)
    resident = _train(data, architecture=MLP, training=training)
    streamed = _train(data, architecture=MLP, training=training, device_data_budget=3000)  # 2 batches a chunk
    assert streamed.streamed and not resident.streamed
    for name in resident.params:
        for leaf in resident.params[name]:
            np.testing.assert_array_equal(streamed.params[name][leaf], resident.params[name][leaf])


def test_a_predictor_fed_uneven_blocks_equals_one_predict_call_and_compiles_one_shape(monkeypatch):
    from loopc.runtime.train.predict import Predictor, _hashable, _predict_fn

    data = _binary_data(rows=200)
    params, x = _train(data, training=_training(epochs=1)).params, data[2]  # 50 rows
    monkeypatch.setattr("loopc.runtime.train.predict.PREDICT_CHUNK", 7)
    whole = predict(params, LINEAR, "binary_classification", x)
    _predict_fn.cache_clear()
    predictor = Predictor(params, LINEAR, "binary_classification")
    for start, stop in ((0, 3), (3, 3), (3, 7), (7, 9), (9, 40), (40, 41), (41, 50)):  # fill, exact, several
        predictor.add(x[start:stop])
    streamed = predictor.result()
    assert streamed.dtype == np.float32 and np.array_equal(streamed, whole)
    assert _predict_fn(_hashable(LINEAR), "binary_classification")._cache_size() == 1  # the last piece padded
    few = Predictor(params, LINEAR, "binary_classification")
    few.add(x[:5])
    assert np.array_equal(few.result(), predict(params, LINEAR, "binary_classification", x[:5]))
    forward = _predict_fn(_hashable(LINEAR), "binary_classification")
    assert np.array_equal(predict(params, LINEAR, "binary_classification", x[:5]), np.asarray(forward(params, x[:5])))
    assert Predictor(params, LINEAR, "binary_classification").result().shape == (0,)


def test_predict_in_chunks_matches_one_pass_and_checks_widths(monkeypatch):
    data = _binary_data(rows=200)
    result = _train(data, training=_training(epochs=1))
    whole = predict(result.params, LINEAR, "binary_classification", data[2])
    monkeypatch.setattr("loopc.runtime.train.predict.PREDICT_CHUNK", 7)  # 50 rows: 7 full chunks and a padded one
    np.testing.assert_allclose(predict(result.params, LINEAR, "binary_classification", data[2]), whole, rtol=1e-6)
    assert predict(result.params, LINEAR, "binary_classification", data[2][:0]).shape == (0,)
    with pytest.raises(TrainError, match="trained on 5 features"):
        predict(result.params, LINEAR, "binary_classification", data[2][:, :3])
