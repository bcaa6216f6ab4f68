"""Metric values against hand-computed cases and scipy, directions, slices and degenerate inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import mannwhitneyu, rankdata

from loopc.runtime.evaluate.evaluation import (
    METRICS,
    EvaluateError,
    evaluate_predictions,
    metric_direction,
    slice_metrics,
    task_metrics,
    undefined_metrics,
)

Y = np.array([0, 0, 1, 1, 1, 0])
P = np.array([0.1, 0.6, 0.8, 0.4, 0.9, 0.2])


def test_binary_metrics_match_hand_computed_values():
    m = evaluate_predictions("binary_classification", Y, P)
    # positives 0.8, 0.4, 0.9 vs negatives 0.1, 0.6, 0.2: 8 of 9 pairs ordered correctly
    assert m["auc"] == pytest.approx(8 / 9)
    # threshold 0.5: predicted 1 for 0.6, 0.8, 0.9 -> tp 2, fp 1, fn 1, tn 2
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    expected_log_loss = -np.mean([math.log(0.9), math.log(0.4), math.log(0.8), math.log(0.4), math.log(0.9),
                                  math.log(0.8)])
    assert m["log_loss"] == pytest.approx(expected_log_loss)
    assert m["brier"] == pytest.approx(np.mean((P - Y) ** 2))
    # one row per occupied bin: ECE = mean |y - p|
    assert m["calibration_error"] == pytest.approx(np.mean(np.abs(Y - P)))


def test_auc_with_ties_equals_the_mann_whitney_statistic():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    p = np.round(rng.random(200) * 0.3 + 0.5 * y, 1)  # coarse scores: many ties
    u = mannwhitneyu(p[y == 1], p[y == 0]).statistic
    expected = u / ((y == 1).sum() * (y == 0).sum())
    assert evaluate_predictions("binary_classification", y, p)["auc"] == pytest.approx(expected)


def test_calibration_error_bins_pool_rows():
    y = np.array([1, 0, 1, 1])
    p = np.array([0.72, 0.78, 0.31, 0.35])  # bins [0.7, 0.8) and [0.3, 0.4)
    expected = 0.5 * abs(0.5 - 0.75) + 0.5 * abs(1.0 - 0.33)
    assert evaluate_predictions("binary_classification", y, p)["calibration_error"] == pytest.approx(expected)


def test_multiclass_metrics_match_hand_computed_values():
    y = np.array([0, 1, 2, 2])
    p = np.array([[0.7, 0.2, 0.1], [0.3, 0.4, 0.3], [0.1, 0.6, 0.3], [0.2, 0.2, 0.6]])
    m = evaluate_predictions("multiclass_classification", y, p, num_classes=3)
    assert m["accuracy"] == pytest.approx(0.75)
    assert m["log_loss"] == pytest.approx(-np.mean(np.log([0.7, 0.4, 0.3, 0.6])))
    # class 0: f1 1; class 1: tp 1 fp 1 fn 0 -> 2/3; class 2: tp 1 fp 0 fn 1 -> 2/3
    assert m["macro_f1"] == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)


def test_regression_metrics_match_hand_computed_values():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    p = np.array([1.5, 2.0, 2.0, 4.0])
    m = evaluate_predictions("regression", y, p)
    assert m["rmse"] == pytest.approx(math.sqrt((0.25 + 1.0) / 4))
    assert m["mae"] == pytest.approx(1.5 / 4)
    assert m["r2"] == pytest.approx(1 - 1.25 / 5.0)


def test_degenerate_inputs_give_none_with_a_reason_not_nan():
    one_class = evaluate_predictions("binary_classification", [1, 1, 1], [0.2, 0.7, 0.9])
    assert one_class["auc"] is None and one_class["accuracy"] == pytest.approx(2 / 3)
    assert "one class" in undefined_metrics("binary_classification", [1, 1, 1], [0.2, 0.7, 0.9])["auc"]
    negatives = evaluate_predictions("binary_classification", [0, 0], [0.2, 0.1])
    assert negatives["recall"] is None and negatives["precision"] == 0.0
    constant = evaluate_predictions("regression", [2.0, 2.0], [1.0, 3.0])
    assert constant["r2"] is None and constant["rmse"] == pytest.approx(1.0)
    empty = evaluate_predictions("binary_classification", [], [])
    assert set(empty) == set(task_metrics("binary_classification")) and all(v is None for v in empty.values())
    assert undefined_metrics("regression", [], [])["rmse"] == "no rows to evaluate"
    for metrics in (one_class, negatives, constant):
        assert not any(isinstance(v, float) and math.isnan(v) for v in metrics.values())


def test_directions_and_unknown_metrics():
    assert metric_direction("auc") == "maximize" and metric_direction("rmse") == "minimize"
    assert all(direction in ("maximize", "minimize") for _, direction in METRICS.values())
    with pytest.raises(EvaluateError, match="unknown metric 'aucc'.*auc"):
        metric_direction("aucc")


def test_bad_inputs_are_evaluate_errors():
    with pytest.raises(EvaluateError, match="same rows"):
        evaluate_predictions("binary_classification", [0, 1], [0.5])
    with pytest.raises(EvaluateError, match="0 or 1"):
        evaluate_predictions("binary_classification", [0, 2], [0.5, 0.5])
    with pytest.raises(EvaluateError, match="NaN"):
        evaluate_predictions("regression", [0.0, 1.0], [np.nan, 1.0])


def test_slice_metrics_per_group_flag_small_groups():
    groups = np.array(["a", "a", "b", "b", "b", "c"])
    slices = slice_metrics("binary_classification", Y, P, groups, min_rows=2)
    assert list(slices) == ["a", "b", "c"]
    assert slices["a"]["rows"] == 2 and not slices["a"]["too_small"] and slices["c"]["too_small"]
    assert slices["b"]["accuracy"] == pytest.approx(2 / 3)  # rows (1,0.8) (1,0.4) (1,0.9)
    assert slices["b"]["auc"] is None  # only positives in group b
    assert slices["a"]["accuracy"] == pytest.approx(0.5)


@settings(deadline=None, max_examples=200)
@given(st.lists(st.tuples(st.integers(0, 1), st.sampled_from([0.0, -0.0, 0.1, 0.25, 0.5, 0.9, 1.0])), min_size=1,
                max_size=60), st.booleans())
def test_auc_equals_the_rank_sum_formula_for_any_ties(rows, fine):
    """The counts of each distinct score give the average-rank (Mann-Whitney) AUC exactly, ties and -0.0 included."""
    y = np.array([label for label, _ in rows], dtype=np.float64)
    p = np.array([score + (i * 1e-3 if fine else 0.0) for i, (_, score) in enumerate(rows)])
    positives, negatives = int(y.sum()), int(len(y) - y.sum())
    got = evaluate_predictions("binary_classification", y, p)["auc"]
    if not positives or not negatives:
        assert got is None
        return
    ranks = rankdata(p)
    assert got == pytest.approx((ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives),
                                rel=1e-12)
