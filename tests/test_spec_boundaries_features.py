"""Feature transforms at their edges: defaults of the short forms, degenerate training columns, numbers used
as categories, bucket and one-hot slots, output names, and every error message."""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow as pa
import pytest

from loopc.runtime.data.split import stable_hash64
from loopc.runtime.features.transforms import FeatureError, FittedFeatures, fit_feature, fit_features


def fit1(values, *transforms, **feature) -> tuple:
    """Fit one feature on column ``v``; (the FittedFeature, its matrix on the training rows)."""
    table = pa.table({"v": values})
    fitted = fit_feature(table, "f", {"column": "v", "transforms": list(transforms), **feature})
    return fitted, fitted.apply(table)


def states(fitted) -> list[dict]:
    return [{k: v for k, v in step.items() if k != "kind"} for step in fitted.steps]


# ------------------------------------------------------------------ numeric fits on degenerate columns


def test_standardize_keeps_a_small_std_and_replaces_zero_or_no_values_with_one():
    assert states(fit1([0.0, 1.0], "standardize")[0]) == [{"mean": 0.5, "std": 0.5}]
    assert states(fit1([3.0, 3.0], "standardize")[0]) == [{"mean": 3.0, "std": 1.0}]
    assert states(fit1(pa.array([None, None], pa.float64()), "standardize")[0]) == [{"mean": 0.0, "std": 1.0}]


def test_minmax_span_and_its_fallbacks():
    fitted, matrix = fit1([2.0, 6.0, 4.0], "minmax")
    assert states(fitted) == [{"min": 2.0, "span": 4.0}] and matrix[:, 0].tolist() == [0.0, 1.0, 0.5]
    assert states(fit1([5.0, 5.0], "minmax")[0]) == [{"min": 5.0, "span": 1.0}]
    assert states(fit1(pa.array([None], pa.float64()), "minmax")[0]) == [{"min": 0.0, "span": 1.0}]


def test_log_short_form_uses_offset_one_and_the_smallest_shifted_value_as_floor():
    fitted, matrix = fit1([1.0, 3.0], "log")
    assert states(fitted) == [{"offset": 1.0, "floor": 2.0}]
    assert matrix[:, 0].tolist() == pytest.approx([math.log(2.0), math.log(4.0)])
    served = fitted.apply(pa.table({"v": [-0.5]}))
    assert served[0, 0] == pytest.approx(math.log(2.0))  # clamped to log(floor)
    assert states(fit1(pa.array([None], pa.float64()), {"kind": "log", "offset": 2.0})[0]) == [
        {"offset": 2.0, "floor": 1.0}]  # fmt: skip


def test_log_of_a_value_exactly_at_minus_offset_is_an_error_naming_the_values():
    with pytest.raises(FeatureError) as error:
        fit1([-1.0, -0.5, 5.0], "log")
    assert str(error.value) == ("feature 'f' (column 'v'): log needs value + offset > 0, but 1 training value(s) "
                                "are <= -1 (smallest -1); add a clip transform with a min before log, or raise "
                                "the offset")  # fmt: skip


def test_impute_strategies_and_their_errors():
    values = pa.array([1.0, None, 2.0, 9.0], pa.float64())
    assert states(fit1(values, "impute")[0]) == [{"value": 4.0}]  # the default strategy is the mean
    assert states(fit1(values, {"kind": "impute", "strategy": "median"})[0]) == [{"value": 2.0}]
    assert states(fit1(values, {"kind": "impute", "strategy": "constant", "value": -1})[0]) == [{"value": -1.0}]
    with pytest.raises(FeatureError) as error:
        fit1(values, {"kind": "impute", "strategy": "constant"})
    assert str(error.value) == "feature 'f' (column 'v'): impute strategy 'constant' needs 'value'"
    with pytest.raises(FeatureError) as error:
        fit1(pa.array([None], pa.float64()), {"kind": "impute", "strategy": "median"})
    assert str(error.value) == "feature 'f' (column 'v'): cannot impute the median: the training split has no values"


def test_quantile_buckets_need_values():
    with pytest.raises(FeatureError) as error:
        fit1(pa.array([None], pa.float64()), {"kind": "bucketize", "quantiles": 4})
    assert str(error.value) == ("feature 'f' (column 'v'): cannot fit quantile buckets: the training split has "
                                "no values")  # fmt: skip


# ------------------------------------------------------------------ slots: buckets, one-hot, hash


def test_bucket_slots_from_below_the_first_edge_to_above_the_last_and_none_for_nan():
    fitted, _ = fit1([0.0], {"kind": "bucketize", "boundaries": [1, 2.5]})
    matrix = fitted.apply(pa.table({"v": pa.array([0.5, 1.0, 2.5, 7.0, None], pa.float64())}))
    assert matrix.tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1], [0, 0, 0]]
    assert fitted.names == ["f<1", "f[1,2.5)", "f>=2.5"]


def test_one_quantile_gives_no_edges_and_a_single_bucket_named_all():
    fitted, matrix = fit1([1.0, 2.0], {"kind": "bucketize", "quantiles": 1})
    assert fitted.names == ["f[all]"] and matrix.tolist() == [[1], [1]]


def test_bucket_names_format_edges_with_six_significant_digits():
    fitted, _ = fit1([0.0], {"kind": "bucketize", "boundaries": [1e-7, 1234567.0]})
    assert fitted.names == ["f<1e-07", "f[1e-07,1.23457e+06)", "f>=1.23457e+06"]


def test_a_terminal_transform_on_a_column_with_nulls_has_no_missing_indicator():
    values = pa.array([1.0, None, 3.0], pa.float64())
    assert fit1(values, {"kind": "bucketize", "boundaries": [2.0]})[0].names == ["f<2", "f>=2"]
    assert fit1(values, "onehot")[0].names == ["f=1", "f=3", "f=<other>"]
    assert fit1(values, "impute")[0].names == ["f"]


def test_an_empty_vocabulary_puts_every_value_in_other():
    fitted, matrix = fit1(["a", "b"], {"kind": "onehot", "min_frequency": 5})
    assert fitted.steps[0]["vocabulary"] == [] and matrix.tolist() == [[1], [1]]


def test_a_constant_column_has_no_quantile_edges_and_one_bucket():
    fitted, matrix = fit1([4.0, 4.0], {"kind": "bucketize", "quantiles": 4})
    assert fitted.steps[0]["edges"] == [4.0] and fitted.names == ["f<4", "f>=4"]
    assert matrix.tolist() == [[0, 1], [0, 1]]


def test_numbers_used_as_categories_are_named_like_integers_when_whole():
    values = pa.array([1.0, 2.5, -3.0, 2.0**62, None, 1.0, 1000.0], pa.float64())
    fitted, matrix = fit1(values, "onehot")
    vocabulary = fitted.steps[0]["vocabulary"]
    assert vocabulary == ["1", "-3", "1000", "2.5", str(2.0**62)]  # 1 twice first, then by text
    assert matrix[4].tolist() == [0, 0, 0, 0, 0, 1]  # a null number goes to <other>
    assert matrix.dtype == np.float32
    assert fitted.names[-1] == "f=<other>"


def test_onehot_short_form_keeps_at_most_one_hundred_categories():
    values = [f"c{i:03d}" for i in range(101)] + ["c050"]
    fitted, _ = fit1(values, "onehot")
    vocabulary = fitted.steps[0]["vocabulary"]
    assert len(vocabulary) == 100 and vocabulary[0] == "c050" and "c100" not in vocabulary


def test_a_given_vocabulary_is_used_as_text():
    fitted, matrix = fit1([1, 2, 3], {"kind": "onehot", "vocabulary": [3, 1]})
    assert fitted.steps[0]["vocabulary"] == ["3", "1"] and matrix.tolist() == [[0, 1, 0], [0, 0, 1], [1, 0, 0]]


def test_hash_short_form_has_32_buckets_keyed_by_loopc_feature():
    fitted, matrix = fit1(["alpha", "beta"], "hash")
    assert matrix.shape == (2, 32) and fitted.names == [f"f#{i}" for i in range(32)]
    expected = stable_hash64(pa.array(["alpha", "beta"]), b"loopc-feature") % np.uint64(32)
    assert np.argmax(matrix, axis=1).tolist() == expected.astype(int).tolist()


def test_a_category_column_declared_so_is_text_even_when_the_file_holds_numbers():
    train = pa.table({"c": [1, 2, 2]})
    fitted = fit_features(train, {"c": {"column": "c", "transforms": []}}, {"c": {"type": "category"}})
    assert fitted.features[0].text and fitted.names == ["c=2", "c=1", "c=<other>"]
    undeclared = fit_features(train, {"c": {"column": "c", "transforms": []}})
    assert not undeclared.features[0].text and undeclared.names == ["c"]


# ------------------------------------------------------------------ sources, names and missing values


def test_a_dictionary_encoded_string_column_is_text():
    table = pa.table({"v": pa.array(["a", "b", "a"]).dictionary_encode()})
    fitted = fit_feature(table, "f", {"column": "v"})
    assert fitted.text and fitted.apply(table).tolist() == [[1, 0, 0], [0, 1, 0], [1, 0, 0]]


def test_expression_features_give_one_value_per_row_and_text_results_are_categories():
    table = pa.table({"a": [1.0, 2.0, 3.0], "s": ["x", "y", "x"]})
    constant = fit_feature(table, "k", {"expr": "1.5"})
    assert constant.apply(table).tolist() == [[1.5], [1.5], [1.5]]
    text = fit_feature(table, "t", {"expr": "s"})
    assert text.text and text.names == ["t=x", "t=y", "t=<other>"]


def test_a_missing_indicator_marks_the_rows_that_were_null():
    fitted, matrix = fit1(pa.array([1.0, None, 3.0], pa.float64()), "standardize")
    assert fitted.names == ["f", "f:missing"]
    assert matrix[:, 1].tolist() == [0.0, 1.0, 0.0] and matrix[1, 0] == 0.0


@pytest.mark.parametrize(
    ("feature", "message"),
    [
        ({"column": "nope"}, "feature 'f' (column 'nope'): column 'nope' is missing (present: v, w)"),
        ({"column": "v", "expr": "w"}, "feature 'f' (column 'v'): give exactly one of 'column' or 'expr'"),
        ({}, "feature 'f' (expr None): give exactly one of 'column' or 'expr'"),
        ({"column": "v", "transforms": ["square"]},
         "feature 'f' (column 'v'): unknown transform 'square'; known: identity, standardize, minmax, log, clip, "
         "impute, bucketize, onehot, hash"),
        ({"column": "v", "transforms": ["onehot", "identity"]},
         "feature 'f' (column 'v'): 'onehot' must be the last transform (it makes one-hot columns)"),
        ({"column": "w", "transforms": ["standardize"]},
         "feature 'f' (column 'w'): is text; 'standardize' needs numbers (use onehot or hash)"),
    ],
)
def test_definition_errors_name_the_feature_and_the_fix(feature, message):
    with pytest.raises(FeatureError) as error:
        fit_feature(pa.table({"v": [1.0], "w": ["a"]}), "f", feature)
    assert str(error.value) == message


def test_serving_text_where_training_saw_numbers_is_an_error_naming_the_source():
    for feature, where in (({"column": "v"}, "column 'v'"), ({"expr": "v"}, "expr 'v'")):
        fitted = fit_feature(pa.table({"v": [1.0]}), "f", feature)
        with pytest.raises(FeatureError) as error:
            fitted.apply(pa.table({"v": ["a"]}))
        assert str(error.value) == f"feature 'f' ({where}): was numeric in training but is text now"


def test_no_features_give_an_empty_float32_matrix_with_one_row_per_input_row():
    empty = FittedFeatures([]).apply(pa.table({"v": [1, 2, 3]}))
    assert empty.shape == (3, 0) and empty.dtype == np.float32


def test_serving_rows_without_the_column_name_the_feature():
    fitted = fit_feature(pa.table({"v": [1.0]}), "f", {"column": "v"})
    with pytest.raises(FeatureError) as error:
        fitted.apply(pa.table({"w": [1.0]}))
    assert str(error.value) == "feature 'f' (column 'v'): column 'v' is missing (present: w)"


def test_saved_features_never_hold_nan():
    fitted = fit_features(pa.table({"v": [1.0]}), {"f": {"column": "v", "transforms": [
        {"kind": "clip", "min": float("nan"), "max": None}]}})  # fmt: skip
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        fitted.to_json()


def test_fitting_on_no_rows_is_an_error():
    with pytest.raises(FeatureError) as error:
        fit_features(pa.table({"v": pa.array([], pa.float64())}), {"f": {"column": "v"}})
    assert str(error.value) == "cannot fit features: the train split has no rows"


# ------------------------------------------------------------------ the saved form


def test_saved_json_is_sorted_indented_and_names_every_output_column():
    fitted = fit_features(pa.table({"v": [1.0, 2.0], "s": ["a", "b"]}), {"n": {"column": "v",
                          "transforms": ["standardize"]}, "s": {"column": "s"}})  # fmt: skip
    text = fitted.to_json()
    assert text.startswith('{\n "features": [\n  {\n   "column": "v",') and text.endswith("\n}\n")
    assert json.loads(text)["names"] == ["n", "s=a", "s=b", "s=<other>"]
    assert FittedFeatures.from_json(text).to_json() == text


def test_reading_saved_features_of_another_format_or_broken_json_is_an_error():
    with pytest.raises(FeatureError) as error:
        FittedFeatures.from_json('{"format": 2, "features": []}')
    assert str(error.value) == "fitted features have format 2, this loopc reads 1"
    with pytest.raises(FeatureError, match="^fitted features are not valid JSON: "):
        FittedFeatures.from_json("{")
