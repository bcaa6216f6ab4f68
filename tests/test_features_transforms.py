"""Feature transforms: fitted on train only, never NaN out, identical after a JSON round trip."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from loopc.runtime.features.transforms import FeatureError, FittedFeatures, fit_features

COLUMNS = {
    "tenure": {"type": "int"},
    "charges": {"type": "float"},
    "contract": {"type": "category"},
    "store": {"type": "string"},
}


def _table(tenure, charges, contract, store=None) -> pa.Table:
    store = store or [f"s{i}" for i in range(len(tenure))]
    return pa.table({"tenure": pa.array(tenure, pa.int64()), "charges": pa.array(charges, pa.float64()),
                     "contract": contract, "store": store})


TRAIN = _table([0, 10, 20, 30, 40], [10.0, None, 30.0, 50.0, 60.0],
               ["monthly", "annual", "monthly", "two_year", "monthly"])


def _fit(features: dict, train: pa.Table = TRAIN) -> FittedFeatures:
    return fit_features(train, features, COLUMNS)


def test_standardize_uses_train_statistics_only():
    fitted = _fit({"t": {"column": "tenure", "transforms": [{"kind": "standardize"}]}})
    valid = _table([1000, 2000], [1.0, 1.0], ["monthly", "monthly"])
    # Leaking the valid rows into the fit would move the mean far from 20.
    expected = (np.array([1000, 2000]) - 20.0) / np.std([0, 10, 20, 30, 40])
    np.testing.assert_allclose(fitted.apply(valid)[:, 0], expected, rtol=1e-6)
    np.testing.assert_allclose(fitted.apply(TRAIN)[:, 0].mean(), 0.0, atol=1e-6)


def test_constant_column_standardizes_with_std_one():
    train = _table([5, 5, 5], [1.0, 1.0, 1.0], ["a", "a", "a"])
    fitted = _fit({"t": {"column": "tenure", "transforms": ["standardize"]}}, train)
    np.testing.assert_array_equal(fitted.apply(_table([7], [1.0], ["a"]))[:, 0], [2.0])


def test_minmax_clip_and_log_chain():
    fitted = _fit({
        "m": {"column": "tenure", "transforms": [{"kind": "minmax"}]},
        "c": {"column": "tenure", "transforms": [{"kind": "clip", "min": 5, "max": 25}]},
        "l": {"column": "tenure", "transforms": [{"kind": "log", "offset": 1.0}]},
    })
    out = fitted.apply(_table([20, 80], [1.0, 1.0], ["a", "a"]))
    np.testing.assert_allclose(out, [[0.5, 20, np.log(21)], [2.0, 25, np.log(81)]], rtol=1e-6)


def test_log_of_non_positive_training_values_is_an_error_and_serving_clamps():
    train = _table([-3, 1, 2], [1.0, 1.0, 1.0], ["a", "a", "a"])
    with pytest.raises(FeatureError, match=r"log needs value \+ offset > 0.*clip"):
        _fit({"l": {"column": "tenure", "transforms": [{"kind": "log", "offset": 1.0}]}}, train)
    fitted = _fit({"l": {"column": "tenure", "transforms": [{"kind": "log", "offset": 1.0}]}})
    np.testing.assert_allclose(fitted.apply(_table([-50], [1.0], ["a"]))[:, 0], [0.0])


def test_impute_with_train_median_and_no_missing_column():
    fitted = _fit({"c": {"column": "charges", "transforms": [{"kind": "impute", "strategy": "median"}]}})
    assert fitted.names == ["c"]
    serving = _table([1, 2], [None, 5.0], ["a", "a"])
    np.testing.assert_allclose(fitted.apply(serving)[:, 0], [40.0, 5.0])


def test_unimputed_nulls_become_zero_with_a_missing_indicator():
    fitted = _fit({"c": {"column": "charges", "transforms": ["standardize"]}})
    assert fitted.names == ["c", "c:missing"]
    out = fitted.apply(TRAIN)
    assert not np.isnan(out).any()
    np.testing.assert_array_equal(out[:, 1], [0, 1, 0, 0, 0])
    assert out[1, 0] == 0.0


def test_onehot_vocabulary_by_frequency_with_an_other_slot():
    fitted = _fit({"k": {"column": "contract", "transforms": ["onehot"]}})
    assert fitted.names == ["k=monthly", "k=annual", "k=two_year", "k=<other>"]
    out = fitted.apply(_table([1, 2, 3], [1.0] * 3, ["annual", "weekly", None]))
    np.testing.assert_array_equal(out, [[0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 0, 1]])


def test_onehot_max_categories_and_min_frequency():
    capped = _fit({"k": {"column": "contract", "transforms": [{"kind": "onehot", "max_categories": 1}]}})
    assert capped.names == ["k=monthly", "k=<other>"]
    frequent = _fit({"k": {"column": "contract", "transforms": [{"kind": "onehot", "min_frequency": 2}]}})
    assert frequent.names == ["k=monthly", "k=<other>"]


def test_text_column_without_transforms_gets_an_implicit_onehot():
    assert _fit({"k": {"column": "contract"}}).dim == 4


def test_hash_is_stable_and_handles_unseen_values():
    fitted = _fit({"s": {"column": "store", "transforms": [{"kind": "hash", "buckets": 8}]}})
    assert fitted.names == [f"s#{i}" for i in range(8)]
    out = fitted.apply(_table([1, 2], [1.0, 1.0], ["a", "a"], ["never-seen", "s1"]))
    assert (out.sum(axis=1) == 1).all()
    again = FittedFeatures.from_json(fitted.to_json()).apply(_table([1], [1.0], ["a"], ["never-seen"]))
    np.testing.assert_array_equal(again[0], out[0])


def test_bucketize_fixed_and_quantile_edges():
    fixed = _fit({"b": {"column": "tenure", "transforms": [{"kind": "bucketize", "boundaries": [10, 30]}]}})
    assert fixed.names == ["b<10", "b[10,30)", "b>=30"]
    np.testing.assert_array_equal(fixed.apply(TRAIN).argmax(axis=1), [0, 1, 1, 2, 2])
    fitted = _fit({"b": {"column": "tenure", "transforms": [{"kind": "bucketize", "quantiles": 2}]}})
    assert fitted.names == ["b<20", "b>=20"]
    nulls = _fit({"b": {"column": "charges", "transforms": [{"kind": "bucketize", "boundaries": [40]}]}})
    assert nulls.apply(TRAIN)[1].sum() == 0


def test_expression_features():
    fitted = _fit({"ratio": {"expr": "charges / (tenure + 1)", "transforms": [{"kind": "impute", "strategy": "constant", "value": -1}]}})
    np.testing.assert_allclose(fitted.apply(TRAIN)[:, 0], [10.0, -1.0, 30 / 21, 50 / 31, 60 / 41], rtol=1e-6)
    assert fitted.input_columns == ["charges", "tenure"]


def test_invalid_feature_definitions_are_clear_errors():
    with pytest.raises(FeatureError, match="is text; 'standardize' needs numbers"):
        _fit({"k": {"column": "contract", "transforms": ["standardize"]}})
    with pytest.raises(FeatureError, match="must be the last transform"):
        _fit({"k": {"column": "tenure", "transforms": ["onehot", "standardize"]}})
    with pytest.raises(FeatureError, match="column 'nope' is missing"):
        _fit({"k": {"column": "nope"}})
    with pytest.raises(FeatureError, match="unknown column 'zzz'"):
        _fit({"k": {"expr": "zzz + 1"}})
    fitted = _fit({"t": {"column": "tenure"}})
    with pytest.raises(FeatureError, match="column 'tenure' is missing"):
        fitted.apply(pa.table({"other": [1]}))


FEATURES = {
    "tenure": {"column": "tenure", "transforms": [{"kind": "clip", "min": 0, "max": 35}, {"kind": "standardize"}]},
    "charges": {"column": "charges", "transforms": [{"kind": "impute", "strategy": "mean"}, {"kind": "log", "offset": 1.0}, {"kind": "standardize"}]},
    "contract": {"column": "contract", "transforms": [{"kind": "onehot", "vocabulary": None, "max_categories": 100, "min_frequency": 1}]},
    "store": {"column": "store", "transforms": [{"kind": "hash", "buckets": 4}]},
    "ratio": {"expr": "charges / (tenure + 1)", "transforms": [{"kind": "standardize"}]},
}


def test_train_and_serve_give_identical_features_after_a_json_round_trip():
    fitted = _fit(FEATURES)
    rows = _table([3, 70, 12], [25.0, None, 99.0], ["two_year", "lifetime", "monthly"], ["s1", "s9", "s3"])
    at_training = fitted.apply(rows)
    text = fitted.to_json()
    restored = FittedFeatures.from_json(text)
    assert restored.to_json() == text
    assert restored.names == fitted.names
    served = restored.apply(rows)
    assert served.dtype == np.float32 and served.shape == (3, fitted.dim)
    np.testing.assert_array_equal(served, at_training)
    assert not np.isnan(served).any()
    assert served[1, fitted.names.index("contract=<other>")] == 1.0


def test_same_fit_gives_the_same_bytes():
    assert _fit(FEATURES).to_json() == _fit(FEATURES).to_json()


def test_from_json_rejects_other_formats():
    with pytest.raises(FeatureError, match="format"):
        FittedFeatures.from_json('{"format": 99, "features": []}')
    with pytest.raises(FeatureError, match="not valid JSON"):
        FittedFeatures.from_json("{")


def test_a_value_beyond_float32_after_its_transforms_is_named_not_turned_into_an_infinity():
    """The model's inputs are float32: 1e300 through identity would be inf there (and training would blame
    missing values); NaN and infinities of the data still become 0 with the missing indicator."""
    huge = _table([0, 1, 2, 3, 4], [1.0, 2.0, 1e300, None, float("inf")], ["monthly"] * 5)
    identity = _fit({"c": {"column": "charges", "transforms": ["identity"]}}, huge)
    with pytest.raises(FeatureError, match=r"feature 'c' \(column 'charges'\): 1 value\(s\) beyond the float32 range"
                                           r" of the model's inputs \(such as 1e\+300\).*standardize, log or clip"):
        identity.apply(huge)
    logged = _fit({"c": {"column": "charges", "transforms": [{"kind": "log", "offset": 1.0}]}}, huge)
    out = logged.apply(huge)
    assert np.isfinite(out).all() and out[2, 0] == pytest.approx(np.log(1e300 + 1.0), rel=1e-6)
    assert out[3, 0] == 0.0 and out[4, 0] == 0.0
