"""The streamed feature fit, specified exactly: statistics against NumPy on the finite train values,
chains fitted one data-dependent transform per pass, and the boundaries a user configures (log's
offset, a vocabulary's min_frequency and max_categories, quantile buckets with ties, an even median)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from loopc.runtime.data.rows import memory_budget
from loopc.runtime.data.sketch import ExactRanks, Moments, SystematicSample, inverted_cdf
from loopc.runtime.features.fitting import StreamingFit, fit_stream, needs_data
from loopc.runtime.features.transforms import FeatureError


def _fit(values, transforms, cuts=(), rows=None, **options):
    """The fitted steps of one feature over ``values`` (a list or an Arrow array) cut into batches at ``cuts``."""
    table = pa.table({"v": values})
    bounds = sorted({0, table.num_rows, *cuts})
    batches = [table.slice(a, b - a) for a, b in zip(bounds, bounds[1:])]
    fitted = fit_stream(lambda: batches, {"f": {"column": "v", "transforms": transforms}}, None,
                        table.num_rows if rows is None else rows, **options)
    return fitted.features[0]


def _passes(features: dict, table: pa.Table, **options) -> tuple[StreamingFit, list[list[str]]]:
    fit = StreamingFit(features, None, table.num_rows, **options)
    read = []
    while fit.pending:
        read.append(fit.columns)
        fit.update(table.select(fit.columns))
        fit.end_pass()
    return fit, read


NUMBERS = [3.5, float("nan"), -2.0, 7.25, float("inf"), 0.5, -float("inf"), 11.0, 3.5]
FINITE = np.array([3.5, -2.0, 7.25, 0.5, 11.0, 3.5])


@pytest.mark.parametrize(("spec", "needed"), [
    ({"kind": "impute"}, True), ({"kind": "impute", "strategy": "median"}, True),
    ({"kind": "impute", "strategy": "constant", "value": 0}, False),
    ({"kind": "bucketize", "quantiles": 4}, True), ({"kind": "bucketize", "boundaries": [1.0]}, False),
    ({"kind": "onehot"}, True), ({"kind": "onehot", "vocabulary": ["a"]}, False),
    ({"kind": "standardize"}, True), ({"kind": "minmax"}, True), ({"kind": "log"}, True),
    ({"kind": "clip", "min": 0}, False), ({"kind": "hash"}, False),
])
def test_only_transforms_whose_state_comes_from_the_values_need_data(spec, needed):
    assert needs_data(spec) is needed


def test_static_states_come_from_the_spec_as_floats_strings_and_ints():
    fitted = _fit([1.0, 2.0], [{"kind": "clip", "min": 0, "max": 5}, {"kind": "impute", "strategy": "constant",
                                                                      "value": 2}, {"kind": "bucketize",
                                                                                    "boundaries": [1, 2]}])
    assert fitted.steps == ({"kind": "clip", "min": 0, "max": 5}, {"kind": "impute", "value": 2.0},
                            {"kind": "bucketize", "edges": [1.0, 2.0]})
    assert all(type(e) is float for e in fitted.steps[2]["edges"]) and type(fitted.steps[1]["value"]) is float
    assert _fit([1.0], [{"kind": "clip", "max": 5}]).steps == ({"kind": "clip", "min": None, "max": 5},)
    assert _fit([1.0], [{"kind": "onehot", "vocabulary": [1, "b"]}]).steps == ({"kind": "onehot",
                                                                                 "vocabulary": ["1", "b"]},)
    assert _fit([1.0], ["hash"]).steps == ({"kind": "hash", "buckets": 32},)
    assert _fit([1.0], [{"kind": "hash", "buckets": 7.0}]).steps == ({"kind": "hash", "buckets": 7},)


def test_a_constant_impute_without_a_value_is_an_error_naming_the_feature():
    with pytest.raises(FeatureError, match=r"^feature 'f' \(column 'v'\): impute strategy 'constant' needs 'value'$"):
        _fit([1.0], [{"kind": "impute", "strategy": "constant"}])


@pytest.mark.parametrize("cuts", [(), (1, 4), (2, 3, 5, 8)])
def test_standardize_minmax_and_mean_impute_are_numpy_statistics_of_the_finite_values(cuts):
    state = _fit(NUMBERS, ["standardize"], cuts).steps[0]
    assert state == {"kind": "standardize", "mean": pytest.approx(FINITE.mean(), rel=1e-12),
                     "std": pytest.approx(FINITE.std(), rel=1e-12)}
    assert _fit(NUMBERS, ["minmax"], cuts).steps[0] == {"kind": "minmax", "min": -2.0, "span": 13.0}
    assert _fit(NUMBERS, ["impute"], cuts).steps[0]["value"] == pytest.approx(FINITE.mean(), rel=1e-12)


def test_a_constant_column_standardizes_and_scales_by_one_and_a_column_without_values_by_the_identity():
    assert _fit([4.0] * 5, ["standardize"]).steps[0] == {"kind": "standardize", "mean": 4.0, "std": 1.0}
    assert _fit([4.0] * 5, ["minmax"]).steps[0] == {"kind": "minmax", "min": 4.0, "span": 1.0}
    nothing = [float("nan"), float("inf")]
    assert _fit(nothing, ["standardize"]).steps[0] == {"kind": "standardize", "mean": 0.0, "std": 1.0}
    assert _fit(nothing, ["minmax"]).steps[0] == {"kind": "minmax", "min": 0.0, "span": 1.0}
    assert _fit(nothing, ["log"]).steps[0] == {"kind": "log", "offset": 1.0, "floor": 1.0}
    assert _fit([1.0, 1.5], ["minmax"]).steps[0] == {"kind": "minmax", "min": 1.0, "span": 0.5}


def test_log_accepts_values_just_above_minus_offset_and_rejects_the_ones_at_it_counting_them():
    assert _fit([-0.5, 2.0], [{"kind": "log", "offset": 0.75}]).steps[0] == {"kind": "log", "offset": 0.75,
                                                                             "floor": 0.25}
    assert _fit([0.0, 3.0], ["log"]).steps[0] == {"kind": "log", "offset": 1.0, "floor": 1.0}
    message = (r"^feature 'f' \(column 'v'\): log needs value \+ offset > 0, but 3 training value\(s\) are <= -2 "
               r"\(smallest -5\); add a clip transform with a min before log, or raise the offset$")
    with pytest.raises(FeatureError, match=message):
        _fit([-2.0, 1.0, -5.0, float("nan"), -2.0, -1.5], [{"kind": "log", "offset": 2}], cuts=(2, 4))


def test_an_even_count_median_is_the_mean_of_the_two_middle_values_and_an_odd_one_the_middle():
    assert _fit([9.0, 1.0, float("nan"), 4.0, 2.0], [{"kind": "impute", "strategy": "median"}]).steps[0] == {
        "kind": "impute", "value": 3.0}
    assert _fit([9.0, 1.0, 4.0, 2.0, 5.0], [{"kind": "impute", "strategy": "median"}]).steps[0]["value"] == 4.0
    column = np.random.default_rng(7).normal(size=1_000)
    fitted = _fit(column, [{"kind": "impute", "strategy": "median"}], cuts=(333, 700), sample_rows=50,
                  collect_values=64)
    assert fitted.steps[0]["value"] == float(np.median(column))


@pytest.mark.parametrize("quantiles", [2, 3, 4, 7])
def test_quantile_buckets_with_ties_are_numpy_linear_quantiles_without_repeated_edges(quantiles):
    column = np.array([1.0, 1.0, 1.0, 2.0, 2.0, 5.0, 9.0, 9.0, 9.0, 9.0, 30.0])
    want = [float(e) for e in np.unique(np.quantile(column, np.linspace(0, 1, quantiles + 1)[1:-1]))]
    assert _fit(column, [{"kind": "bucketize", "quantiles": quantiles}]).steps[0]["edges"] == want
    big = np.random.default_rng(quantiles).integers(0, 50, 3_000).astype(float) + 0.25
    want = [float(e) for e in np.unique(np.quantile(big, np.linspace(0, 1, quantiles + 1)[1:-1]))]
    streamed = _fit(big, [{"kind": "bucketize", "quantiles": quantiles}], cuts=(1_000, 2_001), sample_rows=40,
                    collect_values=100)
    assert streamed.steps[0]["edges"] == want


def test_an_interpolated_quantile_edge_lies_between_two_order_statistics():
    assert _fit([0.0, 10.0, 20.0, 40.0], [{"kind": "bucketize", "quantiles": 3}]).steps[0]["edges"] == [
        pytest.approx(10.0), pytest.approx(20.0)]
    assert _fit([0.0, 10.0, 40.0], [{"kind": "bucketize", "quantiles": 4}]).steps[0]["edges"] == [5.0, 10.0, 25.0]


@pytest.mark.parametrize("transforms", [[{"kind": "impute", "strategy": "median"}], [{"kind": "bucketize",
                                                                                       "quantiles": 4}]])
def test_quantile_fits_on_a_split_without_values_are_errors(transforms):
    with pytest.raises(FeatureError, match=r"^feature 'f' \(column 'v'\): cannot (impute the median|fit quantile "
                                           r"buckets): the training split has no values$"):
        _fit([float("nan")] * 3, transforms)
    with pytest.raises(FeatureError, match="cannot impute the mean: the training split has no values"):
        _fit([float("nan")] * 3, ["impute"])


def test_a_fitted_vocabulary_keeps_counts_at_min_frequency_ranks_by_count_then_name_and_cuts_at_max_categories():
    values = ["b"] * 3 + ["a"] * 3 + ["c"] * 2 + ["d"] + [None] * 4
    assert _fit(values, ["onehot"]).steps[0]["vocabulary"] == ["a", "b", "c", "d"]
    assert _fit(values, [{"kind": "onehot", "min_frequency": 2}], cuts=(4, 7)).steps[0]["vocabulary"] == [
        "a", "b", "c"]
    assert _fit(values, [{"kind": "onehot", "min_frequency": 3}]).steps[0]["vocabulary"] == ["a", "b"]
    assert _fit(values, [{"kind": "onehot", "max_categories": 3}]).steps[0]["vocabulary"] == ["a", "b", "c"]
    assert _fit(values, [{"kind": "onehot", "max_categories": 1}]).steps[0]["vocabulary"] == ["a"]
    many = [f"k{i:03d}" for i in range(101)]
    assert _fit(many, ["onehot"]).steps[0]["vocabulary"] == many[:100]


def test_text_without_transforms_is_one_hot_and_numbers_as_categories_are_named_and_counted_over_batches():
    assert _fit(["x", "y", "x"], []).steps == ({"kind": "onehot", "vocabulary": ["x", "y"]},)
    fitted = _fit([2.0, 1.0, 2.0, float("nan"), 1.5, 2.0], ["onehot"], cuts=(1, 3))
    assert fitted.steps[0]["vocabulary"] == ["2", "1", "1.5"] and not fitted.text


def test_a_chain_is_fitted_one_data_dependent_transform_per_pass_on_the_values_the_earlier_ones_give():
    column = np.array([1.0, 2.0, 4.0, 8.0, float("nan"), 16.0, -3.0])
    chain = [{"kind": "clip", "min": 0.0}, "log", "standardize", "minmax", {"kind": "bucketize", "quantiles": 3}]
    fit, read = _passes({"f": {"column": "v", "transforms": chain}, "g": {"column": "w", "transforms": ["minmax"]}},
                        pa.table({"v": column, "w": np.arange(7.0)}))
    assert fit.passes == 4 and read == [["v", "w"], ["v"], ["v"], ["v"]]
    logged = np.log1p(np.clip(column, 0.0, None))
    logged = logged[np.isfinite(logged)]
    standard = (logged - logged.mean()) / logged.std()
    scaled = (standard - standard.min()) / (standard.max() - standard.min())
    steps = fit.result().features[0].steps
    assert steps[:2] == ({"kind": "clip", "min": 0.0, "max": None}, {"kind": "log", "offset": 1.0, "floor": 1.0})
    assert steps[2] == {"kind": "standardize", "mean": pytest.approx(logged.mean(), rel=1e-12),
                        "std": pytest.approx(logged.std(), rel=1e-12)}
    assert steps[3] == {"kind": "minmax", "min": pytest.approx(standard.min(), rel=1e-12),
                        "span": pytest.approx(standard.max() - standard.min(), rel=1e-12)}
    np.testing.assert_allclose(steps[4]["edges"], np.quantile(scaled, [1 / 3, 2 / 3]), rtol=1e-12)
    assert fit.result().features[1].steps == ({"kind": "minmax", "min": 0.0, "span": 6.0},)


def test_features_without_data_dependent_transforms_take_one_pass_and_no_column_after_it():
    fit, read = _passes({"f": {"column": "v", "transforms": [{"kind": "clip", "min": 0}]},
                         "g": {"column": "w"}}, pa.table({"v": [1.0, -1.0], "w": [2.0, 3.0]}))
    assert fit.passes == 1 and read == [["v", "w"]] and not fit.pending
    assert fit.columns == []


@pytest.mark.parametrize(("transforms", "indicator"), [
    ([], True), (["standardize"], True), (["impute", "standardize"], False),
    ([{"kind": "bucketize", "quantiles": 2}], False), (["onehot"], False), (["hash"], False),
])
def test_a_missing_indicator_is_added_for_nulls_in_training_unless_imputed_or_terminal(transforms, indicator):
    assert _fit([1.0, float("nan"), 3.0, 4.0], transforms, cuts=(2,)).missing_indicator is indicator
    assert _fit([1.0, 2.0, 3.0, 4.0], transforms, cuts=(2,)).missing_indicator is False


def test_nulls_are_looked_for_in_the_first_pass_whatever_the_later_passes_see():
    table = pa.table({"v": [1.0, 2.0, float("nan")]})
    fit = StreamingFit({"f": {"column": "v", "transforms": ["standardize", "minmax"]}}, None, 3)
    fit.update(table)
    fit.end_pass()
    fit.update(table.slice(0, 2))  # a second pass without the null row: the null is still remembered
    fit.end_pass()
    assert not fit.pending and fit.result().features[0].missing_indicator is True


@pytest.mark.parametrize(("feature", "message"), [
    ({"column": "v", "expr": "v + 1"}, "feature 'f' (column 'v'): give exactly one of 'column' or 'expr'"),
    ({}, "feature 'f' (expr None): give exactly one of 'column' or 'expr'"),
])
def test_a_feature_needs_exactly_one_source(feature, message):
    with pytest.raises(FeatureError) as error:
        StreamingFit({"f": feature}, None, 1)
    assert str(error.value) == message


def test_an_expression_feature_is_fitted_on_the_expression_values():
    table = pa.table({"a": [1.0, 2.0, 3.0], "b": [10.0, 20.0, 60.0]})
    fitted = fit_stream(lambda: [table], {"s": {"expr": "a + b", "transforms": ["minmax"]}}, None, 3)
    assert fitted.features[0].steps == ({"kind": "minmax", "min": 11.0, "span": 52.0},)
    assert (fitted.features[0].column, fitted.features[0].expr) == (None, "a + b")


def test_the_exact_quantile_passes_share_collect_values_between_the_features():
    features = {f"f{i}": {"column": "v", "transforms": [{"kind": "impute", "strategy": "median"}]} for i in range(3)}
    assert [fit.collect for fit in StreamingFit(features, None, 10, collect_values=100).fits] == [33, 33, 33]
    assert StreamingFit(features, None, 10).fits[0].collect == memory_budget() // 64 // 3
    assert StreamingFit({"f": features["f0"]}, None, 10, collect_values=100).fits[0].collect == 100
    assert StreamingFit({}, None, 10, collect_values=100).fits == []


def test_moments_of_batches_with_empty_ones_are_numpy_statistics():
    values = np.array([5.0, -1.0, 2.5, 8.0, 8.0])
    moments = Moments()
    for part in (values[:0], values[:2], values[2:2], values[2:]):
        moments.update(part)
    assert (moments.count, moments.low, moments.high) == (5, -1.0, 8.0)
    assert moments.mean == pytest.approx(values.mean(), rel=1e-15)
    assert moments.std == pytest.approx(values.std(), rel=1e-15)
    single = Moments()
    single.update(np.array([3.0]))
    assert (single.mean, single.std) == (3.0, 0.0)


def test_a_systematic_sample_restarts_at_the_first_row():
    sample = SystematicSample(10, 4)
    assert sample.positions(4).tolist() == [0, 3] and sample.positions(6).tolist() == [2, 5]
    sample.restart()
    assert sample.positions(10).tolist() == [0, 3, 6, 9]
    assert SystematicSample(0, 0).positions(3).tolist() == [0, 1, 2]


def test_exact_ranks_from_a_complete_sample_need_no_pass():
    search = ExactRanks([2, 0, 2], 4, np.array([7.0, 1.0, 3.0, 5.0]), collect=1)
    assert not search.pending and search.found == {0: 1.0, 2: 5.0}


@pytest.mark.parametrize("values", [[4.0], [1.0, 1.0, 2.0, 7.0], [3.0, -1.0, 2.5, 2.5, 9.0, 0.0, 5.0]])
def test_inverted_cdf_quantiles_are_numpy_inverted_cdf_and_always_data_values(values):
    ordered = np.sort(np.array(values))
    levels = np.array([0.0, 1e-9, 0.1, 0.25, 0.5, 0.5 + 1e-9, 0.75, 0.999, 1.0])
    got = inverted_cdf(ordered, levels)
    assert got.tolist() == np.quantile(ordered, levels, method="inverted_cdf").tolist()
    assert set(got.tolist()) <= set(values)


def _median_passes(column: np.ndarray, **options) -> tuple[int, float]:
    """How many passes fit_stream takes over ``column`` for an exact median, and the median."""
    calls = []

    def batches():
        calls.append(1)
        return [pa.table({"v": column[a:a + 100]}) for a in range(0, len(column), 100)]

    fitted = fit_stream(batches, {"f": {"column": "v", "transforms": [{"kind": "impute", "strategy": "median"}]}},
                        None, len(column), **options)
    return len(calls), fitted.features[0].steps[0]["value"]


def test_fit_stream_samples_sample_rows_of_rows_and_collects_at_most_collect_values_in_further_passes():
    column = np.random.default_rng(9).normal(size=2_000)
    median = float(np.median(column))
    assert _median_passes(column) == (1, median)  # the default sample holds every row: exact in one pass
    assert _median_passes(column, sample_rows=2_000) == (1, median)
    sampled, value = _median_passes(column, sample_rows=100)
    assert sampled >= 2 and value == median  # a sample of a twentieth: further passes find the median
    capped, value = _median_passes(column, sample_rows=100, collect_values=3)
    assert capped > sampled and value == median  # a cap below the bracket: the counts narrow it, pass by pass


def test_the_median_of_one_value_that_the_sample_misses_is_that_value():
    column = np.full(1_000, np.nan)
    column[501] = 6.5
    assert _fit(column, [{"kind": "impute", "strategy": "median"}], sample_rows=10).steps[0]["value"] == 6.5
    assert _fit(column, [{"kind": "bucketize", "quantiles": 3}], sample_rows=10).steps[0]["edges"] == [6.5]
