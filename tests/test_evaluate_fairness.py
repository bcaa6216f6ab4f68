"""Fairness gaps on a constructed example with known group rates."""

from __future__ import annotations

import pytest

from loopc.runtime.evaluate.fairness import fairness_gaps


def test_gaps_on_a_constructed_example():
    # group x: 4 rows, 2 predicted positive; positives (rows 0, 1) -> 1 caught: TPR 0.5
    # group y: 4 rows, 1 predicted positive; positives (rows 4, 5, 6) -> 1 caught: TPR 1/3
    y = [1, 1, 0, 0, 1, 1, 1, 0]
    p = [0.9, 0.2, 0.7, 0.1, 0.8, 0.3, 0.4, 0.1]
    groups = ["x", "x", "x", "x", "y", "y", "y", "y"]
    gaps = fairness_gaps(y, p, groups)
    assert gaps["groups"]["x"] == {"rows": 4, "positive_rate": 0.5, "true_positive_rate": 0.5}
    assert gaps["groups"]["y"]["positive_rate"] == pytest.approx(0.25)
    assert gaps["demographic_parity_difference"] == pytest.approx(0.25)
    assert gaps["equal_opportunity_difference"] == pytest.approx(0.5 - 1 / 3)
    lower = fairness_gaps(y, p, groups, threshold=0.35)  # y now catches 0.8 and 0.4
    assert lower["groups"]["y"]["true_positive_rate"] == pytest.approx(2 / 3)


def test_groups_without_positives_and_single_groups_do_not_crash():
    gaps = fairness_gaps([0, 0, 0], [0.9, 0.1, 0.2], ["a", "b", "b"])
    assert gaps["equal_opportunity_difference"] is None and "no group" in gaps["equal_opportunity_note"]
    assert gaps["demographic_parity_difference"] == pytest.approx(1.0)
    single = fairness_gaps([1, 0], [0.9, 0.1], ["a", "a"])
    assert single["demographic_parity_difference"] == 0.0 and single["equal_opportunity_difference"] == 0.0
    assert fairness_gaps([], [], [])["groups"] == {}
