"""Shadow comparison: agreement per task, row minimum, metric drops with and without labels."""

from __future__ import annotations

import numpy as np
import pytest

from loopc.runtime.gate.shadow import ShadowError, agreement_mask, compare_shadow

SHADOW = {"enabled": True, "min_rows": 100, "min_agreement": 0.9, "max_metric_drop": {}}


def test_binary_agreement_at_half():
    champ = np.array([0.1, 0.49, 0.5, 0.9])
    chall = np.array([0.4, 0.51, 0.7, 0.2])
    assert agreement_mask("binary_classification", champ, chall).tolist() == [True, False, True, False]


def test_multiclass_and_regression_agreement():
    champ = np.array([[0.7, 0.2, 0.1], [0.1, 0.5, 0.4]])
    chall = np.array([[0.5, 0.4, 0.1], [0.1, 0.4, 0.5]])
    assert agreement_mask("multiclass_classification", champ, chall).tolist() == [True, False]
    got = agreement_mask("regression", np.array([100.0, 100.0, 0.0, -5.0]), np.array([109.0, 112.0, 1e-9, 5.0]))
    assert got.tolist() == [True, False, True, False]


def test_passes_and_fails_on_rows_and_agreement():
    rng = np.random.default_rng(0)
    champ = rng.uniform(size=500)
    near = np.clip(champ + rng.normal(0, 0.02, size=500), 0, 1)
    result = compare_shadow("binary_classification", champ, near, None, SHADOW)
    assert result.passed and result.rows == 500 and result.agreement > 0.95
    flipped = compare_shadow("binary_classification", champ, 1 - champ, None, SHADOW)
    assert not flipped.passed and "agreement 0.0000 < min_agreement 0.9" in flipped.summary
    few = compare_shadow("binary_classification", champ[:50], near[:50], None, SHADOW)
    assert not few.passed and "50 rows < min_rows 100" in few.summary


def test_metric_drop_with_labels():
    rng = np.random.default_rng(1)
    y = rng.normal(10, 3, size=400)
    champ = y + rng.normal(0, 0.5, size=400)
    worse = y + rng.normal(0, 1.0, size=400)
    shadow = {**SHADOW, "min_agreement": 0.5, "max_metric_drop": {"r2": 0.01}}
    result = compare_shadow("regression", champ, worse, y, shadow)
    expected = result.champion_metrics["r2"] - result.challenger_metrics["r2"]
    assert result.drops["r2"] == pytest.approx(expected) and expected > 0.01
    assert not result.passed and "r2 drops by" in result.summary
    assert compare_shadow("regression", champ, champ, y, shadow).passed
    unlabelled = compare_shadow("regression", champ, worse, None, shadow)
    assert unlabelled.passed and "metric drops not checked" in unlabelled.summary


def test_minimize_metric_drop_direction():
    y = np.array([0, 1] * 100, dtype=float)
    good = np.where(y == 1, 0.8, 0.2)
    bad = np.where(y == 1, 0.6, 0.4)
    shadow = {**SHADOW, "max_metric_drop": {"log_loss": 0.1}}
    result = compare_shadow("binary_classification", good, bad, y, shadow)
    assert result.drops["log_loss"] > 0.1 and not result.passed
    reverse = compare_shadow("binary_classification", bad, good, y, shadow)
    assert reverse.drops["log_loss"] < 0 and reverse.passed


def test_mismatched_rows_are_an_error():
    with pytest.raises(ShadowError, match="same rows"):
        compare_shadow("regression", np.zeros(3), np.zeros(4), None, SHADOW)
    with pytest.raises(ShadowError, match="unknown task"):
        compare_shadow("ranking", np.zeros(3), np.zeros(3), None, SHADOW)


def test_regression_tolerance_comes_from_the_spec():
    champ, chall = np.full(200, 100.0), np.full(200, 115.0)  # 15 apart: 13% of the larger magnitude
    assert compare_shadow("regression", champ, chall, None, SHADOW).agreement == 0.0  # default 10%
    loose = compare_shadow("regression", champ, chall, None, {**SHADOW, "regression_tolerance": 0.2})
    assert loose.agreement == 1.0 and loose.passed
    strict = compare_shadow("regression", champ, np.full(200, 101.0), None, {**SHADOW, "regression_tolerance": 0.005})
    assert strict.agreement == 0.0
