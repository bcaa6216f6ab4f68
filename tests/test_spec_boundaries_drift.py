"""Drift statistics against independent computations (scipy, hand formulas), and every configured comparison
at its boundary: a statistic exactly at its limit does not drift; min_drifted, min_rows and cooldown exactly met count.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest
from drift_support import table_report
from scipy import stats
from scipy.spatial.distance import jensenshannon

from loopc.runtime.monitor.drift import EPS, categorical_drift, numeric_drift
from loopc.runtime.monitor.profile import build_profile, categorical_sketch, numeric_sketch
from loopc.runtime.monitor.verdict import cooldown_allows, record_trigger

DRIFT = {"columns": None, "methods": ["psi", "ks", "chi2", "js"], "psi_max": 0.2, "js_max": 0.1, "p_value": 0.01,
         "min_drifted": 1}  # fmt: skip


def decile_bins(reference: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Proportions of ``values`` in the reference deciles' bins (-inf, e1], (e1, e2], ..., (e9, inf)."""
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, 11)[1:-1], method="inverted_cdf"))
    bounds = np.concatenate([[-np.inf], edges, [np.inf]])
    counts = [np.sum((values > lo) & (values <= hi)) for lo, hi in zip(bounds[:-1], bounds[1:])]
    return np.array(counts, dtype=float) / len(values)


def psi_by_hand(ref: np.ndarray, cur: np.ndarray) -> float:
    ref, cur = np.maximum(ref, 1e-4), np.maximum(cur, 1e-4)
    return float(sum((c - r) * math.log(c / r) for r, c in zip(ref, cur)))


def numeric(reference: np.ndarray, current: np.ndarray) -> dict:
    return numeric_drift([numeric_sketch(reference, 0)], [current])[0]


# ------------------------------------------------------------------ numeric statistics


def test_numeric_psi_with_empty_bins_equals_the_hand_formula():
    reference = np.repeat(np.arange(10.0), 10)  # 0..9, ten rows each
    current = np.repeat(np.arange(5.0), 10)  # 0..4: the bins above 4 are empty now
    ref, cur = decile_bins(reference, reference), decile_bins(reference, current)
    # decile edges 0, 1, 3, 4, 6, 7, 8 (0.3 * 100 rounds up to the 31st value): eight bins
    assert list(ref) == pytest.approx([0.1, 0.1, 0.2, 0.1, 0.2, 0.1, 0.1, 0.1])
    assert list(cur) == pytest.approx([0.2, 0.2, 0.4, 0.2, 0, 0, 0, 0])
    expected = (0.1 + 0.1 + 0.2 + 0.1) * math.log(2) + (1e-4 - 0.2) * math.log(1e-4 / 0.2) \
        + 3 * (1e-4 - 0.1) * math.log(1e-4 / 0.1)
    assert psi_by_hand(ref, cur) == pytest.approx(expected)
    result = numeric(reference, current)
    assert result["psi"] == pytest.approx(expected, rel=1e-12)
    assert result["js"] == pytest.approx(jensenshannon(ref, cur, base=2), rel=1e-12)
    assert EPS == 1e-4


def test_numeric_psi_and_js_on_random_data_equal_independent_computations():
    rng = np.random.default_rng(11)
    reference, current = rng.normal(size=5000), rng.normal(0.3, 1.2, size=3000)
    ref, cur = decile_bins(reference, reference), decile_bins(reference, current)
    result = numeric(reference, current)
    assert result["psi"] == pytest.approx(psi_by_hand(ref, cur), rel=1e-9)
    assert result["js"] == pytest.approx(jensenshannon(ref, cur, base=2), rel=1e-9)


def test_ks_on_discrete_data_equals_scipy_exactly_with_no_sketch_error():
    rng = np.random.default_rng(3)
    reference, current = rng.integers(0, 40, 4000).astype(float), rng.integers(3, 45, 2500).astype(float)
    expected = stats.ks_2samp(reference, current, method="asymp")
    result = numeric(reference, current)
    assert result["ks"] == pytest.approx(expected.statistic, abs=1e-12)
    assert result["ks_pvalue"] == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)
    assert result["ks_error"] == 0.0


def test_ks_on_continuous_data_is_within_the_reported_sketch_error_of_scipy():
    rng = np.random.default_rng(4)
    reference, current = rng.lognormal(size=20_000), rng.lognormal(0.05, 1.0, size=7_000)
    exact = stats.ks_2samp(reference, current).statistic
    result = numeric(reference, current)
    assert 0 < result["ks_error"] <= 0.0011
    assert result["ks"] <= exact + 1e-12 and exact <= result["ks"] + result["ks_error"] + 1e-12


def test_a_single_value_column_against_itself_and_against_another_value():
    same = numeric(np.full(50, 5.0), np.full(30, 5.0))
    assert (same["ks"], same["psi"], same["js"]) == (0.0, 0.0, 0.0) and same["ks_pvalue"] == 1.0
    moved = numeric(np.full(50, 5.0), np.full(30, 6.0))
    assert moved["ks"] == 1.0
    assert moved["psi"] == pytest.approx(2 * (1 - 1e-4) * math.log(1e4))  # bins (-inf, 5] and (5, inf)
    assert moved["js"] == pytest.approx(1.0)
    assert moved["ks_pvalue"] == pytest.approx(stats.ks_2samp(np.full(50, 5.0), np.full(30, 6.0),
                                                              method="asymp").pvalue)  # fmt: skip


def test_an_empty_side_gives_no_statistics():
    for reference, current in ((np.arange(10.0), np.array([])), (np.array([]), np.arange(10.0))):
        assert set(numeric(reference, current).values()) == {None}


# ------------------------------------------------------------------ categorical statistics


def test_categorical_psi_js_and_chi_square_equal_independent_computations_with_an_unseen_bucket():
    reference = {"a": 60, "b": 30, "c": 10}
    current = {"a": 20, "b": 20, "d": 10}  # c vanished (empty bin), d is unseen
    (result,) = categorical_drift([categorical_sketch(reference, 0)], [current])
    ref = np.array([60, 30, 10, 0, 0]) / 100  # a, b, c, other, unseen
    cur = np.array([20, 20, 0, 0, 10]) / 50
    assert result["psi"] == pytest.approx(psi_by_hand(ref, cur), rel=1e-12)
    assert result["js"] == pytest.approx(jensenshannon(ref, cur, base=2), rel=1e-12)
    chi2 = stats.chi2_contingency(np.array([[60, 30, 10, 0], [20, 20, 0, 10]]), correction=False)
    assert result["chi2"] == pytest.approx(chi2.statistic) and result["chi2_pvalue"] == pytest.approx(chi2.pvalue)
    assert (result["unseen_rows"], result["unseen_categories"]) == (10, ["d"])


def test_a_capped_reference_counts_unknown_categories_as_its_other_bucket():
    sketch = categorical_sketch({"a": 50, "b": 30, "c": 20}, 0, max_categories=2)
    assert sketch["other"] == 20
    (result,) = categorical_drift([sketch], [{"a": 50, "b": 30, "z": 20}])
    assert result["psi"] == pytest.approx(0.0) and result["chi2"] == pytest.approx(0.0)
    assert result["unseen_rows"] == 20


def test_unseen_categories_are_listed_most_frequent_first_ten_at_most():
    current = {f"u{i:02d}": i + 1 for i in range(12)} | {"a": 5}
    (result,) = categorical_drift([categorical_sketch({"a": 5}, 0)], [current])
    assert result["unseen_categories"] == [f"u{i:02d}" for i in range(11, 1, -1)]
    assert result["unseen_rows"] == sum(range(1, 13))


def test_a_single_category_on_both_sides_has_no_chi_square_evidence():
    (result,) = categorical_drift([categorical_sketch({"a": 40}, 0)], [{"a": 7}])
    assert (result["chi2"], result["chi2_pvalue"], result["psi"]) == (0.0, 1.0, 0.0)
    (empty,) = categorical_drift([categorical_sketch({"a": 40}, 0)], [{}])
    assert (empty["psi"], empty["js"], empty["chi2"], empty["chi2_pvalue"]) == (None, None, None, None)


# ------------------------------------------------------------------ configured comparisons at their boundaries


@pytest.fixture(scope="module")
def shifted():
    rng = np.random.default_rng(8)
    reference = pa.table({"x": rng.normal(size=4000), "c": rng.choice(["a", "b", "c"], 4000, p=[0.5, 0.3, 0.2])})
    live = pa.table({"x": rng.normal(0.4, 1.0, 2000), "c": rng.choice(["a", "b", "c"], 2000, p=[0.3, 0.3, 0.4])})
    profile = build_profile(reference, {"x": {"type": "float"}, "c": {"type": "category"}}, None)
    measured = table_report(profile, live, data_drift=DRIFT).columns
    return profile, live, measured


@pytest.mark.parametrize(("method", "limit"), [("psi", "psi_max"), ("js", "js_max")])
def test_a_statistic_exactly_at_its_maximum_does_not_drift(shifted, method, limit):
    profile, live, measured = shifted
    value = measured["x"][method]
    config = {**DRIFT, "methods": [method], "columns": ["x"]}
    assert not table_report(profile, live, data_drift={**config, limit: value}).breach
    just_below = table_report(profile, live, data_drift={**config, limit: math.nextafter(value, 0)})
    assert just_below.breach and just_below.columns["x"]["reasons"][0].startswith(f"{method} ")


@pytest.mark.parametrize(("method", "column"), [("ks", "x"), ("chi2", "c")])
def test_a_p_value_exactly_at_the_limit_does_not_drift(shifted, method, column):
    profile, live, measured = shifted
    pvalue = measured[column][f"{method}_pvalue"]
    assert pvalue > 0
    config = {**DRIFT, "methods": [method], "columns": [column]}
    assert not table_report(profile, live, data_drift={**config, "p_value": pvalue}).breach
    above = table_report(profile, live, data_drift={**config, "p_value": math.nextafter(pvalue, 1)})
    assert above.columns[column]["reasons"] == [f"{method} p-value {pvalue:.3g} < {math.nextafter(pvalue, 1):.3g}"]


def test_ks_applies_to_numeric_and_chi_square_to_categorical_columns_only(shifted):
    profile, live, _ = shifted
    ks_only = table_report(profile, live, data_drift={**DRIFT, "methods": ["ks"], "p_value": 1.0})
    assert ks_only.drifted == ["x"]
    chi_only = table_report(profile, live, data_drift={**DRIFT, "methods": ["chi2"], "p_value": 1.0})
    assert chi_only.drifted == ["c"]


def test_min_drifted_exactly_met_breaches(shifted):
    profile, live, _ = shifted
    both = {**DRIFT, "psi_max": 0.0, "methods": ["psi"]}
    assert table_report(profile, live, data_drift={**both, "min_drifted": 2}).breach
    not_enough = table_report(profile, live, data_drift={**both, "min_drifted": 3})
    assert not not_enough.breach and not_enough.drifted == ["c", "x"]
    assert not_enough.summary == "no breach: 2000 rows, 2 of 2 columns drifted"


def test_min_rows_exactly_met_is_judged(shifted):
    profile, live, _ = shifted
    assert table_report(profile, live, data_drift=DRIFT, min_rows=2000).status == "breach"
    short = table_report(profile, live, data_drift=DRIFT, min_rows=2001)
    assert short.status == "insufficient_data" and short.summary == (
        "insufficient data: 2000 rows < min_rows 2001; no verdict")  # fmt: skip


def test_a_null_rate_exactly_at_max_null_rate_is_not_a_breach():
    profile = build_profile(pa.table({"x": np.arange(10.0)}), {"x": {"type": "float"}}, None)
    live = pa.table({"x": pa.array([None, 1.0, 2.0, 3.0], pa.float64())})
    assert table_report(profile, live, data_drift=None, max_null_rate=0.25).quality == []
    over = table_report(profile, live, data_drift=None, max_null_rate=0.2499)
    assert over.reasons == ["x null rate 0.25 > max_null_rate 0.2499"]


def test_prediction_drift_exactly_at_max_does_not_drift():
    rng = np.random.default_rng(2)
    table = pa.table({"x": rng.normal(size=1000)})
    profile = build_profile(table, {"x": {"type": "float"}}, rng.uniform(size=1000))
    live = rng.uniform(0.2, 1.0, size=1000)
    measured = table_report(profile, table, live, data_drift=None, prediction_drift={"method": "psi", "max": 1.0})
    value = measured.prediction["statistic"]
    at = table_report(profile, table, live, data_drift=None, prediction_drift={"method": "psi", "max": value})
    assert not at.breach and not at.prediction["drifted"]
    below = table_report(profile, table, live, data_drift=None,
                         prediction_drift={"method": "psi", "max": math.nextafter(value, 0)})  # fmt: skip
    assert below.breach and below.reasons[0].startswith("prediction psi ")


def test_the_cooldown_allows_a_trigger_exactly_when_it_has_elapsed(tmp_path):
    state = tmp_path / "m.json"
    record_trigger(state, 1000.0)
    assert cooldown_allows(state, 60, 1060.0)
    assert not cooldown_allows(state, 60, math.nextafter(1060.0, 0))


def test_two_categories_use_the_uncorrected_chi_square_and_keep_a_bucket_of_one_row():
    (result,) = categorical_drift([categorical_sketch({"a": 30, "b": 1}, 0)], [{"a": 10, "b": 9}])
    expected = stats.chi2_contingency(np.array([[30, 1], [10, 9]]), correction=False)
    assert result["chi2"] == pytest.approx(expected.statistic) and result["chi2_pvalue"] == pytest.approx(expected.pvalue)
    corrected = stats.chi2_contingency(np.array([[30, 1], [10, 9]]), correction=True)
    assert result["chi2"] != pytest.approx(corrected.statistic)


def test_a_capped_reference_with_several_kept_categories_moves_unknown_rows_to_other():
    sketch = categorical_sketch({"a": 40, "b": 30, "c": 20, "d": 10}, 0, max_categories=3)
    (result,) = categorical_drift([sketch], [{"a": 40, "b": 30, "c": 20, "z": 10}])
    assert result["psi"] == pytest.approx(0.0) and result["chi2"] == pytest.approx(0.0)


def test_unseen_categories_with_equal_counts_are_listed_by_name():
    (result,) = categorical_drift([categorical_sketch({"a": 5}, 0)], [{"a": 5, "zz": 2, "yy": 2, "xx": 3}])
    assert result["unseen_categories"] == ["xx", "yy", "zz"]


@pytest.mark.parametrize(("reference", "current"), [([0.0, 2.0], [1.0]), ([0.0, 1.0, 2.0], [1.5, 3.0])])
def test_ks_p_values_of_tiny_samples_equal_scipy(reference, current):
    expected = stats.ks_2samp(reference, current, method="asymp")
    result = numeric(np.array(reference), np.array(current))
    assert result["ks"] == pytest.approx(expected.statistic) and result["ks_pvalue"] == pytest.approx(expected.pvalue)
