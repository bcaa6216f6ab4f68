"""Metrics and fairness gaps at their edges: thresholds exactly at 0.5, clipped probabilities, bin edges, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import xlogy

from loopc.runtime.evaluate.evaluation import (
    EPS,
    EvaluateError,
    calibration_error,
    check_predictions,
    evaluate_predictions,
    slice_metrics,
    undefined_metrics,
)
from loopc.runtime.evaluate.fairness import fairness_gaps
from loopc.runtime.evaluate.metrics import metric_direction, task_metrics

BIN, MULTI, REG = "binary_classification", "multiclass_classification", "regression"


def test_a_probability_of_exactly_one_half_is_a_positive_prediction():
    m = evaluate_predictions(BIN, [1, 0], [0.5, 0.25])
    assert (m["accuracy"], m["precision"], m["recall"], m["f1"]) == (1.0, 1.0, 1.0, 1.0)
    gaps = fairness_gaps([1, 0], [0.5, 0.25], ["a", "b"])
    assert gaps["groups"]["a"]["positive_rate"] == 1.0 and gaps["demographic_parity_difference"] == 1.0
    assert fairness_gaps([1], [0.75], ["a"], threshold=0.75)["groups"]["a"]["true_positive_rate"] == 1.0


def test_no_true_positives_give_f1_zero_not_an_error():
    m = evaluate_predictions(BIN, [1, 0], [0.25, 0.75])
    assert (m["precision"], m["recall"], m["f1"]) == (0.0, 0.0, 0.0)


def test_confidently_wrong_probabilities_are_clipped_to_a_finite_log_loss():
    expected = -math.log(EPS)
    assert evaluate_predictions(BIN, [1], [0.0])["log_loss"] == pytest.approx(expected)
    assert evaluate_predictions(BIN, [0], [1.0])["log_loss"] == pytest.approx(-math.log(1 - (1 - EPS)), rel=1e-3)
    assert evaluate_predictions(MULTI, [0], [[0.0, 1.0]])["log_loss"] == pytest.approx(expected)


def test_multiclass_rows_are_renormalized_and_macro_f1_counts_every_true_positive():
    y = [0, 0, 1, 1, 2]
    p = [[2, 0, 0], [4, 2, 2], [0, 3, 1], [0, 3, 1], [1, 3, 0]]  # unnormalized rows
    m = evaluate_predictions(MULTI, y, p)
    probs = np.array(p, dtype=float) / np.array(p, dtype=float).sum(axis=1, keepdims=True)
    assert m["log_loss"] == pytest.approx(-np.mean(np.log(np.maximum(probs[np.arange(5), y], EPS))))
    # class 0: tp 2, f1 = 4/4; class 1: tp 2, predicted 3, true 2 -> 4/5; class 2: tp 0 -> 0
    assert m["macro_f1"] == pytest.approx((1.0 + 0.8 + 0.0) / 3)
    assert m["accuracy"] == pytest.approx(4 / 5)


def test_r2_with_a_small_but_nonzero_target_variance():
    y, p = np.array([0.0, 0.5]), np.array([0.125, 0.25])
    total = float(np.sum((y - y.mean()) ** 2))  # 0.125 < 1
    assert evaluate_predictions(REG, y, p)["r2"] == pytest.approx(1 - float(np.sum((y - p) ** 2)) / total)


def test_calibration_error_puts_p_equal_one_in_the_last_bin_with_its_neighbours():
    # bin [0.9, 1.0] holds both rows: |(0 + 1) - (1.0 + 0.95)| / 2
    assert calibration_error(np.array([0.0, 1.0]), np.array([1.0, 0.95])) == pytest.approx(0.475)
    # 0.85 is in [0.8, 0.9) and 0.95 in [0.9, 1.0): |1 - 0.85| + |0 - 0.95|, not pooled
    assert calibration_error(np.array([1.0, 0.0]), np.array([0.85, 0.95])) == pytest.approx((0.15 + 0.95) / 2)


def test_check_predictions_returns_flat_float64_arrays():
    y, p = check_predictions(BIN, np.array([[True], [False]]), np.array([[0.25], [0.75]]))
    assert y.dtype == np.float64 and p.dtype == np.float64 and y.shape == (2,) and p.shape == (2,)
    assert check_predictions(REG, [1], [2])[1].dtype == np.float64  # integer predictions too
    assert check_predictions(MULTI, [0, 0], [0.25, 0.75])[1].shape == (2, 1)
    assert check_predictions(MULTI, [], [])[1].shape == (0, 0)
    assert check_predictions(MULTI, [0], np.full((1, 2, 1), 0.5))[1].shape == (1, 2)


@pytest.mark.parametrize(
    ("y", "p", "num_classes"),
    [
        ([0, 1], [[0.5, 0.5], [0.5, 0.5]], 3),  # predictions narrower than num_classes
        ([-1, 1], [[0.5, 0.5], [0.5, 0.5]], 2),  # a negative id
        ([0, 2], [[0.5, 0.5], [0.5, 0.5]], 2),  # an id exactly k
        ([0, 2], [[0.5, 0.5], [0.5, 0.5]], None),  # k taken from the predictions
        ([0, 0.5], [[0.5, 0.5], [0.5, 0.5]], 2),  # not an integer id
    ],
)
def test_each_multiclass_label_condition_alone_is_an_error(y, p, num_classes):
    k = num_classes or 2
    message = f"multiclass labels must be ids 0..{k - 1} and predictions [n, {k}]"
    with pytest.raises(EvaluateError) as error:
        evaluate_predictions(MULTI, y, p, num_classes=num_classes)
    assert str(error.value) == message
    with pytest.raises(EvaluateError):
        undefined_metrics(MULTI, y, p, num_classes=num_classes)
    with pytest.raises(EvaluateError):
        slice_metrics(MULTI, y, p, ["a", "b"], 1, num_classes=num_classes)


@pytest.mark.parametrize(
    ("task", "y", "p", "message"),
    [
        ("ranking", [1], [1], f"unknown task 'ranking'; use {BIN}, {MULTI} or {REG}"),
        (BIN, [1, 0], [0.5], "2 labels but 1 predictions; they must be the same rows"),
        (BIN, [1], [math.nan], "labels or predictions contain NaN or infinity"),
        (REG, [math.inf], [1.0], "labels or predictions contain NaN or infinity"),
        (BIN, [2], [0.5], "binary_classification labels must be 0 or 1"),
    ],
)
def test_bad_inputs_are_named(task, y, p, message):
    with pytest.raises(EvaluateError) as error:
        check_predictions(task, y, p)
    assert str(error.value) == message


def test_every_undefined_metric_has_its_reason():
    assert undefined_metrics(BIN, [0], [0.25]) == {
        "auc": "only one class (0) present in the labels",
        "recall": "no positive labels, so recall is undefined",
        "f1": "no positive labels, so recall is undefined",
    }
    assert undefined_metrics(BIN, [1, 1], [0.25, 0.75]) == {"auc": "only one class (1) present in the labels"}
    assert undefined_metrics(REG, [2.0, 2.0], [1.0, 3.0]) == {"r2": "the target is constant, so R2 is undefined"}
    assert undefined_metrics(MULTI, [], np.zeros((0, 3))) == {n: "no rows to evaluate" for n in task_metrics(MULTI)}
    assert undefined_metrics(BIN, [0, 1], [0.25, 0.75]) == {}


def test_group_values_must_match_the_rows():
    for compute in (lambda g: slice_metrics(BIN, [0, 1], [0.5, 0.5], g, 1), lambda g: fairness_gaps([0, 1], [0.5, 0.5], g)):
        with pytest.raises(EvaluateError) as error:
            compute(["a"])
        assert str(error.value) == "1 group values but 2 rows; give one group value per row"
        assert compute(np.array([["a"], ["b"]])) is not None  # a column vector of groups is one value per row


def test_fairness_reports_its_threshold_and_why_equal_opportunity_is_undefined():
    gaps = fairness_gaps([0, 0], [0.9, 0.1], ["a", "b"], threshold=0.25)
    assert gaps["threshold"] == 0.25
    assert gaps["equal_opportunity_note"] == "no group has positive labels, so true-positive rates are undefined"
    assert "equal_opportunity_note" not in fairness_gaps([1, 0], [0.9, 0.1], ["a", "b"])
    nothing = fairness_gaps([], [], [])
    assert (nothing["demographic_parity_difference"], nothing["equal_opportunity_difference"]) == (0.0, None)


def test_metric_table_per_task_and_unknown_metric_message():
    assert task_metrics(BIN) == ["auc", "log_loss", "accuracy", "precision", "recall", "f1", "calibration_error",
                                 "brier"]  # fmt: skip
    assert task_metrics(MULTI) == ["log_loss", "accuracy", "macro_f1"]
    assert task_metrics(REG) == ["rmse", "mae", "r2"]
    with pytest.raises(EvaluateError) as error:
        metric_direction("lift")
    assert str(error.value).startswith("unknown metric 'lift'; known metrics: accuracy, auc, brier, calibration_error, ")


def test_binary_log_loss_equals_an_independent_formula():
    rng = np.random.default_rng(5)
    y, p = rng.integers(0, 2, 300).astype(float), rng.uniform(0.01, 0.99, 300)
    expected = -np.mean(xlogy(y, p) + xlogy(1 - y, 1 - p))
    assert evaluate_predictions(BIN, y, p)["log_loss"] == pytest.approx(expected)
