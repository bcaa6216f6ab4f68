"""Drift statistics on the smallest inputs a monitor meets: one-row sides, a category seen once, an empty
current side beside several reference categories. Each is checked against scipy or the hand formula.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from loopc.runtime.monitor.drift import CurrentCounts, categorical_drift
from loopc.runtime.monitor.profile import categorical_sketch, numeric_sketch
from tests.test_spec_boundaries_drift import decile_bins, numeric, psi_by_hand


def categorical(reference: dict[str, int], current: dict[str, int]) -> dict:
    return categorical_drift([categorical_sketch(reference, 0)], [current])[0]


def test_a_current_column_of_one_row_is_binned_as_a_whole_row():
    reference = np.repeat(np.arange(10.0), 10)
    current = np.array([3.0])
    ref, cur = decile_bins(reference, reference), decile_bins(reference, current)
    assert cur.sum() == 1.0
    result = numeric(reference, current)
    assert result["psi"] == pytest.approx(psi_by_hand(ref, cur), rel=1e-12)
    assert result["js"] == pytest.approx(jensenshannon(ref, cur, base=2), rel=1e-12)


def test_a_reference_of_one_row_is_a_proportion_of_one():
    result = categorical({"a": 1}, {"a": 3, "b": 1})
    ref, cur = np.array([1.0, 0, 0]), np.array([3, 0, 1]) / 4  # a, other, unseen
    assert result["psi"] == pytest.approx(psi_by_hand(ref, cur), rel=1e-12)
    assert result["js"] == pytest.approx(jensenshannon(ref, cur, base=2), rel=1e-12)


def test_a_current_side_of_one_row_is_a_proportion_of_one():
    result = categorical({"a": 3, "b": 1}, {"b": 1})
    ref, cur = np.array([3, 1, 0, 0]) / 4, np.array([0, 1.0, 0, 0])  # a, b, other, unseen
    assert result["psi"] == pytest.approx(psi_by_hand(ref, cur), rel=1e-12)
    assert result["js"] == pytest.approx(jensenshannon(ref, cur, base=2), rel=1e-12)


def test_a_category_seen_once_in_all_stays_in_the_chi_square_table():
    result = categorical({"a": 30, "b": 1}, {"a": 10})
    expected = stats.chi2_contingency(np.array([[30, 1], [10, 0]]), correction=False)
    assert result["chi2"] == pytest.approx(expected.statistic) and result["chi2_pvalue"] == pytest.approx(expected.pvalue)
    assert result["chi2"] > 0


def test_an_empty_current_side_beside_several_categories_gives_no_statistics():
    result = categorical({"a": 40, "b": 10}, {})
    assert (result["psi"], result["js"], result["chi2"], result["chi2_pvalue"]) == (None, None, None, None)


@pytest.mark.parametrize("kind", ["normal", "integers", "outside"])
def test_current_counts_over_batches_equal_a_search_of_the_whole_sorted_column(kind):
    """Counts at the points and PSI edges, batch by batch through the cell grid, against the definition: a
    binary search of every current value at once. Integer data puts many values on the points; values
    beyond the reference's min and max fall in its first and last cells."""
    rng = np.random.default_rng(7)
    reference = rng.normal(size=20_000) if kind != "integers" else rng.integers(0, 30, 20_000).astype(float)
    current = {"normal": rng.normal(0.3, 1.2, 9_000), "integers": rng.integers(-2, 35, 9_000).astype(float),
               "outside": np.concatenate([rng.normal(size=3_000) - 50, rng.normal(size=3_000) + 50])}[kind]
    sketch = numeric_sketch(reference, 0)
    counts = CurrentCounts(sketch)
    for part in np.array_split(current, 7):
        counts.add(part)
    ordered = np.sort(current)
    le, lt, le_edges = counts.ecdf()
    assert np.array_equal(le, np.searchsorted(ordered, sketch["points"], side="right"))
    assert np.array_equal(lt, np.searchsorted(ordered, sketch["points"], side="left"))
    assert np.array_equal(le_edges, np.searchsorted(ordered, sketch["psi_edges"], side="right"))
    assert counts.size == len(current)


def test_current_counts_of_an_empty_reference_are_empty():
    counts = CurrentCounts(numeric_sketch(np.zeros(0), 3))
    counts.add(np.arange(5.0))
    assert [len(c) for c in counts.ecdf()] == [0, 0, 0] and counts.size == 5
